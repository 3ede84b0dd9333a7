// Views of the emulated hardware for people: the topology (units and
// devices of the status report), page-table dumps, hexdumps of DMA, VT-d
// SMMUv3 and AMD registers, dirty bitmaps. Pure functions of what the daemon
// answered, so the unit tests cover them without a daemon.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <ioasid/iommufd.h>
#include <nlohmann/json.hpp>

namespace ioasid::ctl {

// A requester id as PCI writes it: "00:03.0" (bus:device.function).
[[nodiscard]] std::string rid_text(std::uint32_t rid);

// The "hardware" section of a status report, each device with its RID as
// "bdf", its node ("/dev/vfio/devices/vfio2") and "state": "free",
// "bound-here" (with "dev", its id in the context `report` was asked for)
// or "bound" (with "context", the owner's id).
[[nodiscard]] nlohmann::ordered_json topology_view(const nlohmann::ordered_json& report);
// Two tables: units with their IOTLB counters, devices with their state.
[[nodiscard]] std::string render_topology(const nlohmann::ordered_json& view);
// One line per unit ("unit vtd0  family vtd  iotlb hits 3  misses 1 ..."),
// for `status`; empty when the report has no hardware section.
[[nodiscard]] std::string render_units(const nlohmann::ordered_json& report);

// An IOASID_EMU_PT_DUMP answer: a header line, then one line per entry,
// indented by its depth: level, index, IOVA range, raw entry, fields.
[[nodiscard]] std::string render_pt_dump(const nlohmann::ordered_json& dump);

// hexdump -C, addressed from `base`; runs of identical lines become "*".
[[nodiscard]] std::string hexdump(std::uint64_t base, std::span<const std::uint8_t> bytes);
[[nodiscard]] std::string hex_bytes(std::span<const std::uint8_t> bytes);

// enum ioasid_emu_fault_reason: "not-present", ... and a sentence.
[[nodiscard]] std::string fault_reason_name(std::uint32_t reason);
[[nodiscard]] std::string fault_reason_text(std::uint32_t reason);

// The few CAP_REG / ECAP_REG fields of VT-d worth seeing at a glance.
// JSON: {"cap": {"SAGAW": ..}, "ecap": {...}}; text: two lines.
[[nodiscard]] nlohmann::ordered_json decode_vtd(std::uint64_t cap, std::uint64_t ecap);
[[nodiscard]] std::string render_vtd(std::uint64_t cap, std::uint64_t ecap);
// The same for an SMMUv3 (IDR0-5, IIDR, AIDR: {"IDR0": {"ST_LEVEL": ..}})
// and an AMD IOMMU (EFR, EFR2); text: one line per register.
[[nodiscard]] nlohmann::ordered_json decode_smmuv3(const iommu_hw_info_arm_smmuv3& info);
[[nodiscard]] std::string render_smmuv3(const iommu_hw_info_arm_smmuv3& info);
[[nodiscard]] nlohmann::ordered_json decode_amd(const iommu_hw_info_amd& info);
[[nodiscard]] std::string render_amd(const iommu_hw_info_amd& info);

// A dirty bitmap as runs of consecutive dirty pages.
struct DirtyRun {
    std::uint64_t iova;  // first byte
    std::uint64_t pages;
};
[[nodiscard]] std::vector<DirtyRun> dirty_runs(std::span<const std::uint64_t> bitmap, std::uint64_t nbits,
                                               std::uint64_t iova, std::uint64_t page_size);

} // namespace ioasid::ctl
