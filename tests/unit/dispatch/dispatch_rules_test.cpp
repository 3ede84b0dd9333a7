// The decoding rules every iommufd command shares (drivers/iommu/iommufd/
// main.c: iommufd_fops_ioctl(), copy_struct_from_user(), iommufd_ucmd_respond()),
// checked for each command the dispatcher implements.
//
// Expected values come from the 6.12 kernel, not from our code:
//  - _IOC_NR < 0x80 or past the table -> VFIO compat handler -> ENOTTY for an
//    unknown number, without reading the argument;
//  - otherwise get_user(size) first (EFAULT), then the full cmd must match the
//    table (ENOTTY), then size < min_size -> EINVAL;
//  - copy_struct_from_user(): a larger struct must have a zero tail (E2BIG),
//    check_zeroed_user() reads it word by word and stops at the first
//    non-zero word; any fault -> EFAULT;
//  - respond writes min(size, sizeof) bytes; IOMMU_OPTION writes only val64.
// Lets failures print the written byte runs.
#define CATCH_CONFIG_ENABLE_PAIR_STRINGMAKER
#include <catch2/catch.hpp>

#include <ioasid/iommufd.h>
#include <linux/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/ioas.h"
#include "test_support.h"

namespace {

using namespace ioasid;
using test::Client;
using test::kArrayAddr;
using test::kBufferAddr;
using test::kStructAddr;
using test::kStructRegion;

using Bytes = std::vector<std::byte>;

template <typename T>
Bytes bytes_of(const T& value)
{
    auto s = std::as_bytes(std::span(&value, 1));
    return Bytes(s.begin(), s.end());
}

void set_u32(Bytes& b, std::size_t offset, std::uint32_t v)
{
    std::memcpy(b.data() + offset, &v, sizeof(v));
}

std::uint32_t get_u32(const Bytes& b, std::size_t offset)
{
    std::uint32_t v;
    std::memcpy(&v, b.data() + offset, sizeof(v));
    return v;
}

// Where the "valid" requests below find their data.
constexpr std::uint64_t kMapIova = 0x100000;
constexpr std::uint64_t kMapLength = 0x4000;
constexpr std::uint64_t kAllowArray = kArrayAddr;           // one iommu_iova_range
constexpr std::uint64_t kRangesArray = kArrayAddr + 0x1000; // room for 4 ranges

// IOAS 1 with one mapping, IOAS 2 empty, the VFIO compat IOAS set to 1 and
// an allowed range for ALLOW_IOVAS in client memory. Works for any harness
// with ioctl_bytes() and write().
template <typename H>
void standard_setup(H& h)
{
    iommu_ioas_alloc alloc{.size = sizeof(alloc), .flags = 0, .out_ioas_id = 0};
    Bytes b = bytes_of(alloc);
    REQUIRE(h.ioctl_bytes(IOMMU_IOAS_ALLOC, b) == 0);
    REQUIRE(get_u32(b, offsetof(iommu_ioas_alloc, out_ioas_id)) == 1);
    b = bytes_of(alloc);
    REQUIRE(h.ioctl_bytes(IOMMU_IOAS_ALLOC, b) == 0);
    REQUIRE(get_u32(b, offsetof(iommu_ioas_alloc, out_ioas_id)) == 2);

    iommu_ioas_map map{.size = sizeof(map),
                       .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
                                IOMMU_IOAS_MAP_WRITEABLE,
                       .ioas_id = 1,
                       .__reserved = 0,
                       .user_va = kBufferAddr,
                       .length = kMapLength,
                       .iova = kMapIova};
    b = bytes_of(map);
    REQUIRE(h.ioctl_bytes(IOMMU_IOAS_MAP, b) == 0);

    iommu_vfio_ioas vfio{.size = sizeof(vfio), .ioas_id = 1, .op = IOMMU_VFIO_IOAS_SET, .__reserved = 0};
    b = bytes_of(vfio);
    REQUIRE(h.ioctl_bytes(IOMMU_VFIO_IOAS, b) == 0);

    iommu_iova_range allowed{.start = 0x10000000, .last = 0x1fffffff};
    h.write(kAllowArray, std::as_bytes(std::span(&allowed, 1)));
}

enum class Out { none, whole, val64 };

struct Spec {
    const char* name;
    unsigned int cmd;
    std::size_t size; // sizeof == min_size for all nine commands
    Bytes ok;         // succeeds after standard_setup()
    Out out;          // what a success writes back
    Bytes bad;        // fails after standard_setup() with bad_errno
    int bad_errno;
};

const std::vector<Spec>& specs()
{
    static const std::vector<Spec> table = [] {
        constexpr std::uint32_t rw = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
        std::vector<Spec> t;
        t.push_back({"IOMMU_DESTROY", IOMMU_DESTROY, sizeof(iommu_destroy),
                     bytes_of(iommu_destroy{.size = sizeof(iommu_destroy), .id = 2}), Out::none,
                     bytes_of(iommu_destroy{.size = sizeof(iommu_destroy), .id = 99}), ENOENT});
        t.push_back({"IOMMU_IOAS_ALLOC", IOMMU_IOAS_ALLOC, sizeof(iommu_ioas_alloc),
                     bytes_of(iommu_ioas_alloc{.size = sizeof(iommu_ioas_alloc), .flags = 0,
                                               .out_ioas_id = 0x5a5a5a5a}),
                     Out::whole,
                     bytes_of(iommu_ioas_alloc{.size = sizeof(iommu_ioas_alloc), .flags = 1,
                                               .out_ioas_id = 0x5a5a5a5a}),
                     EOPNOTSUPP});
        t.push_back({"IOMMU_IOAS_ALLOW_IOVAS", IOMMU_IOAS_ALLOW_IOVAS, sizeof(iommu_ioas_allow_iovas),
                     bytes_of(iommu_ioas_allow_iovas{.size = sizeof(iommu_ioas_allow_iovas),
                                                     .ioas_id = 1,
                                                     .num_iovas = 1,
                                                     .__reserved = 0,
                                                     .allowed_iovas = kAllowArray}),
                     Out::none,
                     bytes_of(iommu_ioas_allow_iovas{.size = sizeof(iommu_ioas_allow_iovas),
                                                     .ioas_id = 99,
                                                     .num_iovas = 1,
                                                     .__reserved = 0,
                                                     .allowed_iovas = kAllowArray}),
                     ENOENT});
        t.push_back({"IOMMU_IOAS_COPY", IOMMU_IOAS_COPY, sizeof(iommu_ioas_copy),
                     bytes_of(iommu_ioas_copy{.size = sizeof(iommu_ioas_copy),
                                              .flags = IOMMU_IOAS_MAP_FIXED_IOVA | rw,
                                              .dst_ioas_id = 2,
                                              .src_ioas_id = 1,
                                              .length = kMapLength,
                                              .dst_iova = 0x200000,
                                              .src_iova = kMapIova}),
                     Out::whole,
                     bytes_of(iommu_ioas_copy{.size = sizeof(iommu_ioas_copy),
                                              .flags = IOMMU_IOAS_MAP_FIXED_IOVA | rw,
                                              .dst_ioas_id = 2,
                                              .src_ioas_id = 99,
                                              .length = kMapLength,
                                              .dst_iova = 0x200000,
                                              .src_iova = kMapIova}),
                     ENOENT});
        t.push_back({"IOMMU_IOAS_IOVA_RANGES", IOMMU_IOAS_IOVA_RANGES, sizeof(iommu_ioas_iova_ranges),
                     bytes_of(iommu_ioas_iova_ranges{.size = sizeof(iommu_ioas_iova_ranges),
                                                     .ioas_id = 1,
                                                     .num_iovas = 4,
                                                     .__reserved = 0,
                                                     .allowed_iovas = kRangesArray,
                                                     .out_iova_alignment = 0x77}),
                     Out::whole,
                     bytes_of(iommu_ioas_iova_ranges{.size = sizeof(iommu_ioas_iova_ranges),
                                                     .ioas_id = 99,
                                                     .num_iovas = 4,
                                                     .__reserved = 0,
                                                     .allowed_iovas = kRangesArray,
                                                     .out_iova_alignment = 0x77}),
                     ENOENT});
        t.push_back({"IOMMU_IOAS_MAP", IOMMU_IOAS_MAP, sizeof(iommu_ioas_map),
                     bytes_of(iommu_ioas_map{.size = sizeof(iommu_ioas_map),
                                             .flags = rw,
                                             .ioas_id = 1,
                                             .__reserved = 0,
                                             .user_va = kBufferAddr + 0x10000,
                                             .length = 0x2000,
                                             .iova = 0}),
                     Out::whole,
                     bytes_of(iommu_ioas_map{.size = sizeof(iommu_ioas_map),
                                             .flags = rw,
                                             .ioas_id = 99,
                                             .__reserved = 0,
                                             .user_va = kBufferAddr + 0x10000,
                                             .length = 0x2000,
                                             .iova = 0}),
                     ENOENT});
        t.push_back({"IOMMU_IOAS_UNMAP", IOMMU_IOAS_UNMAP, sizeof(iommu_ioas_unmap),
                     bytes_of(iommu_ioas_unmap{.size = sizeof(iommu_ioas_unmap), .ioas_id = 1,
                                               .iova = kMapIova, .length = kMapLength}),
                     Out::whole,
                     bytes_of(iommu_ioas_unmap{.size = sizeof(iommu_ioas_unmap), .ioas_id = 1,
                                               .iova = 0x900000, .length = 0x1000}),
                     ENOENT});
        t.push_back({"IOMMU_OPTION", IOMMU_OPTION, sizeof(iommu_option),
                     bytes_of(iommu_option{.size = sizeof(iommu_option),
                                           .option_id = IOMMU_OPTION_HUGE_PAGES,
                                           .op = IOMMU_OPTION_OP_GET,
                                           .__reserved = 0,
                                           .object_id = 1,
                                           .val64 = 0x77}),
                     Out::val64,
                     bytes_of(iommu_option{.size = sizeof(iommu_option),
                                           .option_id = IOMMU_OPTION_HUGE_PAGES,
                                           .op = IOMMU_OPTION_OP_GET,
                                           .__reserved = 0,
                                           .object_id = 99,
                                           .val64 = 0x77}),
                     ENOENT});
        t.push_back({"IOMMU_VFIO_IOAS", IOMMU_VFIO_IOAS, sizeof(iommu_vfio_ioas),
                     bytes_of(iommu_vfio_ioas{.size = sizeof(iommu_vfio_ioas), .ioas_id = 0,
                                              .op = IOMMU_VFIO_IOAS_GET, .__reserved = 0}),
                     Out::whole,
                     bytes_of(iommu_vfio_ioas{.size = sizeof(iommu_vfio_ioas), .ioas_id = 0,
                                              .op = 9, .__reserved = 0}),
                     EOPNOTSUPP});
        return t;
    }();
    return table;
}

// Everything a command could have changed in a context, as text.
std::string fingerprint(core::Context& ctx)
{
    std::ostringstream os;
    std::lock_guard guard(ctx.lock());
    os << std::hex;
    ctx.objects().for_each([&](const core::Object& object) {
        os << "obj " << object.id() << " type " << static_cast<int>(object.type()) << " users "
           << object.users() << "\n";
        if (object.type() != core::ObjectType::ioas)
            return;
        const auto& iopt = static_cast<const core::Ioas&>(object).iopt();
        os << "  align " << iopt.iova_alignment() << " large " << iopt.large_pages() << " free "
           << iopt.free_range_count() << "\n";
        iopt.for_each_area([&](const core::Area& area) {
            os << "  area " << area.iova.first << "-" << area.iova.last << " sb " << area.start_byte
               << " r" << area.readable << " w" << area.writable << "\n";
        });
    });
    std::uint32_t vfio = 0;
    int rc = ctx.vfio_ioas_get(&vfio);
    std::uint64_t mode = 0;
    (void)ctx.get_rlimit_mode(&mode);
    os << "vfio " << rc << " " << vfio << " rlimit " << mode << "\n";
    return os.str();
}

// The fixture's memory layout, with only 1 MiB behind kBufferAddr: these
// tests build hundreds of contexts and never touch more.
// A fresh context after standard_setup().
struct World {
    core::CoreServices services;
    Client client{services, Client::make_caller(1 << 20)};
    World() { standard_setup(client); }
    std::string state() { return fingerprint(client.ctx()); }
};

struct Outcome {
    int rc;
    Bytes bytes;
    std::string state;
};

// Runs `bytes` (possibly longer than the struct) at kStructAddr in a fresh world.
Outcome run_fresh(unsigned int cmd, Bytes bytes)
{
    World w;
    int rc = w.client.ioctl_bytes(cmd, bytes);
    return {rc, std::move(bytes), w.state()};
}

// `ok` with the size field set to `size` and `extra` bytes after the struct.
Bytes extended(const Spec& spec, std::uint32_t size, std::size_t extra, std::byte fill = std::byte{0})
{
    Bytes b = spec.ok;
    b.resize(spec.size + extra, fill);
    set_u32(b, 0, size);
    return b;
}

// A caller whose memory is a test::Client-style buffer, recording every
// write the dispatcher makes, so tests can see which bytes it touched.
class RecordingCaller final : public memory::Caller, private memory::CallerMemory {
public:
    RecordingCaller() : inner_(Client::make_caller(1 << 20)) {}

