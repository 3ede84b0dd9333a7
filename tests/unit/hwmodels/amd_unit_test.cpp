// The AMD-Vi unit as the Linux 6.12 amd driver presents it through
// iommufd: EFR and EFR2 for each topology config, read field by field at
// the bit positions of the AMD IOMMU specification (48882, "IOMMU
// Extended Feature Register"); hw_info bytes (6.18's amd_iommufd_hw_info());
// reserved regions; which domain requests and attachments are refused;
// the device table entries and GCR3 tables attach and detach write; and
// the event-log records a failed DMA would leave.
#include <catch2/catch.hpp>

#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <variant>

#include "hwmodels/amd/amd_unit.h"
#include "hwmodels/amd/amd_v1_domain.h"
#include "hwmodels/families.h"
#include "memory/phys_space.h"
#include "test_params.h"

using namespace ioasid;
using hw::Access;
using hw::DmaRun;
using hw::Domain;
using hw::DomainRequest;
using hw::Endpoint;
using hw::Fault;
using hw::FaultReason;
using hw::Prot;
using hw::Span;
using hw::amd::AmdConfig;
using hw::amd::AmdUnit;

namespace {

constexpr std::uint64_t k4K = 1ULL << 12;
constexpr Prot kRW{true, true};
constexpr Prot kRO{true, false};

// A register field read at the specification's position, written out
// here rather than taken from the code under test.
constexpr std::uint64_t bits(std::uint64_t reg, unsigned hi, unsigned lo)
{
    return (reg >> lo) & ((std::uint64_t{1} << (hi - lo + 1)) - 1);
}

// The n-th table page the unit's TableMemory hands out on a fresh
// PhysSpace (4 GiB up, from the low end).
constexpr std::uint64_t table(unsigned n)
{
    return 0x100000000ULL + n * 0x1000;
}

using test::TestParams;

struct Rig {
    memory::PhysSpace phys;
    AmdUnit unit;
    Endpoint& dev;      // 20-bit PASIDs, dirty tracking
    Endpoint& nopasid;  // no PASID
    Endpoint& nodirty;  // cannot do dirty tracking
    Endpoint& pasid8;   // 8-bit PASIDs

    explicit Rig(AmdConfig config = {})
        : unit("amd0", config, phys), dev(unit.add_endpoint({"dev", 0x18, 20, true})),
          nopasid(unit.add_endpoint({"nopasid", 0x20, 0, true})),
          nodirty(unit.add_endpoint({"nodirty", 0x28, 20, false})),
          pasid8(unit.add_endpoint({"pasid8", 0x30, 8, true}))
    {
    }

    std::unique_ptr<Domain> v1(const DomainRequest& request = {})
    {
        std::unique_ptr<Domain> d;
        REQUIRE(unit.alloc_domain(dev, request, &d) == 0);
        return d;
    }
    std::unique_ptr<Domain> v2()
    {
        std::unique_ptr<Domain> d;
        REQUIRE(unit.alloc_first_stage_domain(dev, &d) == 0);
        return d;
    }
    std::optional<Fault> dma(Endpoint& ep, std::optional<std::uint32_t> pasid, std::uint64_t iova, Access access,
                             std::vector<DmaRun>* runs = nullptr)
    {
        std::vector<DmaRun> local;
        return unit.translate(ep, pasid, iova, 8, access, runs ? runs : &local);
    }
};

} // namespace

// ------------------------------------------------------------------ EFR

