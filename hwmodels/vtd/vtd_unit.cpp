#include "vtd_unit.h"

#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstring>

#include "vtd_domain.h"

namespace ioasid::hw::vtd {
namespace {

constexpr std::uint64_t kSize4K = 1ULL << 12;
constexpr std::uint64_t kSize2M = 1ULL << 21;
constexpr std::uint64_t kSize1G = 1ULL << 30;

// Leaf sizes either stage can have; the IOTLB probes each.
constexpr std::uint64_t kIotlbSizes = kSize4K | kSize2M | kSize1G;

// domain_super_pgsize_bitmap(): 4 KiB always, then 2 MiB, then 1 GiB.
std::uint64_t pgsize_bitmap(unsigned superpage_levels)
{
    std::uint64_t sizes = kSize4K;
    if (superpage_levels >= 1)
        sizes |= kSize2M;
    if (superpage_levels >= 2)
        sizes |= kSize1G;
    return sizes;
}

std::uint64_t max_address(unsigned width)
{
    return width >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << width) - 1;
}

std::uint32_t code(FaultCode c)
{
    return static_cast<std::uint32_t>(c);
}

} // namespace

VtdUnit::VtdUnit(std::string name, const VtdConfig& config, memory::PhysSpace& phys)
    : Unit(std::move(name), "vtd", unit_pasid_bits(build_registers(config)), kIotlbSizes),
      config_(config), regs_(build_registers(config)), levels_(static_cast<unsigned>(unit_agaw(regs_)) + 2),
      width_(domain_width(regs_)), tables_(phys)
{
}

bool VtdUnit::endpoint_dirty_tracking(const Endpoint& endpoint) const
{
    // The unit's part is intel_iommu_capable(IOMMU_CAP_DIRTY_TRACKING);
    // a device that cannot is our extension, as the selftest mock's
    // MOCK_FLAGS_DEVICE_NO_DIRTY is.
    return ssads_supported(regs_) && endpoint.config().dirty_tracking;
}

HwInfo VtdUnit::hw_info(const Endpoint& endpoint) const
{
    // intel_iommu_hw_info(): the cached registers verbatim, and the
    // erratum flag on every unit (6.12 sets it without looking at the
    // CPU model).
    iommu_hw_info_vtd vtd{};
    vtd.flags = IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17;
    vtd.cap_reg = regs_.cap;
    vtd.ecap_reg = regs_.ecap;
    HwInfo info;
    info.type = IOMMU_HW_INFO_TYPE_INTEL_VTD;
    info.data.resize(sizeof(vtd));
    std::memcpy(info.data.data(), &vtd, sizeof(vtd));
    // iommufd_get_hw_info(): DIRTY_TRACKING from the driver's capability,
    // the PASID width from dev->iommu->max_pasids, which is the device's
    // capped by the unit's 2 << PSS (dev_iommu_get_max_pasids()).
    if (endpoint_dirty_tracking(endpoint))
        info.capabilities |= IOMMU_HW_CAP_DIRTY_TRACKING;
    info.max_pasid_log2 = static_cast<std::uint8_t>(pasid_bits(endpoint));
    return info;
}

