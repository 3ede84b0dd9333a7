// IOASID_EMU_STATUS (uapi/ioasid/emu.h): the daemon's own report, a JSON
// document written to buf_uptr. It follows iommufd's conventions: a leading
// size with copy_struct_from_user() rules, flags checked, and a buffer that
// is too small answered like IOMMU_IOAS_IOVA_RANGES (the length is written
// back, nothing else, EMSGSIZE).
#include <catch2/catch.hpp>

#include <ioasid/emu.h>
#include <ioasid/iommufd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/access.h"
#include "core/context.h"
#include "memory/request_caller.h"
#include "test_support.h"

namespace {

using namespace ioasid;
using nlohmann::json;
using test::Client;
using test::kArrayAddr;
using test::kArrayRegion;
using test::kBufferAddr;
using test::kStructAddr;

using Bytes = std::vector<std::byte>;

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kReport = kArrayAddr; // where the report goes
constexpr std::byte kFill{0xa5};              // what the buffer holds before

// The uid BufferCaller reports for its "process".
constexpr uid_t kUid = 1000;

struct Status {
    int rc = 0;
    ioasid_emu_status out{}; // the struct as the call left it
    Bytes buffer;            // buf_len + 16 bytes at kReport after the call
};

// Runs IOASID_EMU_STATUS from `caller` on `ctx`, with the report buffer at
// kReport pre-filled with kFill.
Status status_on(core::Context& ctx, const std::shared_ptr<memory::Caller>& caller,
                 std::uint32_t flags, std::uint32_t buf_len, std::uint64_t buf_uptr = kReport)
{
    auto& mem = caller->memory();
    Bytes fill(std::min<std::uint64_t>(buf_len + 16ULL, kArrayRegion), kFill);
    REQUIRE(mem.write(kReport, fill) == 0);
    ioasid_emu_status cmd{.size = sizeof(cmd), .flags = flags, .buf_len = buf_len, .out_len = 0,
                          .buf_uptr = buf_uptr};
    REQUIRE(mem.write(kStructAddr, std::as_bytes(std::span(&cmd, 1))) == 0);
    Status s;
    s.rc = dispatch::ioctl(ctx, IOASID_EMU_STATUS, caller, kStructAddr);
    REQUIRE(mem.read(kStructAddr, std::as_writable_bytes(std::span(&s.out, 1))) == 0);
    s.buffer.resize(fill.size());
    REQUIRE(mem.read(kReport, s.buffer) == 0);
    return s;
}

Status status(Client& c, std::uint32_t flags, std::uint32_t buf_len,
              std::uint64_t buf_uptr = kReport)
{
    return status_on(c.ctx(), c.caller(), flags, buf_len, buf_uptr);
}

// The report, which must succeed and be valid JSON.
json report_on(core::Context& ctx, const std::shared_ptr<memory::Caller>& caller,
               std::uint32_t flags = 0)
{
    Status s = status_on(ctx, caller, flags, 256 * 1024);
    REQUIRE(s.rc == 0);
    REQUIRE(s.out.out_len > 0);
    REQUIRE(s.out.out_len <= 256 * 1024);
    std::string text(reinterpret_cast<const char*>(s.buffer.data()), s.out.out_len);
    INFO(text);
    REQUIRE(json::accept(text));
    return json::parse(text);
}

json report(Client& c, std::uint32_t flags = 0)
{
    return report_on(c.ctx(), c.caller(), flags);
}

// The entry for context `serial` in report `r`, or nullopt.
std::optional<json> context_entry(const json& r, std::uint32_t serial)
{
    for (const json& ctx : r.at("contexts"))
        if (ctx.at("id") == serial)
            return ctx;
    return std::nullopt;
}

// The object with `id` in a context entry.
std::optional<json> object_entry(const json& ctx, std::uint32_t id)
{
    for (const json& obj : ctx.at("objects"))
        if (obj.at("id") == id)
            return obj;
    return std::nullopt;
}

// A context opened by uid kUid through the socket, with its own client memory.
struct Peer {
    std::shared_ptr<memory::BufferCaller> caller = Client::make_caller(1 << 20);
    core::Context ctx;

    Peer(core::CoreServices& services, uid_t uid = kUid)
        : ctx(services, core::AccountMode::user,
              core::ContextOrigin{.transport = "socket", .uid = uid, .pid = ::getpid()})
    {
    }
    json report(std::uint32_t flags = 0) { return report_on(ctx, caller, flags); }
    Status status(std::uint32_t flags, std::uint32_t buf_len)
    {
        return status_on(ctx, caller, flags, buf_len);
    }
};

std::size_t registry_size(core::CoreServices& services)
{
    std::size_t n = 0;
    services.registry.for_each([&](core::Context&) { ++n; });
    return n;
}

} // namespace

