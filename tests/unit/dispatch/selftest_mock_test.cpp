// IOMMU_TEST_CMD's mock-device ops, against drivers/iommu/iommufd/selftest.c
// (iommufd_test_mock_domain(), iommufd_test_mock_domain_replace(),
// iommufd_test_add_reserved(), iommufd_test_md_check_pa(),
// iommufd_test_md_check_refs(), iommufd_test_dirty(),
// iommufd_selftest_destroy()), and the core pieces they need: run-time
// devices in Hardware and the per-page pin counts.
#include <catch2/catch.hpp>

#include <ioasid/selftest.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/selftest_device.h"
#include "dispatch/dispatcher.h"
#include "hardware_fixture.h"

namespace ioasid::test {
namespace {

constexpr std::uint32_t kNoDirty = MOCK_FLAGS_DEVICE_NO_DIRTY;
constexpr std::uint32_t kHugeIova = MOCK_FLAGS_DEVICE_HUGE_IOVA;
constexpr std::uint32_t kPasid = MOCK_FLAGS_DEVICE_PASID;

iommu_test_cmd test_cmd(std::uint32_t op, std::uint32_t id = 0)
{
    iommu_test_cmd cmd{};
    cmd.size = sizeof(cmd);
    cmd.op = op;
    cmd.id = id;
    return cmd;
}

struct MockDomain {
    int rc;
    std::uint32_t stdev = 0;
    std::uint32_t hwpt = 0;
    std::uint32_t idev = 0;
};

MockDomain mock_domain(Client& c, std::uint32_t pt_id, std::optional<std::uint32_t> flags = std::nullopt)
{
    auto cmd = test_cmd(flags ? IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS : IOMMU_TEST_OP_MOCK_DOMAIN, pt_id);
    if (flags)
        cmd.mock_domain_flags.dev_flags = *flags;
    int rc = c.ioctl(IOMMU_TEST_CMD, cmd);
    return {rc, cmd.mock_domain.out_stdev_id, cmd.mock_domain.out_hwpt_id, cmd.mock_domain.out_idev_id};
}

MockDomain mock_domain_ok(Client& c, std::uint32_t pt_id, std::optional<std::uint32_t> flags = std::nullopt)
{
    MockDomain m = mock_domain(c, pt_id, flags);
    if (m.rc)
        throw std::runtime_error("MOCK_DOMAIN failed: " + std::to_string(m.rc));
    return m;
}

int replace(Client& c, std::uint32_t stdev, std::uint32_t* pt_id)
{
    auto cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, stdev);
    cmd.mock_domain_replace.pt_id = *pt_id;
    int rc = c.ioctl(IOMMU_TEST_CMD, cmd);
    *pt_id = cmd.mock_domain_replace.pt_id;
    return rc;
}

int add_reserved(Client& c, std::uint32_t ioas, std::uint64_t start, std::uint64_t length)
{
    auto cmd = test_cmd(IOMMU_TEST_OP_ADD_RESERVED, ioas);
    cmd.add_reserved.start = start;
    cmd.add_reserved.length = length;
    return c.ioctl(IOMMU_TEST_CMD, cmd);
}

int check_map(Client& c, std::uint32_t hwpt, std::uint64_t iova, std::uint64_t length, std::uint64_t uptr)
{
    auto cmd = test_cmd(IOMMU_TEST_OP_MD_CHECK_MAP, hwpt);
    cmd.check_map.iova = iova;
    cmd.check_map.length = length;
    cmd.check_map.uptr = uptr;
    return c.ioctl(IOMMU_TEST_CMD, cmd);
}

int check_refs(Client& c, std::uint64_t uptr, std::uint64_t length, std::uint32_t refs)
{
    auto cmd = test_cmd(IOMMU_TEST_OP_MD_CHECK_REFS);
    cmd.check_refs.uptr = uptr;
    cmd.check_refs.length = length;
    cmd.check_refs.refs = refs;
    return c.ioctl(IOMMU_TEST_CMD, cmd);
}

struct DirtyAnswer {
    int rc;
    std::uint64_t nr_dirty;
};

DirtyAnswer mark_dirty(Client& c, std::uint32_t hwpt, std::uint64_t iova, std::uint64_t length,
                       std::uint64_t page_size, std::uint64_t uptr = kArrayAddr)
{
    auto cmd = test_cmd(IOMMU_TEST_OP_DIRTY, hwpt);
    cmd.dirty.iova = iova;
    cmd.dirty.length = length;
    cmd.dirty.page_size = page_size;
    cmd.dirty.uptr = uptr;
    cmd.dirty.out_nr_dirty = 0xdead;
    int rc = c.ioctl(IOMMU_TEST_CMD, cmd);
    return {rc, cmd.dirty.out_nr_dirty};
}

std::size_t runtime_devices(core::Hardware& hardware)
{
    std::size_t n = 0;
    hardware.for_each_device([&](const core::EmulatedDevice& d, const core::Context*) { n += d.runtime; });
    return n;
}

hw::HwInfo hw_info_of(Client& c, std::uint32_t idev)
{
    hw::HwInfo info;
    REQUIRE(core::device_hw_info(c.ctx(), idev, &info) == 0);
    return info;
}

const hw::Domain& domain_of(Client& c, std::uint32_t hwpt)
{
    auto* p = c.ctx().objects().find_as<core::HwptPaging>(hwpt);
    if (!p)
        throw std::runtime_error("no such HWPT");
    return p->domain();
}

} // namespace

