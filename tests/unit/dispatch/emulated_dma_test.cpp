// IOASID_EMU_DMA (uapi/ioasid/emu.h): a bound device reads or writes IO
// virtual addresses; its unit translates them (IOTLB, then the page table
// the HWPT holds) and the bytes move to or from the client memory the IOAS
// mapped there. Faults are results: EIO, with the reason, the unit's code
// and the address, and out_done counting what moved before.
#include <catch2/catch.hpp>

#include <ioasid/emu.h>
#include <fcntl.h>
#include <ioasid/iommufd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "hardware_fixture.h"
#include "hwmodels/vtd/vtd_unit.h"

using namespace ioasid;
using namespace ioasid::test;
using hw::vtd::FaultCode;

namespace {

constexpr std::uint32_t kBadId = 9999;

std::uint32_t code(FaultCode c)
{
    return static_cast<std::uint32_t>(c);
}

struct IotlbCounters {
    std::uint64_t hits;
    std::uint64_t misses;
    std::uint64_t invalidations;
    std::uint64_t entries;
};

IotlbCounters iotlb(Client& c, const std::string& unit)
{
    auto u = unit_status(c, unit)["iotlb"];
    return {u["hits"].get<std::uint64_t>(), u["misses"].get<std::uint64_t>(),
            u["invalidations"].get<std::uint64_t>(), u["entries"].get<std::uint64_t>()};
}

} // namespace

TEST_CASE("DMA end to end: the bytes are the client's memory at user_va", "[dma]")
{
    HardwareFixture f;
    Client& c = f.client;

    auto run = [&](const char* device, std::uint64_t iova, std::uint64_t page) {
        const std::uint32_t dev = bind_ok(c, device);
        fill(c, kBufferAddr, 64 * 1024, 1);
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 64 * 1024, iova) == 0);
        attach_ok(c, dev, f.ioas);

        // Read: the device sees what the process has, from any offset.
        CHECK(dma_read_ok(c, dev, iova + 100, 8192) == bytes_at(c, kBufferAddr + 100, 8192));
        // The process changes its memory; the device sees the change.
        fill(c, kBufferAddr + page, 64, 2);
        CHECK(dma_read_ok(c, dev, iova + page, 64) == bytes_at(c, kBufferAddr + page, 64));

        // Write: the bytes land in the process's memory, nothing around them.
        const auto before = bytes_at(c, kBufferAddr, 64 * 1024);
        fill(c, kDmaBufAddr, 5000, 3);
        Dma d = dma(c, dev, iova + 3000, 5000, true);
        REQUIRE(d.rc == 0);
        CHECK(d.out.out_done == 5000);
        CHECK(d.out.out_fault_reason == IOASID_EMU_FAULT_NONE);
        CHECK(d.out.out_fault_code == 0);
        CHECK(d.out.out_fault_iova == 0);
        auto expect = before;
        const auto written = pattern(5000, 3);
        std::copy(written.begin(), written.end(), expect.begin() + 3000);
        CHECK(bytes_at(c, kBufferAddr, 64 * 1024) == expect);
    };
    SECTION("mock")
    {
        run("m0", kMockFirst, kMockPage);
    }
    SECTION("VT-d")
    {
        run("v0", 0x1000, 4096);
    }
}

TEST_CASE("DMA: sub-page offsets and shared pages", "[dma]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    fill(c, kBufferAddr, 64 * 1024, 4);

    SECTION("a mapping that starts half way into a 4 KiB page")
    {
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr + 2048, 6144, kMockFirst) == 0);
        attach_ok(c, m0, f.ioas);
        CHECK(dma_read_ok(c, m0, kMockFirst, 6144) == bytes_at(c, kBufferAddr + 2048, 6144));
        Dma d = dma(c, m0, kMockFirst + 6144, 1, false);
        CHECK(d.out.out_fault_reason == IOASID_EMU_FAULT_NOT_PRESENT);
    }
    SECTION("IOAS_COPY shares the pages: a write through one IOAS is read through the other")
    {
        const std::uint32_t ioas2 = alloc_ok(c);
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 16384, kMockFirst) == 0);
        iommu_ioas_copy copy{.size = sizeof(copy), .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE |
                                                              IOMMU_IOAS_MAP_READABLE,
                             .dst_ioas_id = ioas2, .src_ioas_id = f.ioas, .length = 8192,
                             .dst_iova = kMockFirst + (1 << 20), .src_iova = kMockFirst + 4096};
        REQUIRE(c.ioctl(IOMMU_IOAS_COPY, copy) == 0);
        const std::uint32_t m1 = bind_ok(c, "m1");
        attach_ok(c, m0, f.ioas);
        attach_ok(c, m1, ioas2);
        fill(c, kDmaBufAddr, 100, 5);
        REQUIRE(dma(c, m1, kMockFirst + (1 << 20) + 10, 100, true).rc == 0);
        CHECK(bytes_at(c, kBufferAddr + 4096 + 10, 100) == pattern(100, 5));
        CHECK(dma_read_ok(c, m0, kMockFirst + 4096 + 10, 100) == pattern(100, 5));
    }
}

