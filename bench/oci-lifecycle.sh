#!/bin/bash
# create + start + wait + delete of a container running /bin/true, N times in sequence,
# cove-runc vs runc on the same busybox bundle. Prints both times, the ratio and peak RSS.
# usage: bench/oci-lifecycle.sh [BUILDDIR] [N]   (as root)
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
N=${2:-100}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
COVE=$BUILD/src/cli/cove
RUNC_REF=${RUNC_REF:-/usr/sbin/runc}
[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
[ -x "$COVE" ] || { echo "bench: build first ($COVE missing)" >&2; exit 1; }
[ -x "$RUNC_REF" ] || { echo "bench: $RUNC_REF missing (apt-get install runc)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }

T=$(mktemp -d /tmp/cove-oci-bench.XXXXXX)
trap 'rm -rf "$T"; rmdir /sys/fs/cgroup/*/cove-bench /sys/fs/cgroup/unified/cove-bench 2>/dev/null || true' EXIT
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

# The machine is shared and noisy: alternate the runtimes so both see the same load.
cove_ns=0 runc_ns=0 cove_run=0 runc_run=0
for i in $(seq "$N"); do
	t=$(cycle "$T/cove-runc" cove "c$i") || exit 1
	cove_ns=$((cove_ns + t))
	t=$(cycle "$RUNC_REF" runc "c$i") || exit 1
	runc_ns=$((runc_ns + t))
	t=$(run_once "$T/cove-runc" cove "r$i") || exit 1
	cove_run=$((cove_run + t))
	t=$(run_once "$RUNC_REF" runc "r$i") || exit 1
	runc_run=$((runc_run + t))
done
cove_rss=$(peak_rss "$T/cove-runc" cove) || exit 1
runc_rss=$(peak_rss "$RUNC_REF" runc) || exit 1
cove_run_rss=$(rss "$T/cove-runc" cove run cove-rss) || exit 1
runc_run_rss=$(rss "$RUNC_REF" runc run runc-rss) || exit 1
ms() { echo $(($1 / 1000000)); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" 'BEGIN { print (r <= 0.50) ? "meets the 0.50 target" : "misses the 0.50 target" }'; }
r4=$(ratio $cove_ns $runc_ns)
r1=$(ratio $cove_run $runc_run)
printf '%-44s %10s %10s %7s\n' "oci lifecycle, $N containers of /bin/true" cove-runc runc ratio
printf '%-44s %7d ms %7d ms %7s  %s\n' "create, start, wait, delete (3 invocations)" "$(ms $cove_ns)" "$(ms $runc_ns)" "$r4" "$(verdict "$r4")"
printf '%-44s %7d ms %7d ms %7s  %s\n' "run (create+start+wait+delete in one)" "$(ms $cove_run)" "$(ms $runc_run)" "$r1" "$(verdict "$r1")"
printf '%-44s %6d KiB %6d KiB\n' "peak RSS of create, start or delete" "$cove_rss" "$runc_rss"
printf '%-44s %6d KiB %6d KiB\n' "peak RSS of run" "$cove_run_rss" "$runc_run_rss"
printf 'load average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
