// The emulated physical address space. Pinned pages get addresses here, the
// way the kernel's pinned pages have PFNs; page tables hold these addresses
// and a translation resolves back to the memory behind them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>

namespace ioasid::memory {

// Memory that sits behind a reserved physical range.
class PhysBacking {
public:
    virtual ~PhysBacking() = default;
    [[nodiscard]] virtual int read(std::uint64_t offset, std::span<std::byte> out) = 0;
    [[nodiscard]] virtual int write(std::uint64_t offset, std::span<const std::byte> in) = 0;
};

class PhysSpace {
public:
    static constexpr std::uint64_t kPageSize = 4096;
    // Starts above 4 GiB so that an address is never mistaken for a small
    // IOVA in a dump, and ends at 46 bits, inside every emulated unit's
    // output address width.
    static constexpr std::uint64_t kFirst = 1ULL << 32;
    static constexpr std::uint64_t kEnd = 1ULL << 46;
    static constexpr std::uint64_t kAlignPages = 512;

    // Returns the base address of `npages` contiguous pages, or nothing when
    // the space is exhausted (the caller reports ENOMEM). Every reservation
    // starts on a 2 MiB boundary, as a huge page frame does, so that page
    // tables can use large leaves where the IOVA side allows.
    // `backing_offset` is where in `backing` the first reserved page lies.
    std::optional<std::uint64_t> reserve(std::uint64_t npages, PhysBacking& backing,
                                         std::uint64_t backing_offset = 0);
    void release(std::uint64_t base);

    struct Resolved {
        PhysBacking* backing;
        std::uint64_t offset;    // into the backing
        std::uint64_t remaining; // bytes from `offset` to the end of the reservation
    };
    [[nodiscard]] std::optional<Resolved> resolve(std::uint64_t pa) const;

    [[nodiscard]] std::uint64_t reserved_pages() const;

private:
    struct Reservation {
        std::uint64_t npages; // taken from the space
        std::uint64_t valid;  // backed by `backing`
        PhysBacking* backing;
        std::uint64_t backing_offset;
    };
    void add_free(std::uint64_t base, std::uint64_t npages);
    void remove_free(std::map<std::uint64_t, std::uint64_t>::iterator it);

    mutable std::mutex lock_;
    std::map<std::uint64_t, Reservation> used_;
    std::uint64_t used_pages_ = 0;
    // Free space, indexed twice: by address to merge neighbours, by size to
    // pick the smallest hole that fits.
    std::map<std::uint64_t, std::uint64_t> free_by_base_{{kFirst, (kEnd - kFirst) / kPageSize}};
    std::set<std::pair<std::uint64_t, std::uint64_t>> free_by_size_{{(kEnd - kFirst) / kPageSize, kFirst}};
};

} // namespace ioasid::memory
