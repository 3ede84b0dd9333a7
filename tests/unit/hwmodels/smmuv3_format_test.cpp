// The VMSAv8-64 formats an SMMUv3 walks, entry by entry: stage-1 and
// stage-2 tables at the 4 KiB, 16 KiB and 64 KiB granules are built through
// the shared walker and every descriptor is read back raw from table
// memory and compared with a value worked out by hand from the Arm ARM's
// field positions (D8.3); start levels and concatenated stage-2 roots as
// io-pgtable-arm computes them from the input size; and the DBM/AP[2]
// dirty cycle.
//
// Table addresses are known in advance: a fresh PhysSpace starts at 4 GiB,
// TableMemory carves its first 2 MiB block there buddy-fashion from the
// low end, so the first table is at 0x100000000 and each later one at the
// lowest free address aligned to its size.
//
// Descriptor bits used below (Arm ARM D8.3, D8.4):
//   stage 1 page  = addr | 0xf47: valid(0) | page(1) | AttrIndx=1 (4:2 -> 0x4)
//                   | AP[1] unprivileged (6 -> 0x40) | SH=inner (9:8 -> 0x300)
//                   | AF (10 -> 0x400) | nG (11 -> 0x800)
//   stage 1 block = the same with bit 1 clear: addr | 0xf45
//   read-only     = AP[2] (7 -> 0x80) as well: 0xfc7 / 0xfc5
//   DBM           = bit 51: 0x0008000000000000
//   stage 2 page  = addr | 0x7ff: valid | page | MemAttr=0xf (5:2 -> 0x3c)
//                   | S2AP read (6 -> 0x40) and write (7 -> 0x80) | SH 0x300 | AF 0x400
//   table         = addr | 0x3
#include <catch2/catch.hpp>

#include "hwmodels/common/radix_table.h"
#include "hwmodels/common/table_memory.h"
#include "hwmodels/smmuv3/smmuv3_registers.h"
#include "hwmodels/smmuv3/table_config.h"
#include "hwmodels/smmuv3/vmsa_format.h"
#include "memory/phys_space.h"

using namespace ioasid;
using hw::Access;
using hw::EntryKind;
using hw::Prot;
using hw::RadixTable;
using hw::TableMemory;
using hw::smmuv3::SmmuFeatures;
using hw::smmuv3::Stage;
using hw::smmuv3::Stage1Format;
using hw::smmuv3::Stage2Format;

namespace {

constexpr std::uint64_t k4K = 1ULL << 12;
constexpr std::uint64_t k2M = 1ULL << 21;
constexpr std::uint64_t k1G = 1ULL << 30;
constexpr std::uint64_t k16K = 1ULL << 14;
constexpr std::uint64_t k32M = 1ULL << 25;
constexpr std::uint64_t k64K = 1ULL << 16;
constexpr std::uint64_t k512M = 1ULL << 29;
constexpr std::uint64_t kBase = 0x100000000;
constexpr Prot kRW{true, true};
constexpr Prot kRO{true, false};
constexpr Prot kWO{false, true};

struct Tables {
    memory::PhysSpace phys;
    TableMemory memory{phys};
    [[nodiscard]] std::uint64_t raw(std::uint64_t table_pa, unsigned index) const
    {
        return memory.entries(table_pa)[index];
    }
};

template <typename Format>
Format with_sizes(std::uint64_t sizes)
{
    Format f;
    f.leaf_sizes = sizes;
    return f;
}

// An SMMU with every granule, as probe() would read it.
SmmuFeatures features(unsigned oas, bool coherent = true)
{
    SmmuFeatures f;
    f.stage1 = f.stage2 = true;
    f.coherent = coherent;
    f.oas = f.ias = oas;
    f.pgsize_bitmap = k4K | k2M | k1G | k16K | k32M | k64K | k512M;
    return f;
}

} // namespace

