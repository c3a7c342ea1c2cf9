#!/bin/bash
# `cove run --sandbox`: the probe guest passes every test confined (each exit path), the
# running VMM is confined (user, capabilities, no_new_privs, seccomp, jail, namespaces,
# descriptors), a forbidden system call kills only that VMM, --seccomp alone works in a
# process its caller confined, and bad options fail clearly.
# Env: COVE, PROBE_PVH (set by meson). Needs root and /dev/kvm.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../guest/probe-lib.sh"

cove=${COVE:?set COVE to the cove binary}
pvh=${PROBE_PVH:?set PROBE_PVH to the probe guest PVH ELF}
# LeakSanitizer (ASan builds) forks a ptrace tracer at exit, which the filter forbids.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

skip=""
if [ "$(id -u)" != 0 ]; then
	skip="needs root"
elif ! probe_kvm_ok; then
	skip="/dev/kvm unavailable"
elif [ ! -x "$cove" ] || [ ! -f "$pvh" ]; then
	skip="cove or the probe guest not built"
fi

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
jail=$work/jail
initrd=$work/initrd.img
head -c 100000 /dev/urandom >"$initrd"
serial_in="cove-sandbox-$RANDOM"

check() { # NAME COND-STATUS [DETAIL...]
	local name=$1 rc=$2
	shift 2
	if [ -n "$skip" ]; then
		probe_tap ok "$name" "SKIP $skip"
	elif [ "$rc" = 0 ]; then
		probe_tap ok "$name"
	else
		probe_tap "not ok" "$name"
		for l in "$@"; do printf '#   %s\n' "$l"; done
	fi
}

# 1. Every probe test, confined.
tests="boot initrd acpi smp timer rtc serial exitloop"
cmd=$(probe_cmdline "${tests// /,}" $((256 << 20)) 2 "$initrd" "$serial_in" 2000)
probe_run "sandbox" "$tests" --input "$serial_in" ${skip:+--skip "$skip"} -- \
	"$cove" run --sandbox --jail-dir "$jail" --kernel "$pvh" --initrd "$initrd" --cpus 2 \
	--memory 256M --cmdline "$cmd"

# The same from the JSON config, with a named user and a kernel path relative to the
# working directory (bound into the jail at the same place).
printf '{"sandbox": true, "sandbox-uid": "nobody", "jail_dir": "%s"}\n' "$jail" >"$work/c.json"
probe_run "sandbox-json" "boot smp" ${skip:+--skip "$skip"} -- \
	env -C "$(dirname "$pvh")" "$cove" run --config "$work/c.json" --kernel "$(basename "$pvh")" \
	--cpus 2 \
	--cmdline "$(probe_cmdline boot,smp $((256 << 20)) 2)"

# 2. Each reset exits cleanly.
for e in reset-acpi reset-i8042 triplefault; do
	probe_run "sandbox-$e" "rtc" --end reset ${skip:+--skip "$skip"} -- \
		"$cove" run --sandbox --jail-dir "$jail" --kernel "$pvh" \
		--cmdline "probe=rtc probe.exit=$e"
done

# 3. --on-reboot restart rebuilds the VM inside the sandbox, again and again; SIGTERM stops it.
rc=1
detail=()
if [ -z "$skip" ]; then
	"$cove" run --sandbox --jail-dir "$jail" --on-reboot restart --kernel "$pvh" \
		--cmdline "probe=rtc probe.exit=reset-acpi" </dev/null >"$work/restart.out" 2>&1 &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 100); do
		[ "$(grep -c 'PROBE: 1 passed' "$work/restart.out")" -ge 3 ] && break
		sleep 0.1
	done
	kill -TERM "$pid"
	wait "$pid"
	st=$?
	boots=$(grep -c 'PROBE: 1 passed' "$work/restart.out")
	[ "$st" = 0 ] && [ "$boots" -ge 3 ] && rc=0
	detail=("exit $st after $boots boots" "$(tail -n 3 "$work/restart.out")")
fi
check "sandbox restart: 3 boots, then SIGTERM exits 0" $rc "${detail[@]}"

# 4. A running VMM is confined. fd 9 is inherited and must be closed.
status_of() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s ' \t' ' '; }
if [ -z "$skip" ]; then
	exec 9>"$work/inherited"
	"$cove" run --sandbox --sandbox-uid 64999 --sandbox-gid 64998 --jail-dir "$jail" \
		--kernel "$pvh" --cpus 2 --cmdline "probe=serial probe.serial_in=never" \
		</dev/null >"$work/conf.out" 2>&1 &
	pid=$!
	pids+=("$pid")
	exec 9>&-
	for _ in $(seq 100); do
		[ "$(status_of "$pid" Seccomp 2>/dev/null)" = 2 ] && break
		sleep 0.05
	done
