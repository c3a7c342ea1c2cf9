#!/bin/bash
# cove-runc lifecycle: run, create/start/state/kill/delete, exec, ps, list, pause/resume, errors.
. "$(dirname "$0")/lib.sh"

B=$T/life
make_bundle "$B" '["sh","-c","echo hello from $(hostname); exit 3"]'

out=$(cd "$B" && r run c-run 2>&1)
rc=$?
expect_eq "run prints the container's output" "hello from cove" "$out"
expect_eq "run returns the container's exit status" 3 "$rc"
check "run leaves nothing behind" nothing_left c-run "$CG/life"

edit_config "$B" '.process.args = ["/bin/true"]'
(cd "$B" && r run c-true)
expect_eq "run /bin/true exits 0" 0 $?
(cd "$B" && "$COVE" oci --root "$ROOT" run c-oci)
expect_eq "'cove oci run' (re-executed from the sealed copy as 'cove oci')" 0 $?

edit_config "$B" '.process.args = ["sleep","3031"]'
r create --bundle "$B" --pid-file "$T/pid" c1
expect_eq "create succeeds" 0 $?
expect_eq "state after create is created" created "$(status_of c1)"
pid=$(cat "$T/pid")
st=$(r state c1)
expect_eq "state pid matches the pid file" "$pid" "$(echo "$st" | jq -r .pid)"
for f in ociVersion id pid status bundle rootfs created owner; do
	echo "$st" | jq -e "has(\"$f\")" >/dev/null || notok "state has $f"
done
ok "state has runc's fields"
expect_eq "bundle is absolute" "$B" "$(echo "$st" | jq -r .bundle)"
# Before start, init is still the runtime (the sealed memfd copy), blocked opening the FIFO
# (syscall 257, openat); after start it is the container's program.
expect_eq "init waits in the exec fifo: still the runtime" "/memfd:cove-runc (deleted)" "$(readlink /proc/$pid/exe)"
expect_eq "init waits in the exec fifo: blocked in openat" 257 "$(cut -d' ' -f1 /proc/$pid/syscall)"
expect_eq "init sits in the cgroup" "1" "$(grep -c "^$pid\$" /sys/fs/cgroup/pids$CG/life/cgroup.procs)"
check "start" r start c1
expect_eq "state after start is running" running "$(status_of c1)"
expect_eq "after start, init is the container's program" "/bin/busybox sleep" "$(readlink /proc/$pid/exe | sed "s|^$B/rootfs||") $(cat /proc/$pid/comm)"
expect_eq "start twice fails" "cove-runc: cannot start an already running container" "$(r start c1 2>&1)"
expect_match "list shows it" "c1 +$pid +running" "$(r list)"
expect_eq "list --format json" c1 "$(r list --format json | jq -r '.[0].id')"
expect_eq "ps --format json" "[$pid]" "$(r ps --format json c1)"
out=$(r exec c1 sh -c 'echo exec-ok; cat /proc/1/cmdline | tr "\0" " "')
expect_eq "exec runs in the container's pid namespace" "exec-ok
sleep 3031 " "$out"
r exec c1 sh -c 'exit 7'
expect_eq "exec returns the exit status" 7 $?
cat >"$T/proc.json" <<EOF
{"user":{"uid":1000,"gid":1000},"cwd":"/tmp","args":["sh","-c","id -u; pwd"],"env":["PATH=/bin"]}
EOF
expect_eq "exec --process FILE" "1000
/tmp" "$(r exec --process "$T/proc.json" c1)"
r exec --detach --pid-file "$T/epid" c1 sleep 20
epid=$(cat "$T/epid" 2>/dev/null)
expect_match "exec --detach writes the pid file" "^[0-9]+$" "$epid"
expect_eq "detached exec is in the cgroup" 1 "$(grep -c "^$epid\$" /sys/fs/cgroup/memory$CG/life/cgroup.procs)"
check "pause" r pause c1
expect_eq "state after pause is paused" paused "$(status_of c1)"
expect_eq "freezer is FROZEN" FROZEN "$(cat /sys/fs/cgroup/freezer$CG/life/freezer.state)"
check "resume" r resume c1
expect_eq "state after resume is running" running "$(status_of c1)"
echo '{"pids":{"limit":42}}' | r update --resources - c1
expect_eq "update --resources - sets pids.max" 42 "$(cat /sys/fs/cgroup/pids$CG/life/pids.max)"
echo '{"pids":{"limit":77},"memory":{"limit":50331648},"cpu":{"shares":256}}' >"$T/res.json"
check "update --resources FILE" r update --resources "$T/res.json" c1
expect_eq "update --resources FILE: pids.max" 77 "$(cat /sys/fs/cgroup/pids$CG/life/pids.max)"
expect_eq "update --resources FILE: memory limit" 50331648 "$(cat /sys/fs/cgroup/memory$CG/life/memory.limit_in_bytes)"
expect_eq "update --resources FILE: cpu shares" 256 "$(cat /sys/fs/cgroup/cpu$CG/life/cpu.shares)"
echo '{"pids":{"limit":"many"}}' >"$T/res.json"
expect_match "update --resources FILE with a bad value names the field" "pids.limit" "$(r update --resources "$T/res.json" c1 2>&1)"
expect_eq "a refused update changes nothing" 77 "$(cat /sys/fs/cgroup/pids$CG/life/pids.max)"
expect_match "delete of a running container fails" "cannot delete container c1 that is not stopped: running" "$(r delete c1 2>&1)"
check "kill with a signal name" r kill c1 KILL
for i in $(seq 50); do [ "$(status_of c1)" = stopped ] && break; sleep 0.02; done
expect_eq "state after kill is stopped" stopped "$(status_of c1)"
expect_eq "kill of a stopped container" "cove-runc: container not running" "$(r kill c1 2>&1)"
check "delete a stopped container" r delete c1
check "delete leaves nothing behind" nothing_left c1 "$CG/life"
expect_match "state of a deleted container" "container with id c1 does not exist" "$(r state c1 2>&1)"
expect_eq "delete --force of a missing container succeeds" 0 "$(r delete --force nope; echo $?)"

