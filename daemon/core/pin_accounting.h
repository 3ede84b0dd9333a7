// Accounting of pinned pages, shared by every context of a daemon because
// the kernel's counts are per user, per process and per page, not per
// file: RLIMIT_MEMLOCK charges, and how many pins each page of a process's
// memory has.
#pragma once

#include <sys/types.h>

#include <boost/icl/interval_map.hpp>

#include <cstdint>
#include <mutex>
#include <optional>
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

    // Pins per page of a process's memory, one for each Pages object that
    // holds the page pinned, whatever number of users it has there: the
    // FOLL_PIN count of the kernel's struct page, which
    // IOMMU_TEST_OP_MD_CHECK_REFS compares. Pages of user memory report each
    // run of pages (virtual page numbers, inclusive) that became pinned or
    // unpinned in them.
    void note_pinned(std::uint64_t process_key, std::uint64_t first_vpn, std::uint64_t last_vpn);
    void note_unpinned(std::uint64_t process_key, std::uint64_t first_vpn, std::uint64_t last_vpn);
    // The first page of [first_vpn, last_vpn] whose count is not `pins`.
    [[nodiscard]] std::optional<std::uint64_t> first_page_pinned_otherwise(std::uint64_t process_key,
                                                                          std::uint64_t first_vpn,
                                                                          std::uint64_t last_vpn,
                                                                          std::uint32_t pins) const;

private:
    std::unordered_map<std::uint64_t, std::uint64_t>* counters(AccountMode mode);

    mutable std::mutex lock_;
    std::unordered_map<std::uint64_t, std::uint64_t> per_user_;
    std::unordered_map<std::uint64_t, std::uint64_t> per_process_;
    // By process key; a page absent from the map has no pins.
    std::unordered_map<std::uint64_t, boost::icl::interval_map<std::uint64_t, std::uint32_t>> page_pins_;
};

} // namespace ioasid::core
