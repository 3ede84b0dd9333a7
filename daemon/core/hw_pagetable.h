// HWPT objects, the kernel's iommufd_hw_pagetable: a paging HWPT (a unit's
// domain mirroring one IOAS) or a nested one (a first stage owned by the
// client over a paging parent), and the HWPT ioctls, as typed operations on
// a context.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "context.h"
#include "fault.h"
#include "hwmodels/common/domain.h"
#include "hwmodels/common/nested_domain.h"
#include "hwmodels/common/user_data.h"
#include "ioas.h"
#include "object.h"

namespace ioasid::core {

class HwptPaging;

// What devices attach to, of either kind.
class Hwpt : public Object {
public:
    [[nodiscard]] virtual hw::Domain& domain() const = 0;
    // The paging HWPT itself, or nullptr for a nested one (find_hwpt_paging()
    // in the kernel keeps the nested's parent apart: IOVA reservations and
    // auto-domain rules follow paging HWPTs only).
    [[nodiscard]] virtual HwptPaging* paging() = 0;
    [[nodiscard]] virtual bool pasid_capable() const = 0;

    // The fault queue page requests of attached devices go to, if any
    // (IOMMU_HWPT_FAULT_ID_VALID).
    [[nodiscard]] Fault* fault() const { return fault_.get(); }
    void set_fault(Fault& fault) { fault_ = ObjectRef<Fault>(fault); }

protected:
    using Object::Object;

private:
    ObjectRef<Fault> fault_;
};

class HwptPaging final : public Hwpt {
public:
    static constexpr ObjectType kType = ObjectType::hwpt_paging;
    // An automatic domain is made by attaching a device to an IOAS and
    // disappears with its last device; a manual one by IOMMU_HWPT_ALLOC.
    HwptPaging(Ioas& ioas, std::unique_ptr<hw::Domain> domain, bool auto_domain, bool nest_parent);
    ~HwptPaging() override;

    [[nodiscard]] hw::Domain& domain() const override { return *domain_; }
    [[nodiscard]] HwptPaging* paging() override { return this; }
    [[nodiscard]] bool pasid_capable() const override { return domain_->request().pasid; }

    // Puts the domain in the IOAS, which fills it; errors as
    // IoPagetable::add_domain().
    [[nodiscard]] int add_to_ioas();

    [[nodiscard]] Ioas& ioas() const { return *ioas_; }
    [[nodiscard]] bool auto_domain() const { return auto_domain_; }
    [[nodiscard]] bool nest_parent() const { return nest_parent_; }

private:
    ObjectRef<Ioas> ioas_;
    std::unique_ptr<hw::Domain> domain_;
    bool auto_domain_;
    bool nest_parent_;
    bool in_ioas_ = false;
};

// A nested HWPT: the unit's nested domain, which keeps its parent busy.
class HwptNested final : public Hwpt {
public:
    static constexpr ObjectType kType = ObjectType::hwpt_nested;
    // `pasid_capable`: allocated with IOMMU_HWPT_ALLOC_PASID.
    HwptNested(HwptPaging& parent, std::unique_ptr<hw::NestedDomain> domain, bool pasid_capable);
    ~HwptNested() override;

    [[nodiscard]] hw::NestedDomain& domain() const override { return *domain_; }
    [[nodiscard]] HwptPaging* paging() override { return nullptr; }
    [[nodiscard]] bool pasid_capable() const override { return pasid_capable_; }
    [[nodiscard]] HwptPaging& parent() const { return *parent_; }

private:
    ObjectRef<HwptPaging> parent_;
    std::unique_ptr<hw::NestedDomain> domain_;
    bool pasid_capable_;
};

struct HwptAllocRequest {
    std::uint32_t dev_id;
    std::uint32_t pt_id;
    std::uint32_t flags;    // enum iommufd_hwpt_alloc_flags, unchecked
    hw::UserData data;      // data_type, data_len and the client's bytes
    std::uint32_t fault_id; // with IOMMU_HWPT_FAULT_ID_VALID
};

// IOMMU_HWPT_ALLOC after the struct's own checks. On success *out holds the
// object, published by the caller once its id reached the client.
[[nodiscard]] int hwpt_alloc(Context& ctx, const HwptAllocRequest& request,
                             std::unique_ptr<PendingObject<Hwpt>>* out);

// IOMMU_HWPT_INVALIDATE after the struct's own checks: the nested domain
// processes the entries; array->entry_num becomes the number done.
[[nodiscard]] int hwpt_invalidate(Context& ctx, std::uint32_t hwpt_id, hw::UserDataArray* array);

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
