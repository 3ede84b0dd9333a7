// An Arm SMMUv3 unit end to end through the dispatcher, as a client drives
// the node: GET_HW_INFO type 2 with the ID registers (arm_smmu_hw_info()),
// the HWPT_ALLOC flags arm_smmu_domain_alloc_paging_flags() takes and
// refuses, attach and the STE and CD it programs, IOAS_MAP and DMA landing
// in client memory through a stage-1 table, the dirty bitmap after a DMA
// write, the software MSI window as a hole in IOVA_RANGES, and a unit
// whose only granule is 64K, which the IOAS refuses as
// iopt_table_add_domain() does.
#include <catch2/catch.hpp>

#include <ioasid/emu.h>
#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "hardware_fixture.h"
#include "hwmodels/smmuv3/smmuv3_unit.h"

using namespace ioasid;
using namespace ioasid::test;
using hw::smmuv3::SmmuConfig;
using hw::smmuv3::SmmuUnit;

namespace {

// Units: smmu0 (default: both stages, HTTU HD, all granules, 20-bit
// SSIDs), smmu64k (64K granule only), smmus1 (stage 1 only, no HTTU).
// Devices: s0 (20-bit PASIDs), s8 (8-bit) on smmu0; k0 on smmu64k; n0 (no
// PASID) on smmus1.
struct SmmuServices {
    core::CoreServices services;
    SmmuServices()
    {
        services.hardware.add_unit(std::make_unique<SmmuUnit>("smmu0", SmmuConfig{}, services.phys));
        SmmuConfig big;
        big.gran4k = big.gran16k = false;
        services.hardware.add_unit(std::make_unique<SmmuUnit>("smmu64k", big, services.phys));
        SmmuConfig s1;
        s1.stage2 = false;
        s1.httu = hw::smmuv3::Httu::none;
        services.hardware.add_unit(std::make_unique<SmmuUnit>("smmus1", s1, services.phys));
        services.hardware.add_device("smmu0", hw::EndpointConfig{"s0", 0x50, 20, true}, "g-s0", false, "vfio-s0");
        services.hardware.add_device("smmu0", hw::EndpointConfig{"s8", 0x51, 8, true}, "g-s8", false, "vfio-s8");
        services.hardware.add_device("smmu64k", hw::EndpointConfig{"k0", 0x52, 20, true}, "g-k0", false,
                                     "vfio-k0");
        services.hardware.add_device("smmus1", hw::EndpointConfig{"n0", 0x53, 0, true}, "g-n0", false, "vfio-n0");
    }
};

struct SmmuFixture : SmmuServices {
    Client client{services, make_hw_caller()};
    std::uint32_t ioas = alloc_ok(client);

    SmmuUnit& unit(const std::string& name)
    {
        for (const auto& u : services.hardware.units())
            if (u->name() == name)
                return dynamic_cast<SmmuUnit&>(*u);
        throw std::runtime_error("no unit " + name);
    }
};

std::vector<std::byte> le32(std::initializer_list<std::uint32_t> words)
{
    std::vector<std::byte> out;
    for (std::uint32_t v : words)
        for (unsigned i = 0; i < 4; ++i)
            out.push_back(static_cast<std::byte>(v >> (8 * i)));
    return out;
}

} // namespace

