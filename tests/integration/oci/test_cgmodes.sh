#!/bin/bash
# cgroup v2-only and v1-only hosts, made in a private mount namespace: /sys/fs/cgroup is
# covered by a lone cgroup2 mount (pure v2), then by a tmpfs with v1 hierarchies only (v1),
# and the runtime, which reads the layout in its own mount namespace, runs a container's
# whole life in each and the values are checked where they land.
if [ -z "${COVE_CGMODES_NS:-}" ]; then
	if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
		COVE_CGMODES_NS=1 exec unshare -m --propagation private "$0" "$@"
	fi
fi
. "$(dirname "$0")/lib.sh"
[ -n "${COVE_CGMODES_NS:-}" ] || skip_all "needs unshare(1) for a private mount namespace"

covered="" # what we mounted over /sys/fs/cgroup, undone before lib.sh's cleanup looks there
uncover() {
	local m
	for m in $covered; do umount "$m" 2>/dev/null || umount -l "$m"; done
	covered=""
}
trap 'uncover; cleanup_all' EXIT

B=$T/m
make_bundle "$B" '["sleep","3031"]'
cp "$B/config.json" "$T/base.json"
reset() { cp "$T/base.json" "$B/config.json"; }
cgmode() { jq -r .cove_cgroup_mode "$ROOT/$1/state.json" 2>/dev/null; }
wait_stopped() { for i in $(seq 100); do [ "$(status_of "$1")" = stopped ] && return; sleep 0.02; done; }

# lifecycle MODE GROUP_DIR: create, start, pause, resume, exec, ps, kill, delete; MODE names
# the mode in messages, GROUP_DIR is a directory of the container's group with cgroup.procs.
lifecycle() {
	local mode=$1 procs_dir=$2 id=$1-life pid
	reset
	r create --bundle "$B" --pid-file "$T/pid" "$id"
	expect_eq "$mode: create succeeds" created "$(status_of "$id")"
	pid=$(cat "$T/pid" 2>/dev/null)
	expect_eq "$mode: init sits in the group" 1 "$(grep -c "^$pid\$" "$procs_dir/cgroup.procs" 2>&1)"
	check "$mode: start" r start "$id"
	expect_eq "$mode: running" running "$(status_of "$id")"
	check "$mode: pause" r pause "$id"
	expect_eq "$mode: paused" paused "$(status_of "$id")"
	if [ "$mode" = v2 ]; then
		expect_match "$mode: the group is frozen (cgroup.events)" "frozen 1" "$(cat "$procs_dir/cgroup.events")"
	else
		expect_eq "$mode: the freezer is FROZEN" FROZEN "$(cat "/sys/fs/cgroup/freezer$CG/m/freezer.state")"
	fi
	expect_match "$mode: exec is refused while paused" "cannot exec in a paused container" "$(r exec "$id" true 2>&1)"
	check "$mode: resume" r resume "$id"
	expect_eq "$mode: running again" running "$(status_of "$id")"
	expect_eq "$mode: exec works after resume" exec-ok "$(r exec "$id" echo exec-ok 2>&1)"
	expect_match "$mode: ps lists init" "\\[$pid" "$(r ps --format json "$id")"
	check "$mode: kill" r kill "$id" KILL
	wait_stopped "$id"
	expect_eq "$mode: stopped" stopped "$(status_of "$id")"
	check "$mode: delete" r delete "$id"
	check "$mode: delete leaves nothing" nothing_left "$id" "$CG/m"
}

# ---- pure cgroup v2 ----
if mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>"$T/err"; then
	covered="/sys/fs/cgroup"
	G=/sys/fs/cgroup$CG/m
	ctrls=$(cat /sys/fs/cgroup/cgroup.controllers)
	reset
	r create --bundle "$B" v2-mode
	expect_eq "v2: the layout is detected as v2" 2 "$(cgmode v2-mode)"
	r delete --force v2-mode
	lifecycle v2 "$G"
	# The container sees its own cgroup2 tree (with a cgroup namespace, rooted at its group).
	reset
	edit_config "$B" '.process.args = ["sh","-c","grep \" /sys/fs/cgroup \" /proc/self/mountinfo | cut -d\" \" -f9; grep ^0:: /proc/self/cgroup"]'
	expect_eq "v2: the container mounts cgroup2, rooted at its group" "cgroup2
0::/" "$(cd "$B" && r run v2-mnt 2>&1)"
	# unified is written as is on v2 (a core file: it needs no controller)
	reset
	edit_config "$B" '.linux.resources.unified = {"cgroup.max.descendants":"5"}'
	r create --bundle "$B" v2-uni
	expect_eq "v2: unified written as is" 5 "$(cat "$G/cgroup.max.descendants" 2>&1)"
	r delete --force v2-uni
	reset
	edit_config "$B" '.linux.resources.cpu = {"realtimeRuntime":1000,"realtimePeriod":100000}'
	expect_match "v2: realtime refused, naming the field" "linux.resources.cpu.realtimeRuntime" "$(r create --bundle "$B" v2-rt 2>&1)"
	check "v2: the refusal leaves nothing" nothing_left v2-rt "$CG/m"
	# device rules: on v2 the BPF program alone enforces them
	if [ -e /dev/fuse ]; then
		reset
		edit_config "$B" '.process.args = ["sh","-c","(exec 3</dev/fuse) 2>/dev/null && echo opened || echo denied; (exec 3</dev/null) && echo null-ok"] | .linux.devices = [{"path":"/dev/fuse","type":"c","major":10,"minor":229}] | .linux.resources.devices += [{"allow":true,"type":"c","major":10,"minor":229,"access":"m"}]'
		expect_eq "v2: the BPF device filter allows mknod (m) but not open (r)" "denied
