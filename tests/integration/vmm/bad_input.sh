#!/bin/bash
# Bad input to cove run: each gets one line on stderr and a non-zero status, never a crash.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# bad NAME PATTERN ARGS...: expects status 1-127 (not a signal), exactly one stderr line
# matching PATTERN, and no guest output.
bad() {
	local name=$1 pattern=$2
	shift 2
	run bad "$@"
	local lines
	lines=$(grep -c . <<<"$err")
	if [ "$status" -ne 0 ] && [ "$status" -lt 128 ] && [ "$lines" -eq 1 ] &&
		grep -qiE -- "$pattern" <<<"$err" && [ -z "$out" ]; then
		ok "$name"
	else
		not_ok "$name" "status $status, $lines stderr lines, want /$pattern/" "stderr: $err" "stdout: $out"
	fi
}

COVE_KVM_DEV=/nonexistent/kvm bad "no /dev/kvm" 'no such device' --kernel "$PVH_GUEST"
COVE_KVM_DEV=/dev/null bad "a device that is not KVM" 'not a KVM device' --kernel "$PVH_GUEST"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	# As nobody, a root-only device node is not accessible.
	touch "$tmp/kvm" && chmod 600 "$tmp/kvm" && chmod 755 "$tmp"
	cp "$PVH_GUEST" "$tmp/pvh.elf" && chmod 644 "$tmp/pvh.elf"
	run_nobody() {
		COVE_KVM_DEV=/dev/kvm timeout -s KILL 20 setpriv --reuid=65534 --regid=65534 --clear-groups \
			"$COVE" run --kernel "$tmp/pvh.elf" >"$tmp/nobody.out" 2>"$tmp/nobody.err" </dev/null
	}
	run_nobody
	status=$?
	err=$(cat "$tmp/nobody.err")
	if [ "$status" -ne 0 ] && [ "$status" -lt 128 ] && [ "$(grep -c . <<<"$err")" -eq 1 ] &&
		grep -q 'permission denied (add yourself to group kvm)' <<<"$err"; then
		ok "no permission on /dev/kvm"
	else
		not_ok "no permission on /dev/kvm" "status $status" "$err"
	fi
else
	skip "no permission on /dev/kvm" "needs root and setpriv to drop to nobody"
fi

bad "kernel missing" 'kernel /nonexistent/vmlinuz: No such file' --kernel /nonexistent/vmlinuz
head -c 5000 /dev/urandom >"$tmp/random"
bad "not a kernel (random bytes)" 'not a kernel' --kernel "$tmp/random"
bad "not a kernel (a directory)" 'not a regular file' --kernel "$tmp"
: >"$tmp/empty"
bad "not a kernel (empty file)" 'not a kernel' --kernel "$tmp/empty"
head -c 700 "$BZ_GUEST" >"$tmp/short-bz"
bad "truncated bzImage" 'bzImage truncated' --kernel "$tmp/short-bz"
cp "$BZ_GUEST" "$tmp/old-bz" && printf '\x0b\x02' | dd of="$tmp/old-bz" bs=1 seek=$((0x206)) conv=notrunc status=none
bad "bzImage with an old boot protocol" 'too old' --kernel "$tmp/old-bz"
bad "ELF without a PVH note" 'PVH|not an executable' --kernel /bin/true
head -c 200 "$PVH_GUEST" >"$tmp/short-elf"
bad "truncated ELF" 'ELF|beyond|truncated' --kernel "$tmp/short-elf"

head -c $((20 << 20)) /dev/zero >"$tmp/big-initrd"
bad "initrd bigger than memory" 'initrd .* too big' --kernel "$PVH_GUEST" --initrd "$tmp/big-initrd" --memory 16M
head -c $((15 << 20)) /dev/zero >"$tmp/initrd15"
bad "initrd too big for the room below the hole" 'initrd of 15 MiB is too big' --kernel "$PVH_GUEST" --initrd "$tmp/initrd15" --memory 16M
bad "initrd missing" 'initrd /nonexistent' --kernel "$PVH_GUEST" --initrd /nonexistent/initrd

bad "memory too small" 'memory .*out of range' --kernel "$PVH_GUEST" --memory 8M
bad "memory too large" 'memory .*out of range' --kernel "$PVH_GUEST" --memory 2T
bad "memory not a size" 'not a size' --kernel "$PVH_GUEST" --memory lots
bad "memory overflowing" 'out of range' --kernel "$PVH_GUEST" --memory 99999999999999999999G
bad "cpus 0" 'cpus 0: out of range' --kernel "$PVH_GUEST" --cpus 0
bad "cpus 256" 'cpus 256: out of range' --kernel "$PVH_GUEST" --cpus 256
bad "cpus not a number" 'not a number' --kernel "$PVH_GUEST" --cpus two
bad "bad console" 'console' --kernel "$PVH_GUEST" --console tty
bad "bad on-reboot" 'on-reboot' --kernel "$PVH_GUEST" --on-reboot panic
bad "bad --boot" "boot 'bios': expected auto, linux or pvh" --kernel "$PVH_GUEST" --boot bios
bad "--boot pvh on a bzImage with no compressed vmlinux" \
	'--boot pvh: this bzImage cannot boot by PVH: bzImage has no compressed payload' \
	--kernel "$BZ_GUEST" --boot pvh
bad "--boot linux on an ELF kernel" '--boot linux: the kernel is an ELF file' \
	--kernel "$PVH_GUEST" --boot linux
bad "unknown option" 'unknown' --kernel "$PVH_GUEST" --frobnicate
bad "command line too long" 'command line .* too long' --kernel "$BZ_GUEST" --cmdline "$(head -c 3000 /dev/zero | tr '\0' x)"

printf '{\n  "cpus": 2,\n  "memory": "64M"\n' >"$tmp/trunc.json"
bad "malformed JSON (truncated)" 'line [0-9]+, column [0-9]+' --config "$tmp/trunc.json"
printf '{\n  "cpus": 2,,\n}\n' >"$tmp/comma.json"
bad "malformed JSON (stray comma) names line 2" 'line 2, column' --config "$tmp/comma.json"
printf '{ "cpus": "many" }' >"$tmp/field.json"
bad "JSON field of the wrong value" "field 'cpus'" --config "$tmp/field.json"
printf '{ "cpus": [1] }' >"$tmp/type.json"
bad "JSON field of the wrong type" "field 'cpus': expected a number" --config "$tmp/type.json"
printf '{ "colour": "red" }' >"$tmp/unknown.json"
bad "JSON unknown field" "unknown setting 'colour'" --config "$tmp/unknown.json"
printf '[1, 2]' >"$tmp/array.json"
bad "JSON not an object" 'must be a JSON object' --config "$tmp/array.json"
bad "config missing" 'config /nonexistent' --config /nonexistent/vm.json
bad "--sandbox with --api-sock (not combined yet)" 'cannot be combined with --api-sock' \
	--sandbox --api-sock "$tmp/api.sock"

finish
