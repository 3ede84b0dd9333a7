/* SPDX-License-Identifier: MIT */
/*
 * cuse_vfio: the daemon's VFIO cdev nodes over CUSE, for the test in the VM
 * (tests/vm/cuse_suite.sh). Plain C against the kernel's own <linux/vfio.h>
 * and <linux/iommufd.h>; the iommufd node is $IOASID_TEST_DEVICE (default
 * /dev/ioasid), the devices /dev/vfio/devices/vfio2 (nic0, VT-d) and vfio3.
 *
 *   cuse_vfio bind     two opens of the iommufd node; vfio2 bound through a
 *                      dup of the second: the daemon resolves the number to
 *                      that open (its DEVICE object is there, not in the
 *                      first); attach to an IOAS (automatic HWPT), GET_HW_INFO,
 *                      detach; EBADF/EBADFD numbers; the number the daemon
 *                      asks its own node with is ENOTTY from a client; the
 *                      context outlives its fd while the device holds it;
 *                      close unbinds (a child binds at once)
 *
 * Exit: 0 pass, 1 fail, 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#include <ioasid/emu.h>

static int failures;

#define CHECK(cond, ...)                                                        \
	__extension__({                                                         \
		bool ok_ = (cond);                                              \
		if (!ok_) {                                                     \
			fprintf(stderr, "cuse_vfio[%d]: FAIL %s:%d: %s: ",      \
				(int)getpid(), __FILE__, __LINE__, #cond);      \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
			failures++;                                             \
		}                                                               \
		ok_;                                                            \
	})
#define CHECK_OK(expr)                                                          \
	__extension__({                                                         \
		errno = 0;                                                      \
		int rc_ = (expr);                                               \
		CHECK(rc_ == 0, "got %d (%s)", rc_, strerror(errno));           \
	})
#define CHECK_ERRNO(want, expr)                                                 \
	__extension__({                                                         \
		errno = 0;                                                      \
		int rc_ = (expr);                                               \
		int err_ = errno;                                               \
		CHECK(rc_ == -1 && err_ == (want), "want %s, got %d (%s)",      \
		      strerror(want), rc_, rc_ ? strerror(err_) : "-");         \
	})

static int must_open(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "cuse_vfio: FAIL: open(%s): %s\n", path, strerror(errno));
		exit(1);
	}
	return fd;
}

static int bind_dev(int dev, int iommufd, uint32_t *devid)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = iommufd };
	int rc = ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind);
	if (rc == 0 && devid)
		*devid = bind.out_devid;
	return rc;
}

static int hw_info(int iommufd, uint32_t devid, uint32_t *type)
{
	struct iommu_hw_info info = { .size = sizeof(info), .dev_id = devid };
	int rc = ioctl(iommufd, IOMMU_GET_HW_INFO, &info);
	if (rc == 0)
		*type = info.out_data_type;
	return rc;
}

static int run_bind(void)
{
	const char *node = getenv("IOASID_TEST_DEVICE");
	node = node && *node ? node : "/dev/ioasid";
	int first = must_open(node);
	int second = must_open(node);
	int dev = must_open("/dev/vfio/devices/vfio2");

	/* The daemon's own question to its node is no question for us. */
	CHECK_ERRNO(ENOTTY, ioctl(first, _IO(IOASID_EMU_TYPE, 0xff), NULL));

	int pipes[2];
	if (CHECK_OK(pipe(pipes))) {
		struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = pipes[0] };
		CHECK_ERRNO(EBADFD, ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind));
		close(pipes[1]);
		bind.iommufd = pipes[1];
		CHECK_ERRNO(EBADF, ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind));
		close(pipes[0]);
	}
	CHECK_ERRNO(EBADFD, bind_dev(dev, dev, NULL));

	/* Through a dup of the second open: its context, not the first's. */
	int copy = dup(second);
	uint32_t devid = 0, type = 0;
	if (!CHECK_OK(bind_dev(dev, copy, &devid)))
		return 1;
	close(copy);
	if (CHECK_OK(hw_info(second, devid, &type)))
		CHECK(type == IOMMU_HW_INFO_TYPE_INTEL_VTD, "type %u", type);
	CHECK_ERRNO(ENOENT, hw_info(first, devid, &type));
	CHECK_ERRNO(EINVAL, bind_dev(dev, first, NULL));

	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	CHECK_OK(ioctl(second, IOMMU_IOAS_ALLOC, &alloc));
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach),
							.pt_id = alloc.out_ioas_id };
	if (CHECK_OK(ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach)))
		CHECK(attach.pt_id != alloc.out_ioas_id, "pt_id %u: no automatic HWPT", attach.pt_id);
	struct vfio_device_detach_iommufd_pt detach = { .argsz = sizeof(detach) };
	CHECK_OK(ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach));

	/* The device file holds the context after its last fd is closed. */
	close(second);
	attach.pt_id = alloc.out_ioas_id;
	CHECK_OK(ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));

	/* Closing unbinds: another process binds at once. */
	close(dev);
	pid_t child = fork();
	if (child == 0) {
		int iommufd = must_open(node);
		int again = must_open("/dev/vfio/devices/vfio2");
		CHECK_OK(bind_dev(again, iommufd, NULL));
		_exit(failures ? 1 : 0);
	}
	int status = 0;
	CHECK(child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0,
	      "child status %#x", status);
	close(first);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "bind") == 0)
		return run_bind();
	fprintf(stderr, "usage: %s bind\n", argv[0]);
	return 2;
}
