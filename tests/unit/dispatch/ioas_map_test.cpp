// IOMMU_IOAS_MAP driven through the dispatcher, the way a client drives
// /dev/iommu. Every expectation comes from the kernel (6.12):
// drivers/iommu/iommufd/ioas.c iommufd_ioas_map(), io_pagetable.c
// iopt_map_user_pages() / iopt_alloc_area_pages() / iopt_alloc_iova() /
// iopt_check_iova() / iopt_insert_area(), pages.c iopt_alloc_pages(), and
// device.c iommufd_access_pin_pages() for what pinning an area requires.
// x86-64: PAGE_SIZE 4096, ULONG_MAX == UINT64_MAX, HPAGE_SIZE 2 MiB.
#include <catch2/catch.hpp>

#include <ioasid/iommufd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "core/access.h"
#include "core/ioas.h"
#include "test_support.h"

using namespace ioasid;

namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kHuge = 2ULL << 20;
constexpr std::uint64_t kMax = UINT64_MAX; // ULONG_MAX on x86-64
constexpr std::uint32_t kR = IOMMU_IOAS_MAP_READABLE;
constexpr std::uint32_t kW = IOMMU_IOAS_MAP_WRITEABLE;
constexpr std::uint32_t kRW = kR | kW;
constexpr std::uint32_t kFixed = IOMMU_IOAS_MAP_FIXED_IOVA;
constexpr std::uint32_t kBadId = 9999;
// Client memory that exists (test_support.h) and memory that does not.
constexpr std::uint64_t kBuf = test::kBufferAddr;
constexpr std::uint64_t kUnmappedVa = 0x70000000;

using Range = std::pair<std::uint64_t, std::uint64_t>; // [first, last]

struct Env : test::IoasFixture {
    static iommu_ioas_map cmd(std::uint32_t flags, std::uint32_t id, std::uint64_t user_va,
                              std::uint64_t length, std::uint64_t iova)
    {
        return iommu_ioas_map{.size = sizeof(iommu_ioas_map), .flags = flags, .ioas_id = id,
                              .__reserved = 0, .user_va = user_va, .length = length, .iova = iova};
    }

    int map_cmd(iommu_ioas_map& c) { return client.ioctl(IOMMU_IOAS_MAP, c); }

    // FIXED_IOVA map with explicit protection flags.
    int fixed(std::uint64_t user_va, std::uint64_t length, std::uint64_t iova,
              std::uint32_t prot = kRW, std::uint32_t id = 0)
    {
        auto c = cmd(kFixed | prot, id ? id : ioas, user_va, length, iova);
        int rc = map_cmd(c);
        if (rc == 0)
            CHECK(c.iova == iova);
        return rc;
    }

    // Automatic map; *iova gets the IOVA written back (left alone on error).
    int autom(std::uint64_t user_va, std::uint64_t length, std::uint64_t* iova,
              std::uint32_t prot = kRW, std::uint32_t id = 0)
    {
        auto c = cmd(prot, id ? id : ioas, user_va, length, *iova);
        int rc = map_cmd(c);
        *iova = c.iova;
        return rc;
    }

    int unmap(std::uint64_t iova, std::uint64_t length, std::uint64_t* unmapped = nullptr,
              std::uint32_t id = 0)
    {
        return client.unmap(id ? id : ioas, iova, length, unmapped);
    }

    std::vector<Range> areas(std::uint32_t id = 0)
    {
        std::vector<Range> out;
        obj(id ? id : ioas).iopt().for_each_area(
            [&](const core::Area& a) { out.emplace_back(a.iova.first, a.iova.last); });
        return out;
    }

    int reserve(std::uint64_t first, std::uint64_t last, std::uint32_t id = 0)
    {
        static const int owner = 0;
        return obj(id ? id : ioas).iopt().reserve({first, last}, &owner);
    }

    int allow(const std::vector<Range>& ranges, std::uint32_t id = 0)
    {
        std::vector<iommu_iova_range> arr;
        for (auto [f, l] : ranges)
            arr.push_back({.start = f, .last = l});
        if (!arr.empty())
            client.write(test::kArrayAddr, std::as_bytes(std::span(arr)));
        iommu_ioas_allow_iovas c{.size = sizeof(c), .ioas_id = id ? id : ioas,
                                 .num_iovas = static_cast<std::uint32_t>(arr.size()),
                                 .__reserved = 0, .allowed_iovas = test::kArrayAddr};
        return client.ioctl(IOMMU_IOAS_ALLOW_IOVAS, c);
    }

    int huge_pages(std::uint64_t value, std::uint32_t id = 0)
    {
        iommu_option c{.size = sizeof(c), .option_id = IOMMU_OPTION_HUGE_PAGES,
                       .op = IOMMU_OPTION_OP_SET, .__reserved = 0, .object_id = id ? id : ioas,
                       .val64 = value};
        return client.ioctl(IOMMU_OPTION, c);
    }

    core::Access& access(std::uint32_t id = 0, std::uint32_t* out_id = nullptr)
    {
        std::uint32_t aid = 0;
        REQUIRE(core::access_create(client.ctx(), id ? id : ioas, 1, nullptr, &aid) == 0);
        if (out_id)
            *out_id = aid;
        auto* a = client.ctx().objects().find_as<core::Access>(aid);
        REQUIRE(a != nullptr);
        return *a;
    }

    std::uint64_t charged() const { return services.accounting.user_pages(1000); }
};

// A literal transcription of the kernel's iopt_alloc_iova() (6.12
// io_pagetable.c), used as the oracle for automatic placement. Note the
// kernel's __alloc_iova_check_used() moves the start of the allowed span to
// its aligned start (with the page offset ORed in) and the hole walk starts
// from there, so holes are clipped to that point.
struct KernelIovaModel {
    std::map<std::uint64_t, std::uint64_t> used; // areas and reserved ranges
    std::vector<Range> allowed;                  // sorted, disjoint
    std::uint64_t iova_alignment = 1;

