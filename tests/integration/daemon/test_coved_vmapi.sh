#!/bin/bash
# coved driving a VM through the VM's own API socket (when the VMM has --api-sock):
# pause/resume as PATCH /vm, stats from GET /stats, shutdown as PUT /shutdown (the ACPI
# power button). The VMM is a script around the fc_api test double. Prints TAP.
set -u
. "$(dirname "$0")/lib.sh"
: "${FC_API_DOUBLE:?set by meson}"
export FC_API_DOUBLE
start_coved "$(dirname "$0")/fake-vmm-api.sh" || { echo "Bail out! coved did not start"; exit 1; }
echo '{"name":"api1","disks":[{"path":"/var/lib/cove/images/a.img"},{"path":"/var/lib/cove/images/b.img"}]}' | "$COVECTL" define - >/dev/null
check "start" '"$COVECTL" start api1 >/dev/null'
check "booted through its API socket" 'wait_for "curl -s --unix-socket $SOCK http://x/v1/vms/api1/console | grep -q \"through the API\""'
check "coved knows the VM has an API socket" '"$COVECTL" --json info api1 | grep -q "\"api_socket\":true"'
ops=$STATE/run/api1/vmm/ops.log
check "suspend is PATCH /vm Paused" '"$COVECTL" suspend api1 >/dev/null && grep -q "^pauses$" "$ops"'
check "resume is PATCH /vm Resumed" '"$COVECTL" resume api1 >/dev/null && grep -q "^resumes$" "$ops"'
# Disk counters exist only in the VMM (the double reports 4096 bytes read on its first
# drive and 8192 on its second); coved alone would say 0.
stats=$("$COVECTL" --json stats api1)
check "stats come from GET /stats (the VMM's disk counters)" 'grep -q "\"block.0.rd.bytes\":4096" <<<"$stats" && grep -q "\"block.1.rd.bytes\":8192" <<<"$stats" && grep -q "\"block.1.rd.reqs\":2" <<<"$stats"'
check "shutdown is the power button (PUT /shutdown)" '"$COVECTL" shutdown api1 >/dev/null && wait_for "grep -q \"^shutdowns$\" \"$ops\""'
check "then the VM stops" 'wait_for "events \"?vm=api1\" | grep -q \"\\\"type\\\":\\\"stopped\\\"\""'
echo "1..$n"
