// Our device commands (IOASID_EMU_DEVICE_BIND/UNBIND/ATTACH/DETACH), which
// stand for VFIO_DEVICE_BIND_IOMMUFD and VFIO_DEVICE_[DE]ATTACH_IOMMUFD_PT
// on the iommufd itself. What they do is the kernel's (6.12)
// drivers/iommu/iommufd/device.c: iommufd_device_change_pt(),
// iommufd_device_auto_get_domain(), iommufd_hw_pagetable_attach(),
// iommufd_device_do_replace(), iommufd_hw_pagetable_detach(),
// iommufd_device_attach_reserved_iova(); io_pagetable.c
// iopt_table_enforce_dev_resv_regions(); and for PASIDs the 6.15 rules
// (iommufd_hwpt_pasid_compat(), iommu_attach_device_pasid()).
#include <catch2/catch.hpp>

#include <ioasid/emu.h>
#include <ioasid/iommufd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>

#include "hardware_fixture.h"

using namespace ioasid;
using namespace ioasid::test;

namespace {

constexpr std::uint32_t kBadId = 9999;
constexpr std::uint64_t kMsiFirst = 0xfee00000;
constexpr std::uint64_t kMsiLast = 0xfeefffff;
constexpr std::uint64_t kVtdLast = (1ULL << 48) - 1;

std::uint32_t hwpt_of(Client& c, std::uint32_t dev)
{
    auto o = object_status(c, dev);
    return o.contains("hwpt") ? o["hwpt"].get<std::uint32_t>() : 0;
}

int fault_reason(Client& c, std::uint32_t dev, std::uint64_t iova, std::optional<std::uint32_t> pasid = {})
{
    Dma d = dma(c, dev, iova, 8, false, kDmaBufAddr, pasid);
    return d.rc == 0 ? IOASID_EMU_FAULT_NONE : static_cast<int>(d.out.out_fault_reason);
}

} // namespace

TEST_CASE("Attach to an IOAS: automatic domains, shared where compatible", "[device_attach]")
{
    HardwareFixture f;
    Client& c = f.client;
    REQUIRE(f.ioas == 1);
    const std::uint32_t m0 = bind_ok(c, "m0");
    REQUIRE(m0 == 2);

    // bind -> 2, attach -> the auto HWPT takes the next free id.
    const std::uint32_t auto0 = attach_ok(c, m0, f.ioas);
    CHECK(auto0 == 3);
    CHECK(object_status(c, auto0)["auto"] == true);
    CHECK(object_status(c, auto0)["unit"] == "mock0");
    CHECK(hwpt_of(c, m0) == auto0);

    // A second device of the same unit reuses it.
    const std::uint32_t m1 = bind_ok(c, "m1");
    CHECK(attach_ok(c, m1, f.ioas) == auto0);
    // A device of another unit, even of the same family, gets its own.
    const std::uint32_t x0 = bind_ok(c, "x0");
    const std::uint32_t auto1 = attach_ok(c, x0, f.ioas);
    CHECK(auto1 != auto0);
    CHECK(object_status(c, auto1)["unit"] == "mock1");
    const std::uint32_t v0 = bind_ok(c, "v0");
    const std::uint32_t auto2 = attach_ok(c, v0, f.ioas);
    CHECK(auto2 != auto0);
    CHECK(auto2 != auto1);
    CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 3);

    // In use: DESTROY is EBUSY for the HWPT and its IOAS.
    CHECK(c.destroy(auto0) == -EBUSY);
    CHECK(c.destroy(f.ioas) == -EBUSY);

    // The automatic HWPT goes with its last device.
    REQUIRE(detach(c, m0) == 0);
    CHECK(object_exists(c, auto0));
    REQUIRE(detach(c, m1) == 0);
    CHECK_FALSE(object_exists(c, auto0));
    CHECK(c.destroy(auto0) == -ENOENT);
    REQUIRE(detach(c, x0) == 0);
    REQUIRE(detach(c, v0) == 0);
    CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 0);
    // Its id is free again.
    CHECK(alloc_ok(c) == auto0);
    CHECK(c.destroy(f.ioas) == 0);
}

