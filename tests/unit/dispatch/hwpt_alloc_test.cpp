// IOMMU_HWPT_ALLOC and IOMMU_GET_HW_INFO through the dispatcher, against
// the kernel (6.12): drivers/iommu/iommufd/hw_pagetable.c
// iommufd_hwpt_alloc(), iommufd_hwpt_paging_alloc(),
// iommufd_hwpt_nested_alloc(); io_pagetable.c iopt_table_add_domain()
// (aperture, alignment, filling and pinning); device.c
// iommufd_get_hw_info(); selftest.c mock_domain_alloc_user(); intel
// iommu.c intel_iommu_domain_alloc_user() and intel_iommu_hw_info().
#include <catch2/catch.hpp>

#include <ioasid/emu.h>
#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "hardware_fixture.h"

using namespace ioasid;
using namespace ioasid::test;

namespace {

constexpr std::uint32_t kBadId = 9999;
constexpr std::uint32_t kSelftestData = 0xdead; // IOMMU_HWPT_DATA_SELFTEST
constexpr std::uint32_t kDirty = IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
constexpr std::uint32_t kParent = IOMMU_HWPT_ALLOC_NEST_PARENT;
constexpr std::uint32_t kFaultId = IOMMU_HWPT_FAULT_ID_VALID;

// The id the next object of the client will get.
std::uint32_t next_id(Client& c)
{
    const std::uint32_t id = alloc_ok(c);
    REQUIRE(c.destroy(id) == 0);
    return id;
}

int alloc_with_data(Client& c, std::uint32_t dev, std::uint32_t pt, std::uint32_t flags, std::uint32_t type,
                    std::uint32_t len, std::uint32_t* out = nullptr)
{
    iommu_hwpt_alloc cmd = hwpt_alloc_cmd(dev, pt, flags);
    cmd.data_type = type;
    cmd.data_len = len;
    cmd.data_uptr = kArrayAddr;
    int rc = c.ioctl(IOMMU_HWPT_ALLOC, cmd);
    if (out)
        *out = cmd.out_hwpt_id;
    return rc;
}

std::uint64_t pinned_bytes(Client& c)
{
    return status_json(c)["contexts"][0]["pinned_bytes"].get<std::uint64_t>();
}

} // namespace

TEST_CASE("HWPT_ALLOC: the common checks in iommufd_hwpt_alloc() order", "[hwpt_alloc]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t dev = bind_ok(c, "m0");
    const std::uint32_t first_free = next_id(c);

    SECTION("__reserved before everything -> EOPNOTSUPP")
    {
        iommu_hwpt_alloc cmd = hwpt_alloc_cmd(kBadId, kBadId, 0xffff);
        cmd.__reserved = 1;
        cmd.data_len = 4;
        CHECK(c.ioctl(IOMMU_HWPT_ALLOC, cmd) == -EOPNOTSUPP);
    }
    SECTION("data_type and data_len disagree -> EINVAL, before the device lookup")
    {
        CHECK(alloc_with_data(c, kBadId, kBadId, 0, IOMMU_HWPT_DATA_NONE, 4) == -EINVAL);
        CHECK(alloc_with_data(c, kBadId, kBadId, 0, kSelftestData, 0) == -EINVAL);
        CHECK(alloc_with_data(c, dev, f.ioas, 0, IOMMU_HWPT_DATA_VTD_S1, 0) == -EINVAL);
    }
    SECTION("a bad dev_id -> ENOENT, before pt_id")
    {
        std::uint32_t out = 0;
        CHECK(hwpt_alloc(c, kBadId, f.ioas, 0, &out) == -ENOENT);
        CHECK(hwpt_alloc(c, kBadId, kBadId, 0xffff, &out) == -ENOENT);
        CHECK(hwpt_alloc(c, 0, f.ioas, 0, &out) == -ENOENT);
        // An id of another type is no device either.
        CHECK(hwpt_alloc(c, f.ioas, f.ioas, 0, &out) == -ENOENT);
    }
    SECTION("pt_id missing or of a type that takes no HWPT -> EINVAL, not ENOENT")
    {
        std::uint32_t out = 0;
        CHECK(hwpt_alloc(c, dev, kBadId, 0, &out) == -EINVAL);
        CHECK(hwpt_alloc(c, dev, 0, 0, &out) == -EINVAL);
        CHECK(hwpt_alloc(c, dev, dev, 0, &out) == -EINVAL);
        // Unknown flags are a question for the paging or nested path only.
        CHECK(hwpt_alloc(c, dev, kBadId, 0xffff, &out) == -EINVAL);
    }
    // No failure above consumed an id.
    CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 0);
    CHECK(next_id(c) == first_free);
}

