// Number formatting shared by ioasidctl's text output and messages.
#pragma once

#include <cstdint>
#include <string>

namespace ioasid::ctl {

// 0x1000
[[nodiscard]] std::string hex(std::uint64_t value);
// 0x1000-0x1fff, the inclusive form the ABI's ranges use.
[[nodiscard]] std::string hex_range(std::uint64_t first, std::uint64_t last);
// [iova, iova+length) as hex_range; length 0 gives just the start.
[[nodiscard]] std::string iova_span(std::uint64_t iova, std::uint64_t length);
// "2 MiB" when exact in a binary unit, "4097 bytes" otherwise.
[[nodiscard]] std::string human_size(std::uint64_t bytes);

} // namespace ioasid::ctl
