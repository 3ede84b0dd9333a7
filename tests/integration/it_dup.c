/* SPDX-License-Identifier: MIT */
/*
 * it_dup: dup()ed fds name the same open file, hence the same context;
 * the context ends with the last of them (the kernel's release runs once,
 * at the last fput()).
 */
#define _GNU_SOURCE
#include "it_common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define SZ_64K 0x10000ul

static char *buf;

static bool has_status;

/* Waits (bounded) until the status report no longer lists context `ctx`. */
static bool context_gone(int observer_fd, long long ctx)
{
	return it_wait_context_gone(observer_fd, ctx, 1000);
}

static void test_dup_family(void)
{
	int fd = it_open(0);
	uint32_t ioas = it_must_alloc(fd);
	EXPECT_EQ(1, ioas);
	EXPECT_OK(it_map_fixed(fd, ioas, buf, SZ_64K, 0x100000));
	long long ctx = has_status ? it_context_id(fd) : -1;

	int fd2 = dup(fd);
	if (fd2 < 0)
		IT_FATAL("dup: %s", it_errname(errno));
	int fd3 = fcntl(fd, F_DUPFD_CLOEXEC, 100);
	if (fd3 < 100)
		IT_FATAL("F_DUPFD_CLOEXEC: %d %s", fd3, it_errname(errno));
	EXPECT_EQ(FD_CLOEXEC, fcntl(fd3, F_GETFD) & FD_CLOEXEC);
	int fd4 = dup2(fd, 200);
	EXPECT_EQ(200, fd4);
	int fd5 = dup3(fd, 201, O_CLOEXEC);
	EXPECT_EQ(201, fd5);
	EXPECT_EQ(fd4, dup2(fd4, fd4)); /* a no-op */
	int fd6 = fcntl(fd, F_DUPFD, 0);
	if (fd6 < 0)
		IT_FATAL("F_DUPFD: %s", it_errname(errno));

	/* Each reaches the same objects, and allocates in the same id space. */
	uint32_t id = 0;
	EXPECT_ERRNO(EEXIST, it_map_fixed(fd2, ioas, buf, SZ_64K, 0x100000));
	if (EXPECT_OK(it_ioas_alloc(fd2, &id)))
		EXPECT_EQ(2, id);
	if (EXPECT_OK(it_ioas_alloc(fd3, &id)))
		EXPECT_EQ(3, id);
	if (EXPECT_OK(it_ioas_alloc(fd4, &id)))
		EXPECT_EQ(4, id);
	if (EXPECT_OK(it_ioas_alloc(fd5, &id)))
		EXPECT_EQ(5, id);
	if (EXPECT_OK(it_ioas_alloc(fd6, &id)))
		EXPECT_EQ(6, id);
	if (has_status) {
		EXPECT_EQ(ctx, it_context_id(fd3));
		EXPECT_EQ(ctx, it_context_id(fd6));
	}

	/* Closing the original keeps the others working. */
	EXPECT_OK(close(fd));
	EXPECT_ERRNO(EBADF, close(fd));
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	EXPECT_ERRNO(EBADF, ioctl(fd, IOMMU_IOAS_ALLOC, &cmd));
	uint64_t unmapped = 0;
	if (EXPECT_OK(it_unmap(fd2, ioas, 0x100000, SZ_64K, &unmapped)))
		EXPECT_EQ(SZ_64K, unmapped);
	EXPECT_OK(it_destroy(fd2, 1));
	EXPECT_OK(close(fd2));
	EXPECT_OK(close(fd3));
	EXPECT_OK(close(fd4));
	EXPECT_OK(close(fd6));
	/* The last one standing still has objects 2..6, and 1 is free. */
	if (EXPECT_OK(it_ioas_alloc(fd5, &id)))
		EXPECT_EQ(1, id);
	for (uint32_t i = 1; i <= 6; i++)
		EXPECT_OK(it_destroy(fd5, i));

	/* After the last close the context is gone; a new open is a new one. */
	EXPECT_OK(it_ioas_alloc(fd5, &id));
	EXPECT_OK(close(fd5));
	int fresh = it_open(0);
	EXPECT_ERRNO(ENOENT, it_destroy(fresh, id));
	if (EXPECT_OK(it_ioas_alloc(fresh, &id)))
		EXPECT_EQ(1, id);
	if (has_status) {
		if (!context_gone(fresh, ctx))
			IT_FAIL("context %lld still in the status report after its last fd closed",
				ctx);
		EXPECT_TRUE(it_context_id(fresh) != ctx);
	}
	EXPECT_OK(close(fresh));
}

