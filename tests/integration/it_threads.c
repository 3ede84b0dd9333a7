/* SPDX-License-Identifier: MIT */
/*
 * it_threads: one fd used by several threads at once, as a VMM does.
 *
 * - Threads issue ioctls concurrently on the same fd; each works on its own
 *   IOAS and every answer is checked.
 * - Signals land on the threads all the time, with handlers installed
 *   without SA_RESTART: iommufd ioctls are not interruptible, so no call
 *   may fail with EINTR (the kernel finishes the ioctl, then delivers).
 * - The process forks while threads are in the middle of ioctls; the child
 *   (a single thread) uses the inherited fd at once and must not find a
 *   lock held by a thread it does not have.
 *
 * usage: it_threads [threads] [rounds] [forks]
 */
#define _GNU_SOURCE
#include "it_common.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
#define FIXED_RW (IOMMU_IOAS_MAP_FIXED_IOVA | RW)
#define SZ_64K 0x10000ul

static int fd;
static int rounds;
static char *buf;
static atomic_int running;
static atomic_long signals_seen;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

/* it_failures is a plain int: count under a lock from the threads. */
#define T_CHECK(cond, ...)                                                     \
	do {                                                                   \
		if (!(cond)) {                                                 \
			pthread_mutex_lock(&fail_lock);                        \
			IT_FAIL(__VA_ARGS__);                                  \
			pthread_mutex_unlock(&fail_lock);                      \
		}                                                              \
	} while (0)

static void on_signal(int sig)
{
	(void)sig;
	atomic_fetch_add(&signals_seen, 1);
}

static void *worker(void *arg)
{
	int index = (int)(intptr_t)arg;
	uint32_t ioas = 0;
	int rc = it_ioas_alloc(fd, &ioas);
	T_CHECK(rc == 0, "thread %d: IOAS_ALLOC: %s", index, it_errname(errno));
	if (rc)
		goto out;
	for (int r = 0; r < rounds; r++) {
		uint64_t iova = 0x1000000 + (uint64_t)(r % 8) * SZ_64K;
		rc = it_map_fixed(fd, ioas, buf + (size_t)index * SZ_64K, SZ_64K, iova);
		T_CHECK(rc == 0, "thread %d round %d: MAP: %s", index, r, it_errname(errno));
		uint64_t dst = 0x8000000 + (uint64_t)(r % 8) * SZ_64K;
		rc = it_copy(fd, FIXED_RW, ioas, ioas, SZ_64K, &dst, iova);
		T_CHECK(rc == 0, "thread %d round %d: COPY: %s", index, r, it_errname(errno));
		uint64_t unmapped = 0;
		rc = it_unmap(fd, ioas, iova, SZ_64K, &unmapped);
		T_CHECK(rc == 0 && unmapped == SZ_64K, "thread %d round %d: UNMAP: %s, %llu bytes",
			index, r, rc ? it_errname(errno) : "ok", (unsigned long long)unmapped);
		rc = it_unmap(fd, ioas, dst, SZ_64K, &unmapped);
		T_CHECK(rc == 0 && unmapped == SZ_64K, "thread %d round %d: UNMAP copy: %s",
			index, r, rc ? it_errname(errno) : "ok");
		/* An error path too: the area is gone. */
		rc = it_unmap(fd, ioas, iova, SZ_64K, NULL);
		T_CHECK(rc == -1 && errno == ENOENT, "thread %d round %d: UNMAP again: %d %s",
			index, r, rc, it_errname(errno));
		if (it_failures)
			break;
	}
	rc = it_destroy(fd, ioas);
	T_CHECK(rc == 0, "thread %d: DESTROY: %s", index, it_errname(errno));
out:
	atomic_fetch_sub(&running, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	it_init(argc, argv);
	int nthreads = argc > 1 ? atoi(argv[1]) : 4;
	rounds = argc > 2 ? atoi(argv[2]) : 300;
	int forks = argc > 3 ? atoi(argv[3]) : 10;
	if (nthreads < 1 || nthreads > 32 || rounds < 1 || forks < 0)
		IT_FATAL("usage: %s [threads 1..32] [rounds] [forks]", argv[0]);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		IT_FATAL("sigaction: %s", it_errname(errno));

	buf = it_buffer((size_t)nthreads * SZ_64K);
	fd = it_open(0);

	pthread_t threads[32];
	atomic_store(&running, nthreads);
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&threads[i], NULL, worker, (void *)(intptr_t)i))
			IT_FATAL("pthread_create failed");

	/* While they run: signals at them, and forks. */
	int forked = 0;
	for (unsigned long n = 0; atomic_load(&running) > 0; n++) {
		for (int i = 0; i < nthreads; i++)
			pthread_kill(threads[i], SIGUSR1);
		if (forked < forks && n % 50 == 25) {
			pid_t pid = fork();
			if (pid < 0)
				IT_FATAL("fork: %s", it_errname(errno));
			if (pid == 0) {
				it_set_role("child%d", forked);
				alarm(30);
				uint32_t id = 0;
				EXPECT_OK(it_ioas_alloc(fd, &id));
				EXPECT_OK(it_destroy(fd, id));
				EXPECT_OK(close(fd));
				_exit(it_failures ? 1 : 0);
			}
			int status = it_wait_child(pid, 30);
			if (status)
				IT_FAIL("child %d (forked while threads were in ioctls) ended with %d",
					forked, status);
			forked++;
		}
		struct timespec nap = { .tv_nsec = 200 * 1000 };
		nanosleep(&nap, NULL);
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	it_log("%ld signals delivered, %d forks", atomic_load(&signals_seen), forked);

	/* Every thread destroyed its IOAS: the context is empty again. */
	uint32_t id = 0;
	if (EXPECT_OK(it_ioas_alloc(fd, &id)))
		EXPECT_EQ(1, id);
	EXPECT_OK(close(fd));
	return it_finish();
}
