#!/bin/bash
# Runs QEMU (the arguments) without -no-reboot and stops it once the guest has booted twice:
# exit 0 if the probe guest reset the machine (a second "PROBE: start"), 1 if it did not
# within PROBE_RESET_WAIT seconds (default 15). All output goes to stdout.
set -u
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$@" </dev/null >"$out" 2>&1 &
pid=$!
rc=1
for ((i = 0; i < ${PROBE_RESET_WAIT:-15} * 20; i++)); do
	if [ "$(grep -a -c 'PROBE: start' "$out")" -ge 2 ]; then
		rc=0
		break
	fi
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.05
done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
cat "$out"
[ $rc = 0 ] && echo "qemu-reset: the guest reset the machine"
exit $rc