TEST_CASE("Attach to an IOAS never picks a manual HWPT", "[device_attach]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint32_t manual = hwpt_alloc_ok(c, m0, f.ioas);
    const std::uint32_t got = attach_ok(c, m0, f.ioas);
    CHECK(got != manual);
    CHECK(object_status(c, got)["auto"] == true);
    // Replacing to the manual one frees the automatic one.
    CHECK(attach_ok(c, m0, manual) == manual);
    CHECK_FALSE(object_exists(c, got));
    // And back: a new automatic domain, the manual one stays.
    const std::uint32_t again = attach_ok(c, m0, f.ioas);
    CHECK(object_status(c, again)["auto"] == true);
    CHECK(object_exists(c, manual));
    CHECK(c.destroy(manual) == 0);
}

TEST_CASE("Replace: the old translation serves until the switch, and stays on failure", "[device_attach]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint32_t ioas_a = f.ioas;
    const std::uint32_t ioas_b = alloc_ok(c);
    const std::uint64_t iova = kMockFirst + 0x10000;
    fill(c, kBufferAddr, 8192, 1);
    fill(c, kBufferAddr + 65536, 8192, 2);
    REQUIRE(c.map_fixed(ioas_a, kBufferAddr, 8192, iova) == 0);
    REQUIRE(c.map_fixed(ioas_b, kBufferAddr + 65536, 8192, iova) == 0);
    const auto bytes_a = bytes_at(c, kBufferAddr, 8192);
    const auto bytes_b = bytes_at(c, kBufferAddr + 65536, 8192);

    const std::uint32_t auto_a = attach_ok(c, m0, ioas_a);
    CHECK(dma_read_ok(c, m0, iova, 8192) == bytes_a);

    // Replace by IOAS: a new automatic domain, filled before the switch.
    const std::uint32_t auto_b = attach_ok(c, m0, ioas_b);
    CHECK(auto_b != auto_a);
    CHECK_FALSE(object_exists(c, auto_a));
    // The IOTLB kept nothing of the old domain.
    CHECK(dma_read_ok(c, m0, iova, 8192) == bytes_b);

    // Replace by a manual HWPT; the same one again is a no-op.
    const std::uint32_t manual_a = hwpt_alloc_ok(c, m0, ioas_a);
    CHECK(attach_ok(c, m0, manual_a) == manual_a);
    CHECK_FALSE(object_exists(c, auto_b));
    CHECK(dma_read_ok(c, m0, iova, 8192) == bytes_a);
    CHECK(attach_ok(c, m0, manual_a) == manual_a);
    CHECK(dma_read_ok(c, m0, iova, 8192) == bytes_a);

    const std::uint32_t x0 = bind_ok(c, "x0");
    const std::uint32_t other_unit = hwpt_alloc_ok(c, x0, ioas_b);
    const std::uint32_t ioas_bad = alloc_ok(c);
    REQUIRE(c.map_fixed(ioas_bad, kUnmappedVa, 8192, iova) == 0);
    const std::size_t hwpts = count_objects(c, core::ObjectType::hwpt_paging);

    SECTION("to a domain of another unit -> EINVAL")
    {
        std::uint32_t pt = other_unit;
        CHECK(attach(c, m0, &pt) == -EINVAL);
    }
    SECTION("to an IOAS whose pages cannot be pinned -> EFAULT")
    {
        std::uint32_t pt = ioas_bad;
        CHECK(attach(c, m0, &pt) == -EFAULT);
        CHECK(c.destroy(ioas_bad) == 0);
    }
    SECTION("to something that is no page table")
    {
        std::uint32_t pt = kBadId;
        CHECK(attach(c, m0, &pt) == -ENOENT);
        pt = x0;
        CHECK(attach(c, m0, &pt) == -EINVAL);
    }
    // Nothing changed.
    CHECK(count_objects(c, core::ObjectType::hwpt_paging) == hwpts);
    CHECK(hwpt_of(c, m0) == manual_a);
    CHECK(dma_read_ok(c, m0, iova, 8192) == bytes_a);
    CHECK(c.destroy(manual_a) == -EBUSY);
}

