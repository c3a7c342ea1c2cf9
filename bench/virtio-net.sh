#!/bin/bash
# virtio-net transmit throughput: the probe guest keeps the transmit ring full of 1400-byte
# frames from a loop at CPL3 (polling, EVENT_IDX); the frames go out through a tap in a network
# namespace this script makes and removes (nothing leaves it). Cove vs QEMU q35
# (virtio-net-pci, tap, vhost=off: this host has no vhost-net), medians of ROUNDS. Needs root.
# usage: bench/virtio-net.sh [BUILDDIR] [FRAMES] [ROUNDS]
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
frames=${2:-100000}
rounds=${3:-3}
cove=$build/src/cli/cove
guest=$build/tests/guest/probe-pvh.elf
if [ ! -x "$cove" ] || [ ! -f "$guest" ]; then
	echo "build first: scripts/build $build" >&2
	exit 1
fi
[ "$(id -u)" = 0 ] || { echo "needs root (ip netns, tap)" >&2; exit 1; }
ns=cove-nb-$$
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
ip -n "$ns" tuntap add dev nbtap0 mode tap
ip -n "$ns" link set nbtap0 up
python3 - "$cove" "$guest" "$frames" "$rounds" "$ns" <<'PY'
import re, statistics, subprocess, sys
cove, guest, frames, rounds, ns = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
cmdline = f"probe=vnetbench probe.bench_frames={frames}"
mac = "52:54:00:c0:7e:55"
cmds = {
    "cove": [cove, "run", "--kernel", guest, "--memory", "256M", "--cmdline", cmdline,
             "--net", f"tap=nbtap0,mac={mac}", "--log-level", "error"],
    "qemu": ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-nodefaults",
             "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot", "-m", "256",
             "-kernel", guest, "-append", cmdline,
             "-netdev", "tap,id=n0,ifname=nbtap0,script=no,downscript=no,vhost=off",
             "-device", f"virtio-net-pci,netdev=n0,mac={mac},disable-legacy=on"],
}
def rx_packets():
    return int(subprocess.run(["ip", "netns", "exec", ns, "cat",
                               "/sys/class/net/nbtap0/statistics/rx_packets"],
                              capture_output=True, text=True, check=True).stdout)
pat = re.compile(r"vnetbench: \d+ frames of 1400 bytes: (\d+) frames/s, (\d+) Mbit/s, (\d+) kicks")
res = {k: {"Mbit/s": [], "kicks/frame": [], "host saw": []} for k in cmds}
for _ in range(rounds):
    for name, cmd in cmds.items():
        before = rx_packets()
        out = subprocess.run(["ip", "netns", "exec", ns] + cmd, capture_output=True, text=True,
                             timeout=600).stdout
        m = pat.search(out)
        if not m:
            sys.exit(f"{name}: no vnetbench result:\n{out[-2000:]}")
        res[name]["Mbit/s"].append(int(m.group(2)))
        res[name]["kicks/frame"].append(int(m.group(3)) / frames)
        res[name]["host saw"].append(rx_packets() - before)
print(f"virtio-net transmit, {frames} frames of 1400 bytes, {rounds} rounds (medians)")
print(f"{'':14}{'cove':>12}{'qemu':>12}{'cove/qemu':>11}")
for k in ["Mbit/s", "kicks/frame", "host saw"]:
    c, q = statistics.median(res["cove"][k]), statistics.median(res["qemu"][k])
    f = (lambda x: f"{x:12.3f}") if k == "kicks/frame" else (lambda x: f"{x:12.0f}")
    print(f"{k:14}{f(c)}{f(q)}{(c / q if q else 0):11.2f}")
PY
