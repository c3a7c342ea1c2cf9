#!/bin/bash
# 4 KiB reads and writes through the block layer: `cove img bench` against `qemu-img bench`
# with the same arguments, on the 1 GiB mixed image that img-convert.sh converts
# (bench/mixed-image.sh: random, text, zeros, holes), as qcow2 and as raw. Writes go to a
# fresh copy for each run. cove img bench submits through io_uring, so the reference runs
# with -i io_uring; qemu-img's default engine (threads) is an extra row.
# qemu-img bench has no random mode: "strided" steps 1 MiB + 4 KiB through the image so
# each request lands in a different cluster; cove's own --random run is shown alone.
# ROUNDS rounds, the order rotated each round; min/median/max of the times, ratio of
# medians: cove time / qemu-img time (below 1: cove is faster).
# usage: bench/img-bench.sh [BUILDDIR]   (env: BENCH_DIR, COUNT default 100000, SIZE_MIB,
#        ROUNDS default 5)
set -eu
cd "$(dirname "$0")/.."
COVE=${COVE:-${1:-build}/src/cli/cove}
DIR=${BENCH_DIR:-/tmp/cove-bench-img}
COUNT=${COUNT:-100000}
ROUNDS=${ROUNDS:-5}
[ -x "$COVE" ] || { echo "no cove binary at $COVE (build first)" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "qemu-img is not installed" >&2; exit 1; }
. bench/mixed-image.sh
mixed_image "$DIR"
D=$(mktemp -d "$DIR/ib.XXXXXX")
trap 'rm -rf "$D"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
. bench/timed.sh
# image FMT WRITE: the image a run uses (a fresh private copy for writes).
image() {
	local src=$MIXED_QCOW2
	[ "$1" = raw ] && src=$MIXED_RAW
	if [ "$2" = 1 ]; then
		rm -f "$D/w.$1"
		cp --sparse=always "$src" "$D/w.$1"
		sync # the copy's writeback must not land in the timed run
		echo "$D/w.$1"
	else
		echo "$src"
	fi
}
row() { # NAME FMT ARGS...
	local name=$1 fmt=$2 w=0 a r tool img
	shift 2
	for a in "$@"; do [ "$a" = -w ] && w=1; done
	for r in $(seq 0 $((ROUNDS - 1))); do
		for tool in $(python3 bench/benchlib.py order "$r" 0 1 2); do
			img=$(image "$fmt" $w)
			case $tool in
			0) timed "$name" cove "$COVE" img bench -f "$fmt" -c "$COUNT" -i io_uring "$@" "$img" ;;
			1) timed "$name" "qemu-img aio=io_uring" qemu-img bench -f "$fmt" -c "$COUNT" -i io_uring "$@" "$img" ;;
			2) timed "$name" "qemu-img aio=threads" qemu-img bench -f "$fmt" -c "$COUNT" -i threads "$@" "$img" ;;
			esac
		done
	done
	rm -f "$D"/w.*
}
for fmt in qcow2 raw; do
	row "$fmt seq read 4k qd64 cache=none" $fmt -s 4k -d 64 -t none
	row "$fmt seq write 4k qd64 cache=none" $fmt -s 4k -d 64 -t none -w
	row "$fmt strided read 4k qd64" $fmt -s 4k -d 64 -t none -S 1052672
	row "$fmt strided write 4k qd64" $fmt -s 4k -d 64 -t none -S 1052672 -w
	row "$fmt seq read 4k qd1 writeback" $fmt -s 4k -d 1
done
for r in $(seq "$ROUNDS"); do
	timed "qcow2 random read 4k qd64 (cove only)" cove \
		"$COVE" img bench -c "$COUNT" -s 4k -d 64 -t none --random "$MIXED_QCOW2"
	img=$(image qcow2 1)
	timed "qcow2 random write 4k qd64 (cove only)" cove \
		"$COVE" img bench -c "$COUNT" -s 4k -d 64 -t none --random -w "$img"
done
python3 bench/benchlib.py table "$D/samples" \
	--tools "cove,qemu-img aio=io_uring,qemu-img aio=threads" \
	--title "img bench, $COUNT requests, $SIZE_MIB MiB mixed image"
