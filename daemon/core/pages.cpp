#include "pages.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <mutex>
#include <shared_mutex>
#include <vector>

namespace ioasid::core {

using Interval = boost::icl::discrete_interval<std::uint64_t>;

namespace {

// A file window held for pinned pages. Each is a mapping of the daemon's,
// of which the kernel allows vm.max_map_count (65530 by default) for all
// uses: held windows stop at a share of that, and pinned pages beyond it
// are reached through their process instead.
class HeldWindow {
    struct Key {};

public:
    static constexpr int kMax = 16384;

    // nullptr when the budget is spent or the mapping fails.
    static std::shared_ptr<const HeldWindow> map(int fd, std::uint64_t offset, std::uint64_t length,
                                                 bool writable)
    {
        if (count_.fetch_add(1, std::memory_order_relaxed) >= kMax) {
            count_.fetch_sub(1, std::memory_order_relaxed);
            return nullptr;
        }
        auto window = std::make_shared<HeldWindow>(Key{});
        if (memory::MappedFile::map(fd, offset, length, writable, &window->file_))
            return nullptr; // ~HeldWindow gives the slot back
        return window;
    }
    explicit HeldWindow(Key) {}
    ~HeldWindow() { count_.fetch_sub(1, std::memory_order_relaxed); }
    HeldWindow(const HeldWindow&) = delete;
    HeldWindow& operator=(const HeldWindow&) = delete;

    [[nodiscard]] const memory::MappedFile& file() const { return file_; }

private:
    static inline std::atomic<int> count_{0};
    memory::MappedFile file_;
};

// IOMMU_IOAS_MAP: the process's memory. The kernel pins pages, and a pinned
// page stays the same page whatever the process does afterwards: unmap,
// remap, exit. The daemon reaches the process by address, which follows
// the process instead. Where pinned pages belong to a shared shmem or
// hugetlbfs mapping, the daemon therefore opens the file behind it at pin
// time and maps it itself, and the pinned range is read and written there
// until it is unpinned (which is also a plain memcpy, faster than a copy
// across processes). Private memory has no such handle: it is reached
// through the process, and is gone with it.
class UserSource final : public PagesSource {
public:
    UserSource(std::shared_ptr<memory::Caller> process, std::uint64_t uptr, bool writable)
        : process_(std::move(process)), uptr_(uptr), writable_(writable)
    {
    }

    int check_range(std::uint64_t offset, std::uint64_t length, bool for_write) override
    {
        // The process that mapped the range may have exited since (a
        // forked child, say); its pages are then as unreachable as the
        // kernel finds them when mmget_not_zero() on the source mm fails.
        const int rc = process_->memory().check_mapped(uptr_ + offset, length, for_write);
        return rc == -ESRCH ? -EFAULT : rc;
    }

    void pinned(std::uint64_t offset, std::uint64_t length) override
    {
        std::vector<memory::SharedFileRange> files;
        if (process_->memory().shared_files(uptr_ + offset, length, &files))
            return;
        std::unique_lock guard(held_lock_);
        // What was held here before belongs to an earlier pin.
        forget(offset, offset + length);
        for (memory::SharedFileRange& file : files) {
            // The mapping may have lost its write permission since the pin
            // checked it: such pages are reached through the process.
            if (writable_ && !file.writable)
                continue;
            // The window is whole pages of the file: hugetlbfs maps nothing less.
            const std::uint64_t unit = file.page_size;
            const std::uint64_t first = file.offset & ~(unit - 1);
            std::uint64_t last;
            if (__builtin_add_overflow(file.offset, file.length + unit - 1, &last))
                continue;
            last &= ~(unit - 1);
            // Not held, the range is still reached through the process.
            auto window = HeldWindow::map(file.file.get(), first, last - first, file.writable);
            if (!window)
                continue;
            held_.emplace(file.addr - uptr_,
                          Held{file.addr - uptr_ + file.length, std::move(window),
                               file.offset - first});
        }
        held_count_.store(held_.size(), std::memory_order_release);
    }

