#!/bin/bash
# virtio over PCI: the probe guest's PCI, virtio-blk (rw and read-only), virtio-rng and
# hostile-driver tests under `cove run` and under QEMU q35 (the reference), host-side checks
# of what the guest wrote, and the --disk/--rng options' errors. TAP output.
# Env: COVE, PROBE_PVH (set by meson), QEMU.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/guest/probe-lib.sh
. "$here/../guest/probe-lib.sh"
# shellcheck source=tests/integration/virtio/disk-lib.sh
. "$here/disk-lib.sh"

cove=${COVE:?set COVE to the cove binary}
pvh=${PROBE_PVH:?set PROBE_PVH to the probe guest PVH ELF}
qemu=${QEMU:-qemu-system-x86_64}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

skip=""
probe_kvm_ok || skip="/dev/kvm unavailable"
qskip=$skip
[ -z "$qskip" ] && ! command -v "$qemu" >/dev/null && qskip="$qemu not installed"

tests="pci vblk vblk_ro vrng vhostile vblk_mq"
list=$(echo "$tests" | tr " " ,)
# INTx through the IOAPIC runs under Cove only: under QEMU q35 the Interrupt Line register
# holds the firmware's PIC routing, not the IOAPIC input the probe would need.

# --- Cove ---
mkdisk "$work/d0.img"
cp "$work/d0.img" "$work/ro.img"
probe_run cove "$tests vblk_intx" ${skip:+--skip "$skip"} -- "$cove" run --log-level info --kernel "$pvh" --memory 256M \
	--disk "path=$work/d0.img,id=cove-test,queues=4" --disk "path=$work/ro.img,readonly=on" --rng \
	--cmdline "probe=$list,vblk_intx probe.blk_id=cove-test"
