#include "mock_unit.h"

#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstring>

#include "hwmodels/common/radix_domain.h"
#include "mock_format.h"
#include "mock_nested_domain.h"

namespace ioasid::hw::mock {
namespace {

// Three levels of 2 KiB granule cover 38 bits, above the aperture.
constexpr unsigned kLevels = 3;

} // namespace

MockUnit::MockUnit(std::string name, MockConfig config, memory::PhysSpace& phys)
    // A device may bring 1 MiB pages of its own (huge_iova), so the IOTLB
    // holds both sizes whatever the unit's default.
    : Unit(std::move(name), "mock", config.pasid_bits, kIoPageSize | kHugePageSize),
      config_(config), tables_(phys)
{
}

HwInfo MockUnit::hw_info(const Endpoint& endpoint) const
{
    HwInfo info;
    info.type = kHwInfoTypeSelftest;
    const std::uint32_t words[2] = {0, kHwInfoSelftestRegval}; // flags, test_reg
    info.data.resize(sizeof(words));
    std::memcpy(info.data.data(), words, sizeof(words));
    if (config_.dirty_tracking && endpoint.config().dirty_tracking)
        info.capabilities |= IOMMU_HW_CAP_DIRTY_TRACKING;
    info.max_pasid_log2 = static_cast<std::uint8_t>(pasid_bits(endpoint));
    return info;
}

int MockUnit::alloc_domain(const Endpoint& endpoint, const DomainRequest& request,
                           std::unique_ptr<Domain>* out)
{
    if (request.dirty_tracking && !(config_.dirty_tracking && endpoint.config().dirty_tracking))
        return -EOPNOTSUPP;
    // mock_domain_alloc_paging(): 1 MiB pages for a MOCK_FLAGS_DEVICE_HUGE_IOVA
    // device, or on a unit configured with them for all.
    const bool huge = config_.huge_pages || endpoint.config().huge_iova;
    const Geometry geometry{{kApertureFirst, kApertureLast}, kIoPageSize | (huge ? kHugePageSize : 0)};
    auto domain = std::make_unique<RadixDomain<MockFormat>>(*this, request, geometry, tables_,
                                                            MockFormat{huge}, kLevels, "mock");
    if (int rc = domain->init())
        return rc;
    *out = std::move(domain);
    return 0;
}

// mock_domain_alloc_user() with a parent: the data type first, then the
// parent, then the data itself.
int MockUnit::alloc_nested_domain(const Endpoint&, Domain& parent, const UserData& data,
                                  std::unique_ptr<NestedDomain>* out)
{
    if (data.type != kHwptDataSelftest)
        return -EOPNOTSUPP;
    if (&parent.unit() != this || dynamic_cast<NestedDomain*>(&parent))
        return -EINVAL;
    return MockNestedDomain::create(*this, parent, data, out);
}

std::unique_ptr<Unit> create_mock_unit(const std::string& name, UnitParams& params,
                                       memory::PhysSpace& phys)
{
    MockConfig config;
    config.dirty_tracking = params.boolean("dirty_tracking").value_or(config.dirty_tracking);
    config.huge_pages = params.boolean("huge_pages").value_or(config.huge_pages);
    config.pasid_bits = static_cast<unsigned>(
        params.integer_in("pasid_bits", 0, 20).value_or(config.pasid_bits));
    return std::make_unique<MockUnit>(name, config, phys);
}

} // namespace ioasid::hw::mock
