// Fuzz target for the ioctl path: each input is a program of iommufd calls
// on one context, with struct fields drawn from values near the edges the
// kernel checks. After the program the client closes the files it was
// handed, then the context, and every pinned page, charge, physical
// reservation, bound device and run-time mock device must be gone.
#include <ioasid/emu.h>
#include <ioasid/iommufd.h>
#include <ioasid/selftest.h>
#include <ioasid/vfio.h>

#include <sys/types.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "core/access.h"
#include "core/client_file.h"
#include "core/context.h"
#include "core/hardware.h"
#include "hwmodels/families.h"
#include "dispatch/dispatcher.h"
#include "memory/buffer_caller.h"

namespace {

using namespace ioasid;

constexpr std::uint64_t kStruct = 0x10000;
constexpr std::uint64_t kArray = 0x20000;
constexpr std::uint64_t kUser = 0x10000000;
// Steps per input; each hands over at most one file, so file numbers stay
// below it.
constexpr int kMaxSteps = 64;

class Input {
public:
    Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    bool empty() const { return pos_ >= size_; }
    std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
    std::uint32_t u32()
    {
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i)
            v = v << 8 | byte();
        return v;
    }
    std::uint64_t u64() { return std::uint64_t{u32()} << 32 | u32(); }
    // Object ids: mostly one the program was given, so that chains such
    // as IOAS, mock domain, nesting parent, nested HWPT come about;
    // otherwise any small id (a mock domain takes three at once).
    std::uint32_t id()
    {
        std::uint8_t pick = byte();
        if (pick < 160 && !learned_.empty())
            return learned_[pick % learned_.size()];
        return pick % 12;
    }
    // An id an ioctl answered with.
    void learn(std::uint32_t id) { learned_.push_back(id); }
    // One of `values`, or now and then anything at all.
    template <std::size_t N>
    std::uint64_t edge(const std::uint64_t (&values)[N])
    {
        std::uint8_t pick = byte();
        return pick < 240 ? values[pick % N] : u64();
    }
    std::uint64_t iova()
    {
        static constexpr std::uint64_t kEdges[] = {0, 1, 0xfff, 0x1000, 0x1001, 0x200000,
                                                   0x1000000, 1ULL << 32, UINT64_MAX - 0xfff,
                                                   UINT64_MAX - 1, UINT64_MAX};
        std::uint8_t pick = byte();
        if (pick < 128)
            return (pick % 64) * 0x1000 + ((pick & 64) ? 0x123 : 0);
        // Inside the mock domain's aperture, 2 KiB (its IO page) apart.
        if (pick < 160)
            return MOCK_APERTURE_START + (pick % 32) * 0x800;
        if (pick < 200)
            return kEdges[pick % std::size(kEdges)];
        return u64();
    }
    std::uint64_t length()
    {
        static constexpr std::uint64_t kEdges[] = {0, 1, 0xfff, 0x1000, 0x2000, 0x200000,
                                                   UINT64_MAX / 2, UINT64_MAX - 0x1000,
                                                   UINT64_MAX};
        std::uint8_t pick = byte();
        if (pick < 160)
            return (1 + pick % 16) * 0x1000;
        if (pick < 220)
            return kEdges[pick % std::size(kEdges)];
        return u64();
    }
    std::uint64_t user_va()
    {
        std::uint8_t pick = byte();
        if (pick < 200)
            return kUser + (pick % 32) * 0x1000 + ((pick & 32) ? 0x10 : 0);
        return u64();
    }
    // Mostly an IOVA the prelude mapped (kUser at MOCK_APERTURE_START)
    // and the client address behind it.
    struct Mapped {
        std::uint64_t iova;
        std::uint64_t va;
    };
    Mapped mapped()
    {
        std::uint8_t pick = byte();
        if (pick >= 160)
            return {iova(), user_va()};
        const std::uint64_t offset = (pick % 40) * 0x800;
        return {MOCK_APERTURE_START + offset, kUser + offset};
    }
    std::uint32_t flags(std::uint32_t known)
    {
        std::uint8_t pick = byte();
        return pick < 240 ? (pick & known) : u32();
    }
    std::uint32_t size(std::uint32_t real)
    {
        std::uint8_t pick = byte();
        if (pick < 220)
            return real;
        if (pick < 235)
            return real - 1 - pick % 4;
        return real + pick % 64;
    }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
    std::vector<std::uint32_t> learned_;
};

// Family keys left at their defaults.
class NoParams final : public hw::UnitParams {
public:
    std::optional<bool> boolean(std::string_view) override { return std::nullopt; }
    std::optional<std::int64_t> integer(std::string_view) override { return std::nullopt; }
    std::optional<std::string> string(std::string_view) override { return std::nullopt; }
    std::string where(std::string_view) const override { return "fuzz"; }
};

constexpr const char* kDevices[] = {"m0", "m1", "v0", "v1", "v2", "s0", "a0", "t0", "q0"};

struct Harness {
    core::CoreServices services;
    std::shared_ptr<memory::BufferCaller> caller = std::make_shared<memory::BufferCaller>();
    // What the units reserve for themselves (an SMMU's stream table).
    std::uint64_t unit_reserved_pages = 0;

