// Nested HWPTs of the selftest mock through the dispatcher: IOMMU_HWPT_ALLOC
// over a nesting parent, IOMMU_HWPT_INVALIDATE, IOMMU_TEST_OP_MD_CHECK_IOTLB,
// and devices attached to nested HWPTs, against the kernel (6.12):
// hw_pagetable.c iommufd_hwpt_nested_alloc(), iommufd_hwpt_alloc(),
// iommufd_hwpt_invalidate(); include/linux/iommu.h
// __iommu_copy_struct_from_user(_array)(); selftest.c
// mock_domain_alloc_user(), mock_domain_cache_invalidate_user(),
// iommufd_test_md_check_iotlb(); device.c iommufd_device_do_replace().
#include <catch2/catch.hpp>

#include <ioasid/emu.h>
#include <ioasid/iommufd.h>
#include <ioasid/selftest.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "hardware_fixture.h"

using namespace ioasid;
using namespace ioasid::test;

namespace {

constexpr std::uint32_t kParent = IOMMU_HWPT_ALLOC_NEST_PARENT;
constexpr std::uint64_t kDataAddr = kArrayAddr;
constexpr std::uint64_t kInvAddr = kArrayAddr + 0x1000;
// The last byte of the array region: a struct put here runs off the end.
constexpr std::uint64_t kArrayEnd = kArrayAddr + kArrayRegion;

int alloc_nested(Client& c, std::uint32_t dev, std::uint32_t parent, std::uint32_t* out,
                 std::uint32_t iotlb = IOMMU_TEST_IOTLB_DEFAULT, std::uint32_t len = 4,
                 std::uint32_t type = IOMMU_HWPT_DATA_SELFTEST, std::uint64_t uptr = kDataAddr,
                 std::uint32_t flags = 0)
{
    put_value(c, kDataAddr, iommu_hwpt_selftest{iotlb});
    iommu_hwpt_alloc cmd = hwpt_alloc_cmd(dev, parent, flags);
    cmd.data_type = type;
    cmd.data_len = len;
    cmd.data_uptr = uptr;
    int rc = c.ioctl(IOMMU_HWPT_ALLOC, cmd);
    if (out)
        *out = cmd.out_hwpt_id;
    return rc;
}

std::uint32_t alloc_nested_ok(Client& c, std::uint32_t dev, std::uint32_t parent,
                              std::uint32_t iotlb = IOMMU_TEST_IOTLB_DEFAULT)
{
    std::uint32_t id = 0;
    REQUIRE(alloc_nested(c, dev, parent, &id, iotlb) == 0);
    return id;
}

int check_iotlb(Client& c, std::uint32_t hwpt, std::uint32_t entry, std::uint32_t expected)
{
    iommu_test_cmd cmd{};
    cmd.size = sizeof(cmd);
    cmd.op = IOMMU_TEST_OP_MD_CHECK_IOTLB;
    cmd.id = hwpt;
    cmd.check_iotlb.id = entry;
    cmd.check_iotlb.iotlb = expected;
    return c.ioctl(IOMMU_TEST_CMD, cmd);
}

bool iotlb_is(Client& c, std::uint32_t hwpt, std::vector<std::uint32_t> expected)
{
    for (std::uint32_t i = 0; i < expected.size(); ++i)
        if (check_iotlb(c, hwpt, i, expected[i]) != 0)
            return false;
    return true;
}

struct Invalidation {
    int rc;
    std::uint32_t entry_num;
};

Invalidation invalidate(Client& c, std::uint32_t hwpt, const std::vector<iommu_hwpt_invalidate_selftest>& entries,
                        std::uint32_t entry_num, std::uint32_t entry_len = sizeof(iommu_hwpt_invalidate_selftest),
                        std::uint32_t type = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, std::uint64_t uptr = kInvAddr,
                        std::uint32_t reserved = 0)
{
    if (!entries.empty())
        c.write(kInvAddr, std::as_bytes(std::span(entries)));
    iommu_hwpt_invalidate cmd{.size = sizeof(cmd),
                              .hwpt_id = hwpt,
                              .data_uptr = uptr,
                              .data_type = type,
                              .entry_len = entry_len,
                              .entry_num = entry_num,
                              .__reserved = reserved};
    int rc = c.ioctl(IOMMU_HWPT_INVALIDATE, cmd);
    return {rc, cmd.entry_num};
}

constexpr std::uint32_t kDefault = IOMMU_TEST_IOTLB_DEFAULT;

struct NestedFixture : HardwareFixture {
    Client& c = client;
    std::uint32_t m0 = bind_ok(c, "m0");
    std::uint32_t parent = hwpt_alloc_ok(c, m0, ioas, kParent);
};

} // namespace

