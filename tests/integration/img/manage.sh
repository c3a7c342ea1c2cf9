#!/bin/bash
# cove img create, resize, snapshot, rebase, commit and amend, checked by qemu-img.
. "$(dirname "$0")/lib.sh"

FIELDS='{"virtual-size","cluster-size","format","format-specific","backing-filename",
  "backing-filename-format","dirty-flag"}'
same_info() { # A B: info fields agree (qemu-img reads both)
	[ "$(qemu-img info --output json "$1" | jq -S "$FIELDS")" = \
		"$(qemu-img info --output json "$2" | jq -S "$FIELDS")" ]
}
qcheck() {
	qemu-img check -q "$1" >"$T/qck" 2>&1
}

# create: the same options give the same image description as qemu-img's.
ccase() { # NAME ARGS... (the file name and size are added)
	local name="create $1"
	shift
	rm -f c.img q.img
	need "$name" create "$@" c.img 64M || return
	qemu-img create -q "$@" q.img 64M
	if [ "$(sed 's/c.img/X/' "$T/out")" != "$(qemu-img create "$@" q2.img 64M | sed 's/q2.img/X/')" ]; then
		fail "$name" "different 'Formatting' line: $(cat "$T/out")"
	elif [ "${*/qcow2/}" != "$*" ] && ! qcheck c.img; then
		fail "$name" "qemu-img check: $(cat "$T/qck")"
	elif ! same_info c.img q.img; then
		fail "$name" "$(diff <(qemu-img info --output json q.img) <(qemu-img info --output json c.img))"
	else
		ok "$name"
	fi
	rm -f q2.img
}
ccase "raw" -f raw
ccase "raw falloc" -f raw -o preallocation=falloc
ccase "qcow2" -f qcow2
ccase "qcow2 v2" -f qcow2 -o compat=0.10
ccase "qcow2 cluster 512" -f qcow2 -o cluster_size=512
ccase "qcow2 cluster 2M, refcount 64" -f qcow2 -o cluster_size=2M,refcount_bits=64
ccase "qcow2 refcount 1" -f qcow2 -o refcount_bits=1
ccase "qcow2 zstd, extended L2, lazy" -f qcow2 -o compression_type=zstd,extended_l2=on,lazy_refcounts=on
ccase "qcow2 preallocation=metadata" -f qcow2 -o preallocation=metadata
ccase "qcow2 preallocation=falloc" -f qcow2 -o preallocation=falloc
ccase "qcow2 preallocation=full" -f qcow2 -o preallocation=full
name="create a 0-byte qcow2: qemu-img check passes"
if need "$name" create -q -f qcow2 zero.qcow2 0; then
	if qcheck zero.qcow2; then ok "$name"; else fail "$name" "$(cat "$T/qck")"; fi
fi
qemu-img create -q -f qcow2 base.qcow2 32M
qemu-io -c 'write -P 0x5a 0 4M' base.qcow2 >/dev/null
name="create -b -F takes the backing size"
if need "$name" create -f qcow2 -b base.qcow2 -F qcow2 over.qcow2; then
	if qcheck over.qcow2 && [ "$(qemu-img info --output json over.qcow2 | jq '."virtual-size"')" = 33554432 ] &&
		qemu-img compare -q base.qcow2 over.qcow2; then ok "$name"; else fail "$name" "$(qemu-img info over.qcow2)"; fi
fi
name="create -o backing_file,backing_fmt (as -b -F)"
if need "$name" create -q -f qcow2 -o backing_file=base.qcow2,backing_fmt=qcow2 obf.qcow2; then
	if qcheck obf.qcow2 && qemu-img compare -q base.qcow2 obf.qcow2 &&
		[ "$(qemu-img info --output json obf.qcow2 | jq -r '."backing-filename", ."backing-filename-format"')" = "$(printf 'base.qcow2\nqcow2')" ]; then
		ok "$name"
	else
		fail "$name" "$(qemu-img info obf.qcow2)"
	fi
