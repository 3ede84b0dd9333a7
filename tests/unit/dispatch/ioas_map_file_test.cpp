// IOMMU_IOAS_MAP_FILE (Linux 6.13) driven through the dispatcher, with real
// files of this test process standing in for the client's descriptors.
// Every expectation comes from the kernel (6.13, not in the 6.12 tarball):
// drivers/iommu/iommufd/ioas.c iommufd_ioas_map_file(), io_pagetable.c
// iopt_map_file_pages() / iopt_map_common() / iopt_alloc_area_pages() /
// iopt_insert_area(), pages.c iopt_alloc_file_pages() / iopt_alloc_pages() /
// pfn_reader_user_pin() / pin_memfd_pages(), mm/gup.c memfd_pin_folios()
// and mm/shmem.c shmem_get_folio_gfp() for what pinning requires.
// x86-64: PAGE_SIZE 4096, ULONG_MAX == UINT64_MAX.
#include <catch2/catch.hpp>

#include <ioasid/iommufd.h>

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/access.h"
#include "core/ioas.h"
#include "dispatch/dispatcher.h"
#include "memory/process_caller.h"
#include "memory/request_caller.h"
#include "memory/unique_fd.h"
#include "test_support.h"

using namespace ioasid;
using memory::UniqueFd;

namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kMax = UINT64_MAX; // ULONG_MAX on x86-64
constexpr std::uint32_t kR = IOMMU_IOAS_MAP_READABLE;
constexpr std::uint32_t kW = IOMMU_IOAS_MAP_WRITEABLE;
constexpr std::uint32_t kRW = kR | kW;
constexpr std::uint32_t kFixed = IOMMU_IOAS_MAP_FIXED_IOVA;
constexpr std::uint32_t kBadId = 9999;
// Descriptor numbers in the fake client's table.
constexpr int kFd = 7;
constexpr int kClosedFd = 8;

// The layout of the 6.13 header (tests/abi asserts it too).
static_assert(sizeof(iommu_ioas_map_file) == 40);
static_assert(offsetof(iommu_ioas_map_file, fd) == 12);
static_assert(offsetof(iommu_ioas_map_file, start) == 16);
static_assert(offsetof(iommu_ioas_map_file, iova) == 32);
static_assert(IOMMU_IOAS_MAP_FILE == 0x3b8f);

std::byte pattern(std::uint64_t i)
{
    return static_cast<std::byte>((i * 7 + i / 4096) & 0xff);
}

// A memfd of `size` bytes holding pattern(), named so that /proc/self/fd
// shows which descriptors refer to it.
struct Memfd {
    UniqueFd fd;
    std::string name;

    explicit Memfd(std::uint64_t size, unsigned flags = 0)
    {
        static int serial = 0;
        name = "ioasid-map-file-" + std::to_string(::getpid()) + "-" + std::to_string(++serial);
        fd.reset(::memfd_create(name.c_str(), MFD_CLOEXEC | flags));
        REQUIRE(fd);
        REQUIRE(::ftruncate(fd.get(), static_cast<off_t>(size)) == 0);
        std::vector<std::byte> bytes(size);
        for (std::uint64_t i = 0; i < size; ++i)
            bytes[i] = pattern(i);
        if (size)
            REQUIRE(::pwrite(fd.get(), bytes.data(), size, 0) == static_cast<ssize_t>(size));
    }

    [[nodiscard]] UniqueFd dup() const { return UniqueFd(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0)); }
};

// Descriptors of this process open on the memfd called `name` (the
// daemon's among them: it runs in this process).
int open_count(const std::string& name)
{
    int n = 0;
    DIR* dir = ::opendir("/proc/self/fd");
    REQUIRE(dir);
    while (dirent* e = ::readdir(dir)) {
        char target[256] = {};
        const std::string path = std::string("/proc/self/fd/") + e->d_name;
        if (::readlink(path.c_str(), target, sizeof(target) - 1) > 0 &&
            std::string(target).find("/memfd:" + name + " ") != std::string::npos)
            ++n;
    }
    ::closedir(dir);
    return n;
}

UniqueFd reopen(int fd, int flags)
{
    return UniqueFd(::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), flags | O_CLOEXEC));
}

struct Env : test::IoasFixture {
    static iommu_ioas_map_file cmd(std::uint32_t flags, std::uint32_t id, std::int32_t fd,
                                   std::uint64_t start, std::uint64_t length, std::uint64_t iova)
    {
        return iommu_ioas_map_file{.size = sizeof(iommu_ioas_map_file), .flags = flags,
                                   .ioas_id = id, .fd = fd, .start = start, .length = length,
                                   .iova = iova};
    }

