// The POWER sPAPR TCE unit: its two DMA windows, the big-endian TCEs and
// indirect levels it writes (checked as raw bytes of table memory against
// values worked out from asm/tce.h and pnv_tce()), what a domain refuses
// to map, the device's reserved regions, topology validation, and the
// faults and fault codes of the DMA path.
#include <catch2/catch.hpp>

#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <variant>

#include "hwmodels/families.h"
#include "hwmodels/ppc_tce/tce_domain.h"
#include "hwmodels/ppc_tce/tce_unit.h"
#include "memory/phys_space.h"
#include "test_params.h"

using namespace ioasid;
using hw::Access;
using hw::DmaRun;
using hw::DomainRequest;
using hw::Endpoint;
using hw::FaultReason;
using hw::Prot;
using hw::Span;
using hw::ppc_tce::FaultCode;
using hw::ppc_tce::TceConfig;
using hw::ppc_tce::TceDomain;
using hw::ppc_tce::TceUnit;

namespace {

using Pairs = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

// DMA runs as (pa, length) pairs, for comparison.
Pairs pairs(const std::vector<DmaRun>& runs)
{
    Pairs out;
    for (const DmaRun& run : runs)
        out.emplace_back(run.pa, run.length);
    return out;
}

constexpr std::uint64_t k4K = 1ULL << 12;
constexpr std::uint64_t k64K = 1ULL << 16;
constexpr std::uint64_t k1G = 1ULL << 30;
constexpr std::uint64_t kDma64 = 1ULL << 59;
constexpr Prot kRW{true, true};
constexpr Prot kRO{true, false};
constexpr Prot kWO{false, true};

using test::TestParams;

struct Rig {
    memory::PhysSpace phys;
    TceUnit unit{"phb0", TceConfig{}, phys};
    Endpoint& dev = unit.add_endpoint({"d0", 0x100, 0, true});

    std::unique_ptr<TceDomain> domain()
    {
        std::unique_ptr<hw::Domain> d;
        REQUIRE(unit.alloc_domain(dev, {}, &d) == 0);
        return std::unique_ptr<TceDomain>(static_cast<TceDomain*>(d.release()));
    }

    // The 8 bytes at a physical address, as stored (host order of the
    // little-endian host, so a big-endian TCE reads byte-swapped).
    std::uint64_t stored(std::uint64_t pa)
    {
        auto where = phys.resolve(pa);
        REQUIRE(where);
        std::uint64_t raw = 0;
        REQUIRE(where->backing->read(where->offset, std::as_writable_bytes(std::span(&raw, 1))) == 0);
        return raw;
    }
    // An indirect entry's next table, checked to carry TCE_PCI_READ|WRITE.
    std::uint64_t next_table(std::uint64_t table, unsigned index)
    {
        const std::uint64_t value = __builtin_bswap64(stored(table + 8 * index));
        CHECK((value & 3) == 3);
        CHECK((value & 0xffc) == 0);
        return value & ~std::uint64_t{3};
    }
};

} // namespace

TEST_CASE("TCE: the 32-bit window writes big-endian 4 KiB TCEs under one indirect level", "[ppc_tce]")
{
    Rig r;
    auto d = r.domain();
    // 1 GiB of 4 KiB TCEs is 2^18 entries: two levels of 9 index bits.
    REQUIRE(d->window(0).window().levels == 2);
    // IOVA 0x203000: TCE index 0x203, top level entry 1, leaf entry 3.
    REQUIRE(d->map(0x203000, 0x123456000, k4K, kRW, UINT64_MAX) == 0);
    const std::uint64_t leaf = r.next_table(d->window(0).root(), 1);
    // TCE = RPN<<12 | TCE_PCI_WRITE(2) | TCE_PCI_READ(1) = 0x0000000123456003,
    // stored big-endian: bytes 00 00 00 01 23 45 60 03, which a
    // little-endian load reads as 0x0360452301000000.
    CHECK(r.stored(leaf + 8 * 3) == 0x0360452301000000ULL);
    // Read-only at the next page: 0x123457001, bytes 00 00 00 01 23 45 70 01.
    REQUIRE(d->map(0x204000, 0x123457000, k4K, kRO, UINT64_MAX) == 0);
    CHECK(r.stored(leaf + 8 * 4) == 0x0170452301000000ULL);
    // Write-only gets READ too, as pnv_tce_build() adds it: 0x123458003.
    REQUIRE(d->map(0x205000, 0x123458000, k4K, kWO, UINT64_MAX) == 0);
    CHECK(r.stored(leaf + 8 * 5) == 0x0380452301000000ULL);
    CHECK(r.stored(leaf + 8 * 6) == 0);

    SECTION("unmap writes zero and keeps the level, as pnv_tce_free() does")
    {
        d->unmap(0x203000, 2 * k4K);
        CHECK(r.stored(leaf + 8 * 3) == 0);
        CHECK(r.stored(leaf + 8 * 4) == 0);
        CHECK(r.stored(leaf + 8 * 5) == 0x0380452301000000ULL);
        CHECK(r.next_table(d->window(0).root(), 1) == leaf);
    }
    SECTION("lookup decodes what is stored")
    {
        auto t = d->lookup(0x204abc);
        CHECK(t.present);
        CHECK(t.page_iova == 0x204000);
        CHECK(t.page_size == k4K);
        CHECK(t.page_pa == 0x123457000);
        CHECK(t.prot == kRO);
        CHECK(d->lookup(0x205000).prot == kRW);
    }
}

