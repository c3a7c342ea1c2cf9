#!/bin/bash
# Slow and greedy API clients: a request dripped one byte a second (never idle long
# enough for the idle timeout) is cut off at the request deadline with 408 while other
# clients are served; a user who opens too many connections on the read-only socket is
# refused the extra one with 429; a WebSocket console client that sends half a frame is
# cut off. Prints TAP.
set -u
. "$(dirname "$0")/lib.sh"
SLOW="python3 $(dirname "$0")/slowclient.py"
# Idle timeout 2 s (from lib.sh), requests must be in within 3 s.
start_coved "$FAKE_VMM" --request-timeout 3 || { echo "Bail out! coved did not start"; exit 1; }

$SLOW drip "$SOCK" header >"$TMP/drip1" &
drip1=$!
$SLOW drip "$SOCK" body >"$TMP/drip2" &
drip2=$!
# Served meanwhile: 20 requests, each within its own 2 s.
served=0
for i in $(seq 20); do
	code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://x/v1/host)
	[ "$code" = 200 ] && served=$((served + 1))
	sleep 0.1
done
wait $drip1 $drip2
check "other clients are served while two drip ($served of 20)" '[ $served = 20 ]'
r1=$(cat "$TMP/drip1")
r2=$(cat "$TMP/drip2")
after() { sed -n 's/.*after=\([0-9]*\).*/\1/p' <<<"$1"; }
check "dripped headers: cut off with 408 at the deadline ($r1)" '[[ $r1 == status=408* ]] && [ "$(after "$r1")" -ge 2 ] && [ "$(after "$r1")" -le 6 ]'
check "dripped body: cut off with 408 at the deadline ($r2)" '[[ $r2 == status=408* ]] && [ "$(after "$r2")" -ge 2 ] && [ "$(after "$r2")" -le 6 ]'
check "the dripped definition was not stored" '! "$COVECTL" list --all | grep -q dripped'

if command -v setpriv >/dev/null && getent passwd nobody >/dev/null && [ "$(id -u)" = 0 ]; then
	chmod 711 "$TMP"
	as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	r=$("${as_nobody[@]}" $SLOW hold "$SOCK.ro" 16)
	check "read-only socket: a 17th connection of one user is refused with 429 ($r)" '[[ $r == extra=429* ]]'
	check "its 16 idle connections are closed by the idle timeout ($r)" 'grep -q "held_cut=16" <<<"$r"'
	code=$("${as_nobody[@]}" curl -s -m 2 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK.ro" http://x/v1/vms)
	check "then that user is served again ($code)" '[ "$code" = 200 ]'
else
	skip "read-only socket: per-user connection cap" "needs root, setpriv and user nobody"
fi

echo '{"name":"ws"}' | "$COVECTL" define - >/dev/null
"$COVECTL" start ws >/dev/null
wait_for 'curl -s --unix-socket "$SOCK" http://x/v1/vms/ws/console | grep -q "boot ok"'
r=$($SLOW wshalf "$SOCK" ws)
closed=$(sed -n 's/.*closed_after=\([0-9]*\).*/\1/p' <<<"$r")
check "console: half a WebSocket frame ends the session within its 5 s ($r)" '[[ $r == upgraded=True* ]] && [ -n "$closed" ] && [ "$closed" -le 8 ]'
code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://x/v1/vms/ws)
check "coved still serves after all that ($code)" '[ "$code" = 200 ]'
"$COVECTL" destroy ws >/dev/null
echo "1..$n"
