#include "amd_unit.h"

#include <ioasid/iommufd.h>

#include <bit>
#include <cerrno>
#include <cstring>

#include "amd_device_table.h"
#include "amd_v1_domain.h"
#include "amd_v2_domain.h"

namespace ioasid::hw::amd {
namespace {

// Every leaf size a v1 or v2 table can hold; the IOTLB probes each.
constexpr std::uint64_t kIotlbSizes = ((1ULL << 52) - 1) & ~((1ULL << 12) - 1);
constexpr std::uint64_t kPageMask = ~0xfffULL;

// The second dword of an event-log record. Bits 15:0 name the DomainID
// or the PASID, depending on the event type.
std::uint32_t event(EventCode code, std::uint32_t flags, std::uint32_t id)
{
    return static_cast<std::uint32_t>(code) << 28 | (flags & 0xfff) << 16 | (id & 0xffff);
}

bool is_v2(const Domain* domain)
{
    return dynamic_cast<const V2Domain*>(domain) != nullptr;
}

} // namespace

AmdUnit::AmdUnit(std::string name, const AmdConfig& config, memory::PhysSpace& phys)
    : Unit(std::move(name), "amd", pasid_supported(build_registers(config)) ? config.pasid_bits : 0, kIotlbSizes),
      config_(config), regs_(build_registers(config)), tables_(phys), structures_(phys)
{
}

AmdUnit::~AmdUnit()
{
    for (auto& [id, device] : devices_)
        free_gcr3(device);
}

bool AmdUnit::endpoint_dirty_tracking(const Endpoint& endpoint) const
{
    // The unit's part is amd_iommu_capable(IOMMU_CAP_DIRTY_TRACKING), which
    // is EFR.HDSup; a device that cannot is our extension, as the selftest
    // mock's MOCK_FLAGS_DEVICE_NO_DIRTY is.
    return hd_supported(regs_) && endpoint.config().dirty_tracking;
}

std::uint32_t AmdUnit::max_pasids(const Endpoint& endpoint) const
{
    // amd_iommu_probe_device(): the unit's 2^(PASmax + 1) - 1 capped by
    // what the device's PASID capability offers, when the driver does
    // PASIDs at all. The core's dev->iommu->max_pasids is the same value.
    const unsigned bits = endpoint.config().pasid_bits;
    if (!pasid_supported(regs_) || bits == 0)
        return 0;
    const std::uint64_t device = std::uint64_t{1} << bits;
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(device, unit_max_pasids(regs_)));
}

unsigned AmdUnit::gcr3_levels(const Endpoint& endpoint) const
{
    // get_gcr3_levels() of init_gcr3_table(): enough 9-bit levels for the
    // device's PASIDs (one table for a device without any).
    const std::uint32_t pasids = std::max<std::uint32_t>(max_pasids(endpoint), 1);
    const unsigned order = static_cast<unsigned>(std::bit_width(pasids - 1));
    return order ? (order + 8) / 9 - 1 : 0;
}

HwInfo AmdUnit::hw_info(const Endpoint& endpoint) const
{
    iommu_hw_info_amd amd{};
    amd.efr = regs_.efr;
    amd.efr2 = regs_.efr2;
    HwInfo info;
    info.type = IOMMU_HW_INFO_TYPE_AMD;
    info.data.resize(sizeof(amd));
    std::memcpy(info.data.data(), &amd, sizeof(amd));
    if (endpoint_dirty_tracking(endpoint))
        info.capabilities |= IOMMU_HW_CAP_DIRTY_TRACKING;
    // iommufd_get_hw_info(): ilog2(max_pasids). The unit's count is one
    // short of a power of two, so a device at least as wide as the unit
    // reports one bit less than the unit's width.
    if (const std::uint32_t pasids = max_pasids(endpoint))
        info.max_pasid_log2 = static_cast<std::uint8_t>(std::bit_width(pasids) - 1);
    return info;
}

