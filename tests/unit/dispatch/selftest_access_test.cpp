// IOMMU_TEST_CMD's access ops through the dispatcher, against the kernel
// (6.12): selftest.c iommufd_test_create_access(),
// iommufd_test_access_item_destroy(), iommufd_test_access_pages(),
// iommufd_test_access_rw(), iommufd_test_access_replace_ioas(),
// iommufd_test_access_unmap(), iommufd_test_staccess_release(); device.c
// iommufd_access_pin_pages(), iommufd_access_rw(), iommufd_access_replace().
// The test client receives handed-over files itself (BufferCaller); the
// machine has a mock unit, without which IOMMU_TEST_CMD does not exist.
#include <catch2/catch.hpp>

#include <ioasid/selftest.h>
#include <sys/eventfd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/access.h"
#include "core/selftest_access.h"
#include "memory/request_caller.h"
#include "hardware_fixture.h"

using namespace ioasid;
using namespace ioasid::test;

namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kIova = 0x100000;

iommu_test_cmd test_cmd(std::uint32_t op, std::uint32_t id)
{
    iommu_test_cmd cmd{};
    cmd.size = sizeof(cmd);
    cmd.op = op;
    cmd.id = id;
    return cmd;
}

int create_access(Client& c, std::uint32_t ioas, std::uint32_t flags, std::uint32_t* fd)
{
    iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_CREATE_ACCESS, ioas);
    cmd.create_access.flags = flags;
    cmd.create_access.out_access_fd = 0xdeadbeef;
    int rc = c.ioctl(IOMMU_TEST_CMD, cmd);
    if (fd)
        *fd = cmd.create_access.out_access_fd;
    return rc;
}

int access_pages(Client& c, std::uint32_t fd, std::uint64_t iova, std::uint64_t length,
                 std::uint64_t uptr, std::uint32_t flags, std::uint32_t* item = nullptr)
{
    iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_ACCESS_PAGES, fd);
    cmd.access_pages.flags = flags;
    cmd.access_pages.iova = iova;
    cmd.access_pages.length = length;
    cmd.access_pages.uptr = uptr;
    int rc = c.ioctl(IOMMU_TEST_CMD, cmd);
    if (item)
        *item = cmd.access_pages.out_access_pages_id;
    return rc;
}

int destroy_pages(Client& c, std::uint32_t fd, std::uint32_t item)
{
    iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, fd);
    cmd.destroy_access_pages.access_pages_id = item;
    return c.ioctl(IOMMU_TEST_CMD, cmd);
}

int access_rw(Client& c, std::uint32_t fd, std::uint64_t iova, std::uint64_t length,
              std::uint64_t uptr, std::uint32_t flags)
{
    iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_ACCESS_RW, fd);
    cmd.access_rw.iova = iova;
    cmd.access_rw.length = length;
    cmd.access_rw.uptr = uptr;
    cmd.access_rw.flags = flags;
    return c.ioctl(IOMMU_TEST_CMD, cmd);
}

int replace_ioas(Client& c, std::uint32_t fd, std::uint32_t ioas)
{
    iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_ACCESS_REPLACE_IOAS, fd);
    cmd.access_replace_ioas.ioas_id = ioas;
    return c.ioctl(IOMMU_TEST_CMD, cmd);
}

std::size_t access_objects(Client& c)
{
    std::size_t n = 0;
    c.ctx().objects().for_each([&](const core::Object& o) { n += o.type() == core::ObjectType::access; });
    return n;
}

std::uint32_t pins_at(HardwareFixture& f, std::uint32_t ioas, std::uint64_t iova)
{
    const core::Area* area = f.obj(ioas).iopt().find_area(iova);
    REQUIRE(area);
    return area->pages->pin_count(area->byte_at(iova) / kPage);
}

struct AccessFixture : HardwareFixture {
    std::uint32_t fd = 0;
    AccessFixture(std::uint32_t flags = MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES)
    {
        REQUIRE(client.map_fixed(ioas, kBufferAddr, 16 * kPage, kIova) == 0);
        REQUIRE(create_access(client, ioas, flags, &fd) == 0);
    }
};

} // namespace

