#!/bin/bash
# virtio-blk throughput from the probe guest's request loop at CPL3 (polling, EVENT_IDX, 16
# requests in flight) on one raw file: sequential 1 MiB reads and writes (MB/s), random 4 KiB
# reads (IOPS), and notifications (exits) per request. Cove vs QEMU q35 (virtio-blk-pci,
# cache=writeback, aio=threads) with the same guest and file, vs fio on the host file (the
# limit: psync for sequential, io_uring depth 16 for random, through the page cache like both
# VMMs). Medians of ROUNDS runs, alternating.
# usage: bench/virtio-blk.sh [BUILDDIR] [SIZE_MB] [RAND_REQS] [ROUNDS]
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
mb=${2:-256}
nrand=${3:-20000}
rounds=${4:-3}
cove=$build/src/cli/cove
guest=$build/tests/guest/probe-pvh.elf
if [ ! -x "$cove" ] || [ ! -f "$guest" ]; then
	echo "build first: scripts/build $build" >&2
	exit 1
fi
img=$(mktemp /tmp/cove-bench-XXXXXX.img)
trap 'rm -f "$img"' EXIT
# A fully written file (not sparse), warm in the page cache for all three.
dd if=/dev/urandom of="$img" bs=1M count="$mb" status=none
python3 - "$cove" "$guest" "$img" "$mb" "$nrand" "$rounds" <<'PY'
import json, re, statistics, subprocess, sys
cove, guest, img, mb, nrand, rounds = sys.argv[1:4] + [int(x) for x in sys.argv[4:]]
cmdline = f"probe=vblkbench probe.bench_mb={mb} probe.bench_rand={nrand}"
cmds = {
    "cove": [cove, "run", "--kernel", guest, "--memory", "256M", "--cmdline", cmdline,
             "--disk", f"path={img}", "--log-level", "error"],
    "qemu": ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-nodefaults",
             "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot", "-m", "256",
             "-kernel", guest, "-append", cmdline,
             "-drive", f"file={img},if=none,id=d0,format=raw,cache=writeback,aio=threads",
             "-device", "virtio-blk-pci,drive=d0,disable-legacy=on"],
}
keys = ["seqread MB/s", "seqwrite MB/s", "randread IOPS", "kicks/request"]
res = {k: {m: [] for m in keys} for k in list(cmds) + ["fio"]}
pat = re.compile(r"vblkbench: seqread (\d+) MB/s, seqwrite (\d+) MB/s, randread (\d+) IOPS, "
                 r"(\d+) kicks for (\d+) requests")

def fio(rw, bs, size, extra=[]):
    # Sequential: psync (buffered io_uring reads of 1 MiB go through io-wq and are slower
    # here); random: io_uring at depth 16, like the guest loop.
    eng = ["--ioengine=psync"] if "rand" not in rw else ["--ioengine=io_uring", "--iodepth=16"]
    out = subprocess.run(["fio", "--name=b", f"--filename={img}", f"--rw={rw}", f"--bs={bs}",
                          f"--size={size}", "--direct=0", "--invalidate=0",
                          "--output-format=json"] + eng + extra,
                         capture_output=True, text=True, check=True).stdout
    j = json.loads(out[out.index("{"):])["jobs"][0]
    return j["read" if "read" in rw else "write"]

for _ in range(rounds):
    for name, cmd in cmds.items():
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
        m = pat.search(out)
        if not m:
            sys.exit(f"{name}: no vblkbench result:\n{out[-2000:]}")
        v = [int(x) for x in m.groups()]
        for k, x in zip(keys, [v[0], v[1], v[2], v[3] / v[4]]):
            res[name][k].append(x)
    r = fio("read", "1M", f"{mb}M")
    res["fio"]["seqread MB/s"].append(r["bw_bytes"] / 1e6)
    w = fio("write", "1M", f"{mb}M")
    res["fio"]["seqwrite MB/s"].append(w["bw_bytes"] / 1e6)
    rr = fio("randread", "4k", f"{mb}M", [f"--number_ios={nrand}"])
    res["fio"]["randread IOPS"].append(rr["iops"])

med = {n: {k: statistics.median(v) if v else None for k, v in d.items()} for n, d in res.items()}
print(f"virtio-blk, {mb} MiB raw file, {rounds} rounds (medians)")
print(f"{'':16}{'cove':>12}{'qemu':>12}{'fio (host)':>12}{'cove/qemu':>11}{'cove/fio':>10}")
for k in keys:
    c, q, f = med["cove"][k], med["qemu"][k], med["fio"][k]
    fmt = (lambda x: f"{x:12.3f}") if k == "kicks/request" else (lambda x: f"{x:12.0f}")
    fs = fmt(f) if f is not None else f"{'-':>12}"
    rq = f"{c / q:11.2f}" if q else f"{'-':>11}"
    rf = f"{c / f:10.2f}" if f else f"{'-':>10}"
    print(f"{k:16}{fmt(c)}{fmt(q)}{fs}{rq}{rf}")
PY
