// Fault queues: IOMMU_FAULT_QUEUE_ALLOC, HWPTs allocated with
// IOMMU_HWPT_FAULT_ID_VALID, IOMMU_TEST_OP_TRIGGER_IOPF, and the fault
// file's read and write, against the kernel (6.12): fault.c
// iommufd_fault_alloc(), iommufd_fault_fops_read/write(),
// iommufd_auto_response_faults(); hw_pagetable.c iommufd_hwpt_alloc();
// io-pgfault.c find_fault_handler(); selftest.c iommufd_test_trigger_iopf().
#include <catch2/catch.hpp>

#include <ioasid/iommufd.h>
#include <ioasid/selftest.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "core/fault.h"
#include "hardware_fixture.h"

using namespace ioasid;
using namespace ioasid::test;

namespace {

constexpr std::uint64_t kDataAddr = kArrayAddr;
constexpr std::uint32_t kRecord = sizeof(iommu_hwpt_pgfault);
constexpr std::uint32_t kResponse = sizeof(iommu_hwpt_page_response);

struct FaultQueue {
    std::uint32_t id = 0;
    int fd = -1;
};

int fault_alloc(Client& c, FaultQueue* out, std::uint32_t flags = 0)
{
    iommu_fault_alloc cmd{.size = sizeof(cmd), .flags = flags, .out_fault_id = 0, .out_fault_fd = 0};
    int rc = c.ioctl(IOMMU_FAULT_QUEUE_ALLOC, cmd);
    out->id = cmd.out_fault_id;
    out->fd = static_cast<int>(cmd.out_fault_fd);
    return rc;
}

FaultQueue fault_alloc_ok(Client& c)
{
    FaultQueue q;
    if (fault_alloc(c, &q) != 0)
        throw std::runtime_error("FAULT_QUEUE_ALLOC failed");
    return q;
}

int alloc_nested(Client& c, std::uint32_t dev, std::uint32_t parent, std::uint32_t* out,
                 std::uint32_t fault_id = 0, std::uint32_t flags = 0)
{
    put_value(c, kDataAddr, iommu_hwpt_selftest{IOMMU_TEST_IOTLB_DEFAULT});
    iommu_hwpt_alloc cmd = hwpt_alloc_cmd(dev, parent, flags);
    cmd.data_type = IOMMU_HWPT_DATA_SELFTEST;
    cmd.data_len = sizeof(iommu_hwpt_selftest);
    cmd.data_uptr = kDataAddr;
    cmd.fault_id = fault_id;
    int rc = c.ioctl(IOMMU_HWPT_ALLOC, cmd);
    *out = cmd.out_hwpt_id;
    return rc;
}

int trigger_iopf(Client& c, std::uint32_t dev, std::uint32_t pasid = 1, std::uint32_t grpid = 2,
                 std::uint64_t addr = 0xdeadbeaf)
{
    iommu_test_cmd cmd{};
    cmd.size = sizeof(cmd);
    cmd.op = IOMMU_TEST_OP_TRIGGER_IOPF;
    cmd.trigger_iopf.dev_id = dev;
    cmd.trigger_iopf.pasid = pasid;
    cmd.trigger_iopf.grpid = grpid;
    cmd.trigger_iopf.perm = IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE;
    cmd.trigger_iopf.addr = addr;
    return c.ioctl(IOMMU_TEST_CMD, cmd);
}

ssize_t read_records(core::ClientFile& file, std::size_t bytes, std::vector<iommu_hwpt_pgfault>* out)
{
    std::vector<std::byte> buf(bytes);
    const ssize_t n = file.read(buf, buf.size());
    out->clear();
    for (ssize_t at = 0; at + kRecord <= n; at += kRecord) {
        iommu_hwpt_pgfault record;
        std::memcpy(&record, buf.data() + at, kRecord);
        out->push_back(record);
    }
    return n;
}

ssize_t respond(core::ClientFile& file, const std::vector<iommu_hwpt_page_response>& responses)
{
    return file.write(std::as_bytes(std::span(responses)));
}

// A mock device on a nested HWPT that delivers to a fault queue.
struct FaultFixture : HardwareFixture {
    Client& c = client;
    std::uint32_t m0 = bind_ok(c, "m0");
    std::uint32_t parent = hwpt_alloc_ok(c, m0, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
    FaultQueue queue = fault_alloc_ok(c);
    std::shared_ptr<core::ClientFile> file = c.buffer().file(queue.fd);
    core::Fault& fault = *c.ctx().objects().find_as<core::Fault>(queue.id);

    ~FaultFixture()
    {
        // The file goes before the context, as the kernel's file holds it.
        file.reset();
        if (c.buffer().file_count())
            c.buffer().close_file(queue.fd);
    }
};

} // namespace

TEST_CASE("FAULT_QUEUE_ALLOC: an object and a file that keeps it busy", "[fault_queue]")
{
    FaultFixture f;
    Client& c = f.c;
    REQUIRE(f.file);
    CHECK(f.queue.id != 0);
    CHECK(object_status(c, f.queue.id)["type"] == "fault");

    SECTION("flags -> EOPNOTSUPP, nothing made")
    {
        const std::size_t objects = c.ctx().objects().size();
        FaultQueue q;
        CHECK(fault_alloc(c, &q, 1) == -EOPNOTSUPP);
        CHECK(c.ctx().objects().size() == objects);
        CHECK(c.buffer().file_count() == 1);
    }
    SECTION("IOMMU_DESTROY while the file is open -> EBUSY; after the last close it goes")
    {
        CHECK(c.destroy(f.queue.id) == -EBUSY);
        f.file.reset();
        c.buffer().close_file(f.queue.fd);
        CHECK(c.destroy(f.queue.id) == 0);
    }
    SECTION("an empty queue reads 0 bytes; sizes not a multiple of the record -> ESPIPE")
    {
        std::vector<iommu_hwpt_pgfault> records;
        CHECK(read_records(*f.file, kRecord, &records) == 0);
        CHECK(read_records(*f.file, 0, &records) == 0);
        CHECK(read_records(*f.file, kRecord + 1, &records) == -ESPIPE);
        CHECK(respond(*f.file, {}) == 0);
        std::byte odd[3]{};
        CHECK(f.file->write(odd) == -ESPIPE);
    }
}

TEST_CASE("HWPT_ALLOC with FAULT_ID_VALID: the fault is looked up after the HWPT is built", "[fault_queue]")
{
    FaultFixture f;
    Client& c = f.c;
    const std::size_t objects = c.ctx().objects().size();
    std::uint32_t hwpt = 0;

    SECTION("an unknown fault id -> ENOENT, the HWPT undone")
    {
        CHECK(alloc_nested(c, f.m0, f.parent, &hwpt, UINT32_MAX, IOMMU_HWPT_FAULT_ID_VALID) == -ENOENT);
        CHECK(alloc_nested(c, f.m0, f.parent, &hwpt, f.parent, IOMMU_HWPT_FAULT_ID_VALID) == -ENOENT);
        CHECK(c.ctx().objects().size() == objects);
    }
    SECTION("a paging HWPT takes no fault -> EOPNOTSUPP")
    {
        iommu_hwpt_alloc cmd = hwpt_alloc_cmd(f.m0, f.ioas, IOMMU_HWPT_FAULT_ID_VALID);
        cmd.fault_id = f.queue.id;
        CHECK(c.ioctl(IOMMU_HWPT_ALLOC, cmd) == -EOPNOTSUPP);
        cmd.flags |= IOMMU_HWPT_ALLOC_NEST_PARENT;
        CHECK(c.ioctl(IOMMU_HWPT_ALLOC, cmd) == -EOPNOTSUPP);
    }
    SECTION("fault_id is ignored without the flag")
    {
        CHECK(alloc_nested(c, f.m0, f.parent, &hwpt, UINT32_MAX) == 0);
        CHECK(object_status(c, hwpt)["fault"].is_null());
        CHECK(c.destroy(hwpt) == 0);
    }
    SECTION("the HWPT keeps its fault busy")
    {
        REQUIRE(alloc_nested(c, f.m0, f.parent, &hwpt, f.queue.id, IOMMU_HWPT_FAULT_ID_VALID) == 0);
        CHECK(object_status(c, hwpt)["fault"] == f.queue.id);
        f.file.reset();
        c.buffer().close_file(f.queue.fd);
        CHECK(c.destroy(f.queue.id) == -EBUSY);
        CHECK(c.destroy(hwpt) == 0);
        CHECK(c.destroy(f.queue.id) == 0);
    }
}

TEST_CASE("TRIGGER_IOPF: a page request read from the fault file and answered", "[fault_queue]")
{
    FaultFixture f;
    Client& c = f.c;
    std::uint32_t iopf_hwpt = 0;
    REQUIRE(alloc_nested(c, f.m0, f.parent, &iopf_hwpt, f.queue.id, IOMMU_HWPT_FAULT_ID_VALID) == 0);
    std::vector<iommu_hwpt_pgfault> records;

    SECTION("errors: no device -> ENOENT, not a mock device -> EINVAL")
    {
        CHECK(trigger_iopf(c, 9999) == -ENOENT);
        CHECK(trigger_iopf(c, f.ioas) == -ENOENT);
        const std::uint32_t v0 = bind_ok(c, "v0");
        CHECK(trigger_iopf(c, v0) == -EINVAL);
    }
    SECTION("a device whose HWPT has no fault queue: dropped, still 0")
    {
        CHECK(trigger_iopf(c, f.m0) == 0); // not attached
        attach_ok(c, f.m0, f.parent);
        CHECK(trigger_iopf(c, f.m0, 0) == 0);
        CHECK(trigger_iopf(c, f.m0, 1) == 0);
        CHECK(f.fault.queued() == 0);
    }

    attach_ok(c, f.m0, f.ioas);
    REQUIRE(attach_ok(c, f.m0, iopf_hwpt) == iopf_hwpt);
    CHECK(c.destroy(iopf_hwpt) == -EBUSY);

    SECTION("the record as the selftest reads it, then its response")
    {
        REQUIRE(trigger_iopf(c, f.m0) == 0);
        CHECK(f.fault.queued() == 1);
        REQUIRE(read_records(*f.file, kRecord, &records) == kRecord);
        const iommu_hwpt_pgfault& r = records.at(0);
        CHECK(r.flags == (IOMMU_PGFAULT_FLAGS_PASID_VALID | IOMMU_PGFAULT_FLAGS_LAST_PAGE));
        CHECK(r.dev_id == f.m0);
        CHECK(r.pasid == 1);
        CHECK(r.grpid == 2);
        CHECK(r.perm == (IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE));
        CHECK(r.__reserved == 0);
        CHECK(r.addr == 0xdeadbeaf);
        CHECK(r.length == 0);
        CHECK(r.cookie == 1);
        CHECK(f.fault.awaiting_response() == 1);
        CHECK(read_records(*f.file, kRecord, &records) == 0);

        CHECK(respond(*f.file, {{r.cookie, IOMMUFD_PAGE_RESP_SUCCESS}}) == kResponse);
        CHECK(f.fault.awaiting_response() == 0);
        // A cookie answered already, or never given -> EINVAL.
        CHECK(respond(*f.file, {{r.cookie, IOMMUFD_PAGE_RESP_SUCCESS}}) == -EINVAL);
        CHECK(respond(*f.file, {{77, IOMMUFD_PAGE_RESP_INVALID}}) == -EINVAL);
    }
    SECTION("without a PASID: no PASID_VALID flag")
    {
        REQUIRE(trigger_iopf(c, f.m0, 0) == 0);
        REQUIRE(read_records(*f.file, kRecord, &records) == kRecord);
        CHECK(records.at(0).flags == IOMMU_PGFAULT_FLAGS_LAST_PAGE);
        CHECK(records.at(0).pasid == 0);
    }
    SECTION("several groups: as many as fit, whole; too small for the first -> EINVAL")
    {
        for (std::uint32_t g = 0; g < 3; ++g)
            REQUIRE(trigger_iopf(c, f.m0, 1, g) == 0);
        CHECK(read_records(*f.file, 0, &records) == -EINVAL);
        // A transport that carries less than read(2) asked for: the count
        // rules (whole records) hold for the count, the answer is short.
        std::vector<std::byte> one(kRecord);
        CHECK(f.file->read(one, 3 * kRecord + 1) == -ESPIPE);
        CHECK(f.file->read(std::span(one).first(0), 3 * kRecord) == -EINVAL);
        CHECK(f.fault.queued() == 3);
        CHECK(read_records(*f.file, 2 * kRecord, &records) == 2 * kRecord);
        CHECK(records.at(0).grpid == 0);
        CHECK(records.at(1).grpid == 1);
        CHECK(records.at(0).cookie == 1);
        CHECK(records.at(1).cookie == 2);
        // Freed cookies are given again, lowest first.
        CHECK(respond(*f.file, {{1, IOMMUFD_PAGE_RESP_SUCCESS}}) == kResponse);
        CHECK(read_records(*f.file, 4 * kRecord, &records) == kRecord);
        CHECK(records.at(0).grpid == 2);
        CHECK(records.at(0).cookie == 1);
        // Responses up to a bad one count; a bad code is EINVAL.
        CHECK(respond(*f.file, {{2, IOMMUFD_PAGE_RESP_INVALID}, {2, IOMMUFD_PAGE_RESP_SUCCESS}}) == kResponse);
        CHECK(respond(*f.file, {{1, 7}}) == -EINVAL);
        CHECK(f.fault.awaiting_response() == 1);
    }
    SECTION("leaving the HWPT answers the device's groups, read or not")
    {
        REQUIRE(trigger_iopf(c, f.m0, 1, 0) == 0);
        REQUIRE(trigger_iopf(c, f.m0, 1, 1) == 0);
        REQUIRE(read_records(*f.file, kRecord, &records) == kRecord);
        CHECK(f.fault.queued() == 1);
        CHECK(f.fault.awaiting_response() == 1);
        SECTION("by replace")
        {
            attach_ok(c, f.m0, f.parent);
        }
        SECTION("by detach")
        {
            CHECK(detach(c, f.m0) == 0);
        }
        CHECK(f.fault.queued() == 0);
        CHECK(f.fault.awaiting_response() == 0);
        CHECK(respond(*f.file, {{records.at(0).cookie, IOMMUFD_PAGE_RESP_SUCCESS}}) == -EINVAL);
        CHECK(c.destroy(iopf_hwpt) == 0);
    }
    SECTION("a PASID of its own takes the request; the RID's nested HWPT only stands in")
    {
        std::uint32_t pasid_nested = 0;
        REQUIRE(alloc_nested(c, f.m0, f.parent, &pasid_nested, f.queue.id,
                             IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID) == 0);
        attach_ok(c, f.m0, pasid_nested);
        const std::uint32_t pasid_hwpt = hwpt_alloc_ok(c, f.m0, f.ioas, IOMMU_HWPT_ALLOC_PASID);
        attach_ok(c, f.m0, pasid_hwpt, 7);
        CHECK(trigger_iopf(c, f.m0, 7) == 0);
        CHECK(f.fault.queued() == 0);
        CHECK(trigger_iopf(c, f.m0, 8) == 0);
        CHECK(f.fault.queued() == 1);
        CHECK(detach(c, f.m0, 7) == 0);
        CHECK(detach(c, f.m0) == 0);
        CHECK(f.fault.queued() == 0);
    }
}

TEST_CASE("Fault: requests gather into a group up to the last one", "[fault_queue]")
{
    FaultFixture f;
    Client& c = f.c;
    const auto* device = c.ctx().objects().find_as<core::Device>(f.m0);
    REQUIRE(device);
    std::vector<iommu_hwpt_pgfault> records;
    {
        std::lock_guard guard(c.ctx().lock());
        f.fault.report(*device, {.flags = 0, .pasid = 0, .grpid = 5, .perm = 0, .addr = 0x1000});
        f.fault.report(*device, {.flags = 0, .pasid = 0, .grpid = 5, .perm = 0, .addr = 0x2000});
    }
    // Nothing is readable before the group's last request.
    CHECK(read_records(*f.file, 4 * kRecord, &records) == 0);
    {
        std::lock_guard guard(c.ctx().lock());
        f.fault.report(*device, {.flags = IOMMU_PGFAULT_FLAGS_LAST_PAGE, .pasid = 0, .grpid = 5, .perm = 0,
                                 .addr = 0x3000});
    }
    // A group is read whole or not at all.
    CHECK(read_records(*f.file, 2 * kRecord, &records) == -EINVAL);
    REQUIRE(read_records(*f.file, 4 * kRecord, &records) == 3 * kRecord);
    CHECK(records.at(0).addr == 0x1000);
    CHECK(records.at(2).addr == 0x3000);
    // One cookie for the group, answered once.
    CHECK(records.at(0).cookie == records.at(2).cookie);
    CHECK(respond(*f.file, {{records.at(0).cookie, IOMMUFD_PAGE_RESP_SUCCESS}}) == kResponse);
    CHECK(f.fault.awaiting_response() == 0);
}

TEST_CASE("Fault file: readable while a group waits, signalled when the queue fills", "[fault_queue]")
{
    FaultFixture f;
    Client& c = f.c;
    const auto* device = c.ctx().objects().find_as<core::Device>(f.m0);
    REQUIRE(device);
    auto report = [&](std::uint32_t grpid, std::uint32_t flags) {
        std::lock_guard guard(c.ctx().lock());
        f.fault.report(*device, {.flags = flags, .pasid = 0, .grpid = grpid, .perm = 0, .addr = 0x1000});
    };
    constexpr std::uint32_t kLast = IOMMU_PGFAULT_FLAGS_LAST_PAGE;
    // A group that came before the client had the file is signalled at once.
    report(1, kLast);
    int signals = 0;
    f.file->set_readable_signal([&] { ++signals; });
    CHECK(signals == 1);
    CHECK(f.file->readable());

    std::vector<iommu_hwpt_pgfault> records;
    REQUIRE(read_records(*f.file, kRecord, &records) == kRecord);
    CHECK_FALSE(f.file->readable());
    // A request short of its group's last is nothing to read yet.
    report(2, 0);
    CHECK(signals == 1);
    CHECK_FALSE(f.file->readable());
    // Empty to not empty signals; a second group behind it does not.
    report(2, kLast);
    report(3, kLast);
    CHECK(signals == 2);
    REQUIRE(read_records(*f.file, 2 * kRecord, &records) == 2 * kRecord);
    CHECK(f.file->readable()); // group 3 waits
    REQUIRE(read_records(*f.file, kRecord, &records) == kRecord);
    CHECK_FALSE(f.file->readable());
    // The device leaving answers what waits: nothing left to read.
    report(4, kLast);
    CHECK(signals == 3);
    {
        std::lock_guard guard(c.ctx().lock());
        f.fault.respond_all(*device);
    }
    CHECK_FALSE(f.file->readable());
    // Once the client closed its file, nothing is signalled.
    f.file.reset();
    c.buffer().close_file(f.queue.fd);
    report(5, kLast);
    CHECK(signals == 3);
}