TEST_CASE("VT-d reserved regions: the MSI window comes with attach and goes with detach", "[device_attach]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t v0 = bind_ok(c, "v0");
    const RangeList everything{{0, UINT64_MAX}};
    const RangeList with_window{{0, kMsiFirst - 1}, {kMsiLast + 1, kVtdLast}};
    REQUIRE(ranges_of(c, f.ioas) == everything);

    SECTION("attach to an IOAS and detach")
    {
        attach_ok(c, v0, f.ioas);
        CHECK(ranges_of(c, f.ioas) == with_window);
        CHECK(c.map_fixed(f.ioas, kBufferAddr, kPage4K, kMsiFirst) == -EINVAL);
        CHECK(c.map_fixed(f.ioas, kBufferAddr, 2 * kPage4K, kMsiFirst - kPage4K) == -EINVAL);
        CHECK(c.map_fixed(f.ioas, kBufferAddr, kPage4K, kMsiLast - kPage4K + 1) == -EINVAL);
        CHECK(c.map_fixed(f.ioas, kBufferAddr, kPage4K, kMsiLast + 1) == 0);
        REQUIRE(detach(c, v0) == 0);
        CHECK(ranges_of(c, f.ioas) == everything);
        CHECK(c.map_fixed(f.ioas, kBufferAddr, kPage4K, kMsiFirst) == 0);
    }
    SECTION("a manual HWPT brings its aperture; the window comes with the attach")
    {
        const std::uint32_t hwpt = hwpt_alloc_ok(c, v0, f.ioas);
        CHECK(ranges_of(c, f.ioas) == RangeList{{0, kVtdLast}});
        attach_ok(c, v0, hwpt);
        CHECK(ranges_of(c, f.ioas) == with_window);
        REQUIRE(detach(c, v0) == 0);
        CHECK(ranges_of(c, f.ioas) == RangeList{{0, kVtdLast}});
    }
    SECTION("each device of a domain reserves its own window")
    {
        const std::uint32_t v1 = bind_ok(c, "v1");
        const std::uint32_t hwpt = attach_ok(c, v0, f.ioas);
        CHECK(attach_ok(c, v1, f.ioas) == hwpt);
        REQUIRE(detach(c, v0) == 0);
        CHECK(ranges_of(c, f.ioas) == with_window);
        REQUIRE(detach(c, v1) == 0);
        CHECK(ranges_of(c, f.ioas) == everything);
    }
    SECTION("an area in the window -> EADDRINUSE, nothing left behind")
    {
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, kPage4K, kMsiFirst + 0x10000) == 0);
        const std::uint32_t free_id = alloc_ok(c);
        REQUIRE(c.destroy(free_id) == 0);
        std::uint32_t pt = f.ioas;
        CHECK(attach(c, v0, &pt) == -EADDRINUSE);
        CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 0);
        CHECK(alloc_ok(c) == free_id);
        CHECK(hwpt_of(c, v0) == 0);
        // To a manual HWPT the same.
        const std::uint32_t hwpt = hwpt_alloc_ok(c, v0, f.ioas);
        pt = hwpt;
        CHECK(attach(c, v0, &pt) == -EADDRINUSE);
        CHECK(c.destroy(hwpt) == 0);
    }
    SECTION("an allowed range over the window -> EADDRINUSE")
    {
        iommu_iova_range r{.start = 0xfe000000, .last = 0xffffffff};
        c.write(kArrayAddr, std::as_bytes(std::span(&r, 1)));
        iommu_ioas_allow_iovas cmd{.size = sizeof(cmd), .ioas_id = f.ioas, .num_iovas = 1, .__reserved = 0,
                                   .allowed_iovas = kArrayAddr};
        REQUIRE(c.ioctl(IOMMU_IOAS_ALLOW_IOVAS, cmd) == 0);
        std::uint32_t pt = f.ioas;
        CHECK(attach(c, v0, &pt) == -EADDRINUSE);
        CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 0);
    }
    SECTION("replace across IOASes moves the window")
    {
        const std::uint32_t other = alloc_ok(c);
        attach_ok(c, v0, f.ioas);
        const std::uint32_t hwpt = attach_ok(c, v0, other);
        CHECK(ranges_of(c, other) == with_window);
        CHECK(ranges_of(c, f.ioas) == everything);
        // Within the same IOAS it stays.
        const std::uint32_t manual = hwpt_alloc_ok(c, v0, other);
        CHECK(attach_ok(c, v0, manual) == manual);
        CHECK_FALSE(object_exists(c, hwpt));
        CHECK(ranges_of(c, other) == with_window);
        // A replace whose new IOAS cannot take the window changes nothing.
        REQUIRE(c.map_fixed(f.ioas, kBufferAddr, kPage4K, kMsiFirst) == 0);
        std::uint32_t pt = f.ioas;
        CHECK(attach(c, v0, &pt) == -EADDRINUSE);
        CHECK(hwpt_of(c, v0) == manual);
        CHECK(ranges_of(c, other) == with_window);
        REQUIRE(detach(c, v0) == 0);
        CHECK(ranges_of(c, other) == RangeList{{0, kVtdLast}});
    }
    SECTION("the mock has no reserved region but its aperture")
    {
        const std::uint32_t m0 = bind_ok(c, "m0");
        attach_ok(c, m0, f.ioas);
        CHECK(ranges_of(c, f.ioas) == RangeList{{kMockFirst, kMockLast}});
    }
}

