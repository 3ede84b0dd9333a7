// What a decoded ioctl hands to its handler. Private to dispatch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "core/client_file.h"
#include "core/context.h"
#include "memory/caller.h"

namespace ioasid::dispatch {

struct Command {
    core::Context& ctx;
    const std::shared_ptr<memory::Caller>& caller;
    std::uint64_t arg;       // client address of the struct
    std::uint32_t user_size; // the struct's own `size` field

    [[nodiscard]] memory::CallerMemory& mem() const { return caller->memory(); }

    // Writes the struct back as the kernel's iommufd_ucmd_respond() does:
    // as many bytes as both sides know, nothing past them.
    template <typename T>
    [[nodiscard]] int respond(const T& value) const
    {
        std::size_t n = std::min<std::size_t>(user_size, sizeof(T));
        return mem().write(arg, std::as_bytes(std::span(&value, 1)).first(n));
    }

    // Gives the client a new descriptor standing for `file` and writes the
    // client's number for it, a __u32, at `fd_offset` in the struct (the
    // kernel's get_unused_fd_flags() + fd_install(), O_CLOEXEC). Fails with
    // -EOPNOTSUPP on a transport that cannot install descriptors in its
    // client (CUSE). Implemented in file_handover.cpp.
    [[nodiscard]] int hand_over_file(std::shared_ptr<core::ClientFile> file,
                                     std::size_t fd_offset) const;

    // Writes one field of the struct back, at its offset.
    template <typename F>
    [[nodiscard]] int respond_field(std::size_t offset, const F& field) const
    {
        return mem().write(arg + offset, std::as_bytes(std::span(&field, 1)));
    }
};

// Handlers, one per command, each in the file of its object.
int destroy_command(Command& cmd, void* buf);
int option_command(Command& cmd, void* buf);
int vfio_ioas_command(Command& cmd, void* buf);
int ioas_alloc_command(Command& cmd, void* buf);
int ioas_allow_iovas_command(Command& cmd, void* buf);
int ioas_copy_command(Command& cmd, void* buf);
int ioas_iova_ranges_command(Command& cmd, void* buf);
int ioas_map_command(Command& cmd, void* buf);
int ioas_map_file_command(Command& cmd, void* buf);
int ioas_unmap_command(Command& cmd, void* buf);
int emu_status_command(Command& cmd, void* buf);
int hwpt_alloc_command(Command& cmd, void* buf);
int get_hw_info_command(Command& cmd, void* buf);
int hwpt_set_dirty_tracking_command(Command& cmd, void* buf);
int hwpt_get_dirty_bitmap_command(Command& cmd, void* buf);
int hwpt_invalidate_command(Command& cmd, void* buf);
int fault_alloc_command(Command& cmd, void* buf);
int emu_device_bind_command(Command& cmd, void* buf);
int emu_device_unbind_command(Command& cmd, void* buf);
int emu_device_attach_command(Command& cmd, void* buf);
int emu_device_detach_command(Command& cmd, void* buf);
int emu_dma_command(Command& cmd, void* buf);
int emu_pt_dump_command(Command& cmd, void* buf);
int test_command(Command& cmd, void* buf);

// The VFIO type1 container ioctls (vfio_compat_commands.cpp), which read
// and write the client's memory themselves (cmd.user_size is 0): the
// handler for exactly `cmd`, or nullptr.
using VfioCompatHandler = int (*)(Command& cmd);
[[nodiscard]] VfioCompatHandler find_vfio_compat(unsigned int cmd);

} // namespace ioasid::dispatch
