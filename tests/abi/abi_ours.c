/* Table side built from ioasid's own header; must not see the kernel's. */
#include <ioasid/iommufd.h>

#define ABI_TABLE abi_table_ours
#define ABI_TABLE_COUNT abi_table_ours_count
#include "abi_table.inc"
