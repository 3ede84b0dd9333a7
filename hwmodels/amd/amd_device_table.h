// The AMD-Vi device table entry (AMD IOMMU specification 48882, 2.2.2.1,
// "Device Table Entry Format"): 256 bits indexed by the 16-bit device id,
// here as its four little-endian qwords, and the GCR3 table the entry may
// point at. Only the fields the DMA-remapping half of the Linux 6.12
// driver writes are named (set_dte_entry(), clear_dte_entry()); the
// interrupt-remapping fields of qword 2 stay 0.
#pragma once

#include <cstdint>

namespace ioasid::hw::amd::dte {

// qword 0
inline constexpr std::uint64_t kValid = 1ULL << 0;             // V
inline constexpr std::uint64_t kTranslationValid = 1ULL << 1;  // TV
inline constexpr std::uint64_t kHostAccessDirty = 3ULL << 7;   // HAD: HA (7) and HD (8)
inline constexpr unsigned kModeShift = 9;                      // Mode, 11:9: host table levels
inline constexpr std::uint64_t kRootMask = 0x000ffffffffff000ULL; // host page-table root, 51:12
inline constexpr std::uint64_t kGuestIo = 1ULL << 54;          // GIOV: v2 for requests without PASID
inline constexpr std::uint64_t kGuestValid = 1ULL << 55;       // GV: GCR3 table in use
inline constexpr unsigned kGlxShift = 56;                      // GLX, 57:56: GCR3 levels - 1
inline constexpr unsigned kGcr3AShift = 58;                    // GCR3 root 14:12 at 60:58
inline constexpr std::uint64_t kRead = 1ULL << 61;             // IR
inline constexpr std::uint64_t kWrite = 1ULL << 62;            // IW
// qword 1
inline constexpr std::uint64_t kDomainIdMask = 0xffff;         // DomainID, 15:0
inline constexpr unsigned kGcr3BShift = 16;                    // GCR3 root 30:15 at 31:16
inline constexpr unsigned kGcr3CShift = 43;                    // GCR3 root 51:31 at 63:43
// qword 2
inline constexpr std::uint64_t kGuestPaging5 = 1ULL << 54;     // GPT level: 5-level v2 tables

// A GCR3 table entry: the guest CR3 (a v2 root) or, above the last
// level, the next GCR3 table, with bit 0 valid.
inline constexpr std::uint64_t kGcr3Valid = 1ULL << 0;

} // namespace ioasid::hw::amd::dte
