#!/bin/bash
# Exit handling: port-I/O exits per second from a guest loop at CPL3 (the probe guest's
# exitloop test), Cove vs QEMU microvm. Two ports: 0x80 (the POST/io-delay port: Cove
# completes its writes in the kernel with an ioeventfd, QEMU in its process) and 0x99 (no
# device in either: every write is a full exit to the VMM process in both). ROUNDS rounds,
# the order alternating; min/median/max, ratio of medians.
# usage: bench/vmm-exits.sh [BUILDDIR] [LOOPS] [ROUNDS]   (ROUNDS: default $ROUNDS or 5)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
loops=${2:-20000}
rounds=${3:-${ROUNDS:-5}}
cove=$build/src/cli/cove
guest=$build/tests/guest/probe-pvh.elf
if [ ! -x "$cove" ] || [ ! -f "$guest" ]; then
	echo "build first: scripts/build $build" >&2
	exit 1
fi
command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 is not installed" >&2; exit 1; }
exec python3 - "$cove" "$guest" "$loops" "$rounds" <<'PY'
import re, subprocess, sys
sys.path.insert(0, "bench")
from benchlib import Samples, order
cove, guest, loops, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def cmd(name, port):
    cmdline = f"probe=exitloop probe.loops={loops} probe.port={port}"
    if name == "cove":
        return [cove, "run", "--kernel", guest, "--cmdline", cmdline, "--log-level", "error"]
    return ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-nodefaults",
            "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot", "-m", "256M",
            "-kernel", guest, "-append", cmdline]
s = Samples(["cove", "qemu"])
for port in ["0x80", "0x99"]:
    for r in range(rounds):
        for name in order(r, s.tools):
            p = subprocess.run(cmd(name, port), capture_output=True, text=True, timeout=300)
            m = re.search(r"PROBE: ok exitloop: .* (\d+) exits/s", p.stdout)
            if p.returncode != 0 or not m:
                sys.exit(f"{name}: exit status {p.returncode}, no exitloop result:\n"
                         f"{p.stdout[-2000:]}{p.stderr[-1000:]}")
            s.add(f"exits/s from CPL3, port {port}", name, int(m.group(1)))
s.table(f"port-I/O exits, {loops} a run", higher=set(s.data))
print("target: cove/this >= 1.00")
PY
