#!/bin/bash
# coved under load: CLIENTS (200) concurrent API clients on its Unix socket for SECONDS
# (10), against /v1/vms, /v1/vms/NAME and /v1/host with 20 VMs defined; then the same
# load on a VM's own Firecracker-style API socket (GET /, /vm/config). Must report 0
# failures; prints p50/p99 latency. No reference daemon (libvirtd) is installed here, so
# the second line is the comparison point: the thinnest server built on the same plumbing.
# usage: bench/coved-load.sh [BUILDDIR] [CLIENTS] [SECONDS]
set -eu
cd "$(dirname "$0")/.."
B=${1:-build}
CLIENTS=${2:-200}
SECS=${3:-10}
LOAD=$B/tests/integration/daemon/coved-load
for f in "$B/src/daemon/coved" "$LOAD" "$B/tests/integration/daemon/fc-api-double"; do
	[ -x "$f" ] || { echo "coved-load: build first (missing $f)"; exit 1; }
done
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT
ulimit -n 8192 2>/dev/null || true
"$B/src/daemon/coved" --socket "$tmp/coved.sock" --state-dir "$tmp/state" \
	--vmm "$PWD/tests/integration/daemon/fake-vmm.sh" 2>"$tmp/coved.log" &
pids+=($!)
"$B/tests/integration/daemon/fc-api-double" "$tmp/fc.sock" &
pids+=($!)
for _ in $(seq 100); do [ -S "$tmp/coved.sock" ] && [ -S "$tmp/fc.sock" ] && break; sleep 0.05; done
for i in $(seq 20); do
	curl -s -o /dev/null --unix-socket "$tmp/coved.sock" -X POST \
		-d "{\"name\":\"vm$i\",\"cpus\":2,\"memory\":256}" http://x/v1/vms
done
echo "== coved: $CLIENTS clients for $SECS s (GET /v1/vms, /v1/vms/vm7, /v1/host)"
c=$("$LOAD" "$tmp/coved.sock" "$CLIENTS" "$SECS" /v1/vms /v1/vms/vm7 /v1/host) || true
echo "$c"
echo "== VM API socket (fc_api, test double): $CLIENTS clients for $SECS s (GET /, /vm/config)"
f=$("$LOAD" "$tmp/fc.sock" "$CLIENTS" "$SECS" / /vm/config) || true
echo "$f"
p50c=$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$c" | head -1)
p50f=$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$f" | head -1)
awk -v a="$p50c" -v b="$p50f" 'BEGIN { if (b > 0) printf "p50 ratio coved / VM socket: %.2f\n", a / b }'
fc=$(sed -n 's/.*failures=\([0-9]*\).*/\1/p' <<<"$c")
ff=$(sed -n 's/.*failures=\([0-9]*\).*/\1/p' <<<"$f")
p99c=$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$c")
echo "coved: p50 ${p50c:-?} ms, p99 ${p99c:-?} ms, failed requests: ${fc:-?} (VM socket: ${ff:-?})"
[ "${fc:-1}" = 0 ] && [ "${ff:-1}" = 0 ] || { echo "coved-load: FAILED requests"; exit 1; }
