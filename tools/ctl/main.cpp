// ioasidctl: the scripting front end of ioasid. Reads the command line,
// then hands one command, a script file or standard input to the Runner.
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "help.h"
#include "runner.h"
#include "session.h"

namespace {

using namespace ioasid::ctl;

constexpr std::string_view kVersion = "0.1.0";

struct Invocation {
    OutputOptions output;
    std::optional<std::string> device;
    std::vector<std::string> words; // the command, or run SCRIPT, or -
};

int usage_error(const std::string& message)
{
    std::cerr << "ioasidctl: " << message << "\n(see ioasidctl --help)" << std::endl;
    return static_cast<int>(Exit::usage);
}

// Options before the command are ioasidctl's; after it, --json and -q are
// still taken (`ioasidctl status --json` reads naturally), the rest belong
// to the command.
std::optional<Invocation> parse_invocation(int argc, char** argv, int* exit_code)
{
    Invocation inv;
    bool in_command = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--json") {
            inv.output.json = true;
        } else if (arg == "-q" || arg == "--quiet") {
            inv.output.quiet = true;
        } else if (in_command) {
            inv.words.push_back(std::move(arg));
        } else if (arg == "--device" || arg.starts_with("--device=")) {
            if (arg == "--device") {
                if (++i == argc) {
                    *exit_code = usage_error("--device needs a path");
                    return std::nullopt;
                }
                inv.device = argv[i];
            } else {
                inv.device = arg.substr(std::string_view("--device=").size());
            }
        } else if (arg == "-h" || arg == "--help") {
            inv.words = {"help"};
            return inv;
        } else if (arg == "--version") {
            std::cout << "ioasidctl " << kVersion << std::endl;
            *exit_code = 0;
            return std::nullopt;
        } else if (arg == "-") {
            inv.words.push_back(std::move(arg));
            in_command = true;
        } else if (arg.starts_with("-")) {
            *exit_code = usage_error("unknown option " + arg);
            return std::nullopt;
        } else {
            inv.words.push_back(std::move(arg));
            in_command = true;
        }
    }
    if (inv.words.empty()) {
        *exit_code = usage_error("missing command");
        return std::nullopt;
    }
    return inv;
}

std::optional<std::vector<std::string>> read_lines(const std::string& path)
{
    std::ifstream file(path);
    if (!file)
        return std::nullopt;
    std::vector<std::string> lines;
    for (std::string line; std::getline(file, line);)
        lines.push_back(std::move(line));
    if (file.bad())
        return std::nullopt;
    return lines;
}

} // namespace

int main(int argc, char** argv)
{
    std::ios::sync_with_stdio(false);
    int exit_code = 0;
    auto inv = parse_invocation(argc, argv, &exit_code);
    if (!inv)
        return exit_code;

    Session session(inv->device);
    Runner runner(session, inv->output, std::cout, std::cerr);
    const std::vector<std::string>& words = inv->words;

    if (words[0] == "-") {
        if (words.size() > 1)
            return usage_error("'-' reads the script from standard input and takes no arguments");
        return static_cast<int>(runner.run_stream(std::cin, "<stdin>"));
    }
    if (words[0] == "run") {
        if (words.size() == 2 && (words[1] == "--help" || words[1] == "-h")) {
            std::cout << help_text("run");
            return 0;
        }
        if (words.size() != 2)
            return usage_error("usage: ioasidctl run SCRIPT");
        if (words[1] == "-")
            return static_cast<int>(runner.run_stream(std::cin, "<stdin>"));
        auto lines = read_lines(words[1]);
        if (!lines) {
            std::cerr << "ioasidctl: cannot read " << words[1] << std::endl;
            return static_cast<int>(Exit::usage);
        }
        return static_cast<int>(runner.run_script(*lines, words[1]));
    }
    return static_cast<int>(runner.run_command(words));
}