TEST_CASE("IOMMU_TEST_CMD is ENOTTY on a machine without a mock unit", "[selftest_mock]")
{
    core::CoreServices services; // no units at all
    Client c{services};
    auto cmd = test_cmd(IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT);
    cmd.memory_limit.limit = 65536;
    CHECK(c.ioctl(IOMMU_TEST_CMD, cmd) == -ENOTTY);
    cmd.op = 0xffff;
    CHECK(c.ioctl(IOMMU_TEST_CMD, cmd) == -ENOTTY);
}

TEST_CASE("MOCK_DOMAIN makes a device, binds and attaches it; destroying the object undoes it all",
          "[selftest_mock]")
{
    HardwareFixture f;
    Client& c = f.client;
    const MockDomain m = mock_domain_ok(c, f.ioas);
    // iommufd_test_mock_domain(): selftest object, then device, then HWPT.
    CHECK(m.stdev == f.ioas + 1);
    CHECK(m.idev == f.ioas + 2);
    CHECK(m.hwpt == f.ioas + 3);
    CHECK(count_objects(c, core::ObjectType::selftest) == 1);
    CHECK(count_objects(c, core::ObjectType::device) == 1);
    CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 1);
    CHECK(runtime_devices(f.services.hardware) == 1);

    auto* stdev = c.ctx().objects().find_as<core::SelftestDevice>(m.stdev);
    REQUIRE(stdev);
    CHECK(stdev->emulated().name == "iommufd_mock0");
    CHECK(stdev->emulated().vfio_name.empty());
    CHECK(f.services.hardware.find_device("iommufd_mock0") == nullptr);
    CHECK(f.services.hardware.owner_of(stdev->emulated()) == &c.ctx());

    // The IOAS, HWPT and device are in use; only the selftest object goes.
    CHECK(c.destroy(f.ioas) == -EBUSY);
    CHECK(c.destroy(m.hwpt) == -EBUSY);
    CHECK(c.destroy(m.idev) == -EBUSY);
    CHECK(unbind(c, m.idev) == -EBUSY);
    CHECK(c.destroy(m.stdev) == 0);
    CHECK(count_objects(c, core::ObjectType::device) == 0);
    CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 0); // the automatic domain went too
    CHECK(runtime_devices(f.services.hardware) == 0);
    CHECK(c.destroy(f.ioas) == 0);
}