    // The client's descriptor `number` names `file` (a duplicate).
    void give(int number, const UniqueFd& file)
    {
        client.buffer().add_fd(number, UniqueFd(::fcntl(file.get(), F_DUPFD_CLOEXEC, 0)));
    }

    int map_cmd(iommu_ioas_map_file& c) { return client.ioctl(IOMMU_IOAS_MAP_FILE, c); }

    int fixed(std::int32_t fd, std::uint64_t start, std::uint64_t length, std::uint64_t iova,
              std::uint32_t prot = kRW, std::uint32_t id = 0)
    {
        auto c = cmd(kFixed | prot, id ? id : ioas, fd, start, length, iova);
        int rc = map_cmd(c);
        if (rc == 0)
            CHECK(c.iova == iova);
        return rc;
    }

    int autom(std::int32_t fd, std::uint64_t start, std::uint64_t length, std::uint64_t* iova,
              std::uint32_t prot = kRW)
    {
        auto c = cmd(prot, ioas, fd, start, length, *iova);
        int rc = map_cmd(c);
        *iova = c.iova;
        return rc;
    }

    int rw(std::uint64_t iova, std::span<std::byte> data, bool write, std::uint32_t id = 0)
    {
        return obj(id ? id : ioas).iopt().rw(iova, data, write);
    }

    core::Access& access(std::uint32_t id = 0)
    {
        std::uint32_t aid = 0;
        REQUIRE(core::access_create(client.ctx(), id ? id : ioas, 1, nullptr, &aid) == 0);
        auto* a = client.ctx().objects().find_as<core::Access>(aid);
        REQUIRE(a != nullptr);
        return *a;
    }

    std::size_t area_count() { return obj(ioas).iopt().area_count(); }
    std::uint64_t charged() const { return services.accounting.user_pages(1000); }
};

std::vector<std::byte> expected(std::uint64_t start, std::uint64_t length)
{
    std::vector<std::byte> out(length);
    for (std::uint64_t i = 0; i < length; ++i)
        out[i] = pattern(start + i);
    return out;
}

bool on_fs(const char* dir, long magic)
{
    struct statfs fs {};
    return ::statfs(dir, &fs) == 0 && fs.f_type == magic;
}

} // namespace

TEST_CASE("MAP_FILE maps a memfd; the IOAS reads the file's bytes", "[map_file]")
{
    Env env;
    Memfd file(16 * kPage);
    env.give(kFd, file.fd);

    REQUIRE(env.fixed(kFd, 0, 4 * kPage, 0x100000) == 0);
    std::vector<std::byte> got(4 * kPage);
    REQUIRE(env.rw(0x100000, got, false) == 0);
    CHECK(got == expected(0, 4 * kPage));

    // A sub-page start: the IOVA keeps the offset inside the page, and the
    // bytes start where the file offset says.
    REQUIRE(env.fixed(kFd, 5 * kPage + 0x123, 0x2000, 0x200123) == 0);
    std::vector<std::byte> part(0x2000);
    REQUIRE(env.rw(0x200123, part, false) == 0);
    CHECK(part == expected(5 * kPage + 0x123, 0x2000));

    // Writes land in the file.
    std::array<std::byte, 5> hello{std::byte{'h'}, std::byte{'e'}, std::byte{'l'}, std::byte{'l'},
                                   std::byte{'o'}};
    REQUIRE(env.rw(0x100000 + 3 * kPage - 2, hello, true) == 0);
    std::array<std::byte, 5> in_file{};
    REQUIRE(::pread(file.fd.get(), in_file.data(), in_file.size(), 3 * kPage - 2) == 5);
    CHECK(in_file == hello);
    // ...and the file's writes show through the IOAS: one memory.
    const std::byte x{0x5a};
    REQUIRE(::pwrite(file.fd.get(), &x, 1, 2) == 1);
    std::byte back{};
    REQUIRE(env.rw(0x100002, std::span(&back, 1), false) == 0);
    CHECK(back == x);
}

TEST_CASE("MAP_FILE without FIXED_IOVA places by the file offset, as for a user address",
          "[map_file][alloc]")
{
    // iopt_alloc_area_pages() hands iopt_alloc_iova() pages->start +
    // start_byte for a file: the alignment follows the file offset.
    Env env;
    Memfd file(64 * kPage);
    env.give(kFd, file.fd);
    std::uint64_t iova = 0;
    // Offset 0: roundup_pow_of_two(length) alignment, never IOVA 0.
    REQUIRE(env.autom(kFd, 0, 4 * kPage, &iova) == 0);
    CHECK(iova == 4 * kPage);
    // Offset 4 KiB: 1 << __ffs(4096) caps it at 4 KiB, so the hole below
    // the first area fits.
    REQUIRE(env.autom(kFd, kPage, 2 * kPage, &iova) == 0);
    CHECK(iova == kPage);
    // A sub-page offset is carried into the IOVA.
    REQUIRE(env.autom(kFd, 8 * kPage + 0x10, 0x100, &iova) == 0);
    CHECK(iova % kPage == 0x10);
    // The write-back is the whole struct with the chosen IOVA.
    auto c = Env::cmd(kRW, env.ioas, kFd, 0, kPage, 0xdead);
    REQUIRE(env.map_cmd(c) == 0);
    CHECK(c.iova != 0xdead);
    CHECK(c.fd == kFd);
    CHECK(c.start == 0);
    CHECK(c.length == kPage);
}

