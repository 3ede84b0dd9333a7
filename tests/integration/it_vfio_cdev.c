/* SPDX-License-Identifier: MIT */
/*
 * it_vfio_cdev: an emulated device through its VFIO cdev,
 * /dev/vfio/devices/<name> ($IOASID_TEST_VFIO_DIR), as an unmodified VFIO
 * program uses one: built against the kernel's own <linux/vfio.h> and
 * <linux/iommufd.h> (6.12), with the fields of later kernels (PASID attach
 * 6.15, bind token 6.17) declared here in their kernel layout.
 *
 * The default topology: vfio2 is nic0 (VT-d, PASID), vfio3 nvme0 (VT-d,
 * no PASID), vfio4 and vfio5 gpu0 and gpu0-audio (one IOMMU group).
 *
 * Covered: bind (out_devid is the DEVICE object), attach to an IOAS (an
 * automatic HWPT), replace, GET_HW_INFO through the devid, PASID attach to
 * a PASID-capable HWPT, detach; the errno rules of drivers/vfio/
 * device_cdev.c for each (sizes, flags, fd numbers, bind twice, no
 * PASID, write-back fault); the device queries of a device without
 * regions; the iommufd context living on while a bound device file holds
 * it; another process: the device already open elsewhere (EINVAL), a
 * group sibling owned by another iommufd (EBUSY), the device free again
 * once closed, and once its holder exits; a forked child sharing the
 * parent's device file.
 *
 * Works on the socket through the shim and on the CUSE nodes alike.
 */
#define _GNU_SOURCE
#include "it_common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/vfio.h>

#include <ioasid/emu.h> /* only for the emulated DMA that shows the attach works */

/* Later layouts, as the kernel defines them. */
struct it_bind_617 {
	__u32 argsz;
	__u32 flags;
	__s32 iommufd;
	__u32 out_devid;
	__aligned_u64 token_uuid_ptr;
};
#define IT_BIND_FLAG_TOKEN (1u << 0)

struct it_attach_615 {
	__u32 argsz;
	__u32 flags;
	__u32 pt_id;
	__u32 pasid;
};
#define IT_ATTACH_PASID (1u << 0)

struct it_detach_615 {
	__u32 argsz;
	__u32 flags;
	__u32 pasid;
};
#define IT_DETACH_PASID (1u << 0)

#define IT_HWPT_ALLOC_PASID (1u << 3) /* Linux 6.15 */

static char vfio_dir[256];

static int open_dev(const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", vfio_dir, name);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		IT_FATAL("open %s: %s", path, it_errname(errno));
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

static int attach_pt(int dev, uint32_t *pt_id)
{
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach), .pt_id = *pt_id };
	int rc = ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach);
	if (rc == 0)
		*pt_id = attach.pt_id;
	return rc;
}

static int detach_pt(int dev)
{
	struct vfio_device_detach_iommufd_pt detach = { .argsz = sizeof(detach) };
	return ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach);
}

static int hw_info(int iommufd, uint32_t devid, uint32_t *type)
{
	struct iommu_hw_info info = { .size = sizeof(info), .dev_id = devid };
	int rc = ioctl(iommufd, IOMMU_GET_HW_INFO, &info);
	if (rc == 0)
		*type = info.out_data_type;
	return rc;
}

static int hwpt_alloc(int iommufd, uint32_t flags, uint32_t devid, uint32_t pt_id, uint32_t *out)
{
	struct iommu_hwpt_alloc alloc = {
		.size = sizeof(alloc), .flags = flags, .dev_id = devid, .pt_id = pt_id,
		.data_type = IOMMU_HWPT_DATA_NONE,
	};
	int rc = ioctl(iommufd, IOMMU_HWPT_ALLOC, &alloc);
	if (rc == 0)
		*out = alloc.out_hwpt_id;
	return rc;
}

/* The status report's object `id` of this file's context (NULL if none);
 * the report is handed back for freeing. */
