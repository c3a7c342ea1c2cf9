#!/bin/bash
# coved --confine BASE:COUNT: each VMM runs as its own user (a uid per VM from the range),
# in its own mount namespace that holds only /usr, a small /dev, its files and its run
# directory, in its own PID namespace and cgroup, with no capabilities and a seccomp
# filter; a forbidden system call kills that VMM only; writable disks are lent to the
# VM's user and given back. A confined cove run with a writable disk and a NIC boots the
# probe guest, which uses the disk. Prints TAP.
set -u
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (to confine as other users)"; exit 77; }
. "$(dirname "$0")/lib.sh"
BASE=$((600000 + ($$ % 2000) * 50)) # unique per run: other runs may confine too
# A range with an account's uid in it is refused: a small range is looked up uid by uid,
# a large one (over 4096) in one pass over the accounts.
acct=$(getent passwd | awk -F: '$3 >= 1000 && $3 < 4000000000 { print $3 " " $1; exit }')
if [ -n "$acct" ]; then
	auid=${acct% *} aname=${acct#* }
	lbase=$((auid > 6000 ? auid - 5000 : 1000))
	for range in "$auid:1" "$lbase:10000"; do
		out=$(timeout 20 "$COVED" --socket "$TMP/refused.sock" --state-dir "$TMP/refused" --vmm "$FAKE_VMM" --confine "$range" 2>&1)
		rc=$?
		check "--confine $range holds the account '$aname' ($auid): refused" '[ $rc != 0 ] && grep -q "uid $auid is the account .$aname." <<<"$out"'
	done
else
	skip "--confine refuses a range with an account's uid" "no account with a uid >= 1000 here"
	skip "--confine refuses a large range with an account's uid" "no account with a uid >= 1000 here"
fi
start_coved "$FAKE_VMM" --confine "$BASE:50" || { echo "Bail out! coved did not start"; exit 1; }
# The pool disk of VM a: root's and private, as coved makes pool images.
"$COVECTL" vol-create adisk 1M >/dev/null
adisk=$STATE/images/adisk
echo "{\"name\":\"a\",\"disks\":[{\"path\":\"$adisk\"}]}" | "$COVECTL" define - >/dev/null
echo '{"name":"b"}' | "$COVECTL" define - >/dev/null
check "start two confined VMs" '"$COVECTL" start a >/dev/null && "$COVECTL" start b >/dev/null'
wait_for 'grep -q "processes=" "$STATE/run/a/vmm.log" 2>/dev/null && grep -q "processes=" "$STATE/run/b/vmm.log" 2>/dev/null'
log=$(cat "$STATE/run/a/vmm.log")
ua=$(sed -n 's/.*uid=\([0-9]*\).*/\1/p' "$STATE/run/a/vmm.log")
ub=$(sed -n 's/.*uid=\([0-9]*\).*/\1/p' "$STATE/run/b/vmm.log")
check "each VMM runs as its own user from the range ($ua, $ub)" '[ -n "$ua" ] && [ -n "$ub" ] && [ "$ua" != "$ub" ] && [ "$ua" -ge $BASE ] && [ "$ua" -lt $((BASE + 50)) ] && [ "$ub" -ge $BASE ] && [ "$ub" -lt $((BASE + 50)) ]'
check "coved reports the VM's uid" '"$COVECTL" --json info a | grep -q "\"uid\":$ua"'
check "with no capabilities" 'grep -q "CapEff:0000000000000000" <<<"$log"'
check "in its own PID namespace: it is pid 1 and sees only its own processes ($(grep -o "pid=.*" <<<"$log"))" 'grep -q "pid=1 " <<<"$log" && [ "$(sed -n "s/.*processes=\([0-9]*\).*/\1/p" <<<"$log")" -le 5 ]'
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
check "its writable disk is lent to its user while it runs" '[ "$(stat -c %u:%g "$adisk")" = "$ua:$ua" ]'
vpid=$("$COVECTL" --json info a | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
cgdir=$(head -1 "$STATE/sup/a/cgroup" 2>/dev/null)
limit=$(cat "$cgdir/memory.limit_in_bytes" "$cgdir/memory.max" 2>/dev/null | head -1)
if [ -n "$cgdir" ]; then
	# 128 MiB of guest RAM + 128 MiB + 1/8 of it = 272 MiB
	check "in its own cgroup with a memory limit of guest RAM + overhead ($limit)" 'grep -q "/cove/" /proc/$vpid/cgroup && grep -qx "$vpid" "$cgdir/cgroup.procs" && [ "$limit" = $((272 << 20)) ]'
else
	skip "in its own cgroup with a memory limit" "no cgroup hierarchy coved can use here (see its log)"
fi
out=$( (echo hi-jail; sleep 0.5) | timeout 10 "$COVECTL" console a)
check "the confined VM still talks on its console" 'grep -q "echo: hi-jail" <<<"$out"'
echo forbidden >"$STATE/run/a/console.in"
check "a forbidden system call kills that VMM (SIGSYS)" 'wait_for "events \"?vm=a\" | grep -q \"killed by signal 31\""'
check "the other VM keeps running" '"$COVECTL" list | grep -q "b .*running"'
check "coved keeps serving" '"$COVECTL" list --all | grep -q "a .*shut off"'
check "the disk is given back when the VMM ends" '[ "$(stat -c %u:%g:%a "$adisk")" = 0:0:600 ]'
check "and its cgroup is gone" '[ -n "$cgdir" ] && [ ! -d "$cgdir" ]'
"$COVECTL" destroy b >/dev/null
# A read-only disk the VM's user cannot read: refused, saying why.
"$COVECTL" vol-create rodisk 1M >/dev/null
echo "{\"name\":\"c\",\"disks\":[{\"path\":\"$STATE/images/rodisk\",\"readonly\":true}]}" | "$COVECTL" define - >/dev/null
r=$(api POST /v1/vms/c/actions/start)
check "a read-only disk its user cannot read: refused with the reason ($r)" '[[ $r == 403* ]] && grep -q "not readable by other users" <<<"$r"'
# A hostile VMM links the names of coved's files in its run directory (and in its own
# directory) to root-only files (those it reads to one, those it writes to another), then
# crashes: coved writes nothing through the links and serves nothing they point to.
secret=$TMP/secret victim=$TMP/victim
echo "TOP-SECRET-$$" >"$secret"
echo "VICTIM-$$" >"$victim"
chmod 600 "$secret" "$victim"
echo '{"name":"h"}' | "$COVECTL" define - >/dev/null
"$COVECTL" start h >/dev/null
wait_for 'grep -q "boot ok" "$STATE/run/h/console.log" 2>/dev/null'
echo "plant $STATE/run/h $secret $victim" >"$STATE/run/h/console.in"
wait_for 'events "?vm=h" | grep -q "\"type\":\"stopped\""'
ev=$(events "?vm=h")
check "a hostile VMM's links: the root-only files they point to are untouched" '[ "$(cat "$secret")" = "TOP-SECRET-$$" ] && [ "$(cat "$victim")" = "VICTIM-$$" ] && [ "$(stat -c %u:%a "$secret")" = 0:600 ] && [ "$(stat -c %u:%a "$victim")" = 0:600 ]'
check "... its exit status is the real one, reported with its own log" 'grep -q "exit status 3" <<<"$ev" && grep -q "simulated crash" <<<"$ev"'
check "... neither the crashed event nor the console serves the file" '! grep -q TOP-SECRET <<<"$ev" && ! api GET /v1/vms/h/console | grep -q TOP-SECRET'
check "... it could link only inside its own directory" 'grep -q "planted $STATE/run/h/vmm/" "$STATE/run/h/vmm.log" && ! grep -q "planted $STATE/run/h/[a-z.]*$" "$STATE/run/h/vmm.log" && [ -z "$(find "$STATE/run/h" -maxdepth 1 -type l)" ]'
# Lent disks and links: a disk path that is a link is not lent (it could name any file),
# and a disk swapped for a link while lent is not given back through it.
owned=$TMP/owned
echo keep >"$owned"
chown 12345:12345 "$owned"
chmod 600 "$owned"
ln -s "$owned" "$STATE/images/ldisk"
echo "{\"name\":\"l\",\"disks\":[{\"path\":\"$STATE/images/ldisk\"}]}" | "$COVECTL" define - >/dev/null
r=$(api POST /v1/vms/l/actions/start)
check "a writable disk given as a link is refused, saying why ($r)" '[[ $r == 4* ]] && grep -q "symbolic link" <<<"$r" && [ "$(stat -c %u:%g "$owned")" = 12345:12345 ]'
"$COVECTL" vol-create sdisk 1M >/dev/null
sdisk=$STATE/images/sdisk
echo "{\"name\":\"s\",\"disks\":[{\"path\":\"$sdisk\"}]}" | "$COVECTL" define - >/dev/null
"$COVECTL" start s >/dev/null
us=$(stat -c %u "$sdisk")
mv "$sdisk" "$sdisk.real"
ln -s "$owned" "$sdisk"
"$COVECTL" destroy s >/dev/null
wait_for '"$COVECTL" list --all | grep -q "s .*shut off"'
check "a lent disk swapped for a link: the link's target keeps its owner" '[ "$us" != 0 ] && [ "$(stat -c %u:%g "$owned")" = 12345:12345 ]'
check "... and coved says it did not give it back" 'grep -q "no longer the file lent" "$TMP/coved.log"'
# A disk whose backing chain is longer than the jail takes: refused, saying why.
"$COVE" img create -f raw "$TMP/chain0" 64K >/dev/null
for i in $(seq 1 40); do
	"$COVE" img create -f qcow2 -b "$TMP/chain$((i - 1))" -F "$([ $i = 1 ] && echo raw || echo qcow2)" "$TMP/chain$i" >/dev/null
done
echo "{\"name\":\"deep\",\"disks\":[{\"path\":\"$TMP/chain40\"}]}" | "$COVECTL" define - >/dev/null
r=$(api POST /v1/vms/deep/actions/start)
check "a backing chain too long for the jail is refused, saying why ($r)" '[[ $r == 4* ]] && grep -q "too many files to bind" <<<"$r"'
# A backing file named with "..": coved makes a bound file's path under the jail's root
# as root, and enough ".." would climb out of it onto the host; refused.
mkdir -p "$TMP/dd/sub"
chmod 644 "$TMP/chain0"
"$COVE" img create -f qcow2 -b "$TMP/dd/sub/../../chain0" -F raw "$TMP/dotdot" >/dev/null
echo "{\"name\":\"dd\",\"disks\":[{\"path\":\"$TMP/dotdot\"}]}" | "$COVECTL" define - >/dev/null
r=$(api POST /v1/vms/dd/actions/start)
check "a backing file named with '..' is refused, saying why ($r)" '[[ $r == 4* ]] && grep -q "without '"'"'..'"'"'" <<<"$r" && ! "$COVECTL" list | grep -q "dd .*running"'
stop_coved

# -- a confined cove run with a writable disk and a NIC, inside a network namespace
if "$COVE" run --help 2>&1 | grep -q -- --disk && [ -e /dev/kvm ] && ip netns add "cove-cf-$$" 2>/dev/null; then
	NS=cove-cf-$$
	TAP=cvt$$
	trap 'cleanup; ip netns del "$NS" 2>/dev/null' EXIT
	ip -n "$NS" tuntap add dev "$TAP" mode tap
	ip -n "$NS" link set "$TAP" up
	rm -f "$SOCK"
	ip netns exec "$NS" "$COVED" --socket "$SOCK" --state-dir "$STATE" --vmm "$COVE" \
		--confine "$BASE:50" --timeout 5 2>>"$TMP/coved.log" &
	COVED_PID=$!
	wait_for '[ -S "$SOCK" ] && "$COVECTL" list >/dev/null 2>&1' || { echo "Bail out! coved did not restart"; exit 1; }
	# The probe guest's vblk test reads this pattern and writes sectors 1000-1007.
	pdisk=$STATE/images/pdisk
	python3 -c "
import sys
with open(sys.argv[1], 'wb') as f:
    f.write(b''.join(bytes(((s * 31 + j) & 255) for j in range(512)) for s in range(4096)))
" "$pdisk"
	chmod 600 "$pdisk"
	echo "{\"name\":\"probe\",\"memory\":64,\"cmdline\":\"probe=pci,vblk\",\"disks\":[{\"path\":\"$pdisk\"}],\"nics\":[{\"tap\":\"$TAP\"}]}" |
		"$COVECTL" define - >/dev/null
	st=$("$COVECTL" start probe 2>&1) || echo "# start: $st"
	up=$("$COVECTL" --json info probe | python3 -c 'import json,sys; print(json.load(sys.stdin).get("uid",""))')
	check "a confined cove run with a disk and a NIC boots the probe guest, which uses the disk" 'wait_for "grep -q \"PROBE: [0-9]* passed\" \"$STATE/run/probe/console.log\"" 150 && grep -q "PROBE: ok vblk" "$STATE/run/probe/console.log" && grep -q "PROBE: 2 passed, 0 failed" "$STATE/run/probe/console.log"'
	check "its NIC's tap is its user's ($up)" '[ -n "$up" ] && [ "$(ip netns exec "$NS" cat /sys/class/net/$TAP/owner)" = "$up" ]'
	check "the guest's writes reached the disk, given back to root afterwards" 'wait_for "\"$COVECTL\" list --all | grep -q \"probe .*shut off\"" 100 && [ "$(stat -c %u "$pdisk")" = 0 ] && python3 -c "
import sys
d = open(sys.argv[1], \"rb\").read()
sys.exit(0 if d[1000 * 512 + 1] == (1000 * 7 + 13 + 0x5A) & 255 and d[999 * 512] == (999 * 31) & 255 else 1)" "$pdisk"'
	[ "$FAILED" = 1 ] && sed 's/^/# /' "$STATE/run/probe/console.log" "$STATE/run/probe/vmm.log" | tail -n 30
	# A qcow2 disk: its backing file is bound into the jail too (read-only, so it must be
	# readable by others); the overlay is lent to the VM's user like any writable disk.
	. "$(dirname "$0")/../virtio/disk-lib.sh"
	mkdisk "$TMP/base.raw"
	chmod 0644 "$TMP/base.raw"
	"$COVE" img create -f qcow2 -b "$TMP/base.raw" -F raw "$STATE/images/pd.qcow2" >/dev/null
	printf '{"name":"pdisk","memory":128,"cmdline":"probe=vblk","disks":[{"path":"%s"}]}' \
		"$STATE/images/pd.qcow2" | "$COVECTL" define - >/dev/null
	st=$("$COVECTL" start pdisk 2>&1) || echo "# start: $st"
	check "a confined VMM reads and writes a qcow2 disk over its backing file" 'wait_for "grep -q \"PROBE: ok vblk\" \"$STATE/run/pdisk/console.log\"" 100 || { sed "s/^/# /" "$STATE/run/pdisk/vmm.log" "$STATE/run/pdisk/console.log"; false; }'
else
	skip "a confined cove run with a disk and a NIC boots the probe guest" "cove run, /dev/kvm or network namespaces missing"
	skip "a confined VMM reads and writes a qcow2 disk over its backing file" "cove run, /dev/kvm or network namespaces missing"
fi
echo "1..$n"