fi
# create writes under a temporary name (.NAME.cove-*) and renames it into place.
leftovers() { ls -A | grep -E "^\.$1\.cove-"; }
name="create: SIGINT during a preallocation=full create leaves nothing behind, old file kept"
echo keep >big.raw
set -m # job control: the background job gets SIGINT's default action, not SIG_IGN
# 4 GiB, many times what is written before the SIGINT lands; the file size limit bounds the
# disk used if the signal were lost (SIGXFSZ then ends it, and the test fails on the status).
(ulimit -f $((4 << 20)); exec "$COVE" img create -q -f raw -o preallocation=full big.raw 4G) \
	>/dev/null 2>"$T/err" &
pid=$!
set +m
for _ in $(seq 200); do # up to 10 s for the temporary file to start filling
	t=$(leftovers big.raw | head -n1)
	[ -n "$t" ] && [ "$(stat -c %b "$t" 2>/dev/null || echo 0)" -gt 0 ] && break
	sleep 0.05
done
kill -INT $pid 2>/dev/null
wait $pid
st=$?
if [ -n "$t" ] && [ $st -eq 130 ] && [ -z "$(leftovers big.raw)" ] && [ "$(cat big.raw)" = keep ]; then
	ok "$name"
else
	fail "$name" "temp '$t', exit $st (want 130)" "$(ls -la)" "$(cat "$T/err")"
	rm -f .big.raw.cove-*
fi
name="create: an ignored SIGHUP (nohup) stays ignored"
(trap '' HUP; exec "$COVE" img create -q -f raw -o preallocation=full hup.raw 512M) >/dev/null 2>&1 &
pid=$!
for _ in $(seq 200); do
	[ -n "$(leftovers hup.raw)" ] && break
	sleep 0.05
done
kill -HUP $pid 2>/dev/null
wait $pid
st=$?
check "$name" [ $st -eq 0 -a "$(stat -c %s hup.raw 2>&1)" = 536870912 ]
rm -f hup.raw
for f in raw qcow2; do
	name="create -f $f: a failure (file size limit) keeps the old file, no temporary left"
	echo keep >lim.img
	# 4 MiB file size limit; SIGXFSZ ignored so the write fails with EFBIG.
	(trap '' XFSZ; ulimit -f 4096; exec "$COVE" img create -q -f $f -o preallocation=full lim.img 64M) \
		>/dev/null 2>"$T/err"
	rc=$?
	if clean_error && [ "$(cat lim.img)" = keep ] && [ -z "$(leftovers lim.img)" ]; then ok "$name"; else
		fail "$name" "exit $rc" "$(cat "$T/err")" "$(ls -la)"; fi
done
name="create over an existing image replaces it"
qemu-img create -q -f raw rep.img 1M
if need "$name" create -q -f qcow2 rep.img 2M; then
	check "$name" [ "$(qemu-img info --output json rep.img | jq -r '.format, ."virtual-size"' | tr '\n' ' ')" = "qcow2 2097152 " ]
fi
# A FIFO stands for any special file (a device node as root): rename would replace it.
name="create refuses to replace a FIFO"
mkfifo fifo.img
cv create -f raw fifo.img 1M
if clean_error && grep -q 'not a regular file' "$T/err" && [ -p fifo.img ] && [ -z "$(leftovers fifo.img)" ]; then
	ok "$name"
else
	fail "$name" "exit $rc" "$(cat "$T/err")" "$(ls -la)"
fi
rm -f fifo.img
name="create -o help lists the qcow2 options"
cv create -f qcow2 -o help
check "$name" grep -q '^  cluster_size=' "$T/out"
name="create 1.5G size suffix"
if need "$name" create -q -f qcow2 s.qcow2 1.5G; then
	check "$name" [ "$(qemu-img info --output json s.qcow2 | jq '."virtual-size"')" = 1610612736 ]
fi

# resize
mkmixed data.raw 2
qemu-img convert -O qcow2 data.raw r.qcow2
name="resize +1G then qemu-img sees the new size and the old data"
if need "$name" resize r.qcow2 +1G; then
	if qcheck r.qcow2 && [ "$(qemu-img info --output json r.qcow2 | jq '."virtual-size"')" = $((2 * 1048576 + 1073741824)) ] &&
		qemu-img compare -q data.raw r.qcow2; then ok "$name"; else fail "$name" "$(cat "$T/qck")"; fi
