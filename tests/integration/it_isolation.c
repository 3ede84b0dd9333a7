/* SPDX-License-Identifier: MIT */
/*
 * it_isolation: process B, with its own open of the device, uses the ids
 * process A holds. Ids are per context, so every call of B that names A's
 * ids finds nothing (ENOENT) or its own objects, and A's objects and areas
 * are untouched. Then the same with a third process C that maps and unmaps
 * everything it can at the same IOVAs as A.
 */
#define _GNU_SOURCE
#include "it_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
#define FIXED_RW (IOMMU_IOAS_MAP_FIXED_IOVA | RW)
#define SZ_64K 0x10000ul

struct a_info {
	uint32_t ioas[3];
	long long ctx;
};

static int process_b(struct it_event *a_ready, struct it_event *b_done)
{
	it_set_role("B");
	char *buf = it_buffer(SZ_64K);
	struct a_info info;
	uint64_t word;
	/* A's ids and context come through the pipe, one word at a time. */
	for (int i = 0; i < 3; i++) {
		word = it_event_wait(a_ready, 60);
		info.ioas[i] = (uint32_t)word;
	}
	info.ctx = (long long)it_event_wait(a_ready, 60);

	int fd = it_open(0);
	for (int i = 0; i < 3; i++) {
		uint32_t id = info.ioas[i];
		uint64_t iova = 0x100000;
		EXPECT_ERRNO(ENOENT, it_destroy(fd, id));
		EXPECT_ERRNO(ENOENT, it_map(fd, id, FIXED_RW, buf, SZ_64K, &iova));
		EXPECT_ERRNO(ENOENT, it_map(fd, id, RW, buf, SZ_64K, &iova));
		EXPECT_ERRNO(ENOENT, it_unmap(fd, id, 0x100000, SZ_64K, NULL));
		EXPECT_ERRNO(ENOENT, it_unmap(fd, id, 0, UINT64_MAX, NULL));
		EXPECT_ERRNO(ENOENT, it_copy(fd, FIXED_RW, id, id, SZ_64K, &iova, 0x100000));
		struct iommu_ioas_iova_ranges ranges = { .size = sizeof(ranges), .ioas_id = id };
		EXPECT_ERRNO(ENOENT, ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &ranges));
		struct iommu_iova_range r = { 0x1000, 0x1fff };
		struct iommu_ioas_allow_iovas allow = {
			.size = sizeof(allow), .ioas_id = id, .num_iovas = 1,
			.allowed_iovas = (uintptr_t)&r,
		};
		EXPECT_ERRNO(ENOENT, ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &allow));
		uint64_t val = 0;
		EXPECT_ERRNO(ENOENT, it_option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, id,
					       &val));
		EXPECT_ERRNO(ENOENT, it_option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, id,
					       &val));
		struct iommu_vfio_ioas vfio = {
			.size = sizeof(vfio), .ioas_id = id, .op = IOMMU_VFIO_IOAS_SET,
		};
		EXPECT_ERRNO(ENOENT, ioctl(fd, IOMMU_VFIO_IOAS, &vfio));
	}

	/* B's own objects get A's numbers, and are B's. */
	uint32_t id = 0;
	if (EXPECT_OK(it_ioas_alloc(fd, &id)))
		EXPECT_EQ(1, id);
	EXPECT_OK(it_map_fixed(fd, id, buf, SZ_64K, 0x100000));
	uint64_t copy_iova = 0x200000;
	EXPECT_OK(it_copy(fd, FIXED_RW, id, id, SZ_64K, &copy_iova, 0x100000));
	/* Destroying A's second id in B: B has no object 2. */
	EXPECT_ERRNO(ENOENT, it_destroy(fd, 2));
	uint64_t unmapped = 0;
	if (EXPECT_OK(it_unmap(fd, id, 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ(2 * SZ_64K, unmapped);

	/* The status without IOASID_STATUS_ALL shows B's context only. */
	char *text = it_status(fd, false);
	if (text) {
		struct it_json *report = it_json_parse(text);
		const struct it_json *contexts = it_status_contexts(report);
		if (!contexts || contexts->count != 1)
			IT_FAIL("status of B's fd: expected one context: %.300s", text);
		else if (it_json_int(contexts->items[0], "id", -1) == info.ctx)
			IT_FAIL("status of B's fd shows A's context %lld", info.ctx);
		it_json_free(report);
		free(text);
	}

	/* B ends with objects and areas: its context goes, A's stays. */
	EXPECT_OK(it_map_fixed(fd, id, buf, SZ_64K, 0x100000));
	it_event_signal(b_done, 1);
	return it_finish();
}

int main(int argc, char **argv)
{
	it_init(argc, argv);
	it_set_role("A");
	char *buf = it_buffer(4 * SZ_64K);
	struct it_event a_ready, b_done;
	it_event_init(&a_ready);
	it_event_init(&b_done);

	pid_t pid = fork();
	if (pid < 0)
		IT_FATAL("fork: %s", it_errname(errno));
	if (pid == 0) {
		/* B does not inherit A's fd: A opens after the fork. */
		_exit(process_b(&a_ready, &b_done));
	}

	int fd = it_open(0);
	uint32_t ioas[3];
	for (int i = 0; i < 3; i++) {
		ioas[i] = it_must_alloc(fd);
		EXPECT_EQ(i + 1, ioas[i]);
	}
	EXPECT_OK(it_map_fixed(fd, ioas[0], buf, SZ_64K, 0x100000));
	EXPECT_OK(it_map_fixed(fd, ioas[1], buf + SZ_64K, SZ_64K, 0x100000));
	uint64_t iova = 0x200000;
	EXPECT_OK(it_copy(fd, FIXED_RW, ioas[2], ioas[0], SZ_64K, &iova, 0x100000));
	uint64_t val = 0;
	EXPECT_OK(it_option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas[1], &val));
	struct iommu_iova_range r = { 0x400000, 0x7fffff };
	struct iommu_ioas_allow_iovas allow = {
		.size = sizeof(allow), .ioas_id = ioas[2], .num_iovas = 1,
		.allowed_iovas = (uintptr_t)&r,
	};
	EXPECT_OK(ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &allow));
	char *text = it_status(fd, false);
	struct it_json *report = text ? it_json_parse(text) : NULL;
	const struct it_json *contexts = it_status_contexts(report);
	long long ctx = contexts && contexts->count == 1 ? it_json_int(contexts->items[0], "id", -1) : -1;
	it_json_free(report);
	free(text);

	for (int i = 0; i < 3; i++)
		it_event_signal(&a_ready, ioas[i]);
	it_event_signal(&a_ready, (uint64_t)ctx);
	it_event_wait(&b_done, 120);
	int status = it_wait_child(pid, 60);
	if (status)
		IT_FAIL("B ended with status %d", status);

	/* A's state is exactly as A left it. */
	EXPECT_ERRNO(ENOENT, it_destroy(fd, 4));
	if (EXPECT_OK(it_option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas[1], &val)))
		EXPECT_EQ(0, val);
	if (EXPECT_OK(it_option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas[0], &val)))
		EXPECT_EQ(1, val);
	/* The allowed window of ioas[2] is still in force. */
	iova = 0;
	if (EXPECT_OK(it_map(fd, ioas[2], RW, buf, SZ_64K, &iova)))
		EXPECT_TRUE(iova >= 0x400000 && iova <= 0x7fffff);
	uint64_t unmapped = 0;
	if (EXPECT_OK(it_unmap(fd, ioas[0], 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ(SZ_64K, unmapped);
	if (EXPECT_OK(it_unmap(fd, ioas[1], 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ(SZ_64K, unmapped);
	if (EXPECT_OK(it_unmap(fd, ioas[2], 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ(2 * SZ_64K, unmapped);
	for (int i = 0; i < 3; i++)
		EXPECT_OK(it_destroy(fd, ioas[i]));
	EXPECT_OK(close(fd));
	return it_finish();
}
