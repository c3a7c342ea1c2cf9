#!/bin/bash
# Power-cut safety: blkcat records every write and sync the block layer makes to an image
# (journal.c); powercut.py rebuilds what a power cut could leave on disk (everything up to a
# random sync, then a random subset of the writes after it, some torn). qemu-img check must
# find no corruption in any result (leaked clusters are allowed); an image left dirty (lazy
# refcounts) is first repaired by a read-write open, as QEMU does. Bounded: about 20 s.
. "$(dirname "$0")/lib.sh"
cd "$T"
HERE=$(cd "$(dirname "$0")" && pwd)
if ! command -v python3 >/dev/null || ! command -v jq >/dev/null; then
	echo "1..0 # SKIP python3 or jq is not installed"
	exit 0
fi
OPS=${POWERCUT_OPS:-200}       # block-layer operations per recorded run
REPLAYS=${POWERCUT_REPLAYS:-8} # power cuts rebuilt from each recording
corrupt=0

# journaled IMAGE JOURNAL CMD...: runs a blkcat command with the journal on IMAGE.
journaled() {
	local img=$1 j=$2
	shift 2
	BLKCAT_JOURNAL=$j BLKCAT_JOURNAL_IMAGE=$img "$BLKCAT" "$@"
}

# replay NAME BASE JOURNAL: checks REPLAYS power cuts of one recording.
replay() {
	local name=$1 base=$2 journal=$3 k what info rc bad=0 first=""
	for k in $(seq 1 "$REPLAYS"); do
		what=$(python3 "$HERE/powercut.py" "$journal" "$base" cut.qcow2 "$RANDOM$k") || {
			bad=$((bad + 1))
			first=${first:-"powercut.py failed"}
			continue
		}
		info=$(qemu-img info --output json cut.qcow2 2>&1)
		if [ "$(echo "$info" | jq '."format-specific".data.corrupt // false' 2>/dev/null)" = true ]; then
			corrupt=$((corrupt + 1))
		fi
		if [ "$(echo "$info" | jq '."dirty-flag" // false' 2>/dev/null)" = true ]; then
			# Lazy refcounts: the open repairs the refcounts (no operations run).
			: >none.raw
			if ! out=$("$BLKCAT" stress cut.qcow2 none.raw 1 0 2>&1); then
				bad=$((bad + 1))
				first=${first:-"$what: the read-write open of a dirty image failed: $out"}
				continue
			fi
		fi
		qemu-img check cut.qcow2 >check.out 2>&1
		rc=$?
		# 0: clean, 3: leaked clusters only.
		if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
			bad=$((bad + 1))
			first=${first:-"$what: qemu-img check exit $rc: $(grep -m3 -E 'ERROR|Leaked' check.out | tr '\n' ' ')"}
			cp cut.qcow2 "/tmp/cove-powercut-$$-$bad.qcow2"
		fi
	done
	if [ $bad -eq 0 ]; then ok "$name: $REPLAYS power cuts, no corruption"; else
		notok "$name: $bad of $REPLAYS power cuts corrupt the image" "$first"; fi
}

i=0
for opts in "" "lazy_refcounts=on" "cluster_size=4096 refcount_bits=4" "extended_l2=on" \
	"compression_type=zstd cluster_size=16384" "compat=0.10 cluster_size=512"; do
	i=$((i + 1))
	rm -f base.qcow2 w.qcow2 r.raw j.log
	truncate -s 32M r.raw
	# shellcheck disable=SC2086
	"$BLKCAT" create qcow2 base.qcow2 $((32 << 20)) $opts
	cp base.qcow2 w.qcow2
	if ! out=$(journaled w.qcow2 j.log stress w.qcow2 r.raw "$i" "$OPS" wwwzudcf 2>&1); then
		notok "writer ($opts) failed" "$out"
		continue
	fi
	if [ ! -s j.log ] || ! grep -q . <(python3 "$HERE/powercut.py" j.log base.qcow2 cut.qcow2 0); then
		notok "writer ($opts): nothing was recorded"
		continue
	fi
	replay "random writes, zeroes, discards, compressed writes, flushes (${opts:-defaults})" base.qcow2 j.log
	# Shrinking over data: the freed tail and the dropped refcount blocks.
	if [ "${opts#*cluster_size=4096}" != "$opts" ] || [ -z "$opts" ]; then
		cp w.qcow2 s0.qcow2
		if ! out=$(journaled w.qcow2 s.log resize w.qcow2 $((5 << 20)) shrink 2>&1); then
			notok "resize --shrink ($opts) failed" "$out"
		else
			replay "resize --shrink over data (${opts:-defaults})" s0.qcow2 s.log
		fi
	fi
done
# The asynchronous path (blk_aio_*, as virtio-blk): dirty metadata is written back without a
# final sync once requests pause for 100 ms (pauses let that happen between requests and
# flushes), and the writer is killed idle after its last write-back, as kill.sh does. The
# write-back's pre-flush (an fdatasync through io_uring) is not in the journal: the replays
# take it as no sync, which only widens what they try.
for opts in "" "cluster_size=4096 refcount_bits=4" "lazy_refcounts=on"; do
	i=$((i + 1))
	rm -f base.qcow2 w.qcow2 r.raw j.log
	truncate -s 32M r.raw
	# shellcheck disable=SC2086
	"$BLKCAT" create qcow2 base.qcow2 $((32 << 20)) $opts
	cp base.qcow2 w.qcow2
	: >out.txt
	BLKCAT_JOURNAL=j.log BLKCAT_JOURNAL_IMAGE=w.qcow2 "$BLKCAT" hold w.qcow2 r.raw "$i" 80 \
		wwwudzudfpp >out.txt 2>&1 &
	pid=$!
	for _ in $(seq 1 300); do
		grep -q ready out.txt && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	sleep 0.3
	kill -KILL $pid 2>/dev/null
	wait $pid 2>/dev/null
	if ! grep -q ready out.txt; then
		notok "async writer ($opts) failed" "$(tail -3 out.txt | tr '\n' ' ')"
		continue
	fi
	replay "async writes with write-backs, zeroes, discards, flushes, killed (${opts:-defaults})" base.qcow2 j.log
done
if [ $corrupt -eq 0 ]; then ok "no power cut left the corrupt bit set"; else
	notok "$corrupt power cuts left the corrupt bit set"; fi
finish
