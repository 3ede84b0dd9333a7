#include "nested_domain.h"

#include <cerrno>

namespace ioasid::hw {

NestedDomain::NestedDomain(Unit& unit, Domain& parent)
    : Domain(unit, DomainRequest{}, parent.geometry()), parent_(parent)
{
}

int NestedDomain::map(std::uint64_t, std::uint64_t, std::uint64_t, Prot, std::uint64_t)
{
    return -EINVAL;
}

void NestedDomain::unmap(std::uint64_t, std::uint64_t) {}

void NestedDomain::read_and_clear_dirty(std::uint64_t, std::uint64_t, bool,
                                        const std::function<void(std::uint64_t, std::uint64_t)>&)
{
}

} // namespace ioasid::hw
