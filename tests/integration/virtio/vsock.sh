#!/bin/bash
# virtio-vsock under `cove run`: the probe guest's vvsock test against vsock_host.py through
# Firecracker's Unix-socket host side (guest to host with a half-close; host to guest with
# 64 KiB through 4 KiB receive buffers, then the host's close seen as a SHUTDOWN; 512 KiB from
# the guest, within its credit, to a host that reads nothing for a second and then slowly), and
# the host side's own verdict. QEMU has no counterpart here (vhost-vsock needs /dev/vhost-vsock).
# TAP output. Env: COVE, PROBE_PVH (set by meson).
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/guest/probe-lib.sh
. "$here/../guest/probe-lib.sh"

cove=${COVE:?set COVE to the cove binary}
pvh=${PROBE_PVH:?set PROBE_PVH to the probe guest PVH ELF}
work=$(mktemp -d)
vpid=
trap '[ -n "$vpid" ] && kill "$vpid" 2>/dev/null; rm -rf "$work"' EXIT

skip=""
probe_kvm_ok || skip="/dev/kvm unavailable"

if [ -z "$skip" ]; then
	python3 "$here/vsock_host.py" "$work/vs.sock" >"$work/vs.out" 2>&1 &
	vpid=$!
	for _ in $(seq 50); do [ -S "$work/vs.sock_1234" ] && break; sleep 0.1; done
fi
probe_run cove-vsock vvsock ${skip:+--skip "$skip"} -- "$cove" run --kernel "$pvh" \
	--vsock "cid=3,uds=$work/vs.sock" --cmdline probe=vvsock
if [ -z "$skip" ]; then
	if wait "$vpid"; then
		probe_tap ok "cove-vsock host side: $(tail -n 1 "$work/vs.out")"
	else
		probe_tap "not ok" "cove-vsock host side: $(tr '\n' ' ' <"$work/vs.out")"
	fi
	vpid=
fi
probe_tap ok "qemu-q35-vsock vvsock" "SKIP QEMU's vhost-vsock-pci needs /dev/vhost-vsock, which this machine lacks"

probe_done
