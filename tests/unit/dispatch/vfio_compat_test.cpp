// The VFIO type1 container ioctls on an iommufd (the kernel's
// vfio_compat.c), driven through the dispatcher: their own argsz rules, the
// compat IOAS they need, type1's partial unmaps, and GET_INFO's cap chain.
#include <catch2/catch.hpp>

#include <ioasid/iommufd.h>
#include <ioasid/vfio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "dispatch/dispatcher.h"
#include "hardware_fixture.h"

namespace {

using namespace ioasid;
using namespace ioasid::test;

constexpr std::uint64_t kMapLen = 16 * kPage4K;

// The layouts of include/uapi/linux/vfio.h (6.12).
static_assert(sizeof(vfio_info_cap_header) == 8 && offsetof(vfio_info_cap_header, next) == 4);
static_assert(sizeof(vfio_iommu_type1_info) == 24 && offsetof(vfio_iommu_type1_info, iova_pgsizes) == 8 &&
              offsetof(vfio_iommu_type1_info, cap_offset) == 16);
static_assert(sizeof(vfio_iommu_type1_info_cap_iova_range) == 16 &&
              offsetof(vfio_iommu_type1_info_cap_iova_range, nr_iovas) == 8);
static_assert(sizeof(vfio_iova_range) == 16);
static_assert(sizeof(vfio_iommu_type1_info_dma_avail) == 12 &&
              offsetof(vfio_iommu_type1_info_dma_avail, avail) == 8);
static_assert(sizeof(vfio_iommu_type1_dma_map) == 32 && offsetof(vfio_iommu_type1_dma_map, vaddr) == 8 &&
              offsetof(vfio_iommu_type1_dma_map, iova) == 16 && offsetof(vfio_iommu_type1_dma_map, size) == 24);
static_assert(sizeof(vfio_iommu_type1_dma_unmap) == 24 && offsetof(vfio_iommu_type1_dma_unmap, iova) == 8 &&
              offsetof(vfio_iommu_type1_dma_unmap, size) == 16);
static_assert(VFIO_GET_API_VERSION == 0x3b64 && VFIO_CHECK_EXTENSION == 0x3b65 && VFIO_SET_IOMMU == 0x3b66);
static_assert(VFIO_IOMMU_GET_INFO == 0x3b70 && VFIO_IOMMU_MAP_DMA == 0x3b71 &&
              VFIO_IOMMU_UNMAP_DMA == 0x3b72 && VFIO_IOMMU_DIRTY_PAGES == 0x3b75);

// An ioctl whose argument is an integer.
int scalar(Client& c, unsigned int cmd, std::uint64_t value)
{
    return dispatch::ioctl(c.ctx(), cmd, c.caller(), value);
}

int set_compat(Client& c, std::uint32_t ioas)
{
    return vfio_ioas(c, IOMMU_VFIO_IOAS_SET, &ioas);
}

vfio_iommu_type1_dma_map map_cmd(std::uint64_t vaddr, std::uint64_t iova, std::uint64_t size,
                                 std::uint32_t flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)
{
    return {.argsz = sizeof(vfio_iommu_type1_dma_map), .flags = flags, .vaddr = vaddr, .iova = iova, .size = size};
}

int map_dma(Client& c, std::uint64_t vaddr, std::uint64_t iova, std::uint64_t size)
{
    auto cmd = map_cmd(vaddr, iova, size);
    return c.ioctl(VFIO_IOMMU_MAP_DMA, cmd);
}

struct Unmapped {
    int rc;
    std::uint64_t size; // as the struct holds it afterwards
};

Unmapped unmap_dma(Client& c, std::uint64_t iova, std::uint64_t size, std::uint32_t flags = 0)
{
    vfio_iommu_type1_dma_unmap cmd{.argsz = sizeof(cmd), .flags = flags, .iova = iova, .size = size};
    int rc = c.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd);
    return {rc, cmd.size};
}