TEST_CASE("TCE: the 64-bit window at 2^59 writes 64 KiB TCEs under two indirect levels", "[ppc_tce]")
{
    Rig r;
    auto d = r.domain();
    // 64 GiB of 64 KiB TCEs is 2^20 entries: three levels.
    REQUIRE(d->window(1).window().levels == 3);
    REQUIRE(d->window(1).window().base == kDma64);
    // TCE index (1 << 18) | (2 << 9) | 3 = 0x40403: top entry 1, middle 2, leaf 3.
    const std::uint64_t iova = kDma64 + 0x40403ULL * k64K;
    REQUIRE(iova == 0x0800000404030000ULL);
    REQUIRE(d->map(iova, 0x234560000, 2 * k64K, kRW, UINT64_MAX) == 0);
    const std::uint64_t mid = r.next_table(d->window(1).root(), 1);
    const std::uint64_t leaf = r.next_table(mid, 2);
    // 0x0000000234560003 -> bytes 00 00 00 02 34 56 00 03 -> 0x0300563402000000;
    // the next 64 KiB page: 0x234570003 -> 0x0300573402000000.
    CHECK(r.stored(leaf + 8 * 3) == 0x0300563402000000ULL);
    CHECK(r.stored(leaf + 8 * 4) == 0x0300573402000000ULL);
    CHECK(r.stored(d->window(1).root()) == 0); // nothing else allocated

    auto t = d->lookup(iova + k64K + 0x1234);
    CHECK(t.present);
    CHECK(t.page_iova == iova + k64K);
    CHECK(t.page_size == k64K);
    CHECK(t.page_pa == 0x234570000);

    SECTION("the dump shows each level: indirect entries first, then the TCEs")
    {
        std::vector<hw::DumpEntry> entries;
        d->dump([&](const hw::DumpEntry& e) { entries.push_back(e); });
        // Window 0 is empty; window 1 has top, middle, and two leaves.
        REQUIRE(entries.size() == 4);
        CHECK(entries[0].level == 2);
        CHECK(entries[0].index == 1);
        CHECK(entries[0].iova == kDma64 + (1ULL << 18) * k64K);
        CHECK(entries[0].size == (1ULL << 18) * k64K);
        CHECK(!entries[0].leaf);
        CHECK(entries[2].level == 0);
        CHECK(entries[2].raw == 0x234560003);
        CHECK(entries[2].leaf);
        CHECK(entries[2].fields == "rpn=0x234560000 R W");
        CHECK(entries[3].iova == iova + k64K);
    }
}

