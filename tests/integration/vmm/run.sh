#!/bin/bash
# cove run boots the tiny PVH and bzImage test guests: boot data, exits, signals, restart.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

if ! kvm_usable; then
	echo "1..0 # SKIP /dev/kvm is not usable here"
	exit 0
fi

expect() { # NAME CONDITION-DESCRIPTION: checks $out contains each following line
	local name=$1
	shift
	for want in "$@"; do
		if ! grep -qxF -- "$want" <<<"$out"; then
			not_ok "$name" "missing line: $want" "status: $status" "stdout: $out" "stderr: $err"
			return
		fi
	done
	if [ "$status" -ne 0 ]; then
		not_ok "$name" "status $status" "stderr: $err"
		return
	fi
	ok "$name"
}

run pvh --kernel "$PVH_GUEST" --cmdline "p quoted \"words\" and  two  spaces" --memory 64M
expect "PVH: hvm_start_info, command line intact, e820 RAM, poweroff exits 0" \
	'pvh: cmdline=p quoted "words" and  two  spaces' 'pvh: initrd=none' 'pvh: mem=63'

printf 'INITRD-0123456789' >"$tmp/initrd"
run pvh-initrd --kernel "$PVH_GUEST" --initrd "$tmp/initrd" --cmdline p
expect "PVH: initrd passed as a module" 'pvh: initrd=INITRD-0'

run pvh-high --kernel "$PVH_GUEST" --cmdline p --memory 5G
expect "PVH: RAM above the 32-bit hole is in the map (5G)" 'pvh: mem=5119'

run pvh-smp --kernel "$PVH_GUEST" --cmdline p --cpus 4
expect "PVH: 4 vCPUs, APs wait for INIT/SIPI" 'pvh: cmdline=p'

run bz --kernel "$BZ_GUEST" --cmdline "bz line" --initrd "$tmp/initrd" --memory 128M
expect "bzImage: 64-bit entry, boot_params cmdline, initrd, e820" \
	'bz: cmdline=bz line' 'bz: initrd=INITRD-0' 'bz: mem=127'
if grep -qxF 'bz: rsdp=yes' <<<"$out"; then ok "bzImage: acpi_rsdp_addr set"; else not_ok "bzImage: acpi_rsdp_addr set" "$out"; fi

run bz-high --kernel "$BZ_GUEST" --memory 4G
expect "bzImage: 4G splits around the hole" 'bz: mem=4095'

