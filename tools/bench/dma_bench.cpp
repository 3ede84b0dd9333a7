// GB/s of emulated DMA: a device of the default topology reads (or writes)
// IOVA through core::device_dma in this process: the unit's IOTLB and
// table walk (or, for virtio-iommu, its mapping tree), then the copy to or
// from the backing. By default one device of each IOMMU family in turn.
// The ioctl transport around it is what `ioasid-bench transport` measures.
//
// Two backings, each next to the cost of the copy alone (its ceiling),
// measured in the same run over the same bytes:
//   caller  IOMMU_IOAS_MAP of memory that lives in another process (a child
//           that maps a buffer and sleeps), reached as the daemon reaches a
//           client: memory::ProcessCaller. Ceiling: one process_vm_readv
//           (writev) per transfer.
//   memfd   IOMMU_IOAS_MAP_FILE of a memfd, which the core maps into its own
//           address space. Ceiling: one memcpy per transfer.
// With a warm IOTLB, and with a miss on every page: the unit's IOTLB is
// emptied for the domain (hw::Unit::invalidate_domain(), what a driver's
// domain-selective invalidation does) before each transfer, outside the
// timed part, so the walk is measured and the invalidation is not.
// Tables for the IOAS with huge pages (the largest leaves the unit has up
// to 2 MiB: one IOTLB entry each) and without (its smallest page: one per
// page). The leaf sizes a table got are printed beside it.
#include "dma_bench.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/topology.h"
#include "core/context.h"
#include "core/device.h"
#include "core/dma.h"
#include "core/hw_pagetable.h"
#include "core/ioas.h"
#include "hwmodels/families.h"
#include "machine.h"
#include "memory/process_caller.h"

namespace ioasid::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kRegion = 4ULL << 20; // per backing: 1024 pages, all fit the IOTLB
constexpr std::uint64_t kHuge = 2ULL << 20;
// Where the two backings go: the first 2 MiB-aligned place from 1 GiB up
// (below it, if nothing above fits) where the device's IOAS takes both.
constexpr std::uint64_t kPreferredIova = 1ULL << 30;

[[noreturn]] void die(const std::string& what, int err = 0)
{
    std::fprintf(stderr, "ioasid-bench dma: %s%s%s\n", what.c_str(), err ? ": " : "", err ? std::strerror(err) : "");
    std::exit(1);
}

void check(int rc, const char* what)
{
    if (rc)
        die(what, -rc);
}

