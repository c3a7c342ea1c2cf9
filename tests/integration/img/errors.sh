#!/bin/bash
# Bad input to cove img: missing files, wrong options, hostile images, absurd sizes.
# Each must give a clear error, a non-zero exit, no crash, no hang and no partial output.
. "$(dirname "$0")/lib.sh"
P="$HERE/qcow2_patch.py"

bad() { # NAME ARGS...: cove img ARGS must fail cleanly
	local name=$1
	shift
	cv "$@"
	if clean_error; then ok "$name"; else fail "$name" "exit $rc" "$(cat "$T/err" | head -5)"; fi
}
bad "no subcommand"
bad "unknown subcommand" frobnicate
bad "info: missing file" info missing.qcow2
bad "info: no file name" info
bad "info: bad --output" info --output xml missing.qcow2
bad "info: unknown format" info -f vmdk missing.qcow2
bad "create: unknown option" create --frob x.img 1M
bad "create: unknown format" create -f vhdx x.img 1M
bad "create: no size" create -f qcow2 x.img
bad "create: bad size" create -f qcow2 x.img 12Q
bad "create: size over 8 EiB" create -f raw x.img 9E
bad "create: bad cluster size" create -f qcow2 -o cluster_size=3000 x.img 1M
bad "create: cluster size 4M" create -f qcow2 -o cluster_size=4M x.img 1M
bad "create: bad refcount bits" create -f qcow2 -o refcount_bits=3 x.img 1M
bad "create: unknown -o key" create -f qcow2 -o bogus=1 x.img 1M
bad "create: backing without format" create -f qcow2 -b base.qcow2 x.img
bad "create: missing backing file" create -f qcow2 -b missing.qcow2 -F qcow2 x.img
bad "create: qcow2 options on raw" create -f raw -o cluster_size=4k x.img 1M
name="create: failures leave no file"
check "$name" [ -z "$(ls -A)" ]
bad "convert: bad -S" convert -S 1000 -O qcow2 a b
bad "convert: bad -m" convert -m 99 -O qcow2 a b
bad "convert: -B without -F" convert -O qcow2 -B b.qcow2 a c
bad "convert: one file" convert a
bad "check: unknown -r" check -r some x
bad "resize: bad size" resize x.qcow2 +lots
bad "map: missing file" map missing.raw
bad "measure: no input" measure -O qcow2
bad "snapshot: no action" snapshot x.qcow2
bad "snapshot: two actions" snapshot -l -c a x.qcow2
bad "bench: bad count" bench -c 0 x.qcow2
bad "rebase: no -b" rebase x.qcow2
bad "commit: missing file" commit missing.qcow2
bad "amend: no options" amend x.qcow2

# Hostile images: each is opened, checked, mapped and converted; none may crash or hang.
qemu-img create -q -f qcow2 good.qcow2 4M
qemu-io -c 'write -P 0x11 0 1M' good.qcow2 >/dev/null
mk() { # NAME PATCH-ARGS...
	cp good.qcow2 "$1"
	shift
	python3 "$P" "$@"
}
mk trunc.qcow2 trunc.qcow2 set l1_size 0 && truncate -s 1000 trunc.qcow2
mk l1past.qcow2 l1past.qcow2 set l1_table_offset 0x7fffffff0000
mk l1huge.qcow2 l1huge.qcow2 set l1_size 0xffffffff
mk rtpast.qcow2 rtpast.qcow2 set refcount_table_offset 0x100000000000
mk bigsize.qcow2 bigsize.qcow2 set size 0xffffffffffffffff
mk cbits.qcow2 cbits.qcow2 set cluster_bits 40
mk cbits8.qcow2 cbits8.qcow2 set cluster_bits 8
mk vers.qcow2 vers.qcow2 set version 9
mk incompat.qcow2 incompat.qcow2 set incompatible 0x8000
mk l1overlap.qcow2 l1overlap.qcow2 set l1_table_offset 0
mk snaps.qcow2 snaps.qcow2 set nb_snapshots 0xffffffff
printf 'QFI\xfbgarbage' >garbage.qcow2
head -c 0 /dev/null >empty.img
# A backing chain that loops back on itself.
qemu-img create -q -f qcow2 loop1.qcow2 1M
qemu-img create -q -f qcow2 -u -b loop1.qcow2 -F qcow2 loop2.qcow2 1M
qemu-img rebase -q -u -b loop2.qcow2 -F qcow2 loop1.qcow2
hostile="trunc l1past l1huge rtpast bigsize cbits cbits8 vers incompat l1overlap snaps garbage loop1"
for h in $hostile; do
	f=$h.qcow2
	crash=""
	for args in "info $f" "info --backing-chain --output json $f" "check $f" "map --output json $f" \
		"convert -O raw $f out.raw" "compare $f good.qcow2"; do
		# shellcheck disable=SC2086
		cv $args
		if crashed; then crash="$crash; cove img $args: exit $rc $(head -c 300 "$T/err")"; fi
	done
	name="hostile image $h: no crash, no hang"
	if [ -z "$crash" ]; then ok "$name"; else fail "$name" "$crash"; fi
	name="hostile image $h: convert fails cleanly or reads; no partial output"
	rm -f out.raw
	cv convert -O raw "$f" out.raw
	if { [ $rc -eq 0 ] && [ -e out.raw ]; } || { clean_error && [ ! -e out.raw ]; }; then
		ok "$name"
	else
		fail "$name" "exit $rc" "$(cat "$T/err")"
	fi
	name="hostile image $h: one error line for info"
	cv info "$f"
	if [ $rc -eq 0 ] || { clean_error && [ "$(wc -l <"$T/err")" -le 2 ]; }; then ok "$name"; else
		fail "$name" "exit $rc" "$(cat "$T/err")"; fi
