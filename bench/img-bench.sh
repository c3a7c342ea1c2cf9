#!/bin/bash
# 4 KiB reads and writes through the block layer: `cove img bench` against `qemu-img bench`
# on the same qcow2 image (and raw), same arguments, printing both times and the ratio.
# qemu-img bench has no random mode: "strided" steps 1 MiB + 4 KiB through the image so
# each request lands in a different cluster; cove's own --random run is shown alone.
# usage: bench/img-bench.sh [BUILDDIR]   (env: BENCH_DIR, COUNT default 100000)
set -eu
cd "$(dirname "$0")/.."
COVE=${COVE:-${1:-build}/src/cli/cove}
DIR=${BENCH_DIR:-/tmp/cove-bench-img}
COUNT=${COUNT:-100000}
[ -x "$COVE" ] || { echo "no cove binary at $COVE (build first)" >&2; exit 1; }
mkdir -p "$DIR"
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
printf '%-34s %10s %10s %8s\n' workload qemu-img cove ratio
row() { # NAME IMAGE-MAKER ARGS...
	local name=$1 fmt=$2
	shift 2
	local img=$DIR/bench.$fmt q c
	rm -f "$img"
	qemu-img create -q -f "$fmt" "$img" 1G
	qemu-img bench -w -c 16384 -s 64k "$img" >/dev/null 2>&1 || true # allocate 1 GiB
	q=$(secs qemu-img bench -c "$COUNT" "$@" "$img")
	c=$(secs "$COVE" img bench -c "$COUNT" "$@" "$img")
	if [ "$c" = FAILED ] || [ "$q" = FAILED ]; then
		printf '%-34s %10s %10s  %s\n' "$name" "$q" "$c" "$(head -c 80 "$DIR/err")"
	else
		printf '%-34s %9.3fs %9.3fs %8.2f\n' "$name" "$q" "$c" "$(calc "$c / $q")"
	fi
}
for fmt in qcow2 raw; do
	row "$fmt seq read 4k qd64 cache=none" $fmt -s 4k -d 64 -t none
	row "$fmt seq write 4k qd64 cache=none" $fmt -s 4k -d 64 -t none -w
	row "$fmt strided read 4k qd64" $fmt -s 4k -d 64 -t none -S 1052672
	row "$fmt strided write 4k qd64" $fmt -s 4k -d 64 -t none -S 1052672 -w
	row "$fmt seq read 4k qd1 writeback" $fmt -s 4k -d 1
done
img=$DIR/bench.qcow2
printf '%-34s %10s %9.3fs\n' "qcow2 random read 4k qd64 (cove)" - \
	"$(secs "$COVE" img bench -c "$COUNT" -s 4k -d 64 -t none --random "$img")"
printf '%-34s %10s %9.3fs\n' "qcow2 random write 4k qd64 (cove)" - \
	"$(secs "$COVE" img bench -c "$COUNT" -s 4k -d 64 -t none --random -w "$img")"
rm -f "$DIR"/bench.qcow2 "$DIR"/bench.raw
echo "(ratio = cove / qemu-img; below 1 means cove is faster)"
