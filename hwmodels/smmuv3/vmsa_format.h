// VMSAv8-64 translation table descriptors, stage 1 and stage 2, as an
// SMMUv3 walks them (Arm ARM D8.3 "Translation table descriptor formats",
// D8.4 memory attributes, D8.4.6 hardware dirty state) and as the Linux
// 6.12 io-pgtable-arm.c writes them for iommufd mappings, which always
// carry IOMMU_CACHE and never IOMMU_PRIV, IOMMU_NOEXEC or IOMMU_MMIO.
//
// A table is one granule: 4 KiB (9 index bits), 16 KiB (11) or 64 KiB
// (13). Our level 0 is the architecture's level 3.
//
//   bit 0       valid
//   bit 1       1: table (page at level 3), 0: block (reserved at level 3)
//   bits 4:2    AttrIndx (stage 1)        | bits 5:2 MemAttr (stage 2)
//   bit 5       NS (stage 1)              |
//   bits 7:6    AP[2:1] (stage 1):        | S2AP: bit 6 read, bit 7 write
//               AP[2] read-only, AP[1] unprivileged (EL0) access
//   bits 9:8    SH shareability (3: inner shareable)
//   bit 10      AF access flag
//   bit 11      nG (stage 1)
//   bits 47:12  output address; with the 64 KiB granule bits 15:12 hold
//               address bits 51:48
//   bit 51      DBM: writable, the hardware tracks dirtiness through AP[2]
//   bits 54:53  PXN/UXN (stage 1), XN (stage 2)
//   bit 55      software: io-pgtable-arm's ARM_LPAE_PTE_SW_SYNC (tables)
//   bits 62:61  APTable (stage-1 table descriptors)
#pragma once

#include <cstdint>
#include <fmt/format.h>
#include <string>

#include "hwmodels/common/radix_table.h"

namespace ioasid::hw::smmuv3 {

namespace vmsa {
inline constexpr std::uint64_t kValid = 1ULL << 0;
inline constexpr std::uint64_t kTableOrPage = 1ULL << 1;
inline constexpr std::uint64_t kAttrIndxShift = 2;
inline constexpr std::uint64_t kApUnpriv = 1ULL << 6;   // AP[1]
inline constexpr std::uint64_t kApReadOnly = 1ULL << 7; // AP[2]
inline constexpr std::uint64_t kS2apRead = 1ULL << 6;
inline constexpr std::uint64_t kS2apWrite = 1ULL << 7;
inline constexpr std::uint64_t kShInner = 3ULL << 8;
inline constexpr std::uint64_t kAccessFlag = 1ULL << 10;
inline constexpr std::uint64_t kNotGlobal = 1ULL << 11;
inline constexpr std::uint64_t kDbm = 1ULL << 51;
// Software-defined (ignored by the walk): io-pgtable-arm's "synced to
// memory" mark on a table descriptor of a non-coherent walk.
inline constexpr std::uint64_t kSwSync = 1ULL << 55;
inline constexpr std::uint64_t kXn = 3ULL << 53;
inline constexpr std::uint64_t kApTableNoEl0 = 1ULL << 61;
inline constexpr std::uint64_t kApTableReadOnly = 1ULL << 62;
inline constexpr std::uint64_t kAddrMask = ((1ULL << 48) - 1) & ~((1ULL << 12) - 1);
// MAIR index 1 is write-back cacheable in the MAIR the driver programs.
inline constexpr std::uint64_t kAttrIndxCache = 1;
// Stage-2 MemAttr 0b1111: outer and inner write-back cacheable.
inline constexpr std::uint64_t kMemAttrWriteBack = 0xfULL << 2;
} // namespace vmsa

// What both stages share: descriptor types and the address field.
template <unsigned GranuleShift>
struct VmsaFormatBase {
    static_assert(GranuleShift == 12 || GranuleShift == 14 || GranuleShift == 16);
    static constexpr unsigned kGranuleShift = GranuleShift;
    static constexpr unsigned kIndexBits = GranuleShift - 3;

    // Leaf sizes the domain's pgsize_bitmap allows; a block descriptor at
    // any other level is reserved and faults.
    std::uint64_t leaf_sizes = 0;
    // The walk is not cache-coherent (IDR0.COHACC clear), so the driver
    // cleans each new table descriptor to memory and marks it kSwSync.
    bool non_coherent_walk = false;

