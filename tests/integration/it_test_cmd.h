/* SPDX-License-Identifier: MIT */
/*
 * The part of the selftest's IOMMU_TEST_CMD ABI (a kernel built with
 * CONFIG_IOMMUFD_TEST, drivers/iommu/iommufd/iommufd_test.h) that the
 * integration tests use, written out here: the kernel does not install
 * that header, and these programs build against the kernel's headers only.
 */
#ifndef IT_TEST_CMD_H
#define IT_TEST_CMD_H

#include <stdint.h>
#include <sys/ioctl.h>
#include <linux/iommufd.h>

enum {
	OP_MOCK_DOMAIN = 2,
	OP_CREATE_ACCESS = 5,
	OP_ACCESS_RW = 8,
	OP_MOCK_DOMAIN_REPLACE = 10,
	OP_TRIGGER_IOPF = 15,
};
enum { ACCESS_RW_WRITE = 1 };
#define HWPT_DATA_SELFTEST 0xdead

struct test_cmd {
	uint32_t size;
	uint32_t op;
	uint32_t id;
	uint32_t reserved;
	union {
		struct {
			uint32_t out_stdev_id;
			uint32_t out_hwpt_id;
			uint32_t out_idev_id;
		} mock_domain;
		struct {
			uint32_t pt_id;
		} mock_domain_replace;
		struct {
			uint32_t out_access_fd;
			uint32_t flags;
		} create_access;
		struct {
			uint64_t iova;
			uint64_t length;
			uint64_t uptr;
			uint32_t flags;
		} access_rw;
		struct {
			uint32_t dev_id;
			uint32_t pasid;
			uint32_t grpid;
			uint32_t perm;
			uint64_t addr;
		} trigger_iopf;
		uint64_t pad[6]; /* the kernel's union is 48 bytes */
	};
	uint32_t last;
};
#define TEST_CMD _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32)

#endif
