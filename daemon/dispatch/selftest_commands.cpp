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
    return ops;
}();

} // namespace

int test_command(Command& cmd, void* buf)
{
    auto& test = *static_cast<iommu_test_cmd*>(buf);
    // The kernel checks neither __reserved nor the tail of the union.
    if (test.op >= kTestOps.size() || !kTestOps[test.op])
        return -EOPNOTSUPP;
    return kTestOps[test.op](cmd, test);
}

} // namespace ioasid::dispatch