TEST_CASE("smmuv3: GET_HW_INFO is type 2 with IDR0-5, IIDR and AIDR", "[smmuv3][hw_info]")
{
    SmmuFixture f;
    Client& c = f.client;
    HwInfoAnswer r = get_hw_info(c, bind_ok(c, "s0"), 64);
    REQUIRE(r.rc == 0);
    CHECK(r.out.out_data_type == 2); // IOMMU_HW_INFO_TYPE_ARM_SMMUV3
    CHECK(r.out.data_len == 40);
    // flags, __reserved, IDR0-5 (see smmuv3_unit_test), IIDR, AIDR; the
    // rest of the buffer zero-filled.
    auto expect = le32({0, 0, 0x094c309b, 0x0a730510, 0, 0, 0, 0x75, 0x4832043b, 0x01});
    expect.resize(64, std::byte{0});
    CHECK(std::vector(r.data.begin(), r.data.begin() + 64) == expect);
    CHECK(r.data[64] == kHwInfoFill); // nothing past data_len
    CHECK(r.out.out_capabilities == IOMMU_HW_CAP_DIRTY_TRACKING);
    CHECK(r.out.out_max_pasid_log2 == 20);
    CHECK(get_hw_info(c, bind_ok(c, "s8"), 40).out.out_max_pasid_log2 == 8);

    // A short buffer takes the first bytes; the unit without HTTU claims
    // no dirty tracking.
    HwInfoAnswer n = get_hw_info(c, bind_ok(c, "n0"), 12);
    REQUIRE(n.rc == 0);
    CHECK(n.out.data_len == 40);
    CHECK(std::vector(n.data.begin() + 8, n.data.begin() + 12) ==
          le32({f.unit("smmus1").registers().idr[0]}));
    CHECK(n.data[12] == kHwInfoFill);
    CHECK(n.out.out_capabilities == 0);
    CHECK(n.out.out_max_pasid_log2 == 0);
}

TEST_CASE("smmuv3: HWPT_ALLOC takes dirty tracking on stage 1, a nest parent on stage 2", "[smmuv3][hwpt]")
{
    SmmuFixture f;
    Client& c = f.client;
    const std::uint32_t s0 = bind_ok(c, "s0");
    const std::uint32_t n0 = bind_ok(c, "n0");
    std::uint32_t id = 0;
    CHECK(hwpt_alloc(c, s0, f.ioas, 0, &id) == 0);
    CHECK(pt_dump(c, id)["format"] == "smmuv3-stage1");
    CHECK(hwpt_alloc(c, s0, f.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &id) == 0);
    CHECK(pt_dump(c, id)["format"] == "smmuv3-stage1");
    CHECK(hwpt_alloc(c, s0, f.ioas, IOMMU_HWPT_ALLOC_NEST_PARENT, &id) == 0);
    CHECK(pt_dump(c, id)["format"] == "smmuv3-stage2");
    CHECK(hwpt_alloc(c, s0, f.ioas, IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &id) ==
          -EOPNOTSUPP);
    // Stage 1 only, no HTTU: neither a nest parent nor dirty tracking.
    CHECK(hwpt_alloc(c, n0, f.ioas, IOMMU_HWPT_ALLOC_NEST_PARENT, &id) == -EOPNOTSUPP);
    CHECK(hwpt_alloc(c, n0, f.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &id) == -EOPNOTSUPP);
    CHECK(hwpt_alloc(c, n0, f.ioas, 0, &id) == 0);
}

TEST_CASE("smmuv3: attach programs the STE and CD 0; DMA lands in client memory", "[smmuv3][dma]")
{
    SmmuFixture f;
    Client& c = f.client;
    const std::uint32_t s0 = bind_ok(c, "s0");
    const std::uint32_t hwpt = attach_ok(c, s0, f.ioas);
    SmmuUnit& unit = f.unit("smmu0");
    // V | Config stage 1 | S1Fmt 2-level, S1CDMAX 20; S1DSS 2 (CD 0).
    auto ste = unit.ste(0x50);
    REQUIRE(ste);
    CHECK(((*ste)[0] & 0x3f) == 0x2b);
    CHECK((*ste)[0] >> 59 == 20);
    CHECK((*ste)[1] == 0xd6);
    auto cd0 = unit.cd(0x50, 0);
    REQUIRE(cd0);
    CHECK(((*cd0)[0] & 0x80000000) != 0); // V
    CHECK((*cd0)[1] == pt_dump(c, hwpt)["root"].get<std::uint64_t>());

    fill(c, kBufferAddr, 64 * 1024, 1);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 64 * 1024, 0x100000) == 0);
    CHECK(dma_read_ok(c, s0, 0x100000 + 100, 8192) == bytes_at(c, kBufferAddr + 100, 8192));
    fill(c, kDmaBufAddr, 5000, 3);
    Dma d = dma(c, s0, 0x100000 + 3000, 5000, true);
    REQUIRE(d.rc == 0);
    CHECK(d.out.out_done == 5000);
    CHECK(bytes_at(c, kBufferAddr + 3000, 5000) == pattern(5000, 3));

    // Unmapped: F_TRANSLATION, out_done counting what moved.
    d = dma(c, s0, 0x100000 + 60 * 1024, 8192, false);
    CHECK(d.rc == -EIO);
    CHECK(d.out.out_done == 4096);
    CHECK(d.out.out_fault_iova == 0x100000 + 64 * 1024);
    CHECK(d.out.out_fault_code == 0x10);

    // Detached: the abort STE, and DMA terminated without an event.
    REQUIRE(detach(c, s0) == 0);
    CHECK(unit.ste(0x50) == hw::smmuv3::Ste{1, 0, 0, 0, 0, 0, 0, 0});
    d = dma(c, s0, 0x100000, 8, false);
    CHECK(d.rc == -EIO);
    CHECK(d.out.out_fault_code == 0);
}

