/* SPDX-License-Identifier: MIT */
/*
 * it_fileops: the device fd as a file, apart from ioctl. The kernel's
 * iommufd_fops has open, release and unlocked_ioctl only, so read() and
 * write() fail as vfs_read()/vfs_write() decide (EBADF when the open mode
 * lacks the direction, else EINVAL), mmap() fails with ENODEV, and the
 * ioctls work whatever the access mode of the open.
 */
#define _GNU_SOURCE
#include "it_common.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define SZ_64K 0x10000ul

static char *buf;

/* --- the fd as a file: no read/write/mmap, any access mode ----------------- */

static void test_file_ops(void)
{
	char byte[8];
	int fd = it_open(0);
	/* iommufd_fops has no read/write: vfs_read()/vfs_write() -> EINVAL;
	 * no mmap: do_mmap() -> ENODEV. */
	EXPECT_ERRNO(EINVAL, read(fd, byte, sizeof(byte)));
	EXPECT_ERRNO(EINVAL, write(fd, byte, sizeof(byte)));
	void *m = mmap(NULL, IT_PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (m != MAP_FAILED) {
		IT_FAIL("mmap of the device fd succeeded");
		munmap(m, IT_PAGE);
	} else if (errno != ENODEV) {
		IT_FAIL("mmap of the device fd: %s, expected ENODEV", it_errname(errno));
	}
	EXPECT_OK(close(fd));

	/* The ioctls do not depend on the access mode of the open. */
	fd = open(it_device(), O_RDONLY);
	if (fd < 0)
		IT_FATAL("open(%s, O_RDONLY): %s", it_device(), it_errname(errno));
	uint32_t id = 0;
	if (EXPECT_OK(it_ioas_alloc(fd, &id)))
		EXPECT_EQ(1, id);
	EXPECT_OK(it_map_fixed(fd, id, buf, SZ_64K, 0x100000));
	/* ... but read/write do: FMODE_WRITE is checked first -> EBADF. */
	EXPECT_ERRNO(EBADF, write(fd, byte, sizeof(byte)));
	EXPECT_ERRNO(EINVAL, read(fd, byte, sizeof(byte)));
	EXPECT_OK(close(fd));
	fd = open(it_device(), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		IT_FATAL("open(%s, O_WRONLY): %s", it_device(), it_errname(errno));
	if (EXPECT_OK(it_ioas_alloc(fd, &id)))
		EXPECT_EQ(1, id);
	EXPECT_ERRNO(EBADF, read(fd, byte, sizeof(byte)));
	EXPECT_ERRNO(EINVAL, write(fd, byte, sizeof(byte)));
	EXPECT_OK(close(fd));
}

int main(int argc, char **argv)
{
	it_init(argc, argv);
	buf = it_buffer(SZ_64K);
	test_file_ops();
	return it_finish();
}
