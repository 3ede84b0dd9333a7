// The real CallerMemory: another process reached by pid, guarded by a pidfd.
#include <catch2/catch.hpp>

#include <linux/capability.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <vector>

#include "memory/mapped_file.h"
#include "memory/phys_space.h"
#include "memory/process_caller.h"

using namespace ioasid::memory;

namespace {

// A child that maps a page holding a marker, reports its address, and waits.
struct Child {
    pid_t pid = -1;
    std::uint64_t addr = 0;
    std::uint64_t readonly_addr = 0;
    int to_child[2] = {-1, -1};

    Child()
    {
        int from_child[2];
        REQUIRE(pipe(from_child) == 0);
        REQUIRE(pipe(to_child) == 0);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            // A readable page followed by an inaccessible one.
            auto* page = static_cast<char*>(mmap(nullptr, 8192, PROT_READ | PROT_WRITE,
                                                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
            mprotect(page + 4096, 4096, PROT_NONE);
            std::strcpy(page, "child marker");
            void* ro = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            std::uint64_t addrs[2] = {reinterpret_cast<std::uint64_t>(page),
                                      reinterpret_cast<std::uint64_t>(ro)};
            (void)!::write(from_child[1], addrs, sizeof(addrs));
            char c;
            (void)!::read(to_child[0], &c, 1);
            _exit(std::strcmp(page, "written by daemon") == 0 ? 0 : 1);
        }
        std::uint64_t addrs[2];
        REQUIRE(::read(from_child[0], addrs, sizeof(addrs)) == sizeof(addrs));
        addr = addrs[0];
        readonly_addr = addrs[1];
        close(from_child[0]);
        close(from_child[1]);
    }
    int finish()
    {
        char c = 0;
        (void)!::write(to_child[1], &c, 1);
        int status = 0;
        waitpid(pid, &status, 0);
        close(to_child[0]);
        close(to_child[1]);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
};

} // namespace

TEST_CASE("a process is read and written through process_vm_readv/writev", "[memory]")
{
    Child child;
    auto caller = ProcessCaller::open(child.pid, getuid());
    REQUIRE(caller);
    CHECK(caller->tgid() == child.pid);
    char got[16] = {};
    REQUIRE(caller->memory().read(child.addr, std::as_writable_bytes(std::span(got).first(13))) == 0);
    CHECK(std::string(got) == "child marker");
    const char text[] = "written by daemon";
    REQUIRE(caller->memory().write(child.addr, std::as_bytes(std::span(text))) == 0);

    CHECK(caller->memory().read(0x10, std::as_writable_bytes(std::span(got))) == -EFAULT);
    CHECK(caller->memory().read(child.addr + 4090, std::as_writable_bytes(std::span(got))) == -EFAULT);
    CHECK(caller->memory().check_mapped(child.addr, 4096, true) == 0);
    CHECK(caller->memory().check_mapped(child.addr, 8192 * 1024, false) == -EFAULT);
    CHECK(caller->memory().check_mapped(child.readonly_addr, 4096, false) == 0);
    CHECK(caller->memory().check_mapped(child.readonly_addr, 4096, true) == -EFAULT);
    CHECK(caller->memory().check_mapped(0x1000, 4096, false) == -EFAULT);
    CHECK(caller->alive());

    CHECK(child.finish() == 0);
    // Once the process is gone its pid means nothing, even if reused.
    CHECK_FALSE(caller->alive());
    CHECK(caller->memory().read(child.addr, std::as_writable_bytes(std::span(got))) == -ESRCH);
    CHECK(caller->memory().write(child.addr, std::as_bytes(std::span(text))) == -ESRCH);
}

TEST_CASE("device copies reach a process as pinned pages would", "[memory]")
{
    Child child;
    auto caller = ProcessCaller::open(child.pid, getuid());
    REQUIRE(caller);
    ioasid::memory::CallerMemory& mem = caller->memory();
    char got[13] = {};
    REQUIRE(mem.device_read(child.addr, std::as_writable_bytes(std::span(got))) == 0);
    CHECK(std::string(got, sizeof(got) - 1) == "child marker");
    // A device writes a page the process has since made read-only, as it
    // would write a page pinned for writing before.
    const char device_bytes[] = "from a device";
    CHECK(mem.device_write(child.readonly_addr, std::as_bytes(std::span(device_bytes))) == 0);
    char back[sizeof(device_bytes)] = {};
    REQUIRE(mem.read(child.readonly_addr, std::as_writable_bytes(std::span(back))) == 0);
    CHECK(std::string(back) == "from a device");
    // Unmapped memory still faults, small or large.
    CHECK(mem.device_read(0x10, std::as_writable_bytes(std::span(got))) == -EFAULT);
    std::vector<std::byte> large(64 * 1024);
    CHECK(mem.device_read(child.addr, large) == -EFAULT);
    const char text[] = "written by daemon";
    REQUIRE(mem.device_write(child.addr, std::as_bytes(std::span(text))) == 0);
    CHECK(child.finish() == 0);
    // Its address space gone, nothing is reached.
    CHECK(mem.device_read(child.addr, std::as_writable_bytes(std::span(got))) == -ESRCH);
    CHECK(mem.device_write(child.addr, std::as_bytes(std::span(text))) == -ESRCH);
}

TEST_CASE("opening a process that does not exist fails", "[memory]")
{
    Child child;
    pid_t pid = child.pid;
    child.finish();
    CHECK(ProcessCaller::open(pid, getuid()) == nullptr);
}

TEST_CASE("a process's credentials come from procfs", "[memory]")
{
    auto self = ProcessCaller::open(getpid(), getuid());
    REQUIRE(self);
    CHECK(self->uid() == getuid());
    CHECK(self->memlock_limit() > 0);
    auto again = ProcessCaller::open(getpid(), getuid());
    CHECK(again->process_key() == self->process_key());
}

namespace {
struct NullBacking final : PhysBacking {
    int read(std::uint64_t, std::span<std::byte>) override { return 0; }
    int write(std::uint64_t, std::span<const std::byte>) override { return 0; }
};
} // namespace

TEST_CASE("physical space hands out 2 MiB aligned ranges and reuses them", "[memory]")
{
    constexpr std::uint64_t kChunk = PhysSpace::kAlignPages * 4096;
    PhysSpace space;
    NullBacking backing;
    auto a = space.reserve(4, backing);
    auto b = space.reserve(4, backing, 0x5000);
    auto c = space.reserve(600, backing);
    REQUIRE((a && b && c));
    CHECK(*a == PhysSpace::kFirst);
    CHECK(*b == *a + kChunk);
    CHECK(*c == *b + kChunk);
    CHECK(space.reserved_pages() == 608);
    // Only the pages asked for resolve, offset into their backing.
    auto rb = space.resolve(*b + 4096 + 5);
    REQUIRE(rb);
    CHECK(rb->offset == 0x5000 + 4096 + 5);
    CHECK(rb->remaining == 3 * 4096 - 5);
    CHECK_FALSE(space.resolve(*b + 4 * 4096));
    space.release(*b);
    CHECK_FALSE(space.resolve(*b));
    auto d = space.reserve(2, backing);
    CHECK(*d == *b);
    space.release(*d);
    space.release(*a);
    auto e = space.reserve(1024, backing);
    CHECK(*e == *a); // a and b merged back into one hole
    CHECK(*e % kChunk == 0);
    CHECK_FALSE(space.reserve((PhysSpace::kEnd - PhysSpace::kFirst) / 4096, backing));
    CHECK_FALSE(space.reserve(UINT64_MAX, backing));
    space.release(*c);
    space.release(*e);
    CHECK(space.reserved_pages() == 0);
}

TEST_CASE("after execve the old address space is never touched", "[memory]")
{
    int go[2];
    REQUIRE(pipe(go) == 0);
    static char marker[] = "before exec";
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char c;
        (void)!::read(go[0], &c, 1);
        execl("/bin/sleep", "sleep", "10", static_cast<char*>(nullptr));
        _exit(127);
    }
    auto caller = ProcessCaller::open(pid, getuid());
    REQUIRE(caller);
    char got[sizeof(marker)] = {};
    const auto addr = reinterpret_cast<std::uint64_t>(marker);
    REQUIRE(caller->memory().read(addr, std::as_writable_bytes(std::span(got))) == 0);
    CHECK(std::string(got) == "before exec");

