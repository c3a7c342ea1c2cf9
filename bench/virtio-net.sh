#!/bin/bash
# virtio-net transmit throughput: the probe guest keeps the transmit ring full of 1400-byte
# frames from a loop at CPL3 (polling, EVENT_IDX); the frames go out through a tap in a network
# namespace this script makes and removes (nothing leaves it). Cove vs QEMU q35
# (virtio-net-pci, tap, vhost=off: this host has no vhost-net). ROUNDS rounds, the order
# alternating; min/median/max, ratio of medians. Needs root.
# usage: bench/virtio-net.sh [BUILDDIR] [FRAMES] [ROUNDS]   (ROUNDS: default $ROUNDS or 5)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
frames=${2:-100000}
rounds=${3:-${ROUNDS:-5}}
cove=$build/src/cli/cove
guest=$build/tests/guest/probe-pvh.elf
if [ ! -x "$cove" ] || [ ! -f "$guest" ]; then
	echo "build first: scripts/build $build" >&2
	exit 1
fi
[ "$(id -u)" = 0 ] || { echo "needs root (ip netns, tap)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 is not installed" >&2; exit 1; }
ns=cove-nb-$$
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ip -n "$ns" tuntap add dev nbtap0 mode tap
ip -n "$ns" link set nbtap0 up
python3 - "$cove" "$guest" "$frames" "$rounds" "$ns" <<'PY'
import re, subprocess, sys
sys.path.insert(0, "bench")
from benchlib import Samples, order
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
s = Samples(cmds)
for r in range(rounds):
    for name in order(r, s.tools):
        before = rx_packets()
        p = subprocess.run(["ip", "netns", "exec", ns] + cmds[name], capture_output=True,
                           text=True, timeout=600)
        m = pat.search(p.stdout)
        if p.returncode != 0 or not m:
            sys.exit(f"{name}: exit status {p.returncode}, no vnetbench result:\n"
                     f"{p.stdout[-2000:]}{p.stderr[-1000:]}")
        s.add("Mbit/s", name, int(m.group(2)))
        s.add("kicks/frame", name, int(m.group(3)) / frames)
        s.add("frames the host saw", name, rx_packets() - before)
s.table(f"virtio-net transmit, {frames} frames of 1400 bytes", higher={"Mbit/s"},
        neutral={"frames the host saw"})
PY