    Harness()
    {
        caller->add_region(kStruct, 0x1000);
        caller->add_region(kArray, 0x10000);
        caller->add_region(kUser, 0x20000);
        // A unit of each family, named after it; v1 and v2 share an IOMMU
        // group, m1, v2, s0 and a0 take PASIDs, v2 only PASIDs.
        NoParams params;
        for (const hw::Family& family : hw::families()) {
            const std::string name(family.name);
            services.hardware.add_unit(family.create(name, params, services.phys));
        }
        services.hardware.add_device("mock", {"m0", 1, 0, true}, "m0", false, "vfio0");
        services.hardware.add_device("mock", {"m1", 2, 8, true}, "m1", false, "vfio1");
        services.hardware.add_device("vtd", {"v0", 8, 0, true}, "v0", false, "vfio2");
        services.hardware.add_device("vtd", {"v1", 16, 4, false}, "g", false, "vfio3");
        services.hardware.add_device("vtd", {"v2", 17, 4, true}, "g", true, "vfio4");
        services.hardware.add_device("smmuv3", {"s0", 3, 8, true}, "s0", false, "vfio5");
        services.hardware.add_device("amd", {"a0", 4, 8, true}, "a0", false, "vfio6");
        services.hardware.add_device("ppc_tce", {"t0", 5, 0, true}, "t0", false, "vfio7");
        services.hardware.add_device("virtio", {"q0", 6, 0, true}, "q0", false, "vfio8");
        unit_reserved_pages = services.phys.reserved_pages();
    }
};

[[noreturn]] void die_leaking(const char* what, std::uint64_t count)
{
    std::fprintf(stderr, "dispatch-fuzz: after the program: %s (%llu)\n", what,
                 static_cast<unsigned long long>(count));
    std::abort();
}

void leak(const char* what, std::uint64_t count)
{
    if (count)
        die_leaking(what, count);
}

// Issues `cmd` on `arg` as `size` bytes; on success `arg` holds the answer.
template <typename T>
int call(core::Context& ctx, memory::BufferCaller& caller, const std::shared_ptr<memory::Caller>& who,
         unsigned cmd, T& arg, std::uint32_t size, std::uint8_t tail)
{
    std::vector<std::byte> bytes(std::max<std::size_t>(size, sizeof(T)) + 64);
    std::memcpy(bytes.data(), &arg, sizeof(T));
    if (size > sizeof(T))
        bytes[size - 1] = std::byte{tail};
    (void)caller.memory().write(kStruct, bytes);
    const int rc = dispatch::ioctl(ctx, cmd, who, kStruct);
    if (rc == 0)
        (void)caller.memory().read(kStruct, std::as_writable_bytes(std::span(&arg, 1)));
    return rc;
}

// One program step's reach: the context, the machine and the client.
struct Step {
    Harness& h;
    core::Context& ctx;
    std::shared_ptr<memory::Caller> who;
    Input& in;
    std::uint8_t tail;

    template <typename T>
    int call(unsigned cmd, T& arg)
    {
        return ::call(ctx, *h.caller, who, cmd, arg, in.size(sizeof(T)), tail);
    }

    // A descriptor number: mostly one of the files the client holds (the
    // daemon numbers them from 0 up), sometimes one it does not.
    std::uint32_t fd()
    {
        const std::uint8_t pick = in.byte();
        if (pick < 200) {
            std::vector<int> held;
            for (int number = 0; number < kMaxSteps; ++number)
                if (h.caller->file(number))
                    held.push_back(number);
            return held.empty() ? 0 : held[pick % held.size()];
        }
        return pick < 225 ? pick % 8u : pick < 240 ? UINT32_MAX : in.u32();
    }
};

[[noreturn]] void die_broken(const char* what, long long value)
{
    std::fprintf(stderr, "dispatch-fuzz: %s (%lld)\n", what, value);
    std::abort();
}