TEST_CASE("HWPT_ALLOC nested: the mock's data rules (mock_domain_alloc_user())", "[hwpt_nested]")
{
    NestedFixture f;
    Client& c = f.c;
    const std::size_t objects = c.ctx().objects().size();

    SECTION("a type the mock does not define -> EOPNOTSUPP, before the data is read")
    {
        CHECK(alloc_nested(c, f.m0, f.parent, nullptr, kDefault, 4, IOMMU_HWPT_DATA_SELFTEST + 1) == -EOPNOTSUPP);
        CHECK(alloc_nested(c, f.m0, f.parent, nullptr, kDefault, 4, IOMMU_HWPT_DATA_VTD_S1, 0) == -EOPNOTSUPP);
    }
    SECTION("shorter than iotlb or longer than the struct -> EINVAL")
    {
        CHECK(alloc_nested(c, f.m0, f.parent, nullptr, kDefault, 3) == -EINVAL);
        CHECK(alloc_nested(c, f.m0, f.parent, nullptr, kDefault, 5) == -EINVAL);
        CHECK(alloc_nested(c, f.m0, f.parent, nullptr, kDefault, 0xffffffff) == -EINVAL);
    }
    SECTION("data the client cannot give -> EFAULT")
    {
        CHECK(alloc_nested(c, f.m0, f.parent, nullptr, kDefault, 4, IOMMU_HWPT_DATA_SELFTEST, 0) == -EFAULT);
        CHECK(alloc_nested(c, f.m0, f.parent, nullptr, kDefault, 4, IOMMU_HWPT_DATA_SELFTEST, kArrayEnd - 2) ==
              -EFAULT);
        CHECK(alloc_nested(c, f.m0, f.parent, nullptr, kDefault, 4, IOMMU_HWPT_DATA_SELFTEST, ~0ULL - 1) ==
              -EFAULT);
    }
    SECTION("NEST_PARENT on a nested HWPT -> EOPNOTSUPP")
    {
        CHECK(alloc_nested(c, f.m0, f.parent, nullptr, kDefault, 4, IOMMU_HWPT_DATA_SELFTEST, kDataAddr, kParent) ==
              -EOPNOTSUPP);
    }
    SECTION("a nested HWPT is no parent -> EINVAL")
    {
        const std::uint32_t nested = alloc_nested_ok(c, f.m0, f.parent);
        CHECK(alloc_nested(c, f.m0, nested, nullptr) == -EINVAL);
        CHECK(c.destroy(nested) == 0);
    }
    // Failures leave nothing behind and no reference on the parent.
    CHECK(c.ctx().objects().size() == objects);
    CHECK(c.destroy(f.parent) == 0);
}

TEST_CASE("HWPT_ALLOC nested: the fake IOTLB starts with the client's value", "[hwpt_nested]")
{
    NestedFixture f;
    Client& c = f.c;
    const std::uint32_t a = alloc_nested_ok(c, f.m0, f.parent);
    const std::uint32_t b = alloc_nested_ok(c, f.m0, f.parent, 0x1234);
    CHECK(iotlb_is(c, a, {kDefault, kDefault, kDefault, kDefault}));
    CHECK(iotlb_is(c, b, {0x1234, 0x1234, 0x1234, 0x1234}));
    CHECK(object_status(c, a)["type"] == "hwpt_nested");
    CHECK(object_status(c, a)["parent"] == f.parent);

    SECTION("MD_CHECK_IOTLB errors (iommufd_test_md_check_iotlb())")
    {
        CHECK(check_iotlb(c, a, 0, 0) == -EINVAL);
        CHECK(check_iotlb(c, a, MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1, kDefault) == -EINVAL);
        CHECK(check_iotlb(c, f.parent, 0, kDefault) == -ENOENT);
        CHECK(check_iotlb(c, f.ioas, 0, kDefault) == -ENOENT);
        CHECK(check_iotlb(c, 9999, 0, kDefault) == -ENOENT);
    }
    SECTION("the parent is busy while a nested HWPT uses it")
    {
        CHECK(c.destroy(f.parent) == -EBUSY);
        CHECK(c.destroy(a) == 0);
        CHECK(c.destroy(f.parent) == -EBUSY);
        CHECK(c.destroy(b) == 0);
        CHECK(c.destroy(f.parent) == 0);
    }
    SECTION("paging-only ioctls do not take a nested HWPT -> ENOENT")
    {
        CHECK(set_dirty_tracking(c, a, true) == -ENOENT);
        CHECK(get_dirty_bitmap(c, a, kMockFirst, kMockPage, kMockPage, kDataAddr) == -ENOENT);
    }
}

