// A run of a process's memory that one IOAS_MAP named: the /dev/ioasid
// proposal's "pages" object. Areas in any IOAS of the context share it
// (IOAS_COPY), and it is pinned only where something needs the pages: a
// page is pinned once, whatever number of users it has, counted per page in
// an interval map, charged once, and given an emulated physical address.
#pragma once

#include <boost/icl/interval_map.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>

#include "iova.h"
#include "memory/caller.h"
#include "memory/phys_space.h"
#include "pin_accounting.h"

namespace ioasid::core {

// What pinning needs from outside a context.
struct PinServices {
    PinAccounting& accounting;
    memory::PhysSpace& phys;
};

class Pages final : public memory::PhysBacking {
public:
    struct Key {};
    // The checks of the kernel's iopt_alloc_pages(): -EINVAL for a zero or
    // too large length, -EOVERFLOW when user_va + length wraps.
    [[nodiscard]] static int create(std::shared_ptr<memory::Caller> source, std::uint64_t user_va,
                                    std::uint64_t length, bool writable, AccountMode context_mode,
                                    PinServices& services, std::shared_ptr<Pages>* out);

    Pages(Key, std::shared_ptr<memory::Caller> source, std::uint64_t uptr, std::uint64_t npages,
          bool writable, AccountMode mode, PinServices services);
    ~Pages() override;
    Pages(const Pages&) = delete;
    Pages& operator=(const Pages&) = delete;

    [[nodiscard]] std::uint64_t uptr() const { return uptr_; }
    [[nodiscard]] std::uint64_t npages() const { return npages_; }
    [[nodiscard]] bool writable() const { return writable_; }
    [[nodiscard]] AccountMode account_mode() const { return mode_; }
    [[nodiscard]] const memory::Caller& source() const { return *source_; }

    // Takes one pin on each page of [first, last] (page indexes). Pages not
    // pinned before must be mapped in the source process (-EFAULT), fit the
    // owner's RLIMIT_MEMLOCK (-ENOMEM) and get physical addresses (-ENOMEM).
    // All or nothing.
    [[nodiscard]] int pin(std::uint64_t first, std::uint64_t last);
    void unpin(std::uint64_t first, std::uint64_t last);

    [[nodiscard]] std::uint64_t npinned() const { return npinned_; }
    [[nodiscard]] std::uint32_t pin_count(std::uint64_t index) const;
    // The emulated physical address of a pinned page.
    [[nodiscard]] std::optional<std::uint64_t> phys_addr(std::uint64_t index) const;

    // Reads and writes the source process's memory, offset from uptr().
    [[nodiscard]] int read(std::uint64_t offset, std::span<std::byte> out) override;
    [[nodiscard]] int write(std::uint64_t offset, std::span<const std::byte> in) override;

private:
    using PinMap = boost::icl::interval_map<std::uint64_t, std::uint32_t>;
    // Physical addresses are handed out per chunk of 2 MiB that holds a
    // pinned page, so a huge mapping with one pinned page costs one chunk,
    // and a chunk is contiguous and aligned, as a huge page would be.
    static constexpr std::uint64_t kChunkPages = 512;
    [[nodiscard]] std::uint64_t pinned_within(std::uint64_t first, std::uint64_t last) const;
    [[nodiscard]] int reserve_chunks(std::uint64_t first, std::uint64_t last);
    void release_unpinned_chunks(std::uint64_t first, std::uint64_t last);

    std::shared_ptr<memory::Caller> source_;
    std::uint64_t uptr_;
    std::uint64_t npages_;
    bool writable_;
    AccountMode mode_;
    PinServices services_;

    PinMap pins_; // page index -> pin count; absent means unpinned
    std::uint64_t npinned_ = 0;
    std::map<std::uint64_t, std::uint64_t> chunks_; // chunk index -> physical base
};

} // namespace ioasid::core
