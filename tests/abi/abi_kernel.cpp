/* Table side built from the kernel's header, extracted by the build from
   the linux-source tarball; must not see ioasid's. */
#include "kernel_iommufd.h"

#define ABI_TABLE abi_table_kernel
#define ABI_TABLE_COUNT abi_table_kernel_count
#include "abi_table.inc"
