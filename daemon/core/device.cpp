#include "device.h"

#include <algorithm>
#include <cassert>
#include <cerrno>

namespace ioasid::core {

Device::Device(Context& ctx, EmulatedDevice& emulated) : Object(kType), ctx_(ctx), emulated_(emulated) {}

Device::~Device()
{
    while (!pasids_.empty())
        detach(pasids_.begin()->first);
    detach(hw::kNoPasid);
    ctx_.services().hardware.release(emulated_, ctx_);
}

std::vector<Device*> Device::group_peers() const
{
    std::vector<Device*> peers;
    ctx_.objects().for_each([&](const Object& object) {
        if (object.type() != ObjectType::device)
            return;
        auto& device = const_cast<Device&>(static_cast<const Device&>(object));
        if (device.emulated_.group == emulated_.group)
            peers.push_back(&device);
    });
    // This device may be under construction, not yet in the table.
    if (std::find(peers.begin(), peers.end(), this) == peers.end())
        peers.push_back(const_cast<Device*>(this));
    return peers;
}

Hwpt* Device::group_hwpt() const
{
    for (Device* peer : group_peers())
        if (peer->rid_)
            return peer->rid_.get();
    return nullptr;
}

// The hardware attaches whole groups: every member translates through
// the group's domain, bound or not.
void Device::set_group_domain(hw::Domain* domain)
{
    for (EmulatedDevice* member : emulated_.group->members)
        member->unit->attach(*member->endpoint, hw::kNoPasid, domain);
}

int Device::reserve_regions(Ioas& ioas)
{
    for (const hw::Span& region : emulated_.unit->reserved_regions(*emulated_.endpoint))
        if (int rc = ioas.iopt().reserve({region.first, region.last}, this)) {
            ioas.iopt().remove_reserved(this);
            return rc;
        }
    return 0;
}

void Device::release_if_unused_auto(Hwpt* hwpt)
{
    // An automatic domain lives as long as devices use it; the table's own
    // reference is then the last.
    HwptPaging* paging = hwpt ? hwpt->paging() : nullptr;
    if (paging && paging->id() && paging->auto_domain() && paging->users() == 1) {
        int rc = ctx_.objects().destroy(paging->id());
        assert(rc == 0);
        (void)rc;
    }
}

void Device::leave_fault(const Hwpt* hwpt) const
{
    if (hwpt && hwpt->fault())
        hwpt->fault()->respond_all(*this);
}

// iommufd_hw_pagetable_attach(): only a paging HWPT reserves the device's
// regions in its IOAS; a nested one leaves its parent's IOAS alone.
int Device::attach_rid(Hwpt& hwpt)
{
    Hwpt* current = group_hwpt();
    if (current && current != &hwpt)
        return -EINVAL;
    // A domain that cannot take PASIDs may not sit under attached PASIDs.
    if (!pasids_.empty() && !hwpt.pasid_capable())
        return -EINVAL;
    HwptPaging* paging = hwpt.paging();
    if (paging)
        if (int rc = reserve_regions(paging->ioas()))
            return rc;
    if (!current) {
        if (int rc = emulated_.unit->check_attach(*emulated_.endpoint, hw::kNoPasid, hwpt.domain())) {
            if (paging)
                paging->ioas().iopt().remove_reserved(this);
            return rc;
        }
        set_group_domain(&hwpt.domain());
    }
    rid_ = ObjectRef<Hwpt>(hwpt);
    return 0;
}

// iommufd_device_do_replace(): reservations move only between the IOASes
// of paging HWPTs; a nested HWPT keeps none.
int Device::replace_rid(Hwpt& hwpt)
{
    Hwpt* old = group_hwpt();
    if (!old || !rid_)
        return -EINVAL;
    if (old == &hwpt)
        return 0;
    if (!pasids_.empty() && !hwpt.pasid_capable())
        return -EINVAL;
    std::vector<Device*> attached;
    for (Device* peer : group_peers())
        if (peer->rid_)
            attached.push_back(peer);
    HwptPaging* paging = hwpt.paging();
    HwptPaging* old_paging = old->paging();
    const bool new_ioas = paging && (!old_paging || &old_paging->ioas() != &paging->ioas());
    const bool leave_ioas = old_paging && (!paging || &old_paging->ioas() != &paging->ioas());
    auto unreserve_new = [&] {
        for (Device* peer : attached)
            paging->ioas().iopt().remove_reserved(peer);
    };
    if (new_ioas)
        for (Device* peer : attached)
            if (int rc = peer->reserve_regions(paging->ioas())) {
                unreserve_new();
                return rc;
            }
    if (int rc = emulated_.unit->check_attach(*emulated_.endpoint, hw::kNoPasid, hwpt.domain())) {
        if (new_ioas)
            unreserve_new();
        return rc;
    }
    set_group_domain(&hwpt.domain());
    for (Device* peer : attached) {
        if (leave_ioas)
            old_paging->ioas().iopt().remove_reserved(peer);
        peer->leave_fault(old);
        peer->rid_ = ObjectRef<Hwpt>(hwpt);
    }
    release_if_unused_auto(old);
    return 0;
}

int Device::attach_pasid(std::uint32_t pasid, Hwpt& hwpt)
{
    // iommufd_hwpt_pasid_compat(), then iommu_attach_device_pasid(): PASID
    // 0 is the RID's, and a device takes PASIDs below its max_pasids only
    // (none at all without PASID support).
    if (!hwpt.pasid_capable())
        return -EINVAL;
    if (rid_ && !rid_->pasid_capable())
        return -EINVAL;
    if (pasid == 0 || pasid >= (std::uint64_t{1} << emulated_.pasid_bits()))
        return -EINVAL;
    auto it = pasids_.find(pasid);
    if (it != pasids_.end() && it->second.get() == &hwpt)
        return 0;
    if (int rc = emulated_.unit->check_attach(*emulated_.endpoint, pasid, hwpt.domain()))
        return rc;
    emulated_.unit->attach(*emulated_.endpoint, pasid, &hwpt.domain());
    Hwpt* old = nullptr;
    if (it != pasids_.end()) {
        old = it->second.get();
        leave_fault(old);
        it->second = ObjectRef<Hwpt>(hwpt);
    } else {
        pasids_.emplace(pasid, ObjectRef<Hwpt>(hwpt));
    }
    release_if_unused_auto(old);
    return 0;
}

int Device::attach_hwpt(std::optional<std::uint32_t> pasid, Hwpt& hwpt)
{
    if (pasid)
        return attach_pasid(*pasid, hwpt);
    return rid_ ? replace_rid(hwpt) : attach_rid(hwpt);
}

// Attaching to an IOAS reuses an automatic domain that takes the device,
// or makes one (iommufd_device_auto_get_domain()).
int Device::attach_auto(Ioas& ioas, std::uint32_t* pt_id)
{
    for (HwptPaging* hwpt : std::vector<HwptPaging*>(ioas.hwpts())) {
        if (!hwpt->auto_domain())
            continue;
        const std::uint32_t id = hwpt->id();
        int rc = attach_hwpt(hw::kNoPasid, *hwpt);
        if (rc == -EINVAL)
            continue; // incompatible: try the next
        if (rc)
            return rc;
        *pt_id = id;
        return 0;
    }

    std::unique_ptr<hw::Domain> domain;
    if (int rc = emulated_.unit->alloc_domain(*emulated_.endpoint, {}, &domain))
        return rc;
    PendingObject<HwptPaging> pending(ctx_.objects(),
                                      std::make_unique<HwptPaging>(ioas, std::move(domain), true, false));
    if (!pending.id())
        return -EBUSY;
    if (rid_) {
        // A replace fills the new domain before switching to it.
        if (int rc = pending->add_to_ioas())
            return rc;
        if (int rc = replace_rid(*pending))
            return rc;
    } else {
        // A first attach attaches before it fills, so the device's reserved
        // regions are in place when the areas go in.
        if (int rc = attach_rid(*pending))
            return rc;
        if (int rc = pending->add_to_ioas()) {
            detach(hw::kNoPasid);
            return rc;
        }
    }
    *pt_id = pending.id();
    pending.publish();
    return 0;
}

int Device::attach(std::optional<std::uint32_t> pasid, std::uint32_t* pt_id)
{
    // The device never issues requests without a PASID.
    if (!pasid && emulated_.pasid_only)
        return -EINVAL;
    // The page table is looked up first (iommufd_device_change_pt()); the
    // PASID itself is judged when the attach reaches the hardware.
    if (auto* hwpt = ctx_.objects().find_as<HwptPaging>(*pt_id))
        return attach_hwpt(pasid, *hwpt);
    if (auto* hwpt = ctx_.objects().find_as<HwptNested>(*pt_id))
        return attach_hwpt(pasid, *hwpt);
    if (auto* ioas = ctx_.objects().find_as<Ioas>(*pt_id)) {
        // Automatic domains never take PASIDs; a PASID needs a HWPT
        // allocated with IOMMU_HWPT_ALLOC_PASID.
        if (pasid)
            return -EINVAL;
        return attach_auto(*ioas, pt_id);
    }
    bool exists = false;
    ctx_.objects().for_each([&](const Object& object) { exists |= object.id() == *pt_id; });
    return exists ? -EINVAL : -ENOENT;
}

void Device::detach(std::optional<std::uint32_t> pasid)
{
    if (pasid) {
        auto it = pasids_.find(*pasid);
        if (it == pasids_.end())
            return;
        emulated_.unit->attach(*emulated_.endpoint, pasid, nullptr);
        Hwpt* old = it->second.get();
        leave_fault(old);
        pasids_.erase(it);
        release_if_unused_auto(old);
        return;
    }
    if (!rid_)
        return;
    Hwpt* old = rid_.get();
    if (HwptPaging* paging = old->paging())
        paging->ioas().iopt().remove_reserved(this);
    leave_fault(old);
    rid_.reset();
    if (!group_hwpt())
        set_group_domain(nullptr);
    release_if_unused_auto(old);
}

Hwpt* Device::fault_target(std::optional<std::uint32_t> pasid) const
{
    if (!pasid)
        return group_hwpt();
    if (auto it = pasids_.find(*pasid); it != pasids_.end())
        return it->second.get();
    Hwpt* rid = group_hwpt();
    if (emulated_.unit->user_pasid_table() && rid && rid->type() == ObjectType::hwpt_nested)
        return rid;
    return nullptr;
}

int device_bind(Context& ctx, EmulatedDevice& emulated, std::uint32_t* dev_id)
{
    if (int rc = ctx.services().hardware.claim(emulated, ctx))
        return rc;
    PendingObject<Device> pending(ctx.objects(), std::make_unique<Device>(ctx, emulated));
    if (!pending.id())
        return -EBUSY; // the pending device releases the claim
    *dev_id = pending.id();
    Device& device = pending.publish();
    // Only unbinding destroys a device: IOMMU_DESTROY of it is EBUSY.
    ctx.objects().add_owner_reference(device);
    return 0;
}

int device_unbind(Context& ctx, std::uint32_t dev_id)
{
    Device* device = ctx.objects().find_as<Device>(dev_id);
    if (!device)
        return -ENOENT;
    // A run-time device is bound for as long as the object that made it
    // lives (a selftest mock device), and unbound only by it.
    if (device->emulated().runtime)
        return -EBUSY;
    return ctx.objects().destroy_owned(dev_id);
}

int device_attach(Context& ctx, std::uint32_t dev_id, std::optional<std::uint32_t> pasid, std::uint32_t* pt_id)
{
    Device* device = ctx.objects().find_as<Device>(dev_id);
    if (!device)
        return -ENOENT;
    return device->attach(pasid, pt_id);
}

int device_detach(Context& ctx, std::uint32_t dev_id, std::optional<std::uint32_t> pasid)
{
    Device* device = ctx.objects().find_as<Device>(dev_id);
    if (!device)
        return -ENOENT;
    device->detach(pasid);
    return 0;
}

int device_hw_info(Context& ctx, std::uint32_t dev_id, hw::HwInfo* info)
{
    Device* device = ctx.objects().find_as<Device>(dev_id);
    if (!device)
        return -ENOENT;
    *info = device->emulated().unit->hw_info(*device->emulated().endpoint);
    return 0;
}

} // namespace ioasid::core