    memory::CallerMemory& memory() override { return *this; }
    [[nodiscard]] uid_t uid() const override { return inner_->uid(); }
    [[nodiscard]] pid_t tgid() const override { return inner_->tgid(); }
    [[nodiscard]] std::uint64_t process_key() const override { return inner_->process_key(); }
    [[nodiscard]] bool capable(memory::Capability cap) const override { return inner_->capable(cap); }
    [[nodiscard]] std::uint64_t memlock_limit() const override { return inner_->memlock_limit(); }

    memory::CallerMemory& raw() { return inner_->memory(); }
    std::vector<std::pair<std::uint64_t, std::uint64_t>> writes; // addr, length

private:
    int read(std::uint64_t addr, std::span<std::byte> out) override
    {
        return inner_->memory().read(addr, out);
    }
    int write(std::uint64_t addr, std::span<const std::byte> in) override
    {
        writes.emplace_back(addr, in.size());
        return inner_->memory().write(addr, in);
    }
    int check_mapped(std::uint64_t addr, std::uint64_t length, bool for_write) override
    {
        return inner_->memory().check_mapped(addr, length, for_write);
    }

    std::shared_ptr<memory::BufferCaller> inner_;
};

struct Recorder {
    core::CoreServices services;
    std::shared_ptr<RecordingCaller> rec = std::make_shared<RecordingCaller>();
    std::shared_ptr<memory::Caller> caller = rec;
    core::Context ctx{services};

