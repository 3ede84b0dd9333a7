/* Table side built from ioasid's selftest.h; must not see the kernel's. */
#include <ioasid/selftest.h>

/* The 6.15 names of the backported selftests, which the 6.12 header lacks:
   their upstream values. */
_Static_assert(MOCK_FLAGS_DEVICE_PASID == 1 << 2, "v6.15 iommufd_test.h");
_Static_assert(MOCK_PASID_WIDTH == 20, "v6.15 iommufd_test.h");

#define ABI_TABLE abi_table_ours
#define ABI_TABLE_COUNT abi_table_ours_count
#define ABI_ITEMS "selftest_items.def"
#include "abi_table.inc"
