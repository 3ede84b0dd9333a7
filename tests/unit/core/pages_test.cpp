// Pinning: counted per page, charged once, backed by emulated physical
// addresses that resolve to the client's memory.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "core/context.h"
#include "core/pages.h"
#include "memory/buffer_caller.h"
#include "memory/process_caller.h"

using namespace ioasid;

namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kVa = 0x10000000;

struct Fixture {
    core::CoreServices services;
    core::PinServices pin{services.accounting, services.phys};
    std::shared_ptr<memory::BufferCaller> caller = std::make_shared<memory::BufferCaller>();

    Fixture() { caller->add_region(kVa, 64 * kPage); }

    std::shared_ptr<core::Pages> make(std::uint64_t va, std::uint64_t length, bool writable = true,
                                      core::AccountMode mode = core::AccountMode::user)
    {
        std::shared_ptr<core::Pages> pages;
        REQUIRE(core::Pages::create(caller, va, length, writable, mode, pin, &pages) == 0);
        return pages;
    }
};

} // namespace

TEST_CASE("pages objects check length and wrap like iopt_alloc_pages", "[core][pages]")
{
    Fixture f;
    std::shared_ptr<core::Pages> pages;
    CHECK(core::Pages::create(f.caller, kVa, 0, true, core::AccountMode::user, f.pin, &pages) == -EINVAL);
    CHECK(core::Pages::create(f.caller, kVa, UINT64_MAX - kPage + 1, true, core::AccountMode::user, f.pin,
                              &pages) == -EINVAL);
    CHECK(core::Pages::create(f.caller, UINT64_MAX - 10, 11, true, core::AccountMode::user, f.pin, &pages) ==
          -EOVERFLOW);
    auto p = f.make(kVa + 0x123, kPage);
    CHECK(p->uptr() == kVa);
    CHECK(p->npages() == 2);
}

TEST_CASE("a page is pinned and charged once however many pins it has", "[core][pages]")
{
    Fixture f;
    auto pages = f.make(kVa, 8 * kPage);
    REQUIRE(pages->pin(0, 3) == 0);
    REQUIRE(pages->pin(2, 5) == 0);
    CHECK(pages->npinned() == 6);
    CHECK(f.services.accounting.user_pages(1000) == 6);
    CHECK(pages->pin_count(2) == 2);
    CHECK(pages->pin_count(6) == 0);
    auto pa0 = pages->phys_addr(0);
    auto pa5 = pages->phys_addr(5);
    REQUIRE(pa0);
    REQUIRE(pa5);
    CHECK(*pa5 == *pa0 + 5 * kPage);
    CHECK_FALSE(pages->phys_addr(6));

    pages->unpin(0, 3);
    CHECK(pages->npinned() == 4);
    CHECK(f.services.accounting.user_pages(1000) == 4);
    CHECK_FALSE(pages->phys_addr(0));
    pages->unpin(2, 5);
    CHECK(pages->npinned() == 0);
    CHECK(f.services.accounting.user_pages(1000) == 0);
    CHECK(f.services.phys.reserved_pages() == 0);
}

TEST_CASE("pinning fails with EFAULT on memory the client does not have", "[core][pages]")
{
    Fixture f;
    auto beyond = f.make(kVa + 62 * kPage, 4 * kPage);
    CHECK(beyond->pin(0, 3) == -EFAULT);
    CHECK(beyond->npinned() == 0);
    CHECK(beyond->pin(0, 1) == 0);

    f.caller->add_region(0x20000000, 4 * kPage, false);
    auto readonly_for_write = f.make(0x20000000, 4 * kPage, true);
    CHECK(readonly_for_write->pin(0, 3) == -EFAULT);
    auto readonly = f.make(0x20000000, 4 * kPage, false);
    CHECK(readonly->pin(0, 3) == 0);
    CHECK(f.services.accounting.user_pages(1000) == 6);
    beyond->unpin(0, 1);
    readonly->unpin(0, 3);
}

