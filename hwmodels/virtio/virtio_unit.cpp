#include "virtio_unit.h"

#include <ioasid/iommufd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "virtio_domain.h"

namespace ioasid::hw::virtio {
namespace {

std::uint64_t granule_of(std::uint64_t mask)
{
    return mask & (~mask + 1);
}

std::uint64_t iotlb_sizes(const DeviceConfig& config)
{
    const std::uint64_t mask = config.page_size_mask;
    return granule_of(mask) | (mask & ((1ULL << 21) | (1ULL << 30)));
}

} // namespace

std::optional<ConfigProblem> check_config(const DeviceConfig& config)
{
    // The spec: at least one bit in page_size_mask; viommu_probe() fails
    // without one.
    if (config.page_size_mask == 0)
        return ConfigProblem{"page_size_mask", "page_size_mask must have at least one bit set"};
    if (config.input_start > config.input_end)
        return ConfigProblem{"input_end", "input_end must not be below input_start"};
    if (config.domain_start > config.domain_end)
        return ConfigProblem{"domain_end", "domain_end must not be below domain_start"};
    // An endpoint attached nowhere would reach every physical address; the
    // daemon never lets a client's device do that.
    if (config.bypass)
        return ConfigProblem{"bypass", "bypass = true is not supported: unattached endpoints stay blocked"};
    std::vector<ResvRegion> regions = config.resv;
    std::sort(regions.begin(), regions.end(),
              [](const ResvRegion& a, const ResvRegion& b) { return a.start < b.start; });
    for (std::size_t i = 0; i < regions.size(); ++i) {
        const char* key = regions[i].subtype == kResvMsi ? "msi_end" : "reserved_end";
        if (regions[i].end < regions[i].start)
            return ConfigProblem{key, std::string(key) + " must not be below the region's start"};
        // The spec: RESV_MEM properties of an endpoint do not overlap.
        if (i && regions[i].start <= regions[i - 1].end)
            return ConfigProblem{"reserved_start", "the reserved region overlaps the MSI region"};
    }
    if (config.probe && config.probe_size < config.resv.size() * sizeof(ProbeResvMem))
        return ConfigProblem{"probe_size", "probe_size must hold the RESV_MEM properties (" +
                                               std::to_string(config.resv.size() * sizeof(ProbeResvMem)) +
                                               " bytes)"};
    return std::nullopt;
}

VirtioUnit::VirtioUnit(std::string name, const DeviceConfig& config)
    : Unit(std::move(name), "virtio", 0, iotlb_sizes(config)),
      device_(config,
              [this](std::uint32_t id) {
                  for (const auto& endpoint : endpoints())
                      if (endpoint->config().rid == id)
                          return true;
                  return false;
              }),
      map_flags_(kMapRead | kMapWrite | (config.mmio ? kMapMmio : 0)),
      // The driver keeps the first id for its identity domain when the
      // device offers BYPASS_CONFIG (viommu_probe()), which ours does.
      first_id_(static_cast<std::uint64_t>(config.domain_start) + 1)
{
}

VirtioUnit::~VirtioUnit() = default;

HwInfo VirtioUnit::hw_info(const Endpoint&) const
{
    // No hw_info op: iommufd_get_hw_info() reports type NONE, no data;
    // viommu_capable() has no dirty tracking.
    return HwInfo{IOMMU_HW_INFO_TYPE_NONE, {}, 0, 0};
}

int VirtioUnit::alloc_domain(const Endpoint&, const DomainRequest& request, std::unique_ptr<Domain>* out)
{
    // iommufd_hwpt_paging_alloc(): no domain_alloc_user, so no flags.
    if (request.nest_parent || request.dirty_tracking || request.pasid)
        return -EOPNOTSUPP;
    const DeviceConfig& config = device_.device_config();
    if (granule_of(config.page_size_mask) > kGuestPageSize)
        return -ENODEV;
    std::uint32_t id = 0;
    {
        // ida_alloc_range(): the lowest free id of the range.
        std::lock_guard guard(driver_lock_);
        std::uint64_t candidate = first_id_;
        for (auto it = ids_.lower_bound(static_cast<std::uint32_t>(std::min<std::uint64_t>(candidate, UINT32_MAX)));
             it != ids_.end() && *it == candidate; ++it)
            ++candidate;
        if (candidate > config.domain_end)
            return -ENOSPC;
        id = static_cast<std::uint32_t>(candidate);
        ids_.insert(id);
    }
    const Geometry geometry{{config.input_start, config.input_end}, config.page_size_mask};
    *out = std::make_unique<VirtioDomain>(*this, request, geometry, id, map_flags_);
    return 0;
}

void VirtioUnit::release_domain_id(std::uint32_t id)
{
    std::lock_guard guard(driver_lock_);
    ids_.erase(id);
}

std::vector<Span> VirtioUnit::reserved_regions(const Endpoint& endpoint) const
{
    std::vector<Span> regions;
    bool msi = false;
    const DeviceConfig& config = device_.device_config();
    if (config.probe) {
        // viommu_probe_endpoint(): one PROBE, its properties walked until
        // NONE or the end of probe_size.
        ReqProbe req{};
        req.head.type = static_cast<std::uint8_t>(ReqType::probe);
        req.endpoint = endpoint.config().rid;
        std::vector<std::byte> properties(config.probe_size);
        ReqTail tail{};
        if (device_.submit(req, properties, tail) == Status::ok) {
            std::size_t cur = 0;
            while (cur + sizeof(ProbeProperty) <= properties.size()) {
                ProbeProperty head;
                std::memcpy(&head, properties.data() + cur, sizeof(head));
                const unsigned type = head.type & kProbeTypeMask;
                if (type == kProbeNone)
                    break;
                const std::size_t len = std::size_t{head.length} + sizeof(head);
                if (type == kProbeResvMem && len >= sizeof(ProbeResvMem) &&
                    cur + sizeof(ProbeResvMem) <= properties.size()) {
                    ProbeResvMem mem;
                    std::memcpy(&mem, properties.data() + cur, sizeof(mem));
                    // viommu_add_resv_mem(): an unknown subtype is RESERVED.
                    if (mem.end >= mem.start) {
                        msi |= mem.subtype == kResvMsi;
                        regions.push_back({mem.start, mem.end});
                    }
                }
                cur += len;
            }
        }
    }
    // viommu_get_resv_regions(): without an MSI region the driver maps
    // MSIs itself, in a software window.
    if (!msi)
        regions.push_back(kSwMsiWindow);
    std::sort(regions.begin(), regions.end(), [](const Span& a, const Span& b) { return a.first < b.first; });
    return regions;
}

std::uint32_t VirtioUnit::fault_code(FaultReason reason, Access access) const
{
    // The device knows the address and the access of every fault.
    const std::uint32_t flags = (access == Access::write ? kFaultWrite : kFaultRead) | kFaultAddress;
    switch (reason) {
    case FaultReason::blocked:
        return pack_fault(kFaultDomain, flags);
    case FaultReason::pasid_range: // the protocol has no PASIDs to name
        return pack_fault(kFaultUnknown, flags);
    case FaultReason::address_size: // outside input_range nothing can be mapped
    case FaultReason::not_present:
    case FaultReason::permission:
        return pack_fault(kFaultMapping, flags);
    }
    return 0;
}

void VirtioUnit::program_attachment(Endpoint& endpoint, std::optional<std::uint32_t> pasid, Domain* domain)
{
    if (pasid)
        return; // no PASIDs: check_attach() and alloc_domain() keep them out
    std::lock_guard guard(driver_lock_);
    auto it = attached_.find(&endpoint);
    VirtioDomain* old = it == attached_.end() ? nullptr : it->second;
    auto* next = static_cast<VirtioDomain*>(domain);
    if (old == next)
        return;
    if (next) {
        if (old)
            --old->endpoints_;
        ReqAttach req{};
        req.head.type = static_cast<std::uint8_t>(ReqType::attach);
        req.domain = next->id();
        req.endpoint = endpoint.config().rid;
        (void)device_.submit(req);
        if (next->endpoints_ == 0)
            (void)next->replay();
        ++next->endpoints_;
        attached_[&endpoint] = next;
    } else {
        ReqDetach req{};
        req.head.type = static_cast<std::uint8_t>(ReqType::detach);
        req.domain = old->id();
        req.endpoint = endpoint.config().rid;
        (void)device_.submit(req);
        --old->endpoints_;
        attached_.erase(it);
    }
}

std::unique_ptr<Unit> create_virtio_unit(const std::string& name, UnitParams& params, memory::PhysSpace&)
{
    DeviceConfig config;
    constexpr std::int64_t kMax = INT64_MAX;
    auto u64 = [&](const char* key, std::uint64_t fallback, std::int64_t min = 0) {
        return static_cast<std::uint64_t>(params.integer_in(key, min, kMax).value_or(static_cast<std::int64_t>(fallback)));
    };
    if (auto mask = params.integer_in("page_size_mask", 1, kMax))
        config.page_size_mask = static_cast<std::uint64_t>(*mask);
    config.input_start = u64("input_start", config.input_start);
    if (auto end = params.integer_in("input_end", 0, kMax))
        config.input_end = static_cast<std::uint64_t>(*end);
    config.domain_start =
        static_cast<std::uint32_t>(params.integer_in("domain_start", 0, UINT32_MAX).value_or(config.domain_start));
    config.domain_end =
        static_cast<std::uint32_t>(params.integer_in("domain_end", 0, UINT32_MAX).value_or(config.domain_end));
    config.probe = params.boolean("probe").value_or(config.probe);
    config.probe_size =
        static_cast<std::uint32_t>(params.integer_in("probe_size", 0, 1 << 16).value_or(config.probe_size));
    config.mmio = params.boolean("mmio").value_or(config.mmio);
    config.bypass = params.boolean("bypass").value_or(false) ? 1 : 0;

    config.resv.clear();
    if (params.boolean("msi").value_or(true))
        config.resv.push_back({kResvMsi, u64("msi_start", 0xfee00000), u64("msi_end", 0xfeefffff)});
    auto reserved_start = params.integer_in("reserved_start", 0, kMax);
    auto reserved_end = params.integer_in("reserved_end", 0, kMax);
    if (reserved_start.has_value() != reserved_end.has_value())
        throw UnitParamError(params.where(reserved_start ? "reserved_start" : "reserved_end") +
                             ": reserved_start and reserved_end go together");
    if (reserved_start)
        config.resv.push_back({kResvReserved, static_cast<std::uint64_t>(*reserved_start),
                               static_cast<std::uint64_t>(*reserved_end)});
    if (auto problem = check_config(config))
        throw UnitParamError(params.where(problem->key) + ": " + problem->message);
    return std::make_unique<VirtioUnit>(name, config);
}

} // namespace ioasid::hw::virtio
