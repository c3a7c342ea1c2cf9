/* rigtool: the small socket and data helper the nested Linux rig runs in L1 and L2.
 *
 * Built statically by tests/linux/rig.py so it runs in a busybox initramfs. Every
 * subcommand is bounded by an alarm; each prints a reason on stderr and exits 1 on failure.
 *
 *   gen N [SEED]                 N deterministic pseudo-random bytes on stdout
 *   tcp-send HOST PORT           stdin to a TCP connection, then half-close, wait for EOF
 *   tcp-recv PORT                accept one TCP connection, copy it to stdout until EOF
 *   vsock-send CID PORT          the same over AF_VSOCK
 *   vsock-recv PORT              accept one vsock connection, copy it to stdout until EOF
 *   uds-send PATH PORT           Firecracker's vsock bridge: "CONNECT PORT\n", then as tcp-send
 *   uds-recv PATH                listen on a Unix socket, accept one, copy to stdout until EOF
 *   uds-cat PATH                 connect to a Unix socket; stdin to it, it to stdout
 *   uds-idle PATH SECONDS        connect to a Unix socket and read nothing for SECONDS
 *   http SOCK METHOD PATH [BODY] one HTTP/1.1 request over a Unix socket; prints the status
 *                                code on the first line and the body after it; exit 0 on 2xx
 *   readrate DEV BYTES           O_DIRECT sequential read; prints "BYTES SECONDS BYTES/S"
 *   zeroout DEV OFFSET LEN       BLKZEROOUT ioctl (REQ_OP_WRITE_ZEROES in the guest)
 *   timeline TEXT CMD [ARGS...]  runs CMD with its output on a pipe (copied to stderr);
 *                                prints "first=S exit=S status=N": seconds from exec to
 *                                the first line containing TEXT, and to the process's exit
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_S 120

static int die(const char *what)
{
	fprintf(stderr, "rigtool: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* xorshift64*: the same stream on every side, so receivers can check without a file. */
static int cmd_gen(unsigned long long n, unsigned long long seed)
{
	uint64_t x = seed ? seed : 0x9e3779b97f4a7c15ULL;
	static unsigned char buf[65536];
	while (n) {
		size_t chunk = n < sizeof(buf) ? (size_t)n : sizeof(buf);
		for (size_t i = 0; i < chunk; i += 8) {
			x ^= x >> 12;
			x ^= x << 25;
			x ^= x >> 27;
			uint64_t v = x * 0x2545f4914f6cdd1dULL;
			memcpy(buf + i, &v, chunk - i < 8 ? chunk - i : 8);
		}
		if (write_all(1, buf, chunk))
			die("write");
		n -= chunk;
	}
	return 0;
}

/* Copies stdin to fd (then half-closes) and fd to stdout, until both have ended. */
static int relay(int fd)
{
	static char buf[65536];
	int in_open = 1, sock_open = 1;
	while (sock_open || in_open) {
		struct pollfd p[2];
		int n = 0, si = -1, ii = -1;
		if (sock_open)
			p[si = n++] = (struct pollfd){.fd = fd, .events = POLLIN};
		if (in_open)
			p[ii = n++] = (struct pollfd){.fd = 0, .events = POLLIN};
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (si >= 0 && p[si].revents) {
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r < 0)
				die("read socket");
			if (r == 0)
				sock_open = 0;
			else if (write_all(1, buf, (size_t)r))
				die("write stdout");
		}
		if (ii >= 0 && p[ii].revents) {
			ssize_t r = read(0, buf, sizeof(buf));
			if (r < 0)
				die("read stdin");
			if (r == 0) {
				in_open = 0;
				shutdown(fd, SHUT_WR);
			} else if (write_all(fd, buf, (size_t)r))
				die("write socket");
		}
	}
	return 0;
}

static int accept_one(int ls)
{
	if (listen(ls, 1))
		die("listen");
	int fd = accept(ls, NULL, NULL);
	if (fd < 0)
		die("accept");
	close(ls);
	return fd;
}

