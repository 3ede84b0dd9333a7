// FAULT objects (IOMMU_FAULT_QUEUE_ALLOC), the kernel's iommufd_fault: a
// queue of page requests from devices attached to HWPTs that name the
// fault, read by the client from the fault's file as struct
// iommu_hwpt_pgfault records and answered with struct
// iommu_hwpt_page_response records written to it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <span>
#include <vector>

#include "client_file.h"
#include "context.h"
#include "object.h"

namespace ioasid::core {

class Device;

// One page request as the IOMMU reports it (the PRI fields of struct
// iommu_fault_page_request).
struct PageRequest {
    std::uint32_t flags = 0; // IOMMU_PGFAULT_FLAGS_*
    std::uint32_t pasid = 0;
    std::uint32_t grpid = 0;
    std::uint32_t perm = 0; // IOMMU_PGFAULT_PERM_*
    std::uint64_t addr = 0;
};

class Fault final : public Object {
public:
    static constexpr ObjectType kType = ObjectType::fault;
    Fault() : Object(kType) {}

    // A request of `device` reaching this queue through the HWPT it is
    // attached to. Requests gather into a group until the one flagged
    // LAST_PAGE, which makes the group readable (iommu_report_device_fault()).
    void report(const Device& device, const PageRequest& request);

    // The device left a HWPT of this fault: its groups, read or not, are
    // answered "invalid" and forgotten (iommufd_auto_response_faults()).
    void respond_all(const Device& device);

    // The file operations, under the context's lock (fault.c's fops).
    [[nodiscard]] ssize_t read(std::span<std::byte> out, std::uint64_t count);
    [[nodiscard]] ssize_t write(std::span<const std::byte> in);

    // Groups read but not answered, and groups not read yet: for tests and
    // the status report.
    [[nodiscard]] std::size_t awaiting_response() const { return responses_.size(); }
    [[nodiscard]] std::size_t queued() const { return deliver_.size(); }

    // Called when the queue goes from empty to not empty, as the kernel
    // wakes the file's pollers (iommufd_fault_iopf_handler()).
    void set_readable_signal(std::function<void()> signal) { readable_signal_ = std::move(signal); }

private:
    struct Group {
        const Device* device;
        std::uint32_t dev_id;
        std::vector<PageRequest> requests;
        std::uint32_t cookie = 0;
    };

    [[nodiscard]] std::uint32_t free_cookie() const;

    std::map<const Device*, std::vector<PageRequest>> partial_;
    std::deque<Group> deliver_;
    std::map<std::uint32_t, Group> responses_; // by cookie
    std::function<void()> readable_signal_;
};

// The fault's file. It keeps the fault busy (IOMMU_DESTROY of it is EBUSY)
// until the client closes its last descriptor; the context must outlive it,
// as the kernel's file reference on the iommufd context ensures.
class FaultFile final : public ClientFile {
public:
    // Under the context's lock.
    FaultFile(Context& ctx, Fault& fault);
    // Takes the context's lock unless release_locked() ran.
    ~FaultFile() override;
    FaultFile(const FaultFile&) = delete;
    FaultFile& operator=(const FaultFile&) = delete;

    // Drops the reference now, by a caller that holds the context's lock
    // (a failed IOMMU_FAULT_QUEUE_ALLOC whose file never reached the client).
    void release_locked() { fault_.reset(); }

    [[nodiscard]] ssize_t read(std::span<std::byte> out, std::uint64_t count) override;
    [[nodiscard]] ssize_t write(std::span<const std::byte> in) override;
    void set_readable_signal(std::function<void()> signal) override;
    [[nodiscard]] bool readable() override;

private:
    Context& ctx_;
    ObjectRef<Fault> fault_;
};

} // namespace ioasid::core
