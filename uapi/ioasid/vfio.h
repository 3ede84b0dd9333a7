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
 * interrupts and no reset).
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

#endif /* IOASID_VFIO_H */
