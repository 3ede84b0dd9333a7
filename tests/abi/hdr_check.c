/*
 * Compile-only: ioasid's header must build warning-free under every
 * language standard meson.build throws at it (C89 up to C++20).
 */
#include <ioasid/iommufd.h>

int ioasid_hdr_check(void);
int ioasid_hdr_check(void)
{
	struct iommu_hw_info info;

	info.size = sizeof(info);
	info.flags = 0;
	return (int)info.size + (int)IOMMU_GET_HW_INFO + IOMMUFD_CMD_BASE;
}
