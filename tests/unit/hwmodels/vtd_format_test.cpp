// The two VT-d page-table formats, entry by entry: second-stage tables of
// 3, 4 and 5 levels and x86-64 first-stage tables of 4 and 5 levels are
// built through the shared walker, and every table entry and leaf is read
// back raw from table memory and compared with a value worked out by hand
// from the VT-d specification (9.7 first-stage, 9.8 second-stage entries).
//
// Table addresses are known in advance: a fresh PhysSpace starts at 4 GiB,
// TableMemory takes its first 2 MiB block there and hands pages out from
// the low end, so the root is 0x100000000 and each new table the next page.
#include <catch2/catch.hpp>

#include <vector>

#include "hwmodels/common/radix_table.h"
#include "hwmodels/common/table_memory.h"
#include "hwmodels/vtd/vtd_first_stage.h"
#include "hwmodels/vtd/vtd_second_stage.h"
#include "memory/phys_space.h"

using namespace ioasid;
using hw::EntryKind;
using hw::Prot;
using hw::RadixTable;
using hw::TableMemory;
using hw::vtd::FirstStageFormat;
using hw::vtd::SecondStageFormat;

namespace {

constexpr std::uint64_t k4K = 1ULL << 12;
constexpr std::uint64_t k2M = 1ULL << 21;
constexpr std::uint64_t k1G = 1ULL << 30;
constexpr Prot kRW{true, true};
constexpr Prot kRO{true, false};
constexpr Prot kWO{false, true};

// The n-th table page TableMemory hands out on a fresh PhysSpace.
constexpr std::uint64_t table(unsigned n)
{
    return 0x100000000ULL + n * 0x1000;
}

struct Tables {
    memory::PhysSpace phys;
    TableMemory memory{phys};

    [[nodiscard]] std::uint64_t raw(std::uint64_t table_pa, unsigned index) const
    {
        return memory.entries(table_pa)[index];
    }
    // Valid entries of one table, to show nothing else was written.
    [[nodiscard]] unsigned used(std::uint64_t table_pa) const
    {
        unsigned n = 0;
        for (unsigned i = 0; i < hw::kEntriesPerTable; ++i)
            n += memory.entries(table_pa)[i] != 0;
        return n;
    }
};

template <typename Format>
void check_walk(const RadixTable<Format>& t, std::uint64_t iova, std::uint64_t page_pa, std::uint64_t size,
                Prot prot)
{
    INFO("iova " << std::hex << iova);
    auto w = t.walk(iova);
    REQUIRE(w.present);
    CHECK(w.page_pa == page_pa);
    CHECK(w.page_size == size);
    CHECK(w.page_iova == (iova & ~(size - 1)));
    CHECK(w.prot == prot);
}

} // namespace

// ------------------------------------------------------------- second stage

TEST_CASE("second stage, 3 levels (39-bit): table entries and 4K/2M/1G leaves as the hardware encodes them")
{
    Tables m;
    SecondStageFormat f;
    f.superpage_levels = 2;
    f.read_with_every_leaf = false; // the bare hardware encoding
    RadixTable<SecondStageFormat> t(m.memory, f, 3);
    REQUIRE(t.init() == 0);
    REQUIRE(t.root() == table(0));
    CHECK(t.input_bits() == 39);
    CHECK(t.leaf_sizes() == (k4K | k2M | k1G));

    // iova 0x12345000: SS-PDPE index 0, SS-PDE index 0x91, SS-PTE index 0x145
    // (0x12345000 >> 12 = 0x12345; & 0x1ff = 0x145; >> 9 = 0x91).
    REQUIRE(t.map(0x12345000, 0x123456000, k4K, kRW, k1G) == 0);
    // iova 0x80200000: SS-PDPE index 2 (>> 30), SS-PDE index 1 (>> 21 = 0x401, & 0x1ff).
    REQUIRE(t.map(0x80200000, 0x200400000, k2M, kRO, k1G) == 0);
    // iova 0x40000000: SS-PDPE index 1.
    REQUIRE(t.map(0x40000000, 0x240000000, k1G, kWO, k1G) == 0);

    CHECK(m.raw(table(0), 0) == 0x0000000100001003); // SS-PDPE -> table 0x100001000 | W(1) | R(0)
    CHECK(m.raw(table(0), 1) == 0x0000000240000082); // 1G leaf 0x240000000 | PS(7) | W(1), no R
    CHECK(m.raw(table(0), 2) == 0x0000000100003003); // SS-PDPE -> table 0x100003000 | W | R
    CHECK(m.used(table(0)) == 3);
    CHECK(m.raw(table(1), 0x91) == 0x0000000100002003);  // SS-PDE -> table 0x100002000 | W | R
    CHECK(m.raw(table(2), 0x145) == 0x0000000123456003); // 4K leaf 0x123456000 | W(1) | R(0)
    CHECK(m.raw(table(3), 1) == 0x0000000200400081);     // 2M leaf 0x200400000 | PS(7) | R(0)
    CHECK(m.used(table(1)) == 1);
    CHECK(m.used(table(2)) == 1);
    CHECK(m.used(table(3)) == 1);
    CHECK(t.table_pages() == 3);

    check_walk(t, 0x12345678, 0x123456000, k4K, kRW);
    check_walk(t, 0x80300000, 0x200400000, k2M, kRO);
    check_walk(t, 0x40012345, 0x240000000, k1G, kWO);
    CHECK_FALSE(t.walk(0x12346000).present);
    CHECK_FALSE(t.walk(0x7fffffffff).present);

    // A second map of a mapped page changes nothing.
    CHECK(t.map(0x12345000, 0x777777000, k4K, kRW, k1G) == -EEXIST);
    CHECK(m.raw(table(2), 0x145) == 0x0000000123456003);

    // Unmapping the 2M leaf clears it and frees the SS-PDE table it sat in.
    CHECK(t.unmap(0x80000000, 0xbfffffff) == k2M);
    CHECK(m.raw(table(0), 2) == 0);
    CHECK(t.table_pages() == 2);
}

