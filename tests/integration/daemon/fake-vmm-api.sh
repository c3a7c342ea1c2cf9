#!/bin/bash
# A stand-in for a `cove run` that has --api-sock: serves the VM API socket with the
# VMM test double (fc-api-double), boots it through the API as a Firecracker client
# would, prints like the probe guest, and powers off when the API's shutdown arrives.
if [ "${2-}" = "--help" ]; then
	echo "usage: fake-vmm-api run [--cpus N] [--memory M] [--disk path=P] [--api-sock PATH]"
	exit 0
fi
sock=
disks=()
while [ $# -gt 0 ]; do
	[ "$1" = --api-sock ] && sock=$2
	[ "$1" = --disk ] && disks+=("${2#path=}")
	shift
done
[ -n "$sock" ] || { echo "fake-vmm-api: no --api-sock" >&2; exit 2; }
ops=${sock%/*}/ops.log
"${FC_API_DOUBLE:?}" "$sock" "$ops" &
dbl=$!
trap 'kill $dbl 2>/dev/null' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.02; done
c() { curl -s -o /dev/null --unix-socket "$sock" -X "$1" -d "$3" "http://x$2"; }
c PUT /boot-source '{"kernel_image_path":"/probe"}'
for i in "${!disks[@]}"; do
	c PUT "/drives/disk$i" "{\"drive_id\":\"disk$i\",\"path_on_host\":\"${disks[$i]%%,*}\",\"is_root_device\":false,\"is_read_only\":false}"
done
c PUT /actions '{"action_type":"InstanceStart"}'
echo "PROBE: booted through the API socket"
until grep -q '^shutdowns$' "$ops" 2>/dev/null; do sleep 0.05; done
echo "PROBE: power button pressed, powering off"
exit 0
