#!/bin/bash
# coved and covectl end to end, with a stand-in VMM: definitions, bad requests, access,
# lifecycle, console, events, crash reports, kill -9 and restart. Prints TAP.
set -u
. "$(dirname "$0")/lib.sh"


# has_event VM TYPE REASON [SINCE]: the VM's event history holds that event.
has_event() {
	events "?vm=$1&since=${4:-0}" | python3 -c '
import json, sys
want = (sys.argv[1], sys.argv[2])
sys.exit(0 if any((e["type"], e["reason"]) == want for e in json.load(sys.stdin)) else 1)
' "$2" "$3"
}
last_event() { events "?vm=$1" | grep -o '"id":[0-9]*' | tail -1 | cut -d: -f2; }

# -- no coved
out=$("$COVECTL" list 2>&1); rc=$?
check "covectl without coved fails clearly" '[ $rc -ne 0 ] && grep -q "is coved running" <<<"$out"'

start_coved || { echo "Bail out! coved did not start"; exit 1; }
check "socket is mode 0660" '[ "$(stat -c %a "$SOCK")" = 660 ]'
check "read-only socket exists" '[ -S "$SOCK.ro" ]'

# -- definitions
cat >"$TMP/web.json" <<'J'
{"name": "web", "cpus": 2, "memory": "256M", "cmdline": "console=ttyS0",
 "disks": [{"path": "/var/lib/cove/images/web.img"}], "nics": [{"tap": "tap0"}]}
J
check "covectl define" '"$COVECTL" define "$TMP/web.json" | grep -q "VM web defined"'
check "defined event, reason created" 'has_event web defined created'
check "list --all shows it shut off" '"$COVECTL" list --all | grep -q "web .*shut off"'
check "list (running only) does not" '! "$COVECTL" list | grep -q " web "'
r=$(api GET /v1/vms/web)
check "GET /v1/vms/web" '[[ $r == 200* ]] && grep -q "\"memory\":256" <<<"$r"'
r=$(api PUT /v1/vms/web '{"name":"web","cpus":4,"memory":512}')
check "update while stopped" '[[ $r == 200* ]] && "$COVECTL" --json info web | grep -q "\"cpus\":4"'
check "defined event, reason updated" 'has_event web defined updated'
r=$(api POST /v1/vms '{"name":"web"}')
check "define a duplicate: 409" '[[ $r == 409* ]] && grep -q "already exists" <<<"$r"'