    (void)!::write(go[1], "x", 1);
    // Wait until the child runs the new image.
    for (int i = 0; i < 500 && caller->same_address_space(); ++i)
        usleep(10000);
    CHECK_FALSE(caller->same_address_space());
    CHECK(caller->alive()); // same pid, same process, other memory
    CHECK(caller->memory().read(addr, std::as_writable_bytes(std::span(got))) == -ESRCH);
    CHECK(caller->memory().write(addr, std::as_bytes(std::span(marker))) == -ESRCH);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    close(go[0]);
    close(go[1]);
}

TEST_CASE("capabilities held only inside a user namespace do not count", "[memory]")
{
    int ready[2], done[2];
    REQUIRE(pipe(ready) == 0);
    REQUIRE(pipe(done) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char ok = unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
        (void)!::write(ready[1], &ok, 1);
        char c;
        (void)!::read(done[0], &c, 1);
        _exit(0);
    }
    char ok = 0;
    REQUIRE(::read(ready[0], &ok, 1) == 1);
    if (ok == 'y') {
        auto caller = ProcessCaller::open(pid, getuid());
        REQUIRE(caller);
        CHECK_FALSE(caller->capable(Capability::ipc_lock));
        CHECK_FALSE(caller->capable(Capability::sys_resource));
    } else {
        WARN("unshare(CLONE_NEWUSER) is not permitted here; namespace case not exercised");
    }
    auto self = ProcessCaller::open(getpid(), getuid());
    REQUIRE(self);
    // Our own capabilities, asked of the kernel another way, must agree.
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    REQUIRE(syscall(SYS_capget, &header, data) == 0);
    CHECK(self->capable(Capability::sys_resource) == bool(data[0].effective & (1u << CAP_SYS_RESOURCE)));
    CHECK(self->capable(Capability::ipc_lock) == bool(data[0].effective & (1u << CAP_IPC_LOCK)));
    (void)!::write(done[1], "x", 1);
    waitpid(pid, nullptr, 0);
}

TEST_CASE("a read-only file mapping refuses writes rather than faulting", "[memory]")
{
    UniqueFd file(::memfd_create("ioasid-test", MFD_CLOEXEC));
    REQUIRE(file);
    REQUIRE(::ftruncate(file.get(), 4096) == 0);
    MappedFile ro;
    REQUIRE(MappedFile::map(file.get(), 0, 4096, false, &ro) == 0);
    const char text[] = "x";
    CHECK(ro.write(0, std::as_bytes(std::span(text))) == -EFAULT);
    char got[2] = {};
    CHECK(ro.read(0, std::as_writable_bytes(std::span(got))) == 0);
    MappedFile rw;
    REQUIRE(MappedFile::map(file.get(), 0, 4096, true, &rw) == 0);
    CHECK(rw.write(0, std::as_bytes(std::span(text))) == 0);
    REQUIRE(ro.read(0, std::as_writable_bytes(std::span(got))) == 0);
    CHECK(got[0] == 'x');
}
