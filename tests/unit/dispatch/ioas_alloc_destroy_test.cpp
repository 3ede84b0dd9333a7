// IOMMU_IOAS_ALLOC and IOMMU_DESTROY, and what closing a context frees.
//
// Kernel reference (6.12): ioas.c iommufd_ioas_alloc_ioctl() (flags ->
// EOPNOTSUPP; respond before finalize, abort on a failed write-back),
// main.c iommufd_object_remove() (absent/zero/reserved id -> ENOENT, users
// != 1 -> EBUSY, clears ictx->vfio_ioas), iommufd_fops_release() (leaves
// first), xarray XA_FLAGS_ALLOC1 (lowest free id >= 1, one id space for all
// object types), ioas.c iommufd_ioas_destroy() (iopt_unmap_all()).
#include <catch2/catch.hpp>

#include <ioasid/iommufd.h>

#include <cerrno>
#include <memory>
#include <set>
#include <vector>

#include "core/access.h"
#include "core/ioas.h"
#include "test_support.h"

namespace {

using namespace ioasid;
using test::alloc_ok;
using test::Client;
using test::destroy_access;
using test::make_access;
using test::vfio_ioas;
using test::kBufferAddr;
using test::kStructAddr;
using test::kStructRegion;

constexpr std::uint64_t kPage = 4096;

core::Access& access_of(Client& c, std::uint32_t id)
{
    auto* access = c.ctx().objects().find_as<core::Access>(id);
    REQUIRE(access != nullptr);
    return *access;
}

int iova_ranges_rc(Client& c, std::uint32_t ioas_id)
{
    iommu_ioas_iova_ranges cmd{.size = sizeof(cmd), .ioas_id = ioas_id, .num_iovas = 1,
                               .__reserved = 0, .allowed_iovas = test::kArrayAddr,
                               .out_iova_alignment = 0};
    return c.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd);
}

} // namespace

TEST_CASE("IOAS_ALLOC hands out ids from 1, lowest free first", "[dispatch][ioas_alloc]")
{
    core::CoreServices services;
    Client c(services, Client::make_caller(4 << 20));

    CHECK(alloc_ok(c) == 1);
    CHECK(alloc_ok(c) == 2);
    CHECK(alloc_ok(c) == 3);
    CHECK(alloc_ok(c) == 4);

    SECTION("a hole in the middle is filled first")
    {
        CHECK(c.destroy(2) == 0);
        CHECK(alloc_ok(c) == 2);
        CHECK(alloc_ok(c) == 5);
    }
    SECTION("several holes are filled lowest first")
    {
        CHECK(c.destroy(3) == 0);
        CHECK(c.destroy(1) == 0);
        CHECK(alloc_ok(c) == 1);
        CHECK(alloc_ok(c) == 3);
        CHECK(alloc_ok(c) == 5);
    }
    SECTION("the highest id freed is reused before a new one")
    {
        CHECK(c.destroy(4) == 0);
        CHECK(alloc_ok(c) == 4);
    }
    SECTION("everything freed starts at 1 again")
    {
        for (std::uint32_t id = 1; id <= 4; ++id)
            CHECK(c.destroy(id) == 0);
        CHECK(alloc_ok(c) == 1);
        CHECK(alloc_ok(c) == 2);
    }
    SECTION("out_ioas_id input is ignored")
    {
        iommu_ioas_alloc cmd{.size = sizeof(cmd), .flags = 0, .out_ioas_id = 77};
        CHECK(c.ioctl(IOMMU_IOAS_ALLOC, cmd) == 0);
        CHECK(cmd.out_ioas_id == 5);
    }
}

TEST_CASE("object ids are one space shared by every object type", "[dispatch][ioas_alloc]")
{
    core::CoreServices services;
    Client c(services, Client::make_caller(4 << 20));
    const std::uint32_t ioas = alloc_ok(c);
    CHECK(ioas == 1);
    const std::uint32_t access = make_access(c, ioas);
    CHECK(access == 2);
    CHECK(alloc_ok(c) == 3);

    // An IOAS command on the access id sees no IOAS there.
    CHECK(iova_ranges_rc(c, access) == -ENOENT);
    std::uint64_t iova = 0;
    CHECK(c.map(access, kBufferAddr, kPage, &iova) == -ENOENT);

    // Its creator holds it, as a kernel driver holds its access: the client
    // cannot destroy it, the creator can, and that frees the id.
    CHECK(c.destroy(access) == -EBUSY);
    {
        std::lock_guard guard(c.ctx().lock());
        CHECK(core::access_destroy(c.ctx(), access) == 0);
    }
    CHECK(alloc_ok(c) == 2);
    CHECK(iova_ranges_rc(c, 2) == 0);
}

