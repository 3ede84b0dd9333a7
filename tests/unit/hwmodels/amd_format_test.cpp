// The two AMD-Vi page-table formats, entry by entry. Host (v1) tables as
// the Linux 6.12 driver builds them (io_pgtable.c): natural 4 KiB, 2 MiB
// and 1 GiB leaves, NextLevel-7 pages sized by their address and repeated
// across their slots, the table growing a level at a time, the 512 GiB
// erratum, IR/IW ANDed down the walk, level skips the hardware follows and
// the driver refuses, the dirty cycle on replicated pages. Guest (v2)
// tables: x86-64 entries as io_pgtable_v2.c writes them. Every raw entry
// is compared with a value worked out by hand from the AMD IOMMU
// specification (48882, 2.2.3 v1 entries; 2.2.6 v2 entries).
//
// Table addresses are known in advance: a fresh PhysSpace starts at 4 GiB,
// TableMemory takes its first 2 MiB block there and hands pages out from
// the low end, so a domain's root is 0x100000000 and each new table the
// next page.
#include <catch2/catch.hpp>

#include <cerrno>
#include <map>
#include <vector>

#include "hwmodels/amd/amd_unit.h"
#include "hwmodels/amd/amd_v1_domain.h"
#include "hwmodels/amd/amd_v2_domain.h"
#include "memory/phys_space.h"

using namespace ioasid;
using hw::Access;
using hw::DomainRequest;
using hw::DumpEntry;
using hw::Prot;
using hw::amd::AmdConfig;
using hw::amd::AmdUnit;
using hw::amd::V1Domain;

namespace {

constexpr std::uint64_t k4K = 1ULL << 12;
constexpr std::uint64_t k2M = 1ULL << 21;
constexpr std::uint64_t k1G = 1ULL << 30;
constexpr Prot kRW{true, true};
constexpr Prot kRO{true, false};
constexpr Prot kWO{false, true};

// Bits of a v1 entry, at the specification's positions.
constexpr std::uint64_t PR = 1ULL << 0;
constexpr std::uint64_t A = 1ULL << 5;
constexpr std::uint64_t D = 1ULL << 6;
constexpr std::uint64_t FC = 1ULL << 60;
constexpr std::uint64_t IR = 1ULL << 61;
constexpr std::uint64_t IW = 1ULL << 62;
constexpr std::uint64_t next_level(unsigned n)
{
    return std::uint64_t{n} << 9; // NextLevel, bits 11:9
}

// The n-th table page TableMemory hands out on a fresh PhysSpace.
constexpr std::uint64_t table(unsigned n)
{
    return 0x100000000ULL + n * 0x1000;
}

struct Rig {
    memory::PhysSpace phys;
    AmdUnit unit;
    hw::Endpoint& dev;
    // The domain's own table memory, so that entries can be edited by hand.
    hw::TableMemory memory{phys};
    std::unique_ptr<V1Domain> owned;
    V1Domain* domain = nullptr;

    explicit Rig(DomainRequest request = {}, unsigned hardware_levels = 6)
        : unit("amd0", AmdConfig{}, phys), dev(unit.add_endpoint({"d0", 0x10, 20, true})),
          owned(std::make_unique<V1Domain>(unit, request, memory, hardware_levels)), domain(owned.get())
    {
        REQUIRE(domain->init() == 0);
    }

    [[nodiscard]] std::uint64_t& slot(std::uint64_t table_pa, unsigned index)
    {
        return memory.entries(table_pa)[index];
    }

    // Every valid entry by (table, index), as the hardware reads it.
    [[nodiscard]] std::map<std::pair<std::uint64_t, unsigned>, std::uint64_t> entries() const
    {
        std::map<std::pair<std::uint64_t, unsigned>, std::uint64_t> out;
        domain->dump([&](const DumpEntry& e) { out[{e.table_pa, e.index}] = e.raw; });
        return out;
    }
    [[nodiscard]] std::uint64_t raw(std::uint64_t table_pa, unsigned index) const
    {
        auto all = entries();
        auto it = all.find({table_pa, index});
        return it == all.end() ? 0 : it->second;
    }
};

} // namespace

