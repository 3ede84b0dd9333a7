// IOMMU_IOAS_IOVA_RANGES, IOMMU_IOAS_ALLOW_IOVAS, IOMMU_OPTION, IOMMU_VFIO_IOAS.
//
// Kernel reference (6.12): ioas.c iommufd_ioas_iova_ranges(),
// iommufd_ioas_load_iovas(), iommufd_ioas_allow_iovas(),
// iommufd_option_rlimit_mode(), iommufd_ioas_option(); io_pagetable.c
// iopt_set_allow_iova(), iopt_reserve_iova(), iopt_alloc_iova(),
// iopt_calculate_iova_alignment(), iopt_disable_large_pages(); main.c
// iommufd_option(); vfio_compat.c iommufd_vfio_ioas(); lib/interval_tree.c
// span iteration (touching and overlapping nodes form one span).
#include <catch2/catch.hpp>

#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <cstring>
#include <memory>
#include <vector>

#include "core/access.h"
#include "core/ioas.h"
#include "test_support.h"

// Found by ADL for the global uapi struct, so it lives in the global namespace.
static bool operator==(const iommu_iova_range& a, const iommu_iova_range& b)
{
    return a.start == b.start && a.last == b.last;
}

namespace {

using namespace ioasid;
using test::alloc_ok;
using test::Client;
using test::destroy_access;
using test::make_access;
using test::vfio_ioas;
using test::kArrayAddr;
using test::kArrayRegion;
using test::kBufferAddr;
using test::kStructAddr;
using test::kStructRegion;

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kMax = UINT64_MAX;
constexpr std::uint64_t kArrayEnd = kArrayAddr + kArrayRegion; // unmapped from here
constexpr std::uint64_t kOutArray = kArrayAddr + 0x80000;       // IOVA_RANGES output

struct Fixture {
    core::CoreServices services;
    Client c{services, Client::make_caller(4 << 20)};
};

using Range = iommu_iova_range;

core::Ioas& ioas_of(Client& c, std::uint32_t id)
{
    auto* ioas = c.ctx().objects().find_as<core::Ioas>(id);
    REQUIRE(ioas != nullptr);
    return *ioas;
}

// A device-style reservation owned by `owner`.
int reserve(Client& c, std::uint32_t ioas, std::uint64_t first, std::uint64_t last,
            const void* owner = &kPage)
{
    std::lock_guard guard(c.ctx().lock());
    return ioas_of(c, ioas).iopt().reserve({first, last}, owner);
}

// Is any of [first, last] in the allowed list (or mapped)? iopt_reserve_iova()
// refuses exactly those ranges; the probe leaves nothing behind.
int probe_allowed(Client& c, std::uint32_t ioas, std::uint64_t first, std::uint64_t last)
{
    static const int owner = 0;
    int rc = reserve(c, ioas, first, last, &owner);
    if (rc == 0) {
        std::lock_guard guard(c.ctx().lock());
        ioas_of(c, ioas).iopt().remove_reserved(&owner);
    }
    return rc;
}

void put_ranges(Client& c, std::uint64_t at, const std::vector<Range>& ranges)
{
    c.write(at, std::as_bytes(std::span(ranges)));
}

int allow_at(Client& c, std::uint32_t ioas, std::uint32_t num, std::uint64_t ptr)
{
    iommu_ioas_allow_iovas cmd{.size = sizeof(cmd), .ioas_id = ioas, .num_iovas = num,
                               .__reserved = 0, .allowed_iovas = ptr};
    iommu_ioas_allow_iovas sent = cmd;
    int rc = c.ioctl(IOMMU_IOAS_ALLOW_IOVAS, cmd);
    CHECK(std::memcmp(&cmd, &sent, sizeof(cmd)) == 0); // never written back
    return rc;
}

int allow(Client& c, std::uint32_t ioas, const std::vector<Range>& ranges)
{
    if (!ranges.empty())
        put_ranges(c, kArrayAddr, ranges);
    return allow_at(c, ioas, static_cast<std::uint32_t>(ranges.size()), kArrayAddr);
}

struct RangesResult {
    int rc;
    iommu_ioas_iova_ranges cmd;
};

RangesResult iova_ranges(Client& c, std::uint32_t ioas, std::uint32_t num, std::uint64_t ptr)
{
    iommu_ioas_iova_ranges cmd{.size = sizeof(cmd), .ioas_id = ioas, .num_iovas = num,
                               .__reserved = 0, .allowed_iovas = ptr, .out_iova_alignment = 0x77};
    int rc = c.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd);
    return {rc, cmd};
}

// All usable ranges (asserting the call works).
std::vector<Range> usable(Client& c, std::uint32_t ioas)
{
    constexpr std::uint32_t kRoom = 64;
    auto r = iova_ranges(c, ioas, kRoom, kOutArray);
    REQUIRE(r.rc == 0);
    REQUIRE(r.cmd.num_iovas <= kRoom);
    std::vector<Range> out(r.cmd.num_iovas);
    c.read(kOutArray, std::as_writable_bytes(std::span(out)));
    return out;
}

std::uint64_t alignment(Client& c, std::uint32_t ioas)
{
    auto r = iova_ranges(c, ioas, 64, kOutArray);
    REQUIRE(r.rc == 0);
    return r.cmd.out_iova_alignment;
}

int option(Client& c, std::uint32_t option_id, std::uint16_t op, std::uint32_t object_id,
           std::uint64_t* val64)
{
    iommu_option cmd{.size = sizeof(cmd), .option_id = option_id, .op = op, .__reserved = 0,
                     .object_id = object_id, .val64 = *val64};
    int rc = c.ioctl(IOMMU_OPTION, cmd);
    *val64 = cmd.val64;
    return rc;
}

