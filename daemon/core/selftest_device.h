// SELFTEST objects (the kernel's IOMMUFD_OBJ_SELFTEST of type TYPE_IDEV):
// a mock device made for IOMMU_TEST_OP_MOCK_DOMAIN, bound to the context
// as an ordinary DEVICE object and attached, living exactly as long as the
// selftest object. Destroying the object detaches and unbinds the device
// and takes it off the machine (iommufd_selftest_destroy()).
#pragma once

#include <cstdint>
#include <memory>

#include "context.h"
#include "device.h"
#include "hardware.h"
#include "object.h"

namespace ioasid::core {

// What MOCK_FLAGS_DEVICE_* ask of the new device.
struct MockDeviceFlags {
    bool no_dirty = false;  // no dirty-tracking capability
    bool huge_iova = false; // its domains take 1 MiB pages too
    bool pasid = false;     // MOCK_PASID_WIDTH PASID bits
};

// The PASID width of a MOCK_FLAGS_DEVICE_PASID device.
inline constexpr unsigned kMockPasidWidth = 20;

class SelftestDevice final : public Object {
public:
    static constexpr ObjectType kType = ObjectType::selftest;
    // Puts a new device behind `unit`; it is bound by bind().
    SelftestDevice(Context& ctx, hw::Unit& unit, const MockDeviceFlags& flags);
    ~SelftestDevice() override;

    [[nodiscard]] EmulatedDevice& emulated() const { return emulated_; }
    // The DEVICE object's id, 0 before bind().
    [[nodiscard]] std::uint32_t dev_id() const { return dev_id_; }
    // The bound device; nullptr before bind() or once the context's
    // teardown unbound it.
    [[nodiscard]] Device* device() const;

    // device_bind() of the new device; *dev_id gets its id.
    [[nodiscard]] int bind(std::uint32_t* dev_id);

private:
    Context& ctx_;
    EmulatedDevice& emulated_;
    std::uint32_t dev_id_ = 0;
    Device* device_ = nullptr;
};

// IOMMU_TEST_OP_MOCK_DOMAIN(_FLAGS), after its flags were decoded: a new
// mock device behind `unit`, bound (*dev_id) and attached to the IOAS or
// HWPT *pt_id (*pt_id gets the HWPT used), with errors as
// iommufd_test_mock_domain() gives them. On success *out holds the
// object; the caller publishes it once the client has learned the ids, or
// drops it, which undoes everything.
[[nodiscard]] int selftest_mock_domain(Context& ctx, hw::Unit& unit, const MockDeviceFlags& flags,
                                       std::uint32_t* pt_id, std::uint32_t* dev_id,
                                       std::unique_ptr<PendingObject<SelftestDevice>>* out);

// IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: moves the device of selftest object
// `stdev_id` to the IOAS or HWPT *pt_id (iommufd_device_replace()); *pt_id
// gets the HWPT used.
[[nodiscard]] int selftest_mock_domain_replace(Context& ctx, std::uint32_t stdev_id, std::uint32_t* pt_id);

} // namespace ioasid::core
