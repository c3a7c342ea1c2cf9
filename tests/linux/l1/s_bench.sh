# shellcheck shell=sh
# Benchmarks inside L1 (rig.py --bench): Cove against QEMU with KVM, same kernel, initramfs,
# vCPUs and memory, in one run, order alternated, several rounds; medians reported.

# /rig/qemu runs QEMU from the assets disk.
qemu() { /rig/qemu "$@"; }

BCMD="$CMDBASE rig.end=poweroff"
# A boot that hangs is killed (status 137 in its line) instead of stalling L1 for good.
WD="timeout -s KILL 300"

boot_cove() {
	rigtool timeline "L2: init" $WD cove run --kernel $K --initrd $I --memory 256M --cpus 1 \
		--cmdline "$BCMD" 2>/dev/null
}
boot_microvm() {
	rigtool timeline "L2: init" $WD /rig/qemu -M microvm -accel kvm -cpu host -m 256M -smp 1 \
		-nodefaults -no-user-config -display none -serial stdio -kernel $K -initrd $I \
		-append "$BCMD" 2>/dev/null
}
boot_q35() {
	rigtool timeline "L2: init" $WD /rig/qemu -M q35 -accel kvm -cpu host -m 256M -smp 1 \
		-nodefaults -no-user-config -display none -serial stdio -kernel $K -initrd $I \
		-append "$BCMD" 2>/dev/null
}

# median of the numbers on stdin (one a line)
median() { sort -n | awk '{v[NR] = $1} END {if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
minmax() { sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s..%s", lo, hi}'; }

s_bench_boot() {
	rounds=$(arg rounds)
	: >$W/boot.txt
	r=
	i=0
	while [ $i -lt "${rounds:-3}" ]; do
		# Alternate the order: each tool goes first in turn.
		case $((i % 3)) in
		0) order="cove microvm q35" ;;
		1) order="microvm q35 cove" ;;
		*) order="q35 cove microvm" ;;
		esac
		for t in $order; do
			out=$(boot_$t) || r="$r; $t round $i: $out"
			echo "$t $out" >>$W/boot.txt
		done
		i=$((i + 1))
	done
	for t in cove microvm q35; do
		for f in first exit; do
			grep "^$t " $W/boot.txt | sed -n "s/.* $f=\([0-9.]*\).*/\1/p" >$W/$t.$f
			eval "${t}_$f=$(median <$W/$t.$f)"
			info "boot $t exec->$([ $f = first ] && echo "first /init line" || echo "exit after poweroff"): median $(median <$W/$t.$f) s (min..max $(minmax <$W/$t.$f), ${rounds:-3} rounds)"
		done
	done
	for f in first exit; do
		eval "c=\$cove_$f m=\$microvm_$f q=\$q35_$f"
		info "boot ratio ($f): cove/microvm $(awk "BEGIN {printf \"%.3f\", $c / $m}"), cove/q35 $(awk "BEGIN {printf \"%.3f\", $c / $q}")"
	done
	grep -q "status=[1-9]" $W/boot.txt && r="$r; a boot exited non-zero: $(grep 'status=[1-9]' $W/boot.txt | head -n 1)"
	report bench_linux_boot "$r"
}

# Cove alone, each kernel's bzImage two ways: by PVH after Cove decompresses its payload (the
# default, --boot auto) and by the boot protocol (--boot linux: its own decompressor runs in
# L2). The cloud kernel's payload is LZ4, the generic kernel's xz.
boot_cove_as() { # KERNEL INITRD auto|linux
	rigtool timeline "L2: init" $WD cove run --kernel $1 --initrd $2 --boot $3 --memory 256M \
		--cpus 1 --cmdline "$BCMD" 2>/dev/null
}

