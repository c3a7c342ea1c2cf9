#!/bin/bash
# Corrupt and hostile images: a clear error (or a repair by check -r all), never a crash, a hang
# or a write outside the image.
. "$(dirname "$0")/lib.sh"
cd "$T"
# poke FILE OFFSET FORMAT VALUE: writes a big-endian field (struct format letter: I, Q, B)
poke() {
	python3 -c "import struct,sys; f=open(sys.argv[1],'r+b'); f.seek(int(sys.argv[2],0)); f.write(struct.pack('>'+sys.argv[3], int(sys.argv[4],0) & ((1 << (8 * struct.calcsize(sys.argv[3]))) - 1)))" "$@"
}
field() {
	python3 -c "import struct,sys; f=open(sys.argv[1],'rb'); f.seek(int(sys.argv[2],0)); print(struct.unpack('>'+sys.argv[3], f.read(struct.calcsize(sys.argv[3])))[0])" "$@"
}
# rejected NAME IMG PATTERN: opening (and reading) fails with an error mentioning PATTERN; no signal
rejected() {
	local name=$1 img=$2 pat=$3 out rc
	out=$(timeout 20 "$BLKCAT" cat "$img" /dev/null 2>&1)
	rc=$?
	if [ $rc -eq 1 ] && echo "$out" | grep -qi -- "$pat"; then
		ok "$name"
	else
		notok "$name" "rc=$rc: $out"
	fi
}
# survives NAME IMG: cat and check end with 0, 1, 2 or 3 (never a signal or a timeout)
survives() {
	local rc1 rc2
	timeout 20 "$BLKCAT" cat "$1" /dev/null >/dev/null 2>&1
	rc1=$?
	timeout 20 "$BLKCAT" check "$1" >/dev/null 2>&1
	rc2=$?
	[ $rc1 -le 3 ] && [ $rc2 -le 3 ]
}
base() {
	rm -f "$1"
	qemu-img create -q -f qcow2 "$1" 64M ${2:+-o $2}
	qemu-io -c 'write -P 1 0 256k' -c 'write -P 2 10M 64k' "$1" >/dev/null
}
base good.qcow2
L1=$(field good.qcow2 40 Q)
RT=$(field good.qcow2 48 Q)

cp good.qcow2 x.qcow2 && truncate -s 100 x.qcow2
rejected "truncated header" x.qcow2 "short\|header"
cp good.qcow2 x.qcow2 && truncate -s $((L1 + 4)) x.qcow2
rejected "truncated L1 table" x.qcow2 "L1"
cp good.qcow2 x.qcow2 && poke x.qcow2 40 Q $((1 << 40))
rejected "L1 table offset past the end" x.qcow2 "L1 table"
cp good.qcow2 x.qcow2 && poke x.qcow2 40 Q $((L1 + 8))
rejected "L1 table unaligned" x.qcow2 "L1 table"
cp good.qcow2 x.qcow2 && poke x.qcow2 36 I 0x7fffffff
rejected "absurd L1 size" x.qcow2 "L1"
cp good.qcow2 x.qcow2 && poke x.qcow2 24 Q 0x7fffffffffffffff
rejected "absurd virtual size" x.qcow2 "size"
cp good.qcow2 x.qcow2 && poke x.qcow2 20 I 8
rejected "cluster_bits 8" x.qcow2 "cluster_bits"
cp good.qcow2 x.qcow2 && poke x.qcow2 20 I 22
rejected "cluster_bits 22" x.qcow2 "cluster_bits"
cp good.qcow2 x.qcow2 && poke x.qcow2 48 Q $((1 << 40))
rejected "refcount table past the end" x.qcow2 "refcount table"
cp good.qcow2 x.qcow2 && poke x.qcow2 56 I 100000
rejected "refcount table too large" x.qcow2 "refcount table"
cp good.qcow2 x.qcow2 && poke x.qcow2 48 Q "$L1"
rejected "refcount table overlapping the L1 table" x.qcow2 "overlap"
cp good.qcow2 x.qcow2 && poke x.qcow2 "$RT" Q "$L1"
rejected "refcount block on the L1 table" x.qcow2 "overlap"
cp good.qcow2 x.qcow2 && poke x.qcow2 96 I 7
rejected "refcount_order 7" x.qcow2 "refcount_order"
cp good.qcow2 x.qcow2 && poke x.qcow2 60 I 1 && poke x.qcow2 64 Q $((1 << 40))
rejected "snapshot table past the end" x.qcow2 "snapshot"
cp good.qcow2 x.qcow2 && poke x.qcow2 72 Q $((1 << 9))
rejected "unknown incompatible feature is named" x.qcow2 "incompatible feature.*bit 9"
cp good.qcow2 x.qcow2 && poke x.qcow2 32 I 2
rejected "encryption named as unsupported" x.qcow2 "encryption"
cp good.qcow2 x.qcow2 && poke x.qcow2 4 I 4
rejected "version 4" x.qcow2 "version"
printf 'KDMV%0508d' 0 >x.vmdk
rejected "other formats named" x.vmdk "vmdk"
cp good.qcow2 x.qcow2 && poke x.qcow2 "$L1" Q $(((1 << 63) | (1 << 40)))
rejected "L2 table past the end" x.qcow2 "L1 entry"

