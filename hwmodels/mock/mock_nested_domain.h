// The selftest mock's nested domain (selftest.c's mock_iommu_domain_nested):
// no first-stage table at all, only four fake IOTLB words that the client
// sets at allocation (IOMMU_HWPT_DATA_SELFTEST) and clears with
// IOMMU_HWPT_INVALIDATE, which MD_CHECK_IOTLB then reads back.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "hwmodels/common/nested_domain.h"

namespace ioasid::hw::mock {

// Values of the selftest ABI (iommufd_test.h).
inline constexpr std::uint32_t kHwptDataSelftest = 0xdead;
inline constexpr std::uint32_t kInvalidateDataSelftest = 0xdeadbeef;
inline constexpr std::uint32_t kInvalidateFlagAll = 1U << 0;
inline constexpr std::size_t kNestedIotlbEntries = 4;

class MockNestedDomain final : public NestedDomain {
public:
    // `data` must be IOMMU_HWPT_DATA_SELFTEST: errors as
    // mock_domain_alloc_user() gives them for a nested domain.
    [[nodiscard]] static int create(Unit& unit, Domain& parent, const UserData& data,
                                    std::unique_ptr<NestedDomain>* out);
    MockNestedDomain(Unit& unit, Domain& parent, std::uint32_t iotlb);

    // -EINVAL for an entry past the last, as iommufd_test_md_check_iotlb().
    [[nodiscard]] int iotlb(std::uint32_t id, std::uint32_t* value) const;

    [[nodiscard]] int invalidate_user(UserDataArray& array) override;
    [[nodiscard]] bool first_stage_identity() const override { return true; }

    [[nodiscard]] Translation lookup(std::uint64_t iova) const override { return parent().lookup(iova); }
    void note_use(std::uint64_t iova, Access access) override { parent().note_use(iova, access); }
    [[nodiscard]] std::string_view format_name() const override { return "mock-nested"; }
    [[nodiscard]] std::uint64_t root_pa() const override { return parent().root_pa(); }
    [[nodiscard]] unsigned levels() const override { return parent().levels(); }
    void dump(const std::function<void(const DumpEntry&)>& fn) const override { parent().dump(fn); }

private:
    std::array<std::uint32_t, kNestedIotlbEntries> iotlb_;
};

} // namespace ioasid::hw::mock
