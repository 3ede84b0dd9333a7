// The virtio-iommu device's interface as the virtio specification (1.2+,
// "IOMMU device") and Linux's include/uapi/linux/virtio_iommu.h define
// it: feature bits, configuration space, the request and probe-property
// layouts, status codes and fault records. Multi-byte fields are
// little-endian on the wire, as on the host.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ioasid::hw::virtio {

// Feature bits (VIRTIO_IOMMU_F_*).
namespace feature {
inline constexpr unsigned kInputRange = 0;
inline constexpr unsigned kDomainRange = 1;
inline constexpr unsigned kMapUnmap = 2;
inline constexpr unsigned kBypass = 3; // superseded by kBypassConfig; never offered
inline constexpr unsigned kProbe = 4;
inline constexpr unsigned kMmio = 5;
inline constexpr unsigned kBypassConfig = 6;
} // namespace feature

struct Config {
    std::uint64_t page_size_mask;
    std::uint64_t input_start;
    std::uint64_t input_end;
    std::uint32_t domain_start;
    std::uint32_t domain_end;
    std::uint32_t probe_size;
    std::uint8_t bypass;
    std::uint8_t reserved[3];
};
static_assert(sizeof(Config) == 40);

enum class ReqType : std::uint8_t { attach = 1, detach = 2, map = 3, unmap = 4, probe = 5 };

enum class Status : std::uint8_t {
    ok = 0,
    ioerr = 1,
    unsupp = 2,
    deverr = 3,
    inval = 4,
    range = 5,
    noent = 6,
    fault = 7,
    nomem = 8,
};

struct ReqHead {
    std::uint8_t type;
    std::uint8_t reserved[3];
};
struct ReqTail {
    std::uint8_t status;
    std::uint8_t reserved[3];
};

inline constexpr std::uint32_t kAttachBypass = 1u << 0; // VIRTIO_IOMMU_ATTACH_F_BYPASS

struct ReqAttach {
    ReqHead head;
    std::uint32_t domain;
    std::uint32_t endpoint;
    std::uint32_t flags;
    std::uint8_t reserved[4];
    ReqTail tail;
};
static_assert(sizeof(ReqAttach) == 24);

struct ReqDetach {
    ReqHead head;
    std::uint32_t domain;
    std::uint32_t endpoint;
    std::uint8_t reserved[8];
    ReqTail tail;
};
static_assert(sizeof(ReqDetach) == 24);

inline constexpr std::uint32_t kMapRead = 1u << 0;
inline constexpr std::uint32_t kMapWrite = 1u << 1;
inline constexpr std::uint32_t kMapMmio = 1u << 2;

struct ReqMap {
    ReqHead head;
    std::uint32_t domain;
    std::uint64_t virt_start;
    std::uint64_t virt_end; // inclusive
    std::uint64_t phys_start;
    std::uint32_t flags;
    ReqTail tail;
};
static_assert(sizeof(ReqMap) == 40 && offsetof(ReqMap, virt_start) == 8);

struct ReqUnmap {
    ReqHead head;
    std::uint32_t domain;
    std::uint64_t virt_start;
    std::uint64_t virt_end; // inclusive
    std::uint8_t reserved[4];
    ReqTail tail;
};
static_assert(sizeof(ReqUnmap) == 32);

// The device-readable part of a PROBE; `probe_size` bytes of properties
// and the tail follow it.
struct ReqProbe {
    ReqHead head;
    std::uint32_t endpoint;
    std::uint8_t reserved[64];
};
static_assert(sizeof(ReqProbe) == 72);

inline constexpr std::uint16_t kProbeNone = 0;
inline constexpr std::uint16_t kProbeResvMem = 1;
inline constexpr std::uint16_t kProbeTypeMask = 0xfff;

struct ProbeProperty {
    std::uint16_t type;   // bits 11:0; 15:12 reserved
    std::uint16_t length; // of what follows this header
};

inline constexpr std::uint8_t kResvReserved = 0; // VIRTIO_IOMMU_RESV_MEM_T_RESERVED
inline constexpr std::uint8_t kResvMsi = 1;      // VIRTIO_IOMMU_RESV_MEM_T_MSI

struct ProbeResvMem {
    ProbeProperty head;
    std::uint8_t subtype;
    std::uint8_t reserved[3];
    std::uint64_t start;
    std::uint64_t end; // inclusive
};
static_assert(sizeof(ProbeResvMem) == 24 && offsetof(ProbeResvMem, start) == 8);

// Fault records of the event queue (struct virtio_iommu_fault).
inline constexpr std::uint8_t kFaultUnknown = 0;
inline constexpr std::uint8_t kFaultDomain = 1;  // the endpoint is attached to no domain
inline constexpr std::uint8_t kFaultMapping = 2; // no mapping, or not with these permissions
inline constexpr std::uint32_t kFaultRead = 1u << 0;
inline constexpr std::uint32_t kFaultWrite = 1u << 1;
inline constexpr std::uint32_t kFaultExec = 1u << 2;
inline constexpr std::uint32_t kFaultAddress = 1u << 8; // `address` is valid

} // namespace ioasid::hw::virtio
