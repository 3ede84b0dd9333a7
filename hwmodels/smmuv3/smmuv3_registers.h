// The identification registers of an emulated Arm SMMUv3 (IDR0-IDR5, IIDR,
// AIDR; SMMUv3 architecture specification, 6.3) built from a topology
// config, and what the Linux 6.12 driver derives from them in
// arm_smmu_device_hw_probe(): stages, granules, address sizes, table
// layouts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ioasid::hw::smmuv3 {

// A register field: bits hi..lo.
struct Field {
    unsigned hi;
    unsigned lo;
    [[nodiscard]] constexpr std::uint32_t mask() const { return ((1u << (hi - lo)) << 1) - 1; }
    [[nodiscard]] constexpr std::uint32_t get(std::uint32_t reg) const { return (reg >> lo) & mask(); }
    [[nodiscard]] constexpr std::uint32_t put(std::uint32_t value) const { return (value & mask()) << lo; }
};

namespace idr0 {
inline constexpr Field S2P{0, 0};
inline constexpr Field S1P{1, 1};
inline constexpr Field TTF{3, 2};       // 2: AArch64 tables only
inline constexpr Field COHACC{4, 4};
inline constexpr Field HTTU{7, 6};      // 1: access flag, 2: access flag and dirty state
inline constexpr Field ATS{10, 10};
inline constexpr Field ASID16{12, 12};
inline constexpr Field MSI{13, 13};
inline constexpr Field VMID16{18, 18};
inline constexpr Field CD2L{19, 19};
inline constexpr Field TTENDIAN{22, 21}; // 2: little-endian
inline constexpr Field STALL_MODEL{25, 24};
inline constexpr Field ST_LEVEL{28, 27}; // 1: two-level stream table
} // namespace idr0

namespace idr1 {
inline constexpr Field SIDSIZE{5, 0};
inline constexpr Field SSIDSIZE{10, 6};
inline constexpr Field PRIQS{15, 11};
inline constexpr Field EVTQS{20, 16};
inline constexpr Field CMDQS{25, 21};
inline constexpr Field ATTR_TYPES_OVR{27, 27};
} // namespace idr1

namespace idr3 {
inline constexpr Field RIL{10, 10};
} // namespace idr3

namespace idr5 {
inline constexpr Field OAS{2, 0};
inline constexpr Field GRAN4K{4, 4};
inline constexpr Field GRAN16K{5, 5};
inline constexpr Field GRAN64K{6, 6};
inline constexpr Field VAX{11, 10}; // 1: 52-bit stage-1 input
} // namespace idr5

// Page and block sizes of the three VMSAv8-64 granules, which the driver
// and io-pgtable-arm both spell out (SZ_4K | SZ_2M | SZ_1G, ...).
namespace sizes {
inline constexpr std::uint64_t k4K = 1ULL << 12, k2M = 1ULL << 21, k1G = 1ULL << 30;
inline constexpr std::uint64_t k16K = 1ULL << 14, k32M = 1ULL << 25;
inline constexpr std::uint64_t k64K = 1ULL << 16, k512M = 1ULL << 29;
inline constexpr std::uint64_t k4T = 1ULL << 42; // 64K granule, level 1, with a 52-bit OAS
} // namespace sizes

enum class Httu : std::uint8_t { none = 0, access = 1, access_dirty = 2 };

struct SmmuConfig {
    bool stage1 = true;
    bool stage2 = true;
    unsigned oas = 48;            // output address size: 32 36 40 42 44 48 52
    bool vax = false;             // 52-bit stage-1 input (IDR5.VAX)
    unsigned va_bits = 48;        // the CPU's VA_BITS, which caps a stage-1 input
    bool gran4k = true;
    bool gran16k = true;
    bool gran64k = true;
    unsigned ssid_bits = 20;      // IDR1.SSIDSIZE
    unsigned sid_bits = 16;       // IDR1.SIDSIZE
    Httu httu = Httu::access_dirty;
    bool coherent = true;         // IDR0.COHACC and the firmware's dma-coherent
    bool two_level_stream_table = true; // IDR0.ST_LEVEL
    bool two_level_cd_table = true;     // IDR0.CD2L
};

struct ConfigProblem {
    std::string key;
    std::string message;
};
// What makes a config one no SMMU (or no driver) would have.
[[nodiscard]] std::optional<ConfigProblem> check_config(const SmmuConfig& config);

struct SmmuRegisters {
    std::uint32_t idr[6] = {};
    std::uint32_t iidr = 0;
    std::uint32_t aidr = 0;
};

[[nodiscard]] SmmuRegisters build_registers(const SmmuConfig& config);

// What arm_smmu_device_hw_probe() reads out of the registers.
struct SmmuFeatures {
    bool stage1 = false;
    bool stage2 = false;
    bool nesting = false;          // ARM_SMMU_FEAT_NESTING: both stages
    bool hd = false;               // ARM_SMMU_FEAT_HD
    bool coherent = false;
    bool two_level_stream_table = false;
    bool two_level_cd_table = false;
    bool attr_types_ovr = false;
    bool vax = false;
    unsigned ias = 0;              // max(ias, oas); AArch64-only TTF adds nothing
    unsigned oas = 0;
    unsigned sid_bits = 0;
    unsigned ssid_bits = 0;
    unsigned asid_bits = 0;
    unsigned vmid_bits = 0;
    std::uint64_t pgsize_bitmap = 0; // every granule's page and block sizes
};

[[nodiscard]] SmmuFeatures probe(const SmmuRegisters& regs);

// arm_smmu_dbm_capable(): hardware dirty-state update and a coherent walk.
[[nodiscard]] inline bool dbm_capable(const SmmuFeatures& f)
{
    return f.hd && f.coherent;
}

} // namespace ioasid::hw::smmuv3
