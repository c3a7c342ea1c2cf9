#!/bin/bash
# kill -9 of coved in the middle of a burst of definitions loses nothing that was
# acknowledged: every VM that got 201 is there after a restart, and the store is sound.
set -u
. "$(dirname "$0")/lib.sh"
start_coved || { echo "Bail out! coved did not start"; exit 1; }
acked=$TMP/acked
: >"$acked"
for round in 1 2 3; do
	for i in $(seq 1 40); do
		(
			name=r$round-$i
			code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" \
				-X POST -d "{\"name\":\"$name\",\"cpus\":2}" http://x/v1/vms)
			[ "$code" = 201 ] && echo "$name" >>"$acked"
		) &
	done
	sleep 0.$((RANDOM % 4 + 4))
	kill9_coved
	wait
	start_coved || { echo "Bail out! coved did not restart"; exit 1; }
	missing=0
	listed=$(curl -s --unix-socket "$SOCK" http://x/v1/vms)
	while read -r name; do
		grep -q "\"name\":\"$name\"" <<<"$listed" || missing=$((missing + 1))
	done <"$acked"
	check "round $round: every acknowledged definition survived kill -9 ($(wc -l <"$acked") so far)" '[ $missing -eq 0 ]'
done
check "definitions were acknowledged in the bursts ($(wc -l <"$acked") of 120), so the kills hit work in flight" '[ "$(wc -l <"$acked")" -gt 0 ]'

# A VM that crashes while coved is down is reported when coved comes back.
echo '{"name":"lonely"}' | "$COVECTL" define - >/dev/null
"$COVECTL" start lonely >/dev/null
wait_for '[ -p "$STATE/run/lonely/console.in" ]'
kill9_coved
echo crash >"$STATE/run/lonely/console.in"
wait_for '[ -e "$STATE/run/lonely/exit" ]'
start_coved || { echo "Bail out! coved did not restart"; exit 1; }
check "a crash while coved was down is reported on restart" 'wait_for "events \"?vm=lonely\" | grep -q \"exit status 3\""'
check "the store passes an integrity check" '[ "$(sqlite3 "$STATE/coved.db" "PRAGMA integrity_check")" = ok ]'
check "the store is in WAL mode" '[ "$(sqlite3 "$STATE/coved.db" "PRAGMA journal_mode")" = wal ]'
check "the schema is versioned" '[ "$(sqlite3 "$STATE/coved.db" "PRAGMA user_version")" -ge 1 ]'
echo "1..$n"