    void write(std::uint64_t addr, std::span<const std::byte> bytes)
    {
        REQUIRE(rec->raw().write(addr, bytes) == 0);
    }
    int ioctl_bytes(unsigned int cmd, std::span<std::byte> bytes)
    {
        REQUIRE(rec->raw().write(kStructAddr, bytes) == 0);
        rec->writes.clear();
        int rc = dispatch::ioctl(ctx, cmd, caller, kStructAddr);
        REQUIRE(rec->raw().read(kStructAddr, bytes) == 0);
        return rc;
    }
    // Byte runs [begin, end) relative to kStructAddr written by the last
    // ioctl inside [kStructAddr, kStructAddr + window).
    std::vector<std::pair<std::size_t, std::size_t>> written(std::size_t window) const
    {
        std::vector<bool> mask(window);
        for (auto [addr, len] : rec->writes) {
            std::uint64_t lo = std::max(addr, kStructAddr);
            std::uint64_t hi = std::min(addr + len, kStructAddr + window);
            for (std::uint64_t a = lo; a < hi; ++a)
                mask[a - kStructAddr] = true;
        }
        std::vector<std::pair<std::size_t, std::size_t>> runs;
        for (std::size_t i = 0; i < window;) {
            if (!mask[i]) {
                ++i;
                continue;
            }
            std::size_t j = i;
            while (j < window && mask[j])
                ++j;
            runs.emplace_back(i, j);
            i = j;
        }
        return runs;
    }
};

std::vector<std::pair<std::size_t, std::size_t>> expected_runs(const Spec& spec)
{
    switch (spec.out) {
    case Out::none:
        return {};
    case Out::whole:
        return {{0, spec.size}};
    case Out::val64:
        return {{offsetof(iommu_option, val64), offsetof(iommu_option, val64) + 8}};
    }
    return {};
}

} // namespace