std::uint64_t huge_pages(Client& c, std::uint32_t ioas)
{
    std::uint64_t v = 0x77;
    REQUIRE(option(c, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas, &v) == 0);
    return v;
}

int set_huge_pages(Client& c, std::uint32_t ioas, std::uint64_t value)
{
    return option(c, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, &value);
}

std::uint64_t rlimit_mode(Client& c)
{
    std::uint64_t v = 0x77;
    REQUIRE(option(c, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, &v) == 0);
    return v;
}

int set_rlimit_mode(Client& c, std::uint64_t value)
{
    return option(c, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &value);
}

} // namespace

namespace Catch {
template <>
struct StringMaker<iommu_iova_range> {
    static std::string convert(const iommu_iova_range& r)
    {
        char buf[64];
        std::snprintf(buf, sizeof(buf), "[%#llx, %#llx]", static_cast<unsigned long long>(r.start),
                      static_cast<unsigned long long>(r.last));
        return buf;
    }
};
} // namespace Catch

// ---------------------------------------------------------------------------
// IOMMU_IOAS_IOVA_RANGES

TEST_CASE("IOVA_RANGES of a fresh IOAS is the whole space, alignment 1", "[dispatch][iova_ranges]")
{
    Fixture f;
    const std::uint32_t ioas = alloc_ok(f.c);
    std::vector<Range> canary(4, Range{0xa5a5, 0x5a5a});
    put_ranges(f.c, kOutArray, canary);

    auto r = iova_ranges(f.c, ioas, 4, kOutArray);
    CHECK(r.rc == 0);
    CHECK(r.cmd.num_iovas == 1);
    CHECK(r.cmd.out_iova_alignment == 1);
    std::vector<Range> out(4);
    f.c.read(kOutArray, std::as_writable_bytes(std::span(out)));
    CHECK(out[0] == Range{0, kMax});
    CHECK(out[1] == canary[1]);
    CHECK(out[3] == canary[3]);

    // Mappings and allowed ranges do not change the answer.
    REQUIRE(f.c.map_fixed(ioas, kBufferAddr, kPage, 0x100000) == 0);
    REQUIRE(allow(f.c, ioas, {{0x1000000, 0x1ffffff}}) == 0);
    CHECK(usable(f.c, ioas) == std::vector<Range>{{0, kMax}});
}

TEST_CASE("IOVA_RANGES with too small an array is EMSGSIZE after the write-back",
          "[dispatch][iova_ranges]")
{
    Fixture f;
    const std::uint32_t ioas = alloc_ok(f.c);

    SECTION("num_iovas 0, NULL array")
    {
        auto r = iova_ranges(f.c, ioas, 0, 0);
        CHECK(r.rc == -EMSGSIZE);
        CHECK(r.cmd.num_iovas == 1);
        CHECK(r.cmd.out_iova_alignment == 1);
    }
    SECTION("num_iovas 0, unmapped array: nothing is written there")
    {
        auto r = iova_ranges(f.c, ioas, 0, 0x30000);
        CHECK(r.rc == -EMSGSIZE);
        CHECK(r.cmd.num_iovas == 1);
    }
    SECTION("partial fill writes exactly num_iovas entries")
    {
        REQUIRE(reserve(f.c, ioas, 0x1000, 0x1fff) == 0);
        REQUIRE(reserve(f.c, ioas, 0x10000, 0x1ffff) == 0);
        const std::vector<Range> all{{0, 0xfff}, {0x2000, 0xffff}, {0x20000, kMax}};
        const Range canary{0xa5a5a5a5, 0x5a5a5a5a};
        for (std::uint32_t room = 0; room <= 5; ++room) {
            CAPTURE(room);
            put_ranges(f.c, kOutArray, std::vector<Range>(6, canary));
            auto r = iova_ranges(f.c, ioas, room, kOutArray);
            CHECK(r.rc == (room < 3 ? -EMSGSIZE : 0));
            CHECK(r.cmd.num_iovas == 3);
            CHECK(r.cmd.out_iova_alignment == 1);
            std::vector<Range> out(6);
            f.c.read(kOutArray, std::as_writable_bytes(std::span(out)));
            for (std::uint32_t i = 0; i < 6; ++i) {
                CAPTURE(i);
                CHECK(out[i] == (i < room && i < 3 ? all[i] : canary));
            }
        }
    }
}

TEST_CASE("IOVA_RANGES errors", "[dispatch][iova_ranges]")
{
    Fixture f;
    const std::uint32_t ioas = alloc_ok(f.c);
    const std::uint32_t access = make_access(f.c, ioas);

    SECTION("no such IOAS -> ENOENT, nothing written back")
    {
        for (std::uint32_t id : {0u, 99u, access}) {
            CAPTURE(id);
            auto r = iova_ranges(f.c, id, 4, kOutArray);
            CHECK(r.rc == -ENOENT);
            CHECK(r.cmd.num_iovas == 4);
            CHECK(r.cmd.out_iova_alignment == 0x77);
        }
    }
    SECTION("__reserved -> EOPNOTSUPP")
    {
        iommu_ioas_iova_ranges cmd{.size = sizeof(cmd), .ioas_id = ioas, .num_iovas = 4,
                                   .__reserved = 1, .allowed_iovas = kOutArray,
                                   .out_iova_alignment = 0x77};
        CHECK(f.c.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd) == -EOPNOTSUPP);
        CHECK(cmd.num_iovas == 4);
    }
    SECTION("unmapped array -> EFAULT, struct not written back")
    {
        for (std::uint64_t ptr : {std::uint64_t{0}, std::uint64_t{0x30000}, kArrayEnd - 8}) {
            CAPTURE(ptr);
            auto r = iova_ranges(f.c, ioas, 1, ptr);
            CHECK(r.rc == -EFAULT);
            CHECK(r.cmd.num_iovas == 1);
            CHECK(r.cmd.out_iova_alignment == 0x77);
        }
    }
    SECTION("fault on the second entry -> EFAULT after the first was written")
    {
        REQUIRE(reserve(f.c, ioas, 0x1000, 0x1fff) == 0);
        const std::uint64_t ptr = kArrayEnd - sizeof(Range);
        put_ranges(f.c, ptr, {{0xa5, 0xa5}});
        auto r = iova_ranges(f.c, ioas, 2, ptr);
        CHECK(r.rc == -EFAULT);
        CHECK(r.cmd.num_iovas == 2);
        CHECK(r.cmd.out_iova_alignment == 0x77);
        Range first;
        f.c.read(ptr, std::as_writable_bytes(std::span(&first, 1)));
        CHECK(first == Range{0, 0xfff});
    }
}

