/* SPDX-License-Identifier: MIT */
/*
 * it_client_killed: a client is SIGKILLed while it holds objects and
 * mappings, in the middle of a stream of ioctls. As with the kernel (the
 * file's release frees the context when the killed process's files are
 * closed), its context must go away: the IOASID_EMU_STATUS report stops
 * listing it within a bounded wait. Another client, busy at the same time,
 * is unaffected.
 *
 * usage: it_client_killed [rounds]
 */
#define _GNU_SOURCE
#include "it_common.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
#define FIXED_RW (IOMMU_IOAS_MAP_FIXED_IOVA | RW)
#define SZ_64K 0x10000ul
#define SZ_1M 0x100000ul

/* The victim: sets up state, reports its context, then churns. */
static int victim(int round, struct it_event *ready)
{
	it_set_role("victim%d", round);
	char *buf = it_buffer(16 * SZ_64K);
	int fd = it_open(0);
	uint32_t a = it_must_alloc(fd), b = it_must_alloc(fd), c = it_must_alloc(fd);
	for (int i = 0; i < 16; i++)
		ASSERT_OK(it_map_fixed(fd, a, buf + i * SZ_64K, SZ_64K, SZ_1M + i * SZ_64K));
	uint64_t iova = 0;
	ASSERT_OK(it_copy(fd, RW, b, a, 16 * SZ_64K, &iova, SZ_1M));
	(void)c;
	long long ctx = it_context_id(fd);
	if (ctx < 0)
		_exit(it_finish());
	it_event_signal(ready, (uint64_t)ctx);
	/* Busy until killed: the kill lands anywhere in here, possibly with a
	 * request on its way to the daemon. */
	for (unsigned long i = 0;; i++) {
		uint32_t id;
		uint64_t dst = 0;
		if (it_ioas_alloc(fd, &id) == 0) {
			it_copy(fd, RW, id, a, SZ_64K, &dst, SZ_1M + (i % 16) * SZ_64K);
			it_destroy(fd, id);
		}
		it_unmap(fd, b, 0, UINT64_MAX, NULL);
		iova = 0;
		it_copy(fd, RW, b, a, 16 * SZ_64K, &iova, SZ_1M);
	}
}

static bool wait_context_gone(int fd, long long ctx, const char *who)
{
	/* 30 s at most. */
	if (it_wait_context_gone(fd, ctx, 3000))
		return true;
	IT_FAIL("context %lld of %s still listed 30 s after the process was killed", ctx, who);
	return false;
}

int main(int argc, char **argv)
{
	it_init(argc, argv);
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	char *buf = it_buffer(SZ_64K);

	/* The bystander: this process, with a context of its own. */
	int fd = it_open(0);
	uint32_t mine = it_must_alloc(fd);
	EXPECT_OK(it_map_fixed(fd, mine, buf, SZ_64K, SZ_1M));
	long long my_ctx = it_context_id(fd);
	if (my_ctx < 0)
		return it_finish();

	for (int round = 0; round < rounds && !it_failures; round++) {
		struct it_event ready;
		it_event_init(&ready);
		pid_t pid = fork();
		if (pid < 0)
			IT_FATAL("fork: %s", it_errname(errno));
		if (pid == 0) {
			/* The victim must not hold the bystander's file: the
			 * kill would then only drop a reference. */
			close(fd);
			_exit(victim(round, &ready));
		}
		long long ctx = (long long)it_event_wait(&ready, 60);
		it_event_close(&ready);

		/* The victim's context is there, listing its pid and objects.
		 * A context in the middle of an ioctl may be reported "busy",
		 * without details: ask again then (bounded). */
		struct it_json *report = NULL;
		for (int attempt = 0; attempt < 100; attempt++) {
			it_json_free(report);
			report = it_status_json(fd, true);
			const struct it_json *vc = it_status_context_by_id(report, ctx);
			const struct it_json *busy = it_json_get(vc, "busy");
			if (!busy || busy->type != IT_JSON_BOOL || !busy->boolean)
				break;
		}
		if (report) {
			const struct it_json *vc = it_status_context_by_id(report, ctx);
			if (!vc) {
				IT_FAIL("victim's context %lld not in the status report", ctx);
			} else {
				if (it_status_context_by_pid(report, pid) != vc)
					IT_FAIL("victim's context %lld does not list pid %d", ctx,
						(int)pid);
				const struct it_json *objects = it_json_get(vc, "objects");
				if (!objects || objects->type != IT_JSON_ARRAY || objects->count < 3)
					IT_FAIL("victim's context %lld: expected >= 3 objects", ctx);
			}
			if (!it_status_context_by_id(report, my_ctx))
				IT_FAIL("own context %lld not in the status report", my_ctx);
			it_json_free(report);
		}

		/* The bystander keeps working while the victim churns... */
		for (int i = 0; i < 20; i++) {
			uint32_t id = 0;
			if (EXPECT_OK(it_ioas_alloc(fd, &id))) {
				EXPECT_EQ(2, id);
				uint64_t iova = 0;
				EXPECT_OK(it_copy(fd, RW, id, mine, SZ_64K, &iova, SZ_1M));
				EXPECT_OK(it_destroy(fd, id));
			}
		}
		if (kill(pid, SIGKILL))
			IT_FAIL("kill: %s", it_errname(errno));
		int status = it_wait_child(pid, 30);
		if (status != 128 + SIGKILL)
			IT_FAIL("victim ended with status %d, not by SIGKILL", status);

		/* ... and after the kill its context goes away. */
		wait_context_gone(fd, ctx, "the killed victim");
	}

	/* The bystander's objects are untouched. */
	struct it_json *report = it_status_json(fd, true);
	if (report) {
		if (!it_status_context_by_id(report, my_ctx))
			IT_FAIL("own context %lld missing at the end", my_ctx);
		it_json_free(report);
	}
	EXPECT_ERRNO(ENOENT, it_destroy(fd, 2));
	uint64_t unmapped = 0;
	if (EXPECT_OK(it_unmap(fd, mine, 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ(SZ_64K, unmapped);
	EXPECT_OK(it_destroy(fd, mine));
	EXPECT_OK(close(fd));
	return it_finish();
}
