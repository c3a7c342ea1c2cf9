# Shared helpers of the block integration tests (TAP output). Sourced, not run.
set -u
N=0
FAILED=0
ok() { N=$((N + 1)); echo "ok $N - $1"; }
notok() { N=$((N + 1)); FAILED=1; echo "not ok $N - $1"; [ $# -gt 1 ] && echo "# $2"; }
skip() { N=$((N + 1)); echo "ok $N - $1 # SKIP $2"; }
# run NAME CMD...: ok when CMD succeeds
run() {
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then ok "$name"; else notok "$name" "$(echo "$out" | tail -3 | tr '\n' ' ')"; fi
}
finish() { echo "1..$N"; exit 0; }
BLKCAT=${BLKCAT:?BLKCAT must point at the blkcat tool}
if ! command -v qemu-img >/dev/null; then
	echo "1..0 # SKIP qemu-img is not installed"
	exit 0
fi
T=$(mktemp -d /tmp/cove-blk-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
# A mixed source: random data, zeroes, text and holes, not a multiple of the cluster size.
make_source() {
	python3 - "$1" "${2:-48}" <<'PY'
import os, sys
with open(sys.argv[1], 'wb') as f:
    for i in range(int(sys.argv[2])):
        k = i % 4
        if k == 0: f.write(os.urandom(65536 * 2 + 1234))
        elif k == 1: f.write(b'\0' * 100000)
        elif k == 2: f.write((b'hello world text %d\n' % i) * 3000)
        else: f.seek(70000, 1)
    f.write(b'end')
PY
}
# same_as_qemu IMG: our read of IMG equals qemu-img's
same_as_qemu() {
	qemu-img convert -O raw "$1" "$T/q.raw" && "$BLKCAT" cat "$1" "$T/o.raw" && cmp "$T/q.raw" "$T/o.raw"
}
