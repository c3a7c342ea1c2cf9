# TAP helpers shared by the cove img interop tests (sourced; bash).
# Each test runs `cove img` and `qemu-img` side by side in a private temporary folder.
set -u
: "${COVE:?COVE must name the cove binary}"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for tool in qemu-img qemu-io jq python3; do
	if ! command -v $tool >/dev/null; then
		echo "ok 1 - $(basename "$0" .sh) # SKIP $tool is not installed (scripts/setup installs it)"
		echo "1..1"
		exit 0
	fi
done
T=$(mktemp -d "${TMPDIR:-/tmp}/cove-img-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir "$T/w" && cd "$T/w" || exit 1
export TZ=UTC LC_ALL=C
tap_n=0
rc=0
qrc=0

ok() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $1"
}
# fail NAME [DETAIL...]: each detail becomes a TAP comment.
fail() {
	tap_n=$((tap_n + 1))
	echo "not ok $tap_n - $1"
	shift
	local l
	for l in "$@"; do
		printf '%s\n' "$l" | head -n 20 | sed 's/^/#   /'
	done
}
skip() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $1 # SKIP $2"
}
done_testing() {
	echo "1..$tap_n"
}
# check NAME COND...: ok when the command succeeds.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else fail "$name" "failed: $*"; fi
}

# cv ARGS: runs cove img (stdout in $T/out, stderr in $T/err, status in $rc).
cv() {
	timeout 60 "$COVE" img "$@" >"$T/out" 2>"$T/err"
	rc=$?
}
# qi ARGS: runs qemu-img (stdout in $T/qout, stderr in $T/qerr, status in $qrc).
qi() {
	timeout 60 qemu-img "$@" >"$T/qout" 2>"$T/qerr"
	qrc=$?
}
# need NAME ARGS: runs cove img ARGS; on failure reports NAME as failed (with the
# error) and returns 1, so the caller skips the checks that depend on the result.
need() {
	local name=$1
	shift
	cv "$@"
	[ $rc -eq 0 ] && return 0
	fail "$name" "cove img $* -> exit $rc" "$(cat "$T/err")"
	return 1
}
# crashed: the last cove run died of a signal or a sanitizer report.
crashed() {
	[ $rc -ge 124 ] || grep -qE 'AddressSanitizer|runtime error|Segmentation' "$T/err"
}
# One line of error, non-zero status, no crash.
clean_error() {
	[ $rc -ne 0 ] && ! crashed && [ "$(grep -c . "$T/err")" -ge 1 ]
}

# Reproducible content: python's seeded generator.
# mkmixed FILE SIZE_MIB: random, zeros, text and holes in 1 MiB-ish pieces, with odd edges.
mkmixed() {
	python3 - "$1" "$2" <<'PY'
import random, sys
path, mib = sys.argv[1], int(sys.argv[2])
r = random.Random(42)
size = mib << 20
with open(path, "wb") as f:
    f.truncate(size)
    off = 0
    kinds = ["random", "zero", "text", "hole", "sparse"]
    i = 0
    while off < size:
        n = min(size - off, r.choice([4096, 65536 + 512, 300000, 1 << 20]))
        k = kinds[i % len(kinds)]
        i += 1
        f.seek(off)
        if k == "random":
            f.write(r.randbytes(n))
        elif k == "zero":
            f.write(bytes(n))
        elif k == "text":
            line = b"the quick brown fox jumps over the lazy dog %d\n" % off
            f.write((line * (n // len(line) + 1))[:n])
        elif k == "sparse":
            for o in range(0, n, 8192):
                f.seek(off + o)
                f.write(r.randbytes(min(512, n - o)))
        off += n
PY
}
# raw_of IMAGE OUT: qemu-img's reading of IMAGE as raw.
raw_of() {
	qemu-img convert -O raw "$1" "$2"
}
# cv_trace TRACE ARGS: cv under strace, which writes to TRACE the opens and syncs of every
# thread, each fd shown with its path (-y). Returns 2, running nothing, when strace is
# missing. LeakSanitizer cannot run under ptrace, hence detect_leaks=0.
cv_trace() {
	local tr=$1
	shift
	command -v strace >/dev/null || return 2
	ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 timeout 60 strace -f -qq -y -o "$tr" \
		-e trace=open,openat,fsync,fdatasync,sync_file_range,syncfs,sync \
		"$COVE" img "$@" >"$T/out" 2>"$T/err"
	rc=$?
}
# syncs_of TRACE NAME: the fsync/fdatasync calls in TRACE on a file whose path contains NAME.
syncs_of() {
	grep -E "(fsync|fdatasync)\([0-9]+<[^>]*$2[^>]*>" "$1"
}
