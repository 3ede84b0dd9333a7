#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Integration test harness: one scenario against a fresh, real ioasidd.
#
#   run.sh --ioasidd PATH --preload PATH [options] -- PROGRAM [ARGS...]
#
#   --device PATH          what the programs open (IOASID_TEST_DEVICE),
#                          default /dev/iommu
#   --copies N             run N copies of PROGRAM at the same time
#   --expect-daemon-gone STATUS
#                          the program stops the daemon itself: require it
#                          gone at the end with this exit status (137 after
#                          SIGKILL, 0 after SIGTERM) instead of stopping it
#   --daemon-arg ARG       one more argument for ioasidd (repeatable)
#
# Steps: start `ioasidd --foreground --transport socket --socket $TMP/sock`,
# wait (bounded) for the socket, run the program(s) with LD_PRELOAD,
# IOASID_SOCKET, IOASID_TEST_DEVICE and IOASID_TEST_DAEMON_PID, then send
# SIGTERM and require exit status 0 (a clean shutdown with clients gone).
# Exit status: 0 pass, 77 skip (the program skipped), anything else fail.
# Waits are bounded hang guards; nothing here asserts on timing.

set -u

ioasidd=
preload=
device=/dev/iommu
copies=1
expect_gone=
daemon_args=()

while [ $# -gt 0 ]; do
	case "$1" in
	--ioasidd) ioasidd=$2; shift 2 ;;
	--preload) preload=$2; shift 2 ;;
	--device) device=$2; shift 2 ;;
	--copies) copies=$2; shift 2 ;;
	--expect-daemon-gone) expect_gone=$2; shift 2 ;;
	--daemon-arg) daemon_args+=("$2"); shift 2 ;;
	--) shift; break ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
if [ -z "$ioasidd" ] || [ -z "$preload" ] || [ $# -lt 1 ]; then
	echo "usage: run.sh --ioasidd PATH --preload PATH [options] -- PROGRAM [ARGS...]" >&2
	exit 2
fi
for f in "$ioasidd" "$1"; do
	[ -x "$f" ] || { echo "run.sh: $f is not executable" >&2; exit 2; }
done
[ -r "$preload" ] || { echo "run.sh: $preload not readable" >&2; exit 2; }

# Absolute paths: LD_PRELOAD must not depend on the current directory.
ioasidd=$(readlink -f "$ioasidd")
preload=$(readlink -f "$preload")
# In a sanitizer build the shim needs the ASan runtime loaded before it:
# preload the runtime the shim itself was linked against, first.
asan_runtime=$(ldd "$preload" 2>/dev/null | awk '/libasan\.so/ { print $3; exit }')
[ -n "$asan_runtime" ] && preload="$asan_runtime $preload"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ioasid-it.XXXXXX") || exit 2
# Reachable by an unprivileged client (it_memlock drops to uid 65534).
chmod 755 "$tmp"
sock=$tmp/sock
log=$tmp/daemon.log
daemon_pid=
pids=()
result=1

# shellcheck disable=SC2317 # called through trap
cleanup() {
	# Whatever the scenario left behind (a hung test child, say): each
	# program runs in a session of its own, killed as a whole.
	for p in "${pids[@]}"; do
		kill -KILL -- "-$p" 2>/dev/null
	done
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		kill -KILL "$daemon_pid" 2>/dev/null
		wait "$daemon_pid" 2>/dev/null
	fi
	if [ "$result" != 0 ] && [ "$result" != 77 ]; then
		echo "---- ioasidd log (last 200 lines of $log) ----" >&2
		tail -n 200 "$log" >&2 2>/dev/null
		echo "---- end of ioasidd log ----" >&2
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "run.sh: FAIL: $*" >&2
	result=1
	exit 1
}

# State of a process: R/S/D/Z/... or empty once it is gone (reaped).
proc_state() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	echo "${stat%% *}"
}

# Waits up to $2 seconds for pid $1 to end (zombie or gone). 0 when it did.
wait_gone() {
	local i state
	for ((i = 0; i < $2 * 20; i++)); do
		state=$(proc_state "$1")
		if [ -z "$state" ] || [ "$state" = Z ]; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# --- start the daemon ----------------------------------------------------------
"$ioasidd" --foreground --transport socket --socket "$sock" --log-level debug --trace \
	"${daemon_args[@]}" >"$log" 2>&1 &
daemon_pid=$!

for ((i = 0; i < 400; i++)); do
	[ -S "$sock" ] && break
	state=$(proc_state "$daemon_pid")
	if [ -z "$state" ] || [ "$state" = Z ]; then
		wait "$daemon_pid"
		fail "ioasidd exited with status $? before its socket appeared"
	fi
	sleep 0.05
done
[ -S "$sock" ] || fail "no socket at $sock 20 s after starting ioasidd"

# --- run the scenario ----------------------------------------------------------
export IOASID_SOCKET=$sock IOASID_TEST_DEVICE=$device IOASID_TEST_DAEMON_PID=$daemon_pid
pids=()
for ((c = 0; c < copies; c++)); do
	# setsid: the program and all its children form one process group.
	LD_PRELOAD="$preload" setsid "$@" &
	pids+=($!)
done
prog_status=0
skipped=0
for p in "${pids[@]}"; do
	wait "$p"
	s=$?
	if [ "$s" = 77 ]; then
		skipped=$((skipped + 1))
	elif [ "$s" != 0 ]; then
		echo "run.sh: $(basename "$1") (pid $p) exited with status $s" >&2
		prog_status=1
	fi
done

# --- the daemon's end ----------------------------------------------------------
if [ -n "$expect_gone" ]; then
	wait_gone "$daemon_pid" 30 || fail "ioasidd still running; the scenario was to stop it"
	wait "$daemon_pid" 2>/dev/null # no "Killed" notice: that is the plan
	s=$?
	daemon_pid=
	[ "$s" = "$expect_gone" ] || fail "ioasidd ended with status $s, expected $expect_gone"
else
	state=$(proc_state "$daemon_pid")
	if [ -z "$state" ] || [ "$state" = Z ]; then
		wait "$daemon_pid"
		s=$?
		daemon_pid=
		fail "ioasidd died during the scenario (status $s)"
	fi
	kill -TERM "$daemon_pid"
	wait_gone "$daemon_pid" 30 || fail "ioasidd did not exit within 30 s of SIGTERM"
	wait "$daemon_pid"
	s=$?
	daemon_pid=
	[ "$s" = 0 ] || fail "ioasidd exited with status $s after SIGTERM, expected 0"
	[ -e "$sock" ] && echo "run.sh: note: $sock still exists after shutdown" >&2
fi

[ "$prog_status" = 0 ] || fail "the scenario program failed"
if [ "$skipped" = "$copies" ]; then
	result=77
	exit 77
fi
result=0
exit 0
