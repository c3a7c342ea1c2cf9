# The host side of the vsock test: PATH_1234 answers the guest's connection, reads end of file
# when the guest half-closes and still answers; then it connects to the guest's port 5000
# through PATH with Firecracker's "CONNECT 5000" handshake, sends 64 KiB (the probe checks
# every byte) and closes, which the guest must see as a SHUTDOWN. Last PATH_1235 takes the
# guest's 512 KiB: it reads nothing for a second (more than the socket holds waits in the
# device, the rest in the guest for credit), then reads slowly, and checks every byte and the
# end of file after them.
import select, socket, sys, time
path = sys.argv[1]
BULK = bytes(((i * 7) ^ (i >> 9)) & 255 for i in range(64 << 10))
CHUNK = 4096
PAT = bytes(((j * 7) ^ (j >> 5)) & 255 for j in range(CHUNK))
UPLOAD = b"".join(k.to_bytes(4, "little") + PAT[4:] for k in range((512 << 10) // CHUNK))
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path + "_1234")
srv.listen(1)
srv.settimeout(30)
up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
up.bind(path + "_1235")
up.listen(1)
up.settimeout(60)
print("ready", flush=True)
c, _ = srv.accept()
c.settimeout(10)
got = c.recv(100)
if got != b"hello-from-guest":
    sys.exit(f"guest sent {got!r}")
c.sendall(b"host-echo:" + got)
got = c.recv(100)
if got != b"":
    sys.exit(f"after the guest's SHUTDOWN(SEND): {got!r}, want end of file")
try:
    c.sendall(b"after-eof")
except OSError as e:
    sys.exit(f"cannot answer after the guest's half-close: {e}")
# The guest's full SHUTDOWN: the device lets its end go (we are at end of file already, so
# only the hang-up tells), and only then do we close ours.
p = select.poll()
p.register(c, select.POLLHUP)
if not p.poll(10000):
    sys.exit("the device kept the connection after the guest's full SHUTDOWN")
c.close()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(path)
s.sendall(b"CONNECT 5000\n")
line = b""
while not line.endswith(b"\n"):
    d = s.recv(1)
    if not d:
        sys.exit(f"connection closed after {line!r}")
    line += d
if not line.startswith(b"OK "):
    sys.exit(f"handshake answer {line!r}")
s.sendall(b"ping-from-host")
got = b""
while len(got) < 25:
    d = s.recv(100)
    if not d:
        break
    got += d
if got != b"guest-echo:ping-from-host":
    sys.exit(f"guest answered {got!r}")
s.sendall(BULK)
s.close()
u, _ = up.accept()
u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
u.settimeout(10)
time.sleep(1)
got = bytearray()
while True:
    d = u.recv(4096)
    if not d:
        break
    got += d
    if len(got) % 16384 < len(d):
        time.sleep(0.002)
if got != UPLOAD:
    bad = next((i for i in range(min(len(got), len(UPLOAD))) if got[i] != UPLOAD[i]), None)
    sys.exit(f"guest to host: {len(got)} of {len(UPLOAD)} bytes, first wrong byte at {bad}")
u.close()
print("vsock host side ok:", line.decode().strip(), "then 64 KiB and a close;",
      "512 KiB from the guest, read slowly")
