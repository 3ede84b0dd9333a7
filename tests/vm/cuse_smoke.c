/* SPDX-License-Identifier: MIT */
/*
 * cuse_smoke: a small iommufd client for the CUSE test in the VM
 * (tests/vm/cuse_suite.sh). Plain C against the kernel's own
 * <linux/iommufd.h>; the device is $IOASID_TEST_DEVICE (default /dev/ioasid).
 *
 *   cuse_smoke basic              IOAS alloc/ranges/map/copy/unmap/destroy and
 *                                 a few errno checks; exit 0 when all pass
 *   cuse_smoke unpriv             the same, and first checks that we are not root
 *   cuse_smoke threads            one open, ioctls from 4 threads at once (the
 *                                 kernel names the calling thread, a TID,
 *                                 not the process)
 *   cuse_smoke retry              what works when the daemon cannot reach
 *                                 our memory (it lives in a pid namespace
 *                                 that does not see us: FUSE_IOCTL_RETRY only)
 *   cuse_smoke enotty-null        unknown ioctls with a NULL argument: ENOTTY
 *   cuse_smoke hold READY         open, map some memory, create READY, then
 *                                 wait forever (to be SIGKILLed)
 *   cuse_smoke churn READY        open, then map and unmap in a loop forever;
 *                                 READY after the first 100 rounds (to be
 *                                 SIGKILLed while an ioctl is likely in flight)
 *   cuse_smoke gone PID           the daemon's status report (IOASID_EMU_STATUS,
 *                                 all contexts) no longer lists PID (bounded
 *                                 retry: the FUSE release is asynchronous)
 *   cuse_smoke orphan READY GO    open, map, create READY, wait (bounded) for
 *                                 GO to exist, then expect the next ioctl to
 *                                 fail with ENOTCONN (the daemon was killed)
 *
 * Exit: 0 pass, 1 fail, 77 skip, 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>

#include <ioasid/emu.h>

#define PAGE 4096ul

static int failures;
static const char *device;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "cuse_smoke[%d]: FAIL: ", (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	failures++;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "cuse_smoke[%d]: ", (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* rc/errno of one call, checked against an expectation. */
#define CHECK_OK(expr)                                                          \
	__extension__({                                                         \
		errno = 0;                                                      \
		int rc_ = (expr);                                               \
		int err_ = errno;                                               \
		if (rc_ != 0)                                                   \
			fail("%s:%d: %s: expected 0, got %d (%s)", __FILE__,    \
			     __LINE__, #expr, rc_, strerror(err_));             \
		rc_ == 0;                                                       \
	})
#define CHECK_ERRNO(want, expr)                                                 \
	__extension__({                                                         \
		errno = 0;                                                      \
		int rc_ = (expr);                                               \
		int err_ = errno;                                               \
		bool ok_ = rc_ == -1 && err_ == (want);                         \
		if (!ok_)                                                       \
			fail("%s:%d: %s: expected -1 (%s), got %d (%s)",        \
			     __FILE__, __LINE__, #expr, strerror(want), rc_,    \
			     rc_ == -1 ? strerror(err_) : "no error");          \
		ok_;                                                            \
	})
#define CHECK_EQ(want, got)                                                     \
	__extension__({                                                         \
		unsigned long long w_ = (want), g_ = (got);                     \
		if (w_ != g_)                                                   \
			fail("%s:%d: %s: expected %#llx, got %#llx", __FILE__,  \
			     __LINE__, #got, w_, g_);                           \
		w_ == g_;                                                       \
	})

static int open_device(void)
{
	int fd = open(device, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fail("open(%s): %s", device, strerror(errno));
		exit(1);
	}
	return fd;
}

static int ioas_alloc(int fd, uint32_t *id)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	int rc = ioctl(fd, IOMMU_IOAS_ALLOC, &cmd);
	if (rc == 0)
		*id = cmd.out_ioas_id;
	return rc;
}

static int ioas_map(int fd, uint32_t ioas, uint32_t flags, void *va, uint64_t length,
		    uint64_t *iova)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = flags | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = length,
		.iova = *iova,
	};
	int rc = ioctl(fd, IOMMU_IOAS_MAP, &cmd);
	if (rc == 0)
		*iova = cmd.iova;
	return rc;
}