TEST_CASE("stage 1, 4K granule: four levels, 4K page, 2M and 1G blocks")
{
    Tables m;
    RadixTable<Stage1Format<12>> t(m.memory, with_sizes<Stage1Format<12>>(k4K | k2M | k1G), 4);
    REQUIRE(t.init() == 0);
    REQUIRE(t.root() == kBase);
    CHECK(t.input_bits() == 48);

    // iova 0x40201000: L0 index 0, L1 index 1 (>> 30), L2 index 1 (>> 21
    // = 0x201, & 0x1ff), L3 index 1.
    REQUIRE(t.map(0x40201000, 0x800003000, k4K, kRW, k1G) == 0);
    CHECK(m.raw(kBase, 0) == 0x0000000100001003);          // L0 -> L1 table at 0x100001000
    CHECK(m.raw(kBase + 0x1000, 1) == 0x0000000100002003); // L1[1] -> L2 table
    CHECK(m.raw(kBase + 0x2000, 1) == 0x0000000100003003); // L2[1] -> L3 table
    CHECK(m.raw(kBase + 0x3000, 1) == 0x0000000800003f47); // page 0x800003000, read/write

    // 2M block at iova 0x80200000: L1 index 2, L2 index 1 (0x80200000 >> 21 = 0x401).
    REQUIRE(t.map(0x80200000, 0x800200000, k2M, kRO, k1G) == 0);
    CHECK(m.raw(kBase + 0x4000, 1) == 0x0000000800200fc5); // block, AP[2] read-only
    // 1G block at iova 0xc0000000: L1 index 3.
    REQUIRE(t.map(0xc0000000, 0x840000000, k1G, kRW, k1G) == 0);
    CHECK(m.raw(kBase + 0x1000, 3) == 0x0000000840000f45);
    // Stage 1 has no write-only page: AP[2] clear, as for read/write.
    REQUIRE(t.map(0x1000, 0x800005000, k4K, kWO, k1G) == 0);
    CHECK(m.raw(kBase + 0x6000, 1) == 0x0000000800005f47);

    auto w = t.walk(0x80212345);
    REQUIRE(w.present);
    CHECK(w.page_pa == 0x800200000);
    CHECK(w.page_size == k2M);
    CHECK(w.prot == kRO);
    w = t.walk(0xc1234567);
    REQUIRE(w.present);
    CHECK(w.page_size == k1G);
    CHECK(w.prot == kRW);
    CHECK_FALSE(t.walk(0x40202000).present);
}

TEST_CASE("descriptor types: a block where none may be, or 0b01 at level 3, does not translate")
{
    const auto f = with_sizes<Stage1Format<12>>(k4K | k2M | k1G);
    CHECK(f.kind(0x0000000800003f45, 0) == EntryKind::invalid); // 0b01 at level 3 is reserved
    CHECK(f.kind(0x0000000800003f47, 0) == EntryKind::leaf);
    CHECK(f.kind(0x0000008000000f45, 3) == EntryKind::invalid); // no 512G block at level 0
    CHECK(f.kind(0x0000000040000f45, 2) == EntryKind::leaf);
    CHECK(f.kind(0x0000000100001003, 2) == EntryKind::table);
    CHECK(f.kind(0x0000000800003f46, 0) == EntryKind::invalid); // valid bit clear
    // A leaf without AP[1] allows an unprivileged request nothing.
    CHECK(f.prot(0x0000000800003f07) == Prot{false, false});
}

