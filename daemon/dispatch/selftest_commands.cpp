// IOMMU_TEST_CMD: the ioctl a kernel built with CONFIG_IOMMUFD_TEST answers,
// through which its selftests create mock devices and look at state that
// no ordinary ioctl shows. Every operation goes through the same core code
// real clients use; the checks read emulated state (our pins, our page
// tables) where the kernel reads struct page.
#include <ioasid/selftest.h>

#include <array>
#include <cerrno>

#include "selftest_ops.h"

namespace ioasid::dispatch {
namespace {

// Indexed by op. An entry left empty is an op this build does not know.
constexpr auto kTestOps = [] {
    std::array<TestOpHandler, IOMMU_TEST_OP_TRIGGER_IOPF + 1> ops{};
    ops[IOMMU_TEST_OP_ADD_RESERVED] = test_add_reserved;
    ops[IOMMU_TEST_OP_MOCK_DOMAIN] = test_mock_domain;
    ops[IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS] = test_mock_domain_flags;
    ops[IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE] = test_mock_domain_replace;
    ops[IOMMU_TEST_OP_MD_CHECK_MAP] = test_md_check_map;
    ops[IOMMU_TEST_OP_MD_CHECK_REFS] = test_md_check_refs;
    ops[IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT] = test_set_temp_memory_limit;
    ops[IOMMU_TEST_OP_DIRTY] = test_dirty;
    ops[IOMMU_TEST_OP_CREATE_ACCESS] = test_create_access;
    ops[IOMMU_TEST_OP_DESTROY_ACCESS_PAGES] = test_destroy_access_pages;
    ops[IOMMU_TEST_OP_ACCESS_PAGES] = test_access_pages;
    ops[IOMMU_TEST_OP_ACCESS_RW] = test_access_rw;
    ops[IOMMU_TEST_OP_ACCESS_REPLACE_IOAS] = test_access_replace_ioas;
    ops[IOMMU_TEST_OP_MD_CHECK_IOTLB] = test_md_check_iotlb;
    ops[IOMMU_TEST_OP_TRIGGER_IOPF] = test_trigger_iopf;
    return ops;
}();

} // namespace

int test_command(Command& cmd, void* buf)
{
    auto& test = *static_cast<iommu_test_cmd*>(buf);
    // A machine without a mock unit is a kernel without
    // CONFIG_IOMMUFD_TEST, which has no such ioctl. (That kernel answers
    // before reading the struct; here a bad struct pointer wins.)
    if (!cmd.ctx.services().hardware.find_family("mock"))
        return -ENOTTY;
    // The kernel checks neither __reserved nor the tail of the union.
    if (test.op >= kTestOps.size() || !kTestOps[test.op])
        return -EOPNOTSUPP;
    return kTestOps[test.op](cmd, test);
}

} // namespace ioasid::dispatch
