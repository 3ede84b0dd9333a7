// Every live context of the daemon, for the status report.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace ioasid::core {

class Context;

// What the daemon says about itself in the status report.
struct DaemonInfo {
    std::vector<std::string> transports;
    std::string devname; // empty when no device node is served
    std::string socket;  // empty when no socket is served
};

// Lock order: the registry's lock is taken before any context's lock, and
// a context never takes the registry's lock while it holds its own (it
// joins and leaves from its constructor and destructor, outside ioctls).
class ContextRegistry {
public:
    void set_daemon_info(DaemonInfo info);
    [[nodiscard]] DaemonInfo daemon_info() const;

    // Returns the serial number shown as the context's id.
    std::uint32_t add(Context& ctx);
    void remove(Context& ctx);

    // How many contexts were ever added: what the daemon has served.
    [[nodiscard]] std::uint32_t opened() const;

    // Calls `fn` on every context, with the registry locked.
    void for_each(const std::function<void(Context&)>& fn) const;

private:
    mutable std::mutex lock_;
    DaemonInfo info_;
    std::uint32_t next_serial_ = 1;
    std::vector<Context*> contexts_;
};

} // namespace ioasid::core