TEST_CASE("stage 2, 4K granule: S2AP and MemAttr, pages and blocks")
{
    Tables m;
    RadixTable<Stage2Format<12>> t(m.memory, with_sizes<Stage2Format<12>>(k4K | k2M | k1G), 4);
    REQUIRE(t.init() == 0);
    REQUIRE(t.map(0x3000, 0x900003000, k4K, kRW, k1G) == 0);
    REQUIRE(t.map(0x4000, 0x900004000, k4K, kRO, k1G) == 0);
    REQUIRE(t.map(0x5000, 0x900005000, k4K, kWO, k1G) == 0);
    REQUIRE(t.map(0x200000, 0x900200000, k2M, kRW, k1G) == 0);
    CHECK(m.raw(kBase, 0) == 0x0000000100001003);
    CHECK(m.raw(kBase + 0x3000, 3) == 0x00000009000037ff); // S2AP RW (7:6 = 0b11)
    CHECK(m.raw(kBase + 0x3000, 4) == 0x000000090000477f); // S2AP read only (0b01)
    CHECK(m.raw(kBase + 0x3000, 5) == 0x00000009000057bf); // S2AP write only (0b10)
    CHECK(m.raw(kBase + 0x2000, 1) == 0x00000009002007fd); // 2M block: bit 1 clear
    auto w = t.walk(0x5abc);
    REQUIRE(w.present);
    CHECK(w.prot == kWO);
}

TEST_CASE("16K granule: 2048-entry tables, a two-entry start level and a 32M block")
{
    Tables m;
    // io-pgtable-arm: 48 - 14 = 34 bits over 11-bit levels: 4 levels, the
    // top one taking 34 - 33 = 1 bit.
    RadixTable<Stage1Format<14>> t(m.memory, with_sizes<Stage1Format<14>>(k16K | k32M), 4, 1);
    REQUIRE(t.init() == 0);
    CHECK(t.input_bits() == 48);
    CHECK(t.level_size(1) == k32M);
    // The 16-byte top table takes a 4 KiB page at 0x100000000; the 16 KiB
    // tables follow at 0x100004000 and 0x100008000.
    REQUIRE(t.map(0x2000000, 0xa02000000, k32M, kRW, k32M) == 0);
    CHECK(m.raw(kBase, 0) == 0x0000000100004003);
    CHECK(m.raw(kBase + 0x4000, 0) == 0x0000000100008003);
    CHECK(m.raw(kBase + 0x8000, 1) == 0x0000000a02000f45); // 32M block at L2 index 1 (>> 25)
    // A 16K page: L3 index 0x7ff of a table at 0x10000c000 (iova >> 14 & 0x7ff).
    REQUIRE(t.map(0x1ffc000, 0xa00004000, k16K, kRO, k32M) == 0);
    CHECK(m.raw(kBase + 0x8000, 0) == 0x000000010000c003);
    CHECK(m.raw(kBase + 0xc000, 0x7ff) == 0x0000000a00004fc7);
    // The top table's second entry covers 2^47 and up.
    REQUIRE(t.map(0x800000000000, 0xa10000000, k32M, kRW, k32M) == 0);
    CHECK(m.raw(kBase, 1) == 0x0000000100010003);
    auto w = t.walk(0x800001234567);
    REQUIRE(w.present);
    CHECK(w.page_pa == 0xa10000000);
}

TEST_CASE("64K granule: 8192-entry tables, a 512M block, and address bits 51:48 in bits 15:12")
{
    Tables m;
    // 48 - 16 = 32 bits over 13-bit levels: 3 levels, the top one 6 bits.
    RadixTable<Stage1Format<16>> t(m.memory, with_sizes<Stage1Format<16>>(k64K | k512M), 3, 6);
    REQUIRE(t.init() == 0);
    CHECK(t.input_bits() == 48);
    REQUIRE(t.map(0x20000000, 0xb20000000, k512M, kRW, k512M) == 0);
    CHECK(m.raw(kBase, 0) == 0x0000000100010003); // the first 64 KiB-aligned table
    CHECK(m.raw(kBase + 0x10000, 1) == 0x0000000b20000f45);
    REQUIRE(t.map(0x10000, 0xb00010000, k64K, kRW, k512M) == 0);
    CHECK(m.raw(kBase + 0x10000, 0) == 0x0000000100020003);
    CHECK(m.raw(kBase + 0x20000, 1) == 0x0000000b00010f47);

    // A 52-bit output: PA 0xa000012340000 has bits 51:48 = 0xa, which go
    // to descriptor bits 15:12 (0xa000).
    const auto f = with_sizes<Stage1Format<16>>(k64K | k512M);
    const std::uint64_t e = f.make_leaf(0xa000012340000, 0, kRW);
    CHECK(e == 0x000000001234af47);
    CHECK(f.output(e, 0) == 0xa000012340000);
}

