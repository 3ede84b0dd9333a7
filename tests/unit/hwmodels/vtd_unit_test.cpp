// The VT-d unit as the Linux 6.12 intel driver presents it through
// iommufd: CAP/ECAP for each topology config, decoded field by field at the
// bit positions of the VT-d specification (11.4.2, 11.4.3); hw_info bytes;
// reserved regions; which domain requests are refused; attach rules; the
// entries a domain writes; dirty tracking through DMA; fault reasons; and
// the IOTLB serving a stale translation until it is invalidated.
#include <catch2/catch.hpp>

#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <variant>

#include "hwmodels/families.h"
#include "hwmodels/vtd/vtd_domain.h"
#include "hwmodels/vtd/vtd_unit.h"
#include "memory/phys_space.h"
#include "test_params.h"

using namespace ioasid;
using hw::Access;
using hw::DmaRun;
using hw::Domain;
using hw::DomainRequest;
using hw::Endpoint;
using hw::EndpointConfig;
using hw::Fault;
using hw::FaultReason;
using hw::Prot;
using hw::Span;
using hw::vtd::VtdConfig;
using hw::vtd::VtdUnit;

namespace {

constexpr std::uint64_t k4K = 1ULL << 12;
constexpr std::uint64_t k2M = 1ULL << 21;
constexpr std::uint64_t k1G = 1ULL << 30;
constexpr Prot kRW{true, true};
constexpr Prot kRO{true, false};
constexpr Prot kWO{false, true};

// A register field read at the specification's position, written out
// here rather than taken from the code under test.
constexpr std::uint64_t bits(std::uint64_t reg, unsigned hi, unsigned lo)
{
    return (reg >> lo) & ((std::uint64_t{1} << (hi - lo + 1)) - 1);
}

using test::TestParams;

struct Rig {
    memory::PhysSpace phys;
    VtdUnit unit;
    Endpoint& dev;      // 20-bit PASIDs, dirty tracking
    Endpoint& nopasid;  // no PASID
    Endpoint& nodirty;  // cannot do dirty tracking
    Endpoint& pasid8;   // 8-bit PASIDs

    explicit Rig(VtdConfig config = {})
        : unit("vtd0", config, phys), dev(unit.add_endpoint({"dev", 0x18, 20, true})),
          nopasid(unit.add_endpoint({"nopasid", 0x20, 0, true})),
          nodirty(unit.add_endpoint({"nodirty", 0x28, 20, false})),
          pasid8(unit.add_endpoint({"pasid8", 0x30, 8, true}))
    {
    }

    std::unique_ptr<Domain> domain(const DomainRequest& request = {}, Endpoint* on = nullptr)
    {
        std::unique_ptr<Domain> d;
        REQUIRE(unit.alloc_domain(on ? *on : dev, request, &d) == 0);
        return d;
    }
    std::unique_ptr<Domain> first_stage_domain()
    {
        std::unique_ptr<Domain> d;
        REQUIRE(unit.alloc_first_stage_domain(dev, &d) == 0);
        return d;
    }
};

// The raw leaf that translates `iova`, read from table memory.
std::uint64_t& leaf(Domain& d, std::uint64_t iova)
{
    auto* ss = dynamic_cast<hw::vtd::SecondStageDomain*>(&d);
    REQUIRE(ss);
    auto w = ss->table().walk(iova);
    REQUIRE(w.present);
    return *w.entry;
}

std::uint64_t fs_leaf(Domain& d, std::uint64_t iova)
{
    auto* fs = dynamic_cast<hw::vtd::FirstStageDomain*>(&d);
    REQUIRE(fs);
    auto w = fs->table().walk(iova);
    REQUIRE(w.present);
    return *w.entry;
}

struct Dma {
    std::optional<Fault> fault;
    std::vector<DmaRun> runs;
};

Dma dma(VtdUnit& unit, Endpoint& ep, std::optional<std::uint32_t> pasid, std::uint64_t iova, std::uint64_t length,
        Access access)
{
    Dma d;
    d.fault = unit.translate(ep, pasid, iova, length, access, &d.runs);
    return d;
}

// The fault code of a DMA that must fault for `reason`.
std::uint32_t fault_code(VtdUnit& unit, Endpoint& ep, std::optional<std::uint32_t> pasid, std::uint64_t iova,
                         Access access, FaultReason reason)
{
    Dma d = dma(unit, ep, pasid, iova, 8, access);
    REQUIRE(d.fault);
    CHECK(d.fault->reason == reason);
    CHECK(d.fault->iova == iova);
    CHECK(d.fault->access == access);
    return d.fault->hw_code;
}

} // namespace

// ------------------------------------------------------------------ CAP/ECAP