TEST_CASE("TCE: what a domain refuses to map", "[ppc_tce]")
{
    Rig r;
    auto d = r.domain();
    const std::uint64_t w64 = kDma64 + k1G;
    // The 64 KiB window takes nothing smaller or misaligned.
    CHECK(d->map(w64 + k4K, 0x200000000, k64K, kRW, UINT64_MAX) == -EINVAL);
    CHECK(d->map(w64, 0x200001000, k64K, kRW, UINT64_MAX) == -EINVAL);
    CHECK(d->map(w64, 0x200000000, k64K + k4K, kRW, UINT64_MAX) == -EINVAL);
    CHECK(d->map(w64, 0x200000000, k4K, kRW, UINT64_MAX) == -EINVAL);
    // With large pages off the core hands out 4 KiB leaves only.
    CHECK(d->map(w64, 0x200000000, k64K, kRW, k4K) == -EINVAL);
    // Outside both windows, or across the gap.
    CHECK(d->map(k1G, 0x200000000, k4K, kRW, UINT64_MAX) == -EINVAL);
    CHECK(d->map(kDma64 - k4K, 0x200000000, 2 * k4K, kRW, UINT64_MAX) == -EINVAL);
    CHECK(d->map(k1G - k4K, 0x200000000, 2 * k4K, kRW, UINT64_MAX) == -EINVAL);
    CHECK(d->map(kDma64 + (1ULL << 36), 0x200000000, k64K, kRW, UINT64_MAX) == -EINVAL);
    // A TCE without permission is no mapping.
    CHECK(d->map(0, 0x200000000, k4K, Prot{}, UINT64_MAX) == -EINVAL);
    // Nothing is written by any of these.
    std::size_t entries = 0;
    d->dump([&](const hw::DumpEntry&) { ++entries; });
    CHECK(entries == 0);

    // Taken TCEs: -EEXIST, and what the call wrote is cleared again.
    REQUIRE(d->map(0x2000, 0x300002000, k4K, kRW, UINT64_MAX) == 0);
    CHECK(d->map(0x1000, 0x300001000, 2 * k4K, kRW, UINT64_MAX) == -EEXIST);
    CHECK(!d->lookup(0x1000).present);
    CHECK(d->lookup(0x2000).page_pa == 0x300002000);
    REQUIRE(d->map(w64, 0x200000000, 2 * k64K, kRW, UINT64_MAX) == 0);
}

TEST_CASE("TCE unit: geometry, reserved regions, hw_info and refused requests", "[ppc_tce]")
{
    Rig r;
    auto d = r.domain();
    CHECK(d->geometry().aperture == Span{0, kDma64 + (1ULL << 36) - 1});
    CHECK(d->geometry().pgsize_bitmap == (k4K | k64K));
    CHECK(d->format_name() == "ppc-tce");
    // Between the windows: [1 GiB, 2^59 - 1].
    CHECK(r.unit.reserved_regions(r.dev) == std::vector<Span>{{k1G, kDma64 - 1}});

    const hw::HwInfo info = r.unit.hw_info(r.dev);
    CHECK(info.type == IOMMU_HW_INFO_TYPE_NONE);
    CHECK(info.data.empty());
    CHECK(info.capabilities == 0);
    CHECK(info.max_pasid_log2 == 0);

    std::unique_ptr<hw::Domain> out;
    CHECK(r.unit.alloc_domain(r.dev, {.nest_parent = true}, &out) == -EOPNOTSUPP);
    CHECK(r.unit.alloc_domain(r.dev, {.dirty_tracking = true}, &out) == -EOPNOTSUPP);
    CHECK(r.unit.alloc_domain(r.dev, {.pasid = true}, &out) == -EOPNOTSUPP);
    CHECK(!out);
    CHECK(d->set_dirty_tracking(true) == -EOPNOTSUPP);
}

TEST_CASE("TCE unit: DMA through both windows and its faults", "[ppc_tce]")
{
    Rig r;
    auto d = r.domain();
    std::vector<DmaRun> runs;
    auto fault = [&](std::uint64_t iova, Access access) {
        runs.clear();
        auto f = r.unit.translate(r.dev, hw::kNoPasid, iova, 16, access, &runs);
        REQUIRE(f);
        return *f;
    };

    // Nothing attached: the blocked domain leaves the PE without windows.
    auto f = fault(0x1000, Access::read);
    CHECK(f.reason == FaultReason::blocked);
    CHECK(f.hw_code == static_cast<std::uint32_t>(FaultCode::tve_invalid));

    r.unit.attach(r.dev, hw::kNoPasid, d.get());
    REQUIRE(d->map(0x1000, 0x400001000, k4K, kRO, UINT64_MAX) == 0);
    REQUIRE(d->map(kDma64, 0x400010000, k64K, kWO, UINT64_MAX) == 0);
    CHECK(!r.unit.translate(r.dev, hw::kNoPasid, 0x1ff0, 16, Access::read, &runs));
    CHECK(pairs(runs) == Pairs{{0x400001ff0, 16}});
    runs.clear();
    // A write-only mapping reads too: its TCE has READ.
    CHECK(!r.unit.translate(r.dev, hw::kNoPasid, kDma64 + 0xfff8, 8, Access::read, &runs));
    CHECK(pairs(runs) == Pairs{{0x40001fff8, 8}});

    f = fault(0x1000, Access::write);
    CHECK(f.reason == FaultReason::permission);
    CHECK(f.hw_code == static_cast<std::uint32_t>(FaultCode::tce_access));
    f = fault(0x2000, Access::read);
    CHECK(f.reason == FaultReason::not_present);
    CHECK(f.hw_code == static_cast<std::uint32_t>(FaultCode::tce_invalid));
    // Between the windows: inside the aperture, but no window decodes it.
    f = fault(k1G + 0x1000, Access::read);
    CHECK(f.reason == FaultReason::not_present);
    CHECK(f.hw_code == static_cast<std::uint32_t>(FaultCode::tve_invalid));
    CHECK(f.iova == k1G + 0x1000);
    // Past the 64-bit window: outside the aperture.
    f = fault(kDma64 + (1ULL << 36), Access::read);
    CHECK(f.reason == FaultReason::address_size);
    CHECK(f.hw_code == static_cast<std::uint32_t>(FaultCode::tve_invalid));

    // Unmapping kills the cached translation.
    d->unmap(0x1000, k4K);
    f = fault(0x1000, Access::read);
    CHECK(f.reason == FaultReason::not_present);
    r.unit.attach(r.dev, hw::kNoPasid, nullptr);
}

