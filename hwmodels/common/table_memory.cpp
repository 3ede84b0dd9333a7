#include "table_memory.h"

#include <sys/mman.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

namespace ioasid::hw {
namespace {

constexpr std::uint64_t kBlockBytes = 512 * TableMemory::kTableSize;

} // namespace

TableMemory::TableMemory(memory::PhysSpace& phys) : phys_(phys) {}

TableMemory::~TableMemory()
{
    release_blocks();
}

std::optional<std::uint64_t> TableMemory::alloc()
{
    std::lock_guard guard(lock_);
    if (free_pages_.empty()) {
        void* host = mmap(nullptr, kBlockBytes, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (host == MAP_FAILED)
            return std::nullopt;
        // The backing offset of a block is its host address, so one
        // PhysBacking serves every block without a lookup table.
        auto pa = phys_.reserve(kBlockPages, *this, reinterpret_cast<std::uintptr_t>(host));
        if (!pa) {
            munmap(host, kBlockBytes);
            return std::nullopt;
        }
        Block block{*pa, static_cast<std::byte*>(host)};
        blocks_.insert(std::upper_bound(blocks_.begin(), blocks_.end(), block,
                                        [](const Block& a, const Block& b) { return a.pa < b.pa; }),
                       block);
        // Handed out from the low end first.
        for (std::uint64_t i = kBlockPages; i-- > 0;)
            free_pages_.push_back(*pa + i * kTableSize);
    }
    std::uint64_t pa = free_pages_.back();
    free_pages_.pop_back();
    ++in_use_;
    return pa;
}

void TableMemory::free(std::uint64_t pa)
{
    std::lock_guard guard(lock_);
    const Block* block = block_of(pa);
    std::memset(block->host + (pa - block->pa), 0, kTableSize);
    free_pages_.push_back(pa);
    // With no table left, the blocks go back: the physical space and the
    // host memory of a unit nobody uses return to what they were.
    if (--in_use_ == 0)
        release_blocks();
}

void TableMemory::release_blocks()
{
    for (const Block& block : blocks_) {
        phys_.release(block.pa);
        munmap(block.host, kBlockBytes);
    }
    blocks_.clear();
    free_pages_.clear();
}

const TableMemory::Block* TableMemory::block_of(std::uint64_t pa) const
{
    auto it = std::upper_bound(blocks_.begin(), blocks_.end(), pa,
                               [](std::uint64_t v, const Block& b) { return v < b.pa; });
    assert(it != blocks_.begin());
    --it;
    assert(pa - it->pa < kBlockBytes);
    return &*it;
}

std::uint64_t* TableMemory::entries(std::uint64_t pa) const
{
    // The block stays mapped while a table in it is in use.
    std::lock_guard guard(lock_);
    const Block* block = block_of(pa);
    return reinterpret_cast<std::uint64_t*>(block->host + (pa - block->pa));
}

std::byte* TableMemory::host_at(std::uint64_t offset) const
{
    return reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(offset));
}

int TableMemory::read(std::uint64_t offset, std::span<std::byte> out)
{
    std::memcpy(out.data(), host_at(offset), out.size());
    return 0;
}

int TableMemory::write(std::uint64_t offset, std::span<const std::byte> in)
{
    std::memcpy(host_at(offset), in.data(), in.size());
    return 0;
}

} // namespace ioasid::hw
