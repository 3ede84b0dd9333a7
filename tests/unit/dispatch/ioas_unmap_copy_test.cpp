// IOMMU_IOAS_UNMAP and IOMMU_IOAS_COPY driven through the dispatcher.
// Every expectation comes from the kernel (6.12): drivers/iommu/iommufd/
// ioas.c iommufd_ioas_unmap() / iommufd_ioas_copy(), io_pagetable.c
// iopt_unmap_iova_range() / iopt_unmap_all() / iopt_get_pages() /
// iopt_map_pages() / iopt_check_iova() / iopt_insert_area(), device.c
// iommufd_access_notify_unmap() / iommufd_access_pin_pages(), and the
// selftests in tools/testing/selftests/iommu/iommufd.c (area,
// unmap_fully_contained_areas, copy_area, copy_sweep).
// x86-64: PAGE_SIZE 4096, ULONG_MAX == UINT64_MAX.
#include <catch2/catch.hpp>

#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <span>
#include <utility>
#include <vector>

#include "core/access.h"
#include "core/ioas.h"
#include "test_support.h"

using namespace ioasid;

namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kMax = UINT64_MAX; // ULONG_MAX on x86-64
constexpr std::uint32_t kR = IOMMU_IOAS_MAP_READABLE;
constexpr std::uint32_t kW = IOMMU_IOAS_MAP_WRITEABLE;
constexpr std::uint32_t kRW = kR | kW;
constexpr std::uint32_t kFixed = IOMMU_IOAS_MAP_FIXED_IOVA;
constexpr std::uint32_t kBadId = 9999;
constexpr std::uint64_t kBuf = test::kBufferAddr;

using Range = std::pair<std::uint64_t, std::uint64_t>; // [first, last]

struct Env : test::IoasFixture {
    int fixed(std::uint64_t user_va, std::uint64_t length, std::uint64_t iova,
              std::uint32_t prot = kRW, std::uint32_t id = 0)
    {
        iommu_ioas_map c{.size = sizeof(c), .flags = kFixed | prot, .ioas_id = id ? id : ioas,
                         .__reserved = 0, .user_va = user_va, .length = length, .iova = iova};
        return client.ioctl(IOMMU_IOAS_MAP, c);
    }

    // The raw struct, so that tests can see what was (not) written back.
    static iommu_ioas_unmap unmap_cmd(std::uint32_t id, std::uint64_t iova, std::uint64_t length)
    {
        return iommu_ioas_unmap{.size = sizeof(iommu_ioas_unmap), .ioas_id = id, .iova = iova,
                                .length = length};
    }
    int unmap_raw(iommu_ioas_unmap& c) { return client.ioctl(IOMMU_IOAS_UNMAP, c); }

    int unmap(std::uint64_t iova, std::uint64_t length, std::uint64_t* unmapped = nullptr,
              std::uint32_t id = 0)
    {
        return client.unmap(id ? id : ioas, iova, length, unmapped);
    }

    static iommu_ioas_copy copy_cmd(std::uint32_t flags, std::uint32_t dst, std::uint32_t src,
                                    std::uint64_t length, std::uint64_t dst_iova,
                                    std::uint64_t src_iova)
    {
        return iommu_ioas_copy{.size = sizeof(iommu_ioas_copy), .flags = flags, .dst_ioas_id = dst,
                               .src_ioas_id = src, .length = length, .dst_iova = dst_iova,
                               .src_iova = src_iova};
    }
    int copy_raw(iommu_ioas_copy& c) { return client.ioctl(IOMMU_IOAS_COPY, c); }

    // Convenience: returns rc, *dst_iova gets what was written back.
    int copy(std::uint32_t flags, std::uint32_t dst, std::uint32_t src, std::uint64_t length,
             std::uint64_t* dst_iova, std::uint64_t src_iova)
    {
        auto c = copy_cmd(flags, dst, src, length, *dst_iova, src_iova);
        int rc = copy_raw(c);
        *dst_iova = c.dst_iova;
        return rc;
    }
    int copy_fixed(std::uint32_t dst, std::uint32_t src, std::uint64_t length,
                   std::uint64_t dst_iova, std::uint64_t src_iova, std::uint32_t prot = kRW)
    {
        return copy(kFixed | prot, dst, src, length, &dst_iova, src_iova);
    }

    std::vector<Range> areas(std::uint32_t id = 0)
    {
        std::vector<Range> out;
        obj(id ? id : ioas).iopt().for_each_area(
            [&](const core::Area& a) { out.emplace_back(a.iova.first, a.iova.last); });
        return out;
    }

    int reserve(std::uint64_t first, std::uint64_t last, std::uint32_t id)
    {
        static const int owner = 0;
        return obj(id).iopt().reserve({first, last}, &owner);
    }

    int allow(std::uint64_t first, std::uint64_t last, std::uint32_t id)
    {
        iommu_iova_range r{.start = first, .last = last};
        client.write(test::kArrayAddr, std::as_bytes(std::span(&r, 1)));
        iommu_ioas_allow_iovas c{.size = sizeof(c), .ioas_id = id, .num_iovas = 1,
                                 .__reserved = 0, .allowed_iovas = test::kArrayAddr};
        return client.ioctl(IOMMU_IOAS_ALLOW_IOVAS, c);
    }

    int huge_pages(std::uint64_t value, std::uint32_t id)
    {
        iommu_option c{.size = sizeof(c), .option_id = IOMMU_OPTION_HUGE_PAGES,
                       .op = IOMMU_OPTION_OP_SET, .__reserved = 0, .object_id = id, .val64 = value};
        return client.ioctl(IOMMU_OPTION, c);
    }

