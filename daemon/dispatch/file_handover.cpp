// Command::hand_over_file(): a new descriptor for the client, standing for
// one of the daemon's files. The caller's transport does the installing
// (memory::Caller::hand_over_file); this only places the number.
#include <cerrno>
#include <cstdint>

#include "command.h"

namespace ioasid::dispatch {

int Command::hand_over_file(std::shared_ptr<core::ClientFile> file, std::size_t fd_offset) const
{
    // The number is a field of the struct the client passed: one past its
    // size would be a field this client does not know.
    if (fd_offset + sizeof(std::uint32_t) > user_size)
        return -EINVAL;
    return caller->hand_over_file(std::move(file), arg + fd_offset);
}

} // namespace ioasid::dispatch