TEST_CASE("DMA faults: NOT_PRESENT, PERMISSION, BLOCKED, ADDRESS_SIZE, PASID_RANGE", "[dma]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint32_t v0 = bind_ok(c, "v0");
    const std::uint32_t ioas_v = alloc_ok(c);
    fill(c, kBufferAddr, 64 * 1024, 6);

    auto check_fault = [&](const Dma& d, int reason, std::uint64_t iova, std::uint64_t done) {
        CHECK(d.rc == -EIO);
        CHECK(d.out.out_fault_reason == static_cast<std::uint32_t>(reason));
        CHECK(d.out.out_fault_iova == iova);
        CHECK(d.out.out_done == done);
    };

    SECTION("unattached: BLOCKED")
    {
        check_fault(dma(c, m0, kMockFirst, 8, false), IOASID_EMU_FAULT_BLOCKED, kMockFirst, 0);
        Dma d = dma(c, v0, 0x1000, 8, true);
        check_fault(d, IOASID_EMU_FAULT_BLOCKED, 0x1000, 0);
        CHECK(d.out.out_fault_code == code(FaultCode::pasid_entry_not_present));
    }
    SECTION("after UNMAP: NOT_PRESENT, and nothing written")
    {
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 8192, kMockFirst) == 0);
        REQUIRE(c.map_fixed(ioas_v, kBufferAddr, 8192, 0x100000) == 0);
        attach_ok(c, m0, f.ioas);
        attach_ok(c, v0, ioas_v);
        REQUIRE(dma(c, m0, kMockFirst, 8192, false).rc == 0); // cached in the IOTLB
        REQUIRE(c.unmap(f.ioas, kMockFirst, 8192) == 0);
        REQUIRE(c.unmap(ioas_v, 0x100000, 8192) == 0);
        const auto before = bytes_at(c, kBufferAddr, 8192);
        fill(c, kDmaBufAddr, 8192, 7);
        check_fault(dma(c, m0, kMockFirst, 8192, true), IOASID_EMU_FAULT_NOT_PRESENT, kMockFirst, 0);
        Dma d = dma(c, v0, 0x100000 + 4096, 16, true);
        check_fault(d, IOASID_EMU_FAULT_NOT_PRESENT, 0x100000 + 4096, 0);
        CHECK(d.out.out_fault_code == code(FaultCode::second_stage_not_present));
        CHECK(bytes_at(c, kBufferAddr, 8192) == before);
    }
    SECTION("a transfer running into a hole stops there: out_done is what moved")
    {
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 8192, kMockFirst) == 0);
        attach_ok(c, m0, f.ioas);
        fill_byte(c, kDmaBufAddr, 16384, std::byte{0xee});
        Dma d = dma(c, m0, kMockFirst + 4096, 8192, false);
        check_fault(d, IOASID_EMU_FAULT_NOT_PRESENT, kMockFirst + 8192, 4096);
        CHECK(bytes_at(c, kDmaBufAddr, 4096) == bytes_at(c, kBufferAddr + 4096, 4096));
        CHECK(bytes_at(c, kDmaBufAddr + 4096, 4096) == std::vector<std::byte>(4096, std::byte{0xee}));
        // A write the same way: the part before the hole lands.
        const auto before = bytes_at(c, kBufferAddr, 16384);
        fill(c, kDmaBufAddr, 8192, 8);
        d = dma(c, m0, kMockFirst + 6144, 8192, true);
        check_fault(d, IOASID_EMU_FAULT_NOT_PRESENT, kMockFirst + 8192, 2048);
        auto expect = before;
        const auto written = pattern(2048, 8);
        std::copy(written.begin(), written.end(), expect.begin() + 6144);
        CHECK(bytes_at(c, kBufferAddr, 16384) == expect);
    }
    SECTION("a read-only mapping refuses writes, a write-only one reads: PERMISSION")
    {
        std::uint64_t iova = kMockFirst;
        REQUIRE(c.map(f.ioas, kBufferAddr, 4096, &iova, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE) == 0);
        iova = kMockFirst + 4096;
        REQUIRE(c.map(f.ioas, kBufferAddr + 4096, 4096, &iova,
                      IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE) == 0);
        iova = 0x1000;
        REQUIRE(c.map(ioas_v, kBufferAddr, 4096, &iova, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE) == 0);
        iova = 0x2000;
        REQUIRE(c.map(ioas_v, kBufferAddr + 4096, 4096, &iova,
                      IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE) == 0);
        attach_ok(c, m0, f.ioas);
        attach_ok(c, v0, ioas_v);
        const auto before = bytes_at(c, kBufferAddr, 8192);

        CHECK(dma(c, m0, kMockFirst, 4096, false).rc == 0);
        check_fault(dma(c, m0, kMockFirst + 100, 8, true), IOASID_EMU_FAULT_PERMISSION, kMockFirst + 100, 0);
        CHECK(dma(c, m0, kMockFirst + 4096, 4096, true).rc == 0);
        check_fault(dma(c, m0, kMockFirst + 4096, 8, false), IOASID_EMU_FAULT_PERMISSION, kMockFirst + 4096, 0);
        // A read across both stops where reading is refused.
        check_fault(dma(c, m0, kMockFirst + 2048, 4096, false), IOASID_EMU_FAULT_PERMISSION, kMockFirst + 4096,
                    2048);

        Dma d = dma(c, v0, 0x1000, 8, true);
        check_fault(d, IOASID_EMU_FAULT_PERMISSION, 0x1000, 0);
        CHECK(d.out.out_fault_code == code(FaultCode::write_denied));
        // The 6.12 intel driver writes R into every second-stage leaf
        // (__domain_mapping() ORs DMA_FL_PTE_PRESENT, bit 0), so a
        // write-only mapping reads on VT-d.
        CHECK(dma(c, v0, 0x2000, 8, false).rc == 0);
        // The refused write changed nothing; the allowed one did.
        CHECK(bytes_at(c, kBufferAddr, 4096) == std::vector(before.begin(), before.begin() + 4096));
    }
    SECTION("outside the domain: ADDRESS_SIZE")
    {
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 4096, kMockLast + 1 - 4096) == 0);
        attach_ok(c, m0, f.ioas);
        attach_ok(c, v0, ioas_v);
        check_fault(dma(c, m0, 0x1000, 8, false), IOASID_EMU_FAULT_ADDRESS_SIZE, 0x1000, 0);
        check_fault(dma(c, m0, kMockFirst - 1, 2, false), IOASID_EMU_FAULT_ADDRESS_SIZE, kMockFirst - 1, 0);
        check_fault(dma(c, m0, kMockLast + 1, 8, false), IOASID_EMU_FAULT_ADDRESS_SIZE, kMockLast + 1, 0);
        check_fault(dma(c, m0, kMockLast + 1 - 4096, 8192, false), IOASID_EMU_FAULT_ADDRESS_SIZE, kMockLast + 1,
                    4096);
        check_fault(dma(c, m0, UINT64_MAX, 1, false), IOASID_EMU_FAULT_ADDRESS_SIZE, UINT64_MAX, 0);
        Dma d = dma(c, v0, 1ULL << 48, 8, false);
        check_fault(d, IOASID_EMU_FAULT_ADDRESS_SIZE, 1ULL << 48, 0);
        CHECK(d.out.out_fault_code == code(FaultCode::beyond_input_width));
    }
    SECTION("PASIDs the device cannot send: PASID_RANGE")
    {
        attach_ok(c, m0, f.ioas);
        check_fault(dma(c, m0, kMockFirst, 8, false, kDmaBufAddr, 1u << 20), IOASID_EMU_FAULT_PASID_RANGE,
                    kMockFirst, 0);
        // A PASID in range that nothing is attached to is blocked.
        check_fault(dma(c, m0, kMockFirst, 8, false, kDmaBufAddr, 5), IOASID_EMU_FAULT_BLOCKED, kMockFirst, 0);
        const std::uint32_t mnp = bind_ok(c, "mnp");
        attach_ok(c, mnp, f.ioas);
        check_fault(dma(c, mnp, kMockFirst, 8, false, kDmaBufAddr, 1), IOASID_EMU_FAULT_PASID_RANGE, kMockFirst, 0);
        check_fault(dma(c, mnp, kMockFirst, 8, false, kDmaBufAddr, 0), IOASID_EMU_FAULT_PASID_RANGE, kMockFirst, 0);
        Dma d = dma(c, v0, 0x1000, 8, false, kDmaBufAddr, 1u << 20);
        check_fault(d, IOASID_EMU_FAULT_PASID_RANGE, 0x1000, 0);
        CHECK(d.out.out_fault_code == code(FaultCode::pasid_beyond_table));
        const std::uint32_t w0 = bind_ok(c, "w0");
        d = dma(c, w0, 0x1000, 8, false, kDmaBufAddr, 1);
        check_fault(d, IOASID_EMU_FAULT_PASID_RANGE, 0x1000, 0);
        CHECK(d.out.out_fault_code == code(FaultCode::pasid_not_enabled));
    }
}

