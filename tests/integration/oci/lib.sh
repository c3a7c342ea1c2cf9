# Shared helpers of the cove oci integration tests: TAP output and busybox bundles.
# Sourced by each test; needs COVE (the cove binary) in the environment.

set -u
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	[ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/#   /'
	return 0
}
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
# check NAME COMMAND...: ok when the command succeeds.
check() {
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then ok "$name"; else notok "$name" "$out"; fi
}
# expect_eq NAME WANT GOT
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else notok "$1" "want [$2] got [$3]"; fi
}
expect_match() {
	if printf '%s' "$3" | grep -qE -- "$2"; then ok "$1"; else notok "$1" "want /$2/ in [$3]"; fi
}

# The runner counts exit status 77 with no cases as one skip, with this line as the reason.
skip_all() {
	echo "1..0 # SKIP $1"
	exit 77
}

[ -n "${COVE:-}" ] && [ -x "$COVE" ] || skip_all "COVE is not set to the cove binary"
[ "$(id -u)" = 0 ] || skip_all "needs root (namespaces, cgroups, mounts)"
[ -x /bin/busybox ] || skip_all "needs busybox-static at /bin/busybox"
file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' ||
	ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' || skip_all "/bin/busybox is not static"

T=$(mktemp -d /tmp/cove-oci-test.XXXXXX)
chmod 755 "$T" # containers with a user namespace must reach their rootfs
ROOT=$T/state
RUNC=$T/cove-runc
ln -s "$COVE" "$RUNC"
CG="/cove-test-$$"
cleanup_all() {
	for id in $(ls "$ROOT" 2>/dev/null); do "$RUNC" --root "$ROOT" delete --force "$id" >/dev/null 2>&1; done
	for d in /sys/fs/cgroup/*"$CG" /sys/fs/cgroup/unified"$CG"; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	# mounts a test made under $T (deepest first), so rm stays on this filesystem
	grep -o " $T[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$T"
}
trap cleanup_all EXIT

r() { "$RUNC" --root "$ROOT" "$@"; }

# make_bundle DIR ARGS_JSON: a busybox rootfs and a config from `cove oci spec`.
make_bundle() {
	local b=$1 args=$2
	mkdir -p "$b/rootfs/bin" "$b/rootfs/proc" "$b/rootfs/dev" "$b/rootfs/sys" \
		"$b/rootfs/tmp" "$b/rootfs/etc"
	cp /bin/busybox "$b/rootfs/bin/busybox"
	for x in $(/bin/busybox --list); do [ "$x" = busybox ] || ln -sf busybox "$b/rootfs/bin/$x"; done
	echo 'root:x:0:0:root:/:/bin/sh' >"$b/rootfs/etc/passwd"
	(cd "$b" && "$COVE" oci spec)
	local name
	name=$(basename "$b")
	jq --argjson a "$args" --arg cg "$CG/$name" \
		'.process.args = $a | .process.terminal = false | .linux.cgroupsPath = $cg' \
		"$b/config.json" >"$b/config.tmp" && mv "$b/config.tmp" "$b/config.json"
}

# edit_config DIR JQ_FILTER
edit_config() {
	jq "$2" "$1/config.json" >"$1/config.tmp" && mv "$1/config.tmp" "$1/config.json"
}

status_of() { r state "$1" 2>/dev/null | jq -r .status; }

# nothing_left ID CGPATH: no state dir, no cgroup dir
nothing_left() {
	[ ! -e "$ROOT/$1" ] || { echo "state dir $ROOT/$1 left"; return 1; }
	for d in /sys/fs/cgroup/*"$2"; do
		[ ! -e "$d" ] || { echo "cgroup $d left"; return 1; }
	done
	return 0
}
