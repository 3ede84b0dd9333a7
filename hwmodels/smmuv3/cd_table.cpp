#include "cd_table.h"

#include <algorithm>
#include <bit>
#include <cerrno>

#include "smmuv3_domain.h"

namespace ioasid::hw::smmuv3 {
namespace {

constexpr std::uint64_t kCdBytes = sizeof(Cd);

std::uint64_t table_bytes(std::uint64_t bytes)
{
    return std::max(TableMemory::kTableSize, std::bit_ceil(bytes));
}

} // namespace

Cd make_s1_cd(const SmmuPaging& domain)
{
    const TableConfig& t = domain.table_config();
    Cd c{};
    // TTB1 is never used (EPD1); AArch64 tables, little-endian; R and A
    // report faults and abort, ASET marks a non-shared ASID. No stalls.
    c[0] = t.tsz | (std::uint64_t{t.tg} << cd::kTgShift) | (std::uint64_t{t.irgn} << cd::kIrgnShift) |
           (std::uint64_t{t.orgn} << cd::kOrgnShift) | (std::uint64_t{t.sh} << cd::kShShift) | cd::kEpd1 |
           cd::kValid | (std::uint64_t{t.ps} << cd::kIpsShift) | cd::kAa64 | cd::kR | cd::kA | cd::kAset |
           (std::uint64_t{domain.asid()} << cd::kAsidShift);
    // Hardware dirty-state updates need the access flag updates too.
    if (t.hd)
        c[0] |= cd::kHa | cd::kHd;
    c[1] = domain.table_base() & cd::kTtb0Mask;
    c[3] = t.mair;
    return c;
}

CdTable::CdTable(TableMemory& memory, unsigned ssid_bits, bool two_level)
    : memory_(memory), ssid_bits_(ssid_bits), two_level_(two_level && ssid_bits > kL2Bits)
{
}

CdTable::~CdTable()
{
    for (std::uint64_t leaf : l2_)
        if (leaf)
            memory_.free(leaf);
    if (base_)
        memory_.free(base_);
}

int CdTable::init()
{
    const std::uint64_t contexts = std::uint64_t{1} << ssid_bits_;
    std::uint64_t bytes = contexts * kCdBytes;
    if (two_level_) {
        l2_.assign(contexts >> kL2Bits, 0);
        bytes = l2_.size() * sizeof(std::uint64_t);
    }
    auto pa = memory_.alloc(table_bytes(bytes));
    if (!pa)
        return -ENOMEM;
    base_ = *pa;
    return 0;
}

std::uint64_t* CdTable::cd(std::uint32_t ssid, bool allocate)
{
    if (ssid >> ssid_bits_)
        return nullptr;
    if (!two_level_)
        return memory_.entries(base_ + ssid * kCdBytes);
    const std::uint32_t index = ssid >> kL2Bits;
    if (!l2_[index]) {
        if (!allocate)
            return nullptr;
        auto pa = memory_.alloc((std::uint64_t{1} << kL2Bits) * kCdBytes);
        if (!pa)
            return nullptr;
        l2_[index] = *pa;
        memory_.entries(base_)[index] = (*pa & cd::kL1PtrMask) | cd::kL1Valid;
    }
    return memory_.entries(l2_[index] + (ssid & ((1u << kL2Bits) - 1)) * kCdBytes);
}

const std::uint64_t* CdTable::cd(std::uint32_t ssid) const
{
    return const_cast<CdTable*>(this)->cd(ssid, false);
}

void CdTable::write(std::uint32_t ssid, const Cd& value)
{
    if (std::uint64_t* entry = cd(ssid, true))
        std::copy(value.begin(), value.end(), entry);
}

void CdTable::clear(std::uint32_t ssid)
{
    if (std::uint64_t* entry = cd(ssid, false))
        std::fill(entry, entry + Cd{}.size(), 0);
}

} // namespace ioasid::hw::smmuv3