TEST_CASE("RLIMIT_MEMLOCK is enforced per user and per process", "[core][pages]")
{
    Fixture f;
    f.caller->set_memlock_limit(4 * kPage);
    SECTION("per user, across pages objects")
    {
        auto a = f.make(kVa, 3 * kPage);
        auto b = f.make(kVa + 8 * kPage, 3 * kPage);
        REQUIRE(a->pin(0, 2) == 0);
        CHECK(b->pin(0, 1) == -ENOMEM);
        CHECK(b->npinned() == 0);
        CHECK(b->pin(0, 0) == 0);
        CHECK(f.services.accounting.user_pages(1000) == 4);
        a->unpin(0, 2);
        b->unpin(0, 0);
    }
    SECTION("per process")
    {
        auto a = f.make(kVa, 8 * kPage, true, core::AccountMode::mm);
        CHECK(a->pin(0, 4) == -ENOMEM);
        REQUIRE(a->pin(0, 3) == 0);
        CHECK(f.services.accounting.process_pages(f.caller->process_key()) == 4);
        CHECK(f.services.accounting.user_pages(1000) == 0);
        a->unpin(0, 3);
        CHECK(f.services.accounting.process_pages(f.caller->process_key()) == 0);
    }
    SECTION("CAP_IPC_LOCK is not charged")
    {
        f.caller->set_capable(memory::Capability::ipc_lock, true);
        auto a = f.make(kVa, 8 * kPage);
        CHECK(a->account_mode() == core::AccountMode::none);
        REQUIRE(a->pin(0, 7) == 0);
        CHECK(f.services.accounting.user_pages(1000) == 0);
        a->unpin(0, 7);
    }
}

TEST_CASE("emulated physical addresses resolve to the client's bytes", "[core][pages]")
{
    Fixture f;
    const char text[] = "dma through a pinned page";
    REQUIRE(f.caller->memory().write(kVa + 2 * kPage + 100, std::as_bytes(std::span(text))) == 0);
    auto pages = f.make(kVa, 4 * kPage);
    auto other = f.make(kVa, 4 * kPage);
    REQUIRE(pages->pin(0, 3) == 0);
    REQUIRE(other->pin(0, 0) == 0);
    CHECK(*other->phys_addr(0) != *pages->phys_addr(0));

    auto resolved = f.services.phys.resolve(*pages->phys_addr(2) + 100);
    REQUIRE(resolved);
    CHECK(resolved->backing == pages.get());
    CHECK(resolved->remaining == 2 * kPage - 100);
    char got[sizeof(text)] = {};
    REQUIRE(resolved->backing->read(resolved->offset, std::as_writable_bytes(std::span(got))) == 0);
    CHECK(std::string(got) == text);
    pages->unpin(0, 3);
    other->unpin(0, 0);
    CHECK_FALSE(f.services.phys.resolve(0x100000000ULL));
}

TEST_CASE("a huge mapping with one pinned page takes one chunk of physical space", "[core][pages]")
{
    Fixture f;
    auto huge = f.make(kVa, 1ULL << 45); // 32 TiB, nearly all of it never backed
    REQUIRE(huge->pin(0, 0) == 0);
    CHECK(f.services.phys.reserved_pages() == 512);
    CHECK(f.services.accounting.user_pages(1000) == 1);
    // A second 32 TiB mapping of another client still gets addresses.
    auto other = f.make(kVa, 1ULL << 45);
    REQUIRE(other->pin(1, 1) == 0);
    CHECK(*other->phys_addr(1) % (512 * kPage) == kPage);
    huge->unpin(0, 0);
    other->unpin(1, 1);
    CHECK(f.services.phys.reserved_pages() == 0);
}