std::uint64_t huge_pages_option(Client& c, std::uint32_t ioas)
{
    iommu_option cmd{.size = sizeof(cmd), .option_id = IOMMU_OPTION_HUGE_PAGES, .op = IOMMU_OPTION_OP_GET,
                     .__reserved = 0, .object_id = ioas, .val64 = 7};
    REQUIRE(c.ioctl(IOMMU_OPTION, cmd) == 0);
    return cmd.val64;
}

std::vector<core::IovaRange> areas_of(HardwareFixture& f, std::uint32_t ioas)
{
    std::vector<core::IovaRange> out;
    f.obj(ioas).iopt().for_each_area([&](const core::Area& a) { out.push_back(a.iova); });
    return out;
}

// A compat IOAS with a mock device attached (what VFIO calls a group in a
// container), the type chosen.
struct Container : HardwareFixture {
    std::uint32_t dev = bind_ok(client, "m0");
    std::uint32_t hwpt = attach_ok(client, dev, ioas);

    explicit Container(unsigned type)
    {
        REQUIRE(set_compat(client, ioas) == 0);
        REQUIRE(scalar(client, VFIO_SET_IOMMU, type) == 0);
    }
};

} // namespace

TEST_CASE("VFIO compat: version and extensions need no compat IOAS", "[vfio_compat]")
{
    HardwareFixture f;
    CHECK(scalar(f.client, VFIO_GET_API_VERSION, 0) == VFIO_API_VERSION);
    CHECK(scalar(f.client, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) == 1);
    CHECK(scalar(f.client, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) == 1);
    CHECK(scalar(f.client, VFIO_CHECK_EXTENSION, VFIO_UNMAP_ALL) == 1);
    // Not built into Debian's kernel, obsolete, or refused by iommufd.
    for (std::uint64_t ext : std::initializer_list<std::uint64_t>{
             VFIO_NOIOMMU_IOMMU, VFIO_TYPE1_NESTING_IOMMU, VFIO_UPDATE_VADDR, VFIO_SPAPR_TCE_IOMMU, VFIO_EEH,
             0, 1ULL << 32 | VFIO_TYPE1_IOMMU})
        CHECK(scalar(f.client, VFIO_CHECK_EXTENSION, ext) == 0);
    // Cache coherency is a question about the compat IOAS's domains.
    CHECK(scalar(f.client, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU) == -ENODEV);
    REQUIRE(set_compat(f.client, f.ioas) == 0);
    CHECK(scalar(f.client, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU) == 1);
    attach_ok(f.client, bind_ok(f.client, "m0"), f.ioas);
    CHECK(scalar(f.client, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU) == 0);
}

TEST_CASE("VFIO compat: other VFIO numbers and types are ENOTTY", "[vfio_compat]")
{
    HardwareFixture f;
    REQUIRE(set_compat(f.client, f.ioas) == 0);
    for (unsigned cmd : {unsigned{VFIO_IOMMU_DIRTY_PAGES}, unsigned{VFIO_DEVICE_GET_INFO},
                         unsigned{_IO(VFIO_TYPE, VFIO_BASE + 3)}, unsigned{_IO(VFIO_TYPE, VFIO_BASE + 15)},
                         unsigned{_IO('X', VFIO_BASE)}, unsigned{_IOR(VFIO_TYPE, VFIO_BASE, int)}}) {
        CHECK_FALSE(dispatch::known(cmd));
        CHECK(f.client.ioctl_at(cmd, kStructAddr) == -ENOTTY);
    }
    for (unsigned cmd : {VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU, VFIO_IOMMU_GET_INFO,
                         VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA})
        CHECK(dispatch::known(cmd));
}

