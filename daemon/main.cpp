// ioasidd: the daemon. Sets up logging and the transports, then waits for
// SIGTERM/SIGINT and shuts down cleanly: every context released, the node
// and the socket removed, exit 0.
#include <fcntl.h>
#include <ioasid/socket.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include "config/topology.h"
#include "machine.h"
#include "core/context.h"
#include "frontends/cuse/cuse_server.h"
#include "frontends/session.h"
#include "frontends/socket/socket_server.h"
#include "memory/unique_fd.h"
#include "options.h"

namespace ioasid {
namespace {

void setup_logging(const DaemonOptions& options)
{
    std::shared_ptr<spdlog::logger> logger =
        options.foreground ? spdlog::stderr_color_mt("ioasidd")
                           : spdlog::syslog_logger_mt("ioasidd", "ioasidd", LOG_PID, LOG_DAEMON);
    logger->set_level(spdlog::level::from_str(options.log_level));
    if (options.trace && logger->level() > spdlog::level::info)
        logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(std::move(logger));
    frontends::set_tracing(options.trace);
}

// Builds the emulated units and devices from the topology file, or the
// embedded default, before detaching, so that a bad file is refused where
// the user sees it.
bool build_hardware(const std::string& path, core::CoreServices& services)
{
    std::string error;
    std::optional<config::Topology> topology =
        path.empty() ? std::optional(config::default_topology()) : config::load_topology_file(path, &error);
    try {
        if (topology) {
            build_machine(*topology, services.phys, services.hardware);
            return true;
        }
    } catch (const std::exception& e) {
        error = e.what();
    }
    std::fprintf(stderr, "ioasidd: %s\n", error.c_str());
    return false;
}

// Detaches from the terminal. The parent stays until the child reports
// that its transports are up (or why not), so that `ioasidd` returning 0
// means the daemon is serving.
class Daemonizer {
public:
    // Returns in the child; the parent exits from here.
    void detach()
    {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0)
            throw std::system_error(errno, std::generic_category(), "pipe");
        pid_t pid = ::fork();
        if (pid < 0)
            throw std::system_error(errno, std::generic_category(), "fork");
        if (pid > 0) {
            ::close(fds[1]);
            char status = 1;
            ssize_t n = ::read(fds[0], &status, 1);
            std::_Exit(n == 1 ? status : 1);
        }
        ::close(fds[0]);
        report_ = memory::UniqueFd(fds[1]);
        ::setsid();
        [[maybe_unused]] int rc = ::chdir("/");
    }

    void ready(int status)
    {
        if (!report_)
            return;
        if (status == 0) {
            int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
            for (int fd = 0; fd < 3 && null >= 0; ++fd)
                ::dup2(null, fd);
            if (null > 2)
                ::close(null);
        }
        const char byte = static_cast<char>(status);
        [[maybe_unused]] ssize_t n = ::write(report_.get(), &byte, 1);
        report_ = memory::UniqueFd();
    }

private:
    memory::UniqueFd report_;
};

// Every running transport, and the thread its loop runs on.
class Transports {
public:
    explicit Transports(core::CoreServices& services) : services_(services) {}

    void add_cuse(frontends::CuseOptions options) { cuse_.emplace(services_, std::move(options)); }
    void add_socket(frontends::SocketOptions options)
    {
        socket_.emplace(services_, std::move(options));
    }
    [[nodiscard]] bool has_cuse() const { return cuse_.has_value(); }
    [[nodiscard]] bool has_socket() const { return socket_.has_value(); }

    // A loop that ends on its own (the kernel aborted the CUSE channel)
    // takes the daemon down through the same path as SIGTERM.
    void start()
    {
        auto run = [](auto& server) {
            server.run();
            ::kill(::getpid(), SIGTERM);
        };
        if (cuse_)
            threads_.emplace_back([&, run] { run(*cuse_); });
        if (socket_)
            threads_.emplace_back([&, run] { run(*socket_); });
    }