TEST_CASE("CAP and ECAP of the default unit, field by field and as a whole")
{
    Rig rig;
    const std::uint64_t cap = rig.unit.registers().cap;
    const std::uint64_t ecap = rig.unit.registers().ecap;

    CHECK(bits(cap, 2, 0) == 6);       // ND: 2^(4 + 2*6) = 65536 domain ids
    CHECK(bits(cap, 3, 3) == 0);       // AFL
    CHECK(bits(cap, 4, 4) == 0);       // RWBF
    CHECK(bits(cap, 5, 5) == 1);       // PLMR
    CHECK(bits(cap, 6, 6) == 1);       // PHMR
    CHECK(bits(cap, 7, 7) == 0);       // CM: real hardware caches no not-present entry
    CHECK(bits(cap, 12, 8) == 0b0100); // SAGAW: 48-bit, 4-level
    CHECK(bits(cap, 21, 16) == 47);    // MGAW = 48 - 1
    CHECK(bits(cap, 22, 22) == 1);     // ZLR
    CHECK(bits(cap, 23, 23) == 0);     // ISOCH
    CHECK(bits(cap, 33, 24) == 0x40);  // FRO: fault records at 0x40 * 16 = 0x400
    CHECK(bits(cap, 37, 34) == 0b11);  // SLLPS: 2 MiB and 1 GiB
    CHECK(bits(cap, 38, 38) == 0);     // reserved
    CHECK(bits(cap, 39, 39) == 1);     // PSI
    CHECK(bits(cap, 47, 40) == 0);     // NFR: one fault-recording register
    CHECK(bits(cap, 53, 48) == 0x2d);  // MAMV
    CHECK(bits(cap, 54, 54) == 1);     // DWD
    CHECK(bits(cap, 55, 55) == 1);     // DRD
    CHECK(bits(cap, 56, 56) == 1);     // FL1GP
    CHECK(bits(cap, 58, 57) == 0);     // reserved
    CHECK(bits(cap, 59, 59) == 1);     // PI
    CHECK(bits(cap, 60, 60) == 0);     // FL5LP: not at 48 bits
    CHECK(bits(cap, 63, 61) == 0);     // ECMDS, ESIRTPS, ESRTPS
    // 0x66 (ND 6 | PLMR 0x20 | PHMR 0x40) | SAGAW 0x4 << 8 | MGAW 0x2f << 16
    // | ZLR 1 << 22 | FRO 0x40 << 24 | SLLPS 3 << 34 | PSI 1 << 39
    // | MAMV 0x2d << 48 | DWD, DRD (54, 55) | FL1GP 1 << 56 | PI 1 << 59
    // = 0x09ed_008c_406f_0466
    CHECK(cap == 0x09ed008c406f0466);

    CHECK(bits(ecap, 0, 0) == 1);     // C
    CHECK(bits(ecap, 1, 1) == 1);     // QI
    CHECK(bits(ecap, 2, 2) == 1);     // DT
    CHECK(bits(ecap, 3, 3) == 1);     // IR
    CHECK(bits(ecap, 4, 4) == 1);     // EIM
    CHECK(bits(ecap, 5, 5) == 0);     // reserved
    CHECK(bits(ecap, 6, 6) == 1);     // PT
    CHECK(bits(ecap, 7, 7) == 1);     // SC
    CHECK(bits(ecap, 17, 8) == 0x50); // IRO: IOTLB registers at 0x500
    CHECK(bits(ecap, 23, 20) == 0xf); // MHMV
    CHECK(bits(ecap, 25, 25) == 1);   // MTS
    CHECK(bits(ecap, 26, 26) == 1);   // NEST
    CHECK(bits(ecap, 29, 29) == 1);   // PRS
    CHECK(bits(ecap, 30, 30) == 0);   // ERS
    CHECK(bits(ecap, 31, 31) == 1);   // SRS
    CHECK(bits(ecap, 33, 33) == 1);   // NWFS
    CHECK(bits(ecap, 34, 34) == 1);   // EAFS
    CHECK(bits(ecap, 39, 35) == 19);  // PSS: 20-bit PASIDs
    CHECK(bits(ecap, 40, 40) == 1);   // PASID
    CHECK(bits(ecap, 41, 41) == 1);   // DIT
    CHECK(bits(ecap, 42, 42) == 1);   // PDS
    CHECK(bits(ecap, 43, 43) == 1);   // SMTS
    CHECK(bits(ecap, 44, 44) == 0);   // VCS
    CHECK(bits(ecap, 45, 45) == 1);   // SLADS
    CHECK(bits(ecap, 46, 46) == 1);   // SLTS
    CHECK(bits(ecap, 47, 47) == 1);   // FLTS
    CHECK(bits(ecap, 48, 48) == 1);   // SMPWC
    CHECK(bits(ecap, 49, 49) == 1);   // RPS
    CHECK(bits(ecap, 51, 51) == 0);   // PMS
    CHECK(bits(ecap, 63, 52) == 0);
    // low word: C|QI|DT|IR|EIM|PT|SC = 0xdf, IRO 0x50 << 8 = 0x5000,
    // MHMV 0xf << 20, MTS|NEST (25, 26), PRS (29), SRS (31) = 0xa6f050df;
    // high word (bit 32 up): NWFS 0x2 | EAFS 0x4 | PSS 19 << 3 = 0x98 |
    // PASID 0x100 | DIT 0x200 | PDS 0x400 | SMTS 0x800 | SLADS 0x2000 |
    // SLTS 0x4000 | FLTS 0x8000 | SMPWC 0x10000 | RPS 0x20000 = 0x3ef9e
    CHECK(ecap == 0x0003ef9ea6f050df);

    CHECK(rig.unit.levels() == 4);
    CHECK(rig.unit.address_width() == 48);
    CHECK(rig.unit.max_pasid_bits() == 20);
}

