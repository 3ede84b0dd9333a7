/* SPDX-License-Identifier: MIT */
/*
 * it_basic: one process, the IOAS ioctls end to end, every answer checked
 * against what Linux 6.12 gives for the same input (the references are to
 * drivers/iommu/iommufd/ in the linux-source-6.12 tarball).
 *
 * No device is bound, so (as in the kernel) no IOAS has a domain: MAP and
 * COPY only record areas, nothing is pinned, and an IOAS's iova_alignment
 * is 1 unless HUGE_PAGES is off.
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

#define RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
#define FIXED_RW (IOMMU_IOAS_MAP_FIXED_IOVA | RW)
#define SZ_64K 0x10000ul
#define SZ_2M 0x200000ul
#define BAD_ID 999u

/* 4 MiB of memory whose start is 2 MiB aligned: the automatic IOVA the kernel
 * picks depends on the alignment of user_va (io_pagetable.c
 * iopt_alloc_iova()), so with this base it is predictable. */
static char *big;

static char *aligned_buffer(void)
{
	char *raw = it_buffer(3 * SZ_2M);
	char *base = (char *)(((uintptr_t)raw + SZ_2M - 1) & ~(SZ_2M - 1));
	return base;
}

/* --- IOMMU_IOAS_ALLOC / IOMMU_DESTROY ------------------------------------- */

static void test_alloc_destroy(void)
{
	int fd = it_open(0);
	uint32_t id = 0;

	/* xa_alloc() with XA_FLAGS_ALLOC1: ids from 1, lowest free first. */
	if (EXPECT_OK(it_ioas_alloc(fd, &id)))
		EXPECT_EQ(1, id);
	if (EXPECT_OK(it_ioas_alloc(fd, &id)))
		EXPECT_EQ(2, id);

	/* ioas.c iommufd_ioas_alloc_ioctl(): flags -> EOPNOTSUPP, no id used. */
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc), .flags = 1, .out_ioas_id = 77 };
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_IOAS_ALLOC, &alloc));
	EXPECT_EQ(77, alloc.out_ioas_id);

	/* main.c iommufd_object_remove(): absent ids -> ENOENT. */
	EXPECT_OK(it_destroy(fd, 1));
	EXPECT_ERRNO(ENOENT, it_destroy(fd, 1));
	EXPECT_ERRNO(ENOENT, it_destroy(fd, 0));
	EXPECT_ERRNO(ENOENT, it_destroy(fd, 3));
	EXPECT_ERRNO(ENOENT, it_destroy(fd, 0x7fffffff));
	EXPECT_ERRNO(ENOENT, it_destroy(fd, 0xffffffff));

	/* The freed id 1 is the lowest free one again. */
	if (EXPECT_OK(it_ioas_alloc(fd, &id)))
		EXPECT_EQ(1, id);
	if (EXPECT_OK(it_ioas_alloc(fd, &id)))
		EXPECT_EQ(3, id);

	/* A destroyed IOAS takes its mappings with it (iommufd_ioas_destroy()
	 * unmaps everything). */
	EXPECT_OK(it_map_fixed(fd, 3, big, SZ_64K, 0x100000));
	EXPECT_OK(it_destroy(fd, 3));
	uint64_t iova = 0x100000;
	EXPECT_ERRNO(ENOENT, it_map(fd, 3, FIXED_RW, big, SZ_64K, &iova));

	/* A second open of the device is a context of its own: ids from 1,
	 * and this context's objects are not visible there. */
	int fd2 = it_open(0);
	EXPECT_ERRNO(ENOENT, it_destroy(fd2, 2));
	if (EXPECT_OK(it_ioas_alloc(fd2, &id)))
		EXPECT_EQ(1, id);
	EXPECT_OK(close(fd2));
	/* Closing it did not touch this one. */
	EXPECT_OK(it_destroy(fd, 1));
	EXPECT_OK(it_destroy(fd, 2));
	EXPECT_OK(close(fd));
}

/* --- the generic size / number rules of iommufd_fops_ioctl() -------------- */

