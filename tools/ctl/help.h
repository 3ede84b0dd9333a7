// ioasidctl's help texts: the overview (usage, script language, output) and
// one page per command.
#pragma once

#include <string_view>

namespace ioasid::ctl {

// The page for `topic` ("" for the overview; "map", "ioas", "run", ...).
// Unknown topics give the overview.
[[nodiscard]] std::string_view help_text(std::string_view topic);

} // namespace ioasid::ctl
