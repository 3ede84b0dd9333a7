#include "tce_table.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <fmt/format.h>

#include "tce_format.h"

namespace ioasid::hw::ppc_tce {
namespace {

unsigned level_index(std::uint64_t index, unsigned level)
{
    return static_cast<unsigned>((index >> (kLevelBits * level)) & (kLevelEntries - 1));
}

bool present(std::uint64_t entry)
{
    return (entry & kTcePermMask) != 0;
}

std::string describe(std::uint64_t entry, unsigned level, unsigned page_shift)
{
    const std::uint64_t address = level ? indirect_address(entry) : tce_address(entry, page_shift);
    std::string s = fmt::format("{}={:#x}", level ? "next" : "rpn", address);
    if (entry & kTceRead)
        s += " R";
    if (entry & kTceWrite)
        s += " W";
    return s;
}

} // namespace

unsigned WindowConfig::entries_shift() const
{
    return static_cast<unsigned>(std::countr_zero(size)) - page_shift;
}

TceTable::TceTable(TableMemory& memory, const WindowConfig& window) : memory_(memory), window_(window) {}

TceTable::~TceTable()
{
    if (root_)
        free_level(root_, window_.levels - 1);
}

int TceTable::init()
{
    auto pa = memory_.alloc();
    if (!pa)
        return -ENOMEM;
    root_ = *pa;
    return 0;
}

std::uint64_t* TceTable::slot(std::uint64_t index, bool alloc)
{
    std::uint64_t table = root_;
    for (unsigned level = window_.levels - 1; level > 0; --level) {
        std::uint64_t& stored = memory_.entries(table)[level_index(index, level)];
        std::uint64_t entry = from_be(stored);
        if (!present(entry)) {
            if (!alloc)
                return nullptr;
            auto pa = memory_.alloc();
            if (!pa)
                return nullptr;
            entry = make_indirect(*pa);
            stored = to_be(entry);
        }
        table = indirect_address(entry);
    }
    return memory_.entries(table) + level_index(index, 0);
}

const std::uint64_t* TceTable::find_slot(std::uint64_t index) const
{
    std::uint64_t table = root_;
    for (unsigned level = window_.levels - 1; level > 0; --level) {
        const std::uint64_t entry = from_be(memory_.entries(table)[level_index(index, level)]);
        if (!present(entry))
            return nullptr;
        table = indirect_address(entry);
    }
    return memory_.entries(table) + level_index(index, 0);
}

int TceTable::map(std::uint64_t iova, std::uint64_t pa, std::uint64_t length, Prot prot)
{
    const unsigned shift = window_.page_shift;
    const std::uint64_t first = (iova - window_.base) >> shift;
    const std::uint64_t count = length >> shift;
    for (std::uint64_t i = 0; i < count; ++i) {
        std::uint64_t* s = slot(first + i, true);
        if (!s)
            return -ENOMEM;
        if (*s) {
            for (std::uint64_t j = 0; j < i; ++j)
                *slot(first + j, false) = 0;
            return -EEXIST;
        }
        *s = to_be(make_tce(pa + (i << shift), prot));
    }
    return 0;
}

void TceTable::unmap(std::uint64_t first, std::uint64_t last)
{
    const unsigned shift = window_.page_shift;
    const std::uint64_t lo = (std::max(first, window_.base) - window_.base) >> shift;
    const std::uint64_t hi = (std::min(last, window_.last()) - window_.base) >> shift;
    for (std::uint64_t index = lo; index <= hi; ++index) {
        std::uint64_t* s = slot(index, false);
        if (s)
            *s = 0;
        else
            index |= kLevelEntries - 1; // the whole leaf level is absent
    }
}

std::uint64_t TceTable::tce(std::uint64_t iova) const
{
    const std::uint64_t* s = find_slot((iova - window_.base) >> window_.page_shift);
    return s ? from_be(*s) : 0;
}

void TceTable::dump(const std::function<void(const DumpEntry&)>& fn) const
{
    dump_level(root_, window_.levels - 1, 0, fn);
}

void TceTable::dump_level(std::uint64_t table_pa, unsigned level, std::uint64_t first_index,
                          const std::function<void(const DumpEntry&)>& fn) const
{
    const unsigned shift = window_.page_shift;
    const std::uint64_t* entries = memory_.entries(table_pa);
    const std::uint64_t span = std::uint64_t{1} << (kLevelBits * level); // TCEs per entry
    for (unsigned i = 0; i < kLevelEntries; ++i) {
        const std::uint64_t entry = from_be(entries[i]);
        if (!present(entry))
            continue;
        const std::uint64_t index = first_index + i * span;
        fn(DumpEntry{level, i, table_pa, window_.base + (index << shift), span << shift, entry, level == 0,
                     describe(entry, level, shift)});
        if (level)
            dump_level(indirect_address(entry), level - 1, index, fn);
    }
}

void TceTable::free_level(std::uint64_t table_pa, unsigned level)
{
    if (level) {
        const std::uint64_t* entries = memory_.entries(table_pa);
        for (unsigned i = 0; i < kLevelEntries; ++i) {
            const std::uint64_t entry = from_be(entries[i]);
            if (present(entry))
                free_level(indirect_address(entry), level - 1);
        }
    }
    memory_.free(table_pa);
}

} // namespace ioasid::hw::ppc_tce