    static bool check_range(std::uint64_t* start, std::uint64_t last, std::uint64_t length,
                            std::uint64_t align, std::uint64_t page_offset)
    {
        std::uint64_t aligned;
        if (__builtin_add_overflow(*start, align - 1, &aligned))
            return false;
        aligned &= ~(align - 1);
        aligned |= page_offset;
        if (aligned >= last || last - aligned < length - 1)
            return false;
        *start = aligned;
        return true;
    }

    int alloc(std::uint64_t uptr, std::uint64_t length, std::uint64_t* iova) const
    {
        if (length == 0 || length >= kMax / 2)
            return -EOVERFLOW;
        std::uint64_t align = std::bit_ceil(length);
        if (uptr)
            align = std::min(align, uptr & (~uptr + 1));
        if (align >= kHuge)
            align = kHuge;
        if (align < iova_alignment)
            return -EINVAL;
        const std::uint64_t off = uptr % kPage;

        std::vector<Range> spans;
        if (allowed.empty()) {
            spans.emplace_back(kPage, kMax - kPage);
        } else {
            for (auto [f, l] : allowed) {
                f = std::max(f, kPage);
                l = std::min(l, kMax - kPage);
                if (f > l)
                    continue;
                if (!spans.empty() && spans.back().second + 1 == f)
                    spans.back().second = l;
                else
                    spans.emplace_back(f, l);
            }
        }
        for (auto [wf, wl] : spans) {
            std::uint64_t s = wf;
            if (!check_range(&s, wl, length, align, off))
                continue;
            std::uint64_t cur = s;
            bool covered_to_end = false;
            auto it = used.upper_bound(cur);
            if (it != used.begin() && std::prev(it)->second >= cur)
                --it;
            for (; it != used.end() && it->first <= wl; ++it) {
                if (it->first > cur) {
                    std::uint64_t h = cur;
                    if (check_range(&h, it->first - 1, length, align, off)) {
                        *iova = h;
                        return 0;
                    }
                }
                if (it->second >= wl) {
                    covered_to_end = true;
                    break;
                }
                cur = std::max(cur, it->second + 1);
            }
            if (!covered_to_end) {
                std::uint64_t h = cur;
                if (check_range(&h, wl, length, align, off)) {
                    *iova = h;
                    return 0;
                }
            }
        }
        return -ENOSPC;
    }

    bool intersects(std::uint64_t first, std::uint64_t last) const
    {
        auto it = used.upper_bound(last);
        return it != used.begin() && std::prev(it)->second >= first;
    }
};

} // namespace

// ---------------------------------------------------------------------------
// Success paths

TEST_CASE("IOAS_MAP with FIXED_IOVA maps exactly at the given IOVA", "[map][fixed]")
{
    Env env;
    auto c = Env::cmd(kFixed | kRW, env.ioas, kBuf, 0x4000, 0x100000);
    REQUIRE(env.map_cmd(c) == 0);
    CHECK(c.iova == 0x100000);
    CHECK(env.areas() == std::vector<Range>{{0x100000, 0x103fff}});

    SECTION("IOVA 0 is a valid fixed IOVA (only automatic placement avoids it)")
    {
        REQUIRE(env.fixed(kBuf, kPage, 0) == 0);
        CHECK(env.areas().front() == Range{0, kPage - 1});
    }
    SECTION("the top page of the IOVA space is a valid fixed IOVA")
    {
        REQUIRE(env.fixed(kBuf, kPage, kMax - kPage + 1) == 0);
        CHECK(env.areas().back() == Range{kMax - kPage + 1, kMax});
        std::uint64_t unmapped = 0;
        REQUIRE(env.unmap(kMax - kPage + 1, kPage, &unmapped) == 0);
        CHECK(unmapped == kPage);
    }
    SECTION("iova = ULONG_MAX - 1 with length 2 ends exactly at ULONG_MAX")
    {
        REQUIRE(env.fixed(kBuf, 2, kMax - 1) == 0);
        CHECK(env.areas().back() == Range{kMax - 1, kMax});
    }
    SECTION("byte granular IOVA, user_va and length are fine with no domain (alignment 1)")
    {
        REQUIRE(env.fixed(kBuf + 5, 3, 0x200001) == 0);
        CHECK(env.areas().back() == Range{0x200001, 0x200003});
    }
    SECTION("the area can be unmapped again with its exact range")
    {
        std::uint64_t unmapped = 0;
        REQUIRE(env.unmap(0x100000, 0x4000, &unmapped) == 0);
        CHECK(unmapped == 0x4000);
        CHECK(env.areas().empty());
    }
}

TEST_CASE("IOAS_MAP without FIXED_IOVA picks an IOVA and writes it back", "[map][auto]")
{
    Env env;
    // The incoming iova is ignored in automatic mode.
    auto c = Env::cmd(kRW, env.ioas, kBuf, kPage, 0xdead0000);
    REQUIRE(env.map_cmd(c) == 0);
    CHECK(c.iova == kPage); // lowest hole, never 0
    std::uint64_t iova = 0;
    REQUIRE(env.autom(kBuf + kPage, kPage, &iova) == 0);
    CHECK(iova == 2 * kPage);
    CHECK(env.areas() == std::vector<Range>{{kPage, 2 * kPage - 1}, {2 * kPage, 3 * kPage - 1}});
}

// ---------------------------------------------------------------------------
// Flags

TEST_CASE("IOAS_MAP accepts READABLE only and WRITEABLE only, refuses neither", "[map][flags]")
{
    Env env;
    CHECK(env.fixed(kBuf, kPage, 0x100000, kR) == 0);
    CHECK(env.fixed(kBuf, kPage, 0x200000, kW) == 0);
    CHECK(env.fixed(kBuf, kPage, 0x300000, 0) == -EINVAL);
    std::uint64_t iova = 0;
    CHECK(env.autom(kBuf, kPage, &iova, 0) == -EINVAL);
    CHECK(env.areas().size() == 2);

    SECTION("no R/W is checked after EOVERFLOW and before the IOAS lookup")
    {
        auto c = Env::cmd(kFixed, kBadId, kBuf, kPage, kMax);
        CHECK(env.map_cmd(c) == -EOVERFLOW);
        c = Env::cmd(kFixed, kBadId, kBuf, kPage, 0x1000);
        CHECK(env.map_cmd(c) == -EINVAL);
    }
}