    [[nodiscard]] static constexpr std::uint64_t size_at(unsigned level)
    {
        return std::uint64_t{1} << (kGranuleShift + kIndexBits * level);
    }
    [[nodiscard]] bool leaf_allowed(unsigned level) const { return (leaf_sizes & size_at(level)) != 0; }

    [[nodiscard]] EntryKind kind(std::uint64_t e, unsigned level) const
    {
        if (!(e & vmsa::kValid))
            return EntryKind::invalid;
        if (level == 0)
            return (e & vmsa::kTableOrPage) ? EntryKind::leaf : EntryKind::invalid;
        if (e & vmsa::kTableOrPage)
            return EntryKind::table;
        return leaf_allowed(level) ? EntryKind::leaf : EntryKind::invalid;
    }

    // paddr_to_iopte() / iopte_to_paddr(): the 64 KiB granule folds
    // address bits 51:48 into descriptor bits 15:12.
    [[nodiscard]] static std::uint64_t address_bits(std::uint64_t pa)
    {
        if constexpr (kGranuleShift == 16)
            return (pa | (pa >> 36)) & vmsa::kAddrMask;
        else
            return pa & vmsa::kAddrMask;
    }
    [[nodiscard]] std::uint64_t output(std::uint64_t e, unsigned level) const
    {
        std::uint64_t pa = e & vmsa::kAddrMask;
        if constexpr (kGranuleShift == 16)
            pa = (pa | (pa << 36)) & (vmsa::kAddrMask << 4);
        // A table address is granule aligned; a block's is aligned to its size.
        const bool table = level > 0 && (e & vmsa::kTableOrPage);
        return pa & ~((table ? size_at(0) : size_at(level)) - 1);
    }

    [[nodiscard]] std::uint64_t type_bits(unsigned level) const
    {
        return level == 0 ? vmsa::kValid | vmsa::kTableOrPage : vmsa::kValid;
    }

    // arm_lpae_install_table(): address and type, and the software sync
    // mark when the walk is not coherent.
    [[nodiscard]] std::uint64_t make_table(std::uint64_t table_pa) const
    {
        return address_bits(table_pa) | vmsa::kValid | vmsa::kTableOrPage | (non_coherent_walk ? vmsa::kSwSync : 0);
    }

    [[nodiscard]] static std::string common_fields(std::uint64_t e)
    {
        std::string s;
        if (((e >> 8) & 3) == 3)
            s += " SH=IS";
        else if (((e >> 8) & 3) == 2)
            s += " SH=OS";
        if (e & vmsa::kAccessFlag)
            s += " AF";
        if (e & vmsa::kDbm)
            s += " DBM";
        if (e & vmsa::kXn)
            s += fmt::format(" XN={}", (e >> 53) & 3);
        return s;
    }
};

// The stage-1 format of an ARM_64_LPAE_S1 table.
template <unsigned GranuleShift>
struct Stage1Format : VmsaFormatBase<GranuleShift> {
    using Base = VmsaFormatBase<GranuleShift>;

    // The context descriptor has HA and HD set (IO_PGTABLE_QUIRK_ARM_HD):
    // writable leaves carry DBM and the hardware clears AP[2] on a write.
    bool hd = false;

    // The unit's requests are unprivileged (STE.STRW EL1, no PRIVCFG
    // override), so a leaf without AP[1] allows nothing. A writable-clean
    // leaf (DBM with AP[2]) is writable when the hardware may update it.
    [[nodiscard]] Prot prot(std::uint64_t e) const
    {
        if (!(e & vmsa::kApUnpriv))
            return {false, false};
        return {true, !(e & vmsa::kApReadOnly) || (hd && (e & vmsa::kDbm))};
    }
    // APTable limits what the levels below allow.
    [[nodiscard]] Prot table_prot(std::uint64_t e) const
    {
        const bool no_el0 = (e & vmsa::kApTableNoEl0) != 0;
        return {!no_el0, !no_el0 && !(e & vmsa::kApTableReadOnly)};
    }

