// The IOMMU families the daemon can emulate. Adding a family is adding its
// folder and one line in families.cpp.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/unit.h"
#include "common/unit_params.h"
#include "memory/phys_space.h"

namespace ioasid::hw {

// Builds a unit from its topology keys; throws UnitParamError for a bad
// value. Keys the factory does not read are reported by the caller.
using UnitFactory = std::unique_ptr<Unit> (*)(const std::string& name, UnitParams& params,
                                              memory::PhysSpace& phys);

struct Family {
    std::string_view name;
    UnitFactory create;
};

[[nodiscard]] std::span<const Family> families();
[[nodiscard]] const Family* find_family(std::string_view name);

} // namespace ioasid::hw