int VtdUnit::alloc_domain(const Endpoint& endpoint, const DomainRequest& request,
                          std::unique_ptr<Domain>* out)
{
    // 6.12's intel_iommu_domain_alloc_user() takes NEST_PARENT and
    // DIRTY_TRACKING; our uAPI has 6.15's IOMMU_HWPT_ALLOC_PASID as well,
    // which intel_iommu_domain_alloc_paging_flags() accepts and which
    // changes nothing in the domain. A unit without PASIDs cannot honour it.
    if (request.pasid && !pasid_supported(regs_))
        return -EOPNOTSUPP;
    if (request.nest_parent && !nested_supported(regs_))
        return -EOPNOTSUPP;
    // The driver checks ssads_supported(); iommufd_hwpt_paging_alloc()
    // first asks the device's IOMMU_CAP_DIRTY_TRACKING.
    if (request.dirty_tracking && !endpoint_dirty_tracking(endpoint))
        return -EOPNOTSUPP;

    // On 6.12 a domain allocated for userspace is always second stage:
    // paging_domain_alloc(dev, false), whatever the flags.
    // Its aperture is the unit's whole input width, its page sizes those
    // SLLPS gives.
    const Geometry geometry{{0, max_address(width_)}, pgsize_bitmap(superpage_levels(regs_, false))};
    SecondStageFormat format;
    format.superpage_levels = superpage_levels(regs_, false);
    // iommufd_hwpt_paging_alloc() enforces cache coherency on every new
    // domain of a device whose unit has ECAP.SC (intel_iommu_capable(
    // IOMMU_CAP_ENFORCE_CACHE_COHERENCY)); for a second-stage domain
    // without mappings the driver does it with SNP in each leaf
    // (domain_set_force_snooping(), intel_iommu_map()).
    format.snoop = ecap::SC.get(regs_.ecap) != 0;
    auto domain = std::make_unique<SecondStageDomain>(*this, request, geometry, tables_, format, levels_,
                                                      "vtd-second-stage");
    if (int rc = domain->init())
        return rc;
    *out = std::move(domain);
    return 0;
}

int VtdUnit::alloc_first_stage_domain(const Endpoint&, std::unique_ptr<Domain>* out)
{
    if (!sm_supported(regs_) || !ecap::FLTS.get(regs_.ecap))
        return -EOPNOTSUPP;
    // paging_domain_alloc(dev, true): a first-stage input must be
    // canonical, so the aperture stops below bit N-1; 2 MiB pages always,
    // 1 GiB with FL1GP. The depth is the unit's AGAW, which unit_agaw()
    // keeps to 4 or 5 levels when FLTS is on.
    const Geometry geometry{{0, max_address(width_ - 1)}, pgsize_bitmap(superpage_levels(regs_, true))};
    FirstStageFormat format;
    format.pages_1g = cap::FL1GP.get(regs_.cap) != 0;
    auto domain = std::make_unique<FirstStageDomain>(*this, DomainRequest{}, geometry, tables_, format, levels_,
                                                     "vtd-first-stage");
    if (int rc = domain->init())
        return rc;
    *out = std::move(domain);
    return 0;
}

int VtdUnit::check_attach(const Endpoint& endpoint, std::optional<std::uint32_t> pasid,
                          const Domain& domain) const
{
    // prepare_domain_attach_device(): the domain must fit the unit's
    // width. Only a domain of another unit can fail this here, and those
    // are refused below anyway; the rule is kept so it holds if that
    // changes.
    if (domain.geometry().aperture.last > max_address(width_))
        return -EINVAL;
    // The kernel would share a domain between VT-d units of compatible
    // width; ours invalidates only its own unit's IOTLB, so a domain stays
    // with its unit. iommufd then allocates a domain per unit, as it does
    // for units of different drivers.
    if (&domain.unit() != this)
        return -EINVAL;
    // prepare_domain_attach_device(): a dirty-tracking domain needs a unit
    // (and, our extension, a device) that can track.
    if (domain.request().dirty_tracking && !endpoint_dirty_tracking(endpoint))
        return -EINVAL;
    if (pasid) {
        // intel_iommu_set_dev_pasid(): the unit must do PASIDs, and a
        // dirty-tracking domain goes to the RID only.
        if (!pasid_supported(regs_))
            return -EOPNOTSUPP;
        // iommu_attach_device_pasid(): PASID 0 is the RID's
        // (IOMMU_NO_PASID), and a PASID-capable device takes PASIDs below
        // its width only.
        if (*pasid == 0)
            return -EINVAL;
        const unsigned bits = pasid_bits(endpoint);
        if (bits && (*pasid >> bits))
            return -EINVAL;
        if (domain.request().dirty_tracking)
            return -EINVAL;
    }
    return 0;
}

