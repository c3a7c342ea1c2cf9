#!/bin/bash
# config.json features inside a running container: namespaces, mounts, devices, limits,
# capabilities, seccomp, sysctl, user, hooks, terminal, cgroups and the escape defences.
. "$(dirname "$0")/lib.sh"

B=$T/feat
make_bundle "$B" '["true"]'
cp "$B/config.json" "$T/base.json"
reset() { cp "$T/base.json" "$B/config.json"; }
# crun ARGS_JSON [JQ]: run the bundle with these args (after an optional edit); prints output.
crun() {
	reset
	edit_config "$B" ".process.args = $1"
	[ $# -gt 1 ] && edit_config "$B" "$2"
	(cd "$B" && r run "f$n" 2>&1)
}

expect_eq "pid namespace: the process is pid 1" 1 "$(crun '["sh","-c","echo $$"]')"
expect_eq "uts namespace: hostname" cove "$(crun '["hostname"]')"
expect_eq "domainname" example.org "$(crun '["cat","/proc/sys/kernel/domainname"]' '.domainname = "example.org"')"
expect_eq "network namespace: only lo" "lo" "$(crun '["sh","-c","ls /sys/class/net"]')"
host_ipc=$(stat -Lc %i /proc/self/ns/ipc)
expect_match "ipc namespace is new" "^[0-9]+$" "$(crun '["stat","-Lc","%i","/proc/self/ns/ipc"]' | grep -v "^$host_ipc$")"
expect_eq "cgroup namespace: rooted at the container's group" "0::/" "$(crun '["sh","-c","grep ^0:: /proc/self/cgroup"]')"
out=$(crun '["cat","/proc/self/uid_map"]' '.linux.namespaces += [{"type":"user"}] | .linux.uidMappings = [{"containerID":0,"hostID":100000,"size":65536}] | .linux.gidMappings = [{"containerID":0,"hostID":100000,"size":65536}] | .mounts |= map(select(.destination != "/sys" and .destination != "/sys/fs/cgroup"))')
expect_match "user namespace with ID maps" "^ +0 +100000 +65536$" "$out"
out=$(crun '["cut","-d.","-f1","/proc/uptime"]' '.linux.namespaces += [{"type":"time"}] | .linux.timeOffsets = {"boottime":{"secs":864000000}}')
[ "${out:-0}" -gt 864000000 ] 2>/dev/null && ok "time namespace with offsets" || notok "time namespace with offsets" "$out"
ip netns add "cove-oci-$$" 2>/dev/null
if [ -e "/run/netns/cove-oci-$$" ]; then
	want=$(stat -Lc %i "/run/netns/cove-oci-$$")
	out=$(crun '["stat","-Lc","%i","/proc/self/ns/net"]' ".linux.namespaces |= map(if .type == \"network\" then .path = \"/run/netns/cove-oci-$$\" else . end)")
	expect_eq "joining a network namespace by path" "$want" "$out"
	ip netns del "cove-oci-$$"
else
	skip "joining a network namespace by path" "ip netns add failed"
fi

# pid and user namespaces joined by path, from a sleeping helper's /proc/PID/ns/*
# helper_pid PARENT: the pid of PARENT's child (unshare forks the helper)
child_of() { for i in $(seq 100); do c=$(cat /proc/$1/task/$1/children 2>/dev/null | awk '{print $1}'); [ -n "$c" ] && { echo "$c"; return; }; sleep 0.02; done; }
unshare --pid --fork sleep 60 >/dev/null 2>&1 &
up=$!
hp=$(child_of $up)
if [ -n "$hp" ]; then
	want=$(stat -Lc %i /proc/$hp/ns/pid)
	out=$(crun '["sh","-c","stat -Lc %i /proc/self/ns/pid; echo $$; cat /proc/1/comm"]' ".linux.namespaces |= map(if .type == \"pid\" then .path = \"/proc/$hp/ns/pid\" else . end)")
	expect_eq "joining a pid namespace by path: same namespace, the helper is pid 1" "$want
2
sleep" "$out"
else
	skip "joining a pid namespace by path" "unshare --pid --fork did not start a helper"
fi
{ kill -9 ${hp:-} $up; wait $up; } 2>/dev/null # (a pid namespace's init takes only SIGKILL from outside)
# (unshare execs sleep in the new namespace; its ID maps are written from here, as root)
unshare --user sleep 60 >/dev/null 2>&1 &
up=$!
for i in $(seq 100); do [ "$(stat -Lc %i /proc/$up/ns/user)" != "$(stat -Lc %i /proc/self/ns/user)" ] && break; sleep 0.02; done
if [ "$(stat -Lc %i /proc/$up/ns/user)" != "$(stat -Lc %i /proc/self/ns/user)" ] &&
	echo "0 200000 65536" >/proc/$up/uid_map && echo "0 200000 65536" >/proc/$up/gid_map; then
	want=$(stat -Lc %i /proc/$up/ns/user)
	out=$(crun '["sh","-c","stat -Lc %i /proc/self/ns/user; cat /proc/self/uid_map; id -u"]' ".linux.namespaces += [{\"type\":\"user\",\"path\":\"/proc/$up/ns/user\"}] | .mounts |= map(select(.destination != \"/sys\" and .destination != \"/sys/fs/cgroup\"))")
	expect_eq "joining a user namespace by path: same namespace" "$want" "$(echo "$out" | head -1)"
	expect_match "joining a user namespace by path: the helper's ID map" "^ +0 +200000 +65536$" "$(echo "$out" | sed -n 2p)"
	expect_eq "joining a user namespace by path: root inside" 0 "$(echo "$out" | sed -n 3p)"
	# create/start: the pid file and state name the real init (cloned after the join)
	edit_config "$B" '.process.args = ["sleep","20"]'
	r create --bundle "$B" --pid-file "$T/upid" usr1 && r start usr1
	ipid=$(cat "$T/upid" 2>/dev/null)
	expect_eq "joined user namespace: state pid is the pid file's" "$ipid" "$(r state usr1 | jq -r .pid)"
	expect_eq "joined user namespace: that init is in it" "$want sleep" "$(stat -Lc %i /proc/$ipid/ns/user) $(cat /proc/$ipid/comm)"
	expect_eq "joined user namespace: exec finds init as pid 1 of its new pid namespace" sleep "$(r exec usr1 cat /proc/1/comm 2>&1)"
	r delete --force usr1
	# a failure in the second stage is reported and leaves nothing (no init, no group)
	reset
	edit_config "$B" ".process.args = [\"sleep\",\"3032\"] | .linux.namespaces += [{\"type\":\"user\",\"path\":\"/proc/$up/ns/user\"}] | .mounts |= map(select(.destination != \"/sys\" and .destination != \"/sys/fs/cgroup\")) | .mounts += [{\"destination\":\"/x\",\"source\":\"/no/such/dir\",\"options\":[\"bind\"]}]"
	expect_match "joined user namespace: a mount failure in the real init is reported" "mounts: bind source /no/such/dir" "$(r create --bundle "$B" usr2 2>&1)"
	check "joined user namespace: the failure leaves nothing" nothing_left usr2 "$CG/feat"
	expect_eq "joined user namespace: no init (a runtime clone) left" "" "$(pgrep -f "create --bundle $B usr2")"
else
	skip "joining a user namespace by path" "unshare --user did not start a helper"
fi
kill $up 2>/dev/null
wait $up 2>/dev/null

mkdir -p "$T/hostdir" && echo shared >"$T/hostdir/f"
out=$(crun '["sh","-c","cat /data/f; touch /data/g 2>/dev/null && echo writable || echo readonly"]' ".mounts += [{\"destination\":\"/data\",\"source\":\"$T/hostdir\",\"options\":[\"rbind\",\"ro\"]}]")
expect_eq "read-only bind mount" "shared
readonly" "$out"
out=$(crun '["sh","-c","grep \" /scratch \" /proc/self/mountinfo"]' '.mounts += [{"destination":"/scratch","type":"tmpfs","source":"tmpfs","options":["nosuid","size=1m","rshared"]}]')
expect_match "tmpfs mount with size and propagation" "shared:.*tmpfs.*size=1024k" "$out"
# recursive options reach submounts: an rbind of a directory with a tmpfs mounted inside it
mkdir -p "$T/rb/sub" && echo top >"$T/rb/f"
mount -t tmpfs -o size=1m tmpfs "$T/rb/sub" && echo subf >"$T/rb/sub/g"
out=$(crun '["sh","-c","cat /rb/sub/g; touch /rb/sub/h 2>/dev/null && echo writable || echo readonly; grep \" /rb/sub \" /proc/self/mountinfo"]' ".mounts += [{\"destination\":\"/rb\",\"source\":\"$T/rb\",\"options\":[\"rbind\",\"rro\",\"rnosuid\"]}]")
expect_eq "rro: the submount is read-only" "subf
readonly" "$(echo "$out" | head -2)"
# mountinfo field 6 holds the per-mount flags
expect_match "rro,rnosuid: the submount's flags in mountinfo" "^ro,nosuid(,|$)" "$(echo "$out" | sed -n 3p | awk '{print $6}')"
out=$(crun '["sh","-c","grep \" /rb/sub \" /proc/self/mountinfo"]' ".mounts += [{\"destination\":\"/rb\",\"source\":\"$T/rb\",\"options\":[\"rbind\",\"ro\"]}]")
expect_match "plain ro leaves the submount writable (the contrast)" "^rw" "$(echo "$out" | awk '{print $6}')"
out=$(crun '["sh","-c","grep \" /rb/sub \" /proc/self/mountinfo"]' ".mounts += [{\"destination\":\"/rb\",\"source\":\"$T/rb\",\"options\":[\"rbind\",\"rnoexec\",\"rnodev\",\"rnoatime\",\"rnosymfollow\"]}]")
expect_match "rnoexec,rnodev,rnoatime,rnosymfollow on the submount" "^rw,nodev,noexec,noatime,nosymfollow$" "$(echo "$out" | awk '{print $6}')"
umount "$T/rb/sub"
out=$(crun '["sh","-c","grep \" /scratch \" /proc/self/mountinfo"]' '.mounts += [{"destination":"/scratch","type":"tmpfs","source":"tmpfs","options":["rnoexec","rstrictatime","size=1m"]}]')
expect_match "recursive options on a tmpfs (not passed to it as data)" "^rw,noexec$" "$(echo "$out" | awk '{print $6}')"
ln -sf /etc/passwd "$T/hostdir/link"
out=$(crun '["sh","-c","cat /data/link >/dev/null 2>&1 && echo followed || echo refused"]' ".mounts += [{\"destination\":\"/data\",\"source\":\"$T/hostdir\",\"options\":[\"bind\",\"nosymfollow\"]}]")
expect_eq "nosymfollow on a bind mount" refused "$out"
out=$(crun '["sh","-c","cat /etc/passwd; echo x >/etc/new && cat /etc/new"]' '.mounts += [{"destination":"/etc","type":"tmpfs","source":"tmpfs","options":["tmpcopyup","mode=755"]}]')
expect_eq "tmpcopyup: the image's /etc is in the tmpfs, and it is writable" "root:x:0:0:root:/:/bin/sh
x" "$out"
expect_eq "tmpcopyup: the image is untouched" absent "$([ -e "$B/rootfs/etc/new" ] && echo present || echo absent)"
out=$(crun '["sh","-c","cat /etc/passwd; { echo x >/etc/new; } 2>/dev/null && echo writable || echo read-only"]' '.mounts += [{"destination":"/etc","type":"tmpfs","source":"tmpfs","options":["tmpcopyup","ro"]}]')
expect_eq "tmpcopyup with ro: copied first, then read-only" "root:x:0:0:root:/:/bin/sh
read-only" "$out"
out=$(crun '["true"]' ".mounts += [{\"destination\":\"/data\",\"source\":\"$T/hostdir\",\"options\":[\"bind\",\"idmap\"]}]")
expect_match "idmap is refused, naming the field" 'mounts\[[0-9]+\]\.options: "idmap": idmapped mounts are not supported' "$out"
expect_match "features lists the recursive options and tmpcopyup" '"rnosuid".*"rro".*"tmpcopyup"' "$(r features | jq -c .mountOptions)"
expect_eq "features does not list idmap" 0 "$(r features | jq '[.mountOptions[] | select(. == "idmap" or . == "ridmap")] | length')"
expect_eq "root.readonly" readonly "$(crun '["sh","-c","touch /x 2>/dev/null && echo writable || echo readonly"]')"
expect_eq "masked path is empty" 0 "$(crun '["sh","-c","wc -c </proc/timer_list"]')"
expect_eq "read-only path" readonly "$(crun '["sh","-c","(echo 1 >/proc/sys/kernel/ns_last_pid) 2>/dev/null && echo writable || echo readonly"]')"
expect_eq "default devices" "crw-rw-rw- 1,3" "$(crun '["sh","-c","stat -c \"%A %t,%T\" /dev/null"]')"
expect_eq "configured device" "crw------- 1,5" "$(crun '["sh","-c","stat -c \"%A %t,%T\" /dev/myzero"]' '.linux.devices = [{"path":"/dev/myzero","type":"c","major":1,"minor":5,"fileMode":384}]')"
expect_eq "/dev/fd link" /proc/self/fd "$(crun '["readlink","/dev/fd"]')"
# --no-pivot: the root is switched by moving the rootfs onto / and chroot, never pivot_root;
# strace (following the re-exec and every clone) shows which calls were made.
reset
edit_config "$B" '.process.args = ["echo","hi"]'
if command -v strace >/dev/null; then
	for mode in pivot no-pivot; do
		flag=""
		[ $mode = no-pivot ] && flag=--no-pivot
		# (LeakSanitizer cannot run under ptrace: off for this one call in ASan builds)
		out=$(cd "$B" && ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 strace -f -qq -e trace=pivot_root,chroot,mount -e signal=none -o "$T/strace.$mode" "$RUNC" --root "$ROOT" run $flag "np-$mode" 2>&1)
		expect_eq "$mode: the container runs" hi "$out"
		calls=$(grep -oE 'pivot_root\(|chroot\(|MS_MOVE' "$T/strace.$mode" | tr -d '(' | sort -u | paste -sd' ')
		if [ $mode = pivot ]; then
			expect_eq "by default the root is switched with pivot_root alone" pivot_root "$calls"
		else
			expect_eq "--no-pivot: MS_MOVE onto / and chroot, no pivot_root" "MS_MOVE chroot" "$calls"
		fi
	done
