#!/bin/bash
# containerd drives cove-runc through the io.containerd.runc.v2 shim (ctr run --runc-binary):
# output, exit status, task states, exec, pause/resume, kill and cleanup.
. "$(dirname "$0")/lib.sh"

for b in containerd ctr containerd-shim-runc-v2 sha256sum tar gzip; do
	command -v "$b" >/dev/null || skip_all "needs $b"
done

NS=cove-test-$$
CD=$T/containerd
mkdir -p "$CD/root" "$CD/state"
SOCK=$CD/containerd.sock
cat >"$CD/config.toml" <<EOF
version = 2
root = "$CD/root"
state = "$CD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
containerd -c "$CD/config.toml" >"$CD/log" 2>&1 &
CPID=$!
stop_containerd() {
	ctr -a "$SOCK" -n "$NS" task kill -s SIGKILL t2 >/dev/null 2>&1
	ctr -a "$SOCK" -n "$NS" task rm -f t2 >/dev/null 2>&1
	ctr -a "$SOCK" -n "$NS" task rm -f t3 >/dev/null 2>&1
	ctr -a "$SOCK" -n "$NS" container rm t1 t2 t3 >/dev/null 2>&1
	kill "$CPID" 2>/dev/null
	wait "$CPID" 2>/dev/null
	for p in $(pgrep -f "containerd-shim-runc-v2 -namespace $NS "); do kill -9 "$p"; done
	for d in /sys/fs/cgroup/*/"$NS" /sys/fs/cgroup/unified/"$NS"; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	rm -rf "/run/containerd/runc/$NS" "/run/containerd/io.containerd.runtime.v2.task/$NS"
	grep -o " $CD[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
	cleanup_all
}
trap stop_containerd EXIT
for i in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || skip_all "containerd did not start: $(tail -3 "$CD/log")"
c() { ctr -a "$SOCK" -n "$NS" "$@"; }

# An OCI image layout built offline from busybox-static.
IMG=$T/img
mkdir -p "$IMG/rfs/bin" "$IMG/rfs/tmp" "$IMG/rfs/etc" "$IMG/blobs/sha256"
cp /bin/busybox "$IMG/rfs/bin/"
for x in sh echo sleep cat true hostname ps; do ln -s busybox "$IMG/rfs/bin/$x"; done
tar -C "$IMG/rfs" --numeric-owner --owner=0 --group=0 -cf "$IMG/layer.tar" .
diffid=$(sha256sum "$IMG/layer.tar" | cut -d' ' -f1)
gzip -n -c "$IMG/layer.tar" >"$IMG/layer.tgz"
ldig=$(sha256sum "$IMG/layer.tgz" | cut -d' ' -f1)
lsize=$(stat -c %s "$IMG/layer.tgz")
mv "$IMG/layer.tgz" "$IMG/blobs/sha256/$ldig"
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diffid" >"$IMG/config.json"
cdig=$(sha256sum "$IMG/config.json" | cut -d' ' -f1)
csize=$(stat -c %s "$IMG/config.json")
mv "$IMG/config.json" "$IMG/blobs/sha256/$cdig"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' "$cdig" "$csize" "$ldig" "$lsize" >"$IMG/manifest.json"
mdig=$(sha256sum "$IMG/manifest.json" | cut -d' ' -f1)
msize=$(stat -c %s "$IMG/manifest.json")
mv "$IMG/manifest.json" "$IMG/blobs/sha256/$mdig"
REF=localhost/cove-busybox:latest
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' "$mdig" "$msize" "$REF" >"$IMG/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$IMG/oci-layout"
tar -C "$IMG" -cf "$T/image.tar" oci-layout index.json blobs
check "ctr image import of the offline OCI image" c image import --snapshotter native "$T/image.tar"

out=$(c run --snapshotter native --runc-binary "$RUNC" --rm "$REF" t1 sh -c 'echo hello from pid $$; exit 5' 2>&1)
rc=$?
expect_eq "ctr run: output" "hello from pid 1" "$out"
expect_eq "ctr run: exit status" 5 "$rc"

c run -d --snapshotter native --runc-binary "$RUNC" "$REF" t2 sleep 60 >/dev/null 2>&1
expect_match "ctr task ls: RUNNING" "t2 +[0-9]+ +RUNNING" "$(c task ls 2>&1)"
pid=$(c task ls 2>/dev/null | awk '$1 == "t2" {print $2}')
expect_eq "the task's init is the shim's child" containerd-shim "$(ps -o comm= -p "$(ps -o ppid= -p "$pid" | tr -d ' ')" | cut -c1-15)"
expect_eq "ctr task exec" exec-ok "$(c task exec --exec-id e1 t2 sh -c 'echo exec-ok' 2>&1)"
c task exec --exec-id e2 t2 sh -c 'exit 9' >/dev/null 2>&1
expect_eq "ctr task exec: exit status" 9 $?
check "ctr task pause" c task pause t2
expect_match "ctr task ls: PAUSED" "t2 +[0-9]+ +PAUSED" "$(c task ls 2>&1)"
check "ctr task resume" c task resume t2
expect_match "ctr task ps lists the init" "$pid" "$(c task ps t2 2>&1)"
c events >"$T/events" 2>&1 &
EPID=$!
sleep 0.2
check "ctr task kill" c task kill -s SIGKILL t2
for i in $(seq 100); do c task ls 2>/dev/null | grep -qE "t2 +[0-9]+ +STOPPED" && break; sleep 0.05; done
expect_match "ctr task ls: STOPPED" "t2 +[0-9]+ +STOPPED" "$(c task ls 2>&1)"
for i in $(seq 50); do grep -q '/tasks/exit' "$T/events" && break; sleep 0.05; done
kill $EPID 2>/dev/null
wait $EPID 2>/dev/null
expect_match "exit status after SIGKILL is 137 (containerd's exit event)" '"exit_status":137' "$(grep '/tasks/exit' "$T/events" | grep '"container_id":"t2"')"
check "ctr task rm" c task rm t2
check "ctr container rm" c container rm t2

# CREATED: a wrapper around cove-runc looks at the container when the shim calls `start`,
# i.e. after `create` returned to the shim. (containerd itself reports such a task as
# UNKNOWN while the shim is inside its Start call, so the runtime's view is what is checked.)
cat >"$T/wrap" <<EOF
#!/bin/bash
if [ "\${@: -2:1}" = start ]; then
	"$RUNC" "\${@:1:\$#-2}" state "\${@: -1}" >"$T/seen-state" 2>&1
fi
exec "$RUNC" "\$@"
EOF
chmod +x "$T/wrap"
c run --snapshotter native --runc-binary "$T/wrap" --rm "$REF" t3 true >/dev/null 2>&1
expect_eq "when the shim starts the task, its state is created" created "$(jq -r .status "$T/seen-state" 2>/dev/null || cat "$T/seen-state")"
expect_match "a created task has its init's pid" '^[1-9][0-9]*$' "$(jq -r .pid "$T/seen-state" 2>/dev/null)"

left=""
for d in /sys/fs/cgroup/*/"$NS"/t2; do [ -e "$d" ] && left="$left $d"; done
[ -e "/run/containerd/runc/$NS/t2" ] && left="$left /run/containerd/runc/$NS/t2"
expect_eq "cleanup: no cgroup, no runtime state" "" "$left"
expect_eq "no process left" gone "$([ -e /proc/$pid ] && echo "$pid alive" || echo gone)"

echo "1..$n"
exit 0
