// RequestCaller: the caller of one socket request, whose struct bytes came
// inline with the message and are laid over the sender's address space.
// Reads inside those bytes are served from them, the rest from the process;
// writes reach the process when there is one (so read-only memory fails as
// copy_to_user() would) and are otherwise kept for the client to copy back.
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "memory/buffer_caller.h"
#include "memory/request_caller.h"

using namespace ioasid::memory;

namespace {

using Bytes = std::vector<std::byte>;

// The "process": one writable region and one read-only region.
constexpr std::uint64_t kRegion = 0x10000;
constexpr std::uint64_t kRegionLen = 0x1000;
constexpr std::uint64_t kReadOnly = 0x20000;
constexpr std::uint64_t kReadOnlyLen = 0x1000;
// The inline bytes cover [kBase, kBase + kInlineLen) inside the region.
constexpr std::uint64_t kBase = kRegion + 0x100;
constexpr std::size_t kInlineLen = 32;

Bytes pattern(std::size_t n, unsigned first)
{
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i)
        b[i] = std::byte(static_cast<unsigned char>(first + i));
    return b;
}

// A process whose whole writable region holds 0x80, 0x81, ... from kRegion,
// and whose inline bytes (as the message carried them) hold 0x10, 0x11, ...
// so that every byte read says where it came from.
struct Env {
    std::shared_ptr<BufferCaller> process = std::make_shared<BufferCaller>();
    Bytes inline_bytes = pattern(kInlineLen, 0x10);

    Env()
    {
        process->add_region(kRegion, kRegionLen);
        process->add_region(kReadOnly, kReadOnlyLen, false);
        Bytes fill = pattern(kRegionLen, 0x80);
        REQUIRE(process->memory().write(kRegion, fill) == 0);
    }

    RequestCaller with_process(uid_t uid = 1234, pid_t tgid = 5678)
    {
        return RequestCaller(process, uid, tgid, kBase, inline_bytes);
    }
    RequestCaller without_process(uid_t uid = 1234, pid_t tgid = 5678)
    {
        return RequestCaller(nullptr, uid, tgid, kBase, inline_bytes);
    }

    // What the process holds at `addr`, read around the RequestCaller.
    Bytes process_at(std::uint64_t addr, std::size_t n)
    {
        Bytes b(n);
        REQUIRE(process->memory().read(addr, b) == 0);
        return b;
    }
};

// The byte the process's region holds at `addr` before any write.
std::byte process_byte(std::uint64_t addr)
{
    return std::byte(static_cast<unsigned char>(0x80 + (addr - kRegion)));
}

std::byte inline_byte(std::uint64_t addr)
{
    return std::byte(static_cast<unsigned char>(0x10 + (addr - kBase)));
}

Bytes read(RequestCaller& rc, std::uint64_t addr, std::size_t n, int* err)
{
    Bytes b(n, std::byte{0xee});
    *err = rc.memory().read(addr, b);
    return b;
}

Bytes bytes_of(std::uint32_t v)
{
    Bytes b(sizeof(v));
    std::memcpy(b.data(), &v, sizeof(v));
    return b;
}

} // namespace

TEST_CASE("RequestCaller: a read inside the inline bytes is served from them", "[request_caller]")
{
    Env env;
    auto rc = env.with_process();
    int err = -1;
    SECTION("all of them")
    {
        Bytes got = read(rc, kBase, kInlineLen, &err);
        CHECK(err == 0);
        CHECK(got == env.inline_bytes);
    }
    SECTION("a piece in the middle")
    {
        Bytes got = read(rc, kBase + 8, 4, &err);
        CHECK(err == 0);
        CHECK(got == Bytes(env.inline_bytes.begin() + 8, env.inline_bytes.begin() + 12));
    }
    SECTION("without a process too")
    {
        auto lone = env.without_process();
        Bytes got = read(lone, kBase + kInlineLen - 4, 4, &err);
        CHECK(err == 0);
        CHECK(got == Bytes(env.inline_bytes.end() - 4, env.inline_bytes.end()));
    }
}

