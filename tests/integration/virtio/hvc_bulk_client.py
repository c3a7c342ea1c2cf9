#!/usr/bin/env python3
"""A slow virtio-console client for the probe's vcon_bulk test: connects with a small receive
buffer, says "go", does not read for a while (the VMM's socket fills up), then reads the
guest's output and checks every byte against the pattern the guest sends, and that nothing
more comes before the VMM closes the socket.

With MORE_BYTES (the guest's probe.con_more) the pause is meant to outlast the time the VMM
holds output back, so part of the first BYTES may be lost: the client reads what came, and
once nothing more comes for a second says "more"; the guest's next MORE_BYTES must then arrive
whole, at the end, after a correct start of the stream. (A VMM that boots slowly may start the
guest only after all that: then the whole stream comes after "more".)

usage: hvc_bulk_client.py SOCKET BYTES [PAUSE_SECONDS [MORE_BYTES]]
Prints one line ("client got N bytes ..."); exits 1 when the stream was short, long or wrong."""
import socket
import sys
import time
import zlib

PERIOD = 65521  # tests/guest/virtio_tests.c: BULK_PERIOD, bulk_pat()


def expected(total):
    one = bytes(((x * 0x9E3779B1) & 0xFFFFFFFF) >> 24 for x in range(PERIOD))
    return (one * (total // PERIOD + 1))[:total]


def read_until(s, timeout, got):
    """Reads into got until the peer closes or nothing comes for timeout seconds."""
    s.settimeout(timeout)
    while True:
        try:
            d = s.recv(4096)
        except socket.timeout:
            return
        if not d:
            return
        got += d


def first_difference(got, want):
    n = min(len(got), len(want))
    return next((i for i in range(n) if got[i] != want[i]), None)


def main():
    path, total = sys.argv[1], int(sys.argv[2])
    pause = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    more = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    for _ in range(400):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(path)
            break
        except OSError:
            s.close()
            time.sleep(0.05)
    else:
        sys.exit("no socket at " + path)
    time.sleep(0.2)
    s.sendall(b"go\n")
    time.sleep(pause)  # the guest keeps sending: the VMM must hold its output back
    got = bytearray()
    if not more:
        read_until(s, 60, got)
        want = expected(total)
        where = first_difference(got, want)
        ok = len(got) == total and where is None
        print("client got %d of %d bytes, crc32 %08x (want %08x)%s" %
              (len(got), total, zlib.crc32(got), zlib.crc32(want),
               "" if where is None else ", first difference at byte %d" % where))
        sys.exit(0 if ok else 1)
    read_until(s, 1, got)  # what the VMM held, and anything after it
    first = len(got)
    s.sendall(b"more\n")
    read_until(s, 60, got)
    want = expected(total + more)
    start = first_difference(got, want)
    start = len(got) if start is None else start
    tail_ok = len(got) >= more and bytes(got[-more:]) == want[total:]
    ok = start > 0 and tail_ok
    print("client got %d bytes: %d before it said more, %d after; the first %d in order, "
          "%s the guest's %d more at the end" %
          (len(got), first, len(got) - first, start, "all of" if tail_ok else "NOT", more))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