TEST_CASE("CREATE_ACCESS: flags, IOAS, the fd handed over", "[selftest_access]")
{
    HardwareFixture f;
    Client& c = f.client;

    SECTION("unknown flags -> EOPNOTSUPP, nothing made")
    {
        CHECK(create_access(c, f.ioas, 2, nullptr) == -EOPNOTSUPP);
        CHECK(access_objects(c) == 0);
        CHECK(c.buffer().file_count() == 0);
    }
    SECTION("not an IOAS -> ENOENT")
    {
        CHECK(create_access(c, 9999, 0, nullptr) == -ENOENT);
        CHECK(access_objects(c) == 0);
    }
    SECTION("the number of the new descriptor comes back; closing it ends the access")
    {
        std::uint32_t fd = 0;
        REQUIRE(create_access(c, f.ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES, &fd) == 0);
        CHECK(c.buffer().file(static_cast<int>(fd)) != nullptr);
        CHECK(access_objects(c) == 1);
        // The IOAS is in use by the access.
        CHECK(c.destroy(f.ioas) == -EBUSY);
        c.buffer().close_file(static_cast<int>(fd));
        CHECK(access_objects(c) == 0);
        CHECK(c.destroy(f.ioas) == 0);
    }
    SECTION("an access file reads and writes as a file without those methods")
    {
        std::uint32_t fd = 0;
        REQUIRE(create_access(c, f.ioas, 0, &fd) == 0);
        std::byte b[8]{};
        auto file = c.buffer().file(static_cast<int>(fd));
        CHECK(file->read(b, sizeof(b)) == -EINVAL);
        CHECK(file->write(b) == -EINVAL);
    }
}

TEST_CASE("CREATE_ACCESS on a transport that cannot hand over files -> EOPNOTSUPP, no access left",
          "[selftest_access]")
{
    HardwareFixture f;
    Client& c = f.client;
    iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_CREATE_ACCESS, f.ioas);
    std::vector<std::byte> bytes(sizeof(cmd));
    std::memcpy(bytes.data(), &cmd, sizeof(cmd));
    // What CUSE gives a request: a caller without a file desk.
    auto caller = std::make_shared<memory::RequestCaller>(c.caller(), 1000, 1, kStructAddr,
                                                          std::span(bytes));
    CHECK(dispatch::ioctl(c.ctx(), IOMMU_TEST_CMD, caller, kStructAddr) == -EOPNOTSUPP);
    CHECK(access_objects(c) == 0);
    CHECK(c.destroy(f.ioas) == 0);
}

TEST_CASE("access ops: the fd must be an access file of ours -> EBADFD", "[selftest_access]")
{
    AccessFixture f;
    Client& c = f.client;
    std::byte buf[8]{};
    const std::uint32_t closed = 77;
    c.buffer().add_fd(78, memory::UniqueFd(::eventfd(0, EFD_CLOEXEC)));
    for (std::uint32_t fd : {closed, 78u}) {
        CHECK(access_pages(c, fd, kIova, kPage, 0, 0) == -EBADFD);
        CHECK(destroy_pages(c, fd, 0) == -EBADFD);
        CHECK(access_rw(c, fd, kIova, sizeof(buf), kArrayAddr, 0) == -EBADFD);
        CHECK(replace_ioas(c, fd, f.ioas) == -EBADFD);
    }
    SECTION("an access of another context is refused too")
    {
        // The same process with a second iommufd: it holds the same fd.
        Client other(f.services, std::static_pointer_cast<memory::BufferCaller>(c.caller()));
        std::uint32_t other_ioas = alloc_ok(other);
        REQUIRE(other.map_fixed(other_ioas, kBufferAddr, kPage, kIova) == 0);
        CHECK(access_rw(other, f.fd, kIova, 8, kArrayAddr, 0) == -EBADFD);
    }
}

