// The iommufd ioctl entry point: raw command number and user pointer in,
// errno out. The only code that knows ioctl numbers and struct bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/context.h"
#include "memory/caller.h"

namespace ioasid::dispatch {

// Runs one ioctl on `ctx` for `caller`, whose memory holds the struct at
// `arg`. Returns 0 or a negative errno, as the kernel's ioctl handler does.
// Takes the context's lock for the whole call.
[[nodiscard]] int ioctl(core::Context& ctx, unsigned int cmd,
                        const std::shared_ptr<memory::Caller>& caller, std::uint64_t arg);

// Whether `cmd` names a command at all (its number, as the kernel picks the
// handler). Lets a transport refuse the rest with ENOTTY before it does any
// work to reach the caller.
[[nodiscard]] bool known(unsigned int cmd);

// For --trace: the command's name and the fields of its struct as `mem`
// holds them at `arg` now, e.g. "IOMMU_IOAS_MAP{flags=0x7 ioas_id=1 ...}".
// Never fails: what cannot be read is shown as such.
[[nodiscard]] std::string describe(unsigned int cmd, memory::CallerMemory& mem, std::uint64_t arg);

} // namespace ioasid::dispatch
