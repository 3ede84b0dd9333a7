#include "dispatcher.h"

#include <ioasid/emu.h>
#include <ioasid/iommufd.h>
#include <ioasid/selftest.h>
#include <linux/ioctl.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "command.h"

namespace ioasid::dispatch {
namespace {

using Handler = int (*)(Command&, void*);

// Whether a handler runs under the context's lock. Only the status report
// does not: it locks each context it describes in turn, its own included.
enum class Locking { context, none };

struct Op {
    unsigned int ioctl_num = 0;
    std::uint32_t size = 0;     // what we understand
    std::uint32_t min_size = 0; // end of the last field of the first version
    Handler handler = nullptr;
    Locking locking = Locking::context;
};

template <typename T>
constexpr Op make_op(unsigned int num, std::size_t min_size, Handler handler,
                     Locking locking = Locking::context)
{
    return Op{num, sizeof(T), static_cast<std::uint32_t>(min_size), handler, locking};
}

#define END_OF(type, field) (offsetof(type, field) + sizeof(((type*)nullptr)->field))

constexpr unsigned kBase = IOMMUFD_CMD_BASE;

constexpr unsigned kTestNr = _IOC_NR(IOMMU_TEST_CMD);

// Indexed by _IOC_NR(cmd) - IOMMUFD_CMD_BASE. Numbers outside belong to the
// VFIO type1 compatibility interface in the kernel.
constexpr auto kOps = [] {
    std::array<Op, kTestNr - kBase + 1> ops{};
    ops[IOMMUFD_CMD_DESTROY - kBase] =
        make_op<iommu_destroy>(IOMMU_DESTROY, END_OF(iommu_destroy, id), destroy_command);
    ops[IOMMUFD_CMD_IOAS_ALLOC - kBase] = make_op<iommu_ioas_alloc>(
        IOMMU_IOAS_ALLOC, END_OF(iommu_ioas_alloc, out_ioas_id), ioas_alloc_command);
    ops[IOMMUFD_CMD_IOAS_ALLOW_IOVAS - kBase] = make_op<iommu_ioas_allow_iovas>(
        IOMMU_IOAS_ALLOW_IOVAS, END_OF(iommu_ioas_allow_iovas, allowed_iovas),
        ioas_allow_iovas_command);
    ops[IOMMUFD_CMD_IOAS_COPY - kBase] = make_op<iommu_ioas_copy>(
        IOMMU_IOAS_COPY, END_OF(iommu_ioas_copy, src_iova), ioas_copy_command);
    ops[IOMMUFD_CMD_IOAS_IOVA_RANGES - kBase] = make_op<iommu_ioas_iova_ranges>(
        IOMMU_IOAS_IOVA_RANGES, END_OF(iommu_ioas_iova_ranges, out_iova_alignment),
        ioas_iova_ranges_command);
    ops[IOMMUFD_CMD_IOAS_MAP - kBase] =
        make_op<iommu_ioas_map>(IOMMU_IOAS_MAP, END_OF(iommu_ioas_map, iova), ioas_map_command);
    ops[IOMMUFD_CMD_IOAS_UNMAP - kBase] = make_op<iommu_ioas_unmap>(
        IOMMU_IOAS_UNMAP, END_OF(iommu_ioas_unmap, length), ioas_unmap_command);
    ops[IOMMUFD_CMD_OPTION - kBase] =
        make_op<iommu_option>(IOMMU_OPTION, END_OF(iommu_option, val64), option_command);
    ops[IOMMUFD_CMD_VFIO_IOAS - kBase] = make_op<iommu_vfio_ioas>(
        IOMMU_VFIO_IOAS, END_OF(iommu_vfio_ioas, __reserved), vfio_ioas_command);
    ops[IOMMUFD_CMD_HWPT_ALLOC - kBase] = make_op<iommu_hwpt_alloc>(
        IOMMU_HWPT_ALLOC, END_OF(iommu_hwpt_alloc, __reserved), hwpt_alloc_command);
    ops[IOMMUFD_CMD_GET_HW_INFO - kBase] = make_op<iommu_hw_info>(
        IOMMU_GET_HW_INFO, END_OF(iommu_hw_info, __reserved), get_hw_info_command);
    ops[IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING - kBase] = make_op<iommu_hwpt_set_dirty_tracking>(
        IOMMU_HWPT_SET_DIRTY_TRACKING, END_OF(iommu_hwpt_set_dirty_tracking, __reserved),
        hwpt_set_dirty_tracking_command);
    ops[IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP - kBase] = make_op<iommu_hwpt_get_dirty_bitmap>(
        IOMMU_HWPT_GET_DIRTY_BITMAP, END_OF(iommu_hwpt_get_dirty_bitmap, data),
        hwpt_get_dirty_bitmap_command);
    ops[IOMMUFD_CMD_HWPT_INVALIDATE - kBase] = make_op<iommu_hwpt_invalidate>(
        IOMMU_HWPT_INVALIDATE, END_OF(iommu_hwpt_invalidate, __reserved), hwpt_invalidate_command);
    ops[IOMMUFD_CMD_FAULT_QUEUE_ALLOC - kBase] = make_op<iommu_fault_alloc>(
        IOMMU_FAULT_QUEUE_ALLOC, END_OF(iommu_fault_alloc, out_fault_fd), fault_alloc_command);
    ops[IOMMUFD_CMD_IOAS_MAP_FILE - kBase] = make_op<iommu_ioas_map_file>(
        IOMMU_IOAS_MAP_FILE, END_OF(iommu_ioas_map_file, iova), ioas_map_file_command);
    ops[kTestNr - kBase] =
        make_op<iommu_test_cmd>(IOMMU_TEST_CMD, END_OF(iommu_test_cmd, last), test_command);
    return ops;
}();

// Our extensions (uapi/ioasid/emu.h), indexed by _IOC_NR(cmd).
constexpr auto kEmuOps = [] {
    std::array<Op, IOASID_EMU_CMD_PT_DUMP + 1> ops{};
    ops[IOASID_EMU_CMD_STATUS] =
        make_op<ioasid_emu_status>(IOASID_EMU_STATUS, END_OF(ioasid_emu_status, buf_uptr),
                                   emu_status_command, Locking::none);
    ops[IOASID_EMU_CMD_DEVICE_BIND] = make_op<ioasid_emu_device_bind>(
        IOASID_EMU_DEVICE_BIND, END_OF(ioasid_emu_device_bind, __reserved), emu_device_bind_command);
    ops[IOASID_EMU_CMD_DEVICE_UNBIND] = make_op<ioasid_emu_device_unbind>(
        IOASID_EMU_DEVICE_UNBIND, END_OF(ioasid_emu_device_unbind, dev_id), emu_device_unbind_command);
    ops[IOASID_EMU_CMD_DEVICE_ATTACH] = make_op<ioasid_emu_device_attach>(
        IOASID_EMU_DEVICE_ATTACH, END_OF(ioasid_emu_device_attach, __reserved),
        emu_device_attach_command);
    ops[IOASID_EMU_CMD_DEVICE_DETACH] = make_op<ioasid_emu_device_detach>(
        IOASID_EMU_DEVICE_DETACH, END_OF(ioasid_emu_device_detach, pasid), emu_device_detach_command);
    ops[IOASID_EMU_CMD_DMA] = make_op<ioasid_emu_dma>(IOASID_EMU_DMA, END_OF(ioasid_emu_dma, buf_uptr),
                                                      emu_dma_command);
    ops[IOASID_EMU_CMD_PT_DUMP] = make_op<ioasid_emu_pt_dump>(
        IOASID_EMU_PT_DUMP, END_OF(ioasid_emu_pt_dump, buf_uptr), emu_pt_dump_command);
    return ops;
}();

#undef END_OF

// Every struct a handler may receive fits here.
constexpr std::size_t kBufferSize = [] {
    std::size_t size = 0;
    for (const Op& op : kOps)
        size = std::max<std::size_t>(size, op.size);
    for (const Op& op : kEmuOps)
        size = std::max<std::size_t>(size, op.size);
    return size;
}();

// The table entry for `cmd`'s number, or nullptr. As in the kernel, only
// the number picks the entry; the whole command (type, size and direction
// bits) is compared with it after the struct's size has been read. Our own
// type is the one exception, since its numbers overlap.
const Op* find_op(unsigned int cmd)
{
    const unsigned nr = _IOC_NR(cmd);
    if (_IOC_TYPE(cmd) == IOASID_EMU_TYPE)
        return nr < kEmuOps.size() ? &kEmuOps[nr] : nullptr;
    // A number we do not implement answers as one past the table does
    // (ENOTTY, nothing read), wherever it lies.
    const Op* op = nr >= kBase && nr - kBase < kOps.size() ? &kOps[nr - kBase] : nullptr;
    return op && op->handler ? op : nullptr;
}

// The kernel's copy_struct_from_user(): a longer struct is accepted only if
// every byte we don't know is zero (checked first), a shorter one is
// zero-extended.
int copy_struct_in(memory::CallerMemory& mem, std::uint64_t arg, std::uint32_t user_size,
                   std::span<std::byte> buf, bool prefetched)
{
    // The tail may be up to 4 GiB long. Read it in pieces that never cross
    // one of the client's pages, so that, as in check_zeroed_user(), a
    // non-zero byte before an unmapped page wins over the fault.
    constexpr std::uint64_t kPage = 4096;
    std::array<std::byte, kPage> chunk;
    for (std::uint64_t at = buf.size(); at < user_size;) {
        std::uint64_t to_page_end = kPage - ((arg + at) % kPage);
        std::size_t n = std::min<std::uint64_t>(to_page_end, user_size - at);
        if (int rc = mem.read(arg + at, std::span(chunk).first(n)))
            return rc == -ESRCH ? rc : -EFAULT;
        for (std::size_t i = 0; i < n; ++i)
            if (chunk[i] != std::byte{0})
                return -E2BIG;
        at += n;
    }
    const std::size_t known = std::min<std::size_t>(user_size, buf.size());
    if (!prefetched)
        if (int rc = mem.read(arg, buf.first(known)))
            return rc == -ESRCH ? rc : -EFAULT;
    std::fill(buf.begin() + known, buf.end(), std::byte{0});
    return 0;
}

// iommufd_fops_ioctl() hands a number outside its table, of any type, to
// the VFIO compatibility ioctls; ours are not the kernel's to route.
VfioCompatHandler find_vfio(unsigned int cmd)
{
    const unsigned nr = _IOC_NR(cmd);
    const bool outside = nr < kBase || nr - kBase >= kOps.size();
    return outside && _IOC_TYPE(cmd) != IOASID_EMU_TYPE ? find_vfio_compat(cmd) : nullptr;
}

} // namespace

bool known(unsigned int cmd)
{
    const Op* op = find_op(cmd);
    return (op && op->handler) || find_vfio(cmd);
}

int ioctl(core::Context& ctx, unsigned int cmd, const std::shared_ptr<memory::Caller>& caller,
          std::uint64_t arg)
{
    const Op* found = find_op(cmd);
    if (!found) {
        VfioCompatHandler vfio = find_vfio(cmd);
        if (!vfio)
            return -ENOTTY;
        std::lock_guard guard(ctx.lock());
        ctx.note_caller(caller->tgid());
        Command command{ctx, caller, arg, 0};
        return vfio(command);
    }
    const Op& op = *found;

    std::unique_lock guard(ctx.lock(), std::defer_lock);
    if (op.locking == Locking::context) {
        guard.lock();
        ctx.note_caller(caller->tgid());
    }
    // Each copy from the client costs system calls, so the whole struct is
    // read at once when it can be; only if that faults (a struct shorter
    // than ours at the end of a mapping, or no struct) is the size read on
    // its own, as the kernel reads it first.
    memory::CallerMemory& mem = caller->memory();
    alignas(8) std::array<std::byte, kBufferSize> buf;
    const std::span<std::byte> args = std::span(buf).first(op.size);
    const bool prefetched = op.ioctl_num == cmd && op.handler && mem.read(arg, args) == 0;
    std::uint32_t user_size;
    if (prefetched)
        std::memcpy(&user_size, args.data(), sizeof(user_size));
    else if (mem.read(arg, std::as_writable_bytes(std::span(&user_size, 1))))
        return -EFAULT;
    if (op.ioctl_num != cmd || !op.handler)
        return -ENOTTY;
    if (user_size < op.min_size)
        return -EINVAL;
    if (int rc = copy_struct_in(mem, arg, user_size, args, prefetched))
        return rc;
    Command command{ctx, caller, arg, user_size};
    return op.handler(command, buf.data());
}

} // namespace ioasid::dispatch