TEST_CASE("CAP and ECAP follow each topology key")
{
    SECTION("address_width 57: SAGAW 48+57, MGAW 56, FL5LP, 5 levels")
    {
        Rig rig(VtdConfig{.address_width = 57});
        const std::uint64_t cap = rig.unit.registers().cap;
        CHECK(bits(cap, 12, 8) == 0b1100);
        CHECK(bits(cap, 21, 16) == 56);
        CHECK(bits(cap, 60, 60) == 1);
        CHECK(rig.unit.levels() == 5);
        CHECK(rig.unit.address_width() == 57);
    }
    SECTION("address_width 39 with first stage: SAGAW 39+48 (first-stage paging needs 4 levels), MGAW 38")
    {
        Rig rig(VtdConfig{.address_width = 39});
        const std::uint64_t cap = rig.unit.registers().cap;
        CHECK(bits(cap, 12, 8) == 0b0110);
        CHECK(bits(cap, 21, 16) == 38);
        CHECK(bits(cap, 60, 60) == 0);
        CHECK(rig.unit.levels() == 4);        // the driver takes the width both stages share
        CHECK(rig.unit.address_width() == 39); // capped by MGAW
    }
    SECTION("address_width 39 without first stage: SAGAW 39 only, 3 levels, no FLTS/NEST/FL1GP")
    {
        Rig rig(VtdConfig{.address_width = 39, .first_stage = false, .nesting = false});
        const std::uint64_t cap = rig.unit.registers().cap;
        const std::uint64_t ecap = rig.unit.registers().ecap;
        CHECK(bits(cap, 12, 8) == 0b0010);
        CHECK(bits(cap, 56, 56) == 0); // FL1GP
        CHECK(bits(cap, 60, 60) == 0); // FL5LP
        CHECK(bits(ecap, 47, 47) == 0); // FLTS
        CHECK(bits(ecap, 46, 46) == 1); // SLTS
        CHECK(bits(ecap, 26, 26) == 0); // NEST
        CHECK(bits(ecap, 31, 31) == 0); // SRS: a first-stage notion
        CHECK(bits(ecap, 34, 34) == 0); // EAFS: a first-stage notion
        CHECK(rig.unit.levels() == 3);
        CHECK(rig.unit.address_width() == 39);
    }
    SECTION("address_width 57 without first stage: no FL5LP, still 5 levels")
    {
        Rig rig(VtdConfig{.address_width = 57, .first_stage = false, .nesting = false});
        CHECK(bits(rig.unit.registers().cap, 60, 60) == 0);
        CHECK(rig.unit.levels() == 5);
    }
    SECTION("dirty_tracking false: SLADS clear")
    {
        Rig rig(VtdConfig{.dirty_tracking = false});
        CHECK(bits(rig.unit.registers().ecap, 45, 45) == 0);
        CHECK(bits(rig.unit.registers().ecap, 48, 48) == 1); // SMPWC stays
    }
    SECTION("pasid_bits 0: PASID and PSS clear")
    {
        Rig rig(VtdConfig{.pasid_bits = 0});
        CHECK(bits(rig.unit.registers().ecap, 40, 40) == 0);
        CHECK(bits(rig.unit.registers().ecap, 39, 35) == 0);
        CHECK(rig.unit.max_pasid_bits() == 0);
    }
    SECTION("pasid_bits 5: PSS 4")
    {
        Rig rig(VtdConfig{.pasid_bits = 5});
        CHECK(bits(rig.unit.registers().ecap, 40, 40) == 1);
        CHECK(bits(rig.unit.registers().ecap, 39, 35) == 4);
        CHECK(rig.unit.max_pasid_bits() == 5);
    }
    SECTION("nesting false: NEST clear, FLTS kept")
    {
        Rig rig(VtdConfig{.nesting = false});
        CHECK(bits(rig.unit.registers().ecap, 26, 26) == 0);
        CHECK(bits(rig.unit.registers().ecap, 47, 47) == 1);
    }
    SECTION("large_pages 0 and 1: SLLPS 0000b and 0001b")
    {
        Rig none(VtdConfig{.large_pages = 0});
        Rig two_meg(VtdConfig{.large_pages = 1});
        CHECK(bits(none.unit.registers().cap, 37, 34) == 0);
        CHECK(bits(two_meg.unit.registers().cap, 37, 34) == 1);
    }
}

