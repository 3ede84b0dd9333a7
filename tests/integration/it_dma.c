/* SPDX-License-Identifier: MIT */
/*
 * it_dma: emulated devices and their DMA through the shim against the real
 * daemon, with the default topology. nic0 (on the VT-d unit vtd0) is bound
 * with IOASID_EMU_DEVICE_BIND, attached to an IOAS (an automatic HWPT), and
 * its DMA (IOASID_EMU_DMA) lands in, and comes from, this process's own
 * buffer. Then the kernel's HWPT commands on it: IOMMU_GET_HW_INFO (VT-d),
 * IOMMU_HWPT_ALLOC with dirty tracking, attach as a replace,
 * IOMMU_HWPT_SET_DIRTY_TRACKING and IOMMU_HWPT_GET_DIRTY_BITMAP, which must
 * report exactly the pages written. After an unmap the DMA faults (EIO,
 * NOT_PRESENT). DMA ownership: another context (a second open here, and a
 * forked process of its own) cannot bind nic0, nor gpu0-audio while gpu0
 * (same IOMMU group) is bound here; a process that exits without unbinding
 * gives its device back.
 */
#define _GNU_SOURCE
#include "it_common.h"

#include <ioasid/emu.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define NPAGES 16ul
#define LEN (NPAGES * IT_PAGE)
#define IOVA 0x100000ul
/* The second-stage accessed/dirty capability (ECAP_REG bit 45, SLADS). */
#define VTD_ECAP_SLADS (1ull << 45)

static int emu_bind(int fd, const char *name, uint32_t *dev_id)
{
	struct ioasid_emu_device_bind cmd = { .size = sizeof(cmd) };
	snprintf(cmd.name, sizeof(cmd.name), "%s", name);
	int rc = ioctl(fd, IOASID_EMU_DEVICE_BIND, &cmd);
	if (rc == 0 && dev_id)
		*dev_id = cmd.out_dev_id;
	return rc;
}

static int emu_unbind(int fd, uint32_t dev_id)
{
	struct ioasid_emu_device_unbind cmd = { .size = sizeof(cmd), .dev_id = dev_id };
	return ioctl(fd, IOASID_EMU_DEVICE_UNBIND, &cmd);
}

/* Attaches the RID; *pt_id becomes the HWPT used. */
static int emu_attach(int fd, uint32_t dev_id, uint32_t *pt_id)
{
	struct ioasid_emu_device_attach cmd = {
		.size = sizeof(cmd), .dev_id = dev_id, .pt_id = *pt_id,
	};
	int rc = ioctl(fd, IOASID_EMU_DEVICE_ATTACH, &cmd);
	if (rc == 0)
		*pt_id = cmd.pt_id;
	return rc;
}

/* One DMA; `out` (may be NULL) gets the struct as the daemon left it. */
static int emu_dma(int fd, uint32_t dev_id, bool write, uint64_t iova, void *buf, uint64_t length,
	       struct ioasid_emu_dma *out)
{
	struct ioasid_emu_dma cmd = {
		.size = sizeof(cmd),
		.flags = write ? IOASID_EMU_DMA_WRITE : 0,
		.dev_id = dev_id,
		.iova = iova,
		.length = length,
		.buf_uptr = (uintptr_t)buf,
	};
	int rc = ioctl(fd, IOASID_EMU_DMA, &cmd);
	if (out)
		*out = cmd;
	return rc;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 7 + (i >> 8));
}

/* The dirty bitmap of [IOVA, IOVA + LEN) in pages, as one word. */
static uint64_t dirty_bits(int fd, uint32_t hwpt, bool clear)
{
	uint64_t bitmap = 0;
	struct iommu_hwpt_get_dirty_bitmap cmd = {
		.size = sizeof(cmd),
		.hwpt_id = hwpt,
		.flags = clear ? 0 : IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
		.iova = IOVA,
		.length = LEN,
		.page_size = IT_PAGE,
		.data = (uintptr_t)&bitmap,
	};
	EXPECT_OK(ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &cmd));
	return bitmap;
}

static void check_hw_info(int fd, uint32_t dev_id)
{
	struct iommu_hw_info_vtd vtd;
	memset(&vtd, 0xa5, sizeof(vtd));
	struct iommu_hw_info info = {
		.size = sizeof(info),
		.dev_id = dev_id,
		.data_len = sizeof(vtd),
		.data_uptr = (uintptr_t)&vtd,
	};
	if (!EXPECT_OK(ioctl(fd, IOMMU_GET_HW_INFO, &info)))
		return;
	EXPECT_EQ(IOMMU_HW_INFO_TYPE_INTEL_VTD, info.out_data_type);
	EXPECT_EQ(sizeof(vtd), info.data_len);
	EXPECT_EQ(16, info.out_max_pasid_log2);
	EXPECT_TRUE(info.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING);
	EXPECT_EQ(IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17, vtd.flags);
	EXPECT_EQ(0, vtd.__reserved);
	EXPECT_TRUE(vtd.cap_reg != 0 && vtd.cap_reg != 0xa5a5a5a5a5a5a5a5ull);
	/* vtd0 is a 48-bit unit with dirty tracking: SAGAW bit 2, MGAW 47. */
	EXPECT_EQ(1u << 2, (vtd.cap_reg >> 8) & 0x1f);
	EXPECT_EQ(47, (vtd.cap_reg >> 16) & 0x3f);
	EXPECT_TRUE(vtd.ecap_reg & VTD_ECAP_SLADS);
}