TEST_CASE("EFR of the default unit, field by field and as a whole", "[amd]")
{
    Rig r;
    const std::uint64_t efr = r.unit.registers().efr;
    CHECK(bits(efr, 0, 0) == 1);   // PrefSup
    CHECK(bits(efr, 1, 1) == 1);   // PPRSup
    CHECK(bits(efr, 2, 2) == 1);   // XTSup
    CHECK(bits(efr, 3, 3) == 1);   // NXSup
    CHECK(bits(efr, 4, 4) == 1);   // GTSup
    CHECK(bits(efr, 5, 5) == 0);
    CHECK(bits(efr, 6, 6) == 1);   // IASup
    CHECK(bits(efr, 7, 7) == 0);   // GASup: no guest virtual APIC
    CHECK(bits(efr, 8, 8) == 1);   // HESup
    CHECK(bits(efr, 9, 9) == 1);   // PCSup
    CHECK(bits(efr, 11, 10) == 2); // HATS: six levels
    CHECK(bits(efr, 13, 12) == 0); // GATS: four levels
    CHECK(bits(efr, 15, 14) == 1); // GLXSup: two GCR3 levels for 16 bits
    CHECK(bits(efr, 36, 32) == 15); // PASmax: 16-bit PASIDs
    CHECK(bits(efr, 48, 48) == 1); // GIOSup
    CHECK(bits(efr, 49, 49) == 1); // HASup
    CHECK(bits(efr, 50, 50) == 1); // EPHSup
    CHECK(bits(efr, 52, 52) == 1); // HDSup
    CHECK(bits(efr, 63, 63) == 0); // SNPSup
    // Bits 0-4, 6, 8, 9 = 0x35f; HATS 2 = 0x800; GLX 1 = 0x4000;
    // PASmax 15 << 32; bits 48, 49, 50, 52 = 0x17 << 48.
    CHECK(efr == 0x0017000f00004b5fULL);
    CHECK(r.unit.registers().efr2 == 0);
    CHECK(r.unit.max_pasid_bits() == 16);
}

TEST_CASE("EFR follows each topology key", "[amd]")
{
    AmdConfig c;
    c.dirty_tracking = false;
    c.levels = 4;
    c.guest_levels = 5;
    c.pasid_bits = 8;
    Rig r(c);
    const std::uint64_t efr = r.unit.registers().efr;
    CHECK(bits(efr, 49, 49) == 0);
    CHECK(bits(efr, 52, 52) == 0);
    CHECK(bits(efr, 11, 10) == 0);
    CHECK(bits(efr, 13, 12) == 1);
    CHECK(bits(efr, 36, 32) == 7);
    CHECK(bits(efr, 15, 14) == 0); // 8 bits fit one GCR3 level

    AmdConfig nogt;
    nogt.guest_translation = false;
    nogt.pasid_bits = 0;
    Rig g(nogt);
    const std::uint64_t e = g.unit.registers().efr;
    CHECK(bits(e, 1, 1) == 0);
    CHECK(bits(e, 4, 3) == 0);
    CHECK(bits(e, 15, 12) == 0);
    CHECK(bits(e, 36, 32) == 0);
    CHECK(bits(e, 48, 48) == 0);
    CHECK(bits(e, 50, 50) == 0);
    CHECK(g.unit.max_pasid_bits() == 0);
}

TEST_CASE("the amd family reads its keys and rejects contradictions naming the key", "[amd]")
{
    memory::PhysSpace phys;
    const hw::Family* family = hw::find_family("amd");
    REQUIRE(family);
    TestParams defaults({});
    auto unit = family->create("amd0", defaults, phys);
    CHECK(unit->family() == "amd");
    CHECK(dynamic_cast<AmdUnit&>(*unit).registers().efr == 0x0017000f00004b5fULL);

    TestParams keys({{"levels", std::int64_t{5}},
                     {"dirty_tracking", false},
                     {"guest_levels", std::int64_t{5}},
                     {"pasid_bits", std::int64_t{10}}});
    auto kept = family->create("amd1", keys, phys);
    const std::uint64_t efr = dynamic_cast<AmdUnit&>(*kept).registers().efr;
    CHECK(bits(efr, 11, 10) == 1);
    CHECK(bits(efr, 52, 52) == 0);
    CHECK(bits(efr, 13, 12) == 1);
    CHECK(bits(efr, 36, 32) == 9);
    CHECK(bits(efr, 15, 14) == 1);

    // guest_translation = false alone is valid: the PASID width follows it.
    TestParams nogt({{"guest_translation", false}});
    auto plain = family->create("amd2", nogt, phys);
    CHECK(bits(dynamic_cast<AmdUnit&>(*plain).registers().efr, 36, 32) == 0);

    auto message = [&](std::map<std::string, TestParams::Value, std::less<>> values) {
        TestParams p(std::move(values));
        try {
            (void)family->create("bad", p, phys);
        } catch (const hw::UnitParamError& e) {
            return std::string(e.what());
        }
        FAIL("no UnitParamError");
        return std::string();
    };
    CHECK_THAT(message({{"levels", std::int64_t{3}}}), Catch::Contains("t.toml:levels"));
    CHECK_THAT(message({{"guest_levels", std::int64_t{6}}}), Catch::Contains("t.toml:guest_levels"));
    CHECK_THAT(message({{"pasid_bits", std::int64_t{17}}}), Catch::Contains("t.toml:pasid_bits"));
    CHECK_THAT(message({{"pasid_bits", std::int64_t{0}}}), Catch::Contains("t.toml:pasid_bits"));
    CHECK_THAT(message({{"guest_translation", false}, {"pasid_bits", std::int64_t{4}}}),
               Catch::Contains("t.toml:pasid_bits") && Catch::Contains("guest_translation"));
}

