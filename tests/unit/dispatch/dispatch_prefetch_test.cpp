// The dispatcher reads a command's whole struct in one copy, and falls back
// to reading the 4-byte size on its own when that copy faults. The result
// must be what the kernel's order gives (drivers/iommu/iommufd/main.c,
// iommufd_fops_ioctl()):
//   1. _IOC_NR outside the table -> VFIO compat -> ENOTTY, arg not read;
//   2. get_user(user_size) -> EFAULT;
//   3. op->ioctl_num != cmd -> ENOIOCTLCMD (ENOTTY to the caller);
//   4. user_size < op->min_size -> EINVAL;
//   5. copy_struct_from_user() -> EFAULT / E2BIG.
// So a struct that is mapped only as far as its own size says must work,
// and a fault past the size field must not turn an EINVAL or ENOTTY into
// EFAULT.
#include <catch2/catch.hpp>

#include <ioasid/emu.h>
#include <ioasid/iommufd.h>
#include <linux/ioctl.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/ioas.h"
#include "test_support.h"

namespace {

using namespace ioasid;
using test::Client;
using test::kBufferAddr;

using Bytes = std::vector<std::byte>;

constexpr std::uint64_t kPage = 4096;

// A region whose end the structs below are placed against, and one that
// holds nothing but a size field.
constexpr std::uint64_t kEdgeRegion = 0x800000;
constexpr std::uint64_t kEdgeLen = 0x1000;
constexpr std::uint64_t kSizeOnly = 0x900000;
// Nothing is mapped here.
constexpr std::uint64_t kUnmapped = 0xa00000;

struct Cmd {
    const char* name;
    unsigned int num;
    std::uint32_t min_size; // end of the last field of the first version
};

// min_size from the kernel's IOCTL_OP() table (main.c), which for every one
// of these is the struct's size.
const std::vector<Cmd>& commands()
{
    static const std::vector<Cmd> table = {
        {"IOMMU_DESTROY", IOMMU_DESTROY, sizeof(iommu_destroy)},
        {"IOMMU_IOAS_ALLOC", IOMMU_IOAS_ALLOC, sizeof(iommu_ioas_alloc)},
        {"IOMMU_IOAS_ALLOW_IOVAS", IOMMU_IOAS_ALLOW_IOVAS, sizeof(iommu_ioas_allow_iovas)},
        {"IOMMU_IOAS_COPY", IOMMU_IOAS_COPY, sizeof(iommu_ioas_copy)},
        {"IOMMU_IOAS_IOVA_RANGES", IOMMU_IOAS_IOVA_RANGES, sizeof(iommu_ioas_iova_ranges)},
        {"IOMMU_IOAS_MAP", IOMMU_IOAS_MAP, sizeof(iommu_ioas_map)},
        {"IOMMU_IOAS_UNMAP", IOMMU_IOAS_UNMAP, sizeof(iommu_ioas_unmap)},
        {"IOMMU_OPTION", IOMMU_OPTION, sizeof(iommu_option)},
        {"IOMMU_VFIO_IOAS", IOMMU_VFIO_IOAS, sizeof(iommu_vfio_ioas)},
        {"IOASID_EMU_STATUS", IOASID_EMU_STATUS, sizeof(ioasid_emu_status)},
    };
    return table;
}

std::shared_ptr<memory::BufferCaller> make_caller()
{
    auto caller = Client::make_caller(1 << 20);
    caller->add_region(kEdgeRegion, kEdgeLen);
    caller->add_region(kSizeOnly, 4);
    return caller;
}

template <typename T>
std::span<const std::byte> bytes_of(const T& v)
{
    return std::as_bytes(std::span(&v, 1));
}

// Where a struct of `n` bytes ends exactly at the end of kEdgeRegion.
constexpr std::uint64_t at_edge(std::size_t n)
{
    return kEdgeRegion + kEdgeLen - n;
}

template <typename T>
T read_back(Client& c, std::uint64_t addr)
{
    T v{};
    c.read(addr, std::as_writable_bytes(std::span(&v, 1)));
    return v;
}

void put_size(Client& c, std::uint64_t addr, std::uint32_t size)
{
    c.write(addr, bytes_of(size));
}

} // namespace