TEST_CASE("second stage, 4 levels (48-bit) with the Linux driver's bits: SNP, and R in every leaf")
{
    Tables m;
    SecondStageFormat f;
    f.superpage_levels = 2;
    f.snoop = true;                // set_pte_snp on a unit with ECAP.SC
    f.read_with_every_leaf = true; // __domain_mapping() ORs bit 0 in
    RadixTable<SecondStageFormat> t(m.memory, f, 4);
    REQUIRE(t.init() == 0);
    REQUIRE(t.root() == table(0));
    CHECK(t.input_bits() == 48);

    // iova = 3 << 39 | 5 << 30 | 7 << 21 | 9 << 12 = 0x18140e09000:
    // SS-PML4E 3, SS-PDPE 5, SS-PDE 7, SS-PTE 9.
    REQUIRE(t.map(0x18140e09000, 0x345678000, k4K, kRW, k1G) == 0);
    // 3 << 39 | 5 << 30 | 8 << 21 = 0x18141000000: SS-PDE 8, a 2M leaf.
    REQUIRE(t.map(0x18141000000, 0x123400000, k2M, kWO, k1G) == 0);
    // 3 << 39 | 6 << 30 = 0x18180000000: SS-PDPE 6, a 1G leaf.
    REQUIRE(t.map(0x18180000000, 0x400000000, k1G, kRO, k1G) == 0);

    CHECK(m.raw(table(0), 3) == 0x0000000100001003); // SS-PML4E -> 0x100001000 | W | R
    CHECK(m.raw(table(1), 5) == 0x0000000100002003); // SS-PDPE -> 0x100002000 | W | R
    CHECK(m.raw(table(1), 6) == 0x0000000400000881); // 1G 0x400000000 | SNP(11) 0x800 | PS(7) 0x80 | R
    CHECK(m.raw(table(2), 7) == 0x0000000100003003); // SS-PDE -> 0x100003000 | W | R
    CHECK(m.raw(table(2), 8) == 0x0000000123400883); // 2M write-only: 0x123400000 | SNP 0x800 | PS 0x80 | W 2 | R 1
    CHECK(m.raw(table(3), 9) == 0x0000000345678803); // 4K 0x345678000 | SNP 0x800 | W 2 | R 1
    CHECK(m.used(table(0)) == 1);
    CHECK(m.used(table(1)) == 2);
    CHECK(m.used(table(2)) == 2);
    CHECK(m.used(table(3)) == 1);

    check_walk(t, 0x18140e09abc, 0x345678000, k4K, kRW);
    // The driver made the write-only mapping readable.
    check_walk(t, 0x18141012345, 0x123400000, k2M, kRW);
    check_walk(t, 0x181bfffffff, 0x400000000, k1G, kRO);
}

