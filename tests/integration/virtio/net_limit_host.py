#!/usr/bin/env python3
"""Host side of the run-time NIC limit test: while the probe's vnetbench sends, sets the
transmit limit of a NIC started without one through PATCH /network-interfaces/net0
(2 MB/s, then 8 MB/s, then none) and measures what reaches the tap (its rx_bytes counter,
read inside the test's network namespace).

usage: net_limit_host.py API_SOCKET NETNS TAP
Prints one line per check; exits 1 when one failed."""
import json
import subprocess
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from balloon_host import api, check, failed, socket_ready, wait_for  # noqa: E402


def rx_bytes(ns, tap):
    out = subprocess.run(["ip", "netns", "exec", ns, "cat",
                          "/sys/class/net/%s/statistics/rx_bytes" % tap],
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def rate(ns, tap, seconds):
    a, t0 = rx_bytes(ns, tap), time.time()
    time.sleep(seconds)
    b, t1 = rx_bytes(ns, tap), time.time()
    return (b - a) / (t1 - t0) / 1e6


def limit(sock, mbps):
    body = {"iface_id": "net0",
            "tx_rate_limiter": {"bandwidth": {"size": int(mbps * 1e5), "refill_time": 100}}}
    st, r = api(sock, "PATCH", "/network-interfaces/net0", body)
    check(st == 204, "PATCH tx_rate_limiter %g MB/s: %d %s" % (mbps, st, r or ""))


def main():
    try:
        run(*sys.argv[1:4])
    except Exception as e:  # a dead VMM or a malformed answer is a failure, said plainly
        check(False, "host side: %s: %s" % (type(e).__name__, e))
    sys.exit(1 if failed else 0)


def run(sock, ns, tap):
    if not wait_for(lambda: socket_ready(sock), 20):
        check(False, "the API socket appeared")
        return
    st, _ = api(sock, "PATCH", "/network-interfaces/nope", {"iface_id": "nope"})
    check(st == 400, "PATCH of an unknown interface: 400 (got %d)" % st)
    limit(sock, 2)
    start = rx_bytes(ns, tap)
    check(wait_for(lambda: rx_bytes(ns, tap) > start + 200000, 30) is not None,
          "the guest is sending")
    time.sleep(1.0)  # the bucket's first burst goes out at once
    a = rate(ns, tap, 1.5)
    check(1.0 < a < 3.0, "at 2 MB/s the tap got %.2f MB/s" % a)
    limit(sock, 8)
    time.sleep(0.7)
    b = rate(ns, tap, 1.5)
    check(5.0 < b < 10.5, "at 8 MB/s the tap got %.2f MB/s" % b)
    st, cfg = api(sock, "GET", "/vm/config")
    nic = cfg["network-interfaces"][0] if st == 200 else {}
    check(nic.get("tx_rate_limiter", {}).get("bandwidth", {}).get("size") == 800000,
          "GET /vm/config shows the limit: %s" % json.dumps(nic))
    body = {"iface_id": "net0", "tx_rate_limiter": {"bandwidth": {"size": 0, "refill_time": 0}}}
    st, _ = api(sock, "PATCH", "/network-interfaces/net0", body)
    check(st == 204, "PATCH removing the limit: %d" % st)
    st, cfg = api(sock, "GET", "/vm/config")
    check(st == 200 and "tx_rate_limiter" not in cfg["network-interfaces"][0],
          "GET /vm/config shows no limit")


main()
