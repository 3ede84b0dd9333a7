#include "fault.h"

#include <ioasid/iommufd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <mutex>

#include "device.h"

namespace ioasid::core {
namespace {

constexpr std::size_t kRecordSize = sizeof(iommu_hwpt_pgfault);
constexpr std::size_t kResponseSize = sizeof(iommu_hwpt_page_response);

} // namespace

void Fault::report(const Device& device, const PageRequest& request)
{
    std::vector<PageRequest>& pending = partial_[&device];
    pending.push_back(request);
    if (!(request.flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE))
        return;
    const bool was_empty = deliver_.empty();
    deliver_.push_back(Group{&device, device.id(), std::move(pending)});
    partial_.erase(&device);
    if (was_empty && readable_signal_)
        readable_signal_();
}

// The emulated devices wait for no answer, so "answering" a group is
// forgetting it.
void Fault::respond_all(const Device& device)
{
    partial_.erase(&device);
    std::erase_if(deliver_, [&](const Group& group) { return group.device == &device; });
    std::erase_if(responses_, [&](const auto& entry) { return entry.second.device == &device; });
}

// The lowest free cookie from 1, as the kernel's ALLOC1 xarray gives them.
std::uint32_t Fault::free_cookie() const
{
    std::uint32_t cookie = 1;
    for (const auto& [used, group] : responses_) {
        if (used != cookie)
            break;
        ++cookie;
    }
    return cookie;
}

// iommufd_fault_fops_read(): whole groups only; a count too small for the
// first group is EINVAL, an empty queue reads 0 bytes. Groups are delivered
// up to what `out` holds; a transport that offers less than the count
// (4 KiB over the socket) answers short, as read(2) may.
ssize_t Fault::read(std::span<std::byte> out, std::uint64_t count)
{
    if (count % kRecordSize)
        return -ESPIPE;
    const std::size_t room = std::min<std::uint64_t>(count, out.size() - out.size() % kRecordSize);
    std::size_t done = 0;
    while (!deliver_.empty()) {
        Group& group = deliver_.front();
        if (group.requests.size() * kRecordSize > room - done)
            return done ? static_cast<ssize_t>(done) : -EINVAL;
        group.cookie = free_cookie();
        for (const PageRequest& request : group.requests) {
            iommu_hwpt_pgfault record{};
            record.flags = request.flags;
            record.dev_id = group.dev_id;
            record.pasid = request.pasid;
            record.grpid = request.grpid;
            record.perm = request.perm;
            record.addr = request.addr;
            record.length = 0;
            record.cookie = group.cookie;
            std::memcpy(out.data() + done, &record, kRecordSize);
            done += kRecordSize;
        }
        const std::uint32_t cookie = group.cookie;
        responses_.emplace(cookie, std::move(group));
        deliver_.pop_front();
    }
    return static_cast<ssize_t>(done);
}

// iommufd_fault_fops_write(): responses in order until a bad one; what
// went before it counts.
ssize_t Fault::write(std::span<const std::byte> in)
{
    if (in.size() % kResponseSize)
        return -ESPIPE;
    std::size_t done = 0;
    int rc = 0;
    while (done < in.size()) {
        iommu_hwpt_page_response response;
        std::memcpy(&response, in.data() + done, kResponseSize);
        if (response.code != IOMMUFD_PAGE_RESP_SUCCESS && response.code != IOMMUFD_PAGE_RESP_INVALID) {
            rc = -EINVAL;
            break;
        }
        if (!responses_.erase(response.cookie)) {
            rc = -EINVAL;
            break;
        }
        done += kResponseSize;
    }
    return done ? static_cast<ssize_t>(done) : rc;
}

FaultFile::FaultFile(Context& ctx, Fault& fault) : ctx_(ctx), fault_(fault) {}

FaultFile::~FaultFile()
{
    if (!fault_)
        return;
    std::lock_guard guard(ctx_.lock());
    fault_->set_readable_signal(nullptr);
    fault_.reset();
}

ssize_t FaultFile::read(std::span<std::byte> out, std::uint64_t count)
{
    std::lock_guard guard(ctx_.lock());
    return fault_ ? fault_->read(out, count) : -EBADF;
}

ssize_t FaultFile::write(std::span<const std::byte> in)
{
    std::lock_guard guard(ctx_.lock());
    return fault_ ? fault_->write(in) : -EBADF;
}

void FaultFile::set_readable_signal(std::function<void()> signal)
{
    std::lock_guard guard(ctx_.lock());
    if (!fault_)
        return;
    // What arrived before the client had the file is readable now.
    if (signal && fault_->queued())
        signal();
    fault_->set_readable_signal(std::move(signal));
}

bool FaultFile::readable()
{
    std::lock_guard guard(ctx_.lock());
    return fault_ && fault_->queued() > 0;
}

} // namespace ioasid::core