    core::Access& access(std::uint32_t id, core::Access::UnmapHandler handler = nullptr,
                         std::uint32_t* out_id = nullptr)
    {
        std::uint32_t aid = 0;
        REQUIRE(core::access_create(client.ctx(), id, 1, std::move(handler), &aid) == 0);
        if (out_id)
            *out_id = aid;
        auto* a = client.ctx().objects().find_as<core::Access>(aid);
        REQUIRE(a != nullptr);
        return *a;
    }

    std::uint64_t charged() const { return services.accounting.user_pages(1000); }

    // Fills client memory [kBuf, kBuf + length) with a pattern that differs
    // at every offset of interest.
    std::vector<std::byte> fill_pattern(std::uint64_t length)
    {
        std::vector<std::byte> bytes(length);
        for (std::uint64_t i = 0; i < length; ++i)
            bytes[i] = static_cast<std::byte>((i * 7 + (i >> 8) * 13 + (i >> 16)) & 0xff);
        client.write(kBuf, bytes);
        return bytes;
    }
};

std::vector<std::byte> slice(const std::vector<std::byte>& v, std::uint64_t at, std::uint64_t n)
{
    return {v.begin() + static_cast<std::ptrdiff_t>(at),
            v.begin() + static_cast<std::ptrdiff_t>(at + n)};
}

} // namespace

// ===========================================================================
// IOMMU_IOAS_UNMAP

TEST_CASE("IOAS_UNMAP of exactly one area removes it and writes back its length", "[unmap]")
{
    Env env;
    REQUIRE(env.fixed(kBuf, 0x3000, 0x100000) == 0);
    auto c = Env::unmap_cmd(env.ioas, 0x100000, 0x3000);
    REQUIRE(env.unmap_raw(c) == 0);
    CHECK(c.length == 0x3000);
    CHECK(c.iova == 0x100000);
    CHECK(env.areas().empty());
    CHECK(env.unmap(0x100000, 0x3000) == -ENOENT);

    SECTION("a larger range writes back only the bytes actually unmapped")
    {
        REQUIRE(env.fixed(kBuf, 0x1000, 0x200000) == 0);
        auto big = Env::unmap_cmd(env.ioas, 0x1f0000, 0x100000);
        REQUIRE(env.unmap_raw(big) == 0);
        CHECK(big.length == 0x1000);
    }
    SECTION("byte granular areas")
    {
        REQUIRE(env.fixed(kBuf + 1, 3, 0x200001) == 0);
        std::uint64_t unmapped = 0;
        REQUIRE(env.unmap(0x200001, 3, &unmapped) == 0);
        CHECK(unmapped == 3);
    }
    SECTION("the selftest 'area': ten single pages mapped and unmapped one by one")
    {
        for (std::uint64_t i = 0; i < 10; ++i)
            REQUIRE(env.fixed(kBuf, kPage, 0x400000 + i * kPage) == 0);
        for (std::uint64_t i = 0; i < 10; ++i) {
            std::uint64_t unmapped = 0;
            CHECK(env.unmap(0x400000 + i * kPage, kPage, &unmapped) == 0);
            CHECK(unmapped == kPage);
        }
        CHECK(env.areas().empty());
    }
}

TEST_CASE("IOAS_UNMAP of a range covering several areas and holes unmaps all of them",
          "[unmap][contained]")
{
    // The selftest unmap_fully_contained_areas.
    Env env;
    const std::uint64_t base = 0x100000 + 4 * kPage;
    for (std::uint64_t i = 0; i < 4; ++i)
        REQUIRE(env.fixed(kBuf, 8 * kPage, base + i * 16 * kPage) == 0);
    const auto all = env.areas();
    REQUIRE(all.size() == 4);

    // Not fully contained: nothing goes.
    CHECK(env.unmap(base - 4 * kPage, 8 * kPage) == -ENOENT);
    CHECK(env.unmap(base + 3 * 16 * kPage + 8 * kPage - 4 * kPage, 8 * kPage) == -ENOENT);
    CHECK(env.areas() == all);

    auto c = Env::unmap_cmd(env.ioas, base - 4 * kPage, 3 * 16 * kPage + 8 * kPage + 4 * kPage);
    REQUIRE(env.unmap_raw(c) == 0);
    CHECK(c.length == 32 * kPage);
    CHECK(env.areas().empty());
}

TEST_CASE("IOAS_UNMAP with iova 0 and length UINT64_MAX unmaps everything", "[unmap][all]")
{
    Env env;
    SECTION("on an empty IOAS it succeeds and writes back 0")
    {
        auto c = Env::unmap_cmd(env.ioas, 0, kMax);
        REQUIRE(env.unmap_raw(c) == 0);
        CHECK(c.length == 0);
    }
    SECTION("areas anywhere, including IOVA 0 and the top page")
    {
        REQUIRE(env.fixed(kBuf, kPage, 0) == 0);
        REQUIRE(env.fixed(kBuf, 3 * kPage, 0x100000) == 0);
        REQUIRE(env.fixed(kBuf + 5, 7, 0x200005) == 0);
        REQUIRE(env.fixed(kBuf, kPage, kMax - kPage + 1) == 0);
        auto c = Env::unmap_cmd(env.ioas, 0, kMax);
        REQUIRE(env.unmap_raw(c) == 0);
        CHECK(c.length == 5 * kPage + 7);
        CHECK(env.areas().empty());
        // Again: still succeeds, with nothing unmapped.
        c = Env::unmap_cmd(env.ioas, 0, kMax);
        REQUIRE(env.unmap_raw(c) == 0);
        CHECK(c.length == 0);
    }
}

