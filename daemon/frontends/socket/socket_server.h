// The socket transport (uapi/ioasid/socket.h): a SOCK_SEQPACKET Unix socket
// served by an io_uring event loop; one connection is one open file.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "core/context.h"

namespace ioasid::frontends {

struct SocketOptions {
    std::string path;
    mode_t mode = 0666;
    uid_t owner = static_cast<uid_t>(-1); // -1: leave as created
    gid_t group = static_cast<gid_t>(-1);
};

class SocketServer {
public:
    // Binds and listens; throws std::system_error when it cannot.
    SocketServer(core::CoreServices& services, SocketOptions options);
    ~SocketServer(); // stops, closes every connection, removes the socket file
    SocketServer(const SocketServer&) = delete;
    SocketServer& operator=(const SocketServer&) = delete;

    // Serves until stop() is called from any thread.
    void run();
    void stop();

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace ioasid::frontends
