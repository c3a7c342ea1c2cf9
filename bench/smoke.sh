#!/bin/bash
# Runs every benchmark briefly (tiny sizes and counts), as CI does: each must finish with
# status 0 and print its comparison. TAP, one line per script. The figures from such short
# runs mean nothing; the real runs are by hand (bench/README.md).
# usage: bench/smoke.sh [BUILDDIR]
set -u
cd "$(dirname "$0")/.."
B=${1:-build}
B=$(cd "$B" && pwd)
n=0
failed=0
work=$(mktemp -d /tmp/cove-bench-smoke.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Two rounds: enough to run every tool in both orders (bench/benchlib.py).
export BENCH_DIR=$work SIZE_MIB=16 COUNT=2000 ROUNDS=2
export BLKCAT=$B/tests/integration/block/blkcat

# case NAME PATTERN COMMAND...: ok when COMMAND exits 0 within 120 s and prints PATTERN
# (12 cases, linux-guest.sh with 900 s: the suite's meson timeout, 2400 s, stays above them).
case_() {
	local name=$1 pat=$2 log=$work/$n.log t0 t1
	shift 2
	n=$((n + 1))
	t0=$(date +%s)
	timeout -k 10 "${CASE_TIMEOUT:-120}" "$@" >"$log" 2>&1
	local st=$?
	t1=$(date +%s)
	if [ "$st" -eq 0 ] && grep -qiE "$pat" "$log"; then
		echo "ok $n - $name ($((t1 - t0)) s)"
	else
		failed=1
		echo "not ok $n - $name (status $st)"
		tail -n 15 "$log" | sed 's/^/#   /'
	fi
}

skip_() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

if [ -c /dev/kvm ] && [ -w /dev/kvm ]; then
	case_ "vmm-startup.sh" 'cove/this' bench/vmm-startup.sh "$B" 2
	case_ "vmm-memory.sh" 'overhead' bench/vmm-memory.sh "$B"
	case_ "vmm-exits.sh" 'cove/this' bench/vmm-exits.sh "$B" 2000 2
	case_ "virtio-blk.sh" 'cove/this' bench/virtio-blk.sh "$B" 32 500 2
	if [ "$(id -u)" -eq 0 ]; then
		case_ "virtio-net.sh" 'cove/this' bench/virtio-net.sh "$B" 2000 2
		case_ "coved-start.sh" 'per VM|MiB' bench/coved-start.sh "$B" 1 2
	else
		skip_ "virtio-net.sh" "needs root (tap in a network namespace)"
		skip_ "coved-start.sh" "needs root"
	fi
else
	for s in vmm-startup vmm-memory vmm-exits virtio-blk virtio-net coved-start; do
		skip_ "$s.sh" "/dev/kvm is not usable here"
	done
fi
if command -v qemu-system-x86_64 >/dev/null; then
	CASE_TIMEOUT=900 case_ "linux-guest.sh" 'cove/microvm' bench/linux-guest.sh "$B" 1 2
else
	skip_ "linux-guest.sh" "qemu-system-x86_64 is missing"
fi
case_ "img-convert.sh" 'cove/this' bench/img-convert.sh "$B"
case_ "img-bench.sh" 'cove/this' bench/img-bench.sh "$B"
case_ "block-rw.sh" 'cove/this' bench/block-rw.sh 2000
case_ "coved-load.sh" 'p99' bench/coved-load.sh "$B" 10 1
if [ "$(id -u)" -eq 0 ]; then
	case_ "oci-lifecycle.sh" 'cove/this' bench/oci-lifecycle.sh "$B" 3
else
	skip_ "oci-lifecycle.sh" "needs root"
fi
echo "1..$n"
exit "$failed"
