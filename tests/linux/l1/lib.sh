# shellcheck shell=sh
# Helpers for L1's scenarios: boot an L2 guest under Cove, watch its console, report.
#
# A scenario is a function s_NAME in one of the s_*.sh files, listed in test.list (or
# bench.list). It reports each of its results with report NAME [REASON] (no reason: ok).

K=/a/l2/vmlinuz-cloud
KG=/a/l2/vmlinuz-generic
KPVH=/a/l2/vmlinux-cloud
I=/a/l2/initrd-cloud
IG=/a/l2/initrd-generic
TOOLS=/a/l2/tools.img
ROOTFS=/a/l2/rootfs.img
W=/w
CMDBASE="console=ttyS0 reboot=acpi panic=-1 quiet"

arg() {
	for w in $(cat /proc/cmdline); do
		case $w in rig.$1=*) echo "${w#rig.$1=}"; return ;; esac
	done
}

# report NAME [REASON]: one result; a failure shows the end of the last log.
report() {
	if [ -z "$2" ]; then
		echo "RIG: ok $1"
	else
		echo "RIG: not ok $1 # $2"
		[ -n "$LOG" ] && [ -f "$LOG" ] && tail -n 15 "$LOG" | sed 's/^/RIG: info   | /'
	fi
}
info() { echo "RIG: info $*"; }

# Guest facts from the last log.
l2info() { sed -n "s/^L2: info $1=//p" "$LOG" | tail -n 1; }
l2ok() { grep -q "^L2: ok $1\$" "$LOG"; }
l2why() { # the reason the guest gave for check $1, or that it did not report
	l2ok "$1" && return
	r=$(sed -n "s/^L2: not ok $1 # //p" "$LOG" | tail -n 1)
	echo "${r:-guest did not report $1}"
}
has() { grep -q "$1" "$LOG"; }

# l2start NAME SECONDS CHECKS END [cove run options]: boots L2 in the background with
# rig.t=CHECKS rig.end=END, console to $W/NAME.log, input from the fifo on fd 3. A watchdog
# kills it after SECONDS. Defaults: the cloud bzImage and initramfs, 256M, and the tools
# disk last; set KERNEL, INITRD (empty: none), XCMD (more command line) to change them.
l2start() {
	name=$1 secs=$2 checks=$3 end=$4
	shift 4
	LOG=$W/$name.log
	rm -f "$W/$name.in"
	mkfifo "$W/$name.in"
	k=${KERNEL-$K} i=${INITRD-$I}
	set -- --kernel "$k" ${i:+--initrd "$i"} --memory 256M "$@" \
		--disk "path=$TOOLS,readonly=on,id=tools" \
		--cmdline "$CMDBASE rig.t=$checks rig.end=$end $XCMD"
	T0=$(date +%s)
	cove run "$@" <"$W/$name.in" >"$LOG" 2>&1 &
	PID=$!
	exec 3>"$W/$name.in"
	(sleep "$secs"; kill -9 $PID 2>/dev/null) &
	WD=$!
}

# l2wait: waits for the VMM to end; RC is its exit status (137 when the watchdog fired).
# A VMM that outlives its watchdog by 30 s is reported (with where it is stuck in the
# kernel) and left behind, so one stuck run cannot hang the suite.
l2wait() {
	while kill -0 $PID 2>/dev/null; do
		if [ $(($(date +%s) - T0)) -gt $((secs + 30)) ]; then
			info "VMM $PID of $name would not die: state $(awk '/^State/ {print $2}' /proc/$PID/status), wchan $(cat /proc/$PID/wchan 2>/dev/null)"
			for t in /proc/$PID/task/*; do
				info "  thread ${t##*/}: $(tr '\n' ' ' <$t/stack 2>/dev/null | cut -c1-300)"
			done
			RC=124
			exec 3>&-
			sed -i 's/\r$//' "$LOG"
			SECS=$(($(date +%s) - T0))
			return
		fi
		sleep 0.2
	done
	wait $PID
	RC=$?
	exec 3>&-
	kill $WD 2>/dev/null
	wait $WD 2>/dev/null
	sed -i 's/\r$//' "$LOG"
	SECS=$(($(date +%s) - T0))
}

# l2run NAME SECONDS CHECKS END [options]: l2start + l2wait.
l2run() {
	l2start "$@"
	l2wait
}

# wait_for PATTERN SECONDS: until the log has a line matching PATTERN.
wait_for() {
	n=0
	while [ $n -lt $(($2 * 5)) ]; do
		tr -d '\r' <"$LOG" | grep -q "$1" && return 0
		kill -0 $PID 2>/dev/null || { tr -d '\r' <"$LOG" | grep -q "$1"; return; }
		sleep 0.2
		n=$((n + 1))
	done
	return 1
}

# The usual verdict of a run that should power off cleanly: status 0 and the guest's end.
clean_end() {
	[ "$RC" = 0 ] || { echo "cove exited $RC"; return; }
	grep -q '^L2: end' "$LOG" || echo "the guest did not reach its end"
}

# file_sum FILE [BYTES [OFFSET]]: sha256 of a range.
file_sum() {
	if [ -n "$2" ]; then
		dd if="$1" bs=65536 skip=$((${3:-0} / 65536)) count=$(($2 / 65536)) 2>/dev/null | sha256sum | cut -c1-64
	else
		sha256sum <"$1" | cut -c1-64
	fi
}
gen_sum() { rigtool gen "$1" "$2" | sha256sum | cut -c1-64; }

# api METHOD PATH [BODY]: one request to $W/api.sock; status code then body on stdout.
api() { rigtool http $W/api.sock "$@"; }