TEST_CASE("Prefetch: a struct ending exactly at the end of its mapping works as before",
          "[prefetch]")
{
    core::CoreServices services;
    Client c(services, make_caller());

    // IOAS_ALLOC at the edge: the id comes back into the last 4 bytes.
    iommu_ioas_alloc alloc{.size = sizeof(alloc), .flags = 0, .out_ioas_id = 0};
    const std::uint64_t alloc_at = at_edge(sizeof(alloc));
    c.write(alloc_at, bytes_of(alloc));
    REQUIRE(c.ioctl_at(IOMMU_IOAS_ALLOC, alloc_at) == 0);
    const std::uint32_t ioas = read_back<iommu_ioas_alloc>(c, alloc_at).out_ioas_id;
    CHECK(ioas == 1);

    // IOAS_MAP at the edge, with the IOVA chosen by the daemon and written
    // back into the struct's last field.
    iommu_ioas_map map{.size = sizeof(map),
                       .flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
                       .ioas_id = ioas,
                       .__reserved = 0,
                       .user_va = kBufferAddr,
                       .length = 4 * kPage,
                       .iova = 0};
    const std::uint64_t map_at = at_edge(sizeof(map));
    c.write(map_at, bytes_of(map));
    REQUIRE(c.ioctl_at(IOMMU_IOAS_MAP, map_at) == 0);
    const auto mapped = read_back<iommu_ioas_map>(c, map_at);
    CHECK(mapped.iova != 0);
    CHECK(mapped.length == 4 * kPage);
    CHECK(mapped.user_va == kBufferAddr);

    // IOVA_RANGES at the edge with room for none: EMSGSIZE, num_iovas set.
    iommu_ioas_iova_ranges ranges{.size = sizeof(ranges), .ioas_id = ioas, .num_iovas = 0,
                                  .__reserved = 0, .allowed_iovas = 0, .out_iova_alignment = 0};
    const std::uint64_t ranges_at = at_edge(sizeof(ranges));
    c.write(ranges_at, bytes_of(ranges));
    CHECK(c.ioctl_at(IOMMU_IOAS_IOVA_RANGES, ranges_at) == -EMSGSIZE);
    const auto got_ranges = read_back<iommu_ioas_iova_ranges>(c, ranges_at);
    CHECK(got_ranges.num_iovas >= 1);
    CHECK(got_ranges.out_iova_alignment == 1); // a fresh IOAS, as the kernel's iopt_init_table()

    // UNMAP at the edge, reporting the bytes unmapped in its last field.
    iommu_ioas_unmap unmap{.size = sizeof(unmap), .ioas_id = ioas, .iova = mapped.iova,
                           .length = 4 * kPage};
    const std::uint64_t unmap_at = at_edge(sizeof(unmap));
    c.write(unmap_at, bytes_of(unmap));
    REQUIRE(c.ioctl_at(IOMMU_IOAS_UNMAP, unmap_at) == 0);
    CHECK(read_back<iommu_ioas_unmap>(c, unmap_at).length == 4 * kPage);

    // OPTION (get) at the edge: val64 is the struct's last field.
    iommu_option opt{.size = sizeof(opt), .option_id = IOMMU_OPTION_RLIMIT_MODE,
                     .op = IOMMU_OPTION_OP_GET, .__reserved = 0, .object_id = 0,
                     .val64 = 0xdeadbeef};
    const std::uint64_t opt_at = at_edge(sizeof(opt));
    c.write(opt_at, bytes_of(opt));
    REQUIRE(c.ioctl_at(IOMMU_OPTION, opt_at) == 0);
    CHECK(read_back<iommu_option>(c, opt_at).val64 == 0);

    // VFIO_IOAS (set, then get) and DESTROY at the edge.
    iommu_vfio_ioas vfio{.size = sizeof(vfio), .ioas_id = ioas, .op = IOMMU_VFIO_IOAS_SET,
                         .__reserved = 0};
    const std::uint64_t vfio_at = at_edge(sizeof(vfio));
    c.write(vfio_at, bytes_of(vfio));
    REQUIRE(c.ioctl_at(IOMMU_VFIO_IOAS, vfio_at) == 0);
    vfio = {.size = sizeof(vfio), .ioas_id = 0, .op = IOMMU_VFIO_IOAS_GET, .__reserved = 0};
    c.write(vfio_at, bytes_of(vfio));
    REQUIRE(c.ioctl_at(IOMMU_VFIO_IOAS, vfio_at) == 0);
    CHECK(read_back<iommu_vfio_ioas>(c, vfio_at).ioas_id == ioas);

    iommu_destroy destroy{.size = sizeof(destroy), .id = ioas};
    const std::uint64_t destroy_at = at_edge(sizeof(destroy));
    c.write(destroy_at, bytes_of(destroy));
    CHECK(c.ioctl_at(IOMMU_DESTROY, destroy_at) == 0);
    CHECK(c.ioctl_at(IOMMU_DESTROY, destroy_at) == -ENOENT);

    // Our own extension too: the report goes elsewhere, out_len comes back.
    ioasid_emu_status st{.size = sizeof(st), .flags = 0, .buf_len = 0, .out_len = 0,
                         .buf_uptr = 0};
    const std::uint64_t st_at = at_edge(sizeof(st));
    c.write(st_at, bytes_of(st));
    CHECK(c.ioctl_at(IOASID_EMU_STATUS, st_at) == -EMSGSIZE);
    CHECK(read_back<ioasid_emu_status>(c, st_at).out_len > 0);
}

