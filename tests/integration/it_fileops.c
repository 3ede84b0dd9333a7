/* SPDX-License-Identifier: MIT */
/*
 * it_fileops: the device fd as a file, apart from ioctl. The kernel's
 * iommufd_fops has open, release and unlocked_ioctl only, so read() and
 * write() fail as vfs_read()/vfs_write() decide (EBADF when the open mode
 * lacks the direction, else EINVAL), mmap() fails with ENODEV, and the
 * ioctls work whatever the access mode of the open, and whether or not the
 * file is non-blocking.
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

/* --- O_NONBLOCK and O_ASYNC: file flags, the ioctls still answer ---------- */

static void expect_flag(int fd, int flag, int set, const char *what)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0)
		IT_FAIL("%s: F_GETFL: %s", what, it_errname(errno));
	else if (!(flags & flag) != !set)
		IT_FAIL("%s: flag %#x is %s", what, flag, set ? "clear" : "set");
}

/* Some ioctl calls on a non-blocking fd, each answered as on a blocking one:
 * the kernel's iommufd handlers never give EAGAIN. */
static void use_nonblocking(int fd, const char *what)
{
	uint32_t id = 0;
	uint64_t unmapped = 0;
	if (!EXPECT_OK(it_ioas_alloc(fd, &id)))
		return;
	for (int i = 0; i < 64; i++) {
		if (!EXPECT_OK(it_map_fixed(fd, id, buf, SZ_64K, 0x100000)) ||
		    !EXPECT_OK(it_unmap(fd, id, 0x100000, SZ_64K, &unmapped))) {
			IT_FAIL("%s: round %d", what, i);
			break;
		}
	}
	EXPECT_EQ(SZ_64K, unmapped);
	EXPECT_ERRNO(ENOENT, it_destroy(fd, id + 1000));
	EXPECT_OK(it_destroy(fd, id));
}

static void test_nonblocking(void)
{
	int fd = it_open(O_NONBLOCK);
	expect_flag(fd, O_NONBLOCK, 1, "open(O_NONBLOCK)");
	use_nonblocking(fd, "open(O_NONBLOCK)");
	EXPECT_OK(close(fd));

	/* FIONBIO and FIOASYNC are do_vfs_ioctl()'s, for every file. */
	fd = it_open(0);
	int on = 1, off = 0;
	EXPECT_OK(ioctl(fd, FIONBIO, &on));
	expect_flag(fd, O_NONBLOCK, 1, "FIONBIO on");
	use_nonblocking(fd, "FIONBIO");
	EXPECT_OK(ioctl(fd, FIONBIO, &off));
	expect_flag(fd, O_NONBLOCK, 0, "FIONBIO off");
	/* ioctl_fioasync(): no fasync method, so only a change is refused. */
	EXPECT_ERRNO(ENOTTY, ioctl(fd, FIOASYNC, &on));
	expect_flag(fd, O_ASYNC, 0, "FIOASYNC on");
	EXPECT_OK(ioctl(fd, FIOASYNC, &off));
	EXPECT_ERRNO(EFAULT, ioctl(fd, FIOASYNC, (void *)8));
	EXPECT_ERRNO(EFAULT, ioctl(fd, FIONBIO, (void *)8));
	/* fcntl() sets the flag without an ioctl. */
	EXPECT_OK(fcntl(fd, F_SETFL, O_NONBLOCK));
	use_nonblocking(fd, "F_SETFL O_NONBLOCK");
	EXPECT_OK(close(fd));
}

int main(int argc, char **argv)
{
	it_init(argc, argv);
	buf = it_buffer(SZ_64K);
	test_file_ops();
	test_nonblocking();
	return it_finish();
}
