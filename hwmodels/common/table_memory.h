// Pages that hold the page tables a unit's driver builds. They live in the
// emulated physical address space, so entries point at them by physical
// address as in hardware, and the walker reaches them without a copy.
//
// A table is a naturally aligned power of two from 4 KiB (a VT-d or
// 4 KiB-granule table) up to 2 MiB: sixteen concatenated 64 KiB tables at
// a stage-2 start level need 1 MiB.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <unordered_map>

#include "memory/phys_space.h"

namespace ioasid::hw {

class TableMemory final : public memory::PhysBacking {
public:
    static constexpr std::uint64_t kTableSize = 4096;
    static constexpr std::uint64_t kMaxTableSize = 2ULL << 20;

    explicit TableMemory(memory::PhysSpace& phys);
    ~TableMemory() override;
    TableMemory(const TableMemory&) = delete;
    TableMemory& operator=(const TableMemory&) = delete;

    // A zeroed table of `bytes` (a power of two, kTableSize..kMaxTableSize;
    // smaller requests get kTableSize) aligned to its size, or nothing when
    // physical space runs out.
    [[nodiscard]] std::optional<std::uint64_t> alloc(std::uint64_t bytes = kTableSize);
    // Returns a table alloc() gave, whatever its size.
    void free(std::uint64_t pa);

    // The entries of the table at `pa`, which alloc() returned; any address
    // inside such a table gives the entry there. Takes no lock.
    [[nodiscard]] std::uint64_t* entries(std::uint64_t pa) const;
    // Tables handed out and not yet freed, counted in 4 KiB pages.
    [[nodiscard]] std::uint64_t pages_in_use() const
    {
        std::lock_guard guard(lock_);
        return in_use_;
    }

    int read(std::uint64_t offset, std::span<std::byte> out) override;
    int write(std::uint64_t offset, std::span<const std::byte> in) override;

private:
    // Tables come from 2 MiB blocks, one physical reservation each (which
    // PhysSpace aligns to 2 MiB); the host memory behind a block is
    // committed only as pages are touched. Inside a block, tables are
    // carved buddy-fashion, so each is aligned to its size.
    static constexpr std::uint64_t kBlockBytes = kMaxTableSize;
    static constexpr unsigned kOrders = 10; // 4 KiB << 0..9
    // 2 GiB of tables per unit; past that alloc() reports no memory.
    static constexpr std::size_t kMaxBlocks = 1024;
    struct Block {
        std::uint64_t pa;
        std::byte* host;
    };
    [[nodiscard]] const Block* block_of(std::uint64_t pa) const;
    [[nodiscard]] bool add_block(); // under lock_
    void release_blocks();          // under lock_

    memory::PhysSpace& phys_;
    // The tables of a unit belong to domains of any context, and contexts
    // run at the same time: the pool is shared, so it has its own lock
    // (taken inside a context's, around PhysSpace's) for alloc and free.
    // A table's entries are the business of the context owning its domain.
    mutable std::mutex lock_;
    // Finding a table's host memory takes no lock, because blocks_ only
    // grows while any table is handed out: add_block() fills the slot at
    // index `block_count_` completely and only then publishes it with a
    // release store of the count, so a walker in another context that
    // acquires the count sees whole slots, never a half-written one, and
    // never a slot that moves. A walker only ever asks about the address of
    // a table that is in use, which lies in a block published before that
    // table was handed out. The slots are cleared (and the count reset)
    // only by release_blocks(), when no table at all is in use, so no
    // walker can be looking at them.
    std::array<Block, kMaxBlocks> blocks_{};
    std::atomic<std::size_t> block_count_{0};
    std::array<std::set<std::uint64_t>, kOrders> free_; // free tables by order, by address
    std::unordered_map<std::uint64_t, unsigned> orders_; // order of each table in use
    std::uint64_t in_use_ = 0;                           // in 4 KiB pages
};

} // namespace ioasid::hw