TEST_CASE("DMA: argument checks", "[dma]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 8192, kMockFirst) == 0);
    attach_ok(c, m0, f.ioas);

    SECTION("iova + length wraps -> EOVERFLOW")
    {
        CHECK(dma(c, m0, UINT64_MAX - 10, 100, false).rc == -EOVERFLOW);
        CHECK(dma(c, m0, 2, UINT64_MAX, true).rc == -EOVERFLOW);
        // Ending on the last byte is no overflow.
        CHECK(dma(c, m0, UINT64_MAX - 9, 10, false).rc == -EIO);
    }
    SECTION("length 0 moves nothing, but the device must exist")
    {
        Dma d = dma(c, m0, kMockFirst, 0, false);
        CHECK(d.rc == 0);
        CHECK(d.out.out_done == 0);
        CHECK(d.out.out_fault_reason == IOASID_EMU_FAULT_NONE);
        CHECK(dma(c, kBadId, kMockFirst, 0, false).rc == -ENOENT);
    }
    SECTION("unknown flags -> EOPNOTSUPP; unknown device -> ENOENT")
    {
        ioasid_emu_dma cmd{};
        cmd.size = sizeof(cmd);
        cmd.flags = 4;
        cmd.dev_id = m0;
        cmd.iova = kMockFirst;
        cmd.length = 8;
        cmd.buf_uptr = kDmaBufAddr;
        CHECK(c.ioctl(IOASID_EMU_DMA, cmd) == -EOPNOTSUPP);
        CHECK(dma(c, kBadId, kMockFirst, 8, false).rc == -ENOENT);
        CHECK(dma(c, f.ioas, kMockFirst, 8, false).rc == -ENOENT);
    }
    SECTION("a buffer the daemon cannot reach -> EFAULT")
    {
        CHECK(dma(c, m0, kMockFirst, 8, true, kUnmappedVa).rc == -EFAULT);
        CHECK(dma(c, m0, kMockFirst, 8, false, kUnmappedVa).rc == -EFAULT);
        CHECK(dma(c, m0, kMockFirst, 8, false, kReadOnlyAddr).rc == -EFAULT);
        // Reading from read-only memory is fine.
        CHECK(dma(c, m0, kMockFirst, 8, true, kReadOnlyAddr).rc == 0);
    }
    SECTION("size: the out_ fields are written back only when the struct has them")
    {
        constexpr std::size_t kMin = offsetof(ioasid_emu_dma, buf_uptr) + 8;
        std::vector<std::byte> raw(sizeof(ioasid_emu_dma), std::byte{0x5c});
        ioasid_emu_dma cmd{};
        cmd.size = kMin;
        cmd.dev_id = m0;
        cmd.iova = kMockFirst;
        cmd.length = 8;
        cmd.buf_uptr = kDmaBufAddr;
        std::memcpy(raw.data(), &cmd, kMin);
        CHECK(c.ioctl_bytes(IOASID_EMU_DMA, raw) == 0);
        for (std::size_t i = kMin; i < raw.size(); ++i)
            CHECK(raw[i] == std::byte{0x5c});
        cmd.size = kMin - 1;
        std::memcpy(raw.data(), &cmd, kMin);
        CHECK(c.ioctl_bytes(IOASID_EMU_DMA, raw) == -EINVAL);
    }
}

