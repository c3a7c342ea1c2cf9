#!/bin/bash
# Random 4 KiB reads and writes through the block layer against `qemu-img bench`, on the same
# images, side by side in one run. Both issue the same request pattern: the offset advances by
# a large odd multiple of 4 KiB modulo the image size (qemu-img bench's -S), 64 in flight.
# usage: [FILTER=substring] bench/block-rw.sh [COUNT] [SIZE]   (defaults: 200000 requests, 1 GiB)
set -eu
cd "$(dirname "$0")/.."
BLKCAT=${BLKCAT:-build/tests/integration/block/blkcat}
[ -x "$BLKCAT" ] || { echo "build first (scripts/build build): $BLKCAT is missing" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "qemu-img is not installed" >&2; exit 1; }
COUNT=${1:-200000}
SIZE=${2:-1G}
STEP=$((4096 * 7919))
D=$(mktemp -d /tmp/cove-bench.XXXXXX)
trap 'rm -rf "$D"' EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
row() { awk -v n="$1" -v c="$2" -v q="$3" 'BEGIN { printf "%-44s %8.3f s %8.3f s %7.2fx\n", n, c, q, q / c }'; }

# case NAME FMT CREATE_OPTS MODE(r|w) DIRECT(0|1) PREFILL(0|1)
bench_case() {
	local name=$1 fmt=$2 opts=$3 mode=$4 direct=$5 prefill=$6
	[ -n "${FILTER:-}" ] && [[ "$name" != *"$FILTER"* ]] && return 0
	for who in qemu cove; do
		rm -f "$D/$who.img"
		qemu-img create -q -f "$fmt" ${opts:+-o $opts} "$D/$who.img" "$SIZE"
		if [ "$prefill" = 1 ]; then
			qemu-img bench -q -w -c $(($(qemu-img info --output=json "$D/$who.img" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p') / 65536)) -d 16 -s 65536 -S 65536 -f "$fmt" "$D/$who.img" >/dev/null
		fi
	done
	sync
	local wflag="" qcache="" cdirect=""
	[ "$mode" = w ] && wflag=-w
	[ "$direct" = 1 ] && qcache="-t none -i native" && cdirect=direct
	local t0 t1 q c
	t0=$(now)
	qemu-img bench -q $wflag $qcache -c "$COUNT" -d 64 -s 4096 -S $STEP -f "$fmt" "$D/qemu.img" >/dev/null
	t1=$(now)
	q=$(secs "$t0" "$t1")
	t0=$(now)
	"$BLKCAT" bench "$D/cove.img" "$COUNT" 64 4096 $STEP "$mode" $cdirect
	t1=$(now)
	c=$(secs "$t0" "$t1")
	row "$name" "$c" "$q"
}

printf '%-44s %10s %10s %8s\n' "random 4 KiB, $COUNT requests, $SIZE image" cove qemu-img "qemu/cove"
bench_case "qcow2 write, new image (allocating)" qcow2 "" w 0 0
bench_case "qcow2 write, allocated image" qcow2 "" w 0 1
bench_case "qcow2 read, allocated image" qcow2 "" r 0 1
bench_case "qcow2 read, O_DIRECT" qcow2 "" r 1 1
bench_case "qcow2 write, O_DIRECT, allocated image" qcow2 "" w 1 1
bench_case "raw write" raw "" w 0 1
bench_case "raw read" raw "" r 0 1
bench_case "raw read, O_DIRECT (io_uring vs native aio)" raw "" r 1 1
echo "(ratio > 1: Cove is faster)"
