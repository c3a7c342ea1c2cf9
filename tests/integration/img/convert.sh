#!/bin/bash
# cove img convert against qemu-img, both directions: images qemu-img makes read the same
# through cove; images cove makes pass qemu-img check and read the same in qemu-img.
. "$(dirname "$0")/lib.sh"

mkmixed src.raw 6

# --- qemu-img makes, cove reads -------------------------------------------------------
read_case() { # NAME IMAGE
	local name="read: $1" img=$2
	rm -f c.raw q.raw
	need "$name" convert -O raw "$img" c.raw || return
	raw_of "$img" q.raw
	if cmp -s c.raw q.raw; then ok "$name"; else fail "$name" "$(cmp c.raw q.raw)"; fi
}
read_case "raw" src.raw
for o in "" cluster_size=512 cluster_size=2M compat=0.10 refcount_bits=1 refcount_bits=64 \
	extended_l2=on lazy_refcounts=on preallocation=metadata; do
	f="q-${o:-default}.qcow2"
	qemu-img convert -O qcow2 ${o:+-o $o} src.raw "$f"
	read_case "qcow2 ${o:-default}" "$f"
done
qemu-img convert -c -O qcow2 src.raw qc-zlib.qcow2
read_case "qcow2 compressed deflate" qc-zlib.qcow2
qemu-img convert -c -O qcow2 -o compression_type=zstd src.raw qc-zstd.qcow2
read_case "qcow2 compressed zstd" qc-zstd.qcow2

# Zero clusters, discarded clusters and a backing chain of three.
qemu-img create -q -f qcow2 base.qcow2 6M
qemu-io -c 'write -P 0x11 0 3M' -c 'write -z 1M 64k' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
qemu-io -c 'write -P 0x22 512k 1M' -c 'write -z 2M 512k' -c 'discard 0 64k' mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 8M
qemu-io -c 'write -P 0x33 5M 100k' -c 'write -P 0x44 1000k 3k' top.qcow2 >/dev/null
read_case "backing chain of three (grown top)" top.qcow2
qemu-img create -q -f raw rbase.raw 4M
qemu-io -f raw -c 'write -P 0x55 1M 1M' rbase.raw >/dev/null
qemu-img create -q -f qcow2 -b rbase.raw -F raw rtop.qcow2
qemu-io -c 'write -z -u 1536k 64k' rtop.qcow2 >/dev/null
read_case "raw backing, unmapped zero clusters" rtop.qcow2
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=128k sub.qcow2 2M
qemu-io -c 'write -P 0x66 4k 4k' -c 'write -P 0x67 200k 8k' sub.qcow2 >/dev/null
read_case "extended L2 subclusters" sub.qcow2
qemu-img create -q -f qcow2 snap.qcow2 2M
qemu-io -c 'write -P 0x71 0 1M' snap.qcow2 >/dev/null
qemu-img snapshot -c s1 snap.qcow2
qemu-io -c 'write -P 0x72 512k 1M' snap.qcow2 >/dev/null
read_case "image with a snapshot (copy-on-write)" snap.qcow2
qemu-img create -q -f qcow2 -o data_file=ext.data ext.qcow2 3M
qemu-io -c 'write -P 0x77 64k 1M' -c 'write -z 512k 64k' ext.qcow2 >/dev/null
read_case "external data file" ext.qcow2

# -f: the given format is used, not the probed one.
name="read: -f raw of a qcow2 file reads its bytes"
rm -f c.raw q.raw
if need "$name" convert -f raw -O raw q-default.qcow2 c.raw; then
	qemu-img convert -f raw -O raw q-default.qcow2 q.raw
	if cmp -s c.raw q.raw && cmp -s c.raw q-default.qcow2; then ok "$name"; else fail "$name" "$(cmp c.raw q.raw)"; fi
fi
name="read: -f qcow2 of a raw file is refused, no output"
rm -f c.raw
cv convert -f qcow2 -O raw src.raw c.raw
qi convert -f qcow2 -O raw src.raw q.raw
if clean_error && [ $qrc -ne 0 ] && [ ! -e c.raw ]; then ok "$name"; else fail "$name" "cove $rc, qemu-img $qrc" "$(cat "$T/err")"; fi
name="read: -f qcow2 of a qcow2 file"
rm -f c.raw q.raw
if need "$name" convert -f qcow2 -O raw top.qcow2 c.raw; then
	raw_of top.qcow2 q.raw
	if cmp -s c.raw q.raw; then ok "$name"; else fail "$name" "$(cmp c.raw q.raw)"; fi
fi

