// IOMMU_HWPT_SET_DIRTY_TRACKING and IOMMU_HWPT_GET_DIRTY_BITMAP, with the
// dirty bits set by emulated DMA writes. The kernel (6.12):
// hw_pagetable.c iommufd_hwpt_set_dirty_tracking() and
// iommufd_hwpt_get_dirty_bitmap(); io_pagetable.c iopt_set_dirty_tracking()
// (a clean snapshot on enable), iommufd_check_iova_range() (the order of the
// range checks), iommu_read_and_clear_dirty() (only contiguous areas from
// the start are walked, and every walker error is dropped); iova_bitmap.c
// (bit n covers iova + (n << __ffs(page_size)); bits are only ever set);
// the drivers' read_and_clear_dirty (selftest.c, intel iommu.c), which
// refuse to read while tracking is off, an error iommufd drops too.
#include <catch2/catch.hpp>

#include <ioasid/emu.h>
#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstdint>
#include <set>
#include <vector>

#include "hardware_fixture.h"

using namespace ioasid;
using namespace ioasid::test;

namespace {

constexpr std::uint32_t kBadId = 9999;
constexpr std::uint64_t kBitmap = kDmaBufAddr + (4 << 20); // the client's bitmap
constexpr std::uint32_t kNoClear = IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR;
constexpr std::uint64_t k2M = 2ULL << 20;
constexpr std::uint64_t k1M = 1ULL << 20;

struct Bitmap {
    int rc;
    std::vector<std::uint64_t> words;
};

// GET_DIRTY_BITMAP into a bitmap of `nwords` words pre-set to `prefill`.
Bitmap read_bitmap(Client& c, std::uint32_t hwpt, std::uint64_t iova, std::uint64_t length,
                   std::uint64_t page_size, std::uint32_t flags = 0, std::size_t nwords = 0,
                   std::uint64_t prefill = 0)
{
    if (nwords == 0)
        nwords = (length / page_size + 63) / 64 + 1;
    std::vector<std::uint64_t> words(nwords, prefill);
    c.write(kBitmap, std::as_bytes(std::span(words)));
    Bitmap b;
    b.rc = get_dirty_bitmap(c, hwpt, iova, length, page_size, kBitmap, flags);
    b.words.resize(nwords);
    c.read(kBitmap, std::as_writable_bytes(std::span(b.words)));
    return b;
}

std::set<std::uint64_t> bits_of(const std::vector<std::uint64_t>& words)
{
    std::set<std::uint64_t> out;
    for (std::size_t w = 0; w < words.size(); ++w)
        for (unsigned b = 0; b < 64; ++b)
            if (words[w] >> b & 1)
                out.insert(w * 64 + b);
    return out;
}

std::set<std::uint64_t> dirty_bits(Client& c, std::uint32_t hwpt, std::uint64_t iova, std::uint64_t length,
                                   std::uint64_t page_size, std::uint32_t flags = 0)
{
    Bitmap b = read_bitmap(c, hwpt, iova, length, page_size, flags);
    REQUIRE(b.rc == 0);
    return bits_of(b.words);
}

std::set<std::uint64_t> range_bits(std::uint64_t first, std::uint64_t count)
{
    std::set<std::uint64_t> out;
    for (std::uint64_t i = 0; i < count; ++i)
        out.insert(first + i);
    return out;
}

void write_ok(Client& c, std::uint32_t dev, std::uint64_t iova, std::uint64_t length)
{
    Dma d = dma(c, dev, iova, length, true);
    REQUIRE(d.rc == 0);
    REQUIRE(d.out.out_done == length);
}

// A device on a dirty-tracking HWPT over `length` bytes mapped at `iova`.
struct Tracked {
    std::uint32_t dev = 0;
    std::uint32_t hwpt = 0;
};

Tracked tracked(HardwareFixture& f, const char* device, std::uint64_t iova, std::uint64_t length,
                std::uint64_t user_va = kBufferAddr)
{
    Client& c = f.client;
    Tracked t;
    t.dev = bind_ok(c, device);
    REQUIRE(c.map_fixed(f.ioas, user_va, length, iova) == 0);
    t.hwpt = hwpt_alloc_ok(c, t.dev, f.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    attach_ok(c, t.dev, t.hwpt);
    REQUIRE(set_dirty_tracking(c, t.hwpt, true) == 0);
    return t;
}

} // namespace

TEST_CASE("SET_DIRTY_TRACKING: flags, HWPT lookup, domains without dirty ops", "[dirty]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint32_t dirty = hwpt_alloc_ok(c, m0, f.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    const std::uint32_t plain = hwpt_alloc_ok(c, m0, f.ioas);

    // Unknown flags first, then the lookup (iommufd_get_hwpt_paging: ENOENT).
    iommu_hwpt_set_dirty_tracking cmd{.size = sizeof(cmd), .flags = 2, .hwpt_id = kBadId, .__reserved = 0};
    CHECK(c.ioctl(IOMMU_HWPT_SET_DIRTY_TRACKING, cmd) == -EOPNOTSUPP);
    cmd.flags = 0xffffffff;
    cmd.hwpt_id = dirty;
    CHECK(c.ioctl(IOMMU_HWPT_SET_DIRTY_TRACKING, cmd) == -EOPNOTSUPP);
    CHECK(set_dirty_tracking(c, kBadId, true) == -ENOENT);
    CHECK(set_dirty_tracking(c, f.ioas, true) == -ENOENT);
    CHECK(set_dirty_tracking(c, m0, true) == -ENOENT);
    // A domain allocated without DIRTY_TRACKING has no dirty ops, either way.
    CHECK(set_dirty_tracking(c, plain, true) == -EOPNOTSUPP);
    CHECK(set_dirty_tracking(c, plain, false) == -EOPNOTSUPP);
    // An automatic domain neither.
    const std::uint32_t m1 = bind_ok(c, "m1");
    const std::uint32_t auto_hwpt = attach_ok(c, m1, f.ioas);
    CHECK(set_dirty_tracking(c, auto_hwpt, true) == -EOPNOTSUPP);
    // __reserved is not checked (6.12).
    CHECK(set_dirty_tracking(c, dirty, true, 0xffffffff) == 0);
    CHECK(set_dirty_tracking(c, dirty, true) == 0);
    CHECK(set_dirty_tracking(c, dirty, false) == 0);
    CHECK(set_dirty_tracking(c, dirty, false) == 0);
    // Nothing is written back.
    cmd = {.size = sizeof(cmd), .flags = 1, .hwpt_id = dirty, .__reserved = 77};
    CHECK(c.ioctl(IOMMU_HWPT_SET_DIRTY_TRACKING, cmd) == 0);
    CHECK(cmd.__reserved == 77);
}

TEST_CASE("GET_DIRTY_BITMAP: the checks in iommufd_hwpt_get_dirty_bitmap() and iommufd_check_iova_range() order",
          "[dirty]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 64 * 1024, kMockFirst) == 0);
    const std::uint32_t dirty = hwpt_alloc_ok(c, m0, f.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    const std::uint32_t plain = hwpt_alloc_ok(c, m0, f.ioas);
    const std::uint64_t iova = kMockFirst;
    // The mock domains raised the IOAS alignment to 2 KiB.
    REQUIRE(f.obj(f.ioas).iopt().iova_alignment() == kMockPage);

    auto get = [&](std::uint32_t hwpt, std::uint64_t at, std::uint64_t length, std::uint64_t page_size,
                   std::uint32_t flags = 0, std::uint32_t reserved = 0) {
        auto cmd = dirty_cmd(hwpt, at, length, page_size, kBitmap, flags);
        cmd.__reserved = reserved;
        return c.ioctl(IOMMU_HWPT_GET_DIRTY_BITMAP, cmd);
    };

    // flags and __reserved before the lookup.
    CHECK(get(kBadId, iova, 0, 0, 2) == -EOPNOTSUPP);
    CHECK(get(kBadId, iova, 0, 0, 0, 1) == -EOPNOTSUPP);
    // The lookup before the range.
    CHECK(get(kBadId, iova, 0, 0) == -ENOENT);
    CHECK(get(f.ioas, iova, 0, 0) == -ENOENT);
    CHECK(get(m0, iova, 4096, 4096) == -ENOENT);
    // length 0.
    CHECK(get(dirty, iova, 0, 0) == -EINVAL);
    // iova + length - 1 wraps, before any alignment or page_size check.
    CHECK(get(dirty, UINT64_MAX - 4095, 8192, 0) == -EOVERFLOW);
    CHECK(get(dirty, 2, UINT64_MAX, 3) == -EOVERFLOW);
    // Ending exactly at the top is no overflow.
    CHECK(get(dirty, 1, UINT64_MAX, 3) == -EINVAL);
    CHECK(get(dirty, 0, UINT64_MAX, 4096) == -EINVAL); // iova + length is not aligned
    CHECK(get(dirty, 0, 0 - 4096ULL, 4096) == 0);
    // Aligned to the IOAS's iova_alignment, start and end.
    CHECK(get(dirty, iova + 1024, 4096, 1024) == -EINVAL);
    CHECK(get(dirty, iova, 4096 + 1024, 1024) == -EINVAL);
    CHECK(get(dirty, iova + 1024, 4096, 0) == -EINVAL);
    // page_size 0.
    CHECK(get(dirty, iova, 4096, 0) == -EINVAL);
    // Aligned to page_size, start and end.
    CHECK(get(dirty, iova + 2048, 8192, 4096) == -EINVAL);
    CHECK(get(dirty, iova, 8192 + 2048, 4096) == -EINVAL);
    // All of that before the domain's dirty ops are asked for.
    CHECK(get(plain, iova, 0, 4096) == -EINVAL);
    CHECK(get(plain, iova, 4096, 0) == -EINVAL);
    CHECK(get(plain, iova, 4096, 4096) == -EOPNOTSUPP);
    CHECK(get(plain, iova, 4096, 4096, kNoClear) == -EOPNOTSUPP);
    // A good request.
    CHECK(get(dirty, iova, 65536, 4096) == 0);
    CHECK(get(dirty, iova, 65536, 2048, kNoClear) == 0);
    // A page size below the IOAS alignment is fine: a leaf sets several bits.
    CHECK(get(dirty, iova, 65536, 512) == 0);
}

TEST_CASE("GET_DIRTY_BITMAP: the bits are the pages DMA wrote (mock, 2 KiB)", "[dirty]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint64_t iova = kMockFirst;
    const std::uint64_t length = 512 * 1024; // 256 mock pages
    Tracked t = tracked(f, "m0", iova, length);
    fill(c, kDmaBufAddr, 64 * 1024, 4);

    // A write inside page 1, one across pages 5 and 6, one of page 63
    // exactly, and one across the 64-page word boundary (pages 127, 128).
    write_ok(c, t.dev, iova + 1 * kMockPage + 10, 10);
    write_ok(c, t.dev, iova + 5 * kMockPage + 2000, 100);
    write_ok(c, t.dev, iova + 63 * kMockPage, kMockPage);
    write_ok(c, t.dev, iova + 128 * kMockPage - 1, 2);
    // Reads dirty nothing.
    CHECK(dma(c, t.dev, iova + 200 * kMockPage, 3 * kMockPage, false).rc == 0);
    const std::set<std::uint64_t> pages{1, 5, 6, 63, 127, 128};

    SECTION("page_size = the IO page")
    {
        CHECK(dirty_bits(c, t.hwpt, iova, length, kMockPage, kNoClear) == pages);
    }
    SECTION("page_size 4 KiB: two IO pages per bit")
    {
        CHECK(dirty_bits(c, t.hwpt, iova, length, 4096, kNoClear) == std::set<std::uint64_t>{0, 2, 3, 31, 63, 64});
    }
    SECTION("page_size 1 KiB: one IO page sets two bits")
    {
        std::set<std::uint64_t> expect;
        for (std::uint64_t p : pages)
            expect.insert({2 * p, 2 * p + 1});
        CHECK(dirty_bits(c, t.hwpt, iova, length, 1024, kNoClear) == expect);
    }
    SECTION("a range that starts later: bits count from its start")
    {
        CHECK(dirty_bits(c, t.hwpt, iova + 4 * kMockPage, 4 * kMockPage, kMockPage, kNoClear) ==
              std::set<std::uint64_t>{1, 2});
        CHECK(dirty_bits(c, t.hwpt, iova + 100 * kMockPage, 100 * kMockPage, kMockPage, kNoClear) ==
              std::set<std::uint64_t>{27, 28});
    }
    SECTION("a page_size that is not a power of two counts in its lowest set bit (__ffs)")
    {
        // 6 KiB: aligned to it is aligned to 6 KiB - 1 as a mask; each bit is 2 KiB.
        const std::uint64_t ps = 3 * kMockPage;
        CHECK(dirty_bits(c, t.hwpt, iova, 3 * 65536, ps, kNoClear) == std::set<std::uint64_t>{1, 5, 6, 63});
    }
    SECTION("what the status and the table say")
    {
        int dirty_leaves = 0;
        const auto dump = pt_dump(c, t.hwpt);
        for (const auto& e : dump["entries"])
            if (e["leaf"].get<bool>() && e["fields"].get<std::string>().find(" D") != std::string::npos) {
                CHECK(pages.count((e["iova"].get<std::uint64_t>() - iova) / kMockPage) == 1);
                ++dirty_leaves;
            }
        CHECK(dirty_leaves == 6);
    }
}

TEST_CASE("GET_DIRTY_BITMAP: clearing, NO_CLEAR, and writes after a clear", "[dirty]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint64_t iova = kMockFirst;
    const std::uint64_t length = 64 * kMockPage;
    Tracked t = tracked(f, "m0", iova, length);
    write_ok(c, t.dev, iova + 3 * kMockPage, 8);
    write_ok(c, t.dev, iova + 9 * kMockPage, 8);
    const std::set<std::uint64_t> pages{3, 9};

    // NO_CLEAR leaves the bits for the next read.
    CHECK(dirty_bits(c, t.hwpt, iova, length, kMockPage, kNoClear) == pages);
    CHECK(dirty_bits(c, t.hwpt, iova, length, kMockPage, kNoClear) == pages);
    // A clearing read reports them once.
    CHECK(dirty_bits(c, t.hwpt, iova, length, kMockPage) == pages);
    CHECK(dirty_bits(c, t.hwpt, iova, length, kMockPage).empty());
    // The IOTLB forgot that the leaf was dirty: the next write sets it again.
    write_ok(c, t.dev, iova + 3 * kMockPage + 100, 8);
    CHECK(dirty_bits(c, t.hwpt, iova, length, kMockPage) == std::set<std::uint64_t>{3});
    // A clear over part of the range clears that part only.
    write_ok(c, t.dev, iova + 3 * kMockPage, 8);
    write_ok(c, t.dev, iova + 40 * kMockPage, 8);
    CHECK(dirty_bits(c, t.hwpt, iova, 32 * kMockPage, kMockPage) == std::set<std::uint64_t>{3});
    CHECK(dirty_bits(c, t.hwpt, iova, length, kMockPage) == std::set<std::uint64_t>{40});
}

TEST_CASE("GET_DIRTY_BITMAP only sets bits", "[dirty]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint64_t iova = kMockFirst;
    const std::uint64_t length = 128 * kMockPage; // two words
    Tracked t = tracked(f, "m0", iova, length);
    write_ok(c, t.dev, iova + 2 * kMockPage, 1);
    write_ok(c, t.dev, iova + 70 * kMockPage, 1);

    // Pre-set bits stay, in the words the range covers and past them.
    const std::uint64_t pre = 0x8000000000000001ULL;
    Bitmap b = read_bitmap(c, t.hwpt, iova, length, kMockPage, 0, 4, pre);
    REQUIRE(b.rc == 0);
    CHECK(b.words[0] == (pre | 1ULL << 2));
    CHECK(b.words[1] == (pre | 1ULL << 6));
    CHECK(b.words[2] == pre);
    CHECK(b.words[3] == pre);
    // A range of 3 bits: the rest of its word keeps what it had.
    write_ok(c, t.dev, iova + 1 * kMockPage, 1);
    b = read_bitmap(c, t.hwpt, iova, 3 * kMockPage, kMockPage, 0, 2, 0xfffffffffffffff0ULL);
    REQUIRE(b.rc == 0);
    CHECK(b.words[0] == 0xfffffffffffffff2ULL);
    CHECK(b.words[1] == 0xfffffffffffffff0ULL);
}

TEST_CASE("GET_DIRTY_BITMAP with tracking off sets nothing; enabling starts clean", "[dirty]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint64_t iova = kMockFirst;
    const std::uint64_t length = 64 * kMockPage;
    Tracked t = tracked(f, "m0", iova, length);

    SECTION("writes while tracking is off are not recorded")
    {
        REQUIRE(set_dirty_tracking(c, t.hwpt, false) == 0);
        write_ok(c, t.dev, iova, 64);
        CHECK(dirty_bits(c, t.hwpt, iova, length, kMockPage).empty());
        REQUIRE(set_dirty_tracking(c, t.hwpt, true) == 0);
        CHECK(dirty_bits(c, t.hwpt, iova, length, kMockPage).empty());
        write_ok(c, t.dev, iova, 64);
        CHECK(dirty_bits(c, t.hwpt, iova, length, kMockPage) == std::set<std::uint64_t>{0});
    }
    SECTION("bits set before tracking stopped are not read while it is off")
    {
        write_ok(c, t.dev, iova + kMockPage, 64);
        REQUIRE(set_dirty_tracking(c, t.hwpt, false) == 0);
        // The driver refuses (EINVAL) and iommufd drops the error.
        Bitmap b = read_bitmap(c, t.hwpt, iova, length, kMockPage, 0, 2, 0);
        CHECK(b.rc == 0);
        CHECK(bits_of(b.words).empty());
        // Enabling again clears them first: a clean snapshot.
        REQUIRE(set_dirty_tracking(c, t.hwpt, true) == 0);
        CHECK(dirty_bits(c, t.hwpt, iova, length, kMockPage).empty());
    }
    SECTION("a domain that never tracked")
    {
        const std::uint32_t other = hwpt_alloc_ok(c, t.dev, f.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
        attach_ok(c, t.dev, other);
        write_ok(c, t.dev, iova, 64);
        CHECK(dirty_bits(c, other, iova, length, kMockPage).empty());
        // Nor did the first domain see the write, which went through the other.
        CHECK(dirty_bits(c, t.hwpt, iova, length, kMockPage).empty());
    }
}

TEST_CASE("GET_DIRTY_BITMAP walks contiguous areas from the start only", "[dirty]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint64_t iova = kMockFirst;
    // Two areas back to back, a hole, a third area.
    Tracked t = tracked(f, "m0", iova, 8 * kMockPage);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr + 65536, 8 * kMockPage, iova + 8 * kMockPage) == 0);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr + 131072, 8 * kMockPage, iova + 24 * kMockPage) == 0);
    for (std::uint64_t page : {1, 9, 25})
        write_ok(c, t.dev, iova + page * kMockPage, 1);

    // From the first area: both contiguous areas, not past the hole.
    CHECK(dirty_bits(c, t.hwpt, iova, 32 * kMockPage, kMockPage, kNoClear) == std::set<std::uint64_t>{1, 9});
    // From inside the hole: nothing, and no error (6.12 drops it).
    CHECK(dirty_bits(c, t.hwpt, iova + 16 * kMockPage, 16 * kMockPage, kMockPage, kNoClear).empty());
    // From the third area.
    CHECK(dirty_bits(c, t.hwpt, iova + 24 * kMockPage, 8 * kMockPage, kMockPage, kNoClear) ==
          std::set<std::uint64_t>{1});
    // Where nothing is mapped at all.
    CHECK(dirty_bits(c, t.hwpt, iova + (1 << 20), 8 * kMockPage, kMockPage).empty());
}

