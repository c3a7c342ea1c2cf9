# shellcheck shell=bash disable=SC2034
# Shared TAP helpers for the vmm integration tests (sourced).
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do printf '#   %s\n' "$l"; done; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
finish() { echo "1..$n"; [ "$failed" -eq 0 ]; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

kvm_usable() { [ -r "${COVE_KVM_DEV:-/dev/kvm}" ] && [ -w "${COVE_KVM_DEV:-/dev/kvm}" ]; }
is_pvm() { [ -e /sys/module/kvm_pvm ]; }

# run NAME ARGS...: runs cove run with a time limit; sets $status, $out, $err.
run() {
	local name=$1
	shift
	timeout -s KILL 20 "$COVE" run "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null
	status=$?
	out=$(cat "$tmp/$name.out")
	err=$(cat "$tmp/$name.err")
}