int AmdUnit::alloc_domain(const Endpoint& endpoint, const DomainRequest& request, std::unique_ptr<Domain>* out)
{
    // amd_iommu_domain_alloc_user() takes DIRTY_TRACKING and nothing else:
    // no nest parent, no PASID flag.
    if (request.nest_parent || request.pasid)
        return -EOPNOTSUPP;
    // do_iommu_domain_alloc(): dirty tracking needs EFR.HDSup.
    if (request.dirty_tracking && !endpoint_dirty_tracking(endpoint))
        return -EOPNOTSUPP;
    auto domain = std::make_unique<V1Domain>(*this, request, tables_, host_levels(regs_));
    if (int rc = domain->init())
        return rc;
    *out = std::move(domain);
    return 0;
}

int AmdUnit::alloc_first_stage_domain(const Endpoint&, std::unique_ptr<Domain>* out)
{
    // early_amd_iommu_init() falls back to v1 without EFR.GTSup.
    if (!efr::GTSup.get(regs_.efr))
        return -EOPNOTSUPP;
    auto domain = std::make_unique<V2Domain>(*this, tables_, guest_levels(regs_));
    if (int rc = domain->init())
        return rc;
    *out = std::move(domain);
    return 0;
}

int AmdUnit::check_attach(const Endpoint& endpoint, std::optional<std::uint32_t> pasid, const Domain& domain) const
{
    const bool v2 = is_v2(&domain);
    if (pasid) {
        // iommu_attach_device_pasid(): a v1 domain has no set_dev_pasid
        // op on 6.12; only an SVA (here: v2) domain goes to a PASID.
        if (!v2)
            return -EOPNOTSUPP;
        if (&domain.unit() != this || *pasid == 0)
            return -EINVAL;
        // iommu_sva_set_dev_pasid(): is_pasid_valid() wants 0 < pasid <
        // max_pasids, and is_pasid_enabled() a RID domain that set up the
        // device's GCR3 table, which only a v2 domain does
        // (pdom_is_sva_capable()).
        if (*pasid >= max_pasids(endpoint))
            return -EINVAL;
        if (!is_v2(attached(endpoint, std::nullopt)))
            return -EINVAL;
        return 0;
    }
    // A domain stays with its unit: ours invalidates only its own IOTLB.
    if (&domain.unit() != this)
        return -EINVAL;
    // amd_iommu_attach_device(): a dirty-tracking domain needs HDSup.
    if (domain.request().dirty_tracking && !endpoint_dirty_tracking(endpoint))
        return -EINVAL;
    // setup_gcr3_table(): the table must fit what GLXSup allows.
    if (v2 && gcr3_levels(endpoint) > max_glx(regs_))
        return -EINVAL;
    return 0;
}

std::vector<Span> AmdUnit::reserved_regions(const Endpoint&) const
{
    // amd_iommu_get_resv_regions(): the IVRS unity ranges (we emulate
    // none), the MSI window as IOMMU_RESV_MSI and the HyperTransport range
    // as IOMMU_RESV_RESERVED.
    return {kMsiWindow, kHyperTransport};
}

std::uint32_t AmdUnit::fault_code(FaultReason reason, Access access) const
{
    const std::uint32_t rw = access == Access::write ? event_flag::kWrite : 0;
    switch (reason) {
    case FaultReason::blocked:
        // A cleared DTE (clear_dte_entry()) keeps V and TV but drops IR
        // and IW: the access is denied by the entry itself.
        return event(EventCode::io_page_fault, rw | event_flag::kPermission, 0);
    case FaultReason::permission:
        return event(EventCode::io_page_fault, rw | event_flag::kPresent | event_flag::kPermission, 0);
    case FaultReason::pasid_range:
    case FaultReason::address_size:
    case FaultReason::not_present:
        return event(EventCode::io_page_fault, rw, 0);
    }
    return 0;
}

