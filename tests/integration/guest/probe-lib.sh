# shellcheck shell=bash
# probe-lib.sh: runs the probe guest under any VMM and turns its PROBE lines into TAP.
# Source it from a bash test script. It works the same for QEMU and for `cove run`:
#
#   . tests/integration/guest/probe-lib.sh
#   probe_kvm_ok || reason="no usable /dev/kvm"
#   cmdline=$(probe_cmdline "boot,acpi,smp,initrd,serial" 268435456 2 initrd.img "hello")
#   probe_run "cove-pvh" "boot acpi smp initrd serial" --input "hello" -- \
#       cove run --kernel probe-pvh.elf --initrd initrd.img --cpus 2 --memory 256M --cmdline "$cmdline"
#   probe_done
#
# probe_run prints one TAP line per expected test ("<label> <test>") plus "<label> poweroff"
# (the command exited 0 after the guest's summary line, without a failed poweroff; with
# --end NAME the line is called NAME, e.g. "reset" for runs with probe.exit=reset-*). With
# --expect-fail, each listed test must report FAIL (tests of the tests). With --skip REASON,
# every line is a TAP skip (for example when /dev/kvm is unavailable).
# Environment: PROBE_TIMEOUT (seconds per run, default 60), PROBE_VERBOSE=1 echoes guest output.

PROBE_TAP_N=${PROBE_TAP_N:-0}
PROBE_LAST_OUTPUT=
PROBE_LAST_SECONDS=
PROBE_FAILED_AT=

probe_tap() { # $1: ok|not ok, $2: description, $3: optional directive/comment
	PROBE_TAP_N=$((PROBE_TAP_N + 1))
	[ "$1" = "not ok" ] && PROBE_FAILED_AT=$PROBE_TAP_N
	if [ -n "${3:-}" ]; then
		echo "$1 $PROBE_TAP_N - $2 # $3"
	else
		echo "$1 $PROBE_TAP_N - $2"
	fi
}

# True when /dev/kvm can be opened for reading and writing.
probe_kvm_ok() {
	[ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]
}

# zlib crc32 of a file, as 8 hex digits (the value probe.initrd_crc wants).
probe_crc32() {
	python3 -c 'import sys, zlib; print("%08x" % zlib.crc32(open(sys.argv[1], "rb").read()))' "$1"
}