TEST_CASE("VFIO compat: SET_IOMMU checks the type, then the compat IOAS", "[vfio_compat]")
{
    HardwareFixture f;
    CHECK(scalar(f.client, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == -ENODEV);
    CHECK(scalar(f.client, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) == -ENODEV);
    for (std::uint64_t type : {0ULL, 2ULL, 8ULL, 1ULL << 32 | VFIO_TYPE1_IOMMU})
        CHECK(scalar(f.client, VFIO_SET_IOMMU, type) == -EINVAL);
    REQUIRE(set_compat(f.client, f.ioas) == 0);
    CHECK(scalar(f.client, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU) == -EINVAL);

    SECTION("type1v2 keeps large pages")
    {
        CHECK(scalar(f.client, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0);
        CHECK(huge_pages_option(f.client, f.ioas) == 1);
    }
    SECTION("type1 turns them off, for good")
    {
        CHECK(scalar(f.client, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) == 0);
        CHECK(huge_pages_option(f.client, f.ioas) == 0);
        CHECK(scalar(f.client, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0);
        CHECK(huge_pages_option(f.client, f.ioas) == 0);
    }
    SECTION("type1 is refused once a domain holds mappings")
    {
        attach_ok(f.client, bind_ok(f.client, "m0"), f.ioas);
        REQUIRE(map_dma(f.client, kBufferAddr, kMockFirst, kMapLen) == 0);
        CHECK(scalar(f.client, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) == -EINVAL);
        CHECK(huge_pages_option(f.client, f.ioas) == 1);
    }
}

TEST_CASE("VFIO compat: MAP_DMA", "[vfio_compat]")
{
    HardwareFixture f;
    auto cmd = map_cmd(kBufferAddr, kMockFirst, kMapLen);

    SECTION("argsz and flags come before the compat IOAS")
    {
        cmd.argsz = offsetof(vfio_iommu_type1_dma_map, size) + 7;
        CHECK(f.client.ioctl(VFIO_IOMMU_MAP_DMA, cmd) == -EINVAL);
        cmd.argsz = sizeof(cmd);
        for (std::uint32_t flags : {std::uint32_t{VFIO_DMA_MAP_FLAG_VADDR}, 1u << 31}) {
            cmd.flags = VFIO_DMA_MAP_FLAG_READ | flags;
            CHECK(f.client.ioctl(VFIO_IOMMU_MAP_DMA, cmd) == -EINVAL);
        }
        cmd.flags = VFIO_DMA_MAP_FLAG_READ;
        CHECK(f.client.ioctl(VFIO_IOMMU_MAP_DMA, cmd) == -ENODEV);
    }
    SECTION("the first 32 bytes are read whatever argsz says")
    {
        REQUIRE(set_compat(f.client, f.ioas) == 0);
        // The struct's last field lies past the end of the client's memory.
        const std::uint64_t at = kArrayAddr + kArrayRegion - 24;
        f.client.write(at, std::as_bytes(std::span(&cmd, 1)).first(24));
        CHECK(f.client.ioctl_at(VFIO_IOMMU_MAP_DMA, at) == -EFAULT);
    }
    SECTION("a larger argsz is fine, its tail unread")
    {
        REQUIRE(set_compat(f.client, f.ioas) == 0);
        cmd.argsz = 4096;
        CHECK(f.client.ioctl(VFIO_IOMMU_MAP_DMA, cmd) == 0);
        CHECK(areas_of(f, f.ioas) == std::vector<core::IovaRange>{{kMockFirst, kMockFirst + kMapLen - 1}});
    }
    SECTION("the IOVA is fixed, and taken IOVAs are refused as IOAS_MAP refuses them")
    {
        REQUIRE(set_compat(f.client, f.ioas) == 0);
        CHECK(f.client.ioctl(VFIO_IOMMU_MAP_DMA, cmd) == 0);
        CHECK(f.client.ioctl(VFIO_IOMMU_MAP_DMA, cmd) == -EEXIST);
        CHECK(areas_of(f, f.ioas) == std::vector<core::IovaRange>{{kMockFirst, kMockFirst + kMapLen - 1}});
    }
    SECTION("neither READ nor WRITE is a mapping, unlike IOMMU_IOAS_MAP")
    {
        REQUIRE(set_compat(f.client, f.ioas) == 0);
        cmd.flags = 0;
        CHECK(f.client.ioctl(VFIO_IOMMU_MAP_DMA, cmd) == 0);
        const core::Area* area = f.obj(f.ioas).iopt().find_area(kMockFirst);
        REQUIRE(area);
        CHECK_FALSE(area->readable);
        CHECK_FALSE(area->writable);
    }
    SECTION("mapped through the domain of an attached device")
    {
        const std::uint32_t dev = bind_ok(f.client, "m0");
        attach_ok(f.client, dev, f.ioas);
        REQUIRE(set_compat(f.client, f.ioas) == 0);
        fill(f.client, kBufferAddr, kMapLen, 3);
        REQUIRE(f.client.ioctl(VFIO_IOMMU_MAP_DMA, cmd) == 0);
        CHECK(dma_read_ok(f.client, dev, kMockFirst, kMapLen) == pattern(kMapLen, 3));
        // Outside the aperture, as IOAS_MAP.
        auto outside = map_cmd(kBufferAddr, kMockLast + 1, kMapLen);
        CHECK(f.client.ioctl(VFIO_IOMMU_MAP_DMA, outside) == -EINVAL);
    }
}

TEST_CASE("VFIO compat: UNMAP_DMA argument checks", "[vfio_compat]")
{
    HardwareFixture f;
    vfio_iommu_type1_dma_unmap cmd{.argsz = sizeof(cmd), .flags = 0, .iova = kMockFirst, .size = kMapLen};
    cmd.argsz = sizeof(cmd) - 1;
    CHECK(f.client.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd) == -EINVAL);
    cmd.argsz = sizeof(cmd);
    for (std::uint32_t flags : {std::uint32_t{VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP},
                                std::uint32_t{VFIO_DMA_UNMAP_FLAG_VADDR}, 1u << 31}) {
        cmd.flags = flags;
        CHECK(f.client.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd) == -EINVAL);
    }
    cmd.flags = 0;
    CHECK(f.client.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd) == -ENODEV);
    // Even a bad UNMAP_ALL waits for the compat IOAS.
    cmd.flags = VFIO_DMA_UNMAP_FLAG_ALL;
    CHECK(f.client.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd) == -ENODEV);
    CHECK(cmd.size == kMapLen);

    REQUIRE(set_compat(f.client, f.ioas) == 0);
    REQUIRE(map_dma(f.client, kBufferAddr, kMockFirst, kMapLen) == 0);
    CHECK(unmap_dma(f.client, kMockFirst, 0, VFIO_DMA_UNMAP_FLAG_ALL).rc == -EINVAL);
    CHECK(unmap_dma(f.client, 0, kMapLen, VFIO_DMA_UNMAP_FLAG_ALL).rc == -EINVAL);
    // iopt_unmap_iova()'s own checks; `size` comes back as 0.
    CHECK(unmap_dma(f.client, kMockFirst, 0).rc == -EINVAL);
    Unmapped wrap = unmap_dma(f.client, kMockFirst, ~0ULL);
    CHECK(wrap.rc == -EOVERFLOW);
    CHECK(wrap.size == 0);
    CHECK(areas_of(f, f.ioas).size() == 1);
}