// ------------------------------------------------------- hw_info, resv regions

TEST_CASE("hw_info: struct iommu_hw_info_amd bytes, dirty capability, PASID width", "[amd]")
{
    Rig r;
    auto info = r.unit.hw_info(r.dev);
    CHECK(info.type == 4); // IOMMU_HW_INFO_TYPE_AMD
    // efr then efr2, 8 bytes each, little-endian.
    const std::vector<std::byte> expect = {
        std::byte{0x5f}, std::byte{0x4b}, std::byte{0x00}, std::byte{0x00},
        std::byte{0x0f}, std::byte{0x00}, std::byte{0x17}, std::byte{0x00},
        std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}};
    CHECK(info.data == expect);
    CHECK(info.capabilities == IOMMU_HW_CAP_DIRTY_TRACKING);
    // ilog2(min(2^20, 2^16 - 1)) = 15: the unit's count is one short.
    CHECK(info.max_pasid_log2 == 15);
    CHECK(r.unit.max_pasids(r.dev) == 0xffff);
    // A narrower device: ilog2(min(2^8, 0xffff)) = 8.
    CHECK(r.unit.hw_info(r.pasid8).max_pasid_log2 == 8);
    CHECK(r.unit.hw_info(r.nopasid).max_pasid_log2 == 0);
    CHECK(r.unit.hw_info(r.nodirty).capabilities == 0);

    AmdConfig c;
    c.dirty_tracking = false;
    c.guest_translation = false;
    c.pasid_bits = 0;
    Rig plain(c);
    auto p = plain.unit.hw_info(plain.dev);
    CHECK(p.capabilities == 0);
    CHECK(p.max_pasid_log2 == 0);
}

TEST_CASE("reserved regions: the MSI window and the HyperTransport range", "[amd]")
{
    Rig r;
    const std::vector<Span> expect = {{0xfee00000, 0xfeefffff}, {0xfd00000000, 0xffffffffff}};
    CHECK(r.unit.reserved_regions(r.dev) == expect);
    CHECK(r.unit.reserved_regions(r.nopasid) == expect);
}

// ------------------------------------------------------------- domains

TEST_CASE("domain requests the 6.12 driver refuses with EOPNOTSUPP", "[amd]")
{
    Rig r;
    std::unique_ptr<Domain> d;
    CHECK(r.unit.alloc_domain(r.dev, {.nest_parent = true}, &d) == -EOPNOTSUPP);
    CHECK(r.unit.alloc_domain(r.dev, {.pasid = true}, &d) == -EOPNOTSUPP);
    CHECK(r.unit.alloc_domain(r.nodirty, {.dirty_tracking = true}, &d) == -EOPNOTSUPP);
    CHECK(r.unit.alloc_domain(r.dev, {.dirty_tracking = true}, &d) == 0);
    CHECK(d->format_name() == "amd-v1");

    AmdConfig c;
    c.dirty_tracking = false;
    c.guest_translation = false;
    c.pasid_bits = 0;
    Rig plain(c);
    CHECK(plain.unit.alloc_domain(plain.dev, {.dirty_tracking = true}, &d) == -EOPNOTSUPP);
    CHECK(plain.unit.alloc_first_stage_domain(plain.dev, &d) == -EOPNOTSUPP);
}