TEST_CASE("the vtd family reads its keys and rejects contradictions naming the key")
{
    memory::PhysSpace phys;
    const hw::Family* family = hw::find_family("vtd");
    REQUIRE(family);

    TestParams defaults({});
    auto unit = family->create("vtd0", defaults, phys);
    CHECK(unit->family() == "vtd");
    CHECK(dynamic_cast<VtdUnit&>(*unit).registers().cap == 0x09ed008c406f0466);

    TestParams keys({{"address_width", std::int64_t{57}},
                     {"dirty_tracking", false},
                     {"pasid_bits", std::int64_t{10}},
                     {"large_pages", std::int64_t{1}}});
    auto kept = family->create("vtd1", keys, phys);
    const auto& regs = dynamic_cast<VtdUnit&>(*kept).registers();
    CHECK(bits(regs.cap, 21, 16) == 56);
    CHECK(bits(regs.ecap, 45, 45) == 0);
    CHECK(bits(regs.ecap, 39, 35) == 9);
    CHECK(bits(regs.cap, 37, 34) == 1);

    // first_stage = false alone is valid: nesting follows it.
    TestParams no_fs({{"first_stage", false}});
    auto plain = family->create("vtd2", no_fs, phys);
    CHECK(bits(dynamic_cast<VtdUnit&>(*plain).registers().ecap, 26, 26) == 0);

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
    CHECK_THAT(message({{"nesting", true}, {"first_stage", false}}),
               Catch::Contains("t.toml:nesting") && Catch::Contains("first_stage"));
    CHECK_THAT(message({{"address_width", std::int64_t{40}}}), Catch::Contains("t.toml:address_width"));
    CHECK_THAT(message({{"pasid_bits", std::int64_t{21}}}), Catch::Contains("pasid_bits"));
    CHECK_THAT(message({{"large_pages", std::int64_t{3}}}), Catch::Contains("large_pages"));
}

// ------------------------------------------------------- hw_info, resv regions

TEST_CASE("hw_info: struct iommu_hw_info_vtd bytes, dirty capability, PASID width")
{
    Rig rig;
    hw::HwInfo info = rig.unit.hw_info(rig.dev);
    CHECK(info.type == 1); // IOMMU_HW_INFO_TYPE_INTEL_VTD
    REQUIRE(info.data.size() == 24);
    const std::uint8_t expected[24] = {
        0x01, 0x00, 0x00, 0x00,                         // flags: ERRATA_772415_SPR17
        0x00, 0x00, 0x00, 0x00,                         // __reserved
        0x66, 0x04, 0x6f, 0x40, 0x8c, 0x00, 0xed, 0x09, // cap_reg 0x09ed008c406f0466, little-endian
        0xdf, 0x50, 0xf0, 0xa6, 0x9e, 0xef, 0x03, 0x00, // ecap_reg 0x0003ef9ea6f050df
    };
    CHECK(std::memcmp(info.data.data(), expected, sizeof(expected)) == 0);
    CHECK(info.capabilities == IOMMU_HW_CAP_DIRTY_TRACKING);
    CHECK(info.max_pasid_log2 == 20);

    CHECK(rig.unit.hw_info(rig.nopasid).max_pasid_log2 == 0);
    CHECK(rig.unit.hw_info(rig.pasid8).max_pasid_log2 == 8);
    CHECK(rig.unit.hw_info(rig.nodirty).capabilities == 0);

    // The unit caps the device: 2 << PSS PASIDs.
    Rig narrow(VtdConfig{.pasid_bits = 5});
    CHECK(narrow.unit.hw_info(narrow.dev).max_pasid_log2 == 5);
    CHECK(narrow.unit.hw_info(narrow.pasid8).max_pasid_log2 == 5);
    Rig none(VtdConfig{.pasid_bits = 0});
    CHECK(none.unit.hw_info(none.dev).max_pasid_log2 == 0);
    // Without SLADS nobody gets dirty tracking; the erratum flag stays.
    Rig clean(VtdConfig{.dirty_tracking = false});
    hw::HwInfo ci = clean.unit.hw_info(clean.dev);
    CHECK(ci.capabilities == 0);
    CHECK(ci.data[0] == std::byte{0x01});
}

