#!/bin/bash
# Times `cove img convert` against `qemu-img convert` on the same 1 GiB image of mixed
# content (random, text, written zeros, holes; reproducible: bench/mixed-image.sh), and
# prints the ratios: cove time / qemu-img time (below 1: cove is faster).
# usage: bench/img-convert.sh [BUILDDIR]   (env: BENCH_DIR, default /tmp/cove-bench-img;
#        SIZE_MIB, default 1024; REPEAT, default 5 runs for the fast conversions and
#        CREPEAT, default 2 for the compressed ones)
set -eu
cd "$(dirname "$0")/.."
COVE=${COVE:-${1:-build}/src/cli/cove}
DIR=${BENCH_DIR:-/tmp/cove-bench-img}
REPEAT=${REPEAT:-5}
CREPEAT=${CREPEAT:-2}
[ -x "$COVE" ] || { echo "no cove binary at $COVE (build first)" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "qemu-img is not installed" >&2; exit 1; }
. bench/mixed-image.sh

mixed_image "$DIR"
SRC=$MIXED_RAW
cat "$SRC" "$MIXED_QCOW2" >/dev/null # warm the page cache

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\\n\", $1 }"; }
# once NAME CMD...: one timed run; its wall seconds go to $DIR/t.NAME and, with perf, its
# CPU seconds (all threads) to $DIR/u.NAME. CPU time tells more than wall time when other
# work shares the machine.
once() {
	local name=$1 t0 t1
	shift
	rm -f "$DIR/out" "$DIR/perf"
	# Start on a quiet disk: no run pays for the writeback or the discards (ext4 mounted
	# with -o discard) that the previous run's files left behind.
	sync
	local pre=()
	[ -n "$PERF" ] && pre=(perf stat -x, -e task-clock -o "$DIR/perf" --)
	t0=$(now)
	if ! "${pre[@]}" "$@" >/dev/null 2>"$DIR/err"; then
		echo "FAILED($(head -c 60 "$DIR/err" | tr '\n' ' '))" >"$DIR/t.$name"
		return 1
	fi
	t1=$(now)
	calc "$t1 - $t0" >>"$DIR/t.$name"
	if [ -n "$PERF" ]; then
		awk -F, '/task-clock/ {printf "%.3f\n", $1 / 1000}' "$DIR/perf" >>"$DIR/u.$name"
	fi
}
PERF=$(command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1 && echo yes || true)
best() { sort -g "$DIR/$1" | head -n1; }
printf '%-22s %10s %10s %9s  %9s %9s %9s  %s\n' "conversion ($SIZE_MIB MiB)" qemu-img cove cove/qemu \
	"qemu cpu" "cove cpu" cove/qemu same-content
# run NAME N SRC ARGS...: N runs of each tool, alternating (the machine is shared and its
# load changes: alternating gives both the same conditions), best time of each.
run() {
	local name=$1 n=$2 src=$3 q c qu cu same=yes
	shift 3
	rm -f "$DIR"/t.q "$DIR"/t.c "$DIR"/u.q "$DIR"/u.c
	for _ in $(seq "$n"); do
		# shellcheck disable=SC2086
		once q qemu-img convert ${QX:-} "$@" "$src" "$DIR/out" || break
		# Not mv over the old out.qemu: ext4 starts writeback of a file renamed over
		# another (auto_da_alloc), and cove's run would then share the disk with the
		# writing of qemu-img's unsynced output.
		rm -f "$DIR/out.qemu"
		mv "$DIR/out" "$DIR/out.qemu"
		# shellcheck disable=SC2086
		once c "$COVE" img convert ${CX:-} "$@" "$src" "$DIR/out" || break
		qemu-img compare -q "$DIR/out.qemu" "$DIR/out" >/dev/null 2>&1 || same=NO
	done
	q=$(best t.q)
	c=$(best t.c)
	case "$q$c" in *FAILED*)
		printf '%-22s %10s %10s\n' "$name" "$q" "$c"
		rm -f "$DIR/out" "$DIR/out.qemu"
		return ;;
	esac
	if [ -n "$PERF" ]; then
		qu=$(best u.q)
		cu=$(best u.c)
		printf '%-22s %9.3fs %9.3fs %9.2f  %8.3fs %8.3fs %9.2f  %s\n' "$name" "$q" "$c" \
			"$(calc "$c / $q")" "$qu" "$cu" "$(calc "$cu / $qu")" "$same"
	else
		printf '%-22s %9.3fs %9.3fs %9.2f  %9s %9s %9s  %s\n' "$name" "$q" "$c" \
			"$(calc "$c / $q")" - - - "$same"
	fi
	rm -f "$DIR/out" "$DIR/out.qemu" "$DIR"/t.q "$DIR"/t.c "$DIR"/u.q "$DIR"/u.c
}
run "raw -> qcow2" "$REPEAT" "$SRC" -O qcow2
run "qcow2 -> raw" "$REPEAT" "$MIXED_QCOW2" -O raw
# cove syncs the new file before renaming it into place; qemu-img's default target cache
# (unsafe) never syncs. The same work, durable on both sides: qemu-img -t writeback.
QX="-t writeback" run "raw -> qcow2, synced" "$REPEAT" "$SRC" -O qcow2
QX="-t writeback" run "qcow2 -> raw, synced" "$REPEAT" "$MIXED_QCOW2" -O raw
# And neither syncing: cove with qemu-img's default target cache (-t unsafe).
CX="-t unsafe" run "raw -> qcow2, unsafe" "$REPEAT" "$SRC" -O qcow2
CX="-t unsafe" run "qcow2 -> raw, unsafe" "$REPEAT" "$MIXED_QCOW2" -O raw
# The floor for a synced copy on this disk: dd writing as many bytes as the qcow2 output
# holds, then fsync. With the unsynced rows, qemu-img's output never reaches the disk
# during its run; a copy that syncs cannot be faster than this line.
rm -f "$DIR"/t.d
for _ in $(seq "$REPEAT"); do
	once d dd if="$MIXED_QCOW2" of="$DIR/out" bs=4M conv=fsync || break
done
printf '%-22s %10s %9.3fs  (dd, %s MiB, then fsync: the floor of any synced copy)\n' \
	"disk write floor" - "$(best t.d)" "$(($(stat -c %s "$MIXED_QCOW2") >> 20))"
rm -f "$DIR/out" "$DIR"/t.d "$DIR"/u.d
run "raw -> qcow2 deflate" "$CREPEAT" "$SRC" -O qcow2 -c
run "raw -> qcow2 zstd" "$CREPEAT" "$SRC" -O qcow2 -c -o compression_type=zstd
echo "(cove/qemu = cove time / qemu-img time; below 1 means cove is faster; best of $REPEAT runs, $CREPEAT compressed;"
echo " cpu = CPU seconds of all threads, from perf stat)"
