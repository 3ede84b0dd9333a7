#include "request_caller.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ioasid::memory {

RequestCaller::RequestCaller(std::shared_ptr<Caller> process, uid_t uid, pid_t tgid,
                             std::uint64_t base, std::span<std::byte> inline_bytes)
    : process_(std::move(process)), uid_(uid), tgid_(tgid), base_(base), inline_(inline_bytes)
{
}

std::uint64_t RequestCaller::process_key() const
{
    return process_ ? process_->process_key() : 0;
}

bool RequestCaller::capable(Capability cap) const
{
    return process_ && process_->capable(cap);
}

std::uint64_t RequestCaller::memlock_limit() const
{
    return process_ ? process_->memlock_limit() : 0;
}

// One descriptor per ioctl is all an iommufd command hands out.
int RequestCaller::hand_over_file(std::shared_ptr<core::ClientFile> file, std::uint64_t number_addr)
{
    if (!desk_)
        return -EOPNOTSUPP;
    if (staged_.file)
        return -EBUSY;
    staged_ = {std::move(file), number_addr};
    return 0;
}

int RequestCaller::find_file(int fd, std::shared_ptr<core::ClientFile>* file)
{
    UniqueFd mine;
    if (int rc = take_fd(fd, &mine))
        return rc;
    std::shared_ptr<core::ClientFile> found = desk_ ? desk_->file_of(mine.get()) : nullptr;
    if (!found)
        return -EBADFD;
    found_.push_back(found);
    *file = std::move(found);
    return 0;
}

namespace {

// [addr, addr + len) split into the part before the inline bytes, the part
// inside them and the part after; all in client addresses.
struct Split {
    std::uint64_t inside_first = 0; // client address
    std::uint64_t inside_len = 0;
};

Split split(std::uint64_t base, std::size_t inline_len, std::uint64_t addr, std::uint64_t len)
{
    const std::uint64_t end = addr + len; // callers bound len; never wraps here
    const std::uint64_t lo = std::max(addr, base);
    const std::uint64_t hi = std::min(end, base + inline_len);
    return lo < hi ? Split{lo, hi - lo} : Split{};
}

} // namespace

int RequestCaller::read(std::uint64_t addr, std::span<std::byte> out)
{
    if (addr + out.size() < addr)
        return -EFAULT;
    Split in = split(base_, inline_.size(), addr, out.size());
    if (in.inside_len == 0)
        return process_ ? process_->memory().read(addr, out) : -EFAULT;
    std::memcpy(out.data() + (in.inside_first - addr), inline_.data() + (in.inside_first - base_),
                in.inside_len);
    // Whatever lies outside the inline copy comes from the process.
    if (in.inside_first > addr) {
        if (!process_)
            return -EFAULT;
        if (int rc = process_->memory().read(addr, out.first(in.inside_first - addr)))
            return rc;
    }
    const std::uint64_t after = in.inside_first + in.inside_len;
    if (after < addr + out.size()) {
        if (!process_)
            return -EFAULT;
        if (int rc = process_->memory().read(after, out.subspan(after - addr)))
            return rc;
    }
    return 0;
}

// Writes go to the process whenever it can be reached, so a struct in
// read-only memory fails with EFAULT exactly where the kernel's
// copy_to_user() would; the inline copy is kept in step for later reads.
int RequestCaller::write(std::uint64_t addr, std::span<const std::byte> in)
{
    if (addr + in.size() < addr)
        return -EFAULT;
    Split inside = split(base_, inline_.size(), addr, in.size());
    if (process_) {
        if (int rc = process_->memory().write(addr, in))
            return rc;
    } else if (inside.inside_len != in.size()) {
        return -EFAULT;
    }
    if (inside.inside_len == 0)
        return 0;
    const auto offset = static_cast<std::uint32_t>(inside.inside_first - base_);
    std::memcpy(inline_.data() + offset, in.data() + (inside.inside_first - addr),
                inside.inside_len);
    if (!process_) {
        const auto end = static_cast<std::uint32_t>(offset + inside.inside_len);
        dirty_first_ = dirty_end_ == 0 ? offset : std::min(dirty_first_, offset);
        dirty_end_ = std::max(dirty_end_, end);
    }
    return 0;
}

int RequestCaller::check_mapped(std::uint64_t addr, std::uint64_t length, bool for_write)
{
    return process_ ? process_->memory().check_mapped(addr, length, for_write) : -EFAULT;
}

std::span<const std::byte> RequestCaller::unsent() const
{
    return std::span<const std::byte>(inline_).subspan(dirty_first_, dirty_end_ - dirty_first_);
}

} // namespace ioasid::memory
