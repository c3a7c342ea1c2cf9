#!/bin/bash
# Memory: the VMM's resident memory beyond the guest RAM the guest touched (Rss of every
# mapping except guest RAM), Cove vs QEMU microvm, both running the same halted PVH guest.
# usage: bench/vmm-memory.sh [BUILDDIR]
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
cove=$build/src/cli/cove
guest=$build/tests/integration/vmm/pvh.elf
if [ ! -x "$cove" ] || [ ! -f "$guest" ]; then
	echo "build first: scripts/build $build" >&2
	exit 1
fi
exec python3 - "$cove" "$guest" <<'PY'
import subprocess, sys, time
cove, guest = sys.argv[1], sys.argv[2]
MEM_MIB = 256
cmds = {
    "cove": [cove, "run", "--kernel", guest, "--cmdline", "h", "--memory", f"{MEM_MIB}M",
             "--log-level", "error"],
    "qemu": ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-nodefaults",
             "-no-user-config", "-nographic", "-serial", "stdio", "-m", f"{MEM_MIB}M",
             "-kernel", guest, "-append", "h"],
}

def measure(pid):
    """(total Rss, Rss of guest RAM) in KiB: guest RAM is any mapping of at least its size."""
    total = guest_rss = 0
    size = None
    for line in open(f"/proc/{pid}/smaps"):
        f = line.split()
        if f[0] == "Size:":
            size = int(f[1])
        elif f[0] == "Rss:":
            total += int(f[1])
            if size is not None and size >= MEM_MIB * 1024:
                guest_rss += int(f[1])
    return total, guest_rss

res = {}
for name, cmd in cmds.items():
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    if not p.stdout.readline():
        sys.exit(f"{name}: no output from the guest")
    time.sleep(1.0)
    res[name] = measure(p.pid)
    p.kill()
    p.wait()
print(f"{'KiB':<34}{'cove':>10}{'qemu':>10}{'ratio':>8}")
rows = [("total Rss", 0), ("guest RAM touched (Rss)", 1)]
for what, i in rows:
    print(f"{what:<34}{res['cove'][i]:>10}{res['qemu'][i]:>10}{res['cove'][i] / res['qemu'][i]:>8.3f}")
c = res["cove"][0] - res["cove"][1]
q = res["qemu"][0] - res["qemu"][1]
print(f"{'VMM overhead (total - guest RAM)':<34}{c:>10}{q:>10}{c / q:>8.3f}")
print(f"target: overhead <= 4096 KiB (cove: {'met' if c <= 4096 else 'NOT met'})")
PY