TEST_CASE("MOCK_DOMAIN: errors leave nothing behind", "[selftest_mock]")
{
    HardwareFixture f;
    Client& c = f.client;
    auto nothing_left = [&] {
        CHECK(count_objects(c, core::ObjectType::selftest) == 0);
        CHECK(count_objects(c, core::ObjectType::device) == 0);
        CHECK(runtime_devices(f.services.hardware) == 0);
    };
    CHECK(mock_domain(c, 999).rc == -ENOENT);
    nothing_left();
    CHECK(mock_domain(c, f.ioas, 1u << 3).rc == -EINVAL);
    nothing_left();
    // An object that is neither an IOAS nor a HWPT.
    const MockDomain m = mock_domain_ok(c, f.ioas);
    CHECK(mock_domain(c, m.stdev).rc == -EINVAL);
    CHECK(mock_domain(c, m.idev).rc == -EINVAL);
    CHECK(c.destroy(m.stdev) == 0);
    nothing_left();
    // Ids freed by the failures are handed out again, lowest first.
    CHECK(mock_domain_ok(c, f.ioas).stdev == f.ioas + 1);
}

TEST_CASE("MOCK_DOMAIN: an answer that cannot be written back undoes the device", "[selftest_mock]")
{
    HardwareFixture f;
    Client& c = f.client;
    // From the union on (all zero), the struct lies in a read-only page:
    // it is read, but the answer cannot be written.
    const std::uint64_t at = kReadOnlyPage - 16;
    const auto cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN, f.ioas);
    c.write(at, std::as_bytes(std::span(&cmd, 1)).first(16));
    CHECK(c.ioctl_at(IOMMU_TEST_CMD, at) == -EFAULT);
    CHECK(count_objects(c, core::ObjectType::selftest) == 0);
    CHECK(count_objects(c, core::ObjectType::device) == 0);
    CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 0);
    CHECK(runtime_devices(f.services.hardware) == 0);
}

TEST_CASE("MOCK_DOMAIN: each device has its own group and RID, and goes with the file", "[selftest_mock]")
{
    HardwareFixture f;
    const MockDomain a = mock_domain_ok(f.client, f.ioas);
    const MockDomain b = mock_domain_ok(f.client, f.ioas);
    CHECK(a.hwpt == b.hwpt); // the automatic domain takes both
    auto& sa = *f.client.ctx().objects().find_as<core::SelftestDevice>(a.stdev);
    auto& sb = *f.client.ctx().objects().find_as<core::SelftestDevice>(b.stdev);
    CHECK(sa.emulated().group != sb.emulated().group);
    CHECK(sa.emulated().endpoint->config().rid != sb.emulated().endpoint->config().rid);
    CHECK(sb.emulated().name == "iommufd_mock1");
    {
        Client other{f.services, make_hw_caller()};
        const std::uint32_t ioas = alloc_ok(other);
        mock_domain_ok(other, ioas);
        CHECK(runtime_devices(f.services.hardware) == 3);
    }
    // Closing the other file took its device off the machine.
    CHECK(runtime_devices(f.services.hardware) == 2);
    nlohmann::json devices = status_json(f.client)["hardware"]["devices"];
    std::size_t shown = 0;
    for (const auto& d : devices)
        shown += d["name"].get<std::string>().starts_with("iommufd_mock");
    CHECK(shown == 2);
    CHECK(object_status(f.client, a.stdev)["type"] == "selftest");
}