TEST_CASE("check_attach: the amd driver's compatibility rules", "[amd]")
{
    Rig r;
    Rig other;
    auto v1 = r.v1();
    auto dirty = r.v1({.dirty_tracking = true});
    auto v2 = r.v2();
    auto foreign = other.v1();
    CHECK(r.unit.check_attach(r.dev, std::nullopt, *v1) == 0);
    CHECK(r.unit.check_attach(r.dev, std::nullopt, *foreign) == -EINVAL);
    CHECK(r.unit.check_attach(r.nodirty, std::nullopt, *dirty) == -EINVAL);
    CHECK(r.unit.check_attach(r.dev, std::nullopt, *dirty) == 0);
    CHECK(r.unit.check_attach(r.dev, std::nullopt, *v2) == 0);

    // PASIDs: a v1 domain has no set_dev_pasid op.
    CHECK(r.unit.check_attach(r.dev, 5, *v1) == -EOPNOTSUPP);
    // A v2 domain needs the RID on a v2 domain (the GCR3 table).
    CHECK(r.unit.check_attach(r.dev, 5, *v2) == -EINVAL);
    r.unit.attach(r.dev, std::nullopt, v1.get());
    CHECK(r.unit.check_attach(r.dev, 5, *v2) == -EINVAL);
    r.unit.attach(r.dev, std::nullopt, v2.get());
    CHECK(r.unit.check_attach(r.dev, 5, *v2) == 0);
    CHECK(r.unit.check_attach(r.dev, 0, *v2) == -EINVAL);
    // max_pasids is 0xffff: PASID 0xffff is out, 0xfffe in.
    CHECK(r.unit.check_attach(r.dev, 0xfffe, *v2) == 0);
    CHECK(r.unit.check_attach(r.dev, 0xffff, *v2) == -EINVAL);
    CHECK(r.unit.check_attach(r.nopasid, 1, *v2) == -EINVAL);
    r.unit.attach(r.dev, std::nullopt, nullptr);
}

// ------------------------------------------------------- device table

TEST_CASE("DTE of a v1 attachment, with and without dirty tracking, and after detach", "[amd][dte]")
{
    Rig r;
    using Q = std::array<std::uint64_t, 4>;
    // Before any attach the driver's table has V and TV only.
    CHECK(r.unit.dte(0x18) == Q{0x3, 0, 0, 0});
    auto d = r.v1({.dirty_tracking = true});
    REQUIRE(d->root_pa() == table(0));
    REQUIRE(d->tag() == 1);
    r.unit.attach(r.dev, std::nullopt, d.get());
    // qword 0: root 0x100000000 | Mode 3 (11:9 = 0x600) | IR (61) | IW (62)
    // | TV (1) | V (0). qword 1: DomainID 1.
    CHECK(r.unit.dte(0x18) == Q{0x6000000100000603ULL, 1, 0, 0});
    // amd_iommu_set_dirty_tracking(): HA (7) and HD (8) = 0x180.
    REQUIRE(d->set_dirty_tracking(true) == 0);
    CHECK(r.unit.dte(0x18) == Q{0x6000000100000783ULL, 1, 0, 0});
    REQUIRE(d->set_dirty_tracking(false) == 0);
    // The table grows to four levels: new root table(3) (the map took
    // table(1) and table(2) first), Mode 4 (0x800).
    REQUIRE(d->map(0, 0x5000, k4K, kRW, k4K) == 0);
    REQUIRE(d->map(1ULL << 39, 0x6000, k4K, kRW, k4K) == 0);
    CHECK(d->root_pa() == table(3));
    CHECK(r.unit.dte(0x18) == Q{0x6000000100003803ULL, 1, 0, 0});
    // clear_dte_entry(): V and TV, DomainID gone.
    r.unit.attach(r.dev, std::nullopt, nullptr);
    CHECK(r.unit.dte(0x18) == Q{0x3, 0, 0, 0});
    // Another device's entry never changed.
    CHECK(r.unit.dte(0x20) == Q{0x3, 0, 0, 0});
}