static const struct it_json *status_object(int iommufd, uint32_t id, struct it_json **report)
{
	*report = it_status_json(iommufd, false);
	const struct it_json *contexts = *report ? it_status_contexts(*report) : NULL;
	if (!contexts || contexts->count != 1)
		return NULL;
	const struct it_json *objects = it_json_get(contexts->items[0], "objects");
	for (size_t i = 0; objects && i < objects->count; i++)
		if (it_json_int(objects->items[i], "id", -1) == (long long)id)
			return objects->items[i];
	return NULL;
}

static const char *json_string(const struct it_json *object, const char *key)
{
	const struct it_json *v = object ? it_json_get(object, key) : NULL;
	return v && v->type == IT_JSON_STRING ? v->string : "";
}

/* --- before the bind ---------------------------------------------------- */

static void before_bind(int dev)
{
	it_set_role("before bind");
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach), .pt_id = 1 };
	struct vfio_device_detach_iommufd_pt detach = { .argsz = sizeof(detach) };
	struct vfio_device_info info = { .argsz = sizeof(info) };
	char buf[16];
	/* Nothing but the bind: every other number is EINVAL, even unknown
	 * ones, and read/write too. */
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach));
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_RESET));
	EXPECT_ERRNO(EINVAL, ioctl(dev, _IO(VFIO_TYPE, 0x60), NULL));
	EXPECT_ERRNO(EINVAL, read(dev, buf, sizeof(buf)));
	EXPECT_ERRNO(EINVAL, write(dev, buf, sizeof(buf)));
	EXPECT_ERRNO(EINVAL, pread(dev, buf, sizeof(buf), 0));
}

static void bind_errors(int dev, int iommufd)
{
	it_set_role("bind errors");
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = iommufd };

	bind.argsz = 15; /* minsz: through out_devid */
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	bind.argsz = sizeof(bind);
	bind.flags = 2;
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	bind.flags = 0;
	bind.iommufd = -1;
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	EXPECT_ERRNO(EFAULT, ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, NULL));

	/* An fd number that is not open; one that is open but no iommufd
	 * (a pipe, the device file itself). */
	int spare = dup(0);
	if (spare >= 0)
		close(spare);
	bind.iommufd = spare >= 0 ? spare : 900;
	EXPECT_ERRNO(EBADF, ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	int pipes[2];
	if (EXPECT_OK(pipe(pipes))) {
		bind.iommufd = pipes[0];
		EXPECT_ERRNO(EBADFD, ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind));
		close(pipes[0]);
		close(pipes[1]);
	}
	bind.iommufd = dev;
	EXPECT_ERRNO(EBADFD, ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind));

	/* 6.17 layout: a longer struct must be zero past what the kernel
	 * knows (copy_struct_from_user); a token is refused for a device
	 * that is neither PF nor VF, once read. */
	struct {
		struct it_bind_617 bind;
		__u64 tail;
	} big = { { .argsz = sizeof(big), .iommufd = iommufd }, 1 };
	EXPECT_ERRNO(E2BIG, ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &big));
	unsigned char uuid[16] = { 1 };
	struct it_bind_617 token = { .argsz = sizeof(token), .flags = IT_BIND_FLAG_TOKEN,
				     .iommufd = iommufd, .token_uuid_ptr = (uintptr_t)uuid };
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &token));
	token.token_uuid_ptr = 8; /* unmapped */
	EXPECT_ERRNO(EFAULT, ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &token));
}

/* --- bound --------------------------------------------------------------- */

