#!/usr/bin/env python3
"""A slow virtio-console client for the probe's vcon_bulk test: connects with a small receive
buffer, says "go", does not read for a while (the VMM's socket fills up), then reads the
guest's output and checks every byte against the pattern the guest sends, and that nothing
more comes before the VMM closes the socket.

usage: hvc_bulk_client.py SOCKET BYTES [PAUSE_SECONDS]
Prints one line; exits 1 when the stream was short, long or wrong."""
import socket
import sys
import time
import zlib

PERIOD = 65521  # tests/guest/virtio_tests.c: BULK_PERIOD, bulk_pat()


def expected(total):
    one = bytes(((x * 0x9E3779B1) & 0xFFFFFFFF) >> 24 for x in range(PERIOD))
    return (one * (total // PERIOD + 1))[:total]


def main():
    path, total = sys.argv[1], int(sys.argv[2])
    pause = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
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
    s.settimeout(60)
    got = bytearray()
    while True:
        try:
            d = s.recv(4096)
        except socket.timeout:
            break
        if not d:
            break
        got += d
    want = expected(total)
    where = next((i for i in range(min(len(got), total)) if got[i] != want[i]), None)
    ok = len(got) == total and where is None
    print("client got %d of %d bytes, crc32 %08x (want %08x)%s" %
          (len(got), total, zlib.crc32(got), zlib.crc32(want),
           "" if where is None else ", first difference at byte %d" % where))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
