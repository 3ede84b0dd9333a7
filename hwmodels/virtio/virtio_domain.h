// A paging domain of a virtio-iommu, the driver's side of it
// (drivers/iommu/virtio-iommu.c): an id from the device's domain range,
// the driver's own interval tree of what it mapped, and MAP and UNMAP
// requests to the device while an endpoint is attached. The device holds
// the translations; lookup() asks it.
#pragma once

#include <cstdint>
#include <map>

#include "hwmodels/common/domain.h"

namespace ioasid::hw::virtio {

class VirtioUnit;

class VirtioDomain final : public Domain {
public:
    VirtioDomain(VirtioUnit& unit, DomainRequest request, Geometry geometry, std::uint32_t id,
                 std::uint32_t map_flags);
    // Gives the id back (viommu_domain_free()).
    ~VirtioDomain() override;

    [[nodiscard]] std::uint32_t id() const { return id_; }
    // The driver's count of endpoints attached, viommu_domain::nr_endpoints.
    [[nodiscard]] unsigned endpoints() const { return endpoints_; }

    // Split into pages as the iommu core's iommu_pgsize() does and one
    // mapping per viommu_map_pages() call, sent as MAP while attached.
    // Errors: the device's status as viommu_get_req_errno() turns it.
    int map(std::uint64_t iova, std::uint64_t pa, std::uint64_t length, Prot prot, std::uint64_t max_leaf) override;
    // Removes whole mappings from [iova, iova + length) and sends one UNMAP
    // for them, as viommu_unmap_pages() does; the core unmaps exactly what
    // it mapped, so the device never sees a split.
    void unmap(std::uint64_t iova, std::uint64_t length) override;
    // One interval search in the device.
    Translation lookup(std::uint64_t iova) const override;
    // Mappings carry no accessed or dirty state.
    void note_use(std::uint64_t, Access) override {}
    void read_and_clear_dirty(std::uint64_t, std::uint64_t, bool,
                              const std::function<void(std::uint64_t, std::uint64_t)>&) override
    {
    }

    std::string_view format_name() const override { return "virtio-iommu-mappings (no page table)"; }
    std::uint64_t root_pa() const override { return 0; }
    unsigned levels() const override { return 0; }
    // One entry per mapping the device holds: iova and size are the
    // mapping's range, raw its phys_start, fields its flags.
    void dump(const std::function<void(const DumpEntry&)>& fn) const override;

private:
    friend class VirtioUnit;
    // Called by the unit as it attaches the first endpoint: the device
    // dropped the domain's mappings when its last endpoint left, so the
    // driver sends them again (viommu_replay_mappings()).
    [[nodiscard]] int replay();
    [[nodiscard]] int send_map(std::uint64_t first, std::uint64_t last, std::uint64_t phys, std::uint32_t flags);

    struct Mapping {
        std::uint64_t last;
        std::uint64_t phys;
        std::uint32_t flags;
    };

    VirtioUnit& unit_;
    std::uint32_t id_;
    std::uint32_t map_flags_;
    std::uint64_t iotlb_sizes_;
    unsigned endpoints_ = 0;
    std::map<std::uint64_t, Mapping> mappings_; // the driver's tree, by first address
};

} // namespace ioasid::hw::virtio