    void unpinned(std::uint64_t offset, std::uint64_t length) override
    {
        std::unique_lock guard(held_lock_);
        forget(offset, offset + length);
        held_count_.store(held_.size(), std::memory_order_release);
    }

    int read(std::uint64_t offset, std::span<std::byte> out) override
    {
        return copy(offset, out.size(),
                    [&](const memory::MappedFile* file, std::uint64_t at, std::uint64_t done,
                        std::uint64_t n) {
                        auto piece = out.subspan(done, n);
                        return file ? (file->read(at, piece) ? -EFAULT : 0)
                                    : process_->memory().device_read(at, piece);
                    });
    }
    int write(std::uint64_t offset, std::span<const std::byte> in) override
    {
        return copy(offset, in.size(),
                    [&](const memory::MappedFile* file, std::uint64_t at, std::uint64_t done,
                        std::uint64_t n) {
                        auto piece = in.subspan(done, n);
                        return file ? (file->write(at, piece) ? -EFAULT : 0)
                                    : process_->memory().device_write(at, piece);
                    });
    }

private:
    // A pinned range [offset, end) whose bytes are in `file` from `at` on.
    struct Held {
        std::uint64_t end;
        std::shared_ptr<const HeldWindow> window;
        std::uint64_t at;
    };

    // Splits the copy of [offset, offset + length) into pieces held in a
    // file and pieces of the process: piece(file or nullptr, where in the
    // file or the client address, bytes done so far, piece length).
    template <typename Piece>
    int copy(std::uint64_t offset, std::uint64_t length, Piece piece)
    {
        if (held_count_.load(std::memory_order_acquire) == 0)
            return piece(nullptr, uptr_ + offset, 0, length);
        std::shared_lock guard(held_lock_);
        std::uint64_t done = 0;
        while (done < length) {
            const std::uint64_t pos = offset + done;
            auto next = held_.upper_bound(pos);
            std::uint64_t n = length - done;
            int rc;
            if (next != held_.begin() && std::prev(next)->second.end > pos) {
                const auto& [begin, held] = *std::prev(next);
                n = std::min(n, held.end - pos);
                rc = piece(&held.window->file(), held.at + (pos - begin), done, n);
            } else {
                if (next != held_.end())
                    n = std::min(n, next->first - pos);
                rc = piece(nullptr, uptr_ + pos, done, n);
            }
            if (rc)
                return rc;
            done += n;
        }
        return 0;
    }

    // Drops what is held for [lo, hi), keeping the parts of entries outside.
    void forget(std::uint64_t lo, std::uint64_t hi)
    {
        auto it = held_.upper_bound(lo);
        if (it != held_.begin() && std::prev(it)->second.end > lo)
            --it;
        while (it != held_.end() && it->first < hi) {
            auto [begin, held] = *it;
            it = held_.erase(it);
            if (begin < lo)
                held_.emplace(begin, Held{lo, held.window, held.at});
            if (held.end > hi)
                it = held_.emplace(hi, Held{held.end, held.window, held.at + (hi - begin)}).first;
        }
    }

    std::shared_ptr<memory::Caller> process_;
    std::uint64_t uptr_;
    bool writable_; // the pins are for writing

    // Copies (emulated DMA) read the held ranges while pins change them.
    std::shared_mutex held_lock_;
    std::map<std::uint64_t, Held> held_; // by first offset
    std::atomic<std::size_t> held_count_{0};
};

// IOMMU_IOAS_MAP_FILE: pages of a file. The daemon holds its own
// descriptor, as the kernel holds a file reference, so nothing the client
// does with its descriptor or its mappings takes the pages away. It maps
// them into its own address space on first use rather than at MAP time: the
// kernel touches nothing before it pins, and a window as large as the
// lengths it accepts may not fit.
class FileSource final : public PagesSource {
public:
    FileSource(memory::UniqueFd file, const memory::FileFacts& facts, std::uint64_t start,
               std::uint64_t length, bool writable)
        : file_(std::move(file)), facts_(facts), start_(start), length_(length), writable_(writable)
    {
    }

