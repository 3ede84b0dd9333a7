/*
 * Compile-only: ours and the kernel's share the include guard, so a program
 * that ends up with both (either order) gets one set of definitions instead
 * of redefinition errors.
 */
#ifdef ABI_KERNEL_FIRST
#include "kernel_iommufd.h"
#include <ioasid/iommufd.h>
#else
#include <ioasid/iommufd.h>
#include "kernel_iommufd.h"
#endif

int ioasid_hdr_both(void);
int ioasid_hdr_both(void)
{
	return (int)sizeof(struct iommu_destroy);
}
