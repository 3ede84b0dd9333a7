#include "unit.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <utility>

namespace ioasid::hw {

const char* to_string(FaultReason reason)
{
    switch (reason) {
    case FaultReason::blocked:
        return "blocked";
    case FaultReason::pasid_range:
        return "pasid-range";
    case FaultReason::address_size:
        return "address-size";
    case FaultReason::not_present:
        return "not-present";
    case FaultReason::permission:
        return "permission";
    }
    return "unknown";
}

Unit::Unit(std::string name, std::string family, unsigned max_pasid_bits, std::uint64_t iotlb_page_sizes,
           std::size_t iotlb_capacity)
    : name_(std::move(name)), family_(std::move(family)), max_pasid_bits_(max_pasid_bits),
      iotlb_(iotlb_capacity, iotlb_page_sizes)
{
}

Unit::~Unit() = default;

Endpoint& Unit::add_endpoint(EndpointConfig config)
{
    std::lock_guard guard(lock_);
    endpoints_.push_back(std::make_unique<Endpoint>(std::move(config)));
    return *endpoints_.back();
}

void Unit::remove_endpoint(const Endpoint& endpoint)
{
    std::lock_guard guard(lock_);
    assert(!endpoint.rid_domain_ && endpoint.pasids_.empty());
    std::erase_if(endpoints_, [&](const auto& e) { return e.get() == &endpoint; });
}

unsigned Unit::pasid_bits(const Endpoint& endpoint) const
{
    return std::min(endpoint.config().pasid_bits, max_pasid_bits_);
}

int Unit::check_attach(const Endpoint& endpoint, std::optional<std::uint32_t>, const Domain& domain) const
{
    if (&domain.unit() != this)
        return -EINVAL;
    // A device that cannot track dirty pages does not go on a domain
    // allocated for dirty tracking (the selftest mock's
    // MOCK_FLAGS_DEVICE_NO_DIRTY in mock_domain_nop_attach()).
    if (domain.request().dirty_tracking && !endpoint.config().dirty_tracking)
        return -EINVAL;
    return 0;
}

int Unit::alloc_nested_domain(const Endpoint&, Domain&, const UserData&, std::unique_ptr<NestedDomain>*)
{
    return -EOPNOTSUPP;
}

std::vector<Span> Unit::reserved_regions(const Endpoint&) const
{
    return {};
}

std::uint32_t Unit::fault_code(FaultReason reason, Access) const
{
    return static_cast<std::uint32_t>(reason);
}

std::uint32_t Unit::fault_code(const Fault& fault, const Endpoint&, const Domain*) const
{
    return fault_code(fault.reason, fault.access);
}

std::uint32_t Unit::next_domain_tag()
{
    std::lock_guard guard(lock_);
    return next_tag_++;
}

void Unit::attach(Endpoint& endpoint, std::optional<std::uint32_t> pasid, Domain* domain)
{
    std::lock_guard guard(lock_);
    Domain* old = nullptr;
    if (pasid) {
        auto it = endpoint.pasids_.find(*pasid);
        if (it != endpoint.pasids_.end()) {
            old = it->second;
            if (!domain)
                endpoint.pasids_.erase(it);
            else
                it->second = domain;
        } else if (domain) {
            endpoint.pasids_.emplace(*pasid, domain);
        }
    } else {
        old = std::exchange(endpoint.rid_domain_, domain);
    }
    // What was cached for the old domain may only be reached through the
    // tag, and a replaced attachment must not keep translating through it;
    // the driver flushes the old domain's entries, as VT-d does on a
    // context or PASID entry change.
    program_attachment(endpoint, pasid, domain);
    if (old && old != domain)
        iotlb_.invalidate_domain(old->tag());
}

void Unit::program_attachment(Endpoint&, std::optional<std::uint32_t>, Domain*) {}

Domain* Unit::attached(const Endpoint& endpoint, std::optional<std::uint32_t> pasid) const
{
    std::lock_guard guard(lock_);
    if (!pasid)
        return endpoint.rid_domain_;
    auto it = endpoint.pasids_.find(*pasid);
    return it == endpoint.pasids_.end() ? nullptr : it->second;
}

std::optional<Fault> Unit::translate(Endpoint& endpoint, std::optional<std::uint32_t> pasid,
                                     std::uint64_t iova, std::uint64_t length, Access access,
                                     std::vector<DmaRun>* runs)
{
    Domain* domain = nullptr; // what the request reached, for fault_code()
    auto fault = [&](std::uint64_t at, FaultReason reason) {
        Fault f{at, pasid, access, reason, 0};
        f.hw_code = fault_code(f, endpoint, domain);
        return f;
    };
    if (length == 0)
        return std::nullopt;
    std::lock_guard guard(lock_);
    if (pasid && (pasid_bits(endpoint) == 0 || *pasid >> pasid_bits(endpoint)))
        return fault(iova, FaultReason::pasid_range);
    if (pasid) {
        auto it = endpoint.pasids_.find(*pasid);
        domain = it == endpoint.pasids_.end() ? nullptr : it->second;
    } else {
        domain = endpoint.rid_domain_;
    }
    if (!domain)
        return fault(iova, FaultReason::blocked);
    // A first stage that passes addresses through leaves the parent's
    // translation, cached under the parent's tag so that the parent's
    // invalidations (IOAS unmaps) reach it.
    Domain* walked = domain;
    if (auto* nested = dynamic_cast<NestedDomain*>(domain); nested && nested->first_stage_identity())
        walked = &nested->parent();

    const Span aperture = walked->geometry().aperture;
    const Iotlb::Tag tag{walked->tag(), pasid};
    // With dirty tracking on, the hardware updates the leaf it used: the
    // accessed bit when it fetches a translation, the dirty bit on the
    // first write through it.
    const bool track = walked->dirty_tracking();
    std::uint64_t at = iova;
    std::uint64_t left = length;
    while (left) {
        if (at < aperture.first || at > aperture.last)
            return fault(at, FaultReason::address_size);
        Iotlb::Entry* entry = iotlb_.lookup(tag, at);
        if (!entry) {
            Translation t = walked->lookup(at);
            if (!t.present)
                return fault(at, FaultReason::not_present);
            Iotlb::Entry fetched{t.page_pa, t.page_size, t.prot, t.dirty};
            const std::uint64_t page_iova = t.page_iova;
            if (!fetched.prot.allows(access))
                return fault(at, FaultReason::permission); // a faulting walk caches nothing
            if (track) {
                walked->note_use(at, access);
                fetched.dirty_set |= access == Access::write;
            }
            entry = iotlb_.insert(tag, page_iova, fetched);
        } else if (!entry->prot.allows(access)) {
            return fault(at, FaultReason::permission);
        } else if (track && access == Access::write && !entry->dirty_set) {
            walked->note_use(at, access);
            entry->dirty_set = true;
        }
        const std::uint64_t offset = at & (entry->page_size - 1);
        const std::uint64_t piece = std::min(left, entry->page_size - offset);
        const std::uint64_t pa = entry->page_pa + offset;
        if (!runs->empty() && runs->back().pa + runs->back().length == pa)
            runs->back().length += piece;
        else
            runs->push_back({pa, piece});
        at += piece;
        left -= piece;
    }
    return std::nullopt;
}

void Unit::invalidate(const Domain& domain, Span range)
{
    std::lock_guard guard(lock_);
    iotlb_.invalidate(domain.tag(), range);
}

void Unit::invalidate_domain(const Domain& domain)
{
    std::lock_guard guard(lock_);
    iotlb_.invalidate_domain(domain.tag());
}

std::uint64_t Unit::page_table_pages() const
{
    return 0;
}

IotlbStats Unit::iotlb_stats() const
{
    std::lock_guard guard(lock_);
    return iotlb_.stats();
}

} // namespace ioasid::hw
