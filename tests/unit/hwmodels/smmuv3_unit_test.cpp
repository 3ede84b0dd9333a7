// The SMMUv3 unit as the Linux arm-smmu-v3 driver presents it through
// iommufd: ID registers for topology configs, read field by field at the
// SMMUv3 specification's bit positions (6.3.1-6.3.6); hw_info bytes; which
// domain requests are refused; attach rules; the STEs and CDs each
// attachment writes, as raw dwords; faults and the event IDs they carry;
// dirty tracking through DMA; topology key validation.
//
// Table memory addresses are known in advance: a fresh PhysSpace starts at
// 4 GiB and TableMemory carves its first 2 MiB block there from the low
// end, each table at the lowest free address aligned to its size. The
// unit's stream table L1 (256 descriptors, 2 KiB) takes the first page.
#include <catch2/catch.hpp>

#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <variant>

#include "hwmodels/smmuv3/smmuv3_unit.h"
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
using hw::smmuv3::SmmuConfig;
using hw::smmuv3::SmmuUnit;

namespace {

constexpr std::uint64_t k4K = 1ULL << 12;
constexpr std::uint64_t k2M = 1ULL << 21;
constexpr std::uint64_t k1G = 1ULL << 30;
constexpr Prot kRW{true, true};
constexpr Prot kRO{true, false};
constexpr std::uint64_t kBase = 0x100000000;

constexpr std::uint32_t bits(std::uint32_t reg, unsigned hi, unsigned lo)
{
    return (reg >> lo) & static_cast<std::uint32_t>((std::uint64_t{1} << (hi - lo + 1)) - 1);
}

using test::TestParams;

struct Rig {
    memory::PhysSpace phys;
    SmmuUnit unit;
    Endpoint& dev;     // SID 0x10, 20-bit PASIDs, dirty tracking
    Endpoint& nopasid; // SID 0x11
    Endpoint& nodirty; // SID 0x12, cannot track dirty pages
    Endpoint& pasid8;  // SID 0x13, 8-bit PASIDs

    explicit Rig(SmmuConfig config = {})
        : unit("smmu0", config, phys), dev(unit.add_endpoint({"dev", 0x10, 20, true})),
          nopasid(unit.add_endpoint({"nopasid", 0x11, 0, true})),
          nodirty(unit.add_endpoint({"nodirty", 0x12, 20, false})),
          pasid8(unit.add_endpoint({"pasid8", 0x13, 8, true}))
    {
    }

    std::unique_ptr<Domain> domain(const DomainRequest& request = {})
    {
        std::unique_ptr<Domain> d;
        REQUIRE(unit.alloc_domain(dev, request, &d) == 0);
        return d;
    }
    int alloc(const DomainRequest& request, Endpoint* on = nullptr)
    {
        std::unique_ptr<Domain> d;
        return unit.alloc_domain(on ? *on : dev, request, &d);
    }
    // Attaches as the core does: check, then attach.
    int attach(Endpoint& ep, std::optional<std::uint32_t> pasid, Domain* d)
    {
        if (d)
            if (int rc = unit.check_attach(ep, pasid, *d))
                return rc;
        unit.attach(ep, pasid, d);
        return 0;
    }
    hw::smmuv3::Ste ste(const Endpoint& ep)
    {
        auto s = unit.ste(ep.config().rid);
        REQUIRE(s);
        return *s;
    }
    hw::smmuv3::Cd cd(const Endpoint& ep, std::uint32_t ssid)
    {
        auto c = unit.cd(ep.config().rid, ssid);
        REQUIRE(c);
        return *c;
    }
};

std::optional<Fault> dma(SmmuUnit& unit, Endpoint& ep, std::optional<std::uint32_t> pasid, std::uint64_t iova,
                         Access access)
{
    std::vector<DmaRun> runs;
    return unit.translate(ep, pasid, iova, 8, access, &runs);
}

std::uint32_t fault_code(SmmuUnit& unit, Endpoint& ep, std::optional<std::uint32_t> pasid, std::uint64_t iova,
                         Access access, FaultReason reason)
{
    auto fault = dma(unit, ep, pasid, iova, access);
    REQUIRE(fault);
    CHECK(fault->reason == reason);
    return fault->hw_code;
}

constexpr hw::smmuv3::Ste kAbortSte{0x1, 0, 0, 0, 0, 0, 0, 0}; // V, Config 0b000

} // namespace