TEST_CASE("GET_DIRTY_BITMAP: a bitmap the daemon cannot write", "[dirty]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint64_t iova = kMockFirst;
    Tracked t = tracked(f, "m0", iova, 8 * kMockPage);
    // iova_bitmap_set() gives up quietly when it cannot pin the bitmap,
    // and the driver has cleared the bits it read by then.
    write_ok(c, t.dev, iova, 1);
    CHECK(get_dirty_bitmap(c, t.hwpt, iova, 8 * kMockPage, kMockPage, kUnmappedVa) == 0);
    CHECK(dirty_bits(c, t.hwpt, iova, 8 * kMockPage, kMockPage).empty());
    write_ok(c, t.dev, iova, 1);
    CHECK(get_dirty_bitmap(c, t.hwpt, iova, 8 * kMockPage, kMockPage, kReadOnlyAddr) == 0);
    CHECK(dirty_bits(c, t.hwpt, iova, 8 * kMockPage, kMockPage).empty());
    // NO_CLEAR keeps them for a read that can write.
    write_ok(c, t.dev, iova, 1);
    CHECK(get_dirty_bitmap(c, t.hwpt, iova, 8 * kMockPage, kMockPage, kUnmappedVa, kNoClear) == 0);
    CHECK(dirty_bits(c, t.hwpt, iova, 8 * kMockPage, kMockPage) == std::set<std::uint64_t>{0});
    // With nothing dirty nothing is written, so no fault either.
    CHECK(get_dirty_bitmap(c, t.hwpt, iova, 8 * kMockPage, kMockPage, kUnmappedVa) == 0);
}

