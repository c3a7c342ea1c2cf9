#!/bin/bash
# kill -9 of coved in the middle of a burst of definitions loses nothing that was
# acknowledged: every VM that got 201 is there after a restart, and the store is sound.
# coved killed at each step of a start, a destroy and a reboot (the test hook
# COVED_TEST_CRASH_AT) leaves exactly one VMM or none, which the restarted coved knows.
set -u
. "$(dirname "$0")/lib.sh"
start_coved || { echo "Bail out! coved did not start"; exit 1; }
acked=$TMP/acked
: >"$acked"
for round in 1 2 3; do
	for i in $(seq 1 40); do
		(
			name=r$round-$i
			code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" \
				-X POST -d "{\"name\":\"$name\",\"cpus\":2}" http://x/v1/vms)
			[ "$code" = 201 ] && echo "$name" >>"$acked"
		) &
	done
	sleep 0.$((RANDOM % 4 + 4))
	kill9_coved
	wait
	start_coved || { echo "Bail out! coved did not restart"; exit 1; }
	missing=0
	listed=$(curl -s --unix-socket "$SOCK" http://x/v1/vms)
	while read -r name; do
		grep -q "\"name\":\"$name\"" <<<"$listed" || missing=$((missing + 1))
	done <"$acked"
	check "round $round: every acknowledged definition survived kill -9 ($(wc -l <"$acked") so far)" '[ $missing -eq 0 ]'
done
check "definitions were acknowledged in the bursts ($(wc -l <"$acked") of 120), so the kills hit work in flight" '[ "$(wc -l <"$acked")" -gt 0 ]'

# A VM that crashes while coved is down is reported when coved comes back.
echo '{"name":"lonely"}' | "$COVECTL" define - >/dev/null
"$COVECTL" start lonely >/dev/null
wait_for '[ -p "$STATE/run/lonely/console.in" ]'
kill9_coved
echo crash >"$STATE/run/lonely/console.in"
wait_for '[ -e "$STATE/sup/lonely/exit" ]'
start_coved || { echo "Bail out! coved did not restart"; exit 1; }
check "a crash while coved was down is reported on restart" 'wait_for "events \"?vm=lonely\" | grep -q \"exit status 3\""'
# -- coved killed (SIGKILL, by its test hook) at each step of starting, destroying and
# rebooting a VM.
# vmm_count NAME: processes writing the VM's console (its VMM), the shim aside.
vmm_count() {
	local n=0 p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/fd/1" 2>/dev/null)" = "$STATE/run/$1/console.log" ] &&
			[ "$(cat "$p/comm" 2>/dev/null)" != cove-shim ] && n=$((n + 1))
	done
	echo $n
}
# crash_at POINT: restarts coved with the hook at POINT.
crash_at() {
	stop_coved
	COVED_TEST_CRASH_AT=$1 start_coved || { echo "Bail out! coved did not start"; exit 1; }
}
# died: waits for coved to die of its hook, then starts it without the hook.
died() {
	local i
	for i in $(seq 50); do kill -0 "$COVED_PID" 2>/dev/null || break; sleep 0.1; done
	wait "$COVED_PID" 2>/dev/null
	local st=$?
	COVED_PID=
	start_coved || { echo "Bail out! coved did not restart"; exit 1; }
	[ "$st" = 137 ]
}
booted() { wait_for "grep -q 'boot ok' '$STATE/run/$1/console.log' 2>/dev/null" 50; }
for v in s1 s2 s3 s4; do echo "{\"name\":\"$v\"}" | "$COVECTL" define - >/dev/null; done

crash_at starting
"$COVECTL" start s1 >/dev/null 2>&1
check "killed after recording a start, before the fork: coved died there" 'died'
check "... the VM is shut off, with no VMM and no runtime record" '"$COVECTL" list --all | grep -q "s1 .*shut off" && [ "$(vmm_count s1)" = 0 ] && [ ! -e "$STATE/sup/s1/pid" ] && [ -z "$(sqlite3 "$STATE/coved.db" "SELECT name FROM runtime WHERE name=\"s1\"")" ]'
check "... and it starts normally then" '"$COVECTL" start s1 >/dev/null && booted s1 && [ "$(vmm_count s1)" = 1 ]'
"$COVECTL" destroy s1 >/dev/null

crash_at forked
"$COVECTL" start s2 >/dev/null 2>&1
check "killed after the VMM started, before its pids were recorded: coved died there" 'died'
check "... the restarted coved re-attached to that VMM" 'booted s2 && "$COVECTL" list | grep -q "s2 .*running" && [ "$(vmm_count s2)" = 1 ]'
r=$(api POST /v1/vms/s2/actions/start)
check "... a second start is refused (409) and starts no second VMM" '[[ $r == 409* ]] && sleep 0.5 && [ "$(vmm_count s2)" = 1 ]'
check "... its pid is the one coved reports" '[ "$("$COVECTL" --json info s2 | python3 -c "import json,sys; print(json.load(sys.stdin)[\"pid\"])")" = "$(cut -d" " -f2 "$STATE/sup/s2/pid")" ]'
check "... and destroy stops it" '"$COVECTL" destroy s2 >/dev/null && [ "$(vmm_count s2)" = 0 ]'

crash_at destroy
"$COVECTL" start s3 >/dev/null && booted s3
"$COVECTL" destroy s3 >/dev/null 2>&1
check "killed in the middle of a destroy: coved died there" 'died'
check "... the VM is reported destroyed, not crashed" 'wait_for "events \"?vm=s3\" | grep -q \"\\\"reason\\\":\\\"destroyed\\\"\"" 50 && ! events "?vm=s3" | grep -q crashed && [ "$(vmm_count s3)" = 0 ]'

crash_at rebooting
"$COVECTL" start s4 >/dev/null && booted s4
last=$(events "?vm=s4" | grep -o '"id":[0-9]*' | tail -1 | cut -d: -f2)
"$COVECTL" reboot s4 >/dev/null 2>&1
check "killed after a reboot's VMM ended, before the new one started: coved died there" 'died'
check "... the restarted coved finished the reboot (started, reason: reboot requested)" 'wait_for "events \"?vm=s4&since=$last\" | grep -q \"\\\"type\\\":\\\"started\\\",\\\"reason\\\":\\\"reboot requested\\\"\"" 50 && "$COVECTL" list | grep -q "s4 .*running" && booted s4 && [ "$(vmm_count s4)" = 1 ]'
check "... with one shutdown reported, not two" '[ "$(events "?vm=s4&since=$last" | grep -o "\"type\":\"shutdown\"" | wc -l)" = 1 ]'
"$COVECTL" destroy s4 >/dev/null

check "the store passes an integrity check" '[ "$(sqlite3 "$STATE/coved.db" "PRAGMA integrity_check")" = ok ]'
check "the store is in WAL mode" '[ "$(sqlite3 "$STATE/coved.db" "PRAGMA journal_mode")" = wal ]'
check "the schema is versioned" '[ "$(sqlite3 "$STATE/coved.db" "PRAGMA user_version")" -ge 1 ]'
echo "1..$n"