TEST_CASE("IOVA_RANGES lists the holes of the reserved set in order", "[dispatch][iova_ranges]")
{
    Fixture f;
    const std::uint32_t ioas = alloc_ok(f.c);

    SECTION("disjoint, added out of order")
    {
        REQUIRE(reserve(f.c, ioas, 0x10000, 0x1ffff) == 0);
        REQUIRE(reserve(f.c, ioas, 0x1000, 0x1fff) == 0);
        CHECK(usable(f.c, ioas) ==
              std::vector<Range>{{0, 0xfff}, {0x2000, 0xffff}, {0x20000, kMax}});
    }
    SECTION("touching ranges merge")
    {
        REQUIRE(reserve(f.c, ioas, 0x2000, 0x2fff) == 0);
        REQUIRE(reserve(f.c, ioas, 0x1000, 0x1fff) == 0);
        REQUIRE(reserve(f.c, ioas, 0x3000, 0x3000) == 0);
        CHECK(usable(f.c, ioas) == std::vector<Range>{{0, 0xfff}, {0x3001, kMax}});
    }
    SECTION("overlapping, nested and same-start ranges merge")
    {
        REQUIRE(reserve(f.c, ioas, 0x10000, 0x1ffff) == 0);
        REQUIRE(reserve(f.c, ioas, 0x18000, 0x27fff) == 0);
        REQUIRE(reserve(f.c, ioas, 0x11000, 0x12fff) == 0);
        REQUIRE(reserve(f.c, ioas, 0x10000, 0x10fff) == 0);
        REQUIRE(reserve(f.c, ioas, 0x40000, 0x4ffff) == 0);
        REQUIRE(reserve(f.c, ioas, 0x41000, 0x41fff) == 0);
        CHECK(usable(f.c, ioas) ==
              std::vector<Range>{{0, 0xffff}, {0x28000, 0x3ffff}, {0x50000, kMax}});
    }
    SECTION("a reservation from 0 and one reaching UINT64_MAX")
    {
        REQUIRE(reserve(f.c, ioas, 0, 0xfff) == 0);
        REQUIRE(reserve(f.c, ioas, 0xffff000000000000, kMax) == 0);
        CHECK(usable(f.c, ioas) == std::vector<Range>{{0x1000, 0xfffeffffffffffff}});
    }
    SECTION("only the top byte reserved")
    {
        REQUIRE(reserve(f.c, ioas, kMax, kMax) == 0);
        CHECK(usable(f.c, ioas) == std::vector<Range>{{0, kMax - 1}});
    }
    SECTION("everything reserved: no range, and num_iovas 0 is then enough")
    {
        REQUIRE(reserve(f.c, ioas, 0x100, 0xffff) == 0);
        REQUIRE(reserve(f.c, ioas, 0, kMax) == 0);
        CHECK(usable(f.c, ioas).empty());
        auto r = iova_ranges(f.c, ioas, 0, 0);
        CHECK(r.rc == 0);
        CHECK(r.cmd.num_iovas == 0);
    }
    SECTION("removing an owner's reservations brings the holes back")
    {
        static const int owner = 0;
        REQUIRE(reserve(f.c, ioas, 0x1000, 0x1fff, &owner) == 0);
        REQUIRE(reserve(f.c, ioas, 0x5000, 0x5fff) == 0);
        {
            std::lock_guard guard(f.c.ctx().lock());
            ioas_of(f.c, ioas).iopt().remove_reserved(&owner);
        }
        CHECK(usable(f.c, ioas) == std::vector<Range>{{0, 0x4fff}, {0x6000, kMax}});
    }
}

// ---------------------------------------------------------------------------
// IOMMU_IOAS_ALLOW_IOVAS

