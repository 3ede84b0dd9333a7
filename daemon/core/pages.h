// A run of memory that one IOAS_MAP or IOAS_MAP_FILE named: the /dev/ioasid
// proposal's "pages" object. Areas in any IOAS of the context share it
// (IOAS_COPY), and it is pinned only where something needs the pages: a
// page is pinned once, whatever number of users it has, counted per page in
// an interval map, charged once, and given an emulated physical address.
// Where the bytes live (a process's memory, a file) is its PagesSource.
#pragma once

#include <boost/icl/interval_map.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>

#include "iova.h"
#include "memory/caller.h"
#include "memory/mapped_file.h"
#include "memory/phys_space.h"
#include "memory/unique_fd.h"
#include "pin_accounting.h"

namespace ioasid::core {

// What pinning needs from outside a context.
struct PinServices {
    PinAccounting& accounting;
    memory::PhysSpace& phys;
};

// The memory behind a Pages object. Offsets count from the first byte of
// its first page; ranges given to check_range() are whole pages.
class PagesSource {
public:
    virtual ~PagesSource() = default;
    // What the kernel checks when it pins these pages (pin_user_pages(),
    // memfd_pin_folios()), as the errno it gives.
    [[nodiscard]] virtual int check_range(std::uint64_t offset, std::uint64_t length,
                                          bool for_write) = 0;
    // The range went from no pin to one, or back: what the source keeps
    // hold of for pinned pages only.
    virtual void pinned(std::uint64_t offset, std::uint64_t length) { (void)offset, (void)length; }
    virtual void unpinned(std::uint64_t offset, std::uint64_t length) { (void)offset, (void)length; }
    [[nodiscard]] virtual int read(std::uint64_t offset, std::span<std::byte> out) = 0;
    [[nodiscard]] virtual int write(std::uint64_t offset, std::span<const std::byte> in) = 0;
};

class Pages final : public memory::PhysBacking {
public:
    struct Key {};
    // IOMMU_IOAS_MAP: `source`'s memory at user_va. The checks of the
    // kernel's iopt_alloc_user_pages(): -EINVAL for a zero or too large
    // length, -EOVERFLOW when user_va + length wraps.
    [[nodiscard]] static int create(std::shared_ptr<memory::Caller> source, std::uint64_t user_va,
                                    std::uint64_t length, bool writable, AccountMode context_mode,
                                    PinServices& services, std::shared_ptr<Pages>* out);
    // IOMMU_IOAS_MAP_FILE: [start, start + length) of `file` (described by
    // `facts`), charged to `owner`. The checks of the kernel's
    // iopt_alloc_file_pages(): -EOVERFLOW when start + length - 1 wraps,
    // -EINVAL for a zero or too large length; then -EPERM for a writable
    // map of a file the daemon may not write through (see ioas.cpp).
    // Whether the file is one that can be pinned is checked when pinning.
    [[nodiscard]] static int create_file(std::shared_ptr<memory::Caller> owner, memory::UniqueFd file,
                                         const memory::FileFacts& facts, std::uint64_t start,
                                         std::uint64_t length, bool writable,
                                         AccountMode context_mode, PinServices& services,
                                         std::shared_ptr<Pages>* out);

    Pages(Key, std::unique_ptr<PagesSource> source, std::shared_ptr<memory::Caller> owner,
          std::uint64_t start, std::uint64_t npages, bool writable, AccountMode mode,
          PinServices services);
    ~Pages() override;
    Pages(const Pages&) = delete;
    Pages& operator=(const Pages&) = delete;

    // Where the first page starts in its source: a user address, or a file
    // offset. Like the kernel's pages->uptr / pages->start, it is what
    // automatic IOVA placement keeps the alignment of.
    [[nodiscard]] std::uint64_t uptr() const { return start_; }
    [[nodiscard]] std::uint64_t npages() const { return npages_; }
    [[nodiscard]] bool writable() const { return writable_; }
    [[nodiscard]] AccountMode account_mode() const { return mode_; }
    // Who the pins are charged to: the process that made the mapping.
    [[nodiscard]] const memory::Caller& owner() const { return *owner_; }
    // Whether the pages are the owner's memory at uptr() (IOMMU_IOAS_MAP),
    // rather than a file's.
    [[nodiscard]] bool user_memory() const { return user_memory_; }

    // Takes one pin on each page of [first, last] (page indexes). Pages not
    // pinned before must pass the source's check (-EFAULT for unmapped
    // memory, -EINVAL for a file that cannot be pinned or a page past its
    // end), fit the owner's RLIMIT_MEMLOCK (-ENOMEM) and get physical
    // addresses (-ENOMEM). All or nothing.
    [[nodiscard]] int pin(std::uint64_t first, std::uint64_t last);
    void unpin(std::uint64_t first, std::uint64_t last);

    [[nodiscard]] std::uint64_t npinned() const { return npinned_; }
    [[nodiscard]] std::uint32_t pin_count(std::uint64_t index) const;
    // The emulated physical address of a pinned page.
    [[nodiscard]] std::optional<std::uint64_t> phys_addr(std::uint64_t index) const;

    // Reads and writes the source, offset from its first page.
    [[nodiscard]] int read(std::uint64_t offset, std::span<std::byte> out) override;
    [[nodiscard]] int write(std::uint64_t offset, std::span<const std::byte> in) override;

private:
    using PinMap = boost::icl::interval_map<std::uint64_t, std::uint32_t>;
    // Physical addresses are handed out per chunk of 2 MiB that holds a
    // pinned page, so a huge mapping with one pinned page costs one chunk,
    // and a chunk is contiguous and aligned, as a huge page would be.
    static constexpr std::uint64_t kChunkPages = 512;
    [[nodiscard]] std::uint64_t pinned_within(std::uint64_t first, std::uint64_t last) const;
    // Calls fn(lo, hi) for each run of [first, last] pinned exactly once.
    template <typename Fn>
    void for_each_single_pin(std::uint64_t first, std::uint64_t last, Fn fn) const;
    [[nodiscard]] int reserve_chunks(std::uint64_t first, std::uint64_t last);
    void release_unpinned_chunks(std::uint64_t first, std::uint64_t last);

    std::unique_ptr<PagesSource> source_;
    std::shared_ptr<memory::Caller> owner_;
    std::uint64_t start_;
    std::uint64_t npages_;
    bool writable_;
    bool user_memory_ = false;
    AccountMode mode_;
    PinServices services_;

    PinMap pins_; // page index -> pin count; absent means unpinned
    std::uint64_t npinned_ = 0;
    std::map<std::uint64_t, std::uint64_t> chunks_; // chunk index -> physical base
};

} // namespace ioasid::core
