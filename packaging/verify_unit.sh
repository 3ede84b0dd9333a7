#!/bin/sh
# verify_unit.sh SYSTEMD_ANALYZE UNIT IOASIDD
# Checks the configured unit with `systemd-analyze verify`. The unit names
# the installed daemon, which a build tree does not have yet, so a copy that
# points at the built one is checked instead.
set -eu
analyze=$1 unit=$2 ioasidd=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
grep -q '^ExecStart=.*/ioasidd --foreground' "$unit" || { echo "no ExecStart=.../ioasidd --foreground in $unit"; exit 1; }
sed "s|^ExecStart=[^ ]*/ioasidd|ExecStart=$ioasidd|" "$unit" > "$dir/ioasidd.service"
"$analyze" verify "$dir/ioasidd.service"
echo "$unit: ok"
