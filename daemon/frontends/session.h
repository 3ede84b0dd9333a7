// One open file of the device, whichever transport carries it: a context
// plus what serving its ioctls needs (process callers, tracing).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>

#include "core/context.h"
#include "dispatch/vfio_device.h"
#include "memory/caller.h"
#include "memory/caller_cache.h"

namespace ioasid::frontends {

// --trace: one log line per ioctl (pid, context, decoded command, result,
// time taken). Set once at start-up, before any session exists.
void set_tracing(bool on);

class Session {
public:
    Session(core::CoreServices& services, core::ContextOrigin origin);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    [[nodiscard]] core::Context& context() { return context_; }
    [[nodiscard]] memory::CallerCache& callers() { return callers_; }

    // One ioctl, by thread `tid` (for the trace line). Returns 0 or -errno.
    [[nodiscard]] int ioctl(unsigned int cmd, const std::shared_ptr<memory::Caller>& caller,
                            std::uint64_t arg, pid_t tid);

private:
    core::Context context_;
    memory::CallerCache callers_;
};

// The session's context, as a reference that keeps the whole session alive
// (what a VFIO device file bound to it holds, as the kernel's file
// reference on the iommufd).
[[nodiscard]] inline std::shared_ptr<core::Context> context_of(const std::shared_ptr<Session>& session)
{
    return std::shared_ptr<core::Context>(session, &session->context());
}

// One ioctl on an open VFIO device file, by thread `tid`, traced as
// Session::ioctl traces. Returns 0 or -errno.
[[nodiscard]] int vfio_ioctl(dispatch::VfioDevice& device, unsigned int cmd,
                             const std::shared_ptr<memory::Caller>& caller, std::uint64_t arg,
                             pid_t tid, const dispatch::IommufdResolver& resolve);

} // namespace ioasid::frontends
