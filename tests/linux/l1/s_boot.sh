# shellcheck shell=sh
# Boot scenarios: both kernel formats, with and without an initramfs, vCPUs, memory
# across the 32-bit PCI hole, poweroff, reboot, panic, the boot-time marker.

# boot_path WANT: shows cove's "kernel: ..." line (--log-level info); WHY is empty when it
# says WANT.
boot_path() {
	l=$(grep -m 1 '^cove: kernel: ' "$LOG")
	info "${l#cove: }"
	case $l in *"$1"*) WHY= ;; *) WHY="cove did not say '$1' (${l:-no 'kernel:' line})" ;; esac
}

s_boot_bzimage() {
	# By default the bzImage's vmlinux (Debian's has CONFIG_PVH) is decompressed by Cove and
	# booted by PVH.
	l2run boot_bzimage 120 "" poweroff --log-level info
	r=$(clean_end)
	[ "$(l2info cpus_online)" = 0 ] || r="$r; cpus online: $(l2info cpus_online)"
	report boot_bzimage_initrd_poweroff "$r"
	boot_path "bzImage booted by PVH: its lz4 payload"
	report boot_bzimage_by_pvh "$WHY"
	# Firecracker's marker: the guest's init wrote 123 to the boot-timer page.
	has "Guest-boot-time = [0-9]* us" && r= || r="no Guest-boot-time line"
	report boot_timer_line "$r"
	info "bzImage boot to poweroff: ${SECS}s"
	# --boot linux: the boot protocol, the kernel's own decompressor (and its KASLR).
	l2run boot_bzimage_linux 120 "" poweroff --boot linux --log-level info
	r=$(clean_end)
	boot_path "bzImage booted by the Linux boot protocol (--boot linux)"
	report boot_bzimage_boot_protocol "$r${WHY:+; $WHY}"
	info "bzImage by the boot protocol to poweroff: ${SECS}s"
}

s_boot_generic() {
	KERNEL=$KG INITRD=$IG l2run boot_generic 120 "" poweroff --cpus 2 --log-level info
	r=$(clean_end)
	case $(l2info kernel) in *-amd64) [ -n "${r}" ] || case $(l2info kernel) in *cloud*) r="booted the cloud kernel" ;; esac ;; *) r="$r; kernel $(l2info kernel)" ;; esac
	report boot_generic_kernel "$r"
	boot_path "bzImage booted by PVH: its xz payload"
	report boot_generic_by_pvh "$WHY"
}

s_boot_pvh() {
	KERNEL=$KPVH l2run boot_pvh 120 "" poweroff
	r=$(clean_end)
	report boot_pvh_elf_initrd "$r"
}

s_boot_noinitrd() {
	# No initramfs: the stock kernel has virtio-blk as a module, so it boots to the point
	# of mounting a root it cannot find, panics, and panic=-1 resets: Cove exits 0.
	INITRD= l2run boot_noinitrd 120 "" poweroff
	r=
	[ "$RC" = 0 ] || r="cove exited $RC"
	has "VFS: Unable to mount root fs" || r="$r; no 'Unable to mount root fs'"
	report boot_without_initrd "$r"
}

s_boot_smp_memory() {
	# vCPUs all online, and memory across the PCI hole: 3.5 GiB ends past the 3 GiB start of
	# the hole, 4.5 GiB goes above 4 GiB.
	for nm in 2:3584 4:4608; do
		n=${nm%%:*} mb=${nm#*:}
		l2run boot_smp$n 200 "" poweroff --cpus $n --memory ${mb}M --log-level debug
		r=$(clean_end)
		if [ $n = 2 ]; then
			# Every port or address Linux touches is claimed (absent legacy ports included).
			grep -q "unclaimed" "$LOG" && u=$(grep "unclaimed" "$LOG" | head -n 3 | tr '\n' ' ') || u=
			report boot_linux_no_unclaimed_access "$u"
		fi
		rc=$r
		[ "$(l2info cpus_online)" = "0-$((n - 1))" ] || r="$r; cpus online: $(l2info cpus_online)"
		[ "$(l2info nproc)" = "$n" ] || r="$r; processors: $(l2info nproc)"
		report boot_${n}_vcpus_online "$r"
		r=$rc
		kb=$(l2info mem_map_kb)
		# The memory map gives all of it but the legacy hole below 1 MiB.
		[ "${kb:-0}" -ge $(((mb - 1) * 1024)) ] && [ "$kb" -le $((mb * 1024)) ] ||
			r="$r; the kernel found $kb kB of RAM for ${mb} MiB"
		report boot_memory_${mb}M "$r"
	done
}

s_boot_reboot() {
	# --on-reboot restart: the first boot reboots, the second powers off (a disk counts).
	truncate -s 1M $W/mark.img
	l2run reboot_restart 240 reboot_count poweroff --on-reboot restart \
		--disk path=$W/mark.img,id=mark
	r=$(clean_end)
	[ "$(grep -c '^L2: info boot_number=' "$LOG")" = 2 ] || r="$r; $(grep -c '^L2: info boot_number=' "$LOG") boots"
	[ "$(l2info boot_number)" = 2 ] || r="$r; last boot number $(l2info boot_number)"
	report reboot_restart_boots_twice "$r"

	l2run reboot_exit 120 "" reboot --on-reboot exit
	r=
	[ "$RC" = 0 ] || r="cove exited $RC"
	grep -q '^L2: end' "$LOG" || r="$r; no end"
	[ "$(grep -c '^L2: info boot=' "$LOG")" = 1 ] || r="$r; booted $(grep -c '^L2: info boot=' "$LOG") times"
	report reboot_exit "$r"
}

s_boot_panic() {
	l2run panic 120 "" panic
	r=
	[ "$RC" = 0 ] || r="cove exited $RC"
	has "Kernel panic" || r="$r; no 'Kernel panic' line"
	report kernel_panic_resets "$r"
}

s_console_input() {
	l2start console 120 "" shell
	r=
	if wait_for "^L2: shell ready" 60; then
		sleep 1
		echo 'echo rig-$((6*7))' >&3
		wait_for "^rig-42" 20 || r="typed command gave no output"
		echo 'poweroff -f' >&3
	else
		r="no shell"
	fi
	l2wait
	[ "$RC" = 0 ] || r="$r; cove exited $RC"
	report console_typed_input "$r"
}