// ------------------------------------------------------------- ID registers

TEST_CASE("ID registers of the default unit, field by field and as a whole")
{
    Rig rig;
    const auto& r = rig.unit.registers();
    CHECK(bits(r.idr[0], 0, 0) == 1);   // S2P
    CHECK(bits(r.idr[0], 1, 1) == 1);   // S1P
    CHECK(bits(r.idr[0], 3, 2) == 2);   // TTF: AArch64
    CHECK(bits(r.idr[0], 4, 4) == 1);   // COHACC
    CHECK(bits(r.idr[0], 5, 5) == 0);   // BTM
    CHECK(bits(r.idr[0], 7, 6) == 2);   // HTTU: access flag and dirty state
    CHECK(bits(r.idr[0], 9, 9) == 0);   // HYP
    CHECK(bits(r.idr[0], 10, 10) == 0); // ATS
    CHECK(bits(r.idr[0], 12, 12) == 1); // ASID16
    CHECK(bits(r.idr[0], 13, 13) == 1); // MSI
    CHECK(bits(r.idr[0], 16, 16) == 0); // PRI
    CHECK(bits(r.idr[0], 18, 18) == 1); // VMID16
    CHECK(bits(r.idr[0], 19, 19) == 1); // CD2L
    CHECK(bits(r.idr[0], 22, 21) == 2); // TTENDIAN: little-endian
    CHECK(bits(r.idr[0], 25, 24) == 1); // STALL_MODEL: no stalls
    CHECK(bits(r.idr[0], 28, 27) == 1); // ST_LEVEL: two-level
    // 0x1 | 0x2 | 2 << 2 | 0x10 | 2 << 6 | 1 << 12 | 1 << 13 | 1 << 18
    // | 1 << 19 | 2 << 21 | 1 << 24 | 1 << 27
    CHECK(r.idr[0] == 0x094c309b);

    CHECK(bits(r.idr[1], 5, 0) == 16);   // SIDSIZE
    CHECK(bits(r.idr[1], 10, 6) == 20);  // SSIDSIZE
    CHECK(bits(r.idr[1], 15, 11) == 0);  // PRIQS: no PRI queue
    CHECK(bits(r.idr[1], 20, 16) == 19); // EVTQS
    CHECK(bits(r.idr[1], 25, 21) == 19); // CMDQS
    CHECK(bits(r.idr[1], 27, 27) == 1);  // ATTR_TYPES_OVR
    CHECK(bits(r.idr[1], 30, 28) == 0);  // REL, QUEUES_PRESET, TABLES_PRESET
    CHECK(r.idr[1] == 0x0a730510);       // 16 | 20 << 6 | 19 << 16 | 19 << 21 | 1 << 27
    CHECK(r.idr[2] == 0);
    CHECK(r.idr[3] == 0);
    CHECK(r.idr[4] == 0);
    CHECK(bits(r.idr[5], 2, 0) == 5);   // OAS: 48 bits
    CHECK(bits(r.idr[5], 6, 4) == 7);   // GRAN64K, GRAN16K, GRAN4K
    CHECK(bits(r.idr[5], 11, 10) == 0); // VAX: 48-bit VA
    CHECK(r.idr[5] == 0x75);
    // IIDR: ProductID 31:20 0x483 (MMU-600), Variant 19:16 2, Revision
    // 15:12 0, Implementer 11:0 0x43b (Arm).
    CHECK(r.iidr == 0x4832043b);
    CHECK(r.aidr == 0x01); // SMMUv3.1
}

