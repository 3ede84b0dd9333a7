// Builds the emulated machine (units and devices) a topology describes.
#pragma once

#include "config/topology.h"
#include "core/hardware.h"
#include "memory/phys_space.h"

namespace ioasid {

// Throws std::runtime_error with a "FILE:LINE:COL: message" line for a
// family that is not built, a bad family key, or a key no family reads.
void build_machine(const config::Topology& topology, memory::PhysSpace& phys, core::Hardware& hardware);

} // namespace ioasid
