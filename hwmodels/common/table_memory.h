// Pages that hold the page tables a unit's driver builds. They live in the
// emulated physical address space, so entries point at them by physical
// address as in hardware, and the walker reaches them without a copy.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "memory/phys_space.h"

namespace ioasid::hw {

class TableMemory final : public memory::PhysBacking {
public:
    static constexpr std::uint64_t kTableSize = 4096;

    explicit TableMemory(memory::PhysSpace& phys);
    ~TableMemory() override;
    TableMemory(const TableMemory&) = delete;
    TableMemory& operator=(const TableMemory&) = delete;

    // A zeroed table page, or nothing when physical space runs out.
    [[nodiscard]] std::optional<std::uint64_t> alloc();
    void free(std::uint64_t pa);

    // The 512 entries of the table at `pa`, which alloc() returned.
    [[nodiscard]] std::uint64_t* entries(std::uint64_t pa) const;
    [[nodiscard]] std::uint64_t pages_in_use() const
    {
        std::lock_guard guard(lock_);
        return in_use_;
    }

    int read(std::uint64_t offset, std::span<std::byte> out) override;
    int write(std::uint64_t offset, std::span<const std::byte> in) override;

private:
    // Tables come from 2 MiB blocks, one physical reservation each; the
    // host memory behind a block is committed only as pages are touched.
    static constexpr std::uint64_t kBlockPages = 512;
    struct Block {
        std::uint64_t pa;
        std::byte* host;
    };
    [[nodiscard]] const Block* block_of(std::uint64_t pa) const;
    [[nodiscard]] std::byte* host_at(std::uint64_t offset) const; // offset into this backing
    void release_blocks();

    memory::PhysSpace& phys_;
    // The tables of a unit belong to domains of any context, and contexts
    // run at the same time: the pool is shared, so it has its own lock
    // (taken inside a context's, around PhysSpace's). A table's entries
    // are the business of the context owning its domain.
    mutable std::mutex lock_;
    std::vector<Block> blocks_;             // sorted by pa
    std::vector<std::uint64_t> free_pages_; // physical addresses
    std::uint64_t in_use_ = 0;
};

} // namespace ioasid::hw