// One generated run per command of the table.
#define PICK_SPEC() specs().at(GENERATE(range(std::size_t{0}, std::size_t{9})))

TEST_CASE("the valid request of every command succeeds at its own size", "[dispatch][decode]")
{
    // Guards the table: every other test here leans on `ok` succeeding and
    // `bad` failing the way the kernel would.
    REQUIRE(specs().size() == 9);
    const Spec& spec = PICK_SPEC();
    CAPTURE(spec.name);
    REQUIRE(spec.ok.size() == spec.size);

    World w;
    Bytes ok = spec.ok;
    CHECK(w.client.ioctl_bytes(spec.cmd, ok) == 0);

    World w2;
    Bytes bad = spec.bad;
    const std::string before = w2.state();
    CHECK(w2.client.ioctl_bytes(spec.cmd, bad) == -spec.bad_errno);
    CHECK(bad == spec.bad);
    CHECK(w2.state() == before);
}

TEST_CASE("unknown ioctl numbers answer ENOTTY without reading the argument", "[dispatch][decode]")
{
    core::CoreServices services;
    Client client(services, Client::make_caller(1 << 20));
    // Numbers below IOMMUFD_CMD_BASE and past the iommufd table go to the
    // VFIO compat handler, which knows none of these.
    const unsigned int nr = GENERATE(0x00u, 0x3bu, 0x63u, 0x7fu, 0xffu);
    CAPTURE(nr);
    const unsigned int cmd = _IO(IOMMUFD_TYPE, nr);
    iommu_destroy arg{.size = sizeof(arg), .id = 1};
    CHECK(client.ioctl(cmd, arg) == -ENOTTY);
    CHECK(client.ioctl_at(cmd, 0) == -ENOTTY);
    CHECK(client.ioctl_at(cmd, 0x30000) == -ENOTTY); // unmapped
    CHECK(client.ioctl_at(_IOWR(IOMMUFD_TYPE, nr, iommu_destroy), 0) == -ENOTTY);
    CHECK(client.ctx().objects().empty());
}