TEST_CASE("IOAS_UNMAP that would split an area is ENOENT; areas before it stay removed",
          "[unmap][split]")
{
    Env env;
    SECTION("the selftest 'area': split fails both ways, the area survives")
    {
        REQUIRE(env.fixed(kBuf, 2 * kPage, 16 * kPage) == 0);
        CHECK(env.unmap(16 * kPage, kPage) == -ENOENT);
        CHECK(env.unmap(17 * kPage, kPage) == -ENOENT);
        CHECK(env.unmap(16 * kPage + 1, 2 * kPage) == -ENOENT);
        CHECK(env.unmap(16 * kPage, 2 * kPage - 1) == -ENOENT);
        CHECK(env.areas() == std::vector<Range>{{16 * kPage, 18 * kPage - 1}});
    }
    SECTION("partial progress in ascending IOVA order")
    {
        REQUIRE(env.fixed(kBuf, 0x1000, 0x100000) == 0); // A
        REQUIRE(env.fixed(kBuf, 0x1000, 0x102000) == 0); // B
        REQUIRE(env.fixed(kBuf, 0x2000, 0x104000) == 0); // C sticks out of the range
        REQUIRE(env.fixed(kBuf, 0x1000, 0x108000) == 0); // D beyond the range
        auto c = Env::unmap_cmd(env.ioas, 0x100000, 0x5000);
        REQUIRE(env.unmap_raw(c) == -ENOENT);
        CHECK(c.length == 0x5000); // no byte count on error
        CHECK(env.areas() == std::vector<Range>{{0x104000, 0x105fff}, {0x108000, 0x108fff}});
        // A and B are really gone...
        CHECK(env.unmap(0x100000, 0x1000) == -ENOENT);
        CHECK(env.unmap(0x102000, 0x1000) == -ENOENT);
        // ...and C is intact.
        std::uint64_t unmapped = 0;
        CHECK(env.unmap(0x104000, 0x2000, &unmapped) == 0);
        CHECK(unmapped == 0x2000);
    }
    SECTION("the offending area first: nothing is removed")
    {
        REQUIRE(env.fixed(kBuf, 0x2000, 0xff000) == 0);  // starts before the range
        REQUIRE(env.fixed(kBuf, 0x1000, 0x102000) == 0);
        CHECK(env.unmap(0x100000, 0x4000) == -ENOENT);
        CHECK(env.areas().size() == 2);
    }
}

TEST_CASE("IOAS_UNMAP of a range with nothing mapped is ENOENT", "[unmap][enoent]")
{
    Env env;
    for (std::uint64_t i = 0; i < 10; ++i)
        CHECK(env.unmap(i * kPage, kPage) == -ENOENT);
    REQUIRE(env.fixed(kBuf, kPage, 0x100000) == 0);
    REQUIRE(env.fixed(kBuf, kPage, 0x103000) == 0);
    CHECK(env.unmap(0x101000, 0x2000) == -ENOENT); // the hole between them
    CHECK(env.unmap(0x101000, 0x2000 - 1) == -ENOENT);
    CHECK(env.areas().size() == 2);
}

TEST_CASE("IOAS_UNMAP with length 0 is EINVAL", "[unmap][length]")
{
    Env env;
    REQUIRE(env.fixed(kBuf, kPage, 0x100000) == 0);
    CHECK(env.unmap(0x100000, 0) == -EINVAL);
    CHECK(env.unmap(0, 0) == -EINVAL);
    CHECK(env.areas().size() == 1);
    // The IOAS lookup comes first.
    CHECK(env.unmap(0x100000, 0, nullptr, kBadId) == -ENOENT);
}

TEST_CASE("IOAS_UNMAP with iova or length >= ULONG_MAX (other than unmap-all) is EOVERFLOW",
          "[unmap][overflow]")
{
    Env env;
    REQUIRE(env.fixed(kBuf, kPage, 0x1000) == 0);
    CHECK(env.unmap(kMax, 1) == -EOVERFLOW);
    CHECK(env.unmap(1, kMax) == -EOVERFLOW);
    CHECK(env.unmap(kMax, kMax) == -EOVERFLOW);
    CHECK(env.unmap(0x1000, kMax) == -EOVERFLOW);
    CHECK(env.unmap(kMax, 0) == -EOVERFLOW); // before the length-0 check
    CHECK(env.areas().size() == 1);

    SECTION("iova 0 with length UINT64_MAX - 1 is an ordinary range [0, ULONG_MAX - 2]")
    {
        REQUIRE(env.fixed(kBuf, kPage, kMax - kPage + 1) == 0);
        CHECK(env.unmap(0, kMax - 1) == -ENOENT); // the top page sticks out
        CHECK(env.areas() == std::vector<Range>{{kMax - kPage + 1, kMax}});
    }
}

TEST_CASE("IOAS_UNMAP with iova + length - 1 wrapping is EOVERFLOW", "[unmap][overflow]")
{
    Env env;
    REQUIRE(env.fixed(kBuf, kPage, 0x100000) == 0);
    REQUIRE(env.fixed(kBuf, kPage, kMax - kPage + 1) == 0);
    CHECK(env.unmap(kMax - kPage + 1, kPage + 1) == -EOVERFLOW);
    CHECK(env.unmap(3, kMax - 1) == -EOVERFLOW);
    CHECK(env.areas().size() == 2);
    // 2 + (ULONG_MAX - 1) - 1 == ULONG_MAX: no wrap, both areas inside.
    std::uint64_t unmapped = 0;
    CHECK(env.unmap(2, kMax - 1, &unmapped) == 0);
    CHECK(unmapped == 2 * kPage);
    CHECK(env.areas().empty());
}

TEST_CASE("IOAS_UNMAP of an IOAS that does not exist is ENOENT, before any other check",
          "[unmap][enoent]")
{
    Env env;
    CHECK(env.unmap(0, kMax, nullptr, kBadId) == -ENOENT);
    CHECK(env.unmap(kMax, kMax, nullptr, kBadId) == -ENOENT);
    CHECK(env.unmap(0x1000, 0x1000, nullptr, kBadId) == -ENOENT);
    CHECK(env.client.unmap(0, 0, kMax) == -ENOENT); // id 0 is never valid
    std::uint32_t aid = 0;
    (void)env.access(env.ioas, nullptr, &aid);
    CHECK(env.unmap(0, kMax, nullptr, aid) == -ENOENT);
}

