#include "options.h"

#include <getopt.h>
#include <grp.h>
#include <ioasid/socket.h>
#include <pwd.h>

#include <charconv>
#include <cstdio>
#include <string_view>

namespace ioasid {
namespace {

constexpr const char* kUsage = R"(Usage: ioasidd [OPTION]...
Serve the Linux iommufd ioctl ABI on emulated IOMMUs.

  --transport T      cuse, socket, both, or auto (default: CUSE where
                     /dev/cuse exists, the socket otherwise)
  --devname NAME     device node /dev/NAME for CUSE (default: ioasid; use
                     "iommu" for programs that hard-code /dev/iommu)
  --socket PATH      socket path (default: )" IOASID_SOCKET_DEFAULT_PATH R"()
  --mode OCTAL       permissions of the node and the socket (default: 0666)
  --owner USER       owner of the node and the socket
  --group GROUP      group of the node and the socket
  --topology FILE    emulated IOMMUs and devices (TOML; default: built in)
  --foreground       stay in the foreground and log to stderr
  --log-level LEVEL  trace, debug, info, warn, error or off (default: info)
  --trace            log every ioctl: pid, context, decoded command, result,
                     time taken
  --help, --version
)";

template <typename T>
bool parse_number(std::string_view text, T* out, int base = 10)
{
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out, base);
    return ec == std::errc{} && end == text.data() + text.size() && !text.empty();
}

std::optional<uid_t> parse_user(const char* name)
{
    uid_t uid;
    if (parse_number(name, &uid))
        return uid;
    if (const passwd* pw = ::getpwnam(name))
        return pw->pw_uid;
    return std::nullopt;
}

std::optional<gid_t> parse_group(const char* name)
{
    gid_t gid;
    if (parse_number(name, &gid))
        return gid;
    if (const group* gr = ::getgrnam(name))
        return gr->gr_gid;
    return std::nullopt;
}

} // namespace

std::optional<DaemonOptions> parse_options(int argc, char** argv, int* exit_code)
{
    enum { devname = 256, mode, owner, group, socket, transport, topology, foreground,
           log_level, trace, help, version };
    static const option longopts[] = {
        {"devname", required_argument, nullptr, devname},
        {"mode", required_argument, nullptr, mode},
        {"owner", required_argument, nullptr, owner},
        {"group", required_argument, nullptr, group},
        {"socket", required_argument, nullptr, socket},
        {"transport", required_argument, nullptr, transport},
        {"topology", required_argument, nullptr, topology},
        {"foreground", no_argument, nullptr, foreground},
        {"log-level", required_argument, nullptr, log_level},
        {"trace", no_argument, nullptr, trace},
        {"help", no_argument, nullptr, help},
        {"version", no_argument, nullptr, version},
        {nullptr, 0, nullptr, 0},
    };
    DaemonOptions options;
    auto bad = [&](const std::string& message) {
        std::fprintf(stderr, "ioasidd: %s\nTry 'ioasidd --help'.\n", message.c_str());
        *exit_code = 2;
        return std::nullopt;
    };
    optind = 1;
    for (int opt; (opt = getopt_long(argc, argv, "", longopts, nullptr)) != -1;) {
        const std::string_view arg = optarg ? optarg : "";
        switch (opt) {
        case devname:
            if (arg.empty() || arg.find('/') != std::string_view::npos)
                return bad("bad --devname: " + std::string(arg));
            options.devname = arg;
            break;
        case mode:
            if (!parse_number(arg, &options.mode, 8) || options.mode > 07777)
                return bad("bad --mode: " + std::string(arg));
            break;
        case owner:
            if (!(options.owner = parse_user(optarg)))
                return bad("unknown user: " + std::string(arg));
            break;
        case group:
            if (!(options.group = parse_group(optarg)))
                return bad("unknown group: " + std::string(arg));
            break;
        case socket:
            options.socket_path = arg;
            break;
        case transport:
            if (arg == "auto")
                options.transport = Transport::automatic;
            else if (arg == "cuse")
                options.transport = Transport::cuse;
            else if (arg == "socket")
                options.transport = Transport::socket;
            else if (arg == "both")
                options.transport = Transport::both;
            else
                return bad("bad --transport: " + std::string(arg));
            break;
        case topology:
            options.topology = arg;
            break;
        case foreground:
            options.foreground = true;
            break;
        case log_level:
            if (arg != "trace" && arg != "debug" && arg != "info" && arg != "warn" &&
                arg != "error" && arg != "off")
                return bad("bad --log-level: " + std::string(arg));
            options.log_level = arg;
            break;
        case trace:
            options.trace = true;
            break;
        case help:
            std::fputs(kUsage, stdout);
            *exit_code = 0;
            return std::nullopt;
        case version:
            std::puts("ioasidd 0.1.0");
            *exit_code = 0;
            return std::nullopt;
        default:
            *exit_code = 2;
            std::fputs("Try 'ioasidd --help'.\n", stderr);
            return std::nullopt;
        }
    }
    if (optind < argc)
        return bad(std::string("unexpected argument: ") + argv[optind]);
    return options;
}

} // namespace ioasid