TEST_CASE("RequestCaller: a read outside the inline bytes goes to the process", "[request_caller]")
{
    Env env;
    auto rc = env.with_process();
    int err = -1;
    SECTION("before them, ending exactly at the base")
    {
        Bytes got = read(rc, kBase - 16, 16, &err);
        CHECK(err == 0);
        CHECK(got == env.process_at(kBase - 16, 16));
        CHECK(got[15] == process_byte(kBase - 1));
    }
    SECTION("after them, starting exactly at their end")
    {
        Bytes got = read(rc, kBase + kInlineLen, 16, &err);
        CHECK(err == 0);
        CHECK(got == env.process_at(kBase + kInlineLen, 16));
    }
    SECTION("in another region of the process")
    {
        Bytes got = read(rc, kReadOnly, 8, &err);
        CHECK(err == 0);
        CHECK(got == Bytes(8, std::byte{0}));
    }
    SECTION("unmapped in the process: EFAULT")
    {
        read(rc, 0x900000, 8, &err);
        CHECK(err == -EFAULT);
        // Running off the end of the process's region.
        read(rc, kRegion + kRegionLen - 4, 8, &err);
        CHECK(err == -EFAULT);
    }
    SECTION("without a process: EFAULT")
    {
        auto lone = env.without_process();
        read(lone, kBase - 4, 4, &err);
        CHECK(err == -EFAULT);
        read(lone, kBase + kInlineLen, 4, &err);
        CHECK(err == -EFAULT);
        read(lone, kRegion, 4, &err);
        CHECK(err == -EFAULT);
    }
}

TEST_CASE("RequestCaller: a read across an edge of the inline bytes takes each part from "
          "its source",
          "[request_caller]")
{
    Env env;
    auto rc = env.with_process();
    int err = -1;
    SECTION("the start edge")
    {
        Bytes got = read(rc, kBase - 4, 8, &err);
        REQUIRE(err == 0);
        for (std::uint64_t a = kBase - 4; a < kBase; ++a)
            CHECK(got[a - (kBase - 4)] == process_byte(a));
        for (std::uint64_t a = kBase; a < kBase + 4; ++a)
            CHECK(got[a - (kBase - 4)] == inline_byte(a));
    }
    SECTION("the end edge")
    {
        const std::uint64_t from = kBase + kInlineLen - 4;
        Bytes got = read(rc, from, 8, &err);
        REQUIRE(err == 0);
        for (std::uint64_t a = from; a < kBase + kInlineLen; ++a)
            CHECK(got[a - from] == inline_byte(a));
        for (std::uint64_t a = kBase + kInlineLen; a < from + 8; ++a)
            CHECK(got[a - from] == process_byte(a));
    }
    SECTION("both edges at once")
    {
        const std::uint64_t from = kBase - 8;
        const std::size_t n = kInlineLen + 16;
        Bytes got = read(rc, from, n, &err);
        REQUIRE(err == 0);
        for (std::uint64_t a = from; a < from + n; ++a) {
            const bool inside = a >= kBase && a < kBase + kInlineLen;
            CHECK(got[a - from] == (inside ? inline_byte(a) : process_byte(a)));
        }
    }
    SECTION("the outside part unmapped in the process: EFAULT")
    {
        // Inline bytes that begin exactly where the process's region does.
        Bytes inl = pattern(8, 0x40);
        RequestCaller at_edge(env.process, 1, 1, kRegion, inl);
        read(at_edge, kRegion - 4, 8, &err);
        CHECK(err == -EFAULT);
        read(at_edge, kRegion + 4, 8, &err);
        CHECK(err == 0);
    }
    SECTION("without a process: EFAULT on either edge")
    {
        auto lone = env.without_process();
        read(lone, kBase - 1, 2, &err);
        CHECK(err == -EFAULT);
        read(lone, kBase + kInlineLen - 1, 2, &err);
        CHECK(err == -EFAULT);
        read(lone, kBase - 1, kInlineLen + 2, &err);
        CHECK(err == -EFAULT);
    }
}

