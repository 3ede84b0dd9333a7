#!/bin/bash
# conformance_cuse.sh BUILD_DIR — the kernel's iommufd selftests through
# CUSE; runs INSIDE the VM, as root:
#
#   tests/vm/run-in-vm -w BUILD_DIR -- tests/vm/conformance_cuse.sh BUILD_DIR
#
# ioasidd serves /dev/iommu itself (--devname iommu), and the unmodified
# selftest binary opens it with no shim in between. A subset only:
#   - everything under TCG runs ~100x slower than natively;
#   - no test that needs a new fd in the caller (CREATE_ACCESS's access fd,
#     the fault queue fd of alloc_hwpt_nested: access_*, fork_*, user_copy,
#     alloc_hwpt_nested): a CUSE server answers an ioctl with bytes and
#     cannot install a file in the caller (EXPECTED.md, "Through CUSE only");
#   - no MAP_HUGETLB test, so the guest needs no hugetlb pool;
#   - no test of thousands of ioctls in a loop (ioas_iova_alloc: 8191 maps,
#     beyond the harness's 30 s per test under TCG; all_aligns*);
#   - iommufd_fail_nth is left out: it SKIPs without fault injection, as
#     the shim run already shows.
# The same run-selftests and EXPECTED.md as the shim run decide the result.
{
set -u
build=$(realpath "${1:?usage: conformance_cuse.sh BUILD_DIR}")
here=$(dirname "$(readlink -f "$0")")

tests=(-f iommufd)
for t in ioas_auto_destroy ioas_destroy hwpt_attach ioas_area_destroy ioas_area_auto_destroy \
         get_hw_info area unmap_fully_contained_areas area_auto_iova area_allowed copy_area \
         iova_ranges ioas_option_huge_pages ioas_align_change copy_sweep; do
    tests+=(-r "iommufd_ioas.mock_domain.$t")
done
for t in basic ro_unshare replace alloc_hwpt; do
    tests+=(-r "iommufd_mock_domain.one_domain.$t")
done
tests+=(-v domain_dirty8k)
for t in simple_close option_huge_pages get_info map; do
    tests+=(-r "vfio_compat_mock_domain.Ver1v2.$t")
done

exec "$here/../conformance/run-selftests" --build "$build" --transport cuse \
    --hugepages 0 --timeout "${VM_CONFORMANCE_TIMEOUT:-150}" -- "${tests[@]}"
}
