// The x86-64 long-mode paging-entry format (Intel SDM vol. 3, 4.5, "IA-32e
// paging"; AMD APM vol. 2, 5.3), 4- and 5-level, as IOMMUs walk it for
// their first stage: VT-d's first-stage tables (VT-d specification 9.7)
// and AMD-Vi's guest ("v2") tables (AMD IOMMU specification 2.2.6) are
// this one format. What differs between them is what each Linux driver
// pre-sets in the entries it writes, which is a knob here.
//
//   bit 0      P    present
//   bit 1      R/W  writes allowed (every level; read is implied by P)
//   bit 2      U/S  user accesses allowed (every level)
//   bit 3      PWT  write-through
//   bit 4      PCD  cache disable
//   bit 5      A    accessed (hardware sets it)
//   bit 6      D    dirty (leaf; hardware sets it on write)
//   bit 7      PS   page size: a leaf at PDE (2 MiB) or PDPTE (1 GiB);
//                   in a PTE this bit is PAT
//   bit 8      G    global (leaf)
//   bit 12     PAT  in a 2 MiB or 1 GiB leaf
//   bits 51:12 address (51:21 for 2 MiB, 51:30 for 1 GiB)
//   bit 63     XD   execute disable (NX)
//
// Inputs are canonical: bits 63:N-1 equal, N = 48 (4-level) or 57
// (5-level). Both drivers keep a domain's aperture to the lower half, so
// the walker only ever sees N-1 significant bits.
#pragma once

#include <cstdint>
#include <fmt/format.h>
#include <string>

#include "radix_table.h"

namespace ioasid::hw {

struct X86PageTableFormat {
    static constexpr unsigned kGranuleShift = 12;
    static constexpr std::uint64_t kPresent = 1ULL << 0;
    static constexpr std::uint64_t kReadWrite = 1ULL << 1;
    static constexpr std::uint64_t kUser = 1ULL << 2;
    static constexpr std::uint64_t kWriteThrough = 1ULL << 3;
    static constexpr std::uint64_t kCacheDisable = 1ULL << 4;
    static constexpr std::uint64_t kAccessed = 1ULL << 5;
    static constexpr std::uint64_t kDirty = 1ULL << 6;
    static constexpr std::uint64_t kPageSize = 1ULL << 7;
    static constexpr std::uint64_t kGlobal = 1ULL << 8;
    static constexpr std::uint64_t kLargePat = 1ULL << 12;
    static constexpr std::uint64_t kExecuteDisable = 1ULL << 63;
    static constexpr std::uint64_t kAddrMask = ((1ULL << 52) - 1) & ~((1ULL << 12) - 1);

    // --- the hardware ---
    // 1 GiB leaves (VT-d's CAP.FL1GP; AMD-Vi always has them); 2 MiB
    // leaves are always there.
    bool pages_1g = true;

    // --- what the driver writes ---
    // D in every leaf, read-only ones too: AMD's v2 set_pte_attr() does
    // it; VT-d's __domain_mapping() pre-sets D only in writable leaves.
    bool dirty_on_every_leaf = false;

    [[nodiscard]] bool leaf_allowed(unsigned level) const
    {
        return level == 0 || level == 1 || (level == 2 && pages_1g);
    }

    [[nodiscard]] EntryKind kind(std::uint64_t e, unsigned level) const
    {
        if (!(e & kPresent))
            return EntryKind::invalid;
        if (level == 0)
            return EntryKind::leaf; // bit 7 is PAT here
        if (!(e & kPageSize))
            return EntryKind::table;
        // PS in a PML4E/PML5E, or in a PDPTE without 1 GiB pages, is
        // reserved: the walk faults, modelled as not present.
        return leaf_allowed(level) ? EntryKind::leaf : EntryKind::invalid;
    }

    [[nodiscard]] std::uint64_t output(std::uint64_t e, unsigned level) const
    {
        if (level == 0 || !(e & kPageSize))
            return e & kAddrMask;
        // Bit 12 of a large leaf is PAT, not address.
        return e & kAddrMask & ~((1ULL << (kGranuleShift + kIndexBits * level)) - 1);
    }

    // P allows reads, R/W writes. Requests without PASID, and ours, are
    // user requests to both IOMMUs, so an entry without U/S allows nothing.
    [[nodiscard]] Prot prot(std::uint64_t e) const
    {
        const bool user = (e & (kPresent | kUser)) == (kPresent | kUser);
        return {user, user && (e & kReadWrite) != 0};
    }

    // A next-level table as both drivers write it (VT-d's pfn_to_dma_pte(),
    // AMD's set_pgtable_attr()): present, writable, user, and accessed
    // already, so the hardware need not write the entry back.
    [[nodiscard]] std::uint64_t make_table(std::uint64_t table_pa) const
    {
        return (table_pa & kAddrMask) | kPresent | kReadWrite | kUser | kAccessed;
    }

    // A leaf: P, U/S and A always; R/W for a writable mapping; D pre-set
    // (as A, so that the hardware never has to update the entry) in
    // writable leaves or, with dirty_on_every_leaf, in all. x86 paging has
    // no write-only page: P is also read permission, so a write-only
    // mapping is read-write. XD stays clear.
    [[nodiscard]] std::uint64_t make_leaf(std::uint64_t pa, unsigned level, Prot p) const
    {
        std::uint64_t e = (pa & kAddrMask) | kPresent | kUser | kAccessed;
        if (p.write)
            e |= kReadWrite | kDirty;
        if (dirty_on_every_leaf)
            e |= kDirty;
        if (level)
            e |= kPageSize;
        return e;
    }

    [[nodiscard]] bool dirty(std::uint64_t e) const { return (e & kDirty) != 0; }

    [[nodiscard]] std::uint64_t mark_used(std::uint64_t e, Access access) const
    {
        e |= kAccessed;
        if (access == Access::write && (e & kReadWrite))
            e |= kDirty;
        return e;
    }

    [[nodiscard]] std::uint64_t clear_dirty(std::uint64_t e) const { return e & ~kDirty; }

    [[nodiscard]] std::string describe(std::uint64_t e, unsigned level) const
    {
        const bool leaf = kind(e, level) == EntryKind::leaf;
        std::string s = fmt::format("addr={:#x}", output(e, level));
        if (e & kPresent)
            s += " P";
        if (e & kReadWrite)
            s += " R/W";
        if (e & kUser)
            s += " U/S";
        if (e & kWriteThrough)
            s += " PWT";
        if (e & kCacheDisable)
            s += " PCD";
        if (e & kAccessed)
            s += " A";
        if (leaf && (e & kDirty))
            s += " D";
        if (level && (e & kPageSize))
            s += " PS";
        if (leaf && (level == 0 ? (e & kPageSize) : (e & kLargePat)))
            s += " PAT";
        if (leaf && (e & kGlobal))
            s += " G";
        if (e & kExecuteDisable)
            s += " XD";
        return s;
    }
};

} // namespace ioasid::hw
