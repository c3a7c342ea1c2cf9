#!/bin/bash
# cove run boots the probe guest (PVH and bzImage) and every probe test passes.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

if ! kvm_usable; then
	echo "1..0 # SKIP /dev/kvm is not usable here"
	exit 0
fi

head -c 70000 /dev/urandom >"$tmp/initrd"
crc=$(python3 -c 'import sys, zlib; print("%08x" % zlib.crc32(open(sys.argv[1], "rb").read()))' "$tmp/initrd")

# probe NAME ARGS...: each PROBE line becomes a TAP line; the run must end "0 failed", status 0.
probe() {
	local name=$1
	shift
	run "$name" "$@"
	local lines
	lines=$(grep '^PROBE: \(ok\|FAIL\|SKIP\)' <<<"$out")
	while IFS= read -r l; do
		[ -n "$l" ] || continue
		local t=${l#PROBE: }
		case $t in
		ok\ *) ok "$name: ${t#ok }" ;;
		SKIP\ *) skip "$name: ${t#SKIP }" "skipped by the guest" ;;
		*) not_ok "$name: ${t#FAIL }" ;;
		esac
	done <<<"$lines"
	if [ "$status" -eq 0 ] && grep -q '^PROBE: [0-9]* passed, 0 failed' <<<"$out"; then
		ok "$name: run ends with 0 failed and powers off (status 0)"
	else
		not_ok "$name: run ends with 0 failed and powers off" "status $status" "stdout: $out" "stderr: $err"
	fi
}

for cpus in 1 4; do
	probe "pvh, $cpus vCPUs" --kernel "$PROBE_PVH" --cpus $cpus --memory 256M --initrd "$tmp/initrd" \
		--cmdline "probe=all,initrd probe.cpus=$cpus probe.mem=$((256 << 20)) probe.initrd_crc=$crc"
done
probe "bzImage, 2 vCPUs, 5G" --kernel "$PROBE_BZIMAGE" --cpus 2 --memory 5G --initrd "$tmp/initrd" \
	--cmdline "probe=all,initrd probe.cpus=2 probe.mem=$((5 << 30)) probe.initrd_crc=$crc"

# A bzImage whose payload is a vmlinux with a PVH note, as Linux's with CONFIG_PVH: cove
# decompresses it and boots it by PVH; --boot linux runs the boot protocol instead.
# probe_entry NAME ENTRY LOG: the guest started at ENTRY and cove's log says LOG.
probe_entry() {
	if grep -q "^PROBE: start: $2," <<<"$out" && grep -qF -- "$3" <<<"$err"; then
		ok "$1: $2, and cove says so"
	else
		not_ok "$1: $2, and cove logs '$3'" "stdout: $(head -n 3 <<<"$out")" "stderr: $err"
	fi
}
if [ -n "${PROBE_BZIMAGE_LZ4:-}" ]; then
	cmd="probe=all,initrd probe.cpus=2 probe.mem=$((256 << 20)) probe.initrd_crc=$crc"
	probe "lz4 bzImage, auto" --kernel "$PROBE_BZIMAGE_LZ4" --cpus 2 --memory 256M \
		--initrd "$tmp/initrd" --log-level info --cmdline "$cmd"
	probe_entry "lz4 bzImage, auto" "PVH entry" "kernel: bzImage booted by PVH: its lz4 payload"
	probe "lz4 bzImage, --boot pvh" --kernel "$PROBE_BZIMAGE_LZ4" --boot pvh --cpus 2 \
		--memory 256M --initrd "$tmp/initrd" --log-level info --cmdline "$cmd"
	probe_entry "lz4 bzImage, --boot pvh" "PVH entry" "kernel: bzImage booted by PVH"
	probe "lz4 bzImage, --boot linux" --kernel "$PROBE_BZIMAGE_LZ4" --boot linux --cpus 2 \
		--memory 256M --initrd "$tmp/initrd" --log-level info --cmdline "$cmd"
	probe_entry "lz4 bzImage, --boot linux" "Linux 64-bit entry" \
		"kernel: bzImage booted by the Linux boot protocol (--boot linux)"
	run plain-bz --kernel "$PROBE_BZIMAGE" --log-level info --cmdline "probe=boot"
	probe_entry "bzImage without a payload, auto" "Linux 64-bit entry" \
		"by the Linux boot protocol, not PVH: bzImage has no compressed payload"
else
	skip "lz4 bzImage booted by PVH" "the lz4 tool is missing (scripts/setup installs it)"
fi

# COM1 input: what arrives on stdin (a pipe), even before the guest has set up its UART,
# reaches the guest.
printf 'hello-com1' |
	timeout -s KILL 20 "$COVE" run --kernel "$PROBE_PVH" --cmdline "probe=serial probe.serial_in=hello-com1" \
		>"$tmp/serial.out" 2>"$tmp/serial.err"
status=${PIPESTATUS[1]}
if [ "$status" -eq 0 ] && grep -q '^PROBE: ok serial' "$tmp/serial.out"; then
	ok "COM1 input from stdin reaches the guest"
else
	not_ok "COM1 input from stdin reaches the guest" "status $status" "$(cat "$tmp/serial.out" "$tmp/serial.err")"
fi

# Demo mode: the built-in probe guest with no --kernel.
run demo
if [ "$status" -eq 0 ] && [ -n "$out" ] && ! grep -q 'PROBE: FAIL' <<<"$out" &&
	! grep -q 'KVM is PVM' <<<"$err"; then
	ok "cove run with no kernel boots the built-in probe guest (demo)"
else
	not_ok "cove run with no kernel boots the built-in probe guest (demo)" "status $status" "$out" "$err"
fi

# The boot-time marker (Firecracker's --boot-timer): the probe guest writes 123 at 0xC0000000
# once booted and cove logs the time; the tiny test guest never writes it and gets no line.
if grep -qE '^Guest-boot-time = [0-9]+ us [0-9]+ ms since cove started' <<<"$err"; then
	ok "boot timer: the probe guest's write of 123 is logged (${err%% since*})"
else
	not_ok "boot timer: the probe guest's write of 123 is logged" "$err"
fi
run no-marker --kernel "$PVH_GUEST" --cmdline p
if [ "$status" -eq 0 ] && ! grep -q 'Guest-boot-time' <<<"$err"; then
	ok "boot timer: no line for a guest that does not write the marker"
else
	not_ok "boot timer: no line for a guest that does not write the marker" "status $status" "$err"
fi

# Port 0x81, which nothing claims (0xCF8 is the PCI host bridge's since virtio): ignored,
# counted, not fatal.
run demo-info --log-level info --console none --cmdline "probe=exitloop probe.loops=10 probe.port=0x81"
if [ "$status" -eq 0 ] && grep -qE '[1-9][0-9]* accesses to unclaimed ports or addresses were ignored' <<<"$err"; then
	ok "unclaimed port accesses are ignored and counted"
else
	not_ok "unclaimed port accesses are ignored and counted" "status $status" "$err"
fi

finish