TEST_CASE("RequestCaller: with a process, writes reach it and keep the inline copy in step",
          "[request_caller]")
{
    Env env;
    auto rc = env.with_process();
    SECTION("inside the inline bytes")
    {
        Bytes v = bytes_of(0xdeadbeef);
        REQUIRE(rc.memory().write(kBase + 4, v) == 0);
        CHECK(env.process_at(kBase + 4, 4) == v);
        CHECK(Bytes(env.inline_bytes.begin() + 4, env.inline_bytes.begin() + 8) == v);
        int err = -1;
        CHECK(read(rc, kBase + 4, 4, &err) == v);
        CHECK(err == 0);
        CHECK(rc.unsent().empty());
    }
    SECTION("across the end edge")
    {
        Bytes v = pattern(8, 0xc0);
        const std::uint64_t at = kBase + kInlineLen - 4;
        REQUIRE(rc.memory().write(at, v) == 0);
        CHECK(env.process_at(at, 8) == v);
        CHECK(Bytes(env.inline_bytes.end() - 4, env.inline_bytes.end()) ==
              Bytes(v.begin(), v.begin() + 4));
        int err = -1;
        CHECK(read(rc, at, 8, &err) == v);
        CHECK(err == 0);
        CHECK(rc.unsent().empty());
    }
    SECTION("outside: only the process changes")
    {
        const Bytes before = env.inline_bytes;
        Bytes v = pattern(16, 0xa0);
        REQUIRE(rc.memory().write(kRegion, v) == 0);
        CHECK(env.process_at(kRegion, 16) == v);
        CHECK(env.inline_bytes == before);
        CHECK(rc.unsent().empty());
    }
    SECTION("into read-only memory: EFAULT, and the inline copy is left alone")
    {
        // The inline bytes lie over the process's read-only region.
        Bytes inl = pattern(16, 0x30);
        const Bytes before = inl;
        RequestCaller ro(env.process, 1, 1, kReadOnly, inl);
        Bytes v = bytes_of(7);
        CHECK(ro.memory().write(kReadOnly, v) == -EFAULT);
        CHECK(inl == before);
        CHECK(env.process_at(kReadOnly, 4) == Bytes(4, std::byte{0}));
        CHECK(ro.unsent().empty());
        // ... and a later read still sees what the message carried.
        int err = -1;
        CHECK(read(ro, kReadOnly, 16, &err) == before);
        CHECK(err == 0);
    }
    SECTION("the process's region ends inside the write: EFAULT, nothing changes")
    {
        Bytes inl = pattern(8, 0x30);
        const Bytes before = inl;
        const std::uint64_t base = kRegion + kRegionLen - 8;
        RequestCaller edge(env.process, 1, 1, base, inl);
        Bytes v = pattern(16, 0x50);
        CHECK(edge.memory().write(base, v) == -EFAULT);
        CHECK(inl == before);
        CHECK(env.process_at(base, 8) == pattern(8, 0x80 + (kRegionLen - 8)));
    }
}