TEST_CASE("VFIO compat: UNMAP_DMA returns the bytes unmapped; nothing there is success", "[vfio_compat]")
{
    HardwareFixture f;
    REQUIRE(set_compat(f.client, f.ioas) == 0);
    // No domain and no SET_IOMMU: large pages stay on, as type1v2.
    REQUIRE(map_dma(f.client, kBufferAddr, kMockFirst, kMapLen) == 0);
    REQUIRE(map_dma(f.client, kBufferAddr, kMockFirst + kMapLen, kMapLen) == 0);

    Unmapped both = unmap_dma(f.client, kMockFirst, 2 * kMapLen);
    CHECK(both.rc == 0);
    CHECK(both.size == 2 * kMapLen);
    // IOMMU_IOAS_UNMAP says ENOENT here.
    Unmapped empty = unmap_dma(f.client, kMockFirst, 2 * kMapLen);
    CHECK(empty.rc == 0);
    CHECK(empty.size == 0);

    REQUIRE(map_dma(f.client, kBufferAddr, kMockFirst, kMapLen) == 0);
    REQUIRE(map_dma(f.client, kBufferAddr, 5 * kMapLen, kMapLen) == 0);
    Unmapped all = unmap_dma(f.client, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL);
    CHECK(all.rc == 0);
    CHECK(all.size == 2 * kMapLen);
    CHECK(areas_of(f, f.ioas).empty());
}

