# shellcheck shell=bash
# timed FIGURE TOOL CMD...: one run of CMD; its wall seconds go to $D/samples as
# "FIGURE, s<TAB>TOOL<TAB>SECONDS" (the input of benchlib.py table). A failure ends the
# benchmark. Sourced by the scripts that time whole commands (block-rw.sh, img-bench.sh).
now() { date +%s.%N; }
timed() {
	local fig=$1 tool=$2 t0 t1
	shift 2
	t0=$(now)
	if ! "$@" >/dev/null 2>"$D/err"; then
		echo "$fig: $tool failed: $*" >&2
		head -c 400 "$D/err" >&2
		exit 1
	fi
	t1=$(now)
	awk -v f="$fig, s" -v t="$tool" -v a="$t0" -v b="$t1" \
		'BEGIN { printf "%s\t%s\t%.3f\n", f, t, b - a }' >>"$D/samples"
}
