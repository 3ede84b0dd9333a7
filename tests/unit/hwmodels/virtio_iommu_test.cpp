// The virtio-iommu: the device's requests and their status codes as the
// virtio specification's device requirements give them (including its
// UNMAP examples), the config space and PROBE properties as bytes, and the
// unit the Linux driver would make of it: domain ids, geometry, reserved
// regions, MAP/UNMAP as viommu_map_pages()/viommu_unmap_pages() send them,
// replay on attach, translation and fault codes.
#include <catch2/catch.hpp>

#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <variant>

#include "hwmodels/families.h"
#include "hwmodels/virtio/virtio_domain.h"
#include "hwmodels/virtio/virtio_unit.h"
#include "memory/phys_space.h"
#include "test_params.h"

using namespace ioasid;
using namespace ioasid::hw::virtio;
using hw::Access;
using hw::DmaRun;
using hw::Endpoint;
using hw::FaultReason;
using hw::Prot;
using hw::Span;

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

constexpr std::uint64_t k4K = 4096;
using Kind = VirtioIommuDevice::Lookup::Kind;

ReqAttach attach_req(std::uint32_t domain, std::uint32_t endpoint, std::uint32_t flags = 0)
{
    ReqAttach r{};
    r.head.type = 1;
    r.domain = domain;
    r.endpoint = endpoint;
    r.flags = flags;
    r.tail.status = 0xff;
    return r;
}
ReqDetach detach_req(std::uint32_t domain, std::uint32_t endpoint)
{
    ReqDetach r{};
    r.head.type = 2;
    r.domain = domain;
    r.endpoint = endpoint;
    return r;
}
ReqMap map_req(std::uint32_t domain, std::uint64_t start, std::uint64_t end, std::uint64_t phys,
               std::uint32_t flags = kMapRead | kMapWrite)
{
    ReqMap r{};
    r.head.type = 3;
    r.domain = domain;
    r.virt_start = start;
    r.virt_end = end;
    r.phys_start = phys;
    r.flags = flags;
    return r;
}
ReqUnmap unmap_req(std::uint32_t domain, std::uint64_t start, std::uint64_t end)
{
    ReqUnmap r{};
    r.head.type = 4;
    r.domain = domain;
    r.virt_start = start;
    r.virt_end = end;
    return r;
}

// A device with endpoints 1, 2 and 3 and domain ids 1..8.
struct DeviceRig {
    DeviceConfig config = [] {
        DeviceConfig c;
        c.domain_start = 1;
        c.domain_end = 8;
        return c;
    }();
    VirtioIommuDevice dev{config, [](std::uint32_t id) { return id >= 1 && id <= 3; }};

    Status attach(std::uint32_t domain, std::uint32_t endpoint, std::uint32_t flags = 0)
    {
        auto r = attach_req(domain, endpoint, flags);
        return dev.submit(r);
    }
    Status detach(std::uint32_t domain, std::uint32_t endpoint)
    {
        auto r = detach_req(domain, endpoint);
        return dev.submit(r);
    }
    Status map(std::uint32_t domain, std::uint64_t start, std::uint64_t end, std::uint64_t phys,
               std::uint32_t flags = kMapRead | kMapWrite)
    {
        auto r = map_req(domain, start, end, phys, flags);
        return dev.submit(r);
    }
    Status unmap(std::uint32_t domain, std::uint64_t start, std::uint64_t end)
    {
        auto r = unmap_req(domain, start, end);
        return dev.submit(r);
    }
    std::vector<std::pair<std::uint64_t, std::uint64_t>> mappings(std::uint32_t domain)
    {
        std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
        dev.for_each_mapping(domain, [&](std::uint64_t f, std::uint64_t l, std::uint64_t, std::uint32_t) {
            out.emplace_back(f, l);
        });
        return out;
    }
};

using test::TestParams;

std::unique_ptr<hw::Unit> make_unit(std::map<std::string, TestParams::Value, std::less<>> keys)
{
    static memory::PhysSpace phys;
    TestParams params(std::move(keys));
    return hw::find_family("virtio")->create("viommu", params, phys);
}

