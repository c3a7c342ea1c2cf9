#!/bin/bash
# Linux guests on the nested rig (tests/linux/rig.py --bench): inside one L1, Cove against
# QEMU with KVM on the same stock Debian kernel, initramfs, vCPUs and memory.
#   - boot: exec -> the guest's first /init line, and -> process exit after poweroff;
#     Cove vs QEMU -M microvm and -M q35 (target: <= 0.5 x microvm);
#   - fio in the guest (sequential 1 MiB read and write, random 4 KiB read, queue depth
#     16, O_DIRECT) on Cove's virtio-blk vs QEMU's virtio-blk-pci with aio=io_uring
#     (target: >= 1.0 x QEMU).
# Order alternates between rounds; medians with min..max. Timings are TCG's: only the
# ratios within one run mean something.
# usage: bench/linux-guest.sh BUILDDIR [ROUNDS [FIO_SECONDS]]   (default 5 rounds, 10 s)
set -euo pipefail
B=${1:?usage: bench/linux-guest.sh BUILDDIR [ROUNDS [FIO_SECONDS]]}
cd "$(dirname "$0")/.."
exec python3 tests/linux/rig.py --cove "$B/src/cli/cove" --bench --rounds "${2:-5}" \
	--fio-seconds "${3:-10}"
