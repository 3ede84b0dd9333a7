// HWPT_PAGING objects: a hardware page table (a unit's domain) that mirrors
// one IOAS, and the HWPT ioctls, as typed operations on a context.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "context.h"
#include "hwmodels/common/domain.h"
#include "ioas.h"
#include "object.h"

namespace ioasid::core {

class HwptPaging final : public Object {
public:
    static constexpr ObjectType kType = ObjectType::hwpt_paging;
    // An automatic domain is made by attaching a device to an IOAS and
    // disappears with its last device; a manual one by IOMMU_HWPT_ALLOC.
    HwptPaging(Ioas& ioas, std::unique_ptr<hw::Domain> domain, bool auto_domain, bool nest_parent);
    ~HwptPaging() override;

    // Puts the domain in the IOAS, which fills it; errors as
    // IoPagetable::add_domain().
    [[nodiscard]] int add_to_ioas();

    [[nodiscard]] Ioas& ioas() const { return *ioas_; }
    [[nodiscard]] hw::Domain& domain() const { return *domain_; }
    [[nodiscard]] bool auto_domain() const { return auto_domain_; }
    [[nodiscard]] bool nest_parent() const { return nest_parent_; }
    [[nodiscard]] bool pasid_capable() const { return domain_->request().pasid; }

private:
    ObjectRef<Ioas> ioas_;
    std::unique_ptr<hw::Domain> domain_;
    bool auto_domain_;
    bool nest_parent_;
    bool in_ioas_ = false;
};

struct HwptAllocRequest {
    std::uint32_t dev_id;
    std::uint32_t pt_id;
    std::uint32_t flags;     // enum iommufd_hwpt_alloc_flags, unchecked
    std::uint32_t data_type; // enum iommu_hwpt_data_type
    std::uint32_t data_len;
};

// IOMMU_HWPT_ALLOC after the struct's own checks. On success *out holds the
// object, published by the caller once its id reached the client.
[[nodiscard]] int hwpt_alloc(Context& ctx, const HwptAllocRequest& request,
                             std::unique_ptr<PendingObject<HwptPaging>>* out);

// IOMMU_HWPT_SET_DIRTY_TRACKING.
[[nodiscard]] int hwpt_set_dirty_tracking(Context& ctx, std::uint32_t hwpt_id, bool enable);

struct DirtyBitmapRequest {
    std::uint32_t hwpt_id;
    std::uint64_t iova;
    std::uint64_t length;
    std::uint64_t page_size;
    bool clear;
};

// IOMMU_HWPT_GET_DIRTY_BITMAP: calls set_bits(first, bits) to OR bits[i]
// into word first + i of the client's bitmap, once per run of consecutive
// words that gain bits. A non-zero return from it stops there (the bits of
// later runs are dropped), and, as in the kernel, the ioctl still succeeds.
using SetDirtyBits = std::function<int(std::uint64_t first_word, std::span<const std::uint64_t> bits)>;
[[nodiscard]] int hwpt_get_dirty_bitmap(Context& ctx, const DirtyBitmapRequest& request,
                                        const SetDirtyBits& set_bits);

} // namespace ioasid::core
