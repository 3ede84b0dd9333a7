// The VFIO type1 container that an iommufd emulates on its compat IOAS
// (IOMMU_VFIO_IOAS), as typed operations: the kernel's vfio_compat.c.
// Type1 and type1v2 differ only in that type1 may unmap part of a
// mapping, which the IOAS allows once its large pages are off; no other
// state is kept. Without a compat IOAS every operation fails with -ENODEV.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "context.h"
#include "iova.h"

namespace ioasid::core {

enum class VfioIommuType { type1, type1v2, other };

// VFIO_SET_IOMMU: -EINVAL for any type but the two type1 ones (there are
// no no-IOMMU devices here); type1 turns the IOAS's large pages off, which
// fails with -EINVAL once its domains hold mappings.
[[nodiscard]] int vfio_compat_set_iommu(Context& ctx, VfioIommuType type);

// VFIO_CHECK_EXTENSION(VFIO_DMA_CC_IOMMU): 1 when every paging domain of
// the compat IOAS enforces cache coherency, else 0.
[[nodiscard]] int vfio_compat_dma_cc(Context& ctx);

struct VfioCompatInfo {
    std::uint64_t iova_pgsizes = 0;
    std::vector<IovaRange> usable; // the holes between reserved ranges
};

// VFIO_IOMMU_GET_INFO.
[[nodiscard]] int vfio_compat_info(Context& ctx, VfioCompatInfo* info);

// VFIO_IOMMU_MAP_DMA: `caller`'s memory at user_va, at a fixed IOVA.
[[nodiscard]] int vfio_compat_map_dma(Context& ctx, const std::shared_ptr<memory::Caller>& caller,
                                      std::uint64_t user_va, std::uint64_t iova,
                                      std::uint64_t length, bool readable, bool writable);

// VFIO_IOMMU_UNMAP_DMA's first step: under type1, cuts the areas at both
// ends of [iova, iova + length) so that the range can be taken out of the
// middle of a mapping. Under type1v2 nothing is done.
[[nodiscard]] int vfio_compat_cut_for_unmap(Context& ctx, std::uint64_t iova,
                                            std::uint64_t length);

// VFIO_IOMMU_UNMAP_DMA of [iova, iova + length), after the cut: nothing
// mapped there is a success; *unmapped gets the bytes removed, also on
// failure.
[[nodiscard]] int vfio_compat_unmap_dma(Context& ctx, std::uint64_t iova, std::uint64_t length,
                                        std::uint64_t* unmapped);

// VFIO_IOMMU_UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_ALL.
[[nodiscard]] int vfio_compat_unmap_all(Context& ctx, std::uint64_t* unmapped);

} // namespace ioasid::core