TEST_CASE("a known number with size/direction bits or another type is ENOTTY", "[dispatch][decode]")
{
    const Spec& spec = PICK_SPEC();
    CAPTURE(spec.name);
    const unsigned int nr = _IOC_NR(spec.cmd);
    const auto size = static_cast<unsigned int>(spec.size);
    const unsigned int variant = GENERATE_COPY(
        _IOC(_IOC_WRITE, IOMMUFD_TYPE, nr, size), _IOC(_IOC_READ, IOMMUFD_TYPE, nr, size),
        _IOC(_IOC_READ | _IOC_WRITE, IOMMUFD_TYPE, nr, size), _IOC(_IOC_NONE, IOMMUFD_TYPE, nr, size),
        _IOC(_IOC_WRITE, IOMMUFD_TYPE, nr, 4u), _IO('x', nr), _IO(0, nr));
    CAPTURE(variant);
    REQUIRE(variant != spec.cmd);

    World w;
    const std::string before = w.state();
    Bytes b = spec.ok;
    CHECK(w.client.ioctl_bytes(variant, b) == -ENOTTY);
    CHECK(b == spec.ok); // not executed, nothing written back
    CHECK(w.state() == before);

    // The kernel reads `size` before it compares the number with the table.
    CHECK(w.client.ioctl_at(variant, 0) == -EFAULT);
}

TEST_CASE("an unreadable argument of a known command is EFAULT", "[dispatch][decode]")
{
    const Spec& spec = PICK_SPEC();
    CAPTURE(spec.name);
    World w;
    const std::string before = w.state();

    SECTION("NULL")
    {
        CHECK(w.client.ioctl_at(spec.cmd, 0) == -EFAULT);
    }
    SECTION("unmapped gap between regions")
    {
        CHECK(w.client.ioctl_at(spec.cmd, 0x30000) == -EFAULT);
    }
    SECTION("top of the address space")
    {
        CHECK(w.client.ioctl_at(spec.cmd, UINT64_MAX - 1) == -EFAULT);
    }
    SECTION("only the size field is readable")
    {
        const std::uint64_t at = kStructAddr + kStructRegion - 4;
        w.client.write(at, std::span(spec.ok).first(4));
        CHECK(w.client.ioctl_at(spec.cmd, at) == -EFAULT);
    }
    SECTION("the last byte of the struct is unreadable")
    {
        const std::uint64_t at = kStructAddr + kStructRegion - (spec.size - 1);
        w.client.write(at, std::span(spec.ok).first(spec.size - 1));
        CHECK(w.client.ioctl_at(spec.cmd, at) == -EFAULT);
    }
    CHECK(w.state() == before);
}

