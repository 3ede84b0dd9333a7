#include "pin_accounting.h"

#include <algorithm>
#include <cassert>
#include <cerrno>

#include "iova.h"

namespace ioasid::core {
namespace {

std::uint64_t key_of(AccountMode mode, const memory::Caller& owner)
{
    return mode == AccountMode::user ? owner.uid() : owner.process_key();
}

} // namespace

std::unordered_map<std::uint64_t, std::uint64_t>* PinAccounting::counters(AccountMode mode)
{
    switch (mode) {
    case AccountMode::user:
        return &per_user_;
    case AccountMode::mm:
        return &per_process_;
    case AccountMode::none:
        break;
    }
    return nullptr;
}

int PinAccounting::charge(AccountMode mode, const memory::Caller& owner, std::uint64_t npages)
{
    auto* table = counters(mode);
    if (!table || npages == 0)
        return 0;
    const std::uint64_t limit = owner.memlock_limit() >> kPageShift;
    std::lock_guard guard(lock_);
    // Looked up without inserting, so a refused charge leaves no entry.
    auto it = table->find(key_of(mode, owner));
    std::uint64_t counter = it == table->end() ? 0 : it->second;
    if (npages > limit || counter > limit - npages)
        return -ENOMEM;
    if (it == table->end())
        table->emplace(key_of(mode, owner), npages);
    else
        it->second += npages;
    return 0;
}

void PinAccounting::uncharge(AccountMode mode, const memory::Caller& owner, std::uint64_t npages)
{
    auto* table = counters(mode);
    if (!table || npages == 0)
        return;
    std::lock_guard guard(lock_);
    auto it = table->find(key_of(mode, owner));
    assert(it != table->end() && it->second >= npages);
    if (it == table->end())
        return;
    it->second -= std::min(it->second, npages);
    if (it->second == 0)
        table->erase(it);
}

std::uint64_t PinAccounting::user_pages(uid_t uid) const
{
    std::lock_guard guard(lock_);
    auto it = per_user_.find(uid);
    return it == per_user_.end() ? 0 : it->second;
}

std::uint64_t PinAccounting::process_pages(std::uint64_t process_key) const
{
    std::lock_guard guard(lock_);
    auto it = per_process_.find(process_key);
    return it == per_process_.end() ? 0 : it->second;
}

void PinAccounting::note_pinned(std::uint64_t process_key, std::uint64_t first_vpn, std::uint64_t last_vpn)
{
    std::lock_guard guard(lock_);
    page_pins_[process_key] +=
        std::make_pair(boost::icl::discrete_interval<std::uint64_t>::closed(first_vpn, last_vpn), std::uint32_t{1});
}

void PinAccounting::note_unpinned(std::uint64_t process_key, std::uint64_t first_vpn, std::uint64_t last_vpn)
{
    std::lock_guard guard(lock_);
    auto it = page_pins_.find(process_key);
    assert(it != page_pins_.end());
    if (it == page_pins_.end())
        return;
    // interval_map drops the segments whose count reaches zero.
    it->second -=
        std::make_pair(boost::icl::discrete_interval<std::uint64_t>::closed(first_vpn, last_vpn), std::uint32_t{1});
    if (it->second.empty())
        page_pins_.erase(it);
}

std::optional<std::uint64_t> PinAccounting::first_page_pinned_otherwise(std::uint64_t process_key,
                                                                        std::uint64_t first_vpn,
                                                                        std::uint64_t last_vpn,
                                                                        std::uint32_t pins) const
{
    std::lock_guard guard(lock_);
    auto process = page_pins_.find(process_key);
    if (process == page_pins_.end())
        return pins == 0 ? std::nullopt : std::optional(first_vpn);
    std::uint64_t next = first_vpn; // first page not yet compared
    auto range = process->second.equal_range(boost::icl::discrete_interval<std::uint64_t>::closed(first_vpn, last_vpn));
    for (auto it = range.first; it != range.second; ++it) {
        const std::uint64_t lo = std::max(first_vpn, boost::icl::first(it->first));
        if (lo > next && pins != 0)
            return next; // unpinned pages before this run
        if (it->second != pins)
            return lo;
        next = boost::icl::last(it->first) + 1;
        if (next == 0 || next > last_vpn)
            return std::nullopt;
    }
    if (next <= last_vpn && pins != 0)
        return next;
    return std::nullopt;
}

} // namespace ioasid::core
