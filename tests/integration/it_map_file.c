/* SPDX-License-Identifier: MIT */
/*
 * it_map_file: IOMMU_IOAS_MAP_FILE (Linux 6.13) of a memfd through the shim
 * against the real daemon. The daemon takes its own reference to the file
 * (pidfd_getfd()) as the kernel's fget() does, so the mapping stays whole
 * after the program closes the memfd, unmaps it, or exits: COPY of it works
 * and UNMAP reports its full length. Answers are those of 6.13's ioas.c
 * iommufd_ioas_map_file() / io_pagetable.c iopt_map_file_pages() /
 * pages.c iopt_alloc_file_pages(). No device is bound, so nothing is pinned
 * at MAP time: a file that cannot be pinned, or a range past its end, is
 * only refused when pinned.
 */
#define _GNU_SOURCE
#include "it_common.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Not in the 6.12 header these programs build against: the struct and the
 * number of Linux 6.13's include/uapi/linux/iommufd.h.
 */
#ifndef IOMMU_IOAS_MAP_FILE
struct iommu_ioas_map_file {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__s32 fd;
	__aligned_u64 start;
	__aligned_u64 length;
	__aligned_u64 iova;
};
#define IOMMU_IOAS_MAP_FILE _IO(IOMMUFD_TYPE, 0x8f)
#endif
_Static_assert(sizeof(struct iommu_ioas_map_file) == 40, "6.13 layout");

#define RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
#define FIXED_RW (IOMMU_IOAS_MAP_FIXED_IOVA | RW)
#define NPAGES 16ul
#define LEN (NPAGES * IT_PAGE)
#define BAD_ID 999u

static int map_file(int fd, uint32_t ioas, uint32_t flags, int mfd, uint64_t start,
		    uint64_t length, uint64_t *iova)
{
	struct iommu_ioas_map_file cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.ioas_id = ioas,
		.fd = mfd,
		.start = start,
		.length = length,
		.iova = iova ? *iova : 0,
	};
	int rc = ioctl(fd, IOMMU_IOAS_MAP_FILE, &cmd);
	if (rc == 0 && iova)
		*iova = cmd.iova;
	return rc;
}

static int map_file_fixed(int fd, uint32_t ioas, int mfd, uint64_t start, uint64_t length,
			  uint64_t iova)
{
	return map_file(fd, ioas, FIXED_RW, mfd, start, length, &iova);
}

/* A memfd of `length` bytes, each page filled with its index. */
static int make_memfd(const char *name, size_t length)
{
	int mfd = memfd_create(name, MFD_CLOEXEC);
	if (mfd < 0)
		IT_FATAL("memfd_create: %s", it_errname(errno));
	if (ftruncate(mfd, (off_t)length) != 0)
		IT_FATAL("ftruncate: %s", it_errname(errno));
	unsigned char *view = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (view == MAP_FAILED)
		IT_FATAL("mmap: %s", it_errname(errno));
	for (size_t i = 0; i < length; i++)
		view[i] = (unsigned char)(i / IT_PAGE);
	munmap(view, length);
	return mfd;
}

/*
 * How many of the daemon's descriptors are open on the memfd `name`, from
 * /proc/<daemon>/fd; -1 when that cannot be read (then not checked).
 */
static int daemon_fds_on(const char *name)
{
	const char *pid = getenv("IOASID_TEST_DAEMON_PID");
	if (!pid)
		return -1;
	char dir_path[64], want[128];
	snprintf(dir_path, sizeof(dir_path), "/proc/%s/fd", pid);
	snprintf(want, sizeof(want), "/memfd:%s ", name);
	DIR *dir = opendir(dir_path);
	if (!dir)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(dir))) {
		char path[384], target[256] = { 0 };
		snprintf(path, sizeof(path), "%s/%s", dir_path, e->d_name);
		if (readlink(path, target, sizeof(target) - 1) > 0 && strstr(target, want))
			n++;
	}
	closedir(dir);
	return n;
}

#define EXPECT_DAEMON_FDS(name, n)                                            \
	do {                                                                   \
		int it_have_ = daemon_fds_on(name);                            \
		if (it_have_ >= 0)                                             \
			EXPECT_EQ((n), it_have_);                              \
	} while (0)

