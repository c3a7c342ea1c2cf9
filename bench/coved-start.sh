#!/bin/bash
# 1. Time from `covectl start` to the probe guest's first console line, against `cove run`
#    started by hand (the same VMM without coved), RUNS times each.
# 2. Density: starts up to VMS idle probe VMs of 64 MiB through coved (the guest runs its
#    boot test and halts: probe.exit=halt), as many as this host's free memory allows,
#    measures what each costs beyond its guest RAM (PSS of its VMM and shim, from
#    /proc/PID/smaps_rollup, minus the guest RAM mapping's share) and projects how many
#    such VMs this host's memory holds. Firecracker's figure: under 5 MiB per VM.
# usage: bench/coved-start.sh [BUILDDIR] [RUNS (10)] [VMS (20)]
set -eu
cd "$(dirname "$0")/.."
B=${1:-build}
RUNS=${2:-10}
VMS=${3:-20}
COVE=$B/src/cli/cove
COVED=$B/src/daemon/coved
COVECTL=$B/src/cli/covectl/covectl
for f in "$COVE" "$COVED" "$COVECTL"; do [ -x "$f" ] || { echo "build first (missing $f)"; exit 1; }; done
timeout 30 "$COVE" run --memory 64 --console stdio </dev/null 2>&1 | grep -q PROBE: ||
	{ echo "coved-start: cove run does not boot the probe guest here"; exit 1; }
tmp=$(mktemp -d)
cpid=
started=()
cleanup() {
	for v in "${started[@]}"; do "$COVECTL" destroy "$v" >/dev/null 2>&1 || true; done
	[ -n "$cpid" ] && kill "$cpid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
"$COVED" --socket "$tmp/s.sock" --state-dir "$tmp/state" --vmm "$COVE" 2>"$tmp/coved.log" &
cpid=$!
for _ in $(seq 100); do [ -S "$tmp/s.sock" ] && break; sleep 0.05; done
export COVED_SOCKET=$tmp/s.sock
ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# wait_grep FILE PATTERN SECONDS: polls, and gives up with a message.
wait_grep() {
	local end=$(( $(ms) + $3 * 1000 ))
	until grep -q "$2" "$1" 2>/dev/null; do
		[ "$(ms)" -lt "$end" ] || { echo "coved-start: no '$2' in $1 within $3 s"; return 1; }
		sleep 0.005
	done
}

echo '{"name":"probe","memory":64}' | "$COVECTL" define - >/dev/null
: >"$tmp/coved.t"
: >"$tmp/direct.t"
for i in $(seq "$RUNS"); do
	t0=$(ms)
	"$COVECTL" start probe >/dev/null
	wait_grep "$tmp/state/run/probe/console.log" PROBE: 30
	echo $(( $(ms) - t0 )) >>"$tmp/coved.t"
	end=$(( $(ms) + 30000 ))
	while "$COVECTL" list | grep -q " probe "; do
		[ "$(ms)" -lt "$end" ] || { echo "coved-start: the probe VM did not end"; exit 1; }
		sleep 0.02
	done
	: >"$tmp/direct.out"
	t0=$(ms)
	"$COVE" run --memory 64 --console "file:$tmp/direct.out" </dev/null 2>/dev/null &
	wait_grep "$tmp/direct.out" PROBE: 30
	echo $(( $(ms) - t0 )) >>"$tmp/direct.t"
	wait $!
done
c=$(median <"$tmp/coved.t")
d=$(median <"$tmp/direct.t")
echo "start to first probe line (median of $RUNS): covectl start ${c} ms, cove run by hand ${d} ms"
awk -v a="$c" -v b="$d" 'BEGIN { if (b > 0) printf "ratio covectl/cove run: %.2f\n", a / b }'

# -- density: idle VMs of 64 MiB, bounded by VMS and by free memory (1 GiB kept free)
avail=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
by_mem=$(( (avail - 1048576) / (65536 + 32768) ))
n=$(( VMS < by_mem ? VMS : by_mem ))
[ "$n" -ge 1 ] || { echo "density: not enough free memory for one more VM"; exit 0; }
for i in $(seq "$n"); do
	v=idle$i
	echo "{\"name\":\"$v\",\"memory\":64,\"cmdline\":\"probe=boot probe.exit=halt\"}" |
		"$COVECTL" define - >/dev/null
	"$COVECTL" start "$v" >/dev/null
	started+=("$v")
	wait_grep "$tmp/state/run/$v/console.log" "PROBE: halting" 60
done
sleep 1
# Per VM: PSS of VMM + shim, the guest RAM mapping's PSS (the mapping of 64 MiB), and
# its RSS (how much of its RAM the guest touched).
for v in "${started[@]}"; do
	vmm=$("$COVECTL" --json info "$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
	shim=$(cut -d' ' -f1 "$tmp/state/sup/$v/pid")
	python3 - "$vmm" "$shim" <<'PY'
import sys
def pss(pid):
    for line in open("/proc/%s/smaps_rollup" % pid):
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0
guest_pss = guest_rss = 0
size = 0
for line in open("/proc/%s/smaps" % sys.argv[1]):
    f = line.split()
    if f[0] == "Size:":
        size = int(f[1])
    elif size == 65536 and f[0] == "Rss:":
        guest_rss += int(f[1])
    elif size == 65536 and f[0] == "Pss:":
        guest_pss += int(f[1])
total = pss(sys.argv[1]) + pss(sys.argv[2])
print(total - guest_pss, guest_rss)
PY
done >"$tmp/cost"
held=$(wc -l <"$tmp/cost")
over=$(awk '{print $1}' "$tmp/cost" | median)
touched=$(awk '{print $2}' "$tmp/cost" | median)
total=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
echo "idle 64 MiB probe VMs held through coved: $held (asked $VMS, free memory allowed $by_mem)"
awk -v o="$over" -v t="$touched" 'BEGIN { printf "cost beyond guest RAM per VM (median, VMM + shim PSS): %.1f MiB (Firecracker: < 5 MiB); guest RAM touched: %.1f MiB\n", o / 1024, t / 1024 }'
awk -v o="$over" -v t="$touched" -v m="$total" 'BEGIN {
	printf "projected for this host (%.1f GiB): %d VMs if each touched all 64 MiB, %d at the RAM they touch idle\n",
		m / 1048576, m / (65536 + o), m / (t + o) }'
