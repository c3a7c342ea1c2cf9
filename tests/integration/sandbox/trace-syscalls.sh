#!/bin/bash
# Lists the system calls (and ioctl requests) `cove run --sandbox` makes once its seccomp
# filter is on, over every exit path of the probe guest: the raw material of the allow-list
# in src/vmm/sandbox_filter.c. Run by hand as root (not a test):
#   tests/integration/sandbox/trace-syscalls.sh build/src/cli/cove build/tests/guest/probe-pvh.elf [ARGS...]
# Extra ARGS (e.g. --disk path=...,--rng) are passed to every run, to cover more devices.
set -u
cove=${1:?usage: trace-syscalls.sh COVE PROBE_PVH [ARGS...]}
pvh=${2:?usage: trace-syscalls.sh COVE PROBE_PVH [ARGS...]}
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() { # NAME, then cove run's arguments; stdin is the caller's
	strace -f -qq -o "$work/$1.trace" "$cove" run --sandbox "${@:2}" >"$work/$1.out" 2>&1
}
head -c 100000 /dev/urandom >"$work/initrd"
(sleep 2; printf hello) | run tests --kernel "$pvh" --initrd "$work/initrd" --cpus 4 "$@" \
	--cmdline "probe=boot,initrd,acpi,smp,timer,rtc,serial,exitloop probe.serial_in=hello"
for e in reset-acpi reset-i8042 reset-cf9 triplefault; do
	run "$e" --kernel "$pvh" --cmdline "probe=rtc probe.exit=$e" "$@" </dev/null
done
run restart --on-reboot restart --kernel "$pvh" --cmdline "probe=rtc probe.exit=reset-acpi" \
	"$@" </dev/null &
sleep 3
# SIGTERM to the VMM (strace's child), not to strace.
kill -TERM "$(pgrep -P "$(pgrep -P $! strace)" cove)"
wait
# Ctrl-A X needs a terminal: script(1) gives it one.
(sleep 2; printf '\001x') | script -qfc "strace -f -qq -o $work/ctrla.trace $cove run --sandbox \
	--kernel $pvh --cmdline 'probe=serial probe.serial_in=x' $*" /dev/null >/dev/null 2>&1

# Everything after the successful TSYNC seccomp() call.
for t in "$work"/*.trace; do
	sed -n '/seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC.* = 0$/,$p' "$t" |
		tail -n +2 >"$t.after"
done
cat "$work"/*.after | grep -oE '^[0-9]+ +[a-z0-9_]+\(' | tr -d '(' | awk '{ print "syscall", $2 }' |
	sort -u
cat "$work"/*.after | grep -oE 'ioctl\([0-9]+, [A-Za-z0-9_]+' | awk '{ print "ioctl  ", $2 }' |
	sort -u