r create --bundle "$B" c2 && r start c2
r exec -d c2 sleep 25
check "kill --all" r kill --all c2 9
for i in $(seq 50); do [ "$(status_of c2)" = stopped ] && break; sleep 0.02; done
expect_eq "kill --all stops every process" stopped "$(status_of c2)"
r delete c2
r create --bundle "$B" c3 && r start c3
check "delete --force a running container" r delete --force c3
check "delete --force leaves nothing" nothing_left c3 "$CG/life"
r create --bundle "$B" c4
check "delete a created container" r delete c4
expect_eq "its init is gone" "" "$(pgrep -f 'sleep 3031' || true)"

r create --bundle "$B" c5 >/dev/null 2>&1
expect_match "create with a used id fails" "container with id exists: c5" "$(r create --bundle "$B" c5 2>&1)"
r delete --force c5
r --log "$T/log.json" --log-format json kill nope 2>/dev/null
line=$(tail -n1 "$T/log.json")
expect_eq "--log-format json: level" error "$(echo "$line" | jq -r .level)"
expect_eq "--log-format json: msg" "container with id nope does not exist" "$(echo "$line" | jq -r .msg)"
expect_match "--log-format json: time" "^20[0-9-]+T" "$(echo "$line" | jq -r .time)"
# --debug raises the log level: the command and the container's steps are logged
touch "$T/dbg.log"
r --log "$T/dbg.log" create --bundle "$B" c6
r --log "$T/dbg.log" delete --force c6
expect_eq "without --debug, no debug lines" 0 "$(grep -c 'level=debug' "$T/dbg.log")"
r --debug --log "$T/dbg.log" create --bundle "$B" c7
r --debug --log "$T/dbg.log" start c7
r --debug --log "$T/dbg.log" delete --force c7
expect_match "--debug logs the command" 'level=debug msg="create --bundle [^ ]+ c7 \(root ' "$(cat "$T/dbg.log")"
expect_match "--debug logs the created init" 'level=debug msg="container c7 created from [^ ]+: init pid [0-9]+' "$(cat "$T/dbg.log")"
expect_match "--debug logs start and delete" 'container c7 started.*container c7 deleted \(it was running\)' "$(tr '\n' ' ' <"$T/dbg.log")"
# unknown fields are ignored (the spec says so) with a warning naming each
edit_config "$B" '.process.args = ["true"] | .process.futureThing = 1 | .linux.otherThing = {}'
out=$(cd "$B" && r run c8 2>&1)
expect_match "an unknown field is named in a warning (stderr without --log)" "warning: config.json: unknown field process.futureThing ignored" "$out"
(cd "$B" && r --log "$T/warn.json" --log-format json run c9 2>/dev/null)
expect_eq "the warning goes to --log" "warning config.json: unknown field linux.otherThing ignored" "$(jq -r 'select(.msg | test("otherThing")) | .level + " " + .msg' "$T/warn.json")"
expect_match "features lists namespaces" '"cgroup"' "$(r features | jq -c .linux.namespaces)"
expect_match "cove oci and cove-runc are one" "cove-runc version" "$("$COVE" oci --version)"

echo "1..$n"
exit 0
