// A POWER TCE unit end to end through the dispatcher: GET_HW_INFO (no
// type), HWPT_ALLOC refusals, an IOAS whose usable ranges are exactly the
// two DMA windows, the errnos of maps outside them (iopt_check_iova():
// EINVAL; iopt_reserve_iova(): EADDRINUSE), the 64 KiB window's alignment,
// and DMA landing in the client's memory through each window.
#include <catch2/catch.hpp>

#include <ioasid/emu.h>
#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "hardware_fixture.h"
#include "hwmodels/ppc_tce/tce_unit.h"

using namespace ioasid;
using namespace ioasid::test;
using hw::ppc_tce::FaultCode;

namespace {

constexpr std::uint64_t k64K = 1ULL << 16;
constexpr std::uint64_t k1G = 1ULL << 30;
constexpr std::uint64_t kDma64 = 1ULL << 59;
constexpr std::uint64_t kDma64Last = kDma64 + (1ULL << 36) - 1;

// Two PEs behind one PHB with the default windows.
struct TceServices {
    core::CoreServices services;
    TceServices()
    {
        services.hardware.add_unit(
            std::make_unique<hw::ppc_tce::TceUnit>("phb0", hw::ppc_tce::TceConfig{}, services.phys));
        services.hardware.add_device("phb0", hw::EndpointConfig{"p0", 0x100, 0, true}, "g-p0", false, "vfio-p0");
        services.hardware.add_device("phb0", hw::EndpointConfig{"p1", 0x108, 0, true}, "g-p1", false, "vfio-p1");
    }
};

struct TceFixture : TceServices {
    Client client{services, make_hw_caller()};
    std::uint32_t ioas = alloc_ok(client);
};

int copy(Client& c, std::uint32_t dst_ioas, std::uint64_t dst_iova, std::uint32_t src_ioas, std::uint64_t src_iova,
         std::uint64_t length)
{
    iommu_ioas_copy cmd{.size = sizeof(cmd),
                        .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE,
                        .dst_ioas_id = dst_ioas, .src_ioas_id = src_ioas, .length = length,
                        .dst_iova = dst_iova, .src_iova = src_iova};
    return c.ioctl(IOMMU_IOAS_COPY, cmd);
}

int allow_iovas(Client& c, std::uint32_t ioas, const std::vector<iommu_iova_range>& ranges)
{
    c.write(kArrayAddr, std::as_bytes(std::span(ranges)));
    iommu_ioas_allow_iovas cmd{.size = sizeof(cmd), .ioas_id = ioas,
                               .num_iovas = static_cast<std::uint32_t>(ranges.size()), .__reserved = 0,
                               .allowed_iovas = kArrayAddr};
    return c.ioctl(IOMMU_IOAS_ALLOW_IOVAS, cmd);
}

} // namespace

TEST_CASE("TCE: GET_HW_INFO reports no type and no data", "[ppc_tce]")
{
    TceFixture f;
    Client& c = f.client;
    const std::uint32_t p0 = bind_ok(c, "p0");
    fill_byte(c, kArrayAddr, 128, std::byte{0xaa});
    iommu_hw_info cmd{};
    cmd.size = sizeof(cmd);
    cmd.dev_id = p0;
    cmd.data_len = 64;
    cmd.data_uptr = kArrayAddr;
    cmd.out_data_type = 0xffffffff;
    REQUIRE(c.ioctl(IOMMU_GET_HW_INFO, cmd) == 0);
    CHECK(cmd.out_data_type == IOMMU_HW_INFO_TYPE_NONE);
    CHECK(cmd.data_len == 0);
    CHECK(cmd.out_capabilities == 0);
    CHECK(cmd.out_max_pasid_log2 == 0);
    // The whole user buffer is zeroed past the (empty) data, as the kernel
    // clears data_len bytes it did not fill.
    CHECK(bytes_at(c, kArrayAddr, 64) == std::vector<std::byte>(64, std::byte{0}));
    CHECK(value_at<std::uint8_t>(c, kArrayAddr + 64) == 0xaa);
}

TEST_CASE("TCE: HWPT_ALLOC takes no flags", "[ppc_tce]")
{
    TceFixture f;
    Client& c = f.client;
    const std::uint32_t p0 = bind_ok(c, "p0");
    std::uint32_t hwpt = 0;
    CHECK(hwpt_alloc(c, p0, f.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt) == -EOPNOTSUPP);
    CHECK(hwpt_alloc(c, p0, f.ioas, IOMMU_HWPT_ALLOC_NEST_PARENT, &hwpt) == -EOPNOTSUPP);
    CHECK(hwpt_alloc(c, p0, f.ioas, IOMMU_HWPT_ALLOC_PASID, &hwpt) == -EOPNOTSUPP);
    CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 0);
    hwpt = hwpt_alloc_ok(c, p0, f.ioas);
    CHECK(set_dirty_tracking(c, hwpt, true) == -EOPNOTSUPP);
}