TEST_CASE("Prefetch: a larger struct at the edge is checked for a zero tail as before",
          "[prefetch]")
{
    core::CoreServices services;
    Client c(services, make_caller());
    // An IOAS_ALLOC of 12 + 8 bytes, ending at the region's end.
    Bytes b(sizeof(iommu_ioas_alloc) + 8);
    const std::uint32_t size = static_cast<std::uint32_t>(b.size());
    std::memcpy(b.data(), &size, sizeof(size));
    const std::uint64_t at = at_edge(b.size());
    c.write(at, b);
    REQUIRE(c.ioctl_at(IOMMU_IOAS_ALLOC, at) == 0);
    CHECK(read_back<iommu_ioas_alloc>(c, at).out_ioas_id == 1);

    b[b.size() - 1] = std::byte{1};
    c.write(at, b);
    CHECK(c.ioctl_at(IOMMU_IOAS_ALLOC, at) == -E2BIG);

    // A size that runs past the end of the mapping: the tail faults.
    const std::uint64_t short_at = at_edge(sizeof(iommu_ioas_alloc));
    iommu_ioas_alloc alloc{.size = sizeof(alloc) + 8, .flags = 0, .out_ioas_id = 0};
    c.write(short_at, bytes_of(alloc));
    CHECK(c.ioctl_at(IOMMU_IOAS_ALLOC, short_at) == -EFAULT);
}

TEST_CASE("Prefetch: with only the size field mapped, EINVAL below the minimum, else EFAULT",
          "[prefetch]")
{
    for (const Cmd& cmd : commands()) {
        INFO(cmd.name);
        core::CoreServices services;
        Client c(services, make_caller());

        put_size(c, kSizeOnly, cmd.min_size - 1);
        CHECK(c.ioctl_at(cmd.num, kSizeOnly) == -EINVAL);
        put_size(c, kSizeOnly, 0);
        CHECK(c.ioctl_at(cmd.num, kSizeOnly) == -EINVAL);
        put_size(c, kSizeOnly, 4);
        CHECK(c.ioctl_at(cmd.num, kSizeOnly) == -EINVAL);

        put_size(c, kSizeOnly, cmd.min_size);
        CHECK(c.ioctl_at(cmd.num, kSizeOnly) == -EFAULT);
        put_size(c, kSizeOnly, cmd.min_size + 8);
        CHECK(c.ioctl_at(cmd.num, kSizeOnly) == -EFAULT);
        put_size(c, kSizeOnly, UINT32_MAX);
        CHECK(c.ioctl_at(cmd.num, kSizeOnly) == -EFAULT);

        // The same with the struct cut anywhere after the size field.
        const std::uint64_t cut = at_edge(cmd.min_size - 1);
        put_size(c, cut, cmd.min_size);
        CHECK(c.ioctl_at(cmd.num, cut) == -EFAULT);
        put_size(c, cut, cmd.min_size - 1);
        CHECK(c.ioctl_at(cmd.num, cut) == -EINVAL);

        // Nothing was created on the way.
        CHECK(c.ctx().objects().find_as<core::Ioas>(1) == nullptr);
    }
}

TEST_CASE("Prefetch: a size field that is itself unmapped is EFAULT", "[prefetch]")
{
    for (const Cmd& cmd : commands()) {
        INFO(cmd.name);
        core::CoreServices services;
        Client c(services, make_caller());
        CHECK(c.ioctl_at(cmd.num, kUnmapped) == -EFAULT);
        CHECK(c.ioctl_at(cmd.num, 0) == -EFAULT);
        // Only 2 bytes of the size mapped.
        CHECK(c.ioctl_at(cmd.num, kEdgeRegion + kEdgeLen - 2) == -EFAULT);
        CHECK(c.ioctl_at(cmd.num, UINT64_MAX - 1) == -EFAULT);
    }
}