static int cmd_tcp_send(const char *host, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "rigtool: %s: not an IPv4 address\n", host);
		return 1;
	}
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	for (int i = 0; connect(fd, (struct sockaddr *)&sa, sizeof(sa)); i++) {
		if (i == 100)
			die("connect");
		usleep(100000);
	}
	return relay(fd);
}

static int cmd_tcp_recv(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)))
		die("bind");
	close(0);
	open("/dev/null", O_RDONLY);
	return relay(accept_one(ls));
}

static int cmd_vsock_send(unsigned cid, unsigned port)
{
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket(AF_VSOCK)");
	for (int i = 0; connect(fd, (struct sockaddr *)&sa, sizeof(sa)); i++) {
		if (i == 100)
			die("vsock connect");
		usleep(100000);
		close(fd);
		fd = socket(AF_VSOCK, SOCK_STREAM, 0);
	}
	return relay(fd);
}

static int cmd_vsock_recv(unsigned port)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	int ls = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (ls < 0)
		die("socket(AF_VSOCK)");
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)))
		die("vsock bind");
	close(0);
	open("/dev/null", O_RDONLY);
	return relay(accept_one(ls));
}

static int uds_socket(const char *path, struct sockaddr_un *sa)
{
	if (strlen(path) >= sizeof(sa->sun_path)) {
		fprintf(stderr, "rigtool: %s: path too long\n", path);
		exit(1);
	}
	*sa = (struct sockaddr_un){.sun_family = AF_UNIX};
	strcpy(sa->sun_path, path);
	return socket(AF_UNIX, SOCK_STREAM, 0);
}

static int uds_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd = uds_socket(path, &sa);
	for (int i = 0; connect(fd, (struct sockaddr *)&sa, sizeof(sa)); i++) {
		if (i == 100)
			die(path);
		usleep(100000);
	}
	return fd;
}

static int cmd_uds_send(const char *path, unsigned port)
{
	int fd = uds_connect(path);
	char line[64];
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	if (write_all(fd, line, (size_t)n))
		die("write CONNECT");
	/* The answer is "OK <host port>\n": read it byte by byte so no data is eaten. */
	char c;
	size_t i = 0;
	while (read(fd, &c, 1) == 1 && c != '\n' && i < sizeof(line) - 1)
		line[i++] = c;
	line[i] = 0;
	if (strncmp(line, "OK ", 3)) {
		fprintf(stderr, "rigtool: CONNECT %u answered '%s'\n", port, line);
		return 1;
	}
	return relay(fd);
}

static int cmd_uds_recv(const char *path)
{
	struct sockaddr_un sa;
	int ls = uds_socket(path, &sa);
	unlink(path);
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)))
		die("bind");
	close(0);
	open("/dev/null", O_RDONLY);
	return relay(accept_one(ls));
}

