// One open file of an emulated device's VFIO cdev, /dev/vfio/devices/<name>,
// and the decoding of its ioctls (uapi/ioasid/vfio.h): Linux's
// drivers/vfio/device_cdev.c and vfio_main.c for a device that has no
// regions, no interrupts and no reset. Raw ioctl bytes in, typed core calls
// (device_bind/attach/detach/unbind), errno out, as the rest of dispatch.
//
// The one thing only the transport knows is what VFIO_DEVICE_BIND_IOMMUFD's
// fd number stands for in the caller; it hands in a resolver for that.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/context.h"
#include "core/hardware.h"
#include "memory/caller.h"

namespace ioasid::dispatch {

// iommufd_ctx_from_fd() for the transport: 0 with *ctx set to a reference
// that keeps the context alive for as long as it is held (the kernel's
// file reference); -EBADF when the caller has no such fd; -EBADFD when it
// is open but is not an iommufd of this daemon; or another -errno (-ESRCH:
// the caller is gone).
using IommufdResolver = std::function<int(std::int32_t fd, std::shared_ptr<core::Context>* ctx)>;

class VfioDevice {
public:
    explicit VfioDevice(core::EmulatedDevice& device);
    // Closing the file: unbind().
    ~VfioDevice();
    VfioDevice(const VfioDevice&) = delete;
    VfioDevice& operator=(const VfioDevice&) = delete;

    [[nodiscard]] core::EmulatedDevice& device() const { return device_; }
    [[nodiscard]] bool bound() const { return bound_.load(std::memory_order_acquire); }

    // What `cmd` answers without the caller's struct (EINVAL before the
    // bind, ENOTTY for a number the device does not have, ...), or 0 when
    // answering needs the struct. Lets a transport answer those at once,
    // before it does any work to reach the caller (as the kernel reads
    // nothing for them).
    [[nodiscard]] int answer_without_struct(unsigned int cmd) const;

    // One ioctl on the file. Returns 0 or a negative errno. Calls on one
    // file run one at a time (the kernel's dev_set lock).
    [[nodiscard]] int ioctl(unsigned int cmd, const std::shared_ptr<memory::Caller>& caller,
                            std::uint64_t arg, const IommufdResolver& resolve);

    // read(2)/write(2)/pread/pwrite once the kernel's access-mode checks
    // passed: -EINVAL, before the bind and after (no region to reach).
    [[nodiscard]] static int read_write_errno() { return -EINVAL; }

    // What the last close of the file does: detach, destroy the DEVICE
    // object, drop the reference on the iommufd's context. Idempotent.
    void unbind();

    // For --trace: the command and its fields as `mem` holds them now.
    [[nodiscard]] static std::string describe(unsigned int cmd, memory::CallerMemory& mem,
                                              std::uint64_t arg);

private:
    [[nodiscard]] int bind(memory::Caller& caller, std::uint64_t arg, const IommufdResolver& resolve);
    [[nodiscard]] int attach(memory::Caller& caller, std::uint64_t arg);
    [[nodiscard]] int detach(memory::Caller& caller, std::uint64_t arg);
    void unbind_locked();

    std::mutex lock_;
    core::EmulatedDevice& device_;
    std::shared_ptr<core::Context> ctx_; // set while bound
    std::uint32_t dev_id_ = 0;
    std::atomic<bool> bound_{false};
};

} // namespace ioasid::dispatch
