// The AMD-Vi host ("v1") page-table entry (AMD IOMMU specification 48882,
// 2.2.3 "I/O Page Tables for Host Translations"). One format serves every
// level: a page directory entry points at the next table, a page table
// entry maps a page.
//
//   bit 0      PR         present
//   bit 5      A          accessed (hardware sets it when the DTE's HA is on)
//   bit 6      D          dirty (leaf; hardware sets it on write when the DTE's HD is on)
//   bits 11:9  NextLevel  0: a page of this level's natural size;
//                         1..6: the level of the table the address points at,
//                         which may skip levels; 7: a page whose size is
//                         encoded in the address, the entry repeated in every
//                         slot the page covers
//   bits 51:12 address    table or page; with NextLevel 7 the run of ones
//                         from bit 12 up, ended by a zero, gives the size
//   bit 59     U          untranslated access only (ATS)
//   bit 60     FC         force coherent
//   bit 61     IR         reads allowed
//   bit 62     IW         writes allowed
//
// IR and IW apply at every level: the walk ANDs them. Levels are counted
// from 0 (the level whose entries map 4 KiB) up to 5; a table of `mode`
// levels has its root at level mode - 1, and the device table entry's
// Mode field is that count.
#pragma once

#include <bit>
#include <cstdint>
#include <string>

#include "hwmodels/common/types.h"

namespace ioasid::hw::amd::v1 {

inline constexpr std::uint64_t kPresent = 1ULL << 0;
inline constexpr std::uint64_t kAccessed = 1ULL << 5;
inline constexpr std::uint64_t kDirty = 1ULL << 6;
inline constexpr unsigned kNextLevelShift = 9;
inline constexpr std::uint64_t kNextLevelMask = 7ULL << kNextLevelShift;
inline constexpr std::uint64_t kAddrMask = 0x000ffffffffff000ULL;
inline constexpr std::uint64_t kUntranslatedOnly = 1ULL << 59;
inline constexpr std::uint64_t kForceCoherent = 1ULL << 60;
inline constexpr std::uint64_t kReadable = 1ULL << 61;
inline constexpr std::uint64_t kWritable = 1ULL << 62;

inline constexpr unsigned kNaturalPage = 0; // NextLevel of a page of the level's size
inline constexpr unsigned kSizedPage = 7;   // NextLevel of a page sized by its address
inline constexpr unsigned kMaxMode = 6;
inline constexpr unsigned kIndexBits = 9;
inline constexpr unsigned kEntries = 1u << kIndexBits;

// AMD_IOMMU_PGSIZES: every power of two from 4 KiB to 2^51 but 512 GiB,
// which an erratum of the hardware rules out.
inline constexpr std::uint64_t kPageSizes = (((1ULL << 52) - 1) & ~((1ULL << 12) - 1)) ^ (1ULL << 39);

[[nodiscard]] constexpr unsigned next_level(std::uint64_t e)
{
    return static_cast<unsigned>((e & kNextLevelMask) >> kNextLevelShift);
}
[[nodiscard]] constexpr unsigned level_shift(unsigned level)
{
    return 12 + kIndexBits * level;
}
// The natural page size of a level (PTE_LEVEL_PAGE_SIZE()).
[[nodiscard]] constexpr std::uint64_t level_size(unsigned level)
{
    return 1ULL << level_shift(level);
}
[[nodiscard]] constexpr unsigned index_of(std::uint64_t iova, unsigned level)
{
    return static_cast<unsigned>((iova >> level_shift(level)) & (kEntries - 1));
}
// The last IOVA a table of `mode` levels translates (PM_LEVEL_SIZE()).
[[nodiscard]] constexpr std::uint64_t mode_last(unsigned mode)
{
    return mode < kMaxMode ? (1ULL << level_shift(mode)) - 1 : ~0ULL;
}
// The level whose table holds a page of `size` (a power of two of at
// least 4 KiB) and the number of slots it fills there: PAGE_SIZE_LEVEL()
// and PAGE_SIZE_PTE_COUNT().
[[nodiscard]] constexpr unsigned page_level(std::uint64_t size)
{
    return static_cast<unsigned>((std::countr_zero(size) - 12) / kIndexBits);
}
[[nodiscard]] constexpr unsigned replicas(std::uint64_t size)
{
    return 1u << ((std::countr_zero(size) - 12) % kIndexBits);
}
// The size a NextLevel-7 entry encodes: a zero bit ends the run of ones
// that starts at bit 12, and the page is twice that bit (PTE_PAGE_SIZE()).
// 0 for an entry whose ones run to bit 63, which encodes no size.
[[nodiscard]] constexpr std::uint64_t sized_page_size(std::uint64_t e)
{
    const int ones = std::countr_one(e | 0xfffULL);
    return ones >= 63 ? 0 : 1ULL << (ones + 1);
}

// A directory entry at `level` pointing at the table below it, as
// PM_LEVEL_PDE() writes it: present, readable, writable (so that only the
// leaf decides), NextLevel = `level`, the level of the next table counted
// from 1.
[[nodiscard]] constexpr std::uint64_t make_table(unsigned level, std::uint64_t table_pa)
{
    return (table_pa & kAddrMask) | (std::uint64_t{level} << kNextLevelShift) | kPresent | kReadable |
           kWritable;
}

// A page of `size` at `pa`, as iommu_v1_map_pages() writes it: PR and FC
// always, IR and IW as asked; a natural size with NextLevel 0, any other
// with NextLevel 7 and the size in the address (PAGE_SIZE_PTE()): the bits
// below the page's top address bit set, that bit clear.
[[nodiscard]] constexpr std::uint64_t make_leaf(std::uint64_t pa, std::uint64_t size, Prot prot)
{
    std::uint64_t e = 0;
    if (replicas(size) > 1)
        e = ((pa | (size - 1)) & ~(size >> 1) & kAddrMask) | (std::uint64_t{kSizedPage} << kNextLevelShift);
    else
        e = pa & kAddrMask;
    e |= kPresent | kForceCoherent;
    if (prot.read)
        e |= kReadable;
    if (prot.write)
        e |= kWritable;
    return e;
}

// The page address of a leaf of `size`.
[[nodiscard]] constexpr std::uint64_t leaf_address(std::uint64_t e, std::uint64_t size)
{
    return e & kAddrMask & ~(size - 1);
}

[[nodiscard]] constexpr Prot prot_of(std::uint64_t e)
{
    return {(e & kReadable) != 0, (e & kWritable) != 0};
}

// The entry in the specification's names.
[[nodiscard]] std::string describe(std::uint64_t e);

} // namespace ioasid::hw::amd::v1