TEST_CASE("reserved regions: the x86 MSI window, for every device")
{
    Rig rig;
    for (Endpoint* ep : {&rig.dev, &rig.nopasid, &rig.nodirty}) {
        auto regions = rig.unit.reserved_regions(*ep);
        REQUIRE(regions.size() == 1);
        CHECK(regions[0] == Span{0xfee00000, 0xfeefffff});
    }
}

// --------------------------------------------------------- domain allocation

TEST_CASE("paging domains: second stage, geometry from MGAW and SLLPS")
{
    SECTION("48-bit, 2M and 1G")
    {
        Rig rig;
        auto d = rig.domain();
        CHECK(d->format_name() == "vtd-second-stage");
        CHECK(d->levels() == 4);
        CHECK(d->geometry().aperture == Span{0, 0x0000ffffffffffff});
        CHECK(d->geometry().pgsize_bitmap == (k4K | k2M | k1G)); // 0x40201000
    }
    SECTION("57-bit")
    {
        Rig rig(VtdConfig{.address_width = 57});
        auto d = rig.domain();
        CHECK(d->levels() == 5);
        CHECK(d->geometry().aperture == Span{0, 0x01ffffffffffffff});
    }
    SECTION("39-bit with first stage: 4-level table, 39-bit aperture")
    {
        Rig rig(VtdConfig{.address_width = 39});
        auto d = rig.domain();
        CHECK(d->levels() == 4);
        CHECK(d->geometry().aperture == Span{0, 0x7fffffffff});
    }
    SECTION("39-bit without first stage: 3-level table")
    {
        Rig rig(VtdConfig{.address_width = 39, .first_stage = false, .nesting = false});
        auto d = rig.domain();
        CHECK(d->levels() == 3);
        CHECK(d->geometry().aperture == Span{0, 0x7fffffffff});
    }
    SECTION("large_pages 0 and 1")
    {
        Rig none(VtdConfig{.large_pages = 0});
        Rig two_meg(VtdConfig{.large_pages = 1});
        CHECK(none.domain()->geometry().pgsize_bitmap == k4K);
        CHECK(two_meg.domain()->geometry().pgsize_bitmap == (k4K | k2M));
    }
    SECTION("first-stage domain: canonical lower half, 2M always, 1G with FL1GP")
    {
        Rig rig;
        auto d = rig.first_stage_domain();
        CHECK(d->format_name() == "vtd-first-stage");
        CHECK(d->levels() == 4);
        CHECK(d->geometry().aperture == Span{0, 0x00007fffffffffff});
        CHECK(d->geometry().pgsize_bitmap == (k4K | k2M | k1G));
        Rig five(VtdConfig{.address_width = 57});
        auto d5 = five.first_stage_domain();
        CHECK(d5->levels() == 5);
        CHECK(d5->geometry().aperture == Span{0, 0x00ffffffffffffff});
        Rig no_fs(VtdConfig{.first_stage = false, .nesting = false});
        std::unique_ptr<Domain> out;
        CHECK(no_fs.unit.alloc_first_stage_domain(no_fs.dev, &out) == -EOPNOTSUPP);
    }
}

TEST_CASE("paging domain requests the driver refuses with EOPNOTSUPP")
{
    Rig rig;
    std::unique_ptr<Domain> d;
    // A PASID-capable domain (6.15's flag) needs a unit with PASIDs.
    CHECK(rig.unit.alloc_domain(rig.dev, {.pasid = true}, &d) == 0);
    Rig no_pasid_unit(VtdConfig{.pasid_bits = 0});
    CHECK(no_pasid_unit.unit.alloc_domain(no_pasid_unit.dev, {.pasid = true}, &d) == -EOPNOTSUPP);
    d.reset();
    CHECK(rig.unit.alloc_domain(rig.nodirty, {.dirty_tracking = true}, &d) == -EOPNOTSUPP);
    CHECK_FALSE(d);
    CHECK(rig.unit.alloc_domain(rig.dev, {.nest_parent = true, .dirty_tracking = true}, &d) == 0);

    d.reset();

    // (Each unit outlives its domains: they sit in its table memory.)
    Rig no_nest(VtdConfig{.nesting = false});
    std::unique_ptr<Domain> nd;
    CHECK(no_nest.unit.alloc_domain(no_nest.dev, {.nest_parent = true}, &nd) == -EOPNOTSUPP);
    Rig no_dirty(VtdConfig{.dirty_tracking = false});
    std::unique_ptr<Domain> dd;
    CHECK(no_dirty.unit.alloc_domain(no_dirty.dev, {.dirty_tracking = true}, &dd) == -EOPNOTSUPP);
    CHECK(no_dirty.unit.alloc_domain(no_dirty.dev, {}, &dd) == 0);
}

