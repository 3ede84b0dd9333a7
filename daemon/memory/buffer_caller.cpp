#include "buffer_caller.h"

#include <fcntl.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace ioasid::memory {

BufferCaller::BufferCaller()
{
    // Each instance is its own "process" for per-process accounting.
    static std::atomic<std::uint64_t> next_key{1};
    key_ = next_key++;
}

void BufferCaller::add_region(std::uint64_t addr, std::uint64_t length, bool writable)
{
    std::lock_guard guard(lock_);
    regions_[addr] = Region{std::vector<std::byte>(length), writable};
}

void BufferCaller::add_fd(int number, UniqueFd file)
{
    std::lock_guard guard(lock_);
    fds_[number] = std::move(file);
}

void BufferCaller::remove_fd(int number)
{
    std::lock_guard guard(lock_);
    fds_.erase(number);
}

int BufferCaller::take_fd(int fd, UniqueFd* out)
{
    std::lock_guard guard(lock_);
    auto it = fds_.find(fd);
    if (it == fds_.end())
        return -EBADF;
    UniqueFd copy(::fcntl(it->second.get(), F_DUPFD_CLOEXEC, 0));
    if (!copy)
        return -errno;
    *out = std::move(copy);
    return 0;
}

int BufferCaller::hand_over_file(std::shared_ptr<core::ClientFile> file, std::uint64_t number_addr)
{
    int number = 0;
    {
        std::lock_guard guard(lock_);
        while (fds_.contains(number) || files_.contains(number))
            ++number;
    }
    const auto value = static_cast<std::uint32_t>(number);
    if (int rc = write(number_addr, std::as_bytes(std::span(&value, 1))))
        return rc;
    std::lock_guard guard(lock_);
    files_.emplace(number, std::move(file));
    return 0;
}

int BufferCaller::find_file(int fd, std::shared_ptr<core::ClientFile>* file)
{
    std::lock_guard guard(lock_);
    if (auto it = files_.find(fd); it != files_.end()) {
        *file = it->second;
        return 0;
    }
    return fds_.contains(fd) ? -EBADFD : -EBADF;
}

std::shared_ptr<core::ClientFile> BufferCaller::file(int number)
{
    std::lock_guard guard(lock_);
    auto it = files_.find(number);
    return it == files_.end() ? nullptr : it->second;
}

void BufferCaller::close_file(int number)
{
    std::shared_ptr<core::ClientFile> dropped;
    {
        std::lock_guard guard(lock_);
        if (auto it = files_.find(number); it != files_.end()) {
            dropped = std::move(it->second);
            files_.erase(it);
        }
    }
}

std::size_t BufferCaller::file_count()
{
    std::lock_guard guard(lock_);
    return files_.size();
}

void BufferCaller::set_capable(Capability cap, bool on)
{
    (cap == Capability::ipc_lock ? cap_ipc_lock_ : cap_sys_resource_) = on;
}

bool BufferCaller::capable(Capability cap) const
{
    return cap == Capability::ipc_lock ? cap_ipc_lock_ : cap_sys_resource_;
}

// Calls fn(region bytes pointer, offset into the request, piece length) for
// each region the range crosses; -EFAULT if any byte is outside every region.
template <typename Fn>
int BufferCaller::for_each_piece(std::uint64_t addr, std::uint64_t length, bool for_write, Fn&& fn)
{
    if (exited_)
        return -ESRCH;
    if (addr + length < addr)
        return -EFAULT;
    std::uint64_t done = 0;
    while (done < length) {
        std::uint64_t at = addr + done;
        auto it = regions_.upper_bound(at);
        if (it == regions_.begin())
            return -EFAULT;
        --it;
        Region& region = it->second;
        std::uint64_t offset = at - it->first;
        if (offset >= region.bytes.size() || (for_write && !region.writable))
            return -EFAULT;
        std::uint64_t piece = std::min<std::uint64_t>(length - done, region.bytes.size() - offset);
        fn(region.bytes.data() + offset, done, piece);
        done += piece;
    }
    return 0;
}

int BufferCaller::read(std::uint64_t addr, std::span<std::byte> out)
{
    std::lock_guard guard(lock_);
    if (int rc = for_each_piece(addr, out.size(), false, [](auto*, auto, auto) {}))
        return rc;
    return for_each_piece(addr, out.size(), false, [&](std::byte* src, std::uint64_t at, std::uint64_t n) {
        std::memcpy(out.data() + at, src, n);
    });
}

// Like the kernel's copy_to_user(), a write never lands partially: the
// whole range is checked first.
int BufferCaller::write(std::uint64_t addr, std::span<const std::byte> in)
{
    std::lock_guard guard(lock_);
    if (int rc = for_each_piece(addr, in.size(), true, [](auto*, auto, auto) {}))
        return rc;
    return for_each_piece(addr, in.size(), true, [&](std::byte* dst, std::uint64_t at, std::uint64_t n) {
        std::memcpy(dst, in.data() + at, n);
    });
}

int BufferCaller::check_mapped(std::uint64_t addr, std::uint64_t length, bool for_write)
{
    std::lock_guard guard(lock_);
    return for_each_piece(addr, length, for_write, [](auto*, auto, auto) {});
}

} // namespace ioasid::memory
