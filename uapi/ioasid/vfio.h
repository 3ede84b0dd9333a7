/* SPDX-License-Identifier: MIT */
/*
 * written for ioasid; the subset of the VFIO uAPI (include/uapi/linux/vfio.h)
 * that a VFIO device cdev, /dev/vfio/devices/<name>, needs to be bound to an
 * iommufd and attached to its page tables; MIT
 *
 * Numbers, values and layouts are the kernel's, in their newest form:
 *   - VFIO_DEVICE_BIND_IOMMUFD        Linux 6.6; token_uuid_ptr and
 *                                     VFIO_DEVICE_BIND_FLAG_TOKEN 6.17
 *   - VFIO_DEVICE_ATTACH_IOMMUFD_PT   Linux 6.6; pasid and
 *                                     VFIO_DEVICE_ATTACH_PASID 6.15
 *   - VFIO_DEVICE_DETACH_IOMMUFD_PT   Linux 6.6; pasid and
 *                                     VFIO_DEVICE_DETACH_PASID 6.15
 * plus the device queries an emulated device answers (it has no regions, no
 * interrupts and no reset), and the type1 container ioctls that an iommufd
 * answers in place of a VFIO container (the kernel's vfio_compat.c, Linux
 * 6.2).
 *
 * Only a subset: a program includes either this or <linux/vfio.h>, never
 * both (the struct names are the kernel's). The guard is our own.
 *
 * Kept C89-clean (no // comments, no trailing enum commas) and C++-clean.
 */
#ifndef IOASID_VFIO_H
#define IOASID_VFIO_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* VFIO numbers share iommufd's type; iommufd's own start at 0x80. */
#define VFIO_TYPE (';')
#define VFIO_BASE 100

/*
 * Every struct opens with __u32 argsz (the bytes the caller has) and __u32
 * flags. The kernel reads the fields of the first version (minsz) and
 * fails with EINVAL when argsz is smaller; fields added later are read only
 * when a flag asks for them.
 */

/* --- device queries (all devices) ----------------------------------------- */

struct vfio_device_info {
	__u32 argsz;
	__u32 flags;
#define VFIO_DEVICE_FLAGS_RESET (1 << 0) /* the device supports reset */
#define VFIO_DEVICE_FLAGS_PCI (1 << 1)   /* vfio-pci device */
#define VFIO_DEVICE_FLAGS_CAPS (1 << 7)  /* info has a capability chain */
	__u32 num_regions;
	__u32 num_irqs;
	__u32 cap_offset;
	__u32 pad;
};
#define VFIO_DEVICE_GET_INFO _IO(VFIO_TYPE, VFIO_BASE + 7)

struct vfio_region_info {
	__u32 argsz;
	__u32 flags;
	__u32 index;
	__u32 cap_offset;
	__aligned_u64 size;
	__aligned_u64 offset;
};
#define VFIO_DEVICE_GET_REGION_INFO _IO(VFIO_TYPE, VFIO_BASE + 8)

struct vfio_irq_info {
	__u32 argsz;
	__u32 flags;
	__u32 index;
	__u32 count;
};
#define VFIO_DEVICE_GET_IRQ_INFO _IO(VFIO_TYPE, VFIO_BASE + 9)

#define VFIO_DEVICE_SET_IRQS _IO(VFIO_TYPE, VFIO_BASE + 10)
#define VFIO_DEVICE_RESET _IO(VFIO_TYPE, VFIO_BASE + 11)

struct vfio_device_feature {
	__u32 argsz;
	__u32 flags;
#define VFIO_DEVICE_FEATURE_MASK (0xffff)
#define VFIO_DEVICE_FEATURE_GET (1 << 16)
#define VFIO_DEVICE_FEATURE_SET (1 << 17)
#define VFIO_DEVICE_FEATURE_PROBE (1 << 18)
	/* followed by the feature's data (the kernel's __u8 data[]) */
};
#define VFIO_DEVICE_FEATURE _IO(VFIO_TYPE, VFIO_BASE + 17)

