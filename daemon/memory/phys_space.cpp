#include "phys_space.h"

#include <cassert>

namespace ioasid::memory {

void PhysSpace::remove_free(std::map<std::uint64_t, std::uint64_t>::iterator it)
{
    free_by_size_.erase({it->second, it->first});
    free_by_base_.erase(it);
}

void PhysSpace::add_free(std::uint64_t base, std::uint64_t npages)
{
    auto next = free_by_base_.lower_bound(base);
    if (next != free_by_base_.end() && base + npages * kPageSize == next->first) {
        npages += next->second;
        remove_free(next);
    }
    auto prev = free_by_base_.lower_bound(base);
    if (prev != free_by_base_.begin()) {
        --prev;
        if (prev->first + prev->second * kPageSize == base) {
            base = prev->first;
            npages += prev->second;
            remove_free(prev);
        }
    }
    free_by_base_.emplace(base, npages);
    free_by_size_.emplace(npages, base);
}

std::optional<std::uint64_t> PhysSpace::reserve(std::uint64_t npages, PhysBacking& backing,
                                                std::uint64_t backing_offset)
{
    if (npages == 0 || npages > (kEnd - kFirst) / kPageSize)
        return std::nullopt;
    // Sizes are rounded to the alignment, which keeps every hole aligned.
    const std::uint64_t valid = npages;
    npages = (npages + kAlignPages - 1) / kAlignPages * kAlignPages;
    std::lock_guard guard(lock_);
    // The smallest hole that fits, the lowest such one among equals.
    auto fit = free_by_size_.lower_bound({npages, 0});
    if (fit == free_by_size_.end())
        return std::nullopt;
    std::uint64_t base = fit->second;
    std::uint64_t hole = fit->first;
    free_by_size_.erase(fit);
    free_by_base_.erase(base);
    if (hole > npages)
        add_free(base + npages * kPageSize, hole - npages);
    used_.emplace(base, Reservation{npages, valid, &backing, backing_offset});
    used_pages_ += valid;
    return base;
}

void PhysSpace::release(std::uint64_t base)
{
    std::lock_guard guard(lock_);
    auto it = used_.find(base);
    assert(it != used_.end());
    if (it == used_.end())
        return;
    std::uint64_t npages = it->second.npages;
    used_pages_ -= it->second.valid;
    used_.erase(it);
    add_free(base, npages);
}

std::optional<PhysSpace::Resolved> PhysSpace::resolve(std::uint64_t pa) const
{
    std::lock_guard guard(lock_);
    auto it = used_.upper_bound(pa);
    if (it == used_.begin())
        return std::nullopt;
    --it;
    std::uint64_t offset = pa - it->first;
    std::uint64_t size = it->second.valid * kPageSize;
    if (offset >= size)
        return std::nullopt;
    return Resolved{it->second.backing, it->second.backing_offset + offset, size - offset};
}

std::uint64_t PhysSpace::reserved_pages() const
{
    std::lock_guard guard(lock_);
    return used_pages_;
}

} // namespace ioasid::memory
