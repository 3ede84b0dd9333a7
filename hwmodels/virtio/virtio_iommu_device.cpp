#include "virtio_iommu_device.h"

#include <algorithm>
#include <cstring>
#include <iterator>

namespace ioasid::hw::virtio {
namespace {

template <std::size_t N>
bool all_zero(const std::uint8_t (&bytes)[N])
{
    return std::all_of(std::begin(bytes), std::end(bytes), [](std::uint8_t b) { return b == 0; });
}

template <typename Req>
Status finish(Req& req, Status status)
{
    req.tail.status = static_cast<std::uint8_t>(status);
    return status;
}

} // namespace

VirtioIommuDevice::VirtioIommuDevice(DeviceConfig config, std::function<bool(std::uint32_t)> endpoint_exists)
    : config_(std::move(config)), endpoint_exists_(std::move(endpoint_exists))
{
}

std::uint64_t VirtioIommuDevice::features() const
{
    std::uint64_t f = (1ULL << feature::kInputRange) | (1ULL << feature::kDomainRange) |
                      (1ULL << feature::kMapUnmap) | (1ULL << feature::kBypassConfig);
    if (config_.probe)
        f |= 1ULL << feature::kProbe;
    if (config_.mmio)
        f |= 1ULL << feature::kMmio;
    return f;
}

Config VirtioIommuDevice::config_space() const
{
    Config c{};
    c.page_size_mask = config_.page_size_mask;
    c.input_start = config_.input_start;
    c.input_end = config_.input_end;
    c.domain_start = config_.domain_start;
    c.domain_end = config_.domain_end;
    c.probe_size = config_.probe ? config_.probe_size : 0;
    c.bypass = config_.bypass;
    return c;
}

std::uint64_t VirtioIommuDevice::granule() const
{
    return config_.page_size_mask & (~config_.page_size_mask + 1);
}

bool VirtioIommuDevice::domain_in_range(std::uint32_t domain) const
{
    return domain >= config_.domain_start && domain <= config_.domain_end;
}

void VirtioIommuDevice::detach_locked(std::uint32_t endpoint)
{
    auto it = attached_.find(endpoint);
    if (it == attached_.end())
        return;
    auto domain = domains_.find(it->second);
    attached_.erase(it);
    // A domain ceases to exist, mappings and all, with its last endpoint.
    if (domain != domains_.end() && --domain->second.endpoints == 0)
        domains_.erase(domain);
}

Status VirtioIommuDevice::submit(ReqAttach& req)
{
    std::lock_guard guard(lock_);
    // The specification's MUSTs (INVAL for reserved bytes and unknown
    // flags, NOENT for an unknown endpoint) come before RANGE, which only
    // answers a driver that broke its own MUST NOT.
    if (!all_zero(req.reserved) || (req.flags & ~kAttachBypass))
        return finish(req, Status::inval);
    if (!endpoint_exists_(req.endpoint))
        return finish(req, Status::noent);
    if (!domain_in_range(req.domain))
        return finish(req, Status::range);
    const bool bypass = (req.flags & kAttachBypass) != 0;
    auto existing = domains_.find(req.domain);
    if (existing != domains_.end() && existing->second.bypass != bypass)
        return finish(req, Status::inval);
    auto current = attached_.find(req.endpoint);
    if (current != attached_.end() && current->second == req.domain)
        return finish(req, Status::ok);
    // Attaching elsewhere detaches first, as if the driver had sent DETACH.
    detach_locked(req.endpoint);
    DeviceDomain& domain = domains_[req.domain];
    domain.bypass = bypass;
    ++domain.endpoints;
    attached_[req.endpoint] = req.domain;
    return finish(req, Status::ok);
}

Status VirtioIommuDevice::submit(ReqDetach& req)
{
    std::lock_guard guard(lock_);
    // The reserved bytes are ignored, as the specification requires, and
    // an unknown endpoint is NOENT whatever the domain.
    if (!endpoint_exists_(req.endpoint))
        return finish(req, Status::noent);
    if (!domain_in_range(req.domain))
        return finish(req, Status::range);
    auto it = attached_.find(req.endpoint);
    if (it == attached_.end() || it->second != req.domain)
        return finish(req, Status::inval);
    detach_locked(req.endpoint);
    return finish(req, Status::ok);
}

Status VirtioIommuDevice::submit(ReqMap& req)
{
    std::lock_guard guard(lock_);
    if (!domain_in_range(req.domain))
        return finish(req, Status::range);
    const std::uint32_t known = kMapRead | kMapWrite | (config_.mmio ? kMapMmio : 0);
    if ((req.flags & ~known) || req.virt_end <= req.virt_start)
        return finish(req, Status::inval);
    const std::uint64_t mask = granule() - 1;
    if (((req.virt_start | req.phys_start | (req.virt_end + 1)) & mask) ||
        req.phys_start + (req.virt_end - req.virt_start) < req.phys_start)
        return finish(req, Status::range);
    if (req.virt_start < config_.input_start || req.virt_end > config_.input_end)
        return finish(req, Status::range);
    auto it = domains_.find(req.domain);
    if (it == domains_.end())
        return finish(req, Status::noent);
    DeviceDomain& domain = it->second;
    if (domain.bypass)
        return finish(req, Status::inval);
    // Mappings never overlap: only the one starting at or below virt_end
    // can reach into the new range.
    auto next = domain.mappings.upper_bound(req.virt_end);
    if (next != domain.mappings.begin() && std::prev(next)->second.last >= req.virt_start)
        return finish(req, Status::inval);
    for (const ResvRegion& r : config_.resv)
        if (r.start <= req.virt_end && r.end >= req.virt_start)
            return finish(req, Status::inval);
    domain.mappings.emplace_hint(next, req.virt_start, Mapping{req.virt_end, req.phys_start, req.flags});
    return finish(req, Status::ok);
}

Status VirtioIommuDevice::submit(ReqUnmap& req)
{
    std::lock_guard guard(lock_);
    if (!all_zero(req.reserved))
        return finish(req, Status::inval);
    if (!domain_in_range(req.domain))
        return finish(req, Status::range);
    if (req.virt_end < req.virt_start)
        return finish(req, Status::inval);
    auto it = domains_.find(req.domain);
    if (it == domains_.end())
        return finish(req, Status::noent);
    DeviceDomain& domain = it->second;
    if (domain.bypass)
        return finish(req, Status::inval);
    // The mappings touching the range: the one that starts below it and
    // reaches in, then those starting inside it.
    auto first = domain.mappings.lower_bound(req.virt_start);
    if (first != domain.mappings.begin() && std::prev(first)->second.last >= req.virt_start)
        --first;
    auto end = domain.mappings.upper_bound(req.virt_end);
    for (auto m = first; m != end; ++m)
        if (m->first < req.virt_start || m->second.last > req.virt_end)
            return finish(req, Status::range); // would split a mapping; nothing removed
    domain.mappings.erase(first, end);
    return finish(req, Status::ok);
}

Status VirtioIommuDevice::submit(const ReqProbe& req, std::span<std::byte> properties, ReqTail& tail) const
{
    if (!config_.probe)
        return Status::unsupp;
    auto done = [&](Status status) {
        tail.status = static_cast<std::uint8_t>(status);
        return status;
    };
    if (!endpoint_exists_(req.endpoint))
        return done(Status::noent);
    if (properties.size() < config_.probe_size)
        return done(Status::inval);
    std::memset(properties.data(), 0, properties.size());
    std::size_t at = 0;
    for (const ResvRegion& r : config_.resv) {
        if (properties.size() - at < sizeof(ProbeResvMem))
            break; // a configuration check keeps this from happening
        ProbeResvMem prop{};
        prop.head.type = kProbeResvMem;
        prop.head.length = sizeof(ProbeResvMem) - sizeof(ProbeProperty);
        prop.subtype = r.subtype;
        prop.start = r.start;
        prop.end = r.end;
        std::memcpy(properties.data() + at, &prop, sizeof(prop));
        at += sizeof(prop);
    }
    return done(Status::ok);
}

VirtioIommuDevice::Lookup VirtioIommuDevice::lookup_in(const DeviceDomain& domain, std::uint64_t iova) const
{
    if (domain.bypass)
        return {Lookup::Kind::bypass, iova, iova, iova, kMapRead | kMapWrite};
    auto it = domain.mappings.upper_bound(iova);
    if (it == domain.mappings.begin() || std::prev(it)->second.last < iova)
        return {Lookup::Kind::unmapped};
    --it;
    return {Lookup::Kind::mapped, it->first, it->second.last, it->second.phys, it->second.flags};
}

VirtioIommuDevice::Lookup VirtioIommuDevice::lookup_domain(std::uint32_t domain, std::uint64_t iova) const
{
    std::lock_guard guard(lock_);
    auto it = domains_.find(domain);
    if (it == domains_.end())
        return {Lookup::Kind::no_domain};
    return lookup_in(it->second, iova);
}

VirtioIommuDevice::Lookup VirtioIommuDevice::lookup_endpoint(std::uint32_t endpoint, std::uint64_t iova) const
{
    std::lock_guard guard(lock_);
    auto at = attached_.find(endpoint);
    if (at == attached_.end()) {
        if (config_.bypass)
            return {Lookup::Kind::bypass, iova, iova, iova, kMapRead | kMapWrite};
        return {Lookup::Kind::no_domain};
    }
    return lookup_in(domains_.at(at->second), iova);
}

void VirtioIommuDevice::for_each_mapping(
    std::uint32_t domain,
    const std::function<void(std::uint64_t, std::uint64_t, std::uint64_t, std::uint32_t)>& fn) const
{
    std::lock_guard guard(lock_);
    auto it = domains_.find(domain);
    if (it == domains_.end())
        return;
    for (const auto& [first, m] : it->second.mappings)
        fn(first, m.last, m.phys, m.flags);
}

bool VirtioIommuDevice::domain_exists(std::uint32_t domain) const
{
    std::lock_guard guard(lock_);
    return domains_.contains(domain);
}

} // namespace ioasid::hw::virtio
