// The page-table walker every family shares: a radix tree of tables of
// little-endian 64-bit entries, levels counted from the leaf (level 0 maps
// one granule). What an entry means is the family's business, told
// through a format type:
//
//   struct Format {
//       static constexpr unsigned kGranuleShift;       // bytes per level-0 leaf, log2
//       static constexpr unsigned kIndexBits;          // optional: entries per table, log2
//                                                      // (9, i.e. 4 KiB tables, if absent)
//       bool leaf_allowed(unsigned level) const;      // may a leaf sit at this level?
//       EntryKind kind(std::uint64_t e, unsigned level) const;
//       std::uint64_t output(std::uint64_t e, unsigned level) const; // table or page address
//       Prot prot(std::uint64_t e) const;             // what this entry allows
//       Prot table_prot(std::uint64_t e) const;       // optional: what a table entry allows
//                                                     // below it, if not prot(e)
//       std::uint64_t make_table(std::uint64_t table_pa) const;
//       std::uint64_t make_leaf(std::uint64_t pa, unsigned level, Prot prot) const;
//       bool dirty(std::uint64_t e) const;            // leaf written since last cleared
//       std::uint64_t mark_used(std::uint64_t e, Access access) const; // A/D as hardware sets them
//       std::uint64_t clear_dirty(std::uint64_t e) const;
//       std::string describe(std::uint64_t e, unsigned level) const;
//   };
//
// Every table below the top has 2^kIndexBits entries. The top table has
// its own count, chosen when the table is built: fewer entries when the
// input size does not fill a whole level (a VMSAv8-64 stage-1 start
// level), more when tables are concatenated there (a stage-2 start level).
//
// The walker itself holds no lock: a table is changed and walked under the
// lock of the context that owns the domain.
#pragma once

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <functional>

#include "table_memory.h"
#include "types.h"

namespace ioasid::hw {

enum class EntryKind : std::uint8_t { invalid, table, leaf };

static_assert(std::endian::native == std::endian::little,
              "tables are stored in host order; the formats are little-endian");

// What a format without its own kIndexBits gets: 512 entries, 4 KiB.
inline constexpr unsigned kIndexBits = 9;
inline constexpr unsigned kEntriesPerTable = 1u << kIndexBits;

template <typename Format>
[[nodiscard]] constexpr unsigned index_bits_of()
{
    if constexpr (requires { Format::kIndexBits; })
        return Format::kIndexBits;
    else
        return kIndexBits;
}

template <typename Format>
class RadixTable {
public:
    struct Walk {
        bool present = false;
        unsigned level = 0;             // of the leaf, or where the walk stopped
        std::uint64_t page_iova = 0;    // first IOVA the leaf maps
        std::uint64_t page_size = 0;
        std::uint64_t page_pa = 0;
        Prot prot;                      // ANDed over the levels walked
        std::uint64_t* entry = nullptr; // the leaf, for A/D updates
    };

    static constexpr unsigned kBits = index_bits_of<Format>();
    static constexpr unsigned kEntries = 1u << kBits;
    static constexpr std::uint64_t kTableBytes = std::uint64_t{8} << kBits;

    // `top_bits`: entries of the top table, log2; a full table by default.
    RadixTable(TableMemory& memory, Format format, unsigned levels, unsigned top_bits = kBits)
        : memory_(memory), format_(format), levels_(levels), top_bits_(top_bits)
    {
    }
    ~RadixTable()
    {
        if (root_)
            free_table(root_, levels_ - 1);
    }
    RadixTable(const RadixTable&) = delete;
    RadixTable& operator=(const RadixTable&) = delete;

    // Allocates the top table; -ENOMEM when there is no room.
    [[nodiscard]] int init()
    {
        // A short top table still takes a whole page, as the kernel's
        // page allocator gives it one.
        auto pa = memory_.alloc(std::max(TableMemory::kTableSize, top_table_bytes()));
        if (!pa)
            return -ENOMEM;
        root_ = *pa;
        return 0;
    }

    [[nodiscard]] const Format& format() const { return format_; }
    [[nodiscard]] Format& format() { return format_; }
    [[nodiscard]] std::uint64_t root() const { return root_; }
    [[nodiscard]] unsigned levels() const { return levels_; }
    [[nodiscard]] unsigned top_bits() const { return top_bits_; }
    [[nodiscard]] std::uint64_t top_table_bytes() const { return std::uint64_t{8} << top_bits_; }
    [[nodiscard]] unsigned input_bits() const
    {
        return Format::kGranuleShift + kBits * (levels_ - 1) + top_bits_;
    }
    [[nodiscard]] static constexpr std::uint64_t level_size(unsigned level)
    {
        return std::uint64_t{1} << (Format::kGranuleShift + kBits * level);
    }
    // The leaf sizes this table can hold, as a pgsize bitmap.
    [[nodiscard]] std::uint64_t leaf_sizes() const
    {
        std::uint64_t sizes = 0;
        for (unsigned level = 0; level < levels_; ++level)
            if (format_.leaf_allowed(level))
                sizes |= level_size(level);
        return sizes;
    }

