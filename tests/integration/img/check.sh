#!/bin/bash
# cove img check against qemu-img check: exit codes, JSON figures, repairs.
. "$(dirname "$0")/lib.sh"
P="$HERE/qcow2_patch.py"

mkmixed src.raw 2
qemu-img convert -O qcow2 src.raw clean.qcow2
qemu-img convert -O qcow2 -c src.raw comp.qcow2
cp clean.qcow2 leaky.qcow2 && python3 "$P" leaky.qcow2 leak
cp clean.qcow2 bad.qcow2 && python3 "$P" bad.qcow2 corrupt
qemu-img create -q -f raw plain.raw 1M
qemu-img convert -O qcow2 -o lazy_refcounts=on src.raw dirty.qcow2
python3 "$P" dirty.qcow2 set incompatible 1 # dirty bit
cp clean.qcow2 marked.qcow2 && python3 "$P" marked.qcow2 set incompatible 2 # corrupt bit
# Fragmentation as qemu-img counts it: out-of-order writes over several L2 tables (4 KiB
# clusters: 2 MiB per table) and an allocated zero cluster; compressed clusters mixed with
# plain ones.
qemu-img create -q -f qcow2 -o cluster_size=4k frag.qcow2 8M
for o in 7M 5M 3M 1M 6M 2M 4M 0; do qemu-io -c "write -P 0x11 $o 300k" frag.qcow2 >/dev/null; done
qemu-io -c "write -z 6500k 8k" frag.qcow2 >/dev/null
cp comp.qcow2 mixc.qcow2
qemu-io -c "write -P 0x22 100k 200k" -c "write -P 3 1000k 64k" mixc.qcow2 >/dev/null
# A leaked cluster followed by space no refcount covers: the image ends after the leak.
cp leaky.qcow2 leaktail.qcow2 && truncate -s +200000 leaktail.qcow2

# The figures both print (qemu-img omits zero counts; so do we).
FIELDS='{"check-errors","image-end-offset","total-clusters","allocated-clusters",
  "fragmented-clusters","compressed-clusters","leaks","corruptions","format"}'
for img in clean.qcow2 comp.qcow2 leaky.qcow2 bad.qcow2 dirty.qcow2 marked.qcow2 frag.qcow2 \
	mixc.qcow2 leaktail.qcow2 plain.raw; do
	name="check exit code: $img"
	cp "$img" c1 && cp "$img" c2
	cv check c1
	qi check c2
	if [ $rc -eq $qrc ]; then ok "$name"; else
		fail "$name" "cove $rc, qemu-img $qrc" "$(cat "$T/err" "$T/out")"; fi
	[ "${img##*.}" = raw ] && continue
	name="check --output json: $img"
	cv check --output json c1
	qi check --output json c2
	a=$(jq -S "$FIELDS" "$T/out" 2>&1)
	b=$(jq -S "$FIELDS" "$T/qout")
	if [ "$a" = "$b" ]; then ok "$name"; else fail "$name" "$(diff <(echo "$b") <(echo "$a"))"; fi
	name="check human text: $img"
	cv check c1
	qi check c2
	if diff -q "$T/qout" "$T/out" >/dev/null; then ok "$name"; else
		fail "$name" "$(diff "$T/qout" "$T/out")"; fi
done

for mode in leaks all; do
	for img in leaky.qcow2 bad.qcow2; do
		[ $mode = leaks ] && [ $img = bad.qcow2 ] && continue
		name="check -r $mode repairs $img (qemu-img check agrees after)"
		cp "$img" r.qcow2
		cv check -r $mode r.qcow2
		if [ $rc -eq 0 ] && qemu-img check -q r.qcow2 && qemu-img compare -q src.raw r.qcow2 ||
			{ [ $img = bad.qcow2 ] && [ $rc -eq 0 ] && qemu-img check -q r.qcow2; }; then
			ok "$name"
		else
			fail "$name" "cove exit $rc" "$(cat "$T/out" "$T/err")" "$(qemu-img check r.qcow2 2>&1)"
		fi
	done
done
name="check -r leaks on a corrupt image does not call it clean"
cp bad.qcow2 r.qcow2
cv check -r leaks r.qcow2
if [ $rc -ne 0 ] && ! crashed; then ok "$name"; else fail "$name" "exit $rc" "$(cat "$T/out")"; fi
name="a write to an image marked corrupt is refused, as qemu-img"
cp marked.qcow2 m2.qcow2
cv resize m2.qcow2 +1M
qi resize m2.qcow2 +1M
if [ $rc -ne 0 ] && [ $qrc -ne 0 ] && ! crashed && cmp -s marked.qcow2 m2.qcow2; then ok "$name"; else
	fail "$name" "cove $rc, qemu-img $qrc"; fi
name="check: bad -r value"
cv check -r everything clean.qcow2
check "$name" clean_error
name="check: missing file exits 1"
cv check nothing.qcow2
check "$name" [ $rc -eq 1 ]
done_testing
