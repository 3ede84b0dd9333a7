// The mock unit and the layer every family shares: the radix walker with
// the mock's 2 KiB granule, large leaves, unmapping and table freeing, the
// IOTLB (hits, misses, per-domain invalidation, a stale entry served until
// invalidated), and Unit::translate with its faults and dirty bits.
#include <catch2/catch.hpp>

#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstring>

#include "hwmodels/common/iotlb.h"
#include "hwmodels/common/radix_domain.h"
#include "hwmodels/mock/mock_format.h"
#include "hwmodels/mock/mock_unit.h"
#include "memory/phys_space.h"

using namespace ioasid;
using hw::Access;
using hw::DmaRun;
using hw::FaultReason;
using hw::Prot;
using hw::mock::MockConfig;
using hw::mock::MockFormat;
using hw::mock::MockUnit;

namespace {

constexpr std::uint64_t k2K = 2048;
constexpr std::uint64_t k1M = 1ULL << 20;
constexpr Prot kRW{true, true};
constexpr Prot kRO{true, false};

struct Rig {
    explicit Rig(MockConfig config = {}) : unit("mock0", config, phys) {}
    memory::PhysSpace phys;
    MockUnit unit;
    hw::Endpoint& dev = unit.add_endpoint({"dev", 1, 8, true});
    hw::Endpoint& other = unit.add_endpoint({"other", 2, 0, false});

    std::unique_ptr<hw::Domain> domain(hw::DomainRequest request = {})
    {
        std::unique_ptr<hw::Domain> d;
        REQUIRE(unit.alloc_domain(dev, request, &d) == 0);
        return d;
    }
};

} // namespace

TEST_CASE("mock: hw_info is the selftest's", "[mock]")
{
    Rig rig;
    hw::HwInfo info = rig.unit.hw_info(rig.dev);
    CHECK(info.type == 0xfeedbeef);
    REQUIRE(info.data.size() == 8);
    std::uint32_t words[2];
    std::memcpy(words, info.data.data(), sizeof(words));
    CHECK(words[0] == 0);          // flags
    CHECK(words[1] == 0xdeadbeef); // test_reg
    CHECK(info.capabilities == IOMMU_HW_CAP_DIRTY_TRACKING);
    CHECK(info.max_pasid_log2 == 8);
    // A device that cannot track dirty pages has no such capability and no
    // dirty-tracking domain.
    CHECK(rig.unit.hw_info(rig.other).capabilities == 0);
    CHECK(rig.unit.hw_info(rig.other).max_pasid_log2 == 0);
    std::unique_ptr<hw::Domain> d;
    CHECK(rig.unit.alloc_domain(rig.other, {.dirty_tracking = true}, &d) == -EOPNOTSUPP);
}

TEST_CASE("mock: geometry follows the selftest", "[mock]")
{
    Rig rig;
    auto d = rig.domain();
    CHECK(d->geometry().aperture.first == 1ULL << 24);
    CHECK(d->geometry().aperture.last == (1ULL << 31) - 1);
    CHECK(d->geometry().pgsize_bitmap == k2K);
    CHECK(d->geometry().min_page() == k2K);
    Rig huge(MockConfig{.huge_pages = true});
    CHECK(huge.domain()->geometry().pgsize_bitmap == (k2K | k1M));
}

TEST_CASE("mock format: raw entries", "[mock]")
{
    memory::PhysSpace phys;
    hw::TableMemory tables(phys);
    hw::RadixTable<MockFormat> table(tables, MockFormat{true}, 3);
    REQUIRE(table.init() == 0);
    CHECK(table.input_bits() == 38); // 11 + 3 * 9
    CHECK(table.leaf_sizes() == (k2K | k1M));

    // One 2 KiB leaf at IOVA 0x1000800 -> PA 0x123456800, read-only.
    REQUIRE(table.map(0x1000800, 0x123456800, k2K, kRO, UINT64_MAX) == 0);
    // Index at level 2: 0x1000800 >> 29 = 0; level 1: (>> 20) & 511 = 16;
    // level 0: (>> 11) & 511 = 1.
    const std::uint64_t* top = tables.entries(table.root());
    const std::uint64_t l2 = top[0];
    CHECK((l2 & 0x7) == 0x7); // V | R | W on a table entry
    const std::uint64_t* mid = tables.entries(l2 & MockFormat::kAddrMask);
    const std::uint64_t l1 = mid[16];
    CHECK((l1 & 0x87) == 0x7); // a table, not a leaf (PS clear)
    const std::uint64_t* low = tables.entries(l1 & MockFormat::kAddrMask);
    CHECK(low[1] == 0x123456803); // 0x123456800 | R(1) | V(0)

    // A 1 MiB-aligned run of 1 MiB becomes one level-1 leaf with PS.
    REQUIRE(table.map(0x2000000, 0x200000000, k1M, kRW, UINT64_MAX) == 0);
    CHECK(mid[32] == 0x200000087); // 0x200000000 | PS(7) | W(2) | R(1) | V(0)
    // Limited to 2 KiB leaves, the same run takes 512 entries.
    REQUIRE(table.map(0x3000000, 0x300000000, k1M, kRW, k2K) == 0);
    CHECK((mid[48] & MockFormat::kPageSize) == 0);

    auto w = table.walk(0x2012345);
    CHECK(w.present);
    CHECK(w.page_size == k1M);
    CHECK(w.page_pa == 0x200000000);
    CHECK(w.prot == kRW);

    // Overlapping maps are refused without change.
    CHECK(table.map(0x1000800, 0x1000, k2K, kRW, UINT64_MAX) == -EEXIST);
    CHECK(low[1] == 0x123456803);

    // Unmapping a whole table's span frees it.
    const auto before = table.table_pages();
    CHECK(table.unmap(0x3000000, 0x3000000 + k1M - 1) == k1M);
    CHECK(table.table_pages() == before - 1);
    CHECK_FALSE(table.walk(0x3000000).present);
}

