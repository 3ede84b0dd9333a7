// Runs commands on a Session and prints what they give: text or JSON Lines,
// one command at a time or a whole script.
#pragma once

#include <iosfwd>
#include <span>
#include <string>
#include <vector>

#include "parse.h"
#include "session.h"

namespace ioasid::ctl {

// Exit statuses, as --help documents them.
enum class Exit : int { ok = 0, failed = 1, usage = 2 };

struct OutputOptions {
    bool json = false;  // one JSON object per command on stdout
    bool quiet = false; // nothing for commands that succeed
};

class Runner {
public:
    Runner(Session& session, OutputOptions options, std::ostream& out, std::ostream& err)
        : session_(session), options_(options), out_(out), err_(err)
    {
    }

    // One command from the command line.
    Exit run_command(std::span<const std::string> words);

    // A script already read, checked for syntax before anything runs.
    // `name` is how messages call it ("setup.ioasid").
    Exit run_script(const std::vector<std::string>& lines, const std::string& name);

    // A script read and run line by line as it comes (standard input).
    Exit run_stream(std::istream& in, const std::string& name);

private:
    // Where a command comes from, for messages and JSON.
    struct Origin {
        const std::string* script = nullptr; // null: the command line
        int line = 0;
    };

    Exit run_line(const std::string& text, const Origin& origin);
    void print_success(const Command& command, const Outcome& outcome, const Origin& origin,
                       const ScriptLine* line);
    void print_failure(const Command& command, const CommandFailed& failure, const Origin& origin,
                       const ScriptLine* line);
    void report(const Origin& origin, const std::string& message);

    Session& session_;
    OutputOptions options_;
    std::ostream& out_;
    std::ostream& err_;
};

} // namespace ioasid::ctl
