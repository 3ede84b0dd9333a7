#include "selftest_access.h"

#include <cerrno>
#include <mutex>
#include <utility>

#include "access.h"
#include "io_pagetable.h"
#include "ioas.h"

namespace ioasid::core {

SelftestAccess::SelftestAccess(Key, Context& ctx, bool needs_pin_pages)
    : ctx_(ctx), needs_pin_pages_(needs_pin_pages)
{
}

int SelftestAccess::create(Context& ctx, std::uint32_t ioas_id, bool needs_pin_pages,
                           std::shared_ptr<SelftestAccess>* out)
{
    auto file = std::make_shared<SelftestAccess>(Key{}, ctx, needs_pin_pages);
    // As iommufd_access_create(): an access that pins works in whole pages.
    const std::uint64_t alignment = needs_pin_pages ? kPageSize : 1;
    SelftestAccess* self = file.get();
    auto on_unmap = [self](Access&, IovaRange range) { self->drop_items(range.first, range.last); };
    if (int rc = access_create(ctx, ioas_id, alignment, on_unmap, &file->access_id_)) {
        file->access_id_ = 0;
        return rc;
    }
    *out = std::move(file);
    return 0;
}

SelftestAccess::~SelftestAccess()
{
    if (!access_id_)
        return;
    std::lock_guard guard(ctx_.lock());
    discard();
}

// iommufd_test_staccess_release(): the items go, then the access.
void SelftestAccess::discard()
{
    if (!access_id_)
        return;
    drop_items(0, UINT64_MAX);
    [[maybe_unused]] int rc = access_destroy(ctx_, std::exchange(access_id_, 0));
}

Access* SelftestAccess::access() const
{
    return access_id_ ? ctx_.objects().find_as<Access>(access_id_) : nullptr;
}

void SelftestAccess::drop_items(std::uint64_t first, std::uint64_t last)
{
    Access* acc = access();
    for (auto it = items_.begin(); it != items_.end();) {
        if (first > it->iova + it->length - 1 || last < it->iova) {
            ++it;
            continue;
        }
        if (acc)
            acc->unpin_pages(it->iova, it->length);
        it = items_.erase(it);
    }
}

int SelftestAccess::pin(std::uint64_t iova, std::uint64_t length, bool write,
                        std::vector<std::uint64_t>* phys_pages, std::uint32_t* item_id)
{
    Access* acc = access();
    if (!acc)
        return -ENOENT;
    // iommufd_access_pin_pages() refuses an access whose ops cannot pin.
    if (!needs_pin_pages_)
        return -EINVAL;
    if (int rc = acc->pin_pages(iova, length, write, phys_pages))
        return rc;
    items_.push_back({next_id_++, iova, length});
    *item_id = items_.back().id;
    return 0;
}

void SelftestAccess::forget(std::uint32_t item_id, bool renumber)
{
    (void)unpin(item_id);
    if (renumber && item_id + 1 == next_id_)
        --next_id_;
}

int SelftestAccess::unpin(std::uint32_t item_id)
{
    for (auto it = items_.begin(); it != items_.end(); ++it) {
        if (it->id != item_id)
            continue;
        if (Access* acc = access())
            acc->unpin_pages(it->iova, it->length);
        items_.erase(it);
        return 0;
    }
    return -ENOENT;
}

int SelftestAccess::rw(std::uint64_t iova, std::span<std::byte> data, bool write)
{
    Access* acc = access();
    if (!acc)
        return -ENOENT;
    return acc->rw(iova, data, write);
}

int SelftestAccess::replace_ioas(std::uint32_t ioas_id)
{
    Access* acc = access();
    if (!acc)
        return -ENOENT;
    Ioas* ioas = ctx_.objects().find_as<Ioas>(ioas_id);
    if (!ioas)
        return -ENOENT;
    return acc->replace_ioas(*ioas);
}

std::uint64_t SelftestAccess::syz_iova(std::uint64_t encoded) const
{
    const Access* acc = access();
    if (!acc)
        return 0;
    auto nth = static_cast<std::uint32_t>(encoded);
    const auto offset = static_cast<std::uint32_t>(encoded >> 32);
    std::uint64_t found = 0;
    bool done = false;
    acc->ioas().iopt().for_each_area([&](const Area& area) {
        if (done)
            return;
        if (nth-- == 0) {
            found = area.iova.first + offset;
            done = true;
        }
    });
    return found;
}

} // namespace ioasid::core
