#!/bin/bash
# Every route that docs/api.yaml describes answers on a live coved (neither 404 nor 405),
# and every route coved serves is in docs/api.yaml.
set -u
. "$(dirname "$0")/lib.sh"
: "${API_YAML:?set by meson}"
start_coved || { echo "Bail out! coved did not start"; exit 1; }
curl -s --unix-socket "$SOCK" -X POST -d '{"name":"web"}' http://x/v1/vms >/dev/null
curl -s --unix-socket "$SOCK" -X POST -d '{"name":"vol1","size":1048576}' http://x/v1/storage/volumes >/dev/null
# "METHOD PATH" for each operation, in file order; deletes last so the objects exist.
routes=$(awk '
	/^  \/v1\// { path = $1; sub(":$", "", path); next }
	/^    (get|put|post|delete|patch):/ { m = $1; sub(":$", "", m); print toupper(m), path }
' "$API_YAML" | sort -s -k1,1 -r)
count=$(wc -l <<<"$routes")
check "docs/api.yaml lists routes ($count)" '[ "$count" -ge 15 ]'
while read -r method path; do
	p=${path//\{name\}/web}
	p=${p//\{action\}/stop}
	[[ $path == /v1/storage/volumes/* ]] && p=${path//\{name\}/vol1}
	[[ $path == /v1/networks/* ]] && p=${path//\{name\}/default}
	body=
	case "$method $path" in
	"POST /v1/vms") body='{"name":"web2"}' ;;
	"PUT /v1/vms/{name}") body='{"name":"web","cpus":2}' ;;
	"POST /v1/storage/volumes") body='{"name":"vol2","size":4096}' ;;
	esac
	if [ -n "$body" ]; then
		code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X "$method" -d "$body" "http://x$p")
	else
		code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X "$method" "http://x$p")
	fi
	check "$method $path answers ($code)" '[ "$code" != 404 ] && [ "$code" != 405 ] && [ "$code" != 000 ]'
done <<<"$routes"
# The other direction: coved's route table against the document.
served=$(strings "$COVED" | grep -E '^/v1/' | sort -u)
undocumented=
for r in $served; do grep -q "^  $r:" "$API_YAML" || undocumented="$undocumented $r"; done
check "every route coved serves is documented${undocumented:+ (missing:$undocumented)}" '[ -z "$undocumented" ]'
echo "1..$n"