null-ok" "$(cd "$B" && r run v2-dev 2>&1)"
	else
		skip "v2: the BPF device filter" "no /dev/fuse"
	fi
	# limits need the controllers; on a hybrid host they stay bound to the v1 hierarchies
	if printf '%s' "$ctrls" | grep -qw pids; then
		reset
		edit_config "$B" '.linux.resources.pids = {"limit":20}'
		r create --bundle "$B" v2-pids
		expect_eq "v2: pids limit" 20 "$(cat "$G/pids.max" 2>&1)"
		echo '{"pids":{"limit":42}}' >"$T/res.json"
		r update --resources "$T/res.json" v2-pids
		expect_eq "v2: update --resources FILE" 42 "$(cat "$G/pids.max" 2>&1)"
		r delete --force v2-pids
	else
		skip "v2: pids limit and update" "the kernel keeps the pids controller on its v1 hierarchy (v2 root offers: ${ctrls:-none})"
	fi
	if printf '%s' "$ctrls" | grep -qw memory && printf '%s' "$ctrls" | grep -qw cpu; then
		reset
		edit_config "$B" '.linux.resources.memory = {"limit":67108864,"swap":134217728,"reservation":33554432} | .linux.resources.cpu = {"shares":1024,"quota":50000,"period":100000}'
		r create --bundle "$B" v2-mem
		expect_eq "v2: memory.max" 67108864 "$(cat "$G/memory.max" 2>&1)"
		expect_eq "v2: memory.swap.max = swap - limit" 67108864 "$(cat "$G/memory.swap.max" 2>&1)"
		expect_eq "v2: memory.low = reservation" 33554432 "$(cat "$G/memory.low" 2>&1)"
		expect_eq "v2: cpu.weight from shares 1024" 39 "$(cat "$G/cpu.weight" 2>&1)"
		expect_eq "v2: cpu.max" "50000 100000" "$(cat "$G/cpu.max" 2>&1)"
		r delete --force v2-mem
	else
		skip "v2: memory and cpu limits (converted from v1 values)" "the kernel keeps memory and cpu on their v1 hierarchies (v2 root offers: ${ctrls:-none})"
	fi
	uncover
else
	skip "pure cgroup v2 mode" "mounting cgroup2 alone was refused: $(cat "$T/err")"
fi

# ---- cgroup v1 only ----
# The host's v1 hierarchies, mounted again with the same options (the kernel hands back the
# same hierarchy), on a fresh tmpfs without the unified one.
hier=$(awk '$3 == "cgroup" {print $2, $4}' /proc/self/mounts)
if [ -z "$hier" ]; then
	skip "cgroup v1 mode" "this host has no v1 hierarchies to mount"
elif mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup; then
	covered="/sys/fs/cgroup"
	refused=""
	while read -r mp opts; do
		name=$(basename "$mp")
		o=$(printf '%s' "$opts" | tr , '\n' | grep -vxE 'rw|ro|relatime|nosuid|nodev|noexec' | paste -sd,)
		case "$o" in name=*) o="none,$o" ;; esac
		mkdir -p "/sys/fs/cgroup/$name"
		if mount -t cgroup -o "$o" cgroup "/sys/fs/cgroup/$name" 2>"$T/err"; then
			covered="/sys/fs/cgroup/$name $covered"
		else
			refused="$refused $name ($(cat "$T/err"))"
		fi
	done <<<"$hier"
	if [ -n "$refused" ]; then
		skip "cgroup v1 mode" "the kernel refused to mount:$refused"
	else
		reset
		r create --bundle "$B" v1-mode
		expect_eq "v1: the layout is detected as v1" 0 "$(cgmode v1-mode)"
		r delete --force v1-mode
		lifecycle v1 "/sys/fs/cgroup/pids$CG/m"
		reset
		edit_config "$B" '.linux.resources.pids = {"limit":20} | .linux.resources.memory = {"limit":67108864}'
		r create --bundle "$B" --pid-file "$T/pid" v1-lim
		pid=$(cat "$T/pid")
		for c in memory pids freezer cpu; do
			expect_eq "v1: init joined the $c hierarchy" 1 "$(grep -c "^$pid\$" "/sys/fs/cgroup/$c$CG/m/cgroup.procs" 2>&1)"
		done
		expect_eq "v1: pids limit" 20 "$(cat "/sys/fs/cgroup/pids$CG/m/pids.max" 2>&1)"
		expect_eq "v1: memory limit" 67108864 "$(cat "/sys/fs/cgroup/memory$CG/m/memory.limit_in_bytes" 2>&1)"
		echo '{"pids":{"limit":42},"memory":{"limit":33554432}}' >"$T/res.json"
		r update --resources "$T/res.json" v1-lim
		expect_eq "v1: update --resources FILE: pids" 42 "$(cat "/sys/fs/cgroup/pids$CG/m/pids.max" 2>&1)"
		expect_eq "v1: update --resources FILE: memory" 33554432 "$(cat "/sys/fs/cgroup/memory$CG/m/memory.limit_in_bytes" 2>&1)"
		r delete --force v1-lim
		check "v1: delete --force leaves nothing" nothing_left v1-lim "$CG/m"
		reset
		edit_config "$B" '.linux.resources.unified = {"pids.max":"7"}'
		expect_match "v1: unified refused, naming the field" "linux.resources.unified: needs a cgroup v2 host \\(this host's layout is v1\\)" "$(r create --bundle "$B" v1-uni 2>&1)"
		check "v1: the refusal leaves nothing" nothing_left v1-uni "$CG/m"
	fi
	uncover
else
	skip "cgroup v1 mode" "mounting a tmpfs over /sys/fs/cgroup failed"
fi

echo "1..$n"
exit 0
