# shellcheck shell=sh
# The Firecracker-style API socket with a Linux guest: configure and start it through the
# API with a root filesystem disk; pause and resume; a rate limit measured in the guest.

s_api() {
	cp $ROOTFS $W/root.img
	rigtool gen 8388608 51 >$W/data.img
	name=api secs=300
	LOG=$W/api.log
	rm -f $W/api.in
	mkfifo $W/api.in
	T0=$(date +%s)
	cove run --api-sock $W/api.sock <$W/api.in >$LOG 2>&1 &
	PID=$!
	exec 3>$W/api.in
	(sleep $secs; kill -9 $PID 2>/dev/null) &
	WD=$!
	r=
	api PUT /boot-source "{\"kernel_image_path\": \"$K\", \"initrd_path\": \"$I\", \"boot_args\": \"$CMDBASE rig.root=serial:rootfs rig.t=ticks,ratelimit rig.end=poweroff\"}" >$W/a.out ||
		r="boot-source: $(cat $W/a.out)"
	api PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}' >$W/a.out || r="$r; machine-config: $(cat $W/a.out)"
	api PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$W/root.img\", \"is_root_device\": true, \"is_read_only\": false}" >$W/a.out ||
		r="$r; drives/rootfs: $(cat $W/a.out)"
	api PUT /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$W/data.img\", \"is_root_device\": false, \"is_read_only\": true, \"rate_limiter\": {\"bandwidth\": {\"size\": 1048576, \"refill_time\": 1000}}}" >$W/a.out ||
		r="$r; drives/data: $(cat $W/a.out)"
	api PUT /drives/tools "{\"drive_id\": \"tools\", \"path_on_host\": \"$TOOLS\", \"is_root_device\": false, \"is_read_only\": true}" >$W/a.out ||
		r="$r; drives/tools: $(cat $W/a.out)"
	api PUT /actions '{"action_type": "InstanceStart"}' >$W/a.out || r="$r; InstanceStart: $(cat $W/a.out)"
	wait_for "^L2: tick 5 " 150 || r="$r; the guest did not start ticking"
	[ "$(l2info rootfs)" ] || r="$r; the guest did not switch to its root disk"
	report api_configure_start_rootfs "$r"

	# Pause: no tick may appear while paused; after resume they go on.
	r=
	api PATCH /vm '{"state": "Paused"}' >$W/a.out || r="PATCH Paused: $(cat $W/a.out)"
	sleep 1
	c1=$(grep -c "^L2: tick" $LOG)
	sleep 3
	c2=$(grep -c "^L2: tick" $LOG)
	[ "$c1" = "$c2" ] || r="$r; $((c2 - c1)) ticks while paused"
	api GET / >$W/a.out && grep -q Paused $W/a.out || r="$r; GET / says $(tail -n 1 $W/a.out)"
	api PATCH /vm '{"state": "Resumed"}' >$W/a.out || r="$r; PATCH Resumed: $(cat $W/a.out)"
	wait_for "^L2: tick $((c2 + 3)) " 60 || r="$r; no ticks after resume"
	report api_pause_resume "$r"

	# Rate limit: 1 MiB/s with a 1 MiB bucket makes 4 MiB take 3 s or more; unlimited after.
	r=
	if wait_for "^L2: rate limited done" 150; then
		api PATCH /drives/data '{"drive_id": "data", "rate_limiter": {"bandwidth": {"size": 0, "refill_time": 0}}}' >$W/a.out ||
			r="PATCH /drives/data: $(cat $W/a.out)"
		echo go >&3
	else
		r="the guest did not finish its limited read"
	fi
	l2wait
	r="$r$(clean_end)"
	l2ok ratelimit || r="$r; $(l2why ratelimit)"
	lim=$(l2info rate_limited | cut -d' ' -f3)
	free=$(l2info rate_free | cut -d' ' -f3)
	info "rate limit 1 MiB/s: the guest read at ${lim:-?} B/s limited, ${free:-?} B/s unlimited"
	[ "${lim:-0}" -gt 0 ] && [ "${lim:-0}" -le 1600000 ] || r="$r; limited rate ${lim:-?} B/s"
	[ "${free:-0}" -ge $((${lim:-0} * 3)) ] || r="$r; the unlimited rate ${free:-?} B/s is not well above the limit"
	report api_rate_limit_in_guest "$r"
}
