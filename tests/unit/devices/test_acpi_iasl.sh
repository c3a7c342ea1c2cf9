#!/bin/bash
# Disassembles every table acpi_build makes with iasl (acpica-tools); TAP output.
# usage: test_acpi_iasl.sh ACPI_DUMP
set -u
dump=$1
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; }

if ! command -v iasl >/dev/null 2>&1; then
	echo "1..1"
	echo "ok 1 - iasl disassembly # SKIP iasl not installed (apt-get install acpica-tools)"
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for variant in 1 4 255 "2 pci"; do
	cpus=${variant%% *}
	extra=
	[ "$variant" != "$cpus" ] && extra=${variant#* }
	dir=$tmp/${variant// /-}
	mkdir -p "$dir"
	if ! "$dump" "$dir" "$cpus" ${extra:+"$extra"} >"$dir/dump.log" 2>&1; then
		notok "acpi_dump $cpus CPUs: $(cat "$dir/dump.log")"
		continue
	fi
	# iasl cannot disassemble a lone RSDP file; its checksums are checked by test_acpi.
	tables="xsdt rsdt FACP FACS APIC DSDT"
	[ -n "$extra" ] && tables="$tables MCFG"
	for t in $tables; do
		if (cd "$dir" && iasl -d "$t.dat") >"$dir/$t.log" 2>&1 && [ -s "$dir/$t.dsl" ] &&
			! grep -qiE 'error|warning' "$dir/$t.log" &&
			! grep -qiE 'invalid|incorrect|error' "$dir/$t.dsl"; then
			ok "iasl -d $t ($variant CPUs)"
		else
			notok "iasl -d $t ($variant CPUs): $(grep -iE 'error|warning|invalid' "$dir/$t.log" "$dir/$t.dsl" | head -3)"
		fi
	done
	# The disassembled DSDT compiles back (no optimizations) to the very same AML.
	if (cd "$dir" && iasl -oa -p recompiled DSDT.dsl) >"$dir/compile.log" 2>&1 &&
		grep -q 'Compilation successful. 0 Errors' "$dir/compile.log"; then
		ok "DSDT recompiles with iasl ($variant CPUs)"
		if cmp -s <(tail -c +37 "$dir/recompiled.aml") <(tail -c +37 "$dir/DSDT.dat"); then
			ok "iasl's AML is byte for byte ours ($variant CPUs)"
		else
			notok "iasl's AML differs from ours ($variant CPUs)"
		fi
	else
		notok "DSDT recompiles with iasl ($variant CPUs): $(grep -i error "$dir/compile.log" | head -3)"
	fi
	# The MADT lists one Processor Local APIC per CPU.
	# shellcheck disable=SC2126
	lapics=$(grep -c 'Subtable Type : 00 \[Processor Local APIC\]' "$dir/APIC.dsl")
	if [ "$lapics" = "$cpus" ]; then
		ok "iasl sees $cpus local APICs"
	else
		notok "iasl sees $lapics local APICs, want $cpus"
	fi
done
echo "1..$n"
