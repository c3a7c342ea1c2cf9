#!/bin/bash
# 4 KiB reads and writes through the block layer: `cove img bench` against `qemu-img bench`
# with the same arguments, on the 1 GiB mixed image that img-convert.sh converts
# (bench/mixed-image.sh: random, text, zeros, holes), as qcow2 and as raw. Writes go to a
# fresh copy for each tool. Prints both times and cove time / qemu-img time.
# qemu-img bench has no random mode: "strided" steps 1 MiB + 4 KiB through the image so
# each request lands in a different cluster; cove's own --random run is shown alone.
# usage: bench/img-bench.sh [BUILDDIR]   (env: BENCH_DIR, COUNT default 100000, SIZE_MIB)
set -eu
cd "$(dirname "$0")/.."
COVE=${COVE:-${1:-build}/src/cli/cove}
DIR=${BENCH_DIR:-/tmp/cove-bench-img}
COUNT=${COUNT:-100000}
[ -x "$COVE" ] || { echo "no cove binary at $COVE (build first)" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "qemu-img is not installed" >&2; exit 1; }
. bench/mixed-image.sh
mixed_image "$DIR"
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\\n\", $1 }"; }
# secs CMD...: wall time of one run, or FAILED
secs() {
	local t0 t1
	t0=$(now)
	"$@" >/dev/null 2>"$DIR/err" || { echo FAILED; return; }
	t1=$(now)
	calc "$t1 - $t0"
}
# image FMT WHO WRITE: the image a run uses (a private copy for writes).
image() {
	local src=$MIXED_QCOW2
	[ "$1" = raw ] && src=$MIXED_RAW
	if [ "$3" = 1 ]; then
		cp --sparse=always "$src" "$DIR/bench-$2.$1"
		sync # the copy's writeback must not land in the timed run
		echo "$DIR/bench-$2.$1"
	else
		echo "$src"
	fi
}
printf '%-34s %10s %10s %8s\n' "workload ($SIZE_MIB MiB mixed image)" qemu-img cove cove/qemu
row() { # NAME FMT ARGS...
	local name=$1 fmt=$2 w=0 q c a
	shift 2
	for a in "$@"; do [ "$a" = -w ] && w=1; done
	q=$(secs qemu-img bench -f "$fmt" -c "$COUNT" "$@" "$(image "$fmt" q $w)")
	c=$(secs "$COVE" img bench -f "$fmt" -c "$COUNT" "$@" "$(image "$fmt" c $w)")
	if [ "$c" = FAILED ] || [ "$q" = FAILED ]; then
		printf '%-34s %10s %10s  %s\n' "$name" "$q" "$c" "$(head -c 80 "$DIR/err")"
	else
		printf '%-34s %9.3fs %9.3fs %8.2f\n' "$name" "$q" "$c" "$(calc "$c / $q")"
	fi
	rm -f "$DIR"/bench-q.* "$DIR"/bench-c.*
}
for fmt in qcow2 raw; do
	row "$fmt seq read 4k qd64 cache=none" $fmt -s 4k -d 64 -t none
	row "$fmt seq write 4k qd64 cache=none" $fmt -s 4k -d 64 -t none -w
	row "$fmt strided read 4k qd64" $fmt -s 4k -d 64 -t none -S 1052672
	row "$fmt strided write 4k qd64" $fmt -s 4k -d 64 -t none -S 1052672 -w
	row "$fmt seq read 4k qd1 writeback" $fmt -s 4k -d 1
done
printf '%-34s %10s %9.3fs\n' "qcow2 random read 4k qd64 (cove)" - \
	"$(secs "$COVE" img bench -c "$COUNT" -s 4k -d 64 -t none --random "$MIXED_QCOW2")"
printf '%-34s %10s %9.3fs\n' "qcow2 random write 4k qd64 (cove)" - \
	"$(secs "$COVE" img bench -c "$COUNT" -s 4k -d 64 -t none --random -w "$(image qcow2 c 1)")"
rm -f "$DIR"/bench-c.*
echo "(cove/qemu = cove time / qemu-img time; below 1 means cove is faster)"