TEST_CASE("DMA: transfers larger than the daemon's bounce chunk", "[dma]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t v0 = bind_ok(c, "v0");
    const std::uint64_t iova = 0x40000000;
    const std::uint64_t length = 3 * (1 << 20) + 12345;
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 4 << 20, iova) == 0);
    attach_ok(c, v0, f.ioas);
    fill(c, kDmaBufAddr, length, 9);
    Dma d = dma(c, v0, iova + 100, length, true);
    REQUIRE(d.rc == 0);
    CHECK(d.out.out_done == length);
    CHECK(bytes_at(c, kBufferAddr + 100, length) == pattern(length, 9));
    fill_byte(c, kDmaBufAddr, length, std::byte{0});
    CHECK(dma_read_ok(c, v0, iova + 100, length) == pattern(length, 9));
    // A fault in a later chunk: out_done counts every chunk before it.
    d = dma(c, v0, iova + (4 << 20) - (2 << 20), 3 << 20, false);
    CHECK(d.rc == -EIO);
    CHECK(d.out.out_done == 2 << 20);
    CHECK(d.out.out_fault_iova == iova + (4 << 20));
}

TEST_CASE("DMA reaches only what is mapped for that device", "[dma]")
{
    HardwareFixture f;
    Client& a = f.client;
    Client b(f.services, make_hw_caller());
    const std::uint64_t iova = kMockFirst;
    fill(a, kBufferAddr, 8192, 10);
    fill(b, kBufferAddr, 8192, 11);

    const std::uint32_t a_dev = bind_ok(a, "m0");
    REQUIRE(a.map_fixed(f.ioas, kBufferAddr, 8192, iova) == 0);
    attach_ok(a, a_dev, f.ioas);

    SECTION("another context on the same unit: its own domain and memory")
    {
        // Device ids are per context: a's names nothing in b.
        CHECK(dma(b, a_dev, iova, 8, false).rc == -ENOENT);
        const std::uint32_t b_ioas = alloc_ok(b);
        const std::uint32_t b_dev = bind_ok(b, "m1");
        REQUIRE(b.map_fixed(b_ioas, kBufferAddr, 4096, iova) == 0);
        attach_ok(b, b_dev, b_ioas);
        CHECK(dma_read_ok(a, a_dev, iova, 8192) == pattern(8192, 10));
        CHECK(dma_read_ok(b, b_dev, iova, 4096) == pattern(4096, 11));
        // What only a mapped is not there for b's device.
        Dma d = dma(b, b_dev, iova + 4096, 8, false);
        CHECK(d.rc == -EIO);
        CHECK(d.out.out_fault_reason == IOASID_EMU_FAULT_NOT_PRESENT);
        // b's writes land in b's memory.
        fill(b, kDmaBufAddr, 4096, 12);
        REQUIRE(dma(b, b_dev, iova, 4096, true).rc == 0);
        CHECK(bytes_at(b, kBufferAddr, 4096) == pattern(4096, 12));
        CHECK(bytes_at(a, kBufferAddr, 8192) == pattern(8192, 10));
    }
    SECTION("another IOAS of the same context")
    {
        const std::uint32_t ioas2 = alloc_ok(a);
        const std::uint32_t m1 = bind_ok(a, "m1");
        REQUIRE(a.map_fixed(ioas2, kBufferAddr + 65536, 4096, iova + 65536) == 0);
        attach_ok(a, m1, ioas2);
        Dma d = dma(a, m1, iova, 8, false);
        CHECK(d.out.out_fault_reason == IOASID_EMU_FAULT_NOT_PRESENT);
        d = dma(a, a_dev, iova + 65536, 8, false);
        CHECK(d.out.out_fault_reason == IOASID_EMU_FAULT_NOT_PRESENT);
    }
    SECTION("a device bound elsewhere cannot be driven from here")
    {
        std::uint32_t id = 0;
        CHECK(bind(b, "m0", &id) == -EBUSY);
    }
}