TEST_CASE("amd v1: a fresh domain is three levels over the whole 64-bit space", "[amd][v1]")
{
    Rig r;
    // v1_alloc_pgtable(): PAGE_MODE_3_LEVEL.
    CHECK(r.domain->mode() == 3);
    CHECK(r.domain->root_pa() == table(0));
    // dma_max_address() for v1 is ~0; AMD_IOMMU_PGSIZES is bits 51:12
    // without bit 39 (512 GiB).
    CHECK(r.domain->geometry().aperture.first == 0);
    CHECK(r.domain->geometry().aperture.last == 0xffffffffffffffffULL);
    CHECK(r.domain->geometry().pgsize_bitmap == 0x000fff7ffffff000ULL);
    CHECK(r.entries().empty());
}

TEST_CASE("amd v1: natural 4 KiB, 2 MiB and 1 GiB leaves", "[amd][v1]")
{
    Rig r;
    REQUIRE(r.domain->map_page(0x1000, 0x12345000, k4K, kRW) == 0);
    // Level 2 (root) slot 0 -> level 1 table, its slot 0 -> level 0 table.
    // A directory entry: address, NextLevel = the level below counted
    // from 1, PR, IR, IW.
    CHECK(r.raw(table(0), 0) == (table(1) | 0x6000000000000401ULL)); // NextLevel 2
    CHECK(r.raw(table(1), 0) == (table(2) | 0x6000000000000201ULL)); // NextLevel 1
    // The leaf: 0x12345000 | PR | FC (60) | IR (61) | IW (62), NextLevel 0.
    CHECK(r.raw(table(2), 1) == 0x7000000012345001ULL);

    // 2 MiB read-only at IOVA 2 MiB: level 1, slot 1; no IW.
    REQUIRE(r.domain->map_page(k2M, 0x40000000, k2M, kRO) == 0);
    CHECK(r.raw(table(1), 1) == 0x3000000040000001ULL);
    // 1 GiB write-only at IOVA 1 GiB: level 2 slot 1; no IR.
    REQUIRE(r.domain->map_page(k1G, 0x80000000, k1G, kWO) == 0);
    CHECK(r.raw(table(0), 1) == 0x5000000080000001ULL);
    CHECK(r.entries().size() == 5);

    auto t = r.domain->lookup(k1G + 0x12345);
    CHECK(t.present);
    CHECK(t.page_iova == k1G);
    CHECK(t.page_size == k1G);
    CHECK(t.page_pa == 0x80000000);
    CHECK(t.prot == kWO);
    CHECK(r.domain->lookup(k2M + 5).prot == kRO);
    CHECK_FALSE(r.domain->lookup(0x2000).present);
    // Nothing allowed, nothing mapped (iommu_v1_map_pages()).
    CHECK(r.domain->map_page(0x5000, 0x5000, k4K, Prot{}) == -EINVAL);
}

