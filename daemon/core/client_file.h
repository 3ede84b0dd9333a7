// A file the daemon hands to a client beside the iommufd file itself: the
// kernel's anonymous-inode files such as a fault queue's fd or the
// selftest's access fd. The transport keeps the file alive while the client
// holds any descriptor of it and drops it on the last close; the client's
// read(2) and write(2) on the descriptor arrive here. Called with no lock
// held: an implementation takes its context's lock itself.
#pragma once

#include <cerrno>
#include <cstddef>
#include <span>
#include <sys/types.h>

namespace ioasid::core {

class ClientFile {
public:
    virtual ~ClientFile() = default;
    // Bytes read into `out`, or -errno; files without a read op answer as
    // the kernel does for them.
    [[nodiscard]] virtual ssize_t read(std::span<std::byte> out)
    {
        (void)out;
        return -EINVAL;
    }
    [[nodiscard]] virtual ssize_t write(std::span<const std::byte> in)
    {
        (void)in;
        return -EINVAL;
    }
};

} // namespace ioasid::core
