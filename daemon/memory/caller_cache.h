// The process callers one open file has recently served, so that an ioctl
// does not pay for opening the process (pidfd, /proc reads) every time.
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <vector>

#include "process_caller.h"

namespace ioasid::memory {

class CallerCache {
public:
    // The caller behind thread (or process) `tid`, with credentials `uid`
    // as the kernel reported them for this request. A cached entry is used
    // only while its process keeps the address space it was opened on, so
    // an exited or exec'ed process, or a recycled pid, is opened afresh.
    // nullptr when the process cannot be reached.
    [[nodiscard]] std::shared_ptr<ProcessCaller> get(pid_t tid, uid_t uid);

private:
    struct Entry {
        pid_t tid;
        uid_t uid;
        std::shared_ptr<ProcessCaller> caller;
    };
    static constexpr std::size_t kMaxEntries = 8;

    std::mutex lock_;
    std::vector<Entry> entries_; // most recently used last
};

} // namespace ioasid::memory
