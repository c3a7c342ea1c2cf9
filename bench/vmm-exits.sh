#!/bin/bash
# Exit handling: port-I/O exits per second from a guest loop at CPL3 (the probe guest's
# exitloop test), Cove vs QEMU microvm, alternating. Two ports: 0x80 (the POST/io-delay port:
# Cove completes its writes in the kernel with an ioeventfd, QEMU in its process) and 0x99
# (no device in either: every write is a full exit to the VMM process in both).
# usage: bench/vmm-exits.sh [BUILDDIR] [LOOPS] [ROUNDS]
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
loops=${2:-20000}
rounds=${3:-3}
cove=$build/src/cli/cove
guest=$build/tests/guest/probe-pvh.elf
if [ ! -x "$cove" ] || [ ! -f "$guest" ]; then
	echo "build first: scripts/build $build" >&2
	exit 1
fi
exec python3 - "$cove" "$guest" "$loops" "$rounds" <<'PY'
import re, statistics, subprocess, sys
cove, guest, loops, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def cmds(port):
    cmdline = f"probe=exitloop probe.loops={loops} probe.port={port}"
    return {
        "cove": [cove, "run", "--kernel", guest, "--cmdline", cmdline, "--log-level", "error"],
        "qemu": ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-nodefaults",
                 "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot", "-m", "256M",
                 "-kernel", guest, "-append", cmdline],
    }
print(f"{'median of ' + str(rounds) + ' x ' + str(loops) + ' exits':<36}{'cove':>10}{'qemu':>10}{'ratio':>8}")
for port, what in [("0x80", "exits/s from CPL3, port 0x80"), ("0x99", "exits/s from CPL3, port 0x99")]:
    rates = {"cove": [], "qemu": []}
    for _ in range(rounds):
        for name, cmd in cmds(port).items():
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
            m = re.search(r"PROBE: ok exitloop: .* (\d+) exits/s", out)
            if not m:
                sys.exit(f"{name}: no exitloop result:\n{out}")
            rates[name].append(int(m.group(1)))
    c, q = statistics.median(rates["cove"]), statistics.median(rates["qemu"])
    print(f"{what:<36}{c:>10.0f}{q:>10.0f}{c / q:>8.3f}")
print("target: ratio >= 1.000")
PY