TEST_CASE("amd v1: sizes between levels are NextLevel-7 entries repeated in their slots", "[amd][v1]")
{
    Rig r;
    struct Case {
        std::uint64_t iova, pa, size;
        std::uint64_t entry;  // worked out below
        unsigned level, first, count;
    };
    // PAGE_SIZE_PTE(): the address with every bit below the page's size
    // set, then the bit for half the size cleared, so the run of ones from
    // bit 12 ends one below log2(size); NextLevel 7 (0xe00), PR, FC, IR, IW.
    const Case cases[] = {
        // 8 KiB at pa 0x10000: bit 12 cleared -> 0x10000; slots 2, 3.
        {0x2000, 0x10000, 0x2000, 0x7000000000010e01ULL, 0, 2, 2},
        // 32 KiB at 0x20000: bits 12, 13 set, 14 clear -> 0x23000; slots 8..15.
        {0x8000, 0x20000, 0x8000, 0x7000000000023e01ULL, 0, 8, 8},
        // 64 KiB at 0x100000: bits 12..14 set, 15 clear -> 0x107000; slots 16..31.
        {0x10000, 0x100000, 0x10000, 0x7000000000107e01ULL, 0, 16, 16},
        // 1 MiB at 0x300000: bits 12..18 set, 19 clear, 20, 21 from the
        // address -> 0x37f000; slots 256..511 of the level-0 table.
        {0x100000, 0x300000, 0x100000, 0x700000000037fe01ULL, 0, 256, 256},
        // 4 MiB at 0xc00000: bits 12..20 set, 21 clear, 22, 23 from the
        // address -> 0xdff000; level 1, slots 2, 3.
        {0x400000, 0xc00000, 0x400000, 0x7000000000dffe01ULL, 1, 2, 2},
    };
    for (const Case& c : cases)
        REQUIRE(r.domain->map_page(c.iova, c.pa, c.size, kRW) == 0);

    // The tables: root table(0), level 1 table(1), level 0 table(2).
    const std::uint64_t by_level[] = {table(2), table(1)};
    for (const Case& c : cases) {
        INFO("size " << c.size);
        for (unsigned i = 0; i < c.count; ++i)
            CHECK(r.raw(by_level[c.level], c.first + i) == c.entry);
        CHECK(r.raw(by_level[c.level], c.first + c.count) != c.entry);
        // Any IOVA in the page reaches the page's address plus the offset.
        auto t = r.domain->lookup(c.iova + c.size - 0x10);
        CHECK(t.present);
        CHECK(t.page_iova == c.iova);
        CHECK(t.page_size == c.size);
        CHECK(t.page_pa == c.pa);
    }
    // 2 + 8 + 16 + 256 leaves at level 0, 2 at level 1, and the two
    // directory entries.
    CHECK(r.entries().size() == 2 + 8 + 16 + 256 + 2 + 2);

    // Unmapping any part removes the page with all its replicas.
    r.domain->unmap(0x9000, k4K);
    for (unsigned i = 8; i < 16; ++i)
        CHECK(r.raw(table(2), i) == 0);
    CHECK_FALSE(r.domain->lookup(0x8000).present);
    CHECK(r.domain->lookup(0x2000).present);
}

TEST_CASE("amd v1: map() picks the largest size, never 512 GiB", "[amd][v1]")
{
    Rig r;
    // 512 GiB at 0, aligned to 512 GiB: the erratum takes that size out of
    // AMD_IOMMU_PGSIZES, so it goes as two 256 GiB pages: level 2
    // ((38 - 12) / 9), 256 slots each (2^((38 - 12) % 9)). 256 GiB at
    // 0x4000000000: bits 12..36 set, 37 clear, 38 from the address ->
    // 0x5ffffff000.
    REQUIRE(r.domain->map(0, 0, 1ULL << 39, kRW, ~0ULL) == 0);
    CHECK(r.domain->mode() == 3);
    CHECK(r.raw(table(0), 0) == 0x7000001ffffffe01ULL);   // pa 0: bits 12..36
    CHECK(r.raw(table(0), 255) == 0x7000001ffffffe01ULL);
    CHECK(r.raw(table(0), 256) == 0x7000005ffffffe01ULL); // pa 0x4000000000
    CHECK(r.raw(table(0), 511) == 0x7000005ffffffe01ULL);
    CHECK(r.domain->lookup(0x4000001000).page_size == 1ULL << 38);

    // A 1 TiB page needs level 3: the table grows to four levels and the
    // page fills two slots there. pa 1 TiB: bits 12..38 set, 39 clear, 40
    // from the address -> 0x17ffffff000.
    Rig big;
    REQUIRE(big.domain->map(1ULL << 40, 1ULL << 40, 1ULL << 40, kRW, ~0ULL) == 0);
    CHECK(big.domain->mode() == 4);
    CHECK(big.domain->root_pa() == table(1));
    CHECK(big.raw(table(1), 0) == (table(0) | 0x6000000000000601ULL)); // NextLevel 3: the old root
    CHECK(big.raw(table(1), 2) == 0x7000017ffffffe01ULL);
    CHECK(big.raw(table(1), 3) == big.raw(table(1), 2));

    // max_leaf bounds the size: 2 MiB of 4 KiB-aligned, 4 KiB-limited.
    Rig small;
    REQUIRE(small.domain->map(0, 0x200000, k2M, kRW, k4K) == 0);
    CHECK(small.domain->lookup(0x1000).page_size == k4K);
    CHECK(small.domain->map(0, 0, k4K, Prot{}, ~0ULL) == -EINVAL);
}

