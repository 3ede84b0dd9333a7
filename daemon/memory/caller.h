// Who is on the other end of a file: identity, limits and memory.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>

#include "caller_memory.h"

namespace ioasid::memory {

enum class Capability { ipc_lock, sys_resource };

class Caller {
public:
    virtual ~Caller() = default;

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
