#!/bin/bash
# A virtio-blk reset with large reads in flight: the probe guest's vblk_reset (after the status
# reads 0 nothing more is written to the buffers, the used ring or the status bytes) and
# vblk_reset_again (the device works again, also after a driver that did not wait), under Cove
# (io_uring, cache=none, aio=sync) and QEMU q35, the reference. The disk's pages are dropped
# from the host's cache before each run, so that the reads are still in flight at the reset.
# TAP. Env: COVE, PROBE_PVH (set by meson), QEMU, RESET_RUNS (runs under each VMM, default 2).
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/guest/probe-lib.sh
. "$here/../guest/probe-lib.sh"

cove=$(realpath "${COVE:?set COVE to the cove binary}")
pvh=$(realpath "${PROBE_PVH:?set PROBE_PVH to the probe guest PVH ELF}")
qemu=${QEMU:-qemu-system-x86_64}
runs=${RESET_RUNS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

skip=""
probe_kvm_ok || skip="/dev/kvm unavailable"
qskip=$skip
[ -z "$qskip" ] && ! command -v "$qemu" >/dev/null && qskip="$qemu not installed"
direct_skip=$skip
if [ -z "$direct_skip" ] && ! dd if=/dev/zero of="$work/direct" bs=4096 count=1 oflag=direct 2>/dev/null; then
	direct_skip="the file system of $work has no O_DIRECT"
fi
rm -f "$work/direct"

disk=$work/disk.raw
# 384 MiB holding the probe guest's disk pattern (byte j of sector s is (s * 31 + j) & 0xFF,
# which repeats every 256 sectors): three rounds of 21 reads of 4 MiB and one more round, each
# on a part of the disk not read before.
python3 -c "
import os, sys
blk = b''.join(bytes(((s * 31 + j) & 255) for j in range(512)) for s in range(256))
with open(sys.argv[1], 'wb') as f:
    for _ in range(384 * 8):
        f.write(blk)
    f.flush()
    os.fsync(f.fileno())
" "$disk"
# Before each run: the disk's pages out of the host's page cache (clean pages, this file only).
cold() {
	python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
" "$disk"
}

tests="vblk_reset vblk_reset_again"
cmdline="probe=${tests// /,} probe.reset_mb=4 probe.reset_rounds=3"

cove_run() { # LABEL SKIP DISK_OPTIONS
	cold
	probe_run "$1" "$tests" ${2:+--skip "$2"} -- "$cove" run --kernel "$pvh" --memory 256M \
		--disk "path=$disk,format=raw$3" --cmdline "$cmdline"
}

for i in $(seq "$runs"); do
	cove_run "cove-$i" "$skip" ""
done
cove_run cove-cache-none "$direct_skip" ",cache=none"
cove_run cove-aio-sync "$skip" ",aio=sync"

for i in $(seq "$runs"); do
	cold
	probe_run "qemu-q35-$i" "$tests" ${qskip:+--skip "$qskip"} -- "$qemu" -M q35 -accel kvm \
		-nodefaults -no-user-config -nographic -serial stdio -no-reboot -m 256 -kernel "$pvh" \
		-append "$cmdline" -drive "file=$disk,if=none,id=d0,format=raw" \
		-device virtio-blk-pci,drive=d0,disable-legacy=on
done

probe_done
