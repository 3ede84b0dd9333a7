// Driver-specific data a client passes with a request (the kernel's
// iommu_user_data and iommu_user_data_array): a type, a length chosen by
// the client, and a way to copy the bytes in. A unit reads only what its
// format defines, so a hostile length costs nothing until it is checked.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>

namespace ioasid::hw {

// Copies client bytes at `offset` into `out`: 0, or -EFAULT.
using UserDataReader = std::function<int(std::uint64_t offset, std::span<std::byte> out)>;

struct UserData {
    std::uint32_t type = 0;
    std::uint32_t length = 0;
    UserDataReader read;
};

// An array of driver entries, all `entry_len` bytes long. A unit that
// consumes entries sets entry_num to how many it processed.
struct UserDataArray {
    std::uint32_t type = 0;
    std::uint32_t entry_len = 0;
    std::uint32_t entry_num = 0;
    UserDataReader read;
};

// Fills `out` (a driver struct whose fields up to `min_len` bytes are
// mandatory) from `data`, the rules of __iommu_copy_struct_from_user():
// another type or a length below min_len or above the struct is -EINVAL,
// unreadable bytes -EFAULT, a shorter struct is zero-extended.
[[nodiscard]] inline int copy_user_struct(const UserData& data, std::uint32_t type, std::span<std::byte> out,
                                          std::size_t min_len)
{
    if (data.type != type)
        return -EINVAL;
    if (data.length < min_len || data.length > out.size())
        return -EINVAL;
    std::memset(out.data(), 0, out.size());
    return data.read(0, out.first(data.length)) ? -EFAULT : 0;
}

// Entry `index` of `array` into `out`, as __iommu_copy_struct_from_user_array().
[[nodiscard]] inline int copy_user_entry(const UserDataArray& array, std::uint32_t type, std::uint32_t index,
                                         std::span<std::byte> out, std::size_t min_len)
{
    if (index >= array.entry_num)
        return -EINVAL;
    const UserData entry{array.type, array.entry_len,
                         [&](std::uint64_t offset, std::span<std::byte> bytes) {
                             return array.read(std::uint64_t{array.entry_len} * index + offset, bytes);
                         }};
    return copy_user_struct(entry, type, out, min_len);
}

} // namespace ioasid::hw
