#include "format.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <limits>
#include <string_view>

namespace ioasid::ctl {

std::string hex(std::uint64_t value)
{
    std::array<char, 24> buf{};
    std::snprintf(buf.data(), buf.size(), "0x%llx", static_cast<unsigned long long>(value));
    return buf.data();
}

std::string hex_range(std::uint64_t first, std::uint64_t last)
{
    return hex(first) + "-" + hex(last);
}

std::string iova_span(std::uint64_t iova, std::uint64_t length)
{
    if (length == 0)
        return hex(iova);
    // Clamp instead of wrapping, so a bad request still reads sensibly.
    std::uint64_t room = std::numeric_limits<std::uint64_t>::max() - iova;
    return hex_range(iova, iova + std::min(length - 1, room));
}

std::string human_size(std::uint64_t bytes)
{
    static constexpr std::array<std::string_view, 6> units{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes == 0)
        return "0 bytes";
    std::uint64_t value = bytes;
    std::size_t unit = 0;
    while (value % 1024 == 0 && unit < units.size()) {
        value /= 1024;
        ++unit;
    }
    if (unit == 0)
        return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
    return std::to_string(value) + " " + std::string(units[unit - 1]);
}

namespace {
std::string hex_padded(std::uint64_t value, int digits)
{
    std::array<char, 24> buf{};
    std::snprintf(buf.data(), buf.size(), "0x%0*llx", digits, static_cast<unsigned long long>(value));
    return buf.data();
}
} // namespace

std::string hex16(std::uint64_t value)
{
    return hex_padded(value, 16);
}

std::string hex8(std::uint32_t value)
{
    return hex_padded(value, 8);
}

void Table::render(std::string& out) const
{
    std::vector<std::size_t> widths;
    for (const auto& row : rows_) {
        widths.resize(std::max(widths.size(), row.size()));
        for (std::size_t i = 0; i < row.size(); ++i)
            widths[i] = std::max(widths[i], row[i].size());
    }
    for (const auto& row : rows_) {
        std::string line = indent_;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size())
                line += std::string(widths[i] - row[i].size() + 2, ' ');
        }
        while (!line.empty() && line.back() == ' ')
            line.pop_back();
        out += line + "\n";
    }
}

} // namespace ioasid::ctl
