#include "tce_unit.h"

#include <ioasid/iommufd.h>

#include <bit>
#include <cerrno>

#include "tce_domain.h"

namespace ioasid::hw::ppc_tce {
namespace {

// POWERNV_IOMMU_DEFAULT_LEVELS and POWERNV_IOMMU_MAX_LEVELS.
constexpr unsigned kDefaultLevels = 2;
constexpr unsigned kMaxLevels = 5;

unsigned levels_needed(const WindowConfig& window)
{
    return (window.entries_shift() + kLevelBits - 1) / kLevelBits;
}

std::optional<ConfigProblem> check_window(const WindowConfig& w, const std::string& prefix)
{
    auto problem = [&](const char* key, const std::string& message) {
        return ConfigProblem{prefix + key, prefix + key + " " + message};
    };
    // pnv_ioda_parse_tce_sizes(): a POWER9 PHB without
    // ibm,supported-tce-sizes offers 4 KiB and 64 KiB.
    if (w.page_shift != 12 && w.page_shift != 16)
        return problem("page_shift", "must be 12 or 16 (4 KiB or 64 KiB TCEs)");
    // pnv_pci_ioda2_table_alloc_pages() takes power-of-two windows only.
    if (w.size == 0 || !std::has_single_bit(w.size) || w.size < w.page_size())
        return problem("size", "must be a power of two no smaller than the TCE page");
    if (w.base & (w.page_size() - 1))
        return problem("base", "must be a multiple of the TCE page");
    if (w.base + (w.size - 1) < w.base)
        return problem("size", "runs past the end of the address space");
    if (w.levels < 1 || w.levels > kMaxLevels)
        return problem("levels", "must be between 1 and 5");
    // Each level is one 4 KiB page of 512 TCEs here, so it takes 9 index
    // bits; the kernel's own limit on the levels' reach follows.
    if (w.levels < levels_needed(w))
        return problem("levels", "must be at least " + std::to_string(levels_needed(w)) +
                                     ": each level holds 512 TCEs");
    if (kLevelBits * w.levels + w.page_shift >= 55)
        return problem("levels", "reaches 2^55 bytes or more, which pnv_pci_ioda2_table_alloc_pages() refuses");
    return std::nullopt;
}

std::uint32_t code(FaultCode c)
{
    return static_cast<std::uint32_t>(c);
}

} // namespace

std::optional<ConfigProblem> check_config(const TceConfig& config)
{
    if (auto problem = check_window(config.dma32, "dma32_"))
        return problem;
    if (auto problem = check_window(config.dma64, "dma64_"))
        return problem;
    if (config.dma32.last() >= config.dma64.base)
        return ConfigProblem{"dma64_base", "dma64_base must lie above the 32-bit window"};
    return std::nullopt;
}

TceUnit::TceUnit(std::string name, const TceConfig& config, memory::PhysSpace& phys)
    : Unit(std::move(name), "ppc_tce", 0, config.dma32.page_size() | config.dma64.page_size()),
      config_(config), tables_(phys)
{
}

HwInfo TceUnit::hw_info(const Endpoint&) const
{
    // iommufd_get_hw_info() for a driver without a hw_info op: type NONE,
    // no data; spapr_tce_iommu_capable() has no dirty tracking.
    return HwInfo{IOMMU_HW_INFO_TYPE_NONE, {}, 0, 0};
}

int TceUnit::alloc_domain(const Endpoint&, const DomainRequest& request, std::unique_ptr<Domain>* out)
{
    // iommufd_hwpt_paging_alloc(): a driver without domain_alloc_user
    // takes no allocation flags at all.
    if (request.nest_parent || request.dirty_tracking || request.pasid)
        return -EOPNOTSUPP;
    auto domain = std::make_unique<TceDomain>(*this, request, tables_, config_.dma32, config_.dma64);
    if (int rc = domain->init())
        return rc;
    *out = std::move(domain);
    return 0;
}

std::vector<Span> TceUnit::reserved_regions(const Endpoint&) const
{
    std::vector<Span> regions;
    if (config_.dma32.base > 0)
        regions.push_back({0, config_.dma32.base - 1});
    if (config_.dma32.last() + 1 < config_.dma64.base)
        regions.push_back({config_.dma32.last() + 1, config_.dma64.base - 1});
    return regions;
}

std::uint32_t TceUnit::fault_code(FaultReason reason, Access) const
{
    switch (reason) {
    case FaultReason::blocked:     // the blocked domain unsets the PE's windows
    case FaultReason::pasid_range: // the PHB has no PASIDs to select a window with
    case FaultReason::address_size:
        return code(FaultCode::tve_invalid);
    case FaultReason::not_present:
        return code(FaultCode::tce_invalid);
    case FaultReason::permission:
        return code(FaultCode::tce_access);
    }
    return 0;
}

std::uint32_t TceUnit::fault_code(const Fault& fault, const Endpoint&, const Domain*) const
{
    // A miss between the windows is inside the aperture, but no window
    // decodes it.
    if (fault.reason == FaultReason::not_present && !config_.dma32.contains(fault.iova) &&
        !config_.dma64.contains(fault.iova))
        return code(FaultCode::tve_invalid);
    return fault_code(fault.reason, fault.access);
}

std::unique_ptr<Unit> create_ppc_tce_unit(const std::string& name, UnitParams& params, memory::PhysSpace& phys)
{
    TceConfig config;
    auto read_window = [&](WindowConfig& w, const std::string& prefix) {
        constexpr std::int64_t kMax = INT64_MAX;
        w.base = static_cast<std::uint64_t>(params.integer_in(prefix + "base", 0, kMax).value_or(
            static_cast<std::int64_t>(w.base)));
        w.size = static_cast<std::uint64_t>(params.integer_in(prefix + "size", 1, kMax).value_or(
            static_cast<std::int64_t>(w.size)));
        w.page_shift = static_cast<unsigned>(params.integer_in(prefix + "page_shift", 12, 16).value_or(w.page_shift));
        // Left out, the levels are what the window needs, and at least the
        // driver's default of two (pnv_pci_ioda2_setup_default_config()).
        auto levels = params.integer_in(prefix + "levels", 1, kMaxLevels);
        if (levels)
            w.levels = static_cast<unsigned>(*levels);
        else if (w.size && std::has_single_bit(w.size) && w.size >= w.page_size())
            w.levels = std::max(levels_needed(w), kDefaultLevels);
    };
    read_window(config.dma32, "dma32_");
    read_window(config.dma64, "dma64_");
    if (auto problem = check_config(config))
        throw UnitParamError(params.where(problem->key) + ": " + problem->message);
    return std::make_unique<TceUnit>(name, config, phys);
}

} // namespace ioasid::hw::ppc_tce