TEST_CASE("HWPT_INVALIDATE: the generic checks, entry_num written back", "[hwpt_nested]")
{
    NestedFixture f;
    Client& c = f.c;
    const std::uint32_t nested = alloc_nested_ok(c, f.m0, f.parent);
    const std::vector<iommu_hwpt_invalidate_selftest> one{{0, 0}};

    SECTION("__reserved -> EOPNOTSUPP, nothing done")
    {
        CHECK(invalidate(c, nested, one, 1, 8, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, kInvAddr, 1).rc == -EOPNOTSUPP);
        CHECK(invalidate(c, nested, one, 1, 8, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, kInvAddr, 1).entry_num == 0);
    }
    SECTION("a non-empty array needs a pointer and 1..4096-byte entries, at most 2^19 -> EINVAL")
    {
        for (auto r : {invalidate(c, nested, one, 1, 8, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, 0),
                       invalidate(c, nested, one, 1, 0), invalidate(c, nested, one, 1, 4097),
                       invalidate(c, nested, one, (1u << 19) + 1)}) {
            CHECK(r.rc == -EINVAL);
            CHECK(r.entry_num == 0);
        }
    }
    SECTION("an empty array succeeds with any pointer and length")
    {
        CHECK(invalidate(c, nested, {}, 0, 0, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, 0).rc == 0);
    }
    SECTION("only a nested HWPT takes invalidations -> ENOENT")
    {
        const Invalidation r = invalidate(c, f.parent, one, 1);
        CHECK(r.rc == -ENOENT);
        CHECK(r.entry_num == 0);
        CHECK(invalidate(c, f.ioas, one, 1).rc == -ENOENT);
    }
    SECTION("the mock's rules: data type, entry size, flags, iotlb_id")
    {
        CHECK(invalidate(c, nested, one, 1, 8, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID).rc == -EINVAL);
        CHECK(invalidate(c, nested, {}, 0, 8, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID).rc == -EINVAL);
        CHECK(invalidate(c, nested, one, 1, 9).rc == -EINVAL);
        CHECK(invalidate(c, nested, one, 1, 7).rc == -EINVAL);
        CHECK(invalidate(c, nested, {{0xffffffff, 0}}, 1).rc == -EOPNOTSUPP);
        CHECK(invalidate(c, nested, {{0x2, 0}}, 1).rc == -EOPNOTSUPP);
        CHECK(invalidate(c, nested, {{0, MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1}}, 1).rc == -EINVAL);
        CHECK(iotlb_is(c, nested, {kDefault, kDefault, kDefault, kDefault}));
    }
    SECTION("entries before a bad one stay done and are counted")
    {
        Invalidation r = invalidate(c, nested, {{0, 0}, {0xffffffff, 1}}, 2);
        CHECK(r.rc == -EOPNOTSUPP);
        CHECK(r.entry_num == 1);
        r = invalidate(c, nested, {{0, 0}, {0, 4}}, 2);
        CHECK(r.rc == -EINVAL);
        CHECK(r.entry_num == 1);
        CHECK(iotlb_is(c, nested, {0, kDefault, kDefault, kDefault}));
        // The array runs off the client's memory after its first entry.
        put_value(c, kArrayEnd - 8, iommu_hwpt_invalidate_selftest{0, 1});
        r = invalidate(c, nested, {}, 2, 8, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, kArrayEnd - 8);
        CHECK(r.rc == -EFAULT);
        CHECK(r.entry_num == 1);
        CHECK(iotlb_is(c, nested, {0, 0, kDefault, kDefault}));
    }
    SECTION("entries of 8 bytes in a longer stride are not the mock's: EINVAL")
    {
        CHECK(invalidate(c, nested, one, 1, 16).rc == -EINVAL);
    }
    SECTION("one entry, two entries, FLAG_ALL ignoring its iotlb_id")
    {
        Invalidation r = invalidate(c, nested, {{0, 1}}, 1);
        CHECK(r.rc == 0);
        CHECK(r.entry_num == 1);
        CHECK(iotlb_is(c, nested, {kDefault, 0, kDefault, kDefault}));
        r = invalidate(c, nested, {{0, 2}, {0, 3}}, 2);
        CHECK(r.rc == 0);
        CHECK(r.entry_num == 2);
        CHECK(iotlb_is(c, nested, {kDefault, 0, 0, 0}));
        CHECK(invalidate(c, nested, {{IOMMU_TEST_INVALIDATE_FLAG_ALL, 3}}, 1).rc == 0);
        CHECK(iotlb_is(c, nested, {0, 0, 0, 0}));
    }
}

