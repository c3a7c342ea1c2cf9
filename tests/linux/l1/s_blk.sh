# shellcheck shell=sh
# virtio-blk with Linux's driver: raw and qcow2 (with a backing file), read-only, several
# disks, ext4 made in the guest and checked on L1, discard and write-zeroes reaching the
# image, a flush surviving kill -9 of the VMM, fio with verification.

s_blk_ext4() {
	truncate -s 256M $W/data.img
	truncate -s 64M $W/fio.img
	l2run blk_ext4 240 blk_ext4,blk_fio poweroff --cpus 2 --disk path=$W/data.img,id=data \
		--disk path=$W/fio.img,id=fio
	r=$(clean_end)
	l2ok blk_ext4 || r="$r; $(l2why blk_ext4)"
	if [ -z "$r" ]; then
		e2fsck -fn $W/data.img >$W/fsck.out 2>&1 || r="e2fsck -fn: $(tail -n 3 $W/fsck.out | tr '\n' ' ')"
		sum=$(debugfs -R "cat /file" $W/data.img 2>/dev/null | sha256sum | cut -c1-64)
		[ "$sum" = "$(gen_sum 4194304 7)" ] || r="$r; the file read on L1 differs"
		[ "$sum" = "$(l2info ext4_sum)" ] || r="$r; the guest read back another sum"
	fi
	report blk_raw_ext4_mkfs_write_fsck_clean "$r"
	r=$(clean_end)
	l2ok blk_fio || r="$r; $(l2why blk_fio)"
	report blk_fio_randrw_verify "$r"
}

s_blk_qcow2() {
	# A raw base with known data, a qcow2 overlay on it; the guest reads the base's bytes
	# through the overlay and writes; the write lands in the overlay, never in the base.
	rigtool gen 67108864 1 >$W/base.raw
	cove img create -q -f qcow2 -b $W/base.raw -F raw $W/ov.qcow2 >$W/img.out 2>&1
	base_sum=$(file_sum $W/base.raw)
	l2run blk_qcow2 180 blk_read,blk_write poweroff --disk path=$W/ov.qcow2,id=data
	r=$(clean_end)
	l2ok blk_write || r="$r; $(l2why blk_write)"
	[ "$(l2info data_sum)" = "$(file_sum $W/base.raw 1048576)" ] || r="$r; the guest read other bytes than the backing file's"
	[ "$(l2info data_size)" = $((67108864 / 512)) ] || r="$r; size $(l2info data_size) sectors"
	[ "$(file_sum $W/base.raw)" = "$base_sum" ] || r="$r; the backing file changed"
	cove img convert -O raw $W/ov.qcow2 $W/ov.raw >$W/img.out 2>&1 || r="$r; convert: $(cat $W/img.out)"
	[ "$(file_sum $W/ov.raw 1048576 2097152)" = "$(gen_sum 1048576 5)" ] || r="$r; the guest's write is not in the overlay"
	[ "$(file_sum $W/ov.raw 1048576)" = "$(file_sum $W/base.raw 1048576)" ] || r="$r; unwritten data differs from the base"
	cove img check $W/ov.qcow2 >$W/img.out 2>&1 || r="$r; check: $(tail -n 2 $W/img.out)"
	report blk_qcow2_backing_read_write "$r"
}

s_blk_ro_many() {
	# Three disks (two read-write, one read-only); each the guest sees with its size and
	# content; writes to the read-only one fail and the image does not change.
	rigtool gen 4194304 31 >$W/a.img
	rigtool gen 8388608 32 >$W/b.img
	rigtool gen 2097152 33 >$W/ro.img
	ro_sum=$(file_sum $W/ro.img)
	l2run blk_many 180 blk_list,blk_ro poweroff --disk path=$W/a.img,id=a \
		--disk path=$W/b.img,id=b --disk path=$W/ro.img,id=ro,readonly=on
	r=$(clean_end)
	for d in a:4194304:31 b:8388608:32 ro:2097152:33; do
		id=${d%%:*} rest=${d#*:}
		want="$((${rest%%:*} / 512)):$(rigtool gen 65536 ${rest#*:} | sha256sum | cut -c1-16)"
		[ "$(l2info disk_$id)" = "$want" ] || r="$r; disk $id: $(l2info disk_$id), want $want"
	done
	report blk_several_disks "$r"
	r=
	l2ok blk_ro || r="$(l2why blk_ro)"
	[ "$(file_sum $W/ro.img)" = "$ro_sum" ] || r="$r; the read-only image changed"
	report blk_readonly_refuses_writes "$r"
}

# Allocated KiB of a file.
alloc_kb() { du -k "$1" | cut -f1; }

s_blk_discard() {
	truncate -s 256M $W/data.img
	truncate -s 16M $W/zero.img
	rigtool gen 16777216 41 >$W/zero.img
	l2run blk_discard 240 blk_discard,blk_zeroes poweroff --disk path=$W/data.img,id=data \
		--disk path=$W/zero.img,id=zero
	r=$(clean_end)
	l2ok blk_discard || r="$r; $(l2why blk_discard)"
	# 32 MiB were written and deleted: after fstrim the image holds far less than that.
	kb=$(alloc_kb $W/data.img)
	[ "$kb" -lt 24576 ] || r="$r; the image still holds $kb KiB after fstrim"
	e2fsck -fn $W/data.img >/dev/null 2>&1 || r="$r; e2fsck after fstrim"
	report blk_discard_fstrim_reaches_image "$r"
	r=
	l2ok blk_zeroes || r="$(l2why blk_zeroes)"
	[ "$(file_sum $W/zero.img 2097152 1048576)" = "$(head -c 2097152 /dev/zero | sha256sum | cut -c1-64)" ] ||
		r="$r; the range does not read as zeros"
	[ "$(file_sum $W/zero.img 1048576)" = "$(gen_sum 1048576 41)" ] || r="$r; data before the range changed"
	report blk_write_zeroes_reach_image "$r"
}

s_blk_flush_kill() {
	# The guest writes and flushes, then the VMM is killed: the data must be in the image.
	# Then writes the guest never flushed: completed writes to a qcow2 image are written
	# back (metadata included) within a second of a pause, so they survive too.
	for fmt in raw qcow2 qcow2-noflush; do
		rm -f $W/data.img
		cove img create -f ${fmt%-noflush} $W/data.img 64M >$W/img.out 2>&1
		check=blk_flush
		[ $fmt = qcow2-noflush ] && check=blk_noflush
		l2start blk_flush_$fmt 180 $check wait --disk path=$W/data.img,id=data
		r=
		if wait_for "^L2: flushed" 120; then
			[ $fmt = qcow2-noflush ] && sleep 3
			kill -9 $PID
		else
			r="the guest did not flush"
		fi
		l2wait
		cove img convert -O raw $W/data.img $W/data.raw >$W/img.out 2>&1 || r="$r; convert: $(cat $W/img.out)"
		[ "$(file_sum $W/data.raw 2097152)" = "$(gen_sum 2097152 9)" ] || r="$r; flushed data lost"
		if [ $fmt != raw ]; then
			cove img check $W/data.img >$W/img.out 2>&1 || r="$r; check: $(tail -n 2 $W/img.out | tr '\n' ' ')"
		fi
		if [ $fmt = qcow2-noflush ]; then
			report blk_unflushed_qcow2_writes_survive_kill9 "$r"
		else
			report blk_flush_survives_kill9_$fmt "$r"
		fi
		rm -f $W/data.raw
	done
}
