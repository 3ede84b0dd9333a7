/* SPDX-License-Identifier: MIT */
/*
 * written for ioasid; ABI of Linux 6.12 include/uapi/linux/iommufd.h, plus
 * items of later kernels marked with the version that added them; MIT
 *
 * Names, values and layouts are the kernel's, so code written against
 * <linux/iommufd.h> builds unchanged against this file. The guard macro is
 * the kernel's as well: whichever of the two is included first wins and the
 * other becomes a no-op instead of a redefinition.
 *
 * tests/abi checks every size, offset and value here against the header
 * shipped in the kernel source (6.12); edit both together. Items newer than
 * that header are listed in tests/abi/check_items.py and their layout is
 * asserted in tests/abi/abi_ours.cpp.
 *
 * Kept C89-clean (no // comments, no trailing enum commas) and C++-clean.
 */
#ifndef _UAPI_IOMMUFD_H
#define _UAPI_IOMMUFD_H

#include <linux/types.h>
#include <linux/ioctl.h>

/*
 * Every argument struct opens with a __u32 size. That is the versioning
 * scheme: callers pass the size they were built with, and bytes beyond what
 * the receiver understands must be zero. Never reorder; only append.
 * All numbers are _IO() because the size travels in the struct, not in the
 * request code.
 */
#define IOMMUFD_TYPE (';')

enum {
	IOMMUFD_CMD_BASE = 0x80,
	IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE,
	IOMMUFD_CMD_IOAS_ALLOC = 0x81,
	IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82,
	IOMMUFD_CMD_IOAS_COPY = 0x83,
	IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84,
	IOMMUFD_CMD_IOAS_MAP = 0x85,
	IOMMUFD_CMD_IOAS_UNMAP = 0x86,
	IOMMUFD_CMD_OPTION = 0x87,
	IOMMUFD_CMD_VFIO_IOAS = 0x88,
	IOMMUFD_CMD_HWPT_ALLOC = 0x89,
	IOMMUFD_CMD_GET_HW_INFO = 0x8a,
	IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8b,
	IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP = 0x8c,
	IOMMUFD_CMD_HWPT_INVALIDATE = 0x8d,
	IOMMUFD_CMD_FAULT_QUEUE_ALLOC = 0x8e,
	IOMMUFD_CMD_IOAS_MAP_FILE = 0x8f	/* since Linux 6.13 */
};

/* ---- IOMMU_DESTROY ------------------------------------------------------ */

/* One ioctl for all object kinds: IDs share a single namespace per fd. */
struct iommu_destroy {
	__u32 size;
	__u32 id;
};
#define IOMMU_DESTROY _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY)

/* ---- IOMMU_IOAS_ALLOC --------------------------------------------------- */

struct iommu_ioas_alloc {
	__u32 size;
	__u32 flags;		/* none defined yet; must be 0 */
	__u32 out_ioas_id;
};
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC)

/* ---- IOMMU_IOAS_IOVA_RANGES / IOMMU_IOAS_ALLOW_IOVAS -------------------- */

/* Closed interval; "last" rather than "end" so U64_MAX is representable. */
struct iommu_iova_range {
	__aligned_u64 start;
	__aligned_u64 last;
};

/*
 * num_iovas is in/out: too small an array yields EMSGSIZE plus the needed
 * count, so callers can retry with a bigger buffer.
 */
struct iommu_ioas_iova_ranges {
	__u32 size;
	__u32 ioas_id;
	__u32 num_iovas;
	__u32 __reserved;
	__aligned_u64 allowed_iovas;	/* user pointer to iommu_iova_range[] */
	__aligned_u64 out_iova_alignment;
};
#define IOMMU_IOAS_IOVA_RANGES _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_IOVA_RANGES)

/* Replaces the whole allowed list; later attaches may not narrow it. */
struct iommu_ioas_allow_iovas {
	__u32 size;
	__u32 ioas_id;
	__u32 num_iovas;
	__u32 __reserved;
	__aligned_u64 allowed_iovas;	/* user pointer to iommu_iova_range[] */
};
#define IOMMU_IOAS_ALLOW_IOVAS _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOW_IOVAS)

/* ---- IOMMU_IOAS_MAP / IOMMU_IOAS_COPY / IOMMU_IOAS_UNMAP ---------------- */

/* Shared by MAP and COPY. Without FIXED_IOVA the kernel picks the IOVA. */
enum iommufd_ioas_map_flags {
	IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0,
	IOMMU_IOAS_MAP_WRITEABLE = 1 << 1,
	IOMMU_IOAS_MAP_READABLE = 1 << 2
};