TEST_CASE("TCE topology: keys, defaults and what the PHB cannot have", "[ppc_tce]")
{
    memory::PhysSpace phys;
    auto make = [&](std::map<std::string, TestParams::Value, std::less<>> keys) {
        TestParams params(std::move(keys));
        return hw::find_family("ppc_tce")->create("phb", params, phys);
    };
    auto message_of = [&](std::map<std::string, TestParams::Value, std::less<>> keys) -> std::string {
        try {
            make(std::move(keys));
        } catch (const hw::UnitParamError& e) {
            return e.what();
        }
        return "";
    };

    SECTION("defaults")
    {
        auto unit = make({});
        const auto& c = static_cast<TceUnit&>(*unit).config();
        CHECK(c.dma32.base == 0);
        CHECK(c.dma32.size == k1G);
        CHECK(c.dma32.page_shift == 12);
        CHECK(c.dma32.levels == 2);
        CHECK(c.dma64.base == kDma64);
        CHECK(c.dma64.page_shift == 16);
        CHECK(c.dma64.levels == 3);
    }
    SECTION("a bigger 64-bit window needs and gets more levels; small windows two")
    {
        auto unit = make({{"dma64_size", std::int64_t{1} << 44}, {"dma32_size", std::int64_t{1} << 20}});
        const auto& c = static_cast<TceUnit&>(*unit).config();
        CHECK(c.dma64.levels == 4); // 2^28 TCEs
        CHECK(c.dma32.levels == 2); // POWERNV_IOMMU_DEFAULT_LEVELS
        Endpoint& e = unit->add_endpoint({"x", 1, 0, true});
        CHECK(unit->reserved_regions(e) == std::vector<Span>{{1ULL << 20, kDma64 - 1}});
    }
    SECTION("a window above 0 reserves what lies below it")
    {
        auto unit = make({{"dma32_base", std::int64_t{0x80000000}}, {"dma32_size", std::int64_t{0x80000000}}});
        Endpoint& e = unit->add_endpoint({"x", 1, 0, true});
        CHECK(unit->reserved_regions(e) == std::vector<Span>{{0, 0x7fffffff}, {0x100000000, kDma64 - 1}});
    }
    SECTION("bad values name their key")
    {
        CHECK_THAT(message_of({{"dma32_page_shift", std::int64_t{13}}}),
                   Catch::Contains("t.toml:dma32_page_shift") && Catch::Contains("12 or 16"));
        CHECK_THAT(message_of({{"dma64_page_shift", std::int64_t{20}}}), Catch::Contains("between 12 and 16"));
        CHECK_THAT(message_of({{"dma64_size", std::int64_t{3} << 30}}),
                   Catch::Contains("dma64_size") && Catch::Contains("power of two"));
        CHECK_THAT(message_of({{"dma32_size", std::int64_t{2048}}}), Catch::Contains("dma32_size"));
        CHECK_THAT(message_of({{"dma32_base", std::int64_t{0x800}}}), Catch::Contains("dma32_base"));
        CHECK_THAT(message_of({{"dma32_levels", std::int64_t{1}}}),
                   Catch::Contains("dma32_levels") && Catch::Contains("at least 2"));
        CHECK_THAT(message_of({{"dma64_levels", std::int64_t{5}}}),
                   Catch::Contains("dma64_levels") && Catch::Contains("2^55"));
        CHECK_THAT(message_of({{"dma64_levels", std::int64_t{6}}}), Catch::Contains("between 1 and 5"));
        CHECK_THAT(message_of({{"dma64_base", std::int64_t{0x20000000}}}),
                   Catch::Contains("dma64_base") && Catch::Contains("above the 32-bit window"));
    }
}