static int cmd_http(const char *sock, const char *method, const char *path, const char *body)
{
	int fd = uds_connect(sock);
	char head[1024];
	size_t blen = body ? strlen(body) : 0;
	int n = snprintf(head, sizeof(head),
			 "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
			 "Content-Type: application/json\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 method, path, blen);
	if (write_all(fd, head, (size_t)n) || (blen && write_all(fd, body, blen)))
		die("write request");
	static char resp[1 << 20];
	size_t got = 0;
	ssize_t r;
	while (got < sizeof(resp) - 1 && (r = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
		got += (size_t)r;
	resp[got] = 0;
	int code = 0;
	if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1) {
		fprintf(stderr, "rigtool: no HTTP status in answer\n");
		return 1;
	}
	char *b = strstr(resp, "\r\n\r\n");
	printf("%d\n%s\n", code, b ? b + 4 : "");
	return code >= 200 && code < 300 ? 0 : 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmd_readrate(const char *dev, unsigned long long bytes)
{
	int fd = open(dev, O_RDONLY | O_DIRECT);
	if (fd < 0)
		die(dev);
	void *buf;
	if (posix_memalign(&buf, 4096, 65536))
		die("memalign");
	double t0 = now_s();
	unsigned long long done = 0;
	while (done < bytes) {
		ssize_t n = pread(fd, buf, 65536, (off_t)done);
		if (n <= 0)
			die("pread");
		done += (unsigned long long)n;
	}
	double dt = now_s() - t0;
	printf("%llu %.3f %.0f\n", done, dt, (double)done / dt);
	return 0;
}

static int cmd_zeroout(const char *dev, unsigned long long off, unsigned long long len)
{
	int fd = open(dev, O_WRONLY);
	if (fd < 0)
		die(dev);
	uint64_t range[2] = {off, len};
	if (ioctl(fd, BLKZEROOUT, range))
		die("BLKZEROOUT");
	return 0;
}

static int cmd_timeline(const char *text, char **argv)
{
	int p[2];
	if (pipe(p))
		die("pipe");
	double t0 = now_s(), first = -1;
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	/* Lines are matched as they come; a match may straddle two reads, so keep a tail. */
	static char buf[65536 + 256];
	size_t have = 0, tlen = strlen(text);
	ssize_t n;
	while ((n = read(p[0], buf + have, sizeof(buf) - 256 - have)) > 0) {
		write_all(2, buf + have, (size_t)n);
		have += (size_t)n;
		buf[have] = 0;
		if (first < 0 && memmem(buf, have, text, tlen))
			first = now_s() - t0;
		if (have > tlen) {
			memmove(buf, buf + have - tlen, tlen);
			have = tlen;
		}
	}
	int status;
	waitpid(pid, &status, 0);
	double end = now_s() - t0;
	printf("first=%.3f exit=%.3f status=%d\n", first, end,
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return first < 0;
}

static unsigned long long num(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end || end == s) {
		fprintf(stderr, "rigtool: '%s' is not a number\n", s);
		exit(1);
	}
	return v;
}

int main(int argc, char **argv)
{
	alarm(TIMEOUT_S);
	const char *c = argc > 1 ? argv[1] : "";
	if (!strcmp(c, "gen") && argc >= 3)
		return cmd_gen(num(argv[2]), argc > 3 ? num(argv[3]) : 0);
	if (!strcmp(c, "tcp-send") && argc == 4)
		return cmd_tcp_send(argv[2], (int)num(argv[3]));
	if (!strcmp(c, "tcp-recv") && argc == 3)
		return cmd_tcp_recv((int)num(argv[2]));
	if (!strcmp(c, "vsock-send") && argc == 4)
		return cmd_vsock_send((unsigned)num(argv[2]), (unsigned)num(argv[3]));
	if (!strcmp(c, "vsock-recv") && argc == 3)
		return cmd_vsock_recv((unsigned)num(argv[2]));
	if (!strcmp(c, "uds-send") && argc == 4)
		return cmd_uds_send(argv[2], (unsigned)num(argv[3]));
	if (!strcmp(c, "uds-recv") && argc == 3)
		return cmd_uds_recv(argv[2]);
	if (!strcmp(c, "uds-cat") && argc == 3)
		return relay(uds_connect(argv[2]));
	if (!strcmp(c, "uds-idle") && argc == 4) {
		int fd = uds_connect(argv[2]);
		sleep((unsigned)num(argv[3]));
		close(fd);
		return 0;
	}
	if (!strcmp(c, "http") && (argc == 5 || argc == 6))
		return cmd_http(argv[2], argv[3], argv[4], argc == 6 ? argv[5] : NULL);
	if (!strcmp(c, "readrate") && argc == 4)
		return cmd_readrate(argv[2], num(argv[3]));
	if (!strcmp(c, "zeroout") && argc == 5)
		return cmd_zeroout(argv[2], num(argv[3]), num(argv[4]));
	if (!strcmp(c, "timeline") && argc >= 4) {
		alarm(600);
		return cmd_timeline(argv[2], argv + 3);
	}
	fprintf(stderr, "usage: rigtool gen|tcp-send|tcp-recv|vsock-send|vsock-recv|uds-send|"
			"uds-recv|uds-cat|uds-idle|http|readrate|zeroout|timeline ARGS (see the "
			"source's header)\n");
	return 2;
}