std::uint32_t AmdUnit::fault_code(const Fault& fault, const Endpoint&, const Domain* domain) const
{
    const FaultReason reason = fault.reason;
    const Access access = fault.access;
    const std::uint32_t rw = access == Access::write ? event_flag::kWrite : 0;
    // 6.12 grows a v1 table to six levels whatever EFR.HATS says; a DTE
    // whose Mode the hardware cannot walk is an illegal entry. That record
    // has no DomainID: bits 15:0 are the request's PASID (the driver's
    // amd_iommu_print_event() prints them as "pasid"), and only a request
    // without one reaches a v1 table.
    if (auto* v1 = dynamic_cast<const V1Domain*>(domain); v1 && !v1->walkable())
        return event(EventCode::illegal_dev_table_entry, rw, fault.pasid.value_or(0));
    const std::uint32_t code = fault_code(reason, access);
    return domain ? code | (domain->tag() & 0xffff) : code;
}

void AmdUnit::program_attachment(Endpoint& endpoint, std::optional<std::uint32_t> pasid, Domain* domain)
{
    std::lock_guard guard(dte_lock_);
    DeviceState& device = devices_[endpoint.config().rid];
    if (pasid) {
        // amd_iommu_set_gcr3() / amd_iommu_clear_gcr3(): the PASID's GCR3
        // entry gets the v2 root, or is cleared. check_attach() made sure
        // a table exists for an attach.
        if (!device.gcr3)
            return;
        if (std::uint64_t* slot = gcr3_slot(device, *pasid, domain != nullptr))
            *slot = domain ? (domain->root_pa() & kPageMask) | dte::kGcr3Valid : 0;
        return;
    }
    // amd_iommu_attach_device() leaves a device on the same domain alone.
    if (device.rid == domain)
        return;
    // detach_device() frees the GCR3 table of the old domain, with what the
    // PASIDs had in it; attach_device() sets up a fresh one for a v2
    // domain, its entry 0 the domain's root (init_gcr3_table()).
    free_gcr3(device);
    device.rid = domain;
    if (is_v2(domain)) {
        if (auto root = structures_.alloc()) {
            device.gcr3 = *root;
            device.glx = gcr3_levels(endpoint);
            if (std::uint64_t* slot = gcr3_slot(device, 0, true))
                *slot = (domain->root_pa() & kPageMask) | dte::kGcr3Valid;
        }
    }
}

std::uint64_t* AmdUnit::gcr3_slot(const DeviceState& device, std::uint32_t pasid, bool alloc)
{
    // __get_gcr3_pte(): 9 PASID bits per level, the top level first.
    std::uint64_t table = device.gcr3;
    for (unsigned level = device.glx; level > 0; --level) {
        std::uint64_t& entry = structures_.entries(table)[(pasid >> (9 * level)) & 0x1ff];
        if (!(entry & dte::kGcr3Valid)) {
            if (!alloc)
                return nullptr;
            auto next = structures_.alloc();
            if (!next)
                return nullptr;
            entry = *next | dte::kGcr3Valid;
        }
        table = entry & dte::kRootMask;
    }
    return structures_.entries(table) + (pasid & 0x1ff);
}

void AmdUnit::free_gcr3_level(std::uint64_t table, unsigned level)
{
    if (level > 0) {
        const std::uint64_t* entries = structures_.entries(table);
        for (unsigned i = 0; i < 512; ++i)
            if (entries[i] & dte::kGcr3Valid)
                free_gcr3_level(entries[i] & dte::kRootMask, level - 1);
    }
    structures_.free(table);
}

void AmdUnit::free_gcr3(DeviceState& device)
{
    if (device.gcr3)
        free_gcr3_level(device.gcr3, device.glx);
    device.gcr3 = 0;
    device.glx = 0;
}

