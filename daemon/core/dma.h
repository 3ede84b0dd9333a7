// Emulated DMA: a bound device reads or writes IO virtual addresses, which
// its unit translates (IOTLB, table walk, permissions) to emulated physical
// addresses, whose backing memory the bytes then move to or from.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "context.h"
#include "hwmodels/common/types.h"

namespace ioasid::core {

struct DmaRequest {
    std::uint32_t dev_id;
    std::optional<std::uint32_t> pasid;
    std::uint64_t iova;
    hw::Access access; // write: the device writes memory
};

struct DmaResult {
    std::uint64_t done = 0;          // bytes moved before the transfer stopped
    std::optional<hw::Fault> fault;  // why it stopped early, if the IOMMU stopped it
};

// Moves `buffer` to (write) or from (read) the device's view of memory.
// -ENOENT for an unknown device; an IOMMU fault is not an error here but a
// result. A failing backing (caller memory that is gone) gives its errno,
// with result->done counting what was moved before it.
[[nodiscard]] int device_dma(Context& ctx, const DmaRequest& request, std::span<std::byte> buffer,
                             DmaResult* result);

} // namespace ioasid::core