else
	expect_eq "--no-pivot" hi "$(cd "$B" && r run --no-pivot np 2>&1)"
	skip "--no-pivot skips pivot_root" "needs strace"
fi

expect_eq "rlimits: soft and hard (not the host's defaults)" "777 888
3000" "$(crun '["sh","-c","echo $(ulimit -n) $(ulimit -Hn); ulimit -Hu"]' '.process.rlimits = [{"type":"RLIMIT_NOFILE","soft":777,"hard":888},{"type":"RLIMIT_NPROC","soft":3000,"hard":3000}]')"
expect_eq "capabilities (effective set)" "CapEff:	0000000020000420" "$(crun '["grep","CapEff","/proc/self/status"]' '.process.capabilities.effective = ["CAP_KILL","CAP_NET_BIND_SERVICE","CAP_AUDIT_WRITE"]')"
expect_eq "bounding set" "CapBnd:	0000000020000420" "$(crun '["grep","CapBnd","/proc/self/status"]')"
expect_eq "no_new_privileges" "NoNewPrivs:	1" "$(crun '["grep","NoNewPrivs","/proc/self/status"]')"
out=$(crun '["sh","-c","mkdir /tmp/x 2>&1; grep ^Seccomp: /proc/self/status"]' '.linux.seccomp = {"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}')
expect_match "seccomp denies mkdir with EPERM" "Operation not permitted" "$out"
expect_match "seccomp filter installed" "Seccomp:	2" "$out"
expect_eq "sysctl" 1 "$(crun '["cat","/proc/sys/net/ipv4/ip_forward"]' '.linux.sysctl = {"net.ipv4.ip_forward":"1"}')"
expect_eq "user, groups, umask, cwd" "uid=1000 gid=1000 groups=10,20
0027
/tmp" "$(crun '["sh","-c","id; umask; pwd"]' '.process.user = {"uid":1000,"gid":1000,"additionalGids":[10,20],"umask":23} | .process.cwd = "/tmp"')"
expect_eq "oomScoreAdj" 123 "$(crun '["cat","/proc/self/oom_score_adj"]' '.process.oomScoreAdj = 123')"

