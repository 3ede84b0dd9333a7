/* SPDX-License-Identifier: MIT */
/*
 * it_fault_fd: the fault queue's fd (IOMMU_FAULT_QUEUE_ALLOC) in an event
 * loop. The kernel's file answers poll() with POLLOUT always and POLLIN
 * while a page-request group waits to be read (fault.c
 * iommufd_fault_fops_poll()), so a program may sleep in poll() until a
 * device faults. Faults come from the selftest's TRIGGER_IOPF on a mock
 * device attached to a nested HWPT that names the queue, as the kernel's
 * own iopf test does (the test command's ABI: it_test_cmd.h).
 */
#define _GNU_SOURCE
#include "it_common.h"
#include "it_test_cmd.h"

#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int fd, fault_fd;
static uint32_t idev_id;

/* The events of `events` the fault fd has, waiting up to wait_ms for one. */
static short ready(short events, int wait_ms)
{
	struct pollfd p = { .fd = fault_fd, .events = events };
	int n = poll(&p, 1, wait_ms);
	if (n < 0)
		IT_FATAL("poll: %s", it_errname(errno));
	return n ? p.revents : 0;
}

static int trigger(uint32_t grpid)
{
	struct test_cmd cmd = { .size = sizeof(cmd), .op = OP_TRIGGER_IOPF };
	cmd.trigger_iopf.dev_id = idev_id;
	cmd.trigger_iopf.pasid = 1;
	cmd.trigger_iopf.grpid = grpid;
	cmd.trigger_iopf.perm = IOMMU_PGFAULT_PERM_READ;
	cmd.trigger_iopf.addr = 0x100000 + grpid * 0x1000ull;
	return ioctl(fd, TEST_CMD, &cmd);
}

/* Reads one group, checks it is `grpid`'s and answers it. */
static void take(uint32_t grpid)
{
	struct iommu_hwpt_pgfault rec;
	ssize_t n = read(fault_fd, &rec, sizeof(rec));
	if (n != (ssize_t)sizeof(rec)) {
		IT_FAIL("read of one record gave %zd (%s)", n, it_errname(errno));
		return;
	}
	EXPECT_EQ(grpid, rec.grpid);
	EXPECT_EQ(idev_id, rec.dev_id);
	struct iommu_hwpt_page_response resp = { .cookie = rec.cookie,
						 .code = IOMMUFD_PAGE_RESP_SUCCESS };
	EXPECT_EQ(sizeof(resp), write(fault_fd, &resp, sizeof(resp)));
}

static void setup(void)
{
	fd = it_open(0);
	uint32_t ioas = 0;
	ASSERT_OK(it_ioas_alloc(fd, &ioas));
	struct test_cmd mock = { .size = sizeof(mock), .op = OP_MOCK_DOMAIN, .id = ioas };
	ASSERT_OK(ioctl(fd, TEST_CMD, &mock));
	idev_id = mock.mock_domain.out_idev_id;

	struct iommu_fault_alloc fault = { .size = sizeof(fault) };
	ASSERT_OK(ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, &fault));
	fault_fd = (int)fault.out_fault_fd;

	struct iommu_hwpt_alloc parent = { .size = sizeof(parent),
					   .flags = IOMMU_HWPT_ALLOC_NEST_PARENT,
					   .dev_id = idev_id,
					   .pt_id = ioas };
	ASSERT_OK(ioctl(fd, IOMMU_HWPT_ALLOC, &parent));
	uint32_t iotlb = 0;
	struct iommu_hwpt_alloc nested = { .size = sizeof(nested),
					   .flags = IOMMU_HWPT_FAULT_ID_VALID,
					   .dev_id = idev_id,
					   .pt_id = parent.out_hwpt_id,
					   .data_type = HWPT_DATA_SELFTEST,
					   .data_len = sizeof(iotlb),
					   .data_uptr = (uintptr_t)&iotlb,
					   .fault_id = fault.out_fault_id };
	ASSERT_OK(ioctl(fd, IOMMU_HWPT_ALLOC, &nested));
	struct test_cmd replace = { .size = sizeof(replace), .op = OP_MOCK_DOMAIN_REPLACE,
				    .id = mock.mock_domain.out_stdev_id };
	replace.mock_domain_replace.pt_id = nested.out_hwpt_id;
	ASSERT_OK(ioctl(fd, TEST_CMD, &replace));
}

static void test_poll(void)
{
	/* Nothing queued: writable, not readable. */
	EXPECT_EQ(POLLOUT, ready(POLLIN | POLLOUT, 0));

	/* One group: poll() wakes, a read takes it, and then it is quiet. */
	ASSERT_OK(trigger(1));
	EXPECT_EQ(POLLIN, ready(POLLIN, 5000));
	EXPECT_EQ(POLLIN | POLLOUT, ready(POLLIN | POLLOUT, 0));
	take(1);
	EXPECT_EQ(POLLOUT, ready(POLLIN | POLLOUT, 0));

	/* Two groups, read one at a time: still readable after the first. */
	ASSERT_OK(trigger(2));
	ASSERT_OK(trigger(3));
	EXPECT_EQ(POLLIN, ready(POLLIN, 5000));
	take(2);
	EXPECT_EQ(POLLIN, ready(POLLIN, 5000));
	take(3);
	EXPECT_EQ(POLLOUT, ready(POLLIN | POLLOUT, 0));

	/* A read of an empty queue returns nothing and changes nothing. */
	struct iommu_hwpt_pgfault rec;
	EXPECT_EQ(0, read(fault_fd, &rec, sizeof(rec)));
	EXPECT_EQ(POLLOUT, ready(POLLIN | POLLOUT, 0));

	/* A sleeper is woken by a fault raised while it sleeps. */
	pid_t child = fork();
	if (child < 0)
		IT_FATAL("fork: %s", it_errname(errno));
	if (child == 0) {
		usleep(200 * 1000);
		_exit(trigger(4) == 0 ? 0 : 1);
	}
	EXPECT_EQ(POLLIN, ready(POLLIN, 5000));
	EXPECT_OK(it_wait_child(child, 10));
	take(4);
	EXPECT_EQ(POLLOUT, ready(POLLIN | POLLOUT, 0));
}

int main(int argc, char **argv)
{
	it_init(argc, argv);
	setup();
	test_poll();
	EXPECT_OK(close(fault_fd));
	EXPECT_OK(close(fd));
	return it_finish();
}
