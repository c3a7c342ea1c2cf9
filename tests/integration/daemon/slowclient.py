#!/usr/bin/env python3
"""Misbehaving API clients for test_coved_slow.sh. Prints one line of results.

usage: slowclient.py drip SOCKET [header|body]   -- sends a request one byte a second
       slowclient.py hold SOCKET N               -- opens N connections, then one more
       slowclient.py wshalf SOCKET VM            -- WebSocket console, then half a frame
"""
import base64
import os
import socket
import sys
import time


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def read_all(s, limit):
    """Reads until EOF or limit seconds; returns (bytes, seconds until EOF or None)."""
    s.settimeout(0.2)
    t0 = time.monotonic()
    got = b""
    while time.monotonic() - t0 < limit:
        try:
            b = s.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            return got, time.monotonic() - t0
        if not b:
            return got, time.monotonic() - t0
        got += b
    return got, None


def drip(path, what):
    s = connect(path)
    if what == "body":
        data = (b"POST /v1/vms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 40\r\n\r\n" + b'{"name":"dripped"' + b" " * 22 + b"}")
        head = data.index(b"\r\n\r\n") + 4
        s.sendall(data[:head])
        rest = data[head:]
    else:
        s.sendall(b"GET /v1/vms HTTP/1.1\r\nHost: x\r\n")
        rest = b"X-Drip: " + b"a" * 60 + b"\r\n\r\n"
    t0 = time.monotonic()
    got = b""
    s.settimeout(1.0)
    for ch in rest:  # one byte a second: never idle long enough for the idle timeout
        try:
            s.sendall(bytes([ch]))
        except OSError:
            break
        try:
            b = s.recv(4096)
            if not b:
                break
            got += b
        except socket.timeout:
            pass
        except OSError:
            break
        if time.monotonic() - t0 > 30:
            break
    more, _ = read_all(s, 1)
    got += more
    status = got.split(b" ", 2)[1].decode() if got.startswith(b"HTTP/1.1 ") else "none"
    print("status=%s after=%.1f" % (status, time.monotonic() - t0))


def hold(path, n):
    held = [connect(path) for _ in range(n)]
    extra = connect(path)
    got, _ = read_all(extra, 2)
    status = got.split(b" ", 2)[1].decode() if got.startswith(b"HTTP/1.1 ") else "none"
    # The held ones are closed by the idle timeout or the request deadline.
    t0 = time.monotonic()
    cut = 0
    for h in held:
        _, when = read_all(h, 15 - (time.monotonic() - t0))
        cut += when is not None
    print("extra=%s held_cut=%d after=%.1f" % (status, cut, time.monotonic() - t0))


def wshalf(path, vm):
    s = connect(path)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /v1/vms/%s/console HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % (vm, key)).encode())
    time.sleep(0.5)
    # A masked binary frame announcing 100 bytes, of which only the header is sent.
    s.sendall(bytes([0x82, 0x80 | 100, 1, 2, 3, 4]))
    got, when = read_all(s, 20)
    upgraded = got.startswith(b"HTTP/1.1 101")
    print("upgraded=%s closed_after=%s" % (upgraded, "%.1f" % when if when else "never"))


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "drip":
        drip(path, sys.argv[3] if len(sys.argv) > 3 else "header")
    elif mode == "hold":
        hold(path, int(sys.argv[3]))
    elif mode == "wshalf":
        wshalf(path, sys.argv[3])