fi
field_check() { # NAME FIELD WANTED
	local got=""
	[ -z "$skip" ] && got=$(status_of "$pid" "$2")
	[ "$got" = "$3" ]
	check "$1 ($2: $3)" $? "got '$got'"
}
field_check "sandbox: uid dropped" Uid "64999 64999 64999 64999"
field_check "sandbox: gid dropped" Gid "64998 64998 64998 64998"
field_check "sandbox: no supplementary groups" Groups ""
for f in CapEff CapPrm CapBnd CapInh CapAmb; do
	field_check "sandbox: no capabilities" $f 0000000000000000
done
field_check "sandbox: no_new_privs" NoNewPrivs 1
field_check "sandbox: seccomp filter on" Seccomp 2
rc=1
detail=()
if [ -z "$skip" ]; then
	bad=""
	for t in /proc/"$pid"/task/*; do
		s=$(sed -n 's/^Seccomp:[[:space:]]*//p' "$t/status")
		u=$(sed -n 's/^Uid:[[:space:]]*//p' "$t/status" | tr -s ' \t' ' ')
		[ "$s" = 2 ] && [ "$u" = "64999 64999 64999 64999" ] || bad="$bad $(cat "$t/comm"):$s:$u"
	done
	[ -z "$bad" ] && rc=0
	detail=("threads not confined:$bad")
fi
check "sandbox: every thread has the filter and the user" $rc "${detail[@]}"
rc=1
if [ -z "$skip" ]; then
	# Everything in the jail that is not a directory: /dev/kvm and the kernel, no more.
	files=$(cd "/proc/$pid/root" && find . ! -type d | sort | tr '\n' ' ')
	want=$(printf '%s\n' ./dev/kvm ".$(realpath "$pvh")" | sort | tr '\n' ' ')
	kvm=$(stat -c '%u %a %t:%T' "/proc/$pid/root/dev/kvm")
	fstype=$(awk '$5 == "/" { for (i = 7; i < NF; i++) if ($i == "-") print $(i + 1) }' \
		"/proc/$pid/mountinfo")
	kmount=$(awk -v k="$(realpath "$pvh")" '$5 == k { print $6 }' "/proc/$pid/mountinfo")
	[ "$files" = "$want" ] && [ "$kvm" = "64999 600 a:e8" ] && [ "$fstype" = tmpfs ] &&
		[[ $kmount == ro,nosuid,nodev,noexec* ]] && rc=0
	detail=("files: $files" "wanted: $want" "kvm: $kvm" "root fs: $fstype" "kernel: $kmount")
fi
check "sandbox: its root is the jail (its own /dev/kvm, the kernel read-only)" $rc "${detail[@]}"
rc=1
if [ -z "$skip" ]; then
	grep -q ' / / ro,' "/proc/$pid/mountinfo" && rc=0
	detail=("$(awk '$5 == "/"' "/proc/$pid/mountinfo")")
fi
check "sandbox: the jail is read-only" $rc "${detail[@]}"
for ns in mnt net ipc uts; do
	rc=1
	if [ -z "$skip" ]; then
		a=$(readlink "/proc/$pid/ns/$ns")
		b=$(readlink "/proc/self/ns/$ns")
		[ -n "$a" ] && [ "$a" != "$b" ] && rc=0
	fi
	check "sandbox: own $ns namespace" $rc "$a vs host $b"
done
rc=1
if [ -z "$skip" ]; then
	fds=$(ls -l "/proc/$pid/fd" | awk 'NR > 1 { print $NF }' | sort | tr '\n' ' ')
	case $fds in
	*"$work/inherited"*) ;;
	*/dev/kvm*) rc=0 ;; # the VMM's own are there
	esac
	detail=("fds: $fds")
fi
check "sandbox: inherited descriptors are closed" $rc "${detail[@]}"
rc=1
if [ -z "$skip" ]; then
	! mountpoint -q "$jail" && [ -z "$(ls -A "$jail")" ] && rc=0
fi
check "sandbox: the jail does not show on the host" $rc
if [ -z "$skip" ]; then
	kill -TERM "$pid"
	wait "$pid"
	st=$?
fi
check "sandbox: SIGTERM stops the confined VMM with status 0" "${st:-1}" "exit $st"