TEST_CASE("VFIO compat: type1v2 never splits a mapping", "[vfio_compat]")
{
    Container c(VFIO_TYPE1v2_IOMMU);
    REQUIRE(map_dma(c.client, kBufferAddr, kMockFirst, kMapLen) == 0);
    for (std::uint64_t at : {kMockFirst, kMockFirst + kPage4K, kMockFirst + kMapLen - kPage4K}) {
        Unmapped piece = unmap_dma(c.client, at, kPage4K);
        CHECK(piece.rc == -ENOENT);
        CHECK(piece.size == 0);
    }
    CHECK(areas_of(c, c.ioas).size() == 1);
}

TEST_CASE("VFIO compat: type1 unmaps pieces out of a mapping", "[vfio_compat]")
{
    Container c(VFIO_TYPE1_IOMMU);
    fill(c.client, kBufferAddr, kMapLen, 5);
    REQUIRE(map_dma(c.client, kBufferAddr, kMockFirst, kMapLen) == 0);
    const auto expected = pattern(kMapLen, 5);
    const uid_t uid = c.client.caller()->uid();
    REQUIRE(c.services.accounting.user_pages(uid) == kMapLen / kPage4K);

    // A hole in the middle: both sides stay mapped, to the same pages.
    Unmapped hole = unmap_dma(c.client, kMockFirst + 4 * kPage4K, 2 * kPage4K);
    CHECK(hole.rc == 0);
    CHECK(hole.size == 2 * kPage4K);
    CHECK(areas_of(c, c.ioas) ==
          std::vector<core::IovaRange>{{kMockFirst, kMockFirst + 4 * kPage4K - 1},
                                       {kMockFirst + 6 * kPage4K, kMockFirst + kMapLen - 1}});
    CHECK(dma_read_ok(c.client, c.dev, kMockFirst, 4 * kPage4K) ==
          std::vector<std::byte>(expected.begin(), expected.begin() + 4 * kPage4K));
    CHECK(dma_read_ok(c.client, c.dev, kMockFirst + 6 * kPage4K, 10 * kPage4K) ==
          std::vector<std::byte>(expected.begin() + 6 * kPage4K, expected.end()));
    CHECK(dma(c.client, c.dev, kMockFirst + 4 * kPage4K, kPage4K, false).rc != 0);

    // The first page, then the rest page by page, in no particular order.
    CHECK(unmap_dma(c.client, kMockFirst, kPage4K).size == kPage4K);
    for (std::uint64_t page : {15, 7, 1, 9, 3, 14, 6, 2, 8, 13, 10, 12, 11}) {
        Unmapped one = unmap_dma(c.client, kMockFirst + page * kPage4K, kPage4K);
        CHECK(one.rc == 0);
        CHECK(one.size == kPage4K);
    }
    CHECK(areas_of(c, c.ioas).empty());
    // Every pin went with the last piece.
    CHECK(c.services.accounting.user_pages(uid) == 0);
}

TEST_CASE("VFIO compat: type1 refuses cuts the kernel refuses", "[vfio_compat]")
{
    Container c(VFIO_TYPE1_IOMMU);
    REQUIRE(map_dma(c.client, kBufferAddr, kMockFirst, kMapLen) == 0);

    SECTION("a point off the 4 KiB alignment: nothing changes")
    {
        vfio_iommu_type1_dma_unmap cmd{.argsz = sizeof(cmd), .flags = 0, .iova = kMockFirst + 0x800,
                                       .size = kPage4K};
        CHECK(c.client.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd) == -EINVAL);
        CHECK(cmd.size == kPage4K);
        CHECK(areas_of(c, c.ioas).size() == 1);
    }
    SECTION("an area with access pins")
    {
        const std::uint32_t access = make_access(c.client, c.ioas);
        std::vector<std::uint64_t> phys;
        {
            std::lock_guard guard(c.client.ctx().lock());
            auto* a = c.client.ctx().objects().find_as<core::Access>(access);
            REQUIRE(a);
            REQUIRE(a->pin_pages(kMockFirst, kPage4K, false, &phys) == 0);
        }
        CHECK(unmap_dma(c.client, kMockFirst + kPage4K, kPage4K).rc == -EINVAL);
        CHECK(areas_of(c, c.ioas).size() == 1);
        REQUIRE(destroy_access(c.client, access) == 0);
    }
}

