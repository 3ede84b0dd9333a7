/* SPDX-License-Identifier: MIT */
/*
 * libioasid: typed wrappers over the iommufd ioctls, on a device node or on
 * the daemon's socket (through the transport in client/transport).
 *
 * Written in C so that the shared library pulls in no C++ runtime and any
 * C program can link it. Every entry point saves errno and puts it back:
 * the negative return value is the whole error report.
 */
/* O_CLOEXEC and S_ISSOCK, which strict C11 hides. */
#define _GNU_SOURCE

#include <ioasid/libioasid.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/transport.h"

/* How often the sizing loops ask again when the answer grew in between
 * (another thread of the client mapping, another client opening). */
enum { RESIZE_TRIES = 8 };

/* The first guess for the status report, to save a round trip in the
 * common case: a few contexts with a few objects each. */
enum { STATUS_FIRST_GUESS = 16 * 1024 };

static int open_by_type(const char *path)
{
	struct stat st;
	int saved = errno;
	int rc = stat(path, &st) ? -errno : 0;

	errno = saved;
	if (rc)
		return rc;
	/* A socket is the daemon's; anything else is opened as a file, which
	 * lets a plain kernel iommufd (/dev/iommu) work as well. */
	if (S_ISSOCK(st.st_mode))
		return ioasid_open_socket(path);
	return ioasid_open_device(path);
}

int ioasid_open(const char *path)
{
	static const char *const devices[] = { "/dev/ioasid", "/dev/iommu" };
	const char *env;
	size_t i;

	if (path)
		return open_by_type(path);
	env = getenv("IOASID_DEVICE");
	if (env && *env)
		return open_by_type(env);
	for (i = 0; i < sizeof(devices) / sizeof(devices[0]); i++) {
		struct stat st;
		int saved = errno;
		int found = stat(devices[i], &st) == 0 && S_ISCHR(st.st_mode);

		errno = saved;
		/* An existing node that cannot be opened is reported rather
		 * than skipped: quietly using the socket instead would hide a
		 * permission problem behind a different daemon. */
		if (found)
			return ioasid_open_device(devices[i]);
	}
	return ioasid_open_socket(NULL);
}

int ioasid_open_device(const char *path)
{
	int saved = errno;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		fd = -errno;
	errno = saved;
	return fd;
}

int ioasid_open_socket(const char *path)
{
	return ioasid_transport_open(path, 1);
}

int ioasid_close(int fd)
{
	int saved = errno;
	int rc;

	if (fd < 0)
		return -EBADF;
	if (ioasid_transport_owns(fd))
		ioasid_transport_close(fd);
	rc = close(fd) ? -errno : 0;
	errno = saved;
	return rc;
}

int ioasid_is_socket(int fd)
{
	return fd >= 0 && ioasid_transport_owns(fd);
}

int ioasid_ioctl(int fd, unsigned long cmd, void *arg)
{
	int saved;
	int rc;

	if (ioasid_transport_owns(fd))
		return ioasid_transport_ioctl(fd, cmd, (uint64_t)(uintptr_t)arg);
	saved = errno;
	rc = ioctl(fd, cmd, arg) < 0 ? -errno : 0;
	errno = saved;
	return rc;
}

int ioasid_destroy(int fd, uint32_t id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ioasid_ioctl(fd, IOMMU_DESTROY, &cmd);
}

int ioasid_ioas_alloc(int fd, uint32_t *out_ioas_id)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	int rc = ioasid_ioctl(fd, IOMMU_IOAS_ALLOC, &cmd);

	if (rc == 0 && out_ioas_id)
		*out_ioas_id = cmd.out_ioas_id;
	return rc;
}

int ioasid_ioas_map(int fd, uint32_t ioas_id, uint32_t flags, const void *user_va,
		    uint64_t length, uint64_t *iova)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.ioas_id = ioas_id,
		.user_va = (uint64_t)(uintptr_t)user_va,
		.length = length,
	};
	int rc;

	if ((flags & IOMMU_IOAS_MAP_FIXED_IOVA) && !iova)
		return -EINVAL;
	if (iova && (flags & IOMMU_IOAS_MAP_FIXED_IOVA))
		cmd.iova = *iova;
	rc = ioasid_ioctl(fd, IOMMU_IOAS_MAP, &cmd);
	if (rc == 0 && iova)
		*iova = cmd.iova;
	return rc;
}

int ioasid_ioas_unmap(int fd, uint32_t ioas_id, uint64_t iova, uint64_t length,
		      uint64_t *out_unmapped)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas_id,
		.iova = iova,
		.length = length,
	};
	int rc = ioasid_ioctl(fd, IOMMU_IOAS_UNMAP, &cmd);

	if (rc == 0 && out_unmapped)
		*out_unmapped = cmd.length;
	return rc;
}

int ioasid_ioas_copy(int fd, uint32_t dst_ioas_id, uint32_t src_ioas_id, uint32_t flags,
		     uint64_t src_iova, uint64_t length, uint64_t *dst_iova)
{
	struct iommu_ioas_copy cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dst_ioas_id = dst_ioas_id,
		.src_ioas_id = src_ioas_id,
		.length = length,
		.src_iova = src_iova,
	};
	int rc;

	if ((flags & IOMMU_IOAS_MAP_FIXED_IOVA) && !dst_iova)
		return -EINVAL;
	if (dst_iova && (flags & IOMMU_IOAS_MAP_FIXED_IOVA))
		cmd.dst_iova = *dst_iova;
	rc = ioasid_ioctl(fd, IOMMU_IOAS_COPY, &cmd);
	if (rc == 0 && dst_iova)
		*dst_iova = cmd.dst_iova;
	return rc;
}

