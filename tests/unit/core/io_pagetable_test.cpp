// IoPagetable placement checked against a literal transcription of the
// kernel's iopt_alloc_iova(): walk allowed spans, then the holes between
// reserved ranges and areas, first fit wins.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "core/context.h"
#include "core/io_pagetable.h"
#include "memory/buffer_caller.h"

using namespace ioasid;
using core::IovaRange;

namespace {

constexpr std::uint64_t kPage = 4096;

struct Fixture {
    core::CoreServices services;
    core::PinServices pin{services.accounting, services.phys};
    std::shared_ptr<memory::BufferCaller> caller = std::make_shared<memory::BufferCaller>();
    core::IoPagetable iopt;
    std::vector<IovaRange> reserved;
    std::vector<IovaRange> allowed;

    int map(std::uint64_t uptr, std::uint64_t length, std::uint64_t* iova, bool alloc)
    {
        std::shared_ptr<core::Pages> pages;
        if (int rc = core::Pages::create(caller, uptr, length, true, core::AccountMode::user, pin, &pages))
            return rc;
        core::PagesSlice slice{pages, uptr - pages->uptr(), length};
        return iopt.map_pages({&slice, 1}, length, iova, true, true, alloc);
    }

    // Holes of (reserved U areas) inside `span`, ascending.
    std::vector<IovaRange> holes(IovaRange span) const
    {
        std::vector<IovaRange> used = reserved;
        iopt.for_each_area([&](const core::Area& a) { used.push_back(a.iova); });
        std::sort(used.begin(), used.end(), [](auto& a, auto& b) { return a.first < b.first; });
        std::vector<IovaRange> out;
        std::uint64_t next = span.first;
        bool open = true;
        for (const IovaRange& u : used) {
            if (u.last < next || !open)
                continue;
            if (u.first > span.last)
                break;
            if (u.first > next)
                out.push_back({next, std::min(u.first - 1, span.last)});
            if (u.last >= span.last) {
                open = false;
                break;
            }
            next = std::max(next, u.last + 1);
        }
        if (open && next <= span.last)
            out.push_back({next, span.last});
        return out;
    }

    static bool check_range(std::uint64_t* start, std::uint64_t last, std::uint64_t length,
                            std::uint64_t alignment, std::uint64_t page_offset)
    {
        std::uint64_t aligned;
        if (__builtin_add_overflow(*start, alignment - 1, &aligned))
            return false;
        aligned &= ~(alignment - 1);
        aligned |= page_offset;
        if (aligned >= last || last - aligned < length - 1)
            return false;
        *start = aligned;
        return true;
    }

    // iopt_alloc_iova() of Linux 6.12, spelled out.
    std::optional<std::uint64_t> kernel_alloc(std::uint64_t uptr, std::uint64_t length) const
    {
        std::uint64_t alignment = length <= 1 ? 1 : std::bit_ceil(length);
        if (uptr)
            alignment = std::min(alignment, uptr & (~uptr + 1));
        alignment = std::min<std::uint64_t>(alignment, 2ULL << 20);
        std::vector<IovaRange> spans;
        const IovaRange whole{kPage, UINT64_MAX - kPage};
        if (allowed.empty()) {
            spans.push_back(whole);
        } else {
            std::vector<IovaRange> sorted = allowed;
            std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.first < b.first; });
            for (IovaRange r : sorted) {
                r.first = std::max(r.first, whole.first);
                r.last = std::min(r.last, whole.last);
                if (r.first > r.last)
                    continue;
                if (!spans.empty() && spans.back().last + 1 >= r.first)
                    spans.back().last = std::max(spans.back().last, r.last);
                else
                    spans.push_back(r);
            }
        }
        for (IovaRange span : spans) {
            std::uint64_t start = span.first;
            if (!check_range(&start, span.last, length, alignment, uptr % kPage))
                continue;
            // Holes are searched from the placement in the whole span up.
            for (IovaRange hole : holes({start, span.last})) {
                std::uint64_t s = hole.first;
                if (check_range(&s, hole.last, length, alignment, uptr % kPage))
                    return s;
            }
        }
        return std::nullopt;
    }
};

} // namespace