std::vector<std::uint8_t> bytes_of(const void* p, std::size_t n)
{
    std::vector<std::uint8_t> out(n);
    std::memcpy(out.data(), p, n);
    return out;
}

} // namespace

TEST_CASE("virtio-iommu device: features and config space bytes", "[virtio]")
{
    DeviceRig r;
    // INPUT_RANGE 0, DOMAIN_RANGE 1, MAP_UNMAP 2, PROBE 4, MMIO 5,
    // BYPASS_CONFIG 6; never the superseded BYPASS 3.
    CHECK(r.dev.features() == 0x77);
    const Config c = r.dev.config_space();
    const std::vector<std::uint8_t> expect = {
        0x00, 0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // page_size_mask ~0xfff
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // input_range.start
        0xff, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x00, 0x00, // input_range.end 2^39 - 1
        0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, // domain_range 1..8
        0x00, 0x02, 0x00, 0x00,                         // probe_size 512
        0x00, 0x00, 0x00, 0x00,                         // bypass 0, reserved
    };
    CHECK(bytes_of(&c, sizeof(c)) == expect);
}

TEST_CASE("virtio-iommu device: ATTACH and DETACH statuses", "[virtio]")
{
    DeviceRig r;
    CHECK(r.attach(1, 9) == Status::noent);  // no such endpoint
    CHECK(r.attach(9, 1) == Status::range);  // outside domain_range
    CHECK(r.attach(0, 1) == Status::range);
    CHECK(r.attach(9, 9) == Status::noent); // NOENT is a MUST; RANGE only a driver's error
    CHECK(r.attach(1, 1, 2) == Status::inval); // unknown flag
    auto reserved = attach_req(1, 1);
    reserved.reserved[2] = 1;
    CHECK(r.dev.submit(reserved) == Status::inval);
    CHECK(reserved.tail.status == 4);
    CHECK(!r.dev.domain_exists(1));

    auto ok = attach_req(1, 1);
    CHECK(r.dev.submit(ok) == Status::ok);
    CHECK(ok.tail.status == 0);
    CHECK(r.dev.domain_exists(1));
    CHECK(r.attach(1, 2) == Status::ok);
    // The domain is a translating one: asking for bypass is inconsistent.
    CHECK(r.attach(1, 3, kAttachBypass) == Status::inval);
    REQUIRE(r.map(1, 0x1000, 0x1fff, 0x80000000) == Status::ok);

    SECTION("attaching elsewhere detaches; the domain lives while an endpoint is left")
    {
        CHECK(r.attach(2, 1) == Status::ok);
        CHECK(r.dev.lookup_endpoint(1, 0x1000).kind == Kind::unmapped);
        CHECK(r.dev.lookup_endpoint(2, 0x1000).kind == Kind::mapped);
        CHECK(r.attach(2, 2) == Status::ok);
        // Its last endpoint gone, domain 1 ceased to exist with its mappings.
        CHECK(!r.dev.domain_exists(1));
        CHECK(r.map(1, 0x1000, 0x1fff, 0x80000000) == Status::noent);
        CHECK(r.dev.lookup_domain(1, 0x1000).kind == Kind::no_domain);
    }
    SECTION("DETACH")
    {
        CHECK(r.detach(1, 7) == Status::noent);
        CHECK(r.detach(2, 1) == Status::inval); // attached to 1, not 2
        CHECK(r.detach(1, 3) == Status::inval); // not attached at all
        CHECK(r.detach(12, 1) == Status::range);
        CHECK(r.detach(12, 7) == Status::noent);
        // DETACH's reserved bytes are ignored (a MUST of the specification).
        auto with_reserved = detach_req(1, 1);
        with_reserved.reserved[3] = 0x5a;
        CHECK(r.dev.submit(with_reserved) == Status::ok);
        CHECK(r.dev.lookup_endpoint(1, 0x1000).kind == Kind::no_domain);
        CHECK(r.attach(1, 1) == Status::ok);
        CHECK(r.detach(1, 1) == Status::ok);
        CHECK(r.dev.lookup_endpoint(1, 0x1000).kind == Kind::no_domain);
        CHECK(r.dev.domain_exists(1));
        CHECK(r.detach(1, 2) == Status::ok);
        CHECK(!r.dev.domain_exists(1));
    }
    SECTION("a bypass domain translates by identity and takes no MAP or UNMAP")
    {
        CHECK(r.attach(3, 3, kAttachBypass) == Status::ok);
        CHECK(r.attach(3, 3, kAttachBypass) == Status::ok); // already there: nothing to do
        CHECK(r.attach(3, 3) == Status::inval);              // the flag must match the domain
        auto hit = r.dev.lookup_endpoint(3, 0x12345678);
        CHECK(hit.kind == Kind::bypass);
        CHECK(hit.phys == 0x12345678);
        CHECK(r.map(3, 0x1000, 0x1fff, 0x1000) == Status::inval);
        CHECK(r.unmap(3, 0x1000, 0x1fff) == Status::inval);
    }
}