TEST_CASE("second stage, 5 levels (57-bit): an SS-PML5E on top, and the full 52-bit output address")
{
    Tables m;
    SecondStageFormat f;
    f.read_with_every_leaf = false;
    RadixTable<SecondStageFormat> t(m.memory, f, 5);
    REQUIRE(t.init() == 0);
    CHECK(t.input_bits() == 57);

    // 0x1a << 48 | 2 << 39 | 3 << 30 | 4 << 21 | 5 << 12 = 0x1a0100c0805000:
    // SS-PML5E 0x1a, SS-PML4E 2, SS-PDPE 3, SS-PDE 4, SS-PTE 5.
    REQUIRE(t.map(0x1a0100c0805000, 0xfedcba000, k4K, kRW, k1G) == 0);
    // The next page, SS-PTE 6, at the highest 4K frame bits 51:12 can hold.
    REQUIRE(t.map(0x1a0100c0806000, 0xffffffffff000, k4K, kRO, k1G) == 0);

    CHECK(m.raw(table(0), 0x1a) == 0x0000000100001003); // SS-PML5E -> 0x100001000 | W | R
    CHECK(m.raw(table(1), 2) == 0x0000000100002003);    // SS-PML4E -> 0x100002000 | W | R
    CHECK(m.raw(table(2), 3) == 0x0000000100003003);    // SS-PDPE -> 0x100003000 | W | R
    CHECK(m.raw(table(3), 4) == 0x0000000100004003);    // SS-PDE -> 0x100004000 | W | R
    CHECK(m.raw(table(4), 5) == 0x0000000fedcba003);    // 4K 0xfedcba000 | W | R
    CHECK(m.raw(table(4), 6) == 0x000ffffffffff001);    // 4K 0xffffffffff000 (bits 51:12 all set) | R
    check_walk(t, 0x1a0100c0805fff, 0xfedcba000, k4K, kRW);
    check_walk(t, 0x1a0100c0806000, 0xffffffffff000, k4K, kRO);
}

TEST_CASE("second stage: presence is R|W, PS only where SLLPS allows, large-leaf addresses")
{
    SecondStageFormat f;
    f.superpage_levels = 1; // SLLPS = 01b: 2 MiB only

    // No present bit: an address with R = W = 0 is not an entry.
    CHECK(f.kind(0x0000000123456000, 0) == EntryKind::invalid);
    CHECK(f.kind(0x0000000123456001, 0) == EntryKind::leaf);  // R
    CHECK(f.kind(0x0000000123456002, 0) == EntryKind::leaf);  // W
    CHECK(f.kind(0x0000000123456003, 1) == EntryKind::table); // R W, no PS
    CHECK(f.kind(0x0000000123400083, 1) == EntryKind::leaf);  // PS at SS-PDE: 2M
    // PS at an SS-PDPE without 1G support, or at an SS-PML4E, is reserved.
    CHECK(f.kind(0x0000000140000083, 2) == EntryKind::invalid);
    CHECK(f.kind(0x0000000140000083, 3) == EntryKind::invalid);

    // A 2M leaf's address is bits 51:21; 20:12 are not address.
    CHECK(f.output(0x0000000123400083, 1) == 0x123400000);
    CHECK(f.output(0x00000001234ff083, 1) == 0x123400000);
    CHECK(f.output(0x00000001234ff003, 1) == 0x1234ff000); // a table pointer keeps 51:12
    // Bits above 51 (ignored by the hardware) are not address either.
    CHECK(f.output(0xfff0000123456003, 0) == 0x123456000);
}

TEST_CASE("second stage: A and D as the hardware sets them, and clearing D")
{
    SecondStageFormat f;
    // A read sets A (bit 8): 0x123456003 | 0x100.
    CHECK(f.mark_used(0x0000000123456003, hw::Access::read) == 0x0000000123456103);
    // A write sets A and D (bit 9): 0x123456003 | 0x100 | 0x200.
    CHECK(f.mark_used(0x0000000123456003, hw::Access::write) == 0x0000000123456303);
    // A write through a read-only leaf is refused, and dirties nothing.
    CHECK(f.mark_used(0x0000000123456001, hw::Access::write) == 0x0000000123456101);
    CHECK(f.dirty(0x0000000123456303));
    CHECK_FALSE(f.dirty(0x0000000123456103));
    CHECK(f.clear_dirty(0x0000000123456303) == 0x0000000123456103);
}