static uint32_t bind_ok(int dev, int iommufd)
{
	it_set_role("bind");
	/* Through a dup of the iommufd: any number for the same file. */
	int copy = dup(iommufd);
	if (copy < 0)
		IT_FATAL("dup: %s", it_errname(errno));
	uint32_t devid = 0;
	if (!EXPECT_OK(bind_dev(dev, copy, &devid)))
		IT_FATAL("cannot bind: nothing else to test");
	close(copy);
	EXPECT_TRUE(devid != 0);
	/* One file binds once. */
	EXPECT_ERRNO(EINVAL, bind_dev(dev, iommufd, NULL));

	/* out_devid is the DEVICE object of that iommufd. */
	struct it_json *report;
	const struct it_json *object = status_object(iommufd, devid, &report);
	if (EXPECT_TRUE(object != NULL)) {
		EXPECT_TRUE(strcmp(json_string(object, "type"), "device") == 0);
		EXPECT_TRUE(strcmp(json_string(object, "name"), "nic0") == 0);
	}
	it_json_free(report);
	/* Only closing the device file destroys it. */
	EXPECT_ERRNO(EBUSY, it_destroy(iommufd, devid));

	uint32_t type = 0;
	if (EXPECT_OK(hw_info(iommufd, devid, &type)))
		EXPECT_EQ(IOMMU_HW_INFO_TYPE_INTEL_VTD, type);
	return devid;
}

static void attach_detach(int dev, int iommufd, uint32_t devid)
{
	it_set_role("attach");
	uint32_t ioas = it_must_alloc(iommufd);
	uint32_t pt = ioas;
	if (!EXPECT_OK(attach_pt(dev, &pt)))
		return;
	/* An automatic HWPT, whose id comes back. */
	EXPECT_TRUE(pt != ioas);
	struct it_json *report;
	const struct it_json *object = status_object(iommufd, pt, &report);
	EXPECT_TRUE(object && strcmp(json_string(object, "type"), "hwpt_paging") == 0);
	it_json_free(report);
	object = status_object(iommufd, devid, &report);
	EXPECT_EQ(pt, it_json_int(object, "hwpt", 0));
	it_json_free(report);

	/* The device's DMA goes through it into our memory. */
	char *buf = it_buffer(IT_PAGE);
	if (EXPECT_OK(it_map_fixed(iommufd, ioas, buf, IT_PAGE, 0x100000))) {
		static const char hello[] = "hello over vfio";
		struct ioasid_emu_dma dma = {
			.size = sizeof(dma), .flags = IOASID_EMU_DMA_WRITE, .dev_id = devid,
			.iova = 0x100000, .length = sizeof(hello), .buf_uptr = (uintptr_t)hello,
		};
		if (EXPECT_OK(ioctl(iommufd, IOASID_EMU_DMA, &dma)))
			EXPECT_TRUE(memcmp(buf, hello, sizeof(hello)) == 0);
	}

	/* Attaching the same again changes nothing; another IOAS replaces. */
	uint32_t again = ioas;
	if (EXPECT_OK(attach_pt(dev, &again)))
		EXPECT_EQ(pt, again);
	uint32_t ioas2 = it_must_alloc(iommufd);
	uint32_t pt2 = ioas2;
	if (EXPECT_OK(attach_pt(dev, &pt2))) {
		EXPECT_TRUE(pt2 != pt && pt2 != ioas2);
		/* The old automatic HWPT went with its last user. */
		EXPECT_ERRNO(ENOENT, it_destroy(iommufd, pt));
	}

	/* The errno rules. */
	struct vfio_device_attach_iommufd_pt attach = { .argsz = 11, .pt_id = ioas };
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
	attach.argsz = sizeof(attach);
	attach.flags = 2;
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
	attach.flags = 0;
	attach.pt_id = 999;
	EXPECT_ERRNO(ENOENT, ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
	attach.pt_id = devid; /* not a page table */
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
	EXPECT_ERRNO(EFAULT, ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, NULL));
	/* Still attached to ioas2's HWPT after the failures. */
	struct it_json *after;
	object = status_object(iommufd, devid, &after);
	EXPECT_EQ(pt2, it_json_int(object, "hwpt", 0));
	it_json_free(after);

	/* pt_id cannot be written back (read-only struct): detached, EFAULT. */
	struct vfio_device_attach_iommufd_pt *ro =
		mmap(NULL, IT_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ro == MAP_FAILED)
		IT_FATAL("mmap: %s", it_errname(errno));
	ro->argsz = sizeof(*ro);
	ro->pt_id = ioas;
	mprotect(ro, IT_PAGE, PROT_READ);
	EXPECT_ERRNO(EFAULT, ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, ro));
	munmap(ro, IT_PAGE);
	object = status_object(iommufd, devid, &after);
	EXPECT_EQ(0, it_json_int(object, "hwpt", 0));
	it_json_free(after);
	EXPECT_ERRNO(ENOENT, it_destroy(iommufd, pt2));

	/* Detach: blocked again; detaching what is not attached succeeds. */
	pt = ioas;
	EXPECT_OK(attach_pt(dev, &pt));
	it_set_role("detach");
	EXPECT_OK(detach_pt(dev));
	object = status_object(iommufd, devid, &after);
	EXPECT_EQ(0, it_json_int(object, "hwpt", 0));
	it_json_free(after);
	EXPECT_OK(detach_pt(dev));
	struct vfio_device_detach_iommufd_pt detach = { .argsz = 7 };
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach));
	detach.argsz = sizeof(detach);
	detach.flags = 2;
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach));
	EXPECT_OK(it_destroy(iommufd, ioas2));
}

