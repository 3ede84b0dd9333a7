// CallerCache: the process callers one open file keeps between ioctls. An
// entry is reused only while its process keeps the address space it was
// opened on; a thread id maps to its process.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "memory/caller_cache.h"

using namespace ioasid::memory;

namespace {

pid_t this_thread_id()
{
    return static_cast<pid_t>(::syscall(SYS_gettid));
}

// Memory with a known value at a known address, in this process and (after
// fork) at the same address in a child.
char g_marker[32] = "caller cache marker";

std::string read_marker(ProcessCaller& caller, int* err)
{
    char got[sizeof(g_marker)] = {};
    *err = caller.memory().read(reinterpret_cast<std::uint64_t>(g_marker),
                                std::as_writable_bytes(std::span(got)));
    return std::string(got);
}

// A thread that stays alive until released, and reports its thread id.
struct Thread {
    std::mutex lock;
    std::condition_variable cv;
    pid_t tid = 0;
    bool release = false;
    std::thread thread;

    Thread()
        : thread([this] {
              std::unique_lock guard(lock);
              tid = this_thread_id();
              cv.notify_all();
              cv.wait(guard, [this] { return release; });
          })
    {
        std::unique_lock guard(lock);
        cv.wait(guard, [this] { return tid != 0; });
    }
    void finish()
    {
        if (!thread.joinable())
            return;
        {
            std::lock_guard guard(lock);
            release = true;
        }
        cv.notify_all();
        thread.join();
    }
    ~Thread() { finish(); }
};

// A child blocked reading a pipe until killed or released.
struct Child {
    pid_t pid = -1;
    int to_child[2] = {-1, -1};

    Child()
    {
        REQUIRE(::pipe(to_child) == 0);
        pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            std::strcpy(g_marker, "child marker");
            char c;
            (void)!::read(to_child[0], &c, 1);
            _exit(0);
        }
    }
    void kill_and_reap()
    {
        if (pid <= 0)
            return;
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        pid = -1;
    }
    ~Child()
    {
        kill_and_reap();
        ::close(to_child[0]);
        ::close(to_child[1]);
    }
};

} // namespace

TEST_CASE("CallerCache: this process is reached and reads its own memory", "[caller_cache]")
{
    CallerCache cache;
    auto caller = cache.get(::getpid(), ::getuid());
    REQUIRE(caller);
    CHECK(caller->tgid() == ::getpid());
    CHECK(caller->uid() == ::getuid());
    int err = -1;
    CHECK(read_marker(*caller, &err) == "caller cache marker");
    CHECK(err == 0);
    CHECK(caller->same_address_space());
}

TEST_CASE("CallerCache: a second get returns the cached caller", "[caller_cache]")
{
    CallerCache cache;
    auto first = cache.get(::getpid(), ::getuid());
    REQUIRE(first);
    auto second = cache.get(::getpid(), ::getuid());
    CHECK(second == first);
    SECTION("after another entry was used in between")
    {
        Thread t;
        auto other = cache.get(t.tid, ::getuid());
        REQUIRE(other);
        CHECK(other != first);
        CHECK(cache.get(::getpid(), ::getuid()) == first);
        CHECK(cache.get(t.tid, ::getuid()) == other);
    }
    SECTION("a uid the process does not hold gets nothing, and leaves the entry alone")
    {
        // The kernel-reported uid must be one of the process's (real,
        // effective, saved, filesystem): a recycled pid names someone else.
        CHECK(cache.get(::getpid(), ::getuid() + 1) == nullptr);
        CHECK(cache.get(::getpid(), ::getuid() + 1) == nullptr);
        CHECK(cache.get(::getpid(), ::getuid()) == first);
        CHECK(first->uid() == ::getuid());
    }
}

