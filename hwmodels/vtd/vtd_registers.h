// The two capability registers of an Intel VT-d remapping unit, CAP_REG
// (offset 0x08) and ECAP_REG (offset 0x10): their field layout as the VT-d
// specification (rev 4.x/5.0, section 11.4.2 and 11.4.3) defines it, a
// builder that turns the unit's topology keys into a consistent pair, and
// the conclusions the Linux intel driver draws from them (address width,
// table depth, large pages, PASID width, which features it will use).
//
// The registers are what userspace sees verbatim in
// iommu_hw_info_vtd::cap_reg/ecap_reg, and what the rest of this family
// reads back to decide how to behave, so a feature is never enabled in one
// place and reported differently in the other.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "hwmodels/common/register_field.h"

namespace ioasid::hw::vtd {

// Capability Register fields (bits not listed are reserved and read 0).
namespace cap {
inline constexpr RegField ND{0, 3};       // number of domain ids: 2^(4 + 2*ND)
inline constexpr RegField AFL{3, 1};      // advanced fault logging
inline constexpr RegField RWBF{4, 1};     // required write-buffer flushing
inline constexpr RegField PLMR{5, 1};     // protected low-memory region
inline constexpr RegField PHMR{6, 1};     // protected high-memory region
inline constexpr RegField CM{7, 1};       // caching mode: not-present entries may be cached
inline constexpr RegField SAGAW{8, 5};    // second-stage widths: bit 1 39-bit, 2 48-bit, 3 57-bit
inline constexpr RegField MGAW{16, 6};    // maximum guest address width - 1
inline constexpr RegField ZLR{22, 1};     // zero-length read
inline constexpr RegField ISOCH{23, 1};   // isochrony: remapping for isochronous agents
inline constexpr RegField FRO{24, 10};    // fault-recording register offset / 16
inline constexpr RegField SLLPS{34, 4};   // second-stage large pages: bit 0 2 MiB, bit 1 1 GiB
inline constexpr RegField PSI{39, 1};     // page-selective invalidation
inline constexpr RegField NFR{40, 8};     // number of fault-recording registers - 1
inline constexpr RegField MAMV{48, 6};    // maximum address mask value (PSI)
inline constexpr RegField DWD{54, 1};     // write draining
inline constexpr RegField DRD{55, 1};     // read draining
inline constexpr RegField FL1GP{56, 1};   // first-stage 1 GiB pages
inline constexpr RegField PI{59, 1};      // posted interrupts
inline constexpr RegField FL5LP{60, 1};   // first-stage 5-level paging
inline constexpr RegField ECMDS{61, 1};   // enhanced command support
inline constexpr RegField ESIRTPS{62, 1}; // enhanced set interrupt remap table pointer
inline constexpr RegField ESRTPS{63, 1};  // enhanced set root table pointer
} // namespace cap

// Extended Capability Register fields.
namespace ecap {
inline constexpr RegField C{0, 1};      // page-walk coherency (legacy mode)
inline constexpr RegField QI{1, 1};     // queued invalidation
inline constexpr RegField DT{2, 1};     // device-TLB (ATS)
inline constexpr RegField IR{3, 1};     // interrupt remapping
inline constexpr RegField EIM{4, 1};    // extended interrupt mode (x2APIC)
inline constexpr RegField PT{6, 1};     // pass-through
inline constexpr RegField SC{7, 1};     // snoop control (SNP in second-stage leaves)
inline constexpr RegField IRO{8, 10};   // IOTLB register offset / 16
inline constexpr RegField MHMV{20, 4};  // maximum handle mask value
inline constexpr RegField MTS{25, 1};   // memory type support
inline constexpr RegField NEST{26, 1};  // nested translation
inline constexpr RegField PRS{29, 1};   // page requests
inline constexpr RegField ERS{30, 1};   // execute requests
inline constexpr RegField SRS{31, 1};   // supervisor requests
inline constexpr RegField NWFS{33, 1};  // no-write flag
inline constexpr RegField EAFS{34, 1};  // extended accessed flag
inline constexpr RegField PSS{35, 5};   // PASID width - 1
inline constexpr RegField PASID{40, 1}; // PASID support
inline constexpr RegField DIT{41, 1};   // device-TLB invalidation throttle
inline constexpr RegField PDS{42, 1};   // page-drain
inline constexpr RegField SMTS{43, 1};  // scalable-mode translation
inline constexpr RegField VCS{44, 1};   // virtual command
inline constexpr RegField SLADS{45, 1}; // second-stage accessed/dirty
inline constexpr RegField SLTS{46, 1};  // second-stage translation
inline constexpr RegField FLTS{47, 1};  // first-stage translation
inline constexpr RegField SMPWC{48, 1}; // scalable-mode page-walk coherency
inline constexpr RegField RPS{49, 1};   // RID_PASID
inline constexpr RegField PMS{51, 1};   // performance monitoring
} // namespace ecap

// The topology keys of a `family = "vtd"` unit.
struct VtdConfig {
    unsigned address_width = 48; // 39, 48 or 57: MGAW and the table depth
    bool dirty_tracking = true;  // ECAP.SLADS
    unsigned pasid_bits = 20;    // 0..20: ECAP.PASID and PSS
    bool first_stage = true;     // ECAP.FLTS (and CAP.FL1GP, CAP.FL5LP at 57 bits)
    bool nesting = true;         // ECAP.NEST
    unsigned large_pages = 2;    // 0..2: CAP.SLLPS (none, 2 MiB, 2 MiB + 1 GiB)
};

// A config no real unit reports: the key to blame and why.
struct ConfigProblem {
    std::string key;
    std::string message;
};
[[nodiscard]] std::optional<ConfigProblem> check_config(const VtdConfig& config);

struct VtdRegisters {
    std::uint64_t cap = 0;
    std::uint64_t ecap = 0;
};

// The register pair of a scalable-mode unit with `config`, which
// check_config() accepted.
[[nodiscard]] VtdRegisters build_registers(const VtdConfig& config);

// --- what the Linux driver concludes from the registers ---
// Each mirrors one predicate of drivers/iommu/intel/iommu.h or iommu.c
// (6.12), with scalable mode switched on (intel_iommu=sm_on, the default
// since 5.15 when the unit reports SMTS).

[[nodiscard]] bool sm_supported(const VtdRegisters& r);
[[nodiscard]] bool pasid_supported(const VtdRegisters& r);
// Second-stage dirty tracking needs SLADS and page-walk coherency.
[[nodiscard]] bool ssads_supported(const VtdRegisters& r);
[[nodiscard]] bool nested_supported(const VtdRegisters& r);
// The adjusted guest address width the driver picks (AGAW; table depth
// is agaw + 2), or -1 when the unit offers none it can use.
[[nodiscard]] int unit_agaw(const VtdRegisters& r);
// The input width of the unit's domains: the AGAW's width capped by MGAW.
[[nodiscard]] unsigned domain_width(const VtdRegisters& r);
// Large-page levels a domain of that stage may use (1: 2 MiB, 2: + 1 GiB).
[[nodiscard]] unsigned superpage_levels(const VtdRegisters& r, bool first_stage);
// The PASID width the unit accepts; 0 without PASID support.
[[nodiscard]] unsigned unit_pasid_bits(const VtdRegisters& r);

} // namespace ioasid::hw::vtd
