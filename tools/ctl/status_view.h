// The status report (IOASID_EMU_STATUS) as tables for people.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace ioasid::ctl {

// Renders the daemon line, then per context a header line, its objects and
// each IOAS's areas. Fields the view does not know are shown as key=value,
// so a newer daemon's report still reads in full.
[[nodiscard]] std::string render_status(const nlohmann::ordered_json& report);

} // namespace ioasid::ctl