/* --- the check order of iommufd_ioas_map_file() ------------------------- */

static void test_errors(void)
{
	int fd = it_open(0);
	uint32_t ioas = it_must_alloc(fd);
	int mfd = make_memfd("it-map-file-errors", LEN);
	uint64_t iova = 0x100000;

	/* Flags beyond the three: EOPNOTSUPP before anything else. */
	EXPECT_ERRNO(EOPNOTSUPP, map_file(fd, BAD_ID, RW | (1u << 3), -1, 0, 0, &iova));
	/* iova or length >= ULONG_MAX: EOVERFLOW before the R/W check. */
	iova = UINT64_MAX;
	EXPECT_ERRNO(EOVERFLOW, map_file(fd, BAD_ID, 0, -1, 0, IT_PAGE, &iova));
	iova = 0x100000;
	EXPECT_ERRNO(EOVERFLOW, map_file(fd, BAD_ID, 0, -1, 0, UINT64_MAX, &iova));
	/* Neither READABLE nor WRITEABLE: EINVAL before the IOAS lookup. */
	EXPECT_ERRNO(EINVAL, map_file(fd, BAD_ID, IOMMU_IOAS_MAP_FIXED_IOVA, -1, 0, IT_PAGE, &iova));
	/* No such IOAS: ENOENT before the descriptor. */
	EXPECT_ERRNO(ENOENT, map_file(fd, BAD_ID, FIXED_RW, -1, 0, IT_PAGE, &iova));
	/* A descriptor the program does not have: EBADF, before the range
	 * checks (6.13 takes the file first). */
	EXPECT_ERRNO(EBADF, map_file_fixed(fd, ioas, -1, 0, IT_PAGE, 0x100000));
	EXPECT_ERRNO(EBADF, map_file_fixed(fd, ioas, 1000, UINT64_MAX, 2, 0x100000));
	/* start + length - 1 wraps: EOVERFLOW. Zero length: EINVAL. */
	EXPECT_ERRNO(EOVERFLOW, map_file_fixed(fd, ioas, mfd, UINT64_MAX, 2, 0x100000));
	EXPECT_ERRNO(EINVAL, map_file_fixed(fd, ioas, mfd, 0, 0, 0x100000));
	/* WRITEABLE through a read-only descriptor: EPERM (6.13 itself pins
	 * it for write anyway; the fix for that refuses it, and the daemon
	 * cannot write through it). READABLE alone is fine. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	int ro = open(path, O_RDONLY | O_CLOEXEC);
	if (ro < 0)
		IT_FATAL("reopen read-only: %s", it_errname(errno));
	EXPECT_ERRNO(EPERM, map_file_fixed(fd, ioas, ro, 0, IT_PAGE, 0x100000));
	iova = 0x100000;
	EXPECT_OK(map_file(fd, ioas, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, ro, 0,
			   IT_PAGE, &iova));
	close(ro);
	/* Then IOAS_MAP's placement rules: an existing area is never replaced. */
	EXPECT_ERRNO(EEXIST, map_file_fixed(fd, ioas, mfd, 0, IT_PAGE, 0x100000));

	/* The struct's own size rules. */
	struct iommu_ioas_map_file short_cmd = { .size = 36, .flags = RW, .ioas_id = ioas,
						 .fd = mfd, .length = IT_PAGE };
	EXPECT_ERRNO(EINVAL, ioctl(fd, IOMMU_IOAS_MAP_FILE, &short_cmd));
	struct {
		struct iommu_ioas_map_file cmd;
		uint64_t tail;
	} longer = { .cmd = { .size = sizeof(longer), .flags = RW, .ioas_id = ioas, .fd = mfd,
			      .length = IT_PAGE },
		     .tail = 1 };
	EXPECT_ERRNO(E2BIG, ioctl(fd, IOMMU_IOAS_MAP_FILE, &longer));
	longer.tail = 0;
	if (EXPECT_OK(ioctl(fd, IOMMU_IOAS_MAP_FILE, &longer)))
		EXPECT_TRUE(longer.cmd.iova != 0 && longer.tail == 0);

	/* No domain: nothing is pinned at MAP time, so a pipe or a range past
	 * the end of the file maps (and would fail with EINVAL when pinned). */
	int ends[2];
	if (pipe2(ends, O_CLOEXEC) != 0)
		IT_FATAL("pipe2: %s", it_errname(errno));
	iova = 0x800000;
	EXPECT_OK(map_file(fd, ioas, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, ends[0],
			   0, IT_PAGE, &iova));
	EXPECT_OK(map_file_fixed(fd, ioas, mfd, LEN - IT_PAGE, 4 * IT_PAGE, 0x900000));
	close(ends[0]);
	close(ends[1]);

	close(mfd);
	EXPECT_OK(close(fd));
}