    int check_range(std::uint64_t offset, std::uint64_t length, bool) override
    {
        // memfd_pin_folios() takes shmem and hugetlbfs files only.
        if (!facts_.memfd_like)
            return -EINVAL;
        // It allocates the pages of holes, but no page at or past the end
        // of the file (shmem_get_folio_gfp() with SGP_CACHE: -EINVAL).
        std::uint64_t size;
        if (memory::file_size(file_.get(), &size))
            return -EINVAL;
        const std::uint64_t pages_end = (size + kPageSize - 1) & ~(kPageSize - 1);
        std::uint64_t end;
        if (__builtin_add_overflow(start_, offset, &end) ||
            __builtin_add_overflow(end, length, &end) || end > pages_end)
            return -EINVAL;
        return ensure_mapped();
    }

    // The kernel copies through pinned pages, pinning them for the copy
    // when nobody has (so -EINVAL past the end of the file). The client may
    // shrink the file at any time; a page it cut off faults in the copy,
    // which then answers as that pin would have.
    int read(std::uint64_t offset, std::span<std::byte> out) override
    {
        if (!facts_.memfd_like)
            return -EINVAL;
        if (int rc = ensure_mapped())
            return rc;
        return mapping_.read(delta_ + offset, out) ? -EINVAL : 0;
    }
    int write(std::uint64_t offset, std::span<const std::byte> in) override
    {
        if (!facts_.memfd_like)
            return -EINVAL;
        if (int rc = ensure_mapped())
            return rc;
        return mapping_.write(delta_ + offset, in) ? -EINVAL : 0;
    }

private:
    // Maps the pages' window once, in the file's own page size (hugetlbfs
    // maps whole huge pages only). Copies may come from several threads.
    int ensure_mapped()
    {
        if (mapped_.load(std::memory_order_acquire))
            return 0;
        std::lock_guard guard(map_lock_);
        if (mapped_.load(std::memory_order_relaxed))
            return 0;
        const std::uint64_t unit = facts_.page_size;
        const std::uint64_t first = start_ & ~(unit - 1);
        std::uint64_t end;
        if (__builtin_add_overflow(start_, length_, &end) ||
            __builtin_add_overflow(end, unit - 1, &end))
            return -ENOMEM;
        end &= ~(unit - 1);
        if (int rc = memory::MappedFile::map(file_.get(), first, end - first, writable_, &mapping_))
            return rc;
        delta_ = start_ - first;
        mapped_.store(true, std::memory_order_release);
        return 0;
    }

    memory::UniqueFd file_;
    memory::FileFacts facts_;
    std::uint64_t start_;  // file offset of the first page
    std::uint64_t length_; // whole pages
    bool writable_;

