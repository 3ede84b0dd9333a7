// The page-table format of the mock unit. The kernel's selftest mock keeps
// its translations in an xarray, one entry per 2 KiB IO page; users only
// observe its geometry (2 KiB pages, 1 MiB "huge" pages, a 16 MiB..2 GiB
// aperture) and its dirty bits. We give it a radix table with that
// granule, so it runs through the same walker as real hardware:
//
//   bit 0      V   valid
//   bit 1      R   device may read
//   bit 2      W   device may write
//   bit 6      D   dirty (leaf; set by DMA writes while tracking)
//   bit 7      PS  leaf above level 0
//   bits 51:11     table or page address
#pragma once

#include <cstdint>
#include <fmt/format.h>
#include <string>

#include "hwmodels/common/radix_table.h"

namespace ioasid::hw::mock {

struct MockFormat {
    static constexpr unsigned kGranuleShift = 11;
    static constexpr std::uint64_t kValid = 1ULL << 0;
    static constexpr std::uint64_t kRead = 1ULL << 1;
    static constexpr std::uint64_t kWrite = 1ULL << 2;
    static constexpr std::uint64_t kDirty = 1ULL << 6;
    static constexpr std::uint64_t kPageSize = 1ULL << 7;
    static constexpr std::uint64_t kAddrMask = ((1ULL << 52) - 1) & ~((1ULL << 11) - 1);

    bool huge_pages = false; // 1 MiB leaves at level 1

    [[nodiscard]] bool leaf_allowed(unsigned level) const { return level == 0 || (level == 1 && huge_pages); }
    [[nodiscard]] EntryKind kind(std::uint64_t e, unsigned level) const
    {
        if (!(e & kValid))
            return EntryKind::invalid;
        return level == 0 || (e & kPageSize) ? EntryKind::leaf : EntryKind::table;
    }
    [[nodiscard]] std::uint64_t output(std::uint64_t e, unsigned) const { return e & kAddrMask; }
    [[nodiscard]] Prot prot(std::uint64_t e) const { return {(e & kRead) != 0, (e & kWrite) != 0}; }
    [[nodiscard]] std::uint64_t make_table(std::uint64_t pa) const { return pa | kValid | kRead | kWrite; }
    [[nodiscard]] std::uint64_t make_leaf(std::uint64_t pa, unsigned level, Prot p) const
    {
        return pa | kValid | (p.read ? kRead : 0) | (p.write ? kWrite : 0) | (level ? kPageSize : 0);
    }
    [[nodiscard]] bool dirty(std::uint64_t e) const { return (e & kDirty) != 0; }
    [[nodiscard]] std::uint64_t mark_used(std::uint64_t e, Access access) const
    {
        return access == Access::write ? e | kDirty : e;
    }
    [[nodiscard]] std::uint64_t clear_dirty(std::uint64_t e) const { return e & ~kDirty; }
    [[nodiscard]] std::string describe(std::uint64_t e, unsigned level) const
    {
        std::string s = fmt::format("addr={:#x}", e & kAddrMask);
        if (e & kRead)
            s += " R";
        if (e & kWrite)
            s += " W";
        if (kind(e, level) == EntryKind::leaf && (e & kDirty))
            s += " D";
        if (level && (e & kPageSize))
            s += " PS";
        return s;
    }
};

} // namespace ioasid::hw::mock
