#include "mock_nested_domain.h"

#include <cerrno>

namespace ioasid::hw::mock {
namespace {

// struct iommu_hwpt_selftest and struct iommu_hwpt_invalidate_selftest.
struct HwptSelftest {
    std::uint32_t iotlb;
};
struct InvalidateSelftest {
    std::uint32_t flags;
    std::uint32_t iotlb_id;
};

} // namespace

int MockNestedDomain::create(Unit& unit, Domain& parent, const UserData& data,
                             std::unique_ptr<NestedDomain>* out)
{
    if (data.type != kHwptDataSelftest)
        return -EOPNOTSUPP;
    HwptSelftest config{};
    if (int rc = copy_user_struct(data, kHwptDataSelftest, std::as_writable_bytes(std::span(&config, 1)),
                                  sizeof(config)))
        return rc;
    *out = std::make_unique<MockNestedDomain>(unit, parent, config.iotlb);
    return 0;
}

MockNestedDomain::MockNestedDomain(Unit& unit, Domain& parent, std::uint32_t iotlb)
    : NestedDomain(unit, parent)
{
    iotlb_.fill(iotlb);
}

int MockNestedDomain::iotlb(std::uint32_t id, std::uint32_t* value) const
{
    if (id >= iotlb_.size())
        return -EINVAL;
    *value = iotlb_[id];
    return 0;
}

// mock_domain_cache_invalidate_user(): entries are applied one by one, so
// the ones before a bad entry stay done.
int MockNestedDomain::invalidate_user(UserDataArray& array)
{
    std::uint32_t processed = 0;
    int rc = 0;
    if (array.type != kInvalidateDataSelftest)
        rc = -EINVAL;
    for (std::uint32_t i = 0; !rc && i < array.entry_num; ++i) {
        InvalidateSelftest inv{};
        rc = copy_user_entry(array, kInvalidateDataSelftest, i, std::as_writable_bytes(std::span(&inv, 1)),
                             sizeof(inv));
        if (rc)
            break;
        if (inv.flags & ~kInvalidateFlagAll) {
            rc = -EOPNOTSUPP;
            break;
        }
        if (inv.iotlb_id >= iotlb_.size()) {
            rc = -EINVAL;
            break;
        }
        // FLAG_ALL ignores iotlb_id, though it was checked above.
        if (inv.flags & kInvalidateFlagAll)
            iotlb_.fill(0);
        else
            iotlb_[inv.iotlb_id] = 0;
        ++processed;
    }
    array.entry_num = processed;
    return rc;
}

} // namespace ioasid::hw::mock
