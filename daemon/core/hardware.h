// The emulated machine: IOMMU units and the devices behind them, built
// from the topology and shared by every context. A device belongs to at
// most one context at a time, and so does its IOMMU group, as the kernel's
// DMA ownership has it.
//
// The topology's devices stay for the daemon's life. Devices made at run
// time (the selftest's mock devices, IOMMU_TEST_OP_MOCK_DOMAIN) come and go
// with the object that made them: each gets its own group and RID, no VFIO
// node, and no name that find_device() or find_vfio() answers to, so that
// nothing but its maker can reach it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hwmodels/common/unit.h"

namespace ioasid::core {

class Context;
struct DeviceGroup;

struct EmulatedDevice {
    std::string name;
    std::string vfio_name; // its node under /dev/vfio/devices/; empty: none
    hw::Unit* unit = nullptr;
    hw::Endpoint* endpoint = nullptr;
    DeviceGroup* group = nullptr;
    bool pasid_only = false; // sends only PASID-tagged DMA
    bool runtime = false;    // made at run time, not by the topology

    [[nodiscard]] unsigned pasid_bits() const { return unit->pasid_bits(*endpoint); }
};

struct DeviceGroup {
    std::string name;
    std::vector<EmulatedDevice*> members;
};

class Hardware {
public:
    Hardware() = default;
    Hardware(const Hardware&) = delete;
    Hardware& operator=(const Hardware&) = delete;
    ~Hardware();

    // Building, before any client: names must be unique (std::invalid_argument).
    hw::Unit& add_unit(std::unique_ptr<hw::Unit> unit);
    EmulatedDevice& add_device(const std::string& unit_name, hw::EndpointConfig endpoint,
                               const std::string& group_name, bool pasid_only,
                               std::string vfio_name);

    [[nodiscard]] const std::vector<std::unique_ptr<hw::Unit>>& units() const { return units_; }
    // The first unit of `family`, or nullptr.
    [[nodiscard]] hw::Unit* find_family(std::string_view family) const;
    // The topology's devices.
    [[nodiscard]] const std::vector<std::unique_ptr<EmulatedDevice>>& devices() const { return devices_; }
    [[nodiscard]] EmulatedDevice* find_device(std::string_view name) const;
    [[nodiscard]] EmulatedDevice* find_vfio(std::string_view vfio_name) const;

    // A device made now behind `unit`, named `prefix` and the lowest number
    // no other run-time device of that prefix has (the kernel's ida), with
    // the lowest RID free on the unit. endpoint.name and endpoint.rid are
    // chosen here.
    EmulatedDevice& add_runtime_device(hw::Unit& unit, std::string_view prefix, hw::EndpointConfig endpoint);
    // Takes a run-time device away; it must be bound to no context.
    void remove_runtime_device(EmulatedDevice& device);

    // Every device, topology first, with the context it is bound to (or
    // nullptr), while none can come or go.
    void for_each_device(const std::function<void(const EmulatedDevice&, const Context*)>& fn) const;

    // DMA ownership. claim() gives -EBUSY when the device is bound, or its
    // group is owned by another context.
    [[nodiscard]] int claim(EmulatedDevice& device, const Context& owner);
    void release(EmulatedDevice& device, const Context& owner);
    // The context a device is bound to, or nullptr; for reports.
    [[nodiscard]] const Context* owner_of(const EmulatedDevice& device) const;

private:
    struct Ownership {
        const Context* owner = nullptr;
        unsigned bound = 0; // members bound by the owner
    };
    struct RuntimeDevice {
        std::unique_ptr<EmulatedDevice> device;
        std::unique_ptr<DeviceGroup> group;
    };

    std::vector<std::unique_ptr<hw::Unit>> units_;
    std::vector<std::unique_ptr<EmulatedDevice>> devices_;
    std::vector<std::unique_ptr<DeviceGroup>> groups_;

    // Taken inside a context's lock, never around one; a unit's lock nests
    // inside it.
    mutable std::mutex lock_;
    std::map<std::string, RuntimeDevice, std::less<>> runtime_; // by name
    std::unordered_map<const EmulatedDevice*, const Context*> bound_;
    std::unordered_map<const DeviceGroup*, Ownership> group_owners_;
};

} // namespace ioasid::core