static int ioas_unmap(int fd, uint32_t ioas, uint64_t iova, uint64_t length, uint64_t *out)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd), .ioas_id = ioas, .iova = iova, .length = length,
	};
	int rc = ioctl(fd, IOMMU_IOAS_UNMAP, &cmd);
	if (rc == 0)
		*out = cmd.length;
	return rc;
}

static int destroy(int fd, uint32_t id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };
	return ioctl(fd, IOMMU_DESTROY, &cmd);
}

static void *buffer(size_t length)
{
	void *p = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		fail("mmap(%zu): %s", length, strerror(errno));
		exit(1);
	}
	memset(p, 0x5a, length);
	return p;
}

static void create_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fail("create %s: %s", path, strerror(errno));
		exit(1);
	}
	close(fd);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run_basic(void)
{
	int fd = open_device();
	uint32_t ioas = 0, ioas2 = 0;

	if (!CHECK_OK(ioas_alloc(fd, &ioas)))
		return 1;
	CHECK_OK(ioas_alloc(fd, &ioas2));
	CHECK_EQ(ioas + 1, ioas2);

	/* Nothing attached: one range covering everything, alignment 1. */
	struct iommu_iova_range ranges[4];
	struct iommu_ioas_iova_ranges r = {
		.size = sizeof(r), .ioas_id = ioas, .num_iovas = 4,
		.allowed_iovas = (uintptr_t)ranges,
	};
	if (CHECK_OK(ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &r))) {
		CHECK_EQ(1, r.num_iovas);
		CHECK_EQ(1, r.out_iova_alignment);
		CHECK_EQ(0, ranges[0].start);
		CHECK_EQ(UINT64_MAX, ranges[0].last);
	}

	size_t len = 16 * PAGE;
	char *buf = buffer(len);
	uint64_t iova = 0x100000, auto_iova = 0, unmapped = 0;
	CHECK_OK(ioas_map(fd, ioas, IOMMU_IOAS_MAP_FIXED_IOVA, buf, len, &iova));
	CHECK_EQ(0x100000, iova);
	/* Same range again: busy. */
	CHECK_ERRNO(EEXIST, ioas_map(fd, ioas, IOMMU_IOAS_MAP_FIXED_IOVA, buf, len, &iova));
	CHECK_OK(ioas_map(fd, ioas, 0, buf, len, &auto_iova));
	if (auto_iova % PAGE)
		fail("automatic iova %#llx not page aligned", (unsigned long long)auto_iova);

	struct iommu_ioas_copy copy = {
		.size = sizeof(copy),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE,
		.dst_ioas_id = ioas2, .src_ioas_id = ioas,
		.length = len, .dst_iova = 0x200000, .src_iova = 0x100000,
	};
	CHECK_OK(ioctl(fd, IOMMU_IOAS_COPY, &copy));

	CHECK_OK(ioas_unmap(fd, ioas, 0x100000, len, &unmapped));
	CHECK_EQ(len, unmapped);
	CHECK_ERRNO(ENOENT, ioas_unmap(fd, ioas, 0x100000, len, &unmapped));
	/* Unmap all. */
	CHECK_OK(ioas_unmap(fd, ioas2, 0, UINT64_MAX, &unmapped));
	CHECK_EQ(len, unmapped);

	/* Kernel rules: bad size, non-zero flags, unknown id, unknown ioctl. */
	struct iommu_ioas_alloc small = { .size = 4 };
	CHECK_ERRNO(EINVAL, ioctl(fd, IOMMU_IOAS_ALLOC, &small));
	struct iommu_ioas_alloc flagged = { .size = sizeof(flagged), .flags = 1 };
	CHECK_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_IOAS_ALLOC, &flagged));
	CHECK_ERRNO(ENOENT, destroy(fd, 999999));
	CHECK_ERRNO(ENOTTY, ioctl(fd, _IO(IOMMUFD_TYPE, 0x7f), NULL));
	/* A bad argument pointer is EFAULT, not a daemon crash. */
	CHECK_ERRNO(EFAULT, ioctl(fd, IOMMU_IOAS_ALLOC, (void *)16));

	CHECK_OK(destroy(fd, ioas2));
	CHECK_OK(destroy(fd, ioas)); /* with an area still mapped */
	CHECK_ERRNO(ENOENT, destroy(fd, ioas));
	CHECK_OK(close(fd));
	munmap(buf, len);
	return failures ? 1 : 0;
}