TEST_CASE("HWPT_ALLOC on an IOAS: iommufd_hwpt_paging_alloc() and the drivers' flag rules", "[hwpt_alloc]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint32_t v0 = bind_ok(c, "v0");
    std::uint32_t out = 0;

    SECTION("unknown flags -> EOPNOTSUPP")
    {
        for (std::uint32_t flags : {1u << 4, 1u << 31, 0xffffffffu}) {
            CAPTURE(flags);
            CHECK(hwpt_alloc(c, m0, f.ioas, flags, &out) == -EOPNOTSUPP);
            CHECK(hwpt_alloc(c, v0, f.ioas, flags, &out) == -EOPNOTSUPP);
        }
    }
    SECTION("FAULT_ID_VALID on a paging HWPT -> EOPNOTSUPP (6.12: not a paging flag)")
    {
        CHECK(hwpt_alloc(c, m0, f.ioas, kFaultId, &out) == -EOPNOTSUPP);
        CHECK(hwpt_alloc(c, m0, f.ioas, kFaultId | kParent, &out) == -EOPNOTSUPP);
        CHECK(hwpt_alloc(c, v0, f.ioas, kFaultId, &out) == -EOPNOTSUPP);
    }
    SECTION("DIRTY_TRACKING where the device or unit cannot -> EOPNOTSUPP")
    {
        const std::uint32_t mnd = bind_ok(c, "mnd");
        const std::uint32_t n0 = bind_ok(c, "n0");
        const std::uint32_t w0 = bind_ok(c, "w0");
        CHECK(hwpt_alloc(c, mnd, f.ioas, kDirty, &out) == -EOPNOTSUPP);
        CHECK(hwpt_alloc(c, n0, f.ioas, kDirty, &out) == -EOPNOTSUPP);
        CHECK(hwpt_alloc(c, w0, f.ioas, kDirty, &out) == -EOPNOTSUPP);
        // Without the flag the same devices get a domain.
        CHECK(hwpt_alloc(c, mnd, f.ioas, 0, &out) == 0);
        CHECK(hwpt_alloc(c, n0, f.ioas, 0, &out) == 0);
        CHECK(hwpt_alloc(c, w0, f.ioas, 0, &out) == 0);
    }
    SECTION("DIRTY_TRACKING where the device can")
    {
        const std::uint32_t hm = hwpt_alloc_ok(c, m0, f.ioas, kDirty);
        const std::uint32_t hv = hwpt_alloc_ok(c, v0, f.ioas, kDirty);
        // Tracking is off until SET_DIRTY_TRACKING.
        for (std::uint32_t id : {hm, hv}) {
            CHECK(object_status(c, id)["type"] == "hwpt_paging");
            CHECK(object_status(c, id)["dirty_tracking"] == false);
        }
    }
    SECTION("NEST_PARENT where the unit nests, EOPNOTSUPP where it does not")
    {
        const std::uint32_t hm = hwpt_alloc_ok(c, m0, f.ioas, kParent);
        const std::uint32_t hv = hwpt_alloc_ok(c, v0, f.ioas, kParent | kDirty);
        const std::uint32_t w0 = bind_ok(c, "w0");
        CHECK(hwpt_alloc(c, w0, f.ioas, kParent, &out) == -EOPNOTSUPP);
        for (std::uint32_t id : {hm, hv}) {
            CHECK(object_status(c, id)["nest_parent"] == true);
            CHECK(object_status(c, id)["auto"] == false);
        }
    }
    SECTION("driver data for a paging domain -> EOPNOTSUPP")
    {
        CHECK(alloc_with_data(c, m0, f.ioas, 0, kSelftestData, 4) == -EOPNOTSUPP);
        CHECK(alloc_with_data(c, v0, f.ioas, 0, IOMMU_HWPT_DATA_VTD_S1, 4) == -EOPNOTSUPP);
        // Flags are looked at first.
        CHECK(alloc_with_data(c, m0, f.ioas, 1u << 5, kSelftestData, 4) == -EOPNOTSUPP);
    }
    SECTION("ALLOC_PASID: the 6.15 flag, refused by a unit without PASIDs")
    {
        CHECK(hwpt_alloc(c, m0, f.ioas, IOMMU_HWPT_ALLOC_PASID, &out) == 0);
        CHECK(hwpt_alloc(c, v0, f.ioas, IOMMU_HWPT_ALLOC_PASID, &out) == 0);
        const std::uint32_t w0 = bind_ok(c, "w0");
        CHECK(hwpt_alloc(c, w0, f.ioas, IOMMU_HWPT_ALLOC_PASID, &out) == -EOPNOTSUPP);
    }
    SECTION("the new HWPT is manual and attached to nothing")
    {
        const std::uint64_t iova = kMockFirst;
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 4 * kPage4K, iova) == 0);
        const std::uint32_t hwpt = hwpt_alloc_ok(c, m0, f.ioas);
        Dma d = dma(c, m0, iova, 16, false);
        CHECK(d.rc == -EIO);
        CHECK(d.out.out_fault_reason == IOASID_EMU_FAULT_BLOCKED);
        const auto o = object_status(c, hwpt);
        CHECK(o["auto"] == false);
        CHECK(o["ioas"] == f.ioas);
        CHECK(o["unit"] == "mock0");
        CHECK(o["nest_parent"] == false);
        // It holds the IOAS, and destroying it lets the IOAS go.
        CHECK(c.destroy(f.ioas) == -EBUSY);
        CHECK(c.destroy(hwpt) == 0);
        CHECK(c.destroy(f.ioas) == 0);
    }
}