TEST_CASE("size below the original struct is EINVAL", "[dispatch][decode]")
{
    const Spec& spec = PICK_SPEC();
    CAPTURE(spec.name);
    const auto size = GENERATE_COPY(std::uint32_t{0}, std::uint32_t{1}, std::uint32_t{4},
                                    static_cast<std::uint32_t>(spec.size - 1));
    CAPTURE(size);
    World w;
    const std::string before = w.state();
    Bytes b = spec.ok;
    set_u32(b, 0, size);
    const Bytes sent = b;
    CHECK(w.client.ioctl_bytes(spec.cmd, b) == -EINVAL);
    CHECK(b == sent);
    CHECK(w.state() == before);
}

TEST_CASE("a larger struct with an all-zero tail behaves exactly like the plain size",
          "[dispatch][decode]")
{
    const Spec& spec = PICK_SPEC();
    CAPTURE(spec.name);
    const std::size_t extra = GENERATE(std::size_t{1}, std::size_t{8}, std::size_t{4096 + 3},
                                       std::size_t{10000});
    CAPTURE(extra);

    const Outcome plain = run_fresh(spec.cmd, spec.ok);
    REQUIRE(plain.rc == 0);

    // Zero tail, then a canary the kernel must never touch.
    constexpr std::size_t kCanary = 64;
    Bytes b = extended(spec, static_cast<std::uint32_t>(spec.size + extra), extra + kCanary);
    std::fill(b.end() - kCanary, b.end(), std::byte{0xa5});
    const Outcome big = run_fresh(spec.cmd, b);

    CHECK(big.rc == plain.rc);
    CHECK(big.state == plain.state);
    // Same output fields; only the size field differs.
    Bytes head(big.bytes.begin(), big.bytes.begin() + static_cast<std::ptrdiff_t>(spec.size));
    set_u32(head, 0, static_cast<std::uint32_t>(spec.size));
    CHECK(head == plain.bytes);
    CHECK(std::all_of(big.bytes.begin() + static_cast<std::ptrdiff_t>(spec.size),
                      big.bytes.end() - kCanary, [](std::byte x) { return x == std::byte{0}; }));
    CHECK(std::all_of(big.bytes.end() - kCanary, big.bytes.end(),
                      [](std::byte x) { return x == std::byte{0xa5}; }));
}

TEST_CASE("a non-zero byte in the tail is E2BIG and nothing happens", "[dispatch][decode]")
{
    const Spec& spec = PICK_SPEC();
    CAPTURE(spec.name);
    struct Case {
        std::size_t extra;
        std::size_t nonzero_at; // index into the tail
    };
    const Case c = GENERATE(Case{1, 0}, Case{8, 7}, Case{8, 0}, Case{10000, 0}, Case{10000, 9999},
                            Case{10000, 5000});
    CAPTURE(c.extra, c.nonzero_at);

    World w;
    const std::string before = w.state();
    Bytes b = extended(spec, static_cast<std::uint32_t>(spec.size + c.extra), c.extra);
    b[spec.size + c.nonzero_at] = std::byte{0x01};
    const Bytes sent = b;
    CHECK(w.client.ioctl_bytes(spec.cmd, b) == -E2BIG);
    CHECK(b == sent);
    CHECK(w.state() == before);
}

TEST_CASE("the tail is read like check_zeroed_user(): first non-zero word wins over a later fault",
          "[dispatch][decode]")
{
    const Spec& spec = PICK_SPEC();
    CAPTURE(spec.name);
    World w;
    const std::string before = w.state();
    // The struct and 8 tail bytes end exactly where the struct region ends;
    // `size` claims 0x100 more bytes, which lie in unmapped memory.
    const std::uint64_t region_end = kStructAddr + kStructRegion;
    const std::uint64_t at = region_end - spec.size - 8;
    REQUIRE((at + spec.size) % 8 == 0); // the tail starts on a word, as the kernel reads it
    Bytes b = extended(spec, static_cast<std::uint32_t>(spec.size + 8 + 0x100), 8);

    SECTION("non-zero byte before the unmapped part -> E2BIG")
    {
        b[spec.size] = std::byte{0x01};
        w.client.write(at, b);
        CHECK(w.client.ioctl_at(spec.cmd, at) == -E2BIG);
    }
    SECTION("zero bytes up to the unmapped part -> EFAULT")
    {
        w.client.write(at, b);
        CHECK(w.client.ioctl_at(spec.cmd, at) == -EFAULT);
    }
    CHECK(w.state() == before);
}

