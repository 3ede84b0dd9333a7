#include "iova_free_space.h"

#include <cassert>
#include <memory>

namespace ioasid::core {

IovaFreeSpace::~IovaFreeSpace()
{
    clear();
}

void IovaFreeSpace::clear()
{
    for (auto& size_class : classes_)
        size_class.clear();
    by_start_.clear_and_dispose([](Free* node) { std::unique_ptr<Free> owned(node); });
}

// Class k holds ranges with (last - first) in [2^(k-1), 2^k - 1]; class 0
// holds single bytes.
unsigned IovaFreeSpace::size_class(const IovaRange& r)
{
    return static_cast<unsigned>(std::bit_width(r.last - r.first));
}

void IovaFreeSpace::insert(IovaRange range)
{
    auto node = std::make_unique<Free>();
    node->range = range;
    classes_[size_class(range)].insert(*node);
    by_start_.insert(*node.release());
}

void IovaFreeSpace::erase(Free& node)
{
    classes_[size_class(node.range)].erase(classes_[size_class(node.range)].iterator_to(node));
    by_start_.erase_and_dispose(by_start_.iterator_to(node),
                                [](Free* n) { std::unique_ptr<Free> owned(n); });
}

void IovaFreeSpace::release(IovaRange range)
{
    assert(range.first <= range.last);
    // Merge with touching neighbours so that ranges stay maximal, the way
    // the kernel's span iterator joins adjacent nodes.
    auto next = by_start_.upper_bound(range.first);
    if (next != by_start_.begin()) {
        auto prev = std::prev(next);
        assert(prev->range.last < range.first);
        if (prev->range.last + 1 == range.first) {
            range.first = prev->range.first;
            erase(*prev);
        }
    }
    if (next != by_start_.end()) {
        assert(next->range.first > range.last);
        if (range.last != kUlongMax && range.last + 1 == next->range.first) {
            range.last = next->range.last;
            erase(*next);
        }
    }
    insert(range);
}

void IovaFreeSpace::occupy(IovaRange range)
{
    auto it = by_start_.upper_bound(range.first);
    if (it != by_start_.begin() && std::prev(it)->range.last >= range.first)
        --it;
    while (it != by_start_.end() && it->range.first <= range.last) {
        IovaRange hole = it->range;
        auto following = std::next(it);
        erase(*it);
        if (hole.first < range.first)
            insert({hole.first, range.first - 1});
        if (hole.last > range.last)
            insert({range.last + 1, hole.last});
        it = following;
    }
}

std::optional<std::uint64_t> IovaFreeSpace::first_fit(
    std::uint64_t min_span, std::uint64_t sure_span,
    const std::function<std::optional<std::uint64_t>(IovaRange)>& fit) const
{
    std::optional<std::uint64_t> best;
    std::uint64_t best_start = kUlongMax;
    for (unsigned k = 0; k < classes_.size(); ++k) {
        const SizeClass& size_class = classes_[k];
        if (size_class.empty())
            continue;
        std::uint64_t lo = k == 0 ? 0 : 1ULL << (k - 1);
        std::uint64_t hi = k == 0 ? 0 : (k == 64 ? kUlongMax : (1ULL << k) - 1);
        if (hi < min_span)
            continue;
        // Walk in address order; stop once past the best answer so far.
        // In a class at or above sure_span the first entry settles it.
        for (const Free& node : size_class) {
            if (node.range.first >= best_start)
                break;
            if (auto iova = fit(node.range)) {
                best = iova;
                best_start = node.range.first;
                break;
            }
            if (lo >= sure_span)
                break;
        }
    }
    return best;
}

void IovaFreeSpace::for_each(IovaRange within, const std::function<void(IovaRange)>& fn) const
{
    auto it = by_start_.upper_bound(within.first);
    if (it != by_start_.begin() && std::prev(it)->range.last >= within.first)
        --it;
    for (; it != by_start_.end() && it->range.first <= within.last; ++it)
        fn(it->range);
}

} // namespace ioasid::core
