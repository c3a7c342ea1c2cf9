#!/bin/bash
# The probe guest under `cove run`, the same runs as qemu-probe.sh where Cove has the
# feature: PVH, bzImage (64-bit entry), every test, memory above 4 GiB, demo mode, each
# probe.exit reset, and expected failures. A test that fails only here is a Cove bug.
# Env: COVE, PROBE_PVH, PROBE_BZIMAGE (set by meson).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/probe-lib.sh"

cove=${COVE:?set COVE to the cove binary}
pvh=${PROBE_PVH:?set PROBE_PVH to the probe guest PVH ELF}
bz=${PROBE_BZIMAGE:?set PROBE_BZIMAGE to the probe guest bzImage}

skip=""
if ! probe_kvm_ok; then
	skip="/dev/kvm unavailable"
elif [ ! -x "$cove" ] || [ ! -f "$pvh" ] || [ ! -f "$bz" ]; then
	skip="cove or the probe guest not built"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
initrd=$work/initrd.img
head -c 200000 /dev/urandom >"$initrd"
serial_in="cove-serial-$RANDOM"
export PROBE_RSDP_HINT=1 # Cove's boot data carries the RSDP address on both entries
tests="boot initrd acpi smp timer rtc serial exitloop"
list=${tests// /,}

for k in pvh bzimage; do
	kernel=$pvh
	[ $k = bzimage ] && kernel=$bz
	cmd=$(probe_cmdline "$list" $((256 << 20)) 4 "$initrd" "$serial_in" 2000)
	probe_run "cove-$k" "$tests" --input "$serial_in" ${skip:+--skip "$skip"} -- \
		"$cove" run --kernel "$kernel" --initrd "$initrd" --cpus 4 --memory 256M --cmdline "$cmd"
done

# Cove's MADT: one IOAPIC, and overrides for IRQ 0 (-> GSI 2) and the SCI.
if [ -z "$skip" ]; then
	if printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -q 'ok acpi:.* 1 IOAPICs, 2 overrides'; then
		probe_tap ok "cove-bzimage MADT: 1 IOAPIC, 2 interrupt overrides"
	else
		probe_tap "not ok" "cove-bzimage MADT: 1 IOAPIC, 2 interrupt overrides"
	fi
fi

cmd=$(probe_cmdline boot,acpi,smp $((5 << 30)) 2)
probe_run "cove-bzimage-5G" "boot acpi smp" ${skip:+--skip "$skip"} -- \
	"$cove" run --kernel "$bz" --cpus 2 --memory 5G --cmdline "$cmd"

# Demo mode: the probe guest built into cove (no --kernel).
probe_run "cove-demo" "" ${skip:+--skip "$skip"} -- "$cove" run --cpus 2
if [ -z "$skip" ] && printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -q 'CPUs: 2 in the MADT, 2 online'; then
	probe_tap ok "cove-demo lists 2 CPUs online"
elif [ -n "$skip" ]; then
	probe_tap ok "cove-demo lists 2 CPUs online" "SKIP $skip"
else
	probe_tap "not ok" "cove-demo lists 2 CPUs online"
	printf '%s\n' "$PROBE_LAST_OUTPUT" | tail -n 20 | sed 's/^/#   /'
fi

# Resets: cove exits 0 and says why; a poweroff instead would print "had no effect".
for e in reset-acpi reset-i8042 reset-cf9 triplefault; do
	probe_run "cove-pvh-$e" "rtc" --end reset ${skip:+--skip "$skip"} -- \
		"$cove" run --kernel "$pvh" --cmdline "probe=rtc probe.exit=$e"
	if [ -z "$skip" ]; then
		if printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -q -i '^cove:.*\(reset\|triple\)'; then
			probe_tap ok "cove-pvh-$e: cove reports the reset"
		else
			probe_tap "not ok" "cove-pvh-$e: cove reports the reset"
		fi
	fi
done

cmd="probe=boot,initrd,smp,serial,bogus probe.mem=$((512 << 20)) probe.cpus=3"
cmd="$cmd probe.initrd_crc=deadbeef probe.serial_in=expected"
probe_run "cove-pvh-wrong" "boot initrd smp serial bogus" --input "different" --expect-fail \
	${skip:+--skip "$skip"} -- "$cove" run --kernel "$pvh" --initrd "$initrd" --cpus 2 \
	--memory 256M --cmdline "$cmd"

# A command line whose length is not what the host says fails the boot test on its own.
probe_run "cove-pvh-cmdline-len" "boot" --expect-fail ${skip:+--skip "$skip"} -- \
	"$cove" run --kernel "$pvh" --cmdline "probe=boot probe.cmdline_len=5"

probe_done
