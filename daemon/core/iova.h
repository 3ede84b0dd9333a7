// Arithmetic on IO virtual addresses, with the kernel's limits on x86-64.
#pragma once

#include <bit>
#include <cstdint>

namespace ioasid::core {

inline constexpr std::uint64_t kPageSize = 4096;
inline constexpr unsigned kPageShift = 12;
// What the kernel calls ULONG_MAX and SIZE_MAX on a 64-bit host.
inline constexpr std::uint64_t kUlongMax = UINT64_MAX;
// The largest alignment automatic IOVA placement asks for (one THP).
inline constexpr std::uint64_t kHugePageSize = 2ULL << 20;

// An inclusive range, as the uAPI expresses them: [first, last].
struct IovaRange {
    std::uint64_t first;
    std::uint64_t last;
    friend bool operator==(const IovaRange&, const IovaRange&) = default;
};

// Sets *last = first + length - 1; false when that wraps. length must be > 0.
[[nodiscard]] constexpr bool last_of(std::uint64_t first, std::uint64_t length, std::uint64_t* last)
{
    return !__builtin_add_overflow(first, length - 1, last);
}

[[nodiscard]] constexpr std::uint64_t lowest_set_bit(std::uint64_t value)
{
    return value & (~value + 1);
}

[[nodiscard]] constexpr bool aligned(std::uint64_t value, std::uint64_t alignment)
{
    return (value & (alignment - 1)) == 0;
}

} // namespace ioasid::core