struct thread_arg {
	int fd;
	uint32_t ioas;
	unsigned index;
	int failures;
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	size_t len = 4 * PAGE;
	char *buf = buffer(len);
	int before = __atomic_load_n(&failures, __ATOMIC_SEQ_CST);
	for (unsigned round = 0; round < 25; round++) {
		uint64_t iova = 0x10000000ull * (a->index + 1) + round * 0x100000, unmapped = 0;
		if (!CHECK_OK(ioas_map(a->fd, a->ioas, IOMMU_IOAS_MAP_FIXED_IOVA, buf, len, &iova)))
			break;
		/* Output through our own stack: written by the daemon into this
		 * thread's memory. */
		struct iommu_iova_range ranges[2];
		struct iommu_ioas_iova_ranges r = {
			.size = sizeof(r), .ioas_id = a->ioas, .num_iovas = 2,
			.allowed_iovas = (uintptr_t)ranges,
		};
		if (CHECK_OK(ioctl(a->fd, IOMMU_IOAS_IOVA_RANGES, &r)))
			CHECK_EQ(UINT64_MAX, ranges[0].last);
		if (!CHECK_OK(ioas_unmap(a->fd, a->ioas, iova, len, &unmapped)) ||
		    !CHECK_EQ(len, unmapped))
			break;
	}
	a->failures = __atomic_load_n(&failures, __ATOMIC_SEQ_CST) - before;
	return NULL;
}

static int run_threads(void)
{
	int fd = open_device();
	uint32_t ioas = 0;
	if (!CHECK_OK(ioas_alloc(fd, &ioas)))
		return 1;
	pthread_t threads[4];
	struct thread_arg args[4];
	for (unsigned i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ .fd = fd, .ioas = ioas, .index = i };
		int err = pthread_create(&threads[i], NULL, thread_main, &args[i]);
		if (err) {
			fail("pthread_create: %s", strerror(err));
			return 1;
		}
	}
	for (unsigned i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	/* Every area gone again: unmap-all finds nothing (and succeeds). */
	uint64_t unmapped = 1;
	if (CHECK_OK(ioas_unmap(fd, ioas, 0, UINT64_MAX, &unmapped)))
		CHECK_EQ(0, unmapped);
	CHECK_OK(destroy(fd, ioas));
	CHECK_OK(close(fd));
	return failures ? 1 : 0;
}

/* Only the struct itself is reachable by FUSE_IOCTL_RETRY: commands that
 * only read and write their struct work as on a kernel; IOAS_MAP may fail
 * with EFAULT (the daemon cannot check or later pin memory it cannot
 * reach; a kernel would take the call). */
