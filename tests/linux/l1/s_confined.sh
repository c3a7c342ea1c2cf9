# shellcheck shell=sh
# --sandbox and --seccomp with a Linux guest using every device at once: disks (raw and a
# qcow2 overlay), a NIC, rng, vsock both ways, the console port, the balloon. No system call
# that Linux's drivers cause may be killed (SIGSYS: status 159).

s_confined() {
	for mode in sandbox seccomp; do
		truncate -s 128M $W/data.img
		rigtool gen 16777216 61 >$W/base.raw
		cove img create -q -f qcow2 -b $W/base.raw -F raw $W/ov.qcow2 >/dev/null 2>&1
		tap_up tap0 || { report confined_$mode "cannot make a tap: $(cat $W/ip.err)"; continue; }
		rigtool tcp-recv 5001 >$W/in.bin &
		TCP=$!
		rm -f $W/v.sock $W/v.sock_6000
		# The confined VMM runs as its own user: the host's listening socket must let it
		# connect (docs/sandbox.md, "Limits").
		(umask 0; exec rigtool uds-recv $W/v.sock_6000 >$W/vin.bin) &
		VRECV=$!
		set -- --sandbox
		[ $mode = seccomp ] && set -- --seccomp --api-sock $W/api.sock
		l2start confined_$mode 400 blk_rw,blk_read2,rng,net,vsock_in,vsock_out,balloon_static poweroff \
			--cpus 2 --memory 384M "$@" --disk path=$W/data.img,id=data,format=raw \
			--disk path=$W/ov.qcow2,id=ov --net tap=tap0 --rng \
			--vsock cid=3,uds=$W/v.sock --balloon amount_mib=64,deflate_on_oom=off \
			--hvc file=$W/hvc.out
		r=
		if wait_for "^L2: net ready" 300; then
			sleep 1
			rigtool gen 8388608 12 | rigtool tcp-send 10.0.2.2 5002 >/dev/null || r="send to the guest failed"
		else
			r="the guest's network did not come up"
		fi
		rv=$(vsock_host_side)
		l2wait
		kill $TCP $VRECV 2>/dev/null
		wait $TCP $VRECV 2>/dev/null
		/usr/sbin/ip link del tap0
		r="$r$(clean_end)"
		[ "$RC" = 159 ] && r="$r; killed by seccomp (SIGSYS)"
		for c in blk_rw blk_read2 rng net balloon_static; do
			l2ok $c || r="$r; $c: $(l2why $c)"
		done
		[ "$(file_sum $W/in.bin)" = "$(gen_sum 8388608 11)" ] || r="$r; guest->L1 TCP data differ"
		[ "$(l2info tcp_in_sum)" = "$(gen_sum 8388608 12)" ] || r="$r; L1->guest TCP data differ"
		[ "$(l2info ov_sum)" = "$(file_sum $W/base.raw 1048576)" ] || r="$r; the qcow2 overlay read other data"
		report confined_${mode}_linux_devices "$r"
		vsock_verdicts _$mode "$rv"
	done
}
