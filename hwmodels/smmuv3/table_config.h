// The shape of one SMMUv3 domain's page table, as the Linux 6.12
// arm_smmu_domain_finalise() asks io-pgtable-arm.c for it and as
// arm_lpae_alloc_pgtable() and arm_64_lpae_alloc_pgtable_s1()/_s2()
// compute it: granule, page sizes, input and output sizes, start level,
// top-table size, and the TCR / VTCR fields the CD or STE is given.
#pragma once

#include <cstdint>
#include <optional>

#include "smmuv3_registers.h"

namespace ioasid::hw::smmuv3 {

enum class Stage : std::uint8_t { s1, s2 };

// The CPU page size the driver runs with (PAGE_SIZE on our host).
inline constexpr std::uint64_t kCpuPageSize = 4096;

struct TableConfig {
    Stage stage = Stage::s1;
    unsigned granule_shift = 12;
    std::uint64_t pgsize_bitmap = 0; // the domain's: page and block sizes
    unsigned ias = 0;                // input bits; the aperture is [0, 2^ias)
    unsigned oas = 0;                // output bits
    unsigned start_level = 0;        // the architecture's numbering, 0..3
    unsigned levels = 0;             // 4 - start_level
    unsigned top_bits = 0;           // entries of the top table, log2 (pgd_bits)
    bool hd = false;                 // IO_PGTABLE_QUIRK_ARM_HD
    bool coherent_walk = true;       // io_pgtable_cfg.coherent_walk

    // TCR (stage 1) or VTCR (stage 2) fields, in their encodings.
    unsigned tsz = 0;   // T0SZ / S2T0SZ: 64 - ias
    unsigned tg = 0;    // TG0 / S2TG: 0 4 KiB, 1 64 KiB, 2 16 KiB
    unsigned irgn = 0;  // 1: write-back write-allocate, 0: non-cacheable
    unsigned orgn = 0;
    unsigned sh = 0;    // 3 inner shareable, 2 outer shareable
    unsigned ps = 0;    // IPS / S2PS: 0 32 bits ... 5 48 bits, 6 52 bits
    unsigned sl = 0;    // S2SL0 (stage 2 only)
    std::uint64_t mair = 0; // stage 1 only
};

// Stage-1 input size: arm_smmu_domain_finalise() takes 52 bits with
// IDR5.VAX, else 48, capped by the CPU's VA_BITS.
[[nodiscard]] unsigned stage1_input_bits(const SmmuFeatures& features, unsigned va_bits);

// nullopt where io-pgtable-arm would fail (no usable granule).
[[nodiscard]] std::optional<TableConfig> plan_table(const SmmuFeatures& features, Stage stage,
                                                   unsigned va_bits, bool dirty_tracking);

} // namespace ioasid::hw::smmuv3