TEST_CASE("ID registers follow the topology keys")
{
    SmmuConfig c;
    c.stage2 = false;
    c.oas = 40;
    c.gran4k = false;
    c.gran16k = false;
    c.vax = true;
    c.httu = hw::smmuv3::Httu::access;
    c.coherent = false;
    c.ssid_bits = 8;
    c.sid_bits = 6;
    c.two_level_cd_table = false;
    Rig rig(c);
    const auto& r = rig.unit.registers();
    CHECK(bits(r.idr[0], 1, 0) == 0b10); // S1P only
    CHECK(bits(r.idr[0], 4, 4) == 0);
    CHECK(bits(r.idr[0], 7, 6) == 1);
    CHECK(bits(r.idr[0], 19, 19) == 0);
    CHECK(bits(r.idr[1], 5, 0) == 6);
    CHECK(bits(r.idr[1], 10, 6) == 8);
    CHECK(bits(r.idr[5], 2, 0) == 2); // 40 bits
    CHECK(bits(r.idr[5], 6, 4) == 0b100);
    CHECK(bits(r.idr[5], 11, 10) == 1);
    // Six SID bits fit one 256-STE table: the driver goes linear.
    CHECK_FALSE(rig.unit.stream_table().two_level());
    CHECK(rig.unit.stream_table().base_cfg() == 6); // FMT linear, LOG2SIZE 6
}

// ------------------------------------------------------------------ hw_info

TEST_CASE("hw_info: type 2 with IDR0-5, IIDR and AIDR, dirty tracking and PASID width")
{
    Rig rig;
    const hw::HwInfo info = rig.unit.hw_info(rig.dev);
    CHECK(info.type == 2); // IOMMU_HW_INFO_TYPE_ARM_SMMUV3
    REQUIRE(info.data.size() == 40);
    auto word = [&](std::size_t offset) {
        std::uint32_t v;
        std::memcpy(&v, info.data.data() + offset, 4);
        return v;
    };
    CHECK(word(0) == 0);  // flags
    CHECK(word(4) == 0);  // __reserved
    CHECK(word(8) == 0x094c309b);
    CHECK(word(12) == 0x0a730510);
    CHECK(word(28) == 0x75);
    CHECK(word(32) == 0x4832043b);
    CHECK(word(36) == 0x01);
    CHECK(info.capabilities == IOMMU_HW_CAP_DIRTY_TRACKING);
    CHECK(info.max_pasid_log2 == 20);
    CHECK(rig.unit.hw_info(rig.pasid8).max_pasid_log2 == 8);
    CHECK(rig.unit.hw_info(rig.nopasid).max_pasid_log2 == 0);
    CHECK(rig.unit.hw_info(rig.nodirty).capabilities == 0);

    // arm_smmu_dbm_capable(): HD and a coherent walk.
    SmmuConfig ha;
    ha.httu = hw::smmuv3::Httu::access;
    Rig h(ha);
    CHECK(h.unit.hw_info(h.dev).capabilities == 0);
    SmmuConfig noncoherent;
    noncoherent.coherent = false;
    Rig nc(noncoherent);
    CHECK(nc.unit.hw_info(nc.dev).capabilities == 0);
    // The device's width capped by SSIDSIZE.
    SmmuConfig narrow;
    narrow.ssid_bits = 5;
    Rig n(narrow);
    CHECK(n.unit.hw_info(n.dev).max_pasid_log2 == 5);
}

TEST_CASE("reserved regions: the software MSI window")
{
    Rig rig;
    CHECK(rig.unit.reserved_regions(rig.dev) == std::vector<Span>{{0x8000000, 0x80fffff}});
}

// ------------------------------------------------------------------ domains

TEST_CASE("domains: stage 1 by default, stage 2 for a nest parent, with io-pgtable-arm's geometry")
{
    Rig rig;
    auto s1 = rig.domain();
    CHECK(s1->format_name() == "smmuv3-stage1");
    CHECK(s1->geometry().aperture == Span{0, (1ULL << 48) - 1});
    CHECK(s1->geometry().pgsize_bitmap == (k4K | k2M | k1G));
    CHECK(s1->levels() == 4);
    auto s2 = rig.domain({.nest_parent = true});
    CHECK(s2->format_name() == "smmuv3-stage2");
    CHECK(s2->geometry().aperture == Span{0, (1ULL << 48) - 1});
    auto dirty = rig.domain({.dirty_tracking = true});
    CHECK(dirty->format_name() == "smmuv3-stage1");

    // arm_smmu_domain_alloc_paging_flags(): NEST_PARENT only alone.
    CHECK(rig.alloc({.nest_parent = true, .dirty_tracking = true}) == -EOPNOTSUPP);
    CHECK(rig.alloc({.nest_parent = true, .pasid = true}) == -EOPNOTSUPP);
    CHECK(rig.alloc({.dirty_tracking = true, .pasid = true}) == 0);
    // IOMMU_CAP_DIRTY_TRACKING of the device.
    CHECK(rig.alloc({.dirty_tracking = true}, &rig.nodirty) == -EOPNOTSUPP);
}