# hooks: each appends its name; prestart keeps the state it got on stdin. startContainer runs
# in the container (its path resolves there, under the read-only root): it writes through a
# bind mount of $H at /hooks, with what it sees of its namespaces.
H=$T/hooks && mkdir -p "$H"
hook() { echo "{\"path\":\"/bin/sh\",\"args\":[\"sh\",\"-c\",\"$1\"]}"; }
out=$(crun '["sh","-c","echo main"]' ".mounts += [{\"destination\":\"/hooks\",\"source\":\"$H\",\"options\":[\"bind\"]}] | .hooks = {
  \"prestart\":[$(hook "cat > $H/state.json; echo prestart >> $H/log")],
  \"createRuntime\":[$(hook "echo createRuntime >> $H/log")],
  \"createContainer\":[$(hook "echo createContainer >> $H/log")],
  \"startContainer\":[$(hook "echo startContainer >> /hooks/log; (hostname; readlink /proc/self/ns/mnt; cat /proc/1/comm) > /hooks/sc")],
  \"poststop\":[$(hook "echo poststop >> $H/log")]}"; echo "rc=$?")
expect_eq "a run with every hook succeeds" "main
rc=0" "$out"
expect_eq "hooks run in order" "prestart createRuntime createContainer startContainer poststop" "$(tr '\n' ' ' <"$H/log" | sed 's/ $//')"
expect_eq "startContainer runs in the container's uts namespace" cove "$(sed -n 1p "$H/sc" 2>/dev/null)"
host_mnt=$(readlink /proc/self/ns/mnt)
expect_match "startContainer runs in the container's mount namespace" "^mnt:\[[0-9]+\]$" "$(sed -n 2p "$H/sc" 2>/dev/null | grep -v "^$host_mnt$")"
expect_eq "startContainer runs in the container's pid namespace (pid 1 is init, still the runtime)" memfd:cove-runc "$(sed -n 3p "$H/sc" 2>/dev/null)"
expect_eq "hooks get the state on stdin" "creating $B" "$(jq -r '.status + " " + .bundle' "$H/state.json" 2>/dev/null)"
reset
edit_config "$B" ".process.args = [\"sleep\",\"5\"] | .hooks = {\"poststart\":[$(hook "echo poststart >> $H/log2")]}"
r create --bundle "$B" hk && r start hk
expect_eq "poststart runs after start" poststart "$(cat "$H/log2" 2>/dev/null)"
r delete --force hk
reset
edit_config "$B" '.hooks = {"prestart":[{"path":"/bin/sleep","args":["sleep","5"],"timeout":1}]}'
out=$(cd "$B" && r run hto 2>&1)
expect_match "hook timeout fails create" "prestart hook #0: hook /bin/sleep timed out after 1 s" "$out"
check "a failed hook leaves nothing" nothing_left hto "$CG/feat"

