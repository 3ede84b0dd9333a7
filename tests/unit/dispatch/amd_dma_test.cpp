// An AMD-Vi unit end to end through the dispatcher, as a client drives the
// node: GET_HW_INFO type 4 with the unit's EFR and EFR2
// (amd_iommufd_hw_info()), the HWPT_ALLOC flags 6.12's
// amd_iommu_domain_alloc_user() takes and refuses, attach and the device
// table entry it programs, IOAS_MAP and DMA landing in client memory
// through a v1 table, the dirty bitmap after DMA writes, no PASID
// attachment for a paging domain, and the reserved MSI and HyperTransport
// windows as holes in IOVA_RANGES.
#include <catch2/catch.hpp>

#include <ioasid/emu.h>
#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "hardware_fixture.h"
#include "hwmodels/amd/amd_unit.h"

using namespace ioasid;
using namespace ioasid::test;
using hw::amd::AmdConfig;
using hw::amd::AmdUnit;

namespace {

// Units: amd0 (default: dirty tracking, guest translation, 16-bit
// PASIDs), amdplain (neither). Devices: a0 (20-bit PASIDs), a8 (8-bit) on
// amd0; p0 (no PASID) on amdplain.
struct AmdServices {
    core::CoreServices services;
    AmdServices()
    {
        services.hardware.add_unit(std::make_unique<AmdUnit>("amd0", AmdConfig{}, services.phys));
        AmdConfig plain;
        plain.dirty_tracking = false;
        plain.guest_translation = false;
        plain.pasid_bits = 0;
        services.hardware.add_unit(std::make_unique<AmdUnit>("amdplain", plain, services.phys));
        services.hardware.add_device("amd0", hw::EndpointConfig{"a0", 0x40, 20, true}, "g-a0", false, "vfio-a0");
        services.hardware.add_device("amd0", hw::EndpointConfig{"a8", 0x41, 8, true}, "g-a8", false, "vfio-a8");
        services.hardware.add_device("amdplain", hw::EndpointConfig{"p0", 0x42, 0, true}, "g-p0", false,
                                     "vfio-p0");
    }
};

struct AmdFixture : AmdServices {
    Client client{services, make_hw_caller()};
    std::uint32_t ioas = alloc_ok(client);

    AmdUnit& unit(const std::string& name)
    {
        for (const auto& u : services.hardware.units())
            if (u->name() == name)
                return dynamic_cast<AmdUnit&>(*u);
        throw std::runtime_error("no unit " + name);
    }
};

std::vector<std::byte> le64(std::uint64_t v)
{
    std::vector<std::byte> out(8);
    for (unsigned i = 0; i < 8; ++i)
        out[i] = static_cast<std::byte>(v >> (8 * i));
    return out;
}

} // namespace

TEST_CASE("amd: GET_HW_INFO is type 4 with EFR and EFR2", "[amd][hw_info]")
{
    AmdFixture f;
    Client& c = f.client;
    HwInfoAnswer r = get_hw_info(c, bind_ok(c, "a0"), 64);
    REQUIRE(r.rc == 0);
    CHECK(r.out.out_data_type == 4); // IOMMU_HW_INFO_TYPE_AMD
    CHECK(r.out.data_len == 16);
    // efr = 0x0017000f00004b5f (see amd_unit_test), efr2 = 0; the rest of
    // the buffer is zero-filled.
    auto expect = le64(0x0017000f00004b5fULL);
    const auto efr2 = le64(0);
    expect.insert(expect.end(), efr2.begin(), efr2.end());
    expect.resize(64, std::byte{0});
    CHECK(std::vector(r.data.begin(), r.data.begin() + 64) == expect);
    CHECK(r.data[64] == kHwInfoFill); // nothing past data_len
    CHECK(r.out.out_capabilities == IOMMU_HW_CAP_DIRTY_TRACKING);
    CHECK(r.out.out_max_pasid_log2 == 15);

    CHECK(get_hw_info(c, bind_ok(c, "a8"), 16).out.out_max_pasid_log2 == 8);
    HwInfoAnswer p = get_hw_info(c, bind_ok(c, "p0"), 8);
    REQUIRE(p.rc == 0);
    CHECK(p.out.data_len == 16);
    // amdplain's EFR: PrefSup (0), XTSup (2), IASup (6), HESup (8), PCSup
    // (9) and HATS 2 (bit 11) = 0xb45; only the 8 bytes asked for are written.
    CHECK(std::vector(p.data.begin(), p.data.begin() + 8) == le64(0xb45));
    CHECK(p.data[8] == kHwInfoFill);
    CHECK(p.out.out_capabilities == 0);
    CHECK(p.out.out_max_pasid_log2 == 0);
}

TEST_CASE("amd: HWPT_ALLOC takes dirty tracking and nothing else", "[amd][hwpt]")
{
    AmdFixture f;
    Client& c = f.client;
    const std::uint32_t a0 = bind_ok(c, "a0");
    const std::uint32_t p0 = bind_ok(c, "p0");
    std::uint32_t id = 0;
    CHECK(hwpt_alloc(c, a0, f.ioas, 0, &id) == 0);
    CHECK(hwpt_alloc(c, a0, f.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &id) == 0);
    CHECK(hwpt_alloc(c, a0, f.ioas, IOMMU_HWPT_ALLOC_NEST_PARENT, &id) == -EOPNOTSUPP);
    CHECK(hwpt_alloc(c, a0, f.ioas, IOMMU_HWPT_ALLOC_PASID, &id) == -EOPNOTSUPP);
    CHECK(hwpt_alloc(c, p0, f.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &id) == -EOPNOTSUPP);
    CHECK(hwpt_alloc(c, p0, f.ioas, 0, &id) == 0);
}