TEST_CASE("ALLOW_IOVAS replaces the allowed list; num_iovas 0 clears it", "[dispatch][allow_iovas]")
{
    Fixture f;
    const std::uint32_t ioas = alloc_ok(f.c);
    CHECK(probe_allowed(f.c, ioas, 0, kMax) == 0); // nothing allowed yet

    REQUIRE(allow(f.c, ioas, {{0x100000, 0x1fffff}}) == 0);
    CHECK(probe_allowed(f.c, ioas, 0x1fffff, 0x200000) == -EADDRINUSE);
    CHECK(probe_allowed(f.c, ioas, 0x200000, 0x2fffff) == 0);
    CHECK(probe_allowed(f.c, ioas, 0, 0xfffff) == 0);

    REQUIRE(allow(f.c, ioas, {{0x800000, 0x8fffff}, {0x400000, 0x4fffff}}) == 0);
    CHECK(probe_allowed(f.c, ioas, 0x100000, 0x1fffff) == 0); // old list gone
    CHECK(probe_allowed(f.c, ioas, 0x400000, 0x400000) == -EADDRINUSE);
    CHECK(probe_allowed(f.c, ioas, 0x8fffff, 0x8fffff) == -EADDRINUSE);
    CHECK(probe_allowed(f.c, ioas, 0x500000, 0x7fffff) == 0);

    SECTION("num_iovas 0 clears, whatever the pointer")
    {
        CHECK(allow_at(f.c, ioas, 0, 0) == 0);
        CHECK(probe_allowed(f.c, ioas, 0, kMax) == 0);
    }
    SECTION("touching ranges are fine")
    {
        CHECK(allow(f.c, ioas, {{0x1000, 0x1fff}, {0x2000, 0x2fff}}) == 0);
        CHECK(probe_allowed(f.c, ioas, 0x1fff, 0x2000) == -EADDRINUSE);
        CHECK(probe_allowed(f.c, ioas, 0x400000, 0x400000) == 0);
    }
    SECTION("only the IOAS named changes")
    {
        const std::uint32_t other = alloc_ok(f.c);
        CHECK(allow(f.c, other, {{0x100000, 0x1fffff}}) == 0);
        CHECK(probe_allowed(f.c, ioas, 0x100000, 0x1fffff) == 0);
        CHECK(probe_allowed(f.c, ioas, 0x400000, 0x400000) == -EADDRINUSE);
    }
}

TEST_CASE("ALLOW_IOVAS rejects bad ranges with EINVAL and keeps the old list", "[dispatch][allow_iovas]")
{
    Fixture f;
    const std::uint32_t ioas = alloc_ok(f.c);
    REQUIRE(allow(f.c, ioas, {{0x40000000, 0x4fffffff}}) == 0);

    SECTION("start >= last, including single-byte ranges")
    {
        for (Range bad : {Range{5, 4}, Range{0x1000, 0x1000}, Range{0, 0}, Range{kMax, kMax},
                          Range{kMax, 0}}) {
            CAPTURE(bad);
            CHECK(allow(f.c, ioas, {bad}) == -EINVAL);
            CHECK(allow(f.c, ioas, {{0x1000, 0x1fff}, bad}) == -EINVAL);
        }
    }
    SECTION("overlap within the list")
    {
        CHECK(allow(f.c, ioas, {{0x1000, 0x1fff}, {0x1800, 0x2fff}}) == -EINVAL);
        CHECK(allow(f.c, ioas, {{0x1000, 0x1fff}, {0x1000, 0x1fff}}) == -EINVAL);
        CHECK(allow(f.c, ioas, {{0x10000, 0x1ffff}, {0, 0xfffff}}) == -EINVAL);
        CHECK(allow(f.c, ioas, {{0x10000, 0x1ffff}, {0x1ffff, 0x2ffff}}) == -EINVAL);
        CHECK(allow(f.c, ioas, {{0x10000, 0x1ffff}, {0x30000, 0x3ffff}, {0x1f000, 0x20000}}) ==
              -EINVAL);
        CHECK(allow(f.c, ioas, {{0x30000, 0x3ffff}, {0x10000, 0x1ffff}, {0x12000, 0x12fff}}) ==
              -EINVAL);
    }
    // Nothing of the rejected lists was applied.
    CHECK(probe_allowed(f.c, ioas, 0x40000000, 0x40000000) == -EADDRINUSE);
    CHECK(probe_allowed(f.c, ioas, 0, 0x3fffffff) == 0);
}

TEST_CASE("ALLOW_IOVAS intersecting a reserved range is EADDRINUSE and keeps the old list",
          "[dispatch][allow_iovas]")
{
    Fixture f;
    const std::uint32_t ioas = alloc_ok(f.c);
    REQUIRE(reserve(f.c, ioas, 4 * kPage, 104 * kPage - 1) == 0);
    const Range old_range{200 * kPage, 600 * kPage - 1};
    REQUIRE(allow(f.c, ioas, {old_range}) == 0);

    SECTION("single range")
    {
        CHECK(allow(f.c, ioas, {{kPage, 600 * kPage}}) == -EADDRINUSE);
    }
    SECTION("the second range intersects: the first is not applied either")
    {
        CHECK(allow(f.c, ioas, {{0x10000000, 0x1fffffff}, {103 * kPage, 150 * kPage}}) ==
              -EADDRINUSE);
        CHECK(probe_allowed(f.c, ioas, 0x10000000, 0x1fffffff) == 0);
    }
    SECTION("touching a reserved range is fine")
    {
        CHECK(allow(f.c, ioas, {{104 * kPage, 150 * kPage}}) == 0);
        CHECK(probe_allowed(f.c, ioas, old_range.start, old_range.last) == 0);
        return;
    }
    // The old list still steers automatic placement.
    CHECK(probe_allowed(f.c, ioas, old_range.start, old_range.start) == -EADDRINUSE);
    for (int i = 1; i <= 10; ++i) {
        CAPTURE(i);
        const std::uint64_t length = kPage * static_cast<std::uint64_t>(i);
        std::uint64_t iova = 0;
        REQUIRE(f.c.map(ioas, kBufferAddr, length, &iova) == 0);
        CHECK(iova >= old_range.start);
        CHECK(iova + length - 1 <= old_range.last);
    }
}

