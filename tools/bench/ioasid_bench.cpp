// ioasid-bench: numbers, not verdicts. Measures the in-process ioctl path
// (dispatch + core) for IOMMU_IOAS_MAP + IOMMU_IOAS_UNMAP of one 4 KiB area
// while N other areas are present, and the daemon memory each area costs.
#include <ioasid/iommufd.h>

#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/context.h"
#include "dispatch/dispatcher.h"
#include "memory/buffer_caller.h"
#include "dma_bench.h"
#include "transport_bench.h"

namespace {

using namespace ioasid;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kStructAddr = 0x10000;
constexpr std::uint64_t kUserVa = 0x10000000;

class Session {
public:
    Session() : caller_(std::make_shared<memory::BufferCaller>()), ctx_(services_)
    {
        caller_->add_region(kStructAddr, 0x1000);
    }

    template <typename T>
    int call(unsigned int cmd, T& arg)
    {
        auto bytes = std::as_writable_bytes(std::span(&arg, 1));
        if (caller_->memory().write(kStructAddr, bytes))
            std::abort();
        int rc = dispatch::ioctl(ctx_, cmd, caller_, kStructAddr);
        if (caller_->memory().read(kStructAddr, bytes))
            std::abort();
        return rc;
    }

    std::uint32_t ioas_alloc()
    {
        iommu_ioas_alloc cmd{.size = sizeof(cmd), .flags = 0, .out_ioas_id = 0};
        check(call(IOMMU_IOAS_ALLOC, cmd), "IOAS_ALLOC");
        return cmd.out_ioas_id;
    }

    std::uint64_t map(std::uint32_t ioas, std::uint64_t iova, bool fixed)
    {
        iommu_ioas_map cmd{.size = sizeof(cmd),
                           .flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE |
                                    (fixed ? std::uint32_t{IOMMU_IOAS_MAP_FIXED_IOVA} : 0u),
                           .ioas_id = ioas,
                           .__reserved = 0,
                           .user_va = kUserVa,
                           .length = 4096,
                           .iova = iova};
        check(call(IOMMU_IOAS_MAP, cmd), "IOAS_MAP");
        return cmd.iova;
    }

    void unmap(std::uint32_t ioas, std::uint64_t iova)
    {
        iommu_ioas_unmap cmd{.size = sizeof(cmd), .ioas_id = ioas, .iova = iova, .length = 4096};
        check(call(IOMMU_IOAS_UNMAP, cmd), "IOAS_UNMAP");
    }

private:
    static void check(int rc, const char* what)
    {
        if (rc) {
            std::fprintf(stderr, "ioasid-bench: %s failed: %s\n", what, std::strerror(-rc));
            std::exit(1);
        }
    }

    core::CoreServices services_;
    std::shared_ptr<memory::BufferCaller> caller_;
    core::Context ctx_;
};

std::size_t heap_in_use()
{
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}

struct Row {
    std::size_t present;
    double auto_ns;
    double fixed_ns;
    double bytes_per_area;
};

// Times `iterations` map+unmap pairs; the best of three runs, so that a
// page fault or a scheduler hiccup does not decide the number.
template <typename Fn>
double ns_per_pair(std::size_t iterations, Fn&& fn)
{
    double best = 1e300;
    for (int run = 0; run < 3; ++run) {
        auto start = Clock::now();
        for (std::size_t i = 0; i < iterations; ++i)
            fn();
        std::chrono::duration<double, std::nano> spent = Clock::now() - start;
        best = std::min(best, spent.count() / static_cast<double>(iterations));
    }
    return best;
}

Row measure(std::size_t present, std::size_t iterations)
{
    Session session;
    std::uint32_t ioas = session.ioas_alloc();
    std::size_t before = heap_in_use();
    // Automatic placement packs these from the bottom of the IOVA space, the
    // worst case for a first-fit search that walks from the bottom.
    for (std::size_t i = 0; i < present; ++i)
        session.map(ioas, 0, false);
    std::size_t after = heap_in_use();

    Row row{present, 0, 0, present ? double(after - before) / double(present) : 0};
    row.auto_ns = ns_per_pair(iterations, [&] { session.unmap(ioas, session.map(ioas, 0, false)); });
    // A fixed IOVA in the middle of the populated range's neighbourhood.
    const std::uint64_t fixed_iova = 1ULL << 40;
    row.fixed_ns = ns_per_pair(iterations, [&] {
        session.map(ioas, fixed_iova, true);
        session.unmap(ioas, fixed_iova);
    });
    return row;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc > 1 && std::string(argv[1]) == "transport")
        return bench::run_transport_bench(argc, argv);
    if (argc > 1 && std::string(argv[1]) == "dma")
        return bench::run_dma_bench(argc, argv);
    std::vector<std::size_t> counts = {1, 1000, 100000, 1000000};
    std::size_t iterations = 200000;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--quick") {
            counts = {1, 1000, 10000};
            iterations = 20000;
        } else if (arg == "--help" || arg == "-h") {
            std::printf("usage: ioasid-bench [--quick]\n"
                        "       ioasid-bench transport --help\n"
                        "       ioasid-bench dma --help\n"
                        "In-process IOMMU_IOAS_MAP + IOMMU_IOAS_UNMAP of a 4 KiB area with N\n"
                        "areas already present, through the dispatcher and core.\n");
            return 0;
        } else {
            std::fprintf(stderr, "ioasid-bench: unknown argument %s\n", arg.c_str());
            return 2;
        }
    }

    std::printf("%-12s %18s %18s %16s\n", "areas", "auto map+unmap", "fixed map+unmap", "bytes/area");
    std::printf("%-12s %18s %18s %16s\n", "", "(ns/pair)", "(ns/pair)", "(daemon heap)");
    for (std::size_t present : counts) {
        Row row = measure(present, iterations);
        std::printf("%-12zu %18.0f %18.0f %16.0f\n", row.present, row.auto_ns, row.fixed_ns,
                    row.bytes_per_area);
        std::fflush(stdout);
    }
    return 0;
}
