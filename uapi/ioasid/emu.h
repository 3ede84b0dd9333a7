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
	IOASID_EMU_CMD_STATUS = IOASID_EMU_CMD_BASE
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

#endif /* IOASID_EMU_H */