std::array<std::uint64_t, 4> AmdUnit::dte(std::uint32_t device_id) const
{
    // What set_dte_entry() writes for the device's domain, or what
    // clear_dte_entry() (and, before any attach, the driver's initial
    // table) leaves: V and TV, nothing translating. The driver rewrites
    // the entry whenever the domain's root and mode change
    // (increase_address_space()) or dirty tracking flips HAD
    // (amd_iommu_set_dirty_tracking()), so it is composed here from the
    // state those update.
    std::lock_guard guard(dte_lock_);
    std::array<std::uint64_t, 4> q{dte::kValid | dte::kTranslationValid, 0, 0, 0};
    auto it = devices_.find(device_id);
    if (it == devices_.end() || !it->second.rid)
        return q;
    const DeviceState& device = it->second;
    const Domain& domain = *device.rid;
    q[0] |= dte::kRead | dte::kWrite;
    if (auto* v1 = dynamic_cast<const V1Domain*>(&domain)) {
        q[0] |= (v1->root_pa() & dte::kRootMask) | std::uint64_t{v1->mode()} << dte::kModeShift;
        if (v1->dirty_tracking())
            q[0] |= dte::kHostAccessDirty;
    }
    if (device.gcr3) {
        // A v2 domain sits behind the GCR3 table with Mode 0: no host
        // translation below it.
        q[0] |= dte::kGuestValid | std::uint64_t{device.glx} << dte::kGlxShift |
                ((device.gcr3 >> 12) & 0x7) << dte::kGcr3AShift;
        if (is_v2(&domain))
            q[0] |= dte::kGuestIo;
        q[1] |= ((device.gcr3 >> 15) & 0xffff) << dte::kGcr3BShift | ((device.gcr3 >> 31) & 0x1fffff)
                                                                         << dte::kGcr3CShift;
        if (guest_levels(regs_) == 5)
            q[2] |= dte::kGuestPaging5;
    }
    // The DomainID tags the unit's IOTLB entries, which ours does with the
    // domain's tag. (With a GCR3 table 6.12 uses an ID of its own per
    // device; we keep the domain's.)
    q[1] |= domain.tag() & dte::kDomainIdMask;
    return q;
}

std::uint64_t AmdUnit::gcr3_entry(std::uint32_t device_id, std::uint32_t pasid) const
{
    std::lock_guard guard(dte_lock_);
    auto it = devices_.find(device_id);
    if (it == devices_.end() || !it->second.gcr3)
        return 0;
    std::uint64_t table = it->second.gcr3;
    for (unsigned level = it->second.glx; level > 0; --level) {
        const std::uint64_t entry = structures_.entries(table)[(pasid >> (9 * level)) & 0x1ff];
        if (!(entry & dte::kGcr3Valid))
            return 0;
        table = entry & dte::kRootMask;
    }
    return structures_.entries(table)[pasid & 0x1ff];
}

std::unique_ptr<Unit> create_amd_unit(const std::string& name, UnitParams& params, memory::PhysSpace& phys)
{
    AmdConfig config;
    config.levels = static_cast<unsigned>(params.integer_in("levels", 4, 6).value_or(config.levels));
    config.dirty_tracking = params.boolean("dirty_tracking").value_or(config.dirty_tracking);
    config.guest_translation = params.boolean("guest_translation").value_or(config.guest_translation);
    config.guest_levels =
        static_cast<unsigned>(params.integer_in("guest_levels", 4, 5).value_or(config.guest_levels));
    // Left out, the PASID width follows guest_translation, so that
    // `guest_translation = false` alone is a valid unit.
    config.pasid_bits = static_cast<unsigned>(
        params.integer_in("pasid_bits", 0, 16).value_or(config.guest_translation ? 16 : 0));
    if (auto problem = check_config(config))
        throw UnitParamError(params.where(problem->key) + ": " + problem->message);
    return std::make_unique<AmdUnit>(name, config, phys);
}

} // namespace ioasid::hw::amd