TEST_CASE("DTE and GCR3 table of a v2 attachment and of PASIDs", "[amd][dte]")
{
    Rig r;
    using Q = std::array<std::uint64_t, 4>;
    auto v2 = r.v2();     // root table(0)
    REQUIRE(v2->root_pa() == table(0));
    r.unit.attach(r.dev, std::nullopt, v2.get());
    // init_gcr3_table(): GCR3 tables come from the unit's own pool, whose
    // block follows the page tables': the GCR3 root is 0x100200000, two
    // levels (GLX 1) for 0xffff PASIDs, the level-0 table for PASIDs
    // 0..511 at 0x100201000.
    // qword 0: V, TV, IR, IW = 0x6000000000000003; GIOV (54), GV (55),
    // GLX 1 (56); GCR3[14:12] = 0 at 60:58; Mode 0.
    // qword 1: GCR3[30:15] = 0x40 at 31:16 (0x400000), GCR3[51:31] = 2 at
    // 63:43 (0x100000000000), DomainID 1.
    CHECK(r.unit.dte(0x18) == Q{0x61c0000000000003ULL, 0x0000100000400001ULL, 0, 0});
    // GCR3[0] = the v2 root | valid.
    CHECK(r.unit.gcr3_entry(0x18, 0) == 0x100000001ULL);

    auto other = r.v2(); // root table(1)
    REQUIRE(other->root_pa() == table(1));
    r.unit.attach(r.dev, 5, other.get());
    CHECK(r.unit.gcr3_entry(0x18, 5) == 0x100001001ULL);
    // PASID 0x300 is in the second level-0 table, allocated now.
    r.unit.attach(r.dev, 0x300, other.get());
    CHECK(r.unit.gcr3_entry(0x18, 0x300) == 0x100001001ULL);
    CHECK(r.unit.dte(0x18)[0] == 0x61c0000000000003ULL);
    // amd_iommu_clear_gcr3().
    r.unit.attach(r.dev, 5, nullptr);
    CHECK(r.unit.gcr3_entry(0x18, 5) == 0);
    CHECK(r.unit.gcr3_entry(0x18, 0x300) == 0x100001001ULL);
    r.unit.attach(r.dev, 0x300, nullptr);

    // A device with 8-bit PASIDs gets one level (GLX 0).
    r.unit.attach(r.pasid8, std::nullopt, v2.get());
    CHECK(bits(r.unit.dte(0x30)[0], 57, 56) == 0);
    CHECK(bits(r.unit.dte(0x30)[0], 55, 55) == 1);
    r.unit.attach(r.pasid8, std::nullopt, nullptr);
    CHECK(r.unit.dte(0x30) == Q{0x3, 0, 0, 0});

    // Detach frees the GCR3 table: the DTE is back to V and TV.
    r.unit.attach(r.dev, std::nullopt, nullptr);
    CHECK(r.unit.dte(0x18) == Q{0x3, 0, 0, 0});
    CHECK(r.unit.gcr3_entry(0x18, 0) == 0);

    // Five-level v2 tables: GPT level in qword 2, bit 54.
    AmdConfig five;
    five.guest_levels = 5;
    Rig f(five);
    auto d5 = f.v2();
    f.unit.attach(f.dev, std::nullopt, d5.get());
    CHECK(f.unit.dte(0x18)[2] == (1ULL << 54));
    f.unit.attach(f.dev, std::nullopt, nullptr);
}

// ------------------------------------------------------------- DMA

TEST_CASE("DMA through v1 and v2 tables, PASIDs through the GCR3 table", "[amd][dma]")
{
    Rig r;
    auto v1 = r.v1();
    REQUIRE(v1->map(0x8000, 0x120000, 0x8000, kRW, ~0ULL) == 0); // a 32 KiB NextLevel-7 page
    r.unit.attach(r.dev, std::nullopt, v1.get());
    std::vector<DmaRun> runs;
    CHECK_FALSE(r.unit.translate(r.dev, std::nullopt, 0x9ff0, 0x20, Access::write, &runs));
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].pa == 0x121ff0);
    CHECK(runs[0].length == 0x20);

    auto v2 = r.v2();
    auto v2p = r.v2();
    REQUIRE(v2->map(0x1000, 0x300000, k4K, kRW, ~0ULL) == 0);
    REQUIRE(v2p->map(0x1000, 0x400000, k4K, kRW, ~0ULL) == 0);
    r.unit.attach(r.dev, std::nullopt, v2.get());
    r.unit.attach(r.dev, 7, v2p.get());
    runs.clear();
    CHECK_FALSE(r.unit.translate(r.dev, std::nullopt, 0x1010, 8, Access::read, &runs));
    CHECK_FALSE(r.unit.translate(r.dev, 7, 0x1010, 8, Access::read, &runs));
    REQUIRE(runs.size() == 2);
    CHECK(runs[0].pa == 0x300010);
    CHECK(runs[1].pa == 0x400010);
    r.unit.attach(r.dev, 7, nullptr);
    r.unit.attach(r.dev, std::nullopt, nullptr);
}

