// One IO page table of a unit, in the unit's hardware format: what the
// kernel calls an iommu_domain. The core fills it from IOAS areas; the
// unit walks it when a device attached to it does DMA.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "types.h"

namespace ioasid::hw {

class Unit;

// A translation as the table holds it, without the IOTLB.
struct Translation {
    bool present = false;
    std::uint64_t page_iova = 0;
    std::uint64_t page_size = 0;
    std::uint64_t page_pa = 0;
    Prot prot;
    bool dirty = false;
};

class Domain {
public:
    Domain(Unit& unit, DomainRequest request, Geometry geometry);
    // Drops whatever the unit still caches for it.
    virtual ~Domain();
    Domain(const Domain&) = delete;
    Domain& operator=(const Domain&) = delete;

    [[nodiscard]] Unit& unit() const { return unit_; }
    // The hardware's name for this domain (VT-d's domain id); the IOTLB
    // tags entries with it.
    [[nodiscard]] std::uint32_t tag() const { return tag_; }
    [[nodiscard]] const DomainRequest& request() const { return request_; }
    [[nodiscard]] const Geometry& geometry() const { return geometry_; }

    // Maps [iova, iova + length) to the physical range at `pa`, with leaves
    // no larger than `max_leaf`. Everything is aligned to min_page(); the
    // range lies in the aperture and is not mapped yet. -ENOMEM when table
    // memory runs out; the caller then unmaps what it mapped.
    [[nodiscard]] virtual int map(std::uint64_t iova, std::uint64_t pa, std::uint64_t length, Prot prot,
                                  std::uint64_t max_leaf) = 0;
    // Removes the translations of [iova, iova + length) and invalidates the
    // IOTLB for them, as a driver's unmap and iotlb_sync do together.
    virtual void unmap(std::uint64_t iova, std::uint64_t length) = 0;
    [[nodiscard]] virtual Translation lookup(std::uint64_t iova) const = 0;

    // What the hardware does to the leaf it used: sets accessed and, for a
    // write while dirty tracking is on, dirty. Under the owner's lock.
    virtual void note_use(std::uint64_t iova, Access access) = 0;

    // -EOPNOTSUPP unless the domain was allocated for dirty tracking.
    [[nodiscard]] int set_dirty_tracking(bool enable);
    [[nodiscard]] bool dirty_tracking() const { return dirty_tracking_; }
    // Calls record(iova, size) for each dirty leaf in [iova, iova + length)
    // and, when `clear`, clears its dirty bit and invalidates the IOTLB
    // entries of that leaf so the next write sets the bit again.
    virtual void read_and_clear_dirty(std::uint64_t iova, std::uint64_t length, bool clear,
                                      const std::function<void(std::uint64_t, std::uint64_t)>& record) = 0;

    [[nodiscard]] virtual std::string_view format_name() const = 0;
    [[nodiscard]] virtual std::uint64_t root_pa() const = 0;
    [[nodiscard]] virtual unsigned levels() const = 0;
    virtual void dump(const std::function<void(const DumpEntry&)>& fn) const = 0;

protected:
    void invalidate(Span range);

private:
    Unit& unit_;
    DomainRequest request_;
    Geometry geometry_;
    std::uint32_t tag_;
    bool dirty_tracking_ = false;
};

} // namespace ioasid::hw