TEST_CASE("ALLOW_IOVAS reads the array like the kernel: in order, EFAULT where it faults",
          "[dispatch][allow_iovas]")
{
    Fixture f;
    const std::uint32_t ioas = alloc_ok(f.c);
    REQUIRE(allow(f.c, ioas, {{0x40000000, 0x4fffffff}}) == 0);
    const Range good{0x1000, 0x1fff};

    SECTION("bad pointers")
    {
        CHECK(allow_at(f.c, ioas, 1, 0) == -EFAULT);
        CHECK(allow_at(f.c, ioas, 1, 0x30000) == -EFAULT);
        CHECK(allow_at(f.c, ioas, 1, kArrayEnd - 8) == -EFAULT);
    }
    SECTION("a bad IOAS is found before the array is read")
    {
        CHECK(allow_at(f.c, 99, 1, 0x30000) == -ENOENT);
        CHECK(allow_at(f.c, 0, 1, kArrayAddr) == -ENOENT);
    }
    SECTION("valid element, then an unreadable one -> EFAULT")
    {
        put_ranges(f.c, kArrayEnd - sizeof(Range), {good});
        CHECK(allow_at(f.c, ioas, 2, kArrayEnd - sizeof(Range)) == -EFAULT);
    }
    SECTION("invalid element before an unreadable one -> EINVAL")
    {
        put_ranges(f.c, kArrayEnd - sizeof(Range), {{0x2000, 0x1000}});
        CHECK(allow_at(f.c, ioas, 2, kArrayEnd - sizeof(Range)) == -EINVAL);
    }
    SECTION("overlap before an unreadable element -> EINVAL")
    {
        put_ranges(f.c, kArrayEnd - 2 * sizeof(Range), {good, good});
        CHECK(allow_at(f.c, ioas, 3, kArrayEnd - 2 * sizeof(Range)) == -EINVAL);
    }
    SECTION("hundreds of elements: the invalid last readable one still wins over the fault")
    {
        std::vector<Range> many;
        for (std::uint64_t i = 0; i < 300; ++i)
            many.push_back({0x100000 * (i + 1), 0x100000 * (i + 1) + 0xfff});
        many.push_back({7, 7});
        const std::uint64_t at = kArrayEnd - many.size() * sizeof(Range);
        put_ranges(f.c, at, many);
        CHECK(allow_at(f.c, ioas, static_cast<std::uint32_t>(many.size() + 5), at) == -EINVAL);
        many.back() = {0x80000000, 0x8fffffff};
        put_ranges(f.c, at, many);
        CHECK(allow_at(f.c, ioas, static_cast<std::uint32_t>(many.size() + 5), at) == -EFAULT);
        // All readable and valid: accepted.
        CHECK(allow_at(f.c, ioas, static_cast<std::uint32_t>(many.size()), at) == 0);
        CHECK(probe_allowed(f.c, ioas, 0x80000000, 0x80000000) == -EADDRINUSE);
        CHECK(probe_allowed(f.c, ioas, 0x300000, 0x300fff) == -EADDRINUSE);
        CHECK(probe_allowed(f.c, ioas, 0x301000, 0x3fffff) == 0);
        return;
    }
    // Failed calls left the old list in place.
    CHECK(probe_allowed(f.c, ioas, 0x40000000, 0x40000000) == -EADDRINUSE);
    CHECK(probe_allowed(f.c, ioas, 0x1000, 0x1fff) == 0);
}

TEST_CASE("ALLOW_IOVAS steers automatic MAP only; FIXED maps ignore it", "[dispatch][allow_iovas]")
{
    Fixture f;
    const std::uint32_t ioas = alloc_ok(f.c);
    REQUIRE(allow(f.c, ioas, {{0x100000, 0x1fffff}, {0x10000, 0x1ffff}}) == 0);

    // uptr 0x10000000 and length 0x10000 ask for 64 KiB alignment; the
    // allowed spans are searched lowest first.
    std::uint64_t iova = 0;
    REQUIRE(f.c.map(ioas, kBufferAddr, 0x10000, &iova) == 0);
    CHECK(iova == 0x10000);
    REQUIRE(f.c.map(ioas, kBufferAddr, 0x10000, &iova) == 0);
    CHECK(iova == 0x100000);
    REQUIRE(f.c.map(ioas, kBufferAddr, 0x10000, &iova) == 0);
    CHECK(iova == 0x110000);

    // A 2 MiB-aligned 2 MiB block fits in no allowed span, though plenty
    // of space is free outside them.
    CHECK(f.c.map(ioas, kBufferAddr, 0x200000, &iova) == -ENOSPC);

    // FIXED: outside every allowed range is fine.
    CHECK(f.c.map_fixed(ioas, kBufferAddr, 0x200000, 0x40000000) == 0);
    CHECK(f.c.map_fixed(ioas, kBufferAddr, kPage, 0x1000) == 0);

    // Clearing the list opens the default window again.
    REQUIRE(allow(f.c, ioas, {}) == 0);
    CHECK(f.c.map(ioas, kBufferAddr, 0x200000, &iova) == 0);
    CHECK(iova % 0x200000 == 0);
    CHECK((iova < 0x100000 || iova > 0x1fffff));
}

