// ioasidd's command line.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace ioasid {

enum class Transport { automatic, cuse, socket, both };

struct DaemonOptions {
    std::string devname = "ioasid";
    mode_t mode = 0666;
    std::optional<uid_t> owner;
    std::optional<gid_t> group;
    std::string socket_path; // empty: the default, when the socket is served
    Transport transport = Transport::automatic;
    std::string topology;
    bool foreground = false;
    std::string log_level = "info";
    bool trace = false;
};

// Parses argv; on --help/--version or an error prints and sets *exit_code.
[[nodiscard]] std::optional<DaemonOptions> parse_options(int argc, char** argv, int* exit_code);

} // namespace ioasid