# cgroup limits
reset
edit_config "$B" '.process.args = ["sleep","10"] | .linux.resources += {"memory":{"limit":67108864},"cpu":{"shares":512,"quota":20000,"period":100000},"pids":{"limit":20}}'
r create --bundle "$B" cg1
expect_eq "memory limit applied" 67108864 "$(cat /sys/fs/cgroup/memory$CG/feat/memory.limit_in_bytes)"
expect_eq "cpu shares applied" 512 "$(cat /sys/fs/cgroup/cpu$CG/feat/cpu.shares)"
expect_eq "cpu quota applied" 20000 "$(cat /sys/fs/cgroup/cpu$CG/feat/cpu.cfs_quota_us)"
expect_eq "pids limit applied" 20 "$(cat /sys/fs/cgroup/pids$CG/feat/pids.max)"
expect_match "devices cgroup denies by default" "c 1:3 rwm" "$(cat /sys/fs/cgroup/devices$CG/feat/devices.list)"
r delete --force cg1
# cpu idle and burst where the kernel has the files (these v1 hosts do)
reset
edit_config "$B" '.process.args = ["sleep","10"] | .linux.resources += {"cpu":{"quota":20000,"period":100000,"burst":5000,"idle":1}}'
if [ -e /sys/fs/cgroup/cpu/cpu.idle ] && [ -e /sys/fs/cgroup/cpu/cpu.cfs_burst_us ]; then
	r create --bundle "$B" cg2
	expect_eq "cpu.idle applied" 1 "$(cat /sys/fs/cgroup/cpu$CG/feat/cpu.idle 2>&1)"
	expect_eq "cpu burst applied" 5000 "$(cat /sys/fs/cgroup/cpu$CG/feat/cpu.cfs_burst_us 2>&1)"
	r delete --force cg2
