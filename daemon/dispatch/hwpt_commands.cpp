// HWPT and device-information commands: decode, check flags and reserved
// fields, call the core, write the answer back.
#include <ioasid/iommufd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <vector>

#include "command.h"
#include "core/device.h"
#include "core/hw_pagetable.h"
#include "hwmodels/common/user_data.h"

namespace ioasid::dispatch {

namespace {

// Client bytes at `base`: a unit reads only what its format defines.
hw::UserDataReader reader_at(const Command& cmd, std::uint64_t base)
{
    return [&cmd, base](std::uint64_t offset, std::span<std::byte> out) {
        if (out.empty())
            return 0;
        std::uint64_t at;
        if (__builtin_add_overflow(base, offset, &at))
            return -EFAULT;
        return cmd.mem().read(at, out) ? -EFAULT : 0;
    };
}

} // namespace

int hwpt_alloc_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<iommu_hwpt_alloc*>(buf);
    if (args.__reserved)
        return -EOPNOTSUPP;
    if ((args.data_type == IOMMU_HWPT_DATA_NONE) != (args.data_len == 0))
        return -EINVAL;
    const core::HwptAllocRequest request{args.dev_id, args.pt_id, args.flags,
                                         hw::UserData{args.data_type, args.data_len, reader_at(cmd, args.data_uptr)},
                                         args.fault_id};
    std::unique_ptr<core::PendingObject<core::Hwpt>> pending;
    if (int rc = core::hwpt_alloc(cmd.ctx, request, &pending))
        return rc;
    args.out_hwpt_id = pending->id();
    // The HWPT exists only if the client learned its id.
    if (cmd.respond(args))
        return -EFAULT;
    pending->publish();
    return 0;
}

// The kernel's bounds on one call, so it cannot keep the CPU for long
// (iommufd_hwpt_invalidate()).
constexpr std::uint32_t kInvalidateEntryNumMax = 1U << 19;
constexpr std::uint32_t kInvalidateEntryLenMax = 4096;

int hwpt_invalidate_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<iommu_hwpt_invalidate*>(buf);
    hw::UserDataArray array{args.data_type, args.entry_len, args.entry_num, reader_at(cmd, args.data_uptr)};
    std::uint32_t done = 0;
    int rc;
    if (args.__reserved) {
        rc = -EOPNOTSUPP;
    } else if (args.entry_num && (!args.data_uptr || !args.entry_len || args.entry_len > kInvalidateEntryLenMax ||
                                  args.entry_num > kInvalidateEntryNumMax)) {
        rc = -EINVAL;
    } else {
        rc = core::hwpt_invalidate(cmd.ctx, args.hwpt_id, &array);
        done = array.entry_num;
    }
    // entry_num always goes back, failure or not: the entries done before
    // a bad one count.
    args.entry_num = done;
    if (cmd.respond(args))
        return -EFAULT;
    return rc;
}

int get_hw_info_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<iommu_hw_info*>(buf);
    if (args.flags & ~static_cast<std::uint32_t>(IOMMU_HW_INFO_FLAG_INPUT_TYPE))
        return -EOPNOTSUPP;
    const std::uint32_t wanted =
        (args.flags & IOMMU_HW_INFO_FLAG_INPUT_TYPE) ? args.in_data_type
                                                     : std::uint32_t{IOMMU_HW_INFO_TYPE_DEFAULT};
    if (std::any_of(std::begin(args.__reserved), std::end(args.__reserved), [](auto b) { return b != 0; }))
        return -EOPNOTSUPP;
    hw::HwInfo info;
    if (int rc = core::device_hw_info(cmd.ctx, args.dev_id, &info))
        return rc;
    if (wanted != IOMMU_HW_INFO_TYPE_DEFAULT && wanted != info.type)
        return -EOPNOTSUPP;

    // As much as both sides know, then zeros up to what the caller offered.
    const std::size_t copy = std::min<std::size_t>(args.data_len, info.data.size());
    if (copy && cmd.mem().write(args.data_uptr, std::span(info.data).first(copy)))
        return -EFAULT;
    // A page of zeros at a time, as clear_user() needs no buffer: data_len
    // is the client's, up to 4 GiB.
    static constexpr std::array<std::byte, 4096> kZeros{};
    for (std::uint64_t done = copy; done < args.data_len;) {
        const std::size_t n = std::min<std::uint64_t>(args.data_len - done, kZeros.size());
        if (cmd.mem().write(args.data_uptr + done, std::span(kZeros).first(n)))
            return -EFAULT;
        done += n;
    }
    args.data_len = static_cast<std::uint32_t>(info.data.size());
    args.out_data_type = info.type;
    args.out_capabilities = info.capabilities;
    args.out_max_pasid_log2 = info.max_pasid_log2;
    return cmd.respond(args) ? -EFAULT : 0;
}

int hwpt_set_dirty_tracking_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<iommu_hwpt_set_dirty_tracking*>(buf);
    // The kernel leaves __reserved unchecked here.
    if (args.flags & ~static_cast<std::uint32_t>(IOMMU_HWPT_DIRTY_TRACKING_ENABLE))
        return -EOPNOTSUPP;
    return core::hwpt_set_dirty_tracking(cmd.ctx, args.hwpt_id,
                                         (args.flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE) != 0);
}

int hwpt_get_dirty_bitmap_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<iommu_hwpt_get_dirty_bitmap*>(buf);
    if ((args.flags & ~static_cast<std::uint32_t>(IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)) || args.__reserved)
        return -EOPNOTSUPP;
    const core::DirtyBitmapRequest request{args.hwpt_id, args.iova, args.length, args.page_size,
                                           !(args.flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)};
    // Bits are only ever set: each run of touched words is read, ORed and
    // written back, a page of the bitmap at a time, so that a page the
    // client cannot write loses only its own bits, as the kernel's pinning
    // of the bitmap page by page does.
    std::vector<std::uint64_t> words;
    return core::hwpt_get_dirty_bitmap(
        cmd.ctx, request, [&](std::uint64_t first, std::span<const std::uint64_t> bits) {
            constexpr std::uint64_t kPage = 4096;
            std::uint64_t at = args.data + first * sizeof(std::uint64_t);
            while (!bits.empty()) {
                const std::uint64_t room = (kPage - at % kPage) / sizeof(std::uint64_t);
                const auto piece = bits.first(std::min<std::size_t>(bits.size(), std::max<std::uint64_t>(room, 1)));
                words.assign(piece.size(), 0);
                if (int rc = cmd.mem().read(at, std::as_writable_bytes(std::span(words))))
                    return rc;
                for (std::size_t i = 0; i < piece.size(); ++i)
                    words[i] |= piece[i];
                if (int rc = cmd.mem().write(at, std::as_bytes(std::span(words))))
                    return rc;
                at += piece.size_bytes();
                bits = bits.subspan(piece.size());
            }
            return 0;
        });
}

} // namespace ioasid::dispatch