TEST_CASE("MOCK_DOMAIN_FLAGS: per-device dirty tracking, 1 MiB pages and PASIDs", "[selftest_mock]")
{
    HardwareFixture f;
    Client& c = f.client;

    SECTION("no flags: dirty tracking, 2 KiB pages, no PASID; hw_info of the selftest")
    {
        const MockDomain m = mock_domain_ok(c, f.ioas, 0);
        const hw::HwInfo info = hw_info_of(c, m.idev);
        CHECK(info.type == IOMMU_HW_INFO_TYPE_SELFTEST);
        REQUIRE(info.data.size() == sizeof(iommu_test_hw_info));
        iommu_test_hw_info data;
        std::memcpy(&data, info.data.data(), sizeof(data));
        CHECK(data.flags == 0);
        CHECK(data.test_reg == IOMMU_HW_INFO_SELFTEST_REGVAL);
        CHECK(info.capabilities & IOMMU_HW_CAP_DIRTY_TRACKING);
        CHECK(info.max_pasid_log2 == 0);
        CHECK(domain_of(c, m.hwpt).geometry().pgsize_bitmap == hw::mock::kIoPageSize);
    }
    SECTION("PASID: MOCK_PASID_WIDTH bits")
    {
        const MockDomain m = mock_domain_ok(c, f.ioas, kPasid);
        CHECK(hw_info_of(c, m.idev).max_pasid_log2 == MOCK_PASID_WIDTH);
    }
    SECTION("HUGE_IOVA: domains for the device take 1 MiB pages")
    {
        const MockDomain m = mock_domain_ok(c, f.ioas, kHugeIova);
        CHECK(domain_of(c, m.hwpt).geometry().pgsize_bitmap == (hw::mock::kIoPageSize | hw::mock::kHugePageSize));
        const std::uint32_t hwpt = hwpt_alloc_ok(c, m.idev, f.ioas);
        CHECK(domain_of(c, hwpt).geometry().pgsize_bitmap & hw::mock::kHugePageSize);
    }
    SECTION("NO_DIRTY: no capability, no dirty-tracking HWPT, no attach to one")
    {
        const MockDomain plain = mock_domain_ok(c, f.ioas);
        const std::uint32_t dirty_hwpt = hwpt_alloc_ok(c, plain.idev, f.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
        CHECK(mock_domain(c, dirty_hwpt, kNoDirty).rc == -EINVAL);
        CHECK(runtime_devices(f.services.hardware) == 1);
        const std::uint32_t ioas2 = alloc_ok(c);
        const MockDomain nd = mock_domain_ok(c, ioas2, kNoDirty);
        CHECK(!(hw_info_of(c, nd.idev).capabilities & IOMMU_HW_CAP_DIRTY_TRACKING));
        std::uint32_t out = 0;
        CHECK(hwpt_alloc(c, nd.idev, ioas2, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &out) == -EOPNOTSUPP);
    }
}

TEST_CASE("MOCK_DOMAIN_REPLACE moves the device; an automatic domain left behind is gone", "[selftest_mock]")
{
    HardwareFixture f;
    Client& c = f.client;
    const MockDomain m = mock_domain_ok(c, f.ioas);
    const std::uint32_t manual = hwpt_alloc_ok(c, m.idev, f.ioas);
    std::uint32_t pt = manual;
    REQUIRE(replace(c, m.stdev, &pt) == 0);
    CHECK(pt == manual);
    CHECK(!object_exists(c, m.hwpt));
    pt = m.hwpt;
    CHECK(replace(c, m.stdev, &pt) == -ENOENT);
    // Back to the IOAS: a new automatic domain, whose id comes back.
    pt = f.ioas;
    REQUIRE(replace(c, m.stdev, &pt) == 0);
    CHECK(object_exists(c, pt));
    CHECK(pt != manual);
    // Only a selftest object's id is a selftest object.
    pt = manual;
    CHECK(replace(c, m.idev, &pt) == -ENOENT);
    CHECK(replace(c, 999, &pt) == -ENOENT);
    // A device that was detached is not replaced (iommufd_device_do_replace()).
    REQUIRE(detach(c, m.idev) == 0);
    pt = manual;
    CHECK(replace(c, m.stdev, &pt) == -EINVAL);
    pt = 999;
    CHECK(replace(c, m.stdev, &pt) == -ENOENT);
}

TEST_CASE("ADD_RESERVED: holes in the IOAS until it is destroyed", "[selftest_mock]")
{
    HardwareFixture f;
    Client& c = f.client;
    CHECK(add_reserved(c, f.ioas, 0x1000, 0) == -EINVAL);
    CHECK(add_reserved(c, f.ioas, ~0ULL, 2) == -EOVERFLOW);
    CHECK(add_reserved(c, 999, 0x1000, 0x1000) == -ENOENT);
    CHECK(add_reserved(c, f.ioas, ~0ULL, 1) == 0);
    REQUIRE(add_reserved(c, f.ioas, 0x10000, 0x10000) == 0);
    CHECK(ranges_of(c, f.ioas) == RangeList{{0, 0xffff}, {0x20000, ~0ULL - 1}});
    // iopt_check_iova(): mapping onto a reserved range is EINVAL.
    CHECK(c.map_fixed(f.ioas, kBufferAddr, kPage4K, 0x18000) == -EINVAL);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, kPage4K, kMockFirst) == 0);
    CHECK(add_reserved(c, f.ioas, kMockFirst + kPage4K - 1, 1) == -EADDRINUSE);
    // A device coming and going does not take the test's ranges with it.
    const MockDomain m = mock_domain_ok(c, f.ioas);
    REQUIRE(c.destroy(m.stdev) == 0);
    CHECK(ranges_of(c, f.ioas) == RangeList{{0, 0xffff}, {0x20000, ~0ULL - 1}});
}