TEST_CASE("DMA while the attachment is replaced", "[dma]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint32_t ioas2 = alloc_ok(c);
    const std::uint64_t iova = kMockFirst;
    fill(c, kBufferAddr, 8192, 13);
    fill(c, kBufferAddr + 65536, 8192, 14);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 8192, iova) == 0);
    REQUIRE(c.map_fixed(ioas2, kBufferAddr + 65536, 8192, iova) == 0);

    attach_ok(c, m0, f.ioas);
    fill(c, kDmaBufAddr, 100, 15);
    REQUIRE(dma(c, m0, iova, 100, true).rc == 0);
    attach_ok(c, m0, ioas2);
    fill(c, kDmaBufAddr, 100, 16);
    REQUIRE(dma(c, m0, iova, 100, true).rc == 0);
    CHECK(bytes_at(c, kBufferAddr, 100) == pattern(100, 15));
    CHECK(bytes_at(c, kBufferAddr + 65536, 100) == pattern(100, 16));
    // The first IOAS is free: its mappings can go while the device works.
    REQUIRE(c.unmap(f.ioas, iova, 8192) == 0);
    CHECK(dma_read_ok(c, m0, iova, 100) == pattern(100, 16));
    REQUIRE(c.unmap(ioas2, iova, 8192) == 0);
    CHECK(dma(c, m0, iova, 100, false).out.out_fault_reason == IOASID_EMU_FAULT_NOT_PRESENT);
}