TEST_CASE("virtio-iommu device: MAP statuses", "[virtio]")
{
    DeviceRig r;
    REQUIRE(r.attach(1, 1) == Status::ok);
    CHECK(r.map(2, 0x1000, 0x1fff, 0x80000000) == Status::noent); // no such domain
    CHECK(r.map(9, 0x1000, 0x1fff, 0x80000000) == Status::range);
    // Not on the 4 KiB granule: virt_start, phys_start, virt_end + 1.
    CHECK(r.map(1, 0x1800, 0x27ff, 0x80000000) == Status::range);
    CHECK(r.map(1, 0x1000, 0x1fff, 0x80000800) == Status::range);
    CHECK(r.map(1, 0x1000, 0x1ffe, 0x80000000) == Status::range);
    // Beyond input_range (39 bits).
    CHECK(r.map(1, 1ULL << 39, (1ULL << 39) + 0xfff, 0x80000000) == Status::range);
    CHECK(r.map(1, 0x1000, 0x1000, 0x80000000) == Status::inval); // virt_end not above virt_start
    CHECK(r.map(1, 0x1000, 0x1fff, 0x80000000, 8) == Status::inval); // unknown flag
    // The MSI region PROBE reports cannot be mapped.
    CHECK(r.map(1, 0xfee00000, 0xfee00fff, 0x80000000) == Status::inval);

    REQUIRE(r.map(1, 0x10000, 0x1ffff, 0x80000000) == Status::ok);
    CHECK(r.map(1, 0x10000, 0x1ffff, 0x90000000) == Status::inval); // the same range
    CHECK(r.map(1, 0xf000, 0x10fff, 0x90000000) == Status::inval);  // overlapping below
    CHECK(r.map(1, 0x1f000, 0x20fff, 0x90000000) == Status::inval); // overlapping above
    CHECK(r.map(1, 0x12000, 0x12fff, 0x90000000) == Status::inval); // inside
    CHECK(r.map(1, 0x8000, 0x2ffff, 0x90000000) == Status::inval);  // around
    CHECK(r.map(1, 0x20000, 0x20fff, 0x90000000, kMapRead | kMapMmio) == Status::ok); // adjacent
    CHECK(r.mappings(1) == std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0x10000, 0x1ffff},
                                                                                 {0x20000, 0x20fff}});
    auto hit = r.dev.lookup_domain(1, 0x1f123);
    CHECK(hit.kind == Kind::mapped);
    CHECK(hit.phys + (0x1f123 - hit.first) == 0x8000f123);

    SECTION("MMIO is refused when the feature is not offered")
    {
        DeviceConfig c;
        c.mmio = false;
        VirtioIommuDevice dev{c, [](std::uint32_t) { return true; }};
        auto a = attach_req(5, 1);
        REQUIRE(dev.submit(a) == Status::ok);
        auto m = map_req(5, 0x1000, 0x1fff, 0x1000, kMapRead | kMapMmio);
        CHECK(dev.submit(m) == Status::inval);
        CHECK((dev.features() & (1u << 5)) == 0);
    }
}

