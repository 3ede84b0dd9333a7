#include "vtd_registers.h"

#include <algorithm>
#include <bit>

namespace ioasid::hw::vtd {
namespace {

// SAGAW bit n means (n + 2)-level tables of (30 + 9n)-bit width.
constexpr std::uint64_t kSagaw39 = 1u << 1;
constexpr std::uint64_t kSagaw48 = 1u << 2;
constexpr std::uint64_t kSagaw57 = 1u << 3;

// The widest AGAW the driver asks for (DEFAULT_DOMAIN_ADDRESS_WIDTH, 57).
constexpr int kDriverMaxAgaw = 3;

// What second-stage widths the unit supports. Real units report the width
// their tables need, and (from Sapphire Rapids on) 48 next to 57. A unit
// with first-stage translation must also offer 4-level second-stage
// tables: the Linux driver only uses a width both stages share (see
// unit_agaw()), and first-stage paging is 4- or 5-level, so a 39-bit unit
// with FLTS reports 39 and 48 and gets 4-level tables whose input the
// 39-bit MGAW still caps, as client parts with MGAW 39 and SAGAW 48 do.
std::uint64_t sagaw_for(const VtdConfig& config)
{
    switch (config.address_width) {
    case 39:
        return config.first_stage ? kSagaw39 | kSagaw48 : kSagaw39;
    case 48:
        return kSagaw48;
    default:
        return kSagaw48 | kSagaw57;
    }
}

template <typename... Fields>
constexpr std::uint64_t set_all(std::uint64_t reg, Fields... fields)
{
    ((reg = fields.with(reg, 1)), ...);
    return reg;
}

} // namespace

std::optional<ConfigProblem> check_config(const VtdConfig& config)
{
    if (config.address_width != 39 && config.address_width != 48 && config.address_width != 57)
        return ConfigProblem{"address_width", "address_width must be 39, 48 or 57"};
    if (config.pasid_bits > 20)
        return ConfigProblem{"pasid_bits", "pasid_bits must be between 0 and 20"};
    if (config.large_pages > 2)
        return ConfigProblem{"large_pages", "large_pages must be between 0 and 2"};
    // Nested translation walks a first-stage table the guest owns through
    // the second stage: without first-stage translation there is nothing
    // to nest.
    if (config.nesting && !config.first_stage)
        return ConfigProblem{"nesting", "nesting needs first_stage = true"};
    return std::nullopt;
}

VtdRegisters build_registers(const VtdConfig& config)
{
    // The fixed values are those a Sapphire Rapids unit (version 6.0)
    // reports, except where a key changes them: 64 Ki domain ids, both
    // protected memory regions, zero-length reads, one fault-recording
    // register at 0x400, the IOTLB registers at 0x500, draining,
    // posted interrupts, device TLBs and interrupt remapping. CM is 0 as
    // on real hardware: not-present entries are never cached, so a map
    // needs no invalidation.
    std::uint64_t c = 0;
    c = cap::ND.with(c, 6);
    c = set_all(c, cap::PLMR, cap::PHMR, cap::ZLR, cap::PSI, cap::DWD, cap::DRD, cap::PI);
    c = cap::SAGAW.with(c, sagaw_for(config));
    c = cap::MGAW.with(c, config.address_width - 1);
    c = cap::FRO.with(c, 0x400 / 16);
    c = cap::NFR.with(c, 0);
    c = cap::MAMV.with(c, 0x2d);
    // large_pages 1: 2 MiB; 2: 2 MiB and 1 GiB.
    c = cap::SLLPS.with(c, (1u << config.large_pages) - 1);
    if (config.first_stage) {
        c = cap::FL1GP.with(c, 1);
        c = cap::FL5LP.with(c, config.address_width == 57 ? 1 : 0);
    }

    std::uint64_t e = 0;
    e = set_all(e, ecap::C, ecap::QI, ecap::DT, ecap::IR, ecap::EIM, ecap::PT, ecap::SC, ecap::MTS,
                ecap::PRS, ecap::NWFS, ecap::DIT, ecap::PDS, ecap::SMTS, ecap::SLTS, ecap::SMPWC,
                ecap::RPS);
    e = ecap::IRO.with(e, 0x500 / 16);
    e = ecap::MHMV.with(e, 0xf);
    if (config.first_stage) {
        // Privilege and the extended accessed flag are first-stage notions.
        e = set_all(e, ecap::FLTS, ecap::SRS, ecap::EAFS);
    }
    if (config.nesting)
        e = ecap::NEST.with(e, 1);
    if (config.dirty_tracking)
        e = ecap::SLADS.with(e, 1);
    if (config.pasid_bits) {
        e = ecap::PASID.with(e, 1);
        e = ecap::PSS.with(e, config.pasid_bits - 1);
    }
    return {c, e};
}

bool sm_supported(const VtdRegisters& r)
{
    return ecap::SMTS.get(r.ecap) != 0;
}

bool pasid_supported(const VtdRegisters& r)
{
    return sm_supported(r) && ecap::PASID.get(r.ecap);
}

bool ssads_supported(const VtdRegisters& r)
{
    return sm_supported(r) && ecap::SLADS.get(r.ecap) && ecap::SMPWC.get(r.ecap);
}

bool nested_supported(const VtdRegisters& r)
{
    return sm_supported(r) && ecap::NEST.get(r.ecap);
}

int unit_agaw(const VtdRegisters& r)
{
    // __iommu_calculate_sagaw(): with both stages in scalable mode only the
    // widths first-stage paging can also walk (4-level, and 5-level with
    // FL5LP) count; __iommu_calculate_agaw() then takes the widest of them
    // up to 57 bits.
    std::uint64_t sagaw = cap::SAGAW.get(r.cap);
    if (sm_supported(r) && ecap::FLTS.get(r.ecap)) {
        const std::uint64_t first_stage = kSagaw48 | (cap::FL5LP.get(r.cap) ? kSagaw57 : 0);
        sagaw = ecap::SLTS.get(r.ecap) ? sagaw & first_stage : first_stage;
    }
    for (int agaw = kDriverMaxAgaw; agaw >= 0; --agaw)
        if (sagaw & (std::uint64_t{1} << agaw))
            return agaw;
    return -1;
}

unsigned domain_width(const VtdRegisters& r)
{
    // paging_domain_alloc(): agaw_to_width() capped by cap_mgaw().
    const int agaw = unit_agaw(r);
    const unsigned agaw_width = agaw < 0 ? 0 : 30 + 9 * static_cast<unsigned>(agaw);
    return std::min<unsigned>(agaw_width, static_cast<unsigned>(cap::MGAW.get(r.cap)) + 1);
}

unsigned superpage_levels(const VtdRegisters& r, bool first_stage)
{
    // iommu_superpage_capability(): first-stage paging always has 2 MiB
    // pages and 1 GiB with FL1GP; second stage takes the highest SLLPS bit.
    if (first_stage)
        return cap::FL1GP.get(r.cap) ? 2 : 1;
    return static_cast<unsigned>(std::bit_width(cap::SLLPS.get(r.cap)));
}

unsigned unit_pasid_bits(const VtdRegisters& r)
{
    // dmar.c (alloc_iommu): max_pasids = 2 << PSS when PASID is supported.
    return pasid_supported(r) ? static_cast<unsigned>(ecap::PSS.get(r.ecap)) + 1 : 0;
}

} // namespace ioasid::hw::vtd
