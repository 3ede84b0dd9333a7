#include "families.h"

#include <array>

#include "mock/mock_unit.h"
#include "vtd/vtd_unit.h"

namespace ioasid::hw {
namespace {

constexpr std::array kFamilies{
    Family{"mock", mock::create_mock_unit},
    Family{"vtd", vtd::create_vtd_unit},
};

} // namespace

std::span<const Family> families()
{
    return kFamilies;
}

const Family* find_family(std::string_view name)
{
    for (const Family& family : kFamilies)
        if (family.name == name)
            return &family;
    return nullptr;
}

} // namespace ioasid::hw