TEST_CASE("Groups: one HWPT per group, one context per group", "[device_attach]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t ga = bind_ok(c, "ga");
    const std::uint32_t gb = bind_ok(c, "gb");
    const std::uint32_t hwpt_a = hwpt_alloc_ok(c, ga, f.ioas);
    const std::uint32_t hwpt_b = hwpt_alloc_ok(c, ga, f.ioas);
    fill(c, kBufferAddr, 4096, 5);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 4096, kMockFirst) == 0);

    attach_ok(c, ga, hwpt_a);
    SECTION("another device of the group on another HWPT -> EINVAL")
    {
        std::uint32_t pt = hwpt_b;
        CHECK(attach(c, gb, &pt) == -EINVAL);
        // Nor through the IOAS: the automatic domain would be another HWPT.
        pt = f.ioas;
        CHECK(attach(c, gb, &pt) == -EINVAL);
        CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 2);
        CHECK(hwpt_of(c, gb) == 0);
    }
    SECTION("the whole group translates through the group's domain")
    {
        // The hardware attaches groups: gb follows before its own attach.
        CHECK(fault_reason(c, gb, kMockFirst) == IOASID_EMU_FAULT_NONE);
        CHECK(attach_ok(c, gb, hwpt_a) == hwpt_a);
        // Replacing one moves the group.
        CHECK(attach_ok(c, ga, hwpt_b) == hwpt_b);
        CHECK(hwpt_of(c, gb) == hwpt_b);
        CHECK(c.destroy(hwpt_a) == 0);
        // The group stays attached while any member is.
        REQUIRE(detach(c, ga) == 0);
        CHECK(fault_reason(c, ga, kMockFirst) == IOASID_EMU_FAULT_NONE);
        CHECK(c.destroy(hwpt_b) == -EBUSY);
        REQUIRE(detach(c, gb) == 0);
        CHECK(fault_reason(c, ga, kMockFirst) == IOASID_EMU_FAULT_BLOCKED);
        CHECK(fault_reason(c, gb, kMockFirst) == IOASID_EMU_FAULT_BLOCKED);
        CHECK(c.destroy(hwpt_b) == 0);
    }
    SECTION("a group member cannot be bound by another context")
    {
        Client other(f.services, make_hw_caller());
        std::uint32_t id = 0;
        REQUIRE(unbind(c, gb) == 0);
        CHECK(bind(other, "gb", &id) == -EBUSY);
        CHECK(bind(other, "ga", &id) == -EBUSY);
        CHECK(bind(other, "m0", &id) == 0);
        // Nor can this context take the other's device.
        CHECK(bind(c, "m0", &id) == -EBUSY);
        // Once the group is free, it can.
        REQUIRE(unbind(c, ga) == 0);
        CHECK(bind(other, "gb", &id) == 0);
        CHECK(bind(c, "ga", &id) == -EBUSY);
    }
}

