// The selftest's access file: what IOMMU_TEST_OP_CREATE_ACCESS hands the
// client (the kernel's struct selftest_access behind an anonymous-inode
// fd). It owns an Access on an IOAS of its context and the items pinned
// through it; the client's last close of the fd unpins them and destroys
// the access. read(2) and write(2) are those of a file without them.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <vector>

#include "client_file.h"
#include "context.h"

namespace ioasid::core {

class Access;

class SelftestAccess final : public ClientFile {
public:
    // Creates the access on IOAS `ioas_id` of `ctx`, under its lock.
    // `needs_pin_pages`: the access may pin (page alignment, pins dropped
    // on unmap), as selftest_access_ops_pin; otherwise it only copies.
    // -ENOENT when `ioas_id` is no IOAS.
    [[nodiscard]] static int create(Context& ctx, std::uint32_t ioas_id, bool needs_pin_pages,
                                    std::shared_ptr<SelftestAccess>* out);
    // Takes the context's lock, unless discard() already ended the access.
    ~SelftestAccess() override;
    SelftestAccess(const SelftestAccess&) = delete;
    SelftestAccess& operator=(const SelftestAccess&) = delete;

    // Everything below runs under the context's lock.
    [[nodiscard]] Context& context() const { return ctx_; }
    [[nodiscard]] bool needs_pin_pages() const { return needs_pin_pages_; }
    // The access's id (an object of its context, busy for IOMMU_DESTROY).
    [[nodiscard]] std::uint32_t access_id() const { return access_id_; }
    // Ends the access now, for a creator whose handover failed.
    void discard();

    // Pins [iova, iova + length) as iommufd_access_pin_pages() does and
    // records it as an item; *phys_pages gets the pages' physical
    // addresses, *item_id the item's id (counted from 0 per access).
    [[nodiscard]] int pin(std::uint64_t iova, std::uint64_t length, bool write,
                          std::vector<std::uint64_t>* phys_pages, std::uint32_t* item_id);
    // Drops an item taken with pin(); -ENOENT when there is none (never
    // was, or an unmap of its range already dropped it).
    [[nodiscard]] int unpin(std::uint32_t item_id);
    // Undoes the pin of an item not yet reported, as the kernel's error
    // path after iommufd_access_pin_pages() does. The kernel numbers an
    // item only once its pages passed the check: `renumber` hands the id
    // out again (a failed check), else it stays used (a failed answer).
    void forget(std::uint32_t item_id, bool renumber);
    [[nodiscard]] int rw(std::uint64_t iova, std::span<std::byte> data, bool write);
    // iommufd_access_replace(): -ENOENT when `ioas_id` is no IOAS.
    [[nodiscard]] int replace_ioas(std::uint32_t ioas_id);
    // The syzkaller encoding of an IOVA (MOCK_FLAGS_ACCESS_SYZ): the low
    // 32 bits pick the nth area of the IOAS, the high 32 bits an offset in
    // it. 0 when there is no such area, as __iommufd_test_syz_conv_iova().
    [[nodiscard]] std::uint64_t syz_iova(std::uint64_t encoded) const;

    [[nodiscard]] std::size_t item_count() const { return items_.size(); }

    struct Key {};
    SelftestAccess(Key, Context& ctx, bool needs_pin_pages);

private:
    struct Item {
        std::uint32_t id;
        std::uint64_t iova;
        std::uint64_t length;
    };
    [[nodiscard]] Access* access() const;
    // The unmap callback: drops every item that intersects `range`, as
    // iommufd_test_access_unmap().
    void drop_items(std::uint64_t first, std::uint64_t last);

    Context& ctx_;
    bool needs_pin_pages_;
    std::uint32_t access_id_ = 0;
    std::list<Item> items_;
    std::uint32_t next_id_ = 0;
};

} // namespace ioasid::core