TEST_CASE("GET_DIRTY_BITMAP on VT-d: 4 KiB pages", "[dirty]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint64_t iova = 0x100000;
    const std::uint64_t length = 1 << 20; // 256 pages
    Tracked t = tracked(f, "v0", iova, length, kBufferAddr + 4096); // not 2 MiB aligned: 4 KiB leaves
    for (std::uint64_t page : {0, 7, 64})
        write_ok(c, t.dev, iova + page * 4096 + 4090, 50); // into the next page too
    write_ok(c, t.dev, iova + 255 * 4096, 8);
    CHECK(dirty_bits(c, t.hwpt, iova, length, 4096, kNoClear) ==
          std::set<std::uint64_t>{0, 1, 7, 8, 64, 65, 255});
    CHECK(dirty_bits(c, t.hwpt, iova, length, 8192, kNoClear) == std::set<std::uint64_t>{0, 3, 4, 32, 127});
    CHECK(dirty_bits(c, t.hwpt, iova, length, 4096) == std::set<std::uint64_t>{0, 1, 7, 8, 64, 65, 255});
    CHECK(dirty_bits(c, t.hwpt, iova, length, 4096).empty());
    // 4 KiB aligned, not 2 KiB: the VT-d domain made the IOAS alignment 4 KiB.
    CHECK(get_dirty_bitmap(c, t.hwpt, iova + 2048, 4096, 2048, kBitmap) == -EINVAL);
}

