// A file the daemon hands to a client beside the iommufd file itself: the
// kernel's anonymous-inode files such as a fault queue's fd or the
// selftest's access fd. The transport keeps the file alive while the client
// holds any descriptor of it and drops it on the last close; the client's
// read(2) and write(2) on the descriptor arrive here. Called with no lock
// held: an implementation takes its context's lock itself.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <sys/types.h>

namespace ioasid::core {

class ClientFile {
public:
    virtual ~ClientFile() = default;
    // read(2) of `count` bytes: what it returns, or -errno, with the bytes
    // in `out`. The transport may offer fewer bytes than asked for (`out`
    // shorter than `count`), so that a rule on the count (a whole number
    // of records) is checked on `count` and the answer fits `out`. Files
    // without a read op answer as the kernel does for them.
    [[nodiscard]] virtual ssize_t read(std::span<std::byte> out, std::uint64_t count)
    {
        (void)out;
        (void)count;
        return -EINVAL;
    }
    [[nodiscard]] virtual ssize_t write(std::span<const std::byte> in)
    {
        (void)in;
        return -EINVAL;
    }

    // What poll(2) needs. The transport gives the file a way to tell the
    // client it has become readable once the client has it; the file calls
    // it, possibly under its context's lock (so it must not block), when
    // something arrives for read() to find. readable() says whether a
    // read() now would find something (POLLIN).
    virtual void set_readable_signal(std::function<void()> signal) { (void)signal; }
    [[nodiscard]] virtual bool readable() { return false; }
};

} // namespace ioasid::core