done
# External data files: an image may only name a plain file beside it, unless the user
# trusts it (COVE_TRUST_DATA_FILE=1); otherwise a hostile image could read or write any
# host file. qemu-img opens whatever the image names.
mkdir -p outside df
printf 'secret host file\n' >outside/victim
qemu-img create -q -f qcow2 -o data_file="$PWD/outside/victim" df/abs.qcow2 1M
printf 'secret host file\n' >outside/victim # creation emptied it
qemu-img create -q -f qcow2 -o data_file=beside.data df/up.qcow2 1M
qemu-img amend -o data_file=../outside/victim df/up.qcow2
qemu-img create -q -f qcow2 -o data_file=beside.data df/link.qcow2 1M
ln -sf ../outside/victim df/link.data
qemu-img amend -o data_file=link.data df/link.qcow2
sum=$(sha256sum outside/victim)
for f in abs up link; do
	for args in "info df/$f.qcow2" "convert -O raw df/$f.qcow2 out.raw" "resize df/$f.qcow2 +1M" \
		"check -r all df/$f.qcow2"; do
		name="data file outside the image folder ($f): $args is refused"
		# shellcheck disable=SC2086
		cv $args
		if clean_error && grep -q COVE_TRUST_DATA_FILE "$T/err" && [ ! -e out.raw ] &&
			[ "$(sha256sum outside/victim)" = "$sum" ]; then ok "$name"; else
			fail "$name" "exit $rc" "$(cat "$T/err")"; fi
	done
done
name="COVE_TRUST_DATA_FILE=1 opens a data file named by an absolute path"
COVE_TRUST_DATA_FILE=1 cv convert -O raw df/abs.qcow2 out.raw
if [ $rc -eq 0 ] && qemu-img compare -q -f raw -F qcow2 out.raw df/abs.qcow2; then ok "$name"; else
	fail "$name" "exit $rc" "$(cat "$T/err")"; fi
# A FIFO named as the data file (beside the image, so not refused by name): a blocking open
# would wait for a writer forever; cove refuses it at once, trusted or not.
rm -f out.raw
(cd df && qemu-img create -q -f qcow2 -o data_file=fifo.data fifo.qcow2 1M)
rm -f df/fifo.data && mkfifo df/fifo.data
for trust in 0 1; do
	for args in "info df/fifo.qcow2" "check df/fifo.qcow2" "convert -O raw df/fifo.qcow2 out.raw"; do
		name="FIFO as the data file (trust $trust): $args fails at once"
		# shellcheck disable=SC2086
		COVE_TRUST_DATA_FILE=$trust timeout 10 "$COVE" img $args >"$T/out" 2>"$T/err"
		rc=$?
		if clean_error && grep -q 'not a regular file' "$T/err" && [ ! -e out.raw ] &&
			[ -p df/fifo.data ]; then ok "$name"; else
			fail "$name" "exit $rc (124: hung)" "$(cat "$T/err")"; fi
	done
done
# A FIFO as the image itself, or as its backing file: the same, for the same reason.
mkfifo df/img.fifo
qemu-img create -q -f qcow2 -b img.fifo -F raw -u df/over.qcow2 1M
for args in "info df/img.fifo" "check df/img.fifo" "convert -O raw df/img.fifo out.raw" \
	"bench -c 1 df/img.fifo" "info --backing-chain df/over.qcow2" \
	"convert -O raw df/over.qcow2 out.raw"; do
	name="FIFO as an image: $args fails at once"
	# shellcheck disable=SC2086
	timeout 10 "$COVE" img $args >"$T/out" 2>"$T/err"
	rc=$?
	if clean_error && grep -q 'not a regular file' "$T/err" && [ ! -e out.raw ] &&
		[ -p df/img.fifo ]; then ok "$name"; else
		fail "$name" "exit $rc (124: hung)" "$(cat "$T/err")"; fi
done
rm -rf outside df out.raw

# An interrupted convert removes its temporary file and leaves no target.
truncate -s 2G sparse.raw
set -m # job control: the background job gets SIGINT's default action, not SIG_IGN
"$COVE" img convert -S 0 -O qcow2 sparse.raw interrupted.qcow2 >/dev/null 2>&1 &
pid=$!
set +m
for _ in $(seq 200); do # up to 10 s for the temporary file to appear
	t=$(ls -A | grep -E '^\.interrupted\.qcow2\.cove-' | head -n1)
	[ -n "$t" ] && break
	sleep 0.05
done
sleep 0.2
kill -INT $pid 2>/dev/null
wait $pid
rc=$?
name="convert interrupted by SIGINT leaves nothing behind"
if [ -n "$t" ] && [ $rc -eq 130 ] && [ -z "$(ls -A | grep -E 'interrupted|cove-')" ]; then ok "$name"; else
	fail "$name" "temp '$t', exit $rc (want 130)" "$(ls -A)"; fi
rm -f sparse.raw
name="no temporary files left behind"
check "$name" [ -z "$(ls -A | grep cove-)" ]
done_testing
