# Connects to a virtio-console Unix socket, sends a line, waits for the guest to echo it back.
import socket, sys, time
path = sys.argv[1]
for _ in range(200):
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(path); break
    except OSError:
        time.sleep(0.05)
else:
    sys.exit("no socket")
time.sleep(0.2)
s.sendall(b"cove-hvc-ping\n")
s.settimeout(20)
buf = b""
while b"guest-got:cove-hvc-ping" not in buf:
    d = s.recv(4096)
    if not d: break
    buf += d
print("client got", buf)
sys.exit(0 if b"guest-got:cove-hvc-ping" in buf else 1)