TEST_CASE("GET_DIRTY_BITMAP: a large leaf is dirty as a whole", "[dirty]")
{
    HardwareFixture f;
    Client& c = f.client;

    SECTION("VT-d 2 MiB leaves")
    {
        // kBufferAddr is 2 MiB aligned, and pinned memory is physically
        // contiguous in 2 MiB chunks: two 2 MiB leaves.
        const std::uint64_t iova = 0x40000000;
        Tracked t = tracked(f, "v0", iova, 2 * k2M);
        int large = 0;
        for (auto [leaf, size] : leaves_of(pt_dump(c, t.hwpt)))
            large += size == k2M;
        REQUIRE(large == 2);
        write_ok(c, t.dev, iova + k2M + 0x3000, 1);
        CHECK(dirty_bits(c, t.hwpt, iova, 2 * k2M, 4096, kNoClear) == range_bits(512, 512));
        CHECK(dirty_bits(c, t.hwpt, iova, 2 * k2M, k2M, kNoClear) == std::set<std::uint64_t>{1});
        // A range covering part of the leaf gets the part it covers.
        CHECK(dirty_bits(c, t.hwpt, iova + k2M, 4096 * 4, 4096, kNoClear) == range_bits(0, 4));
        CHECK(dirty_bits(c, t.hwpt, iova + k2M + k1M, k1M, 4096) == range_bits(0, 256));
        // That read cleared the whole leaf.
        CHECK(dirty_bits(c, t.hwpt, iova, 2 * k2M, 4096).empty());
    }
    SECTION("mock 1 MiB leaves")
    {
        const std::uint64_t iova = kMockFirst;
        Tracked t = tracked(f, "h0", iova, 2 * k1M);
        int large = 0;
        for (auto [leaf, size] : leaves_of(pt_dump(c, t.hwpt)))
            large += size == k1M;
        REQUIRE(large == 2);
        write_ok(c, t.dev, iova + 3000, 1);
        CHECK(dirty_bits(c, t.hwpt, iova, 2 * k1M, kMockPage) == range_bits(0, 512));
        CHECK(dirty_bits(c, t.hwpt, iova, 2 * k1M, kMockPage).empty());
    }
}