TEST_CASE("IOAS_UNMAP tells accesses holding pins, which drop them, and then unmaps",
          "[unmap][access]")
{
    Env env;
    REQUIRE(env.fixed(kBuf, 4 * kPage, 0x100000) == 0);
    REQUIRE(env.fixed(kBuf + 0x10000, kPage, 0x200000) == 0);
    std::vector<std::uint64_t> phys;

    SECTION("default handler")
    {
        auto& acc = env.access(env.ioas);
        REQUIRE(acc.pin_pages(0x100000, 2 * kPage, true, &phys) == 0);
        REQUIRE(acc.pin_pages(0x102000, kPage, false, &phys) == 0);
        REQUIRE(acc.pin_pages(0x200000, kPage, false, &phys) == 0);
        CHECK(env.charged() == 4);
        std::uint64_t unmapped = 0;
        REQUIRE(env.unmap(0x100000, 4 * kPage, &unmapped) == 0);
        CHECK(unmapped == 4 * kPage);
        CHECK(acc.pin_count() == 1); // the pin in the other area stays
        CHECK(env.charged() == 1);
        CHECK(env.areas() == std::vector<Range>{{0x200000, 0x200fff}});
    }
    SECTION("handler told the area's range, unpinning itself")
    {
        std::vector<core::IovaRange> told;
        auto& acc = env.access(env.ioas, [&](core::Access& a, core::IovaRange r) {
            told.push_back(r);
            a.unpin_pages(0x101000, 2 * kPage);
        });
        REQUIRE(acc.pin_pages(0x101000, 2 * kPage, true, &phys) == 0);
        CHECK(env.charged() == 2);
        std::uint64_t unmapped = 0;
        REQUIRE(env.unmap(0, kMax, &unmapped) == 0);
        CHECK(unmapped == 5 * kPage);
        REQUIRE(told.size() == 1);
        CHECK(told[0] == core::IovaRange{0x100000, 0x103fff});
        CHECK(acc.pin_count() == 0);
        CHECK(env.charged() == 0);
    }
}

TEST_CASE("IOAS_UNMAP fails with EDEADLOCK while an access refuses to unpin", "[unmap][access]")
{
    Env env;
    REQUIRE(env.fixed(kBuf, kPage, 0x100000) == 0);           // A: no pins
    REQUIRE(env.fixed(kBuf + kPage, kPage, 0x101000) == 0);   // B: pinned
    int calls = 0;
    auto& acc = env.access(env.ioas, [&](core::Access&, core::IovaRange) { ++calls; });
    std::vector<std::uint64_t> phys;
    REQUIRE(acc.pin_pages(0x101000, kPage, false, &phys) == 0);

    auto c = Env::unmap_cmd(env.ioas, 0, kMax);
    CHECK(env.unmap_raw(c) == -EDEADLOCK);
    CHECK(c.length == kMax); // nothing written back
    CHECK(calls >= 1);
    // A went before B was reached; B is still there, still pinned.
    CHECK(env.areas() == std::vector<Range>{{0x101000, 0x101fff}});
    CHECK(acc.pin_count() == 1);
    CHECK(env.charged() == 1);

    acc.unpin_pages(0x101000, kPage);
    std::uint64_t unmapped = 0;
    CHECK(env.unmap(0x101000, kPage, &unmapped) == 0);
    CHECK(unmapped == kPage);
}

TEST_CASE("IOAS_UNMAP retries: an access that unpins on a later notification does not fail it",
          "[unmap][access]")
{
    // iopt_unmap_iova_range() notifies and retries ("goto again") up to 100
    // times before giving up with EDEADLOCK.
    Env env;
    REQUIRE(env.fixed(kBuf, kPage, 0x100000) == 0);
    int calls = 0;
    auto& acc = env.access(env.ioas, [&](core::Access& a, core::IovaRange) {
        if (++calls == 2)
            a.unpin_pages(0x100000, kPage);
    });
    std::vector<std::uint64_t> phys;
    REQUIRE(acc.pin_pages(0x100000, kPage, false, &phys) == 0);
    std::uint64_t unmapped = 0;
    CHECK(env.unmap(0x100000, kPage, &unmapped) == 0);
    CHECK(unmapped == kPage);
    CHECK(calls == 2);
    CHECK(env.areas().empty());
}

// ===========================================================================
// IOMMU_IOAS_COPY

TEST_CASE("IOAS_COPY of a whole area into another IOAS at a fixed IOVA", "[copy]")
{
    Env env;
    const std::uint32_t src = env.ioas, dst = env.new_ioas();
    REQUIRE(env.fixed(kBuf, 0x4000, 0x100000) == 0);
    auto c = Env::copy_cmd(kFixed | kRW, dst, src, 0x4000, 0x300000, 0x100000);
    REQUIRE(env.copy_raw(c) == 0);
    CHECK(c.dst_iova == 0x300000);
    CHECK(env.areas(dst) == std::vector<Range>{{0x300000, 0x303fff}});
    CHECK(env.areas(src) == std::vector<Range>{{0x100000, 0x103fff}});
    // Same pages object behind both areas.
    const core::Area* a = env.obj(src).iopt().find_area(0x100000);
    const core::Area* b = env.obj(dst).iopt().find_area(0x300000);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->pages == b->pages);
    std::uint64_t unmapped = 0;
    CHECK(env.unmap(0x300000, 0x4000, &unmapped, dst) == 0);
    CHECK(unmapped == 0x4000);
    CHECK(env.areas(src).size() == 1);
}

