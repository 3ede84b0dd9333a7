// The emulated machine: IOMMU units and the devices behind them, built once
// from the topology and shared by every context. A device belongs to at
// most one context at a time, and so does its IOMMU group, as the kernel's
// DMA ownership has it.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hwmodels/common/unit.h"

namespace ioasid::core {

class Context;
struct DeviceGroup;

struct EmulatedDevice {
    std::string name;
    std::string vfio_name; // its node under /dev/vfio/devices/
    hw::Unit* unit = nullptr;
    hw::Endpoint* endpoint = nullptr;
    DeviceGroup* group = nullptr;
    bool pasid_only = false; // sends only PASID-tagged DMA

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

    // Building, before any client: names must be unique (std::invalid_argument).
    hw::Unit& add_unit(std::unique_ptr<hw::Unit> unit);
    EmulatedDevice& add_device(const std::string& unit_name, hw::EndpointConfig endpoint,
                               const std::string& group_name, bool pasid_only,
                               std::string vfio_name);

    [[nodiscard]] const std::vector<std::unique_ptr<hw::Unit>>& units() const { return units_; }
    [[nodiscard]] const std::vector<std::unique_ptr<EmulatedDevice>>& devices() const { return devices_; }
    [[nodiscard]] EmulatedDevice* find_device(std::string_view name) const;
    [[nodiscard]] EmulatedDevice* find_vfio(std::string_view vfio_name) const;

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

    std::vector<std::unique_ptr<hw::Unit>> units_;
    std::vector<std::unique_ptr<EmulatedDevice>> devices_;
    std::vector<std::unique_ptr<DeviceGroup>> groups_;

    // Taken inside a context's lock, never around one.
    mutable std::mutex lock_;
    std::vector<const Context*> bound_;     // per device, by index in devices_
    std::vector<Ownership> group_owners_;   // per group, by index in groups_
    [[nodiscard]] std::size_t index_of(const EmulatedDevice& device) const;
    [[nodiscard]] std::size_t index_of(const DeviceGroup& group) const;
};

} // namespace ioasid::core
