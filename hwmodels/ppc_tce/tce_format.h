// The translation control entry (TCE) of a POWER PHB as the Linux powernv
// driver writes it (arch/powerpc/include/asm/tce.h, pnv_tce_build(),
// pnv_tce()): a 64-bit word, stored big-endian in table memory
// (cpu_to_be64), whose two low bits are the permissions and whose bits
// from the window's page shift up are the real address of the page:
//
//   bit 0                 TCE_PCI_READ   the device may read memory
//   bit 1                 TCE_PCI_WRITE  the device may write memory
//   bits 63:page_shift    real page number << page_shift
//
// An indirect entry of a multi-level table has the same shape: the real
// address of the next level's table with both permission bits set, which
// is also how the driver tells a present level from an absent one
// (pnv_pci_ioda2_table_do_free_pages()).
#pragma once

#include <cstdint>

#include "hwmodels/common/types.h"

namespace ioasid::hw::ppc_tce {

inline constexpr std::uint64_t kTceRead = 1ULL << 0;  // TCE_PCI_READ
inline constexpr std::uint64_t kTceWrite = 1ULL << 1; // TCE_PCI_WRITE
inline constexpr std::uint64_t kTcePermMask = kTceRead | kTceWrite;

// Table memory holds the entries big-endian; the host is little-endian
// (radix_table.h asserts it for every family).
[[nodiscard]] constexpr std::uint64_t to_be(std::uint64_t value)
{
    return __builtin_bswap64(value);
}
[[nodiscard]] constexpr std::uint64_t from_be(std::uint64_t stored)
{
    return __builtin_bswap64(stored);
}

// A leaf TCE for the page at `pa`. pnv_tce_build() adds READ to any entry
// with WRITE: the PHB has no write-only pages.
[[nodiscard]] constexpr std::uint64_t make_tce(std::uint64_t pa, Prot prot)
{
    std::uint64_t perms = (prot.read ? kTceRead : 0) | (prot.write ? kTceWrite | kTceRead : 0);
    return pa | perms;
}

[[nodiscard]] constexpr std::uint64_t make_indirect(std::uint64_t table_pa)
{
    return table_pa | kTceRead | kTceWrite;
}

[[nodiscard]] constexpr Prot tce_prot(std::uint64_t tce)
{
    return {(tce & kTceRead) != 0, (tce & kTceWrite) != 0};
}

// The real address in an entry whose page is 2^page_shift bytes.
[[nodiscard]] constexpr std::uint64_t tce_address(std::uint64_t tce, unsigned page_shift)
{
    return tce & ~((std::uint64_t{1} << page_shift) - 1);
}

// An indirect entry's next-level table: everything but the permission bits,
// as pnv_tce() takes it.
[[nodiscard]] constexpr std::uint64_t indirect_address(std::uint64_t entry)
{
    return entry & ~kTcePermMask;
}

} // namespace ioasid::hw::ppc_tce