TEST_CASE("MD_CHECK_MAP checks that the IOPTEs lead to the caller's memory at uptr", "[selftest_mock]")
{
    HardwareFixture f;
    Client& c = f.client;
    const MockDomain m = mock_domain_ok(c, f.ioas);
    std::uint64_t iova = 0;
    // Starts half way into a page, as the mock's 2 KiB pages allow.
    const std::uint64_t uptr = kBufferAddr + kMockPage;
    REQUIRE(c.map(f.ioas, uptr, 5 * kMockPage, &iova) == 0);
    CHECK(check_map(c, m.hwpt, iova, 5 * kMockPage, uptr) == 0);
    CHECK(check_map(c, m.hwpt, iova + kMockPage, 2 * kMockPage, uptr + kMockPage) == 0);
    CHECK(check_map(c, m.hwpt, iova, 0, uptr) == 0);
    // Another address, or past what is mapped.
    CHECK(check_map(c, m.hwpt, iova, kMockPage, uptr + kMockPage) == -EINVAL);
    CHECK(check_map(c, m.hwpt, iova, 6 * kMockPage, uptr) == -EINVAL);
    // The alignment rules, before the HWPT is looked up.
    CHECK(check_map(c, 999, iova + 1, kMockPage, uptr) == -EINVAL);
    CHECK(check_map(c, 999, iova, kMockPage + 1, uptr) == -EINVAL);
    CHECK(check_map(c, 999, iova, kMockPage, uptr + 1) == -EINVAL);
    CHECK(check_map(c, 999, iova, 2 * kMockPage, ~0ULL - kMockPage + 1) == -EINVAL);
    // Not a paging HWPT, then one of another driver.
    CHECK(check_map(c, 999, iova, kMockPage, uptr) == -ENOENT);
    CHECK(check_map(c, f.ioas, iova, kMockPage, uptr) == -ENOENT);
    const std::uint32_t vdev = bind_ok(c, "v0");
    const std::uint32_t vhwpt = attach_ok(c, vdev, alloc_ok(c));
    CHECK(check_map(c, vhwpt, iova, kMockPage, uptr) == -EINVAL);
    // An address the caller has not mapped fails as its GUP would.
    CHECK(check_map(c, m.hwpt, iova, kMockPage, kUnmappedVa) == -EFAULT);
}

TEST_CASE("MD_CHECK_MAP: memory another process mapped is not the caller's", "[selftest_mock]")
{
    HardwareFixture f;
    const MockDomain m = mock_domain_ok(f.client, f.ioas);
    std::uint64_t iova = 0;
    REQUIRE(f.client.map(f.ioas, kBufferAddr, kPage4K, &iova) == 0);
    // The same file and address, asked by another process.
    const std::shared_ptr<memory::Caller> other_process = make_hw_caller();
    auto cmd = test_cmd(IOMMU_TEST_OP_MD_CHECK_MAP, m.hwpt);
    cmd.check_map.iova = iova;
    cmd.check_map.length = kPage4K;
    cmd.check_map.uptr = kBufferAddr;
    REQUIRE(other_process->memory().write(kStructAddr, std::as_bytes(std::span(&cmd, 1))) == 0);
    CHECK(dispatch::ioctl(f.client.ctx(), IOMMU_TEST_CMD, other_process, kStructAddr) == -EINVAL);
    CHECK(check_map(f.client, m.hwpt, iova, kPage4K, kBufferAddr) == 0);
}

