// A domain whose table is a RadixTable of one format: what every family
// with a radix page table uses.
#pragma once

#include <cerrno>
#include <string>

#include "domain.h"
#include "radix_table.h"

namespace ioasid::hw {

// Not final: a family may refine map() with its driver's rules.
template <typename Format>
class RadixDomain : public Domain {
public:
    // Call init() before use. `top_bits`: entries of the top table, log2
    // (see RadixTable).
    RadixDomain(Unit& unit, DomainRequest request, Geometry geometry, TableMemory& memory,
                Format format, unsigned levels, std::string name,
                unsigned top_bits = RadixTable<Format>::kBits)
        : Domain(unit, request, geometry), table_(memory, format, levels, top_bits), name_(std::move(name))
    {
    }
    ~RadixDomain() override = default;

    [[nodiscard]] int init() { return table_.init(); }
    [[nodiscard]] RadixTable<Format>& table() { return table_; }
    [[nodiscard]] const RadixTable<Format>& table() const { return table_; }

    int map(std::uint64_t iova, std::uint64_t pa, std::uint64_t length, Prot prot,
            std::uint64_t max_leaf) override
    {
        return table_.map(iova, pa, length, prot, max_leaf);
    }

    void unmap(std::uint64_t iova, std::uint64_t length) override
    {
        const Span range{iova, iova + length - 1};
        table_.unmap(range.first, range.last);
        invalidate(range);
    }

    Translation lookup(std::uint64_t iova) const override
    {
        auto w = table_.walk(iova);
        if (!w.present)
            return {};
        return {true, w.page_iova, w.page_size, w.page_pa, w.prot, table_.format().dirty(*w.entry)};
    }

    void note_use(std::uint64_t iova, Access access) override
    {
        auto w = table_.walk(iova);
        if (w.present && dirty_tracking())
            *w.entry = table_.format().mark_used(*w.entry, access);
    }

    void read_and_clear_dirty(std::uint64_t iova, std::uint64_t length, bool clear,
                              const std::function<void(std::uint64_t, std::uint64_t)>& record) override
    {
        const Format& format = table_.format();
        bool cleared = false;
        table_.for_each_leaf(iova, iova + length - 1, [&](std::uint64_t at, std::uint64_t size, std::uint64_t& e) {
            if (!format.dirty(e))
                return;
            record(at, size);
            if (clear) {
                e = format.clear_dirty(e);
                cleared = true;
            }
        });
        if (cleared)
            invalidate({iova, iova + length - 1});
    }

    std::string_view format_name() const override { return name_; }
    std::uint64_t root_pa() const override { return table_.root(); }
    unsigned levels() const override { return table_.levels(); }
    void dump(const std::function<void(const DumpEntry&)>& fn) const override { table_.dump(fn); }

private:
    RadixTable<Format> table_;
    std::string name_;
};

} // namespace ioasid::hw