if [ -z "$skip" ]; then
	check_disk cove "$work/d0.img"
	n=$(printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -c 'virtio-blk: guest driver error')
	if [ "$n" -ge 3 ]; then
		probe_tap ok "cove logs one line per hostile chain ($n)"
	else
		probe_tap "not ok" "cove logged $n guest-driver errors, want at least 3"
	fi
	# The fast path: notifications through ioeventfd and interrupts through irqfd (or the
	# fallback, named in the log, where KVM refuses them).
	line=$(printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -a 'virtio-blk: .* notifications by ioeventfd' | head -n 1)
	kicks=$(printf '%s' "$line" | sed -n 's/.*: \([0-9]*\) notifications by ioeventfd.*/\1/p')
	irqfd=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) of them by irqfd.*/\1/p')
	if [ "${kicks:-0}" -gt 0 ] && [ "${irqfd:-0}" -gt 0 ]; then
		probe_tap ok "cove fast path: $kicks notifications by ioeventfd, $irqfd interrupts by irqfd"
	elif printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -q -E 'KVM_IOEVENTFD: |irqfd: '; then
		probe_tap ok "cove fast path" "SKIP KVM refused: $(printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -E 'KVM_IOEVENTFD: |irqfd: ' | head -n 1)"
	else
		probe_tap "not ok" "cove fast path: no ioeventfd/irqfd use reported ($line)"
	fi
	if cmp -s "$work/ro.img" <(python3 -c "
import sys
sys.stdout.buffer.write(b''.join(bytes(((s * 31 + j) & 255) for j in range(512)) for s in range(4096)))"); then
		probe_tap ok "cove read-only disk unchanged"
	else
		probe_tap "not ok" "cove read-only disk was changed"
	fi
fi

# Rate limits: 20 MB/s and 1000 requests/s on a disk; the guest's loop must see about that.
truncate -s 64M "$work/rl.img"
probe_run cove-ratelimit vblkbench ${skip:+--skip "$skip"} -- "$cove" run --memory 256M \
	--kernel "$pvh" --disk "path=$work/rl.img,bps=20000000,iops=1000" \
	--cmdline "probe=vblkbench probe.bench_mb=16 probe.bench_rand=500"
if [ -z "$skip" ]; then
	line=$(printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -a 'ok vblkbench')
	rd=$(printf '%s' "$line" | sed -n 's/.*seqread \([0-9]*\) MB.s.*/\1/p')
	wr=$(printf '%s' "$line" | sed -n 's/.*seqwrite \([0-9]*\) MB.s.*/\1/p')
	io=$(printf '%s' "$line" | sed -n 's/.*randread \([0-9]*\) IOPS.*/\1/p')
	if [ "${rd:-999}" -le 30 ] && [ "${wr:-999}" -le 30 ] && [ "${io:-99999}" -le 1500 ]; then
		probe_tap ok "cove-ratelimit held: $rd MB/s read, $wr MB/s write, $io IOPS"
	else
		probe_tap "not ok" "cove-ratelimit not held: $line"
	fi
fi

# The same disks and tests through the JSON config.
mkdisk "$work/d0.img"
cat >"$work/cfg.json" <<JSON
{"kernel": "$pvh", "memory": "256M", "rng": true,
 "disk": ["path=$work/d0.img,id=cove-test,aio=sync", "path=$work/ro.img,readonly=on"],
 "cmdline": "probe=pci,vblk,vblk_ro,vrng probe.blk_id=cove-test"}
JSON
probe_run cove-json "pci vblk vblk_ro vrng" ${skip:+--skip "$skip"} -- "$cove" run --config "$work/cfg.json"

# --- QEMU q35 (reference) ---
mkdisk "$work/q0.img"
probe_run qemu-q35 "$tests" ${qskip:+--skip "$qskip"} -- "$qemu" -M q35 -accel kvm -nodefaults \
	-no-user-config -nographic -serial stdio -no-reboot -m 256 -kernel "$pvh" \
	-append "probe=$list probe.blk_id=cove-test" \
	-drive "file=$work/q0.img,if=none,id=d0,format=raw" \
	-device virtio-blk-pci,drive=d0,serial=cove-test,disable-legacy=on,num-queues=4 \
	-drive "file=$work/ro.img,if=none,id=d1,format=raw,readonly=on" \
	-device virtio-blk-pci,drive=d1,disable-legacy=on -device virtio-rng-pci,disable-legacy=on
[ -z "$qskip" ] && check_disk qemu-q35 "$work/q0.img"

# --- virtio-console: both ways through a Unix socket (QEMU: virtconsole on a socket) ---
hvc_run() { # $1: label, $2: skip reason, then the VMM command
	local label=$1 why=$2 cpid
	shift 2
	rm -f "$work/hvc.sock"
	if [ -z "$why" ]; then
		python3 "$here/hvc_client.py" "$work/hvc.sock" >"$work/hvc.out" 2>&1 &
		cpid=$!
	fi
	probe_run "$label" vcon ${why:+--skip "$why"} -- "$@"
	[ -n "$why" ] && return
	if wait "$cpid"; then
		probe_tap ok "$label host side got the guest's answer"
	else
		probe_tap "not ok" "$label host side: $(tr -d '\n' <"$work/hvc.out")"
	fi
}
hvc_run cove-hvc "$skip" "$cove" run --kernel "$pvh" --hvc "uds=$work/hvc.sock" --cmdline probe=vcon
hvc_run qemu-q35-hvc "$qskip" "$qemu" -M q35 -accel kvm -nodefaults -no-user-config -nographic \
	-serial stdio -no-reboot -m 256 -kernel "$pvh" -append probe=vcon \
	-chardev "socket,id=c0,path=$work/hvc.sock,server=on,wait=off" \
	-device virtio-serial-pci,disable-legacy=on -device virtconsole,chardev=c0

# The guest sends 1 MiB on hvc0 to a client that does not read for 1 s (a small receive
# buffer), less than the 2 s Cove holds output back for: every byte must arrive, in order
# (hvc_bulk_client.py checks them against the guest's pattern), and Cove must count what it
# delivered, not what it tried to. QEMU's virtconsole drops what a full socket does not take, on
# purpose (flush_buf in its virtio-console.c: Linux's hvc driver spins for each buffer), so
# there only the guest's side is checked and the client's count is a comment.
hvc_bulk_run() { # $1: label, $2: skip reason, $3: strict|lossy, $4: the client's pause in
	# seconds [and the bytes the guest sends after its "more"], then the VMM command
	local label=$1 why=$2 mode=$3 cargs=$4 cpid
	shift 4
	rm -f "$work/hvcb.sock"
	if [ -z "$why" ]; then
		# shellcheck disable=SC2086 # cargs is one or two words
		python3 "$here/hvc_bulk_client.py" "$work/hvcb.sock" 1048576 $cargs >"$work/hvcb.out" 2>&1 &
		cpid=$!
	fi
	probe_run "$label" vcon_bulk ${why:+--skip "$why"} -- "$@"
	[ -n "$why" ] && return
	if wait "$cpid"; then
		probe_tap ok "$label slow client: $(tr -d '\n' <"$work/hvcb.out")"
	elif [ "$mode" = lossy ]; then
		probe_tap ok "$label slow client" "SKIP the reference drops on a full socket: $(tr -d '\n' <"$work/hvcb.out")"
	else
		probe_tap "not ok" "$label slow client: $(tr -d '\n' <"$work/hvcb.out")"
	fi
}
hvc_bulk_run cove-hvc-bulk "$skip" strict 1 "$cove" run --log-level info --kernel "$pvh" \
	--hvc "uds=$work/hvcb.sock" --cmdline "probe=vcon_bulk probe.con_bytes=1048576"
if [ -z "$skip" ]; then
	if printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -q 'virtio-console: 3 bytes to the guest, 1048576 from it delivered, 0 dropped'; then
		probe_tap ok "cove-hvc-bulk counted what the client took"
	else
		probe_tap "not ok" "cove-hvc-bulk counters: $(printf '%s\n' "$PROBE_LAST_OUTPUT" | grep 'virtio-console:' | head -n 1)"
	fi
fi
hvc_bulk_run qemu-q35-hvc-bulk "$qskip" lossy 1 "$qemu" -M q35 -accel kvm -nodefaults -no-user-config \
	-nographic -serial stdio -no-reboot -m 256 -kernel "$pvh" \
	-append "probe=vcon_bulk probe.con_bytes=1048576" \
	-chardev "socket,id=c0,path=$work/hvcb.sock,server=on,wait=off" \
	-device virtio-serial-pci,disable-legacy=on -device virtconsole,chardev=c0

# A client that stops reading for 4 s, past the 2 s limit: Cove drops what it holds and what
# comes meanwhile, so the guest's 1 MiB goes out (a Linux guest on hvc0 would hang otherwise),
# says so once, and counts the drop; once the client reads again and says "more", the guest's
# next 64 KiB reach it whole.
hvc_bulk_run cove-hvc-stall "$skip" strict "4 65536" "$cove" run --log-level info --kernel "$pvh" \
	--hvc "uds=$work/hvcb.sock" \
	--cmdline "probe=vcon_bulk probe.con_bytes=1048576 probe.con_more=65536"
if [ -z "$skip" ]; then
	warned=$(printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -c 'hvc: client not reading for 2 s; dropping console output until it reads')
	line=$(printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -a 'virtio-console: .* bytes to the guest' | head -n 1)
	sent=$(printf '%s' "$line" | sed -n 's/.*, \([0-9]*\) from it delivered, .*/\1/p')
	lost=$(printf '%s' "$line" | sed -n 's/.* delivered, \([0-9]*\) dropped.*/\1/p')
	took=$(sed -n 's/^client got \([0-9]*\) bytes.*/\1/p' "$work/hvcb.out")
	if [ "$warned" = 1 ] && [ "${lost:-0}" -gt 0 ] && [ "${sent:-x}" = "${took:-y}" ] &&
		[ $((sent + lost)) -eq $((1048576 + 65536)) ]; then
		probe_tap ok "cove-hvc-stall dropped $lost bytes, warned once, delivered what the client got"
	else
		probe_tap "not ok" "cove-hvc-stall: $warned warnings, client got ${took:-?}, log: $line"
	fi
fi
hvc_bulk_run qemu-q35-hvc-stall "$qskip" lossy "4 65536" "$qemu" -M q35 -accel kvm -nodefaults \
	-no-user-config -nographic -serial stdio -no-reboot -m 256 -kernel "$pvh" \
	-append "probe=vcon_bulk probe.con_bytes=1048576 probe.con_more=65536" \
	-chardev "socket,id=c0,path=$work/hvcb.sock,server=on,wait=off" \
	-device virtio-serial-pci,disable-legacy=on -device virtconsole,chardev=c0

# --- virtio-balloon: inflate (the host drops the pages: they read back as zero), deflate,
# statistics (Cove logs them) ---
probe_run cove-balloon vballoon ${skip:+--skip "$skip"} -- "$cove" run --log-level info \
	--kernel "$pvh" --memory 256M --balloon --cmdline "probe=vballoon probe.balloon_zero=1"
if [ -z "$skip" ]; then
	if printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -q 'virtio-balloon: 64 pages inflated, 64 deflated, 0 held; stats: free 102400 KiB'; then
		probe_tap ok "cove-balloon host saw the inflation, deflation and statistics"
	else
		probe_tap "not ok" "cove-balloon host-side log: $(printf '%s\n' "$PROBE_LAST_OUTPUT" | grep balloon | head -n 2)"
	fi
fi
# One inflate chain of 16384 pages: Cove takes a budget of pages per turn of its I/O thread, so
# a virtio-rng request posted after it is served before the whole list is (probe.balloon_fair;
# QEMU takes the list in one go, so only the result is checked there).
probe_run cove-balloon-big vballoon_big ${skip:+--skip "$skip"} -- "$cove" run --log-level info \
	--kernel "$pvh" --memory 256M --balloon --rng \
	--cmdline "probe=vballoon_big probe.balloon_zero=1 probe.balloon_fair=1"
if [ -z "$skip" ]; then
	if printf '%s\n' "$PROBE_LAST_OUTPUT" | grep -q 'virtio-balloon: 16384 pages inflated, 16400 deflated'; then
		probe_tap ok "cove-balloon-big host inflated every page of the long list once"
	else
		probe_tap "not ok" "cove-balloon-big host-side log: $(printf '%s\n' "$PROBE_LAST_OUTPUT" | grep balloon | head -n 2)"
	fi
fi
probe_run qemu-q35-balloon "vballoon vballoon_big" ${qskip:+--skip "$qskip"} -- "$qemu" -M q35 \
	-accel kvm -nodefaults -no-user-config -nographic -serial stdio -no-reboot -m 256 \
	-kernel "$pvh" -append "probe=vballoon,vballoon_big probe.balloon_zero=1" \
	-device virtio-balloon-pci,disable-legacy=on,deflate-on-oom=on

# --- virtio-balloon driven by the host: the probe follows each target (8 MiB from the command
# line, then 4 MiB and 0 set at run time), refills its statistics whenever the device hands
# them back, and checks DEFLATE_ON_OOM; balloon_host.py sets the targets (Cove: the
# Firecracker API; QEMU: QMP) and checks what the VMM reports. ---
balloon_run() { # $1: label, $2: skip reason, $3: cove|qemu, $4: socket, then the VMM command
	local label=$1 why=$2 kind=$3 sock=$4 hpid
	shift 4
	rm -f "$sock"
	if [ -z "$why" ]; then
		python3 "$here/balloon_host.py" "$kind" "$sock" 256 >"$work/balloon.out" 2>&1 &
		hpid=$!
	fi
	probe_run "$label" vballoon_target ${why:+--skip "$why"} -- "$@"
	[ -n "$why" ] && return
	if wait "$hpid"; then
		probe_tap ok "$label host side: $(grep -c '^ok' "$work/balloon.out") checks passed"
	else
		probe_tap "not ok" "$label host side: $(grep -v '^ok' "$work/balloon.out" | tr '\n' ' ')"
	fi
}
bcmd="probe=vballoon_target probe.balloon_steps=3 probe.balloon_refresh=2 probe.balloon_oom=1"
balloon_run cove-balloon-target "$skip" cove "$work/bal.sock" "$cove" run --kernel "$pvh" \
	--memory 256M --api-sock "$work/bal.sock" --cmdline "$bcmd" \
	--balloon amount_mib=8,deflate_on_oom=on,stats_polling_interval_s=1
balloon_run qemu-q35-balloon-target "$qskip" qemu "$work/qmp.sock" "$qemu" -M q35 -accel kvm \
	-nodefaults -no-user-config -nographic -serial stdio -no-reboot -m 256 -kernel "$pvh" \
	-qmp "unix:$work/qmp.sock,server=on,wait=off" -append "$bcmd" \
	-device virtio-balloon-pci,id=bal0,disable-legacy=on,deflate-on-oom=on

# virtio-vsock: vsock.sh.

# --- virtio-net: a tap in a network namespace this test makes (and removes) ---
# The guest (10.77.0.2) sends a UDP datagram to a listener on the tap's side (10.77.0.1:7777)
# that answers it; nothing leaves the namespace.
net_skip=$skip
if [ -z "$net_skip" ] && [ "$(id -u)" != 0 ]; then
	net_skip="needs root for ip netns and tap devices"
elif [ -z "$net_skip" ] && ! command -v ip >/dev/null; then
	net_skip="iproute2 (ip) not installed"
elif [ -z "$net_skip" ] && [ ! -c /dev/net/tun ]; then
	net_skip="no /dev/net/tun"
fi
ns=cove-vt-$$
mqns=cove-vtmq-$$ # its tap has several queues
mac=52:54:00:c0:7e:42
netns_up() { # $1: namespace, then extra `ip tuntap add` arguments
	local n=$1
	shift
	ip netns add "$n" || return 1
	ip -n "$n" link set lo up
	ip netns exec "$n" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1
	ip -n "$n" tuntap add dev vtap0 mode tap "$@" &&
		ip -n "$n" addr add 10.77.0.1/24 dev vtap0 &&
		ip -n "$n" link set vtap0 up &&
		ip -n "$n" neigh add 10.77.0.2 lladdr "$mac" dev vtap0 nud permanent
}
netns_down() {
	ip netns del "$ns" 2>/dev/null
	ip netns del "$mqns" 2>/dev/null
}
echo_server() { # answers one datagram, for at most 60 s
	ip netns exec "$ns" timeout 60 python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.77.0.1", 7777))
d, a = s.recvfrom(2048)
s.sendto(d.replace(b"cove-ping-", b"cove-pong-"), a)
' &
	echo_pid=$!
	sleep 0.3
}
if [ -z "$net_skip" ]; then
	trap 'netns_down; rm -rf "$work"' EXIT
	netns_up "$ns" || net_skip="cannot make a network namespace with a tap"
fi
peer=""
[ -z "$net_skip" ] && peer=$(ip netns exec "$ns" cat /sys/class/net/vtap0/address)
netcmd="probe=vnet probe.net_peer=$peer probe.net_mac=$mac"
[ -z "$net_skip" ] && echo_server
probe_run cove-net vnet ${net_skip:+--skip "$net_skip"} -- ip netns exec "$ns" "$cove" run \
	--kernel "$pvh" --memory 256M --net "tap=vtap0,mac=$mac" --cmdline "$netcmd"
[ -z "$net_skip" ] && { kill "$echo_pid" 2>/dev/null; wait "$echo_pid" 2>/dev/null; }
qnet_skip=$net_skip
[ -z "$qnet_skip" ] && qnet_skip=$qskip
[ -z "$qnet_skip" ] && echo_server
probe_run qemu-q35-net vnet ${qnet_skip:+--skip "$qnet_skip"} -- ip netns exec "$ns" "$qemu" \
	-M q35 -accel kvm -nodefaults -no-user-config -nographic -serial stdio -no-reboot -m 256 \
	-kernel "$pvh" -append "$netcmd" \
	-netdev tap,id=n0,ifname=vtap0,script=no,downscript=no,vhost=off \
	-device "virtio-net-pci,netdev=n0,mac=$mac,disable-legacy=on"
[ -z "$qnet_skip" ] && { kill "$echo_pid" 2>/dev/null; wait "$echo_pid" 2>/dev/null; }
# A NIC limited to 10 MB/s of transmit: the guest's send loop must see about 80 Mbit/s.
probe_run cove-net-ratelimit vnetbench ${net_skip:+--skip "$net_skip"} -- ip netns exec "$ns" \
	"$cove" run --kernel "$pvh" --memory 256M --net "tap=vtap0,mac=$mac,bps=10000000" \
	--cmdline "probe=vnetbench probe.bench_frames=15000"
if [ -z "$net_skip" ]; then
	mbit=$(printf '%s\n' "$PROBE_LAST_OUTPUT" | sed -n 's/.*frames\/s, \([0-9]*\) Mbit\/s.*/\1/p')
	if [ -n "$mbit" ] && [ "$mbit" -le 100 ]; then
		probe_tap ok "cove-net-ratelimit held: $mbit Mbit/s"
	else
		probe_tap "not ok" "cove-net-ratelimit not held: ${mbit:-no figure} Mbit/s"
	fi
fi
# The same NIC started without a limit, limited at run time through the API (2 MB/s, then
# 8 MB/s, then none) while the guest sends; net_limit_host.py measures the tap's counter.
rm -f "$work/nl.sock"
if [ -z "$net_skip" ]; then
	python3 "$here/net_limit_host.py" "$work/nl.sock" "$ns" vtap0 >"$work/nl.out" 2>&1 &
	nlpid=$!
fi
probe_run cove-net-ratelimit-live vnetbench ${net_skip:+--skip "$net_skip"} -- ip netns exec \
	"$ns" "$cove" run --kernel "$pvh" --memory 256M --net "tap=vtap0,mac=$mac" \
	--api-sock "$work/nl.sock" --cmdline "probe=vnetbench probe.bench_frames=30000 probe.bench_wait_ms=3000"
if [ -z "$net_skip" ]; then
	if wait "$nlpid"; then
		probe_tap ok "cove-net-ratelimit-live host side: $(grep -E 'MB/s the tap' "$work/nl.out" | sed 's/^ok //' | tr '\n' ';')"
	else
		probe_tap "not ok" "cove-net-ratelimit-live host side: $(grep -v '^ok' "$work/nl.out" | tr '\n' ' ')"
	fi
fi
# A tap made without multi_queue cannot give several queues: a clear error.
if [ -z "$net_skip" ]; then
	out=$(ip netns exec "$ns" "$cove" run --console none --kernel "$pvh" \
		--net "tap=vtap0,queues=2" 2>&1 </dev/null)
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -lt 128 ] && printf '%s' "$out" | grep -q 'made with multi_queue'; then
		probe_tap ok "rejects queues=2 on a single-queue tap"
	else
		probe_tap "not ok" "queues=2 on a single-queue tap: status $rc, $(printf '%s' "$out" | head -c 200)"
	fi