TEST_CASE("HWPT_ALLOC on a paging HWPT: iommufd_hwpt_nested_alloc() order", "[hwpt_alloc]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint32_t plain = hwpt_alloc_ok(c, m0, f.ioas);
    const std::uint32_t parent = hwpt_alloc_ok(c, m0, f.ioas, kParent);

    SECTION("flags other than FAULT_ID_VALID -> EOPNOTSUPP, before the parent is judged")
    {
        CHECK(alloc_with_data(c, m0, plain, kParent, kSelftestData, 4) == -EOPNOTSUPP);
        CHECK(alloc_with_data(c, m0, plain, kDirty, kSelftestData, 4) == -EOPNOTSUPP);
        CHECK(alloc_with_data(c, m0, parent, kDirty, kSelftestData, 4) == -EOPNOTSUPP);
    }
    SECTION("no data -> EOPNOTSUPP, before the parent is judged")
    {
        std::uint32_t out = 0;
        CHECK(hwpt_alloc(c, m0, plain, 0, &out) == -EOPNOTSUPP);
        CHECK(hwpt_alloc(c, m0, parent, 0, &out) == -EOPNOTSUPP);
        CHECK(hwpt_alloc(c, m0, parent, kFaultId, &out) == -EOPNOTSUPP);
    }
    SECTION("a parent without NEST_PARENT, or an automatic one -> EINVAL")
    {
        CHECK(alloc_with_data(c, m0, plain, 0, kSelftestData, 4) == -EINVAL);
        CHECK(alloc_with_data(c, m0, plain, kFaultId, kSelftestData, 4) == -EINVAL);
        const std::uint32_t m1 = bind_ok(c, "m1");
        const std::uint32_t auto_hwpt = attach_ok(c, m1, f.ioas);
        CHECK(alloc_with_data(c, m0, auto_hwpt, 0, kSelftestData, 4) == -EINVAL);
    }
    SECTION("a parent of another driver -> EINVAL")
    {
        const std::uint32_t v0 = bind_ok(c, "v0");
        const std::uint32_t vtd_parent = hwpt_alloc_ok(c, v0, f.ioas, kParent);
        CHECK(alloc_with_data(c, m0, vtd_parent, 0, kSelftestData, 4) == -EINVAL);
        CHECK(alloc_with_data(c, v0, parent, 0, IOMMU_HWPT_DATA_VTD_S1, 4) == -EINVAL);
    }
    SECTION("a proper parent: only the mock builds nested domains (hwpt_nested_test has the rest)")
    {
        std::uint32_t nested = 0;
        CHECK(alloc_with_data(c, m0, parent, 0, kSelftestData, 4, &nested) == 0);
        CHECK(c.destroy(nested) == 0);
        const std::uint32_t v0 = bind_ok(c, "v0");
        const std::uint32_t vtd_parent = hwpt_alloc_ok(c, v0, f.ioas, kParent);
        CHECK(alloc_with_data(c, v0, vtd_parent, 0, IOMMU_HWPT_DATA_VTD_S1, 4) == -EOPNOTSUPP);
    }
    // A failed nested allocation takes no reference on its parent.
    CHECK(c.destroy(parent) == 0);
    CHECK(c.destroy(plain) == 0);
}

