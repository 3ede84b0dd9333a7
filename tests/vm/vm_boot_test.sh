#!/bin/bash
# vm-boot: run-in-vm boots the VM and brings back exit status and output.
#   vm_boot_test.sh [RUN_IN_VM]
set -u
run_in_vm=${1:-$(dirname "$0")/run-in-vm}
failed=0

check() { # expected-status expected-output cmd...
    local want_rc=$1 want_out=$2 out rc t0=$SECONDS
    shift 2
    # From /, which the guest always has: the build dir may sit under a
    # path the guest hides (/tmp).
    out=$(cd / && "$run_in_vm" -t 120 -- "$@")
    rc=$?
    if [ "$rc" -eq 125 ] || [ "$rc" -eq 124 ]; then
        echo "not ok - '$*': run-in-vm failed with $rc (see above)"
        failed=1
    elif [ "$rc" -ne "$want_rc" ] || [ "$out" != "$want_out" ]; then
        echo "not ok - '$*': status $rc, output '$out'; want $want_rc, '$want_out'"
        failed=1
    else
        echo "ok - '$*' -> $rc ($((SECONDS - t0)) s)"
    fi
}

check 0 "" true
check 1 "vm says hello" sh -c 'echo vm says hello; exit 1'
check 42 "/dev/cuse" sh -c 'ls /dev/cuse; exit 42'
[ $failed -eq 0 ] || echo "vm-boot: FAILED (if qemu or the kernel is missing: run scripts/install-deps)"
exit $failed
