# shellcheck shell=sh
# The checks the L2 agent (init) runs, one function check_NAME each: 0 passes; on failure
# set why="..." and return 1. L1 judges the "L2: info" facts they print.

# A disk named by id= (its virtio serial), or fail.
need_disk() {
	d=$(disk_by_id "$1") || { why="no disk with serial $1: $(cat /sys/block/vd*/serial 2>/dev/null | tr '\n' ' ')"; return 1; }
	echo "$d"
}

# ext4 made by mke2fs in the guest, a file written and synced; L1 checks it with e2fsck
# and debugfs.
check_blk_ext4() {
	d=$(need_disk data) || return 1
	tool mke2fs -q -F -t ext4 "$d" || { why="mke2fs failed"; return 1; }
	mount -t ext4 "$d" /m || { why="mount failed"; return 1; }
	rigtool gen 4194304 7 >/m/file && sync || { why="write failed"; return 1; }
	info ext4_sum "$(sha256sum </m/file | cut -c1-64)"
	umount /m || { why="umount failed"; return 1; }
}

# The first 1 MiB of disk "data" as seen by the guest.
check_blk_read() {
	d=$(need_disk data) || return 1
	info data_sum "$(head -c 1048576 "$d" | sha256sum | cut -c1-64)"
	info data_size "$(cat /sys/block/${d#/dev/}/size)"
}

# Writes 1 MiB of gen(seed 5) at 2 MiB into disk "data", then flushes.
check_blk_write() {
	d=$(need_disk data) || return 1
	rigtool gen 1048576 5 | dd of="$d" bs=65536 seek=32 conv=fsync 2>/dev/null ||
		{ why="write failed"; return 1; }
}

# Disk "ro" refuses writes; the kernel marks it read-only.
check_blk_ro() {
	d=$(need_disk ro) || return 1
	[ "$(cat /sys/block/${d#/dev/}/ro)" = 1 ] || { why="/sys/block ro is not 1"; return 1; }
	if echo x | dd of="$d" conv=fsync 2>/dev/null; then why="a write succeeded"; return 1; fi
	return 0
}

# Every disk the guest has: serial, size in sectors, and the sum of its first 64 KiB.
check_blk_list() {
	for b in /sys/block/vd*; do
		n=${b##*/}
		info "disk_$(cat $b/serial)" "$(cat $b/size):$(head -c 65536 /dev/$n | sha256sum | cut -c1-16)"
	done
}

# fstrim on an ext4 with 32 MiB of data deleted; blkdiscard-style zeroing via BLKZEROOUT.
check_blk_discard() {
	d=$(need_disk data) || return 1
	[ "$(cat /sys/block/${d#/dev/}/queue/discard_max_bytes)" != 0 ] || { why="no discard support"; return 1; }
	tool mke2fs -q -F -t ext4 -E nodiscard "$d" || { why="mke2fs failed"; return 1; }
	mount -t ext4 "$d" /m || { why="mount failed"; return 1; }
	rigtool gen 33554432 3 >/m/big && sync
	rm /m/big && sync
	fstrim -v /m >/tmp/trim 2>&1 || { why="fstrim: $(cat /tmp/trim)"; umount /m; return 1; }
	info trimmed "$(cat /tmp/trim)"
	umount /m
}

check_blk_zeroes() {
	d=$(need_disk zero) || return 1
	[ "$(cat /sys/block/${d#/dev/}/queue/write_zeroes_max_bytes)" != 0 ] || { why="no write-zeroes support"; return 1; }
	rigtool zeroout "$d" 1048576 2097152 || { why="BLKZEROOUT failed"; return 1; }
	sync
}

# Writes 2 MiB of gen(seed 9) at offset 0 of disk "data", flushes, says so, and waits to be
# killed.
check_blk_flush() {
	d=$(need_disk data) || return 1
	# fsync on the block device sends the flush (sync(2) alone does not, for a raw device).
	rigtool gen 2097152 9 | dd of="$d" bs=65536 conv=fsync 2>/dev/null || { why="write failed"; return 1; }
	say "flushed"
}

# The same 2 MiB with O_DIRECT and no flush: completed by the device, never flushed.
check_blk_noflush() {
	d=$(need_disk data) || return 1
	rigtool gen 2097152 9 | dd of="$d" bs=65536 oflag=direct 2>/tmp/dd.err || { why="write failed: $(cat /tmp/dd.err)"; return 1; }
	say "flushed"
}

check_blk_fio() {
	d=$(need_disk fio) || return 1
	tool fio --name=rw --filename="$d" --direct=1 --ioengine=libaio --iodepth=16 --rw=randrw \
		--bs=4k --size=16M --verify=crc32c --do_verify=1 --runtime=20 --time_based=0 \
		--output=/tmp/fio.out >/dev/null 2>&1 || { why="fio: $(tail -3 /tmp/fio.out)"; return 1; }
	grep -q "err= 0" /tmp/fio.out || { why="fio reported errors"; return 1; }
}

# --- network: L1 is 10.0.2.1 on its tap; the guest takes 10.0.2.2 -------------------
net_up() {
	ip link set eth0 up && ip addr add 10.0.2.2/24 dev eth0 2>/dev/null
	ip link set lo up
}

check_net() {
	[ -e /sys/class/net/eth0 ] || { why="no eth0"; return 1; }
	net_up
	info mac "$(cat /sys/class/net/eth0/address)"
	info queues "$(ls -d /sys/class/net/eth0/queues/rx-* | wc -l)"
	ping -c 3 -W 5 10.0.2.1 >/tmp/ping 2>&1 || { why="ping L1: $(tail -2 /tmp/ping)"; return 1; }
	# Guest -> L1: 8 MiB through TCP; L1 checks the sum.
	rigtool gen 8388608 11 | rigtool tcp-send 10.0.2.1 5001 >/dev/null || { why="tcp send failed"; return 1; }
	# L1 -> guest.
	say "net ready"
	rigtool tcp-recv 5002 >/tmp/in
	info tcp_in_sum "$(sha256sum </tmp/in | cut -c1-64)"
	info tcp_in_bytes "$(wc -c </tmp/in)"
	rm -f /tmp/in
}

check_rng() {
	[ -c /dev/hwrng ] || { why="no /dev/hwrng"; return 1; }
	cur=$(cat /sys/class/misc/hw_random/rng_current)
	info rng_current "$cur"
	case $cur in virtio_rng*) ;; *) why="rng_current is $cur"; return 1 ;; esac
	n=$(dd if=/dev/hwrng bs=4096 count=4 2>/dev/null | wc -c)
	[ "$n" = 16384 ] || { why="read $n bytes from /dev/hwrng"; return 1; }
}

