// dispatch::describe(): the --trace line of one ioctl, decoded from the
// caller's memory as it is at that moment. It never fails: what cannot be
// read is said to be unreadable.
#include <catch2/catch.hpp>

#include <ioasid/emu.h>
#include <ioasid/iommufd.h>
#include <linux/ioctl.h>

#include <cstring>
#include <string>
#include <vector>

#include "dispatch/dispatcher.h"
#include "memory/buffer_caller.h"

namespace {

using namespace ioasid;

constexpr std::uint64_t kStruct = 0x10000;
constexpr std::uint64_t kRegionLen = 0x1000;
constexpr std::uint64_t kUnmapped = 0x900000;

struct Env {
    memory::BufferCaller caller;
    Env() { caller.add_region(kStruct, kRegionLen); }

    template <typename T>
    void put(const T& v, std::uint64_t at = kStruct)
    {
        REQUIRE(caller.memory().write(at, std::as_bytes(std::span(&v, 1))) == 0);
    }
    std::string describe(unsigned int cmd, std::uint64_t at = kStruct)
    {
        return dispatch::describe(cmd, caller.memory(), at);
    }
};

} // namespace

TEST_CASE("describe: IOMMU_IOAS_MAP shows its name and every field", "[trace]")
{
    Env env;
    env.put(iommu_ioas_map{.size = sizeof(iommu_ioas_map),
                           .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
                                    IOMMU_IOAS_MAP_WRITEABLE,
                           .ioas_id = 3,
                           .__reserved = 0,
                           .user_va = 0x7f0012345000,
                           .length = 0x200000,
                           .iova = 0x100000});
    CHECK(env.describe(IOMMU_IOAS_MAP) ==
          "IOMMU_IOAS_MAP{size=40 flags=0x7 ioas_id=3 user_va=0x7f0012345000 length=0x200000 "
          "iova=0x100000}");
}

TEST_CASE("describe: IOMMU_DESTROY shows the id in decimal", "[trace]")
{
    Env env;
    env.put(iommu_destroy{.size = sizeof(iommu_destroy), .id = 42});
    CHECK(env.describe(IOMMU_DESTROY) == "IOMMU_DESTROY{size=8 id=42}");
}

TEST_CASE("describe: the struct is decoded as far as its own size says", "[trace]")
{
    Env env;
    SECTION("a shorter size: the fields past it read as 0")
    {
        // Only size, flags and ioas_id (12 bytes) count; the rest of the
        // bytes in memory are left over from something else.
        env.put(iommu_ioas_map{.size = 12, .flags = 1, .ioas_id = 9, .__reserved = 0,
                               .user_va = 0x5000, .length = 0x6000, .iova = 0x7000});
        CHECK(env.describe(IOMMU_IOAS_MAP) ==
              "IOMMU_IOAS_MAP{size=12 flags=0x1 ioas_id=9 user_va=0 length=0 iova=0}");
    }
    SECTION("a longer size: the known fields, the size as given")
    {
        env.put(iommu_destroy{.size = 64, .id = 7});
        CHECK(env.describe(IOMMU_DESTROY) == "IOMMU_DESTROY{size=64 id=7}");
    }
    SECTION("a longer size whose tail is unmapped still shows the known part")
    {
        const std::uint64_t at = kStruct + kRegionLen - sizeof(iommu_destroy);
        env.put(iommu_destroy{.size = 64, .id = 5}, at);
        CHECK(env.describe(IOMMU_DESTROY, at) == "IOMMU_DESTROY{size=64 id=5}");
    }
}

TEST_CASE("describe: what cannot be read is shown as unreadable", "[trace]")
{
    Env env;
    CHECK(env.describe(IOMMU_IOAS_MAP, kUnmapped) == "IOMMU_IOAS_MAP{unreadable}");
    CHECK(env.describe(IOMMU_DESTROY, 0) == "IOMMU_DESTROY{unreadable}");
    CHECK(env.describe(IOASID_EMU_STATUS, UINT64_MAX - 1) == "IOASID_EMU_STATUS{unreadable}");
    SECTION("the size readable, the rest not")
    {
        const std::uint64_t at = kStruct + kRegionLen - 8;
        env.put(std::uint32_t{sizeof(iommu_ioas_map)}, at);
        CHECK(env.describe(IOMMU_IOAS_MAP, at) == "IOMMU_IOAS_MAP{size=40, rest unreadable}");
    }
}

