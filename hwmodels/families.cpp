#include "families.h"

#include <array>

#include "amd/amd_unit.h"
#include "mock/mock_unit.h"
#include "ppc_tce/tce_unit.h"
#include "smmuv3/smmuv3_unit.h"
#include "virtio/virtio_unit.h"
#include "vtd/vtd_unit.h"

namespace ioasid::hw {
namespace {

constexpr std::array kFamilies{
    Family{"mock", mock::create_mock_unit},
    Family{"vtd", vtd::create_vtd_unit},
    Family{"smmuv3", smmuv3::create_smmuv3_unit},
    Family{"amd", amd::create_amd_unit},
    Family{"ppc_tce", ppc_tce::create_ppc_tce_unit},
    Family{"virtio", virtio::create_virtio_unit},
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
