/* SPDX-License-Identifier: MIT */
/*
 * ioasid-dma-demo: an emulated device doing DMA into this process's memory
 * through an emulated Intel VT-d. Binds a device of the default topology
 * (nic0, or argv[2]) with our extension, maps a buffer, attaches the device
 * to a dirty-tracking HWPT, lets the device write and read the buffer, reads
 * the dirty bitmap, then shows the fault a DMA to an unmapped IOVA gets.
 * Everything but the bind and the DMA itself is plain iommufd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ioasid/emu.h>
#include <ioasid/iommufd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "ioasid-dma-demo: %s: %s\n", what, strerror(errno));
	return 1;
}

static int dma(int fd, __u32 dev_id, __u64 iova, void *buf, __u64 len, int write,
	       struct ioasid_emu_dma *out)
{
	*out = (struct ioasid_emu_dma){
		.size = sizeof(*out),
		.flags = write ? IOASID_EMU_DMA_WRITE : 0,
		.dev_id = dev_id,
		.iova = iova,
		.length = len,
		.buf_uptr = (unsigned long)buf,
	};
	return ioctl(fd, IOASID_EMU_DMA, out);
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/dev/iommu";
	const char *name = argc > 2 ? argv[2] : "nic0";
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fail(path);

	struct ioasid_emu_device_bind bind = { .size = sizeof(bind) };
	snprintf(bind.name, sizeof(bind.name), "%s", name);
	if (ioctl(fd, IOASID_EMU_DEVICE_BIND, &bind))
		return fail("IOASID_EMU_DEVICE_BIND");
	printf("bound %s as device %u\n", name, bind.out_dev_id);

	struct iommu_hw_info_vtd vtd;
	struct iommu_hw_info info = {
		.size = sizeof(info), .dev_id = bind.out_dev_id,
		.data_len = sizeof(vtd), .data_uptr = (unsigned long)&vtd,
	};
	if (ioctl(fd, IOMMU_GET_HW_INFO, &info))
		return fail("IOMMU_GET_HW_INFO");
	printf("hw_info type %u, cap %#llx ecap %#llx, %u PASID bits, dirty tracking %s\n",
	       info.out_data_type, (unsigned long long)vtd.cap_reg, (unsigned long long)vtd.ecap_reg,
	       info.out_max_pasid_log2,
	       info.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING ? "yes" : "no");

	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	if (ioctl(fd, IOMMU_IOAS_ALLOC, &alloc))
		return fail("IOMMU_IOAS_ALLOC");
	const size_t len = 64 << 10;
	unsigned char *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return fail("mmap");
	memset(buf, 0, len);
	const __u64 iova = 0x100000;
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = alloc.out_ioas_id, .user_va = (unsigned long)buf, .length = len, .iova = iova,
	};
	if (ioctl(fd, IOMMU_IOAS_MAP, &map))
		return fail("IOMMU_IOAS_MAP");

	struct iommu_hwpt_alloc hwpt = {
		.size = sizeof(hwpt), .flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
		.dev_id = bind.out_dev_id, .pt_id = alloc.out_ioas_id,
	};
	if (ioctl(fd, IOMMU_HWPT_ALLOC, &hwpt))
		return fail("IOMMU_HWPT_ALLOC");
	struct ioasid_emu_device_attach attach = {
		.size = sizeof(attach), .dev_id = bind.out_dev_id, .pt_id = hwpt.out_hwpt_id,
	};
	if (ioctl(fd, IOASID_EMU_DEVICE_ATTACH, &attach))
		return fail("IOASID_EMU_DEVICE_ATTACH");
	struct iommu_hwpt_set_dirty_tracking track = {
		.size = sizeof(track), .flags = IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
		.hwpt_id = hwpt.out_hwpt_id,
	};
	if (ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &track))
		return fail("IOMMU_HWPT_SET_DIRTY_TRACKING");
	printf("mapped %zu KiB at IOVA %#llx, HWPT %u (second-stage VT-d table) attached\n",
	       len >> 10, (unsigned long long)iova, hwpt.out_hwpt_id);

	/* The device writes a message into the third page. */
	char message[] = "written by an emulated device";
	struct ioasid_emu_dma result;
	if (dma(fd, bind.out_dev_id, iova + 0x2010, message, sizeof(message), 1, &result))
		return fail("IOASID_EMU_DMA write");
	printf("device wrote %llu bytes at IOVA %#llx; the buffer now says \"%s\"\n",
	       (unsigned long long)result.out_done, (unsigned long long)(iova + 0x2010),
	       (const char *)buf + 0x2010);
	if (memcmp(buf + 0x2010, message, sizeof(message)))
		return 1;

	/* And reads what the process put in the first page. */
	strcpy((char *)buf, "written by the process");
	char back[32] = { 0 };
	if (dma(fd, bind.out_dev_id, iova, back, sizeof(back) - 1, 0, &result))
		return fail("IOASID_EMU_DMA read");
	printf("device read \"%s\"\n", back);

	__u64 bitmap = 0;
	struct iommu_hwpt_get_dirty_bitmap dirty = {
		.size = sizeof(dirty), .hwpt_id = hwpt.out_hwpt_id, .iova = iova, .length = len,
		.page_size = 4096, .data = (unsigned long)&bitmap,
	};
	if (ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &dirty))
		return fail("IOMMU_HWPT_GET_DIRTY_BITMAP");
	printf("dirty bitmap over the 16 pages: %#llx (page 2 was written)\n", (unsigned long long)bitmap);

	struct iommu_ioas_unmap unmap = {
		.size = sizeof(unmap), .ioas_id = alloc.out_ioas_id, .iova = iova, .length = len,
	};
	if (ioctl(fd, IOMMU_IOAS_UNMAP, &unmap))
		return fail("IOMMU_IOAS_UNMAP");
	if (dma(fd, bind.out_dev_id, iova, back, 8, 0, &result) == 0 || errno != EIO)
		return 1;
	printf("after unmap, a device read at %#llx faults: reason %u (not present), VT-d code %#x\n",
	       (unsigned long long)result.out_fault_iova, result.out_fault_reason, result.out_fault_code);
	close(fd);
	return 0;
}