static int run_retry(void)
{
	int fd = open_device();
	uint32_t ioas = 0, ioas2 = 0;
	if (!CHECK_OK(ioas_alloc(fd, &ioas)))
		return 1;
	CHECK_OK(ioas_alloc(fd, &ioas2));
	CHECK_EQ(ioas + 1, ioas2);

	/* Output written back into the struct, with an error: the count. */
	struct iommu_ioas_iova_ranges r = { .size = sizeof(r), .ioas_id = ioas };
	CHECK_ERRNO(EMSGSIZE, ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &r));
	CHECK_EQ(1, r.num_iovas);
	CHECK_EQ(1, r.out_iova_alignment);

	size_t len = 16 * PAGE;
	char *buf = buffer(len);
	uint64_t iova = 0x100000, unmapped = 0;
	errno = 0;
	int rc = ioas_map(fd, ioas, IOMMU_IOAS_MAP_FIXED_IOVA, buf, len, &iova);
	if (rc == 0) {
		note("IOAS_MAP works without access to our memory");
		CHECK_OK(ioas_unmap(fd, ioas, 0x100000, len, &unmapped));
		CHECK_EQ(len, unmapped);
	} else if (errno == EFAULT) {
		note("IOAS_MAP: EFAULT without access to our memory (known limitation)");
	} else {
		fail("IOAS_MAP: expected 0 or EFAULT, got %s", strerror(errno));
	}
	CHECK_ERRNO(ENOENT, ioas_unmap(fd, ioas, 0x100000, len, &unmapped));
	unmapped = 1;
	if (CHECK_OK(ioas_unmap(fd, ioas, 0, UINT64_MAX, &unmapped)))
		CHECK_EQ(0, unmapped);

	struct iommu_ioas_alloc small = { .size = 4 };
	CHECK_ERRNO(EINVAL, ioctl(fd, IOMMU_IOAS_ALLOC, &small));
	struct iommu_ioas_alloc flagged = { .size = sizeof(flagged), .flags = 1 };
	CHECK_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_IOAS_ALLOC, &flagged));
	CHECK_ERRNO(ENOENT, destroy(fd, 999999));
	uint32_t junk[8] = { sizeof(junk) };
	CHECK_ERRNO(ENOTTY, ioctl(fd, _IO(IOMMUFD_TYPE, 0x7f), junk));
	CHECK_OK(destroy(fd, ioas2));
	CHECK_OK(destroy(fd, ioas));
	CHECK_OK(close(fd));
	return failures ? 1 : 0;
}

/* An unknown command with a NULL argument: ENOTTY, as the kernel answers
 * before it reads anything. */
static int run_enotty_null(void)
{
	int fd = open_device();
	CHECK_ERRNO(ENOTTY, ioctl(fd, _IO(IOMMUFD_TYPE, 0x7f), NULL));
	CHECK_ERRNO(ENOTTY, ioctl(fd, _IO('x', 0x01), NULL));
	CHECK_OK(close(fd));
	return failures ? 1 : 0;
}

/* Opens, allocates and maps some areas; the fd stays open. */
static int setup_mappings(void)
{
	int fd = open_device();
	uint32_t ioas = 0;
	if (!CHECK_OK(ioas_alloc(fd, &ioas)))
		exit(1);
	char *buf = buffer(64 * PAGE);
	for (unsigned i = 0; i < 16; i++) {
		uint64_t iova = 0x1000000 + i * 0x10000;
		if (!CHECK_OK(ioas_map(fd, ioas, IOMMU_IOAS_MAP_FIXED_IOVA, buf + i * 4 * PAGE,
				       4 * PAGE, &iova)))
			exit(1);
	}
	return fd;
}

static __attribute__((noreturn)) void run_hold(const char *ready)
{
	setup_mappings();
	create_file(ready);
	for (;;)
		pause();
}

static int run_churn(const char *ready)
{
	int fd = setup_mappings();
	uint32_t ioas = 0;
	if (!CHECK_OK(ioas_alloc(fd, &ioas)))
		return 1;
	char *buf = buffer(8 * PAGE);
	for (unsigned long round = 0;; round++) {
		uint64_t iova = 0, unmapped = 0;
		if (!CHECK_OK(ioas_map(fd, ioas, 0, buf, 8 * PAGE, &iova)) ||
		    !CHECK_OK(ioas_unmap(fd, ioas, iova, 8 * PAGE, &unmapped)))
			return 1;
		if (round == 100)
			create_file(ready);
	}
}

