// Who is on the other end of a file: identity, limits and memory.
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <memory>

#include "caller_memory.h"
#include "unique_fd.h"

namespace ioasid::core {
class ClientFile;
}

namespace ioasid::memory {

enum class Capability { ipc_lock, sys_resource };

class Caller : public std::enable_shared_from_this<Caller> {
public:
    virtual ~Caller() = default;

    // The caller as something may keep it after the ioctl returns (pages
    // read the process's memory for as long as they are mapped). A view that
    // lives only for one request hands out the process behind it, or nullptr
    // when it has none.
    [[nodiscard]] virtual std::shared_ptr<Caller> lasting() { return shared_from_this(); }

    virtual CallerMemory& memory() = 0;

    // The caller's open file `fd`, as the daemon's own descriptor in *out:
    // what the kernel's fget() gives a handler, a reference that stays valid
    // whatever the caller does with its descriptor afterwards. -EBADF when
    // the caller has no such file, and from a caller whose descriptor table
    // the daemon cannot reach (the default), as the fd is then as good as
    // closed to the daemon; -ESRCH when the caller is gone.
    [[nodiscard]] virtual int take_fd(int fd, UniqueFd* out)
    {
        (void)fd;
        (void)out;
        return -EBADF;
    }

    // The kernel's get_unused_fd_flags() + fd_install() (O_CLOEXEC): gives
    // the caller a new descriptor standing for `file` once the ioctl
    // succeeds, and writes the caller's number for it, a __u32, at client
    // address `number_addr` (the caller's transport may write it itself,
    // after the reply). Whoever installs it keeps the file alive while the
    // client holds a descriptor of it. -EOPNOTSUPP from a caller that
    // cannot install descriptors (the default, and CUSE).
    [[nodiscard]] virtual int hand_over_file(std::shared_ptr<core::ClientFile> file,
                                             std::uint64_t number_addr)
    {
        (void)file;
        (void)number_addr;
        return -EOPNOTSUPP;
    }
    // The daemon's file behind the caller's descriptor `fd`, as handed over
    // by hand_over_file(): -EBADF when the caller has no such descriptor (or
    // its table is out of reach), -EBADFD when it is open but none of ours.
    // The caller keeps a reference of its own until the request ends, so
    // that dropping *file never ends the file under the context's lock.
    [[nodiscard]] virtual int find_file(int fd, std::shared_ptr<core::ClientFile>* file)
    {
        (void)fd;
        (void)file;
        return -EBADF;
    }

    [[nodiscard]] virtual uid_t uid() const = 0;
    [[nodiscard]] virtual pid_t tgid() const = 0;
    // Distinguishes processes over time even when a pid is recycled; the
    // per-process (mm) pin accounting is keyed by it.
    [[nodiscard]] virtual std::uint64_t process_key() const = 0;
    [[nodiscard]] virtual bool capable(Capability cap) const = 0;
    // RLIMIT_MEMLOCK (soft) of the process, in bytes, read when asked.
    [[nodiscard]] virtual std::uint64_t memlock_limit() const = 0;
};

} // namespace ioasid::memory
