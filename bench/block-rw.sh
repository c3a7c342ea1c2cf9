#!/bin/bash
# Random 4 KiB reads and writes through the block layer against `qemu-img bench`, on the
# 1 GiB mixed image that img-convert.sh converts (bench/mixed-image.sh: random, text, zeros,
# holes), as qcow2 and as raw; each tool gets its own copy (a fresh one for every write
# run). All issue the same request pattern: the offset advances by a large odd multiple of
# 4 KiB modulo the image size (qemu-img bench's -S), 64 in flight.
# The block layer submits through io_uring, so the reference is qemu-img bench -i io_uring;
# qemu-img's usual engine (threads; native for O_DIRECT) is an extra row.
# ROUNDS rounds, the order rotated each round; min/median/max of the times, ratio of
# medians: cove time / qemu-img time (below 1: cove is faster).
# usage: [FILTER=substring] bench/block-rw.sh [COUNT] [ROUNDS]   (default 200000 requests,
#        ROUNDS default $ROUNDS or 5; env: BENCH_DIR, default /tmp/cove-bench-img;
#        SIZE_MIB, default 1024)
set -eu
cd "$(dirname "$0")/.."
BLKCAT=${BLKCAT:-build/tests/integration/block/blkcat}
[ -x "$BLKCAT" ] || { echo "build first (scripts/build build): $BLKCAT is missing" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "qemu-img is not installed" >&2; exit 1; }
COUNT=${1:-200000}
ROUNDS=${2:-${ROUNDS:-5}}
STEP=$((4096 * 7919))
DIR=${BENCH_DIR:-/tmp/cove-bench-img}
. bench/mixed-image.sh
mixed_image "$DIR"
D=$(mktemp -d "$DIR/rw.XXXXXX")
trap 'rm -rf "$D"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

. bench/timed.sh
# copy TOOL: a private copy of the case's image for TOOL, its writeback done before any run.
copy() {
	cp --sparse=always "$src" "$D/$1.img"
	sync
}

# bench_case NAME FMT MODE(r|w) DIRECT(0|1)
bench_case() {
	local name=$1 fmt=$2 mode=$3 direct=$4 src=$MIXED_QCOW2 r tool other=threads
	[ -n "${FILTER:-}" ] && [[ "$name" != *"$FILTER"* ]] && return 0
	[ "$fmt" = raw ] && src=$MIXED_RAW
	local wflag="" qcache="" cdirect=""
	[ "$mode" = w ] && wflag=-w
	[ "$direct" = 1 ] && qcache="-t none" && cdirect=direct && other=native
	local tools=(cove "qemu-img aio=io_uring" "qemu-img aio=$other")
	if [ "$mode" = r ]; then
		for tool in 0 1 2; do copy "$tool"; done
	fi
	for r in $(seq 0 $((ROUNDS - 1))); do
		for tool in $(python3 bench/benchlib.py order "$r" 0 1 2); do
			[ "$mode" = w ] && copy "$tool"
			case $tool in
			0) timed "$name" cove "$BLKCAT" bench "$D/0.img" "$COUNT" 64 4096 $STEP "$mode" $cdirect ;;
			1) # shellcheck disable=SC2086
			   timed "$name" "${tools[1]}" qemu-img bench -q $wflag $qcache -i io_uring \
				-c "$COUNT" -d 64 -s 4096 -S $STEP -f "$fmt" "$D/1.img" ;;
			2) # shellcheck disable=SC2086
			   timed "$name" "${tools[2]}" qemu-img bench -q $wflag $qcache -i $other \
				-c "$COUNT" -d 64 -s 4096 -S $STEP -f "$fmt" "$D/2.img" ;;
			esac
		done
	done
	rm -f "$D"/?.img
}

bench_case "qcow2 write (allocates in the holes)" qcow2 w 0
bench_case "qcow2 read" qcow2 r 0
bench_case "qcow2 read, O_DIRECT" qcow2 r 1
bench_case "qcow2 write, O_DIRECT" qcow2 w 1
bench_case "raw write" raw w 0
bench_case "raw read" raw r 0
bench_case "raw read, O_DIRECT" raw r 1
[ -s "$D/samples" ] || { echo "no case matches FILTER=${FILTER:-}" >&2; exit 1; }
python3 bench/benchlib.py table "$D/samples" \
	--tools "cove,qemu-img aio=io_uring,qemu-img aio=threads,qemu-img aio=native" \
	--title "random 4 KiB, $COUNT requests, 64 in flight, $SIZE_MIB MiB mixed image"
