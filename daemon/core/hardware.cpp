#include "hardware.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <stdexcept>

namespace ioasid::core {

hw::Unit& Hardware::add_unit(std::unique_ptr<hw::Unit> unit)
{
    for (const auto& existing : units_)
        if (existing->name() == unit->name())
            throw std::invalid_argument("duplicate unit " + unit->name());
    units_.push_back(std::move(unit));
    return *units_.back();
}

EmulatedDevice& Hardware::add_device(const std::string& unit_name, hw::EndpointConfig endpoint,
                                     const std::string& group_name, bool pasid_only,
                                     std::string vfio_name)
{
    if (find_device(endpoint.name))
        throw std::invalid_argument("duplicate device " + endpoint.name);
    auto unit = std::find_if(units_.begin(), units_.end(),
                             [&](const auto& u) { return u->name() == unit_name; });
    if (unit == units_.end())
        throw std::invalid_argument("no unit " + unit_name);
    auto group = std::find_if(groups_.begin(), groups_.end(),
                              [&](const auto& g) { return g->name == group_name; });
    if (group == groups_.end()) {
        groups_.push_back(std::make_unique<DeviceGroup>(DeviceGroup{group_name, {}}));
        group_owners_.emplace_back();
        group = std::prev(groups_.end());
    } else if ((*group)->members.front()->unit != unit->get()) {
        throw std::invalid_argument("group " + group_name + " spans units");
    }
    auto device = std::make_unique<EmulatedDevice>();
    device->name = endpoint.name;
    device->vfio_name = std::move(vfio_name);
    device->unit = unit->get();
    device->endpoint = &(*unit)->add_endpoint(std::move(endpoint));
    device->group = group->get();
    device->pasid_only = pasid_only;
    (*group)->members.push_back(device.get());
    devices_.push_back(std::move(device));
    bound_.push_back(nullptr);
    return *devices_.back();
}

EmulatedDevice* Hardware::find_device(std::string_view name) const
{
    for (const auto& device : devices_)
        if (device->name == name)
            return device.get();
    return nullptr;
}

EmulatedDevice* Hardware::find_vfio(std::string_view vfio_name) const
{
    for (const auto& device : devices_)
        if (device->vfio_name == vfio_name)
            return device.get();
    return nullptr;
}

std::size_t Hardware::index_of(const EmulatedDevice& device) const
{
    auto it = std::find_if(devices_.begin(), devices_.end(),
                           [&](const auto& d) { return d.get() == &device; });
    assert(it != devices_.end());
    return static_cast<std::size_t>(it - devices_.begin());
}

std::size_t Hardware::index_of(const DeviceGroup& group) const
{
    auto it = std::find_if(groups_.begin(), groups_.end(),
                           [&](const auto& g) { return g.get() == &group; });
    assert(it != groups_.end());
    return static_cast<std::size_t>(it - groups_.begin());
}

int Hardware::claim(EmulatedDevice& device, const Context& owner)
{
    std::lock_guard guard(lock_);
    const Context*& bound = bound_[index_of(device)];
    Ownership& group = group_owners_[index_of(*device.group)];
    if (bound || (group.owner && group.owner != &owner))
        return -EBUSY;
    bound = &owner;
    group.owner = &owner;
    ++group.bound;
    return 0;
}

void Hardware::release(EmulatedDevice& device, const Context& owner)
{
    std::lock_guard guard(lock_);
    const Context*& bound = bound_[index_of(device)];
    assert(bound == &owner);
    if (bound != &owner)
        return;
    bound = nullptr;
    Ownership& group = group_owners_[index_of(*device.group)];
    if (--group.bound == 0)
        group.owner = nullptr;
}

const Context* Hardware::owner_of(const EmulatedDevice& device) const
{
    std::lock_guard guard(lock_);
    return bound_[index_of(device)];
}

} // namespace ioasid::core