TEST_CASE("virtio-iommu device: UNMAP as the specification's examples have it", "[virtio]")
{
    DeviceRig r;
    REQUIRE(r.attach(1, 1) == Status::ok);
    using List = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
    // Addresses in pages of 4 KiB: the examples' 0..9 become 0x0000..0x9fff.
    auto page = [](std::uint64_t n) { return n * k4K; };
    auto last = [](std::uint64_t n) { return n * k4K + (k4K - 1); };

    SECTION("(1) nothing mapped: OK, nothing removed")
    {
        CHECK(r.unmap(1, page(0), last(4)) == Status::ok);
    }
    SECTION("(2) and (3): whole mappings go")
    {
        REQUIRE(r.map(1, page(0), last(4), 0x100000) == Status::ok);
        REQUIRE(r.map(1, page(5), last(9), 0x200000) == Status::ok);
        CHECK(r.unmap(1, page(0), last(9)) == Status::ok);
        CHECK(r.mappings(1).empty());
    }
    SECTION("(4) a split is refused with RANGE and removes nothing")
    {
        REQUIRE(r.map(1, page(0), last(9), 0x100000) == Status::ok);
        REQUIRE(r.map(1, page(10), last(11), 0x200000) == Status::ok);
        auto req = unmap_req(1, page(0), last(4));
        CHECK(r.dev.submit(req) == Status::range);
        CHECK(req.tail.status == 5);
        CHECK(r.unmap(1, page(5), last(11)) == Status::range); // the first mapping reaches in
        CHECK(r.mappings(1) == List{{page(0), last(9)}, {page(10), last(11)}});
    }
    SECTION("(5), (6), (7): ranges spilling over unmapped space")
    {
        REQUIRE(r.map(1, page(0), last(4), 0x100000) == Status::ok);
        REQUIRE(r.map(1, page(5), last(9), 0x200000) == Status::ok);
        CHECK(r.unmap(1, page(0), last(4)) == Status::ok);
        CHECK(r.mappings(1) == List{{page(5), last(9)}});
        CHECK(r.unmap(1, page(5), last(14)) == Status::ok);
        CHECK(r.mappings(1).empty());
        REQUIRE(r.map(1, page(0), last(4), 0x100000) == Status::ok);
        REQUIRE(r.map(1, page(10), last(14), 0x200000) == Status::ok);
        CHECK(r.unmap(1, page(0), last(14)) == Status::ok);
        CHECK(r.mappings(1).empty());
    }
    SECTION("unknown domain, reserved bytes")
    {
        CHECK(r.unmap(2, page(0), last(0)) == Status::noent);
        auto req = unmap_req(1, page(0), last(0));
        req.reserved[0] = 1;
        CHECK(r.dev.submit(req) == Status::inval);
    }
}

TEST_CASE("virtio-iommu device: PROBE properties as bytes", "[virtio]")
{
    DeviceConfig c;
    c.probe_size = 64;
    c.resv.push_back({kResvReserved, 0x100000000, 0x1000fffff});
    VirtioIommuDevice dev{c, [](std::uint32_t id) { return id == 7; }};
    ReqProbe req{};
    req.head.type = 5;
    req.endpoint = 7;
    std::vector<std::byte> props(64, std::byte{0xaa});
    ReqTail tail{0xff, {}};
    REQUIRE(dev.submit(req, props, tail) == Status::ok);
    CHECK(tail.status == 0);
    // RESV_MEM: type 1, length 20 (24 minus the 4-byte header), subtype,
    // 3 reserved bytes, start, end; then the second property, then zeros
    // (a NONE type ends the list).
    std::vector<std::uint8_t> expect = {
        0x01, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x00, // RESV_MEM, MSI
        0x00, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00, // start 0xfee00000
        0xff, 0xff, 0xef, 0xfe, 0x00, 0x00, 0x00, 0x00, // end 0xfeefffff
        0x01, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, // RESV_MEM, RESERVED
        0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // start 0x100000000
        0xff, 0xff, 0x0f, 0x00, 0x01, 0x00, 0x00, 0x00, // end 0x1000fffff
    };
    expect.resize(64, 0);
    CHECK(bytes_of(props.data(), props.size()) == expect);

    req.endpoint = 8;
    CHECK(dev.submit(req, props, tail) == Status::noent);
    req.endpoint = 7;
    std::vector<std::byte> small(32);
    CHECK(dev.submit(req, small, tail) == Status::inval);

    c.probe = false;
    VirtioIommuDevice noprobe{c, [](std::uint32_t) { return true; }};
    tail.status = 0xff;
    std::fill(props.begin(), props.end(), std::byte{0xaa});
    CHECK(noprobe.submit(req, props, tail) == Status::unsupp);
    CHECK(tail.status == 0xff); // the buffer is not written
    CHECK(props[0] == std::byte{0xaa});
    CHECK(noprobe.config_space().probe_size == 0);
}