s_bench_boot_paths() {
	rounds=$(arg rounds)
	: >$W/paths.txt
	r=
	i=0
	while [ $i -lt "${rounds:-3}" ]; do
		[ $((i % 2)) = 0 ] && order="auto linux" || order="linux auto"
		for k in cloud generic; do
			[ $k = cloud ] && set -- $K $I || set -- $KG $IG
			for m in $order; do
				out=$(boot_cove_as "$1" "$2" $m) || r="$r; $k $m round $i: $out"
				echo "$k-$m $out" >>$W/paths.txt
			done
		done
		i=$((i + 1))
	done
	for k in cloud generic; do
		for f in first exit; do
			for m in auto linux; do
				grep "^$k-$m " $W/paths.txt | sed -n "s/.* $f=\([0-9.]*\).*/\1/p" >$W/$k.$m.$f
			done
			a=$(median <$W/$k.auto.$f) l=$(median <$W/$k.linux.$f)
			info "boot $k bzImage exec->$([ $f = first ] && echo "first /init line" || echo "exit after poweroff"): by PVH $a s ($(minmax <$W/$k.auto.$f)), --boot linux $l s ($(minmax <$W/$k.linux.$f)); pvh/linux $(awk "BEGIN {printf \"%.3f\", $a / $l}")"
		done
	done
	grep -q "status=[1-9]" $W/paths.txt && r="$r; a boot exited non-zero: $(grep 'status=[1-9]' $W/paths.txt | head -n 1)"
	report bench_linux_boot_paths "$r"
}

s_bench_fio() {
	rounds=$(arg rounds)
	truncate -s 512M $W/data.img
	: >$W/fio.txt
	r=
	i=0
	while [ $i -lt "${rounds:-3}" ]; do
		[ $((i % 2)) = 0 ] && order="cove qemu" || order="qemu cove"
		for t in $order; do
			LOG=$W/fio_$t.log
			if [ $t = cove ]; then
				timeout -s KILL 600 cove run --kernel $K --initrd $I --memory 512M --cpus 2 \
					--disk path=$TOOLS,readonly=on,id=tools \
					--disk path=$W/data.img,format=raw,id=data \
					--cmdline "$CMDBASE rig.t=bench_fio rig.end=poweroff rig.fiotime=$(arg fiotime)" \
					</dev/null >$LOG 2>&1
			else
				timeout -s KILL 600 /rig/qemu -M q35 -accel kvm -cpu host -m 512M -smp 2 \
					-nodefaults -no-user-config -display none -serial stdio \
					-kernel $K -initrd $I \
					-append "$CMDBASE rig.t=bench_fio rig.end=poweroff rig.fiotime=$(arg fiotime)" \
					-drive file=$TOOLS,if=none,id=t,readonly=on,format=raw \
					-device virtio-blk-pci,drive=t,serial=tools \
					-drive file=$W/data.img,if=none,id=d,format=raw,aio=io_uring,cache=writeback \
					-device virtio-blk-pci,drive=d,serial=data </dev/null >$LOG 2>&1
			fi
			sed -i 's/\r$//' $LOG
			l2ok bench_fio || r="$r; $t round $i: $(l2why bench_fio)"
			for j in seqread seqwrite randread; do
				echo "$t $j $(l2info fio_$j)" >>$W/fio.txt
			done
		done
		i=$((i + 1))
	done
	# seqread: read KiB/s ($1); seqwrite: write KiB/s ($3); randread: read IOPS ($2).
	for j in seqread:1 seqwrite:3 randread:2; do
		name=${j%%:*} col=${j#*:}
		for t in cove qemu; do
			grep "^$t $name " $W/fio.txt | awk -v c=$col '{print $(2 + c)}' >$W/$t.$name
		done
		c=$(median <$W/cove.$name) q=$(median <$W/qemu.$name)
		unit=$([ $col = 2 ] && echo IOPS || echo KiB/s)
		info "fio $name: cove median $c $unit ($(minmax <$W/cove.$name)), qemu aio=io_uring median $q $unit ($(minmax <$W/qemu.$name)); cove/qemu $(awk "BEGIN {printf \"%.3f\", ${c:-0} / (${q:-0} + 1e-9)}")"
	done
	report bench_linux_fio "$r"
}
