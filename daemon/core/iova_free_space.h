// Free IOVA of one IOAS, indexed for first-fit placement in O(log n).
//
// The kernel finds room for an automatic IOVA by walking the holes between
// reserved ranges and areas from the bottom; with a million areas that walk
// is a million steps. Here each maximal free range sits in a tree by start
// address and in one of 65 trees by log2 of its size, so the lowest range
// that can hold a request is found by looking at the first entry of each
// size class that certainly fits and scanning only the classes that may.
// The answer is the kernel's: the lowest-addressed hole that fits.
#pragma once

#include <boost/intrusive/set.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>

#include "iova.h"

namespace ioasid::core {

class IovaFreeSpace {
public:
    IovaFreeSpace() = default;
    IovaFreeSpace(const IovaFreeSpace&) = delete;
    IovaFreeSpace& operator=(const IovaFreeSpace&) = delete;
    ~IovaFreeSpace();

    void clear();
    // Marks [first, last] free; it must not overlap free space already.
    void release(IovaRange range);
    // Marks [first, last] used; parts already used are ignored.
    void occupy(IovaRange range);

    // `fit` returns the IOVA to use inside a free range, or nothing. Ranges
    // whose size - 1 is below `min_span` are never offered; those at or above
    // `sure_span` are assumed to fit (fit is still called to place the IOVA).
    [[nodiscard]] std::optional<std::uint64_t> first_fit(
        std::uint64_t min_span, std::uint64_t sure_span,
        const std::function<std::optional<std::uint64_t>(IovaRange)>& fit) const;

    // Free ranges intersecting [first, last], in ascending order.
    void for_each(IovaRange within, const std::function<void(IovaRange)>& fn) const;
    [[nodiscard]] std::size_t range_count() const { return by_start_.size(); }

private:
    struct ByStartTag;
    struct BySizeTag;
    using StartHook = boost::intrusive::set_member_hook<>;
    struct Free {
        IovaRange range;
        StartHook by_start;
        StartHook by_size;
        friend bool operator<(const Free& a, const Free& b) { return a.range.first < b.range.first; }
    };
    struct FirstKey {
        using type = std::uint64_t;
        type operator()(const Free& f) const { return f.range.first; }
    };
    using StartSet = boost::intrusive::set<
        Free, boost::intrusive::member_hook<Free, StartHook, &Free::by_start>,
        boost::intrusive::key_of_value<FirstKey>>;
    using SizeClass = boost::intrusive::set<
        Free, boost::intrusive::member_hook<Free, StartHook, &Free::by_size>,
        boost::intrusive::key_of_value<FirstKey>>;

    static unsigned size_class(const IovaRange& r);
    void insert(IovaRange range);
    void erase(Free& node);

    StartSet by_start_;
    std::array<SizeClass, 65> classes_;
};

} // namespace ioasid::core