TEST_CASE("amd v1: the table grows a level at a time as 6.12 does", "[amd][v1]")
{
    Rig r;
    REQUIRE(r.domain->map_page(0, 0x1000, k4K, kRW) == 0);
    // 2^39 is beyond three levels (PM_LEVEL_SIZE(3) = 2^39 - 1): a new root
    // whose slot 0 points at the old one (increase_address_space()).
    REQUIRE(r.domain->map_page(1ULL << 39, 0x2000, k4K, kRW) == 0);
    CHECK(r.domain->mode() == 4);
    const std::uint64_t root4 = r.domain->root_pa();
    CHECK(r.raw(root4, 0) == (table(0) | 0x6000000000000601ULL)); // NextLevel 3
    CHECK(r.raw(root4, 1) != 0);
    REQUIRE(r.domain->map_page(1ULL << 48, 0x3000, k4K, kRW) == 0);
    CHECK(r.domain->mode() == 5);
    CHECK(r.raw(r.domain->root_pa(), 0) == (root4 | 0x6000000000000801ULL)); // NextLevel 4
    REQUIRE(r.domain->map_page(1ULL << 63, 0x4000, k4K, kRW) == 0);
    CHECK(r.domain->mode() == 6);
    CHECK(r.domain->levels() == 6);
    // Everything still translates through the new roots.
    CHECK(r.domain->lookup(0x10).page_pa == 0x1000);
    CHECK(r.domain->lookup((1ULL << 39) + 1).page_pa == 0x2000);
    CHECK(r.domain->lookup((1ULL << 48) + 1).page_pa == 0x3000);
    CHECK(r.domain->lookup((1ULL << 63) + 1).page_pa == 0x4000);
}

TEST_CASE("amd v1: IR and IW are ANDed down the walk", "[amd][v1]")
{
    Rig r;
    REQUIRE(r.domain->map_page(0x1000, 0x5000, k4K, kRW) == 0);
    CHECK(r.domain->lookup(0x1000).prot == kRW);
    // Clearing IW in the level-1 directory entry takes writes away from
    // everything below it, whatever the leaf says; IR likewise at the root.
    r.slot(table(1), 0) &= ~IW;
    CHECK(r.domain->lookup(0x1000).prot == kRO);
    r.slot(table(0), 0) &= ~IR;
    CHECK(r.domain->lookup(0x1000).prot == Prot{});
    CHECK(r.domain->lookup(0x1000).present);
}

TEST_CASE("amd v1: the hardware follows a level skip the driver neither writes nor follows", "[amd][v1]")
{
    Rig r;
    REQUIRE(r.domain->map_page(0x1000, 0x5000, k4K, kRW) == 0);
    // Point the root's slot 1 (IOVAs 1 GiB..2 GiB) straight at the level-0
    // table: NextLevel 1 from level 2 skips level 1, whose index bits
    // (29:21) must then be zero.
    r.slot(table(0), 1) = table(2) | next_level(1) | PR | IR | IW;
    auto t = r.domain->lookup(k1G + 0x1000);
    CHECK(t.present);
    CHECK(t.page_pa == 0x5000);
    CHECK_FALSE(r.domain->lookup(k1G + k2M + 0x1000).present);
    // fetch_pte()/alloc_pte(): "no level skipping support yet". The map
    // fails as the driver's does, for want of a PTE: -ENOMEM.
    CHECK(r.domain->map_page(k1G + 0x3000, 0x6000, k4K, kRW) == -ENOMEM);
    // NextLevel above the entry's own level is malformed.
    r.slot(table(0), 2) = table(2) | next_level(3) | PR | IR | IW;
    CHECK_FALSE(r.domain->lookup(2 * k1G + 0x1000).present);
    r.slot(table(0), 1) = 0;
    r.slot(table(0), 2) = 0;
}

