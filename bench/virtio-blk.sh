#!/bin/bash
# virtio-blk throughput from the probe guest's request loop at CPL3 (polling, EVENT_IDX, 16
# requests in flight: DEPTH in tests/guest/virtio_bench.c) on one raw file: sequential 1 MiB
# reads and writes (MB/s), random 4 KiB reads (IOPS), and notifications (exits) per request.
# Cove (io_uring, through the page cache) against, with the same guest and file:
#   - QEMU q35 virtio-blk-pci, cache=writeback, aio=io_uring (the like-for-like reference),
#   - the same with aio=threads (QEMU's default engine; an extra row),
#   - fio on the host file, io_uring at the guest's depth (16), buffered, same block sizes
#     and request counts: the host's own limit for this access pattern.
# ROUNDS rounds, the order of the four rotated each round; min/median/max of each figure,
# ratios of medians.
# usage: bench/virtio-blk.sh [BUILDDIR] [SIZE_MB] [RAND_REQS] [ROUNDS]   (ROUNDS: default
#        $ROUNDS or 5)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
mb=${2:-256}
nrand=${3:-20000}
rounds=${4:-${ROUNDS:-5}}
depth=16 # the probe guest's DEPTH
cove=$build/src/cli/cove
guest=$build/tests/guest/probe-pvh.elf
if [ ! -x "$cove" ] || [ ! -f "$guest" ]; then
	echo "build first: scripts/build $build" >&2
	exit 1
fi
for t in qemu-system-x86_64 fio; do
	command -v "$t" >/dev/null || { echo "$t is not installed (scripts/setup)" >&2; exit 1; }
done
img=$(mktemp /tmp/cove-bench-XXXXXX.img)
trap 'rm -f "$img"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# A fully written file (not sparse), warm in the page cache for all of them.
dd if=/dev/urandom of="$img" bs=1M count="$mb" status=none
python3 - "$cove" "$guest" "$img" "$mb" "$nrand" "$rounds" "$depth" <<'PY'
import json, os, re, subprocess, sys
sys.path.insert(0, "bench")
from benchlib import Samples, order
cove, guest, img = sys.argv[1:4]
mb, nrand, rounds, depth = (int(x) for x in sys.argv[4:8])
cmdline = f"probe=vblkbench probe.bench_mb={mb} probe.bench_rand={nrand}"

def qemu(aio):
    return ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-nodefaults",
            "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot", "-m", "256",
            "-kernel", guest, "-append", cmdline,
            "-drive", f"file={img},if=none,id=d0,format=raw,cache=writeback,aio={aio}",
            "-device", "virtio-blk-pci,drive=d0,disable-legacy=on"]

vms = {
    "cove": [cove, "run", "--kernel", guest, "--memory", "256M", "--cmdline", cmdline,
             "--disk", f"path={img},format=raw,cache=writeback,aio=io_uring",
             "--log-level", "error"],
    "qemu aio=io_uring": qemu("io_uring"),
    "qemu aio=threads": qemu("threads"),
}
FIO = f"fio io_uring depth {depth}"
s = Samples(list(vms) + [FIO])
pat = re.compile(r"vblkbench: seqread (\d+) MB/s, seqwrite (\d+) MB/s, randread (\d+) IOPS, "
                 r"(\d+) kicks for (\d+) requests")

def vm(name):
    p = subprocess.run(vms[name], capture_output=True, text=True, timeout=600)
    m = pat.search(p.stdout)
    if p.returncode != 0 or not m:
        sys.exit(f"{name}: exit status {p.returncode}, no vblkbench result:\n"
                 f"{p.stdout[-2000:]}{p.stderr[-1000:]}")
    v = [int(x) for x in m.groups()]
    s.add("seqread MB/s", name, v[0])
    s.add("seqwrite MB/s", name, v[1])
    s.add("randread IOPS", name, v[2])
    s.add("kicks/request", name, v[3] / v[4])

def fio_job(rw, bs, extra=()):
    # The guest's loop: DEPTH requests in flight, buffered, the same sizes and counts.
    p = subprocess.run(["fio", "--name=b", f"--filename={img}", f"--rw={rw}", f"--bs={bs}",
                        f"--size={mb}M", "--direct=0", "--invalidate=0",
                        "--ioengine=io_uring", f"--iodepth={depth}",
                        "--output-format=json", *extra],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0 or "{" not in p.stdout:
        sys.exit(f"fio {rw}: exit status {p.returncode}:\n{p.stdout[-1000:]}{p.stderr[-1000:]}")
    j = json.loads(p.stdout[p.stdout.index("{"):])["jobs"][0]
    return j["read" if "read" in rw else "write"]

def fio():
    s.add("seqread MB/s", FIO, fio_job("read", "1M")["bw_bytes"] / 1e6)
    s.add("seqwrite MB/s", FIO, fio_job("write", "1M")["bw_bytes"] / 1e6)
    s.add("randread IOPS", FIO, fio_job("randread", "4k", [f"--number_ios={nrand}"])["iops"])

for r in range(rounds):
    for name in order(r, s.tools):
        # Start each run on a quiet disk: the previous one's dirty pages written back.
        os.sync()
        fio() if name == FIO else vm(name)

s.table(f"virtio-blk, {mb} MiB raw file, {nrand} random reads, {depth} requests in flight",
        higher={"seqread MB/s", "seqwrite MB/s", "randread IOPS"})
PY