static void test_ioctl_rules(void)
{
	int fd = it_open(0);

	/* size < min_size -> EINVAL */
	struct iommu_destroy destroy = { .size = 4, .id = 1 };
	EXPECT_ERRNO(EINVAL, ioctl(fd, IOMMU_DESTROY, &destroy));
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) - 1 };
	EXPECT_ERRNO(EINVAL, ioctl(fd, IOMMU_IOAS_ALLOC, &alloc));
	alloc.size = 0;
	EXPECT_ERRNO(EINVAL, ioctl(fd, IOMMU_IOAS_ALLOC, &alloc));

	/* size > ksize: a zero tail is accepted (copy_struct_from_user()),
	 * and only min(size, ksize) bytes are written back. */
	struct {
		struct iommu_ioas_alloc cmd;
		uint64_t tail[3];
	} longer;
	memset(&longer, 0, sizeof(longer));
	longer.cmd.size = sizeof(longer);
	if (EXPECT_OK(ioctl(fd, IOMMU_IOAS_ALLOC, &longer))) {
		EXPECT_EQ(1, longer.cmd.out_ioas_id);
		EXPECT_EQ(0, longer.tail[0] | longer.tail[1] | longer.tail[2]);
	}
	/* ... a non-zero byte in it -> E2BIG, and nothing is created. */
	longer.cmd.out_ioas_id = 0;
	longer.tail[2] = 1ull << 56;
	EXPECT_ERRNO(E2BIG, ioctl(fd, IOMMU_IOAS_ALLOC, &longer));
	EXPECT_EQ(0, longer.cmd.out_ioas_id);
	uint32_t id = 0;
	if (EXPECT_OK(it_ioas_alloc(fd, &id)))
		EXPECT_EQ(2, id);

	/* E2BIG comes before the handler sees anything: a MAP that would
	 * fail with ENOENT fails with E2BIG. */
	struct {
		struct iommu_ioas_map cmd;
		uint32_t tail[2];
	} map_tail = {
		.cmd = { .size = sizeof(map_tail), .flags = FIXED_RW, .ioas_id = BAD_ID,
			 .user_va = (uintptr_t)big, .length = SZ_64K, .iova = 0x100000 },
		.tail = { 0, 0x100 },
	};
	EXPECT_ERRNO(E2BIG, ioctl(fd, IOMMU_IOAS_MAP, &map_tail));
	map_tail.tail[1] = 0;
	EXPECT_ERRNO(ENOENT, ioctl(fd, IOMMU_IOAS_MAP, &map_tail));

	/* A size of several pages: the whole tail is checked. */
	char *large = it_buffer(3 * IT_PAGE);
	memset(large, 0, 3 * IT_PAGE);
	struct iommu_ioas_alloc *big_cmd = (void *)large;
	big_cmd->size = 3 * IT_PAGE;
	if (EXPECT_OK(ioctl(fd, IOMMU_IOAS_ALLOC, big_cmd)))
		EXPECT_EQ(3, big_cmd->out_ioas_id);
	EXPECT_OK(it_destroy(fd, 3));
	large[3 * IT_PAGE - 1] = 1;
	EXPECT_ERRNO(E2BIG, ioctl(fd, IOMMU_IOAS_ALLOC, big_cmd));
	large[3 * IT_PAGE - 1] = 0;
	large[IT_PAGE + 5] = 0x40;
	EXPECT_ERRNO(E2BIG, ioctl(fd, IOMMU_IOAS_ALLOC, big_cmd));
	munmap(large, 3 * IT_PAGE);

	/* A struct at the end of a page, the next page inaccessible. */
	char *pages = mmap(NULL, 2 * IT_PAGE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pages == MAP_FAILED)
		IT_FATAL("mmap: %s", it_errname(errno));
	memset(pages, 0, 2 * IT_PAGE);
	EXPECT_OK(mprotect(pages + IT_PAGE, IT_PAGE, PROT_NONE));
	struct iommu_ioas_alloc *edge = (void *)(pages + IT_PAGE - 16);
	edge->size = 16; /* 12 bytes of struct + 4 zero bytes, all readable */
	if (EXPECT_OK(ioctl(fd, IOMMU_IOAS_ALLOC, edge)))
		EXPECT_EQ(3, edge->out_ioas_id);
	/* The zero tail runs into the inaccessible page -> EFAULT. */
	edge->size = 16 + 64;
	edge->out_ioas_id = 0;
	EXPECT_ERRNO(EFAULT, ioctl(fd, IOMMU_IOAS_ALLOC, edge));
	/* A non-zero tail byte before the fault wins: E2BIG
	 * (check_zeroed_user() stops at the first non-zero word). */
	pages[IT_PAGE - 1] = 1;
	EXPECT_ERRNO(E2BIG, ioctl(fd, IOMMU_IOAS_ALLOC, edge));
	/* The size itself unreadable -> EFAULT. */
	EXPECT_ERRNO(EFAULT, ioctl(fd, IOMMU_IOAS_ALLOC, pages + IT_PAGE));
	/* ioctl(fd, IOMMU_DESTROY, NULL) -> EFAULT (get_user of size). */
	EXPECT_ERRNO(EFAULT, ioctl(fd, IOMMU_DESTROY, NULL));
	munmap(pages, 2 * IT_PAGE);

	/* Numbers: the table entry's full cmd must match, else ENOTTY (the
	 * kernel's -ENOIOCTLCMD); below the base or past the table, the VFIO
	 * compatibility handler answers ENOTTY for what it does not know. */
	struct iommu_ioas_alloc probe = { .size = sizeof(probe) };
	EXPECT_ERRNO(ENOTTY, ioctl(fd, _IOWR(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC,
					     struct iommu_ioas_alloc), &probe));
	EXPECT_ERRNO(ENOTTY, ioctl(fd, _IO('x', IOMMUFD_CMD_IOAS_ALLOC), &probe));
	EXPECT_ERRNO(ENOTTY, ioctl(fd, _IO(IOMMUFD_TYPE, 0x7f), &probe));
	/* 0x9f: free in every kernel so far (0xa0 is IOMMU_TEST_CMD). */
	EXPECT_ERRNO(ENOTTY, ioctl(fd, _IO(IOMMUFD_TYPE, 0x9f), &probe));
	EXPECT_ERRNO(ENOTTY, ioctl(fd, _IO(IOMMUFD_TYPE, 0xff), &probe));
	/* None of these created anything: the next id is 4. */
	if (EXPECT_OK(it_ioas_alloc(fd, &id)))
		EXPECT_EQ(4, id);

	EXPECT_OK(close(fd));
}

/* --- IOMMU_IOAS_IOVA_RANGES ------------------------------------------------ */