struct iommu_ioas_map {
	__u32 size;
	__u32 flags;		/* enum iommufd_ioas_map_flags */
	__u32 ioas_id;
	__u32 __reserved;
	__aligned_u64 user_va;
	__aligned_u64 length;
	__aligned_u64 iova;	/* in with FIXED_IOVA, else out */
};
#define IOMMU_IOAS_MAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP)

/*
 * Since Linux 6.13. IOMMU_IOAS_MAP with a range of a file instead of a range
 * of the caller's address space: the mapping keeps the file, not a virtual
 * address, so it stays valid after the fd is closed, the file is unmapped
 * or the process exits. Only memfd-like files (shmem, hugetlbfs) can be
 * pinned. There is no __reserved word: fd takes its place.
 */
struct iommu_ioas_map_file {
	__u32 size;
	__u32 flags;		/* enum iommufd_ioas_map_flags */
	__u32 ioas_id;
	__s32 fd;
	__aligned_u64 start;	/* byte offset in the file */
	__aligned_u64 length;
	__aligned_u64 iova;	/* in with FIXED_IOVA, else out */
};
#define IOMMU_IOAS_MAP_FILE _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP_FILE)

/*
 * Re-uses pages already pinned by a MAP in another IOAS; the source range
 * has to be exactly one earlier MAP.
 */
struct iommu_ioas_copy {
	__u32 size;
	__u32 flags;		/* enum iommufd_ioas_map_flags */
	__u32 dst_ioas_id;
	__u32 src_ioas_id;
	__aligned_u64 length;
	__aligned_u64 dst_iova;	/* in with FIXED_IOVA, else out */
	__aligned_u64 src_iova;
};
#define IOMMU_IOAS_COPY _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_COPY)

/* No splitting of mappings; length comes back as the bytes removed. */
struct iommu_ioas_unmap {
	__u32 size;
	__u32 ioas_id;
	__aligned_u64 iova;
	__aligned_u64 length;
};
#define IOMMU_IOAS_UNMAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP)

/* ---- IOMMU_OPTION ------------------------------------------------------- */

enum iommufd_option {
	IOMMU_OPTION_RLIMIT_MODE = 0,	/* global; object_id must be 0 */
	IOMMU_OPTION_HUGE_PAGES = 1	/* per IOAS; object_id is the IOAS */
};

enum iommufd_option_ops {
	IOMMU_OPTION_OP_SET = 0,
	IOMMU_OPTION_OP_GET = 1
};

/* A multiplexer so small knobs do not each cost an ioctl number. */
struct iommu_option {
	__u32 size;
	__u32 option_id;	/* enum iommufd_option */
	__u16 op;		/* enum iommufd_option_ops */
	__u16 __reserved;
	__u32 object_id;
	__aligned_u64 val64;
};
#define IOMMU_OPTION _IO(IOMMUFD_TYPE, IOMMUFD_CMD_OPTION)

/* ---- IOMMU_VFIO_IOAS ---------------------------------------------------- */

/* The legacy VFIO container API has no IDs, so one IOAS stands in for it. */
enum iommufd_vfio_ioas_op {
	IOMMU_VFIO_IOAS_GET = 0,
	IOMMU_VFIO_IOAS_SET = 1,
	IOMMU_VFIO_IOAS_CLEAR = 2
};

struct iommu_vfio_ioas {
	__u32 size;
	__u32 ioas_id;
	__u16 op;		/* enum iommufd_vfio_ioas_op */
	__u16 __reserved;
};
#define IOMMU_VFIO_IOAS _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VFIO_IOAS)

/* ---- IOMMU_HWPT_ALLOC --------------------------------------------------- */

enum iommufd_hwpt_alloc_flags {
	IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0,
	IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1,
	IOMMU_HWPT_FAULT_ID_VALID = 1 << 2,	/* gates the fault_id field */
	IOMMU_HWPT_ALLOC_PASID = 1 << 3		/* since Linux 6.15: may be attached to a PASID */
};

/* Selects what data_uptr points at. NONE means a kernel-managed table. */
enum iommu_hwpt_data_type {
	IOMMU_HWPT_DATA_NONE = 0,
	IOMMU_HWPT_DATA_VTD_S1 = 1
};

/* Bits of iommu_hwpt_vtd_s1.flags. */
enum iommu_hwpt_vtd_s1_flags {
	IOMMU_VTD_S1_SRE = 1 << 0,
	IOMMU_VTD_S1_EAFE = 1 << 1,
	IOMMU_VTD_S1_WPE = 1 << 2
};