/* PASIDs (6.15): a HWPT allocated for PASIDs, attached to one. */
static void pasid(int dev, int iommufd)
{
	it_set_role("pasid");
	uint32_t ioas = it_must_alloc(iommufd);
	struct it_attach_615 attach = { .argsz = sizeof(attach), .flags = IT_ATTACH_PASID,
					.pt_id = ioas, .pasid = 5 };
	/* Automatic domains never take a PASID. */
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
	attach.argsz = 12; /* the PASID needs the field */
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));

	/* A PASID-capable HWPT: the mock unit makes one (VT-d on 6.12 does
	 * not), for vfio0, mock-dev0. */
	int mock = open_dev("vfio0");
	uint32_t mockid = 0, hwpt = 0;
	if (EXPECT_OK(bind_dev(mock, iommufd, &mockid)) &&
	    EXPECT_OK(hwpt_alloc(iommufd, IT_HWPT_ALLOC_PASID, mockid, ioas, &hwpt))) {
		attach.argsz = sizeof(attach);
		attach.pt_id = hwpt;
		if (EXPECT_OK(ioctl(mock, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach)))
			EXPECT_EQ(hwpt, attach.pt_id);
		/* PASID 0, and one past the device's width, are refused. */
		attach.pasid = 0;
		EXPECT_ERRNO(EINVAL, ioctl(mock, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
		attach.pasid = ~0u;
		EXPECT_ERRNO(EINVAL, ioctl(mock, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
		/* In use: the HWPT cannot go. */
		EXPECT_ERRNO(EBUSY, it_destroy(iommufd, hwpt));
		struct it_detach_615 detach = { .argsz = 8, .flags = IT_DETACH_PASID, .pasid = 5 };
		EXPECT_ERRNO(EINVAL, ioctl(mock, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach));
		detach.argsz = sizeof(detach);
		EXPECT_OK(ioctl(mock, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach));
		EXPECT_OK(it_destroy(iommufd, hwpt));
	}
	close(mock);
	EXPECT_OK(it_destroy(iommufd, ioas));
}

/* A device without PASID support: the PASID flags are EOPNOTSUPP. */
static void no_pasid_device(int iommufd)
{
	it_set_role("no pasid");
	int dev = open_dev("vfio3");
	uint32_t devid = 0;
	if (EXPECT_OK(bind_dev(dev, iommufd, &devid))) {
		struct it_attach_615 attach = { .argsz = 12, .flags = IT_ATTACH_PASID, .pt_id = 1 };
		EXPECT_ERRNO(EOPNOTSUPP, ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach));
		struct it_detach_615 detach = { .argsz = sizeof(detach), .flags = IT_DETACH_PASID,
						.pasid = 1 };
		EXPECT_ERRNO(EOPNOTSUPP, ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach));
	}
	close(dev);
	/* Closing unbinds: the DEVICE object is gone. */
	if (devid)
		EXPECT_ERRNO(ENOENT, it_destroy(iommufd, devid));
}

/* What the device answers once bound: no region, no interrupt, no reset. */
static void queries(int dev)
{
	it_set_role("queries");
	struct vfio_device_info info = { .argsz = sizeof(info), .flags = ~0u, .num_regions = ~0u };
	if (EXPECT_OK(ioctl(dev, VFIO_DEVICE_GET_INFO, &info))) {
		EXPECT_EQ(0, info.flags);
		EXPECT_EQ(0, info.num_regions);
		EXPECT_EQ(0, info.num_irqs);
	}
	info.argsz = 15;
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_GET_INFO, &info));
	struct vfio_region_info region = { .argsz = sizeof(region), .index = 0 };
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &region));
	struct vfio_irq_info irq = { .argsz = sizeof(irq), .index = 0 };
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &irq));
	EXPECT_ERRNO(EINVAL, ioctl(dev, VFIO_DEVICE_RESET));
	struct vfio_device_feature feature = { .argsz = sizeof(feature),
					       .flags = VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET | 1 };
	EXPECT_ERRNO(ENOTTY, ioctl(dev, VFIO_DEVICE_FEATURE, &feature));
	EXPECT_ERRNO(ENOTTY, ioctl(dev, _IO(VFIO_TYPE, 0x60), NULL));
	char buf[16];
	EXPECT_ERRNO(EINVAL, read(dev, buf, sizeof(buf)));
	EXPECT_ERRNO(EINVAL, pwrite(dev, buf, sizeof(buf), 0));
}