TEST_CASE("translate: runs, faults and the IOTLB", "[mock]")
{
    Rig rig;
    auto d = rig.domain();
    REQUIRE(d->map(0x1000000, 0x100000000, 4 * k2K, kRW, UINT64_MAX) == 0);
    REQUIRE(d->map(0x1002000, 0x200000000, k2K, kRO, UINT64_MAX) == 0);
    std::vector<DmaRun> runs;

    // Blocked until attached.
    auto fault = rig.unit.translate(rig.dev, hw::kNoPasid, 0x1000000, 16, Access::read, &runs);
    REQUIRE(fault);
    CHECK(fault->reason == FaultReason::blocked);

    rig.unit.attach(rig.dev, hw::kNoPasid, d.get());
    // Four contiguous 2 KiB pages make one run; the next page is elsewhere.
    fault = rig.unit.translate(rig.dev, hw::kNoPasid, 0x1000100, 5 * k2K - 0x100, Access::read, &runs);
    CHECK_FALSE(fault);
    REQUIRE(runs.size() == 2);
    CHECK(runs[0].pa == 0x100000100);
    CHECK(runs[0].length == 4 * k2K - 0x100);
    CHECK(runs[1].pa == 0x200000000);
    CHECK(runs[1].length == k2K);
    auto stats = rig.unit.iotlb_stats();
    CHECK(stats.misses == 5);
    CHECK(stats.entries == 5);

    // Warm: the same pages hit.
    runs.clear();
    CHECK_FALSE(rig.unit.translate(rig.dev, hw::kNoPasid, 0x1000000, 4 * k2K, Access::read, &runs));
    CHECK(rig.unit.iotlb_stats().hits == stats.hits + 4);

    // A write to the read-only page stops there; what came before stays.
    runs.clear();
    fault = rig.unit.translate(rig.dev, hw::kNoPasid, 0x1001800, 2 * k2K, Access::write, &runs);
    REQUIRE(fault);
    CHECK(fault->reason == FaultReason::permission);
    CHECK(fault->iova == 0x1002000);
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].length == k2K);

    // Outside the aperture, and unmapped inside it.
    fault = rig.unit.translate(rig.dev, hw::kNoPasid, 0x800000, 1, Access::read, &runs);
    CHECK(fault->reason == FaultReason::address_size);
    fault = rig.unit.translate(rig.dev, hw::kNoPasid, 0x1100000, 1, Access::read, &runs);
    CHECK(fault->reason == FaultReason::not_present);
    // A PASID the device cannot send, and one it can but nothing serves.
    fault = rig.unit.translate(rig.dev, 256u, 0x1000000, 1, Access::read, &runs);
    CHECK(fault->reason == FaultReason::pasid_range);
    fault = rig.unit.translate(rig.dev, 255u, 0x1000000, 1, Access::read, &runs);
    CHECK(fault->reason == FaultReason::blocked);
    fault = rig.unit.translate(rig.other, 1u, 0x1000000, 1, Access::read, &runs);
    CHECK(fault->reason == FaultReason::pasid_range);
}