TEST_CASE("second stage: describe() uses the specification's field names")
{
    SecondStageFormat f;
    CHECK(f.describe(0x0000000123456b03, 0) == "ADDR=0x123456000 R W A D SNP");
    CHECK(f.describe(0x0000000123400881, 1) == "ADDR=0x123400000 R PS SNP");
    CHECK(f.describe(0x0000000100001003, 2) == "ADDR=0x100001000 R W");
    // EMT (5:3) = 6 (write-back), IPAT (6), X (2).
    CHECK(f.describe(0x0000000123456077, 0) == "ADDR=0x123456000 R W X EMT=6 IPAT");
}

// -------------------------------------------------------------- first stage

TEST_CASE("first stage, 4 levels (48-bit): x86-64 entries as the Linux driver writes them")
{
    Tables m;
    FirstStageFormat f; // FL1GP
    RadixTable<FirstStageFormat> t(m.memory, f, 4);
    REQUIRE(t.init() == 0);
    REQUIRE(t.root() == table(0));
    CHECK(t.input_bits() == 48);
    CHECK(t.leaf_sizes() == (k4K | k2M | k1G));

    // 1 << 39 | 2 << 30 | 3 << 21 | 4 << 12 = 0x8080604000:
    // PML4E 1, PDPTE 2, PDE 3, PTE 4 (then 5 and 6).
    REQUIRE(t.map(0x8080604000, 0x123456000, k4K, kRW, k1G) == 0);
    REQUIRE(t.map(0x8080605000, 0x123457000, k4K, kRO, k1G) == 0);
    REQUIRE(t.map(0x8080606000, 0x123458000, k4K, kWO, k1G) == 0);
    // 1 << 39 | 2 << 30 | 4 << 21 = 0x8080800000: PDE 4, a 2M leaf.
    REQUIRE(t.map(0x8080800000, 0x200400000, k2M, kRW, k1G) == 0);
    // 1 << 39 | 3 << 30 = 0x80c0000000: PDPTE 3, a 1G leaf.
    REQUIRE(t.map(0x80c0000000, 0x240000000, k1G, kRO, k1G) == 0);

    // Table entries: P(0) 0x1 | R/W(1) 0x2 | U/S(2) 0x4 | A(5) 0x20 = 0x27.
    CHECK(m.raw(table(0), 1) == 0x0000000100001027); // PML4E -> 0x100001000
    CHECK(m.raw(table(1), 2) == 0x0000000100002027); // PDPTE -> 0x100002000
    CHECK(m.raw(table(1), 3) == 0x00000002400000a5); // 1G RO: 0x240000000 | PS 0x80 | A 0x20 | U/S 4 | P 1
    CHECK(m.raw(table(2), 3) == 0x0000000100003027); // PDE -> 0x100003000
    CHECK(m.raw(table(2), 4) == 0x00000002004000e7); // 2M RW: 0x200400000 | PS 0x80 | D 0x40 | A 0x20 | U/S | R/W | P
    // Leaves: P | U/S | A always; R/W and D (0x40) for a writable page.
    CHECK(m.raw(table(3), 4) == 0x0000000123456067); // RW: 0x123456000 | D | A | U/S | R/W | P
    CHECK(m.raw(table(3), 5) == 0x0000000123457025); // RO: 0x123457000 | A | U/S | P
    CHECK(m.raw(table(3), 6) == 0x0000000123458067); // write-only has no encoding: read-write
    CHECK(m.used(table(0)) == 1);
    CHECK(m.used(table(1)) == 2);
    CHECK(m.used(table(2)) == 2);
    CHECK(m.used(table(3)) == 3);

    check_walk(t, 0x8080604123, 0x123456000, k4K, kRW);
    check_walk(t, 0x8080605000, 0x123457000, k4K, kRO);
    check_walk(t, 0x8080606000, 0x123458000, k4K, kRW);
    check_walk(t, 0x80809fffff, 0x200400000, k2M, kRW);
    check_walk(t, 0x80c1234567, 0x240000000, k1G, kRO);
    CHECK_FALSE(t.walk(0x8080607000).present);
}

TEST_CASE("first stage, 5 levels (57-bit): a PML5E on top")
{
    Tables m;
    FirstStageFormat f;
    RadixTable<FirstStageFormat> t(m.memory, f, 5);
    REQUIRE(t.init() == 0);
    CHECK(t.input_bits() == 57);
    // 0xff << 48 | 1 << 12 = 0xff000000001000: PML5E 0xff, the last of the
    // canonical lower half (bit 56 clear), then index 0 down to PTE 1.
    REQUIRE(t.map(0xff000000001000, 0xabcde000, k4K, kRW, k1G) == 0);
    CHECK(m.raw(table(0), 0xff) == 0x0000000100001027); // PML5E -> 0x100001000 | A | U/S | R/W | P
    CHECK(m.raw(table(1), 0) == 0x0000000100002027);    // PML4E
    CHECK(m.raw(table(2), 0) == 0x0000000100003027);    // PDPTE
    CHECK(m.raw(table(3), 0) == 0x0000000100004027);    // PDE
    CHECK(m.raw(table(4), 1) == 0x00000000abcde067);    // PTE 0xabcde000 | D | A | U/S | R/W | P
    check_walk(t, 0xff000000001fff, 0xabcde000, k4K, kRW);
}