TEST_CASE("A READABLE-only area can be pinned for read but not for write", "[map][flags][access]")
{
    Env env;
    REQUIRE(env.fixed(kBuf, 2 * kPage, 0x100000, kR) == 0);
    auto& acc = env.access();
    std::vector<std::uint64_t> phys;
    CHECK(acc.pin_pages(0x100000, 2 * kPage, false, &phys) == 0);
    CHECK(phys.size() == 2);
    // device.c check_area_prot(): a write pin needs IOMMU_WRITE.
    CHECK(acc.pin_pages(0x100000, kPage, true, &phys) == -EPERM);
}

TEST_CASE("A WRITEABLE-only area can be pinned for write but not for read", "[map][flags][access]")
{
    Env env;
    REQUIRE(env.fixed(kBuf, 2 * kPage, 0x100000, kW) == 0);
    auto& acc = env.access();
    std::vector<std::uint64_t> phys;
    CHECK(acc.pin_pages(0x100000, 2 * kPage, true, &phys) == 0);
    CHECK(phys.size() == 2);
    // device.c check_area_prot(): without IOMMUFD_ACCESS_RW_WRITE the area
    // must carry IOMMU_READ, which a WRITEABLE-only map does not have.
    CHECK(acc.pin_pages(0x100000, kPage, false, &phys) == -EPERM);
    std::array<std::byte, 16> buf{};
    CHECK(acc.rw(0x100000, buf, false) == -EPERM);
}

TEST_CASE("IOAS_MAP refuses unknown flags and a non-zero __reserved with EOPNOTSUPP", "[map][flags]")
{
    Env env;
    for (std::uint32_t bit = 3; bit < 32; ++bit) {
        INFO("flag bit " << bit);
        auto c = Env::cmd(kFixed | kRW | (1u << bit), env.ioas, kBuf, kPage, 0x100000);
        CHECK(env.map_cmd(c) == -EOPNOTSUPP);
    }
    auto c = Env::cmd(kFixed | kRW, env.ioas, kBuf, kPage, 0x100000);
    c.__reserved = 1;
    CHECK(env.map_cmd(c) == -EOPNOTSUPP);
    CHECK(env.areas().empty());

    SECTION("EOPNOTSUPP comes before every other check")
    {
        auto bad = Env::cmd(0x80, kBadId, kMax, kMax, kMax);
        CHECK(env.map_cmd(bad) == -EOPNOTSUPP);
        bad = Env::cmd(0, kBadId, kMax, 0, kMax);
        bad.__reserved = 0x80000000u;
        CHECK(env.map_cmd(bad) == -EOPNOTSUPP);
        // Nothing is written back on error.
        CHECK(bad.iova == kMax);
    }
}

// ---------------------------------------------------------------------------
// Range checks

TEST_CASE("IOAS_MAP: iova or length >= ULONG_MAX is EOVERFLOW, before the IOAS lookup",
          "[map][overflow]")
{
    Env env;
    CHECK(env.fixed(kBuf, kPage, kMax) == -EOVERFLOW);
    CHECK(env.fixed(kBuf, kMax, 0x100000) == -EOVERFLOW);
    // The iova field is checked even when it is not used (automatic mode).
    std::uint64_t iova = kMax;
    CHECK(env.autom(kBuf, kPage, &iova) == -EOVERFLOW);
    CHECK(iova == kMax);
    // Before the IOAS lookup: a bad IOAS still gives EOVERFLOW.
    auto c = Env::cmd(kFixed | kRW, kBadId, kBuf, kPage, kMax);
    CHECK(env.map_cmd(c) == -EOVERFLOW);
    c = Env::cmd(kRW, kBadId, kBuf, kMax, 0);
    CHECK(env.map_cmd(c) == -EOVERFLOW);
    CHECK(env.areas().empty());
}

TEST_CASE("IOAS_MAP of an IOAS that does not exist is ENOENT", "[map][enoent]")
{
    Env env;
    std::uint64_t iova = 0;
    CHECK(env.autom(kBuf, kPage, &iova, kRW, kBadId) == -ENOENT);
    CHECK(env.fixed(kBuf, kPage, 0x1000, kRW, kBadId) == -ENOENT);
    auto c = Env::cmd(kRW, 0, kBuf, kPage, 0);
    CHECK(env.map_cmd(c) == -ENOENT);

    SECTION("an object of another type is not an IOAS")
    {
        std::uint32_t aid = 0;
        (void)env.access(env.ioas, &aid);
        CHECK(env.fixed(kBuf, kPage, 0x1000, kRW, aid) == -ENOENT);
    }
    SECTION("a destroyed IOAS")
    {
        std::uint32_t id = env.new_ioas();
        REQUIRE(env.client.destroy(id) == 0);
        CHECK(env.fixed(kBuf, kPage, 0x1000, kRW, id) == -ENOENT);
    }
    SECTION("ENOENT comes before length checks")
    {
        CHECK(env.fixed(kBuf, 0, 0x1000, kRW, kBadId) == -ENOENT);
        CHECK(env.fixed(kMax - kPage + 1, kPage, 0x1000, kRW, kBadId) == -ENOENT);
    }
}

TEST_CASE("IOAS_MAP with length 0 or larger than SIZE_MAX - PAGE_SIZE is EINVAL", "[map][length]")
{
    Env env;
    CHECK(env.fixed(kBuf, 0, 0x100000) == -EINVAL);
    std::uint64_t iova = 0;
    CHECK(env.autom(kBuf, 0, &iova) == -EINVAL);
    // iopt_alloc_pages(): length > SIZE_MAX - PAGE_SIZE -> EINVAL (not EOVERFLOW).
    CHECK(env.fixed(0, kMax - kPage + 1, 0) == -EINVAL);
    CHECK(env.fixed(0, kMax - 1, 0) == -EINVAL);
    CHECK(env.areas().empty());

    SECTION("length SIZE_MAX - PAGE_SIZE itself is accepted (nothing is pinned)")
    {
        REQUIRE(env.fixed(0, kMax - kPage, 0) == 0);
        CHECK(env.areas() == std::vector<Range>{{0, kMax - kPage - 1}});
        std::uint64_t unmapped = 0;
        REQUIRE(env.unmap(0, kMax, &unmapped) == 0);
        CHECK(unmapped == kMax - kPage);
    }
}