TEST_CASE("HWPT_ALLOC fills the new domain with every area of the IOAS", "[hwpt_alloc]")
{
    HardwareFixture f;
    Client& c = f.client;

    SECTION("mock: 2 KiB pages")
    {
        const std::uint32_t dev = bind_ok(c, "m0");
        fill(c, kBufferAddr, 256 * 1024, 1);
        const std::uint64_t a = kMockFirst;
        const std::uint64_t b = kMockFirst + (1 << 20);
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 64 * 1024, a) == 0);
        // Starts half way into a 4 KiB page: fine for a 2 KiB domain.
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr + 128 * 1024 + 2048, 8 * 1024, b + 2048) == 0);
        const std::uint32_t hwpt = hwpt_alloc_ok(c, dev, f.ioas);

        auto leaves = leaves_of(pt_dump(c, hwpt));
        std::uint64_t mapped = 0;
        for (auto [iova, size] : leaves) {
            CHECK(size == kMockPage);
            CHECK(((iova >= a && iova < a + 64 * 1024) || (iova >= b + 2048 && iova < b + 2048 + 8 * 1024)));
            mapped += size;
        }
        CHECK(mapped == 72 * 1024);

        REQUIRE(attach_ok(c, dev, hwpt) == hwpt);
        CHECK(dma_read_ok(c, dev, a, 64 * 1024) == bytes_at(c, kBufferAddr, 64 * 1024));
        CHECK(dma_read_ok(c, dev, b + 2048, 8 * 1024) == bytes_at(c, kBufferAddr + 128 * 1024 + 2048, 8 * 1024));
        // Areas mapped later go into the domain before MAP returns.
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr + 192 * 1024, 4096, kMockFirst + (2 << 20)) == 0);
        CHECK(dma_read_ok(c, dev, kMockFirst + (2 << 20), 4096) == bytes_at(c, kBufferAddr + 192 * 1024, 4096));
        // And leave it with UNMAP.
        REQUIRE(c.unmap(f.ioas, a, 64 * 1024) == 0);
        Dma d = dma(c, dev, a, 16, false);
        CHECK(d.rc == -EIO);
        CHECK(d.out.out_fault_reason == IOASID_EMU_FAULT_NOT_PRESENT);
    }
    SECTION("VT-d: 4 KiB pages, low IOVAs included")
    {
        const std::uint32_t dev = bind_ok(c, "v0");
        fill(c, kBufferAddr, 64 * 1024, 2);
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 16 * 1024, 0x1000) == 0);
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr + 32 * 1024, 8 * 1024, 0x7fff0000) == 0);
        const std::uint32_t hwpt = hwpt_alloc_ok(c, dev, f.ioas);
        std::uint64_t mapped = 0;
        for (auto [iova, size] : leaves_of(pt_dump(c, hwpt))) {
            CHECK(size == kPage4K);
            mapped += size;
        }
        CHECK(mapped == 24 * 1024);
        attach_ok(c, dev, hwpt);
        CHECK(dma_read_ok(c, dev, 0x1000, 16 * 1024) == bytes_at(c, kBufferAddr, 16 * 1024));
        CHECK(dma_read_ok(c, dev, 0x7fff0000, 8 * 1024) == bytes_at(c, kBufferAddr + 32 * 1024, 8 * 1024));
    }
    SECTION("a second domain on the same IOAS gets the same areas")
    {
        const std::uint32_t m0 = bind_ok(c, "m0");
        const std::uint32_t x0 = bind_ok(c, "x0");
        fill(c, kBufferAddr, 16 * 1024, 3);
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 16 * 1024, kMockFirst) == 0);
        const std::uint32_t h0 = hwpt_alloc_ok(c, m0, f.ioas);
        const std::uint32_t h1 = hwpt_alloc_ok(c, x0, f.ioas);
        attach_ok(c, m0, h0);
        attach_ok(c, x0, h1);
        CHECK(dma_read_ok(c, m0, kMockFirst, 16 * 1024) == bytes_at(c, kBufferAddr, 16 * 1024));
        CHECK(dma_read_ok(c, x0, kMockFirst, 16 * 1024) == bytes_at(c, kBufferAddr, 16 * 1024));
        // The pages are pinned once for both.
        CHECK(pinned_bytes(c) == 16 * 1024);
    }
}

TEST_CASE("HWPT_ALLOC: areas and allowed ranges outside the aperture -> EADDRINUSE", "[hwpt_alloc]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint32_t first_free = next_id(c);
    std::uint32_t out = 0;

    SECTION("below the aperture")
    {
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, kPage4K, kMockFirst - kPage4K) == 0);
    }
    SECTION("above it")
    {
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, kPage4K, kMockLast + 1) == 0);
    }
    SECTION("across its end")
    {
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 2 * kPage4K, kMockLast + 1 - kPage4K) == 0);
    }
    SECTION("an allowed range outside it")
    {
        iommu_iova_range r{.start = 0x100000, .last = 0x1fffff};
        c.write(kArrayAddr, std::as_bytes(std::span(&r, 1)));
        iommu_ioas_allow_iovas cmd{.size = sizeof(cmd), .ioas_id = f.ioas, .num_iovas = 1, .__reserved = 0,
                                   .allowed_iovas = kArrayAddr};
        REQUIRE(c.ioctl(IOMMU_IOAS_ALLOW_IOVAS, cmd) == 0);
    }
    const RangeList before = ranges_of(c, f.ioas);
    CHECK(hwpt_alloc(c, m0, f.ioas, 0, &out) == -EADDRINUSE);
    // Nothing stays behind: no object, no id, no reserved range, no pin.
    CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 0);
    CHECK(next_id(c) == first_free);
    CHECK(ranges_of(c, f.ioas) == before);
    CHECK(pinned_bytes(c) == 0);
    // VT-d's aperture is the unit's 48 bits.
    const std::uint32_t v0 = bind_ok(c, "v0");
    CHECK(hwpt_alloc(c, v0, f.ioas, 0, &out) == 0);
}

