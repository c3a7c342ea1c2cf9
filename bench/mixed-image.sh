# The image every disk benchmark uses (sourced by img-convert.sh, img-bench.sh, block-rw.sh):
# SIZE_MIB (default 1024) of mixed content in 4 MiB pieces, reproducible (seeded): random
# (incompressible), text, zeros written out, sparse random, sparse text, and holes.
# mixed_image DIR: makes (once) DIR/mixed-SIZE.raw and its qcow2 conversion by qemu-img,
# and sets MIXED_RAW and MIXED_QCOW2 to their paths. The pair stays in DIR for the next
# benchmark (making it takes a while); a failure leaves no half-made file.
SIZE_MIB=${SIZE_MIB:-1024}
mixed_image() {
	local dir=$1
	MIXED_RAW=$dir/mixed-$SIZE_MIB.raw
	MIXED_QCOW2=$dir/mixed-$SIZE_MIB.qcow2
	mkdir -p "$dir"
	if [ ! -f "$MIXED_RAW" ] || [ "$(stat -c %s "$MIXED_RAW")" != $((SIZE_MIB << 20)) ]; then
		echo "making $MIXED_RAW ..." >&2
		python3 - "$MIXED_RAW" "$SIZE_MIB" <<'PY' || { rm -f "$MIXED_RAW.tmp"; return 1; }
import os, random, sys
path, mib = sys.argv[1], int(sys.argv[2])
r = random.Random(1234)
seg = min(4 << 20, mib << 20)
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
os.rename(path + ".tmp", path)
PY
	fi
	if [ ! -f "$MIXED_QCOW2" ] || [ "$MIXED_QCOW2" -ot "$MIXED_RAW" ]; then
		if ! qemu-img convert -O qcow2 "$MIXED_RAW" "$MIXED_QCOW2.tmp"; then
			rm -f "$MIXED_QCOW2.tmp"
			return 1
		fi
		mv "$MIXED_QCOW2.tmp" "$MIXED_QCOW2"
	fi
}
