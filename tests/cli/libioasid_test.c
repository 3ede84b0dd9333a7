/* SPDX-License-Identifier: MIT */
/*
 * libioasid against a running ioasidd: every wrapper once, its errors, the
 * sizing helpers, and that errno is never touched. Run by cli_test.py with
 * IOASID_SOCKET set; argv[1] is that socket's path.
 */
#define _GNU_SOURCE
#include <ioasid/libioasid.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int failures;

/* errno is set to this before each call and must be unchanged after. */
enum { ERRNO_MARK = 4242 };

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
			failures++;                                                        \
		}                                                                          \
	} while (0)

/* Calls `call` with errno marked, stores its result in `rc`, and checks
 * errno survived. */
#define CALL(rc, call)                                                                     \
	do {                                                                               \
		errno = ERRNO_MARK;                                                        \
		(rc) = (call);                                                             \
		if (errno != ERRNO_MARK) {                                                 \
			fprintf(stderr, "%s:%d: %s changed errno to %d\n", __FILE__, __LINE__, #call, \
				errno);                                                    \
			failures++;                                                        \
		}                                                                          \
	} while (0)

int main(int argc, char **argv)
{
	const char *socket_path = argc > 1 ? argv[1] : NULL;
	enum { PAGE = 4096, BUF_PAGES = 64, MANY = 400 };
	struct iommu_iova_range small[1];
	struct iommu_iova_range allowed[2] = { { 0x100000, 0x1fffffff }, { 0x100000000ull, 0x1ffffffffull } };
	struct iommu_iova_range *ranges = NULL;
	uint32_t ioas = 0, ioas2 = 0, count = 0, id = 0;
	uint64_t iova = 0, iova2 = 0, value = 0, alignment = 0, unmapped = 0;
	char *json = NULL;
	int fd, rc, i;
	unsigned char *buf;

	buf = mmap(NULL, BUF_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(buf, 0x5a, BUF_PAGES * PAGE);

	/* Opening. */
	CALL(rc, ioasid_open_device("/nonexistent/ioasid"));
	CHECK(rc == -ENOENT);
	CALL(rc, ioasid_open("/nonexistent/ioasid"));
	CHECK(rc == -ENOENT);
	CALL(fd, ioasid_open(NULL));
	CHECK(fd >= 0);
	if (fd < 0) {
		fprintf(stderr, "ioasid_open(NULL): %s\n", strerror(-fd));
		return 1;
	}
	CHECK(ioasid_is_socket(fd));

	/* IOAS, map with a fixed and a picked IOVA, overlap. */
	CALL(rc, ioasid_ioas_alloc(fd, &ioas));
	CHECK(rc == 0 && ioas != 0);
	iova = 0x10000;
	CALL(rc, ioasid_ioas_map(fd, ioas, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
					       IOMMU_IOAS_MAP_WRITEABLE,
				 buf, 4 * PAGE, &iova));
	CHECK(rc == 0 && iova == 0x10000);
	iova2 = 0x12000;
	CALL(rc, ioasid_ioas_map(fd, ioas, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, buf, PAGE,
				 &iova2));
	CHECK(rc == -EEXIST);
	CALL(rc, ioasid_ioas_map(fd, ioas, IOMMU_IOAS_MAP_FIXED_IOVA, buf, PAGE, NULL));
	CHECK(rc == -EINVAL);
	CALL(rc, ioasid_ioas_map(fd, ioas, IOMMU_IOAS_MAP_READABLE, buf + 4 * PAGE, 4 * PAGE, &iova2));
	CHECK(rc == 0 && iova2 != 0x10000);
	CALL(rc, ioasid_ioas_map(fd, 999, IOMMU_IOAS_MAP_READABLE, buf, PAGE, &iova2));
	CHECK(rc == -ENOENT);

	/* Copy into a second IOAS. */
	CALL(rc, ioasid_ioas_alloc(fd, &ioas2));
	CHECK(rc == 0 && ioas2 != ioas);
	iova = 0;
	CALL(rc, ioasid_ioas_copy(fd, ioas2, ioas, IOMMU_IOAS_MAP_READABLE, 0x10000, 4 * PAGE, &iova));
	CHECK(rc == 0);
	CALL(rc, ioasid_ioas_copy(fd, ioas2, ioas, IOMMU_IOAS_MAP_READABLE, 0x80000000, PAGE, &iova));
	CHECK(rc == -ENOENT);

	/* Unmap reports what it removed. */
	CALL(rc, ioasid_ioas_unmap(fd, ioas, 0x10000, 4 * PAGE, &unmapped));
	CHECK(rc == 0 && unmapped == 4 * PAGE);
	CALL(rc, ioasid_ioas_unmap(fd, ioas, 0x10000, 4 * PAGE, &unmapped));
	CHECK(rc == -ENOENT);
	CALL(rc, ioasid_ioas_unmap(fd, ioas, 0, UINT64_MAX, &unmapped));
	CHECK(rc == 0 && unmapped == 4 * PAGE);

	/* Ranges: the raw call sizes with EMSGSIZE, the helper allocates. With
	 * no reserved IOVA there is one range, whatever the allowed list says
	 * (as in the kernel). */
	CALL(rc, ioasid_ioas_allow_iovas(fd, ioas, allowed, 2));
	CHECK(rc == 0);
	allowed[1].start = 0x100000;
	CALL(rc, ioasid_ioas_allow_iovas(fd, ioas, allowed, 2));
	CHECK(rc == -EINVAL);
	count = 0;
	CALL(rc, ioasid_ioas_iova_ranges(fd, ioas, NULL, &count, &alignment));
	CHECK(rc == -EMSGSIZE && count == 1 && alignment == 1);
	count = 1;
	CALL(rc, ioasid_ioas_iova_ranges(fd, ioas, small, &count, NULL));
	CHECK(rc == 0 && count == 1 && small[0].start == 0 && small[0].last == UINT64_MAX);
	CALL(rc, ioasid_ioas_iova_ranges_alloc(fd, ioas, &ranges, &count, &alignment));
	CHECK(rc == 0 && count == 1 && ranges != NULL && alignment == 1);
	if (ranges && count == 1)
		CHECK(ranges[0].start == 0 && ranges[0].last == UINT64_MAX);
	free(ranges);
	ranges = NULL;
	CALL(rc, ioasid_ioas_iova_ranges_alloc(fd, 999, &ranges, &count, NULL));
	CHECK(rc == -ENOENT && ranges == NULL);
	CALL(rc, ioasid_ioas_allow_iovas(fd, ioas, NULL, 0));
	CHECK(rc == 0);

	/* Options. */
	CALL(rc, ioasid_option_get(fd, IOMMU_OPTION_HUGE_PAGES, ioas, &value));
	CHECK(rc == 0 && value == 1);
	CALL(rc, ioasid_option_set(fd, IOMMU_OPTION_HUGE_PAGES, ioas, 0));
	CHECK(rc == 0);
	CALL(rc, ioasid_option_get(fd, IOMMU_OPTION_HUGE_PAGES, ioas, &value));
	CHECK(rc == 0 && value == 0);
	CALL(rc, ioasid_option_get(fd, IOMMU_OPTION_RLIMIT_MODE, 0, &value));
	CHECK(rc == 0);
	CALL(rc, ioasid_option_get(fd, IOMMU_OPTION_RLIMIT_MODE, ioas, &value));
	CHECK(rc == -EOPNOTSUPP);

	/* VFIO compatibility IOAS. */
	CALL(rc, ioasid_vfio_ioas_get(fd, &id));
	CHECK(rc == -ENODEV);
	CALL(rc, ioasid_vfio_ioas_set(fd, ioas2));
	CHECK(rc == 0);
	CALL(rc, ioasid_vfio_ioas_get(fd, &id));
	CHECK(rc == 0 && id == ioas2);
	CALL(rc, ioasid_vfio_ioas_clear(fd));
	CHECK(rc == 0);
	CALL(rc, ioasid_vfio_ioas_get(fd, &id));
	CHECK(rc == -ENODEV);

	/* Status: small, then larger than the library's first guess, so the
	 * EMSGSIZE retry runs. */
	CALL(rc, ioasid_status(fd, 0, &json));
	CHECK(rc == 0 && json && strstr(json, "\"contexts\""));
	free(json);
	json = NULL;
	for (i = 0; i < MANY; i++) {
		iova = 0;
		CALL(rc, ioasid_ioas_map(fd, ioas, IOMMU_IOAS_MAP_READABLE, buf + (i % BUF_PAGES) * PAGE,
					 PAGE, &iova));
		CHECK(rc == 0);
	}
	CALL(rc, ioasid_status(fd, IOASID_STATUS_ALL, &json));
	CHECK(rc == 0 && json && strlen(json) > 16 * 1024);
	CHECK(json && json[0] == '{' && json[strlen(json) - 1] == '}');
	free(json);

	/* ioctl passthrough, and destroy. */
	{
		struct iommu_destroy cmd = { .size = sizeof(cmd), .id = ioas2 };

		CALL(rc, ioasid_ioctl(fd, IOMMU_DESTROY, &cmd));
		CHECK(rc == 0);
	}
	CALL(rc, ioasid_destroy(fd, ioas2));
	CHECK(rc == -ENOENT);
	CALL(rc, ioasid_destroy(fd, ioas));
	CHECK(rc == 0);

	CALL(rc, ioasid_close(fd));
	CHECK(rc == 0);
	CALL(rc, ioasid_close(-1));
	CHECK(rc == -EBADF);

	/* The explicit forms. */
	if (socket_path) {
		CALL(fd, ioasid_open_socket(socket_path));
		CHECK(fd >= 0);
		CALL(rc, ioasid_ioas_alloc(fd, &ioas));
		CHECK(rc == 0 && ioas == 1);
		CALL(rc, ioasid_close(fd));
		CHECK(rc == 0);
		CALL(fd, ioasid_open(socket_path));
		CHECK(fd >= 0 && ioasid_is_socket(fd));
		CALL(rc, ioasid_close(fd));
		CHECK(rc == 0);
	}

	if (failures) {
		fprintf(stderr, "libioasid-test: %d failure(s)\n", failures);
		return 1;
	}
	printf("libioasid-test: ok\n");
	return 0;
}
