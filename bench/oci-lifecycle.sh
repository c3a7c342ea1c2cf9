#!/bin/bash
# create + start + wait + delete of a container running /bin/true, and `run` of the same,
# cove-runc vs runc on the same busybox bundle: ROUNDS rounds (default 5) of N containers
# (default 20) each, the runtimes alternating which goes first at every container. Prints
# min/median/max over the rounds of the time per container and of peak RSS, and the ratio
# of medians.
# usage: bench/oci-lifecycle.sh [BUILDDIR] [N] [ROUNDS]   (as root; ROUNDS: default $ROUNDS or 5)
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
N=${2:-20}
ROUNDS=${3:-${ROUNDS:-5}}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
COVE=$BUILD/src/cli/cove
RUNC_REF=${RUNC_REF:-/usr/sbin/runc}
[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
[ -x "$COVE" ] || { echo "bench: build first ($COVE missing)" >&2; exit 1; }
[ -x "$RUNC_REF" ] || { echo "bench: $RUNC_REF missing (apt-get install runc)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }

T=$(mktemp -d /tmp/cove-oci-bench.XXXXXX)
trap 'rm -rf "$T"; rmdir /sys/fs/cgroup/*/cove-bench /sys/fs/cgroup/unified/cove-bench 2>/dev/null || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ln -s "$COVE" "$T/cove-runc"
B=$T/bundle
mkdir -p "$B/rootfs/bin" "$B/rootfs/proc" "$B/rootfs/dev" "$B/rootfs/sys" "$B/rootfs/tmp"
cp /bin/busybox "$B/rootfs/bin/"
ln -s busybox "$B/rootfs/bin/true"
ln -s busybox "$B/rootfs/bin/sh"
(cd "$B" && "$COVE" oci spec)
jq '.process.args = ["/bin/true"] | .process.terminal = false | .linux.cgroupsPath = "/cove-bench/c"' "$B/config.json" >"$B/c" &&
	mv "$B/c" "$B/config.json"

die() {
	echo "bench: $*" >&2
	exit 1
}
# step RUNTIME NAME ARGS...: one runtime invocation; a failure aborts the whole bench (a failing
# runtime must not record a fast round), with the runtime's own message.
step() {
	local rt=$1 name=$2
	shift 2
	"$rt" --root "$T/root-$name" "$@" </dev/null >"$T/out" 2>&1 ||
		die "$name: '$*' failed (exit $?): $(tail -3 "$T/out")"
}
# cycle RUNTIME NAME ID: create, start, wait for init to exit, delete. Prints ns taken.
cycle() {
	local rt=$1 name=$2 id=$3 s e pid deadline
	rm -f "$T/pid"
	s=$(date +%s%N)
	step "$rt" "$name" create --bundle "$B" --pid-file "$T/pid" "$id"
	pid=$(cat "$T/pid" 2>/dev/null) || die "$name: create wrote no pid file"
	[ -n "$pid" ] || die "$name: empty pid file"
	step "$rt" "$name" start "$id"
	deadline=$((SECONDS + 10))
	while [ -e "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; do
		[ $SECONDS -lt $deadline ] || die "$name: init $pid did not exit within 10 s"
	done
	step "$rt" "$name" delete "$id"
	e=$(date +%s%N)
	echo $((e - s))
}
# run_once RUNTIME NAME ID: `run` does the same in one invocation.
run_once() {
	local s e rc
	s=$(date +%s%N)
	(cd "$B" && "$1" --root "$T/root-$2" run "$3" </dev/null >"$T/out" 2>&1) && rc=0 || rc=$?
	e=$(date +%s%N)
	[ $rc -eq 0 ] || die "$2: run $3 failed (exit $rc): $(tail -3 "$T/out")"
	echo $((e - s))
}
# rss RUNTIME NAME ARGS...: peak RSS in KiB of one invocation (fails like step).
rss() {
	local rt=$1 name=$2
	shift 2
	(cd "$B" && /usr/bin/time -o "$T/rss" -f %M "$rt" --root "$T/root-$name" "$@" </dev/null >"$T/out" 2>&1) ||
		die "$name: '$*' failed under /usr/bin/time: $(tail -3 "$T/out")"
	tail -1 "$T/rss"
}
peak_rss() { # each call is checked: a failing runtime stops the benchmark
	local rt=$1 name=$2 peak=0 c s d v
	rm -f "$T/pid"
	c=$(rss "$rt" "$name" create --bundle "$B" --pid-file "$T/pid" "$name-x") || exit 1
	s=$(rss "$rt" "$name" start "$name-x") || exit 1
	d=$(rss "$rt" "$name" delete --force "$name-x") || exit 1
	for v in "$c" "$s" "$d"; do
		if [ "$v" -gt "$peak" ]; then peak=$v; fi
	done
	echo "$peak"
}

# The machine is shared and noisy: the runtimes take turns going first, container by
# container, so both see the same load.
S=$T/samples
k=0
for r in $(seq "$ROUNDS"); do
	declare -A cyc=([cove]=0 [runc]=0) one=([cove]=0 [runc]=0)
	for i in $(seq "$N"); do
		for name in $(python3 bench/benchlib.py order "$k" cove runc); do
			rt=$RUNC_REF
			[ "$name" = cove ] && rt=$T/cove-runc
			t=$(cycle "$rt" "$name" "c$r-$i") || exit 1
			cyc[$name]=$((cyc[$name] + t))
			t=$(run_once "$rt" "$name" "r$r-$i") || exit 1
			one[$name]=$((one[$name] + t))
		done
		k=$((k + 1))
	done
	for name in $(python3 bench/benchlib.py order "$r" cove runc); do
		rt=$RUNC_REF
		[ "$name" = cove ] && rt=$T/cove-runc
		awk -v t="$name" -v c="${cyc[$name]}" -v o="${one[$name]}" -v n="$N" 'BEGIN {
			printf "create, start, wait, delete (3 invocations), ms\t%s\t%.3f\n", t, c / n / 1e6
			printf "run (create+start+wait+delete in one), ms\t%s\t%.3f\n", t, o / n / 1e6 }' >>"$S"
		v=$(peak_rss "$rt" "$name") || exit 1
		printf 'peak RSS of create, start or delete, KiB\t%s\t%s\n' "$name" "$v" >>"$S"
		v=$(rss "$rt" "$name" run "$name-rss$r") || exit 1
		printf 'peak RSS of run, KiB\t%s\t%s\n' "$name" "$v" >>"$S"
	done
done
python3 bench/benchlib.py table "$S" --tools cove,runc \
	--title "oci lifecycle of /bin/true, per container, $N containers a round"
echo "target: cove/this <= 0.50 for the times"
printf 'load average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