TEST_CASE("HWPT_ALLOC: the domain narrows the IOAS to its aperture and page size", "[hwpt_alloc]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    std::uint64_t alignment = 0;
    std::vector<iommu_iova_range> raw;
    REQUIRE(iova_ranges(c, f.ioas, &raw, &alignment) == 0);
    CHECK(alignment == 1);

    const std::uint32_t hwpt = hwpt_alloc_ok(c, m0, f.ioas);
    REQUIRE(iova_ranges(c, f.ioas, &raw, &alignment) == 0);
    CHECK(alignment == kMockPage);
    CHECK(ranges_of(c, f.ioas) == RangeList{{kMockFirst, kMockLast}});
    // iopt_check_iova(): reserved -> EINVAL, misaligned -> EINVAL.
    CHECK(c.map_fixed(f.ioas, kBufferAddr, kPage4K, kMockFirst - kPage4K) == -EINVAL);
    CHECK(c.map_fixed(f.ioas, kBufferAddr, kPage4K, kMockFirst + 1024) == -EINVAL);
    CHECK(c.map_fixed(f.ioas, kBufferAddr, kPage4K, kMockFirst + 2048) == 0);

    SECTION("a second domain with larger pages over a 2 KiB-aligned area -> EADDRINUSE")
    {
        const std::uint32_t v0 = bind_ok(c, "v0");
        std::uint32_t out = 0;
        CHECK(hwpt_alloc(c, v0, f.ioas, 0, &out) == -EADDRINUSE);
        REQUIRE(iova_ranges(c, f.ioas, &raw, &alignment) == 0);
        CHECK(alignment == kMockPage);
    }
    SECTION("destroying the domain gives the space back")
    {
        REQUIRE(c.destroy(hwpt) == 0);
        REQUIRE(iova_ranges(c, f.ioas, &raw, &alignment) == 0);
        CHECK(alignment == 1);
        CHECK(ranges_of(c, f.ioas) == RangeList{{0, UINT64_MAX}});
    }
}

TEST_CASE("HWPT_ALLOC: existing areas misaligned for the domain's page -> EADDRINUSE", "[hwpt_alloc]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint32_t v0 = bind_ok(c, "v0");
    std::uint32_t out = 0;
    // Without a domain the IOAS takes any alignment (iova_alignment 1).
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr + 1024, 4096, kMockFirst + 1024) == 0);
    CHECK(hwpt_alloc(c, m0, f.ioas, 0, &out) == -EADDRINUSE);
    CHECK(hwpt_alloc(c, v0, f.ioas, 0, &out) == -EADDRINUSE);
    REQUIRE(c.unmap(f.ioas, kMockFirst + 1024, 4096) == 0);
    // 2 KiB aligned: the mock takes it, VT-d (4 KiB) does not.
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr + 2048, 4096, kMockFirst + 2048) == 0);
    CHECK(hwpt_alloc(c, v0, f.ioas, 0, &out) == -EADDRINUSE);
    CHECK(hwpt_alloc(c, m0, f.ioas, 0, &out) == 0);
    // The same bytes through the domain.
    fill(c, kBufferAddr, 16 * 1024, 9);
    attach_ok(c, m0, out);
    CHECK(dma_read_ok(c, m0, kMockFirst + 2048, 4096) == bytes_at(c, kBufferAddr + 2048, 4096));
}

TEST_CASE("HWPT_ALLOC: pages are pinned when the first domain comes", "[hwpt_alloc]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint32_t first_free = next_id(c);
    std::uint32_t out = 0;

    SECTION("memory the process does not have -> EFAULT")
    {
        // Without a domain nothing is pinned, so the map succeeds.
        REQUIRE(c.map_fixed(f.ioas, kUnmappedVa, 16 * 1024, kMockFirst) == 0);
        CHECK(pinned_bytes(c) == 0);
        CHECK(hwpt_alloc(c, m0, f.ioas, 0, &out) == -EFAULT);
    }
    SECTION("memory that is good but for the last page -> EFAULT, the good part unpinned")
    {
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 8 * kPage4K, kMockFirst) == 0);
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr + kBufferSize - kPage4K, 2 * kPage4K, kMockFirst + (1 << 20)) == 0);
        CHECK(hwpt_alloc(c, m0, f.ioas, 0, &out) == -EFAULT);
    }
    SECTION("read-only memory mapped WRITEABLE -> EFAULT")
    {
        REQUIRE(c.map_fixed(f.ioas, kReadOnlyAddr, 16 * 1024, kMockFirst) == 0);
        CHECK(hwpt_alloc(c, m0, f.ioas, 0, &out) == -EFAULT);
    }
    SECTION("more than RLIMIT_MEMLOCK -> ENOMEM")
    {
        c.buffer().set_memlock_limit(32 * 1024);
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 16 * 1024, kMockFirst) == 0);
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr + 65536, 32 * 1024, kMockFirst + 65536) == 0);
        CHECK(hwpt_alloc(c, m0, f.ioas, 0, &out) == -ENOMEM);
        CHECK(f.services.accounting.user_pages(c.caller()->uid()) == 0);
        // With a domain, the map itself is charged and refused.
        REQUIRE(c.unmap(f.ioas, kMockFirst + 65536, 32 * 1024) == 0);
        const std::uint32_t hwpt = hwpt_alloc_ok(c, m0, f.ioas);
        CHECK(f.services.accounting.user_pages(c.caller()->uid()) == 4);
        CHECK(c.map_fixed(f.ioas, kBufferAddr + 65536, 32 * 1024, kMockFirst + 65536) == -ENOMEM);
        CHECK(f.services.accounting.user_pages(c.caller()->uid()) == 4);
        REQUIRE(c.destroy(hwpt) == 0);
        c.buffer().set_memlock_limit(UINT64_MAX);
    }
    CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 0);
    CHECK(next_id(c) == first_free);
    CHECK(pinned_bytes(c) == 0);
    // Once the bad area is gone the domain comes, and maps are pinned at once.
    std::uint64_t unmapped = 0;
    REQUIRE(c.unmap(f.ioas, 0, UINT64_MAX, &unmapped) == 0);
    const std::uint32_t hwpt = hwpt_alloc_ok(c, m0, f.ioas);
    CHECK(hwpt == first_free);
    CHECK(c.map_fixed(f.ioas, kUnmappedVa, 16 * 1024, kMockFirst) == -EFAULT);
    CHECK(c.map_fixed(f.ioas, kReadOnlyAddr, 16 * 1024, kMockFirst) == -EFAULT);
    CHECK(f.obj(f.ioas).iopt().area_count() == 0);
    // A read-only mapping of read-only memory is fine.
    CHECK(c.map(f.ioas, kReadOnlyAddr, 16 * 1024, &unmapped, IOMMU_IOAS_MAP_READABLE) == 0);
    CHECK(pinned_bytes(c) == 16 * 1024);
    REQUIRE(c.destroy(hwpt) == 0);
    CHECK(pinned_bytes(c) == 0);
}

