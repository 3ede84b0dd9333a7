// An SMMUv3 paging domain: a VMSAv8-64 stage-1 or stage-2 table of one
// granule, the table configuration its CD or STE is built from, and the
// ASID (stage 1) or VMID (stage 2) the driver gave it.
#pragma once

#include <cerrno>
#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "hwmodels/common/radix_domain.h"
#include "table_config.h"
#include "vmsa_format.h"

namespace ioasid::hw::smmuv3 {

// ASIDs or VMIDs of one unit: the lowest free one from 1, as the driver's
// xa_alloc() and ida_alloc_range() give them (0 is kept: VMID 0 for
// stage-1 STEs, ASID 0 never handed out). Domains of any context come and
// go at the same time, hence the lock.
class IdAllocator {
public:
    explicit IdAllocator(unsigned bits) : max_((1u << bits) - 1) {}
    [[nodiscard]] std::optional<std::uint16_t> alloc()
    {
        std::lock_guard guard(lock_);
        std::uint32_t id = 1;
        for (std::uint32_t used : used_) {
            if (used != id)
                break;
            ++id;
        }
        if (id > max_)
            return std::nullopt;
        used_.insert(id);
        return static_cast<std::uint16_t>(id);
    }
    void free(std::uint16_t id)
    {
        std::lock_guard guard(lock_);
        used_.erase(id);
    }

private:
    std::uint32_t max_;
    std::mutex lock_;
    std::set<std::uint32_t> used_;
};

// What the unit needs of any of its domains, whatever the format.
class SmmuPaging {
public:
    SmmuPaging(const TableConfig& config, IdAllocator& ids, std::uint16_t id)
        : config_(config), ids_(ids), id_(id)
    {
    }
    virtual ~SmmuPaging() { ids_.free(id_); }
    SmmuPaging(const SmmuPaging&) = delete;
    SmmuPaging& operator=(const SmmuPaging&) = delete;

    [[nodiscard]] const TableConfig& table_config() const { return config_; }
    [[nodiscard]] Stage stage() const { return config_.stage; }
    [[nodiscard]] std::uint16_t asid() const { return config_.stage == Stage::s1 ? id_ : 0; }
    [[nodiscard]] std::uint16_t vmid() const { return config_.stage == Stage::s2 ? id_ : 0; }
    // TTB0 or S2TTB: the top table.
    [[nodiscard]] virtual std::uint64_t table_base() const = 0;

private:
    TableConfig config_;
    IdAllocator& ids_;
    std::uint16_t id_;
};

template <typename Format>
class SmmuDomain final : public RadixDomain<Format>, public SmmuPaging {
public:
    SmmuDomain(Unit& unit, DomainRequest request, Geometry geometry, TableMemory& memory, Format format,
               const TableConfig& config, IdAllocator& ids, std::uint16_t id, std::string name)
        : RadixDomain<Format>(unit, request, geometry, memory, format, config.levels, std::move(name),
                              config.top_bits),
          SmmuPaging(config, ids, id)
    {
    }

    int map(std::uint64_t iova, std::uint64_t pa, std::uint64_t length, Prot prot,
            std::uint64_t max_leaf) override
    {
        // arm_lpae_map_pages(), in its order: an IOVA beyond the input size
        // or a PA beyond the output size is -ERANGE (a unit with a small
        // OAS cannot reach memory our physical space hands out high), then
        // a mapping must allow something.
        const TableConfig& t = table_config();
        if (length && (((iova + length - 1) >> t.ias) || ((pa + length - 1) >> t.oas)))
            return -ERANGE;
        if (!prot.read && !prot.write)
            return -EINVAL;
        return RadixDomain<Format>::map(iova, pa, length, prot, max_leaf);
    }

    std::uint64_t table_base() const override { return this->root_pa(); }
};

} // namespace ioasid::hw::smmuv3
