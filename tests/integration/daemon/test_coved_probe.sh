#!/bin/bash
# A real VM through coved: the built-in probe guest started with `covectl start`, its
# console output and its stopped event. Skips until `cove run` boots the probe guest.
set -u
. "$(dirname "$0")/lib.sh"
: "${COVE:?set by meson}"
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "SKIP: /dev/kvm is not usable"; exit 77
fi
probe=$(timeout 60 "$COVE" run --console stdio </dev/null 2>&1)
if ! grep -q "PROBE:" <<<"$probe"; then
	echo "SKIP: cove run does not boot the probe guest in this build (the VMM is on the vmm branch): $(head -c 120 <<<"$probe" | tr '\n' ' ')"
	exit 77
fi
start_coved "$COVE" || { echo "Bail out! coved did not start"; exit 1; }
echo '{"name":"probe","memory":64}' | "$COVECTL" define - >/dev/null
t0=$(date +%s%N)
check "covectl start probe" '"$COVECTL" start probe >/dev/null'
check "first console line" 'wait_for "curl -s --unix-socket $SOCK http://x/v1/vms/probe/console | grep -q PROBE:" 600'
t1=$(date +%s%N)
echo "# covectl start to first probe line: $(( (t1 - t0) / 1000000 )) ms"
check "stopped event after the guest powers off" 'wait_for "events \"?vm=probe\" | grep -q \"\\\"type\\\":\\\"stopped\\\"\"" 600'
check "console shows the probe's last line" 'curl -s --unix-socket $SOCK http://x/v1/vms/probe/console | grep -Eq "PROBE: ([0-9]+ passed|demo done)"'
check "it stopped because the guest powered off" 'events "?vm=probe" | grep -q "\"type\":\"stopped\",\"reason\":\"guest powered off\""'
out=$("$COVECTL" start probe >/dev/null && (sleep 2) | timeout 20 "$COVECTL" console probe)
check "covectl console shows a fresh run's output" 'grep -q "PROBE:" <<<"$out"'
# A qcow2 disk (format given in the definition) and the VMM's own disk counters in coved's
# stats under libvirt's names, read while the guest waits after its test (probe.exit=halt).
. "$(dirname "$0")/../virtio/disk-lib.sh"
mkdisk "$TMP/base.raw"
"$COVE" img create -f qcow2 -b "$TMP/base.raw" -F raw "$TMP/disk.qcow2" >/dev/null
printf '{"name":"pdisk","memory":256,"cmdline":"probe=vblk probe.exit=halt","disks":[{"path":"%s","format":"qcow2"}]}' \
	"$TMP/disk.qcow2" | "$COVECTL" define - >/dev/null
check "covectl start pdisk (a qcow2 disk)" '"$COVECTL" start pdisk >/dev/null'
check "its guest's vblk test passes on the qcow2 disk" 'wait_for "curl -s --unix-socket $SOCK http://x/v1/vms/pdisk/console | grep -q \"PROBE: ok vblk\"" 600'
stats=$(api GET /v1/vms/pdisk/stats)
check "stats: block.0.rd.reqs, rd.bytes, wr.reqs, wr.bytes, fl.reqs from the VMM" 'python3 -c "
import json, sys
s = json.loads(sys.argv[1].split(\" \", 1)[1])
ok = s[\"block.count\"] == 1 and s[\"block.0.rd.reqs\"] >= 3 and s[\"block.0.rd.bytes\"] >= 8192 + 4096 and s[\"block.0.wr.reqs\"] >= 1 and s[\"block.0.wr.bytes\"] >= 4096 and s[\"block.0.fl.reqs\"] >= 1
sys.exit(0 if ok else 1)" "$stats" || { echo "# $stats"; false; }'
"$COVECTL" destroy pdisk >/dev/null 2>&1
echo "1..$n"