TEST_CASE("reserved fields and unknown flag bits are EOPNOTSUPP before any other check",
          "[dispatch][decode]")
{
    World w;
    const std::string before = w.state();
    constexpr std::uint32_t known_map_flags =
        IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

    SECTION("IOAS_ALLOC: every flag bit")
    {
        for (unsigned bit = 0; bit < 32; ++bit) {
            CAPTURE(bit);
            iommu_ioas_alloc cmd{.size = sizeof(cmd), .flags = 1u << bit, .out_ioas_id = 0x5a5a};
            CHECK(w.client.ioctl(IOMMU_IOAS_ALLOC, cmd) == -EOPNOTSUPP);
            CHECK(cmd.out_ioas_id == 0x5a5a);
        }
    }
    SECTION("IOAS_MAP: unknown flag bits and __reserved, even with bad ioas and overflowing length")
    {
        for (unsigned bit = 3; bit < 32; ++bit) {
            CAPTURE(bit);
            iommu_ioas_map cmd{.size = sizeof(cmd), .flags = (1u << bit) | known_map_flags,
                               .ioas_id = 99, .__reserved = 0, .user_va = kBufferAddr,
                               .length = UINT64_MAX, .iova = UINT64_MAX};
            CHECK(w.client.ioctl(IOMMU_IOAS_MAP, cmd) == -EOPNOTSUPP);
        }
        for (std::uint32_t reserved : {1u, 0x80000000u}) {
            iommu_ioas_map cmd{.size = sizeof(cmd), .flags = 0, .ioas_id = 99,
                               .__reserved = reserved, .user_va = kBufferAddr,
                               .length = UINT64_MAX, .iova = 0};
            CHECK(w.client.ioctl(IOMMU_IOAS_MAP, cmd) == -EOPNOTSUPP);
        }
    }
    SECTION("IOAS_COPY: unknown flag bits, even with overflowing length and bad ioas")
    {
        for (unsigned bit = 3; bit < 32; ++bit) {
            CAPTURE(bit);
            iommu_ioas_copy cmd{.size = sizeof(cmd), .flags = 1u << bit, .dst_ioas_id = 99,
                                .src_ioas_id = 98, .length = UINT64_MAX, .dst_iova = 0,
                                .src_iova = 0};
            CHECK(w.client.ioctl(IOMMU_IOAS_COPY, cmd) == -EOPNOTSUPP);
        }
    }
    SECTION("IOAS_IOVA_RANGES: __reserved, even with a bad ioas; nothing written")
    {
        iommu_ioas_iova_ranges cmd{.size = sizeof(cmd), .ioas_id = 99, .num_iovas = 0,
                                   .__reserved = 1, .allowed_iovas = 0, .out_iova_alignment = 0x77};
        CHECK(w.client.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd) == -EOPNOTSUPP);
        CHECK(cmd.num_iovas == 0);
        CHECK(cmd.out_iova_alignment == 0x77);
        cmd.ioas_id = 1;
        cmd.__reserved = 0x80000000u;
        CHECK(w.client.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd) == -EOPNOTSUPP);
        CHECK(cmd.num_iovas == 0);
        CHECK(cmd.out_iova_alignment == 0x77);
    }
    SECTION("IOAS_ALLOW_IOVAS: __reserved, even with a bad ioas and a bad pointer")
    {
        iommu_ioas_allow_iovas cmd{.size = sizeof(cmd), .ioas_id = 99, .num_iovas = 1,
                                   .__reserved = 1, .allowed_iovas = 0x30000};
        CHECK(w.client.ioctl(IOMMU_IOAS_ALLOW_IOVAS, cmd) == -EOPNOTSUPP);
        cmd.ioas_id = 1;
        cmd.allowed_iovas = kAllowArray;
        CHECK(w.client.ioctl(IOMMU_IOAS_ALLOW_IOVAS, cmd) == -EOPNOTSUPP);
    }
    SECTION("OPTION: __reserved, for either option and an unknown one")
    {
        for (std::uint32_t option : {0u, 1u, 7u}) {
            CAPTURE(option);
            iommu_option cmd{.size = sizeof(cmd), .option_id = option, .op = IOMMU_OPTION_OP_GET,
                             .__reserved = 1, .object_id = option == 1 ? 1u : 0u, .val64 = 0x77};
            CHECK(w.client.ioctl(IOMMU_OPTION, cmd) == -EOPNOTSUPP);
            CHECK(cmd.val64 == 0x77);
        }
    }
    SECTION("VFIO_IOAS: __reserved, for every op")
    {
        for (std::uint16_t op : {0, 1, 2, 3}) {
            CAPTURE(op);
            iommu_vfio_ioas cmd{.size = sizeof(cmd), .ioas_id = 99, .op = op, .__reserved = 0x8000};
            CHECK(w.client.ioctl(IOMMU_VFIO_IOAS, cmd) == -EOPNOTSUPP);
            CHECK(cmd.ioas_id == 99);
        }
    }
    // IOMMU_DESTROY and IOMMU_IOAS_UNMAP have neither flags nor reserved fields.
    CHECK(w.state() == before);
}