/* --- another process ----------------------------------------------------- */

enum { GO_TAKEN = 1, GO_FREE = 2 };

/* Forked before the main process opens anything. */
static int other_process(struct it_event *go, struct it_event *done)
{
	it_set_role("other process");
	it_event_wait(go, 90);
	int iommufd = it_open(0);
	/* nic0 is open and bound through the other process's file. */
	int dev = open_dev("vfio2");
	EXPECT_ERRNO(EINVAL, bind_dev(dev, iommufd, NULL));
	close(dev);
	/* gpu0-audio shares its IOMMU group with gpu0, which the other
	 * process's iommufd owns. */
	int audio = open_dev("vfio5");
	EXPECT_ERRNO(EBUSY, bind_dev(audio, iommufd, NULL));
	it_event_signal(done, 1);

	/* Once the other process has closed them, both are free at once. */
	it_event_wait(go, 90);
	dev = open_dev("vfio2");
	uint32_t devid = 0;
	EXPECT_OK(bind_dev(dev, iommufd, &devid));
	EXPECT_OK(bind_dev(audio, iommufd, NULL));
	uint32_t type = 0;
	if (devid && EXPECT_OK(hw_info(iommufd, devid, &type)))
		EXPECT_EQ(IOMMU_HW_INFO_TYPE_INTEL_VTD, type);
	it_event_signal(done, 2);
	/* Exits holding both: its end unbinds them. */
	return it_finish();
}

/* Binds `name` with a fresh iommufd, retrying while the device is still
 * taken (bounded: an exit is seen by the daemon a moment later). */
static bool bind_when_free(const char *name)
{
	for (int attempt = 0; attempt < 500; attempt++) {
		int iommufd = it_open(0);
		int dev = open_dev(name);
		int rc = bind_dev(dev, iommufd, NULL);
		int err = errno;
		close(dev);
		close(iommufd);
		if (rc == 0)
			return true;
		if (err != EINVAL && err != EBUSY) {
			IT_FAIL("bind %s: %s", name, it_errname(err));
			return false;
		}
		usleep(10000);
	}
	return false;
}

/* A forked child shares the parent's device file, bound, as the kernel's
 * file is shared; the file lives until both have closed it. */
