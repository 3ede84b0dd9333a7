// IOMMU_FAULT_QUEUE_ALLOC: a fault object and the file the client reads its
// page requests from.
#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstddef>
#include <memory>

#include "command.h"
#include "core/fault.h"

namespace ioasid::dispatch {

// iommufd_fault_alloc(): the object and its file exist only if the client
// got both the id and the descriptor.
int fault_alloc_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<iommu_fault_alloc*>(buf);
    if (args.flags)
        return -EOPNOTSUPP;
    core::PendingObject<core::Fault> pending(cmd.ctx.objects(), std::make_unique<core::Fault>());
    if (!pending.id())
        return -EBUSY;
    auto file = std::make_shared<core::FaultFile>(cmd.ctx, *pending);
    args.out_fault_id = pending.id();
    // The descriptor is written by the hand-over; the rest first, so that
    // a client that cannot take the answer never gets a descriptor.
    int rc = cmd.respond(args) ? -EFAULT : cmd.hand_over_file(file, offsetof(iommu_fault_alloc, out_fault_fd));
    if (rc) {
        // Under the context's lock: the file lets go of the fault here, not
        // in its destructor.
        file->release_locked();
        return rc;
    }
    pending.publish();
    return 0;
}

} // namespace ioasid::dispatch