TEST_CASE("MAP_FILE pages outlive the client's descriptor and its own mapping",
          "[map_file][lifetime]")
{
    Env env;
    std::vector<std::byte> want;
    std::string name;
    {
        Memfd file(8 * kPage);
        name = file.name;
        // The client writes through its own view, maps, then lets go of
        // everything: its descriptor, the one in its table, its mapping.
        void* view = ::mmap(nullptr, 8 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, file.fd.get(), 0);
        REQUIRE(view != MAP_FAILED);
        std::memset(static_cast<char*>(view) + kPage, 0xab, kPage);
        want = expected(0, 8 * kPage);
        std::fill(want.begin() + kPage, want.begin() + 2 * kPage, std::byte{0xab});
        env.give(kFd, file.fd);
        REQUIRE(env.fixed(kFd, 0, 8 * kPage, 0x400000) == 0);
        // The daemon holds a reference of its own: the test's, the table's
        // and the mapping's.
        CHECK(open_count(name) == 3);
        env.client.buffer().remove_fd(kFd);
        REQUIRE(::munmap(view, 8 * kPage) == 0);
        CHECK(open_count(name) == 2);
    }
    std::vector<std::byte> got(8 * kPage);
    REQUIRE(env.rw(0x400000, got, false) == 0);
    CHECK(got == want);
    // Pinned and written after the client is gone, like pinned pages.
    core::Access& acc = env.access();
    std::vector<std::uint64_t> phys;
    REQUIRE(acc.pin_pages(0x400000, 8 * kPage, true, &phys) == 0);
    CHECK(phys.size() == 8);
    std::array<std::byte, 3> data{std::byte{1}, std::byte{2}, std::byte{3}};
    REQUIRE(acc.rw(0x400000 + 5 * kPage, data, true) == 0);
    std::array<std::byte, 3> again{};
    REQUIRE(acc.rw(0x400000 + 5 * kPage, again, false) == 0);
    CHECK(again == data);
    acc.unpin_pages(0x400000, 8 * kPage);

    // Unmapping the area lets go of the file: nothing refers to it then.
    std::uint64_t unmapped = 0;
    REQUIRE(env.client.unmap(env.ioas, 0x400000, 8 * kPage, &unmapped) == 0);
    CHECK(unmapped == 8 * kPage);
    CHECK(open_count(name) == 0);
}