TEST_CASE("amd v1: a larger page replaces the tables below it", "[amd][v1]")
{
    Rig r;
    REQUIRE(r.domain->map_page(0x1000, 0x5000, k4K, kRW) == 0);
    r.domain->unmap(0x1000, k4K);
    // Unmapping leaves the tables (iommu_v1_unmap_pages() frees none).
    CHECK(r.memory.pages_in_use() == 3);
    // A 1 GiB page over them frees both (free_clear_pte()).
    REQUIRE(r.domain->map_page(0, 0x40000000, k1G, kRW) == 0);
    CHECK(r.memory.pages_in_use() == 1);
    CHECK(r.raw(table(0), 0) == 0x7000000040000001ULL);
    // A 4 KiB page inside a 4 MiB one (level 1, slots 2 and 3) first tears
    // the larger page's replicas down, then builds a table in its slot.
    Rig s;
    REQUIRE(s.domain->map_page(0x400000, 0x800000, 0x400000, kRW) == 0);
    CHECK(s.raw(table(1), 2) == 0x70000000009ffe01ULL); // 0x800000: bits 12..20 set, 21 clear, 23 set
    REQUIRE(s.domain->map_page(0x600000, 0x1000, k4K, kRW) == 0);
    CHECK(s.raw(table(1), 2) == 0);
    CHECK(s.raw(table(1), 3) == (table(2) | 0x6000000000000201ULL));
}

TEST_CASE("amd v1: dirty bits on a replicated page", "[amd][v1][dirty]")
{
    Rig r(DomainRequest{.dirty_tracking = true});
    REQUIRE(r.domain->set_dirty_tracking(true) == 0);
    REQUIRE(r.domain->map_page(0x8000, 0x20000, 0x8000, kRW) == 0);
    constexpr std::uint64_t leaf = 0x7000000000023e01ULL;
    // The hardware marks the slot it walked: A (5) and D (6) in slot 11.
    r.domain->note_use(0xb123, Access::write);
    CHECK(r.raw(table(2), 11) == (leaf | A | D));
    CHECK(r.raw(table(2), 8) == leaf);
    CHECK(r.domain->lookup(0xb000).dirty);
    CHECK_FALSE(r.domain->lookup(0x8000).dirty);
    // A read sets A only.
    r.domain->note_use(0x8000, Access::read);
    CHECK(r.raw(table(2), 8) == (leaf | A));

    // iommu_v1_read_and_clear_dirty(): the whole page is dirty if any
    // replica is; reading without clearing leaves the bit.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> seen;
    auto record = [&](std::uint64_t iova, std::uint64_t size) { seen.emplace_back(iova, size); };
    r.domain->read_and_clear_dirty(0, 0x20000, false, record);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0] == std::pair<std::uint64_t, std::uint64_t>{0x8000, 0x8000});
    CHECK(r.raw(table(2), 11) == (leaf | A | D));
    // Clearing clears D in every replica, and nothing is left to report.
    r.slot(table(2), 14) |= D;
    seen.clear();
    r.domain->read_and_clear_dirty(0, 0x20000, true, record);
    CHECK(seen.size() == 1);
    for (unsigned i = 8; i < 16; ++i)
        CHECK((r.raw(table(2), i) & D) == 0);
    seen.clear();
    r.domain->read_and_clear_dirty(0, 0x20000, true, record);
    CHECK(seen.empty());
    // A write through a read-only leaf sets nothing dirty.
    REQUIRE(r.domain->map_page(0x40000, 0x40000, k4K, kRO) == 0);
    r.domain->note_use(0x40000, Access::write);
    CHECK((r.raw(table(2), 0x40) & D) == 0);
}

TEST_CASE("amd v1: a dirty scan starting inside a hole still reaches the next page", "[amd][v1][dirty]")
{
    // fetch_pte() reports the 2 MiB hole at level 1 for IOVA 0x1000. The
    // 6.12 loop adds that size to the unaligned IOVA (0x201000) and would
    // step over the page at 2 MiB; the model resumes at the hole's end.
    Rig r(DomainRequest{.dirty_tracking = true});
    REQUIRE(r.domain->set_dirty_tracking(true) == 0);
    REQUIRE(r.domain->map_page(k2M, 0x5000, k4K, kRW) == 0);
    r.domain->note_use(k2M, Access::write);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> seen;
    r.domain->read_and_clear_dirty(0x1000, 2 * k2M, true,
                                   [&](std::uint64_t iova, std::uint64_t size) { seen.emplace_back(iova, size); });
    CHECK(seen == std::vector<std::pair<std::uint64_t, std::uint64_t>>{{k2M, k4K}});
    // 0x5000 | PR | FC | IR | IW, A kept and D cleared.
    CHECK(r.raw(table(2), 0) == 0x7000000000005021ULL);
    // unmap() walks the same way.
    r.domain->unmap(0x1000, 2 * k2M);
    CHECK_FALSE(r.domain->lookup(k2M).present);
}