TEST_CASE("TCE: an attached IOAS offers exactly the two windows", "[ppc_tce]")
{
    TceFixture f;
    Client& c = f.client;
    const std::uint32_t p0 = bind_ok(c, "p0");
    attach_ok(c, p0, f.ioas);
    std::uint64_t alignment = 0;
    std::vector<iommu_iova_range> raw;
    REQUIRE(iova_ranges(c, f.ioas, &raw, &alignment) == 0);
    CHECK(ranges_of(c, f.ioas) == RangeList{{0, k1G - 1}, {kDma64, kDma64Last}});
    // The smaller of the windows' pages.
    CHECK(alignment == 4096);

    // Outside the windows, IOAS_MAP fails in iopt_check_iova(): EINVAL for
    // the reserved gap and beyond the aperture alike.
    CHECK(c.map_fixed(f.ioas, kBufferAddr, 4096, k1G) == -EINVAL);
    CHECK(c.map_fixed(f.ioas, kBufferAddr, 8192, k1G - 4096) == -EINVAL);
    CHECK(c.map_fixed(f.ioas, kBufferAddr, k64K, kDma64 - k64K) == -EINVAL);
    CHECK(c.map_fixed(f.ioas, kBufferAddr, k64K, kDma64Last + 1) == -EINVAL);
    CHECK(c.map_fixed(f.ioas, kBufferAddr, 2 * k64K, kDma64Last + 1 - k64K) == -EINVAL);
    // Allowing IOVAs in the gap collides with the reservation.
    CHECK(allow_iovas(c, f.ioas, {{.start = k1G, .last = k1G + 0xfff}}) == -EADDRINUSE);
}

TEST_CASE("TCE: reservations meet mappings the IOAS already has", "[ppc_tce]")
{
    TceFixture f;
    Client& c = f.client;
    const std::uint32_t p0 = bind_ok(c, "p0");

    SECTION("a mapping in the gap keeps the device out: EADDRINUSE from iopt_reserve_iova()")
    {
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 4096, 2 * k1G) == 0);
        std::uint32_t pt = f.ioas;
        CHECK(attach(c, p0, &pt) == -EADDRINUSE);
        REQUIRE(c.unmap(f.ioas, 2 * k1G, 4096) == 0);
        attach_ok(c, p0, f.ioas);
    }
    SECTION("a mapping past the 64-bit window keeps the domain out of the IOAS")
    {
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 4096, kDma64Last + 1) == 0);
        std::uint32_t hwpt = 0;
        CHECK(hwpt_alloc(c, p0, f.ioas, 0, &hwpt) == -EADDRINUSE);
    }
    SECTION("a domain not yet attached refuses the gap itself, as a driver's map_pages() would")
    {
        const std::uint32_t hwpt = hwpt_alloc_ok(c, p0, f.ioas);
        CHECK(c.map_fixed(f.ioas, kBufferAddr, 4096, 2 * k1G) == -EINVAL);
        CHECK(leaves_of(pt_dump(c, hwpt)).empty());
        std::uint32_t pt = hwpt;
        CHECK(attach(c, p0, &pt) == 0);
        CHECK(ranges_of(c, f.ioas) == RangeList{{0, k1G - 1}, {kDma64, kDma64Last}});
    }
}