TEST_CASE("HWPT_ALLOC: size below, at and above what we know", "[hwpt_alloc]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    constexpr std::size_t kMin = offsetof(iommu_hwpt_alloc, __reserved) + 4; // 24
    static_assert(kMin == 24);

    std::vector<std::byte> raw(sizeof(iommu_hwpt_alloc) + 16, std::byte{0});
    iommu_hwpt_alloc cmd = hwpt_alloc_cmd(m0, f.ioas);

    SECTION("size < 24 -> EINVAL")
    {
        cmd.size = kMin - 1;
        std::memcpy(raw.data(), &cmd, sizeof(cmd));
        CHECK(c.ioctl_bytes(IOMMU_HWPT_ALLOC, raw) == -EINVAL);
        CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 0);
    }
    SECTION("size 24: the data fields read as zero, out_hwpt_id written, nothing past 24")
    {
        cmd.size = kMin;
        cmd.data_type = kSelftestData; // past size: never read
        cmd.data_len = 77;
        std::memcpy(raw.data(), &cmd, sizeof(cmd));
        CHECK(c.ioctl_bytes(IOMMU_HWPT_ALLOC, raw) == 0);
        iommu_hwpt_alloc back{};
        std::memcpy(&back, raw.data(), sizeof(back));
        CHECK(back.out_hwpt_id != 0);
        CHECK(back.data_type == kSelftestData);
        CHECK(back.data_len == 77);
        CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 1);
    }
    SECTION("a larger struct with a zero tail is accepted")
    {
        cmd.size = raw.size();
        std::memcpy(raw.data(), &cmd, sizeof(cmd));
        CHECK(c.ioctl_bytes(IOMMU_HWPT_ALLOC, raw) == 0);
        CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 1);
    }
    SECTION("a larger struct with a non-zero tail -> E2BIG")
    {
        cmd.size = raw.size();
        std::memcpy(raw.data(), &cmd, sizeof(cmd));
        raw.back() = std::byte{1};
        CHECK(c.ioctl_bytes(IOMMU_HWPT_ALLOC, raw) == -E2BIG);
        CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 0);
    }
    SECTION("fault_id and __reserved2 are not looked at without FAULT_ID_VALID")
    {
        cmd.fault_id = kBadId;
        cmd.__reserved2 = 0x1234;
        CHECK(c.ioctl(IOMMU_HWPT_ALLOC, cmd) == 0);
    }
}

TEST_CASE("HWPT_ALLOC whose id cannot be written back leaves no HWPT", "[hwpt_alloc]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 16 * 1024, kMockFirst) == 0);
    const std::uint32_t first_free = next_id(c);

    // Everything from data_type on (all zero) lies in the read-only page.
    const std::uint64_t at = kReadOnlyPage - offsetof(iommu_hwpt_alloc, data_type);
    iommu_hwpt_alloc cmd = hwpt_alloc_cmd(m0, f.ioas);
    c.write(at, std::as_bytes(std::span(&cmd, 1)).first(offsetof(iommu_hwpt_alloc, data_type)));
    CHECK(c.ioctl_at(IOMMU_HWPT_ALLOC, at) == -EFAULT);
    CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 0);
    CHECK(next_id(c) == first_free);
    CHECK(ranges_of(c, f.ioas) == RangeList{{0, UINT64_MAX}});
    CHECK(pinned_bytes(c) == 0);
    // The IOAS is free of it.
    CHECK(c.destroy(f.ioas) == 0);
}

