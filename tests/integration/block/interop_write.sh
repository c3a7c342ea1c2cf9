#!/bin/bash
# Images written by the block layer pass `qemu-img check` and read back the same in qemu-img.
. "$(dirname "$0")/lib.sh"
cd "$T"
SIZE=$((48 << 20))
# written IMG REF: qemu-img check is clean, qemu-img and blkcat both read REF back
written() {
	qemu-img check -q "$1" || return 1
	qemu-img convert -O raw "$1" q.raw && cmp q.raw "$2" || return 1
	"$BLKCAT" cat "$1" o.raw && cmp o.raw "$2" || return 1
	"$BLKCAT" check "$1" >/dev/null
}
stress_case() {
	local name=$1 ops=$2
	shift 2
	rm -f w.qcow2 ref.raw
	truncate -s $SIZE ref.raw
	if ! out=$("$BLKCAT" create qcow2 w.qcow2 $SIZE "$@" 2>&1 && "$BLKCAT" stress w.qcow2 ref.raw 11 250 "$ops" 2>&1 && written w.qcow2 ref.raw 2>&1); then
		notok "$name" "$(echo "$out" | tail -3 | tr '\n' ' ')"
	else
		ok "$name"
	fi
}
stress_case "random writes, zeroes, discards, compressed (defaults)" wzudcf
for o in cluster_size=512 cluster_size=4096 cluster_size=2097152 compat=0.10 refcount_bits=1 \
	refcount_bits=2 refcount_bits=4 refcount_bits=8 refcount_bits=32 refcount_bits=64 \
	extended_l2=on "extended_l2=on cluster_size=16384" compression_type=zstd lazy_refcounts=on; do
	stress_case "random I/O with $o" wzudcf $o
done
BLKCAT_DIRECT=1 stress_case "random I/O with O_DIRECT (bounce buffers for unaligned requests)" wzudcf cluster_size=4096
stress_case "refcount table growth (512 B clusters, 64-bit refcounts)" wwf cluster_size=512 refcount_bits=64
stress_case "compressed writes only (zstd)" c compression_type=zstd
stress_case "compressed writes, discards and flushes interleaved" cdfcw
stress_case "compressed writes only (deflate, 512 B clusters)" c cluster_size=512

# Over a backing file: partial-cluster COW from the backing data.
head -c $((24 << 20)) /dev/urandom >base.raw
for o in "" extended_l2=on cluster_size=4096; do
	rm -f top.qcow2
	cp base.raw ref.raw
	run "COW over a raw backing file ${o:-(defaults)}" bash -c "'$BLKCAT' create qcow2 top.qcow2 0 backing_file=base.raw backing_fmt=raw $o && '$BLKCAT' stress top.qcow2 ref.raw 3 250 wzcf && $(declare -f written); BLKCAT=$BLKCAT written top.qcow2 ref.raw"
done
run "backing format recorded as qemu-img sees it" bash -c "qemu-img info top.qcow2 | grep -q 'backing file format: raw'"

# Writes to an image with an external data file (made by qemu-img).
for o in "" ",extended_l2=on"; do
	rm -f ed.qcow2 ed.data ref.raw && truncate -s 16M ref.raw
	qemu-img create -q -f qcow2 -o data_file=ed.data$o ed.qcow2 16M
	run "writes with an external data file${o:+ ($o)}" bash -c "'$BLKCAT' stress ed.qcow2 ref.raw 9 250 wzudf && $(declare -f written); BLKCAT=$BLKCAT written ed.qcow2 ref.raw"
done

# Snapshots: create, write, create, write; each snapshot reads back in qemu-img.
rm -f s.qcow2 ref.raw && truncate -s $SIZE ref.raw
"$BLKCAT" create qcow2 s.qcow2 $SIZE
"$BLKCAT" stress s.qcow2 ref.raw 1 150 && cp ref.raw ref1.raw
"$BLKCAT" snap s.qcow2 c first
"$BLKCAT" stress s.qcow2 ref.raw 2 150 && cp ref.raw ref2.raw
"$BLKCAT" snap s.qcow2 c second
"$BLKCAT" stress s.qcow2 ref.raw 3 150
run "snapshots: image passes qemu-img check" written s.qcow2 ref.raw
run "snapshots: qemu-img lists both" bash -c "qemu-img snapshot -l s.qcow2 | grep -q first && qemu-img snapshot -l s.qcow2 | grep -q second"
run "snapshot 'first' reads back in qemu-img" bash -c "qemu-img convert -O raw -l first s.qcow2 q.raw && cmp q.raw ref1.raw"
run "snapshot 'second' reads back in qemu-img" bash -c "qemu-img convert -O raw -l second s.qcow2 q.raw && cmp q.raw ref2.raw"
run "snapshot apply" bash -c "'$BLKCAT' snap s.qcow2 a first && $(declare -f written); BLKCAT=$BLKCAT written s.qcow2 ref1.raw"
run "snapshot delete" bash -c "'$BLKCAT' snap s.qcow2 d second && $(declare -f written); BLKCAT=$BLKCAT written s.qcow2 ref1.raw && ! qemu-img snapshot -l s.qcow2 | grep -q second"
qemu-img snapshot -c byqemu s.qcow2
run "delete a snapshot qemu-img made" bash -c "'$BLKCAT' snap s.qcow2 d byqemu && qemu-img check -q s.qcow2"