TEST_CASE("IOAS_ALLOC with flags is EOPNOTSUPP and consumes no id", "[dispatch][ioas_alloc]")
{
    core::CoreServices services;
    Client c(services, Client::make_caller(4 << 20));
    for (std::uint32_t flags : {1u, 2u, 0x80000000u, 0xffffffffu}) {
        CAPTURE(flags);
        iommu_ioas_alloc cmd{.size = sizeof(cmd), .flags = flags, .out_ioas_id = 0};
        CHECK(c.ioctl(IOMMU_IOAS_ALLOC, cmd) == -EOPNOTSUPP);
        CHECK(cmd.out_ioas_id == 0);
    }
    CHECK(c.ctx().objects().empty());
    CHECK(alloc_ok(c) == 1);
}

TEST_CASE("IOAS_ALLOC whose id cannot be written back creates nothing", "[dispatch][ioas_alloc]")
{
    // Read-only memory right after the fixture's struct region.
    auto caller = Client::make_caller(4 << 20);
    const std::uint64_t ro = kStructAddr + kStructRegion;
    caller->add_region(ro, kPage, /*writable=*/false);
    core::CoreServices services;
    Client c(services, caller);

    SECTION("out_ioas_id lies in read-only memory -> EFAULT")
    {
        // size and flags are writable (and written by the test); out_ioas_id
        // is the first word of the read-only page.
        const std::uint64_t at = ro - offsetof(iommu_ioas_alloc, out_ioas_id);
        iommu_ioas_alloc head{.size = sizeof(iommu_ioas_alloc), .flags = 0, .out_ioas_id = 0};
        c.write(at, std::as_bytes(std::span(&head, 1)).first(offsetof(iommu_ioas_alloc, out_ioas_id)));
        CHECK(c.ioctl_at(IOMMU_IOAS_ALLOC, at) == -EFAULT);
        CHECK(c.ctx().objects().empty());
        CHECK(iova_ranges_rc(c, 1) == -ENOENT);
        // The id went back to the pool.
        CHECK(alloc_ok(c) == 1);
    }
    SECTION("only the zero tail of a larger struct is read-only -> success, tail untouched")
    {
        const std::uint64_t at = ro - sizeof(iommu_ioas_alloc);
        iommu_ioas_alloc cmd{.size = sizeof(iommu_ioas_alloc) + 16, .flags = 0, .out_ioas_id = 0};
        c.write(at, std::as_bytes(std::span(&cmd, 1)));
        CHECK(c.ioctl_at(IOMMU_IOAS_ALLOC, at) == 0);
        c.read(at, std::as_writable_bytes(std::span(&cmd, 1)));
        CHECK(cmd.out_ioas_id == 1);
        CHECK(c.ctx().objects().size() == 1);
    }
}

TEST_CASE("DESTROY of an id that names no object is ENOENT", "[dispatch][destroy]")
{
    core::CoreServices services;
    Client c(services, Client::make_caller(4 << 20));
    const std::uint32_t ioas = alloc_ok(c);

    CHECK(c.destroy(0) == -ENOENT);
    CHECK(c.destroy(2) == -ENOENT);
    CHECK(c.destroy(12345) == -ENOENT);
    CHECK(c.destroy(0x7fffffff) == -ENOENT);
    CHECK(c.destroy(0xffffffff) == -ENOENT);
    CHECK(c.ctx().objects().size() == 1);

    SECTION("double destroy")
    {
        CHECK(c.destroy(ioas) == 0);
        CHECK(c.destroy(ioas) == -ENOENT);
        CHECK(iova_ranges_rc(c, ioas) == -ENOENT);
        std::uint64_t iova = 0;
        CHECK(c.map(ioas, kBufferAddr, kPage, &iova) == -ENOENT);
        CHECK(c.ctx().objects().empty());
    }
    SECTION("an id held by an object under construction")
    {
        // The kernel's xa_is_zero() slot: not destroyable, not found.
        std::lock_guard guard(c.ctx().lock());
        auto pending = core::ioas_alloc(c.ctx());
        REQUIRE(pending.id() == 2);
        CHECK(c.ctx().destroy(2) == -ENOENT);
        CHECK(c.ctx().objects().find_as<core::Ioas>(2) == nullptr);
    }
}