TEST_CASE("MD_CHECK_REFS counts the pins on each page of the caller's memory", "[selftest_mock]")
{
    HardwareFixture f;
    Client& c = f.client;
    constexpr std::uint64_t kLen = 4 * kPage4K;
    CHECK(check_refs(c, kBufferAddr, kLen, 0) == 0);
    CHECK(check_refs(c, kBufferAddr, kLen, 1) == -EIO);

    // Mapped without a domain: nothing pinned yet.
    std::uint64_t iova = kMockFirst + kMockPage;
    REQUIRE(c.map(f.ioas, kBufferAddr + kMockPage, 2 * kPage4K, &iova,
                  IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE) == 0);
    CHECK(check_refs(c, kBufferAddr, kLen, 0) == 0);
    // A domain pins every page the area touches, once whatever the domains.
    const MockDomain a = mock_domain_ok(c, f.ioas);
    const MockDomain b = mock_domain_ok(c, hwpt_alloc_ok(c, a.idev, f.ioas));
    (void)b;
    CHECK(check_refs(c, kBufferAddr, 3 * kPage4K, 1) == 0);
    CHECK(check_refs(c, kBufferAddr + 3 * kPage4K, kPage4K, 0) == 0);
    CHECK(check_refs(c, kBufferAddr, kLen, 1) == -EIO);
    // A second mapping of the same memory is a second pin, also from
    // another file of the same process.
    Client second{f.services, std::static_pointer_cast<memory::BufferCaller>(c.caller())};
    const std::uint32_t ioas2 = alloc_ok(second);
    mock_domain_ok(second, ioas2);
    REQUIRE(second.map(ioas2, kBufferAddr + kPage4K, kPage4K, &iova) == 0);
    CHECK(check_refs(c, kBufferAddr + kPage4K, kPage4K, 2) == 0);
    CHECK(check_refs(c, kBufferAddr, kPage4K, 1) == 0);
    // Rules before counts.
    CHECK(check_refs(c, kBufferAddr + 1, kPage4K, 0) == -EINVAL);
    CHECK(check_refs(c, kBufferAddr, kPage4K + 1, 0) == -EINVAL);
    CHECK(check_refs(c, ~0ULL - kPage4K + 1, 2 * kPage4K, 0) == -EINVAL);
    CHECK(check_refs(c, kBufferAddr, 0, 7) == 0);
    // A page that is not mapped fails before its count is compared.
    CHECK(check_refs(c, kUnmappedVa, kPage4K, 0) == -EFAULT);
    CHECK(check_refs(c, kBufferAddr + kBufferSize - kPage4K, 2 * kPage4K, 0) == -EFAULT);
    // Unmapping drops the pins.
    REQUIRE(c.unmap(f.ioas, 0, UINT64_MAX) == 0);
    REQUIRE(second.unmap(ioas2, 0, UINT64_MAX) == 0);
    CHECK(check_refs(c, kBufferAddr, kLen, 0) == 0);
}

TEST_CASE("MD_CHECK_REFS: a closed file holds no pins", "[selftest_mock]")
{
    HardwareFixture f;
    {
        Client other{f.services, std::static_pointer_cast<memory::BufferCaller>(f.client.caller())};
        const std::uint32_t ioas = alloc_ok(other);
        mock_domain_ok(other, ioas);
        std::uint64_t iova = 0;
        REQUIRE(other.map(ioas, kBufferAddr, 8 * kPage4K, &iova) == 0);
        CHECK(check_refs(f.client, kBufferAddr, 8 * kPage4K, 1) == 0);
    }
    CHECK(check_refs(f.client, kBufferAddr, 8 * kPage4K, 0) == 0);
}

TEST_CASE("SET_TEMP_MEMORY_LIMIT takes a limit with room for one batch element", "[selftest_mock]")
{
    HardwareFixture f;
    auto cmd = test_cmd(IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT);
    cmd.memory_limit.limit = 11;
    CHECK(f.client.ioctl(IOMMU_TEST_CMD, cmd) == -EINVAL);
    cmd.memory_limit.limit = 12;
    CHECK(f.client.ioctl(IOMMU_TEST_CMD, cmd) == 0);
}

