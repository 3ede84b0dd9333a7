#include "caller_cache.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <string>

namespace ioasid::memory {
namespace {

// The process a thread belongs to; process_vm_readv would accept the
// thread id, but pidfds and /proc/<pid>/mem are per process.
pid_t thread_group_of(pid_t tid)
{
    std::ifstream status("/proc/" + std::to_string(tid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("Tgid:", 0) != 0)
            continue;
        pid_t tgid = 0;
        auto begin = line.find_first_not_of(" \t", 5);
        if (begin != std::string::npos)
            std::from_chars(line.data() + begin, line.data() + line.size(), tgid);
        return tgid;
    }
    return 0;
}

} // namespace

std::shared_ptr<ProcessCaller> CallerCache::get(pid_t tid, uid_t uid)
{
    if (tid <= 0)
        return nullptr;
    std::lock_guard guard(lock_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->tid != tid || it->uid != uid)
            continue;
        // A thread id outlives its thread; tgkill(…, 0) confirms it still
        // names a thread of the same process before that process is used.
        const pid_t tgid = it->caller->tgid();
        if (!it->caller->same_address_space() ||
            (tid != tgid && ::syscall(SYS_tgkill, tgid, tid, 0) != 0)) {
            entries_.erase(it);
            break;
        }
        if (it + 1 != entries_.end())
            std::rotate(it, it + 1, entries_.end());
        return entries_.back().caller;
    }
    pid_t tgid = thread_group_of(tid);
    if (tgid <= 0)
        return nullptr;
    std::shared_ptr<ProcessCaller> caller = ProcessCaller::open(tgid, uid);
    if (!caller)
        return nullptr;
    if (entries_.size() == kMaxEntries)
        entries_.erase(entries_.begin());
    entries_.push_back({tid, uid, caller});
    return caller;
}

} // namespace ioasid::memory
