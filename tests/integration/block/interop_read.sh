#!/bin/bash
# Images made by qemu-img with each qcow2 feature read the same through the block layer.
. "$(dirname "$0")/lib.sh"
cd "$T"
make_source src.raw
for o in "cluster_size=512" "cluster_size=4096" "cluster_size=65536" "cluster_size=2M" \
	"compat=0.10" "refcount_bits=1" "refcount_bits=2" "refcount_bits=8" "refcount_bits=32" \
	"refcount_bits=64" "extended_l2=on" "extended_l2=on,cluster_size=16384" \
	"lazy_refcounts=on" "preallocation=metadata" "preallocation=falloc"; do
	run "qemu-img convert -o $o: same data" \
		bash -c "qemu-img convert -O qcow2 -o $o src.raw t.qcow2 && $(declare -f same_as_qemu); BLKCAT=$BLKCAT T=$T same_as_qemu t.qcow2"
done
for c in zlib zstd; do
	for cs in 512 65536 2M; do
		run "compressed $c cluster_size=$cs" bash -c "qemu-img convert -c -O qcow2 -o compression_type=$c,cluster_size=$cs src.raw c.qcow2 && $(declare -f same_as_qemu); BLKCAT=$BLKCAT T=$T same_as_qemu c.qcow2"
	done
done
# zero clusters (v3 zero flag, and allocated-zero), discarded ranges
qemu-img convert -O qcow2 src.raw z.qcow2
qemu-io -c 'write -z 0 1M' -c 'write -z -u 2M 1M' -c 'discard 3M 128k' -c 'write -z 4000 5000' z.qcow2 >/dev/null
run "zero clusters and discards" same_as_qemu z.qcow2
qemu-img create -q -f qcow2 -o extended_l2=on,compat=1.1 -b src.raw -F raw ze.qcow2
qemu-io -c 'write -P 1 5k 3k' -c 'write -z 64k 4k' -c 'write -z 256k 64k' ze.qcow2 >/dev/null
run "extended L2 subclusters over a backing file" same_as_qemu ze.qcow2
# backing chains: raw <- qcow2 <- qcow2 <- qcow2 (depth 3), relative names
qemu-img convert -O qcow2 src.raw b0.qcow2
prev=b0.qcow2
for i in 1 2 3; do
	qemu-img create -q -f qcow2 -b $prev -F qcow2 b$i.qcow2
	qemu-io -c "write -P $i $((i * 300))k 200k" -c "write -z $((i * 700))k 64k" b$i.qcow2 >/dev/null
	prev=b$i.qcow2
done
run "backing chain of depth 3" same_as_qemu b3.qcow2
mkdir -p sub && qemu-img create -q -f qcow2 -b ../b3.qcow2 -F qcow2 sub/top.qcow2
run "relative backing name resolved from the image's directory" same_as_qemu sub/top.qcow2
qemu-img create -q -f qcow2 -b src.raw -F raw -o compat=0.10 v2b.qcow2 $((8 << 20))
qemu-io -c 'write -P 9 1M 64k' v2b.qcow2 >/dev/null
run "v2 image larger than its backing file" same_as_qemu v2b.qcow2
# internal snapshots made by qemu-img: the active state reads the same
qemu-img convert -O qcow2 src.raw s.qcow2
qemu-img snapshot -c one s.qcow2
qemu-io -c 'write -P 0x66 0 1M' s.qcow2 >/dev/null
qemu-img snapshot -c two s.qcow2
qemu-io -c 'write -P 0x77 512k 1M' s.qcow2 >/dev/null
run "image with snapshots: active layer" same_as_qemu s.qcow2
run "snapshot list matches qemu-img" bash -c "$BLKCAT snap s.qcow2 l | awk '{print \$2}' | tr '\n' ' ' | grep -qx 'one two '"
# external data file (read)
qemu-img create -q -f qcow2 -o data_file=ext.data ext.qcow2 8M
qemu-io -c 'write -P 0x42 64k 200k' -c 'write -z 1M 64k' ext.qcow2 >/dev/null
run "external data file" same_as_qemu ext.qcow2
run "external data file: writes refused nowhere, data file named in info" bash -c "$BLKCAT info ext.qcow2 | grep -q format=qcow2"
# raw and qcow2 info
run "info fields of a v3 zstd lazy image" bash -c "qemu-img create -q -f qcow2 -o compression_type=zstd,lazy_refcounts=on,refcount_bits=8 i.qcow2 1G && $BLKCAT info i.qcow2 | grep -q 'format=qcow2 size=1073741824 cluster_size=65536 version=3 refcount_bits=8 lazy=1 extl2=0 compression=1'"
# block status agrees with qemu-img map (--output=json: start, length, depth, zero, data, offset)
MAPCMP=$(dirname "$0")/mapcmp.py
qemu-img create -q -f qcow2 za.qcow2 4M
qemu-io -c 'write -P 1 0 1M' -c 'write -z 0 256k' -c 'write -z -u 512k 128k' za.qcow2 >/dev/null
for img in za.qcow2 z.qcow2 ze.qcow2 c.qcow2 b3.qcow2 v2b.qcow2 src.raw ext.qcow2; do
	run "block status matches qemu-img map: $img" python3 "$MAPCMP" "$BLKCAT" "$img"
done
# block status agrees with qemu-img map on allocation
run "block status: data/zero runs cover the image" bash -c "$BLKCAT map z.qcow2 | awk '{s+=\$2} END {exit !(s == $(stat -c %s src.raw) + 512 - $(stat -c %s src.raw) % 512)}'"
finish