/* Payload for IOMMU_HWPT_DATA_VTD_S1: a guest-owned stage-1 table. */
struct iommu_hwpt_vtd_s1 {
	__aligned_u64 flags;	/* enum iommu_hwpt_vtd_s1_flags */
	__aligned_u64 pgtbl_addr;
	__u32 addr_width;
	__u32 __reserved;
};

/*
 * pt_id names an IOAS (kernel-managed table) or a NEST_PARENT hwpt (nested,
 * user-managed table described by data_type/data_uptr).
 */
struct iommu_hwpt_alloc {
	__u32 size;
	__u32 flags;		/* enum iommufd_hwpt_alloc_flags */
	__u32 dev_id;
	__u32 pt_id;
	__u32 out_hwpt_id;
	__u32 __reserved;
	__u32 data_type;	/* enum iommu_hwpt_data_type */
	__u32 data_len;
	__aligned_u64 data_uptr;
	__u32 fault_id;		/* only with IOMMU_HWPT_FAULT_ID_VALID */
	__u32 __reserved2;	/* keeps sizeof a multiple of 8 */
};
#define IOMMU_HWPT_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC)

/* ---- IOMMU_GET_HW_INFO -------------------------------------------------- */

enum iommu_hw_info_type {
	IOMMU_HW_INFO_TYPE_NONE = 0,
	IOMMU_HW_INFO_TYPE_DEFAULT = 0,	/* as an input (Linux 6.17): whatever the unit reports */
	IOMMU_HW_INFO_TYPE_INTEL_VTD = 1,
	IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2,	/* Linux 6.13 */
	IOMMU_HW_INFO_TYPE_AMD = 4		/* Linux 6.18 */
};

/* Generic bits, valid whatever out_data_type says. */
enum iommufd_hw_capabilities {
	IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0,
	IOMMU_HW_CAP_PCI_PASID_EXEC = 1 << 1,	/* meaningless if no PASID */
	IOMMU_HW_CAP_PCI_PASID_PRIV = 1 << 2	/* meaningless if no PASID */
};

enum iommu_hw_info_vtd_flags {
	/* Erratum: a nesting parent must not carry read-only mappings. */
	IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0
};

/* Raw VT-d CAP/ECAP registers; decoding is left to the VMM. */
struct iommu_hw_info_vtd {
	__u32 flags;		/* enum iommu_hw_info_vtd_flags */
	__u32 __reserved;
	__aligned_u64 cap_reg;
	__aligned_u64 ecap_reg;
};

/*
 * Since Linux 6.13. The SMMU's ID registers as read from its MMIO page:
 * IDR0-IDR5, IIDR and AIDR. Userspace may rely on the fields a guest SMMU
 * can mirror (see the SMMUv3 specification, 6.3.1-6.3.6); the rest are
 * the host's business.
 */
struct iommu_hw_info_arm_smmuv3 {
	__u32 flags;		/* none defined */
	__u32 __reserved;
	__u32 idr[6];
	__u32 iidr;
	__u32 aidr;
};

/*
 * Since Linux 6.18. The AMD IOMMU's Extended Feature registers (MMIO 0x30
 * and 0x1a0), as the host read them.
 */
struct iommu_hw_info_amd {
	__aligned_u64 efr;
	__aligned_u64 efr2;
};

/*
 * data_len is in/out: the kernel copies min(in, its size), zero-fills the
 * rest of the buffer, and reports its own size. Zero is a valid probe.
 */
/* Since Linux 6.17 (and stable backports): in_data_type names the type wanted. */
enum iommufd_hw_info_flags {
	IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1 << 0
};

struct iommu_hw_info {
	__u32 size;
	__u32 flags;		/* enum iommufd_hw_info_flags */
	__u32 dev_id;
	__u32 data_len;
	__aligned_u64 data_uptr;
	__extension__ union {	/* unnamed, as the kernel's; C89 needs the marker */
		__u32 in_data_type;	/* with IOMMU_HW_INFO_FLAG_INPUT_TYPE */
		__u32 out_data_type;	/* enum iommu_hw_info_type */
	};
	__u8 out_max_pasid_log2; /* 0: no PASID support */
	__u8 __reserved[3];
	__aligned_u64 out_capabilities; /* enum iommufd_hw_capabilities */
};
#define IOMMU_GET_HW_INFO _IO(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO)

/* ---- IOMMU_HWPT_SET_DIRTY_TRACKING / IOMMU_HWPT_GET_DIRTY_BITMAP -------- */

