// IOMMU_TEST_CMD's access ops: an emulated device without an IOMMU (the
// kernel's iommufd_access, what mdev drivers use) behind a file the client
// holds. CREATE_ACCESS hands the file over; the other ops name it by the
// client's descriptor number in `id`. The rules are those of selftest.c
// (iommufd_test_create_access() ... iommufd_test_access_rw()) over
// device.c's iommufd_access_*().
#include <ioasid/selftest.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/pages.h"
#include "core/selftest_access.h"
#include "selftest_ops.h"

namespace ioasid::dispatch {
namespace {

// What the kernel allocates at most for one op, to keep syzkaller off a
// WARN in kvzalloc(); more is ENOMEM before anything else is looked at.
constexpr std::uint64_t kMaxAccessLength = 16ULL << 20;

// The kernel's fget() .. fput() around an op. The caller keeps its own
// reference until the request ends (see memory::Caller::find_file), so the
// file's end never runs here, under the context's lock.
using AccessRef = std::shared_ptr<core::SelftestAccess>;

// iommufd_access_get(): any descriptor that is not an access file of ours
// (none at all included) is EBADFD. One of another context is refused too:
// its objects are guarded by a lock this ioctl cannot take safely.
int get_access(Command& cmd, std::uint32_t fd, AccessRef* out)
{
    std::shared_ptr<core::ClientFile> file;
    if (cmd.caller->find_file(static_cast<int>(fd), &file))
        return -EBADFD;
    auto access = std::dynamic_pointer_cast<core::SelftestAccess>(std::move(file));
    if (!access || &access->context() != &cmd.ctx)
        return -EBADFD;
    *out = std::move(access);
    return 0;
}

// iommufd_test_check_pages(): each pinned page must be the page the caller
// has at uptr, uptr + PAGE_SIZE, ... The kernel compares struct pages; we
// compare what our physical pages stand for, the (process, address) they
// were pinned from. Unmapped memory at uptr fails as GUP does.
int check_pages(Command& cmd, std::uint64_t uptr, const std::vector<std::uint64_t>& phys)
{
    constexpr std::uint64_t kPageMask = ~(core::kPageSize - 1);
    for (std::size_t i = 0; i < phys.size(); ++i) {
        // Whole pages: the kernel pins from uptr's page on.
        const std::uint64_t va = (uptr & kPageMask) + i * core::kPageSize;
        if (int rc = cmd.mem().check_mapped(va, 1, false))
            return rc == -ESRCH ? rc : -EFAULT;
        auto resolved = cmd.ctx.services().phys.resolve(phys[i]);
        auto* pages = resolved ? dynamic_cast<core::Pages*>(resolved->backing) : nullptr;
        if (!pages || pages->owner().process_key() != cmd.caller->process_key() ||
            ((pages->uptr() + resolved->offset) & kPageMask) != va)
            return -EBADE;
    }
    return 0;
}

} // namespace

int test_create_access(Command& cmd, iommu_test_cmd& test)
{
    const std::uint32_t flags = test.create_access.flags;
    if (flags & ~MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES)
        return -EOPNOTSUPP;
    std::shared_ptr<core::SelftestAccess> file;
    if (int rc = core::SelftestAccess::create(cmd.ctx, test.id,
                                              flags & MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES, &file))
        return rc;
    int rc = cmd.respond(test);
    if (rc == 0)
        rc = cmd.hand_over_file(file, offsetof(iommu_test_cmd, create_access.out_access_fd));
    if (rc)
        file->discard();
    return rc;
}

int test_destroy_access_pages(Command& cmd, iommu_test_cmd& test)
{
    AccessRef access;
    if (int rc = get_access(cmd, test.id, &access))
        return rc;
    return access->unpin(test.destroy_access_pages.access_pages_id);
}

int test_access_pages(Command& cmd, iommu_test_cmd& test)
{
    auto& args = test.access_pages;
    if (args.length > kMaxAccessLength)
        return -ENOMEM;
    if (args.flags & ~(MOCK_FLAGS_ACCESS_WRITE | MOCK_FLAGS_ACCESS_SYZ))
        return -EOPNOTSUPP;
    AccessRef access;
    if (int rc = get_access(cmd, test.id, &access))
        return rc;
    if (!access->needs_pin_pages())
        return -EOPNOTSUPP;
    std::uint64_t iova = args.iova;
    if (args.flags & MOCK_FLAGS_ACCESS_SYZ)
        iova = access->syz_iova(iova);

    std::vector<std::uint64_t> phys;
    std::uint32_t item = 0;
    if (int rc = access->pin(iova, args.length, args.flags & MOCK_FLAGS_ACCESS_WRITE, &phys, &item))
        return rc;
    // A zero uptr skips the check (syzkaller's way).
    if (int rc = args.uptr ? check_pages(cmd, args.uptr - iova % core::kPageSize, phys) : 0) {
        access->forget(item, true);
        return rc;
    }
    args.out_access_pages_id = item;
    if (int rc = cmd.respond(test)) {
        access->forget(item, false);
        return rc;
    }
    return 0;
}

int test_access_rw(Command& cmd, iommu_test_cmd& test)
{
    const auto& args = test.access_rw;
    if (args.length > kMaxAccessLength)
        return -ENOMEM;
    if (args.flags & ~(MOCK_ACCESS_RW_WRITE | MOCK_ACCESS_RW_SLOW_PATH | MOCK_FLAGS_ACCESS_SYZ))
        return -EOPNOTSUPP;
    AccessRef access;
    if (int rc = get_access(cmd, test.id, &access))
        return rc;
    // The kernel's bounce buffer: filled from the caller before a write,
    // copied to the caller after a read. The slow path (pinning through
    // the caller's mm) and the fast one read the same memory here.
    const bool write = args.flags & MOCK_ACCESS_RW_WRITE;
    std::vector<std::byte> bounce(args.length);
    if (write)
        if (int rc = cmd.mem().read(args.uptr, bounce))
            return rc == -ESRCH ? rc : -EFAULT;
    std::uint64_t iova = args.iova;
    if (args.flags & MOCK_FLAGS_ACCESS_SYZ)
        iova = access->syz_iova(iova);
    if (int rc = access->rw(iova, bounce, write))
        return rc;
    if (!write)
        if (int rc = cmd.mem().write(args.uptr, bounce))
            return rc == -ESRCH ? rc : -EFAULT;
    return 0;
}

int test_access_replace_ioas(Command& cmd, iommu_test_cmd& test)
{
    AccessRef access;
    if (int rc = get_access(cmd, test.id, &access))
        return rc;
    return access->replace_ioas(test.access_replace_ioas.ioas_id);
}

} // namespace ioasid::dispatch