TEST_CASE("IOAS_MAP with user_va + length wrapping is EOVERFLOW", "[map][overflow]")
{
    Env env;
    // check_add_overflow(uptr, length, &end): the end itself must fit.
    CHECK(env.fixed(kMax - kPage + 1, kPage, 0x100000) == -EOVERFLOW);
    CHECK(env.fixed(kMax, 1, 0x100000) == -EOVERFLOW);
    std::uint64_t iova = 0;
    CHECK(env.autom(kMax - kPage + 1, kPage, &iova) == -EOVERFLOW);
    CHECK(env.areas().empty());
    // One page lower fits.
    CHECK(env.fixed(kMax - 2 * kPage + 1, kPage, 0x100000) == 0);
    CHECK(env.fixed(kMax - 1, 1, 0x200000) == 0);
    CHECK(env.areas().size() == 2);
}

TEST_CASE("IOAS_MAP with fixed iova + length - 1 wrapping is EOVERFLOW", "[map][overflow][fixed]")
{
    Env env;
    CHECK(env.fixed(kBuf, kPage + 1, kMax - kPage + 1) == -EOVERFLOW);
    // user_va 0 so that only the IOVA side can overflow:
    // 0x2001 + (0xffffffffffffe000 - 1) == 2^64.
    CHECK(env.fixed(0, kMax - 0x1fff, 0x2001) == -EOVERFLOW);
    CHECK(env.areas().empty());
    CHECK(env.fixed(0, kMax - 0x1fff, 0x2000) == 0); // ends exactly at ULONG_MAX
    CHECK(env.areas() == std::vector<Range>{{0x2000, kMax}});
}

// ---------------------------------------------------------------------------
// Overlap with existing areas and reserved ranges

TEST_CASE("IOAS_MAP with FIXED_IOVA never replaces a mapping: EEXIST on any overlap",
          "[map][fixed][eexist]")
{
    Env env;
    REQUIRE(env.fixed(kBuf, 0x4000, 0x100000) == 0); // [0x100000, 0x103fff]
    const auto before = env.areas();

    CHECK(env.fixed(kBuf, 0x4000, 0x100000) == -EEXIST); // same
    CHECK(env.fixed(kBuf, 0x1000, 0x101000) == -EEXIST); // inside
    CHECK(env.fixed(kBuf, 0x6000, 0xff000) == -EEXIST);  // covering
    CHECK(env.fixed(kBuf, 0x2000, 0xff000) == -EEXIST);  // left edge
    CHECK(env.fixed(kBuf, 0x2000, 0x103000) == -EEXIST); // right edge
    CHECK(env.fixed(kBuf, 1, 0x100000) == -EEXIST);      // first byte
    CHECK(env.fixed(kBuf, 1, 0x103fff) == -EEXIST);      // last byte
    CHECK(env.fixed(kBuf, 2, 0xfffff) == -EEXIST);       // one byte into the left
    CHECK(env.fixed(kBuf, 2, 0x103fff) == -EEXIST);      // one byte into the right
    CHECK(env.areas() == before);

    // Touching neighbours on both sides are fine, page or byte granular.
    CHECK(env.fixed(kBuf, 0x1000, 0xff000) == 0);
    CHECK(env.fixed(kBuf, 0x1000, 0x104000) == 0);
    CHECK(env.fixed(kBuf, 1, 0xfefff) == 0);
    CHECK(env.fixed(kBuf, 1, 0x105000) == 0);
    CHECK(env.areas() == std::vector<Range>{{0xfefff, 0xfefff},
                                            {0xff000, 0xfffff},
                                            {0x100000, 0x103fff},
                                            {0x104000, 0x104fff},
                                            {0x105000, 0x105000}});

    SECTION("a failed map writes nothing back")
    {
        auto c = Env::cmd(kFixed | kRW, env.ioas, kBuf, kPage, 0x101000);
        REQUIRE(env.map_cmd(c) == -EEXIST);
        CHECK(c.iova == 0x101000);
        CHECK(c.length == kPage);
    }
}

TEST_CASE("IOAS_MAP with FIXED_IOVA intersecting a reserved range is EINVAL",
          "[map][fixed][reserved]")
{
    Env env;
    REQUIRE(env.reserve(0x200000, 0x200fff) == 0);
    CHECK(env.fixed(kBuf, 0x1000, 0x200000) == -EINVAL);
    CHECK(env.fixed(kBuf, 0x2000, 0x1ff000) == -EINVAL);
    CHECK(env.fixed(kBuf, 0x2000, 0x200800) == -EINVAL);
    CHECK(env.fixed(kBuf, 1, 0x200fff) == -EINVAL);
    CHECK(env.fixed(kBuf, 0x20000, 0x1f0000) == -EINVAL); // covering
    CHECK(env.areas().empty());
    // Touching is fine.
    CHECK(env.fixed(kBuf, 0x1000, 0x1ff000) == 0);
    CHECK(env.fixed(kBuf, 0x1000, 0x201000) == 0);

    SECTION("the reserved check comes before the area check")
    {
        // Intersects both the area [0x1ff000, 0x1fffff] and the reserved range.
        CHECK(env.fixed(kBuf, 0x2000, 0x1ff000) == -EINVAL);
    }
    SECTION("automatic placement steps over the reserved range")
    {
        REQUIRE(env.reserve(kPage, 0xfffff) == 0);
        std::uint64_t iova = 0;
        REQUIRE(env.autom(kBuf, kPage, &iova) == 0);
        CHECK(iova == 0x100000);
    }
}

// ---------------------------------------------------------------------------
// Automatic placement

