// The SMMUv3 stream table in table memory (SMMUv3 specification 3.3,
// 5.2): linear, or two-level with 256-STE second-level tables, as the
// Linux 6.12 arm_smmu_init_strtab() lays it out, and the stream table
// entries the driver writes into it (arm_smmu_make_abort_ste(),
// arm_smmu_make_cdtable_ste(), arm_smmu_make_s2_domain_ste()).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "hwmodels/common/table_memory.h"
#include "smmuv3_registers.h"

namespace ioasid::hw::smmuv3 {

class CdTable;
class SmmuPaging;

// 64 bytes, as the hardware reads it.
using Ste = std::array<std::uint64_t, 8>;

namespace ste {
inline constexpr std::uint64_t kValid = 1ULL << 0;
inline constexpr unsigned kConfigShift = 1;  // bits 3:1
inline constexpr std::uint64_t kConfigAbort = 0;
inline constexpr std::uint64_t kConfigStage1 = 5;
inline constexpr std::uint64_t kConfigStage2 = 6;
inline constexpr unsigned kS1FmtShift = 4;   // bits 5:4
inline constexpr std::uint64_t kS1FmtLinear = 0;
inline constexpr std::uint64_t kS1Fmt64KL2 = 2;
inline constexpr std::uint64_t kS1ContextPtrMask = ((1ULL << 52) - 1) & ~((1ULL << 6) - 1); // 51:6
inline constexpr unsigned kS1CdMaxShift = 59; // bits 63:59
// dword 1
inline constexpr std::uint64_t kS1DssTerminate = 0;
inline constexpr std::uint64_t kS1DssSsid0 = 2;
inline constexpr unsigned kS1CirShift = 2;
inline constexpr unsigned kS1CorShift = 4;
inline constexpr unsigned kS1CshShift = 6;
inline constexpr std::uint64_t kCacheWbra = 1;
inline constexpr std::uint64_t kInnerShareable = 3;
inline constexpr unsigned kShcfgShift = 44;
inline constexpr std::uint64_t kShcfgIncoming = 1;
// dword 2
inline constexpr unsigned kVtcrShift = 32; // bits 50:32
inline constexpr std::uint64_t kS2Aa64 = 1ULL << 51;
inline constexpr std::uint64_t kS2Ptw = 1ULL << 54;
inline constexpr std::uint64_t kS2R = 1ULL << 58;
// dword 3
inline constexpr std::uint64_t kS2TtbMask = ((1ULL << 52) - 1) & ~((1ULL << 4) - 1); // 51:4
} // namespace ste

// V with Config abort: every transaction is terminated, none recorded.
[[nodiscard]] Ste make_abort_ste();
// Stage 1 through the device's CD table; `s1dss` says what happens to
// transactions without a SubstreamID (CD 0, or terminate).
[[nodiscard]] Ste make_cdtable_ste(const CdTable& cds, std::uint64_t s1dss, const SmmuFeatures& features);
// Stage 2 only, through the domain's table.
[[nodiscard]] Ste make_s2_ste(const SmmuPaging& domain, const SmmuFeatures& features);

class StreamTable {
public:
    static constexpr unsigned kSplit = 8;                 // STRTAB_SPLIT: 256 STEs per L2 table
    static constexpr std::uint32_t kMaxL1Entries = 1u << 17; // STRTAB_MAX_L1_ENTRIES

    StreamTable(TableMemory& memory, const SmmuFeatures& features);
    ~StreamTable();
    StreamTable(const StreamTable&) = delete;
    StreamTable& operator=(const StreamTable&) = delete;

    // Allocates the linear table or the L1 table; -ENOMEM.
    [[nodiscard]] int init();

    [[nodiscard]] bool two_level() const { return two_level_; }
    // STRTAB_BASE address and STRTAB_BASE_CFG, as the driver programs them.
    [[nodiscard]] std::uint64_t base() const { return base_; }
    [[nodiscard]] std::uint32_t base_cfg() const;
    // Whether the table has an STE for `sid` at all.
    [[nodiscard]] bool covers(std::uint32_t sid) const;

    // The STE of `sid`; with `allocate`, the L2 table holding it is made
    // first (arm_smmu_init_l2_strtab(): abort STEs, then the L1
    // descriptor). nullptr where there is none, or no memory for it.
    [[nodiscard]] std::uint64_t* ste(std::uint32_t sid, bool allocate);
    void write(std::uint32_t sid, const Ste& value);
    // The L1 descriptor of `sid`'s group (two-level only).
    [[nodiscard]] std::uint64_t l1_descriptor(std::uint32_t sid) const;

private:
    TableMemory& memory_;
    bool two_level_;
    unsigned sid_bits_;
    std::uint32_t l1_entries_ = 0;
    std::uint64_t base_ = 0;
    std::vector<std::uint64_t> l2_; // per L1 entry: its table, 0 if none
};

} // namespace ioasid::hw::smmuv3