TEST_CASE("what a paging domain writes: SNP in every leaf, R always, no read-only in a nest parent")
{
    Rig rig;
    auto d = rig.domain();
    REQUIRE(d->map(0x1000, 0x876543000, k4K, kRW, k1G) == 0);
    REQUIRE(d->map(0x2000, 0x876544000, k4K, kWO, k1G) == 0);
    REQUIRE(d->map(0x200000, 0x200400000, k2M, kRO, k1G) == 0);
    REQUIRE(d->map(0x40000000, 0x240000000, k1G, kRW, k1G) == 0);
    CHECK(leaf(*d, 0x1000) == 0x0000000876543803);     // 0x876543000 | SNP 0x800 | W 2 | R 1
    CHECK(leaf(*d, 0x2000) == 0x0000000876544803);     // write-only, and R anyway
    CHECK(leaf(*d, 0x200000) == 0x0000000200400881);   // 0x200400000 | SNP | PS 0x80 | R
    CHECK(leaf(*d, 0x40000000) == 0x0000000240000883); // 0x240000000 | SNP | PS | W | R
    CHECK(d->map(0x3000, 0x1000, k4K, Prot{}, k1G) == -EINVAL);

    // ERRATA_772415_SPR17: a nest parent takes read-write mappings only.
    auto parent = rig.domain({.nest_parent = true});
    CHECK(parent->map(0x1000, 0x876543000, k4K, kRO, k1G) == -EINVAL);
    CHECK(parent->map(0x1000, 0x876543000, k4K, kWO, k1G) == 0);
    CHECK(leaf(*parent, 0x1000) == 0x0000000876543803);

    // A first-stage domain: P | U/S | A, R/W and D when writable.
    auto fs = rig.first_stage_domain();
    REQUIRE(fs->map(0x1000, 0x876543000, k4K, kRO, k1G) == 0);
    REQUIRE(fs->map(0x2000, 0x876544000, k4K, kRW, k1G) == 0);
    CHECK(fs_leaf(*fs, 0x1000) == 0x0000000876543025); // 0x876543000 | A 0x20 | U/S 4 | P 1
    CHECK(fs_leaf(*fs, 0x2000) == 0x0000000876544067); // | D 0x40 | R/W 2
}

// ------------------------------------------------------------------- attach

TEST_CASE("check_attach: the intel driver's compatibility rules")
{
    Rig rig;
    auto plain = rig.domain();
    auto dirty = rig.domain({.dirty_tracking = true});

    CHECK(rig.unit.check_attach(rig.dev, hw::kNoPasid, *plain) == 0);
    CHECK(rig.unit.check_attach(rig.dev, hw::kNoPasid, *dirty) == 0);
    CHECK(rig.unit.check_attach(rig.dev, 1, *plain) == 0);
    CHECK(rig.unit.check_attach(rig.pasid8, 255, *plain) == 0);

    // Another unit's domain, whatever its width.
    Rig other;
    auto foreign = other.domain();
    CHECK(rig.unit.check_attach(rig.dev, hw::kNoPasid, *foreign) == -EINVAL);
    Rig wide(VtdConfig{.address_width = 57});
    auto wide_domain = wide.domain();
    CHECK(rig.unit.check_attach(rig.dev, hw::kNoPasid, *wide_domain) == -EINVAL);

    // A dirty-tracking domain on a device that cannot track, or on a PASID.
    CHECK(rig.unit.check_attach(rig.nodirty, hw::kNoPasid, *dirty) == -EINVAL);
    CHECK(rig.unit.check_attach(rig.nodirty, hw::kNoPasid, *plain) == 0);
    CHECK(rig.unit.check_attach(rig.dev, 1, *dirty) == -EINVAL);

    // PASID 0 is the RID's; a PASID at or beyond the device's width.
    CHECK(rig.unit.check_attach(rig.dev, 0, *plain) == -EINVAL);
    CHECK(rig.unit.check_attach(rig.pasid8, 256, *plain) == -EINVAL);

    // A unit without PASID support takes no PASID attachment.
    Rig no_pasid(VtdConfig{.pasid_bits = 0});
    auto np = no_pasid.domain();
    CHECK(no_pasid.unit.check_attach(no_pasid.dev, 1, *np) == -EOPNOTSUPP);
    CHECK(no_pasid.unit.check_attach(no_pasid.dev, hw::kNoPasid, *np) == 0);
}

