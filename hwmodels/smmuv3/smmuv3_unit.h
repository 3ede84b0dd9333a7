// An Arm SMMUv3 as the Linux 6.12 arm-smmu-v3 driver drives it under
// iommufd (with the hw_info and NEST_PARENT handling of later kernels,
// which the uAPI we serve has): what it reports (ID registers, reserved
// regions), which domains it hands out in which VMSAv8-64 format, which
// attachments it refuses, the stream table and context descriptors it
// programs for each attachment, and the event IDs its faults would
// record.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "cd_table.h"
#include "hwmodels/common/table_memory.h"
#include "hwmodels/common/unit.h"
#include "hwmodels/common/unit_params.h"
#include "smmuv3_domain.h"
#include "smmuv3_registers.h"
#include "stream_table.h"

namespace ioasid::hw::smmuv3 {

// The software MSI window every device gets (MSI_IOVA_BASE,
// MSI_IOVA_LENGTH in arm_smmu_get_resv_regions()).
inline constexpr Span kMsiWindow{0x8000000, 0x8000000 + 0x100000 - 1};

// Event record IDs (SMMUv3 specification 7.3).
enum class EventId : std::uint8_t {
    none = 0x00,            // terminated without a record (STE.Config abort)
    c_bad_ste = 0x04,
    f_stream_disabled = 0x06,
    c_bad_substreamid = 0x08,
    c_bad_cd = 0x0a,
    f_translation = 0x10,
    f_addr_size = 0x11,
    f_access = 0x12,
    f_permission = 0x13,
};

class SmmuUnit final : public Unit {
public:
    SmmuUnit(std::string name, const SmmuConfig& config, memory::PhysSpace& phys);
    ~SmmuUnit() override;

    [[nodiscard]] const SmmuConfig& config() const { return config_; }
    [[nodiscard]] const SmmuRegisters& registers() const { return regs_; }
    [[nodiscard]] const SmmuFeatures& features() const { return features_; }

    HwInfo hw_info(const Endpoint& endpoint) const override;
    std::uint64_t page_table_pages() const override { return tables_.pages_in_use(); }
    // As arm_smmu_domain_alloc_paging_flags() sorts the flags: stage 1
    // unless nest_parent asks for stage 2.
    int alloc_domain(const Endpoint& endpoint, const DomainRequest& request,
                     std::unique_ptr<Domain>* out) override;
    int check_attach(const Endpoint& endpoint, std::optional<std::uint32_t> pasid,
                     const Domain& domain) const override;
    std::vector<Span> reserved_regions(const Endpoint& endpoint) const override;

    using Unit::fault_code;
    std::uint32_t fault_code(FaultReason reason, Access access) const override;
    std::uint32_t fault_code(const Fault& fault, const Endpoint& endpoint, const Domain* domain) const override;

    // --- the structures in table memory, as the hardware would read them ---
    [[nodiscard]] const StreamTable& stream_table() const { return streams_; }
    // The STE of a stream; nullopt where the table has none (an L2 table
    // not made yet, a SID beyond SIDSIZE).
    [[nodiscard]] std::optional<Ste> ste(std::uint32_t sid) const;
    // CD `ssid` of the stream's CD table; nullopt without a table or leaf.
    [[nodiscard]] std::optional<Cd> cd(std::uint32_t sid, std::uint32_t ssid) const;

protected:
    void program_attachment(Endpoint& endpoint, std::optional<std::uint32_t> pasid, Domain* domain) override;

private:
    // What the driver keeps per device (its arm_smmu_master): what the
    // RID is attached to, which SSIDs have a CD, and the CD table once a
    // stage-1 domain needed one.
    struct Stream {
        const SmmuPaging* rid = nullptr;
        std::set<std::uint32_t> ssids; // PASIDs attached, never 0
        std::unique_ptr<CdTable> cds;
        [[nodiscard]] bool cd_table_in_ste() const
        {
            return (rid && rid->stage() == Stage::s1) || !ssids.empty();
        }
    };
    [[nodiscard]] bool endpoint_dirty_tracking(const Endpoint& endpoint) const;
    [[nodiscard]] CdTable* cd_table_for(Endpoint& endpoint, Stream& stream); // under streams_lock_
    void write_ste(Endpoint& endpoint, Stream& stream);                     // under streams_lock_

    SmmuConfig config_;
    SmmuRegisters regs_;
    SmmuFeatures features_;
    TableMemory tables_;     // the domains' page tables
    TableMemory structures_; // the stream table and the CD tables
    IdAllocator asids_;
    IdAllocator vmids_;
    // Attachments of devices of different contexts are programmed at the
    // same time; this guards the streams and the tables they write, inside
    // the unit's own lock.
    mutable std::mutex streams_lock_;
    StreamTable streams_;
    std::map<const Endpoint*, Stream> stream_state_;
};

// The `family = "smmuv3"` entry of a topology: keys stages ("s1", "s2",
// "both"), oas, vax, va_bits, granules ("4K,16K,64K" or any subset),
// ssid_bits, sid_bits, httu ("none", "ha", "hd"), coherent,
// two_level_stream_table, two_level_cd_table.
// Throws UnitParamError naming the key of a bad or contradictory value.
std::unique_ptr<Unit> create_smmuv3_unit(const std::string& name, UnitParams& params, memory::PhysSpace& phys);

} // namespace ioasid::hw::smmuv3
