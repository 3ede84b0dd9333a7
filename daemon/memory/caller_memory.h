// The one way the daemon touches a client's address space.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "unique_fd.h"

namespace ioasid::memory {

// Part of a file that the client maps MAP_SHARED: the pages at client
// addresses [addr, addr + length) are the file's from `offset` on. The
// descriptor is the daemon's own.
struct SharedFileRange {
    std::uint64_t addr = 0;
    std::uint64_t length = 0;
    std::uint64_t offset = 0;
    std::uint64_t page_size = 0; // the file's: a huge page on hugetlbfs
    bool writable = false;       // the descriptor allows a writable mapping
    UniqueFd file;
};

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

    // The shmem and hugetlbfs files behind the shared mappings that
    // [addr, addr + length) crosses, in address order. A long-term pin keeps
    // its pages whatever the client does afterwards, exit included (a
    // forked child that maps and leaves); a descriptor of the file keeps
    // them reachable in the same way. Private memory has no such handle and
    // is left out, as is anything the daemon may not open. Default: none.
    [[nodiscard]] virtual int shared_files(std::uint64_t addr, std::uint64_t length,
                                           std::vector<SharedFileRange>* out)
    {
        (void)addr;
        (void)length;
        out->clear();
        return 0;
    }
};

} // namespace ioasid::memory
