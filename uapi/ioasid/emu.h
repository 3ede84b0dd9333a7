/* SPDX-License-Identifier: MIT */
/*
 * ioasid extensions to the iommufd ABI: ioctls the kernel does not have,
 * answered on the same file descriptor. They use an ioctl type of their own
 * so that no present or future iommufd (';') or VFIO number can collide.
 * Conventions are iommufd's: _IO() numbers, a leading __u32 size, zero
 * reserved fields, 0 or -1/errno.
 */
#ifndef IOASID_EMU_H
#define IOASID_EMU_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define IOASID_EMU_TYPE 0xE1

enum {
	IOASID_EMU_CMD_BASE = 0x00,
	IOASID_EMU_CMD_STATUS = IOASID_EMU_CMD_BASE,
	IOASID_EMU_CMD_DEVICE_BIND,
	IOASID_EMU_CMD_DEVICE_UNBIND,
	IOASID_EMU_CMD_DEVICE_ATTACH,
	IOASID_EMU_CMD_DEVICE_DETACH,
	IOASID_EMU_CMD_DMA,
	IOASID_EMU_CMD_PT_DUMP
};

/**
 * enum ioasid_status_flags - which contexts IOASID_EMU_STATUS describes
 * @IOASID_STATUS_ALL: every context of the daemon the caller may see (all of
 *                     them for root, those of the caller's uid otherwise);
 *                     without it, only the context of this file
 */
enum ioasid_status_flags {
	IOASID_STATUS_ALL = 1 << 0
};

/**
 * struct ioasid_emu_status - ioctl(IOASID_EMU_STATUS)
 * @size: sizeof(struct ioasid_emu_status)
 * @flags: enum ioasid_status_flags
 * @buf_len: bytes at @buf_uptr
 * @out_len: output: bytes of the whole report, without a terminating NUL
 * @buf_uptr: where the daemon writes the report, a JSON object
 *
 * What the daemon holds: its contexts, the processes using them, their
 * objects, IOAS areas and pinned memory. When @buf_len is too small nothing
 * is written, @out_len is set and the ioctl fails with EMSGSIZE, as
 * IOMMU_IOAS_IOVA_RANGES does.
 */
struct ioasid_emu_status {
	__u32 size;
	__u32 flags;
	__u32 buf_len;
	__u32 out_len;
	__aligned_u64 buf_uptr;
};
#define IOASID_EMU_STATUS _IO(IOASID_EMU_TYPE, IOASID_EMU_CMD_STATUS)

/*
 * Devices. Programs written for VFIO bind a device by opening its node
 * under /dev/vfio/devices/ and calling VFIO_DEVICE_BIND_IOMMUFD; these
 * commands do the same on the iommufd itself, naming the device as the
 * topology does. A device bound here is unbound by
 * IOASID_EMU_DEVICE_UNBIND or when the iommufd is closed.
 */
#define IOASID_EMU_NAME_LEN 32

/**
 * struct ioasid_emu_device_bind - ioctl(IOASID_EMU_DEVICE_BIND)
 * @size: sizeof(struct ioasid_emu_device_bind)
 * @flags: must be 0
 * @name: the device's name in the topology, NUL-terminated
 * @out_dev_id: output: the DEVICE object id, as VFIO's out_devid
 * @__reserved: must be 0
 *
 * EBUSY when the device, or another device of its IOMMU group, is bound to
 * another iommufd; ENODEV for an unknown name.
 */
struct ioasid_emu_device_bind {
	__u32 size;
	__u32 flags;
	char name[IOASID_EMU_NAME_LEN];
	__u32 out_dev_id;
	__u32 __reserved;
};
#define IOASID_EMU_DEVICE_BIND _IO(IOASID_EMU_TYPE, IOASID_EMU_CMD_DEVICE_BIND)

/**
 * struct ioasid_emu_device_unbind - ioctl(IOASID_EMU_DEVICE_UNBIND)
 * @size: sizeof(struct ioasid_emu_device_unbind)
 * @dev_id: a device bound with IOASID_EMU_DEVICE_BIND
 */
struct ioasid_emu_device_unbind {
	__u32 size;
	__u32 dev_id;
};
#define IOASID_EMU_DEVICE_UNBIND _IO(IOASID_EMU_TYPE, IOASID_EMU_CMD_DEVICE_UNBIND)

/* The request is for one PASID of the device rather than its RID. */
enum ioasid_emu_device_flags {
	IOASID_EMU_DEVICE_PASID = 1 << 0
};

/**
 * struct ioasid_emu_device_attach - ioctl(IOASID_EMU_DEVICE_ATTACH)
 * @size: sizeof(struct ioasid_emu_device_attach)
 * @flags: enum ioasid_emu_device_flags
 * @dev_id: the device
 * @pt_id: in: an IOAS or HWPT; out: the HWPT attached (an automatic one
 *         for an IOAS)
 * @pasid: with IOASID_EMU_DEVICE_PASID, the PASID to attach
 * @__reserved: must be 0
 *
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT: attaching what is attached replaces it.
 */