# --- cove makes, qemu-img reads --------------------------------------------------------
write_case() { # NAME SRC CONVERT-ARGS...
	local name="write: $1" src=$2
	shift 2
	rm -f w.qcow2 w.raw
	need "$name" convert "$@" "$src" w.qcow2 || return
	local fmt
	fmt=$(qemu-img info --output json w.qcow2 | jq -r .format)
	if [ "$fmt" = qcow2 ] && ! qemu-img check -q w.qcow2 >"$T/qck" 2>&1; then
		fail "$name" "qemu-img check:" "$(cat "$T/qck")"
		return
	fi
	raw_of w.qcow2 w.raw
	raw_of "$src" want.raw
	if cmp -s w.raw want.raw; then ok "$name"; else fail "$name" "$(cmp w.raw want.raw)"; fi
}
write_case "qcow2 default" src.raw -O qcow2
write_case "qcow2 deflate (-c)" src.raw -O qcow2 -c
write_case "qcow2 zstd (-c)" src.raw -O qcow2 -c -o compression_type=zstd
write_case "qcow2 deflate, cluster 512" src.raw -O qcow2 -c -o cluster_size=512
write_case "qcow2 zstd, cluster 2M, one worker" src.raw -O qcow2 -c -m 1 -o cluster_size=2M,compression_type=zstd
write_case "qcow2 cluster 512" src.raw -O qcow2 -o cluster_size=512
write_case "qcow2 cluster 2M" src.raw -O qcow2 -o cluster_size=2M
write_case "qcow2 compat 0.10" src.raw -O qcow2 -o compat=0.10
write_case "qcow2 refcount 1 bit" src.raw -O qcow2 -o refcount_bits=1
write_case "qcow2 refcount 64 bits" src.raw -O qcow2 -o refcount_bits=64
write_case "qcow2 extended L2" src.raw -O qcow2 -o extended_l2=on
write_case "qcow2 lazy refcounts" src.raw -O qcow2 -o lazy_refcounts=on
write_case "qcow2 -S 0 (no sparse)" src.raw -O qcow2 -S 0
write_case "qcow2 -S 64k" src.raw -O qcow2 -S 64k
write_case "qcow2 one worker (-m 1)" src.raw -O qcow2 -m 1
write_case "qcow2 out of order (-W -m 16)" src.raw -O qcow2 -W -m 16
write_case "raw output" src.raw -O raw
write_case "qcow2 to qcow2 (chain flattened)" top.qcow2 -O qcow2
write_case "compressed to compressed zstd" qc-zlib.qcow2 -O qcow2 -c -o compression_type=zstd
head -c 1000001 src.raw >odd.raw
write_case "odd-sized raw source (size rounded up to 512)" odd.raw -O qcow2
write_case "odd-sized raw source, compressed" odd.raw -O qcow2 -c

# -B: only what the top allocates is copied; the result reads the same as the source.
name="write: -B keeps the backing file"
rm -f w.qcow2
if need "$name" convert -O qcow2 -B mid.qcow2 -F qcow2 top.qcow2 w.qcow2; then
	bf=$(qemu-img info --output json w.qcow2 | jq -r '."backing-filename"')
	if [ "$bf" = mid.qcow2 ] && qemu-img compare -q top.qcow2 w.qcow2 &&
		qemu-img check -q w.qcow2; then ok "$name"; else fail "$name" "backing=$bf"; fi
fi

# -n: into an existing image that holds other data.
name="write: -n into an existing image"
qemu-img create -q -f qcow2 n.qcow2 6M
qemu-io -c 'write -P 0xee 0 6M' n.qcow2 >/dev/null
if need "$name" convert -n -O qcow2 src.raw n.qcow2; then
	if qemu-img compare -q src.raw n.qcow2 && qemu-img check -q n.qcow2; then ok "$name"; else
		fail "$name" "$(qemu-img compare src.raw n.qcow2)"; fi
fi

# -p prints progress on stderr, nothing on stdout.
name="write: -p progress"
rm -f w.qcow2
if need "$name" convert -p -O qcow2 src.raw w.qcow2; then
	if grep -q '100.00/100%' "$T/err" && [ ! -s "$T/out" ]; then ok "$name"; else
		fail "$name" "stderr: $(od -c "$T/err" | tail -3)"; fi
fi

# Failures leave nothing behind.
name="convert: a missing source leaves no output"
cv convert -O qcow2 missing.raw never.qcow2
if clean_error && [ -z "$(ls -A | grep -E 'never|cove-')" ]; then ok "$name"; else
	fail "$name" "rc=$rc" "$(cat "$T/err")" "$(ls -a)"; fi
