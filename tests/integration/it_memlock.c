/* SPDX-License-Identifier: MIT */
/*
 * it_memlock: an unprivileged client (uid/gid 65534 when started as root,
 * else whoever runs it) with a tiny RLIMIT_MEMLOCK.
 *
 * What Linux 6.12 does for such a process on an IOAS without a domain (no
 * device is attached here): MAP and COPY pin nothing and charge nothing
 * (iopt_map_user_pages() only records a lazy reference; pages are pinned
 * when a domain is filled or an access pins them), so mappings far larger
 * than RLIMIT_MEMLOCK succeed. IOMMU_OPTION_RLIMIT_MODE SET needs
 * CAP_SYS_RESOURCE (EPERM before anything else is looked at); GET works.
 * The status report of such a client shows nothing pinned, and with
 * IOASID_STATUS_ALL only contexts of its own uid.
 */
#define _GNU_SOURCE
#include "it_common.h"

#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#define RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
#define FIXED_RW (IOMMU_IOAS_MAP_FIXED_IOVA | RW)
#define SZ_64K 0x10000ul
#define SZ_1M 0x100000ul
#define CAP_IPC_LOCK_BIT 14
#define CAP_SYS_RESOURCE_BIT 24

static int unprivileged(long long root_ctx)
{
	it_set_role("uid %d", (int)geteuid());
	if (it_has_cap(CAP_SYS_RESOURCE_BIT) || it_has_cap(CAP_IPC_LOCK_BIT)) {
		it_log("has CAP_SYS_RESOURCE or CAP_IPC_LOCK: not an unprivileged client, skipped");
		return IT_SKIP;
	}
	struct rlimit lim = { .rlim_cur = SZ_64K, .rlim_max = SZ_64K };
	ASSERT_OK(setrlimit(RLIMIT_MEMLOCK, &lim));

	int fd = open(it_device(), O_RDWR);
	if (fd < 0) {
		if (errno == EACCES || errno == EPERM) {
			it_log("open(%s) as uid %d: %s: the device is not open to this user, skipped",
			       it_device(), (int)geteuid(), it_errname(errno));
			return IT_SKIP;
		}
		IT_FATAL("open(%s): %s", it_device(), it_errname(errno));
	}

	/* 64 MiB of address space, never touched. */
	size_t len = 64 * SZ_1M;
	char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		IT_FATAL("mmap: %s", it_errname(errno));

	uint32_t a = it_must_alloc(fd), b = it_must_alloc(fd);
	/* 1024 times the limit, in one area and in many; nothing pinned. */
	EXPECT_OK(it_map_fixed(fd, a, mem, len, 0x10000000));
	for (int i = 0; i < 16; i++)
		EXPECT_OK(it_map_fixed(fd, b, mem + i * 4 * SZ_1M, 4 * SZ_1M,
				       0x40000000 + (uint64_t)i * 4 * SZ_1M));
	uint64_t iova = 0;
	EXPECT_OK(it_copy(fd, RW, b, a, len, &iova, 0x10000000));

	/* RLIMIT_MODE: GET fine, SET refused for lack of CAP_SYS_RESOURCE,
	 * whether or not the context holds objects. */
	uint64_t val = 9;
	if (EXPECT_OK(it_option(fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, &val)))
		EXPECT_EQ(0, val);
	val = 1;
	EXPECT_ERRNO(EPERM, it_option(fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &val));
	int fresh = open(it_device(), O_RDWR);
	if (fresh < 0)
		IT_FATAL("open: %s", it_errname(errno));
	val = 1;
	EXPECT_ERRNO(EPERM, it_option(fresh, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &val));
	val = 7;
	EXPECT_ERRNO(EPERM, it_option(fresh, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &val));
	EXPECT_OK(close(fresh));

	/* The report: nothing pinned here; only this uid's contexts. */
	char *text = it_status(fd, false);
	if (text) {
		struct it_json *report = it_json_parse(text);
		const struct it_json *contexts = it_status_contexts(report);
		if (!contexts || contexts->count != 1) {
			IT_FAIL("status: expected one context: %.300s", text);
		} else {
			long long uid = it_json_int(contexts->items[0], "uid", -1);
			if (uid != -1 && uid != (long long)geteuid())
				IT_FAIL("status: context of uid %lld, expected %d", uid, (int)geteuid());
			long long pinned = it_json_int(contexts->items[0], "pinned_bytes", -1);
			if (pinned != 0 && pinned != -1)
				IT_FAIL("status: pinned_bytes %lld, expected 0 (no domain)", pinned);
		}
		it_json_free(report);
		free(text);
		struct it_json *all = it_status_json(fd, true);
		if (all && root_ctx >= 0 && it_status_context_by_id(all, root_ctx))
			IT_FAIL("uid %d sees root's context %lld in the IOASID_STATUS_ALL report",
				(int)geteuid(), root_ctx);
		it_json_free(all);
	} else {
		it_log("IOASID_EMU_STATUS: %s: report checks skipped", it_errname(errno));
	}

	uint64_t unmapped = 0;
	if (EXPECT_OK(it_unmap(fd, b, 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ(2 * len, unmapped);
	if (EXPECT_OK(it_unmap(fd, a, 0, UINT64_MAX, &unmapped)))
		EXPECT_EQ(len, unmapped);
	EXPECT_OK(close(fd));
	return it_finish();
}

int main(int argc, char **argv)
{
	it_init(argc, argv);
	if (geteuid() != 0)
		return unprivileged(-1);

	/* Root holds a context of its own while the unprivileged child runs. */
	int fd = it_open(0);
	it_must_alloc(fd);
	char *text = it_status(fd, false);
	long long root_ctx = -1;
	if (text) {
		struct it_json *report = it_json_parse(text);
		const struct it_json *contexts = it_status_contexts(report);
		if (contexts && contexts->count == 1)
			root_ctx = it_json_int(contexts->items[0], "id", -1);
		it_json_free(report);
		free(text);
	}

	pid_t pid = fork();
	if (pid < 0)
		IT_FATAL("fork: %s", it_errname(errno));
	if (pid == 0) {
		close(fd);
		const uid_t nobody = 65534;
		ASSERT_OK(setgroups(0, NULL));
		ASSERT_OK(setresgid(nobody, nobody, nobody));
		ASSERT_OK(setresuid(nobody, nobody, nobody));
		/* A process that was never privileged is dumpable; the uid
		 * change cleared that. */
		ASSERT_OK(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0));
		_exit(unprivileged(root_ctx));
	}
	int status = it_wait_child(pid, 120);
	EXPECT_OK(close(fd));
	if (status == IT_SKIP && !it_failures) {
		it_log("skipped");
		return IT_SKIP;
	}
	if (status != 0)
		IT_FAIL("unprivileged child ended with status %d", status);
	return it_finish();
}
