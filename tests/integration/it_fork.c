/* SPDX-License-Identifier: MIT */
/*
 * it_fork: the device fd across fork() and exec(), as for a kernel file.
 *
 * A forked child shares the open file, hence the context: it reaches the
 * parent's objects by id, its new objects are numbered in the same id
 * space, its own mappings name its own memory, and its close() or exit only
 * drops its reference: the context lives while any process holds the file.
 * A child that execs keeps the fd (unless O_CLOEXEC) and can go on using it.
 *
 * usage: it_fork PATH_OF_it_exec_helper
 */
#define _GNU_SOURCE
#include "it_common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define SZ_64K 0x10000ul

static const char *helper;
static char *pbuf; /* the parent's memory */

static pid_t fork_or_die(void)
{
	pid_t pid = fork();
	if (pid < 0)
		IT_FATAL("fork: %s", it_errname(errno));
	return pid;
}

static void expect_child_ok(pid_t pid, const char *what)
{
	int status = it_wait_child(pid, 30);
	if (status != 0)
		IT_FAIL("%s: child %d ended with status %d", what, (int)pid, status);
}

/* The child uses the parent's objects and adds its own; the parent sees
 * them after the child closed the fd and exited. */
static void test_child_shares_context(void)
{
	int fd = it_open(0);
	uint32_t ioas = it_must_alloc(fd);
	EXPECT_EQ(1, ioas);
	EXPECT_OK(it_map_fixed(fd, ioas, pbuf, SZ_64K, 0x100000));
	long long ctx = it_context_id(fd);

	pid_t pid = fork_or_die();
	if (pid == 0) {
		it_set_role("child");
		/* Memory that exists only in the child. */
		char *cbuf = mmap(NULL, SZ_64K, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (cbuf == MAP_FAILED)
			IT_FATAL("mmap: %s", it_errname(errno));
		memset(cbuf, 0x5a, SZ_64K);

		/* The parent's IOAS and its area. */
		EXPECT_ERRNO(ENOENT, it_unmap(fd, ioas, 0x100000, 0x1000, NULL));
		EXPECT_ERRNO(EEXIST, it_map_fixed(fd, ioas, cbuf, SZ_64K, 0x100000));
		EXPECT_OK(it_map_fixed(fd, ioas, cbuf, SZ_64K, 0x200000));
		/* New objects continue the parent's id space. */
		uint32_t id = 0;
		if (EXPECT_OK(it_ioas_alloc(fd, &id)))
			EXPECT_EQ(2, id);
		uint64_t iova = 0x300000;
		EXPECT_OK(it_copy(fd, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, id,
				  ioas, SZ_64K, &iova, 0x200000));
		/* Same context as the parent's fd. */
		long long cctx = it_context_id(fd);
		if (cctx != ctx)
			IT_FAIL("child's context %lld, parent's %lld", cctx, ctx);
		/* The child's close only drops its reference. */
		EXPECT_OK(close(fd));
		munmap(cbuf, SZ_64K);
		_exit(it_finish());
	}
	expect_child_ok(pid, "child using the inherited fd");

	/* Everything the child did is there. */
	uint64_t unmapped = 0;
	if (EXPECT_OK(it_unmap(fd, 2, 0x300000, SZ_64K, &unmapped)))
		EXPECT_EQ(SZ_64K, unmapped);
	EXPECT_OK(it_destroy(fd, 2));
	if (EXPECT_OK(it_unmap(fd, ioas, 0x200000, SZ_64K, &unmapped)))
		EXPECT_EQ(SZ_64K, unmapped);
	if (EXPECT_OK(it_unmap(fd, ioas, 0x100000, SZ_64K, &unmapped)))
		EXPECT_EQ(SZ_64K, unmapped);
	EXPECT_EQ(ctx, it_context_id(fd));

	/* A child that exits without touching the fd, and one that closes
	 * it without using it, leave the context alone. */
	EXPECT_OK(it_map_fixed(fd, ioas, pbuf, SZ_64K, 0x100000));
	pid = fork_or_die();
	if (pid == 0)
		_exit(0);
	expect_child_ok(pid, "child exiting at once");
	pid = fork_or_die();
	if (pid == 0)
		_exit(close(fd) == 0 ? 0 : 1);
	expect_child_ok(pid, "child closing the fd unused");
	/* ... and one that uses it, then exits without closing. */
	pid = fork_or_die();
	if (pid == 0) {
		it_set_role("child");
		uint32_t id = 0;
		if (EXPECT_OK(it_ioas_alloc(fd, &id)))
			EXPECT_EQ(2, id);
		_exit(it_finish());
	}
	expect_child_ok(pid, "child exiting without close");
	EXPECT_OK(it_destroy(fd, 2));
	if (EXPECT_OK(it_unmap(fd, ioas, 0x100000, SZ_64K, &unmapped)))
		EXPECT_EQ(SZ_64K, unmapped);
	EXPECT_OK(it_destroy(fd, ioas));
	EXPECT_OK(close(fd));
}

/* Parent and child allocate in the same context at the same time: every id
 * is given once. */
static void test_concurrent_same_context(void)
{
	enum { N = 100 };
	int fd = it_open(0);
	struct it_event go, ids;
	it_event_init(&go);
	it_event_init(&ids);

	pid_t pid = fork_or_die();
	if (pid == 0) {
		it_set_role("child");
		it_event_wait(&go, 60);
		for (int i = 0; i < N; i++) {
			uint32_t id = 0;
			if (!EXPECT_OK(it_ioas_alloc(fd, &id)))
				id = 0;
			it_event_signal(&ids, id);
		}
		_exit(it_finish());
	}
	it_event_signal(&go, 1);
	bool seen[2 * N + 1] = { false };
	for (int i = 0; i < N; i++) {
		uint32_t id = 0;
		if (EXPECT_OK(it_ioas_alloc(fd, &id)) && id >= 1 && id <= 2 * N) {
			if (seen[id])
				IT_FAIL("id %u given twice", id);
			seen[id] = true;
		} else if (id) {
			IT_FAIL("id %u out of 1..%d", id, 2 * N);
		}
	}
	for (int i = 0; i < N; i++) {
		uint64_t id = it_event_wait(&ids, 60);
		if (id >= 1 && id <= 2 * N) {
			if (seen[id])
				IT_FAIL("id %llu given twice", (unsigned long long)id);
			seen[id] = true;
		} else {
			IT_FAIL("child got id %llu", (unsigned long long)id);
		}
	}
	expect_child_ok(pid, "child allocating concurrently");
	for (uint32_t id = 1; id <= 2 * N; id++)
		if (seen[id])
			EXPECT_OK(it_destroy(fd, id));
	EXPECT_ERRNO(ENOENT, it_destroy(fd, 2 * N + 1));
	it_event_close(&go);
	it_event_close(&ids);
	EXPECT_OK(close(fd));
}

/* The parent closes its fd first: the child's inherited reference keeps the
 * context, with the parent's objects, alive. */
static void test_parent_closes_first(void)
{
	int fd = it_open(0);
	uint32_t ioas = it_must_alloc(fd);
	EXPECT_OK(it_map_fixed(fd, ioas, pbuf, SZ_64K, 0x100000));
	struct it_event closed;
	it_event_init(&closed);

	pid_t pid = fork_or_die();
	if (pid == 0) {
		it_set_role("child");
		it_event_wait(&closed, 60);
		uint64_t unmapped = 0;
		if (EXPECT_OK(it_unmap(fd, ioas, 0x100000, SZ_64K, &unmapped)))
			EXPECT_EQ(SZ_64K, unmapped);
		EXPECT_OK(it_destroy(fd, ioas));
		EXPECT_OK(close(fd));
		_exit(it_finish());
	}
	EXPECT_OK(close(fd));
	it_event_signal(&closed, 1);
	expect_child_ok(pid, "child outliving the parent's close");
	it_event_close(&closed);
}

/* Objects destroyed by the child are gone for the parent too. */
static void test_child_destroys(void)
{
	int fd = it_open(0);
	uint32_t a = it_must_alloc(fd), b = it_must_alloc(fd);
	pid_t pid = fork_or_die();
	if (pid == 0) {
		it_set_role("child");
		EXPECT_OK(it_destroy(fd, b));
		_exit(it_finish());
	}
	expect_child_ok(pid, "child destroying");
	EXPECT_ERRNO(ENOENT, it_destroy(fd, b));
	EXPECT_OK(it_destroy(fd, a));
	EXPECT_OK(close(fd));
}

/* exec: the fd number stays usable in the new program (not O_CLOEXEC), and
 * is gone with O_CLOEXEC. */
static void test_exec(void)
{
	int fd = it_open(0);
	int cloexec_fd = it_open(O_CLOEXEC);
	uint32_t ioas = it_must_alloc(fd);
	EXPECT_OK(it_map_fixed(fd, ioas, pbuf, SZ_64K, 0x100000));
	uint32_t other = it_must_alloc(cloexec_fd);

	char fdnum[16], idnum[16], cfdnum[16];
	snprintf(fdnum, sizeof(fdnum), "%d", fd);
	snprintf(idnum, sizeof(idnum), "%u", ioas);
	snprintf(cfdnum, sizeof(cfdnum), "%d", cloexec_fd);

	pid_t pid = fork_or_die();
	if (pid == 0) {
		char *args[] = { (char *)helper, "use", fdnum, idnum, "0x110000", "2", NULL };
		execv(helper, args);
		fprintf(stderr, "execv(%s): %s\n", helper, it_errname(errno));
		_exit(127);
	}
	expect_child_ok(pid, "exec'ed helper using the fd");
	uint64_t unmapped = 0;
	if (EXPECT_OK(it_unmap(fd, ioas, 0x100000, 2 * SZ_64K, &unmapped)))
		EXPECT_EQ(2 * SZ_64K, unmapped);
	EXPECT_OK(it_destroy(fd, 2));

	pid = fork_or_die();
	if (pid == 0) {
		char *args[] = { (char *)helper, "closed", cfdnum, NULL };
		execv(helper, args);
		fprintf(stderr, "execv(%s): %s\n", helper, it_errname(errno));
		_exit(127);
	}
	expect_child_ok(pid, "exec'ed helper, fd O_CLOEXEC");
	/* The parent's O_CLOEXEC fd is untouched by the child's exec. */
	EXPECT_OK(it_destroy(cloexec_fd, other));
	EXPECT_OK(close(cloexec_fd));
	EXPECT_OK(it_destroy(fd, ioas));
	EXPECT_OK(close(fd));
}

/* A grandchild (fork of a fork) still reaches the same context. */
static void test_grandchild(void)
{
	int fd = it_open(0);
	uint32_t ioas = it_must_alloc(fd);
	pid_t pid = fork_or_die();
	if (pid == 0) {
		it_set_role("child");
		uint32_t id = 0;
		if (EXPECT_OK(it_ioas_alloc(fd, &id)))
			EXPECT_EQ(2, id);
		pid_t gpid = fork_or_die();
		if (gpid == 0) {
			it_set_role("grandchild");
			uint32_t gid = 0;
			if (EXPECT_OK(it_ioas_alloc(fd, &gid)))
				EXPECT_EQ(3, gid);
			EXPECT_OK(it_destroy(fd, ioas));
			_exit(it_finish());
		}
		expect_child_ok(gpid, "grandchild");
		_exit(it_finish());
	}
	expect_child_ok(pid, "child forking a grandchild");
	EXPECT_ERRNO(ENOENT, it_destroy(fd, ioas));
	EXPECT_OK(it_destroy(fd, 2));
	EXPECT_OK(it_destroy(fd, 3));
	EXPECT_OK(close(fd));
}

int main(int argc, char **argv)
{
	it_init(argc, argv);
	if (argc != 2)
		IT_FATAL("usage: %s PATH_OF_it_exec_helper", argv[0]);
	helper = argv[1];
	pbuf = it_buffer(SZ_64K);

	test_child_shares_context();
	test_concurrent_same_context();
	test_parent_closes_first();
	test_child_destroys();
	test_exec();
	test_grandchild();
	return it_finish();
}
