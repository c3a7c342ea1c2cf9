#!/bin/bash
# Startup: from exec of the VMM to the first byte the minimal PVH test guest writes to COM1,
# and to process exit after the guest's reset (triple fault); Cove vs QEMU microvm, one run.
# usage: bench/vmm-startup.sh [BUILDDIR] [RUNS]
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
runs=${2:-10}
cove=$build/src/cli/cove
guest=$build/tests/integration/vmm/pvh.elf
if [ ! -x "$cove" ] || [ ! -f "$guest" ]; then
	echo "build first: scripts/build $build" >&2
	exit 1
fi
exec python3 - "$runs" "$cove" "$guest" <<'PY'
import statistics, subprocess, sys, time
runs, cove, guest = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cmds = {
    "cove": [cove, "run", "--kernel", guest, "--cmdline", "t", "--memory", "256M",
             "--console", "stdio", "--log-level", "error"],
    "qemu": ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-nodefaults",
             "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot", "-m", "256M",
             "-kernel", guest, "-append", "t"],
}
res = {}
for name, cmd in cmds.items():
    first, total = [], []
    for _ in range(runs):
        time.sleep(0.1)  # let the previous VM's teardown (in the background for cove) finish
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL)
        b = p.stdout.read(1)
        t1 = time.perf_counter()
        p.stdout.read()
        p.wait()
        t2 = time.perf_counter()
        if not b:
            sys.exit(f"{name}: no output from the guest")
        first.append((t1 - t0) * 1000)
        total.append((t2 - t0) * 1000)
    res[name] = (statistics.median(first), statistics.median(total))
print(f"{'median of ' + str(runs):<22}{'cove':>10}{'qemu':>10}{'ratio':>8}")
for i, what in enumerate(["exec -> first COM1 byte", "exec -> exit after reset"]):
    c, q = res["cove"][i], res["qemu"][i]
    print(f"{what:<22}{c:>8.1f}ms{q:>8.1f}ms{c / q:>8.3f}")
print("target: ratio <= 0.100")
PY
