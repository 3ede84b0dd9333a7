// A paging domain of a POWER PE: both DMA windows, each with its own TCE
// table and page size, behind one iommu_domain. The aperture runs from 0
// to the last byte of the 64-bit window; what lies between and below the
// windows is the device's reserved region (TceUnit::reserved_regions()),
// so an IOAS holding such a domain can only map inside the windows.
#pragma once

#include <array>
#include <cstdint>

#include "hwmodels/common/domain.h"
#include "tce_table.h"

namespace ioasid::hw::ppc_tce {

class TceDomain final : public Domain {
public:
    // Why the last lookup() found nothing: the PHB knows which of its
    // checks failed, and the unit's fault code says so.
    // Call init() before use.
    TceDomain(Unit& unit, DomainRequest request, TableMemory& memory, const WindowConfig& dma32,
              const WindowConfig& dma64);

    [[nodiscard]] int init();
    [[nodiscard]] const TceTable& window(unsigned number) const { return tables_[number]; }

    // -EINVAL unless [iova, iova + length) lies in one window and iova, pa
    // and length are multiples of its page, with leaves that large allowed
    // (what a driver's map_pages() refuses, as iommu_tce_check_ioba() and
    // iommu_tce_check_gpa() do for the VFIO sPAPR path).
    int map(std::uint64_t iova, std::uint64_t pa, std::uint64_t length, Prot prot, std::uint64_t max_leaf) override;
    void unmap(std::uint64_t iova, std::uint64_t length) override;
    Translation lookup(std::uint64_t iova) const override;
    // TCEs have no accessed or dirty bits.
    void note_use(std::uint64_t, Access) override {}
    void read_and_clear_dirty(std::uint64_t, std::uint64_t, bool,
                              const std::function<void(std::uint64_t, std::uint64_t)>&) override
    {
    }

    std::string_view format_name() const override { return "ppc-tce"; }
    // The 32-bit window's table; the dump walks both.
    std::uint64_t root_pa() const override { return tables_[0].root(); }
    unsigned levels() const override { return tables_[0].window().levels; }
    void dump(const std::function<void(const DumpEntry&)>& fn) const override;

private:
    [[nodiscard]] TceTable* window_of(std::uint64_t first, std::uint64_t last);

    std::array<TceTable, 2> tables_;
};

} // namespace ioasid::hw::ppc_tce