TEST_CASE("EMU_STATUS: a buffer too small gets EMSGSIZE, out_len, and no bytes", "[emu_status]")
{
    core::CoreServices services;
    Client c(services);
    std::uint32_t ioas = test::alloc_ok(c);
    std::uint64_t iova = 0x100000;
    REQUIRE(c.map_fixed(ioas, kBufferAddr, 4 * kPage, iova) == 0);

    // Asking with no buffer at all is how a client learns the size.
    Status probe = status(c, 0, 0, 0);
    CHECK(probe.rc == -EMSGSIZE);
    const std::uint32_t len = probe.out.out_len;
    REQUIRE(len > 2);
    // The rest of the struct is as the client left it.
    CHECK(probe.out.size == sizeof(ioasid_emu_status));
    CHECK(probe.out.flags == 0);
    CHECK(probe.out.buf_len == 0);
    CHECK(probe.out.buf_uptr == 0);

    SECTION("one byte short")
    {
        Status s = status(c, 0, len - 1);
        CHECK(s.rc == -EMSGSIZE);
        CHECK(s.out.out_len == len);
        CHECK(s.out.buf_len == len - 1);
        CHECK(s.buffer == Bytes(s.buffer.size(), kFill));
    }
    SECTION("one byte")
    {
        Status s = status(c, 0, 1);
        CHECK(s.rc == -EMSGSIZE);
        CHECK(s.out.out_len == len);
        CHECK(s.buffer == Bytes(s.buffer.size(), kFill));
    }
    SECTION("exactly the length: the whole report, no terminating NUL")
    {
        Status s = status(c, 0, len);
        CHECK(s.rc == 0);
        CHECK(s.out.out_len == len);
        std::string text(reinterpret_cast<const char*>(s.buffer.data()), len);
        CHECK(json::accept(text));
        CHECK(s.buffer[len] == kFill);
    }
    SECTION("larger than needed: only out_len bytes are written")
    {
        Status s = status(c, 0, len + 100);
        CHECK(s.rc == 0);
        CHECK(s.out.out_len == len);
        CHECK(s.out.buf_len == len + 100);
        for (std::size_t i = len; i < s.buffer.size(); ++i)
            REQUIRE(s.buffer[i] == kFill);
    }
    SECTION("a buffer the client does not have: EFAULT")
    {
        Status s = status(c, 0, len + 100, 0x7000000000);
        CHECK(s.rc == -EFAULT);
        // Running off the end of the client's memory.
        s = status(c, 0, len, kArrayAddr + kArrayRegion - len / 2);
        CHECK(s.rc == -EFAULT);
    }
}

