// TableMemory: tables of 4 KiB to 2 MiB, each aligned to its size, carved
// from 2 MiB blocks from the low end; freed buddies merge; the blocks go
// back when the last table does; and finding a table's entries needs no
// lock while another thread allocates new blocks.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "hwmodels/common/table_memory.h"
#include "memory/phys_space.h"

using namespace ioasid;
using hw::TableMemory;

namespace {

constexpr std::uint64_t kBase = 0x100000000; // the first 2 MiB a fresh PhysSpace gives

} // namespace

TEST_CASE("tables are naturally aligned powers of two, lowest address first")
{
    memory::PhysSpace phys;
    TableMemory m(phys);
    CHECK(m.alloc() == kBase);
    CHECK(m.alloc(64 * 1024) == kBase + 0x10000);    // past 4K, 8K, 16K, 32K buddies
    CHECK(m.alloc(8 * 1024) == kBase + 0x2000);
    CHECK(m.alloc(1024 * 1024) == kBase + 0x100000);
    CHECK(m.alloc(2048) == kBase + 0x1000);          // small requests take a page
    CHECK(m.pages_in_use() == 1 + 16 + 2 + 256 + 1);
    // A 2 MiB table needs a block of its own.
    const auto whole = m.alloc(2 * 1024 * 1024);
    REQUIRE(whole);
    CHECK(*whole % (2 * 1024 * 1024) == 0);
    CHECK(*whole != kBase);

    // Entries are reachable at any address inside a table, and zeroed.
    m.entries(kBase + 0x10000)[5] = 0x1234;
    CHECK(m.entries(kBase + 0x10000 + 5 * 8)[0] == 0x1234);
    m.free(kBase + 0x10000);
    CHECK(m.alloc(16 * 1024) == kBase + 0x4000);
    // The freed 64K went back as a whole and is handed out again zeroed.
    m.free(kBase + 0x4000);
    const auto again = m.alloc(64 * 1024);
    CHECK(again == kBase + 0x10000);
    CHECK(m.entries(*again)[5] == 0);
}

TEST_CASE("freed buddies merge, and the blocks go back with the last table")
{
    memory::PhysSpace phys;
    std::vector<std::uint64_t> pages;
    {
        TableMemory m(phys);
        for (int i = 0; i < 512; ++i)
            pages.push_back(*m.alloc());
        CHECK(pages.back() == kBase + 511 * 0x1000);
        const auto keep = m.alloc(); // a second block
        REQUIRE(keep);
        for (std::uint64_t pa : pages)
            m.free(pa);
        // The first block is whole again: a 2 MiB table fits at its start.
        CHECK(m.alloc(2 * 1024 * 1024) == kBase);
        CHECK(phys.reserved_pages() == 1024);
        m.free(kBase);
        m.free(*keep);
        CHECK(m.pages_in_use() == 0);
        CHECK(phys.reserved_pages() == 0);
    }
    CHECK(phys.reserved_pages() == 0);
}

TEST_CASE("entries() of a table in use while another thread adds blocks")
{
    memory::PhysSpace phys;
    TableMemory m(phys);
    const std::uint64_t first = *m.alloc();
    m.entries(first)[7] = 0xfeed;
    std::atomic<bool> done{false};
    std::atomic<int> allocated{0};
    // The newest table the grower made and tagged with its own address: a
    // reader finds it in a block published moments before, the case the
    // lock-free lookup must get right (run under TSan to see it does).
    std::atomic<std::uint64_t> newest{0};
    std::thread grower([&] {
        // 64 blocks' worth of 1 MiB tables.
        for (int i = 0; i < 128; ++i) {
            const auto pa = m.alloc(1024 * 1024);
            if (!pa)
                continue;
            ++allocated;
            m.entries(*pa)[0] = *pa;
            newest.store(*pa, std::memory_order_release);
        }
        done = true;
    });
    bool same = true;
    do {
        same &= m.entries(first)[7] == 0xfeed;
        if (const std::uint64_t pa = newest.load(std::memory_order_acquire))
            same &= m.entries(pa)[0] == pa;
    } while (!done.load());
    grower.join();
    CHECK(same);
    CHECK(allocated == 128);
    CHECK(m.pages_in_use() == 1 + 128 * 256);
}
