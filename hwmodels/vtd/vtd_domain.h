// A VT-d paging domain: a radix table in the second-stage or the
// first-stage format, with the map-time rules the Linux intel driver
// applies on top of the table (__domain_mapping()).
#pragma once

#include <cerrno>
#include <string>
#include <type_traits>

#include "hwmodels/common/radix_domain.h"
#include "vtd_first_stage.h"
#include "vtd_second_stage.h"

namespace ioasid::hw::vtd {

template <typename Format>
class VtdDomain final : public RadixDomain<Format> {
public:
    static constexpr bool kFirstStage = std::is_same_v<Format, FirstStageFormat>;

    using RadixDomain<Format>::RadixDomain;

    int map(std::uint64_t iova, std::uint64_t pa, std::uint64_t length, Prot prot,
            std::uint64_t max_leaf) override
    {
        // __domain_mapping(): a mapping must allow something, and a nest
        // parent takes no read-only mapping: Sapphire Rapids erratum
        // 772415 (SPR17) makes the hardware mishandle them there, and
        // hw_info tells userspace so with IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17.
        if (!prot.read && !prot.write)
            return -EINVAL;
        if (!prot.write && this->request().nest_parent)
            return -EINVAL;
        return RadixDomain<Format>::map(iova, pa, length, prot, max_leaf);
    }
};

using SecondStageDomain = VtdDomain<SecondStageFormat>;
using FirstStageDomain = VtdDomain<FirstStageFormat>;

} // namespace ioasid::hw::vtd
