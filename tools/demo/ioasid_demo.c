/* SPDX-License-Identifier: MIT */
/*
 * ioasid-demo: an ordinary iommufd program, nothing ioasid-specific in it.
 * Opens /dev/iommu (or argv[1]), makes an IO address space, maps a buffer
 * into it twice (at a chosen and at an automatic IOVA), copies a mapping to
 * a second IOAS, lists the usable ranges, and unmaps. Run it on a kernel
 * with CONFIG_IOMMUFD, on ioasidd's CUSE node, or through the preload shim.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ioasid/iommufd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int check(const char *what, int rc)
{
	if (rc)
		fprintf(stderr, "ioasid-demo: %s: %s\n", what, strerror(errno));
	return rc;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/dev/iommu";
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "ioasid-demo: open %s: %s\n", path, strerror(errno));
		return 1;
	}
	printf("opened %s\n", path);

	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	if (check("IOMMU_IOAS_ALLOC", ioctl(fd, IOMMU_IOAS_ALLOC, &alloc)))
		return 1;
	struct iommu_ioas_alloc alloc2 = { .size = sizeof(alloc2) };
	if (check("IOMMU_IOAS_ALLOC", ioctl(fd, IOMMU_IOAS_ALLOC, &alloc2)))
		return 1;
	printf("IOAS %u and IOAS %u allocated\n", alloc.out_ioas_id, alloc2.out_ioas_id);

	const size_t len = 2 << 20;
	void *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return 1;
	memset(buf, 0x5a, len);

	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = alloc.out_ioas_id,
		.user_va = (unsigned long)buf,
		.length = len,
		.iova = 1ull << 32,
	};
	if (check("IOMMU_IOAS_MAP (fixed)", ioctl(fd, IOMMU_IOAS_MAP, &map)))
		return 1;
	printf("mapped %zu KiB at IOVA %#llx\n", len >> 10, (unsigned long long)map.iova);

	map.flags = IOMMU_IOAS_MAP_READABLE;
	map.length = len / 2;
	if (check("IOMMU_IOAS_MAP (auto)", ioctl(fd, IOMMU_IOAS_MAP, &map)))
		return 1;
	printf("mapped %zu KiB read-only at automatic IOVA %#llx\n", len >> 11,
	       (unsigned long long)map.iova);

	struct iommu_ioas_copy copy = {
		.size = sizeof(copy),
		.flags = IOMMU_IOAS_MAP_READABLE,
		.dst_ioas_id = alloc2.out_ioas_id,
		.src_ioas_id = alloc.out_ioas_id,
		.length = len,
		.src_iova = 1ull << 32,
	};
	if (check("IOMMU_IOAS_COPY", ioctl(fd, IOMMU_IOAS_COPY, &copy)))
		return 1;
	printf("copied the mapping to IOAS %u at IOVA %#llx\n", alloc2.out_ioas_id,
	       (unsigned long long)copy.dst_iova);

	struct iommu_iova_range ranges[8];
	struct iommu_ioas_iova_ranges query = {
		.size = sizeof(query),
		.ioas_id = alloc.out_ioas_id,
		.num_iovas = 8,
		.allowed_iovas = (unsigned long)ranges,
	};
	if (check("IOMMU_IOAS_IOVA_RANGES", ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &query)))
		return 1;
	for (unsigned i = 0; i < query.num_iovas && i < 8; i++)
		printf("usable IOVA range %#llx-%#llx\n", (unsigned long long)ranges[i].start,
		       (unsigned long long)ranges[i].last);

	struct iommu_ioas_unmap unmap = {
		.size = sizeof(unmap), .ioas_id = alloc.out_ioas_id, .iova = 0, .length = ~0ull,
	};
	if (check("IOMMU_IOAS_UNMAP", ioctl(fd, IOMMU_IOAS_UNMAP, &unmap)))
		return 1;
	printf("unmapped %llu KiB\n", (unsigned long long)unmap.length >> 10);

	struct iommu_destroy destroy = { .size = sizeof(destroy), .id = 42 };
	if (ioctl(fd, IOMMU_DESTROY, &destroy) == 0 || errno != ENOENT)
		return 1;
	printf("IOMMU_DESTROY of object 42: %s, as expected\n", strerror(errno));
	close(fd);
	return 0;
}