TEST_CASE("start levels follow the input size; stage 2 concatenates up to 16 tables")
{
    struct Case {
        Stage stage;
        unsigned va_bits;
        unsigned oas;
        std::uint64_t granules;
        unsigned start_level, levels, top_bits, sl;
    };
    // By hand, from arm_lpae_alloc_pgtable(): va = ias - granule shift,
    // levels = ceil(va / (shift - 3)), top = va - (shift - 3) * (levels - 1);
    // stage 2 with start level 0 and at most 16 top entries folds one
    // level into 2^top concatenated tables. SL0 = ~(start + (4K ? 1 : 0)) & 3.
    const Case cases[] = {
        {Stage::s1, 48, 48, k4K, 0, 4, 9, 0},    // 36 = 4 x 9
        {Stage::s1, 39, 48, k4K, 1, 3, 9, 0},    // 27 = 3 x 9
        {Stage::s1, 42, 48, k4K, 0, 4, 3, 0},    // 30: a top table of 8 entries
        {Stage::s1, 48, 48, k16K, 0, 4, 1, 0},   // 34 = 1 + 3 x 11
        {Stage::s1, 47, 48, k16K, 1, 3, 11, 0},  // 33 = 3 x 11
        {Stage::s1, 48, 48, k64K, 1, 3, 6, 0},   // 32 = 6 + 2 x 13
        {Stage::s2, 48, 48, k4K, 0, 4, 9, 2},    // 512 top entries: no concatenation
        {Stage::s2, 48, 40, k4K, 1, 3, 10, 1},   // 28 = 1 + 27: 2 tables concatenated
        {Stage::s2, 48, 42, k4K, 1, 3, 12, 1},   // 30 = 3 + 27: 8 tables
        {Stage::s2, 48, 44, k4K, 0, 4, 5, 2},    // 32 entries is too many to fold
        {Stage::s2, 48, 48, k16K, 1, 3, 12, 2},  // 34 = 1 + 33: 2 tables of 16K
        {Stage::s2, 48, 36, k64K, 2, 2, 7, 1},   // 20 = 7 + 13, start level 2
    };
    for (const Case& c : cases) {
        INFO("stage " << (c.stage == Stage::s1 ? 1 : 2) << " va_bits " << c.va_bits << " oas " << c.oas
                      << " granule " << c.granules);
        SmmuFeatures f = features(c.oas);
        f.pgsize_bitmap &= c.granules == k4K ? (k4K | k2M | k1G) : c.granules == k16K ? (k16K | k32M) : (k64K | k512M);
        auto t = hw::smmuv3::plan_table(f, c.stage, c.va_bits, false);
        REQUIRE(t);
        CHECK(t->start_level == c.start_level);
        CHECK(t->levels == c.levels);
        CHECK(t->top_bits == c.top_bits);
        if (c.stage == Stage::s2)
            CHECK(t->sl == c.sl);
    }
}

