// ns per IOMMU_IOAS_IOVA_RANGES (a command that reads and writes its struct
// and nothing else) in-process, over the socket and over a device node,
// next to the cost of an ioctl the daemon answers without any work (an
// unknown number: ENOTTY), which is the floor of a transport.
#include "transport_bench.h"

#include <fcntl.h>
#include <ioasid/iommufd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "core/context.h"
#include "dispatch/dispatcher.h"
#include "frontends/socket/socket_server.h"
#include "memory/process_caller.h"
#include "transport.h"

namespace ioasid::bench {
namespace {

using Clock = std::chrono::steady_clock;

// An ioctl number outside iommufd's table: every transport answers ENOTTY.
constexpr unsigned kNoopCmd = _IO(IOMMUFD_TYPE, 0x7f);

double ns_per_call(std::size_t n, const std::function<int()>& call)
{
    for (std::size_t i = 0; i < n / 10 + 1; ++i) // warm up
        call();
    const auto start = Clock::now();
    for (std::size_t i = 0; i < n; ++i)
        call();
    return std::chrono::duration<double, std::nano>(Clock::now() - start).count() /
           static_cast<double>(n);
}

struct Ranges {
    iommu_ioas_iova_ranges cmd{};
    iommu_iova_range range[4]{};

    explicit Ranges(std::uint32_t ioas)
    {
        cmd.size = sizeof(cmd);
        cmd.ioas_id = ioas;
        cmd.num_iovas = 4;
        cmd.allowed_iovas = reinterpret_cast<std::uintptr_t>(range);
    }
    void reset() { cmd.num_iovas = 4; }
};

void print_row(const char* way, double ranges_ns, double floor_ns)
{
    if (floor_ns > 0)
        std::printf("%-28s %14.0f %14.0f %10.2fx\n", way, ranges_ns, floor_ns,
                    ranges_ns / floor_ns);
    else
        std::printf("%-28s %14.0f %14s %11s\n", way, ranges_ns, "-", "-");
    std::fflush(stdout);
}

// Through dispatch and core, reading this very process's memory the way
// the daemon reads a client's: process_vm_readv/writev.
void in_process(std::size_t n)
{
    core::CoreServices services;
    core::Context ctx(services);
    std::shared_ptr<memory::Caller> self = memory::ProcessCaller::open(::getpid(), ::getuid());
    if (!self) {
        std::fprintf(stderr, "ioasid-bench: cannot open this process as a caller\n");
        return;
    }
    iommu_ioas_alloc alloc{sizeof(alloc), 0, 0};
    if (dispatch::ioctl(ctx, IOMMU_IOAS_ALLOC, self, reinterpret_cast<std::uintptr_t>(&alloc)))
        return;
    Ranges ranges(alloc.out_ioas_id);
    const double ns = ns_per_call(n, [&] {
        ranges.reset();
        return dispatch::ioctl(ctx, IOMMU_IOAS_IOVA_RANGES, self,
                               reinterpret_cast<std::uintptr_t>(&ranges.cmd));
    });
    print_row("in-process (dispatch+core)", ns, 0);
}

// Any fd that speaks iommufd: a device node, or a transport socket.
void over_fd(const char* way, std::size_t n, const std::function<int(unsigned, void*)>& ioctl_fn)
{
    iommu_ioas_alloc alloc{sizeof(alloc), 0, 0};
    if (int rc = ioctl_fn(IOMMU_IOAS_ALLOC, &alloc)) {
        std::fprintf(stderr, "ioasid-bench: %s: IOMMU_IOAS_ALLOC failed: %d\n", way, rc);
        return;
    }
    Ranges ranges(alloc.out_ioas_id);
    const double ns = ns_per_call(n, [&] {
        ranges.reset();
        return ioctl_fn(IOMMU_IOAS_IOVA_RANGES, &ranges.cmd);
    });
    const double floor = ns_per_call(n, [&] { return ioctl_fn(kNoopCmd, nullptr); });
    print_row(way, ns, floor);
}

void over_socket(std::size_t n, const std::string& path)
{
    int fd = ioasid_transport_open(path.c_str(), 1);
    if (fd < 0) {
        std::fprintf(stderr, "ioasid-bench: cannot connect to %s: %s\n", path.c_str(),
                     std::strerror(-fd));
        return;
    }
    over_fd(("socket " + path).c_str(), n, [fd](unsigned cmd, void* arg) {
        return ioasid_transport_ioctl(fd, cmd, reinterpret_cast<std::uintptr_t>(arg));
    });
    ioasid_transport_close(fd);
    ::close(fd);
}

// A daemon's socket transport on a thread of this process: the same round
// trip through the kernel as to a separate daemon.
void over_own_socket(std::size_t n)
{
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("ioasid-bench-" + std::to_string(::getpid()) + ".sock"))
                                 .string();
    core::CoreServices services;
    frontends::SocketServer server(services, {path});
    std::thread loop([&] { server.run(); });
    over_socket(n, path);
    server.stop();
    loop.join();
}

void over_device(std::size_t n, const std::string& path)
{
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        std::fprintf(stderr, "ioasid-bench: cannot open %s: %s\n", path.c_str(),
                     std::strerror(errno));
        return;
    }
    over_fd(("device " + path).c_str(), n, [fd](unsigned cmd, void* arg) {
        return ::ioctl(fd, cmd, arg) == 0 ? 0 : -errno;
    });
    ::close(fd);
}

} // namespace

int run_transport_bench(int argc, char** argv)
{
    std::size_t n = 100000;
    std::string socket_path;
    std::string device;
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "-n" && i + 1 < argc) {
            n = std::strtoul(argv[++i], nullptr, 10);
        } else if (arg == "--socket" && i + 1 < argc) {
            socket_path = argv[++i];
        } else if (arg == "--device" && i + 1 < argc) {
            device = argv[++i];
        } else if (arg == "--quick") {
            n = 5000;
        } else {
            std::printf(
                "usage: ioasid-bench transport [-n N] [--quick] [--socket PATH] [--device PATH]\n"
                "ns per IOMMU_IOAS_IOVA_RANGES in-process, over the socket (a daemon at\n"
                "PATH, else one started inside this program) and over a device node\n"
                "(PATH, else /dev/ioasid when present), next to an ioctl answered with no\n"
                "work at all (ENOTTY), the floor of each transport.\n");
            return arg == "--help" || arg == "-h" ? 0 : 2;
        }
    }
    if (device.empty() && std::filesystem::exists("/dev/ioasid"))
        device = "/dev/ioasid";
    std::printf("%-28s %14s %14s %11s\n", "transport", "iova_ranges", "floor (noop)", "ratio");
    std::printf("%-28s %14s %14s %11s\n", "", "(ns/ioctl)", "(ns/ioctl)", "");
    in_process(n);
    if (socket_path.empty())
        over_own_socket(n);
    else
        over_socket(n, socket_path);
    if (!device.empty())
        over_device(n, device);
    return 0;
}

} // namespace ioasid::bench