TEST_CASE("DESTROY while a HWPT uses the IOAS or a device uses the HWPT -> EBUSY", "[hwpt_alloc]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint32_t hwpt = hwpt_alloc_ok(c, m0, f.ioas);
    CHECK(c.destroy(f.ioas) == -EBUSY);
    attach_ok(c, m0, hwpt);
    CHECK(c.destroy(hwpt) == -EBUSY);
    CHECK(c.destroy(f.ioas) == -EBUSY);
    REQUIRE(detach(c, m0) == 0);
    CHECK(c.destroy(f.ioas) == -EBUSY);
    CHECK(c.destroy(hwpt) == 0);
    CHECK(c.destroy(hwpt) == -ENOENT);
    CHECK(c.destroy(f.ioas) == 0);
}

// --- IOMMU_GET_HW_INFO ---

namespace {

std::vector<std::byte> as_bytes_of(const void* p, std::size_t n)
{
    std::vector<std::byte> out(n);
    std::memcpy(out.data(), p, n);
    return out;
}

} // namespace

TEST_CASE("GET_HW_INFO: the mock's and VT-d's data and capabilities", "[hw_info]")
{
    HardwareFixture f;
    Client& c = f.client;

    SECTION("mock: type 0xfeedbeef, {flags 0, test_reg 0xdeadbeef}")
    {
        const std::uint32_t m0 = bind_ok(c, "m0");
        HwInfoAnswer r = get_hw_info(c, m0, 8);
        REQUIRE(r.rc == 0);
        CHECK(r.out.out_data_type == 0xfeedbeef);
        CHECK(r.out.data_len == 8);
        const std::uint32_t words[2] = {0, 0xdeadbeef};
        CHECK(std::vector(r.data.begin(), r.data.begin() + 8) == as_bytes_of(words, 8));
        CHECK(r.data[8] == kHwInfoFill);
        CHECK(r.out.out_capabilities == IOMMU_HW_CAP_DIRTY_TRACKING);
        CHECK(r.out.out_max_pasid_log2 == 20);
        CHECK(r.out.flags == 0);
    }
    SECTION("mock devices without dirty tracking or PASIDs")
    {
        HwInfoAnswer r = get_hw_info(c, bind_ok(c, "mnd"), 8);
        CHECK(r.out.out_capabilities == 0);
        CHECK(r.out.out_max_pasid_log2 == 20);
        r = get_hw_info(c, bind_ok(c, "mnp"), 8);
        CHECK(r.out.out_capabilities == IOMMU_HW_CAP_DIRTY_TRACKING);
        CHECK(r.out.out_max_pasid_log2 == 0);
        r = get_hw_info(c, bind_ok(c, "n0"), 8);
        CHECK(r.out.out_capabilities == 0);
    }
    SECTION("VT-d: iommu_hw_info_vtd with the unit's registers")
    {
        const std::uint32_t v0 = bind_ok(c, "v0");
        HwInfoAnswer r = get_hw_info(c, v0, sizeof(iommu_hw_info_vtd));
        REQUIRE(r.rc == 0);
        CHECK(r.out.out_data_type == IOMMU_HW_INFO_TYPE_INTEL_VTD);
        CHECK(r.out.data_len == sizeof(iommu_hw_info_vtd));
        const auto& regs = static_cast<hw::vtd::VtdUnit&>(f.unit("vtd0")).registers();
        iommu_hw_info_vtd vtd{};
        std::memcpy(&vtd, r.data.data(), sizeof(vtd));
        CHECK(vtd.flags == IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17);
        CHECK(vtd.__reserved == 0);
        CHECK(vtd.cap_reg == regs.cap);
        CHECK(vtd.ecap_reg == regs.ecap);
        CHECK(r.out.out_capabilities == IOMMU_HW_CAP_DIRTY_TRACKING);
        CHECK(r.out.out_max_pasid_log2 == 20);

        r = get_hw_info(c, bind_ok(c, "w0"), sizeof(iommu_hw_info_vtd));
        CHECK(r.out.out_capabilities == 0);
        CHECK(r.out.out_max_pasid_log2 == 0);
    }
}