TEST_CASE("Prefetch: a wrong command with a known number reads the size, then ENOTTY",
          "[prefetch]")
{
    for (const Cmd& cmd : commands()) {
        const unsigned type = _IOC_TYPE(cmd.num);
        const unsigned nr = _IOC_NR(cmd.num);
        // Same number, other direction/size/type bits. For iommufd's
        // numbers any type reaches the table (the kernel picks by number);
        // ours are picked by their own type.
        std::vector<unsigned> variants = {
            _IOC(_IOC_READ | _IOC_WRITE, type, nr, cmd.min_size),
            _IOC(_IOC_WRITE, type, nr, 4),
            _IOC(_IOC_NONE, type, nr, 8),
        };
        if (type != IOASID_EMU_TYPE)
            variants.push_back(_IO('a', nr));
        for (unsigned bad : variants) {
            INFO(cmd.name << " as " << std::hex << bad);
            REQUIRE(bad != cmd.num);
            CHECK(dispatch::known(bad));
            core::CoreServices services;
            Client c(services, make_caller());
            // The kernel's get_user(size) comes before the command check.
            CHECK(c.ioctl_at(bad, kUnmapped) == -EFAULT);
            CHECK(c.ioctl_at(bad, kSizeOnly) == -ENOTTY);
            // A whole, valid-looking struct does not make it run.
            std::vector<std::byte> zero(64);
            std::memcpy(zero.data(), &cmd.min_size, sizeof(cmd.min_size));
            c.write(test::kStructAddr, zero);
            CHECK(c.ioctl_at(bad, test::kStructAddr) == -ENOTTY);
            CHECK(c.ctx().objects().find_as<core::Ioas>(1) == nullptr);
        }
    }
}

TEST_CASE("Prefetch: a number outside the table is ENOTTY without reading", "[prefetch]")
{
    core::CoreServices services;
    Client c(services, make_caller());
    const unsigned outside[] = {_IO(IOMMUFD_TYPE, 0x7f), _IO(IOMMUFD_TYPE, 0x00),
                                _IO(IOASID_EMU_TYPE, 0x55), _IO(IOASID_EMU_TYPE, IOASID_EMU_CMD_PT_DUMP + 1),
                                _IOWR(IOASID_EMU_TYPE, 0x7f, std::uint64_t)};
    for (unsigned bad : outside) {
        INFO(std::hex << bad);
        CHECK_FALSE(dispatch::known(bad));
        CHECK(c.ioctl_at(bad, kUnmapped) == -ENOTTY);
        CHECK(c.ioctl_at(bad, test::kStructAddr) == -ENOTTY);
    }
}

TEST_CASE("known(): every implemented command, nothing else", "[prefetch][known]")
{
    for (const Cmd& cmd : commands()) {
        INFO(cmd.name);
        CHECK(dispatch::known(cmd.num));
    }
    CHECK_FALSE(dispatch::known(_IO(IOMMUFD_TYPE, 0x7f)));
    CHECK_FALSE(dispatch::known(_IO(IOASID_EMU_TYPE, 0x55)));

    // known() is exactly "ioctl() does not answer ENOTTY before reading":
    // for every command number of the 6.12 ABI, implemented or not.
    const unsigned all[] = {IOMMU_DESTROY,        IOMMU_IOAS_ALLOC,
                            IOMMU_IOAS_ALLOW_IOVAS, IOMMU_IOAS_COPY,
                            IOMMU_IOAS_IOVA_RANGES, IOMMU_IOAS_MAP,
                            IOMMU_IOAS_UNMAP,     IOMMU_OPTION,
                            IOMMU_VFIO_IOAS,      IOMMU_HWPT_ALLOC,
                            IOMMU_GET_HW_INFO,    IOMMU_HWPT_SET_DIRTY_TRACKING,
                            IOMMU_HWPT_GET_DIRTY_BITMAP, IOMMU_HWPT_INVALIDATE,
                            IOMMU_FAULT_QUEUE_ALLOC, IOASID_EMU_STATUS};
    core::CoreServices services;
    Client c(services, make_caller());
    for (unsigned num : all) {
        INFO(std::hex << num);
        const int rc = c.ioctl_at(num, kUnmapped);
        CHECK(dispatch::known(num) == (rc != -ENOTTY));
    }
}
