#include "hw_pagetable.h"

#include <ioasid/iommufd.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cerrno>
#include <map>
#include <vector>

#include "device.h"

namespace ioasid::core {

HwptPaging::HwptPaging(Ioas& ioas, std::unique_ptr<hw::Domain> domain, bool auto_domain, bool nest_parent)
    : Hwpt(kType), ioas_(ioas), domain_(std::move(domain)), auto_domain_(auto_domain),
      nest_parent_(nest_parent)
{
}

HwptPaging::~HwptPaging()
{
    if (in_ioas_) {
        std::erase(ioas_->hwpts(), this);
        ioas_->iopt().remove_domain(*domain_);
    }
}

int HwptPaging::add_to_ioas()
{
    if (int rc = ioas_->iopt().add_domain(*domain_))
        return rc;
    ioas_->hwpts().push_back(this);
    in_ioas_ = true;
    return 0;
}

HwptNested::HwptNested(HwptPaging& parent, std::unique_ptr<hw::NestedDomain> domain, bool pasid_capable)
    : Hwpt(kType), parent_(parent), domain_(std::move(domain)), pasid_capable_(pasid_capable)
{
}

// The domain, declared after the parent's reference, goes first.
HwptNested::~HwptNested() = default;

namespace {

// iommufd_hwpt_nested_alloc(), with the PASID flag of 6.15 as paging
// HWPTs have it here.
int nested_alloc(Context& ctx, HwptPaging& parent, Device& device, const HwptAllocRequest& request,
                 std::unique_ptr<PendingObject<Hwpt>>* out)
{
    constexpr std::uint32_t kNestedFlags = IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID;
    if ((request.flags & ~kNestedFlags) || request.data.length == 0)
        return -EOPNOTSUPP;
    // A parent of another IOMMU instance is as unusable as an automatic
    // one: the nested domain's walks go through the parent's tables and
    // IOTLB tags, which only its own unit invalidates (drivers refuse a
    // parent of another instance, as arm_vsmmu_alloc() does).
    const EmulatedDevice& emulated = device.emulated();
    if (parent.auto_domain() || !parent.nest_parent() || &parent.domain().unit() != emulated.unit)
        return -EINVAL;
    std::unique_ptr<hw::NestedDomain> domain;
    if (int rc = emulated.unit->alloc_nested_domain(*emulated.endpoint, parent.domain(), request.data, &domain))
        return rc;
    auto pending = std::make_unique<PendingObject<Hwpt>>(
        ctx.objects(), std::make_unique<HwptNested>(parent, std::move(domain),
                                                    (request.flags & IOMMU_HWPT_ALLOC_PASID) != 0));
    if (!pending->id())
        return -EBUSY;
    *out = std::move(pending);
    return 0;
}

// iommufd_hwpt_paging_alloc() for IOMMU_HWPT_ALLOC.
int paging_alloc(Context& ctx, Ioas& ioas, Device& device, const HwptAllocRequest& request,
                 std::unique_ptr<PendingObject<Hwpt>>* out)
{
    constexpr std::uint32_t kPagingFlags =
        IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID;
    if (request.flags & ~kPagingFlags)
        return -EOPNOTSUPP;
    const EmulatedDevice& emulated = device.emulated();
    if ((request.flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) &&
        !(emulated.unit->hw_info(*emulated.endpoint).capabilities & IOMMU_HW_CAP_DIRTY_TRACKING))
        return -EOPNOTSUPP;
    // Driver data for a paging domain: no family defines any.
    if (request.data.type != IOMMU_HWPT_DATA_NONE)
        return -EOPNOTSUPP;

    const hw::DomainRequest domain_request{
        .nest_parent = (request.flags & IOMMU_HWPT_ALLOC_NEST_PARENT) != 0,
        .dirty_tracking = (request.flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) != 0,
        .pasid = (request.flags & IOMMU_HWPT_ALLOC_PASID) != 0,
    };
    std::unique_ptr<hw::Domain> domain;
    if (int rc = emulated.unit->alloc_domain(*emulated.endpoint, domain_request, &domain))
        return rc;
    auto hwpt = std::make_unique<HwptPaging>(ioas, std::move(domain), false, domain_request.nest_parent);
    HwptPaging& paging = *hwpt;
    auto pending = std::make_unique<PendingObject<Hwpt>>(ctx.objects(), std::move(hwpt));
    if (!pending->id())
        return -EBUSY;
    if (int rc = paging.add_to_ioas())
        return rc;
    *out = std::move(pending);
    return 0;
}

} // namespace

int hwpt_alloc(Context& ctx, const HwptAllocRequest& request, std::unique_ptr<PendingObject<Hwpt>>* out)
{
    Device* device = ctx.objects().find_as<Device>(request.dev_id);
    if (!device)
        return -ENOENT;
    // A missing parent is EINVAL here, not ENOENT: the kernel looks it up
    // as any type and reports every failure the same way; a nested HWPT
    // cannot be a parent.
    std::unique_ptr<PendingObject<Hwpt>> pending;
    if (auto* ioas = ctx.objects().find_as<Ioas>(request.pt_id)) {
        if (int rc = paging_alloc(ctx, *ioas, *device, request, &pending))
            return rc;
    } else if (auto* parent = ctx.objects().find_as<HwptPaging>(request.pt_id)) {
        if (int rc = nested_alloc(ctx, *parent, *device, request, &pending))
            return rc;
    } else {
        return -EINVAL;
    }

    // The fault is looked up once the HWPT exists, which a missing one
    // then undoes (iommufd_hwpt_alloc()).
    if (request.flags & IOMMU_HWPT_FAULT_ID_VALID) {
        Fault* fault = ctx.objects().find_as<Fault>(request.fault_id);
        if (!fault)
            return -ENOENT;
        (*pending)->set_fault(*fault);
    }
    *out = std::move(pending);
    return 0;
}

int hwpt_invalidate(Context& ctx, std::uint32_t hwpt_id, hw::UserDataArray* array)
{
    auto* hwpt = ctx.objects().find_as<HwptNested>(hwpt_id);
    if (!hwpt) {
        array->entry_num = 0;
        return -ENOENT;
    }
    return hwpt->domain().invalidate_user(*array);
}

int hwpt_set_dirty_tracking(Context& ctx, std::uint32_t hwpt_id, bool enable)
{
    HwptPaging* hwpt = ctx.objects().find_as<HwptPaging>(hwpt_id);
    if (!hwpt)
        return -ENOENT;
    hw::Domain& domain = hwpt->domain();
    if (!domain.request().dirty_tracking)
        return -EOPNOTSUPP;
    // Tracking starts from a clean snapshot of every mapped area.
    if (enable)
        hwpt->ioas().iopt().for_each_area([&](const Area& area) {
            domain.read_and_clear_dirty(area.iova.first, area.length(), true,
                                        [](std::uint64_t, std::uint64_t) {});
        });
    return domain.set_dirty_tracking(enable);
}

int hwpt_get_dirty_bitmap(Context& ctx, const DirtyBitmapRequest& request, const SetDirtyBits& set_bits)
{
    HwptPaging* hwpt = ctx.objects().find_as<HwptPaging>(request.hwpt_id);
    if (!hwpt)
        return -ENOENT;
    const IoPagetable& iopt = hwpt->ioas().iopt();

    // iommufd_check_iova_range(), in its order.
    if (request.length == 0)
        return -EINVAL;
    std::uint64_t last;
    if (!last_of(request.iova, request.length, &last))
        return -EOVERFLOW;
    const std::uint64_t alignment = iopt.iova_alignment();
    if (!aligned(request.iova, alignment) || !aligned(last + 1, alignment))
        return -EINVAL;
    if (request.page_size == 0)
        return -EINVAL;
    if (!aligned(request.iova, request.page_size) || !aligned(last + 1, request.page_size))
        return -EINVAL;

    hw::Domain& domain = hwpt->domain();
    if (!domain.request().dirty_tracking)
        return -EOPNOTSUPP;
    // With tracking off the driver refuses to read and the kernel drops
    // that error: the ioctl succeeds and sets nothing.
    if (!domain.dirty_tracking())
        return 0;

    // Bits are gathered per 64-bit word so each word is written once. A
    // bit covers 1 << __ffs(page_size) bytes (iova_bitmap_alloc()), which
    // is page_size itself unless that is no power of two.
    const unsigned shift = static_cast<unsigned>(std::countr_zero(request.page_size));
    std::map<std::uint64_t, std::uint64_t> words;
    auto record = [&](std::uint64_t leaf_iova, std::uint64_t size) {
        const std::uint64_t first = std::max(leaf_iova, request.iova);
        const std::uint64_t end = std::min(leaf_iova + (size - 1), last);
        // A word at a time: a large leaf with a small page_size sets many.
        const std::uint64_t first_bit = (first - request.iova) >> shift;
        const std::uint64_t last_bit = (end - request.iova) >> shift;
        for (std::uint64_t word = first_bit / 64; word <= last_bit / 64; ++word) {
            const auto lo = static_cast<unsigned>(word == first_bit / 64 ? first_bit % 64 : 0);
            const auto hi = static_cast<unsigned>(word == last_bit / 64 ? last_bit % 64 : 63);
            words[word] |= (~std::uint64_t{0} >> (63 - hi)) & (~std::uint64_t{0} << lo);
        }
    };
    // The walk covers contiguous areas from the start; the kernel stops
    // quietly at the first hole.
    std::uint64_t cur = request.iova;
    for (const Area* area = iopt.find_area(cur); area && area->iova.first <= cur;
         area = iopt.find_area(cur)) {
        const std::uint64_t piece_last = std::min(last, area->iova.last);
        domain.read_and_clear_dirty(cur, piece_last - cur + 1, request.clear, record);
        if (piece_last == last)
            break;
        cur = piece_last + 1;
    }
    // Consecutive words go out together: one read and one write of the
    // client's memory per run rather than per word.
    std::vector<std::uint64_t> run;
    for (auto it = words.begin(); it != words.end();) {
        const std::uint64_t run_first = it->first;
        run.clear();
        for (; it != words.end() && it->first == run_first + run.size(); ++it)
            run.push_back(it->second);
        if (set_bits(run_first, run))
            break;
    }
    return 0;
}

} // namespace ioasid::core