TEST_CASE("DMA: the IOTLB counters in the status report", "[dma]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 64 * 1024, kMockFirst) == 0);
    attach_ok(c, m0, f.ioas);

    const IotlbCounters start = iotlb(c, "mock0");
    CHECK(start.hits == 0);
    CHECK(start.misses == 0);
    CHECK(start.entries == 0);
    // One 2 KiB page: a miss, then a hit.
    REQUIRE(dma(c, m0, kMockFirst, 8, false).rc == 0);
    IotlbCounters now = iotlb(c, "mock0");
    CHECK(now.misses == 1);
    CHECK(now.hits == 0);
    CHECK(now.entries == 1);
    REQUIRE(dma(c, m0, kMockFirst + 100, 8, true).rc == 0);
    now = iotlb(c, "mock0");
    CHECK(now.misses == 1);
    CHECK(now.hits == 1);
    // Three pages, the first cached.
    REQUIRE(dma(c, m0, kMockFirst, 3 * kMockPage, false).rc == 0);
    now = iotlb(c, "mock0");
    CHECK(now.misses == 3);
    CHECK(now.hits == 2);
    CHECK(now.entries == 3);
    // An unmap invalidates; the next access misses (and faults).
    const std::uint64_t invalidations = now.invalidations;
    REQUIRE(c.unmap(f.ioas, kMockFirst, 64 * 1024) == 0);
    now = iotlb(c, "mock0");
    CHECK(now.invalidations > invalidations);
    CHECK(now.entries == 0);
    CHECK(dma(c, m0, kMockFirst, 8, false).rc == -EIO);
    now = iotlb(c, "mock0");
    CHECK(now.misses == 4);
    // Other units saw nothing.
    CHECK(iotlb(c, "mock1").misses == 0);
    CHECK(iotlb(c, "vtd0").hits == 0);
}

TEST_CASE("DMA through more pages than the IOTLB holds", "[dma]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint64_t length = 6 << 20; // 3072 mock pages
    fill(c, kBufferAddr, 2 * length, 20);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 2 * length, kMockFirst) == 0);
    attach_ok(c, m0, f.ioas);
    CHECK(dma_read_ok(c, m0, kMockFirst, length) == bytes_at(c, kBufferAddr, length));
    CHECK(dma_read_ok(c, m0, kMockFirst + length, length) == bytes_at(c, kBufferAddr + length, length));
    CHECK(unit_status(c, "mock0")["iotlb"]["evictions"].get<std::uint64_t>() > 0);
    CHECK(dma_read_ok(c, m0, kMockFirst, length) == bytes_at(c, kBufferAddr, length));
}

