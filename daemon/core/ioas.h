// IOAS objects and the IOAS ioctls, as typed operations on a context.
// Byte layouts and flag words stay in dispatch; from here on every value
// has been decoded, but none has been trusted.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "context.h"
#include "io_pagetable.h"
#include "object.h"

namespace ioasid::core {

class HwptPaging;

class Ioas final : public Object {
public:
    static constexpr ObjectType kType = ObjectType::ioas;
    Ioas() : Object(kType) {}

    [[nodiscard]] IoPagetable& iopt() { return iopt_; }
    [[nodiscard]] const IoPagetable& iopt() const { return iopt_; }
    // Every paging HWPT on this IOAS, oldest first: automatic domains are
    // tried in this order when a device attaches to the IOAS.
    [[nodiscard]] std::vector<HwptPaging*>& hwpts() { return hwpts_; }
    [[nodiscard]] const std::vector<HwptPaging*>& hwpts() const { return hwpts_; }

private:
    IoPagetable iopt_;
    std::vector<HwptPaging*> hwpts_;
};

struct MapRequest {
    std::uint32_t ioas_id;
    std::uint64_t user_va;
    std::uint64_t length;
    std::uint64_t iova; // used when fixed_iova
    bool fixed_iova;
    bool readable;
    bool writable;
};

struct MapFileRequest {
    std::uint32_t ioas_id;
    std::int32_t fd; // in the caller's descriptor table
    std::uint64_t start;
    std::uint64_t length;
    std::uint64_t iova; // used when fixed_iova
    bool fixed_iova;
    bool readable;
    bool writable;
};

struct CopyRequest {
    std::uint32_t dst_ioas_id;
    std::uint32_t src_ioas_id;
    std::uint64_t length;
    std::uint64_t dst_iova; // used when fixed_iova
    std::uint64_t src_iova;
    bool fixed_iova;
    bool readable;
    bool writable;
};

// IOMMU_IOAS_ALLOC: the object is published by the caller once its id has
// reached the client.
[[nodiscard]] PendingObject<Ioas> ioas_alloc(Context& ctx);

// IOMMU_IOAS_MAP of `caller`'s memory; *iova gets the IOVA used.
[[nodiscard]] int ioas_map(Context& ctx, const std::shared_ptr<memory::Caller>& caller,
                           const MapRequest& request, std::uint64_t* iova);

// What IOMMU_IOAS_MAP and VFIO_IOMMU_MAP_DMA share, the kernel's
// iopt_map_user_pages(): [user_va, user_va + length) of `caller`'s memory
// at *iova, or at an IOVA chosen and written there when `alloc_iova`.
[[nodiscard]] int ioas_map_user_pages(Context& ctx, Ioas& ioas,
                                      const std::shared_ptr<memory::Caller>& caller,
                                      std::uint64_t user_va, std::uint64_t length,
                                      std::uint64_t* iova, bool readable, bool writable,
                                      bool alloc_iova);

// IOMMU_IOAS_MAP_FILE (Linux 6.13) of a file the caller holds open; *iova
// gets the IOVA used. The mapping keeps the daemon's own reference to the
// file.
[[nodiscard]] int ioas_map_file(Context& ctx, const std::shared_ptr<memory::Caller>& caller,
                                const MapFileRequest& request, std::uint64_t* iova);

// IOMMU_IOAS_COPY; *dst_iova gets the IOVA used.
[[nodiscard]] int ioas_copy(Context& ctx, const CopyRequest& request, std::uint64_t* dst_iova);

// IOMMU_IOAS_UNMAP; iova 0 with length UINT64_MAX means everything.
[[nodiscard]] int ioas_unmap(Context& ctx, std::uint32_t ioas_id, std::uint64_t iova,
                             std::uint64_t length, std::uint64_t* unmapped);

// IOMMU_IOAS_IOVA_RANGES: every usable range, and the IOVA alignment.
[[nodiscard]] int ioas_iova_ranges(Context& ctx, std::uint32_t ioas_id,
                                   std::vector<IovaRange>* ranges, std::uint64_t* alignment);

// IOMMU_IOAS_ALLOW_IOVAS: `read_range(i, &range)` fetches element i from the
// client, in order, so that a fault and a bad range are found in the order
// the kernel finds them.
[[nodiscard]] int ioas_allow_iovas(Context& ctx, std::uint32_t ioas_id, std::uint32_t count,
                                   const std::function<int(std::uint32_t, IovaRange*)>& read_range);

enum class OptionOp { set, get, unknown };

// IOMMU_OPTION_HUGE_PAGES: get reads into *value, set takes it from there.
[[nodiscard]] int ioas_option_huge_pages(Context& ctx, std::uint32_t ioas_id, OptionOp op,
                                         std::uint64_t* value);

} // namespace ioasid::core
