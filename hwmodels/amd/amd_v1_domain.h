// An AMD-Vi host ("v1") page table as a paging domain: the table an
// iommufd paging domain of an AMD unit is on Linux 6.12. Its shape is the
// driver's (drivers/iommu/amd/io_pgtable.c): three levels at first, a new
// root on top whenever a mapping needs more, any power-of-two page size,
// sizes between two levels' natural ones written as NextLevel-7 entries
// repeated across the slots they cover. The walk is the hardware's, which
// also follows level skips the driver never writes.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "amd_v1_format.h"
#include "hwmodels/common/domain.h"
#include "hwmodels/common/table_memory.h"

namespace ioasid::hw::amd {

class V1Domain final : public Domain {
public:
    // `hardware_levels` is what the unit walks (EFR.HATS); the driver grows
    // the table without looking at it. Call init() before use.
    V1Domain(Unit& unit, DomainRequest request, TableMemory& memory, unsigned hardware_levels);
    ~V1Domain() override;

    [[nodiscard]] int init();
    // What do_iommu_domain_alloc() gives a v1 domain: the whole 64-bit
    // space (dma_max_address()) and AMD_IOMMU_PGSIZES.
    [[nodiscard]] static Geometry geometry();

    // The table depth, which the device table entry's Mode field holds.
    [[nodiscard]] unsigned mode() const { return mode_; }
    // Whether the hardware can walk a table this deep.
    [[nodiscard]] bool walkable() const { return mode_ <= hardware_levels_; }

    // Splits the range into the largest pages AMD_IOMMU_PGSIZES, the
    // alignment and `max_leaf` allow, as iommu_map() does, and maps each.
    int map(std::uint64_t iova, std::uint64_t pa, std::uint64_t length, Prot prot,
            std::uint64_t max_leaf) override;
    // One page of a size in AMD_IOMMU_PGSIZES, aligned: iommu_v1_map_pages()
    // with one page. -EINVAL without permission, -ENOMEM when a table
    // cannot be allocated or the table would need a seventh level.
    [[nodiscard]] int map_page(std::uint64_t iova, std::uint64_t pa, std::uint64_t size, Prot prot);
    void unmap(std::uint64_t iova, std::uint64_t length) override;
    Translation lookup(std::uint64_t iova) const override;
    void note_use(std::uint64_t iova, Access access) override;
    void read_and_clear_dirty(std::uint64_t iova, std::uint64_t length, bool clear,
                              const std::function<void(std::uint64_t, std::uint64_t)>& record) override;

    std::string_view format_name() const override { return "amd-v1"; }
    std::uint64_t root_pa() const override { return root_; }
    unsigned levels() const override { return mode_; }
    void dump(const std::function<void(const DumpEntry&)>& fn) const override;

private:
    struct Walk {
        std::uint64_t* leaf = nullptr; // the slot the walk ended in
        std::uint64_t page_size = 0;
        Prot prot;
    };
    // The hardware's walk for `iova`.
    [[nodiscard]] Walk walk(std::uint64_t iova) const;
    // The driver's fetch_pte(): the first slot of the page holding `iova`
    // (nullptr if none) and in *size the page size, or the size of the
    // hole the walk found (0 beyond the table).
    [[nodiscard]] std::uint64_t* fetch(std::uint64_t iova, std::uint64_t* size) const;
    // fetch() over [first, last]: fn(first_slot, page_iova, page_size) for
    // each page met, in IOVA order; holes are skipped.
    template <typename Fn>
    void for_each_page(std::uint64_t first, std::uint64_t last, Fn&& fn);
    // Frees the tables below an entry with NextLevel `next_level`.
    void free_tables(std::uint64_t table_pa, unsigned next_level);
    void dump_table(std::uint64_t table_pa, unsigned level, std::uint64_t base,
                    const std::function<void(const DumpEntry&)>& fn) const;

    TableMemory& memory_;
    unsigned hardware_levels_;
    std::uint64_t root_ = 0;
    unsigned mode_ = 3; // v1_alloc_pgtable(): PAGE_MODE_3_LEVEL
};

} // namespace ioasid::hw::amd