TEST_CASE("DESTROY of an IOAS in use is EBUSY until its user is gone", "[dispatch][destroy]")
{
    core::CoreServices services;
    Client c(services, Client::make_caller(4 << 20));
    const std::uint32_t ioas = alloc_ok(c);
    const std::uint32_t access = make_access(c, ioas);

    CHECK(c.destroy(ioas) == -EBUSY);
    CHECK(c.destroy(ioas) == -EBUSY); // no state change on failure
    // Still fully usable.
    std::uint64_t iova = 0;
    CHECK(c.map(ioas, kBufferAddr, kPage, &iova) == 0);
    CHECK(iova_ranges_rc(c, ioas) == 0);

    // The access's creator destroys it (the kernel's iommufd_access_destroy()).
    CHECK(c.destroy(access) == -EBUSY);
    {
        std::lock_guard guard(c.ctx().lock());
        CHECK(core::access_destroy(c.ctx(), access) == 0);
    }
    CHECK(c.destroy(ioas) == 0);
    CHECK(c.ctx().objects().empty());
}

TEST_CASE("DESTROY of an IOAS with mappings unmaps them", "[dispatch][destroy]")
{
    core::CoreServices services;
    Client c(services, Client::make_caller(4 << 20));
    const std::uint32_t a = alloc_ok(c);
    const std::uint32_t b = alloc_ok(c);
    REQUIRE(c.map_fixed(a, kBufferAddr, 4 * kPage, 0x100000) == 0);
    REQUIRE(c.map_fixed(a, kBufferAddr + 0x10000, 2 * kPage, 0x200000) == 0);

    std::weak_ptr<core::Pages> first, second;
    {
        auto& iopt = c.ctx().objects().find_as<core::Ioas>(a)->iopt();
        REQUIRE(iopt.area_count() == 2);
        first = iopt.find_area(0x100000)->pages;
        second = iopt.find_area(0x200000)->pages;
    }
    REQUIRE(!first.expired());

    SECTION("pages used only by it are released")
    {
        CHECK(c.destroy(a) == 0);
        CHECK(first.expired());
        CHECK(second.expired());
    }
    SECTION("pages shared through IOAS_COPY stay with the other IOAS")
    {
        iommu_ioas_copy copy{.size = sizeof(copy),
                             .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
                                      IOMMU_IOAS_MAP_WRITEABLE,
                             .dst_ioas_id = b,
                             .src_ioas_id = a,
                             .length = 4 * kPage,
                             .dst_iova = 0x500000,
                             .src_iova = 0x100000};
        REQUIRE(c.ioctl(IOMMU_IOAS_COPY, copy) == 0);
        CHECK(c.destroy(a) == 0);
        CHECK(!first.expired());
        CHECK(second.expired());
        std::uint64_t unmapped = 0;
        CHECK(c.unmap(b, 0, UINT64_MAX, &unmapped) == 0);
        CHECK(unmapped == 4 * kPage);
        CHECK(first.expired());
    }
    SECTION("the freed id comes back empty")
    {
        CHECK(c.destroy(a) == 0);
        CHECK(alloc_ok(c) == a);
        std::uint64_t unmapped = 99;
        CHECK(c.unmap(a, 0, UINT64_MAX, &unmapped) == 0);
        CHECK(unmapped == 0);
        // Its IOVA space is free again.
        CHECK(c.map_fixed(a, kBufferAddr, 4 * kPage, 0x100000) == 0);
    }
}

TEST_CASE("DESTROY of the VFIO compat IOAS clears the binding", "[dispatch][destroy]")
{
    core::CoreServices services;
    Client c(services, Client::make_caller(4 << 20));
    const std::uint32_t ioas = alloc_ok(c);
    std::uint32_t id = ioas;
    REQUIRE(vfio_ioas(c, IOMMU_VFIO_IOAS_SET, &id) == 0);
    // The compat pointer holds no reference: destroy is not EBUSY.
    CHECK(c.destroy(ioas) == 0);
    id = 0;
    CHECK(vfio_ioas(c, IOMMU_VFIO_IOAS_GET, &id) == -ENODEV);
    // A new IOAS with the same id is not silently the compat IOAS.
    CHECK(alloc_ok(c) == ioas);
    CHECK(vfio_ioas(c, IOMMU_VFIO_IOAS_GET, &id) == -ENODEV);
}