TEST_CASE("IOTLB: a cached translation outlives a silent table change", "[mock]")
{
    Rig rig;
    auto d = rig.domain();
    auto& radix = static_cast<hw::RadixDomain<MockFormat>&>(*d);
    REQUIRE(d->map(0x1000000, 0x100000000, k2K, kRW, UINT64_MAX) == 0);
    rig.unit.attach(rig.dev, hw::kNoPasid, d.get());
    std::vector<DmaRun> runs;
    REQUIRE_FALSE(rig.unit.translate(rig.dev, hw::kNoPasid, 0x1000000, 8, Access::read, &runs));

    // Point the leaf elsewhere behind the unit's back, as a buggy driver
    // would without invalidating.
    auto w = radix.table().walk(0x1000000);
    *w.entry = (*w.entry & ~MockFormat::kAddrMask) | 0x300000000;
    runs.clear();
    REQUIRE_FALSE(rig.unit.translate(rig.dev, hw::kNoPasid, 0x1000000, 8, Access::read, &runs));
    CHECK(runs.at(0).pa == 0x100000000); // stale, as hardware would be

    rig.unit.invalidate(*d, {0x1000000, 0x1000000 + k2K - 1});
    runs.clear();
    REQUIRE_FALSE(rig.unit.translate(rig.dev, hw::kNoPasid, 0x1000000, 8, Access::read, &runs));
    CHECK(runs.at(0).pa == 0x300000000);

    // An unmap through the domain invalidates by itself.
    d->unmap(0x1000000, k2K);
    auto fault = rig.unit.translate(rig.dev, hw::kNoPasid, 0x1000000, 8, Access::read, &runs);
    REQUIRE(fault);
    CHECK(fault->reason == FaultReason::not_present);
}

TEST_CASE("IOTLB: invalidation is per domain and counted", "[mock]")
{
    hw::Iotlb tlb(4, k2K | k1M);
    tlb.insert({1, std::nullopt}, 0x1000000, {0x100000000, k2K, kRW, false});
    tlb.insert({2, std::nullopt}, 0x1000000, {0x200000000, k2K, kRW, false});
    tlb.insert({1, 5u}, 0x1000000, {0x300000000, k1M, kRW, false});
    CHECK(tlb.lookup({1, std::nullopt}, 0x1000010)->page_pa == 0x100000000);
    CHECK(tlb.lookup({1, 5u}, 0x10fffff)->page_pa == 0x300000000);
    CHECK(tlb.lookup({1, 6u}, 0x1000000) == nullptr);

    tlb.invalidate(1, {0x1000000, 0x1000000});
    CHECK(tlb.lookup({1, std::nullopt}, 0x1000000) == nullptr);
    CHECK(tlb.lookup({1, 5u}, 0x1000000) == nullptr); // every PASID of the domain
    CHECK(tlb.lookup({2, std::nullopt}, 0x1000000) != nullptr);
    auto stats = tlb.stats();
    CHECK(stats.invalidations == 1);
    CHECK(stats.entries == 1);

    // Full: everything goes, and is counted.
    for (std::uint64_t i = 0; i < 4; ++i)
        tlb.insert({3, std::nullopt}, i * k2K, {0, k2K, kRW, false});
    CHECK(tlb.stats().evictions == 4);
    CHECK(tlb.stats().entries == 1);
}

TEST_CASE("mock: dirty bits from DMA writes while tracking", "[mock]")
{
    Rig rig;
    auto d = rig.domain({.dirty_tracking = true});
    REQUIRE(d->map(0x1000000, 0x100000000, 8 * k2K, kRW, UINT64_MAX) == 0);
    rig.unit.attach(rig.dev, hw::kNoPasid, d.get());
    std::vector<DmaRun> runs;
    auto dirty_pages = [&](bool clear) {
        std::vector<std::uint64_t> pages;
        d->read_and_clear_dirty(0x1000000, 8 * k2K, clear,
                                [&](std::uint64_t iova, std::uint64_t size) {
                                    CHECK(size == k2K);
                                    pages.push_back(iova);
                                });
        return pages;
    };

    // Not tracking: writes leave no trace.
    REQUIRE_FALSE(rig.unit.translate(rig.dev, hw::kNoPasid, 0x1000000, 1, Access::write, &runs));
    CHECK(dirty_pages(false).empty());

    REQUIRE(d->set_dirty_tracking(true) == 0);
    REQUIRE_FALSE(rig.unit.translate(rig.dev, hw::kNoPasid, 0x1000800, k2K + 1, Access::write, &runs));
    REQUIRE_FALSE(rig.unit.translate(rig.dev, hw::kNoPasid, 0x1003000, 4, Access::read, &runs));
    CHECK(dirty_pages(false) == std::vector<std::uint64_t>{0x1000800, 0x1001000});
    CHECK(dirty_pages(true).size() == 2);
    CHECK(dirty_pages(false).empty());
    // After clearing, a write through a translation the IOTLB still had
    // before must set the bit again.
    REQUIRE_FALSE(rig.unit.translate(rig.dev, hw::kNoPasid, 0x1000800, 1, Access::write, &runs));
    CHECK(dirty_pages(false) == std::vector<std::uint64_t>{0x1000800});

    std::unique_ptr<hw::Domain> plain = rig.domain();
    CHECK(plain->set_dirty_tracking(true) == -EOPNOTSUPP);
}