TEST_CASE("MAP_FILE errors come in the kernel's order", "[map_file][errno]")
{
    Env env;
    Memfd file(4 * kPage);
    env.give(kFd, file.fd);
    UniqueFd read_only = reopen(file.fd.get(), O_RDONLY);
    REQUIRE(read_only);
    constexpr int kReadOnlyFd = 9;
    env.give(kReadOnlyFd, read_only);

    SECTION("unknown flags first (dispatch), whatever else is wrong")
    {
        for (std::uint32_t bad : {1u << 3, 1u << 31, 0xfffffff8u}) {
            auto c = Env::cmd(kRW | bad, kBadId, kClosedFd, kMax, kMax, kMax);
            CHECK(env.map_cmd(c) == -EOPNOTSUPP);
        }
    }
    SECTION("iova or length >= ULONG_MAX: EOVERFLOW before the R/W check and the lookups")
    {
        auto c = Env::cmd(0, kBadId, kClosedFd, 0, kPage, kMax);
        CHECK(env.map_cmd(c) == -EOVERFLOW);
        c = Env::cmd(0, kBadId, kClosedFd, 0, kMax, 0);
        CHECK(env.map_cmd(c) == -EOVERFLOW);
        // Below ULONG_MAX, but iova + length wraps (iopt_check_iova()).
        CHECK(env.fixed(kFd, 0, kPage, kMax - 1) == -EOVERFLOW);
    }
    SECTION("neither READABLE nor WRITEABLE: EINVAL before the IOAS lookup")
    {
        auto c = Env::cmd(kFixed, kBadId, kClosedFd, 0, kPage, 0x100000);
        CHECK(env.map_cmd(c) == -EINVAL);
    }
    SECTION("no such IOAS: ENOENT before the descriptor")
    {
        auto c = Env::cmd(kRW, kBadId, kClosedFd, 0, kPage, 0);
        CHECK(env.map_cmd(c) == -ENOENT);
        c = Env::cmd(kRW, 0, kFd, 0, kPage, 0);
        CHECK(env.map_cmd(c) == -ENOENT);
    }
    SECTION("a descriptor the client does not have: EBADF before the range checks")
    {
        // 6.13 takes the file in ioas.c before iopt_alloc_file_pages() looks
        // at start and length (6.19 checks those first).
        CHECK(env.fixed(kClosedFd, kMax - 10, 12, 0x100000) == -EBADF);
        CHECK(env.fixed(kClosedFd, 0, 0, 0x100000) == -EBADF);
        CHECK(env.fixed(-1, 0, kPage, 0x100000) == -EBADF);
        CHECK(env.fixed(INT32_MIN, 0, kPage, 0x100000) == -EBADF);
        // fget() does not hand out O_PATH descriptors.
        UniqueFd path(::open("/proc/self/exe", O_PATH | O_CLOEXEC));
        REQUIRE(path);
        env.give(10, path);
        CHECK(env.fixed(10, 0, kPage, 0x100000) == -EBADF);
    }
    SECTION("start + length - 1 wraps: EOVERFLOW, before the length and write checks")
    {
        CHECK(env.fixed(kFd, kMax - 10, 12, 0x100000) == -EOVERFLOW);
        CHECK(env.fixed(kFd, kMax, 2, 0x100000) == -EOVERFLOW);
        CHECK(env.fixed(kReadOnlyFd, kMax - kPage + 1, kPage + 1, 0x100000, kRW) == -EOVERFLOW);
        // The last byte at ULONG_MAX is fine (a pin would find no such
        // page); a page count that wraps is iopt_insert_area()'s EOVERFLOW.
        CHECK(env.fixed(kFd, 0xfff, kMax - kPage, 0) == -EOVERFLOW);
        CHECK(env.fixed(kFd, kMax - 0xfff, 0x1000, 0x100000) == 0);
    }
    SECTION("zero or too large a length: EINVAL, before the write check")
    {
        CHECK(env.fixed(kFd, 0, 0, 0x100000) == -EINVAL);
        CHECK(env.fixed(kReadOnlyFd, 0, 0, 0x100000, kRW) == -EINVAL);
        CHECK(env.fixed(kFd, 0, kMax - kPage + 1, 0x100000) == -EINVAL);
        CHECK(env.fixed(kReadOnlyFd, 0, kMax - kPage + 1, 0x100000, kRW) == -EINVAL);
    }
    SECTION("WRITEABLE needs a file open for writing and not write-sealed: EPERM")
    {
        // 6.13 pins such a file for write regardless; the fix that refuses
        // it (EPERM) is what the daemon, which writes through a mapping of
        // its own, can implement.
        CHECK(env.fixed(kReadOnlyFd, 0, kPage, 0x100000, kRW) == -EPERM);
        CHECK(env.fixed(kReadOnlyFd, 0, kPage, 0x100000, kW) == -EPERM);
        CHECK(env.area_count() == 0);
        // Read-only maps of it are fine, and read.
        REQUIRE(env.fixed(kReadOnlyFd, 0, kPage, 0x100000, kR) == 0);
        std::vector<std::byte> got(kPage);
        REQUIRE(env.rw(0x100000, got, false) == 0);
        CHECK(got == expected(0, kPage));
        CHECK(env.rw(0x100000, got, true) == -EPERM);

        for (unsigned seal : {F_SEAL_WRITE, F_SEAL_FUTURE_WRITE}) {
            Memfd sealed(kPage, MFD_ALLOW_SEALING);
            REQUIRE(::fcntl(sealed.fd.get(), F_ADD_SEALS, seal) == 0);
            env.give(11, sealed.fd);
            CHECK(env.fixed(11, 0, kPage, 0x200000, kRW) == -EPERM);
            CHECK(env.fixed(11, 0, kPage, 0x200000, kR) == 0);
            REQUIRE(env.client.unmap(env.ioas, 0x200000, kPage) == 0);
        }
    }
    SECTION("then the placement rules of IOAS_MAP")
    {
        REQUIRE(env.fixed(kFd, 0, 2 * kPage, 0x100000) == 0);
        CHECK(env.fixed(kFd, 0, kPage, 0x101000) == -EEXIST);
        static const int owner = 0;
        REQUIRE(env.obj(env.ioas).iopt().reserve({0x300000, 0x3fffff}, &owner) == 0);
        CHECK(env.fixed(kFd, 0, kPage, 0x300000) == -EINVAL);
        // A whole-page IOVA alignment: length, IOVA and the offset inside
        // the first page must all follow it.
        iommu_option off{.size = sizeof(off), .option_id = IOMMU_OPTION_HUGE_PAGES,
                         .op = IOMMU_OPTION_OP_SET, .__reserved = 0, .object_id = env.ioas,
                         .val64 = 0};
        REQUIRE(env.client.ioctl(IOMMU_OPTION, off) == 0);
        CHECK(env.fixed(kFd, 0, kPage + 1, 0x500000) == -EINVAL);
        CHECK(env.fixed(kFd, 0, kPage, 0x500010) == -EINVAL);
        CHECK(env.fixed(kFd, 0x10, kPage, 0x500000) == -EINVAL);
        CHECK(env.fixed(kFd, kPage, kPage, 0x500000) == 0);
    }
    // Nothing failed half way: no area, no charge, no extra descriptor.
    CHECK(env.charged() == 0);
}

