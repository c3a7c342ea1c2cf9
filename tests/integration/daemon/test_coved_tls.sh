#!/bin/bash
# coved's access: the Unix socket for root and one group; TCP only with TLS and a bearer
# token (loopback only). Prints TAP.
set -u
command -v openssl >/dev/null || { echo "SKIP: openssl is not installed (for a test certificate)"; exit 77; }
. "$(dirname "$0")/lib.sh"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" \
	-days 1 -subj /CN=localhost >/dev/null 2>&1 || { echo "SKIP: openssl cannot make a certificate"; exit 77; }
echo "0123456789abcdef-test-token" >"$TMP/token"
port=$((20000 + $$ % 20000))
grp=$(getent group nogroup >/dev/null && echo nogroup || echo root)
start_coved "$FAKE_VMM" --group "$grp" --listen 127.0.0.1:$port --tls-cert "$TMP/cert.pem" \
	--tls-key "$TMP/key.pem" --token-file "$TMP/token" || { echo "Bail out! coved did not start"; exit 1; }
wait_for "curl -sk -o /dev/null https://127.0.0.1:$port/v1/version"
check "the Unix socket belongs to root and group $grp, mode 0660" '[ "$(stat -c "%U:%G %a" "$SOCK")" = "root:$grp 660" ]'
code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer 0123456789abcdef-test-token" https://127.0.0.1:$port/v1/host)
check "HTTPS with the token: 200" '[ "$code" = 200 ]'
code=$(curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1:$port/v1/host)
check "HTTPS without a token: 401" '[ "$code" = 401 ]'
code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong" https://127.0.0.1:$port/v1/host)
check "HTTPS with a wrong token: 401" '[ "$code" = 401 ]'
code=$(curl -s -m 3 -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/v1/host)
check "plain HTTP on the TCP port is refused" '[ "$code" != 200 ]'
out=$(timeout 5 "$COVED" --socket "$TMP/x.sock" --state-dir "$TMP/x" --listen 127.0.0.1:$((port + 1)) 2>&1)
rc=$?
check "TCP without TLS and a token does not start" '[ $rc = 2 ] && grep -q "needs" <<<"$out"'
echo "1..$n"