TEST_CASE("Automatic IOVA alignment: min(roundup_pow2(length), lowest bit of user_va), capped at 2 MiB",
          "[map][auto][align]")
{
    struct Row {
        std::uint64_t user_va;
        std::uint64_t length;
        std::uint64_t expect; // first fit in an empty IOAS: [PAGE_SIZE, ...]
    };
    const Row rows[] = {
        {kBuf, 0x1000, 0x1000},             // a = 4K
        {kBuf, 0x1800, 0x2000},             // roundup 8K
        {kBuf, 0x3000, 0x4000},             // roundup 16K
        {kBuf, 0x10000, 0x10000},           // 64K
        {kBuf, 0x400000, 0x200000},         // 4M capped to 2M
        {kBuf, 0x3000000, 0x200000},        // 48M capped to 2M
        {kBuf + 0x200000, 0x400000, 0x200000}, // uptr 2M aligned -> 2M
        {kBuf + 0x100000, 0x400000, 0x100000}, // uptr 1M aligned -> 1M
        {kBuf + 0x1000, 0x10000, 0x1000},   // uptr only 4K aligned
        {kBuf + 0x800, 0x1000, 0x1800},     // a = 0x800, offset 0x800
        {kBuf + 0x123, 0x1000, 0x1123},     // a = 1, offset 0x123
        {kBuf + 0x10, 0x20000, 0x1010},     // a = 16, offset 0x10
        {kBuf, 1, 0x1000},                  // roundup(1) = 1
        {kBuf, 0x3001, 0x4000},             // roundup 16K
        {0, 0x3000, 0x4000},                // uptr 0: roundup(length) only
        {0, 0x300000, 0x200000},            // uptr 0: 4M capped to 2M
        {0x10200123, 0x400000, 0x1123},     // odd uptr: a = 1
    };
    for (const Row& row : rows) {
        Env env;
        INFO("user_va 0x" << std::hex << row.user_va << " length 0x" << row.length);
        std::uint64_t iova = 0;
        REQUIRE(env.autom(row.user_va, row.length, &iova) == 0);
        CHECK(iova == row.expect);
        CHECK(iova != 0);
        CHECK(iova % kPage == row.user_va % kPage);
    }
}

TEST_CASE("Automatic placement keeps the page offset of user_va", "[map][auto][offset]")
{
    Env env;
    std::uint64_t iova = 0;
    REQUIRE(env.autom(kBuf + 0x123, 0x1000, &iova) == 0);
    CHECK(iova == 0x1123);
    REQUIRE(env.autom(kBuf + 0x123, 0x1000, &iova) == 0);
    CHECK(iova == 0x2123); // right after the first
    REQUIRE(env.autom(kBuf + 0x800, 0x1000, &iova) == 0);
    // hole starts at 0x3123; ALIGN_UP to 0x800 = 0x3800, | 0x800
    CHECK(iova == 0x3800);
    REQUIRE(env.autom(kBuf, 0x1000, &iova) == 0);
    CHECK(iova == 0x5000);
    REQUIRE(env.autom(kBuf + 0xfff, 0x10, &iova) == 0);
    // a = 1, offset 0xfff: the search starts at 0x1000 | 0xfff inside the
    // first areas; hole [0x3123, 0x37ff] gives 0x3fff (past its end), hole
    // [0x4800, 0x4fff] gives 0x4fff (== its last, refused), then 0x6fff.
    CHECK(iova == 0x6fff);
}

TEST_CASE("Automatic placement starts its hole search at the aligned start of the span "
          "(kernel __alloc_iova_check_used moves start_used)",
          "[map][auto][offset]")
{
    Env env;
    SECTION("default span [PAGE_SIZE, ULONG_MAX - PAGE_SIZE]")
    {
        // An area ending below PAGE_SIZE | offset. The kernel walks holes from
        // 0x1000 | 0x123 = 0x1123, which is free, so it answers 0x1123 and
        // keeps the page offset. ALIGN_UP(0x1050, 1) | 0x123 would be 0x1173.
        REQUIRE(env.fixed(kBuf, 0x50, 0x1000) == 0);
        std::uint64_t iova = 0;
        REQUIRE(env.autom(kBuf + 0x123, 0x100, &iova) == 0);
        CHECK(iova == 0x1123);
        CHECK(iova % kPage == 0x123);
    }
    SECTION("inside an allowed range")
    {
        REQUIRE(env.allow({{0x100000, 0x1fffff}}) == 0);
        REQUIRE(env.fixed(kBuf, 0x50, 0x100000) == 0);
        std::uint64_t iova = 0;
        REQUIRE(env.autom(kBuf + 0x123, 0x100, &iova) == 0);
        CHECK(iova == 0x100123);
    }
}

TEST_CASE("Automatic placement is first fit: the lowest hole that fits wins", "[map][auto][firstfit]")
{
    Env env;
    std::uint64_t iova = 0;
    REQUIRE(env.autom(kBuf, 0x1000, &iova) == 0);
    CHECK(iova == 0x1000);
    REQUIRE(env.autom(kBuf, 0x3000, &iova) == 0); // a = 16K
    CHECK(iova == 0x4000);
    REQUIRE(env.autom(kBuf, 0x1000, &iova) == 0); // hole [0x2000, 0x3fff]
    CHECK(iova == 0x2000);
    REQUIRE(env.autom(kBuf, 0x1000, &iova) == 0);
    CHECK(iova == 0x3000);
    REQUIRE(env.autom(kBuf, 0x1000, &iova) == 0); // [0x4000, 0x6fff] is taken
    CHECK(iova == 0x7000);
    REQUIRE(env.autom(kBuf, 0x2000, &iova) == 0); // a = 8K
    CHECK(iova == 0x8000);
    CHECK(env.areas().size() == 6);
}

TEST_CASE("Automatic placement skips reserved ranges", "[map][auto][reserved]")
{
    Env env;
    REQUIRE(env.reserve(kPage, 0xfffff) == 0);
    std::uint64_t iova = 0;
    REQUIRE(env.autom(kBuf, kPage, &iova) == 0);
    CHECK(iova == 0x100000);
    REQUIRE(env.reserve(0x102000, 0x102fff) == 0);
    REQUIRE(env.autom(kBuf, kPage, &iova) == 0);
    CHECK(iova == 0x101000);
    REQUIRE(env.autom(kBuf, kPage, &iova) == 0);
    CHECK(iova == 0x103000);
    // A 2-page map needs an 8K aligned hole of 8K: 0x104000.
    REQUIRE(env.autom(kBuf, 2 * kPage, &iova) == 0);
    CHECK(iova == 0x104000);
}

