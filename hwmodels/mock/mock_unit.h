// The kernel selftest's mock IOMMU as programs observe it through the uAPI:
// its aperture, page sizes, hw_info and dirty tracking, so that the
// kernel's own iommufd selftests can run against us.
#pragma once

#include <memory>

#include "hwmodels/common/table_memory.h"
#include "hwmodels/common/unit.h"
#include "hwmodels/common/unit_params.h"

namespace ioasid::hw::mock {

// Values of the selftest ABI (iommufd_test.h).
inline constexpr std::uint32_t kHwInfoTypeSelftest = 0xfeedbeef;
inline constexpr std::uint32_t kHwInfoSelftestRegval = 0xdeadbeef;
inline constexpr std::uint64_t kApertureFirst = 1ULL << 24;
inline constexpr std::uint64_t kApertureLast = (1ULL << 31) - 1;
inline constexpr std::uint64_t kIoPageSize = 2048;
inline constexpr std::uint64_t kHugePageSize = 512 * kIoPageSize;

// What the unit offers every device behind it. The selftest's per-device
// flags (MOCK_FLAGS_DEVICE_*) are the devices' own EndpointConfig:
// dirty_tracking (NO_DIRTY), huge_iova (HUGE_IOVA), pasid_bits (PASID).
struct MockConfig {
    bool dirty_tracking = true; // IOMMU_CAP_DIRTY_TRACKING
    bool huge_pages = false;    // 1 MiB pages too, for every device
    unsigned pasid_bits = 20;   // the widest PASID a device may have (MOCK_PASID_WIDTH)
};

class MockUnit final : public Unit {
public:
    MockUnit(std::string name, MockConfig config, memory::PhysSpace& phys);

    HwInfo hw_info(const Endpoint& endpoint) const override;
    std::uint64_t page_table_pages() const override { return tables_.pages_in_use(); }
    int alloc_domain(const Endpoint& endpoint, const DomainRequest& request,
                     std::unique_ptr<Domain>* out) override;
    // A MockNestedDomain: IOMMU_HWPT_DATA_SELFTEST over a mock paging parent.
    int alloc_nested_domain(const Endpoint& endpoint, Domain& parent, const UserData& data,
                            std::unique_ptr<NestedDomain>* out) override;
    // The selftest mock says so, so that TRIGGER_IOPF with a PASID reaches a
    // nested domain on the RID.
    bool user_pasid_table() const override { return true; }

private:
    MockConfig config_;
    TableMemory tables_;
};

// The `family = "mock"` entry of a topology: keys dirty_tracking,
// huge_pages, pasid_bits.
std::unique_ptr<Unit> create_mock_unit(const std::string& name, UnitParams& params,
                                       memory::PhysSpace& phys);

} // namespace ioasid::hw::mock