TEST_CASE("dirty tracking through DMA: D in the replica written, the page reported whole", "[amd][dma][dirty]")
{
    Rig r;
    auto d = r.v1({.dirty_tracking = true});
    REQUIRE(d->map(0x8000, 0x120000, 0x8000, kRW, ~0ULL) == 0);
    r.unit.attach(r.dev, std::nullopt, d.get());
    std::vector<std::pair<std::uint64_t, std::uint64_t>> seen;
    auto record = [&](std::uint64_t iova, std::uint64_t size) { seen.emplace_back(iova, size); };
    // Tracking off: HAD clear, nothing is marked.
    CHECK_FALSE(r.dma(r.dev, std::nullopt, 0xa000, Access::write));
    d->read_and_clear_dirty(0, 1ULL << 20, true, record);
    CHECK(seen.empty());
    REQUIRE(d->set_dirty_tracking(true) == 0);
    CHECK_FALSE(r.dma(r.dev, std::nullopt, 0xa000, Access::write));
    d->read_and_clear_dirty(0, 1ULL << 20, true, record);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0] == std::pair<std::uint64_t, std::uint64_t>{0x8000, 0x8000});
    // Cleared: the next write through the cached translation marks it again.
    seen.clear();
    CHECK_FALSE(r.dma(r.dev, std::nullopt, 0xc000, Access::write));
    d->read_and_clear_dirty(0, 1ULL << 20, true, record);
    CHECK(seen.size() == 1);
    r.unit.attach(r.dev, std::nullopt, nullptr);
}

TEST_CASE("faults are IO_PAGE_FAULT and ILLEGAL_DEV_TABLE_ENTRY event records", "[amd][dma]")
{
    Rig r;
    auto d = r.v1();
    REQUIRE(d->tag() == 1);
    REQUIRE(d->map(0x1000, 0x5000, k4K, kRO, ~0ULL) == 0);
    // Blocked: the cleared DTE denies the access: IO_PAGE_FAULT (2 << 28),
    // PE (6) in the flags at 27:16, DomainID 0.
    auto f = r.dma(r.dev, std::nullopt, 0x1000, Access::read);
    REQUIRE(f);
    CHECK(f->reason == FaultReason::blocked);
    CHECK(f->hw_code == 0x20400000u);
    r.unit.attach(r.dev, std::nullopt, d.get());
    // Not present: no flags but RW (5) for a write; DomainID 1 in 15:0.
    f = r.dma(r.dev, std::nullopt, 0x2000, Access::read);
    REQUIRE(f);
    CHECK(f->reason == FaultReason::not_present);
    CHECK(f->hw_code == 0x20000001u);
    f = r.dma(r.dev, std::nullopt, 0x2000, Access::write);
    CHECK(f->hw_code == 0x20200001u);
    // Write to a read-only page: PR (4), RW (5), PE (6) = 0x70.
    f = r.dma(r.dev, std::nullopt, 0x1000, Access::write);
    REQUIRE(f);
    CHECK(f->reason == FaultReason::permission);
    CHECK(f->hw_code == 0x20700001u);
    // A PASID beyond the 16 bits of the unit.
    f = r.dma(r.dev, 1u << 16, 0x1000, Access::read);
    REQUIRE(f);
    CHECK(f->reason == FaultReason::pasid_range);
    CHECK(f->hw_code == 0x20000000u);
    r.unit.attach(r.dev, std::nullopt, nullptr);

    // EFR.HATS says four levels; 6.12 grows the table to five for an IOVA
    // at 2^48 and writes Mode 5: the hardware rejects the DTE
    // (ILLEGAL_DEV_TABLE_ENTRY, 1 << 28) for every request. Bits 15:0 of
    // that record are the PASID, none here, not the DomainID (1).
    AmdConfig four;
    four.levels = 4;
    Rig h(four);
    auto deep = h.v1();
    REQUIRE(deep->map(0x1000, 0x5000, k4K, kRW, ~0ULL) == 0);
    h.unit.attach(h.dev, std::nullopt, deep.get());
    CHECK_FALSE(h.dma(h.dev, std::nullopt, 0x1000, Access::read));
    REQUIRE(deep->map(1ULL << 48, 0x6000, k4K, kRW, ~0ULL) == 0);
    h.unit.invalidate_domain(*deep);
    f = h.dma(h.dev, std::nullopt, 0x1000, Access::read);
    REQUIRE(f);
    CHECK(f->hw_code == 0x10000000u);
    CHECK(bits(h.unit.dte(0x18)[0], 11, 9) == 5);
    h.unit.attach(h.dev, std::nullopt, nullptr);
}