struct ioasid_emu_device_attach {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 pt_id;
	__u32 pasid;
	__u32 __reserved;
};
#define IOASID_EMU_DEVICE_ATTACH _IO(IOASID_EMU_TYPE, IOASID_EMU_CMD_DEVICE_ATTACH)

/**
 * struct ioasid_emu_device_detach - ioctl(IOASID_EMU_DEVICE_DETACH)
 * @size: sizeof(struct ioasid_emu_device_detach)
 * @flags: enum ioasid_emu_device_flags
 * @dev_id: the device
 * @pasid: with IOASID_EMU_DEVICE_PASID, the PASID to detach
 */
struct ioasid_emu_device_detach {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 pasid;
};
#define IOASID_EMU_DEVICE_DETACH _IO(IOASID_EMU_TYPE, IOASID_EMU_CMD_DEVICE_DETACH)

/**
 * enum ioasid_emu_dma_flags - what an emulated DMA does
 * @IOASID_EMU_DMA_WRITE: the device writes memory (from the buffer);
 *                        without it, it reads memory (into the buffer)
 * @IOASID_EMU_DMA_PASID: the request carries @pasid
 */
enum ioasid_emu_dma_flags {
	IOASID_EMU_DMA_WRITE = 1 << 0,
	IOASID_EMU_DMA_PASID = 1 << 1
};

/**
 * enum ioasid_emu_fault_reason - why the IOMMU stopped a DMA
 * @IOASID_EMU_FAULT_NONE: it did not
 * @IOASID_EMU_FAULT_BLOCKED: nothing is attached to the (device, PASID)
 * @IOASID_EMU_FAULT_PASID_RANGE: the PASID is beyond the device's width
 * @IOASID_EMU_FAULT_ADDRESS_SIZE: the IOVA is outside the domain
 * @IOASID_EMU_FAULT_NOT_PRESENT: no translation for the IOVA
 * @IOASID_EMU_FAULT_PERMISSION: the translation forbids the access
 */
enum ioasid_emu_fault_reason {
	IOASID_EMU_FAULT_NONE = 0,
	IOASID_EMU_FAULT_BLOCKED,
	IOASID_EMU_FAULT_PASID_RANGE,
	IOASID_EMU_FAULT_ADDRESS_SIZE,
	IOASID_EMU_FAULT_NOT_PRESENT,
	IOASID_EMU_FAULT_PERMISSION
};

/**
 * struct ioasid_emu_dma - ioctl(IOASID_EMU_DMA)
 * @size: sizeof(struct ioasid_emu_dma)
 * @flags: enum ioasid_emu_dma_flags
 * @dev_id: a device bound to this iommufd
 * @pasid: with IOASID_EMU_DMA_PASID, the PASID of the request
 * @iova: where the device reads or writes
 * @length: bytes
 * @buf_uptr: the caller's buffer of @length bytes
 * @out_done: output: bytes moved
 * @out_fault_reason: output: enum ioasid_emu_fault_reason
 * @out_fault_code: output: the unit's own fault reason number (VT-d's
 *                  fault reason, ...)
 * @out_fault_iova: output: the address that faulted
 *
 * The unit translates page by page (IOTLB, then the page table) and the
 * bytes move to or from the memory each page maps to. The transfer stops at
 * the first page the IOMMU refuses: the ioctl then fails with EIO, with the
 * fault described in the out_ fields and @out_done counting what moved.
 */
struct ioasid_emu_dma {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 pasid;
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 buf_uptr;
	__aligned_u64 out_done;
	__u32 out_fault_reason;
	__u32 out_fault_code;
	__aligned_u64 out_fault_iova;
};
#define IOASID_EMU_DMA _IO(IOASID_EMU_TYPE, IOASID_EMU_CMD_DMA)

/**
 * struct ioasid_emu_pt_dump - ioctl(IOASID_EMU_PT_DUMP)
 * @size: sizeof(struct ioasid_emu_pt_dump)
 * @hwpt_id: a paging HWPT of this iommufd
 * @buf_len: bytes at @buf_uptr
 * @out_len: output: bytes of the whole dump
 * @buf_uptr: where the dump goes: a JSON object with the table format,
 *            root, levels and every valid entry (level, index, table
 *            address, IOVA, raw value, decoded fields)
 *
 * EMSGSIZE with @out_len set when the buffer is too small.
 */
struct ioasid_emu_pt_dump {
	__u32 size;
	__u32 hwpt_id;
	__u32 buf_len;
	__u32 out_len;
	__aligned_u64 buf_uptr;
};
#define IOASID_EMU_PT_DUMP _IO(IOASID_EMU_TYPE, IOASID_EMU_CMD_PT_DUMP)

#endif /* IOASID_EMU_H */