TEST_CASE("TCE: the 64 KiB window takes 64 KiB-aligned IOVA, memory and length only", "[ppc_tce]")
{
    TceFixture f;
    Client& c = f.client;
    const std::uint32_t p0 = bind_ok(c, "p0");
    attach_ok(c, p0, f.ioas);

    // IOVA or length on a 4 KiB boundary only: the domain's map fails.
    CHECK(c.map_fixed(f.ioas, kBufferAddr, k64K, kDma64 + 0x1000) == -EINVAL);
    CHECK(c.map_fixed(f.ioas, kBufferAddr, k64K + 0x1000, kDma64) == -EINVAL);
    CHECK(c.ctx().objects().find_as<core::Ioas>(f.ioas)->iopt().area_count() == 0);
    // Pinned memory starts a 2 MiB-aligned physical chunk, so a fresh map
    // of whole 64 KiB pages fits the window.
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 2 * k64K, kDma64) == 0);
    // A copy from 4 KiB into that memory is 64 KiB-aligned in IOVA and
    // length but not in physical address: EINVAL again.
    const std::uint32_t src = alloc_ok(c);
    REQUIRE(c.map_fixed(src, kBufferAddr + 0x100000, 4 * k64K, 0x100000) == 0);
    CHECK(copy(c, f.ioas, kDma64 + 4 * k64K, src, 0x101000, k64K) == -EINVAL);
    CHECK(copy(c, f.ioas, kDma64 + 4 * k64K, src, 0x110000, k64K) == 0);
    // The 4 KiB window takes the same copy at any page.
    CHECK(copy(c, f.ioas, 0x200000, src, 0x101000, 0x3000) == 0);

    const auto dump = pt_dump(c, attach_ok(c, p0, f.ioas));
    CHECK(dump["format"] == "ppc-tce");
    CHECK(dump["pgsize_bitmap"] == 0x11000);
    CHECK(leaves_of(dump) == RangeList{{0x200000, 0x1000}, {0x201000, 0x1000}, {0x202000, 0x1000},
                                       {kDma64, k64K}, {kDma64 + k64K, k64K}, {kDma64 + 4 * k64K, k64K}});
}

TEST_CASE("TCE: DMA lands in the client's memory through each window", "[ppc_tce]")
{
    TceFixture f;
    Client& c = f.client;
    const std::uint32_t p0 = bind_ok(c, "p0");
    const std::uint32_t p1 = bind_ok(c, "p1");
    fill(c, kBufferAddr, 4 * k64K, 1);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 2 * k64K, 0x10000) == 0);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr + 2 * k64K, 2 * k64K, kDma64 + 8 * k64K) == 0);
    attach_ok(c, p0, f.ioas);
    attach_ok(c, p1, f.ioas); // the same automatic domain

    // Reads across page boundaries in either window.
    CHECK(dma_read_ok(c, p0, 0x10000 + 4000, 9000) == bytes_at(c, kBufferAddr + 4000, 9000));
    CHECK(dma_read_ok(c, p1, kDma64 + 8 * k64K + k64K - 100, 300) ==
          bytes_at(c, kBufferAddr + 3 * k64K - 100, 300));

    // A write through the 64-bit window changes exactly those bytes.
    const auto before = bytes_at(c, kBufferAddr, 4 * k64K);
    fill(c, kDmaBufAddr, 70000, 2);
    Dma d = dma(c, p0, kDma64 + 8 * k64K + 1000, 70000, true);
    REQUIRE(d.rc == 0);
    CHECK(d.out.out_done == 70000);
    auto expect = before;
    const auto written = pattern(70000, 2);
    std::copy(written.begin(), written.end(), expect.begin() + 2 * k64K + 1000);
    CHECK(bytes_at(c, kBufferAddr, 4 * k64K) == expect);

    // Faults: between the windows no TVE matches; an empty TCE is invalid.
    d = dma(c, p0, 2 * k1G, 8, false);
    CHECK(d.rc == -EIO);
    CHECK(d.out.out_fault_reason == IOASID_EMU_FAULT_NOT_PRESENT);
    CHECK(d.out.out_fault_code == static_cast<std::uint32_t>(FaultCode::tve_invalid));
    d = dma(c, p0, 0x10000 + 2 * k64K - 8, 16, false);
    CHECK(d.rc == -EIO);
    CHECK(d.out.out_done == 8);
    CHECK(d.out.out_fault_iova == 0x30000);
    CHECK(d.out.out_fault_code == static_cast<std::uint32_t>(FaultCode::tce_invalid));
    d = dma(c, p0, kDma64Last + 1, 8, true);
    CHECK(d.out.out_fault_reason == IOASID_EMU_FAULT_ADDRESS_SIZE);
    CHECK(d.out.out_fault_code == static_cast<std::uint32_t>(FaultCode::tve_invalid));

    // After IOAS_UNMAP the TCEs are gone.
    REQUIRE(c.unmap(f.ioas, kDma64 + 8 * k64K, 2 * k64K) == 0);
    d = dma(c, p1, kDma64 + 8 * k64K, 8, false);
    CHECK(d.out.out_fault_reason == IOASID_EMU_FAULT_NOT_PRESENT);
    CHECK(d.out.out_fault_code == static_cast<std::uint32_t>(FaultCode::tce_invalid));
}