TEST_CASE("domains: what a unit without a stage, HTTU or 4K granule gives")
{
    SmmuConfig s1only;
    s1only.stage2 = false;
    CHECK(Rig(s1only).alloc({.nest_parent = true}) == -EOPNOTSUPP); // no ARM_SMMU_FEAT_NESTING

    SmmuConfig s2only;
    s2only.stage1 = false;
    Rig s2(s2only);
    CHECK(s2.domain()->format_name() == "smmuv3-stage2");
    CHECK(s2.alloc({.dirty_tracking = true}) == -EOPNOTSUPP);
    CHECK(s2.alloc({.pasid = true}) == -EOPNOTSUPP);
    CHECK(s2.alloc({.nest_parent = true}) == -EOPNOTSUPP);

    SmmuConfig nohd;
    nohd.httu = hw::smmuv3::Httu::none;
    CHECK(Rig(nohd).alloc({.dirty_tracking = true}) == -EOPNOTSUPP);

    // arm_lpae_restrict_pgsizes(): no 4K, so the smallest granule above it.
    SmmuConfig big;
    big.gran4k = false;
    Rig b(big);
    CHECK(b.domain()->geometry().pgsize_bitmap == ((1ULL << 14) | (1ULL << 25)));
    SmmuConfig only64k;
    only64k.gran4k = only64k.gran16k = false;
    Rig g(only64k);
    auto d64 = g.domain();
    CHECK(d64->geometry().pgsize_bitmap == ((1ULL << 16) | (1ULL << 29)));
    CHECK(d64->levels() == 3);

    // 52 bits: VAX and a 52-bit VA_BITS give a 52-bit stage-1 input, and a
    // 52-bit OAS the 4T block of the 64K granule.
    SmmuConfig wide = only64k;
    wide.oas = 52;
    wide.vax = true;
    wide.va_bits = 52;
    Rig w(wide);
    auto d52 = w.domain();
    CHECK(d52->geometry().aperture.last == (1ULL << 52) - 1);
    CHECK(d52->geometry().pgsize_bitmap == ((1ULL << 16) | (1ULL << 29) | (1ULL << 42)));
    // VA_BITS 39 caps a stage-1 input; a stage-2 one is the IAS.
    SmmuConfig va39;
    va39.va_bits = 39;
    Rig v(va39);
    CHECK(v.domain()->geometry().aperture.last == (1ULL << 39) - 1);
    CHECK(v.domain({.nest_parent = true})->geometry().aperture.last == (1ULL << 48) - 1);
}

TEST_CASE("a read-nor-write mapping is refused, as arm_lpae_map_pages() does")
{
    Rig rig;
    auto d = rig.domain();
    CHECK(d->map(0x1000, 0x800001000, k4K, Prot{false, false}, k4K) == -EINVAL);
}

TEST_CASE("arm_lpae_map_pages(): an IOVA beyond the input size or a PA beyond the output size is -ERANGE")
{
    SmmuConfig c;
    c.oas = 36; // IAS 36 as well: a stage-1 table outputs at most 2^36
    c.va_bits = 39;
    Rig rig(c);
    auto d = rig.domain();
    CHECK(d->map(0x1000, 0xffffff000, k4K, kRW, k4K) == 0);             // the last page below 2^36
    CHECK(d->map(0x2000, 0x1000000000, k4K, kRW, k4K) == -ERANGE);      // 2^36
    CHECK(d->map(0x3000, 0xffffff000, 2 * k4K, kRW, k4K) == -ERANGE);   // its second page at 2^36
    CHECK(d->map(1ULL << 39, 0x1000, k4K, kRW, k4K) == -ERANGE);         // T0SZ = 25
    CHECK(d->map(0x4000, 0x1000000000, k4K, Prot{false, false}, k4K) == -ERANGE); // before -EINVAL
}