TEST_CASE("automatic placement clips allowed ranges to [PAGE_SIZE, ULONG_MAX - PAGE_SIZE]",
          "[dispatch][allow_iovas]")
{
    Fixture f;
    const std::uint32_t ioas = alloc_ok(f.c);
    std::uint64_t iova = 0;

    SECTION("bottom: IOVA 0 is never handed out")
    {
        REQUIRE(allow(f.c, ioas, {{0, 0x1fff}}) == 0);
        REQUIRE(f.c.map(ioas, kBufferAddr, kPage, &iova) == 0);
        CHECK(iova == 0x1000);
        CHECK(f.c.map(ioas, kBufferAddr, kPage, &iova) == -ENOSPC);
        // FIXED may still use IOVA 0.
        CHECK(f.c.map_fixed(ioas, kBufferAddr, kPage, 0) == 0);
    }
    SECTION("top: the last page is never handed out")
    {
        REQUIRE(allow(f.c, ioas, {{kMax - 0x1fff, kMax}}) == 0);
        REQUIRE(f.c.map(ioas, kBufferAddr, kPage, &iova) == 0);
        CHECK(iova == kMax - 0x1fff);
        CHECK(f.c.map(ioas, kBufferAddr, kPage, &iova) == -ENOSPC);
    }
    SECTION("an allowed list that overlaps existing areas is accepted")
    {
        REQUIRE(f.c.map_fixed(ioas, kBufferAddr, 2 * kPage, 0x100000) == 0);
        CHECK(allow(f.c, ioas, {{0x101000, 0x1fffff}}) == 0);
        REQUIRE(f.c.map(ioas, kBufferAddr, kPage, &iova) == 0);
        CHECK(iova == 0x102000);
    }
}

TEST_CASE("reserving IOVA that intersects an allowed range or an area is EADDRINUSE",
          "[dispatch][allow_iovas]")
{
    Fixture f;
    const std::uint32_t ioas = alloc_ok(f.c);
    REQUIRE(allow(f.c, ioas, {{0x100000, 0x1fffff}}) == 0);
    REQUIRE(f.c.map_fixed(ioas, kBufferAddr, 2 * kPage, 0x800000) == 0);

    CHECK(reserve(f.c, ioas, 0x1ff000, 0x200fff) == -EADDRINUSE);
    CHECK(reserve(f.c, ioas, 0, kMax) == -EADDRINUSE);
    CHECK(reserve(f.c, ioas, 0x801fff, 0x802000) == -EADDRINUSE);
    // Nothing was reserved by the refusals.
    CHECK(usable(f.c, ioas) == std::vector<Range>{{0, kMax}});
    // Touching is fine.
    CHECK(reserve(f.c, ioas, 0x200000, 0x7fffff) == 0);
    CHECK(reserve(f.c, ioas, 0x802000, 0x802fff) == 0);
    CHECK(usable(f.c, ioas) ==
          std::vector<Range>{{0, 0x1fffff}, {0x800000, 0x801fff}, {0x803000, kMax}});
}

// ---------------------------------------------------------------------------
// IOMMU_OPTION

TEST_CASE("OPTION RLIMIT_MODE get and set", "[dispatch][option]")
{
    Fixture f;
    CHECK(rlimit_mode(f.c) == 0);

    SECTION("set 1, then 0")
    {
        CHECK(set_rlimit_mode(f.c, 1) == 0);
        CHECK(rlimit_mode(f.c) == 1);
        CHECK(set_rlimit_mode(f.c, 0) == 0);
        CHECK(rlimit_mode(f.c) == 0);
    }
    SECTION("values other than 0 and 1 -> EINVAL, mode unchanged")
    {
        REQUIRE(set_rlimit_mode(f.c, 1) == 0);
        for (std::uint64_t v : {std::uint64_t{2}, std::uint64_t{0x100000000}, kMax}) {
            CAPTURE(v);
            CHECK(set_rlimit_mode(f.c, v) == -EINVAL);
        }
        CHECK(rlimit_mode(f.c) == 1);
    }
    SECTION("object_id != 0 -> EOPNOTSUPP")
    {
        std::uint64_t v = 1;
        CHECK(option(f.c, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 1, &v) == -EOPNOTSUPP);
        CHECK(v == 1);
        CHECK(option(f.c, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 1, &v) == -EOPNOTSUPP);
        CHECK(rlimit_mode(f.c) == 0);
    }
    SECTION("unknown op -> EOPNOTSUPP")
    {
        for (std::uint16_t op : {std::uint16_t{2}, std::uint16_t{0xffff}}) {
            std::uint64_t v = 1;
            CHECK(option(f.c, IOMMU_OPTION_RLIMIT_MODE, op, 0, &v) == -EOPNOTSUPP);
        }
        CHECK(rlimit_mode(f.c) == 0);
    }
    SECTION("set without CAP_SYS_RESOURCE -> EPERM, checked before the value; get still works")
    {
        f.c.buffer().set_capable(memory::Capability::sys_resource, false);
        CHECK(set_rlimit_mode(f.c, 1) == -EPERM);
        CHECK(set_rlimit_mode(f.c, 2) == -EPERM);
        CHECK(rlimit_mode(f.c) == 0);
    }
}

TEST_CASE("OPTION RLIMIT_MODE set needs a context without objects", "[dispatch][option]")
{
    Fixture f;
    const std::uint32_t ioas = alloc_ok(f.c);

    CHECK(set_rlimit_mode(f.c, 1) == -EBUSY);
    CHECK(set_rlimit_mode(f.c, 2) == -EBUSY); // EBUSY is checked before the value
    CHECK(rlimit_mode(f.c) == 0);

    SECTION("no capability is checked before EBUSY")
    {
        f.c.buffer().set_capable(memory::Capability::sys_resource, false);
        CHECK(set_rlimit_mode(f.c, 1) == -EPERM);
    }
    SECTION("an access counts as an object")
    {
        const std::uint32_t access = make_access(f.c, ioas);
        CHECK(set_rlimit_mode(f.c, 1) == -EBUSY);
        REQUIRE(destroy_access(f.c, access) == 0);
        CHECK(set_rlimit_mode(f.c, 1) == -EBUSY);
    }
    SECTION("once empty again it works")
    {
        REQUIRE(f.c.destroy(ioas) == 0);
        CHECK(set_rlimit_mode(f.c, 1) == 0);
        CHECK(rlimit_mode(f.c) == 1);
    }
    SECTION("an id held by an object under construction counts too")
    {
        REQUIRE(f.c.destroy(ioas) == 0);
        {
            auto pending = core::ioas_alloc(f.c.ctx());
            REQUIRE(pending.id() == 1);
            CHECK(set_rlimit_mode(f.c, 1) == -EBUSY);
        }
        CHECK(set_rlimit_mode(f.c, 1) == 0);
    }
}

