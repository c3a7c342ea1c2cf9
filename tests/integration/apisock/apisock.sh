#!/bin/bash
# cove run --api-sock: the Firecracker-compatible API socket of a real VMM, driven with
# curl --unix-socket (boot sequence, bad requests, pause/resume, stats, shutdown,
# Ctrl-Alt-Del, metrics, a Firecracker getting-started client flow). Prints TAP.
set -u
: "${COVE:?set by meson}" "${PROBE_PVH:?set by meson}"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	shift
	for l in "$@"; do printf '#   %s\n' "$l"; done
}
finish() {
	echo "1..$n"
	[ "$failed" -eq 0 ]
}

if ! command -v curl >/dev/null || ! command -v jq >/dev/null; then
	echo "1..0 # SKIP curl and jq are needed"
	exit 0
fi
kvm=${COVE_KVM_DEV:-/dev/kvm}
if ! [ -r "$kvm" ] || ! [ -w "$kvm" ]; then
	echo "1..0 # SKIP no usable $kvm"
	exit 0
fi

tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# start NAME ARGS...: cove run --api-sock $tmp/NAME.sock in the background.
start() {
	local name=$1
	shift
	sock=$tmp/$name.sock
	con=$tmp/$name.con
	log=$tmp/$name.err
	"$COVE" run --api-sock "$sock" --console "file:$con" "$@" </dev/null >"$tmp/$name.out" 2>"$log" &
	pid=$!
	for _ in $(seq 100); do
		[ -S "$sock" ] && return 0
		kill -0 "$pid" 2>/dev/null || return 1 # already gone (a short guest, or an error)
		sleep 0.05
	done
	return 1
}