/* --- the device cdev and iommufd ------------------------------------------ */

/**
 * struct vfio_device_bind_iommufd - ioctl(VFIO_DEVICE_BIND_IOMMUFD)
 * @argsz: bytes of the caller's struct; at least 16 (through @out_devid)
 * @flags: 0, or VFIO_DEVICE_BIND_FLAG_TOKEN (6.17)
 * @iommufd: an open iommufd in the caller
 * @out_devid: output: the DEVICE object id in that iommufd
 * @token_uuid_ptr: with VFIO_DEVICE_BIND_FLAG_TOKEN, a 16-byte UUID (the
 *                  PF/VF token) (6.17)
 *
 * Allowed once per open of the cdev; until it succeeds every other ioctl,
 * read, write and mmap of the file fail with EINVAL. Closing the file
 * unbinds. The newest kernels read the struct as copy_struct_from_user()
 * does (a longer struct must be zero past what they know: E2BIG).
 */
struct vfio_device_bind_iommufd {
	__u32 argsz;
	__u32 flags;
#define VFIO_DEVICE_BIND_FLAG_TOKEN (1 << 0)
	__s32 iommufd;
	__u32 out_devid;
	__aligned_u64 token_uuid_ptr;
};
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)

/**
 * struct vfio_device_attach_iommufd_pt - ioctl(VFIO_DEVICE_ATTACH_IOMMUFD_PT)
 * @argsz: at least 12 (through @pt_id); 16 with VFIO_DEVICE_ATTACH_PASID
 * @flags: 0, or VFIO_DEVICE_ATTACH_PASID (6.15)
 * @pt_id: in: an IOAS or HWPT id of the bound iommufd; out: the HWPT
 *         attached (an automatic one for an IOAS)
 * @pasid: with VFIO_DEVICE_ATTACH_PASID, the PASID to attach (6.15)
 *
 * Attaching an attached device replaces its page table. When @pt_id cannot
 * be written back the device is detached and the call fails with EFAULT.
 */
struct vfio_device_attach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
#define VFIO_DEVICE_ATTACH_PASID (1 << 0)
	__u32 pt_id;
	__u32 pasid;
};
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)

/**
 * struct vfio_device_detach_iommufd_pt - ioctl(VFIO_DEVICE_DETACH_IOMMUFD_PT)
 * @argsz: at least 8 (through @flags); 12 with VFIO_DEVICE_DETACH_PASID
 * @flags: 0, or VFIO_DEVICE_DETACH_PASID (6.15)
 * @pasid: with VFIO_DEVICE_DETACH_PASID, the PASID to detach (6.15)
 *
 * Detaching what is not attached succeeds.
 */
struct vfio_device_detach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
#define VFIO_DEVICE_DETACH_PASID (1 << 0)
	__u32 pasid;
};
#define VFIO_DEVICE_DETACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 20)

/* --- the container, emulated by an iommufd (type1 only) ------------------- */

#define VFIO_API_VERSION 0

/* Extensions (VFIO_CHECK_EXTENSION) and IOMMU types (VFIO_SET_IOMMU). */
#define VFIO_TYPE1_IOMMU 1
#define VFIO_SPAPR_TCE_IOMMU 2
#define VFIO_TYPE1v2_IOMMU 3
#define VFIO_DMA_CC_IOMMU 4
#define VFIO_EEH 5
#define VFIO_TYPE1_NESTING_IOMMU 6
#define VFIO_SPAPR_TCE_v2_IOMMU 7
#define VFIO_NOIOMMU_IOMMU 8
#define VFIO_UNMAP_ALL 9
#define VFIO_UPDATE_VADDR 10

/* These three take an integer, not a struct: ioctl(fd, cmd, value). */
#define VFIO_GET_API_VERSION _IO(VFIO_TYPE, VFIO_BASE + 0)
#define VFIO_CHECK_EXTENSION _IO(VFIO_TYPE, VFIO_BASE + 1)
#define VFIO_SET_IOMMU _IO(VFIO_TYPE, VFIO_BASE + 2)

