#!/bin/bash
# Completed writes survive a kill of the writer: blkcat hold makes random requests through
# blk_aio_* (as virtio-blk does) that allocate clusters, L2 tables and refcount blocks, never
# flushes, and then idles in its event loop, where it is killed (SIGKILL) once the write-back
# delay has passed. The page cache survives the kill, so qemu-img must read back every
# completed write (qemu-img compare with the raw mirror of the requests) and find the image
# clean (qemu-img check exit 0; a dirty image, lazy refcounts, is repaired by a read-write open
# first, as QEMU does).
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
ROUNDS=${KILL_ROUNDS:-2}
WAIT=${KILL_WAIT:-0.6} # s after "ready": the write-back (100 ms after the last request, then
# a pre-flush and the writes) and some margin

# hold_and_kill NAME SEED N OPS [direct]
hold_and_kill() {
	local name=$1 seed=$2 n=$3 ops=$4 direct=${5:-} pid rc out
	: >out.txt
	if [ -n "$direct" ]; then
		BLKCAT_DIRECT=1 "$BLKCAT" hold c.qcow2 r.raw "$seed" "$n" "$ops" >out.txt 2>&1 &
	else
		"$BLKCAT" hold c.qcow2 r.raw "$seed" "$n" "$ops" >out.txt 2>&1 &
	fi
	pid=$!
	for _ in $(seq 1 300); do
		grep -q ready out.txt && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q ready out.txt; then
		kill -KILL $pid 2>/dev/null
		wait $pid 2>/dev/null
		notok "$name: the writer did not get ready" "$(tail -3 out.txt | tr '\n' ' ')"
		return
	fi
	sleep "$WAIT"
	kill -KILL $pid
	wait $pid 2>/dev/null
	if [ "$(qemu-img info --output json c.qcow2 | jq '."dirty-flag" // false')" = true ]; then
		: >none.raw
		if ! out=$("$BLKCAT" stress c.qcow2 none.raw 1 0 2>&1); then
			notok "$name: the read-write open of the dirty image failed" "$out"
			return
		fi
	fi
	qemu-img check c.qcow2 >check.out 2>&1
	rc=$?
	if [ $rc -ne 0 ]; then
		cp c.qcow2 "/tmp/cove-kill-$$-$seed.qcow2"
		notok "$name: qemu-img check exit $rc" "$(grep -m3 -E 'ERROR|Leaked|leaked' check.out | tr '\n' ' ')"
		return
	fi
	if ! out=$(qemu-img compare -f qcow2 -F raw c.qcow2 r.raw 2>&1); then
		cp c.qcow2 "/tmp/cove-kill-$$-$seed.qcow2"
		notok "$name: completed writes lost" "$out"
		return
	fi
	ok "$name: every completed write read back after SIGKILL, image clean"
}

if ! command -v jq >/dev/null; then
	echo "1..0 # SKIP jq is not installed"
	exit 0
fi
seed=0
for opts in "" "cluster_size=4096 refcount_bits=4" "extended_l2=on" "lazy_refcounts=on" \
	"compat=0.10 cluster_size=512"; do
	for r in $(seq 1 "$ROUNDS"); do
		seed=$((seed + 1))
		rm -f c.qcow2 r.raw
		truncate -s 64M r.raw
		# shellcheck disable=SC2086
		"$BLKCAT" create qcow2 c.qcow2 $((64 << 20)) $opts
		hold_and_kill "writes only (${opts:-defaults}) #$r" "$seed" 60 w
		seed=$((seed + 1))
		# The same image again: overwrites, zeroes and discards over what the first run left.
		hold_and_kill "writes, zeroes, discards over them (${opts:-defaults}) #$r" "$seed" 60 wwwzud
	done
done
seed=$((seed + 1))
rm -f c.qcow2 r.raw
truncate -s 64M r.raw
"$BLKCAT" create qcow2 c.qcow2 $((64 << 20))
hold_and_kill "O_DIRECT writes (defaults)" "$seed" 60 w direct
finish
