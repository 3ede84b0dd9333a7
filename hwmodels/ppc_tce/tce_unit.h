// A POWER9 PHB (IODA3) as iommufd would see it through a powernv-style
// driver: every device is its own partitionable endpoint with two DMA
// windows, a 32-bit one at bus address 0 and a 64-bit one at
// tce_bypass_base (2^59), each a TCE table with its own page size.
//
// Linux 6.12's spapr_tce_iommu_ops offer only the platform and blocked
// domains, so iommufd cannot allocate a paging domain there; this unit is
// what such a driver would have to be: one paging domain spanning both
// windows, no hw_info type (IOMMU_HW_INFO_TYPE_NONE), no dirty tracking,
// nesting or PASIDs.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "hwmodels/common/table_memory.h"
#include "hwmodels/common/unit.h"
#include "hwmodels/common/unit_params.h"
#include "tce_table.h"

namespace ioasid::hw::ppc_tce {

// tce_bypass_base of pnv_pci_ioda2_setup_dma_pe(), QEMU sPAPR's dma64_win_addr.
inline constexpr std::uint64_t kDma64Base = 1ULL << 59;

// The windows. The 32-bit one is QEMU sPAPR's default (dma_win_addr 0,
// dma_win_size 1 GiB, 4 KiB TCEs) rather than powernv's, whose size follows
// the machine's memory and whose TCEs are the host's 64 KiB PAGE_SIZE,
// which 4 KiB pinned pages could never fill. The 64-bit one has 64 KiB
// TCEs, as QEMU's DDW default, and 64 GiB.
struct TceConfig {
    WindowConfig dma32{0, 1ULL << 30, 12, 2};
    WindowConfig dma64{kDma64Base, 1ULL << 36, 16, 3};
};

// A topology value no unit can have, with the key that holds it.
struct ConfigProblem {
    std::string key;
    std::string message;
};
[[nodiscard]] std::optional<ConfigProblem> check_config(const TceConfig& config);

// What hw_code holds for a DMA fault: which check of the PHB failed. A
// real PHB freezes the PE (EEH) and records the error in its diag data;
// these are our numbers for its three DMA translation errors.
enum class FaultCode : std::uint32_t {
    tve_invalid = 1, // the address selects no window (or the PE has none set)
    tce_invalid = 2, // the TCE, or a level above it, allows neither read nor write
    tce_access = 3,  // the TCE lacks the permission for the access
};

class TceUnit final : public Unit {
public:
    TceUnit(std::string name, const TceConfig& config, memory::PhysSpace& phys);

    [[nodiscard]] const TceConfig& config() const { return config_; }

    HwInfo hw_info(const Endpoint& endpoint) const override;
    std::uint64_t page_table_pages() const override { return tables_.pages_in_use(); }
    int alloc_domain(const Endpoint& endpoint, const DomainRequest& request,
                     std::unique_ptr<Domain>* out) override;
    // Below the 32-bit window and between the windows.
    std::vector<Span> reserved_regions(const Endpoint& endpoint) const override;

    using Unit::fault_code;
    std::uint32_t fault_code(FaultReason reason, Access access) const override;
    std::uint32_t fault_code(const Fault& fault, const Endpoint& endpoint, const Domain* domain) const override;

private:
    TceConfig config_;
    TableMemory tables_;
};

// The `family = "ppc_tce"` entry of a topology: keys dma32_base,
// dma32_size, dma32_page_shift, dma32_levels and the same for dma64_.
// Throws UnitParamError naming the key of a bad or contradictory value.
std::unique_ptr<Unit> create_ppc_tce_unit(const std::string& name, UnitParams& params, memory::PhysSpace& phys);

} // namespace ioasid::hw::ppc_tce
