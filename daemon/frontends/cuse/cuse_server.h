// The CUSE transport: a real character device, /dev/<devname>, whose open
// files are contexts. Needs /dev/cuse (root, a kernel with CONFIG_CUSE).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "core/context.h"

namespace ioasid::frontends {

struct CuseOptions {
    std::string devname = "ioasid";
    mode_t mode = 0660;
    uid_t owner = static_cast<uid_t>(-1); // -1: leave as the kernel made it
    gid_t group = static_cast<gid_t>(-1);
};

class CuseServer {
public:
    // Registers the device with the kernel; throws std::system_error when
    // it cannot.
    CuseServer(core::CoreServices& services, CuseOptions options);
    // Releases every context still open and removes the node.
    ~CuseServer();
    CuseServer(const CuseServer&) = delete;
    CuseServer& operator=(const CuseServer&) = delete;

    // Serves until stop() is called from any thread.
    void run();
    // Waits, up to `timeout`, until the kernel has made the node (and its
    // owner and mode are set): run() must have been started.
    [[nodiscard]] bool wait_until_serving(std::chrono::milliseconds timeout);
    void stop();

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace ioasid::frontends