TEST_CASE("a concatenated stage-2 root: 1024 entries over two 4 KiB tables")
{
    Tables m;
    RadixTable<Stage2Format<12>> t(m.memory, with_sizes<Stage2Format<12>>(k4K | k2M | k1G), 3, 10);
    REQUIRE(t.init() == 0);
    CHECK(t.input_bits() == 40);
    // The 8 KiB root sits at 0x100000000; the next tables at 0x100002000
    // and 0x100003000. iova 0x8040001000: root index 0x201 (>> 30), which
    // is entry 1 of the second concatenated table; L2 index 0; L3 index 1.
    REQUIRE(t.map(0x8040001000, 0x900001000, k4K, kRW, k1G) == 0);
    CHECK(m.raw(kBase, 0x201) == 0x0000000100002003);
    CHECK(m.raw(kBase + 0x1000, 1) == 0x0000000100002003); // the same word, seen from the second table
    CHECK(m.raw(kBase + 0x2000, 0) == 0x0000000100003003);
    CHECK(m.raw(kBase + 0x3000, 1) == 0x00000009000017ff);
    auto w = t.walk(0x8040001abc);
    REQUIRE(w.present);
    CHECK(w.page_pa == 0x900001000);
    CHECK(t.unmap(0x8040000000, 0x807fffffff) == k4K);
    CHECK(m.raw(kBase, 0x201) == 0);
}

TEST_CASE("dirty state: DBM with AP[2] as io-pgtable-arm and the hardware keep it")
{
    Tables m;
    auto f = with_sizes<Stage1Format<12>>(k4K | k2M | k1G);
    f.hd = true;
    RadixTable<Stage1Format<12>> t(m.memory, f, 4);
    REQUIRE(t.init() == 0);
    REQUIRE(t.map(0x1000, 0x800001000, k4K, kRW, k1G) == 0);
    REQUIRE(t.map(0x2000, 0x800002000, k4K, kRO, k1G) == 0);
    std::uint64_t* leaf = m.memory.entries(kBase + 0x3000) + 1;
    // Mapped writable-dirty: DBM (bit 51) set, AP[2] clear.
    CHECK(*leaf == 0x0008000800001f47);
    CHECK(f.dirty(*leaf));
    // read_and_clear_dirty(): AP[2] set, writable-clean.
    *leaf = f.clear_dirty(*leaf);
    CHECK(*leaf == 0x0008000800001fc7);
    CHECK_FALSE(f.dirty(*leaf));
    // Still writable: the hardware clears AP[2] on the first write.
    CHECK(t.walk(0x1000).prot == kRW);
    CHECK(f.mark_used(*leaf, Access::read) == 0x0008000800001fc7);
    *leaf = f.mark_used(*leaf, Access::write);
    CHECK(*leaf == 0x0008000800001f47);
    CHECK(f.dirty(*leaf));
    // A read-only leaf has no DBM and never becomes dirty.
    const std::uint64_t ro = m.raw(kBase + 0x3000, 2);
    CHECK(ro == 0x0000000800002fc7);
    CHECK(f.mark_used(ro, Access::write) == ro);
    CHECK(t.walk(0x2000).prot == kRO);

    // Without HD in the CD the same bits are a read-only page.
    auto no_hd = f;
    no_hd.hd = false;
    CHECK(no_hd.prot(0x0008000800001fc7) == kRO);
}

TEST_CASE("a non-coherent walk: table descriptors carry the software sync bit 55, leaves do not")
{
    // arm_lpae_install_table() without cfg->coherent_walk rewrites the
    // descriptor it has cleaned to memory as new | ARM_LPAE_PTE_SW_SYNC.
    Tables m;
    auto f = with_sizes<Stage1Format<12>>(k4K | k2M | k1G);
    f.non_coherent_walk = true;
    RadixTable<Stage1Format<12>> t(m.memory, f, 4);
    REQUIRE(t.init() == 0);
    REQUIRE(t.map(0x1000, 0x800001000, k4K, kRW, k1G) == 0);
    CHECK(m.raw(kBase, 0) == 0x0080000100001003);
    CHECK(m.raw(kBase + 0x3000, 1) == 0x0000000800001f47);
    CHECK(t.walk(0x1000).page_pa == 0x800001000); // the walk ignores it

    auto plan = hw::smmuv3::plan_table(features(48, false), Stage::s1, 48, false);
    REQUIRE(plan);
    CHECK_FALSE(plan->coherent_walk);
    CHECK(plan->sh == 2); // outer shareable, non-cacheable walks
    CHECK(plan->irgn == 0);
}