/* Capability chains: each capability starts with this header; `next` is
 * the offset of the following one from the start of the info struct, 0 for
 * the last. */
struct vfio_info_cap_header {
	__u16 id;
	__u16 version;
	__u32 next;
};

/**
 * struct vfio_iommu_type1_info - ioctl(VFIO_IOMMU_GET_INFO)
 * @argsz: in: bytes the caller has, at least 16 (through @iova_pgsizes);
 *         out: bytes the whole capability chain needs
 * @flags: out: VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS
 * @iova_pgsizes: out: bitmap of the page sizes a mapping may use
 * @cap_offset: out: offset of the first capability, 0 when @argsz was too
 *              small for all of them
 * @pad: unused
 */
struct vfio_iommu_type1_info {
	__u32 argsz;
	__u32 flags;
#define VFIO_IOMMU_INFO_PGSIZES (1 << 0)
#define VFIO_IOMMU_INFO_CAPS (1 << 1)
	__aligned_u64 iova_pgsizes;
	__u32 cap_offset;
	__u32 pad;
};

#define VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE 1

struct vfio_iova_range {
	__u64 start;
	__u64 end; /* inclusive */
};

/* Followed by nr_iovas struct vfio_iova_range (the kernel's flexible
 * iova_ranges[], which also makes its alignment 8). */
struct vfio_iommu_type1_info_cap_iova_range {
	struct vfio_info_cap_header header;
	__u32 nr_iovas;
	__u32 reserved;
};

#define VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION 2
#define VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL 3

struct vfio_iommu_type1_info_dma_avail {
	struct vfio_info_cap_header header;
	__u32 avail;
};

#define VFIO_IOMMU_GET_INFO _IO(VFIO_TYPE, VFIO_BASE + 12)

/**
 * struct vfio_iommu_type1_dma_map - ioctl(VFIO_IOMMU_MAP_DMA)
 * @argsz: at least 32 (through @size)
 * @flags: VFIO_DMA_MAP_FLAG_READ and/or _WRITE; an iommufd refuses _VADDR
 * @vaddr: the caller's memory
 * @iova: where it goes (always a fixed IOVA)
 * @size: bytes
 */
struct vfio_iommu_type1_dma_map {
	__u32 argsz;
	__u32 flags;
#define VFIO_DMA_MAP_FLAG_READ (1 << 0)
#define VFIO_DMA_MAP_FLAG_WRITE (1 << 1)
#define VFIO_DMA_MAP_FLAG_VADDR (1 << 2)
	__u64 vaddr;
	__u64 iova;
	__u64 size;
};

#define VFIO_IOMMU_MAP_DMA _IO(VFIO_TYPE, VFIO_BASE + 13)

/**
 * struct vfio_iommu_type1_dma_unmap - ioctl(VFIO_IOMMU_UNMAP_DMA)
 * @argsz: at least 24 (through @size)
 * @flags: 0 or VFIO_DMA_UNMAP_FLAG_ALL (then @iova and @size must be 0); an
 *         iommufd refuses the other two
 * @iova: first byte to unmap
 * @size: in: bytes; out: bytes unmapped
 *
 * Followed, with VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, by a struct
 * vfio_bitmap (the kernel's flexible data[]).
 */
struct vfio_iommu_type1_dma_unmap {
	__u32 argsz;
	__u32 flags;
#define VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP (1 << 0)
#define VFIO_DMA_UNMAP_FLAG_ALL (1 << 1)
#define VFIO_DMA_UNMAP_FLAG_VADDR (1 << 2)
	__u64 iova;
	__u64 size;
};

#define VFIO_IOMMU_UNMAP_DMA _IO(VFIO_TYPE, VFIO_BASE + 14)
/* Not answered by an iommufd (ENOTTY): dirty tracking is IOMMU_HWPT_*. */
#define VFIO_IOMMU_DIRTY_PAGES _IO(VFIO_TYPE, VFIO_BASE + 17)

#endif /* IOASID_VFIO_H */