# Creation with every preallocation mode, and resize.
truncate -s $((20 << 20)) zero.raw
for p in off metadata falloc full; do
	run "create preallocation=$p" bash -c "rm -f p.qcow2 && '$BLKCAT' create qcow2 p.qcow2 $((20 << 20)) preallocation=$p && qemu-img check -q p.qcow2 && qemu-img compare -q -f qcow2 -F raw p.qcow2 zero.raw"
done
run "preallocation=metadata maps every cluster" bash -c "'$BLKCAT' create qcow2 p.qcow2 $((20 << 20)) preallocation=metadata && qemu-img map --output=json p.qcow2 | grep -c '\"data\": true' | grep -qv '^0$'"
run "preallocation=full allocates the file" bash -c "'$BLKCAT' create qcow2 p.qcow2 $((20 << 20)) preallocation=full && [ \$(stat -c %b p.qcow2) -gt 40000 ]"
run "create raw preallocation=full" bash -c "'$BLKCAT' create raw r.raw 1000000 preallocation=full && [ \$(stat -c %s r.raw) = 1000000 ] && [ \$(stat -c %b r.raw) -gt 1000 ]"
run "resize: grow across L1 growth (512 B clusters)" bash -c "'$BLKCAT' create qcow2 g.qcow2 $((1 << 20)) cluster_size=512 && '$BLKCAT' resize g.qcow2 $((300 << 20)) && qemu-img check -q g.qcow2 && qemu-img info g.qcow2 | grep -q '(314572800 bytes)'"
run "resize: shrink an unused tail" bash -c "'$BLKCAT' resize g.qcow2 $((2 << 20)) shrink && qemu-img check -q g.qcow2 && qemu-img info g.qcow2 | grep -q '(2097152 bytes)'"
run "resize: shrink refused without the option" bash -c "! '$BLKCAT' resize g.qcow2 $((1 << 20))"
run "resize: shrink over data discards the tail" bash -c "qemu-io -c 'write -P 3 1020k 600k' g.qcow2 >/dev/null && '$BLKCAT' resize g.qcow2 $((1 << 20)) shrink && qemu-img check -q g.qcow2 && qemu-img info g.qcow2 | grep -q '(1048576 bytes)' && qemu-io -c 'read -P 3 1020k 4k' g.qcow2 >/dev/null"

# Header rewrites keep unknown header extensions.
qemu-img create -q -f qcow2 u.qcow2 8M
python3 - u.qcow2 <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b')
h = f.read(4096)
pos = struct.unpack('>I', h[100:104])[0]
while True:
    t, l = struct.unpack('>II', h[pos:pos + 8])
    if t == 0:
        break
    pos += 8 + (l + 7) // 8 * 8
f.seek(pos)
f.write(struct.pack('>II', 0x12345678, 5) + b'hello\0\0\0' + b'\0' * 8)
PY
truncate -s 8M ref.raw
run "unknown header extension kept across a header rewrite" bash -c "'$BLKCAT' snap u.qcow2 c s1 && '$BLKCAT' rebase u.qcow2 zero.raw raw && grep -q hello u.qcow2 && qemu-img check -q u.qcow2 && qemu-img info u.qcow2 | grep -q 'backing file: zero.raw'"
run "backing file changed and removed (header only)" bash -c "'$BLKCAT' rebase u.qcow2 '' && ! qemu-img info u.qcow2 | grep -q 'backing file' && grep -q hello u.qcow2"
run "empty image (size 0)" bash -c "'$BLKCAT' create qcow2 e.qcow2 0 && qemu-img check -q e.qcow2 && '$BLKCAT' resize e.qcow2 1048576 && qemu-img check -q e.qcow2 && qemu-io -c 'read -P 0 0 1M' e.qcow2 >/dev/null"

