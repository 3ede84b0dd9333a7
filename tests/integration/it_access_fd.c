/* SPDX-License-Identifier: MIT */
/*
 * it_access_fd: a descriptor the daemon hands over with an ioctl's reply,
 * the selftest's access fd (IOMMU_TEST_OP_CREATE_ACCESS of a kernel built
 * with CONFIG_IOMMUFD_TEST, selftest.c iommufd_test_create_access()). As
 * there, the fd is O_CLOEXEC, later ops name it by number, read/write fail
 * with EINVAL and ioctl with ENOTTY (an anonymous-inode file with only a
 * release method), the access keeps its iommufd context after the iommufd
 * is closed, and the last close() of the access fd ends the access before
 * it returns. The test command's ABI: it_test_cmd.h.
 */
#define _GNU_SOURCE
#include "it_common.h"
#include "it_test_cmd.h"

#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define SZ_64K 0x10000ul
#define IOVA 0x100000ul

static char *buf;

static int create_access(int fd, uint32_t ioas, int *access_fd)
{
	struct test_cmd cmd = { .size = sizeof(cmd), .op = OP_CREATE_ACCESS, .id = ioas };
	cmd.create_access.out_access_fd = 0xdeadbeef;
	int rc = ioctl(fd, TEST_CMD, &cmd);
	*access_fd = (int)cmd.create_access.out_access_fd;
	return rc;
}

static int access_rw(int fd, int access_fd, void *ubuf, size_t length, uint32_t flags)
{
	struct test_cmd cmd = { .size = sizeof(cmd), .op = OP_ACCESS_RW, .id = (uint32_t)access_fd };
	cmd.access_rw.iova = IOVA;
	cmd.access_rw.length = length;
	cmd.access_rw.uptr = (uintptr_t)ubuf;
	cmd.access_rw.flags = flags;
	return ioctl(fd, TEST_CMD, &cmd);
}

static void test_access_fd(void)
{
	int fd = it_open(0);
	uint32_t ioas = it_must_alloc(fd);
	ASSERT_OK(it_map_fixed(fd, ioas, buf, SZ_64K, IOVA));
	int access_fd = -1;
	ASSERT_OK(create_access(fd, ioas, &access_fd));
	EXPECT_TRUE(access_fd > 2 && access_fd != fd);
	EXPECT_EQ(FD_CLOEXEC, fcntl(access_fd, F_GETFD) & FD_CLOEXEC);

	char bytes[8] = "written", seen[8] = { 0 };
	EXPECT_OK(access_rw(fd, access_fd, bytes, sizeof(bytes), ACCESS_RW_WRITE));
	EXPECT_TRUE(memcmp(buf, bytes, sizeof(bytes)) == 0);
	EXPECT_OK(access_rw(fd, access_fd, seen, sizeof(seen), 0));
	EXPECT_TRUE(memcmp(seen, bytes, sizeof(bytes)) == 0);

	/* Not an access fd: EBADFD, as iommufd_access_get(). */
	EXPECT_ERRNO(EBADFD, access_rw(fd, fd, seen, sizeof(seen), 0));
	EXPECT_ERRNO(EBADFD, access_rw(fd, 1000, seen, sizeof(seen), 0));

	/* The file itself: no read, write or ioctl methods. */
	EXPECT_ERRNO(EINVAL, read(access_fd, seen, sizeof(seen)));
	EXPECT_ERRNO(EINVAL, write(access_fd, seen, sizeof(seen)));
	EXPECT_ERRNO(ENOTTY, ioctl(access_fd, TEST_CMD, seen));

	/* A duplicate is the same file: the access lives until both close. */
	int copy = dup(access_fd);
	EXPECT_TRUE(copy >= 0);
	EXPECT_OK(close(access_fd));
	EXPECT_OK(access_rw(fd, copy, seen, sizeof(seen), 0));
	EXPECT_ERRNO(EBUSY, it_destroy(fd, ioas));
	EXPECT_OK(close(copy));
	EXPECT_ERRNO(EBADFD, access_rw(fd, copy, seen, sizeof(seen), 0));
	/* close() returned after the access ended: the IOAS is free. */
	EXPECT_OK(it_destroy(fd, ioas));
	EXPECT_OK(close(fd));
}

/* A forked child names the inherited access fd; the parent's close then
 * ends the access only when the child's copy is gone too. */
static void test_fork(void)
{
	int fd = it_open(0);
	uint32_t ioas = it_must_alloc(fd);
	ASSERT_OK(it_map_fixed(fd, ioas, buf, SZ_64K, IOVA));
	int access_fd = -1;
	ASSERT_OK(create_access(fd, ioas, &access_fd));
	pid_t child = fork();
	if (child == 0) {
		it_set_role("child");
		char seen[8] = { 0 };
		EXPECT_OK(access_rw(fd, access_fd, seen, sizeof(seen), 0));
		EXPECT_ERRNO(EINVAL, read(access_fd, seen, sizeof(seen)));
		_exit(it_finish());
	}
	EXPECT_EQ(0, it_wait_child(child, 30));
	EXPECT_OK(close(access_fd));
	/* After a fork the close is not synchronous (the transport cannot
	 * know whether the child's copy is gone): the daemon ends the access
	 * when it sees the connection end, a moment later. */
	int rc = -1;
	for (int naps = 0; naps < 200; naps++) {
		rc = it_destroy(fd, ioas);
		if (rc == 0 || errno != EBUSY)
			break;
		usleep(10000);
	}
	EXPECT_OK(rc);
	EXPECT_OK(close(fd));
}

/* The access holds its context, as the kernel's iommufd_ctx_get(): closing
 * the iommufd first leaves it to the access fd's close. */
static void test_keeps_context(void)
{
	int observer = it_open(0);
	int fd = it_open(0);
	long long ctx = it_context_id(fd);
	uint32_t ioas = it_must_alloc(fd);
	ASSERT_OK(it_map_fixed(fd, ioas, buf, SZ_64K, IOVA));
	int access_fd = -1;
	ASSERT_OK(create_access(fd, ioas, &access_fd));
	EXPECT_OK(close(fd));
	/* The daemon learns of an iommufd's close when it sees the socket
	 * end, a moment later: give it that moment, then the context must
	 * still be there. */
	usleep(200 * 1000);
	struct it_json *report = it_status_json(observer, true);
	EXPECT_TRUE(report && it_status_context_by_id(report, ctx) != NULL);
	it_json_free(report);
	EXPECT_OK(close(access_fd));
	EXPECT_TRUE(it_wait_context_gone(observer, ctx, 500));
	EXPECT_OK(close(observer));
}

int main(int argc, char **argv)
{
	it_init(argc, argv);
	buf = it_buffer(SZ_64K);
	test_access_fd();
	test_fork();
	test_keeps_context();
	return it_finish();
}
