#include "vfio_compat.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <span>

#include "ioas.h"

namespace ioasid::core {

int vfio_compat_set_iommu(Context& ctx, VfioIommuType type)
{
    // The type is checked before the IOAS, as iommufd_vfio_set_iommu()
    // does: a bad type is -EINVAL even without one.
    if (type == VfioIommuType::other)
        return -EINVAL;
    Ioas* ioas = ctx.vfio_ioas();
    if (!ioas)
        return -ENODEV;
    // Type1 may unmap inside a mapping; with 4 KiB leaves only, any page
    // boundary can be cut. Type1v2 leaves the IOAS as it is: choosing it
    // after type1 does not turn large pages back on.
    if (type == VfioIommuType::type1)
        return ioas->iopt().disable_large_pages();
    return 0;
}

int vfio_compat_dma_cc(Context& ctx)
{
    Ioas* ioas = ctx.vfio_ioas();
    if (!ioas)
        return -ENODEV;
    // No emulated unit offers enforced cache coherency (the kernel's
    // IOMMU_CAP_ENFORCE_CACHE_COHERENCY; the selftest's mock has none
    // either), so every paging domain counts as not enforcing it.
    return ioas->hwpts().empty() ? 1 : 0;
}

// iommufd_get_pagesizes(): what every domain can map, never below a page
// or the IOAS's alignment.
static std::uint64_t page_sizes(const IoPagetable& iopt)
{
    std::uint64_t bitmap = kUlongMax;
    for (const hw::Domain* domain : iopt.domains())
        bitmap &= domain->geometry().pgsize_bitmap;
    constexpr std::uint64_t kSubPage = kPageSize - 1;
    if (bitmap & kSubPage) {
        bitmap &= ~kSubPage;
        bitmap |= kPageSize;
    }
    return std::max(bitmap, iopt.iova_alignment());
}

int vfio_compat_info(Context& ctx, VfioCompatInfo* info)
{
    Ioas* ioas = ctx.vfio_ioas();
    if (!ioas)
        return -ENODEV;
    info->iova_pgsizes = page_sizes(ioas->iopt());
    info->usable.clear();
    ioas->iopt().for_each_usable_range([&](IovaRange range) { info->usable.push_back(range); });
    return 0;
}

// iopt_map_user_pages() as iommufd_vfio_map_dma() calls it: none of the
// checks IOMMU_IOAS_MAP adds before it (IOVA and length below ULONG_MAX,
// READ or WRITE asked for).
int vfio_compat_map_dma(Context& ctx, const std::shared_ptr<memory::Caller>& caller,
                        std::uint64_t user_va, std::uint64_t iova, std::uint64_t length,
                        bool readable, bool writable)
{
    Ioas* ioas = ctx.vfio_ioas();
    if (!ioas)
        return -ENODEV;
    return ioas_map_user_pages(ctx, *ioas, caller, user_va, length, &iova, readable, writable,
                               /*alloc_iova=*/false);
}

int vfio_compat_cut_for_unmap(Context& ctx, std::uint64_t iova, std::uint64_t length)
{
    Ioas* ioas = ctx.vfio_ioas();
    if (!ioas)
        return -ENODEV;
    IoPagetable& iopt = ioas->iopt();
    if (iopt.large_pages())
        return 0;
    // The points are computed as iommufd_vfio_unmap_dma() does, wrapping,
    // and cut before the range is checked; IOVA 0 has nothing below it.
    const std::array<std::uint64_t, 2> points{iova + length - 1, iova - 1};
    return iopt.cut(std::span(points).first(iova ? 2 : 1));
}

int vfio_compat_unmap_dma(Context& ctx, std::uint64_t iova, std::uint64_t length,
                          std::uint64_t* unmapped)
{
    *unmapped = 0;
    Ioas* ioas = ctx.vfio_ioas();
    if (!ioas)
        return -ENODEV;
    // iopt_unmap_iova(): unlike IOMMU_IOAS_UNMAP, nothing there is no error.
    if (length == 0)
        return -EINVAL;
    std::uint64_t last;
    if (!last_of(iova, length, &last))
        return -EOVERFLOW;
    return ioas->iopt().unmap_range({iova, last}, unmapped);
}

int vfio_compat_unmap_all(Context& ctx, std::uint64_t* unmapped)
{
    *unmapped = 0;
    Ioas* ioas = ctx.vfio_ioas();
    if (!ioas)
        return -ENODEV;
    return ioas->iopt().unmap_range({0, kUlongMax}, unmapped);
}

} // namespace ioasid::core
