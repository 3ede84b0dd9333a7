// The VFIO type1 container ioctls on an iommufd (the kernel's
// iommufd_vfio_ioctl(), which iommufd_fops_ioctl() calls for any number
// outside its own table). They follow VFIO's rules, not iommufd's: no
// leading size, an `argsz` checked against the first version's end and
// never for E2BIG, and three commands that take an integer, not a pointer.
#include <ioasid/iommufd.h>
#include <ioasid/vfio.h>
#include <linux/ioctl.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <span>

#include "command.h"
#include "core/vfio_compat.h"

namespace ioasid::dispatch {
namespace {

#define END_OF(type, field) (offsetof(type, field) + sizeof(((type*)nullptr)->field))

// What the kernel copies in before it looks at argsz: the first version.
constexpr std::size_t kInfoMin = END_OF(vfio_iommu_type1_info, iova_pgsizes);
constexpr std::size_t kMapMin = END_OF(vfio_iommu_type1_dma_map, size);
constexpr std::size_t kUnmapMin = END_OF(vfio_iommu_type1_dma_unmap, size);

#undef END_OF

// The vfio structs' sizes, which the kernel's include/uapi/linux/vfio.h
// (6.12) fixes and the cap chain depends on.
static_assert(sizeof(vfio_iommu_type1_info) == 24 && kInfoMin == 16);
static_assert(sizeof(vfio_iommu_type1_dma_map) == 32 && kMapMin == 32);
static_assert(sizeof(vfio_iommu_type1_dma_unmap) == 24 && kUnmapMin == 24);
static_assert(sizeof(vfio_info_cap_header) == 8);
static_assert(sizeof(vfio_iommu_type1_info_cap_iova_range) == 16);
static_assert(sizeof(vfio_iova_range) == 16);
static_assert(sizeof(vfio_iommu_type1_info_dma_avail) == 12);

template <typename T>
int read_first(Command& cmd, T* value, std::size_t length)
{
    auto bytes = std::as_writable_bytes(std::span(value, 1)).first(length);
    return cmd.mem().read(cmd.arg, bytes) ? -EFAULT : 0;
}

template <typename T>
int write_at(Command& cmd, std::uint64_t addr, const T& value, std::size_t length = sizeof(T))
{
    return cmd.mem().write(addr, std::as_bytes(std::span(&value, 1)).first(length)) ? -EFAULT : 0;
}

int get_api_version(Command&)
{
    return VFIO_API_VERSION;
}

// iommufd_vfio_check_extension(): the answer is the return value.
int check_extension(Command& cmd)
{
    switch (cmd.arg) {
    case VFIO_TYPE1_IOMMU:
    case VFIO_TYPE1v2_IOMMU:
    case VFIO_UNMAP_ALL:
        return 1;
    case VFIO_DMA_CC_IOMMU:
        return core::vfio_compat_dma_cc(cmd.ctx);
    // The no-IOMMU type exists only in kernels built with
    // CONFIG_VFIO_NOIOMMU, which Debian's 6.12 is not; nested type1 and
    // VFIO_DMA_MAP_FLAG_VADDR are refused by every iommufd.
    default:
        return 0;
    }
}

int set_iommu(Command& cmd)
{
    core::VfioIommuType type = core::VfioIommuType::other;
    if (cmd.arg == VFIO_TYPE1_IOMMU)
        type = core::VfioIommuType::type1;
    else if (cmd.arg == VFIO_TYPE1v2_IOMMU)
        type = core::VfioIommuType::type1v2;
    return core::vfio_compat_set_iommu(cmd.ctx, type);
}

// One capability of VFIO_IOMMU_GET_INFO's chain, written at `at` only as
// far as `avail` bytes reach: returns its full size, or -EFAULT.
using CapFiller = int (*)(Command& cmd, const core::VfioCompatInfo& facts, std::uint64_t at,
                          std::uint64_t avail);

// iommufd_fill_cap_dma_avail(): the limit is the memlock rlimit, not a
// mapping count, so the count is the largest a __u32 holds.
int fill_dma_avail(Command& cmd, const core::VfioCompatInfo&, std::uint64_t at, std::uint64_t avail)
{
    const vfio_iommu_type1_info_dma_avail cap{
        .header = {.id = VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, .version = 1, .next = 0},
        .avail = UINT32_MAX};
    if (avail >= sizeof(cap))
        if (int rc = write_at(cmd, at, cap))
            return rc;
    return sizeof(cap);
}

// iommufd_fill_cap_iova(): each range that fits is written, then the
// header if all of them fit.
int fill_iova_range(Command& cmd, const core::VfioCompatInfo& facts, std::uint64_t at,
                    std::uint64_t avail)
{
    constexpr std::uint64_t kHead = sizeof(vfio_iommu_type1_info_cap_iova_range);
    constexpr std::uint64_t kRange = sizeof(vfio_iova_range);
    std::uint32_t count = 0;
    for (const core::IovaRange& usable : facts.usable) {
        const vfio_iova_range range{.start = usable.first, .end = usable.last};
        if (avail >= kHead + kRange * (count + 1))
            if (int rc = write_at(cmd, at + kHead + kRange * count, range))
                return rc;
        ++count;
    }
    const vfio_iommu_type1_info_cap_iova_range cap{
        .header = {.id = VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, .version = 1, .next = 0},
        .nr_iovas = count,
        .reserved = 0};
    if (avail >= kHead + kRange * count)
        if (int rc = write_at(cmd, at, cap))
            return rc;
    return static_cast<int>(kHead + kRange * count);
}

// iommufd_vfio_iommu_get_info(): the caps follow the struct, each aligned
// to 8; what does not fit in argsz is left out and argsz comes back as the
// size that would hold them all. Nothing past argsz is ever written.
int get_info(Command& cmd)
{
    vfio_iommu_type1_info info{};
    if (int rc = read_first(cmd, &info, kInfoMin))
        return rc;
    if (info.argsz < kInfoMin)
        return -EINVAL;
    const std::size_t out_size = std::min<std::size_t>(info.argsz, sizeof(info));

    core::VfioCompatInfo facts;
    if (int rc = core::vfio_compat_info(cmd.ctx, &facts))
        return rc;
    info.flags = VFIO_IOMMU_INFO_PGSIZES;
    info.iova_pgsizes = facts.iova_pgsizes;
    info.cap_offset = 0;

    constexpr std::array<CapFiller, 2> kCaps{fill_dma_avail, fill_iova_range};
    std::uint64_t total = sizeof(info);
    std::uint64_t last_cap = 0;
    for (CapFiller fill : kCaps) {
        const std::uint64_t avail = info.argsz > total ? info.argsz - total : 0;
        int cap_size = fill(cmd, facts, cmd.arg + total, avail);
        if (cap_size < 0)
            return cap_size;
        const std::uint64_t aligned_size = (static_cast<std::uint64_t>(cap_size) + 7) & ~7ULL;
        // The previous cap was written only if it fit, and then so does
        // its `next`.
        if (last_cap && info.argsz >= total) {
            const auto next = static_cast<std::uint32_t>(total);
            if (int rc = write_at(cmd, cmd.arg + last_cap + offsetof(vfio_info_cap_header, next), next))
                return rc;
        }
        last_cap = total;
        total += aligned_size;
    }
    if (info.argsz >= total)
        info.cap_offset = sizeof(info);
    info.argsz = static_cast<std::uint32_t>(total);
    info.flags |= VFIO_IOMMU_INFO_CAPS;
    return write_at(cmd, cmd.arg, info, out_size);
}

int map_dma(Command& cmd)
{
    constexpr std::uint32_t kSupported = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
    vfio_iommu_type1_dma_map map{};
    if (int rc = read_first(cmd, &map, kMapMin))
        return rc;
    if (map.argsz < kMapMin || (map.flags & ~kSupported))
        return -EINVAL;
    return core::vfio_compat_map_dma(cmd.ctx, cmd.caller, map.vaddr, map.iova, map.size,
                                     map.flags & VFIO_DMA_MAP_FLAG_READ,
                                     map.flags & VFIO_DMA_MAP_FLAG_WRITE);
}

// iommufd_vfio_unmap_dma(): the dirty-bitmap flag is refused (dirty
// tracking is IOMMU_HWPT_GET_DIRTY_BITMAP's), and so is VADDR. `size`
// comes back as the bytes unmapped, after a failure too.
int unmap_dma(Command& cmd)
{
    vfio_iommu_type1_dma_unmap unmap{};
    if (int rc = read_first(cmd, &unmap, kUnmapMin))
        return rc;
    if (unmap.argsz < kUnmapMin || (unmap.flags & ~VFIO_DMA_UNMAP_FLAG_ALL))
        return -EINVAL;
    if (!cmd.ctx.vfio_ioas())
        return -ENODEV;
    std::uint64_t unmapped = 0;
    int rc;
    if (unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL) {
        if (unmap.iova != 0 || unmap.size != 0)
            return -EINVAL;
        rc = core::vfio_compat_unmap_all(cmd.ctx, &unmapped);
    } else {
        // A refused cut leaves the struct as it was.
        if (int cut_rc = core::vfio_compat_cut_for_unmap(cmd.ctx, unmap.iova, unmap.size))
            return cut_rc;
        rc = core::vfio_compat_unmap_dma(cmd.ctx, unmap.iova, unmap.size, &unmapped);
    }
    unmap.size = unmapped;
    if (write_at(cmd, cmd.arg, unmap, kUnmapMin))
        return -EFAULT;
    return rc;
}

using Handler = int (*)(Command&);

struct VfioOp {
    unsigned int cmd;
    Handler handler;
};

// VFIO_IOMMU_DIRTY_PAGES, and everything not here, is ENOTTY.
constexpr std::array kVfioOps{
    VfioOp{VFIO_GET_API_VERSION, get_api_version},
    VfioOp{VFIO_CHECK_EXTENSION, check_extension},
    VfioOp{VFIO_SET_IOMMU, set_iommu},
    VfioOp{VFIO_IOMMU_GET_INFO, get_info},
    VfioOp{VFIO_IOMMU_MAP_DMA, map_dma},
    VfioOp{VFIO_IOMMU_UNMAP_DMA, unmap_dma},
};

// The dispatcher sends these here only because their numbers lie outside
// iommufd's table.
static_assert(std::ranges::all_of(kVfioOps, [](const VfioOp& op) {
    return _IOC_NR(op.cmd) < IOMMUFD_CMD_BASE;
}));

} // namespace

VfioCompatHandler find_vfio_compat(unsigned int cmd)
{
    for (const VfioOp& op : kVfioOps)
        if (op.cmd == cmd)
            return op.handler;
    return nullptr;
}

} // namespace ioasid::dispatch