TEST_CASE("Automatic placement fills holes left by unmaps", "[map][auto][unmap]")
{
    Env env;
    for (std::uint64_t i = 1; i <= 5; ++i) {
        std::uint64_t iova = 0;
        REQUIRE(env.autom(kBuf, kPage, &iova) == 0);
        REQUIRE(iova == i * kPage);
    }
    REQUIRE(env.unmap(0x3000, kPage) == 0);
    std::uint64_t iova = 0;
    REQUIRE(env.autom(kBuf, kPage, &iova) == 0);
    CHECK(iova == 0x3000);

    REQUIRE(env.unmap(0x2000, kPage) == 0);
    REQUIRE(env.unmap(0x3000, kPage) == 0);
    // 12K needs 16K alignment: the hole [0x2000, 0x3fff] cannot take it.
    REQUIRE(env.autom(kBuf, 0x3000, &iova) == 0);
    CHECK(iova == 0x8000);
    // 8K with 8K alignment fits the hole exactly.
    REQUIRE(env.autom(kBuf, 0x2000, &iova) == 0);
    CHECK(iova == 0x2000);
    REQUIRE(env.autom(kBuf, kPage, &iova) == 0);
    CHECK(iova == 0x6000);
}

TEST_CASE("Automatic placement never returns IOVA 0 nor the top page", "[map][auto][allowed]")
{
    Env env;
    SECTION("IOVA 0 allowed")
    {
        REQUIRE(env.allow({{0, 0xffff}}) == 0);
        std::uint64_t iova = 0;
        REQUIRE(env.autom(kBuf, kPage, &iova) == 0);
        CHECK(iova == kPage);
    }
    SECTION("top pages allowed")
    {
        REQUIRE(env.allow({{kMax - 0x1fff, kMax}}) == 0);
        std::uint64_t iova = 0;
        REQUIRE(env.autom(kBuf, kPage, &iova) == 0);
        CHECK(iova == kMax - 0x1fff);
        iova = 0x1234000;
        CHECK(env.autom(kBuf, kPage, &iova) == -ENOSPC);
        CHECK(iova == 0x1234000);
    }
}

TEST_CASE("Automatic placement fails with ENOSPC when the allowed ranges are full",
          "[map][auto][enospc]")
{
    Env env;
    REQUIRE(env.allow({{0x100000, 0x103fff}}) == 0);
    for (std::uint64_t i = 0; i < 4; ++i) {
        std::uint64_t iova = 0;
        REQUIRE(env.autom(kBuf, kPage, &iova) == 0);
        CHECK(iova == 0x100000 + i * kPage);
    }
    std::uint64_t iova = 0xabc000;
    CHECK(env.autom(kBuf, kPage, &iova) == -ENOSPC);
    CHECK(iova == 0xabc000); // nothing written back
    CHECK(env.autom(kBuf, 1, &iova) == -ENOSPC);
    CHECK(env.areas().size() == 4);

    SECTION("FIXED_IOVA maps are not limited to the allowed ranges")
    {
        CHECK(env.fixed(kBuf, kPage, 0x200000) == 0);
        CHECK(env.fixed(kBuf, kPage, 0x104000) == 0);
    }
    SECTION("an unmap makes room again")
    {
        REQUIRE(env.unmap(0x102000, kPage) == 0);
        iova = 0;
        REQUIRE(env.autom(kBuf, kPage, &iova) == 0);
        CHECK(iova == 0x102000);
    }
    SECTION("a request larger than the allowed range")
    {
        Env other;
        REQUIRE(other.allow({{0x100000, 0x100fff}}) == 0);
        iova = 0;
        CHECK(other.autom(kBuf, 0x2000, &iova) == -ENOSPC);
        // Alignment too: 8K at 8K alignment does not fit [0x101000, 0x102fff].
        Env third;
        REQUIRE(third.allow({{0x101000, 0x102fff}}) == 0);
        CHECK(third.autom(kBuf, 0x2000, &iova) == -ENOSPC);
        CHECK(third.autom(kBuf + 0x1000, 0x2000, &iova) == 0);
        CHECK(iova == 0x101000);
    }
}

TEST_CASE("Automatic placement with length >= ULONG_MAX/2 is EOVERFLOW", "[map][auto][overflow]")
{
    Env env;
    std::uint64_t iova = 0;
    CHECK(env.autom(0, kMax / 2, &iova) == -EOVERFLOW);
    CHECK(env.autom(0, kMax / 2 + 1, &iova) == -EOVERFLOW);
    CHECK(env.autom(0, kMax - kPage * 16, &iova) == -EOVERFLOW);
    CHECK(env.areas().empty());
    SECTION("just below is placed (alignment capped at 2 MiB)")
    {
        REQUIRE(env.autom(kBuf, kMax / 2 - 1, &iova) == 0);
        CHECK(iova == kHuge);
    }
    SECTION("FIXED_IOVA has no such limit")
    {
        CHECK(env.fixed(0, kMax / 2 + 1, 0x1000) == 0);
    }
}

// ---------------------------------------------------------------------------
// Pinning: nothing is pinned at map time without a domain or an access

