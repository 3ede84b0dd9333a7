#include "amd_registers.h"

namespace ioasid::hw::amd {

std::optional<ConfigProblem> check_config(const AmdConfig& config)
{
    if (config.levels < 4 || config.levels > 6)
        return ConfigProblem{"levels", "levels must be between 4 and 6"};
    if (config.guest_levels != 4 && config.guest_levels != 5)
        return ConfigProblem{"guest_levels", "guest_levels must be 4 or 5"};
    // PASmax counts from one bit: a unit with guest translation has at
    // least PASIDs 0 and 1, and the driver refuses more than 16 bits
    // (PASID_MASK). Without guest translation there is no PASID at all.
    if (config.guest_translation && (config.pasid_bits < 1 || config.pasid_bits > 16))
        return ConfigProblem{"pasid_bits", "pasid_bits must be between 1 and 16 with guest_translation"};
    if (!config.guest_translation && config.pasid_bits != 0)
        return ConfigProblem{"pasid_bits", "pasid_bits needs guest_translation = true"};
    return std::nullopt;
}

AmdRegisters build_registers(const AmdConfig& config)
{
    // What every unit reports, as a Zen 4 unit does: prefetch, x2APIC,
    // INVALIDATE_IOMMU_ALL, hardware error registers and performance
    // counters. No SNP: with SNPSup the driver would forbid DTE Mode 0
    // and v2 tables without a v1 stage below them.
    AmdRegisters r;
    std::uint64_t e = 0;
    e = efr::PrefSup.with(e, 1);
    e = efr::XTSup.with(e, 1);
    e = efr::IASup.with(e, 1);
    e = efr::HESup.with(e, 1);
    e = efr::PCSup.with(e, 1);
    e = efr::HATS.with(e, config.levels - 4);
    if (config.guest_translation) {
        // The driver uses PASIDs only with PPR and enhanced PPR handling
        // as well (amd_iommu_gt_ppr_supported()).
        e = efr::GTSup.with(e, 1);
        e = efr::PPRSup.with(e, 1);
        e = efr::EPHSup.with(e, 1);
        e = efr::GIOSup.with(e, 1);
        e = efr::NXSup.with(e, 1);
        e = efr::GATS.with(e, config.guest_levels - 4);
        e = efr::PASmax.with(e, config.pasid_bits - 1);
        // One GCR3 level indexes 9 PASID bits: wider PASIDs need two.
        e = efr::GLXSup.with(e, config.pasid_bits > 9 ? 1 : 0);
    }
    if (config.dirty_tracking) {
        e = efr::HASup.with(e, 1);
        e = efr::HDSup.with(e, 1);
    }
    r.efr = e;
    // None of EFR2's features (SNP AVIC, GCR3 trap, more interrupt
    // remapping entries) is modelled.
    r.efr2 = 0;
    return r;
}

bool hd_supported(const AmdRegisters& r)
{
    return efr::HDSup.get(r.efr) != 0;
}

bool pasid_supported(const AmdRegisters& r)
{
    return efr::GTSup.get(r.efr) && efr::PPRSup.get(r.efr) && efr::EPHSup.get(r.efr) && !efr::SNPSup.get(r.efr);
}

std::uint32_t unit_max_pasids(const AmdRegisters& r)
{
    if (!efr::GTSup.get(r.efr))
        return 0;
    return (std::uint32_t{1} << (efr::PASmax.get(r.efr) + 1)) - 1;
}

unsigned max_glx(const AmdRegisters& r)
{
    return static_cast<unsigned>(efr::GLXSup.get(r.efr));
}

unsigned guest_levels(const AmdRegisters& r)
{
    return efr::GATS.get(r.efr) == 1 ? 5 : 4;
}

unsigned host_levels(const AmdRegisters& r)
{
    return static_cast<unsigned>(efr::HATS.get(r.efr)) + 4;
}

} // namespace ioasid::hw::amd