else
	probe_tap ok "rejects queues=2 on a single-queue tap" "SKIP $net_skip"
fi

# --- virtio-net with 4 queue pairs on a multi_queue tap (its own namespace): the guest sets 4
# pairs through the control queue and sends a datagram on each pair; mq_echo.py answers each
# and checks they came from each pair's port; each answer must come back on its pair (the tap
# steers a flow's answers to the queue it left from). Cove's per-pair counters (its log) show
# that every pair's tap queue carried a frame each way. ---
mq_skip=$net_skip
if [ -z "$mq_skip" ]; then
	netns_up "$mqns" multi_queue || mq_skip="cannot make a multi_queue tap"
fi
mqpeer=""
[ -z "$mq_skip" ] && mqpeer=$(ip netns exec "$mqns" cat /sys/class/net/vtap0/address)
mqcmd="probe=vnet_mq probe.net_peer=$mqpeer probe.net_mac=$mac"
mq_run() { # $1: label, $2: skip reason, then the VMM command
	local label=$1 why=$2 epid
	shift 2
	if [ -z "$why" ]; then
		ip netns exec "$mqns" timeout 60 python3 "$here/mq_echo.py" 4 >"$work/mq.out" 2>&1 &
		epid=$!
		sleep 0.3
	fi
	probe_run "$label" vnet_mq ${why:+--skip "$why"} -- ip netns exec "$mqns" "$@"
	[ -n "$why" ] && return
	for _ in $(seq 30); do kill -0 "$epid" 2>/dev/null || break; sleep 0.1; done
	kill "$epid" 2>/dev/null
	if wait "$epid"; then
		probe_tap ok "$label host side: $(head -n 1 "$work/mq.out")"
	else
		probe_tap "not ok" "$label host side: $(tr '\n' ' ' <"$work/mq.out")"
	fi
}
mq_run cove-net-mq "$mq_skip" "$cove" run --log-level info --kernel "$pvh" --memory 256M \
	--net "tap=vtap0,mac=$mac,queues=4" --cmdline "$mqcmd"
