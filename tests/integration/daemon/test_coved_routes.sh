#!/bin/bash
# Every operation docs/api.yaml describes answers on a live coved with the status this
# test expects for its request, and that status is one the document lists for the
# operation; every route coved serves is in docs/api.yaml. Prints TAP.
set -u
. "$(dirname "$0")/lib.sh"
: "${API_YAML:?set by meson}"
python3 -c 'import yaml' 2>/dev/null || { echo "SKIP: python3-yaml is not installed"; exit 77; }
start_coved || { echo "Bail out! coved did not start"; exit 1; }
curl -s --unix-socket "$SOCK" -X POST -d '{"name":"web"}' http://x/v1/vms >/dev/null
curl -s --unix-socket "$SOCK" -X POST -d '{"name":"gone"}' http://x/v1/vms >/dev/null
curl -s --unix-socket "$SOCK" -X POST -d '{"name":"vol1","size":1048576}' http://x/v1/storage/volumes >/dev/null
# "METHOD PATH CODES" for each operation of the document, CODES comma-separated.
ops=$(python3 - "$API_YAML" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for path, item in doc["paths"].items():
    for method, op in item.items():
        if method in ("get", "put", "post", "delete", "patch"):
            print(method.upper(), path, ",".join(sorted(str(c) for c in op["responses"])))
PY
)
count=$(wc -l <<<"$ops")
check "docs/api.yaml lists operations ($count)" '[ "$count" -ge 15 ]'
# The request made for each operation, in this order (later ones depend on earlier
# ones): "METHOD PATH | URL | BODY | EXPECTED".
plan='POST /v1/vms | /v1/vms | {"name":"web2"} | 201
PUT /v1/vms/{name} | /v1/vms/web | {"name":"web","cpus":2} | 200
GET /v1/vms/{name} | /v1/vms/web | | 200
GET /v1/vms | /v1/vms | | 200
POST /v1/vms/{name}/actions/{action} | /v1/vms/web/actions/start | | 204
GET /v1/vms/{name}/stats | /v1/vms/web/stats | | 200
GET /v1/vms/{name}/console | /v1/vms/web/console | | 200
GET /v1/events | /v1/events?vm=web | | 200
GET /v1/version | /v1/version | | 200
GET /v1/host | /v1/host | | 200
POST /v1/storage/volumes | /v1/storage/volumes | {"name":"vol2","size":4096} | 201
GET /v1/storage/volumes | /v1/storage/volumes | | 200
DELETE /v1/storage/volumes/{name} | /v1/storage/volumes/vol1 | | 204
GET /v1/networks | /v1/networks | | 200
GET /v1/networks/{name} | /v1/networks/default | | 200
DELETE /v1/vms/{name} | /v1/vms/gone | | 204'
while IFS='|' read -r op url body want; do
	op=$(xargs <<<"$op")
	url=$(xargs <<<"$url")
	want=$(xargs <<<"$want")
	body=${body# }
	body=${body% }
	codes=$(awk -v m="${op%% *}" -v p="${op#* }" '$1 == m && $2 == p { print $3 }' <<<"$ops")
	if [ -z "$codes" ]; then
		notok "$op: in the test's plan but not in docs/api.yaml"
		continue
	fi
	args=(-s -m 5 -o "$TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X "${op%% *}")
	[ -n "$body" ] && args+=(-d "$body")
	code=$(curl "${args[@]}" "http://x$url")
	check "$op: $code as expected ($want), a status the document lists ($codes)" \
		'[ "$code" = "$want" ] && grep -qw "$code" <<<"${codes//,/ }"'
done <<<"$plan"
unplanned=$(while read -r m p _; do grep -q "^$m $p |" <<<"$plan" || echo "$m $p;"; done <<<"$ops")
check "every operation in the document is exercised${unplanned:+ (not: $unplanned)}" '[ -z "$unplanned" ]'
"$COVECTL" destroy web >/dev/null
# The other direction: coved's route table against the document.
served=$(strings "$COVED" | grep -E '^/v1/' | sort -u)
undocumented=
for r in $served; do grep -q "^  $r:" "$API_YAML" || undocumented="$undocumented $r"; done
check "every route coved serves is documented${undocumented:+ (missing:$undocumented)}" '[ -z "$undocumented" ]'
echo "1..$n"