// --------------------------------------------------------------- DMA, faults

TEST_CASE("dirty tracking: a DMA write sets A and D only while tracking is on")
{
    Rig rig;
    auto d = rig.domain({.dirty_tracking = true});
    REQUIRE(d->map(0x1000, 0x876543000, k4K, kRW, k1G) == 0);
    REQUIRE(d->map(0x200000, 0x200400000, k2M, kRW, k1G) == 0);
    rig.unit.attach(rig.dev, hw::kNoPasid, d.get());

    auto dirty_ranges = [&](bool clear) {
        std::vector<Span> out;
        d->read_and_clear_dirty(0, 1ULL << 30, clear, [&](std::uint64_t iova, std::uint64_t size) {
            out.push_back({iova, iova + size - 1});
        });
        return out;
    };

    // SSADE off: the hardware touches no A/D bit.
    REQUIRE_FALSE(dma(rig.unit, rig.dev, hw::kNoPasid, 0x1100, 16, Access::write).fault);
    CHECK(leaf(*d, 0x1000) == 0x0000000876543803);
    CHECK(dirty_ranges(false).empty());

    REQUIRE(d->set_dirty_tracking(true) == 0);
    auto w = dma(rig.unit, rig.dev, hw::kNoPasid, 0x1100, 16, Access::write);
    REQUIRE_FALSE(w.fault);
    REQUIRE(w.runs.size() == 1);
    CHECK(w.runs[0].pa == 0x876543100);
    CHECK(leaf(*d, 0x1000) == 0x0000000876543b03); // | A 0x100 | D 0x200
    CHECK(leaf(*d, 0x200000) == 0x0000000200400883); // untouched 2M leaf
    REQUIRE_FALSE(dma(rig.unit, rig.dev, hw::kNoPasid, 0x212345, 1, Access::write).fault);
    CHECK(leaf(*d, 0x200000) == 0x0000000200400b83); // 2M leaf | A | D

    CHECK(dirty_ranges(false) == std::vector<Span>{{0x1000, 0x1fff}, {0x200000, 0x3fffff}});
    CHECK(dirty_ranges(true) == std::vector<Span>{{0x1000, 0x1fff}, {0x200000, 0x3fffff}});
    CHECK(leaf(*d, 0x1000) == 0x0000000876543903); // D cleared, A kept
    CHECK(dirty_ranges(false).empty());

    // Clearing invalidated the cached translation: the next write sets D again.
    REQUIRE_FALSE(dma(rig.unit, rig.dev, hw::kNoPasid, 0x1000, 8, Access::write).fault);
    CHECK(leaf(*d, 0x1000) == 0x0000000876543b03);

    // Off again: writes leave D alone.
    REQUIRE(d->set_dirty_tracking(false) == 0);
    (void)dirty_ranges(true);
    REQUIRE_FALSE(dma(rig.unit, rig.dev, hw::kNoPasid, 0x1000, 8, Access::write).fault);
    CHECK(leaf(*d, 0x1000) == 0x0000000876543903);

    // A domain allocated without the flag cannot track.
    auto plain = rig.domain();
    CHECK(plain->set_dirty_tracking(true) == -EOPNOTSUPP);
    rig.unit.attach(rig.dev, hw::kNoPasid, nullptr);
}