# Host -> guest: L1 connects to port 7000 and sends 256 KiB, then closes; the guest must
# see all of it and the end of the stream.
check_vsock_in() {
	[ -e /dev/vsock ] || { why="no /dev/vsock"; return 1; }
	rigtool vsock-recv 7000 >/tmp/in &
	sleep 0.5
	say "vsock ready"
	wait $! || { why="vsock recv failed"; return 1; }
	info vsock_in_sum "$(sha256sum </tmp/in | cut -c1-64)"
	info vsock_in_bytes "$(wc -c </tmp/in)"
	rm -f /tmp/in
}

# Guest -> host: 1 MiB to host port 6000 (L1 listens on UDS_6000; in s_vsock it reads
# nothing for a while: what its socket does not hold waits in the device, the rest here
# for credit).
check_vsock_out() {
	[ -e /dev/vsock ] || { why="no /dev/vsock"; return 1; }
	rigtool gen 1048576 21 | rigtool vsock-send 2 6000 >/dev/null 2>/tmp/err || { why="vsock send: $(cat /tmp/err)"; return 1; }
}

# The console port: what L1 wrote to the socket comes back, upper-cased.
check_hvc() {
	[ -c /dev/hvc0 ] || { why="no /dev/hvc0"; return 1; }
	echo "hvc hello from L2" >/dev/hvc0
	read -t 60 line </dev/hvc0 || { why="nothing read from hvc0"; return 1; }
	info hvc_in "$line"
}

# A host client that stays connected but reads nothing must not hang the guest: after L1
# says "go", 1 MiB written to hvc0 completes (Cove drops what the client does not take
# after 2 s without progress).
check_hvc_stall() {
	wait_word go 600 || { why="L1 never said go"; return 1; }
	t0=$(uptime_ms)
	rigtool gen 1048576 2 >/dev/hvc0 || { why="write to hvc0 failed"; return 1; }
	info hvc_stall_ms $(($(uptime_ms) - t0))
}

memtotal() { awk '/MemTotal/ {print $2}' /proc/meminfo; }

# Balloon: L1 inflates to 128 MiB, the guest sees MemTotal fall; then deflates.
check_balloon() {
	[ -d /sys/bus/virtio/drivers/virtio_balloon ] || { why="no balloon driver"; return 1; }
	before=$(memtotal)
	info mem_before "$before"
	say "balloon ready"
	n=0
	while [ $n -lt 120 ]; do
		now=$(memtotal)
		[ $((before - now)) -ge 120000 ] && break
		sleep 0.5; n=$((n + 1))
	done
	info mem_inflated "$now"
	[ $((before - now)) -ge 120000 ] || { why="MemTotal went from $before to $now kB"; return 1; }
	say "balloon inflated"
	n=0
	while [ $n -lt 120 ]; do
		now=$(memtotal)
		[ $((before - now)) -lt 8192 ] && break
		sleep 0.5; n=$((n + 1))
	done
	info mem_deflated "$now"
	[ $((before - now)) -lt 8192 ] || { why="after deflate MemTotal is $now kB (was $before)"; return 1; }
}