enum iommufd_hwpt_set_dirty_tracking_flags {
	IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1
};

struct iommu_hwpt_set_dirty_tracking {
	__u32 size;
	__u32 flags;	/* enum iommufd_hwpt_set_dirty_tracking_flags */
	__u32 hwpt_id;
	__u32 __reserved;
};
#define IOMMU_HWPT_SET_DIRTY_TRACKING \
	_IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING)

/* Read without clearing: cheaper when the range is about to be unmapped. */
enum iommufd_hwpt_get_dirty_bitmap_flags {
	IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1
};

/*
 * One bit per page_size, counted from iova, packed into __u64 words:
 * bit n is data[n / 64] & (1ULL << (n % 64)).
 */
struct iommu_hwpt_get_dirty_bitmap {
	__u32 size;
	__u32 hwpt_id;
	__u32 flags;	/* enum iommufd_hwpt_get_dirty_bitmap_flags */
	__u32 __reserved;
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 page_size;
	__aligned_u64 data;	/* user pointer to the bitmap */
};
#define IOMMU_HWPT_GET_DIRTY_BITMAP \
	_IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP)

/* ---- IOMMU_HWPT_INVALIDATE ---------------------------------------------- */

/* Note: starts at 0, unlike iommu_hwpt_data_type where 0 is NONE. */
enum iommu_hwpt_invalidate_data_type {
	IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0
};

enum iommu_hwpt_vtd_s1_invalidate_flags {
	IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0	/* clear: all paging levels */
};

/* addr 0 with npages U64_MAX means everything. addr is 4 KiB aligned. */
struct iommu_hwpt_vtd_s1_invalidate {
	__aligned_u64 addr;
	__aligned_u64 npages;
	__u32 flags;	/* enum iommu_hwpt_vtd_s1_invalidate_flags */
	__u32 __reserved;
};

/*
 * Batch of entry_num records of entry_len bytes each, so the record type can
 * grow. entry_num comes back as the count handled; 0 probes data_type.
 */
struct iommu_hwpt_invalidate {
	__u32 size;
	__u32 hwpt_id;
	__aligned_u64 data_uptr;
	__u32 data_type;	/* enum iommu_hwpt_invalidate_data_type */
	__u32 entry_len;
	__u32 entry_num;
	__u32 __reserved;
};
#define IOMMU_HWPT_INVALIDATE _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_INVALIDATE)

/* ---- IOMMU_FAULT_QUEUE_ALLOC and the fault fd's records ----------------- */

/* The returned fd is read for iommu_hwpt_pgfault, written with responses. */
struct iommu_fault_alloc {
	__u32 size;
	__u32 flags;		/* must be 0 */
	__u32 out_fault_id;
	__u32 out_fault_fd;
};
#define IOMMU_FAULT_QUEUE_ALLOC \
	_IO(IOMMUFD_TYPE, IOMMUFD_CMD_FAULT_QUEUE_ALLOC)

enum iommu_hwpt_pgfault_flags {
	IOMMU_PGFAULT_FLAGS_PASID_VALID = 1 << 0,
	IOMMU_PGFAULT_FLAGS_LAST_PAGE = 1 << 1	/* respond after this one */
};

/* EXEC and PRIV mirror the PCIe PASID TLP prefix request bits. */
enum iommu_hwpt_pgfault_perm {
	IOMMU_PGFAULT_PERM_READ = 1 << 0,
	IOMMU_PGFAULT_PERM_WRITE = 1 << 1,
	IOMMU_PGFAULT_PERM_EXEC = 1 << 2,
	IOMMU_PGFAULT_PERM_PRIV = 1 << 3
};

/* read() record. length is only a prefetch hint; 0 when there is none. */
struct iommu_hwpt_pgfault {
	__u32 flags;		/* enum iommu_hwpt_pgfault_flags */
	__u32 dev_id;
	__u32 pasid;
	__u32 grpid;
	__u32 perm;		/* enum iommu_hwpt_pgfault_perm */
	__u32 __reserved;
	__aligned_u64 addr;
	__u32 length;
	__u32 cookie;		/* echo the group's last one in the response */
};

/* PCIe page request response codes "Success" and "Invalid Request". */
enum iommufd_page_response_code {
	IOMMUFD_PAGE_RESP_SUCCESS = 0,
	IOMMUFD_PAGE_RESP_INVALID = 1
};

/* write() record. */
struct iommu_hwpt_page_response {
	__u32 cookie;
	__u32 code;		/* enum iommufd_page_response_code */
};

#endif /* _UAPI_IOMMUFD_H */