TEST_CASE("EMU_STATUS: the report shows this context, its IOAS and areas", "[emu_status]")
{
    core::CoreServices services;
    Client c(services);
    Client other(services); // same daemon, not shown without IOASID_STATUS_ALL

    json empty = report(c);
    CHECK(empty.at("daemon").at("pid") == ::getpid());
    REQUIRE(empty.at("contexts").size() == 1);
    CHECK(empty.at("contexts")[0].at("id") == c.ctx().serial());
    CHECK(empty.at("contexts")[0].at("own") == true);
    CHECK(empty.at("contexts")[0].at("objects").empty());
    CHECK(empty.at("contexts")[0].at("pinned_bytes") == 0);

    std::uint32_t a = test::alloc_ok(c);
    std::uint32_t b = test::alloc_ok(c);
    REQUIRE(c.map_fixed(a, kBufferAddr, 4 * kPage, 0x100000) == 0);
    std::uint64_t auto_iova = 0;
    REQUIRE(c.map(a, kBufferAddr + 8 * kPage, 2 * kPage, &auto_iova,
                  IOMMU_IOAS_MAP_READABLE) == 0);
    REQUIRE(c.map_fixed(b, kBufferAddr + 16 * kPage, kPage, 0x7000000) == 0);
    // Objects of the other context stay out of this one's report.
    std::uint32_t foreign = test::alloc_ok(other);
    REQUIRE(other.map_fixed(foreign, kBufferAddr, 32 * kPage, 0x900000) == 0);

    json r = report(c);
    REQUIRE(r.at("contexts").size() == 1);
    const json& ctx = r.at("contexts")[0];
    CHECK(ctx.at("id") == c.ctx().serial());
    CHECK(ctx.at("own") == true);
    CHECK(ctx.at("pinned_bytes") == 0);
    REQUIRE(ctx.at("objects").size() == 2);

    auto ioas_a = object_entry(ctx, a);
    REQUIRE(ioas_a);
    CHECK(ioas_a->at("type") == "ioas");
    const json& areas_a = ioas_a->at("areas");
    REQUIRE(areas_a.size() == 2);
    bool found_fixed = false, found_auto = false;
    for (const json& area : areas_a) {
        if (area.at("iova") == 0x100000) {
            found_fixed = true;
            CHECK(area.at("length") == 4 * kPage);
            CHECK(area.at("readable") == true);
            CHECK(area.at("writable") == true);
        } else if (area.at("iova") == auto_iova) {
            found_auto = true;
            CHECK(area.at("length") == 2 * kPage);
            CHECK(area.at("readable") == true);
            CHECK(area.at("writable") == false);
        }
    }
    CHECK(found_fixed);
    CHECK(found_auto);

    auto ioas_b = object_entry(ctx, b);
    REQUIRE(ioas_b);
    REQUIRE(ioas_b->at("areas").size() == 1);
    CHECK(ioas_b->at("areas")[0].at("iova") == 0x7000000);
    CHECK(ioas_b->at("areas")[0].at("length") == kPage);

    SECTION("unmap and destroy show up at once")
    {
        REQUIRE(c.unmap(a, 0x100000, 4 * kPage) == 0);
        REQUIRE(c.destroy(b) == 0);
        json after = report(c);
        const json& ctx2 = after.at("contexts")[0];
        REQUIRE(ctx2.at("objects").size() == 1);
        auto only = object_entry(ctx2, a);
        REQUIRE(only);
        REQUIRE(only->at("areas").size() == 1);
        CHECK(only->at("areas")[0].at("iova") == auto_iova);
        CHECK_FALSE(object_entry(ctx2, b));
    }
}

TEST_CASE("EMU_STATUS: pinned_bytes counts pages an access pinned", "[emu_status][access]")
{
    core::CoreServices services;
    Client c(services);
    std::uint32_t ioas = test::alloc_ok(c);
    REQUIRE(c.map_fixed(ioas, kBufferAddr, 8 * kPage, 0x100000) == 0);
    const std::uint32_t access_id = test::make_access(c, ioas);

    json r = report(c);
    CHECK(r.at("contexts")[0].at("pinned_bytes") == 0);
    auto acc = object_entry(r.at("contexts")[0], access_id);
    REQUIRE(acc);
    CHECK(acc->at("type") == "access");
    CHECK(acc->at("ioas") == ioas);

    {
        std::lock_guard guard(c.ctx().lock());
        auto* access = c.ctx().objects().find_as<core::Access>(access_id);
        REQUIRE(access);
        std::vector<std::uint64_t> phys;
        REQUIRE(access->pin_pages(0x100000 + kPage, 3 * kPage, true, &phys) == 0);
    }
    r = report(c);
    CHECK(r.at("contexts")[0].at("pinned_bytes") == 3 * kPage);

    SECTION("a second pin of the same pages does not count them twice")
    {
        {
            std::lock_guard guard(c.ctx().lock());
            auto* access = c.ctx().objects().find_as<core::Access>(access_id);
            REQUIRE(access->pin_pages(0x100000 + kPage, kPage, false, nullptr) == 0);
        }
        CHECK(report(c).at("contexts")[0].at("pinned_bytes") == 3 * kPage);
    }
    SECTION("pages shared by IOAS_COPY are counted once")
    {
        std::uint32_t dst = test::alloc_ok(c);
        iommu_ioas_copy copy{.size = sizeof(copy),
                             .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
                                      IOMMU_IOAS_MAP_WRITEABLE,
                             .dst_ioas_id = dst,
                             .src_ioas_id = ioas,
                             .length = 8 * kPage,
                             .dst_iova = 0x400000,
                             .src_iova = 0x100000};
        REQUIRE(c.ioctl(IOMMU_IOAS_COPY, copy) == 0);
        CHECK(report(c).at("contexts")[0].at("pinned_bytes") == 3 * kPage);
    }
    SECTION("unpinning brings it back to 0")
    {
        {
            std::lock_guard guard(c.ctx().lock());
            auto* access = c.ctx().objects().find_as<core::Access>(access_id);
            access->unpin_pages(0x100000 + kPage, 3 * kPage);
        }
        CHECK(report(c).at("contexts")[0].at("pinned_bytes") == 0);
    }
    REQUIRE(test::destroy_access(c, access_id) == 0);
}