TEST_CASE("first stage without FL1GP: 2M leaves only, a 1G range is split")
{
    Tables m;
    FirstStageFormat f;
    f.pages_1g = false;
    RadixTable<FirstStageFormat> t(m.memory, f, 4);
    REQUIRE(t.init() == 0);
    CHECK(t.leaf_sizes() == (k4K | k2M));
    REQUIRE(t.map(0x40000000, 0x240000000, k1G, kRW, k1G) == 0);
    // PML4E 0 -> 0x100001000, PDPTE 1 -> 0x100002000, then 512 PDEs.
    CHECK(m.raw(table(0), 0) == 0x0000000100001027);
    CHECK(m.raw(table(1), 1) == 0x0000000100002027);
    CHECK(m.raw(table(2), 0) == 0x00000002400000e7);   // 0x240000000 | PS | D | A | U/S | R/W | P
    CHECK(m.raw(table(2), 511) == 0x000000027fe000e7); // 0x240000000 + 511 * 2M = 0x27fe00000
    CHECK(m.used(table(2)) == 512);
    check_walk(t, 0x7fffffff, 0x27fe00000, k2M, kRW);
}

TEST_CASE("first stage: P decides presence, U/S is needed, PS and PAT by level")
{
    FirstStageFormat f;
    CHECK(f.kind(0x0000000123456066, 0) == EntryKind::invalid); // everything but P
    CHECK(f.kind(0x0000000123456001, 0) == EntryKind::leaf);
    CHECK(f.kind(0x0000000123456081, 0) == EntryKind::leaf); // bit 7 of a PTE is PAT, not PS
    CHECK(f.kind(0x0000000123456027, 1) == EntryKind::table);
    CHECK(f.kind(0x00000001234000a5, 1) == EntryKind::leaf);
    CHECK(f.kind(0x00000001400000a5, 2) == EntryKind::leaf);
    CHECK(f.kind(0x00000001400000a5, 3) == EntryKind::invalid); // PS in a PML4E is reserved
    FirstStageFormat no1g;
    no1g.pages_1g = false;
    CHECK(no1g.kind(0x00000001400000a5, 2) == EntryKind::invalid);

    // Requests are user requests: without U/S an entry allows nothing.
    CHECK(f.prot(0x0000000123456003) == Prot{false, false});
    CHECK(f.prot(0x0000000123456005) == Prot{true, false});
    CHECK(f.prot(0x0000000123456007) == Prot{true, true});

    // Bit 12 of a 2M leaf is PAT (0x1000 set here), and the address is 51:21;
    // XD (63) is not address.
    CHECK(f.output(0x00000002004010e7, 1) == 0x200400000);
    CHECK(f.output(0x80000002400010e7, 2) == 0x240000000);
    CHECK(f.output(0x8000000123456067, 0) == 0x123456000);
}

TEST_CASE("first stage: A and D as the hardware sets them, describe() in x86 names")
{
    FirstStageFormat f;
    // P | U/S (0x5) read: A (0x20) -> 0x25.
    CHECK(f.mark_used(0x0000000123456005, hw::Access::read) == 0x0000000123456025);
    // P | R/W | U/S (0x7) write: A and D (0x40) -> 0x67.
    CHECK(f.mark_used(0x0000000123456007, hw::Access::write) == 0x0000000123456067);
    // No R/W: the write faults and D stays clear.
    CHECK(f.mark_used(0x0000000123456005, hw::Access::write) == 0x0000000123456025);
    CHECK(f.dirty(0x0000000123456067));
    CHECK(f.clear_dirty(0x0000000123456067) == 0x0000000123456027);

    CHECK(f.describe(0x0000000123456067, 0) == "addr=0x123456000 P R/W U/S A D");
    CHECK(f.describe(0x80000002004010e7, 1) == "addr=0x200400000 P R/W U/S A D PS PAT XD");
    CHECK(f.describe(0x000000010000103f, 3) == "addr=0x100001000 P R/W U/S PWT PCD A");
}