for kind in r:"ACPI reset register" k:"i8042 reset line" t:"triple fault"; do
	c=${kind%%:*}
	what=${kind#*:}
	run "reset-$c" --kernel "$PVH_GUEST" --cmdline "$c"
	nlines=$(grep -v 'warning: this host.s KVM is PVM' <<<"$err" | grep -c .)
	if [ "$status" -eq 0 ] && grep -q "guest reset ($what" <<<"$err" && [ "$nlines" -eq 1 ]; then
		ok "reset by $what: exit 0 with one line"
	else
		not_ok "reset by $what: exit 0 with one line" "status $status" "stderr: $err"
	fi
done

# --on-reboot restart boots again after each reset; SIGTERM then stops it cleanly.
timeout -s KILL 20 "$COVE" run --kernel "$PVH_GUEST" --cmdline r --on-reboot restart \
	>"$tmp/restart.out" 2>"$tmp/restart.err" </dev/null &
pid=$!
sleep 1
kill -TERM $pid
wait $pid
status=$?
boots=$(grep -c '^pvh: cmdline=r' "$tmp/restart.out")
if [ "$status" -eq 0 ] && [ "$boots" -ge 2 ]; then
	ok "--on-reboot restart reboots ($boots boots), SIGTERM stops it with status 0"
else
	not_ok "--on-reboot restart reboots, SIGTERM stops it" "status $status boots $boots" \
		"$(cat "$tmp/restart.err")"
fi

# SIGINT stops a halted guest.
timeout -s KILL 20 "$COVE" run --kernel "$PVH_GUEST" --cmdline h >/dev/null 2>"$tmp/int.err" </dev/null &
pid=$!
sleep 0.5
kill -INT $pid
wait $pid
status=$?
if [ "$status" -eq 0 ]; then ok "SIGINT stops a halted guest cleanly"; else not_ok "SIGINT stops a halted guest" "status $status" "$(cat "$tmp/int.err")"; fi

# An instruction PVM's emulator lacks: internal error, non-zero, registers.
if is_pvm; then
	run emufail --kernel "$PVH_GUEST" --cmdline e
	if [ "$status" -ne 0 ] && [ "$status" -lt 128 ] && grep -q 'KVM internal error' <<<"$err" &&
		grep -q 'rip=' <<<"$err"; then
		ok "KVM internal error: non-zero status, message and registers"
	else
		not_ok "KVM internal error: non-zero status, message and registers" "status $status" "$err"
	fi
else
	skip "KVM internal error: non-zero status, message and registers" "x87 is emulated only on PVM hosts"
fi

# Console to a file, none, and settings from a JSON config (options override it).
run console-file --kernel "$PVH_GUEST" --cmdline p --console "file:$tmp/console.txt"
if [ "$status" -eq 0 ] && grep -qxF 'pvh: cmdline=p' "$tmp/console.txt" && [ -z "$out" ]; then
	ok "--console file:PATH"
else
	not_ok "--console file:PATH" "status $status" "$err"
fi
run console-none --kernel "$PVH_GUEST" --cmdline p --console none
if [ "$status" -eq 0 ] && [ -z "$out" ]; then ok "--console none"; else not_ok "--console none" "$out" "$err"; fi

cat >"$tmp/vm.json" <<JSON
{
  "kernel": "$PVH_GUEST",
  "cmdline": "p from json",
  "cpus": 2,
  "memory": "96M",
  "on_reboot": "exit"
}
JSON
run json --config "$tmp/vm.json"
expect "--config FILE.json" 'pvh: cmdline=p from json' 'pvh: mem=95'
run json-override --config "$tmp/vm.json" --cmdline "p from option" --memory 48
expect "options override the config file" 'pvh: cmdline=p from option' 'pvh: mem=47'

# On a terminal: raw mode while running, and the settings come back on every way out:
# Ctrl-A X, SIGTERM, SIGINT, the guest's poweroff, its reset, a KVM emulation failure (PVM).
term_case() { # $1: how the VM ends (ctrl-a|sigterm|sigint|poweroff|reset|emufail), $2: cmdline
	python3 - "$COVE" "$PVH_GUEST" "$1" "$2" <<'PY'
import os, pty, select, signal, sys, termios, time
cove, guest, how, cmdline = sys.argv[1:5]
pid, fd = pty.fork()
if pid == 0:
    os.execv(cove, [cove, "run", "--kernel", guest, "--cmdline", cmdline, "--log-level", "error"])
before = termios.tcgetattr(fd)
out = b""
raw = None
deadline = time.time() + 10
status = None
while time.time() < deadline:
    if raw is None and b"pvh: mem=" in out:
        raw = termios.tcgetattr(fd)
        if how == "ctrl-a":
            os.write(fd, b"\x01x")
        elif how == "sigterm":
            os.kill(pid, signal.SIGTERM)
        elif how == "sigint":
            os.kill(pid, signal.SIGINT)
    p, st = os.waitpid(pid, os.WNOHANG)
    if p:
        status = os.waitstatus_to_exitcode(st)
        break
    if select.select([fd], [], [], 0.05)[0]:
        try:
            out += os.read(fd, 1024)
        except OSError:
            pass
after = termios.tcgetattr(fd)
if status is None:
    os.kill(pid, 9)
want = 1 if how == "emufail" else 0
# A guest that ends by itself may be gone before raw mode can be read: only "after" counts.
was_raw = how in ("poweroff", "reset", "emufail") or (raw and not raw[3] & termios.ICANON)
ok = status == want and was_raw and (after[3] & termios.ICANON) and after[3] == before[3]
if not ok:
    r = raw[3] if raw else -1
    print(f"# status {status}, lflag before {before[3]:#x} raw {r:#x} after {after[3]:#x}; {out!r}")
sys.exit(0 if ok else 1)
PY
}
for c in "ctrl-a h" "sigterm h" "sigint h"; do
	set -- $c
	if term_case "$1" "$2"; then
		ok "terminal: raw mode while running, restored after $1 (exit 0)"
	else
		not_ok "terminal: raw mode while running, restored after $1 (exit 0)"
	fi
done
for c in "poweroff p" "reset r"; do
	set -- $c
	if term_case "$1" "$2"; then ok "terminal: restored after the guest's $1 (exit 0)"; else
		not_ok "terminal: restored after the guest's $1 (exit 0)"
	fi
done
if is_pvm; then
	if term_case emufail e; then ok "terminal: restored after a KVM emulation failure (exit 1)"; else
		not_ok "terminal: restored after a KVM emulation failure (exit 1)"
	fi
else
	skip "terminal: restored after a KVM emulation failure" "not a PVM host (the x87 guest runs fine elsewhere)"
fi

# On a PVM host: one warning for a kernel that is not a PVM guest, none for one that is.
if is_pvm; then
	# Across restarts too: the guest resets, cove boots it again, SIGTERM ends it.
	"$COVE" run --kernel "$PVH_GUEST" --cmdline r --on-reboot restart >/dev/null 2>"$tmp/warn.err" </dev/null &
	pid=$!
	sleep 0.5
	kill -TERM $pid
	wait $pid
	nwarn=$(grep -c "warning: this host's KVM is PVM" "$tmp/warn.err")
	cp "$PVH_GUEST" "$tmp/pvm-guest.elf" && printf 'pvm-guest: marker' >>"$tmp/pvm-guest.elf"
	run pvm-nowarn --kernel "$tmp/pvm-guest.elf" --cmdline p
	if [ "$nwarn" -eq 1 ] && ! grep -q 'KVM is PVM' <<<"$err" && [ "$status" -eq 0 ]; then
		ok "PVM host: the emulation warning is said once, and not for a PVM guest kernel"
	else
		not_ok "PVM host: the emulation warning is said once, and not for a PVM guest kernel" "$nwarn warnings; $err"
	fi
	# A bzImage is judged by its decompressed payload (here xz, as Debian builds them).
	for m in with without; do
		python3 - "$BZ_GUEST" "$tmp/bz-$m.img" "$m" <<'PY'
import lzma, struct, sys
src, dst, m = sys.argv[1:4]
b = bytearray(open(src, "rb").read())
setup = (b[0x1F1] + 1) * 512
body = b"x" * 300000 + (b"pvm-guest: booting" if m == "with" else b"") + b"y" * 40000000
payload = lzma.compress(body, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)
struct.pack_into("<II", b, 0x248, len(b) - setup, len(payload))
open(dst, "wb").write(bytes(b) + payload)
PY
	done
	run bz-pvm --kernel "$tmp/bz-with.img" --cmdline p
	with_err=$err with_status=$status
	run bz-nopvm --kernel "$tmp/bz-without.img" --cmdline p
	if [ "$with_status" -eq 0 ] && ! grep -q 'KVM is PVM' <<<"$with_err" && [ "$status" -eq 0 ] &&
		[ "$(grep -c 'KVM is PVM' <<<"$err")" -eq 1 ]; then
		ok "PVM host: a bzImage is judged by its xz payload (warned once without the marker, not with it)"
	else
		not_ok "PVM host: a bzImage is judged by its xz payload" "with: $with_err" "without: $err"
	fi
	# --sandbox is entered with one thread: the payload is read before it, not on a thread.
	# LeakSanitizer's exit-time tracer (prctl, clone) is outside the sandbox's allow-list.
	if [ "$(id -u)" -eq 0 ]; then
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" run bz-sandbox --sandbox --kernel "$tmp/bz-without.img" --cmdline p
		if [ "$status" -eq 0 ] && [ "$(grep -c 'KVM is PVM' <<<"$err")" -eq 1 ]; then
			ok "PVM host: --sandbox with a bzImage (its payload read before the jail)"
		else
			not_ok "PVM host: --sandbox with a bzImage" "status $status" "$err"
		fi
	else
		skip "PVM host: --sandbox with a bzImage" "needs root"
	fi
else
	skip "PVM host: the emulation warning" "not a PVM host"
	skip "PVM host: a bzImage is judged by its payload" "not a PVM host"
	skip "PVM host: --sandbox with a bzImage" "not a PVM host"
fi

run hugepages --kernel "$PVH_GUEST" --cmdline p --hugepages --memory 64M
expect "--hugepages (falls back when none are reserved)" 'pvh: cmdline=p'
# The guest RAM mapping is hugetlbfs (VmFlags ht) or asks for transparent huge pages (hg).
huge_flags() { # $1: extra cove run options; prints the VmFlags of the 64 MiB guest RAM mapping
	local pid flags=""
	"$COVE" run --kernel "$PVH_GUEST" --cmdline h --memory 64M --console none $1 </dev/null 2>/dev/null &
	pid=$!
	for _ in $(seq 100); do
		flags=$(python3 -c '
import re, sys
big = False
for line in open(sys.argv[1]):
    m = re.match(r"([0-9a-f]+)-([0-9a-f]+) ", line)
    if m:
        big = int(m.group(2), 16) - int(m.group(1), 16) == 64 << 20
    elif big and line.startswith("VmFlags:"):
        print(line.strip())
        break
' "/proc/$pid/smaps" 2>/dev/null)
		[ -n "$flags" ] && break
		sleep 0.05
	done
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	echo "$flags"
}
with=$(huge_flags --hugepages)
without=$(huge_flags "")
if [[ $with =~ \ (hg|ht)( |$) ]] && ! [[ $without =~ \ (hg|ht)( |$) ]]; then
	ok "--hugepages: guest RAM is backed by or advised to huge pages (VmFlags${with#VmFlags:})"
else
	not_ok "--hugepages: guest RAM is backed by or advised to huge pages" "with: $with" "without: $without"
fi

finish