/* dup2() over an fd of another context: that context loses its last fd. */
static void test_dup2_over_other(void)
{
	int fa = it_open(0), fb = it_open(0);
	uint32_t id;
	EXPECT_EQ(1, it_must_alloc(fa));
	EXPECT_EQ(1, it_must_alloc(fb));
	EXPECT_EQ(2, it_must_alloc(fb));
	long long ctx_b = has_status ? it_context_id(fb) : -1;

	EXPECT_EQ(fb, dup2(fa, fb));
	/* fb now names A: A has no object 2. */
	EXPECT_ERRNO(ENOENT, it_destroy(fb, 2));
	if (EXPECT_OK(it_ioas_alloc(fb, &id)))
		EXPECT_EQ(2, id);
	EXPECT_OK(it_destroy(fa, 2));
	if (has_status && !context_gone(fa, ctx_b))
		IT_FAIL("context %lld still in the status report after dup2() replaced its fd",
			ctx_b);
	EXPECT_OK(close(fa));
	EXPECT_OK(it_destroy(fb, 1));
	EXPECT_OK(close(fb));
}

/* A dup()ed fd used from a forked child, while the parent uses another. */
static void test_dup_and_fork(void)
{
	int fd = it_open(0);
	int fd2 = dup(fd);
	uint32_t ioas = it_must_alloc(fd);
	pid_t pid = fork();
	if (pid < 0)
		IT_FATAL("fork: %s", it_errname(errno));
	if (pid == 0) {
		it_set_role("child");
		EXPECT_OK(close(fd));
		EXPECT_OK(it_map_fixed(fd2, ioas, buf, SZ_64K, 0x100000));
		int fd3 = dup(fd2);
		EXPECT_OK(close(fd2));
		EXPECT_OK(it_map_fixed(fd3, ioas, buf, SZ_64K, 0x200000));
		_exit(it_finish());
	}
	int status = it_wait_child(pid, 30);
	if (status)
		IT_FAIL("child ended with %d", status);
	EXPECT_OK(close(fd2));
	uint64_t unmapped = 0;
	if (EXPECT_OK(it_unmap(fd, ioas, 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ(2 * SZ_64K, unmapped);
	EXPECT_OK(close(fd));
}

/* The last close() tears the context down before it returns, as the
 * kernel's release() does: a program that closes its iommufd and checks
 * at once (the selftests' teardown counts pins right after) sees nothing
 * of it left. One look, no waiting. */
static void test_last_close_is_complete(void)
{
	if (!has_status)
		return;
	int observer = it_open(0);
	int fd = it_open(0);
	uint32_t ioas = it_must_alloc(fd);
	EXPECT_OK(it_map_fixed(fd, ioas, buf, SZ_64K, 0x100000));
	long long ctx = it_context_id(fd);
	EXPECT_OK(close(fd));
	EXPECT_TRUE(it_wait_context_gone(observer, ctx, 1));
	EXPECT_OK(close(observer));
}

int main(int argc, char **argv)
{
	it_init(argc, argv);
	buf = it_buffer(SZ_64K);
	/* The status report is an ioasid extension: on a kernel the checks
	 * that need it are left out. */
	int probe = it_open(0);
	char *report = it_status(probe, false);
	has_status = report != NULL;
	if (!has_status)
		it_log("IOASID_EMU_STATUS not available (%s): context checks skipped",
		       it_errname(errno));
	free(report);
	close(probe);

	test_dup_family();
	test_dup2_over_other();
	test_dup_and_fork();
	test_last_close_is_complete();
	return it_finish();
}
