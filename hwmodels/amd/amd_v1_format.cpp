#include "amd_v1_format.h"

#include <fmt/format.h>

namespace ioasid::hw::amd::v1 {

std::string describe(std::uint64_t e)
{
    std::string s = fmt::format("addr={:#x} NextLevel={}", e & kAddrMask, next_level(e));
    if (e & kPresent)
        s += " PR";
    if (e & kAccessed)
        s += " A";
    if (e & kDirty)
        s += " D";
    if (e & kUntranslatedOnly)
        s += " U";
    if (e & kForceCoherent)
        s += " FC";
    if (e & kReadable)
        s += " IR";
    if (e & kWritable)
        s += " IW";
    if (next_level(e) == kSizedPage)
        s += fmt::format(" size={:#x}", sized_page_size(e));
    return s;
}

} // namespace ioasid::hw::amd::v1
