#include "access.h"

#include <cerrno>

namespace ioasid::core {
namespace {

// Memory whose process has exited (ESRCH from the caller layer) is, to an
// access, what the kernel finds when pages->source_mm is gone: EFAULT.
int gone_is_fault(int rc)
{
    return rc == -ESRCH ? -EFAULT : rc;
}

} // namespace

Access::Access(Ioas& ioas, std::uint64_t iova_alignment, UnmapHandler on_unmap)
    : Object(kType), ioas_(ioas), iova_alignment_(iova_alignment), on_unmap_(std::move(on_unmap))
{
}

Access::~Access()
{
    if (!ioas_)
        return; // never attached
    for (auto [iova, length] : pinned_)
        ioas_->iopt().unpin({iova, iova + length - 1});
    pinned_.clear();
    ioas_->iopt().remove_holder(*this);
}

int access_create(Context& ctx, std::uint32_t ioas_id, std::uint64_t iova_alignment,
                  Access::UnmapHandler on_unmap, std::uint32_t* id)
{
    Ioas* ioas = ctx.objects().find_as<Ioas>(ioas_id);
    if (!ioas)
        return -ENOENT;
    auto access = std::make_unique<Access>(*ioas, iova_alignment, std::move(on_unmap));
    if (int rc = ioas->iopt().add_holder(*access)) {
        access->ioas_.reset();
        return rc;
    }
    PendingObject<Access> pending(ctx.objects(), std::move(access));
    if (!pending.id())
        return -EBUSY;
    *id = pending.id();
    ctx.objects().add_owner_reference(pending.publish());
    return 0;
}

int access_destroy(Context& ctx, std::uint32_t id)
{
    if (!ctx.objects().find_as<Access>(id))
        return -ENOENT;
    return ctx.objects().destroy_owned(id);
}

int Access::pin_pages(std::uint64_t iova, std::uint64_t length, bool write,
                      std::vector<std::uint64_t>* phys_pages)
{
    if (length == 0)
        return -EINVAL;
    std::uint64_t last;
    if (!last_of(iova, length, &last))
        return -EOVERFLOW;
    if (int rc = ioas_->iopt().pin({iova, last}, write, phys_pages))
        return gone_is_fault(rc);
    pinned_.emplace(iova, length);
    return 0;
}

void Access::unpin_pages(std::uint64_t iova, std::uint64_t length)
{
    auto [first, end] = pinned_.equal_range(iova);
    for (auto it = first; it != end; ++it) {
        if (it->second == length) {
            ioas_->iopt().unpin({iova, iova + length - 1});
            pinned_.erase(it);
            return;
        }
    }
}

int Access::rw(std::uint64_t iova, std::span<std::byte> data, bool write)
{
    return gone_is_fault(ioas_->iopt().rw(iova, data, write));
}

int Access::replace_ioas(Ioas& ioas)
{
    if (&ioas == ioas_.get())
        return 0;
    if (int rc = ioas.iopt().add_holder(*this))
        return rc;
    unmap_notify({0, UINT64_MAX});
    // A handler that kept pins would leave them on an IOAS we no longer
    // hold; the kernel warns, we let go of them.
    for (auto [iova, length] : pinned_)
        ioas_->iopt().unpin({iova, iova + length - 1});
    pinned_.clear();
    ioas_->iopt().remove_holder(*this);
    ioas_ = ObjectRef<Ioas>(ioas);
    return 0;
}

void Access::unmap_notify(IovaRange range)
{
    if (on_unmap_) {
        on_unmap_(*this, range);
        return;
    }
    for (auto it = pinned_.begin(); it != pinned_.end();) {
        std::uint64_t last = it->first + it->second - 1;
        if (it->first <= range.last && range.first <= last) {
            ioas_->iopt().unpin({it->first, last});
            it = pinned_.erase(it);
        } else {
            ++it;
        }
    }
}

} // namespace ioasid::core