TEST_CASE("ACCESS_PAGES: the checks in iommufd_test_access_pages() order", "[selftest_access]")
{
    AccessFixture f;
    Client& c = f.client;

    CHECK(access_pages(c, 9999, kIova, (16ULL << 20) + 1, 0, 0xff) == -ENOMEM);
    CHECK(access_pages(c, 9999, kIova, kPage, 0, 2) == -EOPNOTSUPP);
    CHECK(access_pages(c, 9999, kIova, kPage, 0, 0) == -EBADFD);
    CHECK(access_pages(c, f.fd, kIova, 0, 0, 0) == -EINVAL);
    CHECK(access_pages(c, f.fd, ~0ULL - kPage + 2, kPage, 0, 0) == -EOVERFLOW);
    CHECK(access_pages(c, f.fd, kIova + 16 * kPage, kPage, 0, 0) == -ENOENT);
    CHECK(access_pages(c, f.fd, kIova + 15 * kPage, 2 * kPage, 0, 0) == -ENOENT);
    CHECK(pins_at(f, f.ioas, kIova + 15 * kPage) == 0);

    SECTION("an access created without NEEDS_PIN_PAGES cannot pin")
    {
        std::uint32_t fd = 0;
        REQUIRE(create_access(c, f.ioas, 0, &fd) == 0);
        CHECK(access_pages(c, fd, kIova, kPage, 0, 0) == -EOPNOTSUPP);
    }
    SECTION("a write pin of a read-only area -> EPERM")
    {
        std::uint64_t iova = 0x800000;
        REQUIRE(c.map(f.ioas, kBufferAddr, kPage, &iova,
                      IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE) == 0);
        CHECK(access_pages(c, f.fd, 0x800000, kPage, 0, MOCK_FLAGS_ACCESS_WRITE) == -EPERM);
        CHECK(access_pages(c, f.fd, 0x800000, kPage, 0, 0) == 0);
    }
}

TEST_CASE("ACCESS_PAGES: items by id, dropped by unmap, by DESTROY_ACCESS_PAGES and by close",
          "[selftest_access]")
{
    AccessFixture f;
    Client& c = f.client;
    std::uint32_t first = 99, second = 99;
    REQUIRE(access_pages(c, f.fd, kIova, kPage, 0, 0, &first) == 0);
    REQUIRE(access_pages(c, f.fd, kIova + 4 * kPage, 2 * kPage, 0, MOCK_FLAGS_ACCESS_WRITE, &second) == 0);
    // Ids count from 0 for each access.
    CHECK(first == 0);
    CHECK(second == 1);
    CHECK(pins_at(f, f.ioas, kIova) == 1);
    CHECK(pins_at(f, f.ioas, kIova + 5 * kPage) == 1);

    SECTION("DESTROY_ACCESS_PAGES unpins once; an unknown id is ENOENT")
    {
        CHECK(destroy_pages(c, f.fd, first) == 0);
        CHECK(pins_at(f, f.ioas, kIova) == 0);
        CHECK(destroy_pages(c, f.fd, first) == -ENOENT);
        CHECK(destroy_pages(c, f.fd, 7) == -ENOENT);
    }
    SECTION("an unmap of an area with pins succeeds: the callback drops the items it meets")
    {
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, kPage, 0x800000) == 0);
        std::uint32_t third = 0;
        REQUIRE(access_pages(c, f.fd, 0x800000, kPage, 0, 0, &third) == 0);
        CHECK(third == 2);
        CHECK(c.unmap(f.ioas, kIova, 16 * kPage) == 0);
        CHECK(destroy_pages(c, f.fd, first) == -ENOENT);
        CHECK(destroy_pages(c, f.fd, second) == -ENOENT);
        CHECK(pins_at(f, f.ioas, 0x800000) == 1);
        CHECK(destroy_pages(c, f.fd, third) == 0);
    }
    SECTION("closing the access file unpins everything and frees the IOAS")
    {
        c.buffer().close_file(static_cast<int>(f.fd));
        CHECK(pins_at(f, f.ioas, kIova) == 0);
        CHECK(pins_at(f, f.ioas, kIova + 4 * kPage) == 0);
        CHECK(access_objects(c) == 0);
        CHECK(c.destroy(f.ioas) == 0);
    }
}