else
	skip "cpu.idle and burst" "no cpu.idle or cpu.cfs_burst_us in /sys/fs/cgroup/cpu"
fi
# realtime on v1: written where the kernel has the files; a value the kernel refuses (no
# runtime budget in the parent group) is an error naming the field, and nothing is left
reset
edit_config "$B" '.linux.resources += {"cpu":{"realtimePeriod":100000,"realtimeRuntime":1000}}'
if [ -e /sys/fs/cgroup/cpu/cpu.rt_runtime_us ]; then
	edit_config "$B" '.process.args = ["sleep","10"]'
	if r create --bundle "$B" cg5 >"$T/cg5.out" 2>&1; then
		expect_eq "cpu realtime applied" "100000 1000" "$(cat /sys/fs/cgroup/cpu$CG/feat/cpu.rt_period_us /sys/fs/cgroup/cpu$CG/feat/cpu.rt_runtime_us | paste -sd' ')"
		r delete --force cg5
	else
		expect_match "cpu realtime refused by the kernel: the error names the field" "linux.resources.cpu.realtimeRuntime: cgroup: writing \"1000\" to .*cpu.rt_runtime_us" "$(cat "$T/cg5.out")"
		check "cpu realtime refusal leaves nothing" nothing_left cg5 "$CG/feat"
	fi