TEST_CASE("automatic IOVA matches the kernel's first fit", "[core][iopt]")
{
    std::mt19937_64 rng(GENERATE(1, 2, 3));
    Fixture f;
    REQUIRE(f.iopt.reserve({0x400000, 0x4fffff}, &f) == 0);
    f.reserved.push_back({0x400000, 0x4fffff});
    if (rng() % 2) {
        // Touching ranges join into one span; the reserved hole splits two.
        f.allowed = {{0x100000, 0x3fffff}, {0x500000, 0x1ffffff}, {0x2000000, 0x2ffffff},
                     {0x8000000, 0xfffffff}};
        REQUIRE(f.iopt.set_allowed(f.allowed) == 0);
    }

    std::vector<std::uint64_t> mapped;
    for (int step = 0; step < 1500; ++step) {
        if (!mapped.empty() && rng() % 3 == 0) {
            std::size_t i = rng() % mapped.size();
            const core::Area* area = f.iopt.find_area(mapped[i]);
            REQUIRE(area);
            std::uint64_t unmapped;
            REQUIRE(f.iopt.unmap_range(area->iova, &unmapped) == 0);
            mapped.erase(mapped.begin() + static_cast<std::ptrdiff_t>(i));
            continue;
        }
        std::uint64_t length = (1 + rng() % 300) * kPage;
        if (rng() % 4 == 0)
            length = 1 + rng() % 10000;
        std::uint64_t uptr = 0x10000000 + (rng() % 4096) * kPage;
        if (rng() % 3 == 0)
            uptr += rng() % kPage;
        if (rng() % 5 == 0)
            uptr = 0x40000000; // 1 GiB aligned: alignment capped at 2 MiB
        auto want = f.kernel_alloc(uptr, length);
        std::uint64_t iova = 0;
        int rc = f.map(uptr, length, &iova, true);
        if (!want) {
            CHECK(rc == -ENOSPC);
            continue;
        }
        REQUIRE(rc == 0);
        REQUIRE(iova == *want);
        // The sub-page offset survives whenever the alignment is at least a
        // page; below that the kernel ORs it into an unaligned hole start.
        std::uint64_t alignment = std::min(std::bit_ceil(length), uptr & (~uptr + 1));
        if (alignment >= kPage)
            CHECK(iova % kPage == uptr % kPage);
        mapped.push_back(iova);
    }
}

TEST_CASE("fixed maps ignore allowed ranges but not reserved ones", "[core][iopt]")
{
    Fixture f;
    REQUIRE(f.iopt.set_allowed({{0x100000, 0x1fffff}}) == 0);
    std::uint64_t iova = 0x800000;
    CHECK(f.map(0x10000000, kPage, &iova, false) == 0);
    REQUIRE(f.iopt.reserve({0x900000, 0x900fff}, &f) == -0);
    iova = 0x900000;
    CHECK(f.map(0x10000000, kPage, &iova, false) == -EINVAL);
    // A reservation over an area or an allowed range is refused.
    CHECK(f.iopt.reserve({0x800000, 0x800000}, &f) == -EADDRINUSE);
    CHECK(f.iopt.reserve({0x1ff000, 0x200fff}, &f) == -EADDRINUSE);
    // Allowing over a reserved range is refused and keeps the old list.
    CHECK(f.iopt.set_allowed({{0x900000, 0x9fffff}}) == -EADDRINUSE);
    iova = 0;
    REQUIRE(f.map(0x10000000, kPage, &iova, true) == 0);
    CHECK(iova >= 0x100000);
    CHECK(iova <= 0x1fffff);
    // Removing the reservation makes its IOVA usable again.
    f.iopt.remove_reserved(&f);
    iova = 0x900000;
    CHECK(f.map(0x10000000, kPage, &iova, false) == 0);
}

TEST_CASE("usable ranges are the holes of the reserved set", "[core][iopt]")
{
    Fixture f;
    auto ranges = [&] {
        std::vector<IovaRange> out;
        f.iopt.for_each_usable_range([&](IovaRange r) { out.push_back(r); });
        return out;
    };
    CHECK(ranges() == std::vector<IovaRange>{{0, UINT64_MAX}});
    int a, b, c;
    REQUIRE(f.iopt.reserve({0, 0xfff}, &a) == 0);
    REQUIRE(f.iopt.reserve({0x5000, 0x7fff}, &b) == 0);
    REQUIRE(f.iopt.reserve({0x6000, 0x8fff}, &c) == 0); // overlapping, other owner
    REQUIRE(f.iopt.reserve({0xfee00000, 0xfeefffff}, &a) == 0);
    REQUIRE(f.iopt.reserve({1ULL << 48, UINT64_MAX}, &b) == 0);
    CHECK(ranges() == std::vector<IovaRange>{{0x1000, 0x4fff}, {0x9000, 0xfedfffff},
                                             {0xfef00000, (1ULL << 48) - 1}});
    f.iopt.remove_reserved(&b);
    CHECK(ranges() == std::vector<IovaRange>{{0x1000, 0x5fff}, {0x9000, 0xfedfffff},
                                             {0xfef00000, UINT64_MAX}});
}

TEST_CASE("huge pages off demands page alignment of every area", "[core][iopt]")
{
    Fixture f;
    std::uint64_t iova = 0x100000;
    REQUIRE(f.map(0x10000100, 0x100, &iova, false) == 0);
    CHECK(f.iopt.disable_large_pages() == -EADDRINUSE);
    CHECK(f.iopt.large_pages());
    CHECK(f.iopt.iova_alignment() == 1);
    std::uint64_t unmapped;
    REQUIRE(f.iopt.unmap_range({0, UINT64_MAX}, &unmapped) == 0);
    CHECK(unmapped == 0x100);
    REQUIRE(f.iopt.disable_large_pages() == 0);
    CHECK(f.iopt.iova_alignment() == kPage);
    iova = 0x100000;
    CHECK(f.map(0x10000000, 0x100, &iova, false) == -EINVAL);
    CHECK(f.map(0x10000100, kPage, &iova, false) == -EINVAL);
    iova = 0x100100;
    CHECK(f.map(0x10000000, kPage, &iova, false) == -EINVAL);
    f.iopt.enable_large_pages();
    CHECK(f.iopt.iova_alignment() == 1);
}
