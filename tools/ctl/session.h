// One context on the daemon and what ioasidctl keeps for it: the fd, the
// memory it has mapped, the variables of a script.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "memory.h"
#include "parse.h"

namespace ioasid::ctl {

// A command that failed: its errno and the cause ("no object 7"), and for
// some (a DMA the IOMMU stopped) fields that --json shows next to them.
class CommandFailed : public std::runtime_error {
public:
    CommandFailed(int err, const std::string& cause, nlohmann::ordered_json details = nullptr)
        : std::runtime_error(cause), err_(err), details_(std::move(details))
    {
    }
    [[nodiscard]] int err() const { return err_; }
    [[nodiscard]] const nlohmann::ordered_json& details() const { return details_; }

private:
    int err_;
    nlohmann::ordered_json details_;
};

// What a command that succeeded gives back.
struct Outcome {
    nlohmann::ordered_json fields = nlohmann::ordered_json::object(); // for --json and $x.field
    std::string text;                   // for people; empty: nothing to print
    std::optional<std::string> value;   // the field `$x` stands for
};

class Session {
public:
    // `device`: as ioasid_open(); nullopt lets libioasid pick. The context
    // is opened by the first command that needs one.
    explicit Session(std::optional<std::string> device) : device_(std::move(device)) {}
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Runs one command. Throws CommandFailed.
    Outcome run(const Command& command);

    // Script variables: `$name` is the outcome's value, `$name.field` any
    // of its fields.
    void assign(const std::string& name, const Outcome& outcome);
    [[nodiscard]] std::optional<std::string> lookup(std::string_view name, std::string_view field) const;

private:
    int fd();
    [[noreturn]] void fail(int err, const Command& command);

    Outcome ioas_alloc();
    Outcome destroy(const Destroy& c);
    Outcome map(Map c);
    Outcome unmap(const Unmap& c);
    Outcome copy(const Copy& c);
    Outcome ranges(const Ranges& c);
    Outcome allow(const Allow& c);
    Outcome option(const Option& c);
    Outcome vfio_ioas(const VfioIoas& c);
    Outcome status(const Status& c);

    // Emulated hardware (device_commands.cpp).
    Outcome topology();
    Outcome bind(const Bind& c);
    Outcome unbind(const Unbind& c);
    Outcome attach(const Attach& c);
    Outcome detach(const Detach& c);
    Outcome hwpt_alloc(const HwptAlloc& c);
    Outcome hw_info(const HwInfo& c);
    Outcome dirty(const Dirty& c);
    Outcome pt_dump(const PtDump& c);
    Outcome dma(const Dma& c);
    // The daemon's report for this context, or a CommandFailed for `command`.
    nlohmann::ordered_json report(const Command& command);

    std::optional<std::string> device_;
    int fd_ = -1;
    // Memory handed to the daemon stays mapped until the session ends: an
    // unmap in one IOAS does not tell whether a copy still uses the pages.
    std::vector<MappedSource> memory_;
    struct Variable {
        nlohmann::ordered_json fields;
        std::optional<std::string> value; // the field `$name` alone means
    };
    std::map<std::string, Variable, std::less<>> variables_;
};

} // namespace ioasid::ctl
