#!/bin/bash
# Times `cove img convert` against `qemu-img convert` on the same 1 GiB image of mixed
# content (random, text, written zeros, holes; reproducible), and prints the ratios.
# usage: bench/img-convert.sh [BUILDDIR]   (env: BENCH_DIR, default /tmp/cove-bench-img;
#        SIZE_MIB, default 1024; REPEAT, default 3 for the fast conversions)
set -eu
cd "$(dirname "$0")/.."
COVE=${COVE:-${1:-build}/src/cli/cove}
DIR=${BENCH_DIR:-/tmp/cove-bench-img}
SIZE_MIB=${SIZE_MIB:-1024}
REPEAT=${REPEAT:-3}
[ -x "$COVE" ] || { echo "no cove binary at $COVE (build first)" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "qemu-img is not installed" >&2; exit 1; }
mkdir -p "$DIR"
SRC=$DIR/mixed-$SIZE_MIB.raw

if [ ! -f "$SRC" ] || [ "$(stat -c %s "$SRC")" != $((SIZE_MIB << 20)) ]; then
	echo "making $SRC ..."
	python3 - "$SRC" "$SIZE_MIB" <<'PY'
import random, sys
path, mib = sys.argv[1], int(sys.argv[2])
r = random.Random(1234)
seg = 4 << 20
words = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()
with open(path + ".tmp", "wb") as f:
    f.truncate(mib << 20)
    for i in range((mib << 20) // seg):
        off = i * seg
        kind = i % 8
        f.seek(off)
        if kind == 0:                       # random (incompressible)
            f.write(r.randbytes(seg))
        elif kind == 1:                     # text
            out = bytearray()
            while len(out) < seg:
                out += b" ".join(r.choice(words) for _ in range(12)) + b"\n"
            f.write(out[:seg])
        elif kind == 2:                     # zeros written out (allocated)
            f.write(bytes(seg))
        elif kind == 4:                     # 64 KiB of random every 256 KiB, holes between
            for o in range(0, seg, 256 << 10):
                f.seek(off + o)
                f.write(r.randbytes(64 << 10))
        elif kind == 5:                     # text with holes
            for o in range(0, seg, 128 << 10):
                f.seek(off + o)
                f.write((b"%08d some log line with a counter\n" % (off + o)) * 1024)
        # kinds 3, 6, 7: holes
import os
os.rename(path + ".tmp", path)
PY
fi
[ -f "$DIR/src.qcow2" ] && [ "$DIR/src.qcow2" -nt "$SRC" ] || qemu-img convert -O qcow2 "$SRC" "$DIR/src.qcow2"
cat "$SRC" "$DIR/src.qcow2" >/dev/null # warm the page cache

now() { date +%s.%N; }
# best_of N CMD...: the shortest wall time of N runs, in seconds.
best_of() {
	local n=$1 best="" t0 t1 d
	shift
	for _ in $(seq "$n"); do
		rm -f "$DIR/out"
		t0=$(now)
		if ! "$@" >/dev/null 2>"$DIR/err"; then
			echo "FAILED($(head -c 60 "$DIR/err" | tr '\n' ' '))"
			return
		fi
		t1=$(now)
		d=$(echo "$t1 - $t0" | bc -l)
		if [ -z "$best" ] || [ "$(echo "$d < $best" | bc -l)" = 1 ]; then best=$d; fi
	done
	echo "$best"
}
printf '%-22s %10s %10s %8s  %s\n' conversion qemu-img cove ratio same-content
run() { # NAME REPEAT SRC ARGS...
	local name=$1 n=$2 src=$3
	shift 3
	local q c same
	q=$(best_of "$n" qemu-img convert "$@" "$src" "$DIR/out")
	mv "$DIR/out" "$DIR/out.qemu"
	c=$(best_of "$n" "$COVE" img convert "$@" "$src" "$DIR/out")
	case "$c" in FAILED*)
		printf '%-22s %9.3fs %s\n' "$name" "$q" "cove $c"
		rm -f "$DIR/out.qemu"
		return ;;
	esac
	same=$(qemu-img compare -q "$DIR/out.qemu" "$DIR/out" >/dev/null 2>&1 && echo yes || echo NO)
	printf '%-22s %9.3fs %9.3fs %8.2f  %s\n' "$name" "$q" "$c" "$(echo "$c / $q" | bc -l)" "$same"
	rm -f "$DIR/out" "$DIR/out.qemu"
}
run "raw -> qcow2" "$REPEAT" "$SRC" -O qcow2
run "qcow2 -> raw" "$REPEAT" "$DIR/src.qcow2" -O raw
run "raw -> qcow2 deflate" 1 "$SRC" -O qcow2 -c
run "raw -> qcow2 zstd" 1 "$SRC" -O qcow2 -c -o compression_type=zstd
echo "(ratio = cove / qemu-img; below 1 means cove is faster; best of $REPEAT for uncompressed)"
