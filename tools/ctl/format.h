// Number formatting shared by ioasidctl's text output and messages.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ioasid::ctl {

// 0x1000
[[nodiscard]] std::string hex(std::uint64_t value);
// 0x1000-0x1fff, the inclusive form the ABI's ranges use.
[[nodiscard]] std::string hex_range(std::uint64_t first, std::uint64_t last);
// [iova, iova+length) as hex_range; length 0 gives just the start.
[[nodiscard]] std::string iova_span(std::uint64_t iova, std::uint64_t length);
// "2 MiB" when exact in a binary unit, "4097 bytes" otherwise.
[[nodiscard]] std::string human_size(std::uint64_t bytes);

// "0x0000000100200803": a 64-bit value in 16 hex digits; hex8 for 32 bits.
[[nodiscard]] std::string hex16(std::uint64_t value);
[[nodiscard]] std::string hex8(std::uint32_t value);

// Rows of cells printed with each column as wide as its widest cell, two
// blanks between columns, trailing blanks trimmed.
class Table {
public:
    explicit Table(std::string indent = {}) : indent_(std::move(indent)) {}
    void row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
    // Appends the rows, one line each (with '\n').
    void render(std::string& out) const;

private:
    std::string indent_;
    std::vector<std::vector<std::string>> rows_;
};

} // namespace ioasid::ctl