    // Maps [iova, iova + length) to [pa, pa + length) with the largest
    // leaves that alignment, `max_leaf` and the format allow. All three
    // are multiples of the granule. -EEXIST if something is mapped there
    // already (nothing is changed then), -ENOMEM for want of tables (what
    // was mapped stays mapped; the caller unmaps the range).
    [[nodiscard]] int map(std::uint64_t iova, std::uint64_t pa, std::uint64_t length, Prot prot,
                          std::uint64_t max_leaf)
    {
        const std::uint64_t end = iova + length;
        while (iova != end) {
            unsigned level = leaf_level_for(iova, pa, end - iova, max_leaf);
            std::uint64_t* slot = nullptr;
            if (int rc = slot_for(iova, level, &slot))
                return rc;
            if (format_.kind(*slot, level) != EntryKind::invalid)
                return -EEXIST;
            *slot = format_.make_leaf(pa, level, prot);
            iova += level_size(level);
            pa += level_size(level);
        }
        return 0;
    }

    // Clears every leaf that intersects [first, last] (a large leaf sticking
    // out is removed whole, as the kernel's iommu_unmap() does) and frees
    // tables the range covers completely. Returns the bytes unmapped.
    std::uint64_t unmap(std::uint64_t first, std::uint64_t last)
    {
        return unmap_level(root_, levels_ - 1, 0, first, last);
    }

    [[nodiscard]] Walk walk(std::uint64_t iova) const
    {
        Walk w;
        w.prot = {true, true};
        std::uint64_t table = root_;
        std::uint64_t mask = (std::uint64_t{1} << top_bits_) - 1; // the top table's, then a full one's
        for (unsigned level = levels_; level-- > 0; mask = kEntries - 1) {
            std::uint64_t* entry =
                memory_.entries(table) + ((iova >> (Format::kGranuleShift + kBits * level)) & mask);
            w.level = level;
            switch (format_.kind(*entry, level)) {
            case EntryKind::invalid:
                return w;
            case EntryKind::table: {
                Prot p = table_prot(*entry);
                w.prot = {w.prot.read && p.read, w.prot.write && p.write};
                table = format_.output(*entry, level);
                break;
            }
            case EntryKind::leaf: {
                Prot p = format_.prot(*entry);
                w.prot = {w.prot.read && p.read, w.prot.write && p.write};
                w.present = true;
                w.page_size = level_size(level);
                w.page_iova = iova & ~(w.page_size - 1);
                w.page_pa = format_.output(*entry, level);
                w.entry = entry;
                return w;
            }
            }
        }
        return w;
    }

    // Calls fn(leaf_iova, leaf_size, entry) for each leaf intersecting
    // [first, last], in IOVA order.
    void for_each_leaf(std::uint64_t first, std::uint64_t last,
                       const std::function<void(std::uint64_t, std::uint64_t, std::uint64_t&)>& fn)
    {
        visit_leaves(root_, levels_ - 1, 0, first, last, fn);
    }

    // Every valid entry, depth first, as the hardware would read it.
    void dump(const std::function<void(const DumpEntry&)>& fn) const
    {
        dump_level(root_, levels_ - 1, 0, fn);
    }

    [[nodiscard]] std::uint64_t table_pages() const { return tables_; }

private:
    [[nodiscard]] Prot table_prot(std::uint64_t e) const
    {
        if constexpr (requires { format_.table_prot(e); })
            return format_.table_prot(e);
        else
            return format_.prot(e);
    }

    [[nodiscard]] unsigned entries_at(unsigned level) const
    {
        return level == levels_ - 1 ? 1u << top_bits_ : kEntries;
    }
    [[nodiscard]] unsigned index_of(std::uint64_t iova, unsigned level) const
    {
        return static_cast<unsigned>(iova >> (Format::kGranuleShift + kBits * level)) & (entries_at(level) - 1);
    }

