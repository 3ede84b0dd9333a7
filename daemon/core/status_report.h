// IOASID_EMU_STATUS: what the daemon holds, as a JSON document.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace ioasid::core {

class Context;

struct StatusQuery {
    bool all_contexts = false; // else only `own`
    uid_t viewer_uid = 0;      // non-root viewers see their own uid's contexts
};

// Must be called without `own`'s lock held: contexts are locked one at a
// time, after the registry (see ContextRegistry).
[[nodiscard]] std::string status_report(Context& own, const StatusQuery& query);

// IOASID_EMU_PT_DUMP: a paging HWPT's table as the hardware reads it, as
// JSON. -ENOENT for an unknown HWPT. Under the context's lock.
[[nodiscard]] int pt_dump_report(Context& ctx, std::uint32_t hwpt_id, std::string* out);

} // namespace ioasid::core