// ------------------------------------------------------------ STEs and CDs

TEST_CASE("stage-1 attach: a two-level stream table, a CD-table STE and CD 0, raw")
{
    Rig rig;
    const auto& streams = rig.unit.stream_table();
    REQUIRE(streams.two_level());
    CHECK(streams.base() == kBase);
    // FMT 2-level (1 << 16) | SPLIT 8 (8 << 6) | LOG2SIZE log2(256) + 8 = 16.
    CHECK(streams.base_cfg() == 0x10210);
    CHECK_FALSE(rig.unit.ste(0x10).has_value()); // no L2 table until a device needs one

    // The stream table's pool took the first 2 MiB block at construction;
    // the domain's root opens the page tables' block after it.
    auto d = rig.domain();
    REQUIRE(d->root_pa() == 0x100200000);
    REQUIRE(rig.attach(rig.dev, std::nullopt, d.get()) == 0);
    // Allocated in turn: the CD L1 table (1024 x 8 bytes) at 0x100002000,
    // the CD leaf for SSIDs 0-1023 (64 KiB) at 0x100010000, the STE L2
    // table for SIDs 0-255 (16 KiB) at 0x100004000.
    CHECK(streams.l1_descriptor(0x10) == 0x0000000100004009); // L2 pointer | SPAN 9
    const auto ste = rig.ste(rig.dev);
    // V | Config 0b101 (3:1) | S1Fmt 2 (5:4) | S1ContextPtr 0x100002000 |
    // S1CDMAX 20 (63:59).
    CHECK(ste[0] == 0xa00000010000202b);
    // S1DSS 2 (CD 0) | S1CIR 1 (3:2) | S1COR 1 (5:4) | S1CSH 3 (7:6).
    CHECK(ste[1] == 0x00000000000000d6);
    CHECK(ste[2] == 0);
    CHECK(ste[3] == 0);
    const auto cd0 = rig.cd(rig.dev, 0);
    // T0SZ 16 | TG0 0 | IRGN0 1 (9:8) | ORGN0 1 (11:10) | SH0 3 (13:12) |
    // EPD1 (30) | V (31) | IPS 5 (34:32) | AA64 (41) | R (45) | A (46) |
    // ASET (47) | ASID 1 (63:48).
    CHECK(cd0[0] == 0x0001e205c0003510);
    CHECK(cd0[1] == 0x0000000100200000); // TTB0
    CHECK(cd0[2] == 0);
    CHECK(cd0[3] == 0x00000000f404ff44); // MAIR: 0x44, 0xff, 0x04, 0xf4

    // Detached: the abort STE, CD 0 cleared.
    REQUIRE(rig.attach(rig.dev, std::nullopt, nullptr) == 0);
    CHECK(rig.ste(rig.dev) == kAbortSte);
    CHECK(rig.cd(rig.dev, 0) == hw::smmuv3::Cd{});
}

TEST_CASE("a dirty-tracking domain's CD has HA and HD")
{
    Rig rig;
    auto d = rig.domain({.dirty_tracking = true});
    REQUIRE(rig.attach(rig.dev, std::nullopt, d.get()) == 0);
    // As above with HD (42) and HA (43).
    CHECK(rig.cd(rig.dev, 0)[0] == 0x0001ee05c0003510);
}

TEST_CASE("stage-2 attach: the STE carries VTCR, VMID and S2TTB")
{
    Rig rig;
    auto d = rig.domain({.nest_parent = true}); // root 0x100200000 (as above), VMID 1
    REQUIRE(rig.attach(rig.nopasid, std::nullopt, d.get()) == 0);
    const auto ste = rig.ste(rig.nopasid);
    CHECK(ste[0] == 0x000000000000000d); // V | Config 0b110
    CHECK(ste[1] == 0x0000100000000000); // SHCFG 1 (45:44): incoming, with ATTR_TYPES_OVR
    // S2VMID 1 | VTCR (50:32) = S2T0SZ 16 | S2SL0 2 (7:6) | S2IR0 1 (9:8)
    // | S2OR0 1 (11:10) | S2SH0 3 (13:12) | S2TG 0 | S2PS 5 (18:16) =
    // 0x53590 | S2AA64 (51) | S2PTW (54) | S2R (58).
    CHECK(ste[2] == 0x044d359000000001);
    CHECK(ste[3] == 0x0000000100200000);
}

