#!/bin/bash
# Random 4 KiB reads and writes through the block layer against `qemu-img bench`, side by
# side in one run, on the 1 GiB mixed image that img-convert.sh converts
# (bench/mixed-image.sh: random, text, zeros, holes), as qcow2 and as raw; each tool gets
# its own fresh copy. Both issue the same request pattern: the offset advances by a large
# odd multiple of 4 KiB modulo the image size (qemu-img bench's -S), 64 in flight.
# Prints both times and cove time / qemu-img time (below 1: cove is faster).
# usage: [FILTER=substring] bench/block-rw.sh [COUNT]   (default 200000 requests;
#        env: BENCH_DIR, default /tmp/cove-bench-img; SIZE_MIB, default 1024)
set -eu
cd "$(dirname "$0")/.."
BLKCAT=${BLKCAT:-build/tests/integration/block/blkcat}
[ -x "$BLKCAT" ] || { echo "build first (scripts/build build): $BLKCAT is missing" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "qemu-img is not installed" >&2; exit 1; }
COUNT=${1:-200000}
STEP=$((4096 * 7919))
DIR=${BENCH_DIR:-/tmp/cove-bench-img}
. bench/mixed-image.sh
mixed_image "$DIR"
D=$(mktemp -d "$DIR/rw.XXXXXX")
trap 'rm -rf "$D"' EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
row() { awk -v n="$1" -v c="$2" -v q="$3" 'BEGIN { printf "%-44s %8.3f s %8.3f s %9.2f\n", n, q, c, c / q }'; }

# bench_case NAME FMT MODE(r|w) DIRECT(0|1)
bench_case() {
	local name=$1 fmt=$2 mode=$3 direct=$4 src=$MIXED_QCOW2
	[ -n "${FILTER:-}" ] && [[ "$name" != *"$FILTER"* ]] && return 0
	[ "$fmt" = raw ] && src=$MIXED_RAW
	for who in qemu cove; do
		cp --sparse=always "$src" "$D/$who.img"
	done
	sync
	local wflag="" qcache="" cdirect=""
	[ "$mode" = w ] && wflag=-w
	[ "$direct" = 1 ] && qcache="-t none -i native" && cdirect=direct
	local t0 t1 q c
	t0=$(now)
	# shellcheck disable=SC2086
	qemu-img bench -q $wflag $qcache -c "$COUNT" -d 64 -s 4096 -S $STEP -f "$fmt" "$D/qemu.img" >/dev/null
	t1=$(now)
	q=$(secs "$t0" "$t1")
	t0=$(now)
	"$BLKCAT" bench "$D/cove.img" "$COUNT" 64 4096 $STEP "$mode" $cdirect
	t1=$(now)
	c=$(secs "$t0" "$t1")
	row "$name" "$c" "$q"
	rm -f "$D/qemu.img" "$D/cove.img"
}

printf '%-44s %10s %10s %9s\n' "random 4 KiB, $COUNT requests, $SIZE_MIB MiB mixed" qemu-img cove cove/qemu
bench_case "qcow2 write (allocates in the holes)" qcow2 w 0
bench_case "qcow2 read" qcow2 r 0
bench_case "qcow2 read, O_DIRECT" qcow2 r 1
bench_case "qcow2 write, O_DIRECT" qcow2 w 1
bench_case "raw write" raw w 0
bench_case "raw read" raw r 0
bench_case "raw read, O_DIRECT (io_uring vs native aio)" raw r 1
echo "(cove/qemu = cove time / qemu-img time; below 1 means cove is faster)"
