// The VT-d second-stage paging-entry format (VT-d specification, section
// 9.8, "Second-Stage Paging Entries"): the table an iommufd paging domain
// of a VT-d unit is, and the parent stage of a nested domain.
//
//   bit 0      R    read allowed (every level)
//   bit 1      W    write allowed (every level)
//   bit 2      X    execute allowed (we issue no execute requests)
//   bits 5:3   EMT  memory type (leaf; used only in nested translation)
//   bit 6      IPAT ignore PAT (leaf)
//   bit 7      PS   page size: a leaf at SS-PDE (2 MiB) or SS-PDPE (1 GiB)
//   bit 8      A    accessed (hardware sets it when the PASID entry's SSADE is on)
//   bit 9      D    dirty (leaf; hardware sets it on write with SSADE)
//   bit 11     SNP  snoop (leaf)
//   bits 51:12 ADDR table or page address (51:21 for 2 MiB, 51:30 for 1 GiB)
//
// There is no present bit: an entry is present when R or W is set. Three,
// four or five levels give 39-, 48- or 57-bit inputs (SS-PML5E above the
// SS-PML4E, SS-PDPE, SS-PDE and SS-PTE).
#pragma once

#include <cstdint>
#include <fmt/format.h>
#include <string>

#include "hwmodels/common/radix_table.h"

namespace ioasid::hw::vtd {

struct SecondStageFormat {
    static constexpr unsigned kGranuleShift = 12;
    static constexpr std::uint64_t kRead = 1ULL << 0;
    static constexpr std::uint64_t kWrite = 1ULL << 1;
    static constexpr std::uint64_t kExecute = 1ULL << 2;
    static constexpr unsigned kEmtShift = 3;
    static constexpr std::uint64_t kEmt = 7ULL << kEmtShift;
    static constexpr std::uint64_t kIpat = 1ULL << 6;
    static constexpr std::uint64_t kPageSize = 1ULL << 7;
    static constexpr std::uint64_t kAccessed = 1ULL << 8;
    static constexpr std::uint64_t kDirty = 1ULL << 9;
    static constexpr std::uint64_t kSnoop = 1ULL << 11;
    static constexpr std::uint64_t kAddrMask = ((1ULL << 52) - 1) & ~((1ULL << 12) - 1);

    // --- the hardware ---
    // Large-page levels CAP.SLLPS allows: 0 none, 1 2 MiB, 2 also 1 GiB.
    unsigned superpage_levels = 2;

    // --- what the driver writes ---
    // SNP in every leaf: the Linux driver's set_pte_snp, which iommufd turns
    // on for every domain of a unit with ECAP.SC.
    bool snoop = false;
    // The Linux driver ORs its first-stage present bit, which is R here,
    // into every leaf it writes (__domain_mapping()), so a write-only
    // mapping comes out read-write. Off, a write-only leaf is written as
    // the hardware allows it.
    bool read_with_every_leaf = true;

    [[nodiscard]] bool leaf_allowed(unsigned level) const { return level <= superpage_levels; }

    [[nodiscard]] EntryKind kind(std::uint64_t e, unsigned level) const
    {
        if (!(e & (kRead | kWrite)))
            return EntryKind::invalid;
        if (level == 0)
            return EntryKind::leaf;
        if (!(e & kPageSize))
            return EntryKind::table;
        // PS where SLLPS has no such page (or at SS-PML4E/PML5E) is a
        // reserved bit: the hardware faults, which we model as not present.
        return leaf_allowed(level) ? EntryKind::leaf : EntryKind::invalid;
    }

    [[nodiscard]] std::uint64_t output(std::uint64_t e, unsigned level) const
    {
        if (level == 0 || !(e & kPageSize))
            return e & kAddrMask;
        return e & kAddrMask & ~((1ULL << (kGranuleShift + kIndexBits * level)) - 1);
    }

    [[nodiscard]] Prot prot(std::uint64_t e) const { return {(e & kRead) != 0, (e & kWrite) != 0}; }

    // A next-level table: readable and writable, so that only the leaf
    // decides (the driver's pfn_to_dma_pte()).
    [[nodiscard]] std::uint64_t make_table(std::uint64_t table_pa) const
    {
        return (table_pa & kAddrMask) | kRead | kWrite;
    }

    [[nodiscard]] std::uint64_t make_leaf(std::uint64_t pa, unsigned level, Prot p) const
    {
        std::uint64_t e = pa & kAddrMask;
        if (p.read || read_with_every_leaf)
            e |= kRead;
        if (p.write)
            e |= kWrite;
        if (snoop)
            e |= kSnoop;
        if (level)
            e |= kPageSize;
        return e;
    }

    [[nodiscard]] bool dirty(std::uint64_t e) const { return (e & kDirty) != 0; }

    // With SSADE, a translation sets A, and D when it writes through a
    // writable leaf.
    [[nodiscard]] std::uint64_t mark_used(std::uint64_t e, Access access) const
    {
        e |= kAccessed;
        if (access == Access::write && (e & kWrite))
            e |= kDirty;
        return e;
    }

    [[nodiscard]] std::uint64_t clear_dirty(std::uint64_t e) const { return e & ~kDirty; }

    [[nodiscard]] std::string describe(std::uint64_t e, unsigned level) const
    {
        const bool leaf = kind(e, level) == EntryKind::leaf;
        std::string s = fmt::format("ADDR={:#x}", output(e, level));
        if (e & kRead)
            s += " R";
        if (e & kWrite)
            s += " W";
        if (e & kExecute)
            s += " X";
        if (leaf && (e & kEmt))
            s += fmt::format(" EMT={}", (e & kEmt) >> kEmtShift);
        if (leaf && (e & kIpat))
            s += " IPAT";
        if (level && (e & kPageSize))
            s += " PS";
        if (e & kAccessed)
            s += " A";
        if (leaf && (e & kDirty))
            s += " D";
        if (leaf && (e & kSnoop))
            s += " SNP";
        return s;
    }
};

} // namespace ioasid::hw::vtd
