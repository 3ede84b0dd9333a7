#include "vfio_device.h"

#include <ioasid/vfio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <optional>
#include <set>
#include <span>

#include <fmt/format.h>

#include "core/device.h"

namespace ioasid::dispatch {
namespace {

#define END_OF(type, field) (offsetof(type, field) + sizeof(((type*)nullptr)->field))

// The layouts are the kernel's (uapi/ioasid/vfio.h says which version).
static_assert(sizeof(vfio_device_bind_iommufd) == 24 && offsetof(vfio_device_bind_iommufd, iommufd) == 8 &&
              offsetof(vfio_device_bind_iommufd, out_devid) == 12 &&
              offsetof(vfio_device_bind_iommufd, token_uuid_ptr) == 16);
static_assert(sizeof(vfio_device_attach_iommufd_pt) == 16 &&
              offsetof(vfio_device_attach_iommufd_pt, pt_id) == 8 &&
              offsetof(vfio_device_attach_iommufd_pt, pasid) == 12);
static_assert(sizeof(vfio_device_detach_iommufd_pt) == 12 &&
              offsetof(vfio_device_detach_iommufd_pt, pasid) == 8);
static_assert(sizeof(vfio_device_info) == 24 && sizeof(vfio_region_info) == 32 &&
              sizeof(vfio_irq_info) == 16 && sizeof(vfio_device_feature) == 8);
static_assert(VFIO_DEVICE_BIND_IOMMUFD == 0x3b76 && VFIO_DEVICE_ATTACH_IOMMUFD_PT == 0x3b77 &&
              VFIO_DEVICE_DETACH_IOMMUFD_PT == 0x3b78 && VFIO_DEVICE_GET_INFO == 0x3b6b);

// The first version of each struct: what the kernel reads before anything
// else (minsz).
constexpr std::uint32_t kBindMin = END_OF(vfio_device_bind_iommufd, out_devid);
constexpr std::uint32_t kAttachMin = END_OF(vfio_device_attach_iommufd_pt, pt_id);
constexpr std::uint32_t kAttachPasidMin = END_OF(vfio_device_attach_iommufd_pt, pasid);
constexpr std::uint32_t kDetachMin = END_OF(vfio_device_detach_iommufd_pt, flags);
constexpr std::uint32_t kDetachPasidMin = END_OF(vfio_device_detach_iommufd_pt, pasid);
constexpr std::uint32_t kInfoMin = END_OF(vfio_device_info, num_irqs);
constexpr std::uint32_t kRegionInfoMin = END_OF(vfio_region_info, offset);
constexpr std::uint32_t kIrqInfoMin = END_OF(vfio_irq_info, count);
constexpr std::uint32_t kSetIrqsMin = 20; // struct vfio_irq_set through count
constexpr std::uint32_t kFeatureMin = END_OF(vfio_device_feature, flags);

// vfio_df_open(): a device opens through one cdev file at a time (the
// group path, which allows more, does not exist here). Kept across every
// transport, as the kernel's open_count is the device's.
std::mutex open_lock;
std::set<const core::EmulatedDevice*> opened;

bool claim_open(const core::EmulatedDevice& device)
{
    std::lock_guard guard(open_lock);
    return opened.insert(&device).second;
}

void release_open(const core::EmulatedDevice& device)
{
    std::lock_guard guard(open_lock);
    opened.erase(&device);
}

// A copy from the caller: -EFAULT when it cannot be read, -ESRCH when the
// caller is gone.
int read_user(memory::CallerMemory& mem, std::uint64_t addr, void* out, std::size_t len)
{
    if (int rc = mem.read(addr, std::span(static_cast<std::byte*>(out), len)))
        return rc == -ESRCH ? rc : -EFAULT;
    return 0;
}

template <typename T>
int write_user(memory::CallerMemory& mem, std::uint64_t addr, const T& value, std::size_t len = sizeof(T))
{
    if (int rc = mem.write(addr, std::as_bytes(std::span(&value, 1)).first(len)))
        return rc == -ESRCH ? rc : -EFAULT;
    return 0;
}

// copy_struct_from_user(): a shorter struct is zero-extended; a longer one
// is accepted only when every byte past ours is zero (E2BIG), checked page
// by page so that a non-zero byte before an unmapped page wins.
int copy_struct(memory::CallerMemory& mem, std::uint64_t arg, std::uint32_t user_size,
                std::span<std::byte> out)
{
    constexpr std::uint64_t kPage = 4096;
    std::array<std::byte, kPage> chunk;
    for (std::uint64_t at = out.size(); at < user_size;) {
        const std::size_t n =
            std::min<std::uint64_t>(kPage - ((arg + at) % kPage), user_size - at);
        if (int rc = read_user(mem, arg + at, chunk.data(), n))
            return rc;
        if (std::any_of(chunk.begin(), chunk.begin() + n, [](std::byte b) { return b != std::byte{0}; }))
            return -E2BIG;
        at += n;
    }
    const std::size_t known = std::min<std::size_t>(user_size, out.size());
    std::fill(out.begin() + known, out.end(), std::byte{0});
    return read_user(mem, arg, out.data(), known);
}

// The part of the device's ioctls a device with no regions, interrupts or
// reset has (vfio-pci's shape, with none of them). Run once bound.
int get_info(memory::CallerMemory& mem, std::uint64_t arg)
{
    vfio_device_info info{};
    if (int rc = read_user(mem, arg, &info, kInfoMin))
        return rc;
    if (info.argsz < kInfoMin)
        return -EINVAL;
    info.flags = 0; // neither PCI (it would need config space) nor RESET
    info.num_regions = 0;
    info.num_irqs = 0;
    return write_user(mem, arg, info, kInfoMin);
}

int get_region_info(memory::CallerMemory& mem, std::uint64_t arg)
{
    vfio_region_info info{};
    if (int rc = read_user(mem, arg, &info, kRegionInfoMin))
        return rc;
    // No index is below num_regions.
    return -EINVAL;
}

int get_irq_info(memory::CallerMemory& mem, std::uint64_t arg)
{
    vfio_irq_info info{};
    if (int rc = read_user(mem, arg, &info, kIrqInfoMin))
        return rc;
    return -EINVAL;
}

int set_irqs(memory::CallerMemory& mem, std::uint64_t arg)
{
    std::array<std::byte, kSetIrqsMin> header;
    if (int rc = read_user(mem, arg, header.data(), header.size()))
        return rc;
    return -EINVAL; // argsz too small, or an index past num_irqs (0)
}

// vfio_ioctl_device_feature(): the checks of the common code, then no
// feature (no migration, no DMA logging, no driver features).
int feature(memory::CallerMemory& mem, std::uint64_t arg)
{
    vfio_device_feature header{};
    if (int rc = read_user(mem, arg, &header, kFeatureMin))
        return rc;
    if (header.argsz < kFeatureMin)
        return -EINVAL;
    constexpr std::uint32_t kKnown = VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_SET |
                                     VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_PROBE;
    if (header.flags & ~kKnown)
        return -EINVAL;
    if (!(header.flags & VFIO_DEVICE_FEATURE_PROBE) && (header.flags & VFIO_DEVICE_FEATURE_SET) &&
        (header.flags & VFIO_DEVICE_FEATURE_GET))
        return -EINVAL;
    return -ENOTTY;
}

const char* name_of(unsigned int cmd)
{
    switch (cmd) {
    case VFIO_DEVICE_BIND_IOMMUFD:
        return "VFIO_DEVICE_BIND_IOMMUFD";
    case VFIO_DEVICE_ATTACH_IOMMUFD_PT:
        return "VFIO_DEVICE_ATTACH_IOMMUFD_PT";
    case VFIO_DEVICE_DETACH_IOMMUFD_PT:
        return "VFIO_DEVICE_DETACH_IOMMUFD_PT";
    case VFIO_DEVICE_GET_INFO:
        return "VFIO_DEVICE_GET_INFO";
    case VFIO_DEVICE_GET_REGION_INFO:
        return "VFIO_DEVICE_GET_REGION_INFO";
    case VFIO_DEVICE_GET_IRQ_INFO:
        return "VFIO_DEVICE_GET_IRQ_INFO";
    case VFIO_DEVICE_SET_IRQS:
        return "VFIO_DEVICE_SET_IRQS";
    case VFIO_DEVICE_RESET:
        return "VFIO_DEVICE_RESET";
    case VFIO_DEVICE_FEATURE:
        return "VFIO_DEVICE_FEATURE";
    default:
        return nullptr;
    }
}

} // namespace

VfioDevice::VfioDevice(core::EmulatedDevice& device) : device_(device) {}

VfioDevice::~VfioDevice()
{
    unbind();
}

int VfioDevice::answer_without_struct(unsigned int cmd) const
{
    if (cmd == VFIO_DEVICE_BIND_IOMMUFD)
        return 0;
    // vfio_device_fops_unl_ioctl(): nothing but the bind before the bind.
    if (!bound())
        return -EINVAL;
    switch (cmd) {
    case VFIO_DEVICE_ATTACH_IOMMUFD_PT:
    case VFIO_DEVICE_DETACH_IOMMUFD_PT:
    case VFIO_DEVICE_GET_INFO:
    case VFIO_DEVICE_GET_REGION_INFO:
    case VFIO_DEVICE_GET_IRQ_INFO:
    case VFIO_DEVICE_SET_IRQS:
    case VFIO_DEVICE_FEATURE:
        return 0;
    case VFIO_DEVICE_RESET:
        return -EINVAL; // vfio-pci without reset_works
    default:
        return -ENOTTY;
    }
}

int VfioDevice::ioctl(unsigned int cmd, const std::shared_ptr<memory::Caller>& caller,
                      std::uint64_t arg, const IommufdResolver& resolve)
{
    std::lock_guard guard(lock_);
    if (cmd == VFIO_DEVICE_BIND_IOMMUFD)
        return bind(*caller, arg, resolve);
    if (!ctx_)
        return -EINVAL;
    memory::CallerMemory& mem = caller->memory();
    switch (cmd) {
    case VFIO_DEVICE_ATTACH_IOMMUFD_PT:
        return attach(*caller, arg);
    case VFIO_DEVICE_DETACH_IOMMUFD_PT:
        return detach(*caller, arg);
    case VFIO_DEVICE_GET_INFO:
        return get_info(mem, arg);
    case VFIO_DEVICE_GET_REGION_INFO:
        return get_region_info(mem, arg);
    case VFIO_DEVICE_GET_IRQ_INFO:
        return get_irq_info(mem, arg);
    case VFIO_DEVICE_SET_IRQS:
        return set_irqs(mem, arg);
    case VFIO_DEVICE_FEATURE:
        return feature(mem, arg);
    default:
        return answer_without_struct(cmd);
    }
}

// vfio_df_ioctl_bind_iommufd() of Linux 6.17 with its later fix (the whole
// struct read as copy_struct_from_user() does), in its order.
int VfioDevice::bind(memory::Caller& caller, std::uint64_t arg, const IommufdResolver& resolve)
{
    memory::CallerMemory& mem = caller.memory();
    std::uint32_t user_size;
    if (int rc = read_user(mem, arg, &user_size, sizeof(user_size)))
        return rc;
    if (user_size < kBindMin)
        return -EINVAL;
    vfio_device_bind_iommufd args{};
    if (int rc = copy_struct(mem, arg, user_size, std::as_writable_bytes(std::span(&args, 1))))
        return rc;
    if (args.iommufd < 0 || (args.flags & ~std::uint32_t{VFIO_DEVICE_BIND_FLAG_TOKEN}))
        return -EINVAL;
    // One device file binds once.
    if (ctx_)
        return -EINVAL;
    // vfio_df_check_token(): vfio-pci takes a token only from an SR-IOV PF
    // or VF, which no emulated device is ("VF token incorrectly provided,
    // not a PF or VF"); it is read first all the same.
    if (args.flags & VFIO_DEVICE_BIND_FLAG_TOKEN) {
        std::array<std::byte, 16> uuid;
        if (int rc = read_user(mem, args.token_uuid_ptr, uuid.data(), uuid.size()))
            return rc;
        return -EINVAL;
    }
    std::shared_ptr<core::Context> ctx;
    if (int rc = resolve(args.iommufd, &ctx))
        return rc;
    if (!claim_open(device_))
        return -EINVAL;
    std::uint32_t dev_id = 0;
    int rc;
    {
        std::lock_guard ctx_guard(ctx->lock());
        ctx->note_caller(caller.tgid());
        rc = core::device_bind(*ctx, device_, &dev_id);
        // A device the caller cannot learn the id of is not bound.
        if (rc == 0) {
            rc = write_user(mem, arg + offsetof(vfio_device_bind_iommufd, out_devid), dev_id);
            if (rc)
                (void)core::device_unbind(*ctx, dev_id);
        }
    }
    if (rc) {
        release_open(device_);
        return rc; // ctx's reference goes here, outside its lock
    }
    ctx_ = std::move(ctx);
    dev_id_ = dev_id;
    bound_.store(true, std::memory_order_release);
    return 0;
}

// vfio_df_ioctl_attach_pt() of Linux 6.15.
int VfioDevice::attach(memory::Caller& caller, std::uint64_t arg)
{
    memory::CallerMemory& mem = caller.memory();
    vfio_device_attach_iommufd_pt args{};
    if (int rc = read_user(mem, arg, &args, kAttachMin))
        return rc;
    if (args.argsz < kAttachMin || (args.flags & ~std::uint32_t{VFIO_DEVICE_ATTACH_PASID}))
        return -EINVAL;
    std::optional<std::uint32_t> pasid;
    if (args.flags & VFIO_DEVICE_ATTACH_PASID) {
        // The kernel's test is whether the VFIO driver attaches PASIDs at
        // all (ops->pasid_attach_ioas); an emulated device's driver does
        // so when the device has PASIDs. (vfio-pci has the op for every
        // PCI device and leaves a device without PASIDs to iommufd's
        // EINVAL; the reference of this project asks for EOPNOTSUPP.)
        if (device_.pasid_bits() == 0)
            return -EOPNOTSUPP;
        if (args.argsz < kAttachPasidMin)
            return -EINVAL;
        if (int rc = read_user(mem, arg + kAttachMin, &args.pasid, sizeof(args.pasid)))
            return rc;
        pasid = args.pasid;
    }
    std::lock_guard ctx_guard(ctx_->lock());
    ctx_->note_caller(caller.tgid());
    if (int rc = core::device_attach(*ctx_, dev_id_, pasid, &args.pt_id))
        return rc;
    // An attach the caller cannot learn about is undone: detached (even
    // when it replaced another attachment), as the kernel does.
    if (int rc = write_user(mem, arg + offsetof(vfio_device_attach_iommufd_pt, pt_id), args.pt_id)) {
        (void)core::device_detach(*ctx_, dev_id_, pasid);
        return rc;
    }
    return 0;
}

// vfio_df_ioctl_detach_pt() of Linux 6.15.
int VfioDevice::detach(memory::Caller& caller, std::uint64_t arg)
{
    memory::CallerMemory& mem = caller.memory();
    vfio_device_detach_iommufd_pt args{};
    if (int rc = read_user(mem, arg, &args, kDetachMin))
        return rc;
    if (args.argsz < kDetachMin || (args.flags & ~std::uint32_t{VFIO_DEVICE_DETACH_PASID}))
        return -EINVAL;
    std::optional<std::uint32_t> pasid;
    if (args.flags & VFIO_DEVICE_DETACH_PASID) {
        if (device_.pasid_bits() == 0)
            return -EOPNOTSUPP;
        if (args.argsz < kDetachPasidMin)
            return -EINVAL;
        if (int rc = read_user(mem, arg + kDetachMin, &args.pasid, sizeof(args.pasid)))
            return rc;
        pasid = args.pasid;
    }
    std::lock_guard ctx_guard(ctx_->lock());
    ctx_->note_caller(caller.tgid());
    return core::device_detach(*ctx_, dev_id_, pasid);
}

void VfioDevice::unbind()
{
    std::lock_guard guard(lock_);
    unbind_locked();
}

// vfio_df_unbind_iommufd(): the device detaches and its DEVICE object goes
// (iommufd_device_unbind), then the file's reference on the iommufd.
void VfioDevice::unbind_locked()
{
    if (!ctx_)
        return;
    bound_.store(false, std::memory_order_release);
    {
        std::lock_guard ctx_guard(ctx_->lock());
        (void)core::device_unbind(*ctx_, dev_id_);
    }
    release_open(device_);
    dev_id_ = 0;
    // The last reference may end the context: outside its lock.
    ctx_.reset();
}

std::string VfioDevice::describe(unsigned int cmd, memory::CallerMemory& mem, std::uint64_t arg)
{
    const char* name = name_of(cmd);
    if (!name)
        return fmt::format("VFIO ioctl {:#x}", cmd);
    std::array<std::uint32_t, 6> words{};
    std::size_t got = 0;
    // As much of the struct as is readable, a word at a time.
    while (got < words.size() && read_user(mem, arg + 4 * got, &words[got], 4) == 0)
        ++got;
    if (got == 0)
        return fmt::format("{}{{unreadable}}", name);
    std::string out = fmt::format("{}{{argsz={}", name, words[0]);
    if (got > 1)
        out += fmt::format(" flags={:#x}", words[1]);
    switch (cmd) {
    case VFIO_DEVICE_BIND_IOMMUFD:
        if (got > 2)
            out += fmt::format(" iommufd={}", static_cast<std::int32_t>(words[2]));
        if (got > 3)
            out += fmt::format(" out_devid={}", words[3]);
        break;
    case VFIO_DEVICE_ATTACH_IOMMUFD_PT:
        if (got > 2)
            out += fmt::format(" pt_id={}", words[2]);
        if (got > 3 && (words[1] & VFIO_DEVICE_ATTACH_PASID))
            out += fmt::format(" pasid={}", words[3]);
        break;
    case VFIO_DEVICE_DETACH_IOMMUFD_PT:
        if (got > 2 && (words[1] & VFIO_DEVICE_DETACH_PASID))
            out += fmt::format(" pasid={}", words[2]);
        break;
    case VFIO_DEVICE_GET_INFO:
        if (got > 3)
            out += fmt::format(" num_regions={} num_irqs={}", words[2], words[3]);
        break;
    default:
        if (got > 2)
            out += fmt::format(" index={}", words[2]);
        break;
    }
    return out + "}";
}

} // namespace ioasid::dispatch
