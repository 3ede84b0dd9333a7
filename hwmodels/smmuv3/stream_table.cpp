#include "stream_table.h"

#include <algorithm>
#include <bit>
#include <cerrno>

#include "cd_table.h"
#include "smmuv3_domain.h"

namespace ioasid::hw::smmuv3 {
namespace {

constexpr std::uint64_t kSteBytes = sizeof(Ste);
constexpr std::uint64_t kL1Span = StreamTable::kSplit + 1; // SPAN: 2^(SPAN-1) STEs below
constexpr std::uint64_t kL1PtrMask = ((1ULL << 52) - 1) & ~((1ULL << 6) - 1); // 51:6

// Table memory is page-granular, as the kernel's DMA allocator is.
std::uint64_t table_bytes(std::uint64_t bytes)
{
    return std::max(TableMemory::kTableSize, std::bit_ceil(bytes));
}

void fill_abort(std::uint64_t* stes, std::uint64_t count)
{
    const Ste abort = make_abort_ste();
    for (std::uint64_t i = 0; i < count; ++i)
        std::copy(abort.begin(), abort.end(), stes + i * abort.size());
}

} // namespace

Ste make_abort_ste()
{
    return Ste{ste::kValid | (ste::kConfigAbort << ste::kConfigShift)};
}

Ste make_cdtable_ste(const CdTable& cds, std::uint64_t s1dss, const SmmuFeatures&)
{
    Ste s{};
    s[0] = ste::kValid | (ste::kConfigStage1 << ste::kConfigShift) |
           ((cds.two_level() ? ste::kS1Fmt64KL2 : ste::kS1FmtLinear) << ste::kS1FmtShift) |
           (cds.base() & ste::kS1ContextPtrMask) | (std::uint64_t{cds.s1cdmax()} << ste::kS1CdMaxShift);
    // Walks of the CD table are write-back cacheable, inner shareable. No
    // stalls (IDR0.STALL_MODEL says none), so no S1STALLD; no ATS, so EATS
    // stays 0; without E2H the stream world is NS-EL1 with VMID 0.
    s[1] = s1dss | (ste::kCacheWbra << ste::kS1CirShift) | (ste::kCacheWbra << ste::kS1CorShift) |
           (ste::kInnerShareable << ste::kS1CshShift);
    return s;
}

Ste make_s2_ste(const SmmuPaging& domain, const SmmuFeatures& features)
{
    const TableConfig& t = domain.table_config();
    Ste s{};
    s[0] = ste::kValid | (ste::kConfigStage2 << ste::kConfigShift);
    if (features.attr_types_ovr)
        s[1] = ste::kShcfgIncoming << ste::kShcfgShift;
    const std::uint64_t vtcr = t.tsz | (std::uint64_t{t.sl} << 6) | (std::uint64_t{t.irgn} << 8) |
                               (std::uint64_t{t.orgn} << 10) | (std::uint64_t{t.sh} << 12) |
                               (std::uint64_t{t.tg} << 14) | (std::uint64_t{t.ps} << 16);
    // AArch64 tables, little-endian, stage-2 protection of stage-1 walks
    // (S2PTW), and faults recorded (S2R).
    s[2] = domain.vmid() | (vtcr << ste::kVtcrShift) | ste::kS2Aa64 | ste::kS2Ptw | ste::kS2R;
    s[3] = domain.table_base() & ste::kS2TtbMask;
    return s;
}

StreamTable::StreamTable(TableMemory& memory, const SmmuFeatures& features)
    : memory_(memory), two_level_(features.two_level_stream_table), sid_bits_(features.sid_bits)
{
}

StreamTable::~StreamTable()
{
    for (std::uint64_t table : l2_)
        if (table)
            memory_.free(table);
    if (base_)
        memory_.free(base_);
}

int StreamTable::init()
{
    if (two_level_) {
        // arm_smmu_init_strtab_2lvl(): enough L1 descriptors for every
        // SID, capped; the L2 tables come as devices do.
        const std::uint64_t last_group = ((std::uint64_t{1} << sid_bits_) - 1) >> kSplit;
        l1_entries_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(last_group + 1, kMaxL1Entries));
        auto pa = memory_.alloc(table_bytes(l1_entries_ * sizeof(std::uint64_t)));
        if (!pa)
            return -ENOMEM;
        base_ = *pa;
        l2_.assign(l1_entries_, 0);
        return 0;
    }
    // arm_smmu_init_strtab_linear(): an abort STE for every SID.
    const std::uint64_t count = std::uint64_t{1} << sid_bits_;
    auto pa = memory_.alloc(table_bytes(count * kSteBytes));
    if (!pa)
        return -ENOMEM;
    base_ = *pa;
    fill_abort(memory_.entries(base_), count);
    return 0;
}

std::uint32_t StreamTable::base_cfg() const
{
    // FMT 17:16, SPLIT 10:6, LOG2SIZE 5:0 (arm_smmu_write_strtab()).
    if (two_level_)
        return (1u << 16) | (kSplit << 6) | (static_cast<std::uint32_t>(std::bit_width(l1_entries_) - 1) + kSplit);
    return sid_bits_;
}

bool StreamTable::covers(std::uint32_t sid) const
{
    if (two_level_)
        return (sid >> kSplit) < l1_entries_;
    return sid_bits_ >= 32 || (sid >> sid_bits_) == 0;
}

std::uint64_t* StreamTable::ste(std::uint32_t sid, bool allocate)
{
    if (!covers(sid))
        return nullptr;
    if (!two_level_)
        return memory_.entries(base_ + sid * kSteBytes);
    const std::uint32_t group = sid >> kSplit;
    if (!l2_[group]) {
        if (!allocate)
            return nullptr;
        // arm_smmu_init_l2_strtab(): abort STEs, then the L1 descriptor.
        constexpr std::uint64_t kGroupStes = std::uint64_t{1} << kSplit;
        auto pa = memory_.alloc(kGroupStes * kSteBytes);
        if (!pa)
            return nullptr;
        fill_abort(memory_.entries(*pa), kGroupStes);
        l2_[group] = *pa;
        memory_.entries(base_)[group] = kL1Span | (*pa & kL1PtrMask);
    }
    return memory_.entries(l2_[group] + (sid & ((1u << kSplit) - 1)) * kSteBytes);
}

void StreamTable::write(std::uint32_t sid, const Ste& value)
{
    if (std::uint64_t* entry = ste(sid, true))
        std::copy(value.begin(), value.end(), entry);
}

std::uint64_t StreamTable::l1_descriptor(std::uint32_t sid) const
{
    if (!two_level_ || (sid >> kSplit) >= l1_entries_)
        return 0;
    return memory_.entries(base_)[sid >> kSplit];
}

} // namespace ioasid::hw::smmuv3
