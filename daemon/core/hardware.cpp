#include "hardware.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <set>
#include <stdexcept>

namespace ioasid::core {

Hardware::~Hardware() = default;

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
    return *devices_.back();
}

hw::Unit* Hardware::find_family(std::string_view family) const
{
    for (const auto& unit : units_)
        if (unit->family() == family)
            return unit.get();
    return nullptr;
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

EmulatedDevice& Hardware::add_runtime_device(hw::Unit& unit, std::string_view prefix, hw::EndpointConfig endpoint)
{
    std::lock_guard guard(lock_);
    std::string name;
    for (unsigned n = 0;; ++n) {
        name = std::string(prefix) + std::to_string(n);
        if (!runtime_.contains(name) && !find_device(name))
            break;
    }
    // The unit's endpoints change only here and in the topology, so this
    // lock keeps them still.
    std::set<std::uint32_t> rids;
    for (const auto& e : unit.endpoints())
        rids.insert(e->config().rid);
    std::uint32_t rid = 0;
    while (rids.contains(rid))
        ++rid;
    endpoint.name = name;
    endpoint.rid = rid;

    RuntimeDevice entry;
    entry.group = std::make_unique<DeviceGroup>(DeviceGroup{name, {}});
    entry.device = std::make_unique<EmulatedDevice>();
    EmulatedDevice& device = *entry.device;
    device.name = name;
    device.unit = &unit;
    device.endpoint = &unit.add_endpoint(std::move(endpoint));
    device.group = entry.group.get();
    device.runtime = true;
    entry.group->members.push_back(&device);
    runtime_.emplace(name, std::move(entry));
    return device;
}

void Hardware::remove_runtime_device(EmulatedDevice& device)
{
    std::lock_guard guard(lock_);
    auto it = runtime_.find(device.name);
    assert(it != runtime_.end() && it->second.device.get() == &device);
    assert(!bound_.contains(&device));
    if (it == runtime_.end())
        return;
    device.unit->remove_endpoint(*device.endpoint);
    group_owners_.erase(device.group);
    runtime_.erase(it);
}

void Hardware::for_each_device(const std::function<void(const EmulatedDevice&, const Context*)>& fn) const
{
    std::lock_guard guard(lock_);
    auto owner = [&](const EmulatedDevice& device) {
        auto it = bound_.find(&device);
        return it == bound_.end() ? nullptr : it->second;
    };
    for (const auto& device : devices_)
        fn(*device, owner(*device));
    for (const auto& [name, entry] : runtime_)
        fn(*entry.device, owner(*entry.device));
}

int Hardware::claim(EmulatedDevice& device, const Context& owner)
{
    std::lock_guard guard(lock_);
    Ownership& group = group_owners_[device.group];
    if (bound_.contains(&device) || (group.owner && group.owner != &owner))
        return -EBUSY;
    bound_.emplace(&device, &owner);
    group.owner = &owner;
    ++group.bound;
    return 0;
}

void Hardware::release(EmulatedDevice& device, const Context& owner)
{
    std::lock_guard guard(lock_);
    auto it = bound_.find(&device);
    assert(it != bound_.end() && it->second == &owner);
    if (it == bound_.end() || it->second != &owner)
        return;
    bound_.erase(it);
    auto group = group_owners_.find(device.group);
    assert(group != group_owners_.end());
    if (group != group_owners_.end() && --group->second.bound == 0)
        group_owners_.erase(group);
}

const Context* Hardware::owner_of(const EmulatedDevice& device) const
{
    std::lock_guard guard(lock_);
    auto it = bound_.find(&device);
    return it == bound_.end() ? nullptr : it->second;
}

} // namespace ioasid::core
