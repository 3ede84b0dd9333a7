// A nested (two-stage) domain: a first stage owned by the client over a
// paging domain of the same unit, the nesting parent, which the core fills
// from the IOAS. What the kernel calls an IOMMU_DOMAIN_NESTED domain.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "domain.h"
#include "user_data.h"

namespace ioasid::hw {

class NestedDomain : public Domain {
public:
    NestedDomain(Unit& unit, Domain& parent);

    [[nodiscard]] Domain& parent() const { return parent_; }

    // The client's cache invalidation (IOMMU_HWPT_INVALIDATE): processes
    // the entries in order, stops at the first bad one and sets
    // array.entry_num to the number processed before it.
    [[nodiscard]] virtual int invalidate_user(UserDataArray& array) = 0;

    // Whether the first stage passes addresses through unchanged, so that
    // DMA translates, and is cached, exactly as through the parent.
    [[nodiscard]] virtual bool first_stage_identity() const = 0;

    // The core maps only into paging domains: the first stage is the
    // client's and the second the parent's.
    [[nodiscard]] int map(std::uint64_t iova, std::uint64_t pa, std::uint64_t length, Prot prot,
                          std::uint64_t max_leaf) override;
    void unmap(std::uint64_t iova, std::uint64_t length) override;
    // Dirty bits live in the parent, which IOMMU_HWPT_GET_DIRTY_BITMAP reads.
    void read_and_clear_dirty(std::uint64_t iova, std::uint64_t length, bool clear,
                              const std::function<void(std::uint64_t, std::uint64_t)>& record) override;

private:
    Domain& parent_;
};

} // namespace ioasid::hw
