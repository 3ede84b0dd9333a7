// Values every IOMMU family shares: access kinds, permissions, faults and
// what a unit tells userspace about itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ioasid::hw {

// An inclusive range of IO virtual addresses, as the iommufd uAPI uses them.
struct Span {
    std::uint64_t first;
    std::uint64_t last;
    friend bool operator==(const Span&, const Span&) = default;
};

enum class Access : std::uint8_t { read, write };

struct Prot {
    bool read = false;
    bool write = false;
    [[nodiscard]] bool allows(Access access) const { return access == Access::read ? read : write; }
    friend bool operator==(const Prot&, const Prot&) = default;
};

// No PASID: the request carries only the requester id (RID).
inline constexpr std::optional<std::uint32_t> kNoPasid = std::nullopt;

// Why a DMA stopped. Each family also reports its own code for the same
// event (`Fault::hw_code`), the number its fault records would carry.
enum class FaultReason : std::uint8_t {
    blocked,       // nothing is attached to the (device, PASID)
    pasid_range,   // the PASID is beyond what the device or unit supports
    address_size,  // the IOVA is outside the domain's input range
    not_present,   // no translation for the IOVA
    permission,    // the translation forbids this access
};

[[nodiscard]] const char* to_string(FaultReason reason);

struct Fault {
    std::uint64_t iova = 0;
    std::optional<std::uint32_t> pasid;
    Access access = Access::read;
    FaultReason reason = FaultReason::blocked;
    std::uint32_t hw_code = 0;
};

// What IOMMU_GET_HW_INFO reports for a device.
struct HwInfo {
    std::uint32_t type = 0;          // enum iommu_hw_info_type
    std::vector<std::byte> data;     // the family's struct, little-endian
    std::uint64_t capabilities = 0;  // enum iommufd_hw_capabilities
    std::uint8_t max_pasid_log2 = 0; // 0: no PASID
};

// How a paging domain was asked for (IOMMU_HWPT_ALLOC flags that reach the
// hardware).
struct DomainRequest {
    bool nest_parent = false;
    bool dirty_tracking = false;
    bool pasid = false; // may be attached to a PASID
};

// What a domain accepts: the kernel's iommu_domain geometry.
struct Geometry {
    Span aperture{0, 0};
    std::uint64_t pgsize_bitmap = 0;
    [[nodiscard]] std::uint64_t min_page() const { return pgsize_bitmap & (~pgsize_bitmap + 1); }
};

// One line of a page-table dump: an entry as the hardware reads it.
struct DumpEntry {
    unsigned level = 0;          // 0 is the last level
    unsigned index = 0;          // in its table
    std::uint64_t table_pa = 0;  // the table holding the entry
    std::uint64_t iova = 0;      // first IOVA the entry covers
    std::uint64_t size = 0;      // bytes it covers
    std::uint64_t raw = 0;
    bool leaf = false;
    std::string fields;          // decoded, in the specification's names
};

} // namespace ioasid::hw
