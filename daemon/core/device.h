// DEVICE objects: an emulated device bound to a context, and what it is
// attached to. Binding takes DMA ownership of the device's IOMMU group;
// all bound devices of a group sit on the same HWPT, as in the kernel.
// Each attachment (the RID, or one PASID) holds a users reference on its
// HWPT.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "context.h"
#include "hardware.h"
#include "hw_pagetable.h"
#include "object.h"

namespace ioasid::core {

class Device final : public Object {
public:
    static constexpr ObjectType kType = ObjectType::device;
    Device(Context& ctx, EmulatedDevice& emulated);
    // Detaches everything and gives up ownership.
    ~Device() override;

    [[nodiscard]] EmulatedDevice& emulated() const { return emulated_; }
    [[nodiscard]] Hwpt* rid_hwpt() const { return rid_.get(); }
    [[nodiscard]] const std::map<std::uint32_t, ObjectRef<Hwpt>>& pasids() const { return pasids_; }
    // The HWPT a page request for `pasid` reaches (find_fault_handler()):
    // the PASID's own attachment, else, on a unit whose PASID tables the
    // client owns, a nested HWPT on the RID; the RID's for no PASID.
    [[nodiscard]] Hwpt* fault_target(std::optional<std::uint32_t> pasid) const;

    // The operations behind device_attach() and device_detach().
    [[nodiscard]] int attach(std::optional<std::uint32_t> pasid, std::uint32_t* pt_id);
    void detach(std::optional<std::uint32_t> pasid);

private:
    [[nodiscard]] int attach_rid(Hwpt& hwpt);
    [[nodiscard]] int replace_rid(Hwpt& hwpt);
    [[nodiscard]] int attach_pasid(std::uint32_t pasid, Hwpt& hwpt);
    [[nodiscard]] int attach_hwpt(std::optional<std::uint32_t> pasid, Hwpt& hwpt);
    [[nodiscard]] int attach_auto(Ioas& ioas, std::uint32_t* pt_id);
    [[nodiscard]] int reserve_regions(Ioas& ioas);
    // Bound devices of the same group in this context, this one included.
    [[nodiscard]] std::vector<Device*> group_peers() const;
    // The HWPT the group is attached to, through any attached peer.
    [[nodiscard]] Hwpt* group_hwpt() const;
    void set_group_domain(hw::Domain* domain);
    void release_if_unused_auto(Hwpt* hwpt);
    // Leaving `hwpt`: its fault queue forgets this device's requests.
    void leave_fault(const Hwpt* hwpt) const;

    Context& ctx_;
    EmulatedDevice& emulated_;
    ObjectRef<Hwpt> rid_;
    std::map<std::uint32_t, ObjectRef<Hwpt>> pasids_;
};

// Binds `emulated` to the context (the iommufd half of
// VFIO_DEVICE_BIND_IOMMUFD): -EBUSY when it or its group belongs to
// another context or it is bound already. *dev_id gets the new id.
[[nodiscard]] int device_bind(Context& ctx, EmulatedDevice& emulated, std::uint32_t* dev_id);
// Undoes device_bind (closing the VFIO file): detaches and destroys.
// -EBUSY for a run-time device, which its maker unbinds.
[[nodiscard]] int device_unbind(Context& ctx, std::uint32_t dev_id);

// Attaches (or, when attached, replaces) the RID or one PASID of a device
// to the IOAS or HWPT *pt_id; *pt_id gets the HWPT used. Errors as
// iommufd_device_attach/replace give them.
[[nodiscard]] int device_attach(Context& ctx, std::uint32_t dev_id, std::optional<std::uint32_t> pasid,
                                std::uint32_t* pt_id);
// Blocks DMA again; detaching what is not attached succeeds.
[[nodiscard]] int device_detach(Context& ctx, std::uint32_t dev_id, std::optional<std::uint32_t> pasid);

// IOMMU_GET_HW_INFO.
[[nodiscard]] int device_hw_info(Context& ctx, std::uint32_t dev_id, hw::HwInfo* info);

} // namespace ioasid::core
