#!/bin/bash
# Drives a VM's Firecracker-compatible API socket with curl --unix-socket, the way a
# Firecracker client would, against the VMM test double. Prints TAP.
set -u
DOUBLE=${FC_API_DOUBLE:?set by meson}
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
tmp=$(mktemp -d)
sock=$tmp/api.sock
"$DOUBLE" "$sock" "$tmp/ops.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done

n=0
# check NAME EXPECTED_STATUS METHOD PATH [BODY] [GREP]
check() {
	local name=$1 want=$2 method=$3 path=$4 body=${5-} pat=${6-} out code
	n=$((n + 1))
	if [ -n "$body" ]; then
		out=$(curl -s -m 5 --unix-socket "$sock" -X "$method" -H 'Content-Type: application/json' \
			-d "$body" -w '\n%{http_code}' "http://localhost$path")
	else
		out=$(curl -s -m 5 --unix-socket "$sock" -X "$method" -w '\n%{http_code}' "http://localhost$path")
	fi
	code=${out##*$'\n'}
	out=${out%$'\n'*}
	if [ "$code" = "$want" ] && { [ -z "$pat" ] || grep -q -- "$pat" <<<"$out"; }; then
		echo "ok $n - $name"
	else
		echo "not ok $n - $name (status $code, body: $out)"
	fi
}

echo "1..25"
check "GET / before boot" 200 GET / "" '"state":"Not started"'
check "InstanceStart without a kernel" 400 PUT /actions '{"action_type":"InstanceStart"}' 'fault_message'
check "PUT /boot-source" 204 PUT /boot-source '{"kernel_image_path":"/boot/vmlinux","boot_args":"console=ttyS0"}'
check "PUT /machine-config" 204 PUT /machine-config '{"vcpu_count":2,"mem_size_mib":256}'
check "machine-config impossible vcpu_count" 400 PUT /machine-config '{"vcpu_count":0,"mem_size_mib":256}' 'vcpu_count'
check "machine-config unknown field named" 400 PUT /machine-config '{"vcpu_count":1,"mem_size_mib":64,"vcpus":1}' "unknown field 'vcpus'"
check "PUT /drives/rootfs" 204 PUT /drives/rootfs '{"drive_id":"rootfs","path_on_host":"/img/root.ext4","is_root_device":true,"is_read_only":false}'
check "PUT /network-interfaces/eth0" 204 PUT /network-interfaces/eth0 '{"iface_id":"eth0","guest_mac":"AA:FC:00:00:00:01","host_dev_name":"tap0"}'
check "PUT /vsock" 204 PUT /vsock '{"guest_cid":3,"uds_path":"/tmp/v.sock"}'
check "PUT /balloon" 204 PUT /balloon '{"amount_mib":0,"deflate_on_oom":true}'
check "PUT /logger" 204 PUT /logger '{"log_path":"/tmp/fc.log","level":"Info"}'
check "PUT /metrics" 204 PUT /metrics '{"metrics_path":"/tmp/fc.metrics"}'
check "malformed JSON" 400 PUT /boot-source '{"kernel_image_path": ' 'malformed JSON'
check "InstanceStart" 204 PUT /actions '{"action_type":"InstanceStart"}'
check "GET / after boot" 200 GET / "" '"state":"Running"'
check "pre-boot-only change after start" 400 PUT /boot-source '{"kernel_image_path":"/k"}' 'not supported after starting'
check "PATCH /vm Paused" 204 PATCH /vm '{"state":"Paused"}'
check "PATCH /vm Resumed" 204 PATCH /vm '{"state":"Resumed"}'
check "SendCtrlAltDel" 204 PUT /actions '{"action_type":"SendCtrlAltDel"}'
check "GET /vm/config" 200 GET /vm/config "" '"path_on_host":"\\/img\\/root.ext4"'
check "PATCH /drives after boot: 400 in Firecracker's terms" 400 PATCH /drives/rootfs '{"drive_id":"rootfs","path_on_host":"/x"}' 'not supported'
check "GET /machine-config" 200 GET /machine-config "" '"vcpu_count":2'
check "unknown path: 400, as Firecracker answers it" 400 GET /snapshot/create "" 'Invalid request method and\\/or path: GET snapshot\\/create\.'
check "wrong method: 400, as Firecracker answers it" 400 PUT /vm '{"state":"Paused"}' 'Invalid request method and\\/or path: PUT vm\.'
n=$((n + 1))
if grep -q '^start kernel=/boot/vmlinux cpus=2 mem=256 drives=1 nics=1$' "$tmp/ops.log" &&
	grep -q '^pauses$' "$tmp/ops.log" && grep -q '^ctrl_alt_dels$' "$tmp/ops.log"; then
	echo "ok $n - the VMM double saw start(config), pause, ctrl-alt-del"
else
	echo "not ok $n - ops log: $(tr '\n' ';' <"$tmp/ops.log")"
fi
