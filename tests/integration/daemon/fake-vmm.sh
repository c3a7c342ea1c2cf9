#!/bin/bash
# A stand-in for `cove run` in coved's tests: prints like the probe guest, echoes its
# console input, and ends as told: "poweroff" exits 0, "crash" exits 3, SIGTERM exits 0.
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
	*) echo "echo: $line" ;;
	esac
done