TEST_CASE("Closing a context unbinds its devices and frees everything", "[device_attach]")
{
    HardwareServices hw;
    auto& services = hw.services;
    const std::uint64_t phys_before = services.phys.reserved_pages();
    auto& m0 = *services.hardware.find_device("m0");
    auto& v0 = *services.hardware.find_device("v0");
    {
        auto c = std::make_unique<Client>(services, make_hw_caller());
        const std::uint32_t ioas = alloc_ok(*c);
        const std::uint32_t dm = bind_ok(*c, "m0");
        const std::uint32_t dv = bind_ok(*c, "v0");
        const std::uint32_t da = bind_ok(*c, "ga");
        REQUIRE(c->map_fixed(ioas, kBufferAddr, 1 << 20, kMockFirst) == 0);
        attach_ok(*c, dm, ioas);
        const std::uint32_t manual = hwpt_alloc_ok(*c, dv, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
        attach_ok(*c, dv, manual);
        REQUIRE(set_dirty_tracking(*c, manual, true) == 0);
        const std::uint32_t pasid_hwpt = hwpt_alloc_ok(*c, da, ioas, IOMMU_HWPT_ALLOC_PASID);
        attach_ok(*c, da, pasid_hwpt, 7);
        // Both members of the group on the RID too.
        const std::uint32_t db = bind_ok(*c, "gb");
        attach_ok(*c, da, pasid_hwpt);
        attach_ok(*c, db, pasid_hwpt);
        CHECK(dma(*c, dm, kMockFirst, 64, true).rc == 0);
        CHECK(services.hardware.owner_of(m0) == &c->ctx());
        CHECK(services.phys.reserved_pages() > phys_before);
    }
    CHECK(services.hardware.owner_of(m0) == nullptr);
    CHECK(services.hardware.owner_of(v0) == nullptr);
    CHECK(m0.unit->attached(*m0.endpoint, hw::kNoPasid) == nullptr);
    CHECK(v0.unit->attached(*v0.endpoint, hw::kNoPasid) == nullptr);
    auto& ga = *services.hardware.find_device("ga");
    auto& gb = *services.hardware.find_device("gb");
    CHECK(ga.unit->attached(*ga.endpoint, 7) == nullptr);
    CHECK(ga.unit->attached(*ga.endpoint, hw::kNoPasid) == nullptr);
    CHECK(gb.unit->attached(*gb.endpoint, hw::kNoPasid) == nullptr);
    CHECK(services.hardware.owner_of(gb) == nullptr);
    // No pin, no table page is left.
    CHECK(services.phys.reserved_pages() == phys_before);
    CHECK(services.accounting.user_pages(1000) == 0);

    // Another context can bind them now.
    Client next(services, make_hw_caller());
    const std::uint32_t dm = bind_ok(next, "m0");
    CHECK(bind_ok(next, "gb") != 0);
    CHECK(fault_reason(next, dm, kMockFirst) == IOASID_EMU_FAULT_BLOCKED);
}

TEST_CASE("Detach, unbind and DESTROY of a device", "[device_attach]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");

    SECTION("detaching what is not attached succeeds")
    {
        CHECK(detach(c, m0) == 0);
        CHECK(detach(c, m0, 5) == 0);
        CHECK(detach(c, kBadId) == -ENOENT);
        CHECK(detach(c, f.ioas) == -ENOENT);
        ioasid_emu_device_detach cmd{.size = sizeof(cmd), .flags = 2, .dev_id = m0, .pasid = 0};
        CHECK(c.ioctl(IOASID_EMU_DEVICE_DETACH, cmd) == -EOPNOTSUPP);
    }
    SECTION("DESTROY of a device -> EBUSY; UNBIND destroys it")
    {
        CHECK(c.destroy(m0) == -EBUSY);
        const std::uint32_t hwpt = attach_ok(c, m0, f.ioas);
        CHECK(c.destroy(m0) == -EBUSY);
        CHECK(unbind(c, m0) == 0);
        // Unbinding detached it: its automatic HWPT went too.
        CHECK_FALSE(object_exists(c, hwpt));
        CHECK(c.destroy(m0) == -ENOENT);
        CHECK(unbind(c, m0) == -ENOENT);
        CHECK(unbind(c, f.ioas) == -ENOENT);
        CHECK(f.services.hardware.owner_of(f.device("m0")) == nullptr);
        CHECK(c.destroy(f.ioas) == 0);
    }
    SECTION("bind errors")
    {
        std::uint32_t id = 0;
        CHECK(bind(c, "m0", &id) == -EBUSY);
        CHECK(bind(c, "nosuch", &id) == -ENODEV);
        CHECK(bind(c, "", &id) == -ENODEV);
        ioasid_emu_device_bind cmd{};
        cmd.size = sizeof(cmd);
        std::memset(cmd.name, 'a', sizeof(cmd.name));
        CHECK(c.ioctl(IOASID_EMU_DEVICE_BIND, cmd) == -EINVAL);
        std::strcpy(cmd.name, "m1");
        cmd.flags = 1;
        CHECK(c.ioctl(IOASID_EMU_DEVICE_BIND, cmd) == -EOPNOTSUPP);
        cmd.flags = 0;
        cmd.__reserved = 1;
        CHECK(c.ioctl(IOASID_EMU_DEVICE_BIND, cmd) == -EOPNOTSUPP);
        CHECK(count_objects(c, core::ObjectType::device) == 1);
    }
    SECTION("attach errors")
    {
        std::uint32_t pt = f.ioas;
        CHECK(attach(c, kBadId, &pt) == -ENOENT);
        CHECK(attach(c, f.ioas, &pt) == -ENOENT);
        pt = kBadId;
        CHECK(attach(c, m0, &pt) == -ENOENT);
        pt = 0;
        CHECK(attach(c, m0, &pt) == -ENOENT);
        pt = m0;
        CHECK(attach(c, m0, &pt) == -EINVAL);
        ioasid_emu_device_attach cmd{.size = sizeof(cmd), .flags = 4, .dev_id = m0, .pt_id = f.ioas, .pasid = 0,
                                     .__reserved = 0};
        CHECK(c.ioctl(IOASID_EMU_DEVICE_ATTACH, cmd) == -EOPNOTSUPP);
        cmd.flags = 0;
        cmd.__reserved = 1;
        CHECK(c.ioctl(IOASID_EMU_DEVICE_ATTACH, cmd) == -EOPNOTSUPP);
        CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 0);
    }
    SECTION("a bind whose answer cannot be written back is undone")
    {
        // out_dev_id and __reserved (zero) lie in the read-only page.
        const std::uint64_t at = kReadOnlyPage - offsetof(ioasid_emu_device_bind, out_dev_id);
        ioasid_emu_device_bind cmd{};
        cmd.size = sizeof(cmd);
        std::strcpy(cmd.name, "m1");
        c.write(at, std::as_bytes(std::span(&cmd, 1)).first(offsetof(ioasid_emu_device_bind, out_dev_id)));
        const std::uint32_t free_id = alloc_ok(c);
        REQUIRE(c.destroy(free_id) == 0);
        CHECK(c.ioctl_at(IOASID_EMU_DEVICE_BIND, at) == -EFAULT);
        CHECK(count_objects(c, core::ObjectType::device) == 1);
        CHECK(f.services.hardware.owner_of(f.device("m1")) == nullptr);
        CHECK(alloc_ok(c) == free_id);
        // Another context can have it.
        Client other(f.services, make_hw_caller());
        CHECK(bind_ok(other, "m1") != 0);
    }
    SECTION("an attach whose answer cannot be written back is undone")
    {
        // pasid and __reserved (zero) lie in the read-only page.
        const std::uint64_t at = kReadOnlyPage - offsetof(ioasid_emu_device_attach, pasid);
        ioasid_emu_device_attach cmd{.size = sizeof(cmd), .flags = 0, .dev_id = m0, .pt_id = f.ioas, .pasid = 0,
                                     .__reserved = 0};
        c.write(at, std::as_bytes(std::span(&cmd, 1)).first(offsetof(ioasid_emu_device_attach, pasid)));
        CHECK(c.ioctl_at(IOASID_EMU_DEVICE_ATTACH, at) == -EFAULT);
        CHECK(hwpt_of(c, m0) == 0);
        CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 0);
        CHECK(fault_reason(c, m0, kMockFirst) == IOASID_EMU_FAULT_BLOCKED);
        CHECK(c.destroy(f.ioas) == 0);
    }
}