TEST_CASE("virtio-iommu device: an unattached endpoint bypasses only with bypass = 1", "[virtio]")
{
    DeviceConfig c;
    c.bypass = 1;
    VirtioIommuDevice dev{c, [](std::uint32_t) { return true; }};
    auto hit = dev.lookup_endpoint(4, 0xabc000);
    CHECK(hit.kind == Kind::bypass);
    CHECK(hit.phys == 0xabc000);
    DeviceRig r;
    CHECK(r.dev.lookup_endpoint(1, 0xabc000).kind == Kind::no_domain);
}

TEST_CASE("virtio unit: domains, geometry, ids, hw_info, reserved regions", "[virtio]")
{
    auto unit = make_unit({{"domain_start", std::int64_t{4}}, {"domain_end", std::int64_t{6}}});
    Endpoint& e = unit->add_endpoint({"d", 0x10, 0, true});

    const hw::HwInfo info = unit->hw_info(e);
    CHECK(info.type == IOMMU_HW_INFO_TYPE_NONE);
    CHECK(info.data.empty());
    CHECK(info.capabilities == 0);
    CHECK(info.max_pasid_log2 == 0);

    std::unique_ptr<hw::Domain> a, b, c;
    CHECK(unit->alloc_domain(e, {.nest_parent = true}, &a) == -EOPNOTSUPP);
    CHECK(unit->alloc_domain(e, {.dirty_tracking = true}, &a) == -EOPNOTSUPP);
    CHECK(unit->alloc_domain(e, {.pasid = true}, &a) == -EOPNOTSUPP);
    REQUIRE(unit->alloc_domain(e, {}, &a) == 0);
    // viommu_domain_alloc_paging(): the device's input range and page mask.
    CHECK(a->geometry().aperture == Span{0, (1ULL << 39) - 1});
    CHECK(a->geometry().pgsize_bitmap == 0xfffffffffffff000ULL);
    CHECK(a->format_name() == "virtio-iommu-mappings (no page table)");
    // Id 4 is the identity domain's (BYPASS_CONFIG): 5 and 6 are left.
    CHECK(static_cast<VirtioDomain&>(*a).id() == 5);
    REQUIRE(unit->alloc_domain(e, {}, &b) == 0);
    CHECK(static_cast<VirtioDomain&>(*b).id() == 6);
    CHECK(unit->alloc_domain(e, {}, &c) == -ENOSPC);
    a.reset();
    REQUIRE(unit->alloc_domain(e, {}, &c) == 0);
    CHECK(static_cast<VirtioDomain&>(*c).id() == 5);

    // PROBE's MSI region, as the driver passes it on.
    CHECK(unit->reserved_regions(e) == std::vector<Span>{{0xfee00000, 0xfeefffff}});

    SECTION("a granule above the guest's page size: -ENODEV")
    {
        auto big = make_unit({{"page_size_mask", std::int64_t{0x10000}}});
        Endpoint& be = big->add_endpoint({"d", 1, 0, true});
        std::unique_ptr<hw::Domain> d;
        CHECK(big->alloc_domain(be, {}, &d) == -ENODEV);
    }
    SECTION("without an MSI region the driver reserves its software window")
    {
        auto plain = make_unit({{"msi", false}, {"reserved_start", std::int64_t{0x40000000}},
                                {"reserved_end", std::int64_t{0x40ffffff}}});
        Endpoint& pe = plain->add_endpoint({"d", 1, 0, true});
        CHECK(plain->reserved_regions(pe) == std::vector<Span>{{0x8000000, 0x80fffff}, {0x40000000, 0x40ffffff}});
        auto noprobe = make_unit({{"probe", false}});
        Endpoint& ne = noprobe->add_endpoint({"d", 1, 0, true});
        CHECK(noprobe->reserved_regions(ne) == std::vector<Span>{{0x8000000, 0x80fffff}});
    }
}