TEST_CASE("OPTION HUGE_PAGES get/set and the IOVA alignment", "[dispatch][option]")
{
    Fixture f;
    const std::uint32_t ioas = alloc_ok(f.c);
    const std::uint32_t other = alloc_ok(f.c);

    CHECK(huge_pages(f.c, ioas) == 1);
    CHECK(alignment(f.c, ioas) == 1);

    SECTION("set 0: alignment becomes PAGE_SIZE; set 1 restores it")
    {
        CHECK(set_huge_pages(f.c, ioas, 0) == 0);
        CHECK(huge_pages(f.c, ioas) == 0);
        CHECK(alignment(f.c, ioas) == kPage);
        CHECK(set_huge_pages(f.c, ioas, 0) == 0); // already off
        CHECK(alignment(f.c, ioas) == kPage);
        // Other IOASes are not affected.
        CHECK(huge_pages(f.c, other) == 1);
        CHECK(alignment(f.c, other) == 1);

        // The new alignment applies to MAP.
        std::uint64_t iova = 0;
        CHECK(f.c.map(ioas, kBufferAddr, kPage + 1, &iova) == -EINVAL);
        CHECK(f.c.map_fixed(ioas, kBufferAddr, kPage, 0x100800) == -EINVAL);
        CHECK(f.c.map_fixed(ioas, kBufferAddr, kPage, 0x100000) == 0);

        CHECK(set_huge_pages(f.c, ioas, 1) == 0);
        CHECK(huge_pages(f.c, ioas) == 1);
        CHECK(alignment(f.c, ioas) == 1);
        CHECK(f.c.map(ioas, kBufferAddr, kPage + 1, &iova) == 0);
    }
    SECTION("set 0 with aligned areas works")
    {
        REQUIRE(f.c.map_fixed(ioas, kBufferAddr, kPage, 0x100000) == 0);
        CHECK(set_huge_pages(f.c, ioas, 0) == 0);
        CHECK(alignment(f.c, ioas) == kPage);
    }
    SECTION("set 0 with an unaligned area -> EADDRINUSE, nothing changes")
    {
        const int which = GENERATE(0, 1, 2);
        CAPTURE(which);
        std::uint64_t iova = 0;
        if (which == 0) // sub-page offset in the user VA
            REQUIRE(f.c.map(ioas, kBufferAddr + 1, 0x100, &iova) == 0);
        else if (which == 1) // length not a page multiple
            REQUIRE(f.c.map_fixed(ioas, kBufferAddr, 0x800, 0x100000) == 0);
        else // IOVA not page aligned
            REQUIRE(f.c.map_fixed(ioas, kBufferAddr, kPage, 0x100800) == 0);
        CHECK(set_huge_pages(f.c, ioas, 0) == -EADDRINUSE);
        CHECK(huge_pages(f.c, ioas) == 1);
        CHECK(alignment(f.c, ioas) == 1);
        // Once the area is gone it works.
        std::uint64_t unmapped = 0;
        REQUIRE(f.c.unmap(ioas, 0, kMax, &unmapped) == 0);
        CHECK(set_huge_pages(f.c, ioas, 0) == 0);
        CHECK(alignment(f.c, ioas) == kPage);
    }
    SECTION("values other than 0 and 1 -> EINVAL")
    {
        for (std::uint64_t v : {std::uint64_t{2}, std::uint64_t{0x100000000}, kMax}) {
            CAPTURE(v);
            CHECK(set_huge_pages(f.c, ioas, v) == -EINVAL);
        }
        CHECK(huge_pages(f.c, ioas) == 1);
        REQUIRE(set_huge_pages(f.c, ioas, 0) == 0);
        CHECK(set_huge_pages(f.c, ioas, 2) == -EINVAL);
        CHECK(huge_pages(f.c, ioas) == 0);
    }
    SECTION("an access's alignment outranks HUGE_PAGES=1")
    {
        const std::uint32_t access = make_access(f.c, ioas, kPage);
        CHECK(alignment(f.c, ioas) == kPage);
        CHECK(set_huge_pages(f.c, ioas, 0) == 0);
        CHECK(set_huge_pages(f.c, ioas, 1) == 0);
        CHECK(huge_pages(f.c, ioas) == 1);
        CHECK(alignment(f.c, ioas) == kPage);
        REQUIRE(destroy_access(f.c, access) == 0);
        CHECK(alignment(f.c, ioas) == 1);
    }
}