TEST_CASE("smmuv3: the dirty bitmap after a DMA write", "[smmuv3][dirty]")
{
    SmmuFixture f;
    Client& c = f.client;
    const std::uint32_t s0 = bind_ok(c, "s0");
    const std::uint32_t hwpt = hwpt_alloc_ok(c, s0, f.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    attach_ok(c, s0, hwpt);
    // HA and HD in CD 0.
    CHECK(((*f.unit("smmu0").cd(0x50, 0))[0] >> 42 & 3) == 3);
    fill(c, kBufferAddr, 64 * 1024, 1);
    constexpr std::uint64_t iova = 0x200000;
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 64 * 1024, iova) == 0);
    REQUIRE(set_dirty_tracking(c, hwpt, true) == 0);

    fill(c, kDmaBufAddr, 16, 4);
    REQUIRE(dma(c, s0, iova + 5 * 4096 + 8, 16, true).rc == 0);
    REQUIRE(dma_read_ok(c, s0, iova + 9 * 4096, 64).size() == 64);

    constexpr std::uint64_t kBitmap = kDmaBufAddr + (4 << 20);
    auto read = [&](std::uint32_t flags) {
        std::uint64_t word = 0;
        c.write(kBitmap, std::as_bytes(std::span(&word, 1)));
        REQUIRE(get_dirty_bitmap(c, hwpt, iova, 64 * 1024, 4096, kBitmap, flags) == 0);
        c.read(kBitmap, std::as_writable_bytes(std::span(&word, 1)));
        return word;
    };
    // Only the written page: the 64 KiB area is mapped with 4 KiB pages.
    CHECK(read(IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) == (1u << 5));
    CHECK(read(0) == (1u << 5));
    CHECK(read(0) == 0);
    // Written again after the clear: the hardware clears AP[2] again.
    REQUIRE(dma(c, s0, iova + 2 * 4096, 8, true).rc == 0);
    CHECK(read(0) == (1u << 2));
}

TEST_CASE("smmuv3: IOVA_RANGES has a hole at the MSI window and ends at the input size", "[smmuv3][ioas]")
{
    SmmuFixture f;
    Client& c = f.client;
    attach_ok(c, bind_ok(c, "s0"), f.ioas);
    const RangeList expect = {{0, 0x7ffffff}, {0x8100000, 0xffffffffffff}};
    CHECK(ranges_of(c, f.ioas) == expect);
    std::uint64_t at = 0x8000000;
    CHECK(c.map(f.ioas, kBufferAddr, 4096, &at,
                IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE) != 0);
}

TEST_CASE("smmuv3: a 64K-granule unit's domain is refused by the IOAS", "[smmuv3][ioas]")
{
    SmmuFixture f;
    Client& c = f.client;
    const std::uint32_t k0 = bind_ok(c, "k0");
    // arm_lpae_restrict_pgsizes() gives 64K pages; iopt_table_add_domain()
    // needs pages no larger than PAGE_SIZE.
    std::uint32_t pt = f.ioas;
    CHECK(attach(c, k0, &pt) == -EINVAL);
    std::uint32_t id = 0;
    CHECK(hwpt_alloc(c, k0, f.ioas, 0, &id) == -EINVAL);
}