# L2 entries that lie: unaligned data cluster, data past the end, L2 table at the header.
L2=$(($(field good.qcow2 "$L1" Q) & 0x00fffffffffffe00))
cp good.qcow2 x.qcow2 && poke x.qcow2 "$L2" Q $(((1 << 63) | 0x10200))
run "unaligned data cluster: read error, no crash" bash -c "$(declare -f survives); BLKCAT=$BLKCAT survives x.qcow2 && ! '$BLKCAT' cat x.qcow2 /dev/null 2>/dev/null"
run "unaligned data cluster: check reports corruption" bash -c "'$BLKCAT' check x.qcow2; [ \$? = 2 ]"
cp good.qcow2 x.qcow2 && poke x.qcow2 "$L2" Q $(((1 << 63) | (1 << 45)))
run "data cluster far past the end: no crash, check reports it" bash -c "$(declare -f survives); BLKCAT=$BLKCAT survives x.qcow2 && { '$BLKCAT' check x.qcow2; [ \$? = 2 ]; }"
cp good.qcow2 x.qcow2 && poke x.qcow2 "$L1" Q $(((1 << 63) | 0))
run "L1 entry with offset 0 and COPIED: header intact after writes" bash -c "cp x.qcow2 y.qcow2; truncate -s 64M r.raw; '$BLKCAT' stress x.qcow2 r.raw 1 20 w 2>/dev/null; cmp -n 72 x.qcow2 y.qcow2"
cp good.qcow2 x.qcow2 && poke x.qcow2 "$L2" Q $(((1 << 63) | L1))
l1_sane() {
	python3 - "$1" "$2" <<'PY'
import os, struct, sys
f = open(sys.argv[1], 'rb'); f.seek(int(sys.argv[2])); size = os.path.getsize(sys.argv[1])
for i in range(8):
    e = struct.unpack('>Q', f.read(8))[0]
    off = e & 0x00fffffffffffe00
    assert e & ~(0x00fffffffffffe00 | (1 << 63)) == 0 and off < size, hex(e)
PY
}
run "data cluster on the L1 table: guest data never lands in the L1 table" bash -c "truncate -s 64M r.raw; '$BLKCAT' write x.qcow2 0 4096 0x77 2>/dev/null; '$BLKCAT' stress x.qcow2 r.raw 1 40 w 2>/dev/null; $(declare -f l1_sane); l1_sane x.qcow2 $L1"
run "data cluster on the L1 table: the image is marked corrupt" bash -c "'$BLKCAT' info x.qcow2 | grep -q corrupt=1 && qemu-img info x.qcow2 | grep -q 'corrupt: true'"
# a compressed cluster with garbage data
cp good.qcow2 x.qcow2 && poke x.qcow2 "$L2" Q $(((1 << 62) | (4 << 54) | RT))
run "compressed cluster with garbage: read error, no crash" bash -c "$(declare -f survives); BLKCAT=$BLKCAT survives x.qcow2 && ! '$BLKCAT' cat x.qcow2 /dev/null 2>/dev/null"