TEST_CASE("DIRTY marks mapped IOPTEs dirty, as a device write would", "[selftest_mock]")
{
    HardwareFixture f;
    Client& c = f.client;
    const MockDomain m = mock_domain_ok(c, f.ioas);
    const std::uint32_t hwpt = hwpt_alloc_ok(c, m.idev, f.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 8 * kMockPage, kMockFirst) == 0);
    // Bits 0, 3 and 9: the last lies past the mapping and marks nothing.
    put_value<std::uint16_t>(c, kArrayAddr, 0b10'0000'1001);

    CHECK(mark_dirty(c, hwpt, kMockFirst, 10 * kMockPage, kMockPage).rc == -EINVAL); // tracking off
    REQUIRE(set_dirty_tracking(c, hwpt, true) == 0);
    CHECK(mark_dirty(c, hwpt, kMockFirst, 10 * kMockPage, 0).rc == -EINVAL);
    CHECK(mark_dirty(c, hwpt, kMockFirst, 0, kMockPage).rc == -EINVAL);
    CHECK(mark_dirty(c, hwpt, kMockFirst + 1, 10 * kMockPage, kMockPage).rc == -EINVAL);
    CHECK(mark_dirty(c, hwpt, kMockFirst, 10 * kMockPage + 1, kMockPage).rc == -EINVAL);
    CHECK(mark_dirty(c, hwpt, kMockFirst, 10 * kMockPage, kMockPage, 0).rc == -EINVAL);
    CHECK(mark_dirty(c, hwpt, 0, (128ULL << 20) * 8 + 1, 1).rc == -EOVERFLOW);
    CHECK(mark_dirty(c, 999, kMockFirst, 10 * kMockPage, kMockPage).rc == -ENOENT);
    CHECK(mark_dirty(c, hwpt, kMockFirst, 10 * kMockPage, kMockPage, kUnmappedVa).rc == -EFAULT);

    const DirtyAnswer d = mark_dirty(c, hwpt, kMockFirst, 10 * kMockPage, kMockPage);
    REQUIRE(d.rc == 0);
    CHECK(d.nr_dirty == 2);
    fill_byte(c, kArrayAddr + 64, 8, std::byte{0});
    REQUIRE(get_dirty_bitmap(c, hwpt, kMockFirst, 8 * kMockPage, kMockPage, kArrayAddr + 64) == 0);
    CHECK(value_at<std::uint64_t>(c, kArrayAddr + 64) == 0b1001);
}

