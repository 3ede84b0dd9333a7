// IOMMU_TEST_CMD ops about mock devices and mock paging domains: making and
// moving mock devices, reserving IOVA, and looking at what the kernel's
// checks look at (the pages behind a mock IOPTE, the pins on a user page,
// dirty bits), here read from our own state.
#include <ioasid/selftest.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/hw_pagetable.h"
#include "core/ioas.h"
#include "core/selftest_device.h"
#include "memory/phys_space.h"
#include "selftest_ops.h"

namespace ioasid::dispatch {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kMockIoPage = kPage / 2; // MOCK_IO_PAGE_SIZE
// iommufd_test_dirty() reads at most 16 MiB of bitmap.
constexpr std::uint64_t kMaxDirtyBits = (16ULL << 20) * 8;

// The owner of ADD_RESERVED ranges: the kernel gives them none, so that
// only the IOAS's end removes them; this tag is no device's nor domain's.
constexpr char kTestReservation = 0;

// get_md_pagetable(): a paging HWPT (-ENOENT for any other id) of the mock
// driver (-EINVAL for another's).
int mock_paging_hwpt(Command& cmd, std::uint32_t id, core::HwptPaging** out)
{
    auto* hwpt = cmd.ctx.objects().find_as<core::HwptPaging>(id);
    if (!hwpt)
        return -ENOENT;
    if (hwpt->domain().unit().family() != "mock")
        return -EINVAL;
    *out = hwpt;
    return 0;
}

bool in_aperture(const hw::Domain& domain, std::uint64_t iova)
{
    const hw::Span aperture = domain.geometry().aperture;
    return iova >= aperture.first && iova <= aperture.last;
}

// Whether the IOPTE for `iova` leads to the caller's memory at `va`: its
// physical address belongs to a pinned page of user memory the caller
// mapped, at that very address. The kernel compares PFNs instead.
bool maps_caller_va(Command& cmd, const hw::Domain& domain, std::uint64_t iova, std::uint64_t va)
{
    if (!in_aperture(domain, iova))
        return false;
    const hw::Translation t = domain.lookup(iova);
    if (!t.present)
        return false;
    const auto where = cmd.ctx.services().phys.resolve(t.page_pa + (iova - t.page_iova));
    if (!where)
        return false;
    const auto* pages = dynamic_cast<const core::Pages*>(where->backing);
    return pages && pages->user_memory() && pages->owner().process_key() == cmd.caller->process_key() &&
           pages->pin_count(where->offset / kPage) > 0 && pages->uptr() + where->offset == va;
}

int mock_domain(Command& cmd, iommu_test_cmd& test, std::uint32_t dev_flags)
{
    // mock_dev_create() as of 6.15, which knows the PASID flag too.
    constexpr std::uint32_t kKnownFlags =
        MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_HUGE_IOVA | MOCK_FLAGS_DEVICE_PASID;
    if (dev_flags & ~kKnownFlags)
        return -EINVAL;
    const core::MockDeviceFlags flags{
        .no_dirty = (dev_flags & MOCK_FLAGS_DEVICE_NO_DIRTY) != 0,
        .huge_iova = (dev_flags & MOCK_FLAGS_DEVICE_HUGE_IOVA) != 0,
        .pasid = (dev_flags & MOCK_FLAGS_DEVICE_PASID) != 0,
    };
    hw::Unit* unit = cmd.ctx.services().hardware.find_family("mock");
    if (!unit)
        return -ENOTTY;
    std::uint32_t pt_id = test.id;
    std::uint32_t dev_id = 0;
    std::unique_ptr<core::PendingObject<core::SelftestDevice>> pending;
    if (int rc = core::selftest_mock_domain(cmd.ctx, *unit, flags, &pt_id, &dev_id, &pending))
        return rc;
    test.mock_domain.out_stdev_id = pending->id();
    test.mock_domain.out_hwpt_id = pt_id;
    test.mock_domain.out_idev_id = dev_id;
    // A device whose ids the client never learned is undone with the
    // pending object.
    if (cmd.respond(test))
        return -EFAULT;
    pending->publish();
    return 0;
}

} // namespace

int test_mock_domain(Command& cmd, iommu_test_cmd& test)
{
    return mock_domain(cmd, test, 0);
}

int test_mock_domain_flags(Command& cmd, iommu_test_cmd& test)
{
    return mock_domain(cmd, test, test.mock_domain_flags.dev_flags);
}

// iommufd_test_mock_domain_replace(): the answer is written back after the
// replace, which a failed write does not undo.
int test_mock_domain_replace(Command& cmd, iommu_test_cmd& test)
{
    std::uint32_t pt_id = test.mock_domain_replace.pt_id;
    if (int rc = core::selftest_mock_domain_replace(cmd.ctx, test.id, &pt_id))
        return rc;
    test.mock_domain_replace.pt_id = pt_id;
    return cmd.respond(test) ? -EFAULT : 0;
}

// iommufd_test_add_reserved().
int test_add_reserved(Command& cmd, iommu_test_cmd& test)
{
    const std::uint64_t start = test.add_reserved.start;
    const std::uint64_t length = test.add_reserved.length;
    if (length == 0)
        return -EINVAL;
    std::uint64_t last;
    if (!core::last_of(start, length, &last))
        return -EOVERFLOW;
    auto* ioas = cmd.ctx.objects().find_as<core::Ioas>(test.id);
    if (!ioas)
        return -ENOENT;
    return ioas->iopt().reserve({start, last}, &kTestReservation);
}

