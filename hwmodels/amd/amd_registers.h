// The feature registers of an AMD-Vi unit, EFR (MMIO 0x30) and EFR2 (MMIO
// 0x1a0): their fields at the positions of the AMD I/O Virtualization
// Technology specification (48882, "IOMMU Extended Feature Register"), a
// builder that turns the unit's topology keys into a consistent pair, and
// the conclusions the Linux 6.12 amd driver draws from them.
//
// The pair is what userspace sees verbatim in iommu_hw_info_amd, and what
// the rest of this family reads back to decide how to behave, so a
// feature is never enabled in one place and reported differently in the
// other.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "hwmodels/common/register_field.h"

namespace ioasid::hw::amd {

// Extended Feature Register fields the model sets or the driver reads
// (bits not listed read 0).
namespace efr {
inline constexpr RegField PrefSup{0, 1};   // PREFETCH_IOMMU_PAGES
inline constexpr RegField PPRSup{1, 1};    // peripheral page requests
inline constexpr RegField XTSup{2, 1};     // x2APIC interrupts
inline constexpr RegField NXSup{3, 1};     // no-execute in v2 tables
inline constexpr RegField GTSup{4, 1};     // guest (v2) translation
inline constexpr RegField IASup{6, 1};     // INVALIDATE_IOMMU_ALL
inline constexpr RegField GASup{7, 1};     // guest virtual APIC
inline constexpr RegField HESup{8, 1};     // hardware error registers
inline constexpr RegField PCSup{9, 1};     // performance counters
inline constexpr RegField HATS{10, 2};     // host table levels: 0 four, 1 five, 2 six
inline constexpr RegField GATS{12, 2};     // guest table levels: 0 four, 1 five
inline constexpr RegField GLXSup{14, 2};   // GCR3 table levels - 1
inline constexpr RegField PASmax{32, 5};   // PASID width - 1
inline constexpr RegField GIOSup{48, 1};   // guest I/O protection (v2 for requests without PASID)
inline constexpr RegField HASup{49, 1};    // host accessed bit
inline constexpr RegField EPHSup{50, 1};   // enhanced PPR handling
inline constexpr RegField HDSup{52, 1};    // host dirty bit
inline constexpr RegField SNPSup{63, 1};   // SEV-SNP
} // namespace efr

// The topology keys of a `family = "amd"` unit.
struct AmdConfig {
    unsigned levels = 6;            // 4..6: host (v1) table levels the hardware walks, EFR.HATS
    bool dirty_tracking = true;     // EFR.HASup and HDSup
    bool guest_translation = true;  // v2 tables and PASIDs: GTSup with PPRSup, EPHSup, GIOSup
    unsigned guest_levels = 4;      // 4 or 5: EFR.GATS
    unsigned pasid_bits = 16;       // 1..16 with guest_translation (EFR.PASmax + 1), else 0
};

// A config no real unit reports: the key to blame and why.
struct ConfigProblem {
    std::string key;
    std::string message;
};
[[nodiscard]] std::optional<ConfigProblem> check_config(const AmdConfig& config);

struct AmdRegisters {
    std::uint64_t efr = 0;
    std::uint64_t efr2 = 0;
};

// The register pair of a unit with `config`, which check_config() accepted.
[[nodiscard]] AmdRegisters build_registers(const AmdConfig& config);

// --- what the Linux 6.12 driver concludes from the registers ---

// amd_iommu_hd_support(): v1 dirty tracking.
[[nodiscard]] bool hd_supported(const AmdRegisters& r);
// amd_iommu_pasid_supported(): GT, PPR and EPH, SNP off.
[[nodiscard]] bool pasid_supported(const AmdRegisters& r);
// iommu->iommu.max_pasids as early_amd_iommu_init() computes it from
// PASmax: 2^(PASmax + 1) - 1, so the top PASID of the width is not usable.
// 0 without guest translation.
[[nodiscard]] std::uint32_t unit_max_pasids(const AmdRegisters& r);
// GCR3 table levels the driver may use (amd_iommu_max_glx_val): GLXSup.
[[nodiscard]] unsigned max_glx(const AmdRegisters& r);
// amd_iommu_gpt_level: 5 when GATS says so (on a host with LA57, which we
// assume whenever the unit offers 5 levels), else 4.
[[nodiscard]] unsigned guest_levels(const AmdRegisters& r);
// Levels the hardware walks in a v1 table: HATS + 4. The 6.12 driver
// never reads HATS (later kernels cap the table with it).
[[nodiscard]] unsigned host_levels(const AmdRegisters& r);

} // namespace ioasid::hw::amd
