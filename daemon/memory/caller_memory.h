// The one way the daemon touches a client's address space.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ioasid::memory {

// Every call returns 0 or a negative errno. A range that is not wholly mapped
// in the client gives -EFAULT; nothing here may crash on a hostile address.
class CallerMemory {
public:
    virtual ~CallerMemory() = default;

    [[nodiscard]] virtual int read(std::uint64_t addr, std::span<std::byte> out) = 0;
    [[nodiscard]] virtual int write(std::uint64_t addr, std::span<const std::byte> in) = 0;

    // What pinning would check: [addr, addr + length) is mapped, and writable
    // when `for_write`. The kernel fails pin_user_pages() with EFAULT otherwise.
    [[nodiscard]] virtual int check_mapped(std::uint64_t addr, std::uint64_t length,
                                           bool for_write) = 0;

    // A device's access to pinned memory (emulated DMA), which the kernel
    // would do with the page protections of the pin, not the current ones.
    // By default the same as read()/write().
    [[nodiscard]] virtual int device_read(std::uint64_t addr, std::span<std::byte> out)
    {
        return read(addr, out);
    }
    [[nodiscard]] virtual int device_write(std::uint64_t addr, std::span<const std::byte> in)
    {
        return write(addr, in);
    }
};

} // namespace ioasid::memory