TEST_CASE("IOAS_MAP of unmapped client memory succeeds; pinning it through an access is EFAULT",
          "[map][access][efault]")
{
    Env env;
    std::uint64_t iova = 0;
    REQUIRE(env.autom(kUnmappedVa, 2 * kPage, &iova) == 0);
    REQUIRE(env.fixed(kUnmappedVa, 2 * kPage, 0x800000) == 0);
    auto& acc = env.access();
    std::vector<std::uint64_t> phys;
    CHECK(acc.pin_pages(iova, 2 * kPage, false, &phys) == -EFAULT);
    CHECK(acc.pin_pages(0x800000, kPage, true, &phys) == -EFAULT);
    CHECK(acc.pin_count() == 0);
    CHECK(env.charged() == 0);

    SECTION("all or nothing: a range half in client memory pins nothing")
    {
        // [0x13f000, 0x141000): first page inside the array region, second outside.
        const std::uint64_t va = test::kArrayAddr + test::kArrayRegion - kPage;
        REQUIRE(env.fixed(va, 2 * kPage, 0x900000) == 0);
        CHECK(acc.pin_pages(0x900000, 2 * kPage, false, &phys) == -EFAULT);
        CHECK(env.charged() == 0);
        CHECK(acc.pin_pages(0x900000, kPage, false, &phys) == 0);
        CHECK(phys.size() == 1);
        CHECK(env.charged() == 1);
    }
    SECTION("a pin of mapped memory works and is charged per page")
    {
        REQUIRE(env.fixed(kBuf, 3 * kPage, 0xa00000) == 0);
        CHECK(acc.pin_pages(0xa00000, 3 * kPage, true, &phys) == 0);
        CHECK(phys.size() == 3);
        CHECK(env.charged() == 3);
    }
}

TEST_CASE("Pinning a WRITEABLE area requires writable client memory", "[map][access][efault]")
{
    Env env;
    const std::uint64_t ro = 0x50000000;
    env.client.buffer().add_region(ro, 4 * kPage, false);
    REQUIRE(env.fixed(ro, 2 * kPage, 0x100000, kRW) == 0); // nothing pinned yet
    REQUIRE(env.fixed(ro, 2 * kPage, 0x200000, kR) == 0);
    auto& acc = env.access();
    std::vector<std::uint64_t> phys;
    // pages->writable makes every pin FOLL_WRITE, read pins included.
    CHECK(acc.pin_pages(0x100000, kPage, true, &phys) == -EFAULT);
    CHECK(acc.pin_pages(0x100000, kPage, false, &phys) == -EFAULT);
    CHECK(env.charged() == 0);
    // A READABLE-only map of the same memory pins fine.
    CHECK(acc.pin_pages(0x200000, 2 * kPage, false, &phys) == 0);
    CHECK(phys.size() == 2);
    CHECK(env.charged() == 2);
}

TEST_CASE("Pinning through an access needs page-aligned segments of the mapped memory",
          "[map][access][align]")
{
    // device.c iommufd_access_pin_pages(): iopt_area_contig_is_aligned()
    // wants each segment to start on a page of the pages object and every
    // segment but the last to end on a page end, else EINVAL.
    Env env;
    REQUIRE(env.fixed(kBuf + 0x123, 0x1000, 0x100123) == 0);
    auto& acc = env.access();
    std::vector<std::uint64_t> phys;
    CHECK(acc.pin_pages(0x100123, 0x100, false, &phys) == -EINVAL);
    CHECK(acc.pin_count() == 0);
    // 0x101000 is byte 0x1000 of the pages: aligned.
    CHECK(acc.pin_pages(0x101000, 0x123, false, &phys) == 0);
    CHECK(phys.size() == 1);

    SECTION("a first segment ending inside a page")
    {
        REQUIRE(env.fixed(kBuf, 0x800, 0x200000) == 0);
        REQUIRE(env.fixed(kBuf + 0x1000, 0x1000, 0x200800) == 0);
        CHECK(acc.pin_pages(0x200000, 0x1000, false, &phys) == -EINVAL);
        CHECK(acc.pin_pages(0x200000, 0x800, false, &phys) == 0); // one segment
    }
}

// ---------------------------------------------------------------------------
// HUGE_PAGES = 0: everything PAGE_SIZE aligned

TEST_CASE("With HUGE_PAGES=0 an unaligned length, iova or user_va is EINVAL", "[map][hugepages]")
{
    Env env;
    REQUIRE(env.huge_pages(0) == 0);
    std::uint64_t iova = 0;

    CHECK(env.fixed(kBuf, 0x800, 0x100000) == -EINVAL);          // length
    CHECK(env.fixed(kBuf, 0x1800, 0x100000) == -EINVAL);         // length
    CHECK(env.fixed(kBuf, kPage, 0x100800) == -EINVAL);          // iova
    CHECK(env.fixed(kBuf + 0x800, kPage, 0x100000) == -EINVAL);  // user_va
    CHECK(env.fixed(kBuf + 0x800, kPage, 0x100800) == -EINVAL);  // both
    CHECK(env.autom(kBuf, 0x800, &iova) == -EINVAL);             // length
    CHECK(env.autom(kBuf + 0x800, kPage, &iova) == -EINVAL);     // a = 0x800 < 4K
    CHECK(env.autom(kBuf + 0x123, kPage, &iova) == -EINVAL);
    CHECK(env.areas().empty());

    // Aligned requests still work.
    CHECK(env.fixed(kBuf, kPage, 0x100000) == 0);
    REQUIRE(env.autom(kBuf, kPage, &iova) == 0);
    CHECK(iova % kPage == 0);

    SECTION("HUGE_PAGES=1 lifts the restriction")
    {
        REQUIRE(env.huge_pages(1) == 0);
        CHECK(env.fixed(kBuf + 0x800, 0x800, 0x200800) == 0);
        iova = 0;
        CHECK(env.autom(kBuf + 0x123, 0x10, &iova) == 0);
        CHECK(iova % kPage == 0x123);
    }
}

// ---------------------------------------------------------------------------
// Scale and cross-check against the kernel's allocator