if [ -z "$mq_skip" ]; then
	per=$(printf '%s\n' "$PROBE_LAST_OUTPUT" | sed -n 's/.*virtio-net: 4 queue pairs.*per pair: *//p')
	if [ -n "$per" ] && printf '%s\n' "$per" | tr ' ' '\n' | awk -F/ '
		NF == 2 && $1 >= 1 && $2 >= 1 { ok++ } END { exit ok == 4 ? 0 : 1 }'; then
		probe_tap ok "cove-net-mq every pair's tap queue carried traffic (received/sent: $per)"
	else
		probe_tap "not ok" "cove-net-mq per-pair counters: ${per:-none logged}"
	fi
fi
qmq_skip=$mq_skip
[ -z "$qmq_skip" ] && qmq_skip=$qskip
mq_run qemu-q35-net-mq "$qmq_skip" "$qemu" -M q35 -accel kvm -nodefaults -no-user-config \
	-nographic -serial stdio -no-reboot -m 256 -kernel "$pvh" -append "$mqcmd" \
	-netdev tap,id=n0,ifname=vtap0,script=no,downscript=no,vhost=off,queues=4 \
	-device "virtio-net-pci,netdev=n0,mac=$mac,disable-legacy=on,mq=on,vectors=10"
[ -z "$net_skip" ] && netns_down