TEST_CASE("DIRTY on a 1 MiB IOPTE dirties the whole page", "[selftest_mock]")
{
    HardwareFixture f;
    Client& c = f.client;
    const MockDomain m = mock_domain_ok(c, f.ioas, kHugeIova);
    const std::uint32_t ioas = alloc_ok(c);
    REQUIRE(c.map_fixed(ioas, kBufferAddr, 2 * hw::mock::kHugePageSize, kMockFirst) == 0);
    const std::uint32_t hwpt = hwpt_alloc_ok(c, m.idev, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    REQUIRE(set_dirty_tracking(c, hwpt, true) == 0);
    REQUIRE(domain_of(c, hwpt).lookup(kMockFirst).page_size == hw::mock::kHugePageSize);
    // One bit, in the middle of the second 1 MiB page.
    const std::uint64_t nbits = 2 * hw::mock::kHugePageSize / kMockPage;
    fill_byte(c, kArrayAddr, nbits / 8, std::byte{0});
    put_value<std::uint8_t>(c, kArrayAddr + (nbits / 2 + 8) / 8, 1);
    const DirtyAnswer d = mark_dirty(c, hwpt, kMockFirst, 2 * hw::mock::kHugePageSize, kMockPage);
    REQUIRE(d.rc == 0);
    CHECK(d.nr_dirty == 1);
    const std::uint64_t bitmap = kArrayAddr + 0x10000;
    fill_byte(c, bitmap, nbits / 8, std::byte{0});
    REQUIRE(get_dirty_bitmap(c, hwpt, kMockFirst, 2 * hw::mock::kHugePageSize, kMockPage, bitmap) == 0);
    CHECK(value_at<std::uint64_t>(c, bitmap) == 0);
    CHECK(value_at<std::uint64_t>(c, bitmap + nbits / 16) == ~0ULL);
    CHECK(value_at<std::uint64_t>(c, bitmap + nbits / 8 - 8) == ~0ULL);
}

TEST_CASE("Hardware: run-time devices take the lowest free name and RID and leave cleanly", "[selftest_mock]")
{
    HardwareServices s;
    core::Hardware& hw = s.services.hardware;
    hw::Unit* unit = hw.find_family("mock");
    REQUIRE(unit);
    CHECK(unit->name() == "mock0");
    CHECK(hw.find_family("nonesuch") == nullptr);
    const std::size_t endpoints = unit->endpoints().size();
    core::EmulatedDevice& a = hw.add_runtime_device(*unit, "dev", {});
    core::EmulatedDevice& b = hw.add_runtime_device(*unit, "dev", {});
    CHECK(a.name == "dev0");
    CHECK(b.name == "dev1");
    CHECK(a.endpoint->config().rid == 0); // the topology's mock0 devices start at 0x10
    CHECK(b.endpoint->config().rid == 1);
    CHECK(unit->endpoints().size() == endpoints + 2);
    hw.remove_runtime_device(a);
    core::EmulatedDevice& c = hw.add_runtime_device(*unit, "dev", {});
    CHECK(c.name == "dev0");
    CHECK(c.endpoint->config().rid == 0);
    hw.remove_runtime_device(b);
    hw.remove_runtime_device(c);
    CHECK(unit->endpoints().size() == endpoints);
    CHECK(runtime_devices(hw) == 0);
}

TEST_CASE("PinAccounting: per-page pins of a process", "[selftest_mock]")
{
    core::PinAccounting accounting;
    CHECK(!accounting.first_page_pinned_otherwise(7, 0, 100, 0));
    CHECK(accounting.first_page_pinned_otherwise(7, 10, 100, 1) == 10u);
    accounting.note_pinned(7, 10, 19);
    accounting.note_pinned(7, 15, 24);
    accounting.note_pinned(8, 0, 100);
    CHECK(!accounting.first_page_pinned_otherwise(7, 10, 14, 1));
    CHECK(!accounting.first_page_pinned_otherwise(7, 15, 19, 2));
    CHECK(accounting.first_page_pinned_otherwise(7, 10, 19, 1) == 15u);
    CHECK(accounting.first_page_pinned_otherwise(7, 5, 19, 1) == 5u);
    CHECK(accounting.first_page_pinned_otherwise(7, 20, 30, 1) == 25u);
    CHECK(accounting.first_page_pinned_otherwise(7, 0, 30, 0) == 10u);
    accounting.note_unpinned(7, 10, 19);
    accounting.note_unpinned(7, 15, 24);
    CHECK(!accounting.first_page_pinned_otherwise(7, 0, 100, 0));
    CHECK(!accounting.first_page_pinned_otherwise(8, 0, 100, 1));
}

TEST_CASE("MOCK_DOMAIN over a mapping whose process has exited -> EFAULT, nothing left", "[selftest_mock]")
{
    // iommufd.c fork_gone (no_domain): a forked child maps its memory and
    // exits; the parent's later MOCK_DOMAIN must pin those pages and finds
    // no mm (mmget_not_zero() fails in pages.c): EFAULT, not our ESRCH.
    HardwareFixture f;
    Client& c = f.client;
    auto child = Client::make_caller();
    iommu_ioas_map map{};
    map.size = sizeof(map);
    map.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
    map.ioas_id = f.ioas;
    map.user_va = kBufferAddr;
    map.length = 16 * 4096;
    map.iova = 1ULL << 24;
    REQUIRE(child->memory().write(kStructAddr, std::as_bytes(std::span(&map, 1))) == 0);
    REQUIRE(dispatch::ioctl(c.ctx(), IOMMU_IOAS_MAP, child, kStructAddr) == 0);
    child->exit();

    CHECK(mock_domain(c, f.ioas).rc == -EFAULT);
    CHECK(count_objects(c, core::ObjectType::selftest) == 0);
    CHECK(count_objects(c, core::ObjectType::device) == 0);
    CHECK(runtime_devices(f.services.hardware) == 0);
}

} // namespace ioasid::test