TEST_CASE("write-back: min(size, sizeof) bytes on success, nothing beyond, nothing on error",
          "[dispatch][decode]")
{
    const Spec& spec = PICK_SPEC();
    CAPTURE(spec.name);
    constexpr std::size_t kWindow = 0x200;
    const std::size_t extra = GENERATE(std::size_t{0}, std::size_t{16});
    CAPTURE(extra);

    Recorder r;
    standard_setup(r);

    SECTION("success")
    {
        Bytes b = extended(spec, static_cast<std::uint32_t>(spec.size + extra), extra);
        b.resize(kWindow, std::byte{0xa5}); // canary after the user struct
        CHECK(r.ioctl_bytes(spec.cmd, b) == 0);
        CHECK(r.written(kWindow) == expected_runs(spec));
        CHECK(std::all_of(b.begin() + static_cast<std::ptrdiff_t>(spec.size + extra), b.end(),
                          [](std::byte x) { return x == std::byte{0xa5}; }));
    }
    SECTION("error")
    {
        Bytes b = spec.bad;
        b.resize(spec.size + extra, std::byte{0});
        set_u32(b, 0, static_cast<std::uint32_t>(spec.size + extra));
        CHECK(r.ioctl_bytes(spec.cmd, b) == -spec.bad_errno);
        CHECK(r.written(kWindow).empty());
    }
}

TEST_CASE("IOMMU_OPTION writes back only val64, for GET and SET", "[dispatch][decode][option]")
{
    Recorder r;
    standard_setup(r);
    constexpr std::size_t kWindow = 0x100;
    const std::vector<std::pair<std::size_t, std::size_t>> val64_only{
        {offsetof(iommu_option, val64), offsetof(iommu_option, val64) + 8}};

    SECTION("HUGE_PAGES SET")
    {
        iommu_option cmd{.size = sizeof(cmd), .option_id = IOMMU_OPTION_HUGE_PAGES,
                         .op = IOMMU_OPTION_OP_SET, .__reserved = 0, .object_id = 1, .val64 = 1};
        Bytes b = bytes_of(cmd);
        CHECK(r.ioctl_bytes(IOMMU_OPTION, b) == 0);
        CHECK(r.written(kWindow) == val64_only);
    }
    SECTION("RLIMIT_MODE GET")
    {
        iommu_option cmd{.size = sizeof(cmd), .option_id = IOMMU_OPTION_RLIMIT_MODE,
                         .op = IOMMU_OPTION_OP_GET, .__reserved = 0, .object_id = 0, .val64 = 0x77};
        Bytes b = bytes_of(cmd);
        CHECK(r.ioctl_bytes(IOMMU_OPTION, b) == 0);
        CHECK(r.written(kWindow) == val64_only);
        std::uint64_t val;
        std::memcpy(&val, b.data() + offsetof(iommu_option, val64), 8);
        CHECK(val == 0);
    }
    SECTION("errors write nothing")
    {
        iommu_option cmd{.size = sizeof(cmd), .option_id = IOMMU_OPTION_HUGE_PAGES,
                         .op = IOMMU_OPTION_OP_SET, .__reserved = 0, .object_id = 1, .val64 = 2};
        Bytes b = bytes_of(cmd);
        CHECK(r.ioctl_bytes(IOMMU_OPTION, b) == -EINVAL);
        CHECK(r.written(kWindow).empty());
    }
}
