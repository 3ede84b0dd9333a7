// An AMD-Vi guest ("v2") page table as a domain: x86-64 long-mode paging,
// 4 or 5 levels, as the Linux 6.12 amd driver builds it for DMA domains in
// v2 mode and as a process's tables are for SVA (io_pgtable_v2.c). The
// device reaches it through the GCR3 table, by PASID.
#pragma once

#include <cerrno>

#include "hwmodels/common/radix_domain.h"
#include "hwmodels/common/x86_page_table.h"

namespace ioasid::hw::amd {

class V2Domain final : public RadixDomain<X86PageTableFormat> {
public:
    V2Domain(Unit& unit, TableMemory& memory, unsigned levels)
        : RadixDomain(unit, DomainRequest{}, geometry(levels), memory, format(), levels, "amd-v2")
    {
    }

    // dma_max_address() for v2: the lower canonical half, so that the
    // domain behaves the same on PASID 0 and on any other;
    // AMD_IOMMU_PGSIZES_V2 (4 KiB, 2 MiB, 1 GiB).
    [[nodiscard]] static Geometry geometry(unsigned levels)
    {
        return {{0, (1ULL << (12 + 9 * levels - 1)) - 1}, (1ULL << 12) | (1ULL << 21) | (1ULL << 30)};
    }

    // iommu_v2_map_pages(): a mapping must allow something.
    int map(std::uint64_t iova, std::uint64_t pa, std::uint64_t length, Prot prot,
            std::uint64_t max_leaf) override
    {
        if (!prot.read && !prot.write)
            return -EINVAL;
        return RadixDomain::map(iova, pa, length, prot, max_leaf);
    }

private:
    // set_pte_attr() pre-sets A and D in every leaf, read-only ones too.
    static X86PageTableFormat format()
    {
        X86PageTableFormat f;
        f.dirty_on_every_leaf = true;
        return f;
    }
};

} // namespace ioasid::hw::amd