TEST_CASE("PASID attach (the 6.15 rules)", "[device_attach]")
{
    HardwareFixture f;
    Client& c = f.client;
    const std::uint32_t m0 = bind_ok(c, "m0");
    const std::uint32_t ioas_b = alloc_ok(c);
    const std::uint64_t iova = kMockFirst;
    fill(c, kBufferAddr, 4096, 1);
    fill(c, kBufferAddr + 8192, 4096, 2);
    fill(c, kBufferAddr + 16384, 4096, 3);
    REQUIRE(c.map_fixed(f.ioas, kBufferAddr, 4096, iova) == 0);
    REQUIRE(c.map_fixed(ioas_b, kBufferAddr + 8192, 4096, iova) == 0);
    const auto bytes_a = bytes_at(c, kBufferAddr, 4096);
    const auto bytes_b = bytes_at(c, kBufferAddr + 8192, 4096);
    const std::uint32_t pasid_a = hwpt_alloc_ok(c, m0, f.ioas, IOMMU_HWPT_ALLOC_PASID);
    const std::uint32_t pasid_b = hwpt_alloc_ok(c, m0, ioas_b, IOMMU_HWPT_ALLOC_PASID);
    const std::uint32_t plain = hwpt_alloc_ok(c, m0, f.ioas);

    SECTION("different domains on different PASIDs, as DMA sees them")
    {
        CHECK(attach_ok(c, m0, pasid_a, 1) == pasid_a);
        CHECK(attach_ok(c, m0, pasid_b, 2) == pasid_b);
        CHECK(dma_read_ok(c, m0, iova, 4096, 1) == bytes_a);
        CHECK(dma_read_ok(c, m0, iova, 4096, 2) == bytes_b);
        CHECK(fault_reason(c, m0, iova, 3) == IOASID_EMU_FAULT_BLOCKED);
        CHECK(fault_reason(c, m0, iova) == IOASID_EMU_FAULT_BLOCKED);
        // Each attachment holds its HWPT.
        CHECK(c.destroy(pasid_a) == -EBUSY);
        // Replace one PASID.
        CHECK(attach_ok(c, m0, pasid_b, 1) == pasid_b);
        CHECK(dma_read_ok(c, m0, iova, 4096, 1) == bytes_b);
        CHECK(c.destroy(pasid_a) == 0);
        // The RID on a PASID-capable HWPT next to them.
        CHECK(attach_ok(c, m0, pasid_b) == pasid_b);
        CHECK(dma_read_ok(c, m0, iova, 4096) == bytes_b);
        // Detaching one PASID leaves the rest.
        REQUIRE(detach(c, m0, 2) == 0);
        CHECK(fault_reason(c, m0, iova, 2) == IOASID_EMU_FAULT_BLOCKED);
        CHECK(dma_read_ok(c, m0, iova, 4096, 1) == bytes_b);
        REQUIRE(detach(c, m0) == 0);
        CHECK(dma_read_ok(c, m0, iova, 4096, 1) == bytes_b);
        REQUIRE(detach(c, m0, 1) == 0);
        CHECK(c.destroy(pasid_b) == 0);
    }
    SECTION("a HWPT without IOMMU_HWPT_ALLOC_PASID -> EINVAL")
    {
        std::uint32_t pt = plain;
        CHECK(attach(c, m0, &pt, 1) == -EINVAL);
        // An IOAS would give an automatic domain, never PASID-capable.
        pt = f.ioas;
        CHECK(attach(c, m0, &pt, 1) == -EINVAL);
        CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 3);
    }
    SECTION("PASID and RID must agree on PASID compatibility")
    {
        // RID on a plain HWPT: no PASID may come.
        attach_ok(c, m0, plain);
        std::uint32_t pt = pasid_a;
        CHECK(attach(c, m0, &pt, 1) == -EINVAL);
        REQUIRE(detach(c, m0) == 0);
        // PASIDs attached: the RID takes PASID-capable HWPTs only.
        attach_ok(c, m0, pasid_a, 1);
        pt = plain;
        CHECK(attach(c, m0, &pt) == -EINVAL);
        pt = f.ioas;
        CHECK(attach(c, m0, &pt) == -EINVAL);
        CHECK(attach_ok(c, m0, pasid_b) == pasid_b);
        // Nor may a replace move it to a plain one.
        pt = plain;
        CHECK(attach(c, m0, &pt) == -EINVAL);
        CHECK(hwpt_of(c, m0) == pasid_b);
    }
    SECTION("PASID 0 and PASIDs beyond the device's width -> EINVAL")
    {
        std::uint32_t pt = pasid_a;
        CHECK(attach(c, m0, &pt, 0) == -EINVAL);
        CHECK(attach(c, m0, &pt, 1u << 20) == -EINVAL);
        CHECK(attach(c, m0, &pt, 0xffffffff) == -EINVAL);
        CHECK(attach_ok(c, m0, pasid_a, (1u << 20) - 1) == pasid_a);
        // A device without PASIDs takes none (iommu_attach_device_pasid(): max_pasids 0).
        const std::uint32_t mnp = bind_ok(c, "mnp");
        const std::uint32_t hwpt = hwpt_alloc_ok(c, mnp, f.ioas, IOMMU_HWPT_ALLOC_PASID);
        pt = hwpt;
        CHECK(attach(c, mnp, &pt, 1) == -EINVAL);
        // The page table is looked up first.
        pt = kBadId;
        CHECK(attach(c, m0, &pt, 1u << 20) == -ENOENT);
        CHECK(attach(c, mnp, &pt, 1) == -ENOENT);
    }
    SECTION("a PASID-only device takes no RID attachment")
    {
        const std::uint32_t mp = bind_ok(c, "mp");
        std::uint32_t pt = f.ioas;
        CHECK(attach(c, mp, &pt) == -EINVAL);
        pt = pasid_a;
        CHECK(attach(c, mp, &pt) == -EINVAL);
        CHECK(count_objects(c, core::ObjectType::hwpt_paging) == 3);
        CHECK(attach_ok(c, mp, pasid_a, 9) == pasid_a);
        CHECK(dma_read_ok(c, mp, iova, 4096, 9) == bytes_a);
    }
    SECTION("PASID attaches add no reserved region")
    {
        const RangeList before = ranges_of(c, f.ioas);
        attach_ok(c, m0, pasid_a, 4);
        CHECK(ranges_of(c, f.ioas) == before);
    }
}
