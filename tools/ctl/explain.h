// Turns a failed command's errno into a cause a person can act on, from what
// the daemon's status report says about the context: which object is
// missing, which area overlaps, who holds the IOAS.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "parse.h"

namespace ioasid::ctl {

// What is known about the context when the command failed. All optional:
// without facts the cause is the errno's generic text.
struct Facts {
    // This context's entry of the status report ("id", "objects", ...).
    const nlohmann::ordered_json* context = nullptr;
    // The report's "hardware" section: units, and devices with the context
    // each is bound to.
    const nlohmann::ordered_json* hardware = nullptr;
    // IOMMU_IOAS_IOVA_RANGES of the IOAS the command was about.
    std::optional<std::uint64_t> alignment;
    std::optional<std::vector<IovaRange>> usable;
};

// The cause, without the errno name ("no object 7"). `command` carries the
// values actually sent (e.g. a map's length filled in from its source).
[[nodiscard]] std::string explain(int err, const Command& command, const Facts& facts);

} // namespace ioasid::ctl