else
	skip "cpu realtime on v1" "no cpu.rt_runtime_us (a kernel without RT group scheduling)"
fi
# cpuset, memory swap/reservation/swappiness and a blkio throttle on the v1 hierarchies
reset
edit_config "$B" '.process.args = ["sleep","10"] | .linux.resources += {"cpu":{"cpus":"0","mems":"0"},"memory":{"limit":67108864,"swap":134217728,"reservation":33554432,"swappiness":10}}'
dev=$(cat /sys/block/$(lsblk -dno NAME | head -1)/dev 2>/dev/null)
if [ -n "$dev" ]; then
	edit_config "$B" ".linux.resources.blockIO = {\"throttleReadBpsDevice\":[{\"major\":${dev%:*},\"minor\":${dev#*:},\"rate\":1048576}],\"throttleWriteIOPSDevice\":[{\"major\":${dev%:*},\"minor\":${dev#*:},\"rate\":300}]}"
fi
r create --bundle "$B" cg3
expect_eq "cpuset.cpus applied" 0 "$(cat /sys/fs/cgroup/cpuset$CG/feat/cpuset.cpus 2>&1)"
expect_eq "cpuset.mems applied" 0 "$(cat /sys/fs/cgroup/cpuset$CG/feat/cpuset.mems 2>&1)"
if [ -e "/sys/fs/cgroup/memory$CG/feat/memory.memsw.limit_in_bytes" ]; then
	expect_eq "memory swap (memory+swap) applied" 134217728 "$(cat /sys/fs/cgroup/memory$CG/feat/memory.memsw.limit_in_bytes)"
else
	skip "memory swap applied" "no memory.memsw files (swap accounting is off)"
fi
expect_eq "memory reservation applied" 33554432 "$(cat /sys/fs/cgroup/memory$CG/feat/memory.soft_limit_in_bytes 2>&1)"
expect_eq "memory swappiness applied" 10 "$(cat /sys/fs/cgroup/memory$CG/feat/memory.swappiness 2>&1)"
if [ -n "$dev" ]; then
	expect_eq "blkio read bps throttle applied" "$dev 1048576" "$(cat /sys/fs/cgroup/blkio$CG/feat/blkio.throttle.read_bps_device 2>&1)"
	expect_eq "blkio write iops throttle applied" "$dev 300" "$(cat /sys/fs/cgroup/blkio$CG/feat/blkio.throttle.write_iops_device 2>&1)"
else
	skip "blkio throttles" "no block device found with lsblk"
fi
r delete --force cg3
# blkio weight: CFQ's or BFQ's file where the kernel has one (child groups only), else an
# error naming the field
reset
edit_config "$B" '.process.args = ["sleep","10"] | .linux.resources.blockIO = {"weight":300}'
if r create --bundle "$B" cg4 >"$T/cg4.out" 2>&1; then
	expect_match "blkio weight applied" "^300$" "$(cat /sys/fs/cgroup/blkio$CG/feat/blkio.weight /sys/fs/cgroup/blkio$CG/feat/blkio.bfq.weight 2>/dev/null)"
	r delete --force cg4
else
	expect_match "blkio weight without a weight file here: an error naming the field" "linux.resources.blockIO.weight: not supported by this kernel" "$(cat "$T/cg4.out")"
	check "blkio weight refusal leaves nothing" nothing_left cg4 "$CG/feat"
