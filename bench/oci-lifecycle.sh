#!/bin/bash
# create + start + wait + delete of a container running /bin/true, N times in sequence,
# cove-runc vs runc on the same busybox bundle. Prints both times, the ratio and peak RSS.
# usage: bench/oci-lifecycle.sh [BUILDDIR] [N]   (as root)
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
N=${2:-100}
COVE=$PWD/$BUILD/src/cli/cove
RUNC_REF=${RUNC_REF:-/usr/sbin/runc}
[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
[ -x "$COVE" ] || { echo "bench: build first ($COVE missing)" >&2; exit 1; }
[ -x "$RUNC_REF" ] || { echo "bench: $RUNC_REF missing (apt-get install runc)" >&2; exit 1; }

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

# cycle RUNTIME NAME ID: create, start, wait for init to exit, delete. Prints ns taken.
cycle() {
	local rt=$1 root=$T/root-$2 id=$3 s e pid
	s=$(date +%s%N)
	"$rt" --root "$root" create --bundle "$B" --pid-file "$T/pid" "$id" </dev/null >/dev/null 2>&1
	pid=$(cat "$T/pid")
	"$rt" --root "$root" start "$id"
	while [ -e "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; do :; done
	"$rt" --root "$root" delete "$id"
	e=$(date +%s%N)
	echo $((e - s))
}
# run_once RUNTIME NAME ID: `run` does the same in one invocation.
run_once() {
	local s e
	s=$(date +%s%N)
	(cd "$B" && "$1" --root "$T/root-$2" run "$3" </dev/null)
	e=$(date +%s%N)
	echo $((e - s))
}
peak_rss() {
	local rt=$1 root=$T/root-$2 peak=0 rss
	for cmd in "create --bundle $B --pid-file $T/pid $2-x" "start $2-x" "delete --force $2-x"; do
		/usr/bin/time -o "$T/rss" -f %M "$rt" --root "$root" $cmd </dev/null >/dev/null 2>&1
		rss=$(tail -1 "$T/rss")
		[ "$rss" -gt "$peak" ] 2>/dev/null && peak=$rss
	done
	echo "$peak"
}

# The machine is shared and noisy: alternate the runtimes so both see the same load.
cove_ns=0 runc_ns=0 cove_run=0 runc_run=0
for i in $(seq "$N"); do
	cove_ns=$((cove_ns + $(cycle "$T/cove-runc" cove "c$i")))
	runc_ns=$((runc_ns + $(cycle "$RUNC_REF" runc "c$i")))
	cove_run=$((cove_run + $(run_once "$T/cove-runc" cove "r$i")))
	runc_run=$((runc_run + $(run_once "$RUNC_REF" runc "r$i")))
done
cove_rss=$(peak_rss "$T/cove-runc" cove)
runc_rss=$(peak_rss "$RUNC_REF" runc)
ms() { echo $(($1 / 1000000)); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '%-44s %10s %10s %7s\n' "oci lifecycle, $N containers of /bin/true" cove-runc runc ratio
printf '%-44s %7d ms %7d ms %7s\n' "create+start+wait+delete (4 invocations)" "$(ms $cove_ns)" "$(ms $runc_ns)" "$(ratio $cove_ns $runc_ns)"
printf '%-44s %7d ms %7d ms %7s\n' "run (create+start+wait+delete in one)" "$(ms $cove_run)" "$(ms $runc_run)" "$(ratio $cove_run $runc_run)"
printf '%-44s %6d KiB %6d KiB\n' "peak RSS of one runtime invocation" "$cove_rss" "$runc_rss"
printf 'load average: %s (target: ratio <= 0.50)\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
