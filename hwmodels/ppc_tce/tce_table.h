// One DMA window of a partitionable endpoint and the TCE table behind it,
// laid out as the powernv driver builds it (pnv_pci_ioda2_table_alloc_pages(),
// pnv_tce()): the TCE index is (IOVA - window base) >> page_shift; with
// more than one level, each level takes 9 bits of the index from the
// bottom up and holds 512 big-endian entries in one 4 KiB page, the top
// level allocated with the window and the lower ones on first use.
#pragma once

#include <cstdint>
#include <functional>

#include "hwmodels/common/table_memory.h"
#include "hwmodels/common/types.h"

namespace ioasid::hw::ppc_tce {

struct WindowConfig {
    std::uint64_t base = 0;
    std::uint64_t size = 0;   // a power of two
    unsigned page_shift = 12; // bytes per TCE, log2
    unsigned levels = 1;      // 1: the TCEs themselves sit in the top table

    [[nodiscard]] std::uint64_t page_size() const { return std::uint64_t{1} << page_shift; }
    [[nodiscard]] std::uint64_t last() const { return base + (size - 1); }
    [[nodiscard]] bool contains(std::uint64_t iova) const { return iova >= base && iova - base < size; }
    // log2 of the number of TCEs.
    [[nodiscard]] unsigned entries_shift() const;
};

// Index bits per level: a level is one 4 KiB page of 8-byte entries.
inline constexpr unsigned kLevelBits = 9;
inline constexpr std::uint64_t kLevelEntries = std::uint64_t{1} << kLevelBits;

class TceTable {
public:
    TceTable(TableMemory& memory, const WindowConfig& window);
    ~TceTable();
    TceTable(const TceTable&) = delete;
    TceTable& operator=(const TceTable&) = delete;

    // Allocates the top level; -ENOMEM when there is no room.
    [[nodiscard]] int init();

    [[nodiscard]] const WindowConfig& window() const { return window_; }
    [[nodiscard]] std::uint64_t root() const { return root_; }

    // Writes the TCEs of [iova, iova + length) (inside the window, aligned
    // to its page) for the pages from `pa`. -EEXIST if one is in use
    // (what this call wrote is cleared again), -ENOMEM for want of a level
    // (what was written stays; the caller unmaps).
    [[nodiscard]] int map(std::uint64_t iova, std::uint64_t pa, std::uint64_t length, Prot prot);
    // Clears the TCEs of the pages intersecting [first, last]. Levels stay
    // allocated, as pnv_tce_free() leaves them.
    void unmap(std::uint64_t first, std::uint64_t last);

    // The TCE the PHB fetches for `iova` (in host order), 0 when it or a
    // level above it is absent.
    [[nodiscard]] std::uint64_t tce(std::uint64_t iova) const;

    // Every present entry, indirect ones before the level they point to.
    void dump(const std::function<void(const DumpEntry&)>& fn) const;

private:
    // The stored (big-endian) slot of TCE `index`; nullptr when a level is
    // missing and `alloc` is false, or cannot be allocated.
    [[nodiscard]] std::uint64_t* slot(std::uint64_t index, bool alloc);
    [[nodiscard]] const std::uint64_t* find_slot(std::uint64_t index) const;
    void free_level(std::uint64_t table_pa, unsigned level);
    void dump_level(std::uint64_t table_pa, unsigned level, std::uint64_t first_index,
                    const std::function<void(const DumpEntry&)>& fn) const;

    TableMemory& memory_;
    WindowConfig window_;
    std::uint64_t root_ = 0;
};

} // namespace ioasid::hw::ppc_tce
