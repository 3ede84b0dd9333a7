#include "selftest_device.h"

#include <cassert>
#include <cerrno>

namespace ioasid::core {
namespace {

// The kernel names its mock devices iommufd_mock<ida number>.
constexpr std::string_view kMockDevicePrefix = "iommufd_mock";

hw::EndpointConfig endpoint_for(const MockDeviceFlags& flags)
{
    hw::EndpointConfig config;
    config.pasid_bits = flags.pasid ? kMockPasidWidth : 0;
    config.dirty_tracking = !flags.no_dirty;
    config.huge_iova = flags.huge_iova;
    return config;
}

} // namespace

SelftestDevice::SelftestDevice(Context& ctx, hw::Unit& unit, const MockDeviceFlags& flags)
    : Object(kType), ctx_(ctx),
      emulated_(ctx.services().hardware.add_runtime_device(unit, kMockDevicePrefix, endpoint_for(flags)))
{
}

SelftestDevice::~SelftestDevice()
{
    // Closing the file unbinds every device before this object goes (see
    // ~Context), and nothing else may unbind this one.
    if (device()) {
        int rc = ctx_.objects().destroy_owned(dev_id_);
        assert(rc == 0);
        (void)rc;
    }
    ctx_.services().hardware.remove_runtime_device(emulated_);
}

Device* SelftestDevice::device() const
{
    if (!dev_id_)
        return nullptr;
    // Ids are not handed out again while the context tears down, so an id
    // that still names this device's object is that object.
    Device* found = ctx_.objects().find_as<Device>(dev_id_);
    return found == device_ ? found : nullptr;
}

int SelftestDevice::bind(std::uint32_t* dev_id)
{
    assert(!dev_id_);
    if (int rc = device_bind(ctx_, emulated_, dev_id))
        return rc;
    dev_id_ = *dev_id;
    device_ = ctx_.objects().find_as<Device>(dev_id_);
    return 0;
}

int selftest_mock_domain(Context& ctx, hw::Unit& unit, const MockDeviceFlags& flags, std::uint32_t* pt_id,
                         std::uint32_t* dev_id, std::unique_ptr<PendingObject<SelftestDevice>>* out)
{
    // The selftest object's id comes first, then the device's, then an
    // automatic HWPT's, as iommufd_test_mock_domain() allocates them.
    auto pending = std::make_unique<PendingObject<SelftestDevice>>(
        ctx.objects(), std::make_unique<SelftestDevice>(ctx, unit, flags));
    if (!pending->id())
        return -EBUSY; // no id left, as xa_alloc() says
    if (int rc = (*pending)->bind(dev_id))
        return rc;
    if (int rc = device_attach(ctx, *dev_id, hw::kNoPasid, pt_id))
        return rc;
    *out = std::move(pending);
    return 0;
}

int selftest_mock_domain_replace(Context& ctx, std::uint32_t stdev_id, std::uint32_t* pt_id)
{
    auto* stdev = ctx.objects().find_as<SelftestDevice>(stdev_id);
    if (!stdev || !stdev->device())
        return -ENOENT;
    // iommufd_device_change_pt() looks the page table up first; only then
    // does iommufd_device_do_replace() refuse a device that is not attached.
    if (!stdev->device()->rid_hwpt()) {
        bool exists = false;
        ctx.objects().for_each([&](const Object& object) { exists |= object.id() == *pt_id; });
        return exists ? -EINVAL : -ENOENT;
    }
    return device_attach(ctx, stdev->dev_id(), hw::kNoPasid, pt_id);
}

} // namespace ioasid::core