TEST_CASE("PASID attach: CD[ssid] and an STE that terminates the blocked RID")
{
    Rig rig;
    auto d = rig.domain(); // ASID 1
    auto e = rig.domain(); // ASID 2
    REQUIRE(rig.attach(rig.dev, 5, d.get()) == 0);
    auto ste = rig.ste(rig.dev);
    CHECK((ste[0] & 0xf) == 0xb);        // V | Config stage 1
    CHECK(ste[1] == 0x00000000000000d4); // S1DSS 0: terminate
    CHECK(rig.cd(rig.dev, 5)[0] >> 48 == 1);
    CHECK(rig.cd(rig.dev, 0) == hw::smmuv3::Cd{});

    // The RID joins with CD 0: S1DSS becomes 2.
    REQUIRE(rig.attach(rig.dev, std::nullopt, e.get()) == 0);
    CHECK(rig.ste(rig.dev)[1] == 0x00000000000000d6);
    CHECK(rig.cd(rig.dev, 0)[0] >> 48 == 2);
    CHECK(rig.cd(rig.dev, 0)[1] == e->root_pa());
    // The RID leaves again while the PASID stays: terminate, CD 0 gone.
    REQUIRE(rig.attach(rig.dev, std::nullopt, nullptr) == 0);
    CHECK(rig.ste(rig.dev)[1] == 0x00000000000000d4);
    CHECK(rig.cd(rig.dev, 0) == hw::smmuv3::Cd{});
    // The last PASID gone: the abort STE.
    REQUIRE(rig.attach(rig.dev, 5, nullptr) == 0);
    CHECK(rig.ste(rig.dev) == kAbortSte);
    CHECK(rig.cd(rig.dev, 5) == hw::smmuv3::Cd{});
}

TEST_CASE("a CD table is linear up to 1024 contexts and without CD2L")
{
    Rig rig;
    auto d = rig.domain();
    REQUIRE(rig.attach(rig.pasid8, std::nullopt, d.get()) == 0);
    const auto ste = rig.ste(rig.pasid8);
    CHECK(((ste[0] >> 4) & 3) == 0);   // S1Fmt linear
    CHECK((ste[0] >> 59) == 8);        // S1CDMAX
    CHECK(rig.unit.cd(0x13, 255).has_value()); // 256 CDs
    CHECK_FALSE(rig.unit.cd(0x13, 256).has_value());

    // Without CD2L the driver keeps a device to 10 SSID bits.
    SmmuConfig c;
    c.two_level_cd_table = false;
    Rig lin(c);
    CHECK(lin.unit.pasid_bits(lin.dev) == 10);
    auto ld = lin.domain();
    REQUIRE(lin.attach(lin.dev, std::nullopt, ld.get()) == 0);
    CHECK((lin.ste(lin.dev)[0] >> 59) == 10);
}

// ------------------------------------------------------------ attach rules

TEST_CASE("attach rules of arm_smmu_attach_dev() and arm_smmu_set_pasid()")
{
    Rig rig;
    auto s1 = rig.domain();
    auto s2 = rig.domain({.nest_parent = true});
    auto dirty = rig.domain({.dirty_tracking = true});
    CHECK(rig.unit.check_attach(rig.dev, 3, *s2) == -EINVAL);       // PASIDs take stage 1 only
    CHECK(rig.unit.check_attach(rig.dev, 0, *s1) == -EINVAL);       // PASID 0 is the RID's
    CHECK(rig.unit.check_attach(rig.pasid8, 0x100, *s1) == -EINVAL); // beyond the device's width
    CHECK(rig.unit.check_attach(rig.nopasid, 1, *s1) == -EINVAL);
    CHECK(rig.unit.check_attach(rig.nodirty, std::nullopt, *dirty) == -EINVAL);

    // A PASID in use keeps a stage-2 domain off the RID.
    REQUIRE(rig.attach(rig.dev, 4, s1.get()) == 0);
    CHECK(rig.unit.check_attach(rig.dev, std::nullopt, *s2) == -EBUSY);
    REQUIRE(rig.attach(rig.dev, 4, nullptr) == 0);
    REQUIRE(rig.attach(rig.dev, std::nullopt, s2.get()) == 0);
    // ... and a stage-2 RID keeps PASIDs off.
    CHECK(rig.unit.check_attach(rig.dev, 4, *s1) == -EINVAL);

    // Another unit's domain.
    Rig other;
    auto foreign = other.domain();
    CHECK(rig.unit.check_attach(rig.dev, std::nullopt, *foreign) == -EINVAL);
}

