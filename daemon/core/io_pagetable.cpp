#include "io_pagetable.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

namespace ioasid::core {
namespace {

// The part of the address space automatic placement searches when no
// allowed ranges are set: never IOVA 0, never the top page.
constexpr IovaRange kDefaultWindow{kPageSize, kUlongMax - kPageSize};

constexpr unsigned kUnmapNotifyRetries = 100;

std::uint64_t roundup_pow_of_two(std::uint64_t value)
{
    return value <= 1 ? 1 : std::bit_ceil(value);
}

void dispose_area(Area* area)
{
    std::unique_ptr<Area> owned(area);
}

// The kernel's test for "an IOVA of this length and alignment fits in
// [first, last]", which keeps the sub-page offset of the user pointer.
std::optional<std::uint64_t> fit_in(IovaRange range, std::uint64_t length, std::uint64_t alignment,
                                    std::uint64_t page_offset)
{
    std::uint64_t start;
    if (__builtin_add_overflow(range.first, alignment - 1, &start))
        return std::nullopt;
    start &= ~(alignment - 1);
    start |= page_offset;
    if (start >= range.last || range.last - start < length - 1)
        return std::nullopt;
    return start;
}

} // namespace

IoPagetable::IoPagetable()
{
    rebuild_windows_and_free_space();
}

IoPagetable::~IoPagetable()
{
    assert(holders_.empty());
    std::uint64_t unmapped;
    (void)unmap_range({0, kUlongMax}, &unmapped);
    free_.clear();
}

// The lowest area intersecting `range`, or end(). Areas never overlap, so
// only the area just below range.first can reach into it from the left.
template <typename Set>
static auto first_in(Set& areas, IovaRange range) -> decltype(areas.begin())
{
    auto it = areas.upper_bound(range.first, [](std::uint64_t key, const Area& a) {
        return key < a.iova.first;
    });
    if (it != areas.begin() && std::prev(it)->iova.last >= range.first)
        --it;
    if (it != areas.end() && it->iova.first > range.last)
        return areas.end();
    return it;
}

IoPagetable::AreaSet::const_iterator IoPagetable::first_area_in(IovaRange range) const
{
    return first_in(areas_, range);
}

IoPagetable::AreaSet::iterator IoPagetable::first_area_in(IovaRange range)
{
    return first_in(areas_, range);
}

bool IoPagetable::area_intersects(IovaRange range) const
{
    return first_area_in(range) != areas_.end();
}

bool IoPagetable::reserved_intersects(IovaRange range) const
{
    for (const auto& [first, entry] : reserved_) {
        if (first > range.last)
            break;
        if (entry.range.last >= range.first)
            return true;
    }
    return false;
}

bool IoPagetable::allowed_intersects(IovaRange range) const
{
    auto it = std::lower_bound(allowed_.begin(), allowed_.end(), range.first,
                               [](const IovaRange& a, std::uint64_t v) { return a.last < v; });
    return it != allowed_.end() && it->first <= range.last;
}

// Windows are the allowed ranges, joined where they touch, clipped to the
// default window; free space is each window minus areas and reserved ranges.
void IoPagetable::rebuild_windows_and_free_space()
{
    windows_.clear();
    if (allowed_.empty()) {
        windows_.push_back(kDefaultWindow);
    } else {
        for (IovaRange r : allowed_) {
            r.first = std::max(r.first, kDefaultWindow.first);
            r.last = std::min(r.last, kDefaultWindow.last);
            if (r.first > r.last)
                continue;
            if (!windows_.empty() && windows_.back().last + 1 >= r.first)
                windows_.back().last = std::max(windows_.back().last, r.last);
            else
                windows_.push_back(r);
        }
    }
    free_.clear();
    for (IovaRange window : windows_)
        free_.release(window);
    for (const Area& area : areas_)
        free_.occupy(area.iova);
    for (const auto& [first, entry] : reserved_)
        free_.occupy(entry.range);
}

void IoPagetable::release_into_windows(IovaRange range)
{
    auto it = std::lower_bound(windows_.begin(), windows_.end(), range.first,
                               [](const IovaRange& w, std::uint64_t v) { return w.last < v; });
    for (; it != windows_.end() && it->first <= range.last; ++it)
        free_.release({std::max(it->first, range.first), std::min(it->last, range.last)});
}

int IoPagetable::alloc_iova(std::uint64_t* iova, std::uint64_t uptr, std::uint64_t length) const
{
    // Also keeps roundup_pow_of_two() below from overflowing.
    if (length == 0 || length >= kUlongMax / 2)
        return -EOVERFLOW;
    // Keeping the alignment the user pointer has raises the odds that a
    // huge page can map it.
    std::uint64_t alignment = roundup_pow_of_two(length);
    if (uptr)
        alignment = std::min(alignment, lowest_set_bit(uptr));
    alignment = std::min(alignment, kHugePageSize);
    if (alignment < iova_alignment_)
        return -EINVAL;

    const std::uint64_t page_offset = uptr % kPageSize;
    const std::uint64_t min_span = std::max<std::uint64_t>(length - 1, 1);
    const std::uint64_t sure_span = (alignment - 1) + page_offset + min_span;
    auto found = free_.first_fit(min_span, sure_span, [&](IovaRange hole) -> std::optional<std::uint64_t> {
        // The kernel first places the request in the whole allowed span the
        // hole lies in, then searches holes only from that placement up.
        auto window = std::lower_bound(windows_.begin(), windows_.end(), hole.first,
                                       [](const IovaRange& w, std::uint64_t v) { return w.last < v; });
        if (window == windows_.end())
            return std::nullopt;
        auto window_start = fit_in(*window, length, alignment, page_offset);
        if (!window_start || *window_start > hole.last)
            return std::nullopt;
        return fit_in({std::max(hole.first, *window_start), hole.last}, length, alignment, page_offset);
    });
    if (!found)
        return -ENOSPC;
    *iova = *found;
    return 0;
}

int IoPagetable::check_iova(std::uint64_t iova, std::uint64_t length) const
{
    if (!aligned(iova, iova_alignment_))
        return -EINVAL;
    std::uint64_t last;
    if (!last_of(iova, length, &last))
        return -EOVERFLOW;
    if (reserved_intersects({iova, last}))
        return -EINVAL;
    // Existing mappings are never replaced.
    if (area_intersects({iova, last}))
        return -EEXIST;
    return 0;
}

int IoPagetable::map_pages(std::span<const PagesSlice> slices, std::uint64_t length,
                           std::uint64_t* iova, bool readable, bool writable, bool alloc_iova)
{
    assert(!slices.empty());
    if (length == 0 || !aligned(length, iova_alignment_))
        return -EINVAL;
    int rc = alloc_iova ? this->alloc_iova(iova, slices.front().pages->uptr() + slices.front().start_byte, length)
                        : check_iova(*iova, length);
    if (rc)
        return rc;

    // Validate every slice before inserting any, in the order the kernel
    // inserts them, so the first failing slice names the errno.
    std::uint64_t at = *iova;
    for (const PagesSlice& slice : slices) {
        if (writable && !slice.pages->writable())
            return -EPERM;
        if (!aligned(slice.start_byte % kPageSize, iova_alignment_))
            return -EINVAL;
        std::uint64_t last;
        if (!last_of(at, slice.length, &last) || !last_of(slice.start_byte, slice.length, &last))
            return -EOVERFLOW;
        // A page count that wrapped when the pages object was sized shows up
        // here, as in iopt_insert_area().
        if (last / kPageSize >= slice.pages->npages())
            return -EOVERFLOW;
        at += slice.length;
    }
    at = *iova;
    std::vector<Area*> added;
    for (const PagesSlice& slice : slices) {
        auto area = std::make_unique<Area>();
        area->iova = {at, at + slice.length - 1};
        area->pages = slice.pages;
        area->start_byte = slice.start_byte;
        area->readable = readable;
        area->writable = writable;
        free_.occupy(area->iova);
        added.push_back(area.get());
        areas_.insert(*area.release());
        at += slice.length;
    }
    // Every domain gets the new areas before the map returns, as
    // iopt_fill_domains_pages() does; a failure takes them all back.
    for (std::size_t i = 0; i < added.size(); ++i) {
        if (int fill_rc = fill_area(*added[i])) {
            for (std::size_t j = 0; j < i; ++j)
                unfill_area(*added[j]);
            for (Area* area : added)
                remove_area(*area);
            return fill_rc;
        }
    }
    return 0;
}

int IoPagetable::get_pages(std::uint64_t iova, std::uint64_t length, std::vector<PagesSlice>* out) const
{
    if (length == 0)
        return -EINVAL;
    std::uint64_t last;
    if (!last_of(iova, length, &last))
        return -EOVERFLOW;
    out->clear();
    std::uint64_t cur = iova;
    auto it = first_area_in({iova, iova});
    while (it != areas_.end() && it->iova.first <= cur) {
        std::uint64_t piece_last = std::min(last, it->iova.last);
        out->push_back({it->pages, it->byte_at(cur), piece_last - cur + 1});
        if (piece_last == last)
            return 0;
        cur = piece_last + 1;
        ++it;
    }
    out->clear();
    return -ENOENT;
}

void IoPagetable::remove_area(Area& area)
{
    IovaRange range = area.iova;
    areas_.erase_and_dispose(areas_.iterator_to(area), dispose_area);
    release_into_windows(range);
}

int IoPagetable::unmap_range(IovaRange range, std::uint64_t* unmapped)
{
    *unmapped = 0;
    std::uint64_t start = range.first;
    for (;;) {
        auto it = first_area_in({start, range.last});
        if (it == areas_.end())
            return 0;
        Area& area = *it;
        if (area.iova.first < range.first || area.iova.last > range.last)
            return -ENOENT;
        // Holders must let go of an area before it can disappear. Like the
        // kernel, ask again until they have, and give up after 100 retries.
        for (unsigned tries = 0; area.num_accesses;) {
            area.prevent_access = true;
            IovaRange held = area.iova;
            for (PinHolder* holder : std::vector<PinHolder*>(holders_))
                holder->unmap_notify(held);
            if (++tries > kUnmapNotifyRetries)
                return -EDEADLOCK;
        }
        IovaRange removed = area.iova;
        unfill_area(area);
        remove_area(area);
        *unmapped += removed.last - removed.first + 1;
        if (removed.last >= range.last)
            return 0;
        start = removed.last + 1;
    }
}

int IoPagetable::cut(std::span<const std::uint64_t> iovas)
{
    for (std::uint64_t iova : iovas) {
        auto it = first_area_in({iova, iova});
        if (it == areas_.end())
            continue;
        if (int rc = split_area(*it, iova))
            return rc;
    }
    return 0;
}

// The rules of iopt_area_split(): both halves keep the same pages and
// domain contents, so nothing is mapped or unmapped, only the area set
// changes.
int IoPagetable::split_area(Area& area, std::uint64_t iova)
{
    if (iova == area.iova.first || iova == area.iova.last)
        return 0;
    if (area.prevent_access)
        return -EBUSY;
    const std::uint64_t new_first = iova + 1;
    if (!aligned(new_first, iova_alignment_) || !aligned(area.byte_at(new_first), iova_alignment_))
        return -EINVAL;
    // Pins taken through an access are counted per area, and cannot be
    // shared out between two.
    if (area.num_accesses)
        return -EINVAL;
    // A domain may have put the area in one large leaf it cannot split.
    if (area.pinned_for_domains && !disable_large_pages_)
        return -EINVAL;

    auto rhs = std::make_unique<Area>();
    rhs->iova = {new_first, area.iova.last};
    rhs->pages = area.pages;
    rhs->start_byte = area.byte_at(new_first);
    rhs->readable = area.readable;
    rhs->writable = area.writable;
    rhs->pinned_for_domains = area.pinned_for_domains;
    // Each half unpins its own pages later. With domains the alignment is
    // at least a page (large pages are off), so no page is in both halves.
    assert(!area.pinned_for_domains || area.byte_at(iova) / kPageSize != rhs->first_index());
    // Shrinking the left half keeps its place in the set, ordered by first.
    area.iova.last = iova;
    areas_.insert(*rhs.release());
    return 0;
}

int IoPagetable::set_allowed(std::vector<IovaRange> allowed)
{
    std::sort(allowed.begin(), allowed.end(),
              [](const IovaRange& a, const IovaRange& b) { return a.first < b.first; });
    for (const IovaRange& r : allowed)
        if (reserved_intersects(r))
            return -EADDRINUSE;
    allowed_ = std::move(allowed);
    rebuild_windows_and_free_space();
    return 0;
}

int IoPagetable::reserve(IovaRange range, const void* owner)
{
    if (area_intersects(range) || allowed_intersects(range))
        return -EADDRINUSE;
    reserved_.emplace(range.first, Reserved{range, owner});
    free_.occupy(range);
    return 0;
}

void IoPagetable::remove_reserved(const void* owner)
{
    std::erase_if(reserved_, [owner](const auto& entry) { return entry.second.owner == owner; });
    rebuild_windows_and_free_space();
}

void IoPagetable::for_each_usable_range(const std::function<void(IovaRange)>& fn) const
{
    std::uint64_t next = 0; // first IOVA not yet known to be reserved
    bool done = false;
    for (const auto& [first, entry] : reserved_) {
        if (entry.range.last < next)
            continue;
        if (first > next)
            fn({next, first - 1});
        if (entry.range.last == kUlongMax) {
            done = true;
            break;
        }
        next = entry.range.last + 1;
    }
    if (!done)
        fn({next, kUlongMax});
}

int IoPagetable::check_alignment(std::uint64_t alignment) const
{
    const std::uint64_t mask = alignment - 1;
    for (const Area& area : areas_)
        if ((area.iova.first & mask) || (area.length() & mask) || (area.page_offset() & mask))
            return -EADDRINUSE;
    return 0;
}

int IoPagetable::calculate_iova_alignment()
{
    std::uint64_t alignment = disable_large_pages_ ? kPageSize : 1;
    for (const PinHolder* holder : holders_)
        alignment = std::max(alignment, holder->iova_alignment());
    for (const hw::Domain* domain : domains_)
        alignment = std::max(alignment, domain->geometry().min_page());
    if (alignment > iova_alignment_)
        if (int rc = check_alignment(alignment))
            return rc;
    iova_alignment_ = alignment;
    return 0;
}

// The pages behind an area go into a domain in runs that are contiguous in
// physical memory, so the domain can use large leaves where they fit.
int IoPagetable::map_area(const Area& area, hw::Domain& domain) const
{
    const hw::Prot prot{area.readable, area.writable};
    const std::uint64_t max_leaf = disable_large_pages_ ? kPageSize : UINT64_MAX;
    std::uint64_t iova = area.iova.first;
    std::uint64_t byte = area.start_byte;
    std::uint64_t left = area.length();
    while (left) {
        const std::uint64_t run_iova = iova;
        const std::uint64_t run_pa = *area.pages->phys_addr(byte / kPageSize) + byte % kPageSize;
        std::uint64_t run = 0;
        do {
            const std::uint64_t piece = std::min(left, kPageSize - byte % kPageSize);
            run += piece;
            iova += piece;
            byte += piece;
            left -= piece;
        } while (left && *area.pages->phys_addr(byte / kPageSize) == run_pa + run);
        if (int rc = domain.map(run_iova, run_pa, run, prot, max_leaf)) {
            if (run_iova != area.iova.first)
                domain.unmap(area.iova.first, run_iova - area.iova.first);
            return rc;
        }
    }
    return 0;
}

int IoPagetable::fill_area(Area& area)
{
    if (domains_.empty())
        return 0;
    if (!area.pinned_for_domains) {
        if (int rc = area.pages->pin(area.first_index(), area.last_index()))
            return rc;
        area.pinned_for_domains = true;
    }
    for (std::size_t i = 0; i < domains_.size(); ++i) {
        if (int rc = map_area(area, *domains_[i])) {
            for (std::size_t j = 0; j < i; ++j)
                domains_[j]->unmap(area.iova.first, area.length());
            area.pages->unpin(area.first_index(), area.last_index());
            area.pinned_for_domains = false;
            return rc;
        }
    }
    return 0;
}

void IoPagetable::unfill_area(Area& area)
{
    for (hw::Domain* domain : domains_)
        domain->unmap(area.iova.first, area.length());
    if (area.pinned_for_domains) {
        area.pages->unpin(area.first_index(), area.last_index());
        area.pinned_for_domains = false;
    }
}

int IoPagetable::add_domain(hw::Domain& domain)
{
    const hw::Geometry& geometry = domain.geometry();
    const std::uint64_t alignment = std::max(geometry.min_page(), iova_alignment_);
    // Pages are pinned in 4 KiB units; a domain must take them one by one.
    if (alignment > kPageSize)
        return -EINVAL;
    if (alignment != iova_alignment_)
        if (int rc = check_alignment(alignment))
            return rc;
    // Nothing may be mapped, or be mappable, outside the aperture.
    if (geometry.aperture.first != 0)
        if (int rc = reserve({0, geometry.aperture.first - 1}, &domain)) {
            remove_reserved(&domain);
            return rc;
        }
    if (geometry.aperture.last != kUlongMax)
        if (int rc = reserve({geometry.aperture.last + 1, kUlongMax}, &domain)) {
            remove_reserved(&domain);
            return rc;
        }

    const bool first = domains_.empty();
    std::vector<Area*> filled;
    auto undo = [&](int rc) {
        for (Area* area : filled) {
            domain.unmap(area->iova.first, area->length());
            if (first) {
                area->pages->unpin(area->first_index(), area->last_index());
                area->pinned_for_domains = false;
            }
        }
        remove_reserved(&domain);
        return rc;
    };
    for (Area& area : areas_) {
        if (first) {
            if (int rc = area.pages->pin(area.first_index(), area.last_index()))
                return undo(rc);
            area.pinned_for_domains = true;
        }
        if (int rc = map_area(area, domain)) {
            if (first) {
                area.pages->unpin(area.first_index(), area.last_index());
                area.pinned_for_domains = false;
            }
            return undo(rc);
        }
        filled.push_back(&area);
    }
    domains_.push_back(&domain);
    iova_alignment_ = alignment;
    return 0;
}

void IoPagetable::remove_domain(hw::Domain& domain)
{
    auto it = std::find(domains_.begin(), domains_.end(), &domain);
    assert(it != domains_.end());
    if (it == domains_.end())
        return;
    domains_.erase(it);
    for (Area& area : areas_) {
        domain.unmap(area.iova.first, area.length());
        if (domains_.empty() && area.pinned_for_domains) {
            area.pages->unpin(area.first_index(), area.last_index());
            area.pinned_for_domains = false;
        }
    }
    remove_reserved(&domain);
    int rc = calculate_iova_alignment();
    assert(rc == 0);
    (void)rc;
}

int IoPagetable::disable_large_pages()
{
    if (disable_large_pages_)
        return 0;
    // Areas already in a domain may sit in large leaves it cannot split.
    if (!domains_.empty() && !areas_.empty())
        return -EINVAL;
    disable_large_pages_ = true;
    if (int rc = calculate_iova_alignment()) {
        disable_large_pages_ = false;
        return rc;
    }
    return 0;
}

void IoPagetable::enable_large_pages()
{
    disable_large_pages_ = false;
    int rc = calculate_iova_alignment();
    assert(rc == 0);
    (void)rc;
}

int IoPagetable::add_holder(PinHolder& holder)
{
    holders_.push_back(&holder);
    if (int rc = calculate_iova_alignment()) {
        holders_.pop_back();
        return rc;
    }
    return 0;
}

void IoPagetable::remove_holder(PinHolder& holder)
{
    std::erase(holders_, &holder);
    int rc = calculate_iova_alignment();
    assert(rc == 0);
    (void)rc;
}

int IoPagetable::pin(IovaRange range, bool write, std::vector<std::uint64_t>* phys_pages)
{
    if (phys_pages)
        phys_pages->clear();
    // Area by area, in the kernel's order: alignment, permission, pinning;
    // a gap after the last area is found only at the end. Undo on failure.
    struct Pinned {
        Area* area;
        std::uint64_t first_index;
        std::uint64_t last_index;
    };
    std::vector<Pinned> done;
    auto fail = [&](int rc) {
        for (const Pinned& p : done) {
            p.area->pages->unpin(p.first_index, p.last_index);
            --p.area->num_accesses;
        }
        if (phys_pages)
            phys_pages->clear();
        return rc;
    };
    std::uint64_t cur = range.first;
    for (auto it = first_area_in({cur, cur}); it != areas_.end() && it->iova.first <= cur; ++it) {
        Area& area = *it;
        const bool more = area.iova.last < range.last;
        // Pages are pinned whole, so only the ends of the range may cut one.
        if (area.prevent_access || area.byte_at(cur) % kPageSize ||
            (more && area.byte_at(area.iova.last) % kPageSize != kPageSize - 1))
            return fail(-EINVAL);
        if (!(write ? area.writable : area.readable))
            return fail(-EPERM);
        const std::uint64_t hi = std::min(range.last, area.iova.last);
        const Pinned pinned{&area, area.byte_at(cur) / kPageSize, area.byte_at(hi) / kPageSize};
        if (int rc = area.pages->pin(pinned.first_index, pinned.last_index))
            return fail(rc);
        ++area.num_accesses;
        done.push_back(pinned);
        if (phys_pages)
            for (std::uint64_t index = pinned.first_index; index <= pinned.last_index; ++index)
                phys_pages->push_back(*area.pages->phys_addr(index));
        if (!more)
            return 0;
        cur = area.iova.last + 1;
    }
    return fail(-ENOENT);
}

void IoPagetable::unpin(IovaRange range)
{
    for (auto it = first_area_in(range); it != areas_.end() && it->iova.first <= range.last; ++it) {
        std::uint64_t lo = std::max(range.first, it->iova.first);
        std::uint64_t hi = std::min(range.last, it->iova.last);
        assert(it->num_accesses > 0);
        it->pages->unpin(it->byte_at(lo) / kPageSize, it->byte_at(hi) / kPageSize);
        --it->num_accesses;
    }
}

int IoPagetable::rw(std::uint64_t iova, std::span<std::byte> data, bool write) const
{
    if (data.empty())
        return -EINVAL;
    std::uint64_t last;
    if (!last_of(iova, data.size(), &last))
        return -EOVERFLOW;
    std::uint64_t cur = iova;
    for (auto it = first_area_in({cur, cur}); it != areas_.end() && it->iova.first <= cur; ++it) {
        if (it->prevent_access)
            return -EINVAL;
        if (!(write ? it->writable : it->readable))
            return -EPERM;
        std::uint64_t hi = std::min(last, it->iova.last);
        auto piece = data.subspan(cur - iova, hi - cur + 1);
        int rc = write ? it->pages->write(it->byte_at(cur), piece) : it->pages->read(it->byte_at(cur), piece);
        if (rc)
            return rc;
        if (hi == last)
            return 0;
        cur = hi + 1;
    }
    return -ENOENT;
}

void IoPagetable::for_each_area(const std::function<void(const Area&)>& fn) const
{
    for (const Area& area : areas_)
        fn(area);
}

const Area* IoPagetable::find_area(std::uint64_t iova) const
{
    auto it = first_area_in({iova, iova});
    return it == areas_.end() ? nullptr : &*it;
}

} // namespace ioasid::core