TEST_CASE("EMU_STATUS: IOASID_STATUS_ALL lists every context of the viewer's uid",
          "[emu_status]")
{
    core::CoreServices services;
    Peer first(services);
    Peer second(services);
    Peer other_user(services, kUid + 1);
    REQUIRE(registry_size(services) == 3);

    std::uint32_t id = 0;
    {
        iommu_ioas_alloc alloc{.size = sizeof(alloc), .flags = 0, .out_ioas_id = 0};
        REQUIRE(second.caller->memory().write(kStructAddr,
                                              std::as_bytes(std::span(&alloc, 1))) == 0);
        REQUIRE(dispatch::ioctl(second.ctx, IOMMU_IOAS_ALLOC, second.caller, kStructAddr) == 0);
        REQUIRE(second.caller->memory().read(kStructAddr,
                                             std::as_writable_bytes(std::span(&alloc, 1))) == 0);
        id = alloc.out_ioas_id;
    }

    json own = first.report(0);
    REQUIRE(own.at("contexts").size() == 1);
    CHECK(own.at("contexts")[0].at("id") == first.ctx.serial());

    json all = first.report(IOASID_STATUS_ALL);
    REQUIRE(all.at("contexts").size() == 2);
    auto mine = context_entry(all, first.ctx.serial());
    auto theirs = context_entry(all, second.ctx.serial());
    REQUIRE(mine);
    REQUIRE(theirs);
    CHECK(mine->at("own") == true);
    CHECK(theirs->at("own") == false);
    CHECK(mine->at("uid") == kUid);
    CHECK(theirs->at("uid") == kUid);
    CHECK(theirs->at("transport") == "socket");
    CHECK(mine->at("objects").empty());
    REQUIRE(theirs->at("objects").size() == 1);
    CHECK(theirs->at("objects")[0].at("id") == id);
    CHECK(theirs->at("objects")[0].at("type") == "ioas");
    // Both were opened by this (live) process.
    REQUIRE(theirs->at("pids").size() == 1);
    CHECK(theirs->at("pids")[0] == ::getpid());
    // Another uid's context is not shown to a non-root viewer.
    CHECK_FALSE(context_entry(all, other_user.ctx.serial()));
    CHECK(first.ctx.serial() != second.ctx.serial());

    SECTION("a context busy in a long ioctl is named but not read")
    {
        std::lock_guard hold(second.ctx.lock());
        json busy = first.report(IOASID_STATUS_ALL);
        auto entry = context_entry(busy, second.ctx.serial());
        REQUIRE(entry);
        CHECK(entry->value("busy", false) == true);
        CHECK_FALSE(entry->contains("objects"));
        auto self = context_entry(busy, first.ctx.serial());
        REQUIRE(self);
        CHECK_FALSE(self->contains("busy"));
    }
}

TEST_CASE("EMU_STATUS: a root viewer sees the contexts of every uid", "[emu_status]")
{
    core::CoreServices services;
    Peer mine(services);
    Peer other_user(services, kUid + 1);
    Peer root_owned(services, 0);

    // The same client memory, with the kernel-reported uid 0 (a socket
    // request's caller takes its uid from SCM_CREDENTIALS).
    auto as_root = std::make_shared<memory::RequestCaller>(mine.caller, 0, ::getpid(), 0,
                                                           std::span<std::byte>());
    REQUIRE(as_root->uid() == 0);
    json all = report_on(mine.ctx, as_root, IOASID_STATUS_ALL);
    CHECK(all.at("contexts").size() == 3);
    CHECK(context_entry(all, mine.ctx.serial()));
    auto theirs = context_entry(all, other_user.ctx.serial());
    REQUIRE(theirs);
    CHECK(theirs->at("uid") == kUid + 1);
    CHECK(theirs->at("own") == false);
    CHECK(context_entry(all, root_owned.ctx.serial()));

    // Without the flag, root too sees only its own file.
    json own = report_on(mine.ctx, as_root, 0);
    REQUIRE(own.at("contexts").size() == 1);
    CHECK(own.at("contexts")[0].at("id") == mine.ctx.serial());

    // uid 1000 sees neither the other uid's nor root's context.
    json limited = mine.report(IOASID_STATUS_ALL);
    REQUIRE(limited.at("contexts").size() == 1);
    CHECK(limited.at("contexts")[0].at("id") == mine.ctx.serial());
}

