// Our extension commands (uapi/ioasid/emu.h).
#include <ioasid/emu.h>

#include <cerrno>
#include <cstddef>
#include <limits>
#include <span>

#include "command.h"
#include "core/status_report.h"

namespace ioasid::dispatch {

// Runs without the context's lock (the report takes it).
int emu_status_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<ioasid_emu_status*>(buf);
    if (args.flags & ~static_cast<std::uint32_t>(IOASID_STATUS_ALL))
        return -EOPNOTSUPP;
    core::StatusQuery query{(args.flags & IOASID_STATUS_ALL) != 0, cmd.caller->uid()};
    const std::string report = core::status_report(cmd.ctx, query);
    if (report.size() > std::numeric_limits<std::uint32_t>::max())
        return -EOVERFLOW;
    args.out_len = static_cast<std::uint32_t>(report.size());
    if (report.size() > args.buf_len) {
        if (int rc = cmd.respond(args))
            return rc;
        return -EMSGSIZE;
    }
    if (int rc = cmd.mem().write(args.buf_uptr, std::as_bytes(std::span(report))))
        return rc;
    return cmd.respond(args);
}

} // namespace ioasid::dispatch

namespace ioasid::dispatch {

int emu_pt_dump_command(Command& cmd, void* buf)
{
    auto& args = *static_cast<ioasid_emu_pt_dump*>(buf);
    std::string dump;
    if (int rc = core::pt_dump_report(cmd.ctx, args.hwpt_id, &dump))
        return rc;
    if (dump.size() > std::numeric_limits<std::uint32_t>::max())
        return -EOVERFLOW;
    args.out_len = static_cast<std::uint32_t>(dump.size());
    if (dump.size() > args.buf_len) {
        if (int rc = cmd.respond(args))
            return rc;
        return -EMSGSIZE;
    }
    if (int rc = cmd.mem().write(args.buf_uptr, std::as_bytes(std::span(dump))))
        return rc;
    return cmd.respond(args);
}

} // namespace ioasid::dispatch
