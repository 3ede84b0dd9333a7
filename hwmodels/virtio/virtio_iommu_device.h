// The virtio-iommu device itself, the part a VMM would implement: its
// configuration space and features, the requests of its request queue
// with the specification's status codes, and the translation it does for
// an endpoint's DMA. It holds no page table: each domain is an interval
// map of the mappings MAP requests created, keyed by their first address.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "virtio_iommu_protocol.h"

namespace ioasid::hw::virtio {

struct ResvRegion {
    std::uint8_t subtype; // kResvReserved or kResvMsi
    std::uint64_t start;
    std::uint64_t end; // inclusive
};

struct DeviceConfig {
    // QEMU's default granule of 4 KiB, every larger size a hint.
    std::uint64_t page_size_mask = ~std::uint64_t{0xfff};
    // QEMU's default on x86 (aw-bits 39).
    std::uint64_t input_start = 0;
    std::uint64_t input_end = (std::uint64_t{1} << 39) - 1;
    std::uint32_t domain_start = 0;
    std::uint32_t domain_end = 0xffffffff;
    bool probe = true;
    std::uint32_t probe_size = 512; // QEMU's VIOMMU_PROBE_SIZE
    bool mmio = true;
    std::uint8_t bypass = 0;
    // What PROBE reports for every endpoint: x86's interrupt window as an
    // MSI region, as QEMU does on x86.
    std::vector<ResvRegion> resv{{kResvMsi, 0xfee00000, 0xfeefffff}};
};

class VirtioIommuDevice {
public:
    // `endpoint_exists` answers whether an endpoint id is behind this device.
    VirtioIommuDevice(DeviceConfig config, std::function<bool(std::uint32_t)> endpoint_exists);

    [[nodiscard]] const DeviceConfig& device_config() const { return config_; }
    // The offered feature bits, by their VIRTIO_IOMMU_F_* numbers.
    [[nodiscard]] std::uint64_t features() const;
    [[nodiscard]] Config config_space() const;

    // Each request sets tail.status and returns it.
    Status submit(ReqAttach& req);
    Status submit(ReqDetach& req);
    Status submit(ReqMap& req);
    Status submit(ReqUnmap& req);
    // Writes the endpoint's properties into `properties` (probe_size bytes,
    // the rest zeroed). Without the PROBE feature the buffer is left alone
    // (a zero used length) and the result is unsupp.
    Status submit(const ReqProbe& req, std::span<std::byte> properties, ReqTail& tail) const;

    // What one address of a domain translates to.
    struct Lookup {
        enum class Kind : std::uint8_t { no_domain, bypass, unmapped, mapped } kind = Kind::no_domain;
        std::uint64_t first = 0; // the mapping's range
        std::uint64_t last = 0;
        std::uint64_t phys = 0;  // where `first` goes
        std::uint32_t flags = 0;
    };
    [[nodiscard]] Lookup lookup_domain(std::uint32_t domain, std::uint64_t iova) const;
    // The same for an endpoint, through the domain it is attached to; an
    // endpoint attached nowhere bypasses when the config's bypass is 1.
    [[nodiscard]] Lookup lookup_endpoint(std::uint32_t endpoint, std::uint64_t iova) const;

    // Every mapping of a domain, in address order: fn(first, last, phys, flags).
    void for_each_mapping(std::uint32_t domain,
                          const std::function<void(std::uint64_t, std::uint64_t, std::uint64_t, std::uint32_t)>& fn) const;
    [[nodiscard]] bool domain_exists(std::uint32_t domain) const;

private:
    struct Mapping {
        std::uint64_t last;
        std::uint64_t phys;
        std::uint32_t flags;
    };
    struct DeviceDomain {
        bool bypass = false;
        std::uint32_t endpoints = 0;
        std::map<std::uint64_t, Mapping> mappings; // by first address; never overlapping
    };

    [[nodiscard]] bool domain_in_range(std::uint32_t domain) const;
    [[nodiscard]] std::uint64_t granule() const;
    // Drops the endpoint from its domain, and the domain with its last endpoint.
    void detach_locked(std::uint32_t endpoint);
    [[nodiscard]] Lookup lookup_in(const DeviceDomain& domain, std::uint64_t iova) const;

    DeviceConfig config_;
    std::function<bool(std::uint32_t)> endpoint_exists_;
    // Requests come from the contexts owning the domains and DMA from any
    // of them, at the same time; taken inside the unit's lock.
    mutable std::mutex lock_;
    std::unordered_map<std::uint32_t, DeviceDomain> domains_;
    std::unordered_map<std::uint32_t, std::uint32_t> attached_; // endpoint -> domain
};

} // namespace ioasid::hw::virtio
