#include "table_config.h"

#include <algorithm>
#include <bit>

namespace ioasid::hw::smmuv3 {
namespace {

using namespace sizes;

// A stage-2 start level is folded into the next when that takes at most
// 16 concatenated tables (ARM_LPAE_S2_MAX_CONCAT_PAGES).
constexpr unsigned kMaxConcatenated = 16;

// The MAIR io-pgtable-arm programs: index 0 normal non-cacheable (0x44),
// 1 write-back read/write-allocate (0xff), 2 device nGnRE (0x04), 3 inner
// non-cacheable outer write-back (0xf4).
constexpr std::uint64_t kMair = 0x44 | (0xffULL << 8) | (0x04ULL << 16) | (0xf4ULL << 24);

// TCR/VTCR PS and IPS encodings of an output size.
unsigned ps_code(unsigned oas)
{
    switch (oas) {
    case 32: return 0;
    case 36: return 1;
    case 40: return 2;
    case 42: return 3;
    case 44: return 4;
    case 48: return 5;
    default: return 6; // 52
    }
}

} // namespace

unsigned stage1_input_bits(const SmmuFeatures& features, unsigned va_bits)
{
    return std::min(features.vax ? 52u : 48u, va_bits);
}

std::optional<TableConfig> plan_table(const SmmuFeatures& features, Stage stage, unsigned va_bits,
                                      bool dirty_tracking)
{
    TableConfig t;
    t.stage = stage;
    // A stage-1 table outputs IPAs: the SMMU's IAS, which for an
    // AArch64-only SMMU equals its OAS.
    t.ias = stage == Stage::s1 ? stage1_input_bits(features, va_bits) : features.ias;
    t.oas = stage == Stage::s1 ? features.ias : features.oas;
    t.hd = stage == Stage::s1 && dirty_tracking;

    // arm_lpae_restrict_pgsizes(): the CPU's page size if the SMMU has it,
    // else the largest granule below it (none exist), else the smallest
    // above; then only that granule's page and block sizes.
    std::uint64_t granule = 0;
    const std::uint64_t sizes = features.pgsize_bitmap;
    if (sizes & kCpuPageSize)
        granule = kCpuPageSize;
    else if (sizes & (kCpuPageSize - 1))
        granule = std::bit_floor(sizes & (kCpuPageSize - 1));
    else if (sizes & ~(kCpuPageSize - 1))
        granule = sizes & ~(sizes - 1);
    unsigned max_addr_bits = 48;
    std::uint64_t allowed = 0;
    switch (granule) {
    case k4K:
        allowed = k4K | k2M | k1G;
        break;
    case k16K:
        allowed = k16K | k32M;
        break;
    case k64K:
        max_addr_bits = 52;
        allowed = k64K | k512M | (t.oas > 48 ? k4T : 0);
        break;
    default:
        return std::nullopt;
    }
    t.pgsize_bitmap = sizes & allowed;
    t.ias = std::min(t.ias, max_addr_bits);
    t.oas = std::min(t.oas, max_addr_bits);

    // arm_lpae_alloc_pgtable(): as many levels as the input needs, the top
    // one holding what is left over.
    t.granule_shift = static_cast<unsigned>(std::countr_zero(granule));
    const unsigned bits_per_level = t.granule_shift - 3;
    const unsigned va = t.ias - t.granule_shift;
    t.levels = (va + bits_per_level - 1) / bits_per_level;
    t.start_level = 4 - t.levels;
    t.top_bits = va - bits_per_level * (t.levels - 1);
    if (stage == Stage::s2 && t.start_level == 0 && (1u << t.top_bits) <= kMaxConcatenated) {
        t.top_bits += bits_per_level;
        ++t.start_level;
        --t.levels;
    }

    // arm_64_lpae_alloc_pgtable_s1()/_s2(): walk attributes follow the
    // coherency of the table walk.
    t.coherent_walk = features.coherent;
    if (features.coherent) {
        t.sh = 3;
        t.irgn = t.orgn = 1;
    } else {
        t.sh = 2;
        t.irgn = t.orgn = 0;
    }
    t.tg = granule == k4K ? 0 : granule == k64K ? 1 : 2;
    t.ps = ps_code(t.oas);
    t.tsz = 64 - t.ias;
    if (stage == Stage::s1) {
        t.mair = kMair;
    } else {
        // SL0 counts the other way, and from level 1 for the 4 KiB granule.
        const unsigned sl = t.start_level + (granule == k4K ? 1 : 0);
        t.sl = ~sl & 3;
    }
    return t;
}

} // namespace ioasid::hw::smmuv3
