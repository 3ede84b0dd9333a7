// One device's context descriptor table in table memory (SMMUv3
// specification 3.4.3, 5.4): linear, or two-level with 1024-CD leaves, as
// the Linux 6.12 arm_smmu_alloc_cd_tables() chooses, and the stage-1
// context descriptor arm_smmu_make_s1_cd() writes for a domain.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "hwmodels/common/table_memory.h"

namespace ioasid::hw::smmuv3 {

class SmmuPaging;

// 64 bytes, as the hardware reads it.
using Cd = std::array<std::uint64_t, 8>;

namespace cd {
inline constexpr unsigned kTgShift = 6;    // TG0 7:6
inline constexpr unsigned kIrgnShift = 8;  // IRGN0 9:8
inline constexpr unsigned kOrgnShift = 10; // ORGN0 11:10
inline constexpr unsigned kShShift = 12;   // SH0 13:12
inline constexpr std::uint64_t kEpd1 = 1ULL << 30;
inline constexpr std::uint64_t kValid = 1ULL << 31;
inline constexpr unsigned kIpsShift = 32;  // IPS 34:32
inline constexpr std::uint64_t kAa64 = 1ULL << 41;
inline constexpr std::uint64_t kHd = 1ULL << 42;
inline constexpr std::uint64_t kHa = 1ULL << 43;
inline constexpr std::uint64_t kR = 1ULL << 45;
inline constexpr std::uint64_t kA = 1ULL << 46;
inline constexpr std::uint64_t kAset = 1ULL << 47;
inline constexpr unsigned kAsidShift = 48;
inline constexpr std::uint64_t kTtb0Mask = ((1ULL << 52) - 1) & ~((1ULL << 4) - 1); // 51:4
inline constexpr std::uint64_t kL1Valid = 1ULL << 0;
inline constexpr std::uint64_t kL1PtrMask = ((1ULL << 52) - 1) & ~((1ULL << 12) - 1); // 51:12
} // namespace cd

[[nodiscard]] Cd make_s1_cd(const SmmuPaging& domain);

class CdTable {
public:
    static constexpr unsigned kL2Bits = 10;    // CTXDESC_L2_ENTRIES: 1024 CDs, 64 KiB
    static constexpr unsigned kLinearMax = 10; // CTXDESC_LINEAR_CDMAX: 64 KiB of CDs

    // `ssid_bits`: the device's (S1CDMAX); `two_level`: IDR0.CD2L.
    CdTable(TableMemory& memory, unsigned ssid_bits, bool two_level);
    ~CdTable();
    CdTable(const CdTable&) = delete;
    CdTable& operator=(const CdTable&) = delete;

    [[nodiscard]] int init(); // -ENOMEM

    [[nodiscard]] std::uint64_t base() const { return base_; }
    [[nodiscard]] bool two_level() const { return two_level_; }
    [[nodiscard]] unsigned s1cdmax() const { return ssid_bits_; }

    // The CD of `ssid`; with `allocate`, its leaf table is made first.
    // nullptr where there is none.
    [[nodiscard]] std::uint64_t* cd(std::uint32_t ssid, bool allocate);
    [[nodiscard]] const std::uint64_t* cd(std::uint32_t ssid) const;
    void write(std::uint32_t ssid, const Cd& value);
    void clear(std::uint32_t ssid);

private:
    TableMemory& memory_;
    unsigned ssid_bits_;
    bool two_level_;
    std::uint64_t base_ = 0;
    std::vector<std::uint64_t> l2_; // per L1 entry: its leaf, 0 if none
};

} // namespace ioasid::hw::smmuv3