fi
name="resize to a smaller size needs --shrink"
cv resize r.qcow2 1M
check "$name" clean_error
name="resize --shrink -- -1G"
if [ "$(qemu-img info --output json r.qcow2 | jq '."virtual-size"')" -le 1073741824 ]; then
	skip "$name" "needs the grown image of the test before"
elif need "$name" resize --shrink r.qcow2 -1G; then
	if qcheck r.qcow2 && qemu-img compare -q data.raw r.qcow2 &&
		[ "$(qemu-img info --output json r.qcow2 | jq '."virtual-size"')" = 2097152 ]; then ok "$name"; else
		fail "$name" "$(cat "$T/qck")" "$(qemu-img compare data.raw r.qcow2)"; fi
fi
# --shrink drops an allocated tail as qemu-img 7.2 does: the same check figures (image end
# included: the file is cut after the last cluster in use), the same info, the kept part
# unchanged.
qemu-img convert -O qcow2 data.raw sh-data.qcow2
qemu-img convert -O qcow2 -c data.raw sh-comp.qcow2
qemu-img create -q -f qcow2 -o preallocation=metadata sh-meta.qcow2 64M
qemu-img create -q -f qcow2 -o cluster_size=4k sh-c4k.qcow2 16M # several refcount blocks
qemu-io -c "write -P 7 0 16M" sh-c4k.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=1 sh-c512.qcow2 4M
qemu-io -c "write -P 9 0 4M" sh-c512.qcow2 >/dev/null
qemu-img create -q -f qcow2 -o extended_l2=on sh-ext.qcow2 8M
qemu-io -c "write -P 5 100k 3M" -c "write -z 5M 1M" sh-ext.qcow2 >/dev/null
for c in sh-data:1049088 sh-comp:1M sh-meta:16M sh-c4k:2047k sh-c4k:10M sh-c512:1M sh-ext:3M; do
	f=${c%%:*}.qcow2 size=${c#*:}
	name="resize --shrink $f to $size: as qemu-img"
	cp "$f" sq.qcow2 && cp "$f" sc.qcow2
	qemu-img resize -q --shrink sq.qcow2 "$size"
	need "$name" resize --shrink sc.qcow2 "$size" || continue
	raw_of "$f" kept.raw && truncate -s "$(qemu-img info --output json sq.qcow2 | jq '."virtual-size"')" kept.raw
	a=$(qemu-img check --output json sc.qcow2 2>&1 | jq -S 'del(.filename)')
	b=$(qemu-img check --output json sq.qcow2 2>&1 | jq -S 'del(.filename)')
	ia=$(qemu-img info --output json sc.qcow2 | jq -S 'del(.filename, ."actual-size")')
	ib=$(qemu-img info --output json sq.qcow2 | jq -S 'del(.filename, ."actual-size")')
	# The file lengths agree to a cluster (cove keeps whole clusters; qemu-img's compressed
	# images may end inside one).
	cs=$(qemu-img info --output json sq.qcow2 | jq '."cluster-size"')
	if [ "$a" = "$b" ] && [ "$ia" = "$ib" ] && qemu-img compare -q kept.raw sc.qcow2 &&
		[ "$(stat -c %s sc.qcow2)" = $((($(stat -c %s sq.qcow2) + cs - 1) / cs * cs)) ]; then
		ok "$name"
	else
		fail "$name" "check: $(diff <(echo "$b") <(echo "$a"))" "info: $(diff <(echo "$ib") <(echo "$ia"))" \
			"$(qemu-img compare kept.raw sc.qcow2)" "file: cove $(stat -c %s sc.qcow2), qemu-img $(stat -c %s sq.qcow2)"
	fi
done
cp data.raw r.raw
name="resize raw +3M --preallocation=falloc"
if need "$name" resize --preallocation=falloc -f raw r.raw +3M; then
	check "$name" [ "$(stat -c %s r.raw)" = $((5 * 1048576)) ]
fi

# snapshots: created by cove, listed and applied by qemu-img, and the other way round.
qemu-img convert -O qcow2 data.raw s.qcow2
name="snapshot -c, then qemu-img lists it and check passes"
if need "$name" snapshot -c first s.qcow2; then
	if qcheck s.qcow2 && qemu-img snapshot -l s.qcow2 | grep -q ' first '; then ok "$name"; else
		fail "$name" "$(qemu-img snapshot -l s.qcow2)" "$(cat "$T/qck")"; fi
fi
qemu-io -c 'write -P 0x99 0 1M' s.qcow2 >/dev/null
qemu-img snapshot -c second s.qcow2
name="snapshot -l prints what qemu-img prints"
if need "$name" snapshot -l s.qcow2; then
	qi snapshot -l s.qcow2
	if diff -q "$T/qout" "$T/out" >/dev/null; then ok "$name"; else fail "$name" "$(diff "$T/qout" "$T/out")"; fi
fi
name="snapshot -a first restores the data"
if need "$name" snapshot -a first s.qcow2; then
	if qcheck s.qcow2 && qemu-img compare -q data.raw s.qcow2; then ok "$name"; else
		fail "$name" "$(cat "$T/qck")" "$(qemu-img compare data.raw s.qcow2)"; fi
fi
name="snapshot -d second, -d first, then no snapshots"
if need "$name" snapshot -d second s.qcow2 && need "$name" snapshot -d first s.qcow2; then
	if qcheck s.qcow2 && [ -z "$(qemu-img snapshot -l s.qcow2)" ] && qemu-img compare -q data.raw s.qcow2; then
		ok "$name"; else fail "$name" "$(cat "$T/qck")"; fi
fi
name="snapshot -d of an unknown name fails"
cv snapshot -d nosuch s.qcow2
check "$name" clean_error

# rebase
qemu-img create -q -f qcow2 b1.qcow2 8M
qemu-io -c 'write -P 0x11 0 4M' b1.qcow2 >/dev/null
qemu-img create -q -f qcow2 b2.qcow2 8M
qemu-io -c 'write -P 0x11 0 1M' -c 'write -P 0x22 1M 2M' b2.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b b1.qcow2 -F qcow2 top.qcow2
qemu-io -c 'write -P 0x33 3M 64k' top.qcow2 >/dev/null
raw_of top.qcow2 top.raw
name="rebase (safe) onto another backing keeps the content"
if need "$name" rebase -b b2.qcow2 -F qcow2 top.qcow2; then
	bf=$(qemu-img info --output json top.qcow2 | jq -r '."backing-filename"')
	if [ "$bf" = b2.qcow2 ] && qcheck top.qcow2 && qemu-img compare -q top.raw top.qcow2; then ok "$name"; else
		fail "$name" "backing $bf" "$(qemu-img compare top.raw top.qcow2)"; fi
fi
name="rebase -b '' flattens"
if need "$name" rebase -b '' top.qcow2; then
	bf=$(qemu-img info --output json top.qcow2 | jq -r '."backing-filename" // "none"')
	if [ "$bf" = none ] && qcheck top.qcow2 && qemu-img compare -q top.raw top.qcow2; then ok "$name"; else
		fail "$name" "backing $bf" "$(qemu-img compare top.raw top.qcow2)"; fi
fi
qemu-img create -q -f qcow2 -b b1.qcow2 -F qcow2 u.qcow2
name="rebase -u changes only the header"
if need "$name" rebase -u -b missing.qcow2 -F qcow2 u.qcow2; then
	bf=$(qemu-img info --output json u.qcow2 | jq -r '."backing-filename"')
	check "$name" [ "$bf" = missing.qcow2 ]
fi
name="rebase without -F is refused"
cv rebase -b b2.qcow2 u.qcow2
check "$name" clean_error

# commit
qemu-img create -q -f qcow2 cb.qcow2 8M
qemu-io -c 'write -P 0x41 0 4M' cb.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b cb.qcow2 -F qcow2 ct.qcow2
qemu-io -c 'write -P 0x42 1M 1M' -c 'write -z 3M 64k' ct.qcow2 >/dev/null
raw_of ct.qcow2 ct.raw
name="commit writes the top into its backing file and empties the top"
if need "$name" commit ct.qcow2; then
	if grep -q 'Image committed.' "$T/out" && qcheck cb.qcow2 && qcheck ct.qcow2 &&
		qemu-img compare -q ct.raw cb.qcow2 && qemu-img compare -q ct.raw ct.qcow2 &&
		[ "$(qemu-img map --output json ct.qcow2 | jq '[.[] | select(.depth == 0 and .present)] | length')" = 0 ]; then
		ok "$name"
	else
		fail "$name" "$(qemu-img compare ct.raw cb.qcow2)" "$(qemu-img map --output json ct.qcow2)"
	fi
fi
qemu-img create -q -f qcow2 db.qcow2 8M
qemu-img create -q -f qcow2 -b db.qcow2 -F qcow2 dt.qcow2
qemu-io -c 'write -P 0x43 2M 1M' dt.qcow2 >/dev/null
raw_of dt.qcow2 dt.raw
name="commit -d keeps the top image's data"
if need "$name" commit -d dt.qcow2; then
	if qcheck db.qcow2 && qemu-img compare -q dt.raw db.qcow2 &&
		[ "$(qemu-img map --output json dt.qcow2 | jq '[.[] | select(.depth == 0 and .data)] | length')" -ge 1 ]; then
		ok "$name"
	else
		fail "$name" "$(qemu-img map --output json dt.qcow2)"
	fi
fi
name="commit of an image without backing fails"
cv commit cb.qcow2
check "$name" clean_error
# -p: qemu-img's progress lines ("    (NN.NN/100%)\r") on stderr, the usual output on stdout.
progress_done() { grep -q '(100.00/100%)' "$T/err"; }
qemu-img create -q -f qcow2 pb.qcow2 8M
qemu-io -c 'write -P 0x61 0 2M' pb.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b pb.qcow2 -F qcow2 pt.qcow2
qemu-io -c 'write -P 0x62 1M 3M' pt.qcow2 >/dev/null
raw_of pt.qcow2 pt.raw
cp pt.qcow2 pr.qcow2
name="commit -p: progress to 100% on stderr, 'Image committed.' on stdout"
if need "$name" commit -p pt.qcow2; then
	if progress_done && [ "$(cat "$T/out")" = "Image committed." ] && qemu-img compare -q pt.raw pb.qcow2; then
		ok "$name"; else fail "$name" "stdout: $(cat "$T/out")" "stderr: $(od -c "$T/err" | tail -3)"; fi
fi
name="rebase -p -b '': progress to 100%, content kept"
if need "$name" rebase -p -b '' pr.qcow2; then
	if progress_done && [ ! -s "$T/out" ] && qemu-img compare -q pt.raw pr.qcow2; then ok "$name"; else
		fail "$name" "stdout: $(cat "$T/out")" "stderr: $(od -c "$T/err" | tail -3)"; fi
fi
name="compare -p: progress to 100%, 'Images are identical.'"
cv compare -p pt.raw pr.qcow2
if [ $rc -eq 0 ] && progress_done && [ "$(cat "$T/out")" = "Images are identical." ]; then ok "$name"; else
	fail "$name" "exit $rc" "stdout: $(cat "$T/out")" "stderr: $(od -c "$T/err" | tail -3)"; fi
name="compare -p of different images: exit 1 and qemu-img's mismatch line"
cp pt.raw pd.raw
printf 'X' | dd of=pd.raw bs=1 seek=3000000 conv=notrunc status=none
cv compare -p pt.raw pd.raw
qi compare pt.raw pd.raw
if [ $rc -eq 1 ] && [ $qrc -eq 1 ] && diff -q "$T/out" "$T/qout" >/dev/null; then ok "$name"; else
	fail "$name" "cove $rc, qemu-img $qrc" "$(diff "$T/qout" "$T/out")"; fi
name="commit of a top image marked corrupt is refused before the base is written"
qemu-img create -q -f qcow2 kb.qcow2 8M
qemu-img create -q -f qcow2 -b kb.qcow2 -F qcow2 kt.qcow2
qemu-io -c 'write -P 0x63 0 1M' kt.qcow2 >/dev/null
python3 "$HERE/qcow2_patch.py" kt.qcow2 set incompatible 2
cp kb.qcow2 kb0.qcow2
cv commit kt.qcow2
if clean_error && ! grep -q 'Image committed' "$T/out" && cmp -s kb.qcow2 kb0.qcow2; then ok "$name"; else
	fail "$name" "exit $rc" "$(cat "$T/out" "$T/err")"; fi

# amend
qemu-img convert -O qcow2 data.raw am.qcow2
name="amend -o compat=0.10 (qemu-img reads version 2)"
if need "$name" amend -o compat=0.10 am.qcow2; then
	c=$(qemu-img info --output json am.qcow2 | jq -r '."format-specific".data.compat')
	if [ "$c" = 0.10 ] && qcheck am.qcow2 && qemu-img compare -q data.raw am.qcow2; then ok "$name"; else
		fail "$name" "compat $c" "$(cat "$T/qck")"; fi
fi
name="amend -o compat=1.1,lazy_refcounts=on"
if need "$name" amend -o compat=1.1,lazy_refcounts=on am.qcow2; then
	l=$(qemu-img info --output json am.qcow2 | jq -r '."format-specific".data."lazy-refcounts"')
	if [ "$l" = true ] && qcheck am.qcow2 && qemu-img compare -q data.raw am.qcow2; then ok "$name"; else
		fail "$name" "lazy $l" "$(cat "$T/qck")"; fi
fi
name="amend -o refcount_bits=64"
if need "$name" amend -o refcount_bits=64 am.qcow2; then
	b=$(qemu-img info --output json am.qcow2 | jq -r '."format-specific".data."refcount-bits"')
	if [ "$b" = 64 ] && qcheck am.qcow2 && qemu-img compare -q data.raw am.qcow2; then ok "$name"; else
		fail "$name" "bits $b" "$(cat "$T/qck")"; fi
fi

# bench: a short run in each mode.
qemu-img create -q -f qcow2 bench.qcow2 64M
for args in "-c 2000" "-c 2000 -w --pattern 0x5a" "-c 2000 -d 1 -s 64k" "-c 2000 --random" \
	"-c 2000 --random -w -t none"; do
	name="bench $args"
	# shellcheck disable=SC2086
	need "$name" bench $args bench.qcow2 || continue
	if grep -q 'Run completed in' "$T/out" && qcheck bench.qcow2; then ok "$name"; else
		fail "$name" "$(cat "$T/out")" "$(cat "$T/qck")"; fi
done
# bench -t unsafe opens the image without syncs: neither the flushes nor the one at the end
# reach the disk; the default syncs.
for t in unsafe writeback; do
	name="bench -w -t $t --flush-interval 64: $([ $t = unsafe ] && echo no sync || echo syncs)"
	cv_trace "$T/trace" bench -w -c 512 --flush-interval 64 -t $t bench.qcow2
	if [ $rc -eq 2 ]; then skip "$name" "needs strace"; continue; fi
	n=$(syncs_of "$T/trace" bench.qcow2 | wc -l)
	want=$([ $t = unsafe ] && echo 0 || echo some)
	got=$([ "$n" -eq 0 ] && echo 0 || echo some)
	if [ $rc -eq 0 ] && [ "$want" = "$got" ]; then
		ok "$name"
	else
		fail "$name" "exit $rc, $n syncs" "$(cat "$T/err")"
	fi
done
name="bench -w --pattern writes the pattern"
qemu-img create -q -f qcow2 pat.qcow2 1M
if need "$name" bench -w -c 256 -s 4k --pattern 0x5a pat.qcow2; then
	check "$name" qemu-io -c 'read -P 0x5a 0 1M' pat.qcow2
fi
done_testing
