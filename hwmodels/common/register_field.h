// A field of a 64-bit capability or feature register, as the families
// that report registers verbatim to userspace (VT-d's CAP/ECAP, AMD-Vi's
// EFR/EFR2) build and read them: one description serves both the builder
// that sets a unit's features and the code that reads them back, so a
// field's position is written down once.
#pragma once

#include <cstdint>

namespace ioasid::hw {

// `width` bits starting at bit `lo`.
struct RegField {
    unsigned lo;
    unsigned width;

    [[nodiscard]] constexpr std::uint64_t mask() const
    {
        return (width == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << width) - 1) << lo;
    }
    [[nodiscard]] constexpr std::uint64_t get(std::uint64_t reg) const { return (reg & mask()) >> lo; }
    // `reg` with this field replaced by `value` (truncated to the field).
    [[nodiscard]] constexpr std::uint64_t with(std::uint64_t reg, std::uint64_t value) const
    {
        return (reg & ~mask()) | ((value << lo) & mask());
    }
};

} // namespace ioasid::hw
