/* Table side built from the kernel's iommufd_test.h (extracted by the build,
   its <linux/iommufd.h> pointed at the 6.12 header); must not see ours. */
#include "kernel_iommufd_test.h"

#define ABI_TABLE abi_table_kernel
#define ABI_TABLE_COUNT abi_table_kernel_count
#define ABI_ITEMS "selftest_items.def"
#include "abi_table.inc"