TEST_CASE("IoPagetable::cut splits only where iopt_area_split() would", "[vfio_compat]")
{
    HardwareFixture f;
    auto& iopt = f.obj(f.ioas).iopt();
    REQUIRE(set_compat(f.client, f.ioas) == 0);
    REQUIRE(map_dma(f.client, kBufferAddr + 0x800, kMockFirst + 0x800, kMapLen) == 0);
    std::lock_guard guard(f.client.ctx().lock());

    // Without domains a cut may fall inside a page, both halves sharing it.
    const std::array<std::uint64_t, 3> points{kMockFirst + 0x800, kMockFirst + 0x1000,
                                              kMockFirst + kMapLen + 0x7ff};
    CHECK(iopt.cut(points) == 0);
    CHECK(areas_of(f, f.ioas) == std::vector<core::IovaRange>{{kMockFirst + 0x800, kMockFirst + 0x1000},
                                                              {kMockFirst + 0x1001, kMockFirst + kMapLen + 0x7ff}});
    const core::Area* right = iopt.find_area(kMockFirst + 0x1001);
    REQUIRE(right);
    CHECK(right->byte_at(kMockFirst + 0x1001) == 0x1001);
    // Nothing there, nothing to cut.
    const std::array<std::uint64_t, 1> nowhere{kMockFirst - 1};
    CHECK(iopt.cut(nowhere) == 0);
}

TEST_CASE("IoPagetable::cut of a domain-filled area needs large pages off", "[vfio_compat]")
{
    HardwareFixture f;
    attach_ok(f.client, bind_ok(f.client, "m0"), f.ioas);
    REQUIRE(set_compat(f.client, f.ioas) == 0);
    REQUIRE(map_dma(f.client, kBufferAddr, kMockFirst, kMapLen) == 0);
    auto& iopt = f.obj(f.ioas).iopt();
    std::lock_guard guard(f.client.ctx().lock());
    const std::array<std::uint64_t, 1> point{kMockFirst + kPage4K - 1};
    CHECK(iopt.cut(point) == -EINVAL);
    CHECK(iopt.area_count() == 1);
}