TEST_CASE("closing a context with live objects frees everything", "[dispatch][destroy][close]")
{
    core::CoreServices services;
    const uid_t uid = 1000;
    std::shared_ptr<memory::BufferCaller> caller = Client::make_caller(4 << 20);
    REQUIRE(caller->uid() == uid);
    std::weak_ptr<core::Pages> pages;
    {
        Client c(services, caller);
        const std::uint32_t a = alloc_ok(c);
        const std::uint32_t b = alloc_ok(c);
        REQUIRE(c.map_fixed(a, kBufferAddr, 16 * kPage, 0x100000) == 0);
        REQUIRE(c.map_fixed(a, kBufferAddr + 0x100000, 8 * kPage, 0x400000) == 0);
        iommu_ioas_copy copy{.size = sizeof(copy),
                             .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
                                      IOMMU_IOAS_MAP_WRITEABLE,
                             .dst_ioas_id = b,
                             .src_ioas_id = a,
                             .length = 16 * kPage,
                             .dst_iova = 0x800000,
                             .src_iova = 0x100000};
        REQUIRE(c.ioctl(IOMMU_IOAS_COPY, copy) == 0);
        std::uint32_t vfio = a;
        REQUIRE(vfio_ioas(c, IOMMU_VFIO_IOAS_SET, &vfio) == 0);

        // Pin through accesses on both IOASes: the shared pages once, the
        // second area too.
        const std::uint32_t acc_a = make_access(c, a);
        const std::uint32_t acc_b = make_access(c, b);
        std::vector<std::uint64_t> phys;
        REQUIRE(access_of(c, acc_a).pin_pages(0x100000, 16 * kPage, true, &phys) == 0);
        CHECK(phys.size() == 16);
        REQUIRE(access_of(c, acc_a).pin_pages(0x400000, 8 * kPage, false, &phys) == 0);
        REQUIRE(access_of(c, acc_b).pin_pages(0x800000, 4 * kPage, true, &phys) == 0);
        pages = c.ctx().objects().find_as<core::Ioas>(a)->iopt().find_area(0x100000)->pages;

        CHECK(services.phys.reserved_pages() == 16 + 8);
        CHECK(services.accounting.user_pages(uid) == 16 + 8);
        CHECK(c.destroy(a) == -EBUSY);
        CHECK(c.ctx().objects().size() == 4);
    }
    // Context gone: accesses, IOASes, areas, pins, charges, physical pages.
    CHECK(pages.expired());
    CHECK(services.phys.reserved_pages() == 0);
    CHECK(services.accounting.user_pages(uid) == 0);

    // The services are reusable by a new context, which starts from id 1.
    Client again(services, caller);
    CHECK(alloc_ok(again) == 1);
}

TEST_CASE("closing a context in RLIMIT_MODE 1 returns the per-process charge", "[dispatch][destroy][close]")
{
    core::CoreServices services;
    std::shared_ptr<memory::BufferCaller> caller = Client::make_caller(4 << 20);
    {
        Client c(services, caller);
        iommu_option opt{.size = sizeof(opt), .option_id = IOMMU_OPTION_RLIMIT_MODE,
                         .op = IOMMU_OPTION_OP_SET, .__reserved = 0, .object_id = 0, .val64 = 1};
        REQUIRE(c.ioctl(IOMMU_OPTION, opt) == 0);
        const std::uint32_t a = alloc_ok(c);
        REQUIRE(c.map_fixed(a, kBufferAddr, 4 * kPage, 0x100000) == 0);
        const std::uint32_t acc = make_access(c, a);
        REQUIRE(access_of(c, acc).pin_pages(0x100000, 4 * kPage, true, nullptr) == 0);
        CHECK(services.accounting.process_pages(caller->process_key()) == 4);
        CHECK(services.accounting.user_pages(caller->uid()) == 0);
    }
    CHECK(services.accounting.process_pages(caller->process_key()) == 0);
    CHECK(services.phys.reserved_pages() == 0);
}
