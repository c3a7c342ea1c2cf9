#!/bin/bash
# Time from `covectl start` to the probe guest's first console line, against `cove run`
# started by hand (the same VMM without coved), RUNS times each; and the memory a probe
# VM of 64 MiB costs beyond its guest RAM (the VMM's peak RSS: the probe touches little
# of its RAM), with the density that implies for this host. Firecracker's figure for the
# overhead is under 5 MiB per VM.
# usage: bench/coved-start.sh [BUILDDIR] [RUNS]
set -eu
cd "$(dirname "$0")/.."
B=${1:-build}
RUNS=${2:-10}
COVE=$B/src/cli/cove
COVED=$B/src/daemon/coved
COVECTL=$B/src/cli/covectl/covectl
for f in "$COVE" "$COVED" "$COVECTL"; do [ -x "$f" ] || { echo "build first (missing $f)"; exit 1; }; done
timeout 30 "$COVE" run --memory 64 --console stdio </dev/null 2>&1 | grep -q PROBE: ||
	{ echo "coved-start: cove run does not boot the probe guest here"; exit 1; }
tmp=$(mktemp -d)
cpid=
trap '[ -n "$cpid" ] && kill $cpid 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
"$COVED" --socket "$tmp/s.sock" --state-dir "$tmp/state" --vmm "$COVE" 2>"$tmp/coved.log" &
cpid=$!
for _ in $(seq 100); do [ -S "$tmp/s.sock" ] && break; sleep 0.05; done
export COVED_SOCKET=$tmp/s.sock
echo '{"name":"probe","memory":64}' | "$COVECTL" define - >/dev/null
ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: >"$tmp/coved.t"
: >"$tmp/direct.t"
for i in $(seq "$RUNS"); do
	t0=$(ms)
	"$COVECTL" start probe >/dev/null
	until grep -q PROBE: "$tmp/state/run/probe/console.log" 2>/dev/null; do sleep 0.005; done
	echo $(( $(ms) - t0 )) >>"$tmp/coved.t"
	while "$COVECTL" list | grep -q " probe "; do sleep 0.02; done
	: >"$tmp/direct.out"
	t0=$(ms)
	"$COVE" run --memory 64 --console "file:$tmp/direct.out" </dev/null 2>/dev/null &
	until grep -q PROBE: "$tmp/direct.out" 2>/dev/null; do sleep 0.005; done
	echo $(( $(ms) - t0 )) >>"$tmp/direct.t"
	wait $!
done
c=$(median <"$tmp/coved.t")
d=$(median <"$tmp/direct.t")
echo "start to first probe line (median of $RUNS): covectl start ${c} ms, cove run by hand ${d} ms"
awk -v a="$c" -v b="$d" 'BEGIN { if (b > 0) printf "ratio covectl/cove run: %.2f\n", a / b }'
rss=$(python3 - "$COVE" <<'PY'
import resource, subprocess, sys
subprocess.run([sys.argv[1], "run", "--memory", "64", "--console", "none"],
               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
)
avail=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
echo "VMM peak RSS for a 64 MiB probe VM: $((rss / 1024)) MiB ($rss KiB; Firecracker: < 5 MiB overhead)"
echo "idle 64 MiB VMs this host could hold if each touched all its RAM: $((avail / (65536 + rss)))"
