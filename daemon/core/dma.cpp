#include "dma.h"

#include <algorithm>
#include <cerrno>
#include <vector>

#include "device.h"

namespace ioasid::core {

int device_dma(Context& ctx, const DmaRequest& request, std::span<std::byte> buffer, DmaResult* result)
{
    *result = {};
    Device* device = ctx.objects().find_as<Device>(request.dev_id);
    if (!device)
        return -ENOENT;
    if (buffer.empty())
        return 0;
    std::uint64_t last;
    if (!last_of(request.iova, buffer.size(), &last))
        return -EOVERFLOW;

    EmulatedDevice& emulated = device->emulated();
    // Translation first, then the copies: the unit's lock is not held while
    // bytes move, and every page is checked before any byte does.
    std::vector<hw::DmaRun> runs;
    result->fault = emulated.unit->translate(*emulated.endpoint, request.pasid, request.iova,
                                             buffer.size(), request.access, &runs);

    memory::PhysSpace& phys = ctx.services().phys;
    std::uint64_t offset = 0;
    for (const hw::DmaRun& run : runs) {
        std::uint64_t pa = run.pa;
        std::uint64_t left = run.length;
        // A run is contiguous in physical addresses; it may still cross
        // from one reservation (backing) to the next.
        while (left) {
            auto resolved = phys.resolve(pa);
            if (!resolved)
                return -EFAULT; // a translation to memory nobody backs: a driver bug
            const std::uint64_t piece = std::min(left, resolved->remaining);
            auto bytes = buffer.subspan(offset, piece);
            int rc = request.access == hw::Access::write ? resolved->backing->write(resolved->offset, bytes)
                                                         : resolved->backing->read(resolved->offset, bytes);
            if (rc)
                return rc;
            result->done += piece;
            offset += piece;
            pa += piece;
            left -= piece;
        }
    }
    return 0;
}

} // namespace ioasid::core
