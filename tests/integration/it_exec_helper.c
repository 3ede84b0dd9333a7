/* SPDX-License-Identifier: MIT */
/*
 * it_exec_helper: run by it_fork through execv() with a device fd it
 * inherited (the number is in argv), to check that the fd survives exec as
 * a kernel file does, or that it is gone when it was O_CLOEXEC.
 *
 *   it_exec_helper use FD IOAS IOVA NEXT_ID
 *       the fd works on the parent's context: IOAS exists, this process's
 *       own memory can be mapped at IOVA, a new IOAS gets id NEXT_ID; the
 *       fd is left open (the exit closes it)
 *   it_exec_helper closed FD
 *       the fd is not open (EBADF)
 */
#define _GNU_SOURCE
#include "it_common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define SZ_64K 0x10000ul

int main(int argc, char **argv)
{
	it_init(argc, argv);
	it_set_role("(exec'ed)");
	if (argc == 3 && !strcmp(argv[1], "closed")) {
		int fd = atoi(argv[2]);
		EXPECT_ERRNO(EBADF, fcntl(fd, F_GETFD));
		struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
		EXPECT_ERRNO(EBADF, ioctl(fd, IOMMU_IOAS_ALLOC, &cmd));
		return it_finish();
	}
	if (argc != 6 || strcmp(argv[1], "use"))
		IT_FATAL("usage: %s use FD IOAS IOVA NEXT_ID | closed FD", argv[0]);

	int fd = atoi(argv[2]);
	uint32_t ioas = (uint32_t)strtoul(argv[3], NULL, 0);
	uint64_t iova = strtoull(argv[4], NULL, 0);
	uint32_t next_id = (uint32_t)strtoul(argv[5], NULL, 0);

	/* Still open, not close-on-exec. */
	int fdflags = fcntl(fd, F_GETFD);
	if (fdflags < 0)
		IT_FATAL("fd %d is not open after exec: %s", fd, it_errname(errno));
	EXPECT_EQ(0, fdflags & FD_CLOEXEC);

	struct iommu_ioas_iova_ranges ranges = { .size = sizeof(ranges), .ioas_id = ioas };
	EXPECT_ERRNO(EMSGSIZE, ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &ranges));
	EXPECT_EQ(1, ranges.num_iovas);
	/* The parent's area at IOVA - 64K is visible: cutting it is ENOENT,
	 * and so is the IOVA itself: EEXIST for an overlapping fixed map. */
	char *buf = it_buffer(SZ_64K);
	EXPECT_ERRNO(EEXIST, it_map_fixed(fd, ioas, buf, 2 * SZ_64K, iova - SZ_64K));
	EXPECT_OK(it_map_fixed(fd, ioas, buf, SZ_64K, iova));
	uint32_t id = 0;
	if (EXPECT_OK(it_ioas_alloc(fd, &id)))
		EXPECT_EQ(next_id, id);
	return it_finish();
}
