# The host side of the vsock test: PATH_1234 answers the guest's connection; then it connects
# to the guest's port 5000 through PATH with Firecracker's "CONNECT 5000" handshake.
import socket, sys, time
path = sys.argv[1]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path + "_1234")
srv.listen(1)
srv.settimeout(30)
print("ready", flush=True)
c, _ = srv.accept()
c.settimeout(10)
got = c.recv(100)
if got != b"hello-from-guest":
    sys.exit(f"guest sent {got!r}")
c.sendall(b"host-echo:" + got)
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
print("vsock host side ok:", line.decode().strip())