TEST_CASE("IOAS_COPY inside one IOAS (selftest copy_area)", "[copy]")
{
    Env env;
    REQUIRE(env.fixed(kBuf, kPage, 0x100000) == 0);
    CHECK(env.copy_fixed(env.ioas, env.ioas, kPage, 0x101000, 0x100000, kW) == 0);
    CHECK(env.areas() == std::vector<Range>{{0x100000, 0x100fff}, {0x101000, 0x101fff}});
    // Onto itself: the destination overlaps.
    CHECK(env.copy_fixed(env.ioas, env.ioas, kPage, 0x100000, 0x100000, kW) == -EEXIST);
    // Selftest: to another IOAS with dst_iova 0.
    const std::uint32_t dst = env.new_ioas();
    CHECK(env.copy_fixed(dst, env.ioas, kPage, 0, 0x100000, kW) == 0);
    CHECK(env.areas(dst) == std::vector<Range>{{0, 0xfff}});
}

TEST_CASE("IOAS_COPY without FIXED_IOVA places the copy by the source user pointer",
          "[copy][auto]")
{
    Env env;
    const std::uint32_t src = env.ioas, dst = env.new_ioas();
    REQUIRE(env.fixed(kBuf, 0x4000, 0x100000) == 0);
    std::uint64_t iova = 0xdead000; // ignored
    // uptr kBuf: a = roundup(0x4000) = 0x4000.
    REQUIRE(env.copy(kRW, dst, src, 0x4000, &iova, 0x100000) == 0);
    CHECK(iova == 0x4000);
    // A sub-range starting one page in: uptr kBuf + 0x1000, a = 0x1000.
    iova = 0;
    REQUIRE(env.copy(kRW, dst, src, 0x1000, &iova, 0x101000) == 0);
    CHECK(iova == 0x1000);
    // Unaligned sub-range: uptr kBuf + 0x10, a = 0x10, page offset kept.
    // Search from 0x1000 | 0x10 = 0x1010 (inside [0x1000, 0x1fff]); the
    // hole [0x2000, 0x3fff] gives 0x2010.
    iova = 0;
    REQUIRE(env.copy(kRW, dst, src, 0x100, &iova, 0x100010) == 0);
    CHECK(iova == 0x2010);
    CHECK(env.areas(dst) ==
          std::vector<Range>{{0x1000, 0x1fff}, {0x2010, 0x210f}, {0x4000, 0x7fff}});

    SECTION("source with a page offset")
    {
        REQUIRE(env.fixed(kBuf + 0x123, 0x1000, 0x200000) == 0);
        const std::uint32_t other = env.new_ioas();
        iova = 0;
        REQUIRE(env.copy(kRW, other, src, 0x1000, &iova, 0x200000) == 0);
        CHECK(iova == 0x1123);
    }
    SECTION("ENOSPC in the destination")
    {
        const std::uint32_t small = env.new_ioas();
        REQUIRE(env.allow(0x500000, 0x500fff, small) == 0);
        iova = 0x777000;
        CHECK(env.copy(kRW, small, src, 0x2000, &iova, 0x100000) == -ENOSPC);
        CHECK(iova == 0x777000);
        CHECK(env.areas(small).empty());
    }
}

TEST_CASE("IOAS_COPY of sub-ranges at unaligned offsets (selftest copy_sweep)", "[copy][sweep]")
{
    Env env;
    const std::uint32_t src = env.ioas, dst = env.new_ioas();
    const auto pattern = env.fill_pattern(0x10000);
    constexpr std::uint64_t kStart = 0x1000000;
    constexpr std::uint64_t kLength = 2048;
    const std::uint64_t last_iova = kStart + 0x10000 - 2; // odd-sized area
    REQUIRE(env.fixed(kBuf, last_iova - kStart + 1, kStart) == 0);
    auto& acc = env.access(dst);

    int ok = 0, enoent = 0, expect_ok = 0, expect_enoent = 0;
    for (std::uint64_t iova = kStart - kPage; iova <= last_iova; iova += 511) {
        INFO("src_iova 0x" << std::hex << iova);
        const bool inside = iova >= kStart && iova + kLength - 1 <= last_iova;
        (inside ? expect_ok : expect_enoent)++;
        const int rc = env.copy_fixed(dst, src, kLength, kStart, iova);
        if (!inside) {
            CHECK(rc == -ENOENT);
            enoent += rc == -ENOENT;
            continue;
        }
        REQUIRE(rc == 0);
        ++ok;
        // The copy reads the client's bytes at the right offset.
        std::vector<std::byte> got(kLength);
        REQUIRE(acc.rw(kStart, got, false) == 0);
        CHECK(got == slice(pattern, iova - kStart, kLength));
        std::uint64_t unmapped = 0;
        REQUIRE(env.unmap(kStart, kLength, &unmapped, dst) == 0);
        CHECK(unmapped == kLength);
    }
    CHECK(ok == expect_ok);
    CHECK(enoent == expect_enoent);
    CHECK(ok > 100);
    CHECK(env.areas(dst).empty());
}