fi
# device rules also go to the unified (v2) group as a BPF program: with the v1 list opened
# up from the host, the BPF filter alone must still refuse a device the config denies.
if [ -e /dev/fuse ] && [ -d /sys/fs/cgroup/unified ]; then
	reset
	edit_config "$B" '.process.args = ["sleep","10"] | .linux.devices = [{"path":"/dev/fuse","type":"c","major":10,"minor":229}] | .linux.resources.devices += [{"allow":true,"type":"c","major":10,"minor":229,"access":"m"}]'
	r create --bundle "$B" dv1 && r start dv1
	echo a >/sys/fs/cgroup/devices$CG/feat/devices.allow
	expect_eq "v1 rules opened up from the host" "a *:* rwm" "$(cat /sys/fs/cgroup/devices$CG/feat/devices.list)"
	expect_eq "BPF device filter denies /dev/fuse" denied "$(r exec dv1 sh -c '(exec 3</dev/fuse) 2>/dev/null && echo opened || echo denied' 2>/dev/null)"
	expect_eq "BPF device filter allows /dev/null" opened "$(r exec dv1 sh -c '(exec 3</dev/null) 2>/dev/null && echo opened || echo denied' 2>/dev/null)"
	r delete --force dv1
	reset
	edit_config "$B" '.process.args = ["sh","-c","(exec 3</dev/fuse) 2>/dev/null && echo opened || echo denied"] | .linux.devices = [{"path":"/dev/fuse","type":"c","major":10,"minor":229}] | .linux.resources.devices += [{"allow":true,"type":"c","major":10,"minor":229,"access":"rm"}]'
	expect_eq "an allow rule opens it" opened "$(cd "$B" && r run dv2 2>/dev/null)"
else
	skip "BPF device filter" "no /dev/fuse or no unified cgroup hierarchy"
fi
reset
out=$(crun '["sh","-c","for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait; echo done"]' '.linux.resources = {"pids":{"limit":4}}')
expect_match "pids limit enforced" "can't fork|Resource temporarily unavailable|Try again" "$out"

# terminal: the pty master arrives over --console-socket
cat >"$T/console.py" <<'EOF'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
open(sys.argv[2], "w").close()
c, _ = s.accept()
msg, fds, _, _ = socket.recv_fds(c, 16, 1)
out = b""
while True:
    try:
        d = os.read(fds[0], 4096)
    except OSError:
        break
    if not d:
        break
    out += d
print(out.decode(errors="replace").strip())
EOF
python3 "$T/console.py" "$T/cons.sock" "$T/cons.ready" >"$T/cons.out" &
cpid=$!
for i in $(seq 100); do [ -e "$T/cons.ready" ] && break; sleep 0.02; done
reset
edit_config "$B" '.process.terminal = true | .process.args = ["sh","-c","tty; echo tty-ok"]'
r create --bundle "$B" --console-socket "$T/cons.sock" tty1 && r start tty1
wait $cpid
out=$(cat "$T/cons.out")
expect_match "terminal: a pty on stdio" "^/dev/pts/0" "$out"
expect_match "terminal: output through the master" "tty-ok" "$out"
r delete --force tty1
# run in the foreground with a terminal and no console socket: cove-runc proxies the pty
reset
edit_config "$B" '.process.terminal = true | .process.args = ["sh","-c","tty; echo pty-ok; exit 4"]'
out=$(cd "$B" && r run ptyrun </dev/null 2>&1 | tr -d '\r')
expect_eq "run with a terminal: output through the proxied pty" "/dev/pts/0
pty-ok" "$out"
# exec --tty --console-socket: the exec'd process gets its own pty the same way
reset
edit_config "$B" '.process.args = ["sleep","20"]'
r create --bundle "$B" tty2 && r start tty2
rm -f "$T/cons.sock" "$T/cons.ready"
python3 "$T/console.py" "$T/cons.sock" "$T/cons.ready" >"$T/cons2.out" &
cpid=$!
for i in $(seq 100); do [ -e "$T/cons.ready" ] && break; sleep 0.02; done
r exec --tty --console-socket "$T/cons.sock" tty2 sh -c 'tty; echo exec-tty-ok'
wait $cpid
out=$(cat "$T/cons2.out")
expect_match "exec --tty --console-socket: output through the master" "^/dev/pts/[0-9].*exec-tty-ok" "$(echo $out)"
# exec --tty without a console socket, in the foreground: a pty relayed to our stdio, as runc
out=$(r exec --tty tty2 sh -c 'tty; echo exec-pty-ok; exit 6' </dev/null 2>&1)
rc=$?
expect_eq "exec --tty without a console socket: output through a relayed pty" "/dev/pts/0
exec-pty-ok" "$(echo "$out" | tr -d '\r')"
expect_eq "exec --tty without a console socket: exit status" 6 "$rc"
expect_match "exec --tty --detach without a console socket is refused (runc's words)" "cannot allocate tty if runc will detach without setting console socket" "$(r exec --tty --detach tty2 true 2>&1)"
r delete --force tty2