TEST_CASE("10000 automatic 4K maps are distinct, keep their page offsets, and unmap together",
          "[map][auto][many]")
{
    Env env;
    KernelIovaModel model;
    std::mt19937_64 rng(12345);
    constexpr int kCount = 10000;
    std::set<std::uint64_t> iovas;
    std::uint64_t prev_last = 0;
    bool disjoint = true;
    std::map<std::uint64_t, std::uint64_t> placed;
    for (int i = 0; i < kCount; ++i) {
        // Offsets 0 and 0x800 only: with these the kernel's
        // ALIGN_UP(hole, a) | offset always lands on the user's offset.
        const std::uint64_t off = (rng() & 1) ? 0x800 : 0;
        const std::uint64_t va = kBuf + (rng() % 16000) * kPage + off;
        std::uint64_t expect = 0;
        REQUIRE(model.alloc(va, kPage, &expect) == 0);
        std::uint64_t iova = 0;
        INFO("map " << i << " user_va 0x" << std::hex << va);
        REQUIRE(env.autom(va, kPage, &iova) == 0);
        REQUIRE(iova == expect);
        REQUIRE(iova != 0);
        REQUIRE(iova % kPage == off);
        model.used.emplace(iova, iova + kPage - 1);
        placed.emplace(iova, iova + kPage - 1);
        iovas.insert(iova);
    }
    CHECK(iovas.size() == kCount);
    for (auto [first, last] : placed) {
        if (prev_last && first <= prev_last)
            disjoint = false;
        prev_last = last;
    }
    CHECK(disjoint);
    CHECK(env.obj(env.ioas).iopt().area_count() == kCount);

    std::uint64_t unmapped = 0;
    REQUIRE(env.unmap(0, kMax, &unmapped) == 0);
    CHECK(unmapped == std::uint64_t{kCount} * kPage);
    CHECK(env.areas().empty());
}

namespace {

// Random maps (automatic and fixed) and exact unmaps, each result compared
// with KernelIovaModel. `permanent` areas are never unmapped: they keep the
// first page of every span the allocator searches mapped, so that the
// start-of-span clipping (checked separately above) cannot mask other
// differences.
void random_cross_check(Env& env, KernelIovaModel& model, const std::vector<Range>& reserved,
                        const std::vector<Range>& permanent, std::uint64_t seed, int ops,
                        std::uint64_t fixed_window)
{
    for (auto [f, l] : reserved) {
        REQUIRE(env.reserve(f, l) == 0);
        model.used.emplace(f, l);
    }
    for (auto [f, l] : permanent) {
        REQUIRE(env.fixed(kBuf, l - f + 1, f) == 0);
        model.used.emplace(f, l);
    }
    std::mt19937_64 rng(seed);
    std::map<std::uint64_t, std::uint64_t> areas; // the ones ops may unmap
    auto reserved_hit = [&](std::uint64_t f, std::uint64_t l) {
        for (auto [rf, rl] : reserved)
            if (rf <= l && f <= rl)
                return true;
        return false;
    };
    const std::uint64_t offsets[] = {0, 0, 0, 0x123, 0x800, 0x10, 0xfff, 0x400};
    int autos = 0, fixeds = 0, unmaps = 0;
    for (int op = 0; op < ops; ++op) {
        const unsigned kind = rng() % 8;
        if (kind < 2 && !areas.empty()) {
            auto it = areas.begin();
            std::advance(it, rng() % areas.size());
            auto [f, l] = *it;
            std::uint64_t unmapped = 0;
            INFO("op " << op << " unmap 0x" << std::hex << f << "-0x" << l);
            REQUIRE(env.unmap(f, l - f + 1, &unmapped) == 0);
            REQUIRE(unmapped == l - f + 1);
            model.used.erase(f);
            areas.erase(it);
            ++unmaps;
            continue;
        }
        std::uint64_t length;
        switch (rng() % 4) {
        case 0: length = 1 + rng() % 0x3000; break;
        case 1: length = kPage * (1 + rng() % 8); break;
        case 2: length = 1 + rng() % 0x40000; break;
        default: length = (rng() % 4 == 0) ? kHuge + kPage * (rng() % 4) : kPage; break;
        }
        std::uint64_t va;
        switch (rng() % 6) {
        case 0: va = 0; break;
        case 1: va = kBuf + (rng() % 32) * kHuge; break;
        default: va = kBuf + (rng() % 4096) * kPage + offsets[rng() % 8]; break;
        }
        if (kind == 2) {
            const std::uint64_t iova = rng() % fixed_window;
            const std::uint64_t last = iova + length - 1;
            const int expect = reserved_hit(iova, last) ? -EINVAL
                               : model.intersects(iova, last) ? -EEXIST
                                                              : 0;
            INFO("op " << op << " fixed iova 0x" << std::hex << iova << " length 0x" << length);
            REQUIRE(env.fixed(va, length, iova) == expect);
            if (expect == 0) {
                model.used.emplace(iova, last);
                areas.emplace(iova, last);
            }
            ++fixeds;
            continue;
        }
        std::uint64_t expect_iova = 0;
        const int expect = model.alloc(va, length, &expect_iova);
        std::uint64_t iova = 0x5a5a000;
        INFO("op " << op << " auto user_va 0x" << std::hex << va << " length 0x" << length
                   << " kernel iova 0x" << expect_iova);
        REQUIRE(env.autom(va, length, &iova) == expect);
        if (expect == 0) {
            REQUIRE(iova == expect_iova);
            model.used.emplace(iova, iova + length - 1);
            areas.emplace(iova, iova + length - 1);
        } else {
            REQUIRE(iova == 0x5a5a000);
        }
        ++autos;
    }
    // The sequence exercised every kind of step.
    CHECK(autos > ops / 2);
    CHECK(fixeds > 0);
    CHECK(unmaps > 0);
    // Whatever is left is exactly what the model holds.
    std::map<std::uint64_t, std::uint64_t> all(areas);
    for (auto [f, l] : permanent)
        all.emplace(f, l);
    CHECK(env.areas() == std::vector<Range>(all.begin(), all.end()));
}

} // namespace

TEST_CASE("Automatic placement matches the kernel's iopt_alloc_iova over random map/unmap sequences",
          "[map][auto][random]")
{
    SECTION("default span with reserved ranges")
    {
        Env env;
        KernelIovaModel model;
        random_cross_check(env, model, {{0x10000, 0x1ffff}, {0x300000, 0x3fffff}},
                           {{kPage, 2 * kPage - 1}}, 1, 4000, 0x1000000);
    }
    SECTION("allowed ranges, two of them touching")
    {
        Env env;
        KernelIovaModel model;
        model.allowed = {{0x100000, 0x1fffff}, {0x400000, 0x7fffff}, {0x800000, 0x80ffff}};
        REQUIRE(env.allow(model.allowed) == 0);
        random_cross_check(env, model, {}, {{0x100000, 0x100fff}, {0x400000, 0x400fff}}, 2,
                           4000, 0x1000000);
    }
}