/* --- the mapping outlives the descriptor, the view and the process ------- */

static void test_outlives_fd(void)
{
	int fd = it_open(0);
	uint32_t a = it_must_alloc(fd), b = it_must_alloc(fd);
	const char *name = "it-map-file-lifetime";
	int mfd = make_memfd(name, LEN);
	void *view = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (view == MAP_FAILED)
		IT_FATAL("mmap: %s", it_errname(errno));

	EXPECT_OK(map_file_fixed(fd, a, mfd, 0, LEN, 0x100000));
	/* A second, automatic mapping of part of it: the daemon keeps one
	 * reference per mapping. */
	uint64_t iova = 0;
	if (EXPECT_OK(map_file(fd, a, RW, mfd, 4 * IT_PAGE, 4 * IT_PAGE, &iova)))
		EXPECT_TRUE(iova != 0 && iova % IT_PAGE == 0);
	EXPECT_DAEMON_FDS(name, 2);

	/* Everything of the program's goes away. */
	EXPECT_OK(munmap(view, LEN));
	EXPECT_OK(close(mfd));
	EXPECT_DAEMON_FDS(name, 2);

	/* The areas are whole: COPY finds the full range, UNMAP its length. */
	uint64_t dst = 0x4000000;
	EXPECT_OK(it_copy(fd, FIXED_RW, b, a, LEN, &dst, 0x100000));
	uint64_t unmapped = 0;
	if (EXPECT_OK(it_unmap(fd, a, 0x100000, LEN, &unmapped)))
		EXPECT_EQ(LEN, unmapped);
	if (EXPECT_OK(it_unmap(fd, a, iova, 4 * IT_PAGE, &unmapped)))
		EXPECT_EQ(4 * IT_PAGE, unmapped);
	/* B's copy still holds the first mapping's pages, and the file. */
	EXPECT_DAEMON_FDS(name, 1);
	if (EXPECT_OK(it_unmap(fd, b, 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ(LEN, unmapped);
	EXPECT_DAEMON_FDS(name, 0);
	EXPECT_OK(close(fd));
}

static void test_outlives_process(void)
{
	int fd = it_open(0);
	uint32_t a = it_must_alloc(fd), b = it_must_alloc(fd);
	const char *name = "it-map-file-child";

	/* A child maps a memfd of its own through the inherited device fd,
	 * then exits: the file lives on in the daemon. */
	pid_t child = fork();
	if (child < 0)
		IT_FATAL("fork: %s", it_errname(errno));
	if (child == 0) {
		it_set_role("child");
		int mfd = make_memfd(name, LEN);
		EXPECT_OK(map_file_fixed(fd, a, mfd, 0, LEN, 0x200000));
		_exit(it_finish());
	}
	EXPECT_EQ(0, it_wait_child(child, 60));
	EXPECT_DAEMON_FDS(name, 1);

	uint64_t dst = 0x200000;
	EXPECT_OK(it_copy(fd, FIXED_RW, b, a, LEN, &dst, 0x200000));
	uint64_t unmapped = 0;
	if (EXPECT_OK(it_unmap(fd, a, 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ(LEN, unmapped);
	if (EXPECT_OK(it_unmap(fd, b, 0x200000, LEN, &unmapped)))
		EXPECT_EQ(LEN, unmapped);
	EXPECT_DAEMON_FDS(name, 0);
	EXPECT_OK(close(fd));
}

int main(int argc, char **argv)
{
	it_init(argc, argv);
	test_errors();
	test_outlives_fd();
	test_outlives_process();
	return it_finish();
}