    // The CUSE node appears once a loop thread has answered the kernel's
    // CUSE_INIT; "ready" must mean that a client can open it.
    [[nodiscard]] bool wait_until_serving()
    {
        return !cuse_ || cuse_->wait_until_serving(std::chrono::seconds(10));
    }

    void stop()
    {
        if (cuse_)
            cuse_->stop();
        if (socket_)
            socket_->stop();
        for (std::thread& thread : threads_)
            thread.join();
        cuse_.reset();
        socket_.reset();
    }

private:
    core::CoreServices& services_;
    std::optional<frontends::CuseServer> cuse_;
    std::optional<frontends::SocketServer> socket_;
    std::vector<std::thread> threads_;
};

bool cuse_available()
{
    return ::access("/dev/cuse", R_OK | W_OK) == 0;
}

int serve(const DaemonOptions& options, core::CoreServices& services)
{
    // The signals that stop us are taken synchronously by sigwait() below;
    // every thread created from here on inherits the mask.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    // Absolute, before detaching leaves the working directory.
    const std::string socket_path = options.socket_path.empty()
                                        ? IOASID_SOCKET_DEFAULT_PATH
                                        : std::filesystem::absolute(options.socket_path).string();
    Daemonizer daemonizer;
    if (!options.foreground)
        daemonizer.detach();
    setup_logging(options);

    Transports transports(services);
    const uid_t owner = options.owner.value_or(static_cast<uid_t>(-1));
    const gid_t group = options.group.value_or(static_cast<gid_t>(-1));
    const bool want_cuse = options.transport == Transport::cuse ||
                           options.transport == Transport::both ||
                           (options.transport == Transport::automatic && cuse_available());
    const bool want_socket = options.transport != Transport::cuse && !(
        options.transport == Transport::automatic && want_cuse);
    try {
        if (want_cuse) {
            try {
                transports.add_cuse({options.devname, options.mode, owner, group});
            } catch (const std::system_error& error) {
                if (options.transport != Transport::automatic)
                    throw;
                spdlog::warn("CUSE unavailable ({}); serving the socket instead", error.what());
            }
        }
        if (want_socket || !transports.has_cuse()) {
            std::error_code ignored;
            std::filesystem::create_directories(std::filesystem::path(socket_path).parent_path(),
                                                ignored);
            transports.add_socket({socket_path, options.mode, owner, group});
        }
    } catch (const std::system_error& error) {
        spdlog::error("cannot start: {}", error.what());
        daemonizer.ready(1);
        return 1;
    }

    core::DaemonInfo info;
    if (transports.has_cuse()) {
        info.transports.push_back("cuse");
        info.devname = options.devname;
    }
    if (transports.has_socket()) {
        info.transports.push_back("socket");
        info.socket = socket_path;
    }
    services.registry.set_daemon_info(info);
    spdlog::info("{} units, {} devices from {}", services.hardware.units().size(),
                 services.hardware.devices().size(),
                 options.topology.empty() ? "the built-in topology" : options.topology);
    transports.start();
    if (!transports.wait_until_serving()) {
        spdlog::error("cannot start: the kernel did not create /dev/{}", options.devname);
        transports.stop();
        daemonizer.ready(1);
        return 1;
    }
    spdlog::info("ioasidd {} ready, serving {}{}{}", "0.1.0",
                 transports.has_cuse() ? "/dev/" + options.devname + " (CUSE)" : "",
                 transports.has_cuse() && transports.has_socket() ? " and " : "",
                 transports.has_socket() ? socket_path + " (socket)" : "");
    daemonizer.ready(0);

    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0) {
    }
    spdlog::info("{}: shutting down", strsignal(sig));
    transports.stop();
    spdlog::info("stopped");
    return 0;
}

} // namespace
} // namespace ioasid

int main(int argc, char** argv)
{
    int exit_code = 0;
    std::optional<ioasid::DaemonOptions> options = ioasid::parse_options(argc, argv, &exit_code);
    if (!options)
        return exit_code;
    ioasid::core::CoreServices services;
    if (!ioasid::build_hardware(options->topology, services))
        return 2;
    return ioasid::serve(*options, services);
}