# probe_cmdline TESTS [MEM_BYTES [CPUS [INITRD [SERIAL_IN [LOOPS]]]]]: a guest command line.
# It ends with probe.cmdline_len=<its own length>, so the boot test sees a cut or padded line.
# PROBE_RSDP_HINT=1 adds probe.rsdp_hint=1: the boot data must give the RSDP's address
# (QEMU's PVH entry does; its bzImage path through firmware leaves the field 0).
probe_cmdline() {
	local s="probe=$1" len tail
	[ -n "${2:-}" ] && s="$s probe.mem=$2"
	[ -n "${3:-}" ] && s="$s probe.cpus=$3"
	[ -n "${4:-}" ] && s="$s probe.initrd_crc=$(probe_crc32 "$4")"
	[ -n "${5:-}" ] && s="$s probe.serial_in=$5"
	[ -n "${6:-}" ] && s="$s probe.loops=$6"
	[ "${PROBE_RSDP_HINT:-0}" = 1 ] && s="$s probe.rsdp_hint=1"
	len=${#s}
	while :; do
		tail=" probe.cmdline_len=$len"
		[ $((${#s} + ${#tail})) -eq "$len" ] && break
		len=$((${#s} + ${#tail}))
	done
	echo "$s$tail"
}

# Runs COMMAND with output to OUT and stdin from a pipe; writes INPUT once the guest prints
# "PROBE: waiting for ... serial input" (input sent earlier could be eaten by firmware or lost
# when the guest resets the UART FIFO). Returns the command's exit status.
probe_feed() { # $1: input, $2: output file, then COMMAND...
	local input=$1 out=$2 dir pid fd i
	shift 2
	dir=$(mktemp -d)
	mkfifo "$dir/in"
	timeout -k 5 "${PROBE_TIMEOUT:-60}" "$@" <"$dir/in" >"$out" 2>&1 &
	pid=$!
	exec {fd}>"$dir/in"
	for ((i = 0; i < ${PROBE_TIMEOUT:-60} * 20; i++)); do
		grep -a -q 'PROBE: waiting for .* serial input' "$out" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	# A subshell ignoring SIGPIPE: the VMM may have exited without reading.
	(trap '' PIPE; printf '%s' "$input" >&"$fd") 2>/dev/null
	exec {fd}>&-
	wait "$pid"
	local rc=$?
	rm -rf "$dir"
	return $rc
}

# probe_run LABEL "TEST..." [--input STR] [--expect-fail] [--skip REASON] [--end NAME] -- COMMAND...
probe_run() {
	local label=$1 tests=$2 input="" expect_fail=0 skip="" t line rc out start end first
	local ending=poweroff
	shift 2
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do
		case $1 in
		--input) input=$2; shift 2 ;;
		--expect-fail) expect_fail=1; shift ;;
		--skip) skip=$2; shift 2 ;;
		--end) ending=$2; shift 2 ;;
		*) echo "probe_run: unknown option $1" >&2; return 2 ;;
		esac
	done
	[ "${1:-}" = "--" ] && shift
	if [ -n "$skip" ]; then
		for t in $tests; do probe_tap ok "$label $t" "SKIP $skip"; done
		[ $expect_fail = 1 ] || probe_tap ok "$label $ending" "SKIP $skip"
		return 0
	fi
	first=$PROBE_TAP_N
	out=$(mktemp)
	start=$(date +%s%N)
	if [ -n "$input" ]; then
		probe_feed "$input" "$out" "$@"
		rc=$?
	else
		timeout -k 5 "${PROBE_TIMEOUT:-60}" "$@" </dev/null >"$out" 2>&1
		rc=$?
	fi
	end=$(date +%s%N)
	PROBE_LAST_SECONDS=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
	PROBE_LAST_OUTPUT=$(tr -d '\r' <"$out" | grep -a -v '^qemu-system-x86_64: warning: host doesn.t support')
	rm -f "$out"
	[ "${PROBE_VERBOSE:-0}" = 1 ] && printf '%s\n' "$PROBE_LAST_OUTPUT" | sed 's/^/# /'
	echo "# $label: exit $rc after ${PROBE_LAST_SECONDS}s"
	for t in $tests; do
		line=$(printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -a -E "PROBE: (ok|FAIL|SKIP) $t(:|\$)" | head -n 1)
		line=${line#*PROBE: }
		if [ $expect_fail = 1 ]; then
			case $line in
			"FAIL $t"*) probe_tap ok "$label $t fails as it must" ;;
			"") probe_tap "not ok" "$label $t: no result line (exit $rc)" ;;
			*) probe_tap "not ok" "$label $t should have failed: $line" ;;
			esac
			continue
		fi
		case $line in
		"ok $t"*) probe_tap ok "$label $t${line#ok "$t"}" ;;
		"SKIP $t"*) probe_tap ok "$label $t" "SKIP ${line#SKIP "$t": }" ;;
		"FAIL $t"*) probe_tap "not ok" "$label $t: ${line#FAIL "$t": }" ;;
		*) probe_tap "not ok" "$label $t: no result line (exit $rc)" ;;
		esac
	done
	if [ $expect_fail = 0 ]; then
		if [ $rc -ne 0 ]; then
			probe_tap "not ok" "$label $ending: exit status $rc"
		elif ! printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -a -q -E 'PROBE: ([0-9]+ passed, [0-9]+ failed|demo done)'; then
			probe_tap "not ok" "$label $ending: exited before the summary line"
		elif printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -a -q -E 'PROBE: (poweroff failed|probe.exit had no effect)'; then
			probe_tap "not ok" "$label $ending: $(printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -a -E 'PROBE: (poweroff failed|probe.exit had no effect)' | head -n 1 | sed 's/.*PROBE: //')"
		else
			probe_tap ok "$label $ending"
		fi
	fi
	if [ "$PROBE_TAP_N" -gt "$first" ] && [ -n "$PROBE_FAILED_AT" ] && [ "$PROBE_FAILED_AT" -gt "$first" ]; then
		echo "# $label: last lines of output:"
		printf '%s\n' "$PROBE_LAST_OUTPUT" | tail -n 15 | sed 's/^/#   /'
	fi
	return 0
}

# Prints the TAP plan (at the end, which TAP allows).
probe_done() {
	echo "1..$PROBE_TAP_N"
}
