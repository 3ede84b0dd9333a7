#include "tce_domain.h"

#include <cerrno>

#include "tce_format.h"

namespace ioasid::hw::ppc_tce {
namespace {

Geometry geometry_of(const WindowConfig& dma32, const WindowConfig& dma64)
{
    return {{0, dma64.last()}, dma32.page_size() | dma64.page_size()};
}

} // namespace

TceDomain::TceDomain(Unit& unit, DomainRequest request, TableMemory& memory, const WindowConfig& dma32,
                     const WindowConfig& dma64)
    : Domain(unit, request, geometry_of(dma32, dma64)), tables_{TceTable{memory, dma32}, TceTable{memory, dma64}}
{
}

int TceDomain::init()
{
    for (TceTable& table : tables_)
        if (int rc = table.init())
            return rc;
    return 0;
}

TceTable* TceDomain::window_of(std::uint64_t first, std::uint64_t last)
{
    for (TceTable& table : tables_)
        if (table.window().contains(first) && table.window().contains(last))
            return &table;
    return nullptr;
}

int TceDomain::map(std::uint64_t iova, std::uint64_t pa, std::uint64_t length, Prot prot, std::uint64_t max_leaf)
{
    if (length == 0 || (!prot.read && !prot.write))
        return -EINVAL;
    TceTable* table = window_of(iova, iova + (length - 1));
    if (!table)
        return -EINVAL;
    const std::uint64_t page = table->window().page_size();
    if (((iova | pa | length) & (page - 1)) || max_leaf < page)
        return -EINVAL;
    return table->map(iova, pa, length, prot);
}

void TceDomain::unmap(std::uint64_t iova, std::uint64_t length)
{
    const Span range{iova, iova + (length - 1)};
    for (TceTable& table : tables_)
        if (range.first <= table.window().last() && range.last >= table.window().base)
            table.unmap(range.first, range.last);
    // The driver kills the TCE cache for what it cleared
    // (pnv_pci_ioda2_tce_invalidate()).
    invalidate(range);
}

Translation TceDomain::lookup(std::uint64_t iova) const
{
    for (const TceTable& table : tables_) {
        if (!table.window().contains(iova))
            continue;
        const std::uint64_t tce = table.tce(iova);
        if (!(tce & kTcePermMask))
            return {};
        const unsigned shift = table.window().page_shift;
        const std::uint64_t page = std::uint64_t{1} << shift;
        return {true, iova & ~(page - 1), page, tce_address(tce, shift), tce_prot(tce), false};
    }
    return {};
}

void TceDomain::dump(const std::function<void(const DumpEntry&)>& fn) const
{
    for (const TceTable& table : tables_)
        table.dump(fn);
}

} // namespace ioasid::hw::ppc_tce
