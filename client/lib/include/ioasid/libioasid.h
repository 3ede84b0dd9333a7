/* SPDX-License-Identifier: MIT */
/*
 * libioasid: a thin C API over the iommufd ioctl ABI as ioasidd serves it,
 * on a device node (/dev/ioasid, /dev/iommu, or the kernel's own iommufd) or
 * on the daemon's Unix socket.
 *
 * Every function returns 0 (or an fd) on success and a negative errno on
 * failure. errno itself is left as it was: the return value is the only
 * error channel, so callers can use these from code that keeps errno for
 * something else.
 *
 * Objects live as long as the file they were made on: closing the fd
 * destroys them, as with the kernel's iommufd.
 *
 * Link with `pkg-config --cflags --libs ioasid`.
 */
#ifndef IOASID_LIBIOASID_H
#define IOASID_LIBIOASID_H

#include <stddef.h>
#include <stdint.h>

#include <ioasid/iommufd.h>
#include <ioasid/emu.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Opening and closing ------------------------------------------------ */

/* Opens an iommufd context. `path` may name a character device or the
 * daemon's socket. NULL picks one: $IOASID_DEVICE if set, else the first
 * character device of /dev/ioasid and /dev/iommu, else the socket at
 * $IOASID_SOCKET or IOASID_SOCKET_DEFAULT_PATH. The fd is close-on-exec. */
int ioasid_open(const char *path);

/* Opens the character device at `path` (open(2), O_RDWR | O_CLOEXEC). */
int ioasid_open_device(const char *path);

/* Connects to the daemon's socket at `path` (NULL: $IOASID_SOCKET, else the
 * default path) and opens a new context. Close-on-exec. */
int ioasid_open_socket(const char *path);

/* Closes an fd from ioasid_open*(), destroying its context's objects. */
int ioasid_close(int fd);

/* Nonzero when `fd` is a socket-transport fd rather than a device file. */
int ioasid_is_socket(int fd);

/* Any ioctl on the context: ioctl(2) on a device, a request message on a
 * socket. Returns 0 or -errno. */
int ioasid_ioctl(int fd, unsigned long cmd, void *arg);

/* ---- Typed wrappers, one per command ------------------------------------ */

/* IOMMU_DESTROY: destroys object `id` (-EBUSY while something uses it). */
int ioasid_destroy(int fd, uint32_t id);

/* IOMMU_IOAS_ALLOC: a new, empty IOAS; its id goes to *out_ioas_id. */
int ioasid_ioas_alloc(int fd, uint32_t *out_ioas_id);

/* IOMMU_IOAS_MAP: maps `length` bytes of this process's memory at `user_va`.
 * `flags` are enum iommufd_ioas_map_flags. With IOMMU_IOAS_MAP_FIXED_IOVA
 * *iova is the IOVA to use (iova must not be NULL then); otherwise the daemon
 * picks one. Either way *iova (if given) holds the IOVA on return. */
int ioasid_ioas_map(int fd, uint32_t ioas_id, uint32_t flags, const void *user_va,
		    uint64_t length, uint64_t *iova);

/* IOMMU_IOAS_UNMAP: removes the mappings wholly inside [iova, iova+length);
 * iova 0 with length UINT64_MAX removes all. The bytes removed go to
 * *out_unmapped (may be NULL). */
int ioasid_ioas_unmap(int fd, uint32_t ioas_id, uint64_t iova, uint64_t length,
		      uint64_t *out_unmapped);

/* IOMMU_IOAS_COPY: maps the pages of one earlier map of `src_ioas_id` at
 * [src_iova, src_iova+length) into `dst_ioas_id`. *dst_iova as *iova of
 * ioasid_ioas_map(). */
int ioasid_ioas_copy(int fd, uint32_t dst_ioas_id, uint32_t src_ioas_id, uint32_t flags,
		     uint64_t src_iova, uint64_t length, uint64_t *dst_iova);

/* IOMMU_IOAS_IOVA_RANGES: the IOVA ranges the IOAS may map. `ranges` has room
 * for *num_ranges entries; on return *num_ranges is the count there is
 * (-EMSGSIZE when it did not fit). `out_alignment` may be NULL. */
int ioasid_ioas_iova_ranges(int fd, uint32_t ioas_id, struct iommu_iova_range *ranges,
			    uint32_t *num_ranges, uint64_t *out_alignment);

/* The same, with the array sized for you: *out_ranges is malloc'd (free()
 * it; NULL when there are none) and holds *out_num entries. */
int ioasid_ioas_iova_ranges_alloc(int fd, uint32_t ioas_id, struct iommu_iova_range **out_ranges,
				  uint32_t *out_num, uint64_t *out_alignment);

/* IOMMU_IOAS_ALLOW_IOVAS: replaces the IOAS's allowed list with `num_ranges`
 * closed ranges; none lifts the restriction. */
int ioasid_ioas_allow_iovas(int fd, uint32_t ioas_id, const struct iommu_iova_range *ranges,
			    uint32_t num_ranges);

/* IOMMU_OPTION get/set. `option_id` is enum iommufd_option; `object_id` is
 * the IOAS for IOMMU_OPTION_HUGE_PAGES and 0 for IOMMU_OPTION_RLIMIT_MODE. */
int ioasid_option_get(int fd, uint32_t option_id, uint32_t object_id, uint64_t *out_value);
int ioasid_option_set(int fd, uint32_t option_id, uint32_t object_id, uint64_t value);

/* IOMMU_VFIO_IOAS: the IOAS the VFIO container compatibility API uses.
 * get answers -ENODEV when none is set. */
int ioasid_vfio_ioas_get(int fd, uint32_t *out_ioas_id);
int ioasid_vfio_ioas_set(int fd, uint32_t ioas_id);
int ioasid_vfio_ioas_clear(int fd);

/* ---- ioasid extensions (ioasid/emu.h) ---------------------------------- */

/* IOASID_EMU_STATUS: the daemon's report as a NUL-terminated JSON object,
 * malloc'd into *out_json (free() it). `flags` is enum ioasid_status_flags.
 * A kernel iommufd, which has no such ioctl, answers -ENOTTY. */
int ioasid_status(int fd, uint32_t flags, char **out_json);

#ifdef __cplusplus
}
#endif

#endif /* IOASID_LIBIOASID_H */