TEST_CASE("EMU_STATUS: a destroyed context leaves the registry and the report", "[emu_status]")
{
    core::CoreServices services;
    Peer first(services);
    std::uint32_t gone_serial = 0;
    {
        Peer second(services);
        gone_serial = second.ctx.serial();
        REQUIRE(registry_size(services) == 2);
        json all = first.report(IOASID_STATUS_ALL);
        CHECK(all.at("contexts").size() == 2);
        CHECK(context_entry(all, gone_serial));
    }
    CHECK(registry_size(services) == 1);
    json all = first.report(IOASID_STATUS_ALL);
    REQUIRE(all.at("contexts").size() == 1);
    CHECK(all.at("contexts")[0].at("id") == first.ctx.serial());
    CHECK_FALSE(context_entry(all, gone_serial));

    // A new context gets a new serial, never the one that went away.
    Peer third(services);
    CHECK(third.ctx.serial() != gone_serial);
    CHECK(third.ctx.serial() != first.ctx.serial());
    CHECK(first.report(IOASID_STATUS_ALL).at("contexts").size() == 2);
}

TEST_CASE("EMU_STATUS: flags, size and tail follow iommufd's rules", "[emu_status]")
{
    core::CoreServices services;
    Client c(services);

    SECTION("unknown flags: EOPNOTSUPP, nothing written")
    {
        for (std::uint32_t flags : {2u, 4u, 0x80000000u, IOASID_STATUS_ALL | 2u}) {
            Status s = status(c, flags, 64 * 1024);
            CHECK(s.rc == -EOPNOTSUPP);
            CHECK(s.out.out_len == 0);
            CHECK(s.buffer == Bytes(s.buffer.size(), kFill));
        }
    }
    SECTION("a size smaller than the first version: EINVAL")
    {
        for (std::uint32_t size : {0u, 4u, 16u, 20u, 23u}) {
            ioasid_emu_status cmd{.size = size, .flags = 0, .buf_len = 64 * 1024, .out_len = 0,
                                  .buf_uptr = kReport};
            CHECK(c.ioctl(IOASID_EMU_STATUS, cmd) == -EINVAL);
            CHECK(cmd.out_len == 0);
        }
    }
    SECTION("a longer struct with a zero tail works; only the known part is written")
    {
        Bytes b(sizeof(ioasid_emu_status) + 16);
        ioasid_emu_status cmd{.size = static_cast<std::uint32_t>(b.size()), .flags = 0,
                              .buf_len = 64 * 1024, .out_len = 0, .buf_uptr = kReport};
        std::memcpy(b.data(), &cmd, sizeof(cmd));
        REQUIRE(c.ioctl_bytes(IOASID_EMU_STATUS, b) == 0);
        std::memcpy(&cmd, b.data(), sizeof(cmd));
        CHECK(cmd.out_len > 0);
        CHECK(Bytes(b.begin() + sizeof(cmd), b.end()) == Bytes(16, std::byte{0}));
    }
    SECTION("a non-zero byte in the tail: E2BIG")
    {
        for (std::size_t at : {std::size_t{0}, std::size_t{7}, std::size_t{15}}) {
            Bytes b(sizeof(ioasid_emu_status) + 16);
            ioasid_emu_status cmd{.size = static_cast<std::uint32_t>(b.size()), .flags = 0,
                                  .buf_len = 64 * 1024, .out_len = 0, .buf_uptr = kReport};
            std::memcpy(b.data(), &cmd, sizeof(cmd));
            b[sizeof(cmd) + at] = std::byte{1};
            CHECK(c.ioctl_bytes(IOASID_EMU_STATUS, b) == -E2BIG);
            std::memcpy(&cmd, b.data(), sizeof(cmd));
            CHECK(cmd.out_len == 0);
        }
    }
    SECTION("the command number must match exactly")
    {
        ioasid_emu_status cmd{.size = sizeof(cmd), .flags = 0, .buf_len = 64 * 1024,
                              .out_len = 0, .buf_uptr = kReport};
        CHECK(c.ioctl(_IOWR(IOASID_EMU_TYPE, IOASID_EMU_CMD_STATUS, ioasid_emu_status), cmd) ==
              -ENOTTY);
        CHECK(c.ioctl(_IO(IOASID_EMU_TYPE, IOASID_EMU_CMD_PT_DUMP + 1), cmd) == -ENOTTY);
        CHECK(cmd.out_len == 0);
    }
}