    std::mutex map_lock_;
    std::atomic<bool> mapped_{false};
    memory::MappedFile mapping_;
    std::uint64_t delta_ = 0; // where the first page lies in mapping_
};

AccountMode mode_for(const memory::Caller& owner, AccountMode context_mode)
{
    return owner.capable(memory::Capability::ipc_lock) ? AccountMode::none : context_mode;
}

} // namespace

int Pages::create(std::shared_ptr<memory::Caller> source, std::uint64_t user_va,
                  std::uint64_t length, bool writable, AccountMode context_mode,
                  PinServices& services, std::shared_ptr<Pages>* out)
{
    // Keeps the page count below from overflowing, as the kernel does.
    if (length == 0 || length > kUlongMax - kPageSize)
        return -EINVAL;
    std::uint64_t end;
    if (__builtin_add_overflow(user_va, length, &end))
        return -EOVERFLOW;
    std::uint64_t uptr = user_va & ~(kPageSize - 1);
    std::uint64_t npages = (length + (user_va - uptr) + kPageSize - 1) / kPageSize;
    const AccountMode mode = mode_for(*source, context_mode);
    auto memory = std::make_unique<UserSource>(source, uptr, writable);
    *out = std::make_shared<Pages>(Key{}, std::move(memory), std::move(source), uptr, npages,
                                   writable, mode, services);
    (*out)->user_memory_ = true;
    return 0;
}

int Pages::create_file(std::shared_ptr<memory::Caller> owner, memory::UniqueFd file,
                       const memory::FileFacts& facts, std::uint64_t start, std::uint64_t length,
                       bool writable, AccountMode context_mode, PinServices& services,
                       std::shared_ptr<Pages>* out)
{
    std::uint64_t last;
    if (length && __builtin_add_overflow(start, length - 1, &last))
        return -EOVERFLOW;
    if (length == 0 || length > kUlongMax - kPageSize)
        return -EINVAL;
    // The daemon writes through a shared writable mapping of its own, which
    // the file must allow: opened for writing and not write-sealed. It reads
    // through one too, so a file it can map must be readable.
    if ((writable && (!facts.writable || facts.write_sealed)) ||
        (facts.memfd_like && !facts.readable))
        return -EPERM;
    const std::uint64_t first = start & ~(kPageSize - 1);
    const std::uint64_t npages = (length + (start - first) + kPageSize - 1) / kPageSize;
    const AccountMode mode = mode_for(*owner, context_mode);
    auto source = std::make_unique<FileSource>(std::move(file), facts, first, npages * kPageSize,
                                               writable);
    *out = std::make_shared<Pages>(Key{}, std::move(source), std::move(owner), first, npages,
                                   writable, mode, services);
    return 0;
}

Pages::Pages(Key, std::unique_ptr<PagesSource> source, std::shared_ptr<memory::Caller> owner,
             std::uint64_t start, std::uint64_t npages, bool writable, AccountMode mode,
             PinServices services)
    : source_(std::move(source)), owner_(std::move(owner)), start_(start), npages_(npages),
      writable_(writable), mode_(mode), services_(services)
{
}

Pages::~Pages()
{
    // Every user unpins before it lets go of its reference.
    assert(npinned_ == 0);
    if (npinned_)
        services_.accounting.uncharge(mode_, *owner_, npinned_);
    for (auto [chunk, base] : chunks_)
        services_.phys.release(base);
}

int Pages::reserve_chunks(std::uint64_t first, std::uint64_t last)
{
    std::vector<std::uint64_t> added;
    for (std::uint64_t chunk = first / kChunkPages; chunk <= last / kChunkPages; ++chunk) {
        if (chunks_.contains(chunk))
            continue;
        std::uint64_t lo = chunk * kChunkPages;
        auto base = services_.phys.reserve(std::min(kChunkPages, npages_ - lo), *this, lo * kPageSize);
        if (!base) {
            for (std::uint64_t undo : added) {
                services_.phys.release(chunks_[undo]);
                chunks_.erase(undo);
            }
            return -ENOMEM;
        }
        chunks_.emplace(chunk, *base);
        added.push_back(chunk);
    }
    return 0;
}

void Pages::release_unpinned_chunks(std::uint64_t first, std::uint64_t last)
{
    for (std::uint64_t chunk = first / kChunkPages; chunk <= last / kChunkPages; ++chunk) {
        std::uint64_t lo = chunk * kChunkPages;
        std::uint64_t hi = std::min(lo + kChunkPages, npages_) - 1;
        auto it = chunks_.find(chunk);
        if (it != chunks_.end() && pinned_within(lo, hi) == 0) {
            services_.phys.release(it->second);
            chunks_.erase(it);
        }
    }
}

std::uint64_t Pages::pinned_within(std::uint64_t first, std::uint64_t last) const
{
    std::uint64_t count = 0;
    auto range = pins_.equal_range(Interval::closed(first, last));
    for (auto it = range.first; it != range.second; ++it) {
        std::uint64_t lo = std::max(first, boost::icl::first(it->first));
        std::uint64_t hi = std::min(last, boost::icl::last(it->first));
        count += hi - lo + 1;
    }
    return count;
}

template <typename Fn>
void Pages::for_each_single_pin(std::uint64_t first, std::uint64_t last, Fn fn) const
{
    auto range = pins_.equal_range(Interval::closed(first, last));
    for (auto it = range.first; it != range.second; ++it)
        if (it->second == 1)
            fn(std::max(first, boost::icl::first(it->first)), std::min(last, boost::icl::last(it->first)));
}

int Pages::pin(std::uint64_t first, std::uint64_t last)
{
    assert(first <= last && last < npages_);
    // Only pages that nobody pins yet are checked and charged.
    std::uint64_t next = first;
    std::uint64_t newly = 0;
    auto check_gap = [&](std::uint64_t lo, std::uint64_t hi) {
        newly += hi - lo + 1;
        return source_->check_range(lo * kPageSize, (hi - lo + 1) * kPageSize, writable_);
    };
    auto range = pins_.equal_range(Interval::closed(first, last));
    for (auto it = range.first; it != range.second; ++it) {
        std::uint64_t lo = boost::icl::first(it->first);
        if (lo > next)
            if (int rc = check_gap(next, lo - 1))
                return rc;
        next = boost::icl::last(it->first) + 1;
    }
    if (next <= last)
        if (int rc = check_gap(next, last))
            return rc;

    if (int rc = services_.accounting.charge(mode_, *owner_, newly))
        return rc;
    if (int rc = reserve_chunks(first, last)) {
        services_.accounting.uncharge(mode_, *owner_, newly);
        return rc;
    }
    pins_ += std::make_pair(Interval::closed(first, last), std::uint32_t{1});
    npinned_ += newly;
    // What just went from no pin to one is what the process's pages gained.
    for_each_single_pin(first, last, [&](std::uint64_t lo, std::uint64_t hi) {
        source_->pinned(lo * kPageSize, (hi - lo + 1) * kPageSize);
        if (user_memory_)
            services_.accounting.note_pinned(owner_->process_key(), start_ / kPageSize + lo,
                                             start_ / kPageSize + hi);
    });
    return 0;
}

void Pages::unpin(std::uint64_t first, std::uint64_t last)
{
    assert(first <= last && last < npages_);
    // Pages pinned once now are the ones this unpin releases.
    std::uint64_t released = 0;
    for_each_single_pin(first, last, [&](std::uint64_t lo, std::uint64_t hi) {
        released += hi - lo + 1;
        source_->unpinned(lo * kPageSize, (hi - lo + 1) * kPageSize);
        if (user_memory_)
            services_.accounting.note_unpinned(owner_->process_key(), start_ / kPageSize + lo,
                                               start_ / kPageSize + hi);
    });
    // interval_map drops segments whose count reaches zero.
    pins_ -= std::make_pair(Interval::closed(first, last), std::uint32_t{1});
    npinned_ -= released;
    services_.accounting.uncharge(mode_, *owner_, released);
    release_unpinned_chunks(first, last);
}

std::uint32_t Pages::pin_count(std::uint64_t index) const
{
    auto it = pins_.find(index);
    return it == pins_.end() ? 0 : it->second;
}

std::optional<std::uint64_t> Pages::phys_addr(std::uint64_t index) const
{
    if (pin_count(index) == 0)
        return std::nullopt;
    return chunks_.at(index / kChunkPages) + (index % kChunkPages) * kPageSize;
}

int Pages::read(std::uint64_t offset, std::span<std::byte> out)
{
    return source_->read(offset, out);
}

int Pages::write(std::uint64_t offset, std::span<const std::byte> in)
{
    if (!writable_)
        return -EPERM;
    return source_->write(offset, in);
}

} // namespace ioasid::core