TEST_CASE("MAP_FILE struct size rules", "[map_file][size]")
{
    Env env;
    Memfd file(kPage);
    env.give(kFd, file.fd);
    auto c = Env::cmd(kFixed | kRW, env.ioas, kFd, 0, kPage, 0x100000);

    SECTION("shorter than the first version: EINVAL")
    {
        for (std::uint32_t size : {0u, 4u, 36u, 39u}) {
            c.size = size;
            CHECK(env.map_cmd(c) == -EINVAL);
        }
        CHECK(env.area_count() == 0);
    }
    SECTION("longer with a zero tail: accepted, and only 40 bytes written back")
    {
        struct {
            iommu_ioas_map_file cmd;
            std::uint64_t tail[2];
        } longer{};
        longer.cmd = Env::cmd(kRW, env.ioas, kFd, 0, kPage, 0);
        longer.cmd.size = sizeof(longer);
        longer.tail[0] = 0;
        REQUIRE(env.client.ioctl(IOMMU_IOAS_MAP_FILE, longer) == 0);
        CHECK(longer.cmd.iova != 0);
        CHECK(longer.tail[0] == 0);
        CHECK(longer.tail[1] == 0);
    }
    SECTION("longer with a non-zero tail: E2BIG before anything else")
    {
        struct {
            iommu_ioas_map_file cmd;
            std::uint32_t tail[2];
        } longer{};
        longer.cmd = Env::cmd(kRW | (1u << 9), kBadId, kClosedFd, 0, 0, 0);
        longer.cmd.size = sizeof(longer);
        longer.tail[1] = 1;
        CHECK(env.client.ioctl(IOMMU_IOAS_MAP_FILE, longer) == -E2BIG);
    }
    SECTION("a command with size or direction bits: ENOTTY")
    {
        const unsigned bad = _IOWR(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP_FILE, iommu_ioas_map_file);
        CHECK(env.client.ioctl(bad, c) == -ENOTTY);
        CHECK(env.area_count() == 0);
    }
}

TEST_CASE("MAP_FILE of a file that cannot be pinned fails when it is pinned",
          "[map_file][pin]")
{
    // memfd_pin_folios() takes only shmem and hugetlbfs files (-EINVAL).
    // Without a domain nothing is pinned at MAP time, so the map succeeds
    // and the pin fails, as a bad user_va does for IOAS_MAP.
    Env env;
    std::vector<std::byte> buf(kPage);

    SECTION("a regular file on a disk filesystem")
    {
        if (on_fs("/tmp", TMPFS_MAGIC)) {
            WARN("/tmp is tmpfs here: no disk file to try");
            return;
        }
        char path[] = "/tmp/ioasid-map-file-XXXXXX";
        UniqueFd regular(::mkostemp(path, O_CLOEXEC));
        REQUIRE(regular);
        ::unlink(path);
        REQUIRE(::ftruncate(regular.get(), 4 * kPage) == 0);
        env.give(kFd, regular);
        REQUIRE(env.fixed(kFd, 0, 4 * kPage, 0x100000) == 0);
        core::Access& acc = env.access();
        std::vector<std::uint64_t> phys;
        CHECK(acc.pin_pages(0x100000, kPage, false, &phys) == -EINVAL);
        CHECK(acc.rw(0x100000, buf, false) == -EINVAL);
        CHECK(env.charged() == 0);
    }
    SECTION("a pipe")
    {
        int ends[2];
        REQUIRE(::pipe2(ends, O_CLOEXEC) == 0);
        UniqueFd rd(ends[0]), wr(ends[1]);
        env.give(kFd, rd);
        env.give(kFd + 1, wr);
        // The read end is not open for writing (EPERM for WRITEABLE).
        CHECK(env.fixed(kFd, 0, kPage, 0x100000, kRW) == -EPERM);
        REQUIRE(env.fixed(kFd, 0, kPage, 0x100000, kR) == 0);
        REQUIRE(env.fixed(kFd + 1, 0, kPage, 0x200000, kW) == 0);
        core::Access& acc = env.access();
        std::vector<std::uint64_t> phys;
        CHECK(acc.pin_pages(0x100000, kPage, false, &phys) == -EINVAL);
        CHECK(acc.pin_pages(0x200000, kPage, true, &phys) == -EINVAL);
        CHECK(acc.rw(0x200000, buf, true) == -EINVAL);
    }
    SECTION("a regular file on tmpfs is shmem: accepted")
    {
        if (!on_fs("/dev/shm", TMPFS_MAGIC)) {
            WARN("no tmpfs at /dev/shm");
            return;
        }
        char path[] = "/dev/shm/ioasid-map-file-XXXXXX";
        UniqueFd shm(::mkostemp(path, O_CLOEXEC));
        REQUIRE(shm);
        ::unlink(path);
        REQUIRE(::ftruncate(shm.get(), 2 * kPage) == 0);
        REQUIRE(::pwrite(shm.get(), "abc", 3, kPage) == 3);
        env.give(kFd, shm);
        REQUIRE(env.fixed(kFd, 0, 2 * kPage, 0x100000) == 0);
        core::Access& acc = env.access();
        std::vector<std::uint64_t> phys;
        CHECK(acc.pin_pages(0x100000, 2 * kPage, true, &phys) == 0);
        std::array<char, 3> got{};
        REQUIRE(acc.rw(0x100000 + kPage, std::as_writable_bytes(std::span(got)), false) == 0);
        CHECK(std::string(got.data(), 3) == "abc");
        acc.unpin_pages(0x100000, 2 * kPage);
    }
}

