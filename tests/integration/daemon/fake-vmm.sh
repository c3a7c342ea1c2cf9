#!/bin/bash
# A stand-in for `cove run` in coved's tests: prints like the probe guest, echoes its
# console input, and ends as told: "poweroff" exits 0, "crash" exits 3, SIGTERM exits 0;
# "plant DIR READ WRITE" acts as a hostile VMM (links coved's file names) and crashes.
# Its --help lists --disk and --net but no --api-sock, so coved drives it with signals.
if [ "${2-}" = "--help" ]; then
	echo "usage: fake-vmm run [--cpus N] [--memory M] [--disk path=P[,readonly=on]] [--net tap=NAME[,mac=MAC]]"
	exit 0
fi
trap 'echo "fake-vmm: power button"; exit 0' TERM
echo "fake-vmm: args: $*" >&2
echo "fake-vmm: uid=$(id -u) $(grep CapEff /proc/self/status | tr -d '\t') root: $(ls / | tr '\n' ' ')" >&2
echo "fake-vmm: pid=$$ processes=$(ls /proc | grep -c '^[0-9]')" >&2
[ -e /etc/passwd ] && echo "fake-vmm: sees /etc/passwd" >&2
echo "PROBE: boot ok"
echo "PROBE: args $*"
while read -r line; do
	case $line in
	poweroff) echo "PROBE: 1 passed, 0 failed"; exit 0 ;;
	crash) echo "fake-vmm: fatal: simulated crash" >&2; exit 3 ;;
	forbidden) echo "fake-vmm: trying unshare(2)" >&2; exec unshare -m true ;;
	plant\ *) # plant RUNDIR READ WRITE: a hostile VMM links the files coved reads to READ,
		# those it writes to WRITE, then crashes
		set -- $line
		for dir in "$2" "$2/vmm"; do
			for f in vmm.log console.log api.sock exit exit.tmp; do
				t=$3
				[ "${f#exit}" != "$f" ] && t=$4
				ln -sfn "$t" "$dir/$f" 2>/dev/null && echo "fake-vmm: planted $dir/$f" >&2
			done
		done
		echo "fake-vmm: fatal: simulated crash" >&2
		exit 3 ;;
	*) echo "echo: $line" ;;
	esac
done
