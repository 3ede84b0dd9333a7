// Our device commands (uapi/ioasid/emu.h): bind, attach and emulated DMA
// on the iommufd itself.
#include <ioasid/emu.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "command.h"
#include "core/device.h"
#include "core/dma.h"

namespace ioasid::dispatch {
namespace {

constexpr std::uint32_t kDeviceFlags = IOASID_EMU_DEVICE_PASID;

std::optional<std::uint32_t> pasid_of(std::uint32_t flags, std::uint32_t pasid)
{
    return (flags & IOASID_EMU_DEVICE_PASID) ? std::optional(pasid) : std::nullopt;
}

std::uint32_t reason_code(hw::FaultReason reason)
{
    switch (reason) {
    case hw::FaultReason::blocked:
        return IOASID_EMU_FAULT_BLOCKED;
    case hw::FaultReason::pasid_range:
        return IOASID_EMU_FAULT_PASID_RANGE;
    case hw::FaultReason::address_size:
        return IOASID_EMU_FAULT_ADDRESS_SIZE;
    case hw::FaultReason::not_present:
        return IOASID_EMU_FAULT_NOT_PRESENT;
    case hw::FaultReason::permission:
        return IOASID_EMU_FAULT_PERMISSION;
    }
    return IOASID_EMU_FAULT_NONE;
}

// Bounded so a hostile length costs no more than this much daemon memory.
constexpr std::uint64_t kDmaChunk = 1 << 20;

} // namespace

int emu_device_bind_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<ioasid_emu_device_bind*>(buf);
    if (args.flags || args.__reserved)
        return -EOPNOTSUPP;
    const std::size_t len = strnlen(args.name, sizeof(args.name));
    if (len == sizeof(args.name))
        return -EINVAL;
    core::EmulatedDevice* device = cmd.ctx.services().hardware.find_device(std::string_view(args.name, len));
    if (!device)
        return -ENODEV;
    if (int rc = core::device_bind(cmd.ctx, *device, &args.out_dev_id))
        return rc;
    if (cmd.respond(args)) {
        // A client that cannot learn the id cannot unbind either.
        (void)core::device_unbind(cmd.ctx, args.out_dev_id);
        return -EFAULT;
    }
    return 0;
}

int emu_device_unbind_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<ioasid_emu_device_unbind*>(buf);
    return core::device_unbind(cmd.ctx, args.dev_id);
}

int emu_device_attach_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<ioasid_emu_device_attach*>(buf);
    if ((args.flags & ~kDeviceFlags) || args.__reserved)
        return -EOPNOTSUPP;
    const auto pasid = pasid_of(args.flags, args.pasid);
    if (int rc = core::device_attach(cmd.ctx, args.dev_id, pasid, &args.pt_id))
        return rc;
    // As VFIO does: an attach the caller cannot learn about is undone.
    if (cmd.respond(args)) {
        (void)core::device_detach(cmd.ctx, args.dev_id, pasid);
        return -EFAULT;
    }
    return 0;
}

int emu_device_detach_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<ioasid_emu_device_detach*>(buf);
    if (args.flags & ~kDeviceFlags)
        return -EOPNOTSUPP;
    return core::device_detach(cmd.ctx, args.dev_id, pasid_of(args.flags, args.pasid));
}

int emu_dma_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<ioasid_emu_dma*>(buf);
    constexpr std::uint32_t kFlags = IOASID_EMU_DMA_WRITE | IOASID_EMU_DMA_PASID;
    if (args.flags & ~kFlags)
        return -EOPNOTSUPP;
    std::uint64_t last;
    if (args.length && !core::last_of(args.iova, args.length, &last))
        return -EOVERFLOW;
    const bool write = args.flags & IOASID_EMU_DMA_WRITE;
    core::DmaRequest request{args.dev_id, (args.flags & IOASID_EMU_DMA_PASID) ? std::optional(args.pasid) : std::nullopt,
                             args.iova, write ? hw::Access::write : hw::Access::read};
    args.out_done = 0;
    args.out_fault_reason = IOASID_EMU_FAULT_NONE;
    args.out_fault_code = 0;
    args.out_fault_iova = 0;

    std::vector<std::byte> bounce(std::min<std::uint64_t>(args.length, kDmaChunk));
    int rc = 0;
    core::DmaResult result;
    // Nothing to move still needs a device.
    if (args.length == 0)
        rc = core::device_dma(cmd.ctx, request, {}, &result);
    for (std::uint64_t at = 0; at < args.length && rc == 0;) {
        auto chunk = std::span(bounce).first(std::min<std::uint64_t>(args.length - at, bounce.size()));
        if (write && cmd.mem().read(args.buf_uptr + at, chunk)) {
            rc = -EFAULT;
            break;
        }
        request.iova = args.iova + at;
        rc = core::device_dma(cmd.ctx, request, chunk, &result);
        if (!write && result.done && cmd.mem().write(args.buf_uptr + at, chunk.first(result.done)))
            rc = -EFAULT;
        args.out_done += result.done;
        at += result.done;
        if (result.fault) {
            args.out_fault_reason = reason_code(result.fault->reason);
            args.out_fault_code = result.fault->hw_code;
            args.out_fault_iova = result.fault->iova;
            rc = rc ? rc : -EIO;
        }
    }
    if (rc == -ENOENT && args.out_done == 0)
        return rc;
    if (cmd.respond(args))
        return -EFAULT;
    return rc;
}

} // namespace ioasid::dispatch
