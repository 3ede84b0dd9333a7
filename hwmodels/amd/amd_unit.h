// An AMD-Vi unit as the Linux 6.12 amd driver (drivers/iommu/amd/) would
// drive it under iommufd: what it reports (EFR/EFR2, reserved regions),
// which domains it hands out and in which table format, which attachments
// it refuses, the device table entries and GCR3 tables it programs, and
// the events its event log would record for a failed DMA.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "amd_registers.h"
#include "hwmodels/common/table_memory.h"
#include "hwmodels/common/unit.h"
#include "hwmodels/common/unit_params.h"

namespace ioasid::hw::amd {

// The interrupt window (MSI_RANGE_START..END) and the HyperTransport
// reserved range (HT_RANGE_START..END) amd_iommu_get_resv_regions()
// reports for every device.
inline constexpr Span kMsiWindow{0xfee00000, 0xfeefffff};
inline constexpr Span kHyperTransport{0xfd00000000, 0xffffffffff};

// Event log record types (EventCode, bits 31:28 of the record's second
// dword), as the driver's EVENT_TYPE_* name them.
enum class EventCode : std::uint8_t {
    illegal_dev_table_entry = 0x1,
    io_page_fault = 0x2,
};

// IO_PAGE_FAULT flags (bits 27:16 of the record's second dword).
namespace event_flag {
inline constexpr std::uint32_t kGuest = 1u << 0;       // GN: the request had a PASID
inline constexpr std::uint32_t kPresent = 1u << 4;     // PR: the translation was present
inline constexpr std::uint32_t kWrite = 1u << 5;       // RW
inline constexpr std::uint32_t kPermission = 1u << 6;  // PE
} // namespace event_flag

class AmdUnit final : public Unit {
public:
    AmdUnit(std::string name, const AmdConfig& config, memory::PhysSpace& phys);
    ~AmdUnit() override;

    [[nodiscard]] const AmdConfig& config() const { return config_; }
    [[nodiscard]] const AmdRegisters& registers() const { return regs_; }
    // The number of PASIDs the driver lets `endpoint` use, PASID 0
    // included (dev_data->max_pasids); 0 without PASIDs.
    [[nodiscard]] std::uint32_t max_pasids(const Endpoint& endpoint) const;

    // The GET_HW_INFO answer of 6.18's amd_iommufd_hw_info(): EFR and EFR2.
    HwInfo hw_info(const Endpoint& endpoint) const override;
    std::uint64_t page_table_pages() const override { return tables_.pages_in_use(); }
    // An iommufd paging domain: v1 on 6.12 (amd_iommu_domain_alloc_user()
    // makes every user domain IOMMU_DOMAIN_UNMANAGED).
    int alloc_domain(const Endpoint& endpoint, const DomainRequest& request,
                     std::unique_ptr<Domain>* out) override;
    // A v2 domain, as the driver builds for DMA domains in v2 mode and as
    // SVA binds a process's tables. -EOPNOTSUPP without guest translation.
    [[nodiscard]] int alloc_first_stage_domain(const Endpoint& endpoint, std::unique_ptr<Domain>* out);
    int check_attach(const Endpoint& endpoint, std::optional<std::uint32_t> pasid,
                     const Domain& domain) const override;
    std::vector<Span> reserved_regions(const Endpoint& endpoint) const override;

    // hw_code is the second dword of the event-log record: EventCode in
    // 31:28, the flags in 27:16 (GN left clear: a Fault carries its PASID
    // itself), and in 15:0 the DTE's DomainID for IO_PAGE_FAULT, the
    // request's PASID for ILLEGAL_DEV_TABLE_ENTRY.
    using Unit::fault_code;
    std::uint32_t fault_code(FaultReason reason, Access access) const override;
    std::uint32_t fault_code(const Fault& fault, const Endpoint& endpoint, const Domain* domain) const override;

    // The device table entry of `device_id` (a device's RID) as the
    // hardware reads it, qword 0 first.
    [[nodiscard]] std::array<std::uint64_t, 4> dte(std::uint32_t device_id) const;
    // The entry the GCR3 table of `device_id` holds for `pasid`: 0 when
    // there is none (or no table).
    [[nodiscard]] std::uint64_t gcr3_entry(std::uint32_t device_id, std::uint32_t pasid) const;

protected:
    void program_attachment(Endpoint& endpoint, std::optional<std::uint32_t> pasid, Domain* domain) override;

private:
    // What the driver keeps per device and writes into its DTE.
    struct DeviceState {
        Domain* rid = nullptr;   // nullptr: blocked
        std::uint64_t gcr3 = 0;  // GCR3 table root, 0 without one
        unsigned glx = 0;        // its levels - 1
    };
    [[nodiscard]] bool endpoint_dirty_tracking(const Endpoint& endpoint) const;
    // get_gcr3_levels() for the device's PASIDs.
    [[nodiscard]] unsigned gcr3_levels(const Endpoint& endpoint) const;
    [[nodiscard]] std::uint64_t* gcr3_slot(const DeviceState& device, std::uint32_t pasid, bool alloc);
    void free_gcr3_level(std::uint64_t table, unsigned level);
    void free_gcr3(DeviceState& device);

    AmdConfig config_;
    AmdRegisters regs_;
    // Table memory is declared before the device state that points into it.
    TableMemory tables_;     // the domains' page tables
    TableMemory structures_; // the devices' GCR3 tables
    // The device table and GCR3 tables are written under the unit's
    // attachment lock; dte() reads them from anywhere, so they have their
    // own lock too.
    mutable std::mutex dte_lock_;
    std::map<std::uint32_t, DeviceState> devices_; // by device id
};

// The `family = "amd"` entry of a topology: keys levels (4..6),
// dirty_tracking, guest_translation, guest_levels (4 or 5), pasid_bits
// (1..16 with guest_translation, the default 16; 0 without).
// Throws UnitParamError naming the key of a bad or contradictory value.
std::unique_ptr<Unit> create_amd_unit(const std::string& name, UnitParams& params, memory::PhysSpace& phys);

} // namespace ioasid::hw::amd
