// One emulated IOMMU: what every family offers the core. A family is a
// subclass that knows its formats and registers; this base holds what all
// of them share: the devices behind the unit, what each (device, PASID)
// is attached to, the IOTLB, and the DMA translation path.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "domain.h"
#include "iotlb.h"
#include "nested_domain.h"
#include "types.h"
#include "user_data.h"

namespace ioasid::hw {

struct EndpointConfig {
    std::string name;
    std::uint32_t rid = 0;       // requester (stream) id
    unsigned pasid_bits = 0;     // 0: the device sends no PASID
    bool dirty_tracking = true;  // the device can use dirty tracking if the unit has it
    bool huge_iova = false;      // domains allocated for it may use the unit's large pages
                                 // even where the unit does not offer them by default
};

// A device as the unit sees it.
class Endpoint {
public:
    explicit Endpoint(EndpointConfig config) : config_(std::move(config)) {}
    [[nodiscard]] const EndpointConfig& config() const { return config_; }
    [[nodiscard]] const std::string& name() const { return config_.name; }

private:
    friend class Unit;
    EndpointConfig config_;
    Domain* rid_domain_ = nullptr;             // nullptr: DMA is blocked
    std::map<std::uint32_t, Domain*> pasids_;  // attached PASIDs
};

// Where a translated piece of a DMA lands.
struct DmaRun {
    std::uint64_t pa;
    std::uint64_t length;
};

class Unit {
public:
    Unit(std::string name, std::string family, unsigned max_pasid_bits, std::uint64_t iotlb_page_sizes,
         std::size_t iotlb_capacity = 4096);
    virtual ~Unit();
    Unit(const Unit&) = delete;
    Unit& operator=(const Unit&) = delete;

    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] const std::string& family() const { return family_; }
    [[nodiscard]] unsigned max_pasid_bits() const { return max_pasid_bits_; }

    // Devices are added while the topology is built, before any client; a
    // unit whose devices come and go at run time (the selftest's mock
    // devices) is not walked through endpoints() then.
    Endpoint& add_endpoint(EndpointConfig config);
    // Takes a device away again: nothing may be attached to it any more.
    void remove_endpoint(const Endpoint& endpoint);
    [[nodiscard]] const std::vector<std::unique_ptr<Endpoint>>& endpoints() const { return endpoints_; }
    // The PASID width a device really gets: its own, capped by the unit's.
    [[nodiscard]] unsigned pasid_bits(const Endpoint& endpoint) const;

    // --- what each family defines ---
    [[nodiscard]] virtual HwInfo hw_info(const Endpoint& endpoint) const = 0;
    // A paging domain for `endpoint`: -EOPNOTSUPP for a request the unit or
    // device cannot honour (dirty tracking, nesting, PASID).
    [[nodiscard]] virtual int alloc_domain(const Endpoint& endpoint, const DomainRequest& request,
                                           std::unique_ptr<Domain>* out) = 0;
    // A nested domain over `parent` (a nest-parent paging domain of this
    // family) built from the client's `data`: -EOPNOTSUPP for a data type
    // the unit does not define, as for a unit that cannot nest at all.
    [[nodiscard]] virtual int alloc_nested_domain(const Endpoint& endpoint, Domain& parent, const UserData& data,
                                                  std::unique_ptr<NestedDomain>* out);
    // Whether the client owns the PASID tables (iommu_ops.user_pasid_table):
    // a page request for a PASID with no attachment of its own then goes to
    // a nested domain attached to the RID.
    [[nodiscard]] virtual bool user_pasid_table() const { return false; }
    // Whether `domain` may be attached to (endpoint, pasid): -EINVAL when the
    // two are incompatible (another unit, a width the device cannot use, a
    // dirty-tracking domain for a device that cannot track).
    [[nodiscard]] virtual int check_attach(const Endpoint& endpoint, std::optional<std::uint32_t> pasid,
                                           const Domain& domain) const;
    // IOVA ranges a device can never use for DMA (the MSI window on x86).
    [[nodiscard]] virtual std::vector<Span> reserved_regions(const Endpoint& endpoint) const;
    // The number the family's fault records give this reason.
    [[nodiscard]] virtual std::uint32_t fault_code(FaultReason reason, Access access) const;
    // The same for `fault` (all but its hw_code filled in) on a request of
    // `endpoint` that reached `domain` (nullptr: nothing attached).
    // translate() asks this one; a family whose codes depend on the table
    // format, the device, the PASID or the address overrides it. By
    // default it is the two-argument form.
    [[nodiscard]] virtual std::uint32_t fault_code(const Fault& fault, const Endpoint& endpoint,
                                                   const Domain* domain) const;

    // --- attachment: the context / PASID tables a driver would program ---
    // nullptr blocks DMA. Invalidates what the IOTLB caches for the old
    // attachment.
    void attach(Endpoint& endpoint, std::optional<std::uint32_t> pasid, Domain* domain);
    [[nodiscard]] Domain* attached(const Endpoint& endpoint, std::optional<std::uint32_t> pasid) const;

    // --- the DMA path ---
    // Translates [iova, iova + length) for `access` page by page through the
    // IOTLB and, on a miss, the table, appending physically contiguous runs
    // to *runs. Stops at the first page that faults and returns the fault;
    // the runs before it stay valid. The caller holds the lock of the
    // context that owns the attached domain.
    [[nodiscard]] std::optional<Fault> translate(Endpoint& endpoint, std::optional<std::uint32_t> pasid,
                                                 std::uint64_t iova, std::uint64_t length, Access access,
                                                 std::vector<DmaRun>* runs);

    // --- invalidation ---
    void invalidate(const Domain& domain, Span range);
    void invalidate_domain(const Domain& domain);
    [[nodiscard]] IotlbStats iotlb_stats() const;

    // Pages of the page tables the unit's domains hold now, not of the
    // unit's own structures (stream, context-descriptor, device or GCR3
    // tables): none once every domain is gone. What leak checks ask.
    [[nodiscard]] virtual std::uint64_t page_table_pages() const;

protected:
    // Called by attach(), under the unit's lock, once the attachment has
    // changed: a family writes the structures its driver would program for
    // it (stream table entry and context descriptor, device table entry).
    // The DMA path reads the attachment itself, as a cached copy of them.
    virtual void program_attachment(Endpoint& endpoint, std::optional<std::uint32_t> pasid, Domain* domain);

private:
    friend class Domain;
    [[nodiscard]] std::uint32_t next_domain_tag();

    std::string name_;
    std::string family_;
    unsigned max_pasid_bits_;
    std::vector<std::unique_ptr<Endpoint>> endpoints_;

    // Guards attachments and the IOTLB: devices of one unit may belong to
    // different contexts, which run at the same time.
    mutable std::mutex lock_;
    Iotlb iotlb_;
    std::uint32_t next_tag_ = 1;
};

} // namespace ioasid::hw