# Ticks every 200 ms of guest time, with uptime, for L1's pause test.
check_ticks() {
	i=0
	while [ $i -lt 60 ]; do
		say "tick $i $(uptime_ms)"
		sleep 0.2; i=$((i + 1))
	done
}

# Reads 4 MiB of disk "data" with O_DIRECT and reports the rate.
check_readrate() {
	d=$(need_disk data) || return 1
	r=$(rigtool readrate "$d" 4194304) || { why="read failed"; return 1; }
	info readrate "$r"
}

# Counts boots on disk "mark" (its first sector holds a number) and reboots the first time.
check_reboot_count() {
	d=$(need_disk mark) || return 1
	n=$(head -c 16 "$d" | tr -dc 0-9)
	n=$((${n:-0} + 1))
	printf '%-16s' "$n" | dd of="$d" conv=fsync 2>/dev/null
	info boot_number "$n"
	if [ "$n" -lt 2 ]; then say "rebooting"; reboot -f; sleep 30; fi
}

# Reads disk "data" (4 MiB, O_DIRECT) under its rate limit, says so, waits for L1 to lift
# the limit ("go" on ttyS0), reads again.
check_ratelimit() {
	d=$(need_disk data) || return 1
	r=$(rigtool readrate "$d" 4194304) || { why="first read failed"; return 1; }
	info rate_limited "$r"
	say "rate limited done"
	wait_word go 600 || { why="L1 never said go"; return 1; }
	r=$(rigtool readrate "$d" 4194304) || { why="second read failed"; return 1; }
	info rate_free "$r"
}

# A writer that keeps a disk busy (for confinement runs): 16 MiB through ext4, read back.
check_blk_rw() {
	d=$(need_disk data) || return 1
	tool mke2fs -q -F -t ext4 "$d" || { why="mke2fs failed"; return 1; }
	mount -t ext4 "$d" /m || { why="mount failed"; return 1; }
	rigtool gen 16777216 13 >/m/f && sync && echo 3 >/proc/sys/vm/drop_caches
	s=$(sha256sum </m/f | cut -c1-64)
	umount /m
	[ "$s" = "$(rigtool gen 16777216 13 | sha256sum | cut -c1-64)" ] || { why="read back other data"; return 1; }
}

# The first 1 MiB of disk "ov" (a qcow2 overlay).
check_blk_read2() {
	d=$(need_disk ov) || return 1
	info ov_sum "$(head -c 1048576 "$d" | sha256sum | cut -c1-64)"
}

# A balloon that starts inflated to 64 MiB: MemTotal ends up at least 60 MiB lower.
check_balloon_static() {
	[ -d /sys/bus/virtio/drivers/virtio_balloon ] || { why="no balloon driver"; return 1; }
	total=$(dmesg | sed -n 's/.*Memory: [0-9]*K\/\([0-9]*\)K available.*/\1/p')
	n=0
	while [ $n -lt 120 ]; do
		now=$(memtotal)
		[ $((total - now)) -ge 61440 ] && break
		sleep 0.5; n=$((n + 1))
	done
	info mem_static "$now"
	# Only the balloon's 64 MiB and the kernel's own reservations are missing.
	[ $((total - now)) -ge 61440 ] || { why="MemTotal $now kB of $total"; return 1; }
}

# The benchmark's fio jobs on disk "data" (queue depth 16, O_DIRECT, libaio), each for
# rig.fiotime seconds: "L2: info fio_JOB=READ_KiB/s READ_IOPS WRITE_KiB/s WRITE_IOPS".
check_bench_fio() {
	d=$(need_disk data) || return 1
	secs=$(arg fiotime)
	for job in seqread:read:1M seqwrite:write:1M randread:randread:4k; do
		name=${job%%:*} rest=${job#*:}
		tool fio --name="$name" --filename="$d" --direct=1 --ioengine=libaio --iodepth=16 \
			--rw="${rest%%:*}" --bs="${rest#*:}" --size=256M --time_based --runtime="${secs:-5}" \
			--ramp_time=1 --output-format=terse --terse-version=3 >/tmp/fio.out 2>&1 ||
			{ why="fio $name: $(tail -n 2 /tmp/fio.out)"; return 1; }
		info "fio_$name" "$(awk -F';' '{print $7, $8, $48, $49}' /tmp/fio.out)"
	done
}