TEST_CASE("DMA: pages shared by IOAS_COPY stay pinned for the copy after the source is unmapped", "[dma]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint32_t m1 = bind_ok(c, "m1");
    const std::uint32_t ioas2 = alloc_ok(c);
    fill(c, kBufferAddr, 16384, 21);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 16384, kMockFirst) == 0);
    attach_ok(c, m0, f.ioas);
    attach_ok(c, m1, ioas2);
    iommu_ioas_copy copy{.size = sizeof(copy),
                         .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE,
                         .dst_ioas_id = ioas2, .src_ioas_id = f.ioas, .length = 16384,
                         .dst_iova = kMockFirst, .src_iova = kMockFirst};
    REQUIRE(c.ioctl(IOMMU_IOAS_COPY, copy) == 0);
    REQUIRE(c.unmap(f.ioas, kMockFirst, 16384) == 0);
    CHECK(dma(c, m0, kMockFirst, 8, false).out.out_fault_reason == IOASID_EMU_FAULT_NOT_PRESENT);
    CHECK(dma_read_ok(c, m1, kMockFirst, 16384) == pattern(16384, 21));
    fill(c, kDmaBufAddr, 64, 22);
    REQUIRE(dma(c, m1, kMockFirst + 8000, 64, true).rc == 0);
    CHECK(bytes_at(c, kBufferAddr + 8000, 64) == pattern(64, 22));
}

TEST_CASE("DMA into a memfd mapped with IOMMU_IOAS_MAP_FILE", "[dma]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t v0 = bind_ok(c, "v0");
    memory::UniqueFd file(::memfd_create("dma-test", MFD_CLOEXEC));
    REQUIRE(file);
    REQUIRE(::ftruncate(file.get(), 64 * 1024) == 0);
    const auto content = pattern(64 * 1024, 23);
    REQUIRE(::pwrite(file.get(), content.data(), content.size(), 0) == static_cast<ssize_t>(content.size()));
    c.buffer().add_fd(7, memory::UniqueFd(::fcntl(file.get(), F_DUPFD_CLOEXEC, 0)));
    iommu_ioas_map_file map{.size = sizeof(map),
                            .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE,
                            .ioas_id = f.ioas, .fd = 7, .start = 8192, .length = 16384, .iova = 0x100000};
    REQUIRE(c.ioctl(IOMMU_IOAS_MAP_FILE, map) == 0);
    attach_ok(c, v0, f.ioas);
    CHECK(dma_read_ok(c, v0, 0x100000, 16384) == std::vector(content.begin() + 8192, content.begin() + 8192 + 16384));
    fill(c, kDmaBufAddr, 100, 24);
    REQUIRE(dma(c, v0, 0x100000 + 4000, 100, true).rc == 0);
    std::vector<std::byte> back(100);
    REQUIRE(::pread(file.get(), back.data(), back.size(), 8192 + 4000) == 100);
    CHECK(back == pattern(100, 24));
}

TEST_CASE("Two contexts build and drop domains of one unit at the same time", "[dma][concurrency]")
{
    // The unit's table memory is shared by every domain of the unit, so by
    // contexts that run in parallel; each thread checks its own DMA.
    // Catch2 assertions are not thread-safe: threads count failures.
    HardwareServices hw;
    constexpr int kAreas = 96;     // one level-0 table each
    constexpr int kRounds = 25;
    constexpr std::uint64_t kStride = 1 << 20;
    std::atomic<int> failures{0};
    auto worker = [&](const char* device, unsigned seed) {
        Client c(hw.services, make_hw_caller());
        const std::uint32_t ioas = alloc_ok(c);
        const std::uint32_t dev = bind_ok(c, device);
        fill(c, kBufferAddr, kAreas * kPage4K, seed);
        for (int i = 0; i < kAreas; ++i)
            if (c.map_fixed(ioas, kBufferAddr + i * kPage4K, kPage4K, kMockFirst + i * kStride) != 0)
                ++failures;
        for (int round = 0; round < kRounds; ++round) {
            std::uint32_t hwpt = 0;
            if (hwpt_alloc(c, dev, ioas, 0, &hwpt) != 0) {
                ++failures;
                continue;
            }
            std::uint32_t pt = hwpt;
            if (attach(c, dev, &pt) != 0)
                ++failures;
            for (int i = 0; i < kAreas; i += 7) {
                Dma d = dma(c, dev, kMockFirst + i * kStride, 64, false);
                if (d.rc != 0 || bytes_at(c, kDmaBufAddr, 64) != bytes_at(c, kBufferAddr + i * kPage4K, 64))
                    ++failures;
            }
            if (detach(c, dev) != 0 || c.destroy(hwpt) != 0)
                ++failures;
        }
    };
    std::thread a(worker, "m0", 30);
    std::thread b(worker, "m1", 31);
    worker("ga", 32);
    a.join();
    b.join();
    CHECK(failures == 0);
}