# escapes
reset
edit_config "$B" '.process.args = ["sleep","5"]'
r create --bundle "$B" --pid-file "$T/p" esc
pid=$(cat "$T/p")
expect_match "CVE-2019-5736: init runs from a sealed memfd, not the host binary" "memfd:cove-runc" "$(readlink /proc/$pid/exe)"
r delete --force esc
# Not dumpable before exec: with identity ID maps (so no uid change resets the flag), a process
# that joins the container's user namespace passes every ptrace check but the dumpable one,
# which asks for a capability in the user namespace of init's memory (the host's) while init
# has not exec'd. So init's environ is closed to it before start and open after.
reset
edit_config "$B" '.process.args = ["sleep","20"] | .linux.namespaces += [{"type":"user"}] | .linux.uidMappings = [{"containerID":0,"hostID":0,"size":65536}] | .linux.gidMappings = [{"containerID":0,"hostID":0,"size":65536}] | .mounts |= map(select(.destination != "/sys" and .destination != "/sys/fs/cgroup"))'
r create --bundle "$B" --pid-file "$T/p" dmp
pid=$(cat "$T/p")
expect_eq "init is not dumpable before exec" denied "$(nsenter -U -t "$pid" cat /proc/$pid/environ >/dev/null 2>&1 && echo readable || echo denied)"
r start dmp
for i in $(seq 50); do [ "$(cat /proc/$pid/comm)" = sleep ] && break; sleep 0.02; done
expect_eq "after exec it is (the check above can tell)" readable "$(nsenter -U -t "$pid" cat /proc/$pid/environ >/dev/null 2>&1 && echo readable || echo denied)"
r delete --force dmp
exec 7>"$T/leak"
out=$(crun '["ls","/proc/self/fd"]')
exec 7>&-
expect_eq "CVE-2024-21626: no fd of ours crosses into the container" "0 1 2 3" "$(echo $out)"
# CVE-2024-21626: a cwd through /proc/self/fd/N must not reach a host directory held open by
# the runtime (fd 5 below is a host directory inherited from us, as the leaked fd was).
# Each attempt fails naming process.cwd, or, if it runs, its cwd is inside the container.
contained() { # NAME RC OUT
	if [ "$2" -ne 0 ]; then
		expect_match "$1" "process\.cwd" "$3"
	elif printf '%s' "$3" | grep -q "^/" && ! printf '%s' "$3" | grep -q "unreachable\|$T"; then
		ok "$1"
	else
		notok "$1" "ran with cwd [$3]"
	fi
}
exec 5<"$T"
for fd in 3 4 5 6 7 8; do
	out=$(crun '["sh","-c","pwd"]' ".process.cwd = \"/proc/self/fd/$fd\"")
	contained "CVE-2024-21626: process.cwd /proc/self/fd/$fd" $? "$out"
done
reset
edit_config "$B" '.process.args = ["sleep","20"]'
r create --bundle "$B" cwd1 && r start cwd1
for fd in 3 4 5 6 7 8; do
	out=$(r exec --cwd "/proc/self/fd/$fd" cwd1 sh -c pwd 2>&1)
	contained "CVE-2024-21626: exec --cwd /proc/self/fd/$fd" $? "$out"
done
r delete --force cwd1
exec 5<&-
exec 3>"$T/pfd"
reset
edit_config "$B" '.process.args = ["sh","-c","echo via-fd3 >&3"]'
(cd "$B" && r run --preserve-fds 1 pres)
exec 3>&-
expect_eq "--preserve-fds passes fd 3" via-fd3 "$(cat "$T/pfd")"

echo "1..$n"
exit 0