/*
 * A process of its own (forked before anything was opened, so it shares
 * nothing with the parent): nic0 is busy for it; it binds nvme0, tells the
 * parent its context, and exits without unbinding or closing.
 */
static int second_process(struct it_event *go, struct it_event *ctx_out)
{
	it_set_role("child");
	/* Only the parent's ends: EOF when it is gone. */
	close(go->wr);
	close(ctx_out->rd);
	it_event_wait(go, 90);
	int fd = it_open(0);
	EXPECT_ERRNO(EBUSY, emu_bind(fd, "nic0", NULL));
	EXPECT_ERRNO(EBUSY, emu_bind(fd, "gpu0-audio", NULL));
	uint32_t dev = 0;
	EXPECT_OK(emu_bind(fd, "nvme0", &dev));
	it_event_signal(ctx_out, (uint64_t)it_context_id(fd));
	_exit(it_finish());
}

int main(int argc, char **argv)
{
	it_init(argc, argv);
	/* The second process is forked before anything is open, so that it
	 * shares no file with this one; it waits until nic0 and gpu0 are
	 * bound here. */
	struct it_event go, ctx_ev;
	it_event_init(&go);
	it_event_init(&ctx_ev);
	pid_t pid = fork();
	if (pid < 0)
		IT_FATAL("fork: %s", it_errname(errno));
	if (pid == 0)
		second_process(&go, &ctx_ev);
	close(go.rd);
	close(ctx_ev.wr);

	int fd = it_open(0);
	unsigned char *buf = it_buffer(LEN);
	unsigned char *src = it_buffer(LEN);
	unsigned char *dst = it_buffer(LEN);

	uint32_t nic = 0;
	if (!EXPECT_OK(emu_bind(fd, "nic0", &nic)))
		return it_finish();
	EXPECT_ERRNO(EBUSY, emu_bind(fd, "nic0", NULL));
	EXPECT_ERRNO(ENODEV, emu_bind(fd, "no-such-device", NULL));
	uint32_t ioas = it_must_alloc(fd);
	EXPECT_OK(it_map_fixed(fd, ioas, buf, LEN, IOVA));

	/* Nothing attached: the device's DMA is blocked. */
	struct ioasid_emu_dma res;
	EXPECT_ERRNO(EIO, emu_dma(fd, nic, false, IOVA, dst, 16, &res));
	EXPECT_EQ(IOASID_EMU_FAULT_BLOCKED, res.out_fault_reason);

	uint32_t auto_hwpt = ioas;
	if (!EXPECT_OK(emu_attach(fd, nic, &auto_hwpt)))
		return it_finish();
	EXPECT_TRUE(auto_hwpt != ioas && auto_hwpt != nic);

	/* The device writes: the bytes appear in our own buffer. */
	fill(src, LEN, 1);
	memset(buf, 0, LEN);
	const uint64_t off = 0x1234, n = 3 * IT_PAGE + 100; /* crosses 4 pages */
	if (EXPECT_OK(emu_dma(fd, nic, true, IOVA + off, src, n, &res))) {
		EXPECT_EQ(n, res.out_done);
		EXPECT_EQ(IOASID_EMU_FAULT_NONE, res.out_fault_reason);
		EXPECT_TRUE(memcmp(buf + off, src, n) == 0);
		EXPECT_EQ(0, buf[off - 1]);
		EXPECT_EQ(0, buf[off + n]);
	}
	/* We write: the device reads it. */
	fill(buf, LEN, 99);
	memset(dst, 0, LEN);
	if (EXPECT_OK(emu_dma(fd, nic, false, IOVA, dst, LEN, &res))) {
		EXPECT_EQ(LEN, res.out_done);
		EXPECT_TRUE(memcmp(dst, buf, LEN) == 0);
	}
	/* Past the end of the mapping: what fits moves, then the fault. */
	EXPECT_ERRNO(EIO, emu_dma(fd, nic, false, IOVA + LEN - 100, dst, 300, &res));
	EXPECT_EQ(100, res.out_done);
	EXPECT_EQ(IOASID_EMU_FAULT_NOT_PRESENT, res.out_fault_reason);
	EXPECT_EQ(IOVA + LEN, res.out_fault_iova);
	EXPECT_TRUE(res.out_fault_code != 0);

	check_hw_info(fd, nic);

	/* A HWPT with dirty tracking, attached in place of the automatic one. */
	struct iommu_hwpt_alloc alloc = {
		.size = sizeof(alloc),
		.flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
		.dev_id = nic,
		.pt_id = ioas,
	};
	if (!EXPECT_OK(ioctl(fd, IOMMU_HWPT_ALLOC, &alloc)))
		return it_finish();
	uint32_t hwpt = alloc.out_hwpt_id;
	uint32_t pt = hwpt;
	EXPECT_OK(emu_attach(fd, nic, &pt));
	EXPECT_EQ(hwpt, pt);
	/* The automatic HWPT went with its last device. */
	EXPECT_ERRNO(ENOENT, it_destroy(fd, auto_hwpt));
	/* In use by nic0. */
	EXPECT_ERRNO(EBUSY, it_destroy(fd, hwpt));

	struct iommu_hwpt_set_dirty_tracking track = {
		.size = sizeof(track), .flags = IOMMU_HWPT_DIRTY_TRACKING_ENABLE, .hwpt_id = hwpt,
	};
	EXPECT_OK(ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &track));
	EXPECT_EQ(0, dirty_bits(fd, hwpt, true));
	/* Reads do not dirty; writes to pages 2-3 (one DMA) and 9 do. */
	EXPECT_OK(emu_dma(fd, nic, false, IOVA, dst, LEN, NULL));
	EXPECT_OK(emu_dma(fd, nic, true, IOVA + 2 * IT_PAGE + 4000, src, 200, NULL));
	EXPECT_OK(emu_dma(fd, nic, true, IOVA + 9 * IT_PAGE, src, 1, NULL));
	const uint64_t want = (1ull << 2) | (1ull << 3) | (1ull << 9);
	EXPECT_EQ(want, dirty_bits(fd, hwpt, false)); /* NO_CLEAR */
	EXPECT_EQ(want, dirty_bits(fd, hwpt, true));
	EXPECT_EQ(0, dirty_bits(fd, hwpt, true));
	/* A page written again after its bit was cleared is dirty again. */
	EXPECT_OK(emu_dma(fd, nic, true, IOVA + 9 * IT_PAGE + 1, src, 1, NULL));
	EXPECT_EQ(1ull << 9, dirty_bits(fd, hwpt, true));
	EXPECT_EQ(src[0], buf[9 * IT_PAGE]);
	EXPECT_EQ(src[0], buf[9 * IT_PAGE + 1]);
	track.flags = 0;
	EXPECT_OK(ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &track));

	/* Unmapped, the IOVA does not translate: EIO, NOT_PRESENT. */
	uint64_t unmapped = 0;
	if (EXPECT_OK(it_unmap(fd, ioas, IOVA, LEN, &unmapped)))
		EXPECT_EQ(LEN, unmapped);
	memset(dst, 0x77, 64);
	EXPECT_ERRNO(EIO, emu_dma(fd, nic, false, IOVA + IT_PAGE, dst, 64, &res));
	EXPECT_EQ(0, res.out_done);
	EXPECT_EQ(IOASID_EMU_FAULT_NOT_PRESENT, res.out_fault_reason);
	EXPECT_EQ(IOVA + IT_PAGE, res.out_fault_iova);
	EXPECT_EQ(0x77, dst[0]);
	EXPECT_ERRNO(EIO, emu_dma(fd, nic, true, IOVA, src, 64, &res));
	EXPECT_EQ(IOASID_EMU_FAULT_NOT_PRESENT, res.out_fault_reason);

	/* DMA ownership. gpu0 here; its group peer cannot go elsewhere. */
	uint32_t gpu = 0;
	EXPECT_OK(emu_bind(fd, "gpu0", &gpu));
	int fd2 = it_open(0);
	EXPECT_ERRNO(EBUSY, emu_bind(fd2, "nic0", NULL));
	EXPECT_ERRNO(EBUSY, emu_bind(fd2, "gpu0-audio", NULL));
	EXPECT_ERRNO(EBUSY, emu_bind(fd2, "gpu0", NULL));
	/* ...but may join it here. */
	uint32_t audio = 0;
	EXPECT_OK(emu_bind(fd, "gpu0-audio", &audio));
	EXPECT_OK(emu_unbind(fd, audio));
	EXPECT_ERRNO(ENOENT, emu_unbind(fd, audio));

	/* Another process: busy for it too; what it binds goes when it exits. */
	it_event_signal(&go, 1);
	long long child_ctx = (long long)it_event_wait(&ctx_ev, 60);
	int status = it_wait_child(pid, 60);
	if (status)
		IT_FAIL("the second process ended with status %d", status);
	if (!it_wait_context_gone(fd, child_ctx, 1000))
		IT_FAIL("the exited process's context %lld is still there", child_ctx);
	uint32_t nvme = 0;
	EXPECT_OK(emu_bind(fd2, "nvme0", &nvme));

	/* Closing a context unbinds too: nic0 and gpu0 are free again. */
	EXPECT_OK(close(fd));
	uint32_t again = 0;
	for (int i = 0; i < 500 && emu_bind(fd2, "nic0", &again) != 0; i++)
		usleep(10000);
	EXPECT_TRUE(again != 0);
	EXPECT_OK(emu_bind(fd2, "gpu0-audio", NULL));
	EXPECT_OK(close(fd2));
	close(go.wr);
	close(ctx_ev.rd);
	return it_finish();
}
