#!/bin/bash
# cove img info and map against qemu-img on the same images: JSON fields and human text.
. "$(dirname "$0")/lib.sh"

mkmixed src.raw 3
qemu-img convert -O qcow2 src.raw plain.qcow2
qemu-img convert -O qcow2 -c src.raw comp.qcow2
qemu-img convert -O qcow2 -c -o compression_type=zstd src.raw zstd.qcow2
qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 3M
qemu-img create -q -f qcow2 -o lazy_refcounts=on,refcount_bits=8,cluster_size=4k lazy.qcow2 5G
qemu-img create -q -f qcow2 -o extended_l2=on ext.qcow2 1M
qemu-img create -q -f qcow2 base.qcow2 4M
qemu-io -c 'write -P 0x11 0 1M' -c 'write -z 2M 1M' base.qcow2 >/dev/null
qemu-img snapshot -c first base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 over.qcow2
qemu-io -c 'write -P 0x22 512k 1M' over.qcow2 >/dev/null
mkdir -p sub
qemu-img create -q -f qcow2 -b ../base.qcow2 -F qcow2 sub/rel.qcow2
qemu-img create -q -f raw empty.raw 1M
head -c 1000001 src.raw >odd.raw
qemu-img create -q -f qcow2 -o data_file=ext.data ext-data.qcow2 2M
qemu-io -c 'write -P 0x77 64k 1M' ext-data.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 4M
qemu-io -c 'write -P 0x12 0 1M' dirty.qcow2 >/dev/null
python3 "$HERE/qcow2_patch.py" dirty.qcow2 set incompatible 1 # the dirty bit
images="odd.raw ext-data.qcow2 dirty.qcow2 src.raw plain.qcow2 comp.qcow2 zstd.qcow2 v2.qcow2 lazy.qcow2 ext.qcow2 base.qcow2 over.qcow2 sub/rel.qcow2 empty.raw"

# Fields both tools print; snapshot dates are compared too (same file).
FIELDS='{"virtual-size","filename","cluster-size","format","actual-size","dirty-flag",
  "backing-filename","full-backing-filename","backing-filename-format",
  "format-specific", "snapshots"}'
for img in $images; do
	name="info --output json: $img"
	need "$name" info --output json "$img" || continue
	qi info --output json "$img"
	a=$(jq -S "$FIELDS" "$T/out" 2>&1)
	b=$(jq -S "$FIELDS" "$T/qout")
	if [ "$a" = "$b" ]; then ok "$name"; else fail "$name" "$(diff <(echo "$b") <(echo "$a"))"; fi
done
for img in plain.qcow2 base.qcow2 over.qcow2 v2.qcow2 src.raw ext-data.qcow2 dirty.qcow2; do
	name="info human text: $img"
	need "$name" info "$img" || continue
	qi info "$img"
	if diff -q "$T/qout" "$T/out" >/dev/null; then ok "$name"; else
		fail "$name" "$(diff "$T/qout" "$T/out")"; fi
done
name="info --backing-chain --output json"
if need "$name" info --backing-chain --output json over.qcow2; then
	qi info --backing-chain --output json over.qcow2
	a=$(jq -S "[.[] | $FIELDS]" "$T/out" 2>&1)
	b=$(jq -S "[.[] | $FIELDS]" "$T/qout")
	if [ "$a" = "$b" ]; then ok "$name"; else fail "$name" "$(diff <(echo "$b") <(echo "$a"))"; fi
fi
name="info --backing-chain human"
if need "$name" info --backing-chain over.qcow2; then
	qi info --backing-chain over.qcow2
	if diff -q "$T/qout" "$T/out" >/dev/null; then ok "$name"; else
		fail "$name" "$(diff "$T/qout" "$T/out")"; fi
fi
name="info -f raw on a qcow2 file reports raw"
if need "$name" info -f raw --output json plain.qcow2; then
	check "$name" [ "$(jq -r .format "$T/out")" = raw ]
fi

for img in $images; do
	name="map --output json: $img"
	need "$name" map --output json "$img" || continue
	qi map --output json "$img"
	a=$(jq -c '.[]' "$T/out" 2>&1)
	b=$(jq -c '.[]' "$T/qout")
	if [ "$a" = "$b" ]; then ok "$name"; else fail "$name" "$(diff <(echo "$b") <(echo "$a"))"; fi
done
for img in src.raw plain.qcow2 over.qcow2; do
	name="map human: $img"
	need "$name" map "$img" || continue
	qi map "$img"
	if diff -q "$T/qout" "$T/out" >/dev/null; then ok "$name"; else
		fail "$name" "$(diff "$T/qout" "$T/out")"; fi
done
name="map human refuses compressed clusters like qemu-img"
cv map comp.qcow2
qi map comp.qcow2
check "$name" [ $rc -eq $qrc -a $rc -ne 0 ]
qemu-img create -q -f qcow2 zero.qcow2 0
for args in "zero.qcow2" "--start-offset 20M src.raw"; do
	name="map --output json $args (nothing to map)"
	# shellcheck disable=SC2086
	need "$name" map --output json $args || continue
	# shellcheck disable=SC2086
	qi map --output json $args
	if diff -q "$T/qout" "$T/out" >/dev/null; then ok "$name"; else fail "$name" "$(diff "$T/qout" "$T/out")"; fi
done
name="map --start-offset/--max-length"
if need "$name" map --output json --start-offset 1M --max-length 1536k over.qcow2; then
	qi map --output json --start-offset 1M --max-length 1536k over.qcow2
	if [ "$(jq -c '.[]' "$T/out")" = "$(jq -c '.[]' "$T/qout")" ]; then ok "$name"; else
		fail "$name" "$(diff "$T/qout" "$T/out")"; fi
fi

done_testing
