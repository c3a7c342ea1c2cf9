# shellcheck shell=sh
# virtio-net on a tap in L1, virtio-rng, vsock through the Unix-socket bridge, the
# virtio console, the balloon through the API.

tap_up() { # tap_up NAME [multi_queue]: L1 is 10.0.2.1/24 on it
	/usr/sbin/ip link del "$1" 2>/dev/null
	/usr/sbin/ip tuntap add "$1" mode tap ${2:+multi_queue} 2>$W/ip.err &&
		/usr/sbin/ip addr add 10.0.2.1/24 dev "$1" 2>>$W/ip.err && /usr/sbin/ip link set "$1" up 2>>$W/ip.err
}

s_net() {
	for q in 1 2; do
		tap_up tap0 $([ $q -gt 1 ] && echo mq) || {
			report net_ping_tcp_mac_queues_$q "cannot make a tap in L1: $(cat $W/ip.err)"
			continue
		}
		rigtool tcp-recv 5001 >$W/in.bin &
		RECV=$!
		mac=52:54:00:c0:0e:0$q
		l2start net$q 240 net poweroff --cpus $q --net tap=tap0,mac=$mac,queues=$q
		r=
		if wait_for "^L2: net ready" 150; then
			ping -c 3 -W 5 10.0.2.2 >$W/ping.out 2>&1 || r="ping from L1: $(tail -n 2 $W/ping.out | tr '\n' ' ')"
			sleep 1
			rigtool gen 8388608 12 | rigtool tcp-send 10.0.2.2 5002 >/dev/null || r="$r; send to the guest failed"
		else
			r="the guest's network did not come up"
		fi
		l2wait
		wait $RECV
		r="$r$(clean_end)"
		l2ok net || r="$r; $(l2why net)"
		[ "$(file_sum $W/in.bin)" = "$(gen_sum 8388608 11)" ] ||
			r="$r; guest->L1 TCP data differ ($(wc -c <$W/in.bin) bytes; first difference: $(rigtool gen 8388608 11 | cmp - $W/in.bin 2>&1 | head -n 1))"
		[ "$(l2info tcp_in_sum)" = "$(gen_sum 8388608 12)" ] || r="$r; L1->guest TCP data differ ($(l2info tcp_in_bytes) bytes)"
		[ "$(l2info mac)" = "$mac" ] || r="$r; MAC $(l2info mac), want $mac"
		[ "$(l2info queues)" = "$q" ] || r="$r; $(l2info queues) rx queues, want $q"
		report net_ping_tcp_mac_queues_$q "$r"
		/usr/sbin/ip link del tap0
	done
}

# vsock_host_side: L1's half of check_vsock_in and check_vsock_out (log in $LOG).
vsock_host_side() {
	if wait_for "^L2: vsock ready" 150; then
		rigtool gen 262144 22 | rigtool uds-send $W/v.sock 7000 >/dev/null 2>$W/send.err ||
			echo "host->guest: $(cat $W/send.err)"
	else
		echo "the guest did not get ready"
	fi
}

vsock_verdicts() { # vsock_verdicts SUFFIX: reports both directions of the last run
	r=$2
	l2ok vsock_in || r="$r; $(l2why vsock_in)"
	[ "$(l2info vsock_in_sum)" = "$(gen_sum 262144 22)" ] || r="$r; host->guest data differ ($(l2info vsock_in_bytes) bytes)"
	report vsock_host_to_guest_256k$1 "$r"
	r=$2
	l2ok vsock_out || r="$r; $(l2why vsock_out)"
	[ "$(file_sum $W/vin.bin)" = "$(gen_sum 1048576 21)" ] || r="$r; guest->host data differ ($(wc -c <$W/vin.bin) bytes)"
	report vsock_guest_to_host_1m$1 "$r"
}

s_vsock() {
	# The host reads the guest's 1 MiB only after a 5 s stall.
	rigtool uds-recv $W/v.sock_6000 | { dd bs=1 count=1 2>/dev/null; sleep 5; cat; } >$W/vin.bin &
	RECV=$!
	l2start vsock 240 vsock_in,vsock_out poweroff --vsock cid=3,uds=$W/v.sock
	r=$(vsock_host_side)
	l2wait
	kill $RECV 2>/dev/null
	wait $RECV
	vsock_verdicts "" "$r$(clean_end)"
}

s_hvc() {
	mkfifo $W/hvc.in
	l2start hvc 240 rng,hvc,hvc_stall poweroff --rng --hvc uds=$W/hvc.sock
	n=0
	while [ ! -S $W/hvc.sock ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
	rigtool uds-cat $W/hvc.sock <$W/hvc.in >$W/hvc.out &
	CAT=$!
	exec 4>$W/hvc.in
	r=
	n=0
	while ! grep -q "hvc hello from L2" $W/hvc.out && [ $n -lt 600 ]; do sleep 0.2; n=$((n + 1)); done
	grep -q "hvc hello from L2" $W/hvc.out || r="nothing from the guest on the socket"
	echo "hvc hello from L1" >&4
	# Then a client that connects and never reads.
	wait_for "^L2: ok hvc" 120
	exec 4>&-
	kill $CAT 2>/dev/null
	wait $CAT 2>/dev/null
	rigtool uds-idle $W/hvc.sock 100 &
	IDLE=$!
	sleep 1
	echo go >&3
	l2wait
	kill $IDLE 2>/dev/null
	r="$r$(clean_end)"
	l2ok hvc || r="$r; $(l2why hvc)"
	[ "$(l2info hvc_in)" = "hvc hello from L1" ] || r="$r; the guest read '$(l2info hvc_in)'"
	report hvc_console_both_ways "$r"
	r=$(clean_end)
	l2ok hvc_stall || r="$r; $(l2why hvc_stall)"
	has "dropping console output" || r="$r; no warning that output is dropped"
	info "hvc: 1 MiB to a client that does not read took $(l2info hvc_stall_ms) ms in the guest"
	report hvc_client_not_reading_does_not_hang_guest "$r"
	r=$(clean_end)
	l2ok rng || r="$r; $(l2why rng)"
	report rng_hwrng "$r"
}



s_balloon() {
	l2start balloon 240 balloon poweroff --memory 512M --api-sock $W/api.sock \
		--balloon amount_mib=0,deflate_on_oom=off,stats_polling_interval_s=1
	r=
	if wait_for "^L2: balloon ready" 150; then
		api PATCH /balloon '{"amount_mib": 128}' >$W/api.out || r="PATCH /balloon: $(cat $W/api.out)"
		wait_for "^L2: balloon inflated" 90 || r="$r; the guest did not see the inflation"
		sleep 2
		api GET /balloon/statistics >$W/stats.out || r="$r; GET /balloon/statistics: $(cat $W/stats.out)"
		grep -q '"free_memory"' $W/stats.out && grep -q '"total_memory"' $W/stats.out ||
			r="$r; no guest statistics: $(tail -n 1 $W/stats.out)"
		grep -q '"actual_mib": *128' $W/stats.out || r="$r; actual_mib is not 128: $(tail -n 1 $W/stats.out)"
		api PATCH /balloon '{"amount_mib": 0}' >$W/api.out || r="$r; deflate: $(cat $W/api.out)"
	else
		r="the guest did not get ready"
	fi
	l2wait
	r="$r$(clean_end)"
	l2ok balloon || r="$r; $(l2why balloon)"
	report balloon_inflate_stats_deflate "$r"
}
