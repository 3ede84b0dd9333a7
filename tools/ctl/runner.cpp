#include "runner.h"

#include <istream>
#include <ostream>

namespace ioasid::ctl {
namespace {

using Json = nlohmann::ordered_json;

// JSON Lines: one object, one line. Bytes that are not UTF-8 (a file name)
// are replaced rather than failing the output.
std::string json_line(const Json& object)
{
    return object.dump(-1, ' ', false, Json::error_handler_t::replace);
}

} // namespace

void Runner::report(const Origin& origin, const std::string& message)
{
    err_ << "ioasidctl: ";
    if (origin.script)
        err_ << *origin.script << ":" << origin.line << ": ";
    err_ << message << std::endl;
}

void Runner::print_success(const Command& command, const Outcome& outcome, const Origin& origin,
                           const ScriptLine* line)
{
    if (options_.quiet)
        return;
    if (options_.json) {
        Json object;
        object["command"] = command_name(command);
        object["ok"] = true;
        if (origin.script)
            object["line"] = origin.line;
        if (line && line->assign)
            object["var"] = *line->assign;
        if (line && line->expect_failure)
            object["expected_failure"] = true;
        for (const auto& [key, value] : outcome.fields.items())
            object[key] = value;
        out_ << json_line(object) << '\n';
    } else if (!outcome.text.empty()) {
        out_ << outcome.text << '\n';
    }
    out_.flush();
}

void Runner::print_failure(const Command& command, const CommandFailed& failure, const Origin& origin,
                           const ScriptLine* line)
{
    const bool expected = line && line->expect_failure &&
                          (!line->expected_errno || *line->expected_errno == failure.err());
    if (options_.json) {
        // A failure is printed even with --quiet when it stops the script:
        // a program reading the output learns why from the last line.
        if (options_.quiet && expected)
            return;
        Json object;
        object["command"] = command_name(command);
        object["ok"] = false;
        if (origin.script)
            object["line"] = origin.line;
        if (line && line->expect_failure)
            object["expected_failure"] = true;
        object["errno"] = errno_name(failure.err());
        object["errno_value"] = failure.err();
        object["message"] = failure.what();
        if (failure.details().is_object())
            for (const auto& [key, value] : failure.details().items())
                object[key] = value;
        out_ << json_line(object) << '\n';
    } else if (expected && !options_.quiet) {
        out_ << command_name(command) << " failed as expected: " << errno_name(failure.err()) << ": "
             << failure.what() << '\n';
    }
    out_.flush();
}

Exit Runner::run_command(std::span<const std::string> words)
{
    Origin origin;
    Command command;
    try {
        command = parse_command(words);
    } catch (const UsageError& e) {
        report(origin, e.what());
        return Exit::usage;
    }
    try {
        print_success(command, session_.run(command), origin, nullptr);
        return Exit::ok;
    } catch (const CommandFailed& failure) {
        print_failure(command, failure, origin, nullptr);
        report(origin, command_name(command) + ": " + errno_name(failure.err()) + ": " + failure.what());
        return Exit::failed;
    }
}

Exit Runner::run_line(const std::string& text, const Origin& origin)
{
    ScriptLine line;
    Command command;
    try {
        line = parse_line(text, [this](std::string_view name, std::string_view field) {
            return session_.lookup(name, field);
        });
        if (line.words.empty())
            return Exit::ok;
        command = parse_command(line.words);
        if (line.assign && !gives_value(command))
            throw UsageError(command_name(command) + " gives no value to assign to $" + *line.assign);
    } catch (const UsageError& e) {
        report(origin, e.what());
        return Exit::usage;
    }

    try {
        Outcome outcome = session_.run(command);
        print_success(command, outcome, origin, &line);
        if (line.expect_failure) {
            report(origin, command_name(command) + " succeeded but was expected to fail" +
                               (line.expected_errno ? " with " + errno_name(*line.expected_errno) : ""));
            return Exit::failed;
        }
        if (line.assign)
            session_.assign(*line.assign, outcome);
        return Exit::ok;
    } catch (const CommandFailed& failure) {
        print_failure(command, failure, origin, &line);
        if (!line.expect_failure)
            report(origin, command_name(command) + ": " + errno_name(failure.err()) + ": " + failure.what());
        else if (line.expected_errno && *line.expected_errno != failure.err())
            report(origin, command_name(command) + ": " + errno_name(failure.err()) + ": " + failure.what() +
                               " (expected " + errno_name(*line.expected_errno) + ")");
        else
            return Exit::ok;
        return Exit::failed;
    }
}

Exit Runner::run_script(const std::vector<std::string>& lines, const std::string& name)
{
    if (auto problem = check_script(lines)) {
        report({&name, problem->line}, problem->message);
        return Exit::usage;
    }
    for (std::size_t i = 0; i < lines.size(); ++i)
        if (Exit rc = run_line(lines[i], {&name, static_cast<int>(i + 1)}); rc != Exit::ok)
            return rc;
    return Exit::ok;
}

Exit Runner::run_stream(std::istream& in, const std::string& name)
{
    std::string text;
    for (int number = 1; std::getline(in, text); ++number)
        if (Exit rc = run_line(text, {&name, number}); rc != Exit::ok)
            return rc;
    return Exit::ok;
}

} // namespace ioasid::ctl