TEST_CASE("IOAS_COPY of a range spanning contiguous areas makes one dst area per segment",
          "[copy][segments]")
{
    Env env;
    const std::uint32_t src = env.ioas, dst = env.new_ioas();
    const auto pattern = env.fill_pattern(0x20000);

    SECTION("two areas")
    {
        REQUIRE(env.fixed(kBuf, 0x2000, 0x100000) == 0);
        REQUIRE(env.fixed(kBuf + 0x10000, 0x2000, 0x102000) == 0);
        REQUIRE(env.copy_fixed(dst, src, 0x2000, 0x300000, 0x101000) == 0);
        CHECK(env.areas(dst) == std::vector<Range>{{0x300000, 0x300fff}, {0x301000, 0x301fff}});
        auto& acc = env.access(dst);
        std::vector<std::byte> got(0x2000);
        REQUIRE(acc.rw(0x300000, got, false) == 0);
        auto want = slice(pattern, 0x1000, 0x1000);
        auto second = slice(pattern, 0x10000, 0x1000);
        want.insert(want.end(), second.begin(), second.end());
        CHECK(got == want);
        // Each dst area must be unmapped on its own boundaries.
        std::uint64_t unmapped = 0;
        CHECK(env.unmap(0x300000, 0x1000, &unmapped, dst) == 0);
        CHECK(unmapped == 0x1000);
    }
    SECTION("three areas, cut at both ends")
    {
        REQUIRE(env.fixed(kBuf, 0x2000, 0x100000) == 0);
        REQUIRE(env.fixed(kBuf + 0x4000, 0x1000, 0x102000) == 0);
        REQUIRE(env.fixed(kBuf + 0x8000, 0x2000, 0x103000) == 0);
        REQUIRE(env.copy_fixed(dst, src, 0x2000, 0x300000, 0x101800) == 0);
        CHECK(env.areas(dst) == std::vector<Range>{{0x300000, 0x3007ff},
                                                   {0x300800, 0x3017ff},
                                                   {0x301800, 0x301fff}});
        auto& acc = env.access(dst);
        std::vector<std::byte> got(0x2000);
        REQUIRE(acc.rw(0x300000, got, false) == 0);
        auto want = slice(pattern, 0x1800, 0x800);
        auto mid = slice(pattern, 0x4000, 0x1000);
        auto end = slice(pattern, 0x8000, 0x800);
        want.insert(want.end(), mid.begin(), mid.end());
        want.insert(want.end(), end.begin(), end.end());
        CHECK(got == want);
    }
}

TEST_CASE("IOAS_COPY of a source range with a hole or outside any area is ENOENT",
          "[copy][enoent]")
{
    Env env;
    const std::uint32_t src = env.ioas, dst = env.new_ioas();
    REQUIRE(env.fixed(kBuf, 0x1000, 0x100000) == 0);
    REQUIRE(env.fixed(kBuf, 0x1000, 0x102000) == 0);
    CHECK(env.copy_fixed(dst, src, 0x3000, 0x300000, 0x100000) == -ENOENT); // page hole
    REQUIRE(env.fixed(kBuf, 0xfff, 0x200000) == 0);
    REQUIRE(env.fixed(kBuf, 0x1000, 0x201000) == 0);
    CHECK(env.copy_fixed(dst, src, 0x2000, 0x300000, 0x200000) == -ENOENT); // 1-byte hole
    CHECK(env.copy_fixed(dst, src, 0x1000, 0x300000, 0x500000) == -ENOENT); // nothing
    CHECK(env.copy_fixed(dst, src, 0x1000, 0x300000, 0xfffff) == -ENOENT);  // starts before
    CHECK(env.copy_fixed(dst, src, 0x1001, 0x300000, 0x100000) == -ENOENT); // ends after
    CHECK(env.copy_fixed(dst, src, 0x1000, 0x300000, 0x101000) == -ENOENT); // in the hole
    CHECK(env.areas(dst).empty());
    // The contiguous pieces on their own do copy.
    CHECK(env.copy_fixed(dst, src, 0xfff, 0x300000, 0x200000) == 0);
    CHECK(env.copy_fixed(dst, src, 0x1000, 0x301000, 0x201000) == 0);
    CHECK(env.areas(dst) == std::vector<Range>{{0x300000, 0x300ffe}, {0x301000, 0x301fff}});
}

TEST_CASE("IOAS_COPY with length 0 is EINVAL, checked on the source before dst lookup",
          "[copy][length]")
{
    Env env;
    const std::uint32_t src = env.ioas, dst = env.new_ioas();
    REQUIRE(env.fixed(kBuf, 0x1000, 0x100000) == 0);
    CHECK(env.copy_fixed(dst, src, 0, 0x300000, 0x100000) == -EINVAL);
    std::uint64_t iova = 0;
    CHECK(env.copy(kRW, dst, src, 0, &iova, 0x100000) == -EINVAL);
    CHECK(env.copy_fixed(kBadId, src, 0, 0x300000, 0x100000) == -EINVAL);
    CHECK(env.copy_fixed(dst, kBadId, 0, 0x300000, 0x100000) == -ENOENT);
    CHECK(env.areas(dst).empty());
}

TEST_CASE("IOAS_COPY with length, src_iova or dst_iova >= ULONG_MAX is EOVERFLOW",
          "[copy][overflow]")
{
    Env env;
    const std::uint32_t src = env.ioas, dst = env.new_ioas();
    REQUIRE(env.fixed(kBuf, 0x2000, 0x100000) == 0);
    CHECK(env.copy_fixed(dst, src, kMax, 0x300000, 0x100000) == -EOVERFLOW);
    CHECK(env.copy_fixed(dst, src, 0x1000, 0x300000, kMax) == -EOVERFLOW);
    CHECK(env.copy_fixed(dst, src, 0x1000, kMax, 0x100000) == -EOVERFLOW);
    // Checked even without FIXED_IOVA.
    std::uint64_t iova = kMax;
    CHECK(env.copy(kRW, dst, src, 0x1000, &iova, 0x100000) == -EOVERFLOW);
    // Before the IOAS lookups.
    CHECK(env.copy_fixed(kBadId, kBadId, kMax, 0, 0) == -EOVERFLOW);
    CHECK(env.copy_fixed(kBadId, kBadId, 1, kMax, 0) == -EOVERFLOW);
    CHECK(env.copy_fixed(kBadId, kBadId, 1, 0, kMax) == -EOVERFLOW);

    SECTION("source range wrapping")
    {
        CHECK(env.copy_fixed(dst, src, 0x2000, 0x300000, kMax - kPage + 1) == -EOVERFLOW);
    }
    SECTION("fixed destination range wrapping")
    {
        CHECK(env.copy_fixed(dst, src, 0x2000, kMax - kPage + 1, 0x100000) == -EOVERFLOW);
    }
    CHECK(env.areas(dst).empty());
}

