#!/bin/bash
# virtio-blk over the block layer: the probe guest's disk tests on qcow2 overlays under Cove and
# QEMU q35 (checked from the host with qemu-img), aio=sync and the JSON config, cache=none, a
# probed raw image's sector 0, corrupt images given to --disk, and through the API socket the
# per-disk counters of GET /stats and rate limits changed at run time (PATCH /drives). TAP.
# Env: COVE, PROBE_PVH (set by meson), QEMU, QEMU_IMG.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/guest/probe-lib.sh
. "$here/../guest/probe-lib.sh"
# shellcheck source=tests/integration/virtio/disk-lib.sh
. "$here/disk-lib.sh"

cove=$(realpath "${COVE:?set COVE to the cove binary}")
pvh=$(realpath "${PROBE_PVH:?set PROBE_PVH to the probe guest PVH ELF}")
qemu=${QEMU:-qemu-system-x86_64}
qimg=${QEMU_IMG:-qemu-img}
work=$(mktemp -d)
vmm_pid=
cleanup() {
	[ -n "$vmm_pid" ] && kill -KILL "$vmm_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

skip=""
probe_kvm_ok || skip="/dev/kvm unavailable"
[ -z "$skip" ] && ! command -v "$qimg" >/dev/null && skip="$qimg not installed (host-side checks)"
qskip=$skip
[ -z "$qskip" ] && ! command -v "$qemu" >/dev/null && qskip="$qemu not installed"
api_skip=$skip
[ -z "$api_skip" ] && { ! command -v curl >/dev/null || ! command -v jq >/dev/null; } &&
	api_skip="curl and jq are needed"
direct_skip=""
dd if=/dev/zero of="$work/direct" bs=4096 count=1 oflag=direct 2>/dev/null ||
	direct_skip="the file system of $work has no O_DIRECT"
rm -f "$work/direct"

# The pattern a fresh disk holds, for cmp.
pattern() { mkdisk "$work/pattern.raw" && cat "$work/pattern.raw"; }

# overlay FILE TOOL: a fresh qcow2 overlay over base.raw made by cove img or qemu-img.
overlay() {
	rm -f "$1"
	if [ "$2" = cove ]; then
		"$cove" img create -f qcow2 -b base.raw -F raw "$1" >/dev/null
	else
		"$qimg" create -q -f qcow2 -b base.raw -F raw "$1"
	fi
}

# host_checks LABEL OVERLAY: qemu-img check, the guest's writes seen from the host, the base
# file untouched.
host_checks() {
	local out rc
	out=$("$qimg" check "$2" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		probe_tap ok "$1 qemu-img check: $(printf '%s' "$out" | head -n 1)"
	else
		probe_tap "not ok" "$1 qemu-img check: exit $rc: $(printf '%s' "$out" | tr '\n' ' ' | head -c 300)"
	fi
	rm -f "$work/out.raw"
	if "$qimg" convert -f qcow2 -O raw "$2" "$work/out.raw"; then
		check_disk "$1" "$work/out.raw"
	else
		probe_tap "not ok" "$1 qemu-img convert failed"
	fi
	if cmp -s "$work/base.raw" <(pattern); then
		probe_tap ok "$1 backing file unchanged"
	else
		probe_tap "not ok" "$1 the backing file was changed"
	fi
}

cd "$work" || exit 1
mkdisk base.raw
chmod 0444 base.raw # backing files are opened read-only
tests="pci vblk vblk_ro vblk_mq"
list=$(echo "$tests" | tr " " ,)

# --- 1. a qcow2 overlay made by cove img (probed), a read-only one made by qemu-img ---
overlay ov.qcow2 cove
overlay ro.qcow2 qemu
probe_run cove-qcow2 "$tests" ${skip:+--skip "$skip"} -- "$cove" run --kernel "$pvh" --memory 256M \
	--disk "path=$work/ov.qcow2,id=cove-test,queues=4" --disk "path=$work/ro.qcow2,readonly=on" \
	--cmdline "probe=$list probe.blk_id=cove-test"
if [ -z "$skip" ]; then
	host_checks cove-qcow2 ov.qcow2
	if "$qimg" compare -q base.raw ro.qcow2 && [ "$("$qimg" map --output json ro.qcow2 | jq '[.[] | select(.depth == 0 and .data)] | length' 2>/dev/null || echo 0)" = 0 ]; then
		probe_tap ok "cove-qcow2 read-only overlay unchanged"
	else
		probe_tap "not ok" "cove-qcow2 read-only overlay was changed"
	fi
fi

# --- 2. the same through the JSON config, format given, aio=sync ---
overlay ov.qcow2 cove
cat >cfg.json <<JSON
{"kernel": "$pvh", "memory": "256M",
 "disk": ["path=$work/ov.qcow2,format=qcow2,aio=sync,id=cove-test",
          "path=$work/ro.qcow2,format=qcow2,readonly=on"],
 "cmdline": "probe=pci,vblk,vblk_ro probe.blk_id=cove-test"}
JSON
probe_run cove-qcow2-sync "pci vblk vblk_ro" ${skip:+--skip "$skip"} -- "$cove" run --config "$work/cfg.json"
[ -z "$skip" ] && host_checks cove-qcow2-sync ov.qcow2

# --- 3. cache=none (O_DIRECT) on raw and qcow2 ---
dskip=$skip
[ -z "$dskip" ] && dskip=$direct_skip
mkdisk d.raw
probe_run cove-direct-raw vblk ${dskip:+--skip "$dskip"} -- "$cove" run --kernel "$pvh" \
	--memory 256M --disk "path=$work/d.raw,format=raw,cache=none,id=cove-test" \
	--cmdline "probe=vblk probe.blk_id=cove-test"
[ -z "$dskip" ] && check_disk cove-direct-raw d.raw
overlay ov.qcow2 qemu
probe_run cove-direct-qcow2 vblk ${dskip:+--skip "$dskip"} -- "$cove" run --kernel "$pvh" \
	--memory 256M --disk "path=$work/ov.qcow2,cache=none,id=cove-test" \
	--cmdline "probe=vblk probe.blk_id=cove-test"
[ -z "$dskip" ] && host_checks cove-direct-qcow2 ov.qcow2

# --- 3b. confined (--sandbox): the jail gets the overlay and its backing file ---
sbskip=$skip
[ -z "$sbskip" ] && [ "$(id -u)" != 0 ] && sbskip="--sandbox needs root"
overlay ov.qcow2 qemu
# LeakSanitizer (ASan builds) forks a ptrace tracer at exit, which the filter forbids.
probe_run cove-sandbox-qcow2 vblk ${sbskip:+--skip "$sbskip"} -- env \
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$cove" run --sandbox \
	--jail-dir "$work/jail" --kernel "$pvh" --memory 256M \
	--disk "path=$work/ov.qcow2,id=cove-test" --cmdline "probe=vblk probe.blk_id=cove-test"
[ -z "$sbskip" ] && host_checks cove-sandbox-qcow2 ov.qcow2

# --- 3c. kill -9 of the VMM: writes the guest never flushed survive (the block layer writes
# the qcow2 metadata back 100 ms after requests pause; the page cache outlives the process) ---
if [ -z "$skip" ]; then
	overlay ov.qcow2 cove
	"$cove" run --kernel "$pvh" --memory 256M --disk "path=$work/ov.qcow2,id=cove-test" \
		--cmdline "probe=vblk_noflush probe.exit=halt" </dev/null >kill.out 2>&1 &
	vmm_pid=$!
	for _ in $(seq 600); do
		grep -aq 'PROBE: halting' kill.out && break
		kill -0 "$vmm_pid" 2>/dev/null || break
		sleep 0.05
	done
	sleep 0.5
	kill -KILL "$vmm_pid" 2>/dev/null
	wait "$vmm_pid" 2>/dev/null
	vmm_pid=
	if grep -aq 'PROBE: halting' kill.out && grep -aq 'PROBE: 1 passed, 0 failed' kill.out; then
		probe_tap ok "cove-kill: the guest wrote without a flush, the VMM was killed (SIGKILL)"
		host_checks cove-kill ov.qcow2
	else
		probe_tap "not ok" "cove-kill: the guest did not get to halt: $(tail -n 3 kill.out | tr '\n' ' ')"
	fi
else
	probe_tap ok "cove-kill" "SKIP $skip"
fi

# --- 4. QEMU q35 (the reference) on the same kind of overlays, format=qcow2 ---
overlay qov.qcow2 cove
probe_run qemu-q35-qcow2 "$tests" ${qskip:+--skip "$qskip"} -- "$qemu" -M q35 -accel kvm -nodefaults \
	-no-user-config -nographic -serial stdio -no-reboot -m 256 -kernel "$pvh" \
	-append "probe=$list probe.blk_id=cove-test" \
	-drive "file=$work/qov.qcow2,if=none,id=d0,format=qcow2" \
	-device virtio-blk-pci,drive=d0,serial=cove-test,disable-legacy=on,num-queues=4 \
	-drive "file=$work/ro.qcow2,if=none,id=d1,format=qcow2,readonly=on" \
	-device virtio-blk-pci,drive=d1,disable-legacy=on
[ -z "$qskip" ] && host_checks qemu-q35-qcow2 qov.qcow2
qdskip=$qskip
[ -z "$qdskip" ] && qdskip=$direct_skip
overlay qov.qcow2 cove
probe_run qemu-q35-direct-qcow2 vblk ${qdskip:+--skip "$qdskip"} -- "$qemu" -M q35 -accel kvm \
	-nodefaults -no-user-config -nographic -serial stdio -no-reboot -m 256 -kernel "$pvh" \
	-append "probe=vblk probe.blk_id=cove-test" \
	-drive "file=$work/qov.qcow2,if=none,id=d0,format=qcow2,cache=none" \
	-device virtio-blk-pci,drive=d0,serial=cove-test,disable-legacy=on
[ -z "$qdskip" ] && host_checks qemu-q35-direct-qcow2 qov.qcow2

# --- 5. a probed raw image: the guest cannot write an image header to sector 0 ---
mkdisk g.raw
probe_run cove-probed-raw vblk_guard ${skip:+--skip "$skip"} -- "$cove" run --kernel "$pvh" \
	--disk "path=$work/g.raw" --cmdline "probe=vblk_guard"
probe_run cove-format-raw vblk_guard ${skip:+--skip "$skip"} -- "$cove" run --kernel "$pvh" \
	--disk "path=$work/g.raw,format=raw" --cmdline "probe=vblk_guard probe.sector0=allowed"
probe_run qemu-q35-probed-raw vblk_guard ${qskip:+--skip "$qskip"} -- "$qemu" -M q35 -accel kvm \
	-nodefaults -no-user-config -nographic -serial stdio -no-reboot -m 256 -kernel "$pvh" \
	-append "probe=vblk_guard" -drive "file=$work/g.raw,if=none,id=d0" \
	-device virtio-blk-pci,drive=d0,disable-legacy=on
probe_run qemu-q35-format-raw vblk_guard ${qskip:+--skip "$qskip"} -- "$qemu" -M q35 -accel kvm \
	-nodefaults -no-user-config -nographic -serial stdio -no-reboot -m 256 -kernel "$pvh" \
	-append "probe=vblk_guard probe.sector0=allowed" -drive "file=$work/g.raw,if=none,id=d0,format=raw" \
	-device virtio-blk-pci,drive=d0,disable-legacy=on
if [ -z "$skip" ]; then
	if cmp -s g.raw <(pattern); then probe_tap ok "probed raw image: sector 0 as it was"; else
		probe_tap "not ok" "probed raw image: sector 0 changed"
	fi
fi

# --- 6. corrupt and wrong images: one line naming the file, exit 1, no crash ---
bad_image() { # $1: description, $2: regex, $3: --disk value
	local out rc lines
	out=$("$cove" run --console none --disk "$3" 2>&1 </dev/null)
	rc=$?
	lines=$(printf '%s\n' "$out" | grep -c .)
	if [ $rc -eq 1 ] && [ "$lines" -eq 1 ] && printf '%s' "$out" | grep -q -E "$2"; then
		probe_tap ok "$1: $out"
	else
		probe_tap "not ok" "$1: status $rc, $lines lines: $(printf '%s' "$out" | head -c 300)"
	fi
}
if [ -z "$skip" ]; then
	overlay ok.qcow2 qemu
	head -c 100 ok.qcow2 >trunc.qcow2
	cp ok.qcow2 l1.qcow2
	printf '\x00\x04\x00\x00\x00\x00\x00\x00' | dd of=l1.qcow2 bs=1 seek=40 conv=notrunc 2>/dev/null
	"$qimg" create -q -f qcow2 la.qcow2 1M
	"$qimg" create -q -f qcow2 -b la.qcow2 -F qcow2 lb.qcow2
	"$qimg" rebase -q -u -b lb.qcow2 -F qcow2 la.qcow2
	"$qimg" create -q -u -f qcow2 -b gone.raw -F raw nob.qcow2 1M
	bad_image "a truncated qcow2 header" "trunc.qcow2: qcow2: " "path=$work/trunc.qcow2"
	bad_image "an L1 table past the end" "l1.qcow2: qcow2: L1 table" "path=$work/l1.qcow2"
	bad_image "a loop of backing files" "loop in the backing chain" "path=$work/lb.qcow2"
	bad_image "a missing backing file" "nob.qcow2: cannot open backing file.*gone.raw" "path=$work/nob.qcow2"
	bad_image "format=qcow2 on a raw image" "g.raw: qcow2: bad magic" "path=$work/g.raw,format=qcow2"
else
	for d in "a truncated qcow2 header" "an L1 table past the end" "a loop of backing files" \
		"a missing backing file" "format=qcow2 on a raw image"; do
		probe_tap ok "$d" "SKIP $skip"
	done
fi
# An image with qcow2's corrupt bit opens (reads work) with a warning that writes will fail.
if [ -z "$skip" ]; then
	overlay cb.qcow2 qemu
	printf '\x02' | dd of=cb.qcow2 bs=1 seek=79 conv=notrunc 2>/dev/null # incompatible bit 1
	out=$("$cove" run --kernel "$pvh" --disk "path=$work/cb.qcow2" --cmdline probe=pci 2>&1 </dev/null)
	if [ $? -eq 0 ] && printf '%s' "$out" | grep -q "cb.qcow2: the image is marked corrupt"; then
		probe_tap ok "an image marked corrupt: the VMM runs and warns that writes will fail"
	else
		probe_tap "not ok" "an image marked corrupt: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
	fi
else
	probe_tap ok "an image marked corrupt" "SKIP $skip"
fi
out=$("$cove" run --console none --disk "path=$work/g.raw,format=vmdk" 2>&1 </dev/null)
if [ $? -eq 2 ] && printf '%s' "$out" | grep -q "format 'vmdk': expected raw or qcow2"; then
	probe_tap ok "rejects --disk format=vmdk"
else
	probe_tap "not ok" "rejects --disk format=vmdk: $out"
fi

# --- 7. the API socket: counters in GET /stats, rate limits changed at run time ---
sock=$work/api.sock
start_vmm() { # cove run --api-sock in the background; its console to $work/con
	rm -f "$sock" "$work/con"
	"$cove" run --api-sock "$sock" --console "file:$work/con" "$@" </dev/null >"$work/vmm.log" 2>&1 &
	vmm_pid=$!
	for _ in $(seq 100); do
		[ -S "$sock" ] && return 0
		sleep 0.05
	done
	return 1
}
stop_vmm() { # SIGTERM, then wait (bounded)
	kill -TERM "$vmm_pid" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$vmm_pid" 2>/dev/null || break; sleep 0.05; done
	kill -KILL "$vmm_pid" 2>/dev/null
	wait "$vmm_pid" 2>/dev/null
	vmm_pid=
}
req() { # METHOD PATH [BODY]: sets $code and $body
	local out
	out=$(curl -s -m 10 --unix-socket "$sock" -X "$1" -H 'Content-Type: application/json' \
		${3:+-d "$3"} -w '\n%{http_code}' "http://localhost$2")
	code=${out##*$'\n'}
	body=${out%$'\n'*}
}
api_check() { # NAME WANT_CODE METHOD PATH [BODY] [JQ]
	local name=$1 want=$2
	req "$3" "$4" "${5-}"
	if [ "$code" != "$want" ]; then
		probe_tap "not ok" "$name: status $code (want $want): $body"
	elif [ -n "${6-}" ] && ! jq -e "$6" >/dev/null 2>&1 <<<"$body"; then
		probe_tap "not ok" "$name: body fails $6: $body"
	else
		probe_tap ok "$name"
	fi
}
rd_reqs() { req GET /stats && jq -r '.block[0].rd_reqs' <<<"$body"; }
# rate SECONDS: read requests per second the guest completes over that time
rate() {
	local a b
	a=$(rd_reqs)
	sleep "$1"
	b=$(rd_reqs)
	awk -v a="$a" -v b="$b" -v t="$1" 'BEGIN { printf "%d", (b - a) / t }'
}

if [ -n "$api_skip" ]; then
	for d in "stats" "PATCH limit" "PATCH lifted" "PATCH unknown drive" "PATCH path" \
		"corrupt drive" "API qcow2 drive" "API stats name" "API PATCH" "API config"; do
		probe_tap ok "api $d" "SKIP $api_skip"
	done
else
	# A disk started without a limit: the guest's vblk test, then its benchmark's long random
	# read loop (4 KiB each), during which the limit changes twice.
	mkdisk big.raw
	truncate -s 64M big.raw
	if start_vmm --kernel "$pvh" --memory 256M --disk "path=$work/big.raw,format=raw,id=bench" \
		--cmdline "probe=vblk,vblkbench probe.blk_id=bench probe.bench_mb=16 probe.bench_rand=4000000"; then
		for _ in $(seq 300); do
			req GET /stats
			[ "$(jq -r '.block[0].wr_bytes >= 16777216' <<<"$body" 2>/dev/null)" = true ] && break
			sleep 0.1
		done
		api_check "api stats: plausible counters after vblk and the sequential runs" 200 GET /stats "" \
			'.block[0] | .name == "bench" and .rd_reqs >= 17 and .rd_bytes >= 16777216 + 8192 and .wr_reqs >= 17 and .wr_bytes >= 16777216 + 4096 and .fl_reqs >= 1 and .errors == 0 and .rd_bytes % 512 == 0 and .wr_bytes % 512 == 0'
		r1=$(rate 0.5)
		req PATCH /drives/bench '{"drive_id": "bench", "rate_limiter": {"ops": {"size": 200, "refill_time": 1000}}}'
		c1=$code
		sleep 0.3
		r2=$(rate 1)
		if [ "$c1" = 204 ] && [ "$r2" -le 300 ] && [ "$r1" -gt "$r2" ]; then
			probe_tap ok "api PATCH limit: 200 requests/s set mid-run: $r1/s before, $r2/s after"
		else
			probe_tap "not ok" "api PATCH limit: status $c1, $r1/s before, $r2/s after (want <= 300)"
		fi
		req PATCH /drives/bench '{"drive_id": "bench", "rate_limiter": {"ops": {"size": 0, "refill_time": 0}}}'
		c2=$code
		r3=$(rate 0.5)
		if [ "$c2" = 204 ] && [ "$r3" -gt $((2 * r2)) ]; then
			probe_tap ok "api PATCH lifted: $r3/s without the limit"
		else
			probe_tap "not ok" "api PATCH lifted: status $c2, $r3/s (limited: $r2/s)"
		fi
		api_check "api PATCH unknown drive: 400 with fault_message" 400 PATCH /drives/nosuch \
			'{"drive_id": "nosuch", "rate_limiter": {"ops": {"size": 10, "refill_time": 1000}}}' \
			'.fault_message | test("nosuch.*not found")'
		api_check "api PATCH path: 400 (no swapping a running disk's file)" 400 PATCH /drives/bench \
			"{\"drive_id\": \"bench\", \"path_on_host\": \"$work/g.raw\"}" '.fault_message | test("not supported")'
		stop_vmm
	else
		probe_tap "not ok" "api: the VMM did not serve its socket: $(head -c 300 "$work/vmm.log")"
	fi

	# A corrupt image configured through the API: InstanceStart says what is wrong with it.
	if start_vmm; then
		req PUT /boot-source "{\"kernel_image_path\": \"$pvh\", \"boot_args\": \"probe=vblk\"}"
		req PUT /drives/bad "{\"drive_id\": \"bad\", \"path_on_host\": \"$work/l1.qcow2\", \"is_root_device\": false}"
		api_check "api corrupt drive: InstanceStart answers 400 naming the problem" 400 PUT /actions \
			'{"action_type": "InstanceStart"}' '.fault_message | test("l1.qcow2: qcow2: L1 table")'
		stop_vmm
	else
		probe_tap "not ok" "api: the VMM did not serve its socket: $(head -c 300 "$work/vmm.log")"
	fi

	# A qcow2 drive configured through the API (Firecracker's flow), with a limit to change.
	overlay ov.qcow2 cove
	if start_vmm; then
		req PUT /boot-source "{\"kernel_image_path\": \"$pvh\", \"boot_args\": \"probe=vblk,vblk_ro probe.blk_id=rootfs probe.exit=halt\"}"
		req PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 256}'
		req PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$work/ov.qcow2\", \"is_root_device\": false, \"is_read_only\": false, \"rate_limiter\": {\"bandwidth\": {\"size\": 50000000, \"refill_time\": 1000}}}"
		req PUT /drives/ro "{\"drive_id\": \"ro\", \"path_on_host\": \"$work/ro.qcow2\", \"is_root_device\": false, \"is_read_only\": true}"
		api_check "api qcow2 drive: InstanceStart" 204 PUT /actions '{"action_type": "InstanceStart"}'
		for _ in $(seq 200); do grep -a -q 'PROBE: [0-9]* passed' "$work/con" 2>/dev/null && break; sleep 0.05; done
		api_check "api stats name: the drives' ids, their counters (the read-only drive's refused write an error)" 200 GET /stats "" \
			'(.block[0] | .name == "rootfs" and .rd_reqs >= 3 and .wr_reqs >= 1 and .fl_reqs >= 1 and .errors == 0) and (.block[1] | .name == "ro" and .rd_reqs >= 1 and .wr_reqs == 0 and .errors >= 1)'
		api_check "api PATCH: the bandwidth limit removed" 204 PATCH /drives/rootfs \
			'{"drive_id": "rootfs", "rate_limiter": {"bandwidth": {"size": 0, "refill_time": 0}}}'
		api_check "api config: no limit left on the drive" 200 GET /vm/config "" \
			'.drives[0].drive_id == "rootfs" and (.drives[0] | has("rate_limiter") | not)'
		stop_vmm
		if grep -a -q 'PROBE: 2 passed, 0 failed' "$work/con"; then
			probe_tap ok "api qcow2 drive: the guest's vblk and vblk_ro tests passed"
		else
			probe_tap "not ok" "api qcow2 drive: $(grep -a 'PROBE' "$work/con" | tail -n 2 | tr '\n' ' ')"
		fi
		host_checks api-qcow2 ov.qcow2
	else
		probe_tap "not ok" "api: the VMM did not serve its socket: $(head -c 300 "$work/vmm.log")"
	fi
fi

probe_done