# -- bad requests change nothing
before=$(sqlite3 "$STATE/coved.db" "SELECT group_concat(name||def) FROM vms")
bad() { # NAME STATUS BODY [PATTERN]
	local r want=$2 pat=${4:-error}
	r=$(api POST /v1/vms "$3")
	check "bad request: $1" '[[ $r == $want* ]] && grep -q -- "$pat" <<<"$r"'
}
bad "malformed JSON" 400 '{"name": "x",' "malformed JSON"
bad "not an object" 400 '[1,2]' "JSON object"
bad "unknown field named" 400 '{"name":"x","cpu":1}' "unknown field 'cpu'"
bad "cpus 0" 400 '{"name":"x","cpus":0}' "cpus"
bad "cpus as a string" 400 '{"name":"x","cpus":"2"}' "cpus"
bad "memory nonsense" 400 '{"name":"x","memory":"lots"}' "memory"
bad "memory too small" 400 '{"name":"x","memory":1}' "memory"
bad "name with a slash" 400 '{"name":"../etc"}' "invalid name"
bad "relative disk path" 400 '{"name":"x","disks":[{"path":"d.img"}]}' "absolute"
bad "unknown disk field" 400 '{"name":"x","disks":[{"path":"/d","cache":"none"}]}' "unknown field 'cache'"
bad "nic with both network and tap" 400 '{"name":"x","nics":[{"network":"default","tap":"t"}]}' "exactly one"
head -c 400000 /dev/zero | tr '\0' ' ' >"$TMP/huge"
r=$(curl -s -m 5 --unix-socket "$SOCK" -X POST --data-binary @"$TMP/huge" -w '\n%{http_code}' http://x/v1/vms)
check "huge body: 413" '[[ ${r##*$'"'"'\n'"'"'} == 413 ]]'
r=$(head -c 1000000 /dev/zero | curl -s -m 20 --unix-socket "$SOCK" -X POST -H 'Transfer-Encoding: chunked' --data-binary @- -w '\n%{http_code}' http://x/v1/vms)
check "huge chunked body: 413 with a message" '[[ ${r##*$'"'"'\n'"'"'} == 413 ]] && grep -q "larger than" <<<"$r"'
t0=$(date +%s)
code=$(head -c 100000000 /dev/zero | curl -s -m 20 -o /dev/null --unix-socket "$SOCK" -X POST -H 'Transfer-Encoding: chunked' --data-binary @- -w '%{http_code}' http://x/v1/vms)
check "an endless body is cut off early ($code after $(( $(date +%s) - t0 )) s)" '[ "$code" != 201 ] && [ $(( $(date +%s) - t0 )) -lt 10 ]'
r=$(api PUT /v1/vms/web '{"name":"other"}')
check "update cannot rename" '[[ $r == 400* ]]'
r=$(api POST /v1/vms/web/actions/explode)
check "unknown action: 404 with a message" '[[ $r == 404* ]] && grep -q "unknown action" <<<"$r"'
# A slow client that never finishes its request is cut off (--timeout 2) while
# others are served.
python3 - "$SOCK" >"$TMP/slow" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"POST /v1/vms HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"name\":")
t = time.time(); s.settimeout(10)
try:
    d = s.recv(4096)
except Exception as e:
    d = b"EXC"
print("closed" if d == b"" or d.startswith(b"HTTP/1.1 4") else "open", round(time.time() - t, 1))
PY
slow=$!
r=$(api GET /v1/vms)
check "others are served while a slow client hangs" '[[ $r == 200* ]]'
wait $slow
check "slow client is cut off by the timeout" 'grep -q "^closed" "$TMP/slow"'
after=$(sqlite3 "$STATE/coved.db" "SELECT group_concat(name||def) FROM vms")
check "the store is unchanged by bad requests" '[ "$before" = "$after" ]'

# -- access
r=$(curl -s -m 5 --unix-socket "$SOCK.ro" -w '\n%{http_code}' http://x/v1/vms)
check "read-only socket serves GET" '[[ ${r##*$'"'"'\n'"'"'} == 200 ]]'
r=$(curl -s -m 5 --unix-socket "$SOCK.ro" -X POST -d '{"name":"ro"}' -w '\n%{http_code}' http://x/v1/vms)
check "read-only socket refuses POST with 403" '[[ ${r##*$'"'"'\n'"'"'} == 403 ]]'
check "audit log records mutating calls, with the caller's uid and pid" 'grep -Eq "uid=$(id -u) pid=[1-9][0-9]* PUT /v1/vms/web 200" "$STATE/audit.log" && grep -q "POST /v1/vms 400" "$STATE/audit.log"'

# -- storage pool
check "vol-create raw" '"$COVECTL" vol-create disk1 16M >/dev/null && [ "$(stat -c %s "$STATE/images/disk1")" = 16777216 ]'
r=$(api POST /v1/storage/volumes '{"name":"q1","size":16777216,"format":"qcow2"}')
check "vol-create qcow2 through the block layer" '[[ $r == 201* ]] && head -c 4 "$STATE/images/q1" | grep -q QFI'
if command -v qemu-img >/dev/null; then
	info=$(qemu-img info --output=json "$STATE/images/q1" 2>&1)
	check "qemu-img reads it as qcow2 of 16 MiB" 'grep -q "\"format\": \"qcow2\"" <<<"$info" && grep -q "\"virtual-size\": 16777216" <<<"$info" && qemu-img check "$STATE/images/q1" >/dev/null 2>&1'
else
	skip "qemu-img reads it as qcow2 of 16 MiB" "qemu-img is not installed"
fi
check "pool images are private to root (0600)" '[ "$(stat -c %a "$STATE/images/q1")" = 600 ] && [ "$(stat -c %a "$STATE/images/disk1")" = 600 ]'
check "vol-list" '"$COVECTL" vol-list | grep -q "disk1 .*raw .*16777216"'
r=$(api POST /v1/storage/volumes '{"name":"../x","size":4096}')
check "vol-create refuses a path as a name" '[[ $r == 400* ]]'
check "vol-delete" '"$COVECTL" vol-delete disk1 >/dev/null && [ ! -e "$STATE/images/disk1" ]'

# -- lifecycle with the stand-in VMM
echo '{"name":"vm1","autostart":true}' | "$COVECTL" define - >/dev/null
check "covectl start" '"$COVECTL" start vm1 >/dev/null'
check "started event, reason start requested" 'has_event vm1 started "start requested"'
check "running in list" '"$COVECTL" list | grep -q "vm1 .*running"'
check "console output kept for late attachers" 'wait_for "curl -s --unix-socket $SOCK http://x/v1/vms/vm1/console | grep -q \"PROBE: boot ok\""'
r=$(api PUT /v1/vms/vm1 '{"name":"vm1","cpus":2}')
check "update while running: 409" '[[ $r == 409* ]]'
r=$(api DELETE /v1/vms/vm1)
check "delete while running: 409" '[[ $r == 409* ]]'
check "suspend and resume" '"$COVECTL" suspend vm1 >/dev/null && "$COVECTL" list | grep -q "vm1 .*paused" && "$COVECTL" resume vm1 >/dev/null'
check "paused and resumed events" 'has_event vm1 paused requested && has_event vm1 resumed requested'
check "stats use libvirt names" '"$COVECTL" --json stats vm1 | grep -q "\"cpu.time\"" && "$COVECTL" stats vm1 | grep -q "balloon.current=131072"'
out=$( (echo hello-console; sleep 0.5) | timeout 10 "$COVECTL" console vm1)
check "WebSocket console: history, then input echoed" 'grep -q "PROBE: boot ok" <<<"$out" && grep -q "echo: hello-console" <<<"$out"'

if command -v script >/dev/null; then
	out=$( (sleep 0.5; printf 'tty-hello\n'; sleep 0.5; printf '\035'; sleep 1) |
		timeout 10 script -qfec "$COVECTL console vm1" /dev/null)
	rc=$?
	check "console on a terminal: raw input, Ctrl-] leaves" '[ $rc = 0 ] && grep -q "echo: tty-hello" <<<"$out" && grep -q "Disconnected from vm1" <<<"$out"'
else
	skip "console on a terminal: raw input, Ctrl-] leaves" "script(1) is not installed"
fi

# -- kill -9 coved with a VM running; restart re-attaches
kill9_coved
start_coved || { echo "Bail out! coved did not restart"; exit 1; }
check "after kill -9: definitions intact" '"$COVECTL" list --all | grep -q "web " && "$COVECTL" --json info web | grep -q "\"cpus\":4"'
check "after kill -9: the VM still runs, re-attached" '"$COVECTL" list | grep -q "vm1 .*running"'
"$COVECTL" events --follow --vm vm1 --timeout 5 >"$TMP/follow" &
fpid=$!
sleep 0.3
check "shutdown" '"$COVECTL" shutdown vm1 | grep -q "shut down"'
check "shutdown and stopped events" 'wait_for "events \"?vm=vm1\" | grep -q \"\\\"type\\\":\\\"stopped\\\",\\\"reason\\\":\\\"shutdown requested\\\"\""'
wait $fpid
check "events --follow streamed them" 'grep -q "vm1 .*stopped" "$TMP/follow"'

# -- crash report
"$COVECTL" start vm1 >/dev/null
wait_for '[ -p "$STATE/run/vm1/console.in" ]'
echo crash >"$STATE/run/vm1/console.in"
check "crash reported with exit status and log tail" 'wait_for "events \"?vm=vm1\" | grep -q \"exit status 3.*simulated crash\""'

# -- reboot: the VMM ends and coved starts it again
"$COVECTL" start vm1 >/dev/null
last=$(events "?vm=vm1" | grep -o '"id":[0-9]*' | tail -1 | cut -d: -f2)
check "reboot" '"$COVECTL" reboot vm1 | grep -q "rebooted"'
check "reboot: stopped, then started again, reason reboot requested" 'wait_for "has_event vm1 stopped \"reboot requested\" $last" && wait_for "has_event vm1 started \"reboot requested\" $last"'
check "running after the reboot" 'wait_for "\"$COVECTL\" list | grep -q \"vm1 .*running\""'
check "destroy before the restart" '"$COVECTL" destroy vm1 >/dev/null && "$COVECTL" list --all | grep -q "vm1 .*shut off"'

# -- autostart at daemon start, destroy, undefine
last=$(last_event vm1)
stop_coved
start_coved || { echo "Bail out! coved did not restart"; exit 1; }
check "autostart starts vm1 with coved" 'wait_for "\"$COVECTL\" list | grep -q \"vm1 .*running\""'
check "started event, reason autostart" 'has_event vm1 started autostart $last'
check "destroy" '"$COVECTL" destroy vm1 >/dev/null && events "?vm=vm1" | grep -q "\"reason\":\"destroyed\""'
check "undefine" '"$COVECTL" undefine vm1 >/dev/null && ! "$COVECTL" list --all | grep -q vm1'
check "undefine removes the VM's run directory" '[ ! -e "$STATE/run/vm1" ]'
echo "1..$n"