# stop_wait SECONDS: waits for the VMM to exit; sets $status (124: still running, killed).
stop_wait() {
	local i
	for ((i = 0; i < $1 * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null
		status=124
	else
		wait "$pid"
		status=$?
	fi
	pid=
}

# req METHOD PATH [BODY]: sets $code and $body.
req() {
	local out
	if [ $# -ge 3 ]; then
		out=$(curl -s -m 10 --unix-socket "$sock" -X "$1" -H 'Accept: application/json' \
			-H 'Content-Type: application/json' -d "$3" -w '\n%{http_code}' "http://localhost$2")
	else
		out=$(curl -s -m 10 --unix-socket "$sock" -X "$1" -H 'Accept: application/json' \
			-w '\n%{http_code}' "http://localhost$2")
	fi
	code=${out##*$'\n'}
	body=${out%$'\n'*}
}

# check NAME WANT_CODE METHOD PATH [BODY] [JQ_TEST]: one TAP line.
check() {
	local name=$1 want=$2 method=$3 path=$4 data=${5-} test=${6-}
	if [ -n "$data" ]; then req "$method" "$path" "$data"; else req "$method" "$path"; fi
	if [ "$code" != "$want" ]; then
		not_ok "$name" "status $code (want $want): $body"
	elif [ -n "$test" ] && ! jq -e "$test" >/dev/null 2>&1 <<<"$body"; then
		not_ok "$name" "body fails $test: $body"
	else
		ok "$name"
	fi
}

# metric JQ: the last metrics line's value.
metric() { tail -n 1 "$tmp/metrics.json" | jq -r "$1"; }

alive() { kill -0 "$pid" 2>/dev/null; }

boot_src() {
	printf '{"kernel_image_path": "%s", "boot_args": "%s"}' "$PROBE_PVH" "$1"
}

# --- 1. Firecracker's boot sequence: configure, InstanceStart, the probe guest runs ---
if start boot; then ok "the VMM serves its socket while waiting for configuration"; else
	not_ok "the VMM serves its socket while waiting for configuration" "$(cat "$log")"
fi
check "GET / before boot: Not started" 200 GET / "" '.state == "Not started" and .app_name == "cove"'
check "PUT /boot-source (probe guest, probe=all)" 204 PUT /boot-source "$(boot_src "probe=all")"
check "PUT /machine-config 2 vCPUs, 256 MiB" 204 PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
check "GET /machine-config" 200 GET /machine-config "" '.vcpu_count == 2 and .mem_size_mib == 256'
check "GET /vm/config before boot" 200 GET /vm/config "" \
	"(.\"boot-source\".kernel_image_path == \"$PROBE_PVH\") and .\"boot-source\".boot_args == \"probe=all\" and .\"machine-config\".vcpu_count == 2"
check "InstanceStart" 204 PUT /actions '{"action_type": "InstanceStart"}'
stop_wait 20
if [ "$status" = 0 ] && grep -q 'PROBE: 5 passed, 0 failed' "$con" && grep -q 'ok smp: 2 of 2' "$con" &&
	grep -q 'RAM 26[0-9]* KiB' "$con"; then
	ok "the probe guest ran all its tests on 2 vCPUs and 256 MiB, exit 0 after its poweroff"
else
	not_ok "the probe guest ran all its tests on 2 vCPUs and 256 MiB, exit 0 after its poweroff" \
		"status $status" "$(cat "$con" "$log")"
fi
if [ ! -e "$sock" ]; then ok "the socket is removed at exit"; else not_ok "the socket is removed at exit"; fi

# --- 2. bad requests before boot: 400 + fault_message, the VMM keeps waiting ---
start bad
check "malformed JSON" 400 PUT /boot-source '{"kernel_image_path": ' '.fault_message | length > 0'
check "unknown field named" 400 PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 64, "vcpus": 2}' \
	'.fault_message | test("vcpus")'
check "wrong type" 400 PUT /machine-config '{"vcpu_count": "two", "mem_size_mib": 64}' \
	'.fault_message | test("vcpu_count")'
check "impossible value" 400 PUT /machine-config '{"vcpu_count": 0, "mem_size_mib": 64}' '.fault_message | length > 0'
check "InstanceStart without boot-source" 400 PUT /actions '{"action_type": "InstanceStart"}' \
	'.fault_message | test("kernel")'
check "unknown action" 400 PUT /actions '{"action_type": "Explode"}' '.fault_message | length > 0'
check "PATCH /vm before boot" 400 PATCH /vm '{"state": "Paused"}' '.fault_message | test("before starting")'
check "SendCtrlAltDel before boot" 400 PUT /actions '{"action_type": "SendCtrlAltDel"}' '.fault_message | length > 0'
check "PUT /shutdown before boot" 400 PUT /shutdown '' '.fault_message | length > 0'
check "FlushMetrics without metrics" 400 PUT /actions '{"action_type": "FlushMetrics"}' '.fault_message | test("metrics")'
check "kernel that does not exist" 204 PUT /boot-source '{"kernel_image_path": "/nonexistent/vmlinux"}'
check "InstanceStart with a missing kernel: 400 naming it" 400 PUT /actions '{"action_type": "InstanceStart"}' \
	'.fault_message | test("/nonexistent/vmlinux")'
echo "not a kernel at all" >"$tmp/notakernel"
check "a file that is not a kernel" 204 PUT /boot-source "{\"kernel_image_path\": \"$tmp/notakernel\"}"
check "InstanceStart with it: 400 saying so" 400 PUT /actions '{"action_type": "InstanceStart"}' \
	'.fault_message | test("not a kernel")'
check "memory too small for the VMM" 204 PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 8}'
check "PUT /boot-source again (a real kernel)" 204 PUT /boot-source "$(boot_src "probe=boot")"
check "InstanceStart with 8 MiB: 400 naming memory" 400 PUT /actions '{"action_type": "InstanceStart"}' \
	'.fault_message | test("memory")'
check "still Not started after the failures" 200 GET / "" '.state == "Not started"'
if alive; then ok "the VMM keeps running after bad requests"; else not_ok "the VMM keeps running after bad requests"; fi
kill -TERM "$pid"
stop_wait 5
if [ "$status" = 0 ]; then ok "SIGTERM while waiting for InstanceStart: exit 0"; else
	not_ok "SIGTERM while waiting for InstanceStart: exit 0" "status $status" "$(cat "$log")"
fi

# --- 3. a running guest: pause/resume, changes after start, stats, shutdown, Ctrl-Alt-Del ---
# exitloop to an unclaimed port: each exit is counted, so progress is visible from outside.
# The loop must outlast the checks below on a fast host (about 20 us an exit seen here,
# 65 us elsewhere): 60000 exits were done before GET /stats on one machine.
loops=300000
start run
check "PUT /metrics" 204 PUT /metrics "{\"metrics_path\": \"$tmp/metrics.json\"}"
check "PUT /boot-source (a long exit loop)" 204 PUT /boot-source "$(boot_src "probe=exitloop probe.loops=$loops probe.port=81")"
check "InstanceStart" 204 PUT /actions '{"action_type": "InstanceStart"}'
sleep 0.6
check "PATCH /vm Paused" 204 PATCH /vm '{"state": "Paused"}'
check "GET / while paused: Paused" 200 GET / "" '.state == "Paused"'
check "FlushMetrics" 204 PUT /actions '{"action_type": "FlushMetrics"}'
e1=$(metric .cove.io_exits)
sleep 0.8
check "FlushMetrics again" 204 PUT /actions '{"action_type": "FlushMetrics"}'
e2=$(metric .cove.io_exits)
if [ "$e1" -gt 0 ] 2>/dev/null && [ "$e1" = "$e2" ]; then ok "no guest progress while paused ($e1 exits)"; else
	not_ok "no guest progress while paused" "exits $e1 then $e2"
fi
check "pre-boot-only change after start: boot-source" 400 PUT /boot-source "$(boot_src "x")" \
	'.fault_message | test("after starting")'
check "pre-boot-only change after start: machine-config" 400 PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 64}' \
	'.fault_message | test("after starting")'
check "pre-boot-only change after start: drive" 400 PUT /drives/d1 \
	"{\"drive_id\": \"d1\", \"path_on_host\": \"$tmp/x\", \"is_root_device\": false, \"is_read_only\": true}" \
	'.fault_message | test("after starting")'
check "second InstanceStart" 400 PUT /actions '{"action_type": "InstanceStart"}' '.fault_message | length > 0'
check "PATCH /vm Resumed" 204 PATCH /vm '{"state": "Resumed"}'
check "GET / after resume: Running" 200 GET / "" '.state == "Running"'
sleep 0.5
req PUT /actions '{"action_type": "FlushMetrics"}'
e3=$(metric .cove.io_exits)
if [ "$e3" -gt "$e2" ] 2>/dev/null; then ok "the guest goes on after resume ($e2 -> $e3 exits)"; else
	not_ok "the guest goes on after resume" "exits $e2 then $e3"
fi
if [ "$(metric '.cove.unclaimed_accesses > 0 and .cove.rss_kib > 0 and .cove.uptime_ms > 0 and (.cove.vcpu_io_exits | length) == 1')" = true ]; then
	ok "metrics line: unclaimed accesses, RSS, uptime, per-vCPU exits"
else
	not_ok "metrics line: unclaimed accesses, RSS, uptime, per-vCPU exits" "$(tail -n 1 "$tmp/metrics.json")"
fi
check "GET /stats" 200 GET /stats "" '.state == "Running" and .cpu_time_ns > 0'
check "GET /vm/config after boot" 200 GET /vm/config "" \
	".\"boot-source\".boot_args == \"probe=exitloop probe.loops=$loops probe.port=81\" and .metrics.metrics_path == \"$tmp/metrics.json\""
check "PUT /shutdown (ACPI power button)" 204 PUT /shutdown ''
req PUT /actions '{"action_type": "FlushMetrics"}'
if [ "$(metric '(.cove.acpi_pm1_status / 256 | floor) % 2')" = 1 ]; then
	ok "the guest sees PWRBTN_STS in PM1a_STS (what raises a Linux guest's SCI)"
else
	not_ok "the guest sees PWRBTN_STS in PM1a_STS" "$(tail -n 1 "$tmp/metrics.json")"
fi
check "SendCtrlAltDel" 204 PUT /actions '{"action_type": "SendCtrlAltDel"}'
check "pause and resume again" 204 PATCH /vm '{"state": "Paused"}'
check "resume" 204 PATCH /vm '{"state": "Resumed"}'
stop_wait 120
if [ "$status" = 0 ] && grep -q "ok exitloop: $loops exits" "$con" && grep -q 'PROBE: 1 passed, 0 failed' "$con"; then
	ok "the paused and resumed guest finished its loop and powered off, exit 0"
else
	not_ok "the paused and resumed guest finished its loop and powered off, exit 0" "status $status" "$(cat "$con" "$log")"
fi

# Paused at once after InstanceStart (one curl, two requests): the guest stands still
# until resumed (3 vCPUs).
start early
req PUT /boot-source "$(boot_src "probe=smp,timer")"
req PUT /machine-config '{"vcpu_count": 3, "mem_size_mib": 64}'
codes=$(curl -s -m 10 --unix-socket "$sock" -o /dev/null -w '%{http_code} ' -X PUT -d '{"action_type": "InstanceStart"}' \
	http://localhost/actions --next --unix-socket "$sock" -o /dev/null -w '%{http_code}' -X PATCH \
	-d '{"state": "Paused"}' http://localhost/vm)
if [ "$codes" = "204 204" ]; then ok "InstanceStart and PATCH /vm Paused at once"; else not_ok "InstanceStart and PATCH /vm Paused at once" "$codes"; fi
sleep 0.3 # console bytes the guest wrote before the pause are flushed within 20 ms
s1=$(stat -c %s "$con" 2>/dev/null || echo 0)
sleep 0.5
s2=$(stat -c %s "$con" 2>/dev/null || echo 0)
if [ "$s1" = "$s2" ] && ! grep -q 'PROBE: .* passed' "$con"; then ok "the guest stands still while paused from the start"; else
	not_ok "the guest stands still while paused from the start" "$s1 then $s2 bytes" "$(cat "$con")"
fi
check "resume" 204 PATCH /vm '{"state": "Resumed"}'
stop_wait 20
if [ "$status" = 0 ] && grep -q 'PROBE: 2 passed, 0 failed' "$con"; then ok "then it runs to its poweroff"; else
	not_ok "then it runs to its poweroff" "status $status" "$(cat "$con" "$log")"
fi

# --- 4. a kernel on the command line: booted at once, the API reports Running ---
start cmdline --kernel "$PROBE_PVH" --cmdline "probe=boot probe.exit=halt" --cpus 2
for _ in $(seq 100); do grep -q 'PROBE: halting' "$con" 2>/dev/null && break; sleep 0.05; done
check "GET / with --kernel: Running" 200 GET / "" '.state == "Running"'
check "GET /vm/config reflects the command line" 200 GET /vm/config "" \
	"(.\"boot-source\".kernel_image_path == \"$PROBE_PVH\") and .\"machine-config\".vcpu_count == 2 and .\"machine-config\".mem_size_mib == 256"
check "PUT /boot-source after a command-line boot" 400 PUT /boot-source "$(boot_src "x")" '.fault_message | test("after starting")'
check "pause a halted guest" 204 PATCH /vm '{"state": "Paused"}'
check "resume a halted guest" 204 PATCH /vm '{"state": "Resumed"}'
bad=0
for _ in $(seq 20); do
	req PATCH /vm '{"state": "Paused"}'
	[ "$code" = 204 ] || bad=$((bad + 1))
	req PATCH /vm '{"state": "Resumed"}'
	[ "$code" = 204 ] || bad=$((bad + 1))
done
if [ "$bad" = 0 ]; then ok "20 quick pause/resume cycles on 2 vCPUs"; else not_ok "20 quick pause/resume cycles on 2 vCPUs" "$bad failed"; fi
kill -TERM "$pid"
stop_wait 5
if [ "$status" = 0 ] && [ ! -e "$sock" ]; then ok "SIGTERM stops the VM: exit 0, socket removed"; else
	not_ok "SIGTERM stops the VM: exit 0, socket removed" "status $status" "$(cat "$log")"
fi

# Machine settings but no kernel (how coved starts the probe VM): the built-in probe guest.
start builtin --cpus 1 --memory 64M --cmdline "probe=boot"
stop_wait 20
if [ "$status" = 0 ] && grep -q 'PROBE: 1 passed, 0 failed' "$con"; then
	ok "--api-sock with --cpus/--memory and no kernel boots the built-in probe guest at once"
else
	not_ok "--api-sock with --cpus/--memory and no kernel boots the built-in probe guest at once" \
		"status $status" "$(cat "$con" "$log")"
fi

# Firecracker's --config-file format through --config: boots at once, GET /vm/config shows it.
cat >"$tmp/fc.json" <<EOF
{"boot-source": {"kernel_image_path": "$PROBE_PVH", "boot_args": "probe=boot,smp probe.exit=halt"},
 "machine-config": {"vcpu_count": 2, "mem_size_mib": 128},
 "metrics": {"metrics_path": "$tmp/fcfile-metrics.json"}}
EOF
start fcfile --config "$tmp/fc.json"
for _ in $(seq 100); do grep -q 'PROBE: halting' "$con" 2>/dev/null && break; sleep 0.05; done
if grep -q 'ok smp: 2 of 2' "$con" && grep -Eq 'RAM 1[23][0-9]* KiB' "$con"; then
	ok "--config in Firecracker's format: 2 vCPUs and 128 MiB booted"
else
	not_ok "--config in Firecracker's format: 2 vCPUs and 128 MiB booted" "$(cat "$con" "$log")"
fi
check "GET /vm/config shows the file's settings" 200 GET /vm/config "" \
	".\"machine-config\".mem_size_mib == 128 and .\"boot-source\".boot_args == \"probe=boot,smp probe.exit=halt\""
check "FlushMetrics to the file's metrics_path" 204 PUT /actions '{"action_type": "FlushMetrics"}'
if [ -s "$tmp/fcfile-metrics.json" ]; then ok "metrics written to the file's metrics_path"; else
	not_ok "metrics written to the file's metrics_path"
fi
kill -TERM "$pid"
stop_wait 5
echo '{"boot-source": {"kernel_image_path": "/k"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 128, "bogus": 1}}' >"$tmp/bad.json"
if "$COVE" run --config "$tmp/bad.json" >"$tmp/bad.out" 2>&1; then
	not_ok "a bad Firecracker config file is refused"
elif grep -q "bogus" "$tmp/bad.out"; then ok "a bad Firecracker config file is refused, naming the field"; else
	not_ok "a bad Firecracker config file is refused, naming the field" "$(cat "$tmp/bad.out")"
fi

# A path that is taken by something else than a socket is left alone.
echo keep >"$tmp/taken"
"$COVE" run --api-sock "$tmp/taken" >"$tmp/taken.out" 2>&1 </dev/null
status=$?
if [ "$status" = 1 ] && grep -q 'not a socket' "$tmp/taken.out" && [ "$(cat "$tmp/taken")" = keep ]; then
	ok "--api-sock on an existing file: exit 1 with a message, the file untouched"
else
	not_ok "--api-sock on an existing file: exit 1 with a message, the file untouched" "status $status" "$(cat "$tmp/taken.out")"
fi

# --- 5. SendCtrlAltDel reaches the guest's keyboard: a guest that prints what it reads ---
if [ -n "${KBD_GUEST-}" ]; then
	start kbd --kernel "$KBD_GUEST"
	for _ in $(seq 100); do grep -q 'kbd: ready' "$con" 2>/dev/null && break; sleep 0.05; done
	check "SendCtrlAltDel to a guest reading the i8042" 204 PUT /actions '{"action_type": "SendCtrlAltDel"}'
	stop_wait 10
	got=$(sed -n 's/^kbd: \([0-9a-f][0-9a-f]\)$/\1/p' "$con" | tr '\n' ' ')
	if [ "$status" = 0 ] && [ "$got" = "1d 38 e0 53 e0 d3 b8 9d " ]; then
		ok "the guest read Ctrl, Alt, Del down and up (scancode set 1) and powered off"
	else
		not_ok "the guest read Ctrl, Alt, Del down and up" "status $status, read: $got" "$(cat "$log")"
	fi
fi

# --- 6. a Firecracker client flow, as the getting-started guide does it ---
start guide
check "guide: PUT /logger" 204 PUT /logger \
	"{\"log_path\": \"$tmp/fc.log\", \"level\": \"Debug\", \"show_level\": true, \"show_log_origin\": true}"
check "guide: PUT /metrics" 204 PUT /metrics "{\"metrics_path\": \"$tmp/metrics.json\"}"
check "guide: PUT /boot-source" 204 PUT /boot-source "$(boot_src "probe=boot,smp,vblk probe.exit=halt")"
check "guide: PUT /machine-config" 204 PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 128, "smt": false}'
# The probe guest's vblk test reads a known pattern (byte j of sector s is
# (s * 31 + j) & 0xFF, 4096 sectors) and writes sectors 1000-1007.
python3 -c "
import sys
with open(sys.argv[1], 'wb') as f:
    f.write(b''.join(bytes(((s * 31 + j) & 255) for j in range(512)) for s in range(4096)))
" "$tmp/rootfs.ext4"
check "guide: PUT /drives/rootfs" 204 PUT /drives/rootfs \
	"{\"drive_id\": \"rootfs\", \"path_on_host\": \"$tmp/rootfs.ext4\", \"is_root_device\": true, \"is_read_only\": false}"
check "guide: InstanceStart with a drive" 204 PUT /actions '{"action_type": "InstanceStart"}'
for _ in $(seq 100); do grep -q 'PROBE: halting' "$con" 2>/dev/null && break; sleep 0.05; done
if grep -q 'ok smp: 2 of 2' "$con"; then ok "guide: the guest booted"; else not_ok "guide: the guest booted" "$(cat "$con")"; fi
if grep -q 'PROBE: ok vblk' "$con"; then ok "guide: the guest used the drive (read, write, flush)"; else
	not_ok "guide: the guest used the drive" "$(grep -i vblk "$con")"
fi
check "guide: FlushMetrics" 204 PUT /actions '{"action_type": "FlushMetrics"}'
if [ "$(metric '.cove.state')" = Running ]; then ok "guide: metrics written"; else not_ok "guide: metrics written"; fi
check "guide: SendCtrlAltDel" 204 PUT /actions '{"action_type": "SendCtrlAltDel"}'
kill -TERM "$pid"
stop_wait 5
if [ "$status" = 0 ] && [ -s "$tmp/fc.log" ]; then ok "guide: the log file got the VMM's log lines"; else
	not_ok "guide: the log file got the VMM's log lines" "status $status"
fi

finish
