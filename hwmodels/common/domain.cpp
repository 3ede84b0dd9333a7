#include "domain.h"

#include <cerrno>

#include "unit.h"

namespace ioasid::hw {

Domain::Domain(Unit& unit, DomainRequest request, Geometry geometry)
    : unit_(unit), request_(request), geometry_(geometry), tag_(unit.next_domain_tag())
{
}

Domain::~Domain()
{
    unit_.invalidate_domain(*this);
}

int Domain::set_dirty_tracking(bool enable)
{
    if (!request_.dirty_tracking)
        return -EOPNOTSUPP;
    if (dirty_tracking_ == enable)
        return 0;
    dirty_tracking_ = enable;
    // Cached entries remember whether their dirty bit is set; start afresh.
    unit_.invalidate_domain(*this);
    return 0;
}

void Domain::invalidate(Span range)
{
    unit_.invalidate(*this, range);
}

} // namespace ioasid::hw