    // arm_lpae_prot_to_pte() for IOMMU_READ [| IOMMU_WRITE] | IOMMU_CACHE.
    // Stage 1 has no write-only page: a write-only mapping is read-write.
    [[nodiscard]] std::uint64_t make_leaf(std::uint64_t pa, unsigned level, Prot p) const
    {
        std::uint64_t e = Base::address_bits(pa) | Base::type_bits(level) | vmsa::kNotGlobal | vmsa::kApUnpriv |
                          (vmsa::kAttrIndxCache << vmsa::kAttrIndxShift) | vmsa::kShInner | vmsa::kAccessFlag;
        if (!p.write)
            e |= vmsa::kApReadOnly;
        else if (hd)
            e |= vmsa::kDbm;
        return e;
    }

    // Writable-dirty: DBM with AP[2] clear (iopte_writeable_dirty()).
    [[nodiscard]] bool dirty(std::uint64_t e) const
    {
        return (e & (vmsa::kDbm | vmsa::kApReadOnly)) == vmsa::kDbm;
    }
    [[nodiscard]] std::uint64_t mark_used(std::uint64_t e, Access access) const
    {
        if (!hd)
            return e;
        e |= vmsa::kAccessFlag;
        if (access == Access::write && (e & vmsa::kDbm))
            e &= ~vmsa::kApReadOnly;
        return e;
    }
    // iopte_set_writeable_clean(): AP[2] back on, so the next write shows.
    [[nodiscard]] std::uint64_t clear_dirty(std::uint64_t e) const
    {
        return dirty(e) ? e | vmsa::kApReadOnly : e;
    }

    [[nodiscard]] std::string describe(std::uint64_t e, unsigned level) const
    {
        std::string s = fmt::format("addr={:#x}", this->output(e, level));
        if (this->kind(e, level) == EntryKind::table)
            return s + " table";
        s += level == 0 ? " page" : " block";
        s += fmt::format(" AttrIndx={}", (e >> vmsa::kAttrIndxShift) & 7);
        s += fmt::format(" AP={}", (e >> 6) & 3);
        if (e & vmsa::kNotGlobal)
            s += " nG";
        return s + Base::common_fields(e);
    }

};

// The stage-2 format of an ARM_64_LPAE_S2 table.
template <unsigned GranuleShift>
struct Stage2Format : VmsaFormatBase<GranuleShift> {
    using Base = VmsaFormatBase<GranuleShift>;

    [[nodiscard]] Prot prot(std::uint64_t e) const
    {
        return {(e & vmsa::kS2apRead) != 0, (e & vmsa::kS2apWrite) != 0};
    }
    // Stage-2 table descriptors carry no permissions.
    [[nodiscard]] Prot table_prot(std::uint64_t) const { return {true, true}; }

    // arm_lpae_prot_to_pte() for stage 2: S2AP from the permissions,
    // MemAttr write-back for IOMMU_CACHE.
    [[nodiscard]] std::uint64_t make_leaf(std::uint64_t pa, unsigned level, Prot p) const
    {
        return Base::address_bits(pa) | Base::type_bits(level) | (p.read ? vmsa::kS2apRead : 0) |
               (p.write ? vmsa::kS2apWrite : 0) | vmsa::kMemAttrWriteBack | vmsa::kShInner | vmsa::kAccessFlag;
    }

    // The driver tracks no dirty state at stage 2.
    [[nodiscard]] bool dirty(std::uint64_t) const { return false; }
    [[nodiscard]] std::uint64_t mark_used(std::uint64_t e, Access) const { return e; }
    [[nodiscard]] std::uint64_t clear_dirty(std::uint64_t e) const { return e; }

    [[nodiscard]] std::string describe(std::uint64_t e, unsigned level) const
    {
        std::string s = fmt::format("addr={:#x}", this->output(e, level));
        if (this->kind(e, level) == EntryKind::table)
            return s + " table";
        s += level == 0 ? " page" : " block";
        s += fmt::format(" MemAttr={:#x}", (e >> 2) & 0xf);
        s += fmt::format(" S2AP={}{}", (e & vmsa::kS2apRead) ? "R" : "-", (e & vmsa::kS2apWrite) ? "W" : "-");
        return s + Base::common_fields(e);
    }
};

} // namespace ioasid::hw::smmuv3