# 5. A forbidden system call (socket(), from the test hook 1.5 s after the filter is on)
#    kills that VMM with SIGSYS; a second confined VM started with it runs on and passes.
#    Both guests wait (up to 5 s) for serial input; the second gets it once the first died.
rc=1
detail=()
if [ -z "$skip" ]; then
	mkfifo "$work/b.in"
	COVE_SANDBOX_TEST_FORBIDDEN=1500 "$cove" run --sandbox --jail-dir "$jail" --kernel "$pvh" \
		--cmdline "probe=serial probe.serial_in=never" </dev/null >"$work/a.out" 2>&1 &
	a=$!
	pids+=("$a")
	"$cove" run --sandbox --jail-dir "$jail" --kernel "$pvh" --cpus 2 \
		--cmdline "probe=boot,smp,serial probe.serial_in=hello" <"$work/b.in" >"$work/b.out" 2>&1 &
	b=$!
	pids+=("$b")
	exec 8>"$work/b.in"
	wait "$a"
	st_a=$?
	kill -0 "$b" 2>/dev/null
	b_alive=$?
	printf hello >&8
	exec 8>&-
	wait "$b"
	st_b=$?
	grep -q 'PROBE: 3 passed, 0 failed' "$work/b.out"
	b_pass=$?
	grep -q 'PROBE: [0-9]* passed' "$work/a.out"
	a_done=$?
	[ "$st_a" = 159 ] && [ "$a_done" != 0 ] && rc=0
	detail=("first VM: exit $st_a (159 = SIGSYS)" "$(tail -n 2 "$work/a.out")")
fi
check "sandbox: a forbidden system call kills the VMM (SIGSYS)" $rc "${detail[@]}"
rc=1
[ -z "$skip" ] && [ "$b_alive" = 0 ] && [ "$st_b" = 0 ] && [ "$b_pass" = 0 ] && rc=0
check "sandbox: the other VM runs on and passes" $rc \
	"alive when the first died: $b_alive; exit $st_b" "$(tail -n 2 "$work/b.out" 2>/dev/null)"

# --seccomp-log: the same call (1 ms after the filter; the guest waits for its input far
# longer) is logged, not fatal.
probe_run "sandbox-seccomp-log" "serial" --input "hi" ${skip:+--skip "$skip"} -- \
	env COVE_SANDBOX_TEST_FORBIDDEN=1 "$cove" run --sandbox --seccomp-log --jail-dir "$jail" \
	--kernel "$pvh" --cmdline "probe=serial probe.serial_in=hi"

# 6. --seccomp alone, in a process its caller confined (as coved does: another user,
#    no_new_privs, its own KVM node): the guest passes; a forbidden call kills it.
if [ -z "$skip" ]; then
	mknod "$work/kvm" c 10 232 && chown 65534:65534 "$work/kvm" && chmod 600 "$work/kvm"
	chmod 755 "$work"
fi
as_nobody=(env COVE_KVM_DEV="$work/kvm" setpriv --reuid=65534 --regid=65534 --clear-groups
	--no-new-privs)
probe_run "seccomp-only" "serial" --input "hi" ${skip:+--skip "$skip"} -- \
	"${as_nobody[@]}" "$cove" run --seccomp --kernel "$pvh" --cmdline "probe=serial probe.serial_in=hi"
rc=1
if [ -z "$skip" ]; then
	COVE_SANDBOX_TEST_FORBIDDEN=300 timeout -k 5 30 "${as_nobody[@]}" "$cove" run --seccomp \
		--kernel "$pvh" --cmdline "probe=serial probe.serial_in=never" </dev/null \
		>"$work/so.out" 2>&1
	st=$?
	[ "$st" = 159 ] && rc=0
fi
check "seccomp-only: a forbidden system call kills the VMM (SIGSYS)" $rc "exit $st"

# 7. Bad options: one clear line, non-zero exit, no VM.
bad_option() { # NAME WANTED-MESSAGE ARGS...
	local name=$1 want=$2 out st
	shift 2
	rc=1
	if [ -z "$skip" ]; then
		out=$(timeout -k 5 20 "$@" </dev/null 2>&1)
		st=$?
		[ "$st" != 0 ] && [ "$st" -lt 124 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] &&
			[[ $out == *"$want"* ]] && rc=0
	fi
	check "sandbox: $name" $rc "exit $st: $out"
}
bad_option "unknown user" "sandbox-uid no-such-user-cove: no such user" \
	"$cove" run --sandbox --sandbox-uid no-such-user-cove --kernel "$pvh"
bad_option "unknown group" "sandbox-gid no-such-group-cove: no such group" \
	"$cove" run --sandbox --sandbox-gid no-such-group-cove --kernel "$pvh"
bad_option "root refused" "sandbox-uid 0: out of range" \
	"$cove" run --sandbox --sandbox-uid 0 --kernel "$pvh"
bad_option "jail dir not creatable" "jail-dir /etc/passwd/jail: cannot create it" \
	"$cove" run --sandbox --jail-dir /etc/passwd/jail --kernel "$pvh"
bad_option "not root" "--sandbox needs root" \
	setpriv --reuid=65534 --regid=65534 --clear-groups "$cove" run --sandbox --kernel "$pvh"
echo '{"sandbox": "maybe"}' >"$work/bad.json"
bad_option "bad flag value" "sandbox 'maybe': expected true or false" \
	"$cove" run --config "$work/bad.json" --kernel "$pvh"

probe_done