// iommufd_test_md_check_pa(). The kernel pins each page under uptr in
// turn, so an unmapped page ends the walk with EFAULT where it comes; the
// mapping is read once here, and only as far as the walk got.
int test_md_check_map(Command& cmd, iommu_test_cmd& test)
{
    std::uint64_t iova = test.check_map.iova;
    const std::uint64_t length = test.check_map.length;
    const std::uint64_t uptr = test.check_map.uptr;
    std::uint64_t end;
    if (iova % kMockIoPage || length % kMockIoPage || uptr % kMockIoPage ||
        __builtin_add_overflow(uptr, length, &end))
        return -EINVAL;
    core::HwptPaging* hwpt = nullptr;
    if (int rc = mock_paging_hwpt(cmd, test.id, &hwpt))
        return rc;
    const std::uint64_t first_page = uptr & ~(kPage - 1);
    for (std::uint64_t done = 0; done < length; done += kMockIoPage, iova += kMockIoPage) {
        if (maps_caller_va(cmd, hwpt->domain(), iova, uptr + done))
            continue;
        const std::uint64_t through = ((uptr + done) & ~(kPage - 1)) + kPage;
        if (int rc = cmd.mem().check_mapped(first_page, through - first_page, false))
            return rc;
        return -EINVAL;
    }
    if (length == 0)
        return 0;
    const std::uint64_t last_page_end = ((end - 1) & ~(kPage - 1)) + kPage;
    return cmd.mem().check_mapped(first_page, last_page_end - first_page, false);
}

// iommufd_test_md_check_refs(). The kernel counts the FOLL_PIN pins of each
// page and skips compound pages (THP, hugetlb), whose count it cannot
// read per page; we count the pins our Pages hold on each page of the
// caller's memory and skip nothing, which is the stronger check.
int test_md_check_refs(Command& cmd, iommu_test_cmd& test)
{
    const std::uint64_t length = test.check_refs.length;
    const std::uint64_t uptr = test.check_refs.uptr;
    std::uint64_t end;
    if (length % kPage || uptr % kPage || __builtin_add_overflow(uptr, length, &end))
        return -EINVAL;
    if (length == 0)
        return 0;
    const auto mismatch = cmd.ctx.services().accounting.first_page_pinned_otherwise(
        cmd.caller->process_key(), uptr / kPage, end / kPage - 1, test.check_refs.refs);
    // A page that is not mapped fails its GUP before its count is read.
    const std::uint64_t checked = mismatch ? (*mismatch + 1) * kPage - uptr : length;
    if (int rc = cmd.mem().check_mapped(uptr, checked, false))
        return rc;
    return mismatch ? -EIO : 0;
}

// The kernel sizes the temporary batches of pages.c with this (a global),
// which changes how often it loops, not what any ioctl answers. We have
// no such batches: pins are counted per interval and copies go in chunks
// of their own, so the limit is only checked.
int test_set_temp_memory_limit(Command&, iommu_test_cmd& test)
{
    // _batch_init() needs room for one element: an unsigned long and a u32.
    if (test.memory_limit.limit < sizeof(std::uint64_t) + sizeof(std::uint32_t))
        return -EINVAL;
    return 0;
}

// iommufd_test_dirty(): marks dirty the IOPTEs under the set bits of the
// caller's bitmap, as if a device had written there. 6.12 looks the
// IOPTE up at index cur / page_size of its 2 KiB-granule xarray, which is
// the IOPTE of IOVA cur for the page size the selftests use
// (MOCK_IO_PAGE_SIZE); we mark the IOPTE of IOVA cur for any page size.
int test_dirty(Command& cmd, iommu_test_cmd& test)
{
    const auto& args = test.dirty;
    if (args.page_size == 0 || args.length == 0 || args.iova % args.page_size ||
        args.length % args.page_size || args.uptr == 0)
        return -EINVAL;
    const std::uint64_t nbits = args.length / args.page_size;
    if (nbits > kMaxDirtyBits)
        return -EOVERFLOW;
    core::HwptPaging* hwpt = nullptr;
    if (int rc = mock_paging_hwpt(cmd, test.id, &hwpt))
        return rc;
    hw::Domain& domain = hwpt->domain();
    if (!domain.dirty_tracking())
        return -EINVAL;
    // All of the bitmap is read before anything is marked, so a bitmap the
    // client cannot give changes nothing.
    std::vector<std::uint8_t> bitmap((nbits + 7) / 8);
    if (cmd.mem().read(args.uptr, std::as_writable_bytes(std::span(bitmap))))
        return -EFAULT;
    std::uint64_t count = 0;
    for (std::uint64_t i = 0; i < nbits; ++i) {
        if (!(bitmap[i / 8] & (1u << (i % 8))))
            continue;
        const std::uint64_t cur = args.iova + i * args.page_size;
        if (!in_aperture(domain, cur) || !domain.lookup(cur).present)
            continue;
        domain.note_use(cur, hw::Access::write);
        ++count;
    }
    test.dirty.out_nr_dirty = count;
    return cmd.respond(test) ? -EFAULT : 0;
}

} // namespace ioasid::dispatch