// A child that maps kRegion bytes (2 MiB aligned), fills them and sleeps
// until it is killed; the memory a client would map.
class ChildMemory {
public:
    ChildMemory()
    {
        int pipefd[2];
        if (pipe(pipefd))
            die("pipe", errno);
        pid_ = fork();
        if (pid_ < 0)
            die("fork", errno);
        if (pid_ == 0) {
            close(pipefd[0]);
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            void* raw = mmap(nullptr, kRegion + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (raw == MAP_FAILED)
                _exit(1);
            auto base = (reinterpret_cast<std::uintptr_t>(raw) + kHuge - 1) & ~(kHuge - 1);
            auto* bytes = reinterpret_cast<unsigned char*>(base);
            for (std::uint64_t i = 0; i < kRegion; ++i)
                bytes[i] = static_cast<unsigned char>(i * 31 + (i >> 12));
            std::uint64_t addr = base;
            if (write(pipefd[1], &addr, sizeof(addr)) != sizeof(addr))
                _exit(1);
            for (;;)
                pause();
        }
        close(pipefd[1]);
        if (read(pipefd[0], &addr_, sizeof(addr_)) != sizeof(addr_))
            die("the child did not map its memory");
        close(pipefd[0]);
    }
    ~ChildMemory()
    {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    ChildMemory(const ChildMemory&) = delete;
    ChildMemory& operator=(const ChildMemory&) = delete;

    [[nodiscard]] pid_t pid() const { return pid_; }
    [[nodiscard]] std::uint64_t addr() const { return addr_; }

private:
    pid_t pid_ = -1;
    std::uint64_t addr_ = 0;
};

// A memfd of kRegion bytes, filled, also mapped here for the ceiling.
class Memfd {
public:
    Memfd()
    {
        fd_ = memfd_create("ioasid-bench-dma", MFD_CLOEXEC);
        if (fd_ < 0)
            die("memfd_create", errno);
        if (ftruncate(fd_, static_cast<off_t>(kRegion)))
            die("ftruncate", errno);
        void* view = mmap(nullptr, kRegion, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
        if (view == MAP_FAILED)
            die("mmap memfd", errno);
        view_ = static_cast<std::byte*>(view);
        for (std::uint64_t i = 0; i < kRegion; ++i)
            view_[i] = static_cast<std::byte>(i * 17);
    }
    ~Memfd()
    {
        munmap(view_, kRegion);
        close(fd_);
    }
    Memfd(const Memfd&) = delete;
    Memfd& operator=(const Memfd&) = delete;

    [[nodiscard]] int fd() const { return fd_; }
    [[nodiscard]] std::byte* view() const { return view_; }

private:
    int fd_ = -1;
    std::byte* view_ = nullptr;
};

struct Options {
    bool quick = false;
    bool write = false;
    bool split = false;
    std::uint64_t bytes_per_row = 512ULL << 20;
    std::vector<std::uint64_t> sizes{4ULL << 10, 64ULL << 10, 1ULL << 20};
    std::vector<std::string> devices; // empty: the first device of each family
};

// The daemon's core with the default topology, one device bound.
class Machine {
public:
    explicit Machine(const std::string& device)
    {
        try {
            build_machine(config::default_topology(), services_.phys, services_.hardware);
        } catch (const std::exception& e) {
            die(std::string("building the default topology: ") + e.what());
        }
        ctx_ = std::make_unique<core::Context>(services_);
        device_ = services_.hardware.find_device(device);
        if (!device_)
            die("the default topology has no device " + device);
        std::lock_guard guard(ctx_->lock());
        check(core::device_bind(*ctx_, *device_, &dev_id_), "bind");
    }
    ~Machine()
    {
        // Objects first (they hold pins, physical ranges and domains).
        ctx_.reset();
    }

    core::Context& ctx() { return *ctx_; }
    core::CoreServices& services() { return services_; }
    core::EmulatedDevice& device() { return *device_; }
    [[nodiscard]] std::uint32_t dev_id() const { return dev_id_; }

private:
    core::CoreServices services_;
    std::unique_ptr<core::Context> ctx_;
    core::EmulatedDevice* device_ = nullptr;
    std::uint32_t dev_id_ = 0;
};

// One IOAS with the device attached and both backings mapped.
struct Layout {
    std::uint32_t ioas = 0;
    std::uint32_t hwpt = 0;
    hw::Domain* domain = nullptr;
    std::uint64_t caller_iova = 0;
    std::uint64_t memfd_iova = 0;
};

// Where 2 x kRegion fit among the IOAS's allowed ranges, best first: the
// first place from kPreferredIova up, then one in each range below it. A
// unit may still refuse a place (POWER's 64 KiB window takes no 4 KiB
// pages when the IOAS has huge pages off); the next one is tried then.
std::vector<std::uint64_t> places_for_backings(core::Context& ctx, std::uint32_t ioas)
{
    std::vector<core::IovaRange> ranges;
    std::uint64_t alignment = 0;
    check(core::ioas_iova_ranges(ctx, ioas, &ranges, &alignment), "IOAS_IOVA_RANGES");
    std::vector<std::uint64_t> above;
    std::vector<std::uint64_t> below;
    for (const core::IovaRange& r : ranges) {
        const std::uint64_t from = std::max(r.first, kPreferredIova);
        const std::uint64_t at = (from + kHuge - 1) & ~(kHuge - 1);
        if (at >= from && at <= r.last && r.last - at >= 2 * kRegion - 1)
            above.push_back(at);
        const std::uint64_t low = (r.first + kHuge - 1) & ~(kHuge - 1);
        if (low < kPreferredIova && low >= r.first && low <= r.last && r.last - low >= 2 * kRegion - 1)
            below.push_back(low);
    }
    above.insert(above.end(), below.begin(), below.end());
    if (above.empty())
        die("the device's IOAS has no room for the two backings");
    return above;
}

// The page sizes of the leaves a domain holds, as "4 KiB+2 MiB".
std::string leaf_sizes(const hw::Domain& domain)
{
    std::uint64_t seen = 0;
    domain.dump([&](const hw::DumpEntry& e) {
        if (e.leaf && std::has_single_bit(e.size))
            seen |= e.size;
    });
    std::string text;
    for (std::uint64_t bits = seen; bits; bits &= bits - 1) {
        const std::uint64_t size = bits & ~(bits - 1);
        text += (text.empty() ? "" : "+") + (size >= (1ULL << 20) ? std::to_string(size >> 20) + " MiB"
                                                                 : std::to_string(size >> 10) + " KiB");
    }
    return text.empty() ? "mappings" : text;
}

Layout make_layout(Machine& m, bool huge, const std::shared_ptr<memory::Caller>& child,
                   const std::shared_ptr<memory::Caller>& self, const ChildMemory& child_mem, const Memfd& memfd)
{
    core::Context& ctx = m.ctx();
    std::lock_guard guard(ctx.lock());
    Layout layout;
    auto pending = core::ioas_alloc(ctx);
    layout.ioas = pending.id();
    pending.publish();
    std::uint64_t value = huge ? 1 : 0;
    check(core::ioas_option_huge_pages(ctx, layout.ioas, core::OptionOp::set, &value), "huge-pages option");
    layout.hwpt = layout.ioas;
    check(core::device_attach(ctx, m.dev_id(), std::nullopt, &layout.hwpt), "attach");
    auto* hwpt = ctx.objects().find_as<core::HwptPaging>(layout.hwpt);
    if (!hwpt)
        die("no HWPT after attach");
    layout.domain = &hwpt->domain();

    int rc = -EINVAL;
    for (std::uint64_t at : places_for_backings(ctx, layout.ioas)) {
        std::uint64_t iova = at;
        rc = core::ioas_map(ctx, child,
                            core::MapRequest{.ioas_id = layout.ioas,
                                             .user_va = child_mem.addr(),
                                             .length = kRegion,
                                             .iova = at,
                                             .fixed_iova = true,
                                             .readable = true,
                                             .writable = true},
                            &iova);
        if (rc == 0)
            layout.caller_iova = at;
        if (rc != -EINVAL)
            break;
    }
    check(rc, "IOAS_MAP of the child's memory");
    layout.memfd_iova = layout.caller_iova + kRegion;
    std::uint64_t iova = layout.memfd_iova;
    check(core::ioas_map_file(ctx, self,
                              core::MapFileRequest{.ioas_id = layout.ioas,
                                                   .fd = memfd.fd(),
                                                   .start = 0,
                                                   .length = kRegion,
                                                   .iova = layout.memfd_iova,
                                                   .fixed_iova = true,
                                                   .readable = true,
                                                   .writable = true},
                              &iova),
          "IOAS_MAP_FILE of the memfd");
    return layout;
}

// Seconds spent in `body(i)` over `count` calls, each timed alone, with
// `before(i)` (untimed) ahead of each.
double timed(std::size_t count, const std::function<void(std::size_t)>& before,
             const std::function<void(std::size_t)>& body)
{
    std::chrono::duration<double> spent{0};
    for (std::size_t i = 0; i < count; ++i) {
        if (before)
            before(i);
        const auto start = Clock::now();
        body(i);
        spent += Clock::now() - start;
    }
    return spent.count();
}

struct Row {
    double gbps = 0;
    double ceiling_gbps = 0;
};

std::string size_text(std::uint64_t size)
{
    return size >= (1ULL << 20) ? std::to_string(size >> 20) + " MiB" : std::to_string(size >> 10) + " KiB";
}

class Bench {
public:
    Bench(const Options& options, Machine& machine, const ChildMemory& child, const Memfd& memfd)
        : opt_(options), m_(machine), child_(child), memfd_(memfd), buffer_(1ULL << 20)
    {
    }

    // The transfer i of `size` bytes at its place in the region.
    [[nodiscard]] std::uint64_t offset(std::size_t i, std::uint64_t size) const
    {
        return (i * size) % kRegion;
    }

    void dma(std::uint64_t iova, std::uint64_t size)
    {
        core::DmaRequest request{m_.dev_id(), std::nullopt, iova,
                                 opt_.write ? hw::Access::write : hw::Access::read};
        core::DmaResult result;
        std::lock_guard guard(m_.ctx().lock());
        int rc = core::device_dma(m_.ctx(), request, std::span(buffer_).first(size), &result);
        if (rc || result.fault || result.done != size)
            die("device_dma at " + std::to_string(iova) + " failed (rc " + std::to_string(rc) + ", done " +
                std::to_string(result.done) + ")");
    }

    void ceiling(bool caller, std::uint64_t off, std::uint64_t size)
    {
        if (!caller) {
            if (opt_.write)
                std::memcpy(memfd_.view() + off, buffer_.data(), size);
            else
                std::memcpy(buffer_.data(), memfd_.view() + off, size);
            return;
        }
        iovec local{buffer_.data(), size};
        iovec remote{reinterpret_cast<void*>(child_.addr() + off), size};
        ssize_t done = opt_.write ? process_vm_writev(child_.pid(), &local, 1, &remote, 1, 0)
                                  : process_vm_readv(child_.pid(), &local, 1, &remote, 1, 0);
        if (done != static_cast<ssize_t>(size))
            die("process_vm_readv/writev", errno);
    }

    // The DMA and its ceiling, transfer by transfer in turn, so that both
    // see the same machine (other load, caches); each transfer timed on
    // its own. The best of three runs of each.
    Row measure(bool caller, std::uint64_t size, bool miss, const Layout& layout)
    {
        const std::uint64_t base = caller ? layout.caller_iova : layout.memfd_iova;
        const std::size_t count = std::max<std::size_t>(16, opt_.bytes_per_row / size);
        hw::Unit& unit = *m_.device().unit;
        // Warm up: every page once through the IOTLB, the backing mapped.
        for (std::uint64_t off = 0; off < kRegion; off += size)
            dma(base + off, size);
        double best = 1e300;
        double best_ceiling = 1e300;
        for (int run = 0; run < 3; ++run) {
            std::chrono::duration<double> spent{0};
            std::chrono::duration<double> spent_ceiling{0};
            for (std::size_t i = 0; i < count; ++i) {
                const std::uint64_t off = offset(i, size);
                if (miss)
                    unit.invalidate_domain(*layout.domain);
                auto start = Clock::now();
                dma(base + off, size);
                auto middle = Clock::now();
                ceiling(caller, off, size);
                spent += middle - start;
                spent_ceiling += Clock::now() - middle;
            }
            best = std::min(best, spent.count());
            best_ceiling = std::min(best_ceiling, spent_ceiling.count());
        }
        const double bytes = static_cast<double>(count) * static_cast<double>(size);
        return {bytes / best / 1e9, bytes / best_ceiling / 1e9};
    }

    void table(bool huge, const std::shared_ptr<memory::Caller>& child_caller,
               const std::shared_ptr<memory::Caller>& self_caller)
    {
        const Layout layout = make_layout(m_, huge, child_caller, self_caller, child_, memfd_);
        std::printf("\nIOAS huge-pages %s: %s (%s) at IOVA 0x%llx; IOTLB warm, or emptied before each transfer "
                    "(miss)\n",
                    huge ? "on" : "off", leaf_sizes(*layout.domain).c_str(),
                    std::string(layout.domain->format_name()).c_str(),
                    static_cast<unsigned long long>(layout.caller_iova));
        std::printf("%-7s %-8s %-5s %9s %12s %-18s %6s %7s\n", "backing", "size", "iotlb", "GB/s", "ceiling GB/s",
                    "(ceiling)", "ratio", "target");
        for (bool caller : {true, false})
            for (std::uint64_t size : opt_.sizes)
                for (bool miss : {false, true}) {
                    const Row row = measure(caller, size, miss, layout);
                    const char* ceiling_name = caller ? (opt_.write ? "process_vm_writev" : "process_vm_readv")
                                                      : "memcpy";
                    std::printf("%-7s %-8s %-5s %9.2f %12.2f %-18s %5.0f%% %6s\n", caller ? "caller" : "memfd",
                                size_text(size).c_str(), miss ? "miss" : "warm", row.gbps, row.ceiling_gbps,
                                ceiling_name, 100.0 * row.gbps / row.ceiling_gbps, caller ? "80%" : "50%");
                    std::fflush(stdout);
                }
        if (opt_.split)
            split(layout);
    }

    // Where the time of one transfer goes: translation (IOTLB hit, and a
    // walk per page after an invalidation), then per run the physical
    // lookup and the backing's copy, and for caller memory the address
    // space check ProcessCaller does around each copy.
    void split(const Layout& layout)
    {
        hw::Unit& unit = *m_.device().unit;
        hw::Endpoint& endpoint = *m_.device().endpoint;
        const hw::Access access = opt_.write ? hw::Access::write : hw::Access::read;
        auto caller = memory::ProcessCaller::open(child_.pid(), getuid());
        const std::string mem_path = "/proc/" + std::to_string(child_.pid()) + "/mem";
        mem_fd_ = ::open(mem_path.c_str(), (opt_.write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        if (mem_fd_ < 0)
            die("open " + mem_path, errno);
        std::printf("\nper transfer, ns (best of 3): translation with a warm IOTLB / after emptying it, runs per\n"
                    "transfer, the copies of those runs (PhysSpace::resolve + the backing), the ceiling, and for\n"
                    "caller memory the address-space check ProcessCaller makes per copy (a pread of /proc/<pid>/mem)\n"
                    "and a copy through /proc/<pid>/mem instead of process_vm_readv/writev\n");
        for (bool is_caller : {true, false})
            for (std::uint64_t size : opt_.sizes) {
                const std::uint64_t base = is_caller ? layout.caller_iova : layout.memfd_iova;
                const std::size_t count = std::max<std::size_t>(16, (opt_.bytes_per_row / 4) / size);
                std::vector<hw::DmaRun> runs;
                auto translate = [&](std::size_t i) {
                    runs.clear();
                    std::lock_guard guard(m_.ctx().lock());
                    if (unit.translate(endpoint, std::nullopt, base + offset(i, size), size, access, &runs))
                        die("translate faulted");
                };
                auto best = [&](const std::function<void(std::size_t)>& before,
                                const std::function<void(std::size_t)>& body) {
                    double b = 1e300;
                    for (int run = 0; run < 3; ++run)
                        b = std::min(b, timed(count, before, body));
                    return b / static_cast<double>(count) * 1e9;
                };
                const double warm = best(nullptr, translate);
                const double miss = best([&](std::size_t) { unit.invalidate_domain(*layout.domain); }, translate);
                // The runs of each transfer, then only their copies timed.
                std::vector<std::vector<hw::DmaRun>> all(count);
                std::size_t nruns = 0;
                for (std::size_t i = 0; i < count; ++i) {
                    translate(i);
                    all[i] = runs;
                    nruns += runs.size();
                }
                const double copy = best(nullptr, [&](std::size_t i) {
                    std::uint64_t at = 0;
                    for (const hw::DmaRun& run : all[i]) {
                        auto resolved = m_.services().phys.resolve(run.pa);
                        auto bytes = std::span(buffer_).subspan(at, run.length);
                        int rc = opt_.write ? resolved->backing->write(resolved->offset, bytes)
                                            : resolved->backing->read(resolved->offset, bytes);
                        if (rc)
                            die("backing copy", -rc);
                        at += run.length;
                    }
                });
                const double ceil =
                    best(nullptr, [&](std::size_t i) { ceiling(is_caller, offset(i, size), size); });
                std::string extra;
                if (is_caller && caller) {
                    const double c = best(nullptr, [&](std::size_t) {
                        if (!caller->same_address_space())
                            die("the child is gone");
                    });
                    // The alternative: a copy through /proc/<pid>/mem, bound
                    // to the address space, which needs no check around it.
                    const double mem = best(nullptr, [&](std::size_t i) {
                        const auto at = static_cast<off_t>(child_.addr() + offset(i, size));
                        ssize_t done = opt_.write ? pwrite(mem_fd_, buffer_.data(), size, at)
                                                  : pread(mem_fd_, buffer_.data(), size, at);
                        if (done != static_cast<ssize_t>(size))
                            die("/proc/<pid>/mem", errno);
                    });
                    char buf[96];
                    std::snprintf(buf, sizeof(buf), "  check %.0f x%d  /proc/pid/mem %.0f", c, opt_.write ? 2 : 1, mem);
                    extra = buf;
                }
                std::printf("%-7s %-8s translate %6.0f / %6.0f  runs %.2f  copy %8.0f  ceiling %8.0f%s\n",
                            is_caller ? "caller" : "memfd", size_text(size).c_str(), warm, miss,
                            static_cast<double>(nruns) / static_cast<double>(count), copy, ceil, extra.c_str());
            }
        close(mem_fd_);
        mem_fd_ = -1;
    }

private:
    const Options& opt_;
    Machine& m_;
    const ChildMemory& child_;
    const Memfd& memfd_;
    std::vector<std::byte> buffer_;
    int mem_fd_ = -1;
};

// The default topology's first device of each family, in family order.
std::vector<std::string> first_device_of_each_family()
{
    core::CoreServices services;
    build_machine(config::default_topology(), services.phys, services.hardware);
    std::vector<std::string> names;
    for (const hw::Family& family : hw::families())
        for (const auto& unit : services.hardware.units()) {
            if (unit->family() != family.name || unit->endpoints().empty())
                continue;
            names.push_back(unit->endpoints().front()->name());
            break;
        }
    return names;
}

} // namespace

int run_dma_bench(int argc, char** argv)
{
    Options opt;
    for (int i = 2; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--quick") {
            opt.quick = true;
            opt.bytes_per_row = 64ULL << 20;
        } else if (arg == "--write") {
            opt.write = true;
        } else if (arg == "--split") {
            opt.split = true;
        } else if (arg == "--device" && i + 1 < argc) {
            opt.devices.emplace_back(argv[++i]);
        } else if (arg == "--help" || arg == "-h") {
            std::printf(
                "usage: ioasid-bench dma [--quick] [--write] [--split] [--device NAME]...\n"
                "GB/s of emulated DMA by devices of the default topology (by default the first\n"
                "device of each IOMMU family) through core::device_dma in this process, for\n"
                "4 KiB, 64 KiB and 1 MiB transfers, with a\n"
                "warm IOTLB and with the IOTLB emptied before each transfer, from memory of\n"
                "another process (IOAS_MAP; ceiling: process_vm_readv of the same bytes) and\n"
                "from a memfd (IOAS_MAP_FILE; ceiling: memcpy), each beside its ceiling.\n"
                "  --quick   64 MiB per line instead of 512 MiB\n"
                "  --write   the device writes memory (ceilings: process_vm_writev, memcpy)\n"
                "  --split   also where one transfer's time goes: translation, copy, checks\n"
                "  --device  this device of the default topology (repeatable)\n");
            return 0;
        } else {
            std::fprintf(stderr, "ioasid-bench dma: unknown argument %s\n", arg.c_str());
            return 2;
        }
    }

    // The child first, before this process has threads or a machine.
    ChildMemory child;
    Memfd memfd;
    std::shared_ptr<memory::Caller> child_caller = memory::ProcessCaller::open(child.pid(), getuid());
    std::shared_ptr<memory::Caller> self_caller = memory::ProcessCaller::open(getpid(), getuid());
    if (!child_caller || !self_caller)
        die("cannot open the processes as callers");
    if (opt.devices.empty())
        opt.devices = first_device_of_each_family();

    for (const std::string& device : opt.devices) {
        Machine machine(device);
        const hw::Unit& unit = *machine.device().unit;
        std::printf("\n=== emulated DMA %s by %s (%s unit %s), in-process core::device_dma, %s per line, "
                    "best of 3\n",
                    opt.write ? "writes" : "reads", device.c_str(), unit.family().c_str(), unit.name().c_str(),
                    size_text(opt.bytes_per_row).c_str());
        Bench bench(opt, machine, child, memfd);
        bench.table(true, child_caller, self_caller);
        bench.table(false, child_caller, self_caller);
    }
    return 0;
}

} // namespace ioasid::bench
