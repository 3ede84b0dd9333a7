// The IOVA side of an IOAS: its areas, reserved and allowed ranges and
// alignment, with the rules of the kernel's io_pagetable.
#pragma once

#include <boost/intrusive/set.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <vector>

#include "area.h"
#include "hwmodels/common/domain.h"
#include "iova.h"
#include "iova_free_space.h"

namespace ioasid::core {

// Something other than a page table that pins pages of this IOAS (the
// kernel's iommufd_access). It is told when an area it may hold pins in is
// about to be unmapped, and must drop those pins.
class PinHolder {
public:
    virtual ~PinHolder() = default;
    virtual void unmap_notify(IovaRange range) = 0;
    [[nodiscard]] virtual std::uint64_t iova_alignment() const { return 1; }
};

class IoPagetable {
public:
    IoPagetable();
    ~IoPagetable();
    IoPagetable(const IoPagetable&) = delete;
    IoPagetable& operator=(const IoPagetable&) = delete;

    // Places `slices` back to back at *iova (or at an IOVA chosen here when
    // `alloc_iova`, written to *iova). Errors as IOMMU_IOAS_MAP gives them
    // after the lookup of its IOAS.
    [[nodiscard]] int map_pages(std::span<const PagesSlice> slices, std::uint64_t length,
                                std::uint64_t* iova, bool readable, bool writable, bool alloc_iova);
    // The slices behind [iova, iova + length), which contiguous areas must
    // cover completely (-ENOENT otherwise).
    [[nodiscard]] int get_pages(std::uint64_t iova, std::uint64_t length,
                                std::vector<PagesSlice>* out) const;

    // Removes every area inside [first, last]; an area sticking out of it
    // stops the walk with -ENOENT, leaving what was removed removed.
    // *unmapped gets the bytes removed, also on error.
    [[nodiscard]] int unmap_range(IovaRange range, std::uint64_t* unmapped);
    // Splits the area holding each IOVA of `iovas` so that the IOVA is the
    // last of one area, which lets VFIO type1 unmap part of a mapping (the
    // kernel's iopt_cut_iova()). Stops at the first split refused: -EBUSY
    // for an area being unmapped, -EINVAL for a point off the IOVA
    // alignment, an area with access pins, or one domains may hold in
    // large leaves. Cuts already made stay.
    [[nodiscard]] int cut(std::span<const std::uint64_t> iovas);

    // IOMMU_IOAS_ALLOW_IOVAS after decoding: replaces the allowed list.
    [[nodiscard]] int set_allowed(std::vector<IovaRange> allowed);
    // Reserved ranges: nothing may be mapped or allowed there. An owner
    // (device, domain) takes its ranges back with remove_reserved().
    [[nodiscard]] int reserve(IovaRange range, const void* owner);
    void remove_reserved(const void* owner);
    // The holes of the reserved set over the whole 64-bit space.
    void for_each_usable_range(const std::function<void(IovaRange)>& fn) const;

    [[nodiscard]] std::uint64_t iova_alignment() const { return iova_alignment_; }
    [[nodiscard]] bool large_pages() const { return !disable_large_pages_; }
    [[nodiscard]] int disable_large_pages();
    void enable_large_pages();

    // Domains (the page tables of HWPTs) mirror every area. Adding one
    // fills it with every area, pinning pages when it is the first: errors
    // as iopt_table_add_domain() gives them (-EINVAL for a page size above
    // 4 KiB, -EADDRINUSE for areas outside its aperture or misaligned,
    // -EFAULT/-ENOMEM from pinning, -ENOMEM for table memory).
    [[nodiscard]] int add_domain(hw::Domain& domain);
    void remove_domain(hw::Domain& domain);
    [[nodiscard]] bool has_domains() const { return !domains_.empty(); }
    [[nodiscard]] std::span<hw::Domain* const> domains() const { return domains_; }

    // Pins for a PinHolder; -ENOENT unless contiguous areas cover the range,
    // -EPERM for a write pin on an area mapped without WRITEABLE.
    [[nodiscard]] int add_holder(PinHolder& holder);
    void remove_holder(PinHolder& holder);
    [[nodiscard]] int pin(IovaRange range, bool write, std::vector<std::uint64_t>* phys_pages);
    void unpin(IovaRange range);
    // Copies to or from the memory behind [iova, iova + data.size()).
    [[nodiscard]] int rw(std::uint64_t iova, std::span<std::byte> data, bool write) const;

    [[nodiscard]] std::size_t area_count() const { return areas_.size(); }
    void for_each_area(const std::function<void(const Area&)>& fn) const;
    [[nodiscard]] const Area* find_area(std::uint64_t iova) const;
    [[nodiscard]] std::size_t free_range_count() const { return free_.range_count(); }

private:
    using AreaSet = boost::intrusive::set<Area>;
    struct Reserved {
        IovaRange range;
        const void* owner;
    };

    [[nodiscard]] AreaSet::const_iterator first_area_in(IovaRange range) const;
    [[nodiscard]] AreaSet::iterator first_area_in(IovaRange range);
    [[nodiscard]] bool area_intersects(IovaRange range) const;
    [[nodiscard]] bool reserved_intersects(IovaRange range) const;
    [[nodiscard]] bool allowed_intersects(IovaRange range) const;
    [[nodiscard]] int alloc_iova(std::uint64_t* iova, std::uint64_t uptr, std::uint64_t length) const;
    [[nodiscard]] int check_iova(std::uint64_t iova, std::uint64_t length) const;
    [[nodiscard]] int calculate_iova_alignment();
    void remove_area(Area& area);
    [[nodiscard]] int split_area(Area& area, std::uint64_t iova);
    [[nodiscard]] int fill_area(Area& area);
    void unfill_area(Area& area);
    [[nodiscard]] int map_area(const Area& area, hw::Domain& domain) const;
    [[nodiscard]] int check_alignment(std::uint64_t alignment) const;
    void rebuild_windows_and_free_space();
    void release_into_windows(IovaRange range);

    AreaSet areas_;
    std::multimap<std::uint64_t, Reserved> reserved_; // by first; few, may overlap
    std::vector<IovaRange> allowed_;                  // sorted, disjoint
    std::vector<IovaRange> windows_;                  // where automatic IOVAs may go
    IovaFreeSpace free_;
    std::vector<PinHolder*> holders_;
    std::vector<hw::Domain*> domains_;
    std::uint64_t iova_alignment_ = 1;
    bool disable_large_pages_ = false;
};

} // namespace ioasid::core