TEST_CASE("amd v1: a table deeper than the hardware walks translates nothing", "[amd][v1]")
{
    // EFR.HATS says four levels; 6.12 grows the table to five anyway.
    Rig r({}, 4);
    REQUIRE(r.domain->map_page(0x1000, 0x5000, k4K, kRW) == 0);
    CHECK(r.domain->walkable());
    CHECK(r.domain->lookup(0x1000).present);
    REQUIRE(r.domain->map_page(1ULL << 48, 0x6000, k4K, kRW) == 0);
    CHECK(r.domain->mode() == 5);
    CHECK_FALSE(r.domain->walkable());
    CHECK_FALSE(r.domain->lookup(0x1000).present);
}

TEST_CASE("amd v2: x86-64 entries as io_pgtable_v2.c writes them", "[amd][v2]")
{
    memory::PhysSpace phys;
    AmdConfig config;
    AmdUnit unit("amd0", config, phys);
    auto& dev = unit.add_endpoint({"d0", 0x10, 20, true});
    std::unique_ptr<hw::Domain> d;
    REQUIRE(unit.alloc_first_stage_domain(dev, &d) == 0);
    CHECK(d->format_name() == "amd-v2");
    CHECK(d->levels() == 4);
    CHECK(d->root_pa() == table(0));
    // dma_max_address(): 2^(48 - 1) - 1; AMD_IOMMU_PGSIZES_V2.
    CHECK(d->geometry().aperture.last == 0x00007fffffffffffULL);
    CHECK(d->geometry().pgsize_bitmap == 0x40201000ULL);

    REQUIRE(d->map(0x1000, 0x5000, k4K, kRO, ~0ULL) == 0);
    REQUIRE(d->map(0x2000, 0x6000, k4K, kRW, ~0ULL) == 0);
    REQUIRE(d->map(k2M, 0x200000, k2M, kWO, ~0ULL) == 0);
    std::map<std::pair<std::uint64_t, unsigned>, std::uint64_t> raw;
    d->dump([&](const DumpEntry& e) { raw[{e.table_pa, e.index}] = e.raw; });
    // Tables (set_pgtable_attr()): P (0), R/W (1), U/S (2), A (5) = 0x27.
    CHECK(raw[{table(0), 0}] == (table(1) | 0x27));
    CHECK(raw[{table(1), 0}] == (table(2) | 0x27));
    CHECK(raw[{table(2), 0}] == (table(3) | 0x27));
    // Leaves (set_pte_attr()): P, U/S, A and D (6) always, so 0x65 read-
    // only; R/W added for a writable page, 0x67.
    CHECK(raw[{table(3), 1}] == 0x5065ULL);
    CHECK(raw[{table(3), 2}] == 0x6067ULL);
    // 2 MiB: PS (7) too; write-only is read-write in x86 paging.
    CHECK(raw[{table(2), 1}] == 0x2000e7ULL);
    CHECK(d->map(0x3000, 0x7000, k4K, Prot{}, ~0ULL) == -EINVAL);

    AmdConfig five;
    five.guest_levels = 5;
    memory::PhysSpace phys5;
    AmdUnit unit5("amd5", five, phys5);
    auto& dev5 = unit5.add_endpoint({"d0", 0x10, 20, true});
    std::unique_ptr<hw::Domain> d5;
    REQUIRE(unit5.alloc_first_stage_domain(dev5, &d5) == 0);
    CHECK(d5->levels() == 5);
    CHECK(d5->geometry().aperture.last == 0x00ffffffffffffffULL);
}
