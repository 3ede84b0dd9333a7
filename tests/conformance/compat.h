/* SPDX-License-Identifier: MIT */
/*
 * Force-included (-include) into the kernel's iommufd selftests when they are
 * built against the uAPI headers of the same linux-source-6.12 tree.
 *
 * Debian's 6.12 selftests carry stable backports that name ABI this tree's
 * own headers do not define yet. Each name below gets the value it has
 * upstream, so the binaries send exactly the bytes their sources mean to
 * send; no test logic changes. Nothing else belongs in this file.
 */
#ifndef IOASID_CONFORMANCE_COMPAT_H
#define IOASID_CONFORMANCE_COMPAT_H

/* Linux v6.17 uAPI (include/uapi/linux/iommufd.h): the hw_info type meaning
 * "whatever the device has", numerically the old IOMMU_HW_INFO_TYPE_NONE. */
#define IOMMU_HW_INFO_TYPE_DEFAULT 0

/* Linux v6.17 uAPI, enum iommufd_hw_info_flags: the caller names the type it
 * wants in in_data_type. */
#define IOMMU_HW_INFO_FLAG_INPUT_TYPE (1 << 0)

/* Linux v6.17 uAPI: struct iommu_hw_info's out_data_type became a union with
 * in_data_type; the two share the same offset and width. */
#define in_data_type out_data_type

/* Linux v6.15 drivers/iommu/iommufd/iommufd_test.h: a mock device that
 * supports PASID. */
#define MOCK_FLAGS_DEVICE_PASID (1 << 2)

/* Linux v6.15 drivers/iommu/iommufd/iommufd_test.h: the PASID width such a
 * mock device reports through IOMMU_GET_HW_INFO. */
#define MOCK_PASID_WIDTH 20

#endif
