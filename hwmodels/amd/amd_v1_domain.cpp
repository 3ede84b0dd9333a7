#include "amd_v1_domain.h"

#include <algorithm>
#include <bit>
#include <cerrno>

namespace ioasid::hw::amd {

using namespace v1;

V1Domain::V1Domain(Unit& unit, DomainRequest request, TableMemory& memory, unsigned hardware_levels)
    : Domain(unit, request, geometry()), memory_(memory), hardware_levels_(hardware_levels)
{
}

V1Domain::~V1Domain()
{
    if (root_)
        free_tables(root_, mode_);
}

int V1Domain::init()
{
    auto pa = memory_.alloc();
    if (!pa)
        return -ENOMEM;
    root_ = *pa;
    return 0;
}

Geometry V1Domain::geometry()
{
    return {{0, ~0ULL}, kPageSizes};
}

int V1Domain::map(std::uint64_t iova, std::uint64_t pa, std::uint64_t length, Prot prot, std::uint64_t max_leaf)
{
    if (!prot.read && !prot.write)
        return -EINVAL;
    while (length) {
        // iommu_pgsize(): the largest size no longer than what is left and
        // no more aligned than iova and pa together.
        const std::uint64_t limit = std::min(length, max_leaf);
        if (!limit)
            return -EINVAL;
        std::uint64_t sizes = kPageSizes & (~0ULL >> std::countl_zero(limit));
        if (const std::uint64_t align = iova | pa)
            sizes &= (align & (~align + 1)) * 2 - 1;
        if (!sizes)
            return -EINVAL;
        const std::uint64_t size = std::uint64_t{1} << (63 - std::countl_zero(sizes));
        if (int rc = map_page(iova, pa, size, prot))
            return rc;
        iova += size;
        pa += size;
        length -= size;
    }
    return 0;
}

int V1Domain::map_page(std::uint64_t iova, std::uint64_t pa, std::uint64_t size, Prot prot)
{
    if (!prot.read && !prot.write)
        return -EINVAL;
    const unsigned target = page_level(size);
    const unsigned count = replicas(size);
    const std::uint64_t last = iova + (size - 1);
    bool replaced = false;

    // alloc_pte() via increase_address_space(): a new root on top, its
    // first entry pointing at the old one, until the range and the page's
    // level fit. Six levels cover everything; a seventh is refused.
    while (last > mode_last(mode_) || mode_ - 1 < target) {
        if (mode_ == kMaxMode)
            return -ENOMEM;
        auto top = memory_.alloc();
        if (!top)
            return -ENOMEM;
        memory_.entries(*top)[0] = make_table(mode_, root_);
        root_ = *top;
        ++mode_;
    }

    unsigned level = mode_ - 1;
    std::uint64_t table = root_;
    while (level > target) {
        std::uint64_t* slots = memory_.entries(table);
        const unsigned index = index_of(iova, level);
        const std::uint64_t e = slots[index];
        const unsigned nl = next_level(e);
        if ((e & kPresent) && nl == kSizedPage) {
            // A page sized across several slots of this level is torn down
            // whole, every replica that still holds it.
            const unsigned n = replicas(sized_page_size(e));
            std::uint64_t* first = slots + (index & ~(n - 1));
            for (unsigned i = 0; i < n; ++i)
                if (first[i] == e)
                    first[i] = 0;
            replaced = true;
            continue;
        }
        if (!(e & kPresent) || nl == kNaturalPage) {
            auto sub = memory_.alloc();
            if (!sub)
                return -ENOMEM;
            replaced |= (e & kPresent) != 0;
            slots[index] = make_table(level, *sub);
            continue;
        }
        // The driver writes no level skips and follows none.
        if (nl != level)
            return -ENOMEM;
        table = e & kAddrMask;
        --level;
    }

    // iommu_v1_map_pages(): whatever the slots held goes, tables below
    // them too, then every slot the page covers gets the same entry.
    std::uint64_t* slots = memory_.entries(table) + index_of(iova, target);
    for (unsigned i = 0; i < count; ++i) {
        const std::uint64_t old = slots[i];
        slots[i] = 0;
        if (!(old & kPresent))
            continue;
        replaced = true;
        const unsigned nl = next_level(old);
        if (nl != kNaturalPage && nl != kSizedPage)
            free_tables(old & kAddrMask, nl);
    }
    const std::uint64_t leaf = make_leaf(pa, size, prot);
    for (unsigned i = 0; i < count; ++i)
        slots[i] = leaf;
    if (replaced)
        invalidate({iova, last});
    return 0;
}

std::uint64_t* V1Domain::fetch(std::uint64_t iova, std::uint64_t* size) const
{
    *size = 0;
    if (iova > mode_last(mode_))
        return nullptr;
    unsigned level = mode_ - 1;
    std::uint64_t* e = memory_.entries(root_) + index_of(iova, level);
    *size = level_size(level);
    for (; level > 0; --level) {
        if (!(*e & kPresent))
            return nullptr;
        const unsigned nl = next_level(*e);
        if (nl == kNaturalPage || nl == kSizedPage)
            break;
        if (nl != level)
            return nullptr;
        e = memory_.entries(*e & kAddrMask) + index_of(iova, level - 1);
        *size = level_size(level - 1);
    }
    if (!(*e & kPresent))
        return nullptr;
    if (next_level(*e) == kSizedPage) {
        const std::uint64_t sized = sized_page_size(*e);
        if (sized <= *size)
            return nullptr;
        *size = sized;
        e -= index_of(iova, level) & (replicas(sized) - 1);
    }
    return e;
}

template <typename Fn>
void V1Domain::for_each_page(std::uint64_t first, std::uint64_t last, Fn&& fn)
{
    for (std::uint64_t at = first;;) {
        std::uint64_t size = 0;
        std::uint64_t* e = fetch(at, &size);
        if (!size)
            return; // beyond the table: nothing further is mapped
        const std::uint64_t page_iova = at & ~(size - 1);
        if (e)
            fn(e, page_iova, size);
        // A hole is skipped whole, from its aligned start, so that an
        // unaligned `first` never steps over the start of the next page.
        const std::uint64_t next = page_iova + size;
        if (next == 0 || next > last)
            return;
        at = next;
    }
}

void V1Domain::unmap(std::uint64_t iova, std::uint64_t length)
{
    // iommu_v1_unmap_pages(): a page goes with all its replicas; the
    // tables stay until the domain is freed.
    const std::uint64_t last = iova + (length - 1);
    for_each_page(iova, last, [](std::uint64_t* e, std::uint64_t, std::uint64_t size) {
        std::fill_n(e, replicas(size), std::uint64_t{0});
    });
    invalidate({iova, last});
}

V1Domain::Walk V1Domain::walk(std::uint64_t iova) const
{
    Walk w;
    if (!walkable() || iova > mode_last(mode_))
        return w;
    Prot prot{true, true};
    std::uint64_t table = root_;
    unsigned level = mode_ - 1;
    for (;;) {
        std::uint64_t* e = memory_.entries(table) + index_of(iova, level);
        const std::uint64_t v = *e;
        if (!(v & kPresent))
            return w;
        prot = {prot.read && (v & kReadable), prot.write && (v & kWritable)};
        const unsigned nl = next_level(v);
        if (nl == kNaturalPage || nl == kSizedPage) {
            std::uint64_t size = level_size(level);
            if (nl == kSizedPage) {
                // A sized page lies between this level's natural size and
                // the next one's; any other size is a malformed entry.
                size = sized_page_size(v);
                if (size <= level_size(level) || (level < kMaxMode - 1 && size >= level_size(level + 1)))
                    return w;
            }
            return {e, size, prot};
        }
        // A table is below this level; the levels it skips take no index
        // bits, which must be zero.
        if (nl > level)
            return w;
        for (unsigned skipped = nl; skipped < level; ++skipped)
            if (index_of(iova, skipped))
                return w;
        table = v & kAddrMask;
        level = nl - 1;
    }
}

Translation V1Domain::lookup(std::uint64_t iova) const
{
    const Walk w = walk(iova);
    if (!w.leaf)
        return {};
    return {true, iova & ~(w.page_size - 1), w.page_size, leaf_address(*w.leaf, w.page_size), w.prot,
            (*w.leaf & kDirty) != 0};
}

void V1Domain::note_use(std::uint64_t iova, Access access)
{
    // With the DTE's HA and HD the hardware marks the slot it used; the
    // other replicas of a sized page keep their bits.
    const Walk w = walk(iova);
    if (!w.leaf || !dirty_tracking())
        return;
    *w.leaf |= kAccessed;
    if (access == Access::write && (*w.leaf & kWritable))
        *w.leaf |= kDirty;
}

void V1Domain::read_and_clear_dirty(std::uint64_t iova, std::uint64_t length, bool clear,
                                    const std::function<void(std::uint64_t, std::uint64_t)>& record)
{
    // iommu_v1_read_and_clear_dirty(): the hardware may set D in any one
    // replica of a sized page (48882, 2.2.3.2), so the page is dirty if
    // any is, and clearing clears them all.
    const std::uint64_t last = iova + (length - 1);
    bool cleared = false;
    for_each_page(iova, last, [&](std::uint64_t* e, std::uint64_t page_iova, std::uint64_t size) {
        bool dirty = false;
        for (unsigned i = 0, n = replicas(size); i < n; ++i) {
            if (!(e[i] & kDirty))
                continue;
            dirty = true;
            if (!clear)
                break;
            e[i] &= ~kDirty;
        }
        if (dirty) {
            record(page_iova, size);
            cleared |= clear;
        }
    });
    if (cleared)
        invalidate({iova, last});
}

void V1Domain::free_tables(std::uint64_t table_pa, unsigned next_level_of_table)
{
    if (next_level_of_table > 1) {
        const std::uint64_t* slots = memory_.entries(table_pa);
        for (unsigned i = 0; i < kEntries; ++i) {
            const std::uint64_t e = slots[i];
            const unsigned nl = next_level(e);
            if ((e & kPresent) && nl != kNaturalPage && nl < next_level_of_table)
                free_tables(e & kAddrMask, nl);
        }
    }
    memory_.free(table_pa);
}

void V1Domain::dump(const std::function<void(const DumpEntry&)>& fn) const
{
    dump_table(root_, mode_ - 1, 0, fn);
}

void V1Domain::dump_table(std::uint64_t table_pa, unsigned level, std::uint64_t base,
                          const std::function<void(const DumpEntry&)>& fn) const
{
    const std::uint64_t* slots = memory_.entries(table_pa);
    for (unsigned i = 0; i < kEntries; ++i) {
        const std::uint64_t e = slots[i];
        if (!(e & kPresent))
            continue;
        const std::uint64_t iova = base + i * level_size(level);
        const unsigned nl = next_level(e);
        if (nl == kNaturalPage || nl == kSizedPage) {
            const std::uint64_t size = nl == kNaturalPage ? level_size(level) : sized_page_size(e);
            fn(DumpEntry{level, i, table_pa, size ? iova & ~(size - 1) : iova, size, e, true, describe(e)});
            continue;
        }
        fn(DumpEntry{level, i, table_pa, iova, level_size(level), e, false, describe(e)});
        if (nl <= level)
            dump_table(e & kAddrMask, nl - 1, iova, fn);
    }
}

} // namespace ioasid::hw::amd