TEST_CASE("Devices on nested HWPTs: replace, busy rules, DMA through the parent", "[hwpt_nested]")
{
    NestedFixture f;
    Client& c = f.c;
    const std::uint32_t n0 = alloc_nested_ok(c, f.m0, f.parent);
    const std::uint32_t n1 = alloc_nested_ok(c, f.m0, f.parent);
    fill(c, kBufferAddr, 64 * 1024, 7);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 64 * 1024, kMockFirst) == 0);

    const std::uint32_t auto_hwpt = attach_ok(c, f.m0, f.ioas);
    // Replacing the automatic domain with a nested HWPT frees it.
    CHECK(attach_ok(c, f.m0, n0) == n0);
    CHECK_FALSE(object_exists(c, auto_hwpt));
    CHECK(c.destroy(n0) == -EBUSY);
    CHECK(c.destroy(f.parent) == -EBUSY);

    // The mock's first stage is an identity: DMA reads what the parent maps.
    CHECK(dma_read_ok(c, f.m0, kMockFirst + 100, 5000) == bytes_at(c, kBufferAddr + 100, 5000));

    CHECK(attach_ok(c, f.m0, n1) == n1);
    CHECK(c.destroy(n1) == -EBUSY);
    CHECK(c.destroy(n0) == 0);
    CHECK(dma_read_ok(c, f.m0, kMockFirst, 4096) == bytes_at(c, kBufferAddr, 4096));

    SECTION("an unmap of the parent's IOAS reaches what DMA through the nested HWPT cached")
    {
        REQUIRE(c.unmap(f.ioas, kMockFirst, 64 * 1024) == 0);
        CHECK(dma(c, f.m0, kMockFirst, 16, false).out.out_fault_reason == IOASID_EMU_FAULT_NOT_PRESENT);
    }
    SECTION("back to the parent, then to the IOAS: each HWPT goes when unused")
    {
        CHECK(attach_ok(c, f.m0, f.parent) == f.parent);
        CHECK(c.destroy(n1) == 0);
        attach_ok(c, f.m0, f.ioas);
        CHECK(c.destroy(f.parent) == 0);
    }
    SECTION("detaching leaves the nested HWPT free")
    {
        CHECK(detach(c, f.m0) == 0);
        CHECK(dma(c, f.m0, kMockFirst, 16, false).out.out_fault_reason == IOASID_EMU_FAULT_BLOCKED);
        CHECK(c.destroy(n1) == 0);
        CHECK(c.destroy(f.parent) == 0);
    }
    SECTION("a nested HWPT takes a PASID only if allocated with IOMMU_HWPT_ALLOC_PASID")
    {
        const std::uint32_t m1 = bind_ok(c, "m1");
        std::uint32_t pt = n1;
        CHECK(attach(c, m1, &pt, 5) == -EINVAL);
        std::uint32_t pasid_nested = 0;
        REQUIRE(alloc_nested(c, f.m0, f.parent, &pasid_nested, kDefault, 4, IOMMU_HWPT_DATA_SELFTEST, kDataAddr,
                             IOMMU_HWPT_ALLOC_PASID) == 0);
        CHECK(attach_ok(c, m1, pasid_nested, 5) == pasid_nested);
        CHECK(dma_read_ok(c, m1, kMockFirst, 64, 5) == bytes_at(c, kBufferAddr, 64));
        CHECK(detach(c, m1, 5) == 0);
        CHECK(c.destroy(pasid_nested) == 0);
    }
    SECTION("a device of another unit family cannot attach -> EINVAL")
    {
        const std::uint32_t v0 = bind_ok(c, "v0");
        std::uint32_t pt = n1;
        CHECK(attach(c, v0, &pt) == -EINVAL);
    }
}

TEST_CASE("HWPT_ALLOC nested: families without nesting keep refusing", "[hwpt_nested]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t v0 = bind_ok(c, "v0");
    const std::uint32_t parent = hwpt_alloc_ok(c, v0, f.ioas, kParent);
    CHECK(alloc_nested(c, v0, parent, nullptr, kDefault, 4, IOMMU_HWPT_DATA_SELFTEST) == -EOPNOTSUPP);
    CHECK(c.destroy(parent) == 0);
}

TEST_CASE("HWPT_ALLOC nested: a parent of another mock unit is refused", "[hwpt_nested]")
{
    // The nested domain walks through the parent's tables and caches under
    // its IOTLB tags, which only the parent's own unit invalidates: a
    // parent on mock1 for a device on mock0 would keep stale translations.
    NestedFixture f;
    Client& c = f.c;
    const std::uint32_t x0 = bind_ok(c, "x0"); // on mock1
    const std::uint32_t other = hwpt_alloc_ok(c, x0, f.ioas, kParent);
    CHECK(alloc_nested(c, f.m0, other, nullptr) == -EINVAL);
    std::uint32_t same = 0;
    CHECK(alloc_nested(c, f.m0, f.parent, &same) == 0);
    CHECK(c.destroy(same) == 0);
    CHECK(c.destroy(other) == 0);
}
