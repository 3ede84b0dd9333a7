#include "virtio_domain.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <fmt/format.h>

#include "virtio_unit.h"

namespace ioasid::hw::virtio {
namespace {

// viommu_get_req_errno().
int errno_of(Status status)
{
    switch (status) {
    case Status::ok:
        return 0;
    case Status::unsupp:
        return -ENOSYS;
    case Status::inval:
        return -EINVAL;
    case Status::range:
        return -ERANGE;
    case Status::noent:
        return -ENOENT;
    case Status::fault:
        return -EFAULT;
    case Status::nomem:
        return -ENOMEM;
    case Status::ioerr:
    case Status::deverr:
        break;
    }
    return -EIO;
}

std::uint64_t low_bits_through(unsigned bit)
{
    return bit >= 63 ? ~std::uint64_t{0} : (std::uint64_t{2} << bit) - 1;
}

// The iommu core's iommu_pgsize(): the largest page `bitmap` allows at
// this alignment and size, and how many of them to map before a larger
// page could start.
std::uint64_t page_run(std::uint64_t bitmap, std::uint64_t iova, std::uint64_t pa, std::uint64_t size,
                       std::uint64_t* count)
{
    const std::uint64_t merged = iova | pa;
    std::uint64_t sizes = bitmap & low_bits_through(static_cast<unsigned>(std::bit_width(size) - 1));
    if (merged)
        sizes &= low_bits_through(static_cast<unsigned>(std::countr_zero(merged)));
    const unsigned shift = static_cast<unsigned>(std::bit_width(sizes) - 1);
    const std::uint64_t page = std::uint64_t{1} << shift;
    const std::uint64_t larger = bitmap & ~low_bits_through(shift);
    if (larger) {
        const std::uint64_t next = larger & (~larger + 1);
        if (!((iova ^ pa) & (next - 1))) {
            const std::uint64_t offset = next - (merged & (next - 1));
            std::uint64_t end;
            if (!__builtin_add_overflow(offset, next, &end) && end <= size)
                size = offset;
        }
    }
    *count = size >> shift;
    return page;
}

std::string describe(std::uint64_t first, std::uint64_t last, std::uint64_t phys, std::uint32_t flags)
{
    std::string s = fmt::format("virt_start={:#x} virt_end={:#x} phys_start={:#x}", first, last, phys);
    if (flags & kMapRead)
        s += " READ";
    if (flags & kMapWrite)
        s += " WRITE";
    if (flags & kMapMmio)
        s += " MMIO";
    return s;
}

} // namespace

VirtioDomain::VirtioDomain(VirtioUnit& unit, DomainRequest request, Geometry geometry, std::uint32_t id,
                           std::uint32_t map_flags)
    : Domain(unit, request, geometry), unit_(unit), id_(id), map_flags_(map_flags)
{
    // The sizes the DMA path caches translations in: the granule, and the
    // 2 MiB and 1 GiB hints when the device gives them.
    const std::uint64_t mask = geometry.pgsize_bitmap;
    iotlb_sizes_ = (mask & (~mask + 1)) | (mask & ((1ULL << 21) | (1ULL << 30)));
}

VirtioDomain::~VirtioDomain()
{
    unit_.release_domain_id(id_);
}

int VirtioDomain::send_map(std::uint64_t first, std::uint64_t last, std::uint64_t phys, std::uint32_t flags)
{
    ReqMap req{};
    req.head.type = static_cast<std::uint8_t>(ReqType::map);
    req.domain = id_;
    req.virt_start = first;
    req.virt_end = last;
    req.phys_start = phys;
    req.flags = flags;
    return errno_of(unit_.device().submit(req));
}

int VirtioDomain::map(std::uint64_t iova, std::uint64_t pa, std::uint64_t length, Prot prot,
                      std::uint64_t max_leaf)
{
    const std::uint32_t flags = (prot.read ? kMapRead : 0) | (prot.write ? kMapWrite : 0);
    if (flags & ~map_flags_)
        return -EINVAL;
    std::uint64_t bitmap = geometry().pgsize_bitmap;
    if (max_leaf < (std::uint64_t{1} << 63))
        bitmap &= (std::bit_floor(max_leaf) << 1) - 1;
    // __iommu_map(): everything on the smallest page.
    const std::uint64_t granule = bitmap & (~bitmap + 1);
    if (!granule || ((iova | pa | length) & (granule - 1)) || length == 0)
        return -EINVAL;

    const std::uint64_t start = iova;
    while (length) {
        std::uint64_t count = 0;
        const std::uint64_t page = page_run(bitmap, iova, pa, length, &count);
        // A core that keeps large pages off maps a page per iommu_map()
        // call (batch_iommu_map_small()): one MAP request each.
        count = std::min(count, std::max<std::uint64_t>(max_leaf / page, 1));
        const std::uint64_t size = page * count;
        const std::uint64_t last = iova + (size - 1);
        // The core never maps twice at one address; if it did, the device
        // would refuse the overlap (S_INVAL), and the error path below must
        // not erase the mapping that was there first.
        if (!mappings_.try_emplace(iova, Mapping{last, pa, flags}).second) {
            if (iova != start)
                unmap(start, iova - start);
            return -EINVAL;
        }
        if (endpoints_) {
            if (int rc = send_map(iova, last, pa, flags)) {
                mappings_.erase(iova);
                if (iova != start)
                    unmap(start, iova - start);
                return rc;
            }
        }
        iova += size;
        pa += size;
        length -= size;
    }
    return 0;
}

void VirtioDomain::unmap(std::uint64_t iova, std::uint64_t length)
{
    const std::uint64_t last = iova + (length - 1);
    // viommu_del_mappings(): a mapping reaching in from below would be
    // split, and stops the removal before anything goes.
    auto first = mappings_.lower_bound(iova);
    if (first != mappings_.begin() && std::prev(first)->second.last >= iova)
        return;
    auto end = mappings_.upper_bound(last);
    if (first == end)
        return;
    // Whole mappings go, even one sticking out at the end.
    const std::uint64_t removed_last = std::max(last, std::prev(end)->second.last);
    mappings_.erase(first, end);
    if (endpoints_) {
        ReqUnmap req{};
        req.head.type = static_cast<std::uint8_t>(ReqType::unmap);
        req.domain = id_;
        req.virt_start = iova;
        req.virt_end = removed_last;
        (void)unit_.device().submit(req);
    }
    invalidate({iova, removed_last});
}

int VirtioDomain::replay()
{
    for (const auto& [first, m] : mappings_)
        if (int rc = send_map(first, m.last, m.phys, m.flags))
            return rc;
    return 0;
}

Translation VirtioDomain::lookup(std::uint64_t iova) const
{
    const auto hit = unit_.device().lookup_domain(id_, iova);
    if (hit.kind != VirtioIommuDevice::Lookup::Kind::mapped)
        return {};
    const Prot prot{(hit.flags & kMapRead) != 0, (hit.flags & kMapWrite) != 0};
    // The largest cached size whose aligned block lies inside the mapping
    // and keeps the mapping's offset; the granule always does.
    for (std::uint64_t sizes = iotlb_sizes_; sizes;) {
        const std::uint64_t size = std::bit_floor(sizes);
        sizes &= ~size;
        const std::uint64_t block = iova & ~(size - 1);
        if (block < hit.first || block + (size - 1) > hit.last)
            continue;
        const std::uint64_t block_pa = hit.phys + (block - hit.first);
        if ((block_pa & (size - 1)) && sizes)
            continue;
        return {true, block, size, block_pa, prot, false};
    }
    return {};
}

void VirtioDomain::dump(const std::function<void(const DumpEntry&)>& fn) const
{
    unsigned index = 0;
    unit_.device().for_each_mapping(id_, [&](std::uint64_t first, std::uint64_t last, std::uint64_t phys,
                                             std::uint32_t flags) {
        fn(DumpEntry{0, index++, 0, first, last - first + 1, phys, true, describe(first, last, phys, flags)});
    });
}

} // namespace ioasid::hw::virtio