TEST_CASE("ACCESS_PAGES: uptr must name the caller's own pages behind the IOVA", "[selftest_access]")
{
    AccessFixture f;
    Client& c = f.client;
    std::uint32_t item = 0;
    CHECK(access_pages(c, f.fd, kIova + kPage, 2 * kPage, kBufferAddr + kPage, 0, &item) == 0);
    CHECK(pins_at(f, f.ioas, kIova + kPage) == 1);

    SECTION("other pages -> EBADE, and the pin is undone")
    {
        CHECK(access_pages(c, f.fd, kIova + 3 * kPage, kPage, kBufferAddr, 0) == -EBADE);
        CHECK(pins_at(f, f.ioas, kIova + 3 * kPage) == 0);
        // The kernel numbers an item once its pages passed the check.
        std::uint32_t next = 0;
        CHECK(access_pages(c, f.fd, kIova + 3 * kPage, kPage, kBufferAddr + 3 * kPage, 0, &next) == 0);
        CHECK(next == item + 1);
    }
    SECTION("uptr inside the page: the whole page is compared, as GUP pins it")
    {
        std::uint32_t next = 0;
        CHECK(access_pages(c, f.fd, kIova + 3 * kPage, kPage, kBufferAddr + 3 * kPage + 100, 0, &next) == 0);
        CHECK(next == item + 1);
    }
    SECTION("unmapped memory at uptr fails as GUP does -> EFAULT")
    {
        CHECK(access_pages(c, f.fd, kIova, kPage, 0x7000000000, 0) == -EFAULT);
        CHECK(pins_at(f, f.ioas, kIova) == 0);
    }
    SECTION("the same memory in another process's mapping is other pages -> EBADE")
    {
        Client other(f.services);
        const std::uint32_t ioas = alloc_ok(other);
        REQUIRE(other.map_fixed(ioas, kBufferAddr, kPage, kIova) == 0);
        std::uint32_t fd = 0;
        REQUIRE(create_access(other, ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES, &fd) == 0);
        CHECK(access_pages(other, fd, kIova, kPage, kBufferAddr, 0) == 0);
        other.buffer().close_file(static_cast<int>(fd));
    }
}