TEST_CASE("translate faults carry scalable-mode fault reasons")
{
    Rig rig;
    auto d = rig.domain();
    REQUIRE(d->map(0x1000, 0x876543000, k4K, kRO, k1G) == 0);
    REQUIRE(d->map(0x2000, 0x876544000, k4K, kRW, k1G) == 0);

    SECTION("blocked: nothing attached to the RID or the PASID, the PASID entry is not present (0x59)")
    {
        CHECK(fault_code(rig.unit, rig.dev, hw::kNoPasid, 0x1000, Access::read, FaultReason::blocked) == 0x59);
        rig.unit.attach(rig.dev, hw::kNoPasid, d.get());
        CHECK(fault_code(rig.unit, rig.dev, 7, 0x1000, Access::read, FaultReason::blocked) == 0x59);
    }
    SECTION("PASID out of range: beyond the PASID table (0x46), or PASIDs not enabled (0x45)")
    {
        rig.unit.attach(rig.pasid8, 1, d.get());
        CHECK_FALSE(dma(rig.unit, rig.pasid8, 1, 0x1000, 8, Access::read).fault);
        CHECK(fault_code(rig.unit, rig.pasid8, 256, 0x1000, Access::read, FaultReason::pasid_range) == 0x46);
        CHECK(fault_code(rig.unit, rig.nopasid, 1, 0x1000, Access::read, FaultReason::pasid_range) == 0x45);
        Rig narrow(VtdConfig{.pasid_bits = 4});
        CHECK(fault_code(narrow.unit, narrow.pasid8, 16, 0x1000, Access::read, FaultReason::pasid_range) ==
              0x46);
        rig.unit.attach(rig.pasid8, 1, nullptr);
    }
    SECTION("second stage: not present (0x79), write to read-only (0x85), read of write-only (0x86), "
            "beyond the width (0x83)")
    {
        rig.unit.attach(rig.dev, hw::kNoPasid, d.get());
        CHECK(fault_code(rig.unit, rig.dev, hw::kNoPasid, 0x3000, Access::read, FaultReason::not_present) ==
              0x79);
        CHECK(fault_code(rig.unit, rig.dev, hw::kNoPasid, 0x1008, Access::write, FaultReason::permission) ==
              0x85);
        // The driver never writes a leaf without R; the hardware still checks it.
        leaf(*d, 0x2000) = 0x0000000876544002; // W only
        CHECK(fault_code(rig.unit, rig.dev, hw::kNoPasid, 0x2000, Access::read, FaultReason::permission) ==
              0x86);
        CHECK(fault_code(rig.unit, rig.dev, hw::kNoPasid, 1ULL << 48, Access::read,
                         FaultReason::address_size) == 0x83);
        // A DMA that crosses into an unmapped page stops there, the first page's run kept.
        leaf(*d, 0x2000) = 0x0000000876544803;
        auto r = dma(rig.unit, rig.dev, hw::kNoPasid, 0x2ff8, 16, Access::read);
        REQUIRE(r.fault);
        CHECK(r.fault->iova == 0x3000);
        CHECK(r.fault->hw_code == 0x79);
        CHECK(r.runs.size() == 1);
        rig.unit.attach(rig.dev, hw::kNoPasid, nullptr);
    }
    SECTION("first stage: not present (0x71), write to read-only (0x85), non-canonical (0x80)")
    {
        auto fs = rig.first_stage_domain();
        REQUIRE(fs->map(0x1000, 0x876543000, k4K, kRO, k1G) == 0);
        rig.unit.attach(rig.dev, 3, fs.get());
        CHECK_FALSE(dma(rig.unit, rig.dev, 3, 0x1000, 8, Access::read).fault);
        CHECK(fault_code(rig.unit, rig.dev, 3, 0x5000, Access::read, FaultReason::not_present) == 0x71);
        CHECK(fault_code(rig.unit, rig.dev, 3, 0x1000, Access::write, FaultReason::permission) == 0x85);
        CHECK(fault_code(rig.unit, rig.dev, 3, 1ULL << 47, Access::read, FaultReason::address_size) == 0x80);
        rig.unit.attach(rig.dev, 3, nullptr);
    }
}

TEST_CASE("IOTLB: a leaf changed behind its back is served stale until invalidated")
{
    Rig rig;
    auto d = rig.domain();
    REQUIRE(d->map(0x1000, 0x876543000, k4K, kRW, k1G) == 0);
    rig.unit.attach(rig.dev, hw::kNoPasid, d.get());

    auto pa_of = [&](std::uint64_t iova) {
        auto r = dma(rig.unit, rig.dev, hw::kNoPasid, iova, 8, Access::read);
        REQUIRE_FALSE(r.fault);
        REQUIRE(r.runs.size() == 1);
        return r.runs[0].pa;
    };

    CHECK(pa_of(0x1010) == 0x876543010);
    const auto misses = rig.unit.iotlb_stats().misses;
    // Retarget the leaf without telling the IOTLB: CM = 0 hardware keeps
    // using the cached translation.
    leaf(*d, 0x1000) = 0x0000000999999803;
    CHECK(pa_of(0x1010) == 0x876543010);
    CHECK(rig.unit.iotlb_stats().misses == misses);

    // A page-selective invalidation makes the walk happen again.
    rig.unit.invalidate(*d, {0x1000, 0x1fff});
    CHECK(pa_of(0x1010) == 0x999999010);

    // Clearing the leaf behind its back: still translated, until invalidated.
    leaf(*d, 0x1000) = 0;
    CHECK(pa_of(0x1010) == 0x999999010);
    rig.unit.invalidate_domain(*d);
    CHECK(fault_code(rig.unit, rig.dev, hw::kNoPasid, 0x1010, Access::read, FaultReason::not_present) == 0x79);
    rig.unit.attach(rig.dev, hw::kNoPasid, nullptr);
}