TEST_CASE("MAP_FILE past the end of the file fails at pin time with EINVAL",
          "[map_file][pin][eof]")
{
    // shmem allocates the pages of holes but none at or past i_size
    // (shmem_get_folio_gfp(): -EINVAL), and memfd_pin_folios() passes that
    // up. The selftest's "buf_size + 1" and "ftruncate(0)" cases.
    Env env;
    Memfd file(4 * kPage + 100); // the last page is partial, and valid
    env.give(kFd, file.fd);
    REQUIRE(env.fixed(kFd, 0, 8 * kPage, 0x100000) == 0);
    core::Access& acc = env.access();
    std::vector<std::uint64_t> phys;
    CHECK(acc.pin_pages(0x100000, 8 * kPage, false, &phys) == -EINVAL);
    CHECK(acc.pin_pages(0x100000 + 5 * kPage, kPage, false, &phys) == -EINVAL);
    CHECK(env.charged() == 0);
    // Pages inside the file pin, the partial one included.
    REQUIRE(acc.pin_pages(0x100000, 5 * kPage, false, &phys) == 0);
    CHECK(env.charged() == 5);
    // The check is made when pinning: a file that grew is fine then.
    REQUIRE(::ftruncate(file.fd.get(), 8 * kPage) == 0);
    REQUIRE(acc.pin_pages(0x100000 + 5 * kPage, 3 * kPage, false, &phys) == 0);
    CHECK(env.charged() == 8);
    acc.unpin_pages(0x100000, 5 * kPage);
    acc.unpin_pages(0x100000 + 5 * kPage, 3 * kPage);
    CHECK(env.charged() == 0);

    // A file shrunk under pages the daemon has mapped: copies fail (the
    // kernel would copy through its pins; the daemon has none to keep),
    // and the daemon does not die of the SIGBUS.
    std::vector<std::byte> buf(2 * kPage);
    REQUIRE(env.rw(0x100000, buf, false) == 0);
    REQUIRE(::ftruncate(file.fd.get(), kPage) == 0);
    CHECK(env.rw(0x100000, buf, false) == -EINVAL);
    CHECK(env.rw(0x100000 + kPage, buf, true) == -EINVAL);
    std::vector<std::byte> first(kPage);
    REQUIRE(env.rw(0x100000, first, false) == 0);
    CHECK(first == expected(0, kPage));
    CHECK(acc.pin_pages(0x100000, 2 * kPage, false, &phys) == -EINVAL);
}

