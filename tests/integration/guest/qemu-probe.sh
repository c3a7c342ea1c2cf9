#!/bin/bash
# Boots the probe guest (PVH ELF and bzImage) under QEMU, the reference VMM: -M microvm and
# -M q35 with KVM, every probe test, a demo run, and a run whose tests must fail. TAP output.
# probe64.bzImage (microvm only) is the bzImage whose real-mode stub plays a 64-bit loader,
# so the 64-bit entry (load address + 0x200) is exercised too.
# Env: PROBE_PVH, PROBE_BZIMAGE, PROBE_BZIMAGE64 (set by meson), QEMU (qemu-system-x86_64).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/probe-lib.sh"

qemu=${QEMU:-qemu-system-x86_64}
pvh=${PROBE_PVH:?set PROBE_PVH to the probe guest PVH ELF}
bz=${PROBE_BZIMAGE:?set PROBE_BZIMAGE to the probe guest bzImage}
bz64=${PROBE_BZIMAGE64:-$(dirname "$bz")/probe64.bzImage} # enters at the 64-bit entry

skip=""
if ! probe_kvm_ok; then
	skip="/dev/kvm unavailable"
elif ! command -v "$qemu" >/dev/null; then
	skip="$qemu not installed"
elif [ ! -f "$pvh" ] || [ ! -f "$bz" ] || [ ! -f "$bz64" ]; then
	skip="probe guest not built"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
initrd=$work/initrd.img
head -c 200000 /dev/urandom >"$initrd"
serial_in="cove-serial-$RANDOM"
mem=268435456
tests="boot initrd acpi smp timer rtc serial exitloop"
list=${tests// /,}

qemu_args() { # $1: machine, $2: kernel, $3: cpus, $4: memory (MiB), $5: cmdline, [$6: initrd]
	a=(-M "$1" -accel kvm -nodefaults -no-user-config -nographic
		-serial stdio -no-reboot -smp "$3" -m "$4" -kernel "$2" -append "$5")
	[ -n "${6:-}" ] && a+=(-initrd "$6")
	return 0
}

run() { # $1: label, $2: tests, $3: input, then QEMU arguments
	local label=$1 t=$2 in=$3
	shift 3
	probe_run "$label" "$t" --input "$in" ${skip:+--skip "$skip"} -- "$qemu" "$@"
}

for m in microvm q35; do
	machine=$m
	kernels="pvh bzimage"
	if [ $m = microvm ]; then
		machine=microvm,rtc=on
		kernels="pvh bzimage bzimage64"
	fi
	for k in $kernels; do
		case $k in
		pvh) kernel=$pvh ;;
		bzimage) kernel=$bz ;;
		bzimage64) kernel=$bz64 ;;
		esac
		cpus=4
		[ $m = q35 ] && cpus=2
		hint=0
		[ $k = pvh ] && hint=1 # QEMU's PVH entry gives the RSDP; its bzImage path does not
		cmd=$(PROBE_RSDP_HINT=$hint probe_cmdline "$list" $mem $cpus "$initrd" "$serial_in" 2000)
		qemu_args $machine "$kernel" $cpus 256 "$cmd" "$initrd"
		run "$m-$k" "$tests" "$serial_in" "${a[@]}"
	done
done

# Memory above the 32-bit hole: the map must still cover all of it.
cmd=$(probe_cmdline boot $((3584 * 1048576)) 1)
qemu_args microvm,rtc=on "$bz" 1 3584 "$cmd"
run "microvm-bzimage-3.5G" "boot" "" "${a[@]}"

# Demo mode: no probe= on the command line.
qemu_args microvm,rtc=on "$pvh" 2 128 "console=ttyS0"
run "microvm-pvh-demo" "" "" "${a[@]}"
if [ -z "$skip" ]; then
	if printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -q 'CPUs: 2 in the MADT, 2 online'; then
		probe_tap ok "microvm-pvh-demo lists 2 CPUs online"
	else
		probe_tap "not ok" "microvm-pvh-demo lists 2 CPUs online"
		printf '%s\n' "$PROBE_LAST_OUTPUT" | sed 's/^/# /'
	fi
else
	probe_tap ok "microvm-pvh-demo lists 2 CPUs online" "SKIP $skip"
fi

# Resets (probe.exit=): qemu-reset.sh runs QEMU without -no-reboot and succeeds once the
# guest boots a second time, so a poweroff (or nothing) fails these.
for e in reset-acpi triplefault; do
	qemu_args microvm,rtc=on "$pvh" 1 128 "probe=rtc probe.exit=$e"
	b=()
	for x in "${a[@]}"; do [ "$x" = -no-reboot ] || b+=("$x"); done
	probe_run "microvm-pvh-$e" "rtc" --end reset ${skip:+--skip "$skip"} -- \
		"$here/qemu-reset.sh" "$qemu" "${b[@]}"
done

# The tests can fail: wrong expectations must each give FAIL.
cmd="probe=boot,initrd,smp,serial,bogus probe.mem=$((mem * 2)) probe.cpus=3"
cmd="$cmd probe.initrd_crc=deadbeef probe.serial_in=expected"
qemu_args microvm,rtc=on "$pvh" 2 256 "$cmd" "$initrd"
probe_run "microvm-pvh-wrong" "boot initrd smp serial bogus" --input "different" --expect-fail \
	${skip:+--skip "$skip"} -- "$qemu" "${a[@]}"

probe_done