TEST_CASE("VFIO compat: GET_INFO", "[vfio_compat]")
{
    HardwareFixture f;
    constexpr std::uint64_t kInfo = sizeof(vfio_iommu_type1_info);
    // The chain: DMA_AVAIL (12 bytes, padded to 16) then the IOVA ranges.
    constexpr std::uint64_t kFull = kInfo + 16 + 16 + 16;
    constexpr std::byte kFill{0xaa};

    auto get_info = [&](std::uint32_t argsz, vfio_iommu_type1_info* out) {
        fill_byte(f.client, kStructAddr, 256, kFill);
        vfio_iommu_type1_info in{};
        in.argsz = argsz;
        f.client.write(kStructAddr, std::as_bytes(std::span(&in, 1)).first(std::min<std::size_t>(argsz, kInfo)));
        int rc = f.client.ioctl_at(VFIO_IOMMU_GET_INFO, kStructAddr);
        *out = value_at<vfio_iommu_type1_info>(f.client, kStructAddr);
        // Nothing past argsz.
        for (std::byte b : bytes_at(f.client, kStructAddr + argsz, 256 - argsz))
            CHECK(b == kFill);
        return rc;
    };

    vfio_iommu_type1_info info{};
    CHECK(get_info(offsetof(vfio_iommu_type1_info, iova_pgsizes) + 7, &info) == -EINVAL);
    CHECK(get_info(kInfo, &info) == -ENODEV);
    REQUIRE(set_compat(f.client, f.ioas) == 0);

    SECTION("without a domain: every IOVA, page sizes from 4 KiB up")
    {
        REQUIRE(get_info(kFull, &info) == 0);
        CHECK(info.iova_pgsizes == ~std::uint64_t{0xfff});
        const auto range = value_at<vfio_iova_range>(f.client, kStructAddr + kInfo + 32);
        CHECK(range.start == 0);
        CHECK(range.end == UINT64_MAX);
    }
    SECTION("the chain, whole")
    {
        attach_ok(f.client, bind_ok(f.client, "m0"), f.ioas);
        REQUIRE(get_info(kFull, &info) == 0);
        CHECK(info.argsz == kFull);
        CHECK(info.flags == (VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS));
        // The mock's 2 KiB pages count as one 4 KiB page.
        CHECK(info.iova_pgsizes == kPage4K);
        CHECK(info.cap_offset == kInfo);
        const auto avail = value_at<vfio_iommu_type1_info_dma_avail>(f.client, kStructAddr + kInfo);
        CHECK(avail.header.id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
        CHECK(avail.header.version == 1);
        CHECK(avail.header.next == kInfo + 16);
        CHECK(avail.avail == UINT32_MAX);
        const auto iovas = value_at<vfio_iommu_type1_info_cap_iova_range>(f.client, kStructAddr + kInfo + 16);
        CHECK(iovas.header.id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
        CHECK(iovas.header.version == 1);
        CHECK(iovas.header.next == 0);
        CHECK(iovas.nr_iovas == 1);
        const auto range = value_at<vfio_iova_range>(f.client, kStructAddr + kInfo + 32);
        CHECK(range.start == kMockFirst);
        CHECK(range.end == kMockLast);
    }
    SECTION("too small for the chain: its size, no cap_offset, never a byte too many")
    {
        attach_ok(f.client, bind_ok(f.client, "m0"), f.ioas);
        // The struct before caps existed: only its first 16 bytes go back.
        REQUIRE(get_info(offsetof(vfio_iommu_type1_info, cap_offset), &info) == 0);
        CHECK(info.argsz == kFull);
        CHECK(info.flags == (VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS));
        CHECK(info.iova_pgsizes == kPage4K);
        for (std::uint32_t argsz = kInfo; argsz < kFull; ++argsz) {
            INFO("argsz " << argsz);
            REQUIRE(get_info(argsz, &info) == 0);
            CHECK(info.argsz == kFull);
            CHECK(info.cap_offset == 0);
        }
        // Room for DMA_AVAIL alone: written, its `next` not.
        REQUIRE(get_info(kInfo + 12, &info) == 0);
        auto avail = value_at<vfio_iommu_type1_info_dma_avail>(f.client, kStructAddr + kInfo);
        CHECK(avail.header.id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
        CHECK(avail.header.next == 0);
        // With its padding too, `next` points where the IOVA cap would go,
        // as the kernel's loop has it, though cap_offset says no chain.
        REQUIRE(get_info(kInfo + 16, &info) == 0);
        avail = value_at<vfio_iommu_type1_info_dma_avail>(f.client, kStructAddr + kInfo);
        CHECK(avail.header.next == kInfo + 16);
        CHECK(info.cap_offset == 0);
    }
}

TEST_CASE("VFIO compat: --trace names the container ioctls", "[vfio_compat]")
{
    HardwareFixture f;
    CHECK(dispatch::describe(VFIO_SET_IOMMU, f.client.buffer().memory(), VFIO_TYPE1v2_IOMMU) ==
          "VFIO_SET_IOMMU(3)");
    put_value(f.client, kStructAddr, map_cmd(0x7000, 0x1000, 0x2000));
    CHECK(dispatch::describe(VFIO_IOMMU_MAP_DMA, f.client.buffer().memory(), kStructAddr) ==
          "VFIO_IOMMU_MAP_DMA{argsz=32 flags=0x3 vaddr=0x7000 iova=0x1000 size=0x2000}");
}