name="convert: an unwritable target folder fails cleanly"
cv convert -O qcow2 src.raw /proc/nonexistent/x.qcow2
if clean_error; then ok "$name"; else fail "$name" "rc=$rc" "$(cat "$T/err")"; fi
name="convert: -c to raw is refused, no output"
cv convert -c -O raw src.raw never.raw
if clean_error && [ ! -e never.raw ]; then ok "$name"; else fail "$name" "rc=$rc"; fi
name="convert: -n into a smaller image is refused"
qemu-img create -q -f qcow2 small.qcow2 1M
cv convert -n -O qcow2 src.raw small.qcow2
if clean_error; then ok "$name"; else fail "$name" "rc=$rc" "$(cat "$T/err")"; fi
name="convert: a failing conversion keeps the old target"
echo keep >old.qcow2
cv convert -O qcow2 missing.raw old.qcow2
if clean_error && [ "$(cat old.qcow2)" = keep ]; then ok "$name"; else fail "$name" "rc=$rc"; fi

# -t CACHE as qemu-img takes it: unsafe (no sync, qemu-img's default), none (O_DIRECT),
# writeback; the result is the same image each way. An unknown mode is refused.
for t in unsafe none writeback directsync writethrough; do
	name="convert -t $t: the same image"
	rm -f t.qcow2
	need "$name" convert -t "$t" -T none -O qcow2 src.raw t.qcow2 || continue
	if qemu-img compare -q src.raw t.qcow2 && qemu-img check -q t.qcow2; then
		ok "$name"
	else
		fail "$name" "differs from its source or fails qemu-img check"
	fi
done
# What each mode does to the target, seen with strace (the content check above would pass
# if -t were ignored): unsafe never syncs anything; none and directsync open the target
# O_DIRECT; writeback and the default sync it (under its temporary name, before the rename).
plus() { [ "$1" -gt 0 ] && echo 1+ || echo 0; }
for t in unsafe none directsync writeback default; do
	name="convert -t $t: the target's open flags and syncs"
	rm -f t.qcow2
	targs=(-t "$t")
	[ $t = default ] && targs=()
	cv_trace "$T/trace" convert "${targs[@]}" -O qcow2 src.raw t.qcow2
	if [ $rc -eq 2 ]; then skip "$name" "needs strace"; continue; fi
	direct=$(grep -cE 'open(at)?\(.*t\.qcow2[^"]*", [^)]*O_DIRECT' "$T/trace")
	target_syncs=$(syncs_of "$T/trace" 't\.qcow2' | wc -l)
	all_syncs=$(grep -cE '(fsync|fdatasync)\(' "$T/trace")
	case $t in
	unsafe) want="direct 0, target syncs 0, all syncs 0" ;;
	none | directsync) want="direct 1, target syncs 1+, all syncs 1+" ;;
	*) want="direct 0, target syncs 1+, all syncs 1+" ;;
	esac
	got="direct $([ "$direct" -gt 0 ] && echo 1 || echo 0), target syncs $(plus "$target_syncs"), all syncs $(plus "$all_syncs")"
	if [ $rc -eq 0 ] && [ "$got" = "$want" ] && qemu-img compare -q src.raw t.qcow2; then
		ok "$name"
	else
		fail "$name" "exit $rc; want $want; got $got" "$(cat "$T/err")" \
			"$(grep -E 't\.qcow2|sync' "$T/trace" | head -n 15)"
	fi
done
# Early writeback (sync_file_range every 32 MiB) is for a page-cached target: the default
# starts it on a 40 MiB copy; O_DIRECT targets have nothing dirty, unsafe never syncs.
head -c 40M /dev/urandom >wb.raw
for t in default none directsync unsafe; do
	name="convert -t $t of 40 MiB: early writeback $([ $t = default ] && echo runs || echo "does not run")"
	rm -f t.qcow2
	targs=(-t "$t")
	[ $t = default ] && targs=()
	cv_trace "$T/trace" convert "${targs[@]}" -O qcow2 wb.raw t.qcow2
	if [ $rc -eq 2 ]; then skip "$name" "needs strace"; continue; fi
	n=$(grep -c 'sync_file_range(' "$T/trace")
	want=$([ $t = default ] && echo some || echo none)
	got=$([ "$n" -gt 0 ] && echo some || echo none)
	if [ $rc -eq 0 ] && [ "$want" = "$got" ]; then
		ok "$name"
	else
		fail "$name" "exit $rc, $n sync_file_range calls" "$(cat "$T/err")"
	fi
done
rm -f wb.raw t.qcow2
name="convert -t bogus: refused, nothing made"
rm -f t.qcow2
cv convert -t bogus -O qcow2 src.raw t.qcow2
if [ "$rc" -eq 1 ] && grep -q "Invalid cache option: bogus" "$T/err" && [ ! -e t.qcow2 ]; then
	ok "$name"
else
	fail "$name" "rc=$rc $(cat "$T/err")"
fi

done_testing