# --- Option errors: one clear line, status 2, no crash ---
bad() { # $1: description, $2: regex the message must match, then options
	local desc=$1 want=$2 out rc
	shift 2
	out=$("$cove" run --console none "$@" 2>&1 </dev/null)
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -lt 128 ] && printf '%s' "$out" | grep -q -E "$want"; then
		probe_tap ok "rejects $desc"
	else
		probe_tap "not ok" "rejects $desc: status $rc, output: $(printf '%s' "$out" | head -c 200)"
	fi
}
bad "--disk without path" "path= is required" --disk readonly=on
bad "--disk readonly=maybe" "readonly 'maybe'" --disk "path=$work/d0.img,readonly=maybe"
bad "--disk unknown key" "unknown disk option 'colour'" --disk "path=$work/d0.img,colour=red"
bad "--disk id too long" "at most 20 bytes" --disk "path=$work/d0.img,id=123456789012345678901"
bad "a missing disk image" "no-such.img: No such file" --disk "path=$work/no-such.img"
bad "--net with a bad mac" "mac 'zz'" --net "tap=t0,mac=zz"
bad "--vsock without uds" "cid= and uds= are required" --vsock cid=3
bad "--vsock cid=2" "cid 2: must be 3 or more" --vsock cid=2,uds=/tmp/x
bad "--hvc with both ends" "one of uds=PATH or file=PATH" --hvc "uds=/tmp/x,file=/tmp/y"
bad "--hvc drop_after_ms=0" "drop_after_ms: at least 1" --hvc "uds=/tmp/x,drop_after_ms=0"
bad "--net with a tap name too long" "tap '0123456789abcdefg': 1 to 15 bytes" --net tap=0123456789abcdefg
bad "--net queues=17" "queues '17': expected a number up to 16" --net tap=t0,queues=17
bad "--net queues=0" "queues: at least 1" --net tap=t0,queues=0
bad "--balloon with an unknown key" "unknown balloon option 'colour'" --balloon colour=red
bad "--balloon bigger than the guest" "amount_mib 999: more than the guest's 128 MiB" \
	--memory 128M --balloon amount_mib=999

probe_done
