// IovaFreeSpace against a plain reference: a randomized differential test
// of first-fit placement, plus the edges of the address space.
#include <catch2/catch.hpp>

#include <map>
#include <random>

#include "core/iova_free_space.h"

using ioasid::core::IovaFreeSpace;
using ioasid::core::IovaRange;

namespace {

// The reference keeps a sorted map of free ranges and scans it linearly.
struct Reference {
    std::map<std::uint64_t, std::uint64_t> free; // first -> last

    void release(IovaRange r)
    {
        auto next = free.upper_bound(r.first);
        if (next != free.begin()) {
            auto prev = std::prev(next);
            if (prev->second + 1 == r.first) {
                r.first = prev->first;
                free.erase(prev);
            }
        }
        next = free.upper_bound(r.first);
        if (next != free.end() && r.last + 1 == next->first) {
            r.last = next->second;
            free.erase(next);
        }
        free[r.first] = r.last;
    }
    void occupy(IovaRange r)
    {
        std::map<std::uint64_t, std::uint64_t> out;
        for (auto [f, l] : free) {
            if (l < r.first || f > r.last) {
                out[f] = l;
                continue;
            }
            if (f < r.first)
                out[f] = r.first - 1;
            if (l > r.last)
                out[r.last + 1] = l;
        }
        free = std::move(out);
    }
};

std::optional<std::uint64_t> aligned_fit(IovaRange r, std::uint64_t length, std::uint64_t align)
{
    std::uint64_t start = (r.first + align - 1) & ~(align - 1);
    if (start < r.first || start >= r.last || r.last - start < length - 1)
        return std::nullopt;
    return start;
}

} // namespace

TEST_CASE("free space merges neighbours and splits on occupy", "[core][free-space]")
{
    IovaFreeSpace space;
    space.release({0x1000, 0x1fff});
    space.release({0x3000, 0x3fff});
    CHECK(space.range_count() == 2);
    space.release({0x2000, 0x2fff});
    CHECK(space.range_count() == 1);
    space.occupy({0x1800, 0x27ff});
    std::vector<IovaRange> seen;
    space.for_each({0, UINT64_MAX}, [&](IovaRange r) { seen.push_back(r); });
    REQUIRE(seen.size() == 2);
    CHECK(seen[0] == IovaRange{0x1000, 0x17ff});
    CHECK(seen[1] == IovaRange{0x2800, 0x3fff});
}

TEST_CASE("free space handles the ends of the 64-bit space", "[core][free-space]")
{
    IovaFreeSpace space;
    space.release({0, UINT64_MAX});
    CHECK(space.range_count() == 1);
    auto fit = space.first_fit(0xfff, 0x1fff, [](IovaRange r) { return aligned_fit(r, 0x1000, 0x1000); });
    REQUIRE(fit);
    CHECK(*fit == 0);
    space.occupy({UINT64_MAX - 0xfff, UINT64_MAX});
    space.occupy({0, 0xfff});
    std::vector<IovaRange> seen;
    space.for_each({0, UINT64_MAX}, [&](IovaRange r) { seen.push_back(r); });
    REQUIRE(seen.size() == 1);
    CHECK(seen[0] == IovaRange{0x1000, UINT64_MAX - 0x1000});
    space.release({UINT64_MAX - 0xfff, UINT64_MAX});
    seen.clear();
    space.for_each({0, UINT64_MAX}, [&](IovaRange r) { seen.push_back(r); });
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].last == UINT64_MAX);
}

TEST_CASE("first fit equals a linear scan under random churn", "[core][free-space]")
{
    std::mt19937_64 rng(12345);
    IovaFreeSpace space;
    Reference ref;
    const IovaRange window{0x1000, (1ULL << 32) - 1};
    space.release(window);
    ref.release(window);
    std::vector<IovaRange> used;

    for (int step = 0; step < 4000; ++step) {
        bool do_alloc = used.empty() || rng() % 3 != 0;
        if (do_alloc) {
            std::uint64_t length = (1 + rng() % 64) * 0x1000;
            if (rng() % 5 == 0)
                length = 1 + rng() % 0x3000; // odd sizes too
            std::uint64_t align = 1ULL << (rng() % 22);
            std::uint64_t min_span = std::max<std::uint64_t>(length - 1, 1);
            std::uint64_t sure_span = (align - 1) + min_span;
            auto fit = [&](IovaRange r) { return aligned_fit(r, length, align); };
            auto got = space.first_fit(min_span, sure_span, fit);
            std::optional<std::uint64_t> want;
            for (auto [f, l] : ref.free) {
                if ((want = fit({f, l})))
                    break;
            }
            REQUIRE(got == want);
            if (got) {
                IovaRange r{*got, *got + length - 1};
                space.occupy(r);
                ref.occupy(r);
                used.push_back(r);
            }
        } else {
            std::size_t victim = rng() % used.size();
            IovaRange r = used[victim];
            used.erase(used.begin() + static_cast<std::ptrdiff_t>(victim));
            space.release(r);
            ref.release(r);
        }
        REQUIRE(space.range_count() == ref.free.size());
    }
}
