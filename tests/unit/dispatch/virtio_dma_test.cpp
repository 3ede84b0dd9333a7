// A virtio-iommu end to end through the dispatcher: GET_HW_INFO (no
// type), HWPT_ALLOC refusals, the IOAS's usable ranges around the MSI
// region PROBE reports, maps there or beyond input_range failing as
// iopt_check_iova() fails them, DMA through the device's mappings, the
// dump of those mappings, and attachments moving between domains.
#include <catch2/catch.hpp>

#include <ioasid/emu.h>
#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "hardware_fixture.h"
#include "hwmodels/virtio/virtio_unit.h"

using namespace ioasid;
using namespace ioasid::test;
using hw::virtio::pack_fault;

namespace {

constexpr std::uint64_t kInputLast = (1ULL << 39) - 1;

struct VirtioServices {
    core::CoreServices services;
    VirtioServices()
    {
        services.hardware.add_unit(
            std::make_unique<hw::virtio::VirtioUnit>("viommu0", hw::virtio::DeviceConfig{}));
        services.hardware.add_device("viommu0", hw::EndpointConfig{"vi0", 0x10, 0, true}, "g-vi0", false,
                                     "vfio-vi0");
        services.hardware.add_device("viommu0", hw::EndpointConfig{"vi1", 0x18, 0, true}, "g-vi1", false,
                                     "vfio-vi1");
    }
};

struct VirtioFixture : VirtioServices {
    Client client{services, make_hw_caller()};
    std::uint32_t ioas = alloc_ok(client);

    hw::virtio::VirtioUnit& unit()
    {
        return static_cast<hw::virtio::VirtioUnit&>(*services.hardware.units().front());
    }
};

} // namespace

TEST_CASE("virtio: GET_HW_INFO reports no type and no data; HWPT_ALLOC takes no flags", "[virtio]")
{
    VirtioFixture f;
    Client& c = f.client;
    const std::uint32_t vi0 = bind_ok(c, "vi0");
    fill_byte(c, kArrayAddr, 64, std::byte{0xaa});
    iommu_hw_info cmd{};
    cmd.size = sizeof(cmd);
    cmd.dev_id = vi0;
    cmd.data_len = 16;
    cmd.data_uptr = kArrayAddr;
    REQUIRE(c.ioctl(IOMMU_GET_HW_INFO, cmd) == 0);
    CHECK(cmd.out_data_type == IOMMU_HW_INFO_TYPE_NONE);
    CHECK(cmd.data_len == 0);
    CHECK(cmd.out_capabilities == 0);
    CHECK(cmd.out_max_pasid_log2 == 0);
    CHECK(bytes_at(c, kArrayAddr, 16) == std::vector<std::byte>(16, std::byte{0}));
    CHECK(value_at<std::uint8_t>(c, kArrayAddr + 16) == 0xaa);

    std::uint32_t hwpt = 0;
    CHECK(hwpt_alloc(c, vi0, f.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt) == -EOPNOTSUPP);
    CHECK(hwpt_alloc(c, vi0, f.ioas, IOMMU_HWPT_ALLOC_NEST_PARENT, &hwpt) == -EOPNOTSUPP);
    CHECK(hwpt_alloc(c, vi0, f.ioas, IOMMU_HWPT_ALLOC_PASID, &hwpt) == -EOPNOTSUPP);
    CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 0);
}

TEST_CASE("virtio: the IOAS keeps out of the MSI region and beyond input_range", "[virtio]")
{
    VirtioFixture f;
    Client& c = f.client;
    const std::uint32_t vi0 = bind_ok(c, "vi0");

    SECTION("attached: the ranges around the hole")
    {
        attach_ok(c, vi0, f.ioas);
        CHECK(ranges_of(c, f.ioas) == RangeList{{0, 0xfedfffff}, {0xfef00000, kInputLast}});
        CHECK(c.map_fixed(f.ioas, kBufferAddr, 4096, 0xfee00000) == -EINVAL);
        CHECK(c.map_fixed(f.ioas, kBufferAddr, 8192, 0xfedff000) == -EINVAL);
        CHECK(c.map_fixed(f.ioas, kBufferAddr, 4096, kInputLast + 1) == -EINVAL);
        CHECK(c.map_fixed(f.ioas, kBufferAddr, 4096, 0xfef00000) == 0);
    }
    SECTION("a mapping in the hole keeps the device out")
    {
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 4096, 0xfee01000) == 0);
        std::uint32_t pt = f.ioas;
        CHECK(attach(c, vi0, &pt) == -EADDRINUSE);
    }
}

