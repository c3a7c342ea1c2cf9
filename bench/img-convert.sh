#!/bin/bash
# Times `cove img convert` against `qemu-img convert` on the same 1 GiB image of mixed
# content (random, text, written zeros, holes; reproducible: bench/mixed-image.sh), with the
# same durability on both sides: neither syncs (cove -t unsafe against qemu-img's default
# target cache, unsafe), both sync (cove's default against qemu-img -t writeback). The
# compressed conversions are CPU-bound and run with neither syncing. ROUNDS rounds, the
# order alternating; min/median/max of wall time (and of CPU time, with perf), ratio of
# medians: cove / qemu-img (below 1: cove is faster). Each round checks that both outputs
# hold the same data.
# usage: bench/img-convert.sh [BUILDDIR]   (env: BENCH_DIR, default /tmp/cove-bench-img;
#        SIZE_MIB, default 1024; ROUNDS, default 5; CROUNDS for the compressed ones,
#        default ROUNDS)
set -eu
cd "$(dirname "$0")/.."
COVE=${COVE:-${1:-build}/src/cli/cove}
DIR=${BENCH_DIR:-/tmp/cove-bench-img}
ROUNDS=${ROUNDS:-5}
CROUNDS=${CROUNDS:-$ROUNDS}
[ -x "$COVE" ] || { echo "no cove binary at $COVE (build first)" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "qemu-img is not installed" >&2; exit 1; }
. bench/mixed-image.sh

mixed_image "$DIR"
SRC=$MIXED_RAW
W=$(mktemp -d "$DIR/convert.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cat "$SRC" "$MIXED_QCOW2" >/dev/null # warm the page cache

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\\n\", $1 }"; }
PERF=$(command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1 && echo yes || true)
# once FIGURE TOOL CMD...: one timed run writing $W/out; its wall seconds go to the samples
# as FIGURE and, with perf, its CPU seconds (all threads) as "FIGURE, CPU": CPU time tells
# more than wall time when other work shares the machine. A failed run ends the benchmark.
once() {
	local fig=$1 tool=$2 t0 t1
	shift 2
	rm -f "$W/out" "$W/perf"
	# Start on a quiet disk: no run pays for the writeback or the discards (ext4 mounted
	# with -o discard) that the previous run's files left behind.
	sync
	local pre=()
	[ -n "$PERF" ] && pre=(perf stat -x, -e task-clock -o "$W/perf" --)
	t0=$(now)
	if ! "${pre[@]}" "$@" >/dev/null 2>"$W/err"; then
		echo "$fig: $tool failed: $*" >&2
		head -c 400 "$W/err" >&2
		exit 1
	fi
	t1=$(now)
	printf '%s\t%s\t%s\n' "$fig, s" "$tool" "$(calc "$t1 - $t0")" >>"$W/samples"
	if [ -n "$PERF" ]; then
		awk -F, -v f="$fig, CPU s" -v t="$tool" \
			'/task-clock/ {printf "%s\t%s\t%.3f\n", f, t, $1 / 1000}' "$W/perf" >>"$W/samples"
	fi
}
# run FIGURE N SRC ARGS...: N rounds of both tools, the order alternating (the machine is
# shared and its load changes: both get the same conditions). QX/CX: extra options for
# qemu-img/cove.
run() {
	local fig=$1 n=$2 src=$3 r tool
	shift 3
	for r in $(seq 0 $((n - 1))); do
		for tool in $(python3 bench/benchlib.py order "$r" cove qemu-img); do
			if [ "$tool" = cove ]; then
				# shellcheck disable=SC2086
				once "$fig" cove "$COVE" img convert ${CX:-} "$@" "$src" "$W/out"
			else
				# shellcheck disable=SC2086
				once "$fig" qemu-img qemu-img convert ${QX:-} "$@" "$src" "$W/out"
			fi
			# Not mv over the other tool's output: ext4 starts writeback of a file
			# renamed over another (auto_da_alloc), and the next run would share the
			# disk with it.
			rm -f "$W/out.$tool"
			mv "$W/out" "$W/out.$tool"
		done
		if ! qemu-img compare -q "$W/out.qemu-img" "$W/out.cove" >/dev/null 2>&1; then
			echo "$fig: the outputs of cove and qemu-img differ" >&2
			exit 1
		fi
		rm -f "$W/out.cove" "$W/out.qemu-img"
	done
}
# Neither syncs: cove -t unsafe, qemu-img's default target cache (unsafe).
CX="-t unsafe" run "raw -> qcow2, neither syncs" "$ROUNDS" "$SRC" -O qcow2
CX="-t unsafe" run "qcow2 -> raw, neither syncs" "$ROUNDS" "$MIXED_QCOW2" -O raw
# Both sync: cove's default (the new file synced before it is renamed into place),
# qemu-img -t writeback (synced at the end).
QX="-t writeback" run "raw -> qcow2, both sync" "$ROUNDS" "$SRC" -O qcow2
QX="-t writeback" run "qcow2 -> raw, both sync" "$ROUNDS" "$MIXED_QCOW2" -O raw
# The floor for a synced copy on this disk: dd writing as many bytes as the qcow2 output
# holds, then fsync; a copy that syncs cannot be faster than this line.
for _ in $(seq "$ROUNDS"); do
	once "disk write floor, dd of $(($(stat -c %s "$MIXED_QCOW2") >> 20)) MiB + fsync" dd \
		dd if="$MIXED_QCOW2" of="$W/out" bs=4M conv=fsync
done
rm -f "$W/out"
CX="-t unsafe" run "raw -> qcow2 deflate, neither syncs" "$CROUNDS" "$SRC" -O qcow2 -c
CX="-t unsafe" run "raw -> qcow2 zstd, neither syncs" "$CROUNDS" "$SRC" -O qcow2 -c -o compression_type=zstd
python3 bench/benchlib.py table "$W/samples" --tools cove,qemu-img,dd \
	--title "img convert, $SIZE_MIB MiB mixed image (CPU s: all threads, from perf stat)"