TEST_CASE("OPTION HUGE_PAGES errors", "[dispatch][option]")
{
    Fixture f;
    const std::uint32_t ioas = alloc_ok(f.c);
    const std::uint32_t access = make_access(f.c, ioas);

    SECTION("object 0, unknown id, or not an IOAS -> ENOENT")
    {
        for (std::uint32_t id : {0u, 99u, access}) {
            CAPTURE(id);
            std::uint64_t v = 0x77;
            CHECK(option(f.c, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, id, &v) == -ENOENT);
            CHECK(v == 0x77);
            v = 0;
            CHECK(option(f.c, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, id, &v) == -ENOENT);
        }
    }
    SECTION("unknown op -> EOPNOTSUPP, but the IOAS is looked up first")
    {
        std::uint64_t v = 0;
        CHECK(option(f.c, IOMMU_OPTION_HUGE_PAGES, 2, ioas, &v) == -EOPNOTSUPP);
        CHECK(option(f.c, IOMMU_OPTION_HUGE_PAGES, 0xffff, ioas, &v) == -EOPNOTSUPP);
        CHECK(option(f.c, IOMMU_OPTION_HUGE_PAGES, 2, 99, &v) == -ENOENT);
        CHECK(huge_pages(f.c, ioas) == 1);
    }
    SECTION("unknown option_id -> EOPNOTSUPP")
    {
        for (std::uint32_t id : {2u, 3u, 0xffffffffu}) {
            CAPTURE(id);
            std::uint64_t v = 0x77;
            CHECK(option(f.c, id, IOMMU_OPTION_OP_GET, 0, &v) == -EOPNOTSUPP);
            CHECK(option(f.c, id, IOMMU_OPTION_OP_GET, ioas, &v) == -EOPNOTSUPP);
            CHECK(v == 0x77);
        }
    }
    SECTION("__reserved -> EOPNOTSUPP")
    {
        iommu_option cmd{.size = sizeof(cmd), .option_id = IOMMU_OPTION_HUGE_PAGES,
                         .op = IOMMU_OPTION_OP_SET, .__reserved = 1, .object_id = ioas, .val64 = 0};
        CHECK(f.c.ioctl(IOMMU_OPTION, cmd) == -EOPNOTSUPP);
        CHECK(huge_pages(f.c, ioas) == 1);
    }
}

// ---------------------------------------------------------------------------
// IOMMU_VFIO_IOAS

TEST_CASE("VFIO_IOAS get, set, clear", "[dispatch][vfio_ioas]")
{
    Fixture f;
    std::uint32_t id = 0x55;
    CHECK(vfio_ioas(f.c, IOMMU_VFIO_IOAS_GET, &id) == -ENODEV);
    CHECK(id == 0x55); // nothing written back

    const std::uint32_t a = alloc_ok(f.c);
    const std::uint32_t b = alloc_ok(f.c);
    const std::uint32_t access = make_access(f.c, a);
    CHECK(vfio_ioas(f.c, IOMMU_VFIO_IOAS_GET, &id) == -ENODEV); // not auto-created

    SECTION("SET of something that is not an IOAS -> ENOENT")
    {
        for (std::uint32_t bad : {0u, 99u, access}) {
            CAPTURE(bad);
            id = bad;
            CHECK(vfio_ioas(f.c, IOMMU_VFIO_IOAS_SET, &id) == -ENOENT);
        }
        CHECK(vfio_ioas(f.c, IOMMU_VFIO_IOAS_GET, &id) == -ENODEV);
    }
    SECTION("SET then GET; SET replaces; a failed SET keeps the old one")
    {
        id = b;
        CHECK(vfio_ioas(f.c, IOMMU_VFIO_IOAS_SET, &id) == 0);
        id = 0;
        CHECK(vfio_ioas(f.c, IOMMU_VFIO_IOAS_GET, &id) == 0);
        CHECK(id == b);
        id = a;
        CHECK(vfio_ioas(f.c, IOMMU_VFIO_IOAS_SET, &id) == 0);
        id = 99;
        CHECK(vfio_ioas(f.c, IOMMU_VFIO_IOAS_SET, &id) == -ENOENT);
        id = 0;
        CHECK(vfio_ioas(f.c, IOMMU_VFIO_IOAS_GET, &id) == 0);
        CHECK(id == a);
    }
    SECTION("CLEAR unsets it and does not destroy the IOAS; CLEAR of nothing is fine")
    {
        id = b;
        REQUIRE(vfio_ioas(f.c, IOMMU_VFIO_IOAS_SET, &id) == 0);
        id = 0;
        CHECK(vfio_ioas(f.c, IOMMU_VFIO_IOAS_CLEAR, &id) == 0);
        CHECK(vfio_ioas(f.c, IOMMU_VFIO_IOAS_GET, &id) == -ENODEV);
        CHECK(vfio_ioas(f.c, IOMMU_VFIO_IOAS_CLEAR, &id) == 0);
        CHECK(alignment(f.c, b) == 1); // still there
    }
    SECTION("destroying the compat IOAS clears it")
    {
        id = b;
        REQUIRE(vfio_ioas(f.c, IOMMU_VFIO_IOAS_SET, &id) == 0);
        CHECK(f.c.destroy(b) == 0);
        CHECK(vfio_ioas(f.c, IOMMU_VFIO_IOAS_GET, &id) == -ENODEV);
        CHECK(alloc_ok(f.c) == b);
        CHECK(vfio_ioas(f.c, IOMMU_VFIO_IOAS_GET, &id) == -ENODEV);
    }
    SECTION("destroying another IOAS leaves it")
    {
        id = b;
        REQUIRE(vfio_ioas(f.c, IOMMU_VFIO_IOAS_SET, &id) == 0);
        REQUIRE(destroy_access(f.c, access) == 0);
        CHECK(f.c.destroy(a) == 0);
        id = 0;
        CHECK(vfio_ioas(f.c, IOMMU_VFIO_IOAS_GET, &id) == 0);
        CHECK(id == b);
    }
    SECTION("unknown op -> EOPNOTSUPP")
    {
        for (std::uint16_t op : {std::uint16_t{3}, std::uint16_t{0x100}, std::uint16_t{0xffff}}) {
            CAPTURE(op);
            id = a;
            CHECK(vfio_ioas(f.c, op, &id) == -EOPNOTSUPP);
        }
        CHECK(vfio_ioas(f.c, IOMMU_VFIO_IOAS_GET, &id) == -ENODEV);
    }
}
