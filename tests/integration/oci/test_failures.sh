#!/bin/bash
# Bad configs and failures injected part-way through create: an error that names the field,
# and nothing left behind (no state directory, cgroup, process or mount).
. "$(dirname "$0")/lib.sh"

B=$T/bad
make_bundle "$B" '["sleep","3031"]'
cp "$B/config.json" "$T/base.json"

# bad NAME JQ EXPECTED_MESSAGE_REGEX
bad() {
	cp "$T/base.json" "$B/config.json"
	edit_config "$B" "$2"
	local out
	out=$(r create --bundle "$B" bad1 2>&1)
	local rc=$?
	if [ $rc -ne 0 ] && printf '%s' "$out" | grep -qE -- "$3"; then
		ok "$1"
	else
		notok "$1" "rc=$rc out=[$out] want /$3/"
	fi
	local left
	if left=$(nothing_left bad1 "$CG/bad") && ! pgrep -f "sleep 3031" >/dev/null; then
		ok "$1: nothing left behind"
	else
		notok "$1: nothing left behind" "$left"
		r delete --force bad1 >/dev/null 2>&1
	fi
}

bad "missing process.args" 'del(.process.args)' 'process.args: required field is missing'
bad "empty process.args" '.process.args = []' 'process.args: must be a non-empty array of strings'
bad "wrong type: process.args" '.process.args = "sleep 30"' 'process.args: must be a non-empty array of strings'
bad "wrong type: process.user.uid" '.process.user.uid = "root"' 'process.user.uid: must be a non-negative integer'
bad "missing ociVersion" 'del(.ociVersion)' 'ociVersion: required field is missing'
bad "impossible memory limit" '.linux.resources.memory = {"limit": 12}' 'linux.resources.memory.limit: is below the minimum'
bad "impossible oomScoreAdj" '.process.oomScoreAdj = 99999' 'process.oomScoreAdj: must be between'
bad "unknown namespace" '.linux.namespaces += [{"type":"bogus"}]' 'linux.namespaces\[6\].type: unknown namespace type'
bad "unknown capability" '.process.capabilities.bounding += ["CAP_WHATEVER"]' 'process.capabilities.bounding: unknown capability'
bad "rootfs that does not exist" '.root.path = "nowhere"' 'root.path: rootfs \(.*nowhere\) does not exist'
bad "executable not found" '.process.args = ["no-such-program"]' 'executable file not found in \$PATH'
bad "bind mount source missing" '.mounts += [{"destination":"/x","source":"/no/such/dir","options":["bind"]}]' 'mounts: bind source /no/such/dir'
bad "cpuset that does not exist" '.linux.resources.cpu = {"cpus":"999"}' 'cgroup.*cpuset.cpus'
bad "joining a namespace that does not exist" '.linux.namespaces += [{"type":"time","path":"/no/ns"}]' 'linux.namespaces: /no/ns'
bad "idle that is not 0 or 1" '.linux.resources.cpu = {"idle": 5}' 'linux.resources.cpu.idle: must be 0 or 1'
if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
	bad "unified on a v1 or hybrid host (runc refuses it too)" '.linux.resources.unified = {"memory.high":"1000000"}' 'linux.resources.unified: needs a cgroup v2 host'
else
	skip "unified on a v1 or hybrid host" "this host is cgroup v2 (test_cgmodes covers v1)"
fi
printf '{"ociVersion": ' >"$B/config.json"
out=$(r create --bundle "$B" bad1 2>&1)
expect_match "truncated JSON is reported" "config: invalid JSON" "$out"
check "truncated JSON leaves nothing" nothing_left bad1 "$CG/bad"

# Failures injected at each step of create.
for step in state cgroup clone init mounts ready pidfile; do
	cp "$T/base.json" "$B/config.json"
	out=$(COVE_OCI_FAIL_AT=$step r create --bundle "$B" --pid-file "$T/pid.$step" inj 2>&1)
	rc=$?
	if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "injected failure"; then
		ok "failure injected at $step is reported"
	else
		notok "failure injected at $step is reported" "rc=$rc out=$out"
	fi
	if left=$(nothing_left inj "$CG/bad") && ! pgrep -f "sleep 3031" >/dev/null &&
		[ ! -e "$T/pid.$step" ]; then
		ok "failure at $step leaves nothing behind"
	else
		notok "failure at $step leaves nothing behind" "$left $(pgrep -af 'sleep 3031')"
		r delete --force inj >/dev/null 2>&1
	fi
done
# (other work on this host mounts things too: look only for ours)
expect_eq "no mount left in the host namespace" 0 "$(grep -c -e "$T" -e "$CG" /proc/self/mountinfo)"
# After all that, the same bundle still works.
cp "$T/base.json" "$B/config.json"
edit_config "$B" '.process.args = ["echo","fine"]'
expect_eq "the runtime still works afterwards" fine "$(cd "$B" && r run ok1 2>&1)"

echo "1..$n"
exit 0