std::vector<Span> VtdUnit::reserved_regions(const Endpoint&) const
{
    // intel_iommu_get_resv_regions(): the RMRRs of the firmware's DMAR
    // table (we emulate none), 0..16 MiB for an ISA bridge with the floppy
    // workaround (none of our devices is one), and the interrupt window as
    // IOMMU_RESV_MSI for every device.
    return {kMsiWindow};
}

std::uint32_t VtdUnit::fault_code(FaultReason reason, Access access) const
{
    // Without knowing the domain: the second stage, which every iommufd
    // paging domain of 6.12 is.
    switch (reason) {
    case FaultReason::blocked:
        return code(FaultCode::pasid_entry_not_present);
    case FaultReason::pasid_range:
        return code(FaultCode::pasid_beyond_table);
    case FaultReason::address_size:
        return code(FaultCode::beyond_input_width);
    case FaultReason::not_present:
        return code(FaultCode::second_stage_not_present);
    case FaultReason::permission:
        return code(access == Access::write ? FaultCode::write_denied : FaultCode::read_denied);
    }
    return 0;
}

std::uint32_t VtdUnit::fault_code(const Fault& fault, const Endpoint& endpoint, const Domain* domain) const
{
    const FaultReason reason = fault.reason;
    const Access access = fault.access;
    const bool first_stage = dynamic_cast<const FirstStageDomain*>(domain) != nullptr;
    switch (reason) {
    case FaultReason::blocked:
        // A blocked RID, or a PASID nothing is attached to, has its PASID
        // table entry cleared (device_block_translation(),
        // intel_pasid_tear_down_entry()). A PASID whose directory entry
        // was never filled would report 0x51 instead; we keep no directory.
        return code(FaultCode::pasid_entry_not_present);
    case FaultReason::pasid_range:
        // The driver sets PASIDE in the context entry only for a device
        // with PASID enabled; for one with PASIDs the request is beyond
        // what its PASID table covers. (The directory covers PASIDs in
        // groups of 64 x 2^PDTS, so a real unit reports this only beyond
        // that rounding; below it the PASID entry is not present.)
        return code(pasid_bits(endpoint) ? FaultCode::pasid_beyond_table : FaultCode::pasid_not_enabled);
    case FaultReason::address_size:
        // First stage: the aperture is the canonical lower half; an address
        // above it is non-canonical, except an upper-half canonical one,
        // which would fault as not present in the empty upper half of the
        // top table.
        return code(first_stage ? FaultCode::non_canonical : FaultCode::beyond_input_width);
    case FaultReason::not_present:
        return code(first_stage ? FaultCode::first_stage_not_present : FaultCode::second_stage_not_present);
    case FaultReason::permission:
        // The same codes for both stages. A first-stage entry without U/S
        // would report 0x81; our format folds it into read/write denial.
        return code(access == Access::write ? FaultCode::write_denied : FaultCode::read_denied);
    }
    return 0;
}

std::unique_ptr<Unit> create_vtd_unit(const std::string& name, UnitParams& params, memory::PhysSpace& phys)
{
    VtdConfig config;
    // Ranges first, so that the casts are exact; check_config() then
    // rejects the values in range no unit has (address_width 40).
    config.address_width =
        static_cast<unsigned>(params.integer_in("address_width", 39, 57).value_or(config.address_width));
    config.dirty_tracking = params.boolean("dirty_tracking").value_or(config.dirty_tracking);
    config.pasid_bits =
        static_cast<unsigned>(params.integer_in("pasid_bits", 0, 20).value_or(config.pasid_bits));
    config.first_stage = params.boolean("first_stage").value_or(config.first_stage);
    // Nesting needs the first stage; left out, it follows first_stage so
    // that `first_stage = false` alone is a valid unit.
    config.nesting = params.boolean("nesting").value_or(config.first_stage);
    config.large_pages =
        static_cast<unsigned>(params.integer_in("large_pages", 0, 2).value_or(config.large_pages));
    if (auto problem = check_config(config))
        throw UnitParamError(params.where(problem->key) + ": " + problem->message);
    return std::make_unique<VtdUnit>(name, config, phys);
}

} // namespace ioasid::hw::vtd
