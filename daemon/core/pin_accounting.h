// RLIMIT_MEMLOCK accounting of pinned pages, shared by every context of a
// daemon because the kernel's counters are per user and per process, not
// per file.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "memory/caller.h"

namespace ioasid::core {

// IOMMU_OPTION_RLIMIT_MODE picks user (0) or mm (1) for new mappings; a
// caller with CAP_IPC_LOCK is not charged at all.
enum class AccountMode { none, user, mm };

class PinAccounting {
public:
    // -ENOMEM when the charge would take the counter past the owner's
    // RLIMIT_MEMLOCK; nothing is charged then.
    [[nodiscard]] int charge(AccountMode mode, const memory::Caller& owner, std::uint64_t npages);
    void uncharge(AccountMode mode, const memory::Caller& owner, std::uint64_t npages);

    [[nodiscard]] std::uint64_t user_pages(uid_t uid) const;
    [[nodiscard]] std::uint64_t process_pages(std::uint64_t process_key) const;

private:
    std::unordered_map<std::uint64_t, std::uint64_t>* counters(AccountMode mode);

    mutable std::mutex lock_;
    std::unordered_map<std::uint64_t, std::uint64_t> per_user_;
    std::unordered_map<std::uint64_t, std::uint64_t> per_process_;
};

} // namespace ioasid::core