TEST_CASE("virtio unit: MAP and UNMAP requests, replay on attach, DMA and faults", "[virtio]")
{
    auto unit_ptr = make_unit({});
    auto& unit = static_cast<VirtioUnit&>(*unit_ptr);
    Endpoint& e = unit.add_endpoint({"d", 0x10, 0, true});
    std::unique_ptr<hw::Domain> owned;
    REQUIRE(unit.alloc_domain(e, {}, &owned) == 0);
    auto& d = static_cast<VirtioDomain&>(*owned);
    const std::uint32_t id = d.id();
    std::vector<DmaRun> runs;
    auto dump = [&] {
        std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
        d.dump([&](const hw::DumpEntry& entry) { out.emplace_back(entry.iova, entry.size); });
        return out;
    };

    // Before any endpoint: the driver's tree only, no request.
    REQUIRE(d.map(0x1000, 0x300001000, 0x3000, {true, false}, UINT64_MAX) == 0);
    CHECK(!unit.device().domain_exists(id));
    // A second map at an address already in the tree is refused and the
    // first one stays (the DMA below still reaches 0x300001000).
    CHECK(d.map(0x1000, 0x390000000, 0x1000, {true, true}, UINT64_MAX) == -EINVAL);

    unit.attach(e, hw::kNoPasid, &d);
    CHECK(d.endpoints() == 1);
    // ATTACH, then the replay: iommu_pgsize() made two mappings of the
    // run, 4 KiB at 0x1000 and 8 KiB at 0x2000.
    CHECK(dump() == std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0x1000, 0x1000}, {0x2000, 0x2000}});
    CHECK(!unit.translate(e, hw::kNoPasid, 0x1ff8, 16, Access::read, &runs));
    CHECK(pairs(runs) == Pairs{{0x300001ff8, 16}});

    // While attached a map is a MAP request; one aligned 4 MiB run at
    // 2 MiB alignment is a single mapping.
    REQUIRE(d.map(0x200000, 0x340200000, 0x400000, {true, true}, UINT64_MAX) == 0);
    auto hit = unit.device().lookup_domain(id, 0x5fffff);
    CHECK(hit.kind == Kind::mapped);
    CHECK(hit.first == 0x200000);
    CHECK(hit.last == 0x5fffff);
    CHECK(d.lookup(0x3fffff).page_size == (1ULL << 21));
    // With large pages off the core maps page by page: a MAP request each.
    REQUIRE(d.map(0x800000, 0x340800000, 0x3000, {true, true}, 0x1000) == 0);
    CHECK(unit.device().lookup_domain(id, 0x800000).last == 0x800fff);
    CHECK(unit.device().lookup_domain(id, 0x802000).first == 0x802000);
    d.unmap(0x800000, 0x3000);

    // The fault codes: reason in bits 7:0, the record's flags above.
    auto fault = [&](std::uint64_t iova, Access access) {
        runs.clear();
        auto f = unit.translate(e, hw::kNoPasid, iova, 8, access, &runs);
        REQUIRE(f);
        return *f;
    };
    auto f = fault(0x1000, Access::write);
    CHECK(f.reason == FaultReason::permission);
    CHECK(f.hw_code == 0x10202); // MAPPING 2 | (WRITE 0x2 | ADDRESS 0x100) << 8
    f = fault(0x8000, Access::read);
    CHECK(f.reason == FaultReason::not_present);
    CHECK(f.hw_code == 0x10102);
    f = fault(1ULL << 39, Access::read);
    CHECK(f.reason == FaultReason::address_size);
    CHECK(f.hw_code == 0x10102);

    // The core unmaps what it mapped: the whole first run, two mappings.
    d.unmap(0x1000, 0x3000);
    CHECK(dump() == std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0x200000, 0x400000}});
    CHECK(fault(0x1000, Access::read).reason == FaultReason::not_present);

    SECTION("blocking sends DETACH: the device drops the domain; reattaching replays it")
    {
        unit.attach(e, hw::kNoPasid, nullptr);
        CHECK(d.endpoints() == 0);
        CHECK(!unit.device().domain_exists(id));
        f = fault(0x200000, Access::read);
        CHECK(f.reason == FaultReason::blocked);
        CHECK(f.hw_code == 0x10101); // DOMAIN 1 | (READ 0x1 | ADDRESS 0x100) << 8
        // A map while detached goes into the driver's tree alone.
        REQUIRE(d.map(0x800000, 0x350000000, 0x1000, {true, true}, UINT64_MAX) == 0);
        unit.attach(e, hw::kNoPasid, &d);
        CHECK(dump().size() == 2);
        CHECK(!unit.translate(e, hw::kNoPasid, 0x800000, 8, Access::write, &runs));
    }
    SECTION("moving to another domain leaves the first one's mappings behind")
    {
        std::unique_ptr<hw::Domain> other;
        REQUIRE(unit.alloc_domain(e, {}, &other) == 0);
        unit.attach(e, hw::kNoPasid, other.get());
        CHECK(d.endpoints() == 0);
        CHECK(!unit.device().domain_exists(id));
        CHECK(fault(0x200000, Access::read).reason == FaultReason::not_present);
        unit.attach(e, hw::kNoPasid, &d);
        CHECK(!unit.translate(e, hw::kNoPasid, 0x200000, 8, Access::read, &runs));
        unit.attach(e, hw::kNoPasid, nullptr);
    }
    unit.attach(e, hw::kNoPasid, nullptr);
}

