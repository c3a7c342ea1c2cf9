#!/usr/bin/env python3
"""Host side of the probe's vballoon_target test: sets balloon targets while the guest runs
and checks what the VMM reports. Targets 8 MiB, then 4 MiB, then 0 (the guest follows each).

usage: balloon_host.py cove API_SOCKET MEM_MIB   (Firecracker API: PATCH /balloon, ...)
       balloon_host.py qemu QMP_SOCKET MEM_MIB   (QMP: balloon, query-balloon, qom-get)
Prints one line per check; exits 1 when one failed."""
import http.client
import json
import socket
import sys
import time

failed = []


def check(ok, what):
    print(("ok " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failed.append(what)


def wait_for(fn, seconds, step=0.1):
    end = time.time() + seconds
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return None


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


def api(sock, method, path, body=None):
    c = UnixHTTP(sock)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (json.loads(data) if data else None)


def cove(sock, mem):
    if not wait_for(lambda: socket_ready(sock), 20):
        check(False, "the API socket appeared")
        return

    def actual_is(mib):
        st, s = api(sock, "GET", "/balloon/statistics")
        return s if st == 200 and s["actual_mib"] == mib and s["target_mib"] == mib else None

    s = wait_for(lambda: actual_is(8), 40)
    check(s is not None, "the guest inflated to the boot target of 8 MiB")
    # The driver's first report came with a notification before DRIVER_OK (as Linux's).
    check(s is not None and "free_memory" in s and s.get("minor_faults", 0) >= 1,
          "statistics from the first report, sent before DRIVER_OK: %s" % json.dumps(s))
    st, _ = api(sock, "PATCH", "/balloon", {"amount_mib": mem + 1})
    check(st == 400, "PATCH /balloon above the guest's memory: 400 (got %d)" % st)
    st, _ = api(sock, "PATCH", "/balloon", {"amount_mib": 4})
    check(st == 204, "PATCH /balloon amount_mib=4: 204 (got %d)" % st)
    s = wait_for(lambda: actual_is(4), 30)
    check(s is not None, "the guest deflated to 4 MiB")
    st, stats = api(sock, "GET", "/stats")
    want = (mem - 4) * 1024
    check(st == 200 and stats["balloon_current_kib"] == want
          and stats["balloon_maximum_kib"] == mem * 1024,
          "GET /stats balloon_current_kib %s (want %d), maximum %s" %
          (stats and stats.get("balloon_current_kib"), want,
           stats and stats.get("balloon_maximum_kib")))
    # The statistics refresh: minor_faults counts the guest's reports.
    s = wait_for(lambda: (lambda r: r[1] if r[0] == 200 and r[1].get("minor_faults", 0) >= 3
                          else None)(api(sock, "GET", "/balloon/statistics")), 10)
    check(s is not None and "free_memory" in s and "available_memory" in s
          and "swap_in" not in s,
          "statistics refreshed by the guest: %s" % json.dumps(s))
    st, _ = api(sock, "PATCH", "/balloon/statistics", {"stats_polling_interval_s": 2})
    check(st == 204, "PATCH /balloon/statistics interval 2: 204 (got %d)" % st)
    st, _ = api(sock, "PATCH", "/balloon/statistics", {"stats_polling_interval_s": 0})
    check(st == 400, "PATCH /balloon/statistics interval 0 after boot: 400 (got %d)" % st)
    st, b = api(sock, "GET", "/balloon")
    check(st == 200 and b["amount_mib"] == 4 and b["stats_polling_interval_s"] == 2
          and b["deflate_on_oom"] is True, "GET /balloon: %s" % json.dumps(b))
    st, _ = api(sock, "PATCH", "/balloon", {"amount_mib": 0})
    check(st == 204, "PATCH /balloon amount_mib=0: 204 (got %d)" % st)


def socket_ready(path):
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.close()
        return True
    except OSError:
        return False


class QMP:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(path)
        self.f = self.s.makefile("rw")
        json.loads(self.f.readline())  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "event" not in r:
                return r


def qemu(path, mem):
    if not wait_for(lambda: socket_ready(path), 20):
        check(False, "the QMP socket appeared")
        return
    q = QMP(path)
    dev = "/machine/peripheral/bal0"
    r = q.cmd("qom-set", path=dev, property="guest-stats-polling-interval", value=1)
    check("return" in r, "QMP guest-stats-polling-interval=1: %s" % json.dumps(r))

    def actual_is(mib):
        r = q.cmd("query-balloon")
        return r if r.get("return", {}).get("actual") == (mem - mib) << 20 else None

    # QEMU's balloon value is the memory the guest keeps, not the balloon's size.
    for mib in (8, 4):
        r = q.cmd("balloon", value=(mem - mib) << 20)
        check("return" in r, "QMP balloon to %d MiB: %s" % (mib, json.dumps(r)))
        check(wait_for(lambda: actual_is(mib), 40) is not None,
              "the guest's balloon holds %d MiB" % mib)
    s = wait_for(lambda: (lambda r: r if r.get("return", {}).get("stats", {})
                          .get("stat-minor-faults", 0) >= 3 else None)(
        q.cmd("qom-get", path=dev, property="guest-stats")), 10)
    check(s is not None, "statistics refreshed by the guest: %s" %
          json.dumps(s and s["return"]["stats"]))
    q.cmd("balloon", value=mem << 20)


def main():
    kind, path, mem = sys.argv[1], sys.argv[2], int(sys.argv[3])
    try:
        (cove if kind == "cove" else qemu)(path, mem)
    except Exception as e:  # a dead VMM or a malformed answer is a failure, said plainly
        check(False, "host side: %s: %s" % (type(e).__name__, e))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
