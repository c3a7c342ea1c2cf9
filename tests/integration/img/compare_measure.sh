#!/bin/bash
# cove img compare (exit codes, first differing offset) and measure against qemu-img.
. "$(dirname "$0")/lib.sh"

mkmixed a.raw 3
cp a.raw b.raw
printf 'X' | dd of=b.raw bs=1 seek=1500000 conv=notrunc status=none
cp a.raw big.raw && truncate -s 4M big.raw
cp big.raw bigdirty.raw && printf 'Y' | dd of=bigdirty.raw bs=1 seek=3500000 conv=notrunc status=none
qemu-img convert -O qcow2 a.raw a.qcow2
qemu-img convert -O qcow2 -c b.raw b.qcow2
qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 a-over.qcow2

pair() { # NAME ARGS...
	local name="compare $1"
	shift
	cv compare "$@"
	qi compare "$@"
	if [ $rc -eq $qrc ] && diff -q "$T/out" "$T/qout" >/dev/null; then
		ok "$name"
	else
		fail "$name" "cove $rc, qemu-img $qrc" "$(diff "$T/qout" "$T/out")" "$(cat "$T/err")"
	fi
}
pair "identical raw" a.raw a.raw
pair "raw vs its qcow2" a.raw a.qcow2
pair "one byte differs" a.raw b.raw
pair "one byte differs (qcow2, compressed)" a.qcow2 b.qcow2
pair "overlay reads as its backing" a.qcow2 a-over.qcow2
pair "size mismatch, zero tail" a.raw big.raw
pair "size mismatch, data in the tail" a.raw bigdirty.raw
pair "strict size mismatch" -s a.raw big.raw
pair "-f raw -F qcow2" -f raw -F qcow2 a.raw a.qcow2
pair "missing file" a.raw missing.raw
pair "quiet" -q a.raw b.raw
pair "-f raw applies to the first image only" -f raw a.raw a.qcow2

# measure
mpair() { # NAME ARGS...
	local name="measure $1"
	shift
	cv measure "$@"
	qi measure "$@"
	if [ $rc -eq $qrc ] && diff -q "$T/out" "$T/qout" >/dev/null; then
		ok "$name"
	else
		fail "$name" "cove $rc, qemu-img $qrc" "$(diff "$T/qout" "$T/out")" "$(cat "$T/err")"
	fi
}
mpair "--size 1G raw" --size 1G -O raw
mpair "--size 1G qcow2" --size 1G -O qcow2
mpair "--size 100G qcow2 json" --output json --size 100G -O qcow2
mpair "--size 5G cluster 2M" --size 5G -O qcow2 -o cluster_size=2M
mpair "--size 3G cluster 512 refcount 64" --size 3G -O qcow2 -o cluster_size=512,refcount_bits=64
mpair "--size 1G extended L2" --size 1G -O qcow2 -o extended_l2=on
mpair "--size 1G preallocation=metadata" --size 1G -O qcow2 -o preallocation=metadata
mpair "raw file to qcow2" -O qcow2 a.raw
mpair "raw file to qcow2 json" --output json -O qcow2 a.raw
mpair "qcow2 file to qcow2" -O qcow2 a.qcow2
mpair "compressed qcow2 to raw" -O raw b.qcow2
mpair "overlay to qcow2 cluster 4k" -O qcow2 -o cluster_size=4k a-over.qcow2
mpair "neither size nor file" -O qcow2
mpair "size and file" --size 1G a.raw
done_testing