TEST_CASE("virtio topology: keys and what they may not say", "[virtio]")
{
    auto message_of = [&](std::map<std::string, TestParams::Value, std::less<>> keys) -> std::string {
        try {
            make_unit(std::move(keys));
        } catch (const hw::UnitParamError& e) {
            return e.what();
        }
        return "";
    };
    auto unit = make_unit({{"input_start", std::int64_t{0x10000}}, {"input_end", std::int64_t{0xffffffffff}},
                           {"mmio", false}, {"probe_size", std::int64_t{24}}});
    const Config c = static_cast<VirtioUnit&>(*unit).device().config_space();
    CHECK(c.input_start == 0x10000);
    CHECK(c.input_end == 0xffffffffff);
    CHECK(c.probe_size == 24);
    CHECK((static_cast<VirtioUnit&>(*unit).device().features() & (1u << 5)) == 0);

    CHECK_THAT(message_of({{"page_size_mask", std::int64_t{0}}}), Catch::Contains("t.toml:page_size_mask"));
    CHECK_THAT(message_of({{"input_start", std::int64_t{0x2000}}, {"input_end", std::int64_t{0x1000}}}),
               Catch::Contains("input_end"));
    CHECK_THAT(message_of({{"domain_start", std::int64_t{9}}, {"domain_end", std::int64_t{3}}}),
               Catch::Contains("domain_end"));
    CHECK_THAT(message_of({{"domain_end", std::int64_t{1} << 32}}), Catch::Contains("domain_end"));
    CHECK_THAT(message_of({{"bypass", true}}), Catch::Contains("bypass"));
    CHECK_THAT(message_of({{"probe_size", std::int64_t{16}}}), Catch::Contains("probe_size"));
    CHECK_THAT(message_of({{"reserved_start", std::int64_t{0xfee80000}}, {"reserved_end", std::int64_t{0xfef00000}}}),
               Catch::Contains("overlaps"));
    CHECK_THAT(message_of({{"reserved_start", std::int64_t{0x1000}}}), Catch::Contains("go together"));
    CHECK_THAT(message_of({{"msi_start", std::int64_t{0x2000}}, {"msi_end", std::int64_t{0x1000}}}),
               Catch::Contains("msi_end"));
}
