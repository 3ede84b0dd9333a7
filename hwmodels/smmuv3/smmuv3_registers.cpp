#include "smmuv3_registers.h"

#include <algorithm>
#include <array>

namespace ioasid::hw::smmuv3 {
namespace {

// IDR5.OAS encodings, index = field value.
constexpr std::array<unsigned, 7> kOasBits{32, 36, 40, 42, 44, 48, 52};

// The identity we give: an Arm MMU-600 r2p0 (IIDR implementer 0x43b, the
// JEP106 code of Arm; product 0x483). The 6.12 driver's
// arm_smmu_device_iidr_probe() knows that part: its erratum workarounds
// apply to variant 0 (SEV) and below variant 2 (no nesting), so r2p0 keeps
// every feature the other registers claim.
constexpr std::uint32_t kIidr = (0x483u << 20) | (2u << 16) | (0u << 12) | 0x43bu;
// SMMUv3.1, which MMU-600 implements (AIDR.ArchMajorRev 0, ArchMinorRev 1).
constexpr std::uint32_t kAidr = 0x01;

// Queue sizes, log2 entries; the driver needs more than one batch of 64
// commands and caps both at 19 (CMDQ_MAX_SZ_SHIFT on 4 KiB pages).
constexpr std::uint32_t kQueueShift = 19;
// IDR0.STALL_MODEL 1: stalling faults are not supported.
constexpr std::uint32_t kStallNotSupported = 1;
constexpr std::uint32_t kTtfAArch64 = 2;
constexpr std::uint32_t kTtEndianLittle = 2;

} // namespace

std::optional<ConfigProblem> check_config(const SmmuConfig& c)
{
    if (!c.stage1 && !c.stage2)
        return ConfigProblem{"stages", "an SMMU needs at least one translation stage"};
    if (std::find(kOasBits.begin(), kOasBits.end(), c.oas) == kOasBits.end())
        return ConfigProblem{"oas", "oas must be one of 32, 36, 40, 42, 44, 48, 52"};
    // The arm64 kernel's VA_BITS choices.
    if (c.va_bits != 39 && c.va_bits != 42 && c.va_bits != 47 && c.va_bits != 48 && c.va_bits != 52)
        return ConfigProblem{"va_bits", "va_bits must be one of 39, 42, 47, 48, 52"};
    if (!c.gran4k && !c.gran16k && !c.gran64k)
        return ConfigProblem{"granules", "granules must name at least one of 4K, 16K, 64K"};
    if (c.ssid_bits > 20)
        return ConfigProblem{"ssid_bits", "ssid_bits must be between 0 and 20"};
    if (c.sid_bits > 32)
        return ConfigProblem{"sid_bits", "sid_bits must be between 0 and 32"};
    // A linear table of 2^sid_bits 64-byte STEs must fit one table allocation.
    if (!c.two_level_stream_table && c.sid_bits > 15)
        return ConfigProblem{"sid_bits", "a linear stream table holds at most 15 bits of stream id"};
    return std::nullopt;
}

SmmuRegisters build_registers(const SmmuConfig& c)
{
    SmmuRegisters r;
    r.idr[0] = idr0::S2P.put(c.stage2) | idr0::S1P.put(c.stage1) | idr0::TTF.put(kTtfAArch64) |
               idr0::COHACC.put(c.coherent) | idr0::HTTU.put(static_cast<std::uint32_t>(c.httu)) |
               idr0::ASID16.put(1) | idr0::MSI.put(1) | idr0::VMID16.put(1) |
               idr0::CD2L.put(c.two_level_cd_table) | idr0::TTENDIAN.put(kTtEndianLittle) |
               idr0::STALL_MODEL.put(kStallNotSupported) | idr0::ST_LEVEL.put(c.two_level_stream_table);
    r.idr[1] = idr1::SIDSIZE.put(c.sid_bits) | idr1::SSIDSIZE.put(c.ssid_bits) | idr1::EVTQS.put(kQueueShift) |
               idr1::CMDQS.put(kQueueShift) | idr1::ATTR_TYPES_OVR.put(1);
    const auto oas = static_cast<std::uint32_t>(std::find(kOasBits.begin(), kOasBits.end(), c.oas) - kOasBits.begin());
    r.idr[5] = idr5::OAS.put(oas) | idr5::GRAN4K.put(c.gran4k) | idr5::GRAN16K.put(c.gran16k) |
               idr5::GRAN64K.put(c.gran64k) | idr5::VAX.put(c.vax);
    r.iidr = kIidr;
    r.aidr = kAidr;
    return r;
}

SmmuFeatures probe(const SmmuRegisters& r)
{
    using namespace sizes;
    SmmuFeatures f;
    f.stage1 = idr0::S1P.get(r.idr[0]);
    f.stage2 = idr0::S2P.get(r.idr[0]);
    f.nesting = f.stage1 && f.stage2;
    f.hd = idr0::HTTU.get(r.idr[0]) == static_cast<std::uint32_t>(Httu::access_dirty);
    // The firmware's coherency (dma-coherent) wins over COHACC; ours agree.
    f.coherent = idr0::COHACC.get(r.idr[0]);
    f.two_level_cd_table = idr0::CD2L.get(r.idr[0]);
    f.asid_bits = idr0::ASID16.get(r.idr[0]) ? 16 : 8;
    f.vmid_bits = idr0::VMID16.get(r.idr[0]) ? 16 : 8;
    f.attr_types_ovr = idr1::ATTR_TYPES_OVR.get(r.idr[1]);
    f.ssid_bits = idr1::SSIDSIZE.get(r.idr[1]);
    f.sid_bits = idr1::SIDSIZE.get(r.idr[1]);
    // Fewer SID bits than one 256-STE second-level table covers: linear
    // (STRTAB_SPLIT is 8).
    f.two_level_stream_table = idr0::ST_LEVEL.get(r.idr[0]) == 1 && f.sid_bits > 8;
    if (idr5::GRAN64K.get(r.idr[5]))
        f.pgsize_bitmap |= k64K | k512M;
    if (idr5::GRAN16K.get(r.idr[5]))
        f.pgsize_bitmap |= k16K | k32M;
    if (idr5::GRAN4K.get(r.idr[5]))
        f.pgsize_bitmap |= k4K | k2M | k1G;
    f.vax = idr5::VAX.get(r.idr[5]) == 1;
    const std::uint32_t oas = idr5::OAS.get(r.idr[5]);
    // Unknown encodings are taken as 48 bits.
    f.oas = oas < kOasBits.size() ? kOasBits[oas] : 48;
    if (f.oas == 52)
        f.pgsize_bitmap |= k4T;
    f.ias = f.oas;
    return f;
}

} // namespace ioasid::hw::smmuv3