TEST_CASE("IOAS_COPY flags: no R/W is EINVAL, unknown bits are EOPNOTSUPP", "[copy][flags]")
{
    Env env;
    const std::uint32_t src = env.ioas, dst = env.new_ioas();
    REQUIRE(env.fixed(kBuf, 0x1000, 0x100000) == 0);
    std::uint64_t iova = 0x300000;
    CHECK(env.copy(kFixed, dst, src, 0x1000, &iova, 0x100000) == -EINVAL);
    CHECK(env.copy(0, dst, src, 0x1000, &iova, 0x100000) == -EINVAL);
    for (std::uint32_t bit = 3; bit < 32; ++bit) {
        INFO("bit " << bit);
        CHECK(env.copy(kFixed | kRW | (1u << bit), dst, src, 0x1000, &iova, 0x100000) ==
              -EOPNOTSUPP);
    }
    CHECK(env.areas(dst).empty());
    // Order: EOPNOTSUPP, then EOVERFLOW, then EINVAL, then ENOENT.
    iova = 0;
    CHECK(env.copy(8, kBadId, kBadId, kMax, &iova, kMax) == -EOPNOTSUPP);
    CHECK(env.copy(0, kBadId, kBadId, kMax, &iova, 0) == -EOVERFLOW);
    CHECK(env.copy(kFixed, kBadId, kBadId, 0x1000, &iova, 0) == -EINVAL);
    CHECK(env.copy(kFixed | kR, kBadId, kBadId, 0x1000, &iova, 0) == -ENOENT);
}

TEST_CASE("IOAS_COPY with a bad source or destination IOAS is ENOENT", "[copy][enoent]")
{
    Env env;
    const std::uint32_t src = env.ioas, dst = env.new_ioas();
    REQUIRE(env.fixed(kBuf, 0x1000, 0x100000) == 0);
    std::uint32_t aid = 0;
    (void)env.access(src, nullptr, &aid);
    CHECK(env.copy_fixed(dst, kBadId, 0x1000, 0x300000, 0x100000) == -ENOENT);
    CHECK(env.copy_fixed(dst, 0, 0x1000, 0x300000, 0x100000) == -ENOENT);
    CHECK(env.copy_fixed(dst, aid, 0x1000, 0x300000, 0x100000) == -ENOENT);
    CHECK(env.copy_fixed(kBadId, src, 0x1000, 0x300000, 0x100000) == -ENOENT);
    CHECK(env.copy_fixed(0, src, 0x1000, 0x300000, 0x100000) == -ENOENT);
    CHECK(env.copy_fixed(aid, src, 0x1000, 0x300000, 0x100000) == -ENOENT);
    std::uint64_t iova = 0;
    CHECK(env.copy(kRW, kBadId, src, 0x1000, &iova, 0x100000) == -ENOENT);
    CHECK(env.areas(dst).empty());
}

TEST_CASE("IOAS_COPY onto an existing mapping is EEXIST, onto a reserved range EINVAL",
          "[copy][eexist]")
{
    Env env;
    const std::uint32_t src = env.ioas, dst = env.new_ioas();
    REQUIRE(env.fixed(kBuf, 0x2000, 0x100000) == 0);
    REQUIRE(env.fixed(kBuf, 0x1000, 0x300000, kRW, dst) == 0);
    CHECK(env.copy_fixed(dst, src, 0x2000, 0x2ff000, 0x100000) == -EEXIST);
    CHECK(env.copy_fixed(dst, src, 0x1000, 0x300800, 0x100000) == -EEXIST);
    CHECK(env.copy_fixed(dst, src, 0x2000, 0x300fff, 0x100000) == -EEXIST);
    CHECK(env.areas(dst) == std::vector<Range>{{0x300000, 0x300fff}});
    CHECK(env.copy_fixed(dst, src, 0x2000, 0x301000, 0x100000) == 0); // touching
    CHECK(env.copy_fixed(dst, src, 0x1000, 0x2ff000, 0x101000) == 0); // touching

    REQUIRE(env.reserve(0x400000, 0x400fff, dst) == 0);
    CHECK(env.copy_fixed(dst, src, 0x2000, 0x3ff800, 0x100000) == -EINVAL);
    CHECK(env.copy_fixed(dst, src, 0x1000, 0x400000, 0x100000) == -EINVAL);
}

TEST_CASE("IOAS_COPY asking WRITEABLE of a source mapped READABLE only is EPERM",
          "[copy][eperm]")
{
    Env env;
    const std::uint32_t src = env.ioas, dst = env.new_ioas();
    REQUIRE(env.fixed(kBuf, 0x2000, 0x100000, kR) == 0);
    CHECK(env.copy_fixed(dst, src, 0x2000, 0x300000, 0x100000, kW) == -EPERM);
    CHECK(env.copy_fixed(dst, src, 0x2000, 0x300000, 0x100000, kRW) == -EPERM);
    std::uint64_t iova = 0;
    CHECK(env.copy(kRW, dst, src, 0x1000, &iova, 0x101000) == -EPERM);
    CHECK(env.areas(dst).empty());
    CHECK(env.copy_fixed(dst, src, 0x2000, 0x300000, 0x100000, kR) == 0);
    // Placement is checked before the protection: EEXIST wins.
    CHECK(env.copy_fixed(dst, src, 0x1000, 0x300000, 0x100000, kW) == -EEXIST);

    SECTION("a READABLE copy of a writable source cannot be pinned for write")
    {
        REQUIRE(env.fixed(kBuf, 0x1000, 0x200000, kRW) == 0);
        REQUIRE(env.copy_fixed(dst, src, 0x1000, 0x500000, 0x200000, kR) == 0);
        auto& acc = env.access(dst);
        std::vector<std::uint64_t> phys;
        CHECK(acc.pin_pages(0x500000, 0x1000, true, &phys) == -EPERM);
        CHECK(acc.pin_pages(0x500000, 0x1000, false, &phys) == 0);
    }
    SECTION("a source pinned read-only through a segment spanning two areas")
    {
        // The second segment is the read-only one; still EPERM, nothing left.
        REQUIRE(env.fixed(kBuf, 0x1000, 0xff000, kRW) == 0);
        CHECK(env.copy_fixed(dst, src, 0x2000, 0x600000, 0xff000, kRW) == -EPERM);
        CHECK(env.areas(dst) == std::vector<Range>{{0x300000, 0x301fff}});
    }
}