TEST_CASE("virtio: DMA through the device's mappings, and its faults", "[virtio]")
{
    VirtioFixture f;
    Client& c = f.client;
    const std::uint32_t vi0 = bind_ok(c, "vi0");
    fill(c, kBufferAddr, 0x40000, 7);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 0x3000, 0x1000) == 0);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr + 0x10000, 0x30000, 0x400000) == 0);
    const std::uint32_t hwpt = attach_ok(c, vi0, f.ioas);

    CHECK(dma_read_ok(c, vi0, 0x1800, 0x2000) == bytes_at(c, kBufferAddr + 0x800, 0x2000));
    CHECK(dma_read_ok(c, vi0, 0x40fff0, 0x20) == bytes_at(c, kBufferAddr + 0x1fff0, 0x20));
    fill(c, kDmaBufAddr, 0x1234, 8);
    Dma d = dma(c, vi0, 0x400100, 0x1234, true);
    REQUIRE(d.rc == 0);
    CHECK(bytes_at(c, kBufferAddr + 0x10100, 0x1234) == pattern(0x1234, 8));

    // One dump entry per mapping the device holds, one per map_pages()
    // call as iommu_pgsize() makes them: the first map's IOVA and memory
    // differ in alignment, so it is one run of three 4 KiB pages; the
    // second, 192 KiB at 4 MiB, became 128 KiB + 64 KiB.
    const auto dump = pt_dump(c, hwpt);
    CHECK(dump["format"] == "virtio-iommu-mappings (no page table)");
    CHECK(dump["levels"] == 0);
    CHECK(leaves_of(dump) ==
          RangeList{{0x1000, 0x3000}, {0x400000, 0x20000}, {0x420000, 0x10000}});
    for (const auto& e : dump["entries"])
        CHECK_THAT(e["fields"].get<std::string>(), Catch::EndsWith("READ WRITE"));

    d = dma(c, vi0, 0x4000, 8, false);
    CHECK(d.rc == -EIO);
    CHECK(d.out.out_fault_reason == IOASID_EMU_FAULT_NOT_PRESENT);
    CHECK(d.out.out_fault_code == pack_fault(2, 0x101)); // MAPPING, READ | ADDRESS
    d = dma(c, vi0, 0xfee00000, 4, true);
    CHECK(d.out.out_fault_code == pack_fault(2, 0x102)); // MAPPING, WRITE | ADDRESS
    d = dma(c, vi0, kInputLast + 1, 4, false);
    CHECK(d.out.out_fault_reason == IOASID_EMU_FAULT_ADDRESS_SIZE);

    // IOAS_UNMAP sends UNMAP for whole mappings; the device forgets them.
    REQUIRE(c.unmap(f.ioas, 0x1000, 0x3000) == 0);
    CHECK(leaves_of(pt_dump(c, hwpt)) == RangeList{{0x400000, 0x20000}, {0x420000, 0x10000}});
    d = dma(c, vi0, 0x1000, 8, false);
    CHECK(d.out.out_fault_reason == IOASID_EMU_FAULT_NOT_PRESENT);

    // Detached, the endpoint is in no domain: a DOMAIN fault.
    REQUIRE(detach(c, vi0) == 0);
    d = dma(c, vi0, 0x400000, 8, false);
    CHECK(d.out.out_fault_reason == IOASID_EMU_FAULT_BLOCKED);
    CHECK(d.out.out_fault_code == pack_fault(1, 0x101));
}

TEST_CASE("virtio: endpoints share and leave domains; the driver replays what it mapped", "[virtio]")
{
    VirtioFixture f;
    Client& c = f.client;
    const std::uint32_t vi0 = bind_ok(c, "vi0");
    const std::uint32_t vi1 = bind_ok(c, "vi1");
    fill(c, kBufferAddr, 0x10000, 9);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 0x10000, 0x100000) == 0);
    const std::uint32_t a = hwpt_alloc_ok(c, vi0, f.ioas);
    attach_ok(c, vi0, a);
    attach_ok(c, vi1, a); // one domain, two endpoints

    // vi0 leaves; the domain lives on in the device for vi1.
    REQUIRE(detach(c, vi0) == 0);
    CHECK(dma_read_ok(c, vi1, 0x100000, 64) == bytes_at(c, kBufferAddr, 64));

    // vi1 moves to a domain of its own (a replace): the device drops the
    // first domain with its last endpoint ...
    const std::uint32_t b = hwpt_alloc_ok(c, vi1, f.ioas);
    attach_ok(c, vi1, b);
    CHECK(leaves_of(pt_dump(c, a)).empty());
    CHECK(dma_read_ok(c, vi1, 0x100040, 64) == bytes_at(c, kBufferAddr + 0x40, 64));
    // ... and rebuilds it from the driver's tree when vi0 comes back.
    attach_ok(c, vi0, a);
    CHECK(leaves_of(pt_dump(c, a)) == RangeList{{0x100000, 0x10000}});
    CHECK(dma_read_ok(c, vi0, 0x10ff00, 0x100) == bytes_at(c, kBufferAddr + 0xff00, 0x100));
    CHECK(f.unit().device().domain_exists(1));
}
