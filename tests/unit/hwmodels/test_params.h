// Topology keys for a family's create function, as the daemon's config
// layer would hand them over, from a map the test writes inline.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "hwmodels/common/unit_params.h"

namespace ioasid::test {

class TestParams final : public hw::UnitParams {
public:
    using Value = std::variant<bool, std::int64_t, std::string>;
    explicit TestParams(std::map<std::string, Value, std::less<>> values) : values_(std::move(values)) {}

    std::optional<bool> boolean(std::string_view key) override { return get<bool>(key); }
    std::optional<std::int64_t> integer(std::string_view key) override { return get<std::int64_t>(key); }
    std::optional<std::string> string(std::string_view key) override { return get<std::string>(key); }
    std::string where(std::string_view key) const override { return "t.toml:" + std::string(key); }

private:
    template <typename T>
    std::optional<T> get(std::string_view key)
    {
        auto it = values_.find(key);
        if (it == values_.end())
            return std::nullopt;
        return std::get<T>(it->second);
    }
    std::map<std::string, Value, std::less<>> values_;
};

} // namespace ioasid::test