# Refcounts: wrong counts are repaired by check -r all; overflow is refused.
RB=$(($(field good.qcow2 "$RT" Q)))
cp good.qcow2 x.qcow2 && poke x.qcow2 $((RB + 2 * 3)) H 0 && poke x.qcow2 $((RB + 2 * 1)) H 7
run "wrong refcounts: check finds them" bash -c "'$BLKCAT' check x.qcow2; [ \$? = 2 ]"
run "wrong refcounts: check -r leaks fixes the leak only" bash -c "cp x.qcow2 xl.qcow2 && '$BLKCAT' check xl.qcow2 leaks | grep -q 'leaks=0 fixed_corruptions=0 fixed_leaks=1' && qemu-img check xl.qcow2 2>&1 | grep -q 'ERROR cluster 3 refcount=0' && ! qemu-img check xl.qcow2 2>&1 | grep -q Leaked"
run "wrong refcounts: check -r all repairs (qemu-img agrees)" bash -c "'$BLKCAT' check x.qcow2 all >/dev/null; qemu-img check -q x.qcow2 && '$BLKCAT' check x.qcow2 >/dev/null"
run "refcount overflow (1-bit refcounts, snapshot) refused cleanly" bash -c "$(declare -f base); base r1.qcow2 refcount_bits=1 && ! '$BLKCAT' snap r1.qcow2 c s 2>/dev/null && qemu-img check -q r1.qcow2"
cp good.qcow2 x.qcow2 && poke x.qcow2 72 Q 2
run "corrupt bit: reads work, writes refused" bash -c "'$BLKCAT' cat x.qcow2 /dev/null && truncate -s 64M r.raw && ! '$BLKCAT' stress x.qcow2 r.raw 1 5 w 2>/dev/null"
run "corrupt bit: cleared by check -r all" bash -c "'$BLKCAT' check x.qcow2 all >/dev/null && '$BLKCAT' info x.qcow2 | grep -q corrupt=0"

# Backing chains: loops, self-reference, depth cap, missing file.
qemu-img create -q -f qcow2 -b loop2.qcow2 -F qcow2 -u loop1.qcow2 64M
qemu-img create -q -f qcow2 -b loop1.qcow2 -F qcow2 -u loop2.qcow2 64M
rejected "backing loop" loop1.qcow2 "loop"
qemu-img create -q -f qcow2 -b self.qcow2 -F qcow2 -u self2.qcow2 64M && mv self2.qcow2 self.qcow2
rejected "image that is its own backing file" self.qcow2 "loop"
qemu-img create -q -f qcow2 d0.qcow2 1M
for i in $(seq 1 70); do qemu-img create -q -f qcow2 -b d$((i - 1)).qcow2 -F qcow2 -u d$i.qcow2 1M; done
rejected "backing chain deeper than the cap" d70.qcow2 "deeper"
run "backing chain of depth 60 opens" "$BLKCAT" cat d60.qcow2 /dev/null
qemu-img create -q -f qcow2 -b nowhere.qcow2 -F qcow2 -u missing.qcow2 64M
rejected "missing backing file named" missing.qcow2 "nowhere.qcow2"

# Random damage: bytes flipped anywhere in the metadata; nothing may crash or hang.
bad=0
for i in $(seq 1 60); do
	cp good.qcow2 f.qcow2
	python3 - f.qcow2 "$i" <<'PY'
import random, sys
r = random.Random(int(sys.argv[2]))
data = bytearray(open(sys.argv[1], 'rb').read())
limit = min(len(data), 0x60000)
for _ in range(r.randint(1, 12)):
    data[r.randrange(limit)] = r.randrange(256)
open(sys.argv[1], 'wb').write(data)
PY
	timeout 20 "$BLKCAT" cat f.qcow2 /dev/null >/dev/null 2>&1
	[ $? -gt 3 ] && bad=$((bad + 1))
	timeout 20 "$BLKCAT" check f.qcow2 all >/dev/null 2>&1
	[ $? -gt 3 ] && bad=$((bad + 1))
	truncate -s 64M r.raw
	timeout 20 "$BLKCAT" stress f.qcow2 r.raw 1 20 wzdc >/dev/null 2>&1
	[ $? -gt 3 ] && bad=$((bad + 1))
done
if [ $bad = 0 ]; then ok "60 randomly damaged images: no crash or hang"; else notok "randomly damaged images" "$bad crashes or hangs"; fi
finish
