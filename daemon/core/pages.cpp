#include "pages.h"

#include <cassert>
#include <cerrno>
#include <vector>

namespace ioasid::core {

using Interval = boost::icl::discrete_interval<std::uint64_t>;

int Pages::create(std::shared_ptr<memory::Caller> source, std::uint64_t user_va,
                  std::uint64_t length, bool writable, AccountMode context_mode,
                  PinServices& services, std::shared_ptr<Pages>* out)
{
    // Keeps the page count below from overflowing, as the kernel does.
    if (length == 0 || length > kUlongMax - kPageSize)
        return -EINVAL;
    std::uint64_t end;
    if (__builtin_add_overflow(user_va, length, &end))
        return -EOVERFLOW;
    std::uint64_t uptr = user_va & ~(kPageSize - 1);
    std::uint64_t npages = (length + (user_va - uptr) + kPageSize - 1) / kPageSize;
    AccountMode mode = context_mode;
    if (source->capable(memory::Capability::ipc_lock))
        mode = AccountMode::none;
    *out = std::make_shared<Pages>(Key{}, std::move(source), uptr, npages, writable, mode, services);
    return 0;
}

Pages::Pages(Key, std::shared_ptr<memory::Caller> source, std::uint64_t uptr, std::uint64_t npages,
             bool writable, AccountMode mode, PinServices services)
    : source_(std::move(source)), uptr_(uptr), npages_(npages), writable_(writable), mode_(mode),
      services_(services)
{
}

Pages::~Pages()
{
    // Every user unpins before it lets go of its reference.
    assert(npinned_ == 0);
    if (npinned_)
        services_.accounting.uncharge(mode_, *source_, npinned_);
    for (auto [chunk, base] : chunks_)
        services_.phys.release(base);
}

int Pages::reserve_chunks(std::uint64_t first, std::uint64_t last)
{
    std::vector<std::uint64_t> added;
    for (std::uint64_t chunk = first / kChunkPages; chunk <= last / kChunkPages; ++chunk) {
        if (chunks_.contains(chunk))
            continue;
        std::uint64_t lo = chunk * kChunkPages;
        auto base = services_.phys.reserve(std::min(kChunkPages, npages_ - lo), *this, lo * kPageSize);
        if (!base) {
            for (std::uint64_t undo : added) {
                services_.phys.release(chunks_[undo]);
                chunks_.erase(undo);
            }
            return -ENOMEM;
        }
        chunks_.emplace(chunk, *base);
        added.push_back(chunk);
    }
    return 0;
}

void Pages::release_unpinned_chunks(std::uint64_t first, std::uint64_t last)
{
    for (std::uint64_t chunk = first / kChunkPages; chunk <= last / kChunkPages; ++chunk) {
        std::uint64_t lo = chunk * kChunkPages;
        std::uint64_t hi = std::min(lo + kChunkPages, npages_) - 1;
        auto it = chunks_.find(chunk);
        if (it != chunks_.end() && pinned_within(lo, hi) == 0) {
            services_.phys.release(it->second);
            chunks_.erase(it);
        }
    }
}

std::uint64_t Pages::pinned_within(std::uint64_t first, std::uint64_t last) const
{
    std::uint64_t count = 0;
    auto range = pins_.equal_range(Interval::closed(first, last));
    for (auto it = range.first; it != range.second; ++it) {
        std::uint64_t lo = std::max(first, boost::icl::first(it->first));
        std::uint64_t hi = std::min(last, boost::icl::last(it->first));
        count += hi - lo + 1;
    }
    return count;
}

int Pages::pin(std::uint64_t first, std::uint64_t last)
{
    assert(first <= last && last < npages_);
    // Only pages that nobody pins yet are checked and charged.
    std::uint64_t next = first;
    std::uint64_t newly = 0;
    auto check_gap = [&](std::uint64_t lo, std::uint64_t hi) {
        newly += hi - lo + 1;
        return source_->memory().check_mapped(uptr_ + lo * kPageSize, (hi - lo + 1) * kPageSize,
                                              writable_);
    };
    auto range = pins_.equal_range(Interval::closed(first, last));
    for (auto it = range.first; it != range.second; ++it) {
        std::uint64_t lo = boost::icl::first(it->first);
        if (lo > next)
            if (int rc = check_gap(next, lo - 1))
                return rc;
        next = boost::icl::last(it->first) + 1;
    }
    if (next <= last)
        if (int rc = check_gap(next, last))
            return rc;

    if (int rc = services_.accounting.charge(mode_, *source_, newly))
        return rc;
    if (int rc = reserve_chunks(first, last)) {
        services_.accounting.uncharge(mode_, *source_, newly);
        return rc;
    }
    pins_ += std::make_pair(Interval::closed(first, last), std::uint32_t{1});
    npinned_ += newly;
    return 0;
}

void Pages::unpin(std::uint64_t first, std::uint64_t last)
{
    assert(first <= last && last < npages_);
    std::uint64_t before = pinned_within(first, last);
    // interval_map drops segments whose count reaches zero.
    pins_ -= std::make_pair(Interval::closed(first, last), std::uint32_t{1});
    std::uint64_t released = before - pinned_within(first, last);
    npinned_ -= released;
    services_.accounting.uncharge(mode_, *source_, released);
    release_unpinned_chunks(first, last);
}

std::uint32_t Pages::pin_count(std::uint64_t index) const
{
    auto it = pins_.find(index);
    return it == pins_.end() ? 0 : it->second;
}

std::optional<std::uint64_t> Pages::phys_addr(std::uint64_t index) const
{
    if (pin_count(index) == 0)
        return std::nullopt;
    return chunks_.at(index / kChunkPages) + (index % kChunkPages) * kPageSize;
}

int Pages::read(std::uint64_t offset, std::span<std::byte> out)
{
    return source_->memory().read(uptr_ + offset, out);
}

int Pages::write(std::uint64_t offset, std::span<const std::byte> in)
{
    if (!writable_)
        return -EPERM;
    return source_->memory().write(uptr_ + offset, in);
}

} // namespace ioasid::core