TEST_CASE("GET_HW_INFO: data_len shorter, longer, zero", "[hw_info]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint32_t words[2] = {0, 0xdeadbeef};
    const auto full = as_bytes_of(words, 8);

    SECTION("shorter: that much is copied, data_len says the full length")
    {
        HwInfoAnswer r = get_hw_info(c, m0, 5);
        REQUIRE(r.rc == 0);
        CHECK(r.out.data_len == 8);
        CHECK(std::vector(r.data.begin(), r.data.begin() + 5) == std::vector(full.begin(), full.begin() + 5));
        CHECK(r.data[5] == kHwInfoFill);
    }
    SECTION("longer: the rest up to data_len is zeroed, nothing past it")
    {
        HwInfoAnswer r = get_hw_info(c, m0, 64);
        REQUIRE(r.rc == 0);
        CHECK(r.out.data_len == 8);
        CHECK(std::vector(r.data.begin(), r.data.begin() + 8) == full);
        for (std::size_t i = 8; i < 64; ++i)
            CHECK(r.data[i] == std::byte{0});
        CHECK(r.data[64] == kHwInfoFill);
    }
    SECTION("zero: nothing touched, not even a bad pointer")
    {
        HwInfoAnswer r = get_hw_info(c, m0, 0, 0, 0, kUnmappedVa);
        REQUIRE(r.rc == 0);
        CHECK(r.out.data_len == 8);
        CHECK(r.data[0] == kHwInfoFill);
    }
    SECTION("a buffer the daemon cannot write -> EFAULT")
    {
        CHECK(get_hw_info(c, m0, 8, 0, 0, kUnmappedVa).rc == -EFAULT);
        CHECK(get_hw_info(c, m0, 8, 0, 0, kReadOnlyAddr).rc == -EFAULT);
        // The zero fill past the data faults the same way.
        CHECK(get_hw_info(c, m0, 16, 0, 0, kDmaBufAddr + kDmaBufSize - 12).rc == -EFAULT);
    }
}

TEST_CASE("GET_HW_INFO: flags, input type, __reserved, dev_id, size", "[hw_info]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint32_t v0 = bind_ok(c, "v0");

    SECTION("unknown flags -> EOPNOTSUPP, before the device lookup")
    {
        CHECK(get_hw_info(c, m0, 8, 2).rc == -EOPNOTSUPP);
        CHECK(get_hw_info(c, kBadId, 8, 0x80000000).rc == -EOPNOTSUPP);
    }
    SECTION("INPUT_TYPE (6.17): the unit's own type or DEFAULT, anything else -> EOPNOTSUPP")
    {
        CHECK(get_hw_info(c, m0, 8, IOMMU_HW_INFO_FLAG_INPUT_TYPE, 0xfeedbeef).rc == 0);
        CHECK(get_hw_info(c, m0, 8, IOMMU_HW_INFO_FLAG_INPUT_TYPE, IOMMU_HW_INFO_TYPE_DEFAULT).rc == 0);
        CHECK(get_hw_info(c, m0, 8, IOMMU_HW_INFO_FLAG_INPUT_TYPE, IOMMU_HW_INFO_TYPE_INTEL_VTD).rc == -EOPNOTSUPP);
        CHECK(get_hw_info(c, v0, 8, IOMMU_HW_INFO_FLAG_INPUT_TYPE, IOMMU_HW_INFO_TYPE_INTEL_VTD).rc == 0);
        CHECK(get_hw_info(c, v0, 8, IOMMU_HW_INFO_FLAG_INPUT_TYPE, 0xfeedbeef).rc == -EOPNOTSUPP);
        // Without the flag in_data_type is not looked at.
        CHECK(get_hw_info(c, m0, 8, 0, IOMMU_HW_INFO_TYPE_INTEL_VTD).rc == 0);
        // The device is looked up before the type is judged.
        CHECK(get_hw_info(c, kBadId, 8, IOMMU_HW_INFO_FLAG_INPUT_TYPE, 77).rc == -ENOENT);
    }
    SECTION("__reserved -> EOPNOTSUPP, before the device lookup")
    {
        for (int i = 0; i < 3; ++i) {
            iommu_hw_info cmd{};
            cmd.size = sizeof(cmd);
            cmd.dev_id = kBadId;
            cmd.__reserved[i] = 1;
            CHECK(c.ioctl(IOMMU_GET_HW_INFO, cmd) == -EOPNOTSUPP);
        }
    }
    SECTION("a bad dev_id -> ENOENT")
    {
        CHECK(get_hw_info(c, kBadId, 8).rc == -ENOENT);
        CHECK(get_hw_info(c, f.ioas, 8).rc == -ENOENT);
        CHECK(get_hw_info(c, 0, 8).rc == -ENOENT);
    }
    SECTION("size 32 (the 6.7 struct): out_capabilities is not written back")
    {
        std::vector<std::byte> raw(sizeof(iommu_hw_info), std::byte{0x5c});
        iommu_hw_info cmd{};
        cmd.size = 32;
        cmd.dev_id = m0;
        cmd.data_len = 8;
        cmd.data_uptr = kArrayAddr;
        std::memcpy(raw.data(), &cmd, 32);
        CHECK(c.ioctl_bytes(IOMMU_GET_HW_INFO, raw) == 0);
        std::memcpy(&cmd, raw.data(), sizeof(cmd));
        CHECK(cmd.out_data_type == 0xfeedbeef);
        CHECK(cmd.out_max_pasid_log2 == 20);
        for (std::size_t i = 32; i < raw.size(); ++i)
            CHECK(raw[i] == std::byte{0x5c});
        cmd.size = 31;
        std::memcpy(raw.data(), &cmd, 32);
        CHECK(c.ioctl_bytes(IOMMU_GET_HW_INFO, raw) == -EINVAL);
    }
}
