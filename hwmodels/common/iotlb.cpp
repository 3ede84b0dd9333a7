#include "iotlb.h"

#include <bit>

namespace ioasid::hw {
std::size_t Iotlb::KeyHash::operator()(const Key& k) const
{
    std::uint64_t h = k.page * 0x9e3779b97f4a7c15ULL;
    h ^= (std::uint64_t{k.domain} << 32 | k.pasid) + 0x632be59bd9b4e019ULL + (h << 6) + (h >> 2);
    h ^= k.shift;
    return static_cast<std::size_t>(h ^ (h >> 29));
}

Iotlb::Iotlb(std::size_t capacity, std::uint64_t page_sizes)
    : capacity_(capacity), page_sizes_(page_sizes)
{
    entries_.reserve(capacity);
}

Iotlb::Key Iotlb::key_of(Tag tag, std::uint64_t iova, unsigned shift)
{
    return Key{iova >> shift, tag.domain, tag.pasid ? *tag.pasid + 1 : 0,
               static_cast<std::uint8_t>(shift)};
}

Iotlb::Entry* Iotlb::lookup(Tag tag, std::uint64_t iova)
{
    for (std::uint64_t sizes = sizes_in_use_; sizes; sizes &= sizes - 1) {
        auto it = entries_.find(key_of(tag, iova, std::countr_zero(sizes)));
        if (it != entries_.end()) {
            ++stats_.hits;
            return &it->second;
        }
    }
    ++stats_.misses;
    return nullptr;
}

Iotlb::Entry* Iotlb::insert(Tag tag, std::uint64_t page_iova, const Entry& entry)
{
    // Full: start over, as a simple hardware cache with no replacement
    // policy worth modelling would; translations are refetched on demand.
    if (entries_.size() >= capacity_) {
        stats_.evictions += entries_.size();
        entries_.clear();
        per_domain_.clear();
        sizes_in_use_ = 0;
    }
    sizes_in_use_ |= entry.page_size & page_sizes_;
    auto [it, added] =
        entries_.insert_or_assign(key_of(tag, page_iova, std::countr_zero(entry.page_size)), entry);
    if (added)
        ++per_domain_[tag.domain];
    return &it->second;
}

void Iotlb::invalidate(std::uint32_t domain, Span range)
{
    ++stats_.invalidations;
    // Most invalidations follow an unmap nobody translated through yet.
    auto counted = per_domain_.find(domain);
    if (counted == per_domain_.end())
        return;
    erase_where([&](const Key& k, const Entry& e) {
        const std::uint64_t first = k.page << k.shift;
        return k.domain == domain && first <= range.last && first + (e.page_size - 1) >= range.first;
    });
}

void Iotlb::invalidate_domain(std::uint32_t domain)
{
    ++stats_.invalidations;
    if (per_domain_.contains(domain))
        erase_where([domain](const Key& k, const Entry&) { return k.domain == domain; });
}

void Iotlb::invalidate_all()
{
    ++stats_.invalidations;
    entries_.clear();
    per_domain_.clear();
    sizes_in_use_ = 0;
}

template <typename Pred>
void Iotlb::erase_where(Pred pred)
{
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (pred(it->first, it->second)) {
            auto counted = per_domain_.find(it->first.domain);
            if (--counted->second == 0)
                per_domain_.erase(counted);
            it = entries_.erase(it);
        } else {
            ++it;
        }
    }
}

IotlbStats Iotlb::stats() const
{
    IotlbStats s = stats_;
    s.entries = entries_.size();
    return s;
}

} // namespace ioasid::hw
