/* SPDX-License-Identifier: MIT */
/*
 * it_two_procs: several processes, each with its own open of the device,
 * working at the same time. Each open is a context of its own (the kernel's
 * iommufd_fops_open() makes a new iommufd_ctx per open): ids start at 1 in
 * every one, IOVA allocation is independent, and no process sees another's
 * areas.
 *
 * usage: it_two_procs [nprocs] [rounds]
 */
#define _GNU_SOURCE
#include "it_common.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
#define FIXED_RW (IOMMU_IOAS_MAP_FIXED_IOVA | RW)
#define SZ_64K 0x10000ul

static int child(int index, int rounds, struct it_event *ready, struct it_event *go)
{
	it_set_role("proc%d", index);
	char *buf = it_buffer(16 * SZ_64K);
	int fd = it_open(0);
	uint32_t id = 0;

	if (EXPECT_OK(it_ioas_alloc(fd, &id)))
		EXPECT_EQ(1, id);
	uint32_t a = id;
	if (EXPECT_OK(it_ioas_alloc(fd, &id)))
		EXPECT_EQ(2, id);
	uint32_t b = id;
	long long ctx = it_context_id(fd);

	/* Everyone is set up: start together. */
	it_event_signal(ready, (uint64_t)ctx);
	it_event_wait(go, 60);

	uint64_t total = 0;
	for (int r = 0; r < rounds && !it_failures; r++) {
		uint64_t iova = 0x1000000 + (uint64_t)(r % 16) * SZ_64K;
		/* Every process maps the same IOVAs: no EEXIST across contexts. */
		if (!EXPECT_OK(it_map_fixed(fd, a, buf + (r % 16) * SZ_64K, SZ_64K, iova)))
			break;
		/* First fit in an empty IOAS, every time: the alignment is
		 * min(64 KiB, lowest set bit of the source's user_va). */
		uintptr_t va = (uintptr_t)(buf + (r % 16) * SZ_64K);
		uint64_t expect = va & -va;
		if (expect > SZ_64K)
			expect = SZ_64K;
		uint64_t dst = 0;
		if (EXPECT_OK(it_copy(fd, RW, b, a, SZ_64K, &dst, iova)))
			EXPECT_EQ(expect, dst);
		uint64_t unmapped = 0;
		if (EXPECT_OK(it_unmap(fd, b, dst, SZ_64K, &unmapped)))
			EXPECT_EQ(SZ_64K, unmapped);
		/* Keep a growing set of areas in `a` for a while, then drop them. */
		if (r % 16 == 15) {
			if (EXPECT_OK(it_unmap(fd, a, 0, UINT64_MAX, &unmapped)))
				EXPECT_EQ(16 * SZ_64K, unmapped);
		}
		/* Objects come and go: the lowest free id is always 3. */
		if (EXPECT_OK(it_ioas_alloc(fd, &id))) {
			EXPECT_EQ(3, id);
			EXPECT_OK(it_destroy(fd, id));
		}
		total++;
	}
	/* Only this process's areas are in its IOAS. */
	uint64_t unmapped = 0;
	if (EXPECT_OK(it_unmap(fd, a, 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ((total % 16) * SZ_64K, unmapped);
	EXPECT_ERRNO(ENOENT, it_destroy(fd, 3));
	EXPECT_OK(it_destroy(fd, b));
	EXPECT_OK(it_destroy(fd, a));
	EXPECT_OK(close(fd));
	return it_finish();
}

int main(int argc, char **argv)
{
	it_init(argc, argv);
	int nprocs = argc > 1 ? atoi(argv[1]) : 2;
	int rounds = argc > 2 ? atoi(argv[2]) : 200;
	if (nprocs < 2 || nprocs > 64 || rounds < 1)
		IT_FATAL("usage: %s [nprocs 2..64] [rounds]", argv[0]);

	struct it_event ready, go;
	it_event_init(&ready);
	it_event_init(&go);
	pid_t pids[64];
	for (int i = 0; i < nprocs; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			IT_FATAL("fork: %s", it_errname(errno));
		if (pids[i] == 0)
			_exit(child(i, rounds, &ready, &go));
	}

	/* Every process has its own context. */
	long long ctx[64];
	for (int i = 0; i < nprocs; i++) {
		ctx[i] = (long long)it_event_wait(&ready, 60);
		for (int j = 0; j < i; j++)
			if (ctx[i] == ctx[j])
				IT_FAIL("two processes share context %lld", ctx[i]);
	}
	for (int i = 0; i < nprocs; i++)
		it_event_signal(&go, 1);

	for (int i = 0; i < nprocs; i++) {
		int status = it_wait_child(pids[i], 300);
		if (status != 0)
			IT_FAIL("process %d (pid %d) ended with status %d", i, (int)pids[i], status);
	}
	return it_finish();
}