TEST_CASE("GET_DIRTY_BITMAP: a write that faults half way dirtied what it wrote", "[dirty]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint64_t iova = kMockFirst;
    Tracked t = tracked(f, "m0", iova, 4 * kMockPage);
    Dma d = dma(c, t.dev, iova + 2 * kMockPage, 4 * kMockPage, true);
    CHECK(d.rc == -EIO);
    CHECK(d.out.out_done == 2 * kMockPage);
    CHECK(dirty_bits(c, t.hwpt, iova, 4 * kMockPage, kMockPage) == std::set<std::uint64_t>{2, 3});
}

TEST_CASE("A device without dirty tracking cannot attach to a dirty-tracking HWPT", "[dirty]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint32_t mnd = bind_ok(c, "mnd");
    const std::uint32_t v0 = bind_ok(c, "v0");
    const std::uint32_t hwpt = hwpt_alloc_ok(c, m0, f.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    // selftest.c mock_domain_nop_attach(): MOCK_FLAGS_DEVICE_NO_DIRTY -> EINVAL.
    std::uint32_t pt = hwpt;
    CHECK(attach(c, mnd, &pt) == -EINVAL);
    CHECK(attach_ok(c, m0, hwpt) == hwpt);
    // VT-d alike (prepare_domain_attach_device()).
    const std::uint32_t vtd = hwpt_alloc_ok(c, v0, f.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    const std::uint32_t w0 = bind_ok(c, "w0");
    pt = vtd;
    CHECK(attach(c, w0, &pt) == -EINVAL);
}

TEST_CASE("GET_DIRTY_BITMAP: a small page_size under a large leaf sets every bit, word by word", "[dirty]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint64_t iova = 0x40000000;
    Tracked t = tracked(f, "v0", iova, k2M);
    write_ok(c, t.dev, iova + 12345, 1);
    // page_size 1: 2 Mi bits, 32 Ki words, all ones.
    const std::size_t nwords = k2M / 64;
    Bitmap b = read_bitmap(c, t.hwpt, iova, k2M, 1, kNoClear, nwords + 1, 0);
    REQUIRE(b.rc == 0);
    std::size_t full = 0;
    for (std::size_t i = 0; i < nwords; ++i)
        full += b.words[i] == ~std::uint64_t{0};
    CHECK(full == nwords);
    CHECK(b.words[nwords] == 0);
    // The part of the leaf a range covers, at 16 bytes a bit.
    b = read_bitmap(c, t.hwpt, iova + 4096, 3 * 4096, 16, 0, 13, 0);
    REQUIRE(b.rc == 0);
    for (std::size_t i = 0; i < 12; ++i)
        CHECK(b.words[i] == ~std::uint64_t{0});
    CHECK(b.words[12] == 0);
}

TEST_CASE("GET_DIRTY_BITMAP with IOMMU_OPTION_HUGE_PAGES off: 4 KiB leaves only", "[dirty]")
{
    HardwareFixture f;
    Client& c = f.client;
    iommu_option opt{.size = sizeof(opt), .option_id = IOMMU_OPTION_HUGE_PAGES, .op = IOMMU_OPTION_OP_SET,
                     .__reserved = 0, .object_id = f.ioas, .val64 = 0};
    REQUIRE(c.ioctl(IOMMU_OPTION, opt) == 0);
    const std::uint64_t iova = 0x40000000;
    Tracked t = tracked(f, "v0", iova, k2M);
    for (auto [leaf, size] : leaves_of(pt_dump(c, t.hwpt)))
        CHECK(size == 4096);
    write_ok(c, t.dev, iova + 0x5000, 1);
    CHECK(dirty_bits(c, t.hwpt, iova, k2M, 4096) == std::set<std::uint64_t>{5});
    // With a domain and areas the option can no longer be turned off.
    opt.val64 = 1;
    REQUIRE(c.ioctl(IOMMU_OPTION, opt) == 0);
    opt.val64 = 0;
    CHECK(c.ioctl(IOMMU_OPTION, opt) == -EINVAL);
}