    [[nodiscard]] unsigned leaf_level_for(std::uint64_t iova, std::uint64_t pa, std::uint64_t remaining,
                                          std::uint64_t max_leaf) const
    {
        for (unsigned level = levels_ - 1; level > 0; --level) {
            const std::uint64_t size = level_size(level);
            if (size <= max_leaf && size <= remaining && format_.leaf_allowed(level) &&
                ((iova | pa) & (size - 1)) == 0)
                return level;
        }
        return 0;
    }

    // The entry for `iova` at `level`, creating the tables above it.
    [[nodiscard]] int slot_for(std::uint64_t iova, unsigned level, std::uint64_t** out)
    {
        std::uint64_t table = root_;
        for (unsigned l = levels_ - 1; l > level; --l) {
            std::uint64_t& entry = memory_.entries(table)[index_of(iova, l)];
            switch (format_.kind(entry, l)) {
            case EntryKind::leaf:
                return -EEXIST;
            case EntryKind::invalid: {
                auto pa = memory_.alloc(kTableBytes);
                if (!pa)
                    return -ENOMEM;
                ++tables_;
                entry = format_.make_table(*pa);
                break;
            }
            case EntryKind::table:
                break;
            }
            table = format_.output(entry, l);
        }
        *out = memory_.entries(table) + index_of(iova, level);
        return 0;
    }

    std::uint64_t unmap_level(std::uint64_t table, unsigned level, std::uint64_t base,
                              std::uint64_t first, std::uint64_t last)
    {
        const std::uint64_t size = level_size(level);
        std::uint64_t removed = 0;
        std::uint64_t* entries = memory_.entries(table);
        for (unsigned i = index_of(std::max(first, base), level), n = entries_at(level); i < n; ++i) {
            const std::uint64_t at = base + i * size;
            if (at > last)
                break;
            std::uint64_t& entry = entries[i];
            switch (format_.kind(entry, level)) {
            case EntryKind::invalid:
                break;
            case EntryKind::leaf:
                entry = 0;
                removed += size;
                break;
            case EntryKind::table: {
                const std::uint64_t sub = format_.output(entry, level);
                removed += unmap_level(sub, level - 1, at, first, last);
                if (first <= at && at + (size - 1) <= last) {
                    entry = 0;
                    free_table(sub, level - 1);
                }
                break;
            }
            }
            if (at + (size - 1) >= last)
                break;
        }
        return removed;
    }

    void visit_leaves(std::uint64_t table, unsigned level, std::uint64_t base, std::uint64_t first,
                      std::uint64_t last,
                      const std::function<void(std::uint64_t, std::uint64_t, std::uint64_t&)>& fn)
    {
        const std::uint64_t size = level_size(level);
        std::uint64_t* entries = memory_.entries(table);
        for (unsigned i = index_of(std::max(first, base), level), n = entries_at(level); i < n; ++i) {
            const std::uint64_t at = base + i * size;
            if (at > last)
                break;
            switch (format_.kind(entries[i], level)) {
            case EntryKind::invalid:
                break;
            case EntryKind::leaf:
                fn(at, size, entries[i]);
                break;
            case EntryKind::table:
                visit_leaves(format_.output(entries[i], level), level - 1, at, first, last, fn);
                break;
            }
            if (at + (size - 1) >= last)
                break;
        }
    }

    void dump_level(std::uint64_t table, unsigned level, std::uint64_t base,
                    const std::function<void(const DumpEntry&)>& fn) const
    {
        const std::uint64_t size = level_size(level);
        const std::uint64_t* entries = memory_.entries(table);
        for (unsigned i = 0, n = entries_at(level); i < n; ++i) {
            const EntryKind kind = format_.kind(entries[i], level);
            if (kind == EntryKind::invalid)
                continue;
            fn(DumpEntry{level, i, table, base + i * size, size, entries[i], kind == EntryKind::leaf,
                         format_.describe(entries[i], level)});
            if (kind == EntryKind::table)
                dump_level(format_.output(entries[i], level), level - 1, base + i * size, fn);
        }
    }

    void free_table(std::uint64_t table, unsigned level)
    {
        if (level > 0) {
            const std::uint64_t* entries = memory_.entries(table);
            for (unsigned i = 0, n = entries_at(level); i < n; ++i)
                if (format_.kind(entries[i], level) == EntryKind::table)
                    free_table(format_.output(entries[i], level), level - 1);
        }
        memory_.free(table);
        if (table != root_)
            --tables_;
    }

    TableMemory& memory_;
    Format format_;
    unsigned levels_;
    unsigned top_bits_;
    std::uint64_t root_ = 0;
    std::uint64_t tables_ = 0; // below the root
};

} // namespace ioasid::hw
