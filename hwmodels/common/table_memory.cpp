#include "table_memory.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>

namespace ioasid::hw {
namespace {

unsigned order_of(std::uint64_t bytes)
{
    if (bytes <= TableMemory::kTableSize)
        return 0;
    return static_cast<unsigned>(std::bit_width(bytes - 1)) - std::countr_zero(TableMemory::kTableSize);
}

std::uint64_t bytes_of(unsigned order)
{
    return TableMemory::kTableSize << order;
}

} // namespace

TableMemory::TableMemory(memory::PhysSpace& phys) : phys_(phys) {}

TableMemory::~TableMemory()
{
    std::lock_guard guard(lock_);
    release_blocks();
}

bool TableMemory::add_block()
{
    const std::size_t count = block_count_.load(std::memory_order_relaxed);
    if (count == kMaxBlocks)
        return false;
    void* host = mmap(nullptr, kBlockBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                      -1, 0);
    if (host == MAP_FAILED)
        return false;
    // The backing offset of a block is its host address, so one
    // PhysBacking serves every block without a lookup table.
    auto pa = phys_.reserve(kBlockBytes / kTableSize, *this, reinterpret_cast<std::uintptr_t>(host));
    if (!pa) {
        munmap(host, kBlockBytes);
        return false;
    }
    assert(*pa % kBlockBytes == 0);
    blocks_[count] = Block{*pa, static_cast<std::byte*>(host)};
    block_count_.store(count + 1, std::memory_order_release);
    free_[kOrders - 1].insert(*pa);
    return true;
}

std::optional<std::uint64_t> TableMemory::alloc(std::uint64_t bytes)
{
    assert(bytes <= kMaxTableSize && std::has_single_bit(std::max(bytes, kTableSize)));
    const unsigned order = order_of(bytes);
    // Larger than a block: no order holds it, and splitting from the top
    // order would hand out a block while booking more pages than it has.
    if (order >= kOrders)
        return std::nullopt;
    std::lock_guard guard(lock_);
    unsigned from = order;
    while (from < kOrders && free_[from].empty())
        ++from;
    if (from == kOrders) {
        if (!add_block())
            return std::nullopt;
        from = kOrders - 1;
    }
    // The lowest free table of the smallest order that fits, split down:
    // tables are handed out from the low end first, so a fresh pool gives
    // predictable addresses.
    auto it = free_[from].begin();
    const std::uint64_t pa = *it;
    free_[from].erase(it);
    while (from > order) {
        --from;
        free_[from].insert(pa + bytes_of(from));
    }
    orders_.emplace(pa, order);
    in_use_ += std::uint64_t{1} << order;
    return pa;
}

void TableMemory::free(std::uint64_t pa)
{
    std::lock_guard guard(lock_);
    auto found = orders_.find(pa);
    assert(found != orders_.end() && "not a table in use: a double free?");
    // A double free in a release build changes nothing rather than putting
    // a table on a free list twice (two owners for the next two allocs).
    if (found == orders_.end())
        return;
    unsigned order = found->second;
    orders_.erase(found);
    in_use_ -= std::uint64_t{1} << order;
    // With no table left, the blocks go back: the physical space and the
    // host memory of a unit nobody uses return to what they were (and the
    // host pages need no zeroing first).
    if (in_use_ == 0) {
        release_blocks();
        return;
    }
    // alloc() promises zeroed tables.
    const Block* block = block_of(pa);
    std::memset(block->host + (pa - block->pa), 0, bytes_of(order));
    // Merge with a free buddy, as far as it goes.
    std::uint64_t at = pa;
    while (order + 1 < kOrders) {
        const std::uint64_t buddy = at ^ bytes_of(order);
        auto b = free_[order].find(buddy);
        if (b == free_[order].end())
            break;
        free_[order].erase(b);
        at = std::min(at, buddy);
        ++order;
    }
    free_[order].insert(at);
}

void TableMemory::release_blocks()
{
    const std::size_t count = block_count_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < count; ++i) {
        phys_.release(blocks_[i].pa);
        munmap(blocks_[i].host, kBlockBytes);
    }
    block_count_.store(0, std::memory_order_relaxed);
    for (auto& list : free_)
        list.clear();
}

const TableMemory::Block* TableMemory::block_of(std::uint64_t pa) const
{
    // Blocks are 2 MiB aligned: compare the block frame, scanning the
    // newest first (a unit rarely has more than a few).
    const std::uint64_t frame = pa & ~(kBlockBytes - 1);
    for (std::size_t i = block_count_.load(std::memory_order_acquire); i-- > 0;)
        if (blocks_[i].pa == frame)
            return &blocks_[i];
    assert(false && "not a table of this pool");
    return nullptr;
}

std::uint64_t* TableMemory::entries(std::uint64_t pa) const
{
    const Block* block = block_of(pa);
    return reinterpret_cast<std::uint64_t*>(block->host + (pa - block->pa));
}

int TableMemory::read(std::uint64_t offset, std::span<std::byte> out)
{
    std::memcpy(out.data(), reinterpret_cast<const std::byte*>(static_cast<std::uintptr_t>(offset)), out.size());
    return 0;
}

int TableMemory::write(std::uint64_t offset, std::span<const std::byte> in)
{
    std::memcpy(reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(offset)), in.data(), in.size());
    return 0;
}

} // namespace ioasid::hw
