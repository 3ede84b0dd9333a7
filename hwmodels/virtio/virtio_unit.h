// A virtio-iommu device as a Linux guest's driver (drivers/iommu/
// virtio-iommu.c) would drive it under iommufd: the device's config
// space from topology keys, domains whose geometry comes from it as
// viommu_domain_alloc_paging() sets it, the endpoints' reserved regions
// from PROBE, attachment by ATTACH and DETACH requests, and the fault
// reasons of its event queue. There is no hw_info type, dirty tracking,
// nesting or PASID.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "hwmodels/common/unit.h"
#include "hwmodels/common/unit_params.h"
#include "memory/phys_space.h"
#include "virtio_iommu_device.h"

namespace ioasid::hw::virtio {

class VirtioDomain;

// The software MSI window the driver reserves when PROBE reports no MSI
// region (MSI_IOVA_BASE, MSI_IOVA_LENGTH).
inline constexpr Span kSwMsiWindow{0x8000000, 0x80fffff};

// The guest's PAGE_SIZE the driver compares the granule with.
inline constexpr std::uint64_t kGuestPageSize = 4096;

// hw_code of a DMA fault: the fault record's reason in bits 7:0 and its
// flags in bits 31:8 (so READ is bit 8, WRITE bit 9, ADDRESS bit 16).
[[nodiscard]] constexpr std::uint32_t pack_fault(std::uint8_t reason, std::uint32_t flags)
{
    return reason | (flags << 8);
}

struct ConfigProblem {
    std::string key;
    std::string message;
};
[[nodiscard]] std::optional<ConfigProblem> check_config(const DeviceConfig& config);

class VirtioUnit final : public Unit {
public:
    VirtioUnit(std::string name, const DeviceConfig& config);
    ~VirtioUnit() override;

    [[nodiscard]] VirtioIommuDevice& device() { return device_; }
    [[nodiscard]] const VirtioIommuDevice& device() const { return device_; }

    HwInfo hw_info(const Endpoint& endpoint) const override;
    // viommu_domain_alloc_paging(): -ENODEV when the granule is above the
    // guest's page, -ENOSPC when the domain range is used up.
    int alloc_domain(const Endpoint& endpoint, const DomainRequest& request,
                     std::unique_ptr<Domain>* out) override;
    // What PROBE reports, as viommu_get_resv_regions() passes it on: the
    // device's RESERVED and MSI regions, and the software MSI window when
    // it names no MSI region (or PROBE is not offered).
    std::vector<Span> reserved_regions(const Endpoint& endpoint) const override;

    using Unit::fault_code;
    std::uint32_t fault_code(FaultReason reason, Access access) const override;

protected:
    // ATTACH to the new domain (the device detaches from the old one
    // itself), DETACH when blocked, as viommu_attach_dev() and
    // viommu_detach_dev() do.
    void program_attachment(Endpoint& endpoint, std::optional<std::uint32_t> pasid, Domain* domain) override;

private:
    friend class VirtioDomain;
    void release_domain_id(std::uint32_t id);

    VirtioIommuDevice device_;
    std::uint32_t map_flags_;
    // Domains of several contexts come and go, and their devices attach,
    // at the same time. Taken inside the unit's lock, outside the device's.
    std::mutex driver_lock_;
    std::set<std::uint32_t> ids_; // in use
    std::uint64_t first_id_;
    std::unordered_map<const Endpoint*, VirtioDomain*> attached_; // the driver's vdev->vdomain
};

// The `family = "virtio"` entry of a topology: keys page_size_mask,
// input_start, input_end, domain_start, domain_end, probe, probe_size,
// mmio, bypass, msi_start, msi_end (msi = false for none),
// reserved_start, reserved_end. Throws UnitParamError naming the key of a
// bad or contradictory value.
std::unique_ptr<Unit> create_virtio_unit(const std::string& name, UnitParams& params, memory::PhysSpace& phys);

} // namespace ioasid::hw::virtio