TEST_CASE("MAP_FILE pins are charged like user pins", "[map_file][accounting]")
{
    // The pages are charged to the mapping process (iopt_alloc_pages() takes
    // current's user and mm), in the context's mode, nothing with
    // CAP_IPC_LOCK; a page shared by a copy is charged once.
    Env env;
    Memfd file(16 * kPage);
    env.give(kFd, file.fd);
    REQUIRE(env.fixed(kFd, 0, 16 * kPage, 0x100000) == 0);
    core::Access& acc = env.access();
    std::vector<std::uint64_t> phys;

    SECTION("per user, once per page")
    {
        REQUIRE(acc.pin_pages(0x100000, 4 * kPage, false, &phys) == 0);
        REQUIRE(acc.pin_pages(0x100000 + 2 * kPage, 4 * kPage, false, &phys) == 0);
        CHECK(env.charged() == 6);
        // Copied into another IOAS: the same pages, not charged again.
        const std::uint32_t dst = env.new_ioas();
        iommu_ioas_copy copy{.size = sizeof(copy), .flags = kFixed | kRW, .dst_ioas_id = dst,
                             .src_ioas_id = env.ioas, .length = 16 * kPage,
                             .dst_iova = 0x800000, .src_iova = 0x100000};
        REQUIRE(env.client.ioctl(IOMMU_IOAS_COPY, copy) == 0);
        core::Access& other = env.access(dst);
        REQUIRE(other.pin_pages(0x800000, 4 * kPage, false, &phys) == 0);
        CHECK(env.charged() == 6);
        std::vector<std::byte> got(kPage);
        REQUIRE(env.rw(0x800000 + 3 * kPage, got, false, dst) == 0);
        CHECK(got == expected(3 * kPage, kPage));
        other.unpin_pages(0x800000, 4 * kPage);
        acc.unpin_pages(0x100000, 4 * kPage);
        acc.unpin_pages(0x100000 + 2 * kPage, 4 * kPage);
        CHECK(env.charged() == 0);
    }
    SECTION("RLIMIT_MEMLOCK: ENOMEM, nothing charged")
    {
        env.client.buffer().set_memlock_limit(3 * kPage);
        CHECK(acc.pin_pages(0x100000, 4 * kPage, false, &phys) == -ENOMEM);
        CHECK(env.charged() == 0);
        REQUIRE(acc.pin_pages(0x100000, 3 * kPage, false, &phys) == 0);
        CHECK(env.charged() == 3);
        acc.unpin_pages(0x100000, 3 * kPage);
    }
}

TEST_CASE("MAP_FILE by a CAP_IPC_LOCK caller is not charged", "[map_file][accounting]")
{
    core::CoreServices services;
    auto caller = test::Client::make_caller();
    caller->set_capable(memory::Capability::ipc_lock, true);
    test::Client client(services, caller);
    const std::uint32_t ioas = test::alloc_ok(client);
    Memfd file(4 * kPage);
    caller->add_fd(kFd, file.dup());
    auto c = Env::cmd(kFixed | kRW, ioas, kFd, 0, 4 * kPage, 0x100000);
    REQUIRE(client.ioctl(IOMMU_IOAS_MAP_FILE, c) == 0);
    std::uint32_t aid = 0;
    REQUIRE(core::access_create(client.ctx(), ioas, 1, nullptr, &aid) == 0);
    auto* acc = client.ctx().objects().find_as<core::Access>(aid);
    std::vector<std::uint64_t> phys;
    REQUIRE(acc->pin_pages(0x100000, 4 * kPage, false, &phys) == 0);
    CHECK(services.accounting.user_pages(caller->uid()) == 0);
    acc->unpin_pages(0x100000, 4 * kPage);
}

TEST_CASE("MAP_FILE of a sparse memfd pins its holes", "[map_file][pin]")
{
    Env env;
    Memfd file(0);
    REQUIRE(::ftruncate(file.fd.get(), 64 * kPage) == 0); // all hole
    env.give(kFd, file.fd);
    REQUIRE(env.fixed(kFd, 0, 64 * kPage, 0x1000000) == 0);
    core::Access& acc = env.access();
    std::vector<std::uint64_t> phys;
    REQUIRE(acc.pin_pages(0x1000000, 64 * kPage, true, &phys) == 0);
    std::vector<std::byte> zero(kPage), got(kPage, std::byte{1});
    REQUIRE(acc.rw(0x1000000 + 63 * kPage, got, false) == 0);
    CHECK(got == zero);
    acc.unpin_pages(0x1000000, 64 * kPage);
}

