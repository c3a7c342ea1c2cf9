# Shared helpers of coved's integration tests: TAP counters, a coved in a temp dir.
# Needs COVED, COVECTL, FAKE_VMM in the environment (set by meson).
: "${COVED:?set by meson}" "${COVECTL:?set by meson}" "${FAKE_VMM:?set by meson}"
for t in sqlite3 curl python3; do
	command -v $t >/dev/null || { echo "SKIP: $t is not installed (apt-get install $t)"; exit 77; }
done
TMP=$(mktemp -d /tmp/coved-test.XXXXXX)
SOCK=$TMP/coved.sock
STATE=$TMP/state
export COVED_SOCKET=$SOCK
COVED_PID=
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
FAILED=0
notok() { n=$((n + 1)); FAILED=1; echo "not ok $n - $1"; }
check() { if eval "$2"; then ok "$1"; else notok "$1"; fi; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

# start_coved [VMM] [extra options...]: starts coved and waits for its socket.
start_coved() {
	local vmm=${1:-$FAKE_VMM}
	shift || true
	rm -f "$SOCK"
	"$COVED" --socket "$SOCK" --state-dir "$STATE" --vmm "$vmm" --timeout 2 "$@" \
		2>>"$TMP/coved.log" &
	COVED_PID=$!
	for _ in $(seq 100); do
		[ -S "$SOCK" ] && curl -s -m 1 --unix-socket "$SOCK" http://x/v1/version >/dev/null && return 0
		sleep 0.05
	done
	echo "# coved did not come up; log:" && sed 's/^/# /' "$TMP/coved.log"
	return 1
}

stop_coved() { # SIGTERM: VMs keep running
	[ -n "$COVED_PID" ] && kill "$COVED_PID" 2>/dev/null && wait "$COVED_PID" 2>/dev/null
	COVED_PID=
}

kill9_coved() {
	[ -n "$COVED_PID" ] && kill -9 "$COVED_PID" 2>/dev/null && wait "$COVED_PID" 2>/dev/null
	COVED_PID=
}

# Kills the VMM processes this test started (recorded by coved), by pid.
cleanup() {
	local p
	for p in "$STATE"/run/*/; do
		[ -d "$p" ] || continue
		local name=$(basename "$p")
		local pid=$(sqlite3 "$STATE/coved.db" "SELECT vmm_pid FROM runtime WHERE name='$name'" 2>/dev/null)
		[ -n "$pid" ] && [ "$pid" != 0 ] && kill -9 "$pid" 2>/dev/null
		# The shim's pid file names the VMM even where the store does not.
		[ -f "$STATE/sup/$name/pid" ] && kill -9 "$(cut -d' ' -f2 "$STATE/sup/$name/pid")" 2>/dev/null
	done
	stop_coved
	[ "$FAILED" = 1 ] && [ -f "$TMP/coved.log" ] && grep -v "^  \|Shadow\|=>\|0x0" "$TMP/coved.log" | tail -n 40 | sed 's/^/# coved: /'
	rm -rf "$TMP"
}
trap cleanup EXIT

# api METHOD PATH [BODY]: prints "STATUS BODY"
api() {
	local out
	if [ $# -ge 3 ]; then
		out=$(curl -s -m 5 --unix-socket "$SOCK" -X "$1" -H 'Content-Type: application/json' \
			--data-binary "$3" -w '\n%{http_code}' "http://x$2")
	else
		out=$(curl -s -m 5 --unix-socket "$SOCK" -X "$1" -w '\n%{http_code}' "http://x$2")
	fi
	echo "${out##*$'\n'} ${out%$'\n'*}"
}

# wait_for CMD [TENTHS]: polls until CMD succeeds.
wait_for() {
	local i
	for i in $(seq "${2:-300}"); do
		eval "$1" && return 0
		sleep 0.1
	done
	return 1
}

events() { curl -s -m 5 --unix-socket "$SOCK" "http://x/v1/events$1"; }