// IOMMU_TEST_CMD: every op with the fields it reads, and ops no kernel
// knows. Ops on an access file name it by descriptor number in `id`.
void test_cmd_step(Step& s)
{
    Input& in = s.in;
    static constexpr std::uint64_t kUnknownOps[] = {0, IOMMU_TEST_OP_TRIGGER_IOPF + 1, 0x100, UINT32_MAX};
    iommu_test_cmd t{};
    t.size = sizeof(t);
    const std::uint8_t pick = in.byte();
    t.op = pick < 248 ? 1 + pick % IOMMU_TEST_OP_TRIGGER_IOPF : static_cast<std::uint32_t>(in.edge(kUnknownOps));
    t.id = in.id();
    switch (t.op) {
    case IOMMU_TEST_OP_ADD_RESERVED:
        t.add_reserved.start = in.iova();
        t.add_reserved.length = in.length();
        break;
    case IOMMU_TEST_OP_MOCK_DOMAIN:
        break;
    case IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS:
        t.mock_domain_flags.dev_flags =
            in.flags(MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_HUGE_IOVA | MOCK_FLAGS_DEVICE_PASID);
        break;
    case IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE:
        t.mock_domain_replace.pt_id = in.id();
        break;
    case IOMMU_TEST_OP_MD_CHECK_MAP: {
        const Input::Mapped at = in.mapped();
        t.check_map.iova = at.iova;
        t.check_map.uptr = at.va;
        t.check_map.length = in.byte() < 32 ? 0x800 : in.length();
        break;
    }
    case IOMMU_TEST_OP_MD_CHECK_REFS: {
        static constexpr std::uint64_t kRefs[] = {0, 1, 2, UINT32_MAX};
        t.check_refs.length = in.length();
        t.check_refs.uptr = in.user_va();
        t.check_refs.refs = static_cast<std::uint32_t>(in.edge(kRefs));
        break;
    }
    case IOMMU_TEST_OP_CREATE_ACCESS:
        t.create_access.flags = in.flags(MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
        break;
    case IOMMU_TEST_OP_DESTROY_ACCESS_PAGES: {
        static constexpr std::uint64_t kItems[] = {0, 1, 2, 3, UINT32_MAX};
        t.id = s.fd();
        t.destroy_access_pages.access_pages_id = static_cast<std::uint32_t>(in.edge(kItems));
        break;
    }
    case IOMMU_TEST_OP_ACCESS_PAGES: {
        const Input::Mapped at = in.mapped();
        t.id = s.fd();
        t.access_pages.flags = in.flags(MOCK_FLAGS_ACCESS_WRITE | MOCK_FLAGS_ACCESS_SYZ);
        // The syzkaller encoding: area number low, offset in it high.
        t.access_pages.iova = (t.access_pages.flags & MOCK_FLAGS_ACCESS_SYZ) && in.byte() < 200
                                  ? std::uint64_t{in.byte() % 4u * 0x1000u} << 32 | in.byte() % 4u
                                  : at.iova;
        t.access_pages.length = in.length();
        t.access_pages.uptr = in.byte() < 32 ? 0 : at.va;
        break;
    }
    case IOMMU_TEST_OP_ACCESS_RW:
        t.id = s.fd();
        t.access_rw.flags = in.flags(MOCK_ACCESS_RW_WRITE | MOCK_ACCESS_RW_SLOW_PATH | MOCK_FLAGS_ACCESS_SYZ);
        t.access_rw.iova = (t.access_rw.flags & MOCK_FLAGS_ACCESS_SYZ) && in.byte() < 200
                               ? std::uint64_t{in.byte() % 64u} << 32 | in.byte() % 4u
                               : in.mapped().iova;
        t.access_rw.length = in.byte() < 128 ? in.byte() % 72u : in.length();
        t.access_rw.uptr = in.user_va();
        break;
    case IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT: {
        static constexpr std::uint64_t kLimits[] = {0, 1, 11, 12, 13, 4096, 65536, UINT32_MAX};
        t.memory_limit.limit = static_cast<std::uint32_t>(in.edge(kLimits));
        break;
    }
    case IOMMU_TEST_OP_ACCESS_REPLACE_IOAS:
        t.id = s.fd();
        t.access_replace_ioas.ioas_id = in.id();
        break;
    case IOMMU_TEST_OP_DIRTY: {
        static constexpr std::uint64_t kPageSizes[] = {0x800, 0x1000, 0x800, 0, 1, 0x3000, 0x200000};
        for (int i = 0; i < 16; ++i) {
            const std::byte bits{in.byte()};
            (void)s.h.caller->memory().write(kArray + i, std::span(&bits, 1));
        }
        t.dirty.flags = in.flags(0);
        t.dirty.iova = in.mapped().iova;
        t.dirty.length = in.length();
        t.dirty.page_size = in.edge(kPageSizes);
        const std::uint8_t where = in.byte();
        t.dirty.uptr = where < 200 ? kArray : where < 220 ? 0 : where < 240 ? kArray + 0x10000 - 1 : in.u64();
        break;
    }
    case IOMMU_TEST_OP_MD_CHECK_IOTLB: {
        static constexpr std::uint64_t kEntries[] = {0, 1, MOCK_NESTED_DOMAIN_IOTLB_ID_MAX,
                                                     MOCK_NESTED_DOMAIN_IOTLB_NUM, UINT32_MAX};
        static constexpr std::uint64_t kValues[] = {IOMMU_TEST_IOTLB_DEFAULT, 0, 1, IOMMU_TEST_IOTLB_DEFAULT + 1};
        t.check_iotlb.id = static_cast<std::uint32_t>(in.edge(kEntries));
        t.check_iotlb.iotlb = static_cast<std::uint32_t>(in.edge(kValues));
        break;
    }
    case IOMMU_TEST_OP_TRIGGER_IOPF: {
        static constexpr std::uint64_t kPasids[] = {0, 0, 1, (1u << MOCK_PASID_WIDTH) - 1, 1u << MOCK_PASID_WIDTH,
                                                    UINT32_MAX};
        t.trigger_iopf.dev_id = in.id();
        t.trigger_iopf.pasid = static_cast<std::uint32_t>(in.edge(kPasids));
        t.trigger_iopf.grpid = in.byte() % 4u;
        t.trigger_iopf.perm = in.flags(IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE |
                                       IOMMU_PGFAULT_PERM_EXEC | IOMMU_PGFAULT_PERM_PRIV);
        t.trigger_iopf.addr = in.iova();
        break;
    }
    default:
        t.add_reserved.start = in.u64();
        t.add_reserved.length = in.u64();
        break;
    }
    if (s.call(IOMMU_TEST_CMD, t) == 0 &&
        (t.op == IOMMU_TEST_OP_MOCK_DOMAIN || t.op == IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS)) {
        in.learn(t.mock_domain.out_stdev_id);
        in.learn(t.mock_domain.out_hwpt_id);
        in.learn(t.mock_domain.out_idev_id);
    }
}

// IOMMU_HWPT_ALLOC of a nested mock HWPT, with or without a fault queue.
void hwpt_nested_step(Step& s)
{
    Input& in = s.in;
    static constexpr std::uint64_t kTypes[] = {IOMMU_HWPT_DATA_SELFTEST, IOMMU_HWPT_DATA_SELFTEST,
                                               IOMMU_HWPT_DATA_SELFTEST, IOMMU_HWPT_DATA_NONE,
                                               IOMMU_HWPT_DATA_VTD_S1};
    static constexpr std::uint64_t kLengths[] = {sizeof(iommu_hwpt_selftest), sizeof(iommu_hwpt_selftest),
                                                 sizeof(iommu_hwpt_selftest), 0, 3, 8, 0x1000, 0x10001};
    static constexpr std::uint64_t kIotlbs[] = {IOMMU_TEST_IOTLB_DEFAULT, 0, UINT32_MAX};
    const iommu_hwpt_selftest data{.iotlb = static_cast<std::uint32_t>(in.edge(kIotlbs))};
    // Non-zero bytes after the struct: a longer data_len must be refused.
    const std::uint32_t after = in.byte() < 200 ? 0 : 1;
    (void)s.h.caller->memory().write(kArray, std::as_bytes(std::span(&data, 1)));
    (void)s.h.caller->memory().write(kArray + sizeof(data), std::as_bytes(std::span(&after, 1)));
    constexpr std::uint32_t kFlags = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING |
                                     IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID;
    // A nesting parent first, often enough for a nested HWPT to find one.
    const bool parent = in.byte() < 96;
    const std::uint8_t where = in.byte();
    iommu_hwpt_alloc a{.size = sizeof(a),
                       .flags = parent ? IOMMU_HWPT_ALLOC_NEST_PARENT | in.flags(kFlags) : in.flags(kFlags),
                       .dev_id = in.id(),
                       .pt_id = in.id(),
                       .out_hwpt_id = 0,
                       .__reserved = 0,
                       .data_type = parent ? 0u : static_cast<std::uint32_t>(in.edge(kTypes)),
                       .data_len = parent ? 0u : static_cast<std::uint32_t>(in.edge(kLengths)),
                       .data_uptr = where < 220 ? kArray : where < 240 ? kArray + 0x10000 - 2 : in.u64(),
                       .fault_id = in.id(),
                       .__reserved2 = 0};
    if (s.call(IOMMU_HWPT_ALLOC, a) == 0)
        in.learn(a.out_hwpt_id);
}

// IOMMU_HWPT_INVALIDATE with an array of selftest entries in kArray.
void hwpt_invalidate_step(Step& s)
{
    Input& in = s.in;
    static constexpr std::uint64_t kTypes[] = {IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
                                               IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
                                               IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID,
                                               IOMMU_HWPT_INVALIDATE_DATA_VTD_S1};
    static constexpr std::uint64_t kEntryLens[] = {sizeof(iommu_hwpt_invalidate_selftest),
                                                   sizeof(iommu_hwpt_invalidate_selftest),
                                                   sizeof(iommu_hwpt_invalidate_selftest), 0, 4, 7, 9, 16,
                                                   4096, 4097, UINT32_MAX};
    static constexpr std::uint64_t kEntryNums[] = {0, 1, 2, 3, 4, 8, 1u << 19, (1u << 19) + 1, UINT32_MAX};
    static constexpr std::uint64_t kIotlbIds[] = {0, 1, MOCK_NESTED_DOMAIN_IOTLB_ID_MAX,
                                                  MOCK_NESTED_DOMAIN_IOTLB_NUM};
    for (std::uint64_t i = 0; i < 16; ++i) {
        const iommu_hwpt_invalidate_selftest entry{.flags = in.flags(IOMMU_TEST_INVALIDATE_FLAG_ALL),
                                                   .iotlb_id = static_cast<std::uint32_t>(in.edge(kIotlbIds))};
        (void)s.h.caller->memory().write(kArray + i * sizeof(entry), std::as_bytes(std::span(&entry, 1)));
    }
    const std::uint8_t where = in.byte();
    iommu_hwpt_invalidate a{.size = sizeof(a),
                            .hwpt_id = in.id(),
                            .data_uptr = where < 220 ? kArray : where < 230 ? 0 : where < 245 ? kArray + 0x10000 - 8 : in.u64(),
                            .data_type = static_cast<std::uint32_t>(in.edge(kTypes)),
                            .entry_len = static_cast<std::uint32_t>(in.edge(kEntryLens)),
                            .entry_num = static_cast<std::uint32_t>(in.edge(kEntryNums)),
                            .__reserved = in.byte() < 250 ? 0u : 1u};
    s.call(IOMMU_HWPT_INVALIDATE, a);
}

// read(2) and write(2) on a handed file, as a client does on a fault fd:
// edge counts, room shorter than the count, hostile responses.
void file_io_step(Step& s)
{
    Input& in = s.in;
    constexpr std::uint64_t kRecord = sizeof(iommu_hwpt_pgfault);
    constexpr std::uint64_t kResponse = sizeof(iommu_hwpt_page_response);
    const std::uint32_t number = s.fd();
    const bool reading = in.byte() & 1;
    std::shared_ptr<core::ClientFile> file = s.h.caller->file(static_cast<int>(number));
    if (reading) {
        static constexpr std::uint64_t kCounts[] = {0, 1, kRecord - 1, kRecord, kRecord + 1, 2 * kRecord,
                                                    4 * kRecord, 4096 / kRecord * kRecord, 4096,
                                                    UINT64_MAX - UINT64_MAX % kRecord, UINT64_MAX};
        const std::uint64_t count = in.edge(kCounts);
        // A transport offers at most a page, sometimes less than asked.
        std::size_t room = std::min<std::uint64_t>(count, 4096);
        if (in.byte() < 48)
            room = std::min<std::size_t>(room, in.byte());
        if (!file)
            return;
        std::vector<std::byte> out(room);
        // poll(2) must show every record a read then finds.
        const bool readable = file->readable();
        const ssize_t got = file->read(out, count);
        if (got > 0 && !readable)
            die_broken("read found records poll did not show", got);
        if (got > static_cast<ssize_t>(room))
            die_broken("read answered more than the room it was given", got);
        if (got > 0 && got % kRecord)
            die_broken("read answered part of a record", got);
        return;
    }
    // Cookies are handed out from 1 up: mostly one that was.
    static constexpr std::uint64_t kCookies[] = {1, 1, 1, 2, 0, 3, UINT32_MAX};
    static constexpr std::uint64_t kCodes[] = {IOMMUFD_PAGE_RESP_SUCCESS, IOMMUFD_PAGE_RESP_INVALID, 2, UINT32_MAX};
    const std::size_t records = in.byte() % 5;
    std::vector<std::byte> bytes(records * kResponse + (in.byte() < 32 ? 1 + in.byte() % 7 : 0));
    for (std::size_t i = 0; i < records; ++i) {
        const iommu_hwpt_page_response response{.cookie = static_cast<std::uint32_t>(in.edge(kCookies)),
                                                .code = static_cast<std::uint32_t>(in.edge(kCodes))};
        std::memcpy(bytes.data() + i * kResponse, &response, kResponse);
    }
    if (!file)
        return;
    const ssize_t put = file->write(bytes);
    if (put > static_cast<ssize_t>(bytes.size()))
        die_broken("write took more bytes than it was given", put);
    if (put > 0 && put % kResponse)
        die_broken("write took part of a response", put);
}

// The VFIO type1 ioctls that take an integer, not a pointer.
void vfio_integer_step(Step& s)
{
    static constexpr unsigned kCommands[] = {VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU,
                                             VFIO_SET_IOMMU};
    static constexpr std::uint64_t kValues[] = {0, VFIO_TYPE1_IOMMU, VFIO_SPAPR_TCE_IOMMU, VFIO_TYPE1v2_IOMMU,
                                                VFIO_DMA_CC_IOMMU, VFIO_EEH, VFIO_TYPE1_NESTING_IOMMU,
                                                VFIO_SPAPR_TCE_v2_IOMMU, VFIO_NOIOMMU_IOMMU, VFIO_UNMAP_ALL,
                                                VFIO_UPDATE_VADDR, VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU,
                                                UINT32_MAX, UINT64_MAX};
    const unsigned cmd = kCommands[s.in.byte() % std::size(kCommands)];
    const int rc = dispatch::ioctl(s.ctx, cmd, s.who, s.in.edge(kValues));
    if (cmd == VFIO_GET_API_VERSION && rc != VFIO_API_VERSION)
        die_broken("VFIO_GET_API_VERSION answered another version", rc);
}

// The VFIO type1 ioctls that take a struct: argsz edges, flags with the
// bits iommufd refuses, and VFIO_IOMMU_GET_INFO's caps written into kArray.
void vfio_struct_step(Step& s)
{
    Input& in = s.in;
    memory::CallerMemory& mem = s.h.caller->memory();
    switch (in.byte() % 4) {
    case 0: {
        static constexpr std::uint64_t kArgsz[] = {0, 15, 16, 17, 23, 24, 32, 36, 40, 44, 48, 56, 64, 72, 80, 4096};
        vfio_iommu_type1_info info{};
        info.argsz = static_cast<std::uint32_t>(in.edge(kArgsz));
        info.flags = in.byte() < 200 ? 0 : in.u32();
        const std::uint8_t where = in.byte();
        const std::uint64_t at = where < 200 ? kArray : where < 230 ? kArray + 0x10000 - 24 : kArray + 0x10000 - 8;
        (void)mem.write(at, std::as_bytes(std::span(&info, 1)).first(std::min<std::uint64_t>(sizeof(info), 0x10000 + kArray - at)));
        // Bytes past argsz (and past the first version the kernel reads
        // whatever argsz says) are the client's, never to be written.
        const std::uint64_t guard_at = at + std::max<std::uint32_t>(info.argsz, 16);
        const std::vector<std::byte> guard(64, std::byte{0xa5});
        const bool guarded = at == kArray && info.argsz <= 4096;
        if (guarded)
            (void)mem.write(guard_at, guard);
        (void)dispatch::ioctl(s.ctx, VFIO_IOMMU_GET_INFO, s.who, at);
        if (guarded) {
            std::vector<std::byte> after(guard.size());
            if (mem.read(guard_at, after) || after != guard)
                die_broken("VFIO_IOMMU_GET_INFO wrote past argsz", info.argsz);
        }
        break;
    }
    case 1:
    case 2: {
        static constexpr std::uint64_t kArgsz[] = {sizeof(vfio_iommu_type1_dma_map), sizeof(vfio_iommu_type1_dma_map),
                                                   sizeof(vfio_iommu_type1_dma_map), 0,
                                                   sizeof(vfio_iommu_type1_dma_map) - 1,
                                                   sizeof(vfio_iommu_type1_dma_map) + 1, UINT32_MAX};
        vfio_iommu_type1_dma_map map{.argsz = static_cast<std::uint32_t>(in.edge(kArgsz)),
                                     .flags = in.flags(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE |
                                                       VFIO_DMA_MAP_FLAG_VADDR),
                                     .vaddr = in.user_va(),
                                     .iova = in.iova(),
                                     .size = in.length()};
        (void)mem.write(kStruct, std::as_bytes(std::span(&map, 1)));
        (void)dispatch::ioctl(s.ctx, VFIO_IOMMU_MAP_DMA, s.who, kStruct);
        break;
    }
    default: {
        static constexpr std::uint64_t kArgsz[] = {sizeof(vfio_iommu_type1_dma_unmap),
                                                   sizeof(vfio_iommu_type1_dma_unmap), 0,
                                                   sizeof(vfio_iommu_type1_dma_unmap) - 1,
                                                   sizeof(vfio_iommu_type1_dma_unmap) + 1, UINT32_MAX};
        const bool all = in.byte() < 64;
        vfio_iommu_type1_dma_unmap unmap{.argsz = static_cast<std::uint32_t>(in.edge(kArgsz)),
                                         .flags = in.flags(VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP |
                                                           VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR),
                                         .iova = all ? 0 : in.iova(),
                                         .size = all ? 0 : in.length()};
        (void)mem.write(kStruct, std::as_bytes(std::span(&unmap, 1)));
        (void)dispatch::ioctl(s.ctx, VFIO_IOMMU_UNMAP_DMA, s.who, kStruct);
        break;
    }
    }
}

// Half the programs start from a machine the selftests would have built:
// an IOAS with memory mapped in the mock aperture, a mock device on it, an
// access file, a nesting parent, a fault queue and a nested HWPT that
// reports to it, which the device may be moved to and fault on. Random steps seldom chain that far by themselves.
void prelude(Step& s)
{
    Input& in = s.in;
    auto exact = [&s](unsigned cmd, auto& arg) {
        return call(s.ctx, *s.h.caller, s.who, cmd, arg, sizeof(arg), 0);
    };
    iommu_ioas_alloc ioas{.size = sizeof(ioas), .flags = 0, .out_ioas_id = 0};
    if (exact(IOMMU_IOAS_ALLOC, ioas))
        return;
    in.learn(ioas.out_ioas_id);
    iommu_ioas_map map{.size = sizeof(map),
                       .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE,
                       .ioas_id = ioas.out_ioas_id, .__reserved = 0, .user_va = kUser, .length = 0x10000,
                       .iova = MOCK_APERTURE_START};
    (void)exact(IOMMU_IOAS_MAP, map);
    iommu_test_cmd mock{};
    mock.size = sizeof(mock);
    mock.op = IOMMU_TEST_OP_MOCK_DOMAIN;
    mock.id = ioas.out_ioas_id;
    if (exact(IOMMU_TEST_CMD, mock))
        return;
    in.learn(mock.mock_domain.out_stdev_id);
    in.learn(mock.mock_domain.out_hwpt_id);
    in.learn(mock.mock_domain.out_idev_id);
    iommu_test_cmd access{};
    access.size = sizeof(access);
    access.op = IOMMU_TEST_OP_CREATE_ACCESS;
    access.id = ioas.out_ioas_id;
    access.create_access.flags = MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES;
    (void)exact(IOMMU_TEST_CMD, access);
    iommu_hwpt_alloc parent{.size = sizeof(parent), .flags = IOMMU_HWPT_ALLOC_NEST_PARENT,
                            .dev_id = mock.mock_domain.out_idev_id, .pt_id = ioas.out_ioas_id, .out_hwpt_id = 0,
                            .__reserved = 0, .data_type = IOMMU_HWPT_DATA_NONE, .data_len = 0, .data_uptr = 0,
                            .fault_id = 0, .__reserved2 = 0};
    if (exact(IOMMU_HWPT_ALLOC, parent))
        return;
    in.learn(parent.out_hwpt_id);
    iommu_fault_alloc fault{.size = sizeof(fault), .flags = 0, .out_fault_id = 0, .out_fault_fd = 0};
    if (exact(IOMMU_FAULT_QUEUE_ALLOC, fault))
        return;
    in.learn(fault.out_fault_id);
    const iommu_hwpt_selftest data{.iotlb = IOMMU_TEST_IOTLB_DEFAULT};
    (void)s.h.caller->memory().write(kArray, std::as_bytes(std::span(&data, 1)));
    iommu_hwpt_alloc nested{.size = sizeof(nested), .flags = IOMMU_HWPT_FAULT_ID_VALID,
                            .dev_id = mock.mock_domain.out_idev_id, .pt_id = parent.out_hwpt_id,
                            .out_hwpt_id = 0, .__reserved = 0, .data_type = IOMMU_HWPT_DATA_SELFTEST,
                            .data_len = sizeof(data), .data_uptr = kArray, .fault_id = fault.out_fault_id,
                            .__reserved2 = 0};
    if (exact(IOMMU_HWPT_ALLOC, nested))
        return;
    in.learn(nested.out_hwpt_id);
    // Half the time the device moves onto it, so that its page requests
    // reach the queue, and has one waiting there.
    if (in.byte() & 1) {
        iommu_test_cmd replace{};
        replace.size = sizeof(replace);
        replace.op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE;
        replace.id = mock.mock_domain.out_stdev_id;
        replace.mock_domain_replace.pt_id = nested.out_hwpt_id;
        if (exact(IOMMU_TEST_CMD, replace))
            return;
        iommu_test_cmd trigger{};
        trigger.size = sizeof(trigger);
        trigger.op = IOMMU_TEST_OP_TRIGGER_IOPF;
        trigger.trigger_iopf.dev_id = mock.mock_domain.out_idev_id;
        trigger.trigger_iopf.perm = IOMMU_PGFAULT_PERM_READ;
        trigger.trigger_iopf.addr = MOCK_APERTURE_START;
        (void)exact(IOMMU_TEST_CMD, trigger);
    }
}

void run(Input& in)
{
    static Harness* harness = new Harness; // one per process; checked after each input
    Harness& h = *harness;
    {
        core::Context ctx(h.services);
        std::shared_ptr<memory::Caller> who = h.caller;
        // Files the client closed: each must be gone before the context is.
        std::vector<std::weak_ptr<core::ClientFile>> closed;
        auto close_file = [&](int number) {
            if (std::shared_ptr<core::ClientFile> file = h.caller->file(number)) {
                closed.push_back(file);
                file.reset();
                h.caller->close_file(number);
            }
        };
        if (in.byte() < 128) {
            Step step{h, ctx, who, in, 0};
            prelude(step);
        }
        for (int steps = 0; !in.empty() && steps < kMaxSteps; ++steps) {
            std::uint8_t tail = in.byte() & 1;
            Step step{h, ctx, who, in, tail};
            switch (in.byte() % 32) {
            case 0: {
                iommu_ioas_alloc a{.size = sizeof(a), .flags = in.flags(0), .out_ioas_id = 0};
                if (call(ctx, *h.caller, who, IOMMU_IOAS_ALLOC, a, in.size(sizeof(a)), tail) == 0)
                    in.learn(a.out_ioas_id);
                break;
            }
            case 1: {
                iommu_destroy a{.size = sizeof(a), .id = in.id()};
                call(ctx, *h.caller, who, IOMMU_DESTROY, a, in.size(sizeof(a)), tail);
                break;
            }
            case 2:
            case 3: {
                iommu_ioas_map a{.size = sizeof(a), .flags = in.flags(7), .ioas_id = in.id(),
                                 .__reserved = in.byte() < 250 ? 0u : 1u, .user_va = in.user_va(),
                                 .length = in.length(), .iova = in.iova()};
                call(ctx, *h.caller, who, IOMMU_IOAS_MAP, a, in.size(sizeof(a)), tail);
                break;
            }
            case 4: {
                iommu_ioas_unmap a{.size = sizeof(a), .ioas_id = in.id(), .iova = in.iova(),
                                   .length = in.byte() < 40 ? UINT64_MAX : in.length()};
                call(ctx, *h.caller, who, IOMMU_IOAS_UNMAP, a, in.size(sizeof(a)), tail);
                break;
            }
            case 5: {
                iommu_ioas_copy a{.size = sizeof(a), .flags = in.flags(7), .dst_ioas_id = in.id(),
                                  .src_ioas_id = in.id(), .length = in.length(),
                                  .dst_iova = in.iova(), .src_iova = in.iova()};
                call(ctx, *h.caller, who, IOMMU_IOAS_COPY, a, in.size(sizeof(a)), tail);
                break;
            }
            case 6: {
                iommu_ioas_iova_ranges a{.size = sizeof(a), .ioas_id = in.id(), .num_iovas = in.byte() % 4u,
                                         .__reserved = 0, .allowed_iovas = in.byte() < 240 ? kArray : in.u64(),
                                         .out_iova_alignment = 0};
                call(ctx, *h.caller, who, IOMMU_IOAS_IOVA_RANGES, a, in.size(sizeof(a)), tail);
                break;
            }
            case 7: {
                std::uint32_t n = in.byte() % 4;
                for (std::uint32_t i = 0; i < n; ++i) {
                    iommu_iova_range r{.start = in.iova(), .last = in.iova()};
                    (void)h.caller->memory().write(kArray + i * sizeof(r), std::as_bytes(std::span(&r, 1)));
                }
                iommu_ioas_allow_iovas a{.size = sizeof(a), .ioas_id = in.id(), .num_iovas = n,
                                         .__reserved = 0, .allowed_iovas = kArray};
                call(ctx, *h.caller, who, IOMMU_IOAS_ALLOW_IOVAS, a, in.size(sizeof(a)), tail);
                break;
            }
            case 8: {
                iommu_option a{.size = sizeof(a), .option_id = in.byte() % 3u, .op = std::uint16_t(in.byte() % 3),
                               .__reserved = 0, .object_id = in.id(), .val64 = in.byte() % 3u};
                call(ctx, *h.caller, who, IOMMU_OPTION, a, in.size(sizeof(a)), tail);
                break;
            }
            case 9: {
                // An in-daemon user pins and copies through the IOAS.
                std::uint32_t ioas = in.id();
                std::uint32_t access_id;
                if (core::access_create(ctx, ioas, 1, nullptr, &access_id) == 0) {
                    in.learn(access_id);
                    auto* access = ctx.objects().find_as<core::Access>(access_id);
                    std::vector<std::uint64_t> phys;
                    (void)access->pin_pages(in.iova(), in.length() % 0x10000, in.byte() & 1, &phys);
                    std::byte buf[64];
                    (void)access->rw(in.iova(), buf, in.byte() & 1);
                }
                break;
            }
            case 10: {
                static constexpr std::uint64_t kTypes[] = {IOMMU_HW_INFO_TYPE_SELFTEST, 0, 1, 2, 3};
                static constexpr std::uint64_t kLengths[] = {0, 4, sizeof(iommu_test_hw_info), 9, 64, 0x1000,
                                                             0x10000, 0x10001};
                const std::uint32_t flags = in.flags(IOMMU_HW_INFO_FLAG_INPUT_TYPE);
                iommu_hw_info a{};
                a.size = sizeof(a);
                a.flags = flags;
                a.dev_id = in.id();
                // Up to just past kArray: a longer tail would only fault
                // further on, after zero-filling gigabytes.
                a.data_len = static_cast<std::uint32_t>(in.edge(kLengths) % 0x10002);
                a.data_uptr = in.byte() < 230 ? kArray : in.u64();
                a.in_data_type = static_cast<std::uint32_t>(in.edge(kTypes));
                a.__reserved[0] = in.byte() < 250 ? 0 : 1;
                call(ctx, *h.caller, who, IOMMU_GET_HW_INFO, a, in.size(sizeof(a)), tail);
                break;
            }
            case 11: {
                ioasid_emu_device_bind a{.size = sizeof(a), .flags = in.flags(0), .name = {},
                                         .out_dev_id = 0, .__reserved = 0};
                std::strcpy(a.name, kDevices[in.byte() % std::size(kDevices)]);
                if (call(ctx, *h.caller, who, IOASID_EMU_DEVICE_BIND, a, in.size(sizeof(a)), tail) == 0)
                    in.learn(a.out_dev_id);
                break;
            }
            case 12: {
                ioasid_emu_device_unbind a{.size = sizeof(a), .dev_id = in.id()};
                call(ctx, *h.caller, who, IOASID_EMU_DEVICE_UNBIND, a, in.size(sizeof(a)), tail);
                break;
            }
            case 13:
            case 14: {
                ioasid_emu_device_attach a{.size = sizeof(a), .flags = in.flags(IOASID_EMU_DEVICE_PASID),
                                           .dev_id = in.id(), .pt_id = in.id(), .pasid = in.byte() % 20u,
                                           .__reserved = 0};
                call(ctx, *h.caller, who, IOASID_EMU_DEVICE_ATTACH, a, in.size(sizeof(a)), tail);
                break;
            }
            case 15: {
                ioasid_emu_device_detach a{.size = sizeof(a), .flags = in.flags(IOASID_EMU_DEVICE_PASID),
                                           .dev_id = in.id(), .pasid = in.byte() % 20u};
                call(ctx, *h.caller, who, IOASID_EMU_DEVICE_DETACH, a, in.size(sizeof(a)), tail);
                break;
            }
            case 16: {
                iommu_hwpt_alloc a{.size = sizeof(a), .flags = in.flags(0xf), .dev_id = in.id(),
                                   .pt_id = in.id(), .out_hwpt_id = 0, .__reserved = 0,
                                   .data_type = in.byte() < 240 ? 0u : in.u32(), .data_len = in.byte() % 2 * 8u,
                                   .data_uptr = kArray, .fault_id = 0, .__reserved2 = 0};
                if (call(ctx, *h.caller, who, IOMMU_HWPT_ALLOC, a, in.size(sizeof(a)), tail) == 0)
                    in.learn(a.out_hwpt_id);
                break;
            }
            case 17: {
                ioasid_emu_dma a{.size = sizeof(a), .flags = in.flags(3), .dev_id = in.id(),
                                 .pasid = in.byte() % 20u, .iova = in.iova(), .length = in.length() % 0x11000,
                                 .buf_uptr = kArray, .out_done = 0, .out_fault_reason = 0,
                                 .out_fault_code = 0, .out_fault_iova = 0};
                call(ctx, *h.caller, who, IOASID_EMU_DMA, a, in.size(sizeof(a)), tail);
                break;
            }
            case 18: {
                iommu_hwpt_set_dirty_tracking a{.size = sizeof(a), .flags = in.flags(1), .hwpt_id = in.id(),
                                                .__reserved = 0};
                call(ctx, *h.caller, who, IOMMU_HWPT_SET_DIRTY_TRACKING, a, in.size(sizeof(a)), tail);
                break;
            }
            case 19: {
                iommu_hwpt_get_dirty_bitmap a{.size = sizeof(a), .hwpt_id = in.id(), .flags = in.flags(1),
                                              .__reserved = 0, .iova = in.iova(), .length = in.length(),
                                              .page_size = in.byte() < 200 ? 0x1000u : in.u64(),
                                              .data = kArray};
                call(ctx, *h.caller, who, IOMMU_HWPT_GET_DIRTY_BITMAP, a, in.size(sizeof(a)), tail);
                break;
            }
            case 20:
            case 21:
            case 22:
                test_cmd_step(step);
                break;
            case 23:
                hwpt_nested_step(step);
                break;
            case 24:
                hwpt_invalidate_step(step);
                break;
            case 25: {
                // Fault queues never fail to come, and as their files
                // piled up, access files would seldom be the ones fd() picks.
                if (in.byte() < 128) {
                    iommu_test_cmd t{};
                    t.size = sizeof(t);
                    t.op = IOMMU_TEST_OP_CREATE_ACCESS;
                    t.id = in.id();
                    t.create_access.flags = in.flags(MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
                    call(ctx, *h.caller, who, IOMMU_TEST_CMD, t, in.size(sizeof(t)), tail);
                    break;
                }
                iommu_fault_alloc a{.size = sizeof(a), .flags = in.flags(0), .out_fault_id = 0,
                                    .out_fault_fd = 0};
                if (call(ctx, *h.caller, who, IOMMU_FAULT_QUEUE_ALLOC, a, in.size(sizeof(a)), tail) == 0)
                    in.learn(a.out_fault_id);
                break;
            }
            case 26:
                file_io_step(step);
                break;
            case 27:
                // The client's last close, outside the context's lock as
                // the transport's is.
                close_file(static_cast<int>(step.fd()));
                break;
            case 28:
                vfio_integer_step(step);
                break;
            case 29:
            case 30:
                vfio_struct_step(step);
                break;
            default: {
                iommu_vfio_ioas a{.size = sizeof(a), .ioas_id = in.id(), .op = std::uint16_t(in.byte() % 4),
                                  .__reserved = 0};
                call(ctx, *h.caller, who, IOMMU_VFIO_IOAS, a, in.size(sizeof(a)), tail);
                break;
            }
            }
        }
        // Each handed file holds the iommufd open in the kernel, so the
        // context can end only after the client's last close of all of
        // them: the client closes what it still holds, then the context.
        // A file the daemon kept past its close would outlive its context.
        for (int number = 0; number < kMaxSteps; ++number)
            close_file(number);
        leak("handed files left at numbers the program never reached", h.caller->file_count());
        for (const auto& file : closed)
            if (!file.expired())
                leak("a handed file outlives the client's last close", 1);
    }
    // Closing the context must give back everything it pinned, every
    // page-table page and every device, and take the mock devices it made
    // off the machine. The units' own structures stay (the SMMU's CD
    // tables live as long as the device, as in the kernel), in blocks
    // apart from the page tables'.
    std::uint64_t bound = 0;
    std::uint64_t runtime = 0;
    h.services.hardware.for_each_device([&](const core::EmulatedDevice& device, const core::Context* owner) {
        bound += owner != nullptr;
        runtime += device.runtime;
    });
    leak("devices still bound", bound);
    leak("run-time mock devices still on the machine", runtime);
    for (const auto& unit : h.services.hardware.units())
        leak("page-table pages still held by a unit", unit->page_table_pages());
    leak("physical pages still reserved", h.services.phys.reserved_pages() - h.unit_reserved_pages);
    leak("pages still charged to the user", h.services.accounting.user_pages(h.caller->uid()));
    leak("pages still charged to the process", h.services.accounting.process_pages(h.caller->process_key()));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    Input in(data, size);
    run(in);
    return 0;
}