static void test_iova_ranges(void)
{
	int fd = it_open(0);
	uint32_t ioas = it_must_alloc(fd);
	struct iommu_iova_range ranges[4];

	/* A fresh IOAS has no reserved range: one hole, [0, U64_MAX]. Too
	 * small an array: the struct is written back, then EMSGSIZE. */
	struct iommu_ioas_iova_ranges cmd = {
		.size = sizeof(cmd), .ioas_id = ioas, .num_iovas = 0, .allowed_iovas = 0,
		.out_iova_alignment = 0x55,
	};
	EXPECT_ERRNO(EMSGSIZE, ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	EXPECT_EQ(1, cmd.num_iovas);
	EXPECT_EQ(1, cmd.out_iova_alignment);

	memset(ranges, 0xcc, sizeof(ranges));
	cmd.num_iovas = 4;
	cmd.allowed_iovas = (uintptr_t)ranges;
	cmd.out_iova_alignment = 0;
	if (EXPECT_OK(ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &cmd))) {
		EXPECT_EQ(1, cmd.num_iovas);
		EXPECT_EQ(1, cmd.out_iova_alignment);
		EXPECT_EQ(0, ranges[0].start);
		EXPECT_EQ(UINT64_MAX, ranges[0].last);
		EXPECT_EQ(0xccccccccccccccccull, ranges[1].start);
	}

	/* Exactly one slot is enough. */
	cmd.num_iovas = 1;
	EXPECT_OK(ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &cmd));

	/* An array the kernel cannot write -> EFAULT. */
	cmd.num_iovas = 1;
	cmd.allowed_iovas = 0;
	EXPECT_ERRNO(EFAULT, ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &cmd));

	cmd.num_iovas = 1;
	cmd.allowed_iovas = (uintptr_t)ranges;
	cmd.__reserved = 1;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	cmd.__reserved = 0;
	cmd.ioas_id = BAD_ID;
	EXPECT_ERRNO(ENOENT, ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	cmd.ioas_id = ioas;
	cmd.size = sizeof(cmd) - 8; /* min_size is offsetofend(out_iova_alignment) */
	EXPECT_ERRNO(EINVAL, ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &cmd));

	/* Allowed ranges do not change the report: it lists the holes of the
	 * reserved set only. */
	struct iommu_iova_range allow = { .start = 0x200000, .last = 0x2fffff };
	struct iommu_ioas_allow_iovas allow_cmd = {
		.size = sizeof(allow_cmd), .ioas_id = ioas, .num_iovas = 1,
		.allowed_iovas = (uintptr_t)&allow,
	};
	EXPECT_OK(ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &allow_cmd));
	memset(ranges, 0, sizeof(ranges));
	cmd.size = sizeof(cmd);
	cmd.num_iovas = 4;
	if (EXPECT_OK(ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &cmd))) {
		EXPECT_EQ(1, cmd.num_iovas);
		EXPECT_EQ(0, ranges[0].start);
		EXPECT_EQ(UINT64_MAX, ranges[0].last);
	}
	EXPECT_OK(close(fd));
}

/* --- IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP ------------------------------------- */

static int map_raw(int fd, struct iommu_ioas_map *cmd)
{
	return ioctl(fd, IOMMU_IOAS_MAP, cmd);
}

