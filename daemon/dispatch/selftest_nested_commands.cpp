// IOMMU_TEST_CMD ops about nesting and page faults: MD_CHECK_IOTLB reads a
// mock nested domain's fake IOTLB, TRIGGER_IOPF makes a mock device send a
// PCIe page request.
#include <ioasid/iommufd.h>
#include <ioasid/selftest.h>

#include <cerrno>
#include <optional>

#include "core/device.h"
#include "core/fault.h"
#include "core/hw_pagetable.h"
#include "hwmodels/mock/mock_nested_domain.h"
#include "selftest_ops.h"

namespace ioasid::dispatch {

// iommufd_test_md_check_iotlb(): a nested HWPT of another kind than the
// mock's is EINVAL, anything else ENOENT.
int test_md_check_iotlb(Command& cmd, iommu_test_cmd& test)
{
    auto* hwpt = cmd.ctx.objects().find_as<core::HwptNested>(test.id);
    if (!hwpt)
        return -ENOENT;
    const auto* mock = dynamic_cast<const hw::mock::MockNestedDomain*>(&hwpt->domain());
    if (!mock)
        return -EINVAL;
    std::uint32_t value;
    if (int rc = mock->iotlb(test.check_iotlb.id, &value))
        return rc;
    return value == test.check_iotlb.iotlb ? 0 : -EINVAL;
}

// iommufd_test_trigger_iopf(): one request, the last of its group. Where
// no HWPT with a fault queue takes it, the mock answers it itself and the
// op still succeeds.
int test_trigger_iopf(Command& cmd, iommu_test_cmd& test)
{
    const auto& trigger = test.trigger_iopf;
    auto* device = cmd.ctx.objects().find_as<core::Device>(trigger.dev_id);
    if (!device)
        return -ENOENT;
    if (device->emulated().unit->family() != "mock")
        return -EINVAL;
    core::PageRequest request{
        .flags = IOMMU_PGFAULT_FLAGS_LAST_PAGE,
        .pasid = trigger.pasid,
        .grpid = trigger.grpid,
        .perm = trigger.perm,
        .addr = trigger.addr,
    };
    std::optional<std::uint32_t> pasid;
    if (trigger.pasid != 0) { // IOMMU_NO_PASID
        request.flags |= IOMMU_PGFAULT_FLAGS_PASID_VALID;
        pasid = trigger.pasid;
    }
    if (core::Hwpt* hwpt = device->fault_target(pasid); hwpt && hwpt->fault())
        hwpt->fault()->report(*device, request);
    return 0;
}

} // namespace ioasid::dispatch