TEST_CASE("CallerCache: a thread id resolves to its process", "[caller_cache]")
{
    Thread t;
    REQUIRE(t.tid != ::getpid());
    CallerCache cache;
    auto caller = cache.get(t.tid, ::getuid());
    REQUIRE(caller);
    CHECK(caller->tgid() == ::getpid());
    int err = -1;
    CHECK(read_marker(*caller, &err) == "caller cache marker");
    CHECK(err == 0);
    CHECK(cache.get(t.tid, ::getuid()) == caller);

    SECTION("an entry for a thread that has exited is not used")
    {
        const pid_t tid = t.tid;
        t.finish();
        // The thread's id no longer names a thread of this process (unless
        // the kernel recycled it into one, which would make it valid again).
        auto again = cache.get(tid, ::getuid());
        if (again) {
            CHECK(again != caller);
            CHECK(again->tgid() == ::getpid());
        }
    }
}

TEST_CASE("CallerCache: pids that name no process give nullptr", "[caller_cache]")
{
    CallerCache cache;
    CHECK(cache.get(0, ::getuid()) == nullptr);
    CHECK(cache.get(-1, ::getuid()) == nullptr);
    // Above the largest pid the kernel hands out (PID_MAX_LIMIT is 4M).
    CHECK(cache.get(0x7ffffff0, ::getuid()) == nullptr);
}

TEST_CASE("CallerCache: an exited child's entry is not reused", "[caller_cache]")
{
    CallerCache cache;
    Child child;
    auto caller = cache.get(child.pid, ::getuid());
    REQUIRE(caller);
    CHECK(caller->tgid() == child.pid);
    // The child's own copy of the marker, at the same address as ours.
    int err = -1;
    // The child writes its marker right after fork; wait until it has.
    std::string seen;
    for (int i = 0; i < 1000 && seen != "child marker"; ++i) {
        seen = read_marker(*caller, &err);
        if (seen != "child marker")
            ::usleep(1000);
    }
    CHECK(seen == "child marker");
    CHECK(err == 0);
    CHECK(cache.get(child.pid, ::getuid()) == caller);

    const pid_t pid = child.pid;
    SECTION("killed but not yet reaped: the old entry is not reused")
    {
        ::kill(pid, SIGKILL);
        // Wait until it is a zombie, its address space gone.
        for (int i = 0; i < 2000 && caller->same_address_space(); ++i)
            ::usleep(1000);
        REQUIRE_FALSE(caller->same_address_space());
        auto zombie = cache.get(pid, ::getuid());
        if (zombie) {
            CHECK(zombie != caller);
            CHECK(read_marker(*zombie, &err).empty());
            CHECK(err != 0);
        }
    }
    child.kill_and_reap();
    CHECK_FALSE(caller->same_address_space());
    CHECK(read_marker(*caller, &err).empty());
    CHECK(err != 0);

    auto after = cache.get(pid, ::getuid());
    if (after) {
        // Only possible if the pid was recycled at once; then it is a new
        // process, opened afresh.
        CHECK(after != caller);
    } else {
        CHECK(after == nullptr);
    }
}

TEST_CASE("CallerCache: a child that called execve is opened afresh", "[caller_cache]")
{
    // The child waits on `go`, then execs a program that blocks reading
    // `hold`; `exec_done` has its write end close-on-exec, so EOF on it
    // says the exec happened.
    int go[2], hold[2], exec_done[2];
    REQUIRE(::pipe(go) == 0);
    REQUIRE(::pipe(hold) == 0);
    REQUIRE(::pipe2(exec_done, O_CLOEXEC) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char c;
        (void)!::read(go[0], &c, 1);
        ::dup2(hold[0], 0);
        ::close(hold[1]);
        ::close(go[1]);
        ::execl("/bin/cat", "cat", static_cast<char*>(nullptr));
        _exit(127);
    }
    ::close(exec_done[1]);
    ::close(hold[0]);

    CallerCache cache;
    auto before = cache.get(pid, ::getuid());
    REQUIRE(before);
    CHECK(before->same_address_space());

    char c = 1;
    REQUIRE(::write(go[1], &c, 1) == 1);
    REQUIRE(::read(exec_done[0], &c, 1) == 0); // EOF: exec'ed

    CHECK_FALSE(before->same_address_space());
    auto after = cache.get(pid, ::getuid());
    REQUIRE(after);
    CHECK(after != before);
    CHECK(after->tgid() == pid);
    CHECK(after->same_address_space());

    ::close(hold[1]); // cat sees EOF and exits
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    ::close(go[0]);
    ::close(go[1]);
    ::close(exec_done[0]);
}