TEST_CASE("IOAS_COPY with HUGE_PAGES=0 in the destination needs PAGE_SIZE alignment",
          "[copy][hugepages]")
{
    Env env;
    const std::uint32_t src = env.ioas, dst = env.new_ioas();
    REQUIRE(env.fixed(kBuf, 0x4000, 0x100000) == 0);
    REQUIRE(env.huge_pages(0, dst) == 0);
    CHECK(env.copy_fixed(dst, src, 0x800, 0x300000, 0x100000) == -EINVAL);  // length
    CHECK(env.copy_fixed(dst, src, 0x1000, 0x300800, 0x101000) == -EINVAL); // dst iova
    CHECK(env.copy_fixed(dst, src, 0x1000, 0x300000, 0x100800) == -EINVAL); // page offset
    std::uint64_t iova = 0;
    CHECK(env.copy(kRW, dst, src, 0x1000, &iova, 0x100800) == -EINVAL);     // a = 0x800
    CHECK(env.areas(dst).empty());
    CHECK(env.copy_fixed(dst, src, 0x1000, 0x300000, 0x101000) == 0);
}

TEST_CASE("IOAS_COPY shares the pinned pages: same physical pages, charged once",
          "[copy][access][accounting]")
{
    Env env;
    const std::uint32_t src = env.ioas, dst = env.new_ioas();
    REQUIRE(env.fixed(kBuf, 4 * kPage, 0x100000) == 0);
    REQUIRE(env.copy_fixed(dst, src, 4 * kPage, 0x200000, 0x100000) == 0);
    REQUIRE(env.copy_fixed(dst, src, 2 * kPage, 0x300000, 0x101000) == 0);
    auto& a = env.access(src);
    auto& b = env.access(dst);

    std::vector<std::uint64_t> pa, pb, pc;
    REQUIRE(a.pin_pages(0x100000, 4 * kPage, true, &pa) == 0);
    REQUIRE(pa.size() == 4);
    CHECK(env.charged() == 4);
    REQUIRE(b.pin_pages(0x200000, 4 * kPage, true, &pb) == 0);
    CHECK(pb == pa);
    CHECK(env.charged() == 4);
    REQUIRE(b.pin_pages(0x300000, 2 * kPage, false, &pc) == 0);
    CHECK(pc == std::vector<std::uint64_t>{pa[1], pa[2]});
    CHECK(env.charged() == 4);

    a.unpin_pages(0x100000, 4 * kPage);
    CHECK(env.charged() == 4); // still pinned through the copies
    b.unpin_pages(0x200000, 4 * kPage);
    CHECK(env.charged() == 2);
    b.unpin_pages(0x300000, 2 * kPage);
    CHECK(env.charged() == 0);

    SECTION("pinning through the copy first charges; the source adds nothing")
    {
        REQUIRE(b.pin_pages(0x300000, 2 * kPage, false, &pc) == 0);
        CHECK(env.charged() == 2);
        REQUIRE(a.pin_pages(0x100000, 4 * kPage, false, &pa) == 0);
        CHECK(env.charged() == 4);
        CHECK(pc == std::vector<std::uint64_t>{pa[1], pa[2]});
    }
}

TEST_CASE("Unmapping the source of a copy leaves the copy working", "[copy][unmap][access]")
{
    Env env;
    const std::uint32_t src = env.ioas, dst = env.new_ioas();
    const auto pattern = env.fill_pattern(0x3000);
    REQUIRE(env.fixed(kBuf, 0x3000, 0x100000) == 0);
    REQUIRE(env.copy_fixed(dst, src, 0x3000, 0x200000, 0x100000) == 0);
    auto& b = env.access(dst);

    SECTION("no pins")
    {
        std::uint64_t unmapped = 0;
        REQUIRE(env.unmap(0x100000, 0x3000, &unmapped, src) == 0);
        CHECK(unmapped == 0x3000);
        CHECK(env.areas(src).empty());
        std::vector<std::byte> got(0x3000);
        REQUIRE(b.rw(0x200000, got, false) == 0);
        CHECK(got == pattern);
        // Writes through the copy land in the client's memory.
        const char hello[] = "hello";
        std::vector<std::byte> data(sizeof(hello));
        std::memcpy(data.data(), hello, sizeof(hello));
        REQUIRE(b.rw(0x200010, data, true) == 0);
        std::vector<std::byte> back(sizeof(hello));
        env.client.read(kBuf + 0x10, back);
        CHECK(back == data);
        std::vector<std::uint64_t> phys;
        CHECK(b.pin_pages(0x200000, 0x3000, true, &phys) == 0);
        CHECK(phys.size() == 3);
        CHECK(env.charged() == 3);
    }
    SECTION("pinned through both; the source's pins go, the copy's stay")
    {
        auto& a = env.access(src);
        std::vector<std::uint64_t> pa, pb;
        REQUIRE(b.pin_pages(0x200000, 0x3000, false, &pb) == 0);
        REQUIRE(a.pin_pages(0x100000, 0x3000, false, &pa) == 0);
        CHECK(pa == pb);
        CHECK(env.charged() == 3);
        REQUIRE(env.unmap(0, kMax, nullptr, src) == 0);
        CHECK(a.pin_count() == 0);
        CHECK(b.pin_count() == 1);
        CHECK(env.charged() == 3);
        std::vector<std::byte> got(0x3000);
        REQUIRE(b.rw(0x200000, got, false) == 0);
        CHECK(got == pattern);
    }
}
