// Who is on the other end of a file: identity, limits and memory.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>

#include "caller_memory.h"

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