TEST_CASE("ACCESS_RW: copies at any alignment, the checks of iommufd_access_rw()", "[selftest_access]")
{
    AccessFixture f(0); // copying needs no NEEDS_PIN_PAGES
    Client& c = f.client;
    std::vector<std::byte> pattern(3 * kPage + 7);
    for (std::size_t i = 0; i < pattern.size(); ++i)
        pattern[i] = static_cast<std::byte>(i * 7 + 1);
    c.write(kArrayAddr, pattern);

    SECTION("a write lands in the mapped memory, a read brings it back")
    {
        for (std::uint32_t slow : {0u, static_cast<std::uint32_t>(MOCK_ACCESS_RW_SLOW_PATH)}) {
            CHECK(access_rw(c, f.fd, kIova + 3, pattern.size(), kArrayAddr, MOCK_ACCESS_RW_WRITE | slow) == 0);
            std::vector<std::byte> seen(pattern.size());
            c.read(kBufferAddr + 3, seen);
            CHECK(seen == pattern);
            CHECK(access_rw(c, f.fd, kIova + 3, pattern.size(), kArrayAddr + 0x10000, slow) == 0);
            c.read(kArrayAddr + 0x10000, seen);
            CHECK(seen == pattern);
        }
    }
    SECTION("errors")
    {
        CHECK(access_rw(c, 9999, kIova, (16ULL << 20) + 1, kArrayAddr, 0xff) == -ENOMEM);
        CHECK(access_rw(c, 9999, kIova, 8, kArrayAddr, 2) == -EOPNOTSUPP);
        CHECK(access_rw(c, 9999, kIova, 8, kArrayAddr, 0) == -EBADFD);
        CHECK(access_rw(c, f.fd, kIova, 0, kArrayAddr, 0) == -EINVAL);
        CHECK(access_rw(c, f.fd, kIova + 16 * kPage - 4, 8, kArrayAddr, 0) == -ENOENT);
        CHECK(access_rw(c, f.fd, kIova, 8, 0x7000000000, MOCK_ACCESS_RW_WRITE) == -EFAULT);
        CHECK(access_rw(c, f.fd, kIova, 8, 0x7000000000, 0) == -EFAULT);
        std::uint64_t iova = 0x800000;
        REQUIRE(c.map(f.ioas, kBufferAddr, kPage, &iova,
                      IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE) == 0);
        CHECK(access_rw(c, f.fd, 0x800000, 8, kArrayAddr, MOCK_ACCESS_RW_WRITE) == -EPERM);
        CHECK(access_rw(c, f.fd, 0x800000, 8, kArrayAddr, 0) == 0);
    }
    SECTION("MOCK_FLAGS_ACCESS_SYZ: the nth area and an offset in it")
    {
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr + 8 * kPage, kPage, 0x800000) == 0);
        CHECK(access_rw(c, f.fd, (std::uint64_t{16} << 32) | 1, 8, kArrayAddr,
                        std::uint32_t{MOCK_ACCESS_RW_WRITE} | MOCK_FLAGS_ACCESS_SYZ) == 0);
        std::vector<std::byte> seen(8);
        c.read(kBufferAddr + 8 * kPage + 16, seen);
        CHECK(std::memcmp(seen.data(), pattern.data(), 8) == 0);
        // No third area: IOVA 0, which is not mapped.
        CHECK(access_rw(c, f.fd, 2, 8, kArrayAddr, MOCK_FLAGS_ACCESS_SYZ) == -ENOENT);
    }
}

TEST_CASE("ACCESS_REPLACE_IOAS: moves the access, dropping its pins first", "[selftest_access]")
{
    AccessFixture f;
    Client& c = f.client;
    const std::uint32_t other = alloc_ok(c);
    REQUIRE(c.map_fixed(other, kBufferAddr + 8 * kPage, kPage, 0x800000) == 0);
    std::uint32_t item = 0;
    REQUIRE(access_pages(c, f.fd, kIova, kPage, 0, 0, &item) == 0);

    CHECK(replace_ioas(c, f.fd, 9999) == -ENOENT);
    CHECK(pins_at(f, f.ioas, kIova) == 1);
    CHECK(replace_ioas(c, f.fd, f.ioas) == 0); // the same IOAS: nothing happens
    CHECK(pins_at(f, f.ioas, kIova) == 1);

    CHECK(replace_ioas(c, f.fd, other) == 0);
    CHECK(pins_at(f, f.ioas, kIova) == 0);
    CHECK(destroy_pages(c, f.fd, item) == -ENOENT);
    // The old IOAS is free, the new one in use.
    CHECK(c.destroy(f.ioas) == 0);
    CHECK(c.destroy(other) == -EBUSY);
    CHECK(access_pages(c, f.fd, kIova, kPage, 0, 0) == -ENOENT);
    CHECK(access_pages(c, f.fd, 0x800000, kPage, kBufferAddr + 8 * kPage, 0, &item) == 0);
    CHECK(item == 1);
}

TEST_CASE("an access file keeps working while its context is busy elsewhere; its end waits for the lock",
          "[selftest_access]")
{
    AccessFixture f;
    Client& c = f.client;
    std::uint32_t item = 0;
    REQUIRE(access_pages(c, f.fd, kIova, kPage, 0, 0, &item) == 0);
    std::shared_ptr<core::ClientFile> file = c.buffer().file(static_cast<int>(f.fd));
    c.buffer().close_file(static_cast<int>(f.fd));
    // A reference still held (an op in flight) keeps the access.
    CHECK(access_objects(c) == 1);
    file.reset();
    CHECK(access_objects(c) == 0);
    CHECK(pins_at(f, f.ioas, kIova) == 0);
}