TEST_CASE("amd: attach programs the DTE; DMA lands in client memory", "[amd][dma]")
{
    AmdFixture f;
    Client& c = f.client;
    const std::uint32_t a0 = bind_ok(c, "a0");
    const std::uint32_t hwpt = attach_ok(c, a0, f.ioas);
    // V, TV, IR, IW and Mode 3 in qword 0 (the rest is the root address).
    const auto q = f.unit("amd0").dte(0x40);
    CHECK((q[0] & 0xfff0000000000fffULL) == 0x6000000000000603ULL);
    CHECK(q[1] != 0); // the DomainID

    fill(c, kBufferAddr, 64 * 1024, 1);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 64 * 1024, 0x100000) == 0);
    CHECK(dma_read_ok(c, a0, 0x100000 + 100, 8192) == bytes_at(c, kBufferAddr + 100, 8192));
    fill(c, kDmaBufAddr, 5000, 3);
    Dma d = dma(c, a0, 0x100000 + 3000, 5000, true);
    REQUIRE(d.rc == 0);
    CHECK(d.out.out_done == 5000);
    CHECK(bytes_at(c, kBufferAddr + 3000, 5000) == pattern(5000, 3));

    // The table is the v1 format.
    auto dump = pt_dump(c, hwpt);
    CHECK(dump["format"] == "amd-v1");

    // Unmapped: IO_PAGE_FAULT with the DomainID, out_done counting what moved.
    d = dma(c, a0, 0x100000 + 60 * 1024, 8192, false);
    CHECK(d.rc == -EIO);
    CHECK(d.out.out_done == 4096);
    CHECK(d.out.out_fault_iova == 0x100000 + 64 * 1024);
    CHECK(d.out.out_fault_code >> 28 == 2);

    // Detach: the DTE goes back to V and TV.
    REQUIRE(detach(c, a0) == 0);
    CHECK(f.unit("amd0").dte(0x40) == std::array<std::uint64_t, 4>{0x3, 0, 0, 0});
}

TEST_CASE("amd: no paging domain reaches a PASID", "[amd][pasid]")
{
    AmdFixture f;
    Client& c = f.client;
    const std::uint32_t a0 = bind_ok(c, "a0");
    attach_ok(c, a0, f.ioas);
    // iommufd_hwpt_pasid_compat(): the IOAS's automatic domain was not
    // allocated for PASIDs; one that is cannot be had on 6.12 (the
    // HWPT_ALLOC case above), and a v1 domain has no set_dev_pasid op
    // anyway (amd_unit_test).
    std::uint32_t pt = f.ioas;
    CHECK(attach(c, a0, &pt, 5) == -EINVAL);
    CHECK(dma(c, a0, 0, 8, false, kDmaBufAddr, 5).out.out_fault_reason != IOASID_EMU_FAULT_NONE);
}

TEST_CASE("amd: the dirty bitmap after DMA writes", "[amd][dirty]")
{
    AmdFixture f;
    Client& c = f.client;
    const std::uint32_t a0 = bind_ok(c, "a0");
    const std::uint32_t hwpt = hwpt_alloc_ok(c, a0, f.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    attach_ok(c, a0, hwpt);
    fill(c, kBufferAddr, 64 * 1024, 1);
    constexpr std::uint64_t iova = 0x200000;
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 64 * 1024, iova) == 0);
    REQUIRE(set_dirty_tracking(c, hwpt, true) == 0);
    CHECK((f.unit("amd0").dte(0x40)[0] & 0x180) == 0x180); // HA and HD

    fill(c, kDmaBufAddr, 16, 4);
    REQUIRE(dma(c, a0, iova + 5 * 4096 + 8, 16, true).rc == 0);
    REQUIRE(dma_read_ok(c, a0, iova + 9 * 4096, 64).size() == 64);

    constexpr std::uint64_t kBitmap = kDmaBufAddr + (4 << 20);
    auto read = [&](std::uint32_t flags) {
        std::uint64_t word = 0;
        c.write(kBitmap, std::as_bytes(std::span(&word, 1)));
        REQUIRE(get_dirty_bitmap(c, hwpt, iova, 64 * 1024, 4096, kBitmap, flags) == 0);
        c.read(kBitmap, std::as_writable_bytes(std::span(&word, 1)));
        return word;
    };
    // The written page's bit, however the IOAS chose to map the range: a
    // larger leaf reports all its pages.
    const std::uint64_t first = read(IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
    CHECK((first >> 5 & 1) == 1);
    CHECK(read(0) == first);
    CHECK(read(0) == 0);
    REQUIRE(set_dirty_tracking(c, hwpt, false) == 0);
    CHECK((f.unit("amd0").dte(0x40)[0] & 0x180) == 0);
}

TEST_CASE("amd: IOVA_RANGES has holes at the MSI and HyperTransport windows", "[amd][ioas]")
{
    AmdFixture f;
    Client& c = f.client;
    attach_ok(c, bind_ok(c, "a0"), f.ioas);
    const RangeList expect = {{0, 0xfedfffff}, {0xfef00000, 0xfcffffffff}, {0x10000000000, ~0ULL}};
    CHECK(ranges_of(c, f.ioas) == expect);
    // The windows cannot be mapped.
    std::uint64_t at = 0xfee00000;
    CHECK(c.map(f.ioas, kBufferAddr, 4096, &at,
                IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE) != 0);
}