int ioasid_ioas_iova_ranges(int fd, uint32_t ioas_id, struct iommu_iova_range *ranges,
			    uint32_t *num_ranges, uint64_t *out_alignment)
{
	struct iommu_ioas_iova_ranges cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas_id,
		.num_iovas = num_ranges ? *num_ranges : 0,
		.allowed_iovas = (uint64_t)(uintptr_t)ranges,
	};
	int rc = ioasid_ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &cmd);

	/* The count comes back with EMSGSIZE too: it is how callers size. */
	if ((rc == 0 || rc == -EMSGSIZE) && num_ranges)
		*num_ranges = cmd.num_iovas;
	if ((rc == 0 || rc == -EMSGSIZE) && out_alignment)
		*out_alignment = cmd.out_iova_alignment;
	return rc;
}

int ioasid_ioas_iova_ranges_alloc(int fd, uint32_t ioas_id, struct iommu_iova_range **out_ranges,
				  uint32_t *out_num, uint64_t *out_alignment)
{
	struct iommu_iova_range *ranges = NULL;
	uint32_t room = 8;
	int tries;

	if (!out_ranges || !out_num)
		return -EINVAL;
	for (tries = 0; tries < RESIZE_TRIES; tries++) {
		int saved = errno;
		struct iommu_iova_range *grown = realloc(ranges, (size_t)room * sizeof(*ranges));
		uint32_t num = room;
		int rc;

		errno = saved;
		if (!grown) {
			free(ranges);
			return -ENOMEM;
		}
		ranges = grown;
		rc = ioasid_ioas_iova_ranges(fd, ioas_id, ranges, &num, out_alignment);
		if (rc == 0) {
			if (num == 0) {
				free(ranges);
				ranges = NULL;
			}
			*out_ranges = ranges;
			*out_num = num;
			return 0;
		}
		if (rc != -EMSGSIZE || num <= room) {
			free(ranges);
			return rc;
		}
		room = num;
	}
	free(ranges);
	return -EMSGSIZE;
}

int ioasid_ioas_allow_iovas(int fd, uint32_t ioas_id, const struct iommu_iova_range *ranges,
			    uint32_t num_ranges)
{
	struct iommu_ioas_allow_iovas cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas_id,
		.num_iovas = num_ranges,
		.allowed_iovas = (uint64_t)(uintptr_t)ranges,
	};

	return ioasid_ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd);
}

int ioasid_option_get(int fd, uint32_t option_id, uint32_t object_id, uint64_t *out_value)
{
	struct iommu_option cmd = {
		.size = sizeof(cmd),
		.option_id = option_id,
		.op = IOMMU_OPTION_OP_GET,
		.object_id = object_id,
	};
	int rc = ioasid_ioctl(fd, IOMMU_OPTION, &cmd);

	if (rc == 0 && out_value)
		*out_value = cmd.val64;
	return rc;
}

int ioasid_option_set(int fd, uint32_t option_id, uint32_t object_id, uint64_t value)
{
	struct iommu_option cmd = {
		.size = sizeof(cmd),
		.option_id = option_id,
		.op = IOMMU_OPTION_OP_SET,
		.object_id = object_id,
		.val64 = value,
	};

	return ioasid_ioctl(fd, IOMMU_OPTION, &cmd);
}

int ioasid_vfio_ioas_get(int fd, uint32_t *out_ioas_id)
{
	struct iommu_vfio_ioas cmd = { .size = sizeof(cmd), .op = IOMMU_VFIO_IOAS_GET };
	int rc = ioasid_ioctl(fd, IOMMU_VFIO_IOAS, &cmd);

	if (rc == 0 && out_ioas_id)
		*out_ioas_id = cmd.ioas_id;
	return rc;
}

int ioasid_vfio_ioas_set(int fd, uint32_t ioas_id)
{
	struct iommu_vfio_ioas cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas_id,
		.op = IOMMU_VFIO_IOAS_SET,
	};

	return ioasid_ioctl(fd, IOMMU_VFIO_IOAS, &cmd);
}

int ioasid_vfio_ioas_clear(int fd)
{
	struct iommu_vfio_ioas cmd = { .size = sizeof(cmd), .op = IOMMU_VFIO_IOAS_CLEAR };

	return ioasid_ioctl(fd, IOMMU_VFIO_IOAS, &cmd);
}

int ioasid_status(int fd, uint32_t flags, char **out_json)
{
	uint64_t room = STATUS_FIRST_GUESS;
	char *buf = NULL;
	int tries;

	if (!out_json)
		return -EINVAL;
	for (tries = 0; tries < RESIZE_TRIES; tries++) {
		struct ioasid_emu_status cmd = { .size = sizeof(cmd), .flags = flags };
		int saved = errno;
		/* One byte more than the daemon is told about, for the NUL. */
		char *grown = realloc(buf, room + 1);
		int rc;

		errno = saved;
		if (!grown) {
			free(buf);
			return -ENOMEM;
		}
		buf = grown;
		cmd.buf_len = (uint32_t)room;
		cmd.buf_uptr = (uint64_t)(uintptr_t)buf;
		rc = ioasid_ioctl(fd, IOASID_EMU_STATUS, &cmd);
		if (rc == 0 && cmd.out_len <= room) {
			buf[cmd.out_len] = '\0';
			*out_json = buf;
			return 0;
		}
		if (rc != -EMSGSIZE && rc != 0) {
			free(buf);
			return rc;
		}
		/* Leave slack: the report may grow before the next call. */
		room = (uint64_t)cmd.out_len + cmd.out_len / 4 + 4096;
		if (room > UINT32_MAX)
			room = UINT32_MAX;
	}
	free(buf);
	return -EMSGSIZE;
}