TEST_CASE("RequestCaller: without a process, writes to the inline bytes are kept as unsent",
          "[request_caller]")
{
    Env env;
    auto rc = env.without_process();
    CHECK(rc.unsent().empty());
    CHECK(rc.unsent_offset() == 0);

    SECTION("one write")
    {
        Bytes v = bytes_of(0x11223344);
        REQUIRE(rc.memory().write(kBase + 12, v) == 0);
        CHECK(rc.unsent_offset() == 12);
        CHECK(Bytes(rc.unsent().begin(), rc.unsent().end()) == v);
        int err = -1;
        CHECK(read(rc, kBase + 12, 4, &err) == v);
        CHECK(err == 0);
        // The process was never touched.
        CHECK(env.process_at(kBase + 12, 4) == pattern(4, 0x80 + 0x100 + 12));
    }
    SECTION("several writes: the span from the lowest to the highest byte written")
    {
        REQUIRE(rc.memory().write(kBase + 16, bytes_of(0xaaaaaaaa)) == 0);
        REQUIRE(rc.memory().write(kBase + 4, bytes_of(0xbbbbbbbb)) == 0);
        REQUIRE(rc.memory().write(kBase + 24, bytes_of(0xcccccccc)) == 0);
        REQUIRE(rc.memory().write(kBase + 8, bytes_of(0xdddddddd)) == 0);
        CHECK(rc.unsent_offset() == 4);
        REQUIRE(rc.unsent().size() == 24);
        CHECK(rc.unsent().data() == env.inline_bytes.data() + 4);
        // Untouched bytes inside the span keep the message's values.
        CHECK(rc.unsent()[12 - 4] == inline_byte(kBase + 12));
        CHECK(rc.unsent()[16 - 4] == std::byte{0xaa});
        CHECK(rc.unsent()[27 - 4] == std::byte{0xcc});
    }
    SECTION("a write at offset 0 followed by a later one keeps offset 0")
    {
        REQUIRE(rc.memory().write(kBase, bytes_of(1)) == 0);
        REQUIRE(rc.memory().write(kBase + kInlineLen - 4, bytes_of(2)) == 0);
        CHECK(rc.unsent_offset() == 0);
        CHECK(rc.unsent().size() == kInlineLen);
    }
    SECTION("a later write at offset 0 lowers the start")
    {
        REQUIRE(rc.memory().write(kBase + 20, bytes_of(1)) == 0);
        REQUIRE(rc.memory().write(kBase, bytes_of(2)) == 0);
        CHECK(rc.unsent_offset() == 0);
        CHECK(rc.unsent().size() == 24);
    }
    SECTION("writes outside the inline bytes: EFAULT and nothing kept")
    {
        const Bytes before = env.inline_bytes;
        CHECK(rc.memory().write(kBase - 4, bytes_of(1)) == -EFAULT);
        CHECK(rc.memory().write(kBase + kInlineLen, bytes_of(1)) == -EFAULT);
        // Partly inside is outside too: the copy never lands in part.
        CHECK(rc.memory().write(kBase - 2, bytes_of(1)) == -EFAULT);
        CHECK(rc.memory().write(kBase + kInlineLen - 2, bytes_of(1)) == -EFAULT);
        CHECK(env.inline_bytes == before);
        CHECK(rc.unsent().empty());
        CHECK(env.process_at(kBase - 4, 4) == pattern(4, 0x80 + 0x100 - 4));
    }
}

TEST_CASE("RequestCaller: addr + len that wraps is EFAULT", "[request_caller]")
{
    Env env;
    for (bool with : {true, false}) {
        auto rc = with ? env.with_process() : env.without_process();
        Bytes b(16);
        CHECK(rc.memory().read(UINT64_MAX - 7, b) == -EFAULT);
        CHECK(rc.memory().write(UINT64_MAX - 7, b) == -EFAULT);
        CHECK(rc.unsent().empty());
    }
    // Inline bytes at the very top of the address space: a read through
    // them that would wrap is still refused.
    Bytes top = pattern(16, 0x60);
    RequestCaller high(nullptr, 1, 1, UINT64_MAX - 15, top);
    Bytes b(32);
    CHECK(high.memory().read(UINT64_MAX - 15, b) == -EFAULT);
    CHECK(high.memory().write(UINT64_MAX - 15, b) == -EFAULT);
}

TEST_CASE("RequestCaller: identity and lasting()", "[request_caller]")
{
    Env env;
    auto rc = env.with_process(4242, 77);
    CHECK(rc.uid() == 4242);
    CHECK(rc.tgid() == 77);
    CHECK(rc.lasting() == env.process);
    CHECK(rc.process_key() == env.process->process_key());
    CHECK(rc.memlock_limit() == env.process->memlock_limit());
    CHECK(rc.capable(Capability::sys_resource) == env.process->capable(Capability::sys_resource));
    env.process->set_capable(Capability::ipc_lock, true);
    CHECK(rc.capable(Capability::ipc_lock));
    CHECK(rc.memory().check_mapped(kRegion, kRegionLen, true) == 0);
    CHECK(rc.memory().check_mapped(kReadOnly, kReadOnlyLen, true) == -EFAULT);

    auto lone = env.without_process(99, 100);
    CHECK(lone.uid() == 99);
    CHECK(lone.tgid() == 100);
    CHECK(lone.lasting() == nullptr);
    CHECK(lone.process_key() == 0);
    CHECK(lone.memlock_limit() == 0);
    CHECK_FALSE(lone.capable(Capability::sys_resource));
    // Pinning needs the process: even the inline bytes cannot be pinned.
    CHECK(lone.memory().check_mapped(kBase, kInlineLen, false) == -EFAULT);
}
