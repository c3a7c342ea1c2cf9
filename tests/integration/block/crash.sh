#!/bin/bash
# Crash safety: a writer killed (SIGKILL) at random points leaves an image that qemu-img check
# finds free of corruption (leaked clusters are allowed), and that opens read-write again.
# The page cache survives a kill, so this cannot see misordered syncs: powercut.sh does.
. "$(dirname "$0")/lib.sh"
cd "$T"
ITER=${CRASH_ITERATIONS:-30}
corrupt=0
dirty_seen=0
for i in $(seq 1 "$ITER"); do
	opts=""
	case $((i % 5)) in
	1) opts="lazy_refcounts=on" ;;
	2) opts="cluster_size=4096 refcount_bits=4" ;;
	3) opts="extended_l2=on" ;;
	4) opts="compression_type=zstd" ;;
	esac
	rm -f c.qcow2 r.raw
	truncate -s 64M r.raw
	"$BLKCAT" create qcow2 c.qcow2 $((64 << 20)) $opts
	"$BLKCAT" stress c.qcow2 r.raw "$i" 1000000 wwwzudcf >/dev/null 2>&1 &
	pid=$!
	sleep "0.$(printf '%03d' $((RANDOM % 400 + 20)))"
	kill -KILL $pid 2>/dev/null
	wait $pid 2>/dev/null
	grep -q . <(qemu-img info c.qcow2 2>/dev/null | grep 'corrupt: true') && corrupt=$((corrupt + 1))
	qemu-img check c.qcow2 >check.out 2>&1
	rc=$?
	# 0: clean, 3: leaks only. Anything else is a failure.
	if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
		notok "iteration $i ($opts): qemu-img check exit $rc" "$(grep -m3 ERROR check.out | tr '\n' ' ')"
		cp c.qcow2 "/tmp/cove-crash-$i.qcow2"
		continue
	fi
	"$BLKCAT" info c.qcow2 | grep -q dirty=1 && dirty_seen=$((dirty_seen + 1))
	# A read-write open repairs a dirty image; afterwards everything is consistent.
	if ! out=$("$BLKCAT" stress c.qcow2 r.raw 99 5 w 2>&1); then
		notok "iteration $i ($opts): reopen and write" "$out"
		continue
	fi
	qemu-img check c.qcow2 >check.out 2>&1
	rc2=$?
	if [ $rc2 -ne 0 ] && [ $rc2 -ne 3 ]; then
		notok "iteration $i ($opts): check after reopen exit $rc2" "$(grep -m3 ERROR check.out | tr '\n' ' ')"
		continue
	fi
	ok "iteration $i ($opts): killed writer left no corruption (check exit $rc)"
done
if [ "$corrupt" -eq 0 ]; then ok "no killed writer left the corrupt bit set"; else
	notok "$corrupt killed writers left the corrupt bit set (the writer found its own metadata inconsistent)"; fi
if [ "$dirty_seen" -gt 0 ]; then ok "lazy refcounts: $dirty_seen killed writers left the dirty bit set, and open repaired it"; else skip "lazy refcounts dirty bit" "no kill landed while the bit was set"; fi
finish
