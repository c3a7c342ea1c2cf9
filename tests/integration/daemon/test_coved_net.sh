#!/bin/bash
# The default NAT network, inside a network namespace this test makes and removes:
# a VM with a NIC on "default" brings up the bridge, nftables masquerade and dnsmasq,
# gets a tap on the bridge, and a DHCP client on the bridge gets an address. Prints TAP.
set -u
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
for t in ip nft dnsmasq busybox; do
	command -v $t >/dev/null || { echo "SKIP: $t is not installed (apt-get install dnsmasq-base nftables busybox-static)"; exit 77; }
done
. "$(dirname "$0")/lib.sh"
NS=cove-nettest-$$
CL=cove-netcl-$$
ip netns add "$NS" || { echo "SKIP: cannot create a network namespace"; exit 77; }
ip netns add "$CL"
net_cleanup() {
	local pid
	pid=$(cat "$STATE/net/default.dnsmasq.pid" 2>/dev/null) && [ -n "$pid" ] && kill "$pid" 2>/dev/null
	cleanup
	ip netns del "$CL" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
}
trap net_cleanup EXIT
# coved runs inside the namespace: its bridge, dnsmasq and nftables live there.
rm -f "$SOCK"
ip netns exec "$NS" "$COVED" --socket "$SOCK" --state-dir "$STATE" --vmm "$FAKE_VMM" \
	--timeout 5 2>>"$TMP/coved.log" &
COVED_PID=$!
wait_for '[ -S "$SOCK" ]' || { echo "Bail out! coved did not start"; exit 1; }
ip -n "$NS" link set lo up

check "default network listed, inactive before use" '"$COVECTL" --json net-list | grep -q "\"active\":false"'
echo '{"name":"netvm","nics":[{"network":"default"}]}' | "$COVECTL" define - >/dev/null
check "start a VM with a NIC on default" '"$COVECTL" start netvm >/dev/null'
check "the bridge is up with the gateway address" 'ip -n "$NS" addr show covebr0 | grep -q "inet 192.168.124.1/24"'
tap=$(ip -n "$NS" -o link show master covebr0 | awk -F': ' '{print $2}' | head -1)
check "the VM's tap ($tap) is on the bridge" '[[ $tap == ct* ]]'
check "the VMM was given the tap" 'wait_for "grep -q -- \"--net tap=$tap\" \"$STATE/run/netvm/vmm.log\""'
check "nftables masquerades the subnet" 'ip netns exec "$NS" nft list table ip cove_nat | grep -q "ip saddr 192.168.124.0/24 ip daddr != 192.168.124.0/24 masquerade"'
check "dnsmasq runs for the network" '"$COVECTL" --json net-list | grep -q "\"dnsmasq_pid\""'
check "net-list shows it active" '"$COVECTL" net-list | grep -q "default .*true"'
# A DHCP client in a second namespace, wired to the bridge by a veth pair.
ip link add vh$$ type veth peer name vc$$
ip link set vh$$ netns "$NS"
ip link set vc$$ netns "$CL"
ip -n "$NS" link set vh$$ master covebr0 up
ip -n "$CL" link set vc$$ up
cat >"$TMP/udhcpc.sh" <<'S'
#!/bin/sh
[ "$1" = bound ] && echo "lease $ip"
exit 0
S
chmod +x "$TMP/udhcpc.sh"
lease=$(timeout 20 ip netns exec "$CL" busybox udhcpc -f -q -n -t 5 -T 1 -i vc$$ -s "$TMP/udhcpc.sh" 2>/dev/null)
check "a client on the bridge gets a DHCP lease ($lease)" 'grep -q "lease 192.168.124." <<<"$lease"'
want=$(ip netns exec "$NS" cat /sys/class/net/$tap/statistics/rx_bytes)
check "stats name the tap and take its counters as the guest sees them (tx.bytes=$want)" '"$COVECTL" stats netvm | grep -q "net.0.name=$tap" && "$COVECTL" stats netvm | grep -q "net.0.tx.bytes=$want$"'
check "destroy removes the tap" '"$COVECTL" destroy netvm >/dev/null && ! ip -n "$NS" link show "$tap" >/dev/null 2>&1'
ip -n "$NS" link del vh$$
# coved stopping takes the network down, unless a VM still uses it.
"$COVECTL" start netvm >/dev/null
stop_coved
check "coved stopped while a VM uses the network: the network stays" 'ip -n "$NS" link show covebr0 >/dev/null 2>&1 && ip netns exec "$NS" nft list table ip cove_nat >/dev/null 2>&1'
ip netns exec "$NS" "$COVED" --socket "$SOCK" --state-dir "$STATE" --vmm "$FAKE_VMM" \
	--timeout 5 2>>"$TMP/coved.log" &
COVED_PID=$!
wait_for '[ -S "$SOCK" ] && "$COVECTL" list >/dev/null 2>&1' || { echo "Bail out! coved did not restart"; exit 1; }
dpid=$(cat "$STATE/net/default.dnsmasq.pid")
"$COVECTL" destroy netvm >/dev/null
stop_coved
check "coved stopped with no VM on the network: bridge, nftables table and dnsmasq gone" '! ip -n "$NS" link show covebr0 >/dev/null 2>&1 && ! ip netns exec "$NS" nft list table ip cove_nat >/dev/null 2>&1 && wait_for "! kill -0 $dpid 2>/dev/null" 30'
echo "1..$n"
