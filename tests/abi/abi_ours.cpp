/* Table side built from ioasid's own header; must not see the kernel's. */
#include <ioasid/iommufd.h>

#define ABI_TABLE abi_table_ours
#define ABI_TABLE_COUNT abi_table_ours_count
#include "abi_table.inc"

/*
 * Items newer than the reference header (check_items.py NEWER) are not in
 * the tables; their layout, from the header of the kernel that added them,
 * is asserted here.
 */
/* Linux 6.13: IOMMU_IOAS_MAP_FILE */
static_assert(IOMMUFD_CMD_IOAS_MAP_FILE == 0x8f, "");
static_assert(IOMMU_IOAS_MAP_FILE == 0x3b8f, "");
static_assert(sizeof(struct iommu_ioas_map_file) == 40, "");
static_assert(alignof(struct iommu_ioas_map_file) == 8, "");
static_assert(offsetof(struct iommu_ioas_map_file, size) == 0, "");
static_assert(offsetof(struct iommu_ioas_map_file, flags) == 4, "");
static_assert(offsetof(struct iommu_ioas_map_file, ioas_id) == 8, "");
static_assert(offsetof(struct iommu_ioas_map_file, fd) == 12, "");
static_assert(offsetof(struct iommu_ioas_map_file, start) == 16, "");
static_assert(offsetof(struct iommu_ioas_map_file, length) == 24, "");
static_assert(offsetof(struct iommu_ioas_map_file, iova) == 32, "");
static_assert(std::is_signed<decltype(iommu_ioas_map_file::fd)>::value, "");
static_assert(sizeof(iommu_ioas_map_file::start) == 8 && sizeof(iommu_ioas_map_file::iova) == 8, "");

/* Linux 6.15: HWPT allocation for PASID attachment */
static_assert(IOMMU_HWPT_ALLOC_PASID == 8, "");
/* Linux 6.17 (and 6.12.y backports): hw_info input type */
static_assert(IOMMU_HW_INFO_FLAG_INPUT_TYPE == 1, "");
static_assert(IOMMU_HW_INFO_TYPE_DEFAULT == 0, "");
static_assert(offsetof(struct iommu_hw_info, in_data_type) == 24, "");
static_assert(offsetof(struct iommu_hw_info, out_data_type) == 24, "");
static_assert(offsetof(struct iommu_hw_info, out_max_pasid_log2) == 28, "");
static_assert(sizeof(struct iommu_hw_info) == 40, "");
/* Linux 6.13: ARM SMMUv3 hw_info */
static_assert(IOMMU_HW_INFO_TYPE_ARM_SMMUV3 == 2, "");
static_assert(sizeof(struct iommu_hw_info_arm_smmuv3) == 40, "");
static_assert(offsetof(struct iommu_hw_info_arm_smmuv3, flags) == 0, "");
static_assert(offsetof(struct iommu_hw_info_arm_smmuv3, __reserved) == 4, "");
static_assert(offsetof(struct iommu_hw_info_arm_smmuv3, idr) == 8, "");
static_assert(sizeof(iommu_hw_info_arm_smmuv3::idr) == 24, "");
static_assert(offsetof(struct iommu_hw_info_arm_smmuv3, iidr) == 32, "");
static_assert(offsetof(struct iommu_hw_info_arm_smmuv3, aidr) == 36, "");
/* Linux 6.18: AMD hw_info */
static_assert(IOMMU_HW_INFO_TYPE_AMD == 4, "");
static_assert(sizeof(struct iommu_hw_info_amd) == 16, "");
static_assert(alignof(struct iommu_hw_info_amd) == 8, "");
static_assert(offsetof(struct iommu_hw_info_amd, efr) == 0, "");
static_assert(offsetof(struct iommu_hw_info_amd, efr2) == 8, "");