TEST_CASE("Caller::take_fd: the caller's descriptor, duplicated", "[map_file][caller]")
{
    Memfd file(kPage);

    SECTION("BufferCaller's table")
    {
        auto caller = std::make_shared<memory::BufferCaller>();
        caller->add_fd(3, file.dup());
        UniqueFd got;
        REQUIRE(caller->take_fd(3, &got) == 0);
        CHECK(got.get() != file.fd.get());
        CHECK((::fcntl(got.get(), F_GETFD) & FD_CLOEXEC) != 0);
        CHECK(caller->take_fd(4, &got) == -EBADF);
        caller->remove_fd(3);
        CHECK(caller->take_fd(3, &got) == -EBADF);
    }
    SECTION("ProcessCaller: pidfd_getfd() on this process")
    {
        std::shared_ptr<memory::ProcessCaller> self = memory::ProcessCaller::open(::getpid(), ::getuid());
        REQUIRE(self);
        UniqueFd got;
        REQUIRE(self->take_fd(file.fd.get(), &got) == 0);
        struct stat a {}, b {};
        REQUIRE(::fstat(got.get(), &a) == 0);
        REQUIRE(::fstat(file.fd.get(), &b) == 0);
        CHECK(a.st_ino == b.st_ino);
        CHECK(got.get() != file.fd.get());
        CHECK((::fcntl(got.get(), F_GETFD) & FD_CLOEXEC) != 0);
        // A closed descriptor, a negative one.
        const int closed = got.get();
        got.reset();
        CHECK(self->take_fd(closed, &got) == -EBADF);
        CHECK(self->take_fd(-1, &got) == -EBADF);
        CHECK(!got);
    }
    SECTION("RequestCaller: forwards to its process, EBADF without one")
    {
        std::shared_ptr<memory::ProcessCaller> self = memory::ProcessCaller::open(::getpid(), ::getuid());
        REQUIRE(self);
        std::array<std::byte, 8> bytes{};
        memory::RequestCaller with(self, ::getuid(), ::getpid(), 0x1000, bytes);
        memory::RequestCaller without(nullptr, ::getuid(), ::getpid(), 0x1000, bytes);
        UniqueFd got;
        CHECK(with.take_fd(file.fd.get(), &got) == 0);
        CHECK(got);
        UniqueFd none;
        CHECK(without.take_fd(file.fd.get(), &none) == -EBADF);
        CHECK(!none);
    }
}

TEST_CASE("MAP_FILE through a ProcessCaller takes the fd from the process", "[map_file][caller]")
{
    // The descriptor number is the caller's: here, this process's.
    core::CoreServices services;
    std::shared_ptr<memory::ProcessCaller> self = memory::ProcessCaller::open(::getpid(), ::getuid());
    REQUIRE(self);
    core::Context ctx(services);
    std::lock_guard guard(ctx.lock());
    auto pending = core::ioas_alloc(ctx);
    const std::uint32_t ioas = pending.id();
    pending.publish();
    Memfd file(2 * kPage);
    core::MapFileRequest request{.ioas_id = ioas, .fd = file.fd.get(), .start = 0,
                                 .length = 2 * kPage, .iova = 0x100000, .fixed_iova = true,
                                 .readable = true, .writable = true};
    std::uint64_t iova = 0;
    std::shared_ptr<memory::Caller> caller = self;
    REQUIRE(core::ioas_map_file(ctx, caller, request, &iova) == 0);
    CHECK(iova == 0x100000);
    file.fd.reset();
    std::vector<std::byte> got(2 * kPage);
    auto* obj = ctx.objects().find_as<core::Ioas>(ioas);
    REQUIRE(obj->iopt().rw(0x100000, got, false) == 0);
    CHECK(got == expected(0, 2 * kPage));
    // The descriptor is gone now: EBADF.
    request.iova = 0x200000;
    CHECK(core::ioas_map_file(ctx, caller, request, &iova) == -EBADF);
}

TEST_CASE("MAP_FILE in --trace", "[map_file][trace]")
{
    Env env;
    auto c = Env::cmd(kFixed | kRW, 1, -1, 0x1000, 0x2000, 0x300000);
    env.client.write(test::kStructAddr, std::as_bytes(std::span(&c, 1)));
    const std::string text =
        dispatch::describe(IOMMU_IOAS_MAP_FILE, env.client.buffer().memory(), test::kStructAddr);
    CHECK(text == "IOMMU_IOAS_MAP_FILE{size=40 flags=0x7 ioas_id=1 fd=-1 start=0x1000 "
                  "length=0x2000 iova=0x300000}");
}

TEST_CASE("numbers between VFIO_IOAS and MAP_FILE without a handler answer ENOTTY unread",
          "[map_file][decode]")
{
    core::CoreServices services;
    test::Client c(services);
    CHECK(dispatch::known(IOMMU_IOAS_MAP_FILE));
    constexpr std::uint64_t kUnmapped = 0x30000;
    for (unsigned nr = IOMMUFD_CMD_BASE; nr <= IOMMUFD_CMD_IOAS_MAP_FILE + 1; ++nr) {
        INFO(std::hex << nr);
        const unsigned cmd = _IO(IOMMUFD_TYPE, nr);
        const int rc = c.ioctl_at(cmd, kUnmapped);
        // known() is "not ENOTTY before reading", for every number.
        CHECK(dispatch::known(cmd) == (rc != -ENOTTY));
        if (!dispatch::known(cmd)) {
            iommu_destroy arg{.size = sizeof(arg), .id = 1};
            CHECK(c.ioctl(cmd, arg) == -ENOTTY);
        }
    }
    CHECK_FALSE(dispatch::known(_IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP_FILE + 1)));
}
