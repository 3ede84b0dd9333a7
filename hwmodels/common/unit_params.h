// The family-specific keys of a unit in the topology, as the family's
// factory reads them. The daemon adapts its configuration to this; a
// family asks for the keys it knows, and what nobody asked for is an
// unknown key.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ioasid::hw {

// A value of the wrong type or out of range; the message names the key.
struct UnitParamError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class UnitParams {
public:
    virtual ~UnitParams() = default;
    [[nodiscard]] virtual std::optional<bool> boolean(std::string_view key) = 0;
    [[nodiscard]] virtual std::optional<std::int64_t> integer(std::string_view key) = 0;
    [[nodiscard]] virtual std::optional<std::string> string(std::string_view key) = 0;
    // Where a key was written, for messages ("file:line:col").
    [[nodiscard]] virtual std::string where(std::string_view key) const = 0;

    [[nodiscard]] std::optional<std::int64_t> integer_in(std::string_view key, std::int64_t min,
                                                         std::int64_t max)
    {
        auto value = integer(key);
        if (value && (*value < min || *value > max))
            throw UnitParamError(where(key) + ": " + std::string(key) + " must be between " +
                                 std::to_string(min) + " and " + std::to_string(max));
        return value;
    }
};

} // namespace ioasid::hw