static int run_orphan(const char *ready, const char *go)
{
	int fd = setup_mappings();
	create_file(ready);
	double end = now() + 60;
	struct stat st;
	while (stat(go, &st) != 0) {
		if (now() > end) {
			fail("%s did not appear within 60 s", go);
			return 1;
		}
		usleep(20000);
	}
	uint32_t ioas;
	double t0 = now();
	errno = 0;
	int rc = ioas_alloc(fd, &ioas);
	int err = errno;
	note("ioctl after the daemon died: rc %d errno %d (%s) after %.3f s", rc, err,
	     rc ? strerror(err) : "-", now() - t0);
	if (rc != -1 || err != ENOTCONN)
		fail("IOMMU_IOAS_ALLOC on an fd of a dead daemon: expected -1 (%s), got %d (%s)",
		     strerror(ENOTCONN), rc, rc ? strerror(err) : "no error");
	CHECK_OK(close(fd));
	return failures ? 1 : 0;
}

/* Is `pid` among the numbers of a "pids" array of the report? Crude but
 * enough: the report is our own JSON. */
static bool report_lists_pid(const char *json, long pid)
{
	const char *p = json;
	while ((p = strstr(p, "\"pids\"")) != NULL) {
		const char *open = strchr(p, '[');
		const char *close = open ? strchr(open, ']') : NULL;
		if (!close)
			return false;
		for (const char *q = open + 1; q < close;) {
			char *end;
			long v = strtol(q, &end, 10);
			if (end == q) {
				q++;
				continue;
			}
			if (v == pid)
				return true;
			q = end;
		}
		p = close;
	}
	return false;
}

static int run_gone(long pid)
{
	int fd = open_device();
	size_t cap = 1 << 16;
	char *buf = malloc(cap + 1);
	double end = now() + 20;
	for (;;) {
		struct ioasid_emu_status st = {
			.size = sizeof(st), .flags = IOASID_STATUS_ALL,
			.buf_len = (uint32_t)cap, .buf_uptr = (uintptr_t)buf,
		};
		if (ioctl(fd, IOASID_EMU_STATUS, &st) != 0) {
			if (errno == ENOTTY) {
				note("SKIP: IOASID_EMU_STATUS not answered (ENOTTY); cannot check contexts");
				return 77;
			}
			if (errno == EMSGSIZE && st.out_len > cap) {
				cap = st.out_len;
				buf = realloc(buf, cap + 1);
				continue;
			}
			fail("IOASID_EMU_STATUS: %s", strerror(errno));
			return 1;
		}
		buf[st.out_len < cap ? st.out_len : cap] = 0;
		if (!report_lists_pid(buf, pid))
			break;
		if (now() > end) {
			fail("the context of killed pid %ld is still listed after 20 s:\n%s", pid, buf);
			return 1;
		}
		usleep(50000);
	}
	note("no context lists pid %ld any more", pid);
	close(fd);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stderr, NULL, _IOLBF, 0);
	device = getenv("IOASID_TEST_DEVICE");
	if (!device || !*device)
		device = "/dev/ioasid";
	const char *mode = argc > 1 ? argv[1] : "";

	if (!strcmp(mode, "basic") && argc == 2)
		return run_basic();
	if (!strcmp(mode, "unpriv") && argc == 2) {
		if (geteuid() == 0 || getuid() == 0) {
			fail("unpriv: running as root (uid %d euid %d)", (int)getuid(), (int)geteuid());
			return 1;
		}
		note("uid %d gid %d", (int)getuid(), (int)getgid());
		return run_basic();
	}
	if (!strcmp(mode, "threads") && argc == 2)
		return run_threads();
	if (!strcmp(mode, "retry") && argc == 2)
		return run_retry();
	if (!strcmp(mode, "enotty-null") && argc == 2)
		return run_enotty_null();
	if (!strcmp(mode, "hold") && argc == 3)
		run_hold(argv[2]);
	if (!strcmp(mode, "churn") && argc == 3)
		return run_churn(argv[2]);
	if (!strcmp(mode, "orphan") && argc == 4)
		return run_orphan(argv[2], argv[3]);
	if (!strcmp(mode, "gone") && argc == 3)
		return run_gone(strtol(argv[2], NULL, 10));
	fprintf(stderr, "usage: %s basic|unpriv|threads|retry|enotty-null|hold READY|churn READY|orphan READY GO|gone PID\n", argv[0]);
	return 2;
}