static void forked(void)
{
	it_set_role("fork");
	int iommufd = it_open(0);
	int dev = open_dev("vfio7");
	uint32_t devid = 0;
	if (!EXPECT_OK(bind_dev(dev, iommufd, &devid)))
		return;
	uint32_t ioas = it_must_alloc(iommufd);
	pid_t child = fork();
	if (child < 0)
		IT_FATAL("fork: %s", it_errname(errno));
	if (child == 0) {
		it_set_role("fork child");
		/* The same open file: bound already, attachable. */
		EXPECT_ERRNO(EINVAL, bind_dev(dev, iommufd, NULL));
		uint32_t pt = ioas;
		EXPECT_OK(attach_pt(dev, &pt));
		close(dev);
		_exit(it_finish());
	}
	EXPECT_EQ(0, it_wait_child(child, 60));
	/* The child's attach is visible here; its close ended nothing. */
	struct it_json *report;
	const struct it_json *object = status_object(iommufd, devid, &report);
	EXPECT_TRUE(it_json_int(object, "hwpt", 0) != 0);
	it_json_free(report);
	EXPECT_OK(detach_pt(dev));
	close(dev);
	close(iommufd);
	EXPECT_TRUE(bind_when_free("vfio7"));
}

int main(int argc, char **argv)
{
	it_init(argc, argv);
	const char *dir = getenv("IOASID_TEST_VFIO_DIR");
	snprintf(vfio_dir, sizeof(vfio_dir), "%s", dir && *dir ? dir : "/dev/vfio/devices");

	struct it_event go, done;
	it_event_init(&go);
	it_event_init(&done);
	pid_t other = fork();
	if (other < 0)
		IT_FATAL("fork: %s", it_errname(errno));
	if (other == 0)
		_exit(other_process(&go, &done));

	/* A name the daemon does not have is the real path's business. */
	char missing[512];
	snprintf(missing, sizeof(missing), "%s/ioasid-no-such-device", vfio_dir);
	EXPECT_ERRNO(ENOENT, open(missing, O_RDWR));

	int observer = it_open(0);
	int iommufd = it_open(0);
	long long ctx = it_context_id(iommufd);
	int dev = open_dev("vfio2");

	before_bind(dev);
	bind_errors(dev, iommufd);
	uint32_t devid = bind_ok(dev, iommufd);
	attach_detach(dev, iommufd, devid);
	pasid(dev, iommufd);
	no_pasid_device(iommufd);
	queries(dev);

	it_set_role("two processes");
	int gpu = open_dev("vfio4");
	EXPECT_OK(bind_dev(gpu, iommufd, NULL));
	it_event_signal(&go, GO_TAKEN);
	EXPECT_EQ(1, it_event_wait(&done, 90));

	/* The iommufd's context outlives its last fd while a bound device
	 * file holds it (the kernel's file reference). */
	it_set_role("context lifetime");
	uint32_t ioas = it_must_alloc(iommufd);
	close(iommufd);
	uint32_t pt = ioas;
	EXPECT_OK(attach_pt(dev, &pt));
	EXPECT_OK(detach_pt(dev));
	struct it_json *report = it_status_json(observer, true);
	EXPECT_TRUE(report && it_status_context_by_id(report, ctx) != NULL);
	it_json_free(report);

	/* Closing the device files unbinds: the other process binds them at
	 * once, and the context goes with its last reference. */
	close(gpu);
	close(dev);
	EXPECT_TRUE(it_wait_context_gone(observer, ctx, 500));
	it_event_signal(&go, GO_FREE);
	EXPECT_EQ(2, it_event_wait(&done, 90));
	EXPECT_EQ(0, it_wait_child(other, 60));

	/* The other process exited holding nic0 and gpu0-audio. */
	it_set_role("after exit");
	EXPECT_TRUE(bind_when_free("vfio2"));
	EXPECT_TRUE(bind_when_free("vfio4"));
	forked();
	close(observer);
	return it_finish();
}
