// The translation cache of one unit. Entries are tagged with the domain
// (the hardware's domain id) and the PASID of the request, and stay until
// an invalidation removes them, so a missing invalidation is visible as a
// stale translation, as on hardware. Callers hold the unit's lock.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>

#include "types.h"

namespace ioasid::hw {

struct IotlbStats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::uint64_t invalidations = 0; // invalidation requests
    std::uint64_t evictions = 0;     // entries dropped because the cache was full
    std::uint64_t entries = 0;       // cached now
};

class Iotlb {
public:
    struct Tag {
        std::uint32_t domain;
        std::optional<std::uint32_t> pasid;
    };
    struct Entry {
        std::uint64_t page_pa;
        std::uint64_t page_size;
        Prot prot;
        bool dirty_set; // the leaf's dirty bit is known to be set
    };

    // `page_sizes` is a bitmap of every leaf size an entry may have.
    Iotlb(std::size_t capacity, std::uint64_t page_sizes);

    // The entry that translates `iova`, counting a hit or a miss.
    [[nodiscard]] Entry* lookup(Tag tag, std::uint64_t iova);
    Entry* insert(Tag tag, std::uint64_t page_iova, const Entry& entry);

    // Drops what a domain caches for [first, last], for every PASID.
    void invalidate(std::uint32_t domain, Span range);
    void invalidate_domain(std::uint32_t domain);
    void invalidate_all();

    [[nodiscard]] IotlbStats stats() const;

private:
    struct Key {
        std::uint64_t page;  // iova >> shift
        std::uint32_t domain;
        std::uint32_t pasid; // PASID + 1; 0 for requests without one
        std::uint8_t shift;
        friend bool operator==(const Key&, const Key&) = default;
    };
    struct KeyHash {
        std::size_t operator()(const Key& k) const;
    };
    [[nodiscard]] static Key key_of(Tag tag, std::uint64_t iova, unsigned shift);
    template <typename Pred>
    void erase_where(Pred pred);

    std::size_t capacity_;
    std::uint64_t page_sizes_;
    // The sizes entries were inserted with since the cache was last empty:
    // a lookup probes only those. A unit with every power of two (AMD's
    // v1) would otherwise probe some forty sizes per miss.
    std::uint64_t sizes_in_use_ = 0;
    std::unordered_map<Key, Entry, KeyHash> entries_;
    std::unordered_map<std::uint32_t, std::size_t> per_domain_; // entries per domain
    IotlbStats stats_;
};

} // namespace ioasid::hw
