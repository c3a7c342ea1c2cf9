#!/usr/bin/env python3
"""Host side of the probe's vnet_mq test: answers one datagram from each of N queue pairs.

Listens on 10.77.0.1:7777 (inside the test's network namespace). Pair p sends
"cove-mq-<p>-<nonce>" from port 5000 + p; each gets "cove-mqpong-<p>-<nonce>" back. Prints the
ports and payloads seen; exits 1 when a pair's datagram did not come from its port, or when
not all N arrived within 60 s.
"""
import socket
import sys

n = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.77.0.1", 7777))
s.settimeout(60)
seen = {}
try:
    while len(seen) < n:
        d, a = s.recvfrom(2048)
        if not d.startswith(b"cove-mq-"):
            continue
        pair = int(d.split(b"-")[2])
        if a[1] != 5000 + pair:
            print("pair %d's datagram came from port %d" % (pair, a[1]))
            sys.exit(1)
        seen[pair] = a[1]
        s.sendto(d.replace(b"cove-mq-", b"cove-mqpong-"), a)
except socket.timeout:
    print("only pairs %s within 60 s" % sorted(seen))
    sys.exit(1)
print("pairs %s from ports %s" % (sorted(seen), sorted(seen.values())))