static void test_map_unmap(void)
{
	int fd = it_open(0);
	uint32_t ioas = it_must_alloc(fd);
	uint64_t iova, unmapped;

	/* Fixed IOVA. */
	iova = 0x100000;
	if (EXPECT_OK(it_map(fd, ioas, FIXED_RW, big, SZ_64K, &iova)))
		EXPECT_EQ(0x100000, iova);
	/* Existing mappings are never replaced: EEXIST (iopt_check_iova()). */
	EXPECT_ERRNO(EEXIST, it_map_fixed(fd, ioas, big, SZ_64K, 0x100000));
	EXPECT_ERRNO(EEXIST, it_map_fixed(fd, ioas, big, SZ_64K, 0x108000));
	EXPECT_ERRNO(EEXIST, it_map_fixed(fd, ioas, big, 0x2000, 0x0ff000));
	EXPECT_ERRNO(EEXIST, it_map_fixed(fd, ioas, big, 0x1000, 0x10f000));
	/* Right next to it is free. */
	EXPECT_OK(it_map_fixed(fd, ioas, big + SZ_64K, SZ_64K, 0x110000));
	EXPECT_OK(it_map_fixed(fd, ioas, big, 0x1000, 0x0ff000));

	/* Unmap must cover whole areas: part of one -> ENOENT, nothing
	 * written back. */
	struct iommu_ioas_unmap unmap = {
		.size = sizeof(unmap), .ioas_id = ioas, .iova = 0x100000, .length = 0x1000,
	};
	EXPECT_ERRNO(ENOENT, ioctl(fd, IOMMU_IOAS_UNMAP, &unmap));
	EXPECT_EQ(0x1000, unmap.length);
	EXPECT_ERRNO(ENOENT, it_unmap(fd, ioas, 0x108000, 0x10000, NULL));
	/* A range holding several whole areas unmaps them all. */
	if (EXPECT_OK(it_unmap(fd, ioas, 0x100000, 0x20000, &unmapped)))
		EXPECT_EQ(0x20000, unmapped);
	/* Nothing left there -> ENOENT. */
	EXPECT_ERRNO(ENOENT, it_unmap(fd, ioas, 0x100000, 0x20000, NULL));
	/* Areas before the one that is cut stay unmapped (the kernel does not
	 * roll back): [0xff000] is whole inside, [0x200000..] is cut. */
	EXPECT_OK(it_map_fixed(fd, ioas, big, SZ_64K, 0x200000));
	EXPECT_ERRNO(ENOENT, it_unmap(fd, ioas, 0x0ff000, 0x101000 + 0x1000, NULL));
	EXPECT_ERRNO(ENOENT, it_unmap(fd, ioas, 0x0ff000, 0x1000, NULL));
	if (EXPECT_OK(it_unmap(fd, ioas, 0x200000, SZ_64K, &unmapped)))
		EXPECT_EQ(SZ_64K, unmapped);

	/* Unmap errors (ioas.c iommufd_ioas_unmap(), iopt_unmap_iova()). */
	EXPECT_ERRNO(EINVAL, it_unmap(fd, ioas, 0x100000, 0, NULL));
	EXPECT_ERRNO(EINVAL, it_unmap(fd, ioas, 0, 0, NULL));
	EXPECT_ERRNO(EOVERFLOW, it_unmap(fd, ioas, UINT64_MAX, 1, NULL));
	EXPECT_ERRNO(EOVERFLOW, it_unmap(fd, ioas, 0x1000, UINT64_MAX, NULL));
	EXPECT_ERRNO(EOVERFLOW, it_unmap(fd, ioas, 0xfffffffffffff000ull, 0x2000, NULL));
	EXPECT_ERRNO(ENOENT, it_unmap(fd, BAD_ID, 0x100000, SZ_64K, NULL));
	EXPECT_ERRNO(ENOENT, it_unmap(fd, 0, 0, UINT64_MAX, NULL));
	/* Unmap-all of an empty IOAS succeeds with 0 bytes. */
	unmapped = 1;
	if (EXPECT_OK(it_unmap(fd, ioas, 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ(0, unmapped);

	/* Automatic IOVA, first fit from PAGE_SIZE with the alignment
	 * min(roundup_pow_of_two(length), lowest bit of user_va), capped at
	 * 2 MiB, and the page offset of user_va kept (iopt_alloc_iova()).
	 * `big` is 2 MiB aligned. */
	iova = 0;
	if (EXPECT_OK(it_map(fd, ioas, RW, big, SZ_64K, &iova)))
		EXPECT_EQ(0x10000, iova);
	/* 12 KiB: alignment 16 KiB; fits in the hole below the first area. */
	iova = 0;
	if (EXPECT_OK(it_map(fd, ioas, RW, big, 0x3000, &iova)))
		EXPECT_EQ(0x4000, iova);
	/* user_va with a page offset 0x10: alignment 16, offset kept. */
	iova = 0;
	if (EXPECT_OK(it_map(fd, ioas, RW, big + 0x10, 0x1000, &iova)))
		EXPECT_EQ(0x1010, iova);
	/* 2 MiB and more: alignment capped at 2 MiB. */
	iova = 0;
	if (EXPECT_OK(it_map(fd, ioas, RW, big, 2 * SZ_2M, &iova)))
		EXPECT_EQ(SZ_2M, iova);
	/* The input iova is ignored without FIXED_IOVA. */
	iova = 0x100000;
	if (EXPECT_OK(it_map(fd, ioas, RW, big, SZ_64K, &iova)))
		EXPECT_EQ(0x20000, iova);
	/* Read-only and write-only mappings are both fine. */
	EXPECT_OK(it_map(fd, ioas, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, big,
			 SZ_64K, &(uint64_t){ 0x10000000 }));
	EXPECT_OK(it_map(fd, ioas, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE, big,
			 SZ_64K, &(uint64_t){ 0x10010000 }));
	unmapped = 0;
	if (EXPECT_OK(it_unmap(fd, ioas, 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ(SZ_64K + 0x3000 + 0x1000 + 2 * SZ_2M + SZ_64K + 2 * SZ_64K, unmapped);

	/* Without a domain nothing is pinned, so the memory behind user_va is
	 * not looked at (iopt_map_user_pages(): "For non-domain page tables
	 * this will only setup a lazy reference"). A VA with nothing mapped,
	 * and read-only memory mapped writeable, both succeed. */
	char *hole = mmap(NULL, SZ_64K, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (hole == MAP_FAILED)
		IT_FATAL("mmap: %s", it_errname(errno));
	munmap(hole, SZ_64K);
	EXPECT_OK(it_map_fixed(fd, ioas, hole, SZ_64K, 0x300000));
	char *ro = mmap(NULL, SZ_64K, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ro == MAP_FAILED)
		IT_FATAL("mmap: %s", it_errname(errno));
	EXPECT_OK(it_map_fixed(fd, ioas, ro, SZ_64K, 0x310000));
	if (EXPECT_OK(it_unmap(fd, ioas, 0x300000, 0x20000, &unmapped)))
		EXPECT_EQ(0x20000, unmapped);

	/* Map errors, in the kernel's order (iommufd_ioas_map()). */
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd), .flags = FIXED_RW, .ioas_id = ioas,
		.user_va = (uintptr_t)big, .length = SZ_64K, .iova = 0x100000,
	};
	struct iommu_ioas_map c;
	/* unknown flag / __reserved -> EOPNOTSUPP, before the id lookup */
	c = cmd; c.flags |= 1u << 3; c.ioas_id = BAD_ID;
	EXPECT_ERRNO(EOPNOTSUPP, map_raw(fd, &c));
	c = cmd; c.__reserved = 1; c.ioas_id = BAD_ID;
	EXPECT_ERRNO(EOPNOTSUPP, map_raw(fd, &c));
	/* iova or length >= ULONG_MAX -> EOVERFLOW, before the id lookup */
	c = cmd; c.iova = UINT64_MAX; c.ioas_id = BAD_ID;
	EXPECT_ERRNO(EOVERFLOW, map_raw(fd, &c));
	c = cmd; c.iova = UINT64_MAX; c.flags = RW;
	EXPECT_ERRNO(EOVERFLOW, map_raw(fd, &c));
	c = cmd; c.length = UINT64_MAX;
	EXPECT_ERRNO(EOVERFLOW, map_raw(fd, &c));
	/* neither READABLE nor WRITEABLE -> EINVAL */
	c = cmd; c.flags = IOMMU_IOAS_MAP_FIXED_IOVA; c.ioas_id = BAD_ID;
	EXPECT_ERRNO(EINVAL, map_raw(fd, &c));
	c = cmd; c.flags = 0;
	EXPECT_ERRNO(EINVAL, map_raw(fd, &c));
	/* the IOAS */
	c = cmd; c.ioas_id = BAD_ID;
	EXPECT_ERRNO(ENOENT, map_raw(fd, &c));
	c = cmd; c.ioas_id = 0;
	EXPECT_ERRNO(ENOENT, map_raw(fd, &c));
	/* length 0, or > SIZE_MAX - PAGE_SIZE -> EINVAL (iopt_alloc_pages()) */
	c = cmd; c.length = 0;
	EXPECT_ERRNO(EINVAL, map_raw(fd, &c));
	c = cmd; c.length = 0xfffffffffffff001ull;
	EXPECT_ERRNO(EINVAL, map_raw(fd, &c));
	/* user_va + length wraps -> EOVERFLOW */
	c = cmd; c.user_va = 0xffffffffffff0000ull; c.length = 0x20000;
	EXPECT_ERRNO(EOVERFLOW, map_raw(fd, &c));
	/* fixed iova + length - 1 wraps -> EOVERFLOW (iopt_check_iova()) */
	c = cmd; c.iova = 0xfffffffffffff000ull; c.length = 0x2000;
	EXPECT_ERRNO(EOVERFLOW, map_raw(fd, &c));
	/* ... but the last byte of the IOVA space can be mapped */
	c = cmd; c.iova = 0xffffffffffff0000ull; c.length = SZ_64K;
	EXPECT_OK(map_raw(fd, &c));
	/* automatic IOVA with length >= ULONG_MAX / 2 -> EOVERFLOW */
	c = cmd; c.flags = RW; c.length = 1ull << 63;
	EXPECT_ERRNO(EOVERFLOW, map_raw(fd, &c));
	/* A failed MAP writes nothing back. */
	c = cmd; c.iova = 0xffffffffffff0000ull;
	EXPECT_ERRNO(EEXIST, map_raw(fd, &c));
	EXPECT_EQ(0xffffffffffff0000ull, c.iova);
	c = cmd; c.size = offsetof(struct iommu_ioas_map, iova);
	EXPECT_ERRNO(EINVAL, map_raw(fd, &c));

	if (EXPECT_OK(it_unmap(fd, ioas, 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ(SZ_64K, unmapped);
	EXPECT_OK(close(fd));
}

/* --- IOMMU_IOAS_ALLOW_IOVAS -------------------------------------------------- */

static int allow(int fd, uint32_t ioas, const struct iommu_iova_range *ranges, uint32_t num)
{
	struct iommu_ioas_allow_iovas cmd = {
		.size = sizeof(cmd), .ioas_id = ioas, .num_iovas = num,
		.allowed_iovas = (uintptr_t)ranges,
	};
	return ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd);
}

static void test_allow_iovas(void)
{
	int fd = it_open(0);
	uint32_t ioas = it_must_alloc(fd);
	uint64_t iova, unmapped;

	struct iommu_iova_range window = { .start = 0x200000, .last = 0x2fffff };
	EXPECT_OK(allow(fd, ioas, &window, 1));
	/* Automatic IOVA only inside the allowed ranges. */
	iova = 0;
	if (EXPECT_OK(it_map(fd, ioas, RW, big, SZ_64K, &iova)))
		EXPECT_EQ(0x200000, iova);
	iova = 0;
	if (EXPECT_OK(it_map(fd, ioas, RW, big, SZ_64K, &iova)))
		EXPECT_EQ(0x210000, iova);
	/* No room for 2 MiB in a 1 MiB window -> ENOSPC. */
	EXPECT_ERRNO(ENOSPC, it_map(fd, ioas, RW, big, SZ_2M, &iova));
	/* FIXED_IOVA maps are not limited to the allowed ranges. */
	EXPECT_OK(it_map_fixed(fd, ioas, big, SZ_64K, 0x100000));

	/* Bad lists -> EINVAL, and the old list stays. */
	struct iommu_iova_range bad[2] = { { 0x400000, 0x400000 } };
	EXPECT_ERRNO(EINVAL, allow(fd, ioas, bad, 1));
	bad[0] = (struct iommu_iova_range){ 0x500000, 0x400000 };
	EXPECT_ERRNO(EINVAL, allow(fd, ioas, bad, 1));
	bad[0] = (struct iommu_iova_range){ 0x400000, 0x4fffff };
	bad[1] = (struct iommu_iova_range){ 0x4ff000, 0x5fffff };
	EXPECT_ERRNO(EINVAL, allow(fd, ioas, bad, 2));
	EXPECT_ERRNO(EFAULT, allow(fd, ioas, NULL, 1));
	EXPECT_ERRNO(ENOENT, allow(fd, BAD_ID, &window, 1));
	struct iommu_ioas_allow_iovas res = {
		.size = sizeof(res), .ioas_id = ioas, .num_iovas = 1,
		.allowed_iovas = (uintptr_t)&window, .__reserved = 1,
	};
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &res));
	iova = 0;
	if (EXPECT_OK(it_map(fd, ioas, RW, big, SZ_64K, &iova)))
		EXPECT_EQ(0x220000, iova);

	/* Two disjoint ranges: the search walks them in order. */
	struct iommu_iova_range two[2] = { { 0x10000000, 0x1000ffff }, { 0x400000, 0x7fffff } };
	EXPECT_OK(allow(fd, ioas, two, 2));
	iova = 0;
	if (EXPECT_OK(it_map(fd, ioas, RW, big, SZ_2M, &iova)))
		EXPECT_EQ(0x400000, iova);

	/* num_iovas = 0 clears the list: anywhere again. */
	EXPECT_OK(allow(fd, ioas, NULL, 0));
	iova = 0;
	if (EXPECT_OK(it_map(fd, ioas, RW, big, SZ_64K, &iova)))
		EXPECT_EQ(0x10000, iova);

	if (EXPECT_OK(it_unmap(fd, ioas, 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ(5 * SZ_64K + SZ_2M, unmapped);
	EXPECT_OK(close(fd));
}

/* --- IOMMU_IOAS_COPY --------------------------------------------------------- */

static void test_copy(void)
{
	int fd = it_open(0);
	uint32_t a = it_must_alloc(fd), b = it_must_alloc(fd);
	uint64_t iova, unmapped;

	EXPECT_OK(it_map_fixed(fd, a, big, SZ_64K, 0x100000));

	/* The whole area into B at a fixed IOVA. */
	iova = 0x400000;
	if (EXPECT_OK(it_copy(fd, FIXED_RW, b, a, SZ_64K, &iova, 0x100000)))
		EXPECT_EQ(0x400000, iova);
	EXPECT_ERRNO(EEXIST, it_copy(fd, FIXED_RW, b, a, SZ_64K, &iova, 0x100000));
	/* A piece of it: sub-ranges are allowed (iopt_get_pages()). */
	iova = 0x500000;
	EXPECT_OK(it_copy(fd, FIXED_RW, b, a, 0x2000, &iova, 0x101000));
	/* Unaligned pieces too, with alignment 1. */
	iova = 0x600000 + 0x1ff;
	EXPECT_OK(it_copy(fd, FIXED_RW, b, a, 511, &iova, 0x1001ff));
	/* Automatic IOVA in B, alignment from the source's user_va. */
	iova = 0;
	if (EXPECT_OK(it_copy(fd, RW, b, a, SZ_64K, &iova, 0x100000)))
		EXPECT_EQ(0x10000, iova);
	/* Into the same IOAS. */
	iova = 0x700000;
	EXPECT_OK(it_copy(fd, FIXED_RW, a, a, SZ_64K, &iova, 0x100000));

	/* The source range must be fully covered by contiguous areas. */
	iova = 0x800000;
	EXPECT_ERRNO(ENOENT, it_copy(fd, FIXED_RW, b, a, 0x2000, &iova, 0x10f000));
	EXPECT_ERRNO(ENOENT, it_copy(fd, FIXED_RW, b, a, 0x1000, &iova, 0x200000));
	EXPECT_ERRNO(ENOENT, it_copy(fd, FIXED_RW, b, a, 0x1000, &iova, 0x0ff000));
	/* Two adjacent areas copy as one range, into one dst area per
	 * source segment. */
	EXPECT_OK(it_map_fixed(fd, a, big + SZ_64K, SZ_64K, 0x110000));
	iova = 0x800000;
	EXPECT_OK(it_copy(fd, FIXED_RW, b, a, SZ_64K, &iova, 0x108000));
	EXPECT_ERRNO(ENOENT, it_unmap(fd, b, 0x800000, 0x4000, NULL));
	if (EXPECT_OK(it_unmap(fd, b, 0x800000, 0x8000, &unmapped)))
		EXPECT_EQ(0x8000, unmapped);
	if (EXPECT_OK(it_unmap(fd, b, 0x808000, 0x8000, &unmapped)))
		EXPECT_EQ(0x8000, unmapped);
	/* A hole in the source -> ENOENT. */
	EXPECT_ERRNO(ENOENT, it_copy(fd, FIXED_RW, b, a, 0x30000, &iova, 0x100000));

	/* Errors, in the kernel's order (iommufd_ioas_copy()). */
	iova = 0x900000;
	EXPECT_ERRNO(EOPNOTSUPP, it_copy(fd, FIXED_RW | (1u << 3), BAD_ID, BAD_ID, 0, &iova, 0));
	EXPECT_ERRNO(EOVERFLOW, it_copy(fd, FIXED_RW, BAD_ID, BAD_ID, UINT64_MAX, &iova, 0));
	EXPECT_ERRNO(EOVERFLOW, it_copy(fd, FIXED_RW, b, a, SZ_64K, &iova, UINT64_MAX));
	uint64_t far = UINT64_MAX;
	EXPECT_ERRNO(EOVERFLOW, it_copy(fd, FIXED_RW, b, a, SZ_64K, &far, 0x100000));
	EXPECT_ERRNO(EINVAL, it_copy(fd, IOMMU_IOAS_MAP_FIXED_IOVA, BAD_ID, a, SZ_64K, &iova,
				     0x100000));
	EXPECT_ERRNO(EINVAL, it_copy(fd, 0, b, a, SZ_64K, &iova, 0x100000));
	EXPECT_ERRNO(ENOENT, it_copy(fd, FIXED_RW, b, BAD_ID, SZ_64K, &iova, 0x100000));
	EXPECT_ERRNO(EINVAL, it_copy(fd, FIXED_RW, BAD_ID, a, 0, &iova, 0x100000));
	EXPECT_ERRNO(EOVERFLOW, it_copy(fd, FIXED_RW, b, a, 0x2000, &iova,
					0xfffffffffffff000ull));
	EXPECT_ERRNO(ENOENT, it_copy(fd, FIXED_RW, BAD_ID, a, SZ_64K, &iova, 0x100000));
	far = 0xfffffffffffff000ull;
	EXPECT_ERRNO(EOVERFLOW, it_copy(fd, FIXED_RW, b, a, 0x2000, &far, 0x100000));
	struct {
		struct iommu_ioas_copy cmd;
		uint64_t tail;
	} copy_tail = {
		.cmd = { .size = sizeof(copy_tail), .flags = FIXED_RW, .dst_ioas_id = b,
			 .src_ioas_id = a, .length = SZ_64K, .dst_iova = 0x900000,
			 .src_iova = 0x100000 },
		.tail = 1,
	};
	EXPECT_ERRNO(E2BIG, ioctl(fd, IOMMU_IOAS_COPY, &copy_tail));

	/* Pages mapped read-only cannot be copied writeable: EPERM
	 * (iopt_insert_area()); readable is fine. */
	EXPECT_OK(it_map(fd, a, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, big,
			 SZ_64K, &(uint64_t){ 0x1000000 }));
	iova = 0x1000000;
	EXPECT_ERRNO(EPERM, it_copy(fd, FIXED_RW, b, a, SZ_64K, &iova, 0x1000000));
	EXPECT_ERRNO(EPERM, it_copy(fd, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE, b,
				    a, SZ_64K, &iova, 0x1000000));
	EXPECT_OK(it_copy(fd, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, b, a, SZ_64K,
			  &iova, 0x1000000));

	/* A copy refers to the memory, not to the source area: it outlives
	 * the source's unmap and the source IOAS, and can be copied back. */
	if (EXPECT_OK(it_unmap(fd, a, 0x100000, SZ_64K, &unmapped)))
		EXPECT_EQ(SZ_64K, unmapped);
	EXPECT_ERRNO(ENOENT, it_copy(fd, FIXED_RW, b, a, SZ_64K, &(uint64_t){ 0x2000000 },
				     0x100000));
	EXPECT_OK(it_destroy(fd, a));
	uint32_t c = it_must_alloc(fd);
	EXPECT_EQ(a, c);
	iova = 0x100000;
	EXPECT_OK(it_copy(fd, FIXED_RW, c, b, SZ_64K, &iova, 0x400000));
	if (EXPECT_OK(it_unmap(fd, b, 0x400000, SZ_64K, &unmapped)))
		EXPECT_EQ(SZ_64K, unmapped);
	if (EXPECT_OK(it_unmap(fd, c, 0x100000, SZ_64K, &unmapped)))
		EXPECT_EQ(SZ_64K, unmapped);
	/* What is left in B: 0x500000 (8K), 0x6001ff (511), 0x10000 (64K),
	 * 0x1000000 (64K). */
	if (EXPECT_OK(it_unmap(fd, b, 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ(0x2000 + 511 + 2 * SZ_64K, unmapped);
	EXPECT_OK(close(fd));
}

/* --- IOMMU_OPTION ------------------------------------------------------------ */

static void test_option(void)
{
	int fd = it_open(0);
	uint32_t ioas = it_must_alloc(fd);
	uint64_t val, unmapped;

	/* HUGE_PAGES: GET 1 by default. */
	val = 7;
	if (EXPECT_OK(it_option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas, &val)))
		EXPECT_EQ(1, val);

	/* An area not page aligned blocks SET 0 (EADDRINUSE from
	 * iopt_check_iova_alignment()). */
	EXPECT_OK(it_map_fixed(fd, ioas, big + 0x10, 0x100, 0x10));
	val = 0;
	EXPECT_ERRNO(EADDRINUSE,
		     it_option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, &val));
	if (EXPECT_OK(it_option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas, &val)))
		EXPECT_EQ(1, val);
	if (EXPECT_OK(it_unmap(fd, ioas, 0x10, 0x100, &unmapped)))
		EXPECT_EQ(0x100, unmapped);

	/* SET 0: iova_alignment becomes PAGE_SIZE. Page aligned areas are ok. */
	EXPECT_OK(it_map_fixed(fd, ioas, big, SZ_64K, 0x100000));
	val = 0;
	EXPECT_OK(it_option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, &val));
	EXPECT_OK(it_option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, &val));
	val = 9;
	if (EXPECT_OK(it_option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas, &val)))
		EXPECT_EQ(0, val);
	struct iommu_ioas_iova_ranges ranges = { .size = sizeof(ranges), .ioas_id = ioas };
	EXPECT_ERRNO(EMSGSIZE, ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &ranges));
	EXPECT_EQ(IT_PAGE, ranges.out_iova_alignment);
	/* Now length, iova and the page offset of user_va must be page
	 * multiples: EINVAL otherwise. */
	EXPECT_ERRNO(EINVAL, it_map_fixed(fd, ioas, big, 0x1800, 0x200000));
	EXPECT_ERRNO(EINVAL, it_map_fixed(fd, ioas, big, 0x1000, 0x200800));
	EXPECT_ERRNO(EINVAL, it_map_fixed(fd, ioas, big + 0x800, 0x1000, 0x200000));
	uint64_t iova = 0;
	EXPECT_ERRNO(EINVAL, it_map(fd, ioas, RW, big + 0x800, 0x1000, &iova));
	EXPECT_ERRNO(EINVAL, it_unmap(fd, ioas, 0x100000, 0, NULL));
	EXPECT_OK(it_map_fixed(fd, ioas, big, 0x1000, 0x200000));

	/* SET 1: back to alignment 1. */
	val = 1;
	EXPECT_OK(it_option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, &val));
	if (EXPECT_OK(it_option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas, &val)))
		EXPECT_EQ(1, val);
	ranges.num_iovas = 0; /* the last call wrote 1 there */
	ranges.out_iova_alignment = 0;
	EXPECT_ERRNO(EMSGSIZE, ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &ranges));
	EXPECT_EQ(1, ranges.out_iova_alignment);
	EXPECT_OK(it_map_fixed(fd, ioas, big + 0x800, 0x1800, 0x300800));

	/* Errors. */
	val = 2;
	EXPECT_ERRNO(EINVAL, it_option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, &val));
	EXPECT_ERRNO(EOPNOTSUPP, it_option(fd, IOMMU_OPTION_HUGE_PAGES, 2, ioas, &val));
	EXPECT_ERRNO(ENOENT, it_option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, BAD_ID, &val));
	EXPECT_ERRNO(ENOENT, it_option(fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, 0, &val));
	EXPECT_ERRNO(EOPNOTSUPP, it_option(fd, 2, IOMMU_OPTION_OP_GET, ioas, &val));
	EXPECT_ERRNO(EOPNOTSUPP, it_option(fd, 0xffffffff, IOMMU_OPTION_OP_GET, 0, &val));
	struct iommu_option res = {
		.size = sizeof(res), .option_id = IOMMU_OPTION_HUGE_PAGES,
		.op = IOMMU_OPTION_OP_GET, .__reserved = 1, .object_id = ioas,
	};
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_OPTION, &res));

	/* Only val64 is written back. */
	struct {
		struct iommu_option cmd;
		uint64_t tail;
	} full = {
		.cmd = { .size = sizeof(full), .option_id = IOMMU_OPTION_HUGE_PAGES,
			 .op = IOMMU_OPTION_OP_GET, .object_id = ioas, .val64 = 5 },
	};
	if (EXPECT_OK(ioctl(fd, IOMMU_OPTION, &full))) {
		EXPECT_EQ(1, full.cmd.val64);
		EXPECT_EQ(sizeof(full), full.cmd.size);
		EXPECT_EQ(IOMMU_OPTION_OP_GET, full.cmd.op);
		EXPECT_EQ(ioas, full.cmd.object_id);
		EXPECT_EQ(0, full.tail);
	}

	/* RLIMIT_MODE (per context): GET 0 for /dev/iommu; object_id must be
	 * 0; SET needs CAP_SYS_RESOURCE, then an empty context, then 0/1. */
	val = 9;
	if (EXPECT_OK(it_option(fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, &val)))
		EXPECT_EQ(0, val);
	EXPECT_ERRNO(EOPNOTSUPP, it_option(fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, ioas, &val));
	EXPECT_ERRNO(EOPNOTSUPP, it_option(fd, IOMMU_OPTION_RLIMIT_MODE, 2, 0, &val));
	bool cap = it_has_cap(24 /* CAP_SYS_RESOURCE */);
	val = 1;
	EXPECT_ERRNO(cap ? EBUSY : EPERM,
		     it_option(fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &val));
	int fresh = it_open(0);
	if (cap) {
		val = 2;
		EXPECT_ERRNO(EINVAL, it_option(fresh, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &val));
		val = 1;
		EXPECT_OK(it_option(fresh, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &val));
		val = 0;
		if (EXPECT_OK(it_option(fresh, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, &val)))
			EXPECT_EQ(1, val);
		/* Per context: the other one is still 0. */
		if (EXPECT_OK(it_option(fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, &val)))
			EXPECT_EQ(0, val);
		/* Once an object exists: EBUSY, even for the same value. */
		uint32_t id = it_must_alloc(fresh);
		val = 1;
		EXPECT_ERRNO(EBUSY, it_option(fresh, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &val));
		EXPECT_OK(it_destroy(fresh, id));
		val = 0;
		EXPECT_OK(it_option(fresh, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &val));
	} else {
		val = 1;
		EXPECT_ERRNO(EPERM, it_option(fresh, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &val));
	}
	EXPECT_OK(close(fresh));

	if (EXPECT_OK(it_unmap(fd, ioas, 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ(SZ_64K + 0x1000 + 0x1800, unmapped);
	EXPECT_OK(close(fd));
}

/* --- IOMMU_VFIO_IOAS (vfio_compat.c iommufd_vfio_ioas()) -------------------- */

static int vfio_ioas(int fd, uint16_t op, uint32_t *id)
{
	struct iommu_vfio_ioas cmd = { .size = sizeof(cmd), .ioas_id = *id, .op = op };
	int rc = ioctl(fd, IOMMU_VFIO_IOAS, &cmd);
	*id = cmd.ioas_id;
	return rc;
}

static void test_vfio_ioas(void)
{
	int fd = it_open(0);
	uint32_t id = 0;
	/* No compat IOAS yet -> ENODEV. */
	EXPECT_ERRNO(ENODEV, vfio_ioas(fd, IOMMU_VFIO_IOAS_GET, &id));
	uint32_t a = it_must_alloc(fd), b = it_must_alloc(fd);
	id = BAD_ID;
	EXPECT_ERRNO(ENOENT, vfio_ioas(fd, IOMMU_VFIO_IOAS_SET, &id));
	id = b;
	EXPECT_OK(vfio_ioas(fd, IOMMU_VFIO_IOAS_SET, &id));
	id = 0;
	if (EXPECT_OK(vfio_ioas(fd, IOMMU_VFIO_IOAS_GET, &id)))
		EXPECT_EQ(b, id);
	id = a;
	EXPECT_OK(vfio_ioas(fd, IOMMU_VFIO_IOAS_SET, &id));
	id = 0;
	if (EXPECT_OK(vfio_ioas(fd, IOMMU_VFIO_IOAS_GET, &id)))
		EXPECT_EQ(a, id);
	/* CLEAR unsets (and destroys nothing). */
	EXPECT_OK(vfio_ioas(fd, IOMMU_VFIO_IOAS_CLEAR, &id));
	EXPECT_ERRNO(ENODEV, vfio_ioas(fd, IOMMU_VFIO_IOAS_GET, &id));
	/* Destroying the compat IOAS is allowed and unsets it. */
	id = b;
	EXPECT_OK(vfio_ioas(fd, IOMMU_VFIO_IOAS_SET, &id));
	EXPECT_OK(it_destroy(fd, b));
	EXPECT_ERRNO(ENODEV, vfio_ioas(fd, IOMMU_VFIO_IOAS_GET, &id));
	id = a;
	EXPECT_ERRNO(EOPNOTSUPP, vfio_ioas(fd, 3, &id));
	struct iommu_vfio_ioas res = {
		.size = sizeof(res), .ioas_id = a, .op = IOMMU_VFIO_IOAS_SET, .__reserved = 1,
	};
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(fd, IOMMU_VFIO_IOAS, &res));
	EXPECT_OK(it_destroy(fd, a));
	EXPECT_OK(close(fd));
}

/* --- many objects and mappings in one context ------------------------------ */

static void test_many(void)
{
	int fd = it_open(0);
	enum { N_IOAS = 64, N_MAPS = 256 };
	uint32_t ids[N_IOAS];
	for (int i = 0; i < N_IOAS; i++) {
		ids[i] = it_must_alloc(fd);
		EXPECT_EQ(i + 1, ids[i]);
	}
	/* Many areas in one IOAS, every other page. */
	for (int i = 0; i < N_MAPS; i++)
		if (!EXPECT_OK(it_map_fixed(fd, ids[0], big + (size_t)i * IT_PAGE, IT_PAGE,
					    0x1000000 + (uint64_t)i * 2 * IT_PAGE)))
			break;
	/* ... copied whole into the next IOAS (with holes: ENOENT), then
	 * area by area. */
	uint64_t iova = 0x1000000;
	EXPECT_ERRNO(ENOENT, it_copy(fd, FIXED_RW, ids[1], ids[0], 2 * N_MAPS * IT_PAGE, &iova,
				     0x1000000));
	for (int i = 0; i < N_MAPS; i += 7) {
		iova = 0x1000000 + (uint64_t)i * 2 * IT_PAGE;
		EXPECT_OK(it_copy(fd, FIXED_RW, ids[1], ids[0], IT_PAGE, &iova, iova));
	}
	/* Destroying IOASes with mappings frees them. */
	for (int i = 0; i < N_IOAS; i++)
		EXPECT_OK(it_destroy(fd, ids[i]));
	if (EXPECT_OK(it_ioas_alloc(fd, &ids[0])))
		EXPECT_EQ(1, ids[0]);
	EXPECT_OK(close(fd));
}

int main(int argc, char **argv)
{
	it_init(argc, argv);
	big = aligned_buffer();

	test_alloc_destroy();
	test_ioctl_rules();
	test_iova_ranges();
	test_map_unmap();
	test_allow_iovas();
	test_copy();
	test_option();
	test_vfio_ioas();
	test_many();
	return it_finish();
}
