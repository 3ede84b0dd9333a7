// An access: a user of an IOAS that is not a page table (the kernel's
// iommufd_access, used by emulated devices without an IOMMU domain and by
// mdev-style drivers). It pins pages of the IOAS by IOVA and gets their
// emulated physical addresses, or copies through the mapping.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "context.h"
#include "ioas.h"
#include "object.h"

namespace ioasid::core {

class Access final : public Object, public PinHolder {
public:
    static constexpr ObjectType kType = ObjectType::access;
    // Told when an area with pins of this access is being unmapped. Without
    // a handler the access drops every pin it holds that intersects it.
    using UnmapHandler = std::function<void(Access&, IovaRange)>;

    Access(Ioas& ioas, std::uint64_t iova_alignment, UnmapHandler on_unmap);
    ~Access() override;

    // Pins [iova, iova + length); *phys_pages gets one address per page.
    [[nodiscard]] int pin_pages(std::uint64_t iova, std::uint64_t length, bool write,
                                std::vector<std::uint64_t>* phys_pages);
    // Drops a pin taken with exactly this iova and length.
    void unpin_pages(std::uint64_t iova, std::uint64_t length);
    [[nodiscard]] int rw(std::uint64_t iova, std::span<std::byte> data, bool write);
    // Moves the access to `ioas`, as iommufd_access_replace() does: the
    // unmap handler is first told about the whole IOVA space, so every pin
    // is gone before the old IOAS is let go. Errors from joining the new
    // IOAS (its alignment) leave the access where it was.
    [[nodiscard]] int replace_ioas(Ioas& ioas);
    // The IOAS, for looking at its areas.
    [[nodiscard]] const Ioas& ioas() const { return *ioas_; }

    [[nodiscard]] std::size_t pin_count() const { return pinned_.size(); }
    [[nodiscard]] std::uint32_t ioas_id() const { return ioas_->id(); }
    void unmap_notify(IovaRange range) override;
    [[nodiscard]] std::uint64_t iova_alignment() const override { return iova_alignment_; }

private:
    friend int access_create(Context&, std::uint32_t, std::uint64_t, UnmapHandler, std::uint32_t*);
    ObjectRef<Ioas> ioas_;
    std::uint64_t iova_alignment_;
    UnmapHandler on_unmap_;
    std::multimap<std::uint64_t, std::uint64_t> pinned_; // iova -> length
};

// Creates an access on IOAS `ioas_id` and publishes it; *id gets its id.
// Its creator holds a reference, so IOMMU_DESTROY of the id answers EBUSY
// (as for the kernel's in-driver accesses); the creator ends it with
// access_destroy(). Closing the context ends it too.
[[nodiscard]] int access_create(Context& ctx, std::uint32_t ioas_id, std::uint64_t iova_alignment,
                                Access::UnmapHandler on_unmap, std::uint32_t* id);
[[nodiscard]] int access_destroy(Context& ctx, std::uint32_t id);

} // namespace ioasid::core
