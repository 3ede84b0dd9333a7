// An Intel VT-d remapping unit in scalable mode, as the Linux 6.12 intel
// driver (drivers/iommu/intel/) would drive it under iommufd: what it
// reports (CAP/ECAP, reserved regions), which domains it hands out and in
// which table format, which attachments it refuses, and the fault reasons
// its fault records would carry.
#pragma once

#include <cstdint>
#include <memory>

#include "hwmodels/common/table_memory.h"
#include "hwmodels/common/unit.h"
#include "hwmodels/common/unit_params.h"
#include "vtd_registers.h"

namespace ioasid::hw::vtd {

// The x86 interrupt window (the driver's IOAPIC_RANGE_START..END): DMA
// writes there are MSIs, never memory accesses.
inline constexpr Span kMsiWindow{0xfee00000, 0xfeefffff};

// Scalable-mode fault reasons (the FR field of a fault record), as the
// VT-d specification numbers its scalable-mode non-recoverable fault
// conditions (chapter 7); the Linux driver's dmar.c names each number in
// its scalable-mode reason table, and QEMU's VTDFaultReason uses the same
// 0x71/0x80/0x85 for its first-stage walker. The legacy-mode codes (4
// beyond MGAW, 5 write, 6 read) are not what a scalable-mode unit records.
enum class FaultCode : std::uint8_t {
    pasid_not_enabled = 0x45,     // request with PASID, context entry's PASIDE clear
    pasid_beyond_table = 0x46,    // PASID above what the context entry's PASID directory covers
    pasid_entry_not_present = 0x59,
    first_stage_not_present = 0x71,
    second_stage_not_present = 0x79, // R and W both clear in an entry walked
    non_canonical = 0x80,            // first-stage input not canonical
    beyond_input_width = 0x83,       // second-stage input above the domain's width
    write_denied = 0x85,
    read_denied = 0x86,
};

class VtdUnit final : public Unit {
public:
    VtdUnit(std::string name, const VtdConfig& config, memory::PhysSpace& phys);

    [[nodiscard]] const VtdConfig& config() const { return config_; }
    [[nodiscard]] const VtdRegisters& registers() const { return regs_; }
    // What every domain of this unit gets: table depth and input width.
    [[nodiscard]] unsigned levels() const { return levels_; }
    [[nodiscard]] unsigned address_width() const { return width_; }

    HwInfo hw_info(const Endpoint& endpoint) const override;
    std::uint64_t page_table_pages() const override { return tables_.pages_in_use(); }
    // An iommufd paging domain: always second stage on 6.12.
    int alloc_domain(const Endpoint& endpoint, const DomainRequest& request,
                     std::unique_ptr<Domain>* out) override;
    // A first-stage domain, as the driver builds for its own DMA API
    // domains (and as a guest's table for nesting is shaped).
    // -EOPNOTSUPP without ECAP.FLTS.
    [[nodiscard]] int alloc_first_stage_domain(const Endpoint& endpoint, std::unique_ptr<Domain>* out);
    int check_attach(const Endpoint& endpoint, std::optional<std::uint32_t> pasid,
                     const Domain& domain) const override;
    std::vector<Span> reserved_regions(const Endpoint& endpoint) const override;

    using Unit::fault_code;
    std::uint32_t fault_code(FaultReason reason, Access access) const override;
    std::uint32_t fault_code(const Fault& fault, const Endpoint& endpoint, const Domain* domain) const override;

private:
    [[nodiscard]] bool endpoint_dirty_tracking(const Endpoint& endpoint) const;

    VtdConfig config_;
    VtdRegisters regs_;
    unsigned levels_;
    unsigned width_;
    TableMemory tables_;
};

// The `family = "vtd"` entry of a topology: keys address_width,
// dirty_tracking, pasid_bits, first_stage, nesting (default: as
// first_stage), large_pages.
// Throws UnitParamError naming the key of a bad or contradictory value.
std::unique_ptr<Unit> create_vtd_unit(const std::string& name, UnitParams& params, memory::PhysSpace& phys);

} // namespace ioasid::hw::vtd