TEST_CASE("describe: every implemented command has its name", "[trace]")
{
    Env env;
    // A zeroed struct of the largest size, with its size field set.
    std::vector<std::byte> zero(64);
    const struct {
        unsigned num;
        const char* name;
        std::uint32_t size;
    } cmds[] = {
        {IOMMU_DESTROY, "IOMMU_DESTROY", sizeof(iommu_destroy)},
        {IOMMU_IOAS_ALLOC, "IOMMU_IOAS_ALLOC", sizeof(iommu_ioas_alloc)},
        {IOMMU_IOAS_ALLOW_IOVAS, "IOMMU_IOAS_ALLOW_IOVAS", sizeof(iommu_ioas_allow_iovas)},
        {IOMMU_IOAS_COPY, "IOMMU_IOAS_COPY", sizeof(iommu_ioas_copy)},
        {IOMMU_IOAS_IOVA_RANGES, "IOMMU_IOAS_IOVA_RANGES", sizeof(iommu_ioas_iova_ranges)},
        {IOMMU_IOAS_MAP, "IOMMU_IOAS_MAP", sizeof(iommu_ioas_map)},
        {IOMMU_IOAS_UNMAP, "IOMMU_IOAS_UNMAP", sizeof(iommu_ioas_unmap)},
        {IOMMU_OPTION, "IOMMU_OPTION", sizeof(iommu_option)},
        {IOMMU_VFIO_IOAS, "IOMMU_VFIO_IOAS", sizeof(iommu_vfio_ioas)},
        {IOASID_EMU_STATUS, "IOASID_EMU_STATUS", sizeof(ioasid_emu_status)},
    };
    for (const auto& cmd : cmds) {
        INFO(cmd.name);
        std::memcpy(zero.data(), &cmd.size, sizeof(cmd.size));
        REQUIRE(env.caller.memory().write(kStruct, zero) == 0);
        const std::string line = env.describe(cmd.num);
        CHECK(line.rfind(std::string(cmd.name) + "{size=" + std::to_string(cmd.size), 0) == 0);
        CHECK(line.back() == '}');
    }
}

TEST_CASE("describe: a few more decodings", "[trace]")
{
    Env env;
    env.put(iommu_ioas_unmap{.size = sizeof(iommu_ioas_unmap), .ioas_id = 2, .iova = 0x4000,
                             .length = 0x1000});
    CHECK(env.describe(IOMMU_IOAS_UNMAP) ==
          "IOMMU_IOAS_UNMAP{size=24 ioas_id=2 iova=0x4000 length=0x1000}");
    env.put(ioasid_emu_status{.size = sizeof(ioasid_emu_status), .flags = IOASID_STATUS_ALL,
                              .buf_len = 4096, .out_len = 0, .buf_uptr = 0x1234});
    CHECK(env.describe(IOASID_EMU_STATUS) ==
          "IOASID_EMU_STATUS{size=24 flags=0x1 buf_len=4096 out_len=0}");
}

TEST_CASE("describe: an unknown command is shown by its number's parts", "[trace]")
{
    Env env;
    CHECK(env.describe(_IO(IOMMUFD_TYPE, 0x7f)) == "ioctl(type=0x3b nr=0x7f size=0 dir=0)");
    CHECK(env.describe(_IO(IOASID_EMU_TYPE, 0x55), kUnmapped) ==
          "ioctl(type=0xe1 nr=0x55 size=0 dir=0)");
    CHECK(env.describe(_IOWR('a', 5, std::uint64_t)) == "ioctl(type=0x61 nr=0x5 size=8 dir=3)");
    // A known number with the wrong bits is not that command.
    CHECK(env.describe(_IOW(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY, std::uint32_t)) ==
          "ioctl(type=0x3b nr=0x80 size=4 dir=1)");
}