// ------------------------------------------------------------------ faults

TEST_CASE("faults carry the event ID the SMMU would record")
{
    Rig rig;
    // Nothing attached: the abort STE terminates without a record.
    CHECK(fault_code(rig.unit, rig.dev, std::nullopt, 0x1000, Access::read, FaultReason::blocked) == 0);
    CHECK(fault_code(rig.unit, rig.dev, 1, 0x1000, Access::read, FaultReason::blocked) == 0);

    auto d = rig.domain();
    REQUIRE(d->map(0x1000, 0x800001000, k4K, kRO, k4K) == 0);
    REQUIRE(rig.attach(rig.dev, std::nullopt, d.get()) == 0);
    CHECK(fault_code(rig.unit, rig.dev, std::nullopt, 0x2000, Access::read, FaultReason::not_present) == 0x10);
    CHECK(fault_code(rig.unit, rig.dev, std::nullopt, 0x1000, Access::write, FaultReason::permission) == 0x13);
    // Above T0SZ's range: TTB1's, disabled by EPD1, a translation fault.
    CHECK(fault_code(rig.unit, rig.dev, std::nullopt, 1ULL << 48, Access::read, FaultReason::address_size) ==
          0x10);
    // A PASID without a CD: C_BAD_CD.
    CHECK(fault_code(rig.unit, rig.dev, 7, 0x1000, Access::read, FaultReason::blocked) == 0x0a);

    // An SSID at or beyond 2^S1CDMAX: C_BAD_SUBSTREAMID.
    REQUIRE(rig.attach(rig.pasid8, std::nullopt, d.get()) == 0);
    CHECK(fault_code(rig.unit, rig.pasid8, 0x100, 0x1000, Access::read, FaultReason::pasid_range) == 0x08);

    // The RID blocked behind an attached PASID: S1DSS terminate gives
    // F_STREAM_DISABLED.
    REQUIRE(rig.attach(rig.dev, std::nullopt, nullptr) == 0);
    REQUIRE(rig.attach(rig.dev, 2, d.get()) == 0);
    CHECK(fault_code(rig.unit, rig.dev, std::nullopt, 0x1000, Access::read, FaultReason::blocked) == 0x06);
    CHECK_FALSE(dma(rig.unit, rig.dev, 2, 0x1000, Access::read));
    // On that stream another PASID without a CD is C_BAD_CD, not the
    // RID's F_STREAM_DISABLED.
    CHECK(fault_code(rig.unit, rig.dev, 5, 0x1000, Access::read, FaultReason::blocked) == 0x0a);

    // Stage 2: an IPA above the IAS is an address size fault, and a
    // SubstreamID on a stage-2 STE is C_BAD_SUBSTREAMID.
    auto s2 = rig.domain({.nest_parent = true});
    REQUIRE(rig.attach(rig.nopasid, std::nullopt, s2.get()) == 0);
    CHECK(fault_code(rig.unit, rig.nopasid, std::nullopt, 1ULL << 48, Access::read, FaultReason::address_size) ==
          0x11);
    REQUIRE(rig.attach(rig.pasid8, std::nullopt, s2.get()) == 0);
    CHECK(fault_code(rig.unit, rig.pasid8, 3, 0x1000, Access::read, FaultReason::blocked) == 0x08);

    // A 52-bit IAS with a 4K-granule stage-2 table of 48 bits: an IPA
    // between the two is outside S2T0SZ's range, a translation fault; at
    // 2^52 and up it is beyond the IAS, an address size fault.
    SmmuConfig wide;
    wide.oas = 52;
    Rig w(wide);
    auto ws2 = w.domain({.nest_parent = true});
    REQUIRE(ws2->geometry().aperture.last == (1ULL << 48) - 1);
    REQUIRE(w.attach(w.nopasid, std::nullopt, ws2.get()) == 0);
    CHECK(fault_code(w.unit, w.nopasid, std::nullopt, 1ULL << 48, Access::read, FaultReason::address_size) ==
          0x10);
    CHECK(fault_code(w.unit, w.nopasid, std::nullopt, 1ULL << 52, Access::read, FaultReason::address_size) ==
          0x11);
}