# Amend: refcount width, compat level.
rm -f a.qcow2 ref.raw && truncate -s $SIZE ref.raw
"$BLKCAT" create qcow2 a.qcow2 $SIZE && "$BLKCAT" stress a.qcow2 ref.raw 4 150 wzdf
run "amend refcount_bits=4" bash -c "'$BLKCAT' amend a.qcow2 refcount_bits=4 && qemu-img info a.qcow2 | grep -q 'refcount bits: 4' && $(declare -f written); BLKCAT=$BLKCAT written a.qcow2 ref.raw"
run "amend compat=0.10 (zero clusters expanded)" bash -c "'$BLKCAT' amend a.qcow2 refcount_bits=16 compat=0.10 && qemu-img info a.qcow2 | grep -q 'compat: 0.10' && $(declare -f written); BLKCAT=$BLKCAT written a.qcow2 ref.raw"
run "amend compat=1.1 lazy_refcounts=on" bash -c "'$BLKCAT' amend a.qcow2 compat=1.1 lazy_refcounts=on && qemu-img info a.qcow2 | grep -q 'lazy refcounts: true' && qemu-img check -q a.qcow2"

# Measure agrees with qemu-img.
make_source src.raw
qemu-img convert -O qcow2 src.raw m.qcow2
for o in "" "cluster_size=4096 refcount_bits=64" "extended_l2=on"; do
	qo=$(echo "$o" | tr ' ' ',')
	run "measure ${o:-(defaults)} matches qemu-img" bash -c "diff <(qemu-img measure -O qcow2 ${qo:+-o $qo} m.qcow2 | head -2) <('$BLKCAT' measure qcow2 m.qcow2 $o)"
done
run "measure --size matches qemu-img" bash -c "diff <(qemu-img measure -O qcow2 --size 10G | head -2) <('$BLKCAT' measure qcow2 $((10 << 30)))"

# Asynchronous interface.
run "aio on raw (io_uring)" bash -c "truncate -s 16M ar.raw && cp ar.raw ref.raw && '$BLKCAT' aio ar.raw ref.raw 5 40 && cmp ar.raw ref.raw"
run "aio on raw, O_DIRECT" bash -c "truncate -s 0 ar.raw && truncate -s 16M ar.raw && cp ar.raw ref.raw && '$BLKCAT' aio ar.raw ref.raw 6 40 direct && cmp ar.raw ref.raw"
run "aio on qcow2, O_DIRECT (ring for data in place)" bash -c "rm -f aq.qcow2 ref.raw && truncate -s 16M ref.raw && '$BLKCAT' create qcow2 aq.qcow2 16777216 cluster_size=16384 && '$BLKCAT' aio aq.qcow2 ref.raw 7 60 direct && $(declare -f written); BLKCAT=$BLKCAT written aq.qcow2 ref.raw"
run "aio on qcow2, O_DIRECT, 512-byte clusters (smaller than the alignment)" bash -c "rm -f aq.qcow2 ref.raw && truncate -s 4M ref.raw && '$BLKCAT' create qcow2 aq.qcow2 4194304 cluster_size=512 && '$BLKCAT' aio aq.qcow2 ref.raw 8 60 direct && $(declare -f written); BLKCAT=$BLKCAT written aq.qcow2 ref.raw"
# Sequential 4 KiB O_DIRECT writes, 64 in flight, each cluster allocated at the end of the
# file by its first write and filled by the ring (the cluster's tail is allocated ahead).
run "aio on qcow2, O_DIRECT, sequential writes that grow the file" bash -c "rm -f aq.qcow2 ref.raw && '$BLKCAT' create qcow2 aq.qcow2 16777216 && '$BLKCAT' bench aq.qcow2 4096 64 4096 4096 w direct && head -c 16777216 /dev/zero | tr '\\0' '\\245' >ref.raw && $(declare -f written); BLKCAT=$BLKCAT written aq.qcow2 ref.raw"
run "aio on qcow2" bash -c "rm -f aq.qcow2 ref.raw && truncate -s 16M ref.raw && '$BLKCAT' create qcow2 aq.qcow2 16777216 && '$BLKCAT' aio aq.qcow2 ref.raw 5 40 && $(declare -f written); BLKCAT=$BLKCAT written aq.qcow2 ref.raw"
finish
