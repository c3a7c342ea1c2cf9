#!/bin/bash
# Startup: from exec of the VMM to the first byte the minimal PVH test guest writes to COM1,
# and to process exit after the guest's reset (triple fault); Cove vs QEMU microvm. ROUNDS
# rounds of one start each, the order alternating (each start takes only milliseconds, so
# the default is 20 rounds); min/median/max, ratio of medians.
# usage: bench/vmm-startup.sh [BUILDDIR] [ROUNDS]   (ROUNDS: default $ROUNDS or 20)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
rounds=${2:-${ROUNDS:-20}}
cove=$build/src/cli/cove
guest=$build/tests/integration/vmm/pvh.elf
if [ ! -x "$cove" ] || [ ! -f "$guest" ]; then
	echo "build first: scripts/build $build" >&2
	exit 1
fi
command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 is not installed" >&2; exit 1; }
exec python3 - "$rounds" "$cove" "$guest" <<'PY'
import subprocess, sys, threading, time
sys.path.insert(0, "bench")
from benchlib import Samples, order
rounds, cove, guest = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cmds = {
    "cove": [cove, "run", "--kernel", guest, "--cmdline", "t", "--memory", "256M",
             "--console", "stdio", "--log-level", "error"],
    "qemu": ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-nodefaults",
             "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot", "-m", "256M",
             "-kernel", guest, "-append", "t"],
}
FIRST, EXIT = "exec -> first COM1 byte, ms", "exec -> exit after reset, ms"
s = Samples(cmds)
for r in range(rounds):
    for name in order(r, s.tools):
        time.sleep(0.1)  # let the previous VM's teardown (in the background for cove) finish
        t0 = time.perf_counter()
        p = subprocess.Popen(cmds[name], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL)
        watchdog = threading.Timer(30, p.kill)  # a hung VMM fails the run, not the caller
        watchdog.start()
        b = p.stdout.read(1)
        t1 = time.perf_counter()
        p.stdout.read()
        st = p.wait()
        t2 = time.perf_counter()
        watchdog.cancel()
        if not b or st != 0:
            sys.exit(f"{name}: exit status {st}" + ("" if b else ", no output from the guest"))
        s.add(FIRST, name, (t1 - t0) * 1000)
        s.add(EXIT, name, (t2 - t0) * 1000)
s.table("VMM startup, minimal PVH guest")
print("target: cove/this <= 0.100")
PY
