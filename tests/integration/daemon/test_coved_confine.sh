#!/bin/bash
# coved --confine USER: each VMM runs as that user, in its own mount namespace that holds
# only /usr, a small /dev, its files and its run directory, with no capabilities and a
# seccomp filter; a forbidden system call kills that VMM only. Prints TAP.
set -u
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (to confine as another user)"; exit 77; }
getent passwd nobody >/dev/null || { echo "SKIP: no user 'nobody'"; exit 77; }
. "$(dirname "$0")/lib.sh"
start_coved "$FAKE_VMM" --confine nobody || { echo "Bail out! coved did not start"; exit 1; }
for v in a b; do echo "{\"name\":\"$v\"}" | "$COVECTL" define - >/dev/null; done
check "start two confined VMs" '"$COVECTL" start a >/dev/null && "$COVECTL" start b >/dev/null'
wait_for 'grep -q "uid=" "$STATE/run/a/vmm.log" 2>/dev/null'
log=$(cat "$STATE/run/a/vmm.log")
check "the VMM runs as nobody" 'grep -q "uid=65534" <<<"$log"'
check "with no capabilities" 'grep -q "CapEff:0000000000000000" <<<"$log"'
root=$(sed -n 's/.*root: //p' <<<"$log")
# The jail holds /usr (with the usual bin, lib, sbin links), /dev, /proc, /tmp, and the
# VMM's own files at their host paths: the first component of those paths (the checkout
# and the test's state directory) depends on where the tests run, so it is allowed too.
allowed="bin dev lib lib64 proc sbin tmp usr $(for p in "$FAKE_VMM" "$STATE"; do cut -d/ -f2 <<<"$p"; done | tr '\n' ' ')"
only_allowed() {
	local e
	for e in $root; do grep -qw -- "$e" <<<"$allowed" || return 1; done
	for e in dev proc tmp usr; do grep -qw -- "$e" <<<"$root" || return 1; done
}
check "its root holds only /usr, /dev, /proc, /tmp and its files ($root)" 'only_allowed && ! grep -Eqw "etc|var|boot|sys" <<<"$root"'
check "it cannot see the host's /etc" '! grep -q "sees /etc/passwd" <<<"$log"'
out=$( (echo hi-jail; sleep 0.5) | timeout 10 "$COVECTL" console a)
check "the confined VM still talks on its console" 'grep -q "echo: hi-jail" <<<"$out"'
echo forbidden >"$STATE/run/a/console.in"
check "a forbidden system call kills that VMM (SIGSYS)" 'wait_for "events \"?vm=a\" | grep -q \"killed by signal 31\""'
check "the other VM keeps running" '"$COVECTL" list | grep -q "b .*running"'
check "coved keeps serving" '"$COVECTL" list --all | grep -q "a .*shut off"'
"$COVECTL" destroy b >/dev/null
if "$COVE" run --help 2>&1 | grep -q -- --memory && [ -e /dev/kvm ]; then
	stop_coved
	start_coved "$COVE" --confine nobody || { echo "Bail out! coved did not restart"; exit 1; }
	echo '{"name":"probe","memory":64}' | "$COVECTL" define - >/dev/null
	"$COVECTL" start probe >/dev/null
	check "a confined cove run boots the probe guest" 'wait_for "grep -q \"PROBE:\" \"$STATE/run/probe/console.log\"" 100'
	# A qcow2 disk: its backing file is bound into the jail too (read-only).
	. "$(dirname "$0")/../virtio/disk-lib.sh"
	mkdisk "$TMP/base.raw"
	"$COVE" img create -f qcow2 -b "$TMP/base.raw" -F raw "$TMP/pd.qcow2" >/dev/null
	chmod 0644 "$TMP/base.raw"
	chmod 0666 "$TMP/pd.qcow2"
	printf '{"name":"pdisk","memory":128,"cmdline":"probe=vblk","disks":[{"path":"%s"}]}' \
		"$TMP/pd.qcow2" | "$COVECTL" define - >/dev/null
	"$COVECTL" start pdisk >/dev/null
	check "a confined VMM reads and writes a qcow2 disk over its backing file" 'wait_for "grep -q \"PROBE: ok vblk\" \"$STATE/run/pdisk/console.log\"" 100 || { sed "s/^/# /" "$STATE/run/pdisk/vmm.log" "$STATE/run/pdisk/console.log"; false; }'
else
	skip "a confined cove run boots the probe guest" "cove run or /dev/kvm missing"
	skip "a confined VMM reads and writes a qcow2 disk over its backing file" "cove run or /dev/kvm missing"
fi
echo "1..$n"