TEST_CASE("pinned pages of a shared mapping outlive the process that mapped them", "[core][pages]")
{
    // As the kernel's long-term pins do (the selftests' fork_gone): a forked
    // child maps, the device keeps the pages after the child exits, and
    // sees the parent's later writes to the same shared memory.
    Fixture f;
    auto* shared = static_cast<char*>(
        mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    auto* priv = static_cast<char*>(
        mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    REQUIRE(shared != MAP_FAILED);
    REQUIRE(priv != MAP_FAILED);
    // The daemon reaches the file through /proc/<pid>/map_files, which
    // needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in the initial user
    // namespace; without them the pages die with the process, and this
    // test has nothing to show.
    char probe[64];
    std::snprintf(probe, sizeof(probe), "/proc/self/map_files/%lx-%lx",
                  reinterpret_cast<unsigned long>(shared), reinterpret_cast<unsigned long>(shared) + 4 * kPage);
    if (const int fd = ::open(probe, O_RDONLY | O_CLOEXEC); fd >= 0) {
        ::close(fd);
    } else {
        WARN("skipped: cannot open " << probe << ": " << std::strerror(errno));
        munmap(shared, 4 * kPage);
        munmap(priv, kPage);
        return;
    }
    std::strcpy(shared + kPage, "before the fork");
    std::strcpy(priv, "private page");
    int go[2];
    REQUIRE(pipe(go) == 0);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        char c;
        (void)!::read(go[0], &c, 1);
        _exit(0);
    }
    auto caller = std::shared_ptr<memory::ProcessCaller>(memory::ProcessCaller::open(child, getuid()));
    REQUIRE(caller);
    std::shared_ptr<core::Pages> pages, private_pages;
    REQUIRE(core::Pages::create(caller, reinterpret_cast<std::uint64_t>(shared), 4 * kPage, true,
                                core::AccountMode::user, f.pin, &pages) == 0);
    REQUIRE(core::Pages::create(caller, reinterpret_cast<std::uint64_t>(priv), kPage, true,
                                core::AccountMode::user, f.pin, &private_pages) == 0);
    REQUIRE(pages->pin(0, 2) == 0);
    REQUIRE(private_pages->pin(0, 0) == 0);
    char byte = 0;
    REQUIRE(::write(go[1], &byte, 1) == 1);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    close(go[0]);
    close(go[1]);

    char got[32] = {};
    auto out = std::as_writable_bytes(std::span(got));
    REQUIRE(pages->read(kPage, out) == 0);
    CHECK(std::string(got) == "before the fork");
    std::strcpy(shared + 100, "after the exit");
    REQUIRE(pages->read(100, out) == 0);
    CHECK(std::string(got) == "after the exit");
    const char device[] = "from a device";
    REQUIRE(pages->write(2 * kPage, std::as_bytes(std::span(device))) == 0);
    CHECK(std::string(shared + 2 * kPage) == device);
    // A copy into the page nobody pinned needs the process, which is gone;
    // so does any copy of private memory.
    CHECK(pages->read(3 * kPage - 8, out) != 0);
    CHECK(private_pages->read(0, out) != 0);
    // Unpinned, the pages are reached through the process again: nothing.
    pages->unpin(1, 1);
    CHECK(pages->read(kPage, out) != 0);
    CHECK(pages->read(0, out) == 0);
    pages->unpin(0, 0);
    pages->unpin(2, 2);
    CHECK(pages->read(2 * kPage, out) != 0);
    private_pages->unpin(0, 0);
    munmap(shared, 4 * kPage);
    munmap(priv, kPage);
}

TEST_CASE("pages of a shared mapping of a file on disk are reached through the process only",
          "[core][pages]")
{
    // Only shmem and hugetlbfs files are held (a file elsewhere might be on a
    // FUSE mount the client serves, or a device node): these pages go with
    // the process, as before.
    Fixture f;
    char path[] = "/var/tmp/ioasid-pages-test.XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::unlink(path);
    struct statfs fs {};
    REQUIRE(::fstatfs(fd, &fs) == 0);
    if (fs.f_type == TMPFS_MAGIC) {
        ::close(fd);
        WARN("skipped: /var/tmp is a tmpfs here");
        return;
    }
    REQUIRE(::ftruncate(fd, kPage) == 0);
    auto* shared = static_cast<char*>(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    REQUIRE(shared != MAP_FAILED);
    ::close(fd);
    std::strcpy(shared, "on disk");
    int go[2];
    REQUIRE(pipe(go) == 0);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        char c;
        (void)!::read(go[0], &c, 1);
        _exit(0);
    }
    auto caller = std::shared_ptr<memory::ProcessCaller>(memory::ProcessCaller::open(child, getuid()));
    REQUIRE(caller);
    std::shared_ptr<core::Pages> pages;
    REQUIRE(core::Pages::create(caller, reinterpret_cast<std::uint64_t>(shared), kPage, true,
                                core::AccountMode::user, f.pin, &pages) == 0);
    REQUIRE(pages->pin(0, 0) == 0);
    char got[8] = {};
    REQUIRE(pages->read(0, std::as_writable_bytes(std::span(got))) == 0);
    CHECK(std::string(got) == "on disk");
    char byte = 0;
    REQUIRE(::write(go[1], &byte, 1) == 1);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    close(go[0]);
    close(go[1]);
    CHECK(pages->read(0, std::as_writable_bytes(std::span(got))) != 0);
    pages->unpin(0, 0);
    munmap(shared, kPage);
}