TEST_CASE("dirty tracking through DMA: a write clears AP[2], read_and_clear sets it back")
{
    Rig rig;
    auto d = rig.domain({.dirty_tracking = true});
    REQUIRE(d->map(0x1000, 0x800001000, k4K, kRW, k4K) == 0);
    REQUIRE(rig.attach(rig.dev, std::nullopt, d.get()) == 0);
    REQUIRE(d->set_dirty_tracking(true) == 0);
    std::vector<std::uint64_t> dirty;
    auto record = [&](std::uint64_t iova, std::uint64_t) { dirty.push_back(iova); };
    auto* domain = dynamic_cast<hw::smmuv3::SmmuDomain<hw::smmuv3::Stage1Format<12>>*>(d.get());
    REQUIRE(domain);
    std::uint64_t* leaf = domain->table().walk(0x1000).entry;
    // Mapped writable-dirty, as io-pgtable-arm does; cleared, writable-clean.
    CHECK(*leaf == 0x0008000800001f47);
    d->read_and_clear_dirty(0x0, 0x10000, true, record);
    CHECK(dirty == std::vector<std::uint64_t>{0x1000});
    CHECK(*leaf == 0x0008000800001fc7);
    dirty.clear();
    CHECK_FALSE(dma(rig.unit, rig.dev, std::nullopt, 0x1000, Access::read));
    d->read_and_clear_dirty(0x0, 0x10000, true, record);
    CHECK(dirty.empty());
    CHECK_FALSE(dma(rig.unit, rig.dev, std::nullopt, 0x1008, Access::write));
    CHECK(*leaf == 0x0008000800001f47);
    d->read_and_clear_dirty(0x0, 0x10000, true, record);
    CHECK(dirty == std::vector<std::uint64_t>{0x1000});
}

// ----------------------------------------------------------------- topology

TEST_CASE("topology keys: values and contradictions are refused by name")
{
    auto make = [](std::map<std::string, TestParams::Value, std::less<>> values) {
        memory::PhysSpace phys;
        TestParams params(std::move(values));
        return hw::smmuv3::create_smmuv3_unit("s", params, phys) != nullptr;
    };
    CHECK(make({}));
    CHECK(make({{"stages", std::string("s2")}, {"granules", std::string("16K, 64K")}, {"httu", std::string("ha")}}));
    CHECK_THROWS_WITH(make({{"stages", std::string("s3")}}), Catch::Contains("t.toml:stages"));
    CHECK_THROWS_WITH(make({{"granules", std::string("8K")}}), Catch::Contains("8K"));
    CHECK_THROWS_WITH(make({{"granules", std::string("")}}), Catch::Contains("granules"));
    CHECK_THROWS_WITH(make({{"httu", std::string("hx")}}), Catch::Contains("httu"));
    CHECK_THROWS_WITH(make({{"oas", std::int64_t{47}}}), Catch::Contains("oas"));
    CHECK_THROWS_WITH(make({{"oas", std::int64_t{64}}}), Catch::Contains("oas"));
    CHECK_THROWS_WITH(make({{"va_bits", std::int64_t{40}}}), Catch::Contains("va_bits"));
    CHECK_THROWS_WITH(make({{"ssid_bits", std::int64_t{21}}}), Catch::Contains("ssid_bits"));
    CHECK_THROWS_WITH(make({{"sid_bits", std::int64_t{20}}, {"two_level_stream_table", false}}),
                      Catch::Contains("sid_bits"));
}
