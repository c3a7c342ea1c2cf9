/* covectl: virsh's verbs for Cove, talking HTTP/JSON to coved over its Unix socket. */
#include "api/client.h"
#include "api/json.h"
#include "api/ws.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/cove/coved.sock"

static const char *sock_path;
static bool as_json;

static void usage(FILE *out)
{
	fputs("usage: covectl [--socket PATH] [--json] COMMAND [ARGS]\n"
	      "\n"
	      "  list [--all]              running VMs (--all: defined ones too)\n"
	      "  define FILE               define a VM from a JSON file ('-': stdin)\n"
	      "  undefine NAME             delete a stopped VM's definition\n"
	      "  start NAME                start a VM\n"
	      "  shutdown NAME             ask the guest to power off (ACPI power button)\n"
	      "  destroy NAME              stop a VM at once\n"
	      "  reboot NAME               reboot a VM\n"
	      "  suspend NAME / resume NAME  pause / resume a VM's vCPUs\n"
	      "  console NAME              attach to the serial console (Ctrl-] leaves)\n"
	      "  info NAME                 definition and state\n"
	      "  stats NAME                counters, named as libvirt's domstats names them\n"
	      "  events [--vm NAME] [--follow] [--since ID] [--timeout S]\n"
	      "  vol-create NAME SIZE [--format raw|qcow2]\n"
	      "  vol-list                  volumes in the storage pool\n"
	      "  vol-delete NAME\n"
	      "  net-list                  networks\n"
	      "  host                      host information\n"
	      "\n"
	      "The socket is --socket, else $COVED_SOCKET, else " DEFAULT_SOCKET ".\n",
	      out);
}

static int die_conn(const struct cove_err *err)
{
	fprintf(stderr,
		"covectl: cannot talk to coved at %s: %s\n"
		"covectl: is coved running? (start it with 'coved', or point --socket or "
		"$COVED_SOCKET at its socket)\n",
		sock_path, err->msg);
	return 1;
}

/* Sends a request; on an HTTP error prints coved's message and returns 1. *out (may be
 * NULL) gets the parsed JSON body. */
static int call(const char *method, const char *path, const char *body, json_object **out)
{
	struct api_client_resp r = {0};
	struct cove_err err = {0};
	if (api_client_request(sock_path, method, path, body, body ? strlen(body) : 0, 30000, &r,
			       &err) != 0)
		return die_conn(&err);
	json_object *o = r.len ? json_tokener_parse(r.body) : NULL;
	if (r.status >= 400) {
		json_object *m = NULL;
		if (o && json_object_object_get_ex(o, "error", &m))
			fprintf(stderr, "covectl: %s\n", json_object_get_string(m));
		else
			fprintf(stderr, "covectl: coved answered %d: %s\n", r.status, r.body);
		json_object_put(o);
		api_client_resp_free(&r);
		return 1;
	}
	api_client_resp_free(&r);
	if (out)
		*out = o;
	else
		json_object_put(o);
	return 0;
}

static void print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						   JSON_C_TO_STRING_NOSLASHESCAPE));
}

static const char *str(json_object *o, const char *key, const char *dflt)
{
	json_object *v;
	return o && json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : dflt;
}

static int cmd_list(int argc, char **argv)
{
	bool all = argc > 1 && strcmp(argv[1], "--all") == 0;
	if (argc > 2 || (argc == 2 && !all)) {
		fprintf(stderr, "usage: covectl list [--all]\n");
		return 2;
	}
	json_object *arr;
	if (call("GET", "/v1/vms", NULL, &arr))
		return 1;
	if (!all) { /* like virsh: only active domains */
		json_object *keep = json_object_new_array();
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *e = json_object_array_get_idx(arr, i);
			if (strcmp(str(e, "state", ""), "shut off") != 0)
				json_object_array_add(keep, json_object_get(e));
		}
		json_object_put(arr);
		arr = keep;
	}
	if (as_json) {
		print_json(arr);
	} else {
		printf(" %-24s %-10s %5s %10s  %s\n", "Name", "State", "CPUs", "Memory",
		       "Autostart");
		printf("%s\n", "---------------------------------------------------------------");
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *e = json_object_array_get_idx(arr, i);
			printf(" %-24s %-10s %5s %6s MiB  %s\n", str(e, "name", "?"),
			       str(e, "state", "?"), str(e, "cpus", "?"), str(e, "memory", "?"),
			       strcmp(str(e, "autostart", "false"), "true") == 0 ? "yes" : "no");
		}
	}
	json_object_put(arr);
	return 0;
}

static char *read_file(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (len + 1 == cap) {
			if (cap > (1u << 20))
				break; /* coved refuses bodies this large anyway */
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (buf)
		buf[len] = '\0';
	if (f != stdin)
		fclose(f);
	return buf;
}

static int cmd_define(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: covectl define FILE\n");
		return 2;
	}
	char *body = read_file(argv[1]);
	if (!body) {
		fprintf(stderr, "covectl: cannot read %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	json_object *o;
	int rc = call("POST", "/v1/vms", body, &o);
	free(body);
	if (rc)
		return rc;
	if (as_json)
		print_json(o);
	else
		printf("VM %s defined from %s\n", str(o, "name", "?"), argv[1]);
	json_object_put(o);
	return 0;
}

static int name_path(char *buf, size_t cap, const char *prefix, const char *name,
		     const char *suffix)
{
	if (strlen(name) > 64 || strchr(name, '/') || strchr(name, '?') || strchr(name, '%') ||
	    strchr(name, ' ')) {
		fprintf(stderr, "covectl: invalid VM name '%s'\n", name);
		return 2;
	}
	snprintf(buf, cap, "%s%s%s", prefix, name, suffix);
	return 0;
}

static int cmd_undefine(int argc, char **argv)
{
	char path[256];
	if (argc != 2) {
		fprintf(stderr, "usage: covectl undefine NAME\n");
		return 2;
	}
	if (name_path(path, sizeof(path), "/v1/vms/", argv[1], ""))
		return 2;
	if (call("DELETE", path, NULL, NULL))
		return 1;
	if (!as_json)
		printf("VM %s undefined\n", argv[1]);
	return 0;
}

static int cmd_action(int argc, char **argv, const char *action, const char *done)
{
	char path[256], suffix[64];
	if (argc != 2) {
		fprintf(stderr, "usage: covectl %s NAME\n", argv[0]);
		return 2;
	}
	snprintf(suffix, sizeof(suffix), "/actions/%s", action);
	if (name_path(path, sizeof(path), "/v1/vms/", argv[1], suffix))
		return 2;
	if (call("POST", path, NULL, NULL))
		return 1;
	if (!as_json)
		printf("VM %s %s\n", argv[1], done);
	return 0;
}

static int cmd_get(int argc, char **argv, const char *suffix)
{
	char path[256];
	if (argc != 2) {
		fprintf(stderr, "usage: covectl %s NAME\n", argv[0]);
		return 2;
	}
	if (name_path(path, sizeof(path), "/v1/vms/", argv[1], suffix))
		return 2;
	json_object *o;
	if (call("GET", path, NULL, &o))
		return 1;
	if (as_json) {
		print_json(o);
	} else if (strcmp(argv[0], "info") == 0) {
		json_object *def = NULL;
		json_object_object_get_ex(o, "definition", &def);
		printf("%-12s %s\n", "Name:", str(o, "name", "?"));
		printf("%-12s %s\n", "State:", str(o, "state", "?"));
		if (str(o, "pid", NULL))
			printf("%-12s %s\n", "PID:", str(o, "pid", ""));
		printf("%-12s %s\n", "CPUs:", str(def, "cpus", "?"));
		printf("%-12s %s MiB\n", "Memory:", str(def, "memory", "?"));
		printf("%-12s %s\n", "Kernel:", str(def, "kernel", "(built-in probe guest)"));
		if (str(def, "cmdline", NULL))
			printf("%-12s %s\n", "Cmdline:", str(def, "cmdline", ""));
		json_object *disks = NULL, *nics = NULL;
		json_object_object_get_ex(def, "disks", &disks);
		json_object_object_get_ex(def, "nics", &nics);
		for (size_t i = 0; disks && i < json_object_array_length(disks); i++) {
			json_object *k = json_object_array_get_idx(disks, i);
			printf("%-12s %s%s\n", i ? "" : "Disks:", str(k, "path", "?"),
			       strcmp(str(k, "readonly", "false"), "true") == 0 ? " (read-only)"
										: "");
		}
		for (size_t i = 0; nics && i < json_object_array_length(nics); i++) {
			json_object *k = json_object_array_get_idx(nics, i);
			printf("%-12s %s\n",
			       i ? "" : "NICs:", str(k, "tap", str(k, "network", "?")));
		}
		printf("%-12s %s\n", "Autostart:",
		       strcmp(str(def, "autostart", "false"), "true") == 0 ? "yes" : "no");
	} else {
		json_object_object_foreach(o, k, v)
		    printf("  %s=%s\n", k, json_object_get_string(v));
	}
	json_object_put(o);
	return 0;
}

static void print_event(json_object *e)
{
	if (as_json) {
		puts(json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE));
		fflush(stdout);
		return;
	}
	json_object *v;
	time_t t = 0;
	if (json_object_object_get_ex(e, "time_ms", &v))
		t = (time_t)(json_object_get_int64(v) / 1000);
	struct tm tm;
	localtime_r(&t, &tm);
	char when[32];
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%s  #%-5s %-16s %-10s %s\n", when, str(e, "id", "?"), str(e, "vm", "?"),
	       str(e, "type", "?"), str(e, "reason", ""));
	const char *detail = str(e, "detail", NULL);
	if (detail) {
		char *copy = strdup(detail);
		for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n"))
			printf("        | %s\n", line);
		free(copy);
	}
	fflush(stdout);
}

struct line_buf {
	char buf[65536];
	size_t len;
};

static int on_event_data(void *ctx, const char *data, size_t n)
{
	struct line_buf *lb = ctx;
	for (size_t i = 0; i < n; i++) {
		if (data[i] != '\n') {
			if (lb->len < sizeof(lb->buf) - 1)
				lb->buf[lb->len++] = data[i];
			continue;
		}
		lb->buf[lb->len] = '\0';
		if (lb->len) {
			json_object *e = json_tokener_parse(lb->buf);
			if (e)
				print_event(e);
			json_object_put(e);
		}
		lb->len = 0;
	}
	return 0;
}

static int cmd_events(int argc, char **argv)
{
	const char *vm = NULL, *since = NULL, *timeout = NULL;
	bool follow = false;
	static const struct option o[] = {{"vm", required_argument, NULL, 'v'},
					  {"follow", no_argument, NULL, 'f'},
					  {"since", required_argument, NULL, 's'},
					  {"timeout", required_argument, NULL, 't'},
					  {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (c) {
		case 'v':
			vm = optarg;
			break;
		case 'f':
			follow = true;
			break;
		case 's':
			since = optarg;
			break;
		case 't':
			timeout = optarg;
			break;
		default:
			return 2;
		}
	}
	char path[512];
	int n = snprintf(path, sizeof(path), "/v1/events?follow=%d", follow ? 1 : 0);
	if (vm)
		n += snprintf(path + n, sizeof(path) - (size_t)n, "&vm=%.64s", vm);
	if (since)
		n += snprintf(path + n, sizeof(path) - (size_t)n, "&since=%.20s", since);
	if (timeout)
		snprintf(path + n, sizeof(path) - (size_t)n, "&timeout=%.10s", timeout);
	if (strpbrk(path + 8, " #/")) {
		fprintf(stderr, "covectl: bad argument\n");
		return 2;
	}
	if (!follow) {
		json_object *arr;
		if (call("GET", path, NULL, &arr))
			return 1;
		if (as_json && !follow) {
			print_json(arr);
		} else {
			for (size_t i = 0; i < json_object_array_length(arr); i++)
				print_event(json_object_array_get_idx(arr, i));
		}
		json_object_put(arr);
		return 0;
	}
	struct line_buf *lb = calloc(1, sizeof(*lb));
	struct cove_err err = {0};
	int status = 0;
	int rc =
	    api_client_stream(sock_path, "GET", path, NULL, 0, 0, &status, on_event_data, lb, &err);
	free(lb);
	if (rc)
		return die_conn(&err);
	if (status >= 400) {
		fprintf(stderr, "covectl: coved answered %d\n", status);
		return 1;
	}
	return 0;
}

static int cmd_vol_create(int argc, char **argv)
{
	const char *format = "raw";
	if (argc == 5 && strcmp(argv[3], "--format") == 0)
		format = argv[4];
	else if (argc != 3) {
		fprintf(stderr, "usage: covectl vol-create NAME SIZE [--format raw|qcow2]\n");
		return 2;
	}
	char *end;
	errno = 0;
	unsigned long long size = strtoull(argv[2], &end, 10);
	unsigned long long mult = 1;
	switch (*end) {
	case 'K':
	case 'k':
		mult = 1ull << 10;
		end++;
		break;
	case 'M':
	case 'm':
		mult = 1ull << 20;
		end++;
		break;
	case 'G':
	case 'g':
		mult = 1ull << 30;
		end++;
		break;
	case 'T':
	case 't':
		mult = 1ull << 40;
		end++;
		break;
	default:
		break;
	}
	if (errno || end == argv[2] || *end || size > (1ull << 50) / mult) {
		fprintf(stderr, "covectl: bad size '%s' (e.g. 10G, 512M)\n", argv[2]);
		return 2;
	}
	json_object *b = json_object_new_object();
	json_object_object_add(b, "name", json_object_new_string(argv[1]));
	json_object_object_add(b, "size", json_object_new_uint64(size * mult));
	json_object_object_add(b, "format", json_object_new_string(format));
	json_object *o;
	int rc = call("POST", "/v1/storage/volumes", json_object_to_json_string(b), &o);
	json_object_put(b);
	if (rc)
		return rc;
	if (as_json)
		print_json(o);
	else
		printf("Volume %s created: %s\n", str(o, "name", "?"), str(o, "path", "?"));
	json_object_put(o);
	return 0;
}

static int cmd_table(const char *path, const char *const *cols, const char *const *heads)
{
	json_object *arr;
	if (call("GET", path, NULL, &arr))
		return 1;
	if (as_json) {
		print_json(arr);
	} else {
		for (int i = 0; heads[i]; i++)
			printf(" %-20s", heads[i]);
		printf("\n");
		for (int i = 0; heads[i]; i++)
			printf("%s", "---------------------");
		printf("\n");
		for (size_t r = 0; r < json_object_array_length(arr); r++) {
			json_object *e = json_object_array_get_idx(arr, r);
			for (int i = 0; cols[i]; i++)
				printf(" %-20s", str(e, cols[i], "-"));
			printf("\n");
		}
	}
	json_object_put(arr);
	return 0;
}

static int cmd_host(void)
{
	json_object *o;
	if (call("GET", "/v1/host", NULL, &o))
		return 1;
	if (as_json) {
		print_json(o);
	} else {
		json_object_object_foreach(o, k, v)
		    printf("%-14s %s\n", k, json_object_get_string(v));
	}
	json_object_put(o);
	return 0;
}

/* ---- console: a WebSocket client ---- */

static struct termios saved_tio;
static bool raw_mode;

static void restore_tty(void)
{
	if (raw_mode)
		tcsetattr(0, TCSANOW, &saved_tio);
}

static int ws_handshake(int fd, const char *path)
{
	uint8_t nonce[16];
	if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce))
		return -EIO;
	char key[32], want[29];
	ws_base64(nonce, sizeof(nonce), key);
	ws_accept_key(key, want);
	char req[512];
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Version: 13\r\n\r\n",
			 path, key);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		return -EIO;
	/* Read the response head byte by byte so no frame byte is consumed. */
	char head[4096];
	size_t len = 0;
	while (len < sizeof(head) - 1) {
		ssize_t r = recv(fd, head + len, 1, 0);
		if (r <= 0)
			return -ECONNRESET;
		len++;
		if (len >= 4 && memcmp(head + len - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	head[len] = '\0';
	int status = 0;
	sscanf(head, "HTTP/1.%*d %d", &status);
	if (status != 101) {
		char *body = strstr(head, "\r\n\r\n");
		(void)body;
		fprintf(stderr, "covectl: console refused (HTTP %d)\n", status);
		char rest[1024];
		ssize_t r = recv(fd, rest, sizeof(rest) - 1, 0);
		if (r > 0) {
			rest[r] = '\0';
			json_object *o = json_tokener_parse(rest);
			fprintf(stderr, "covectl: %s\n", o ? str(o, "error", rest) : rest);
			json_object_put(o);
		}
		return -EPROTO;
	}
	char *acc = strcasestr(head, "Sec-WebSocket-Accept:");
	if (!acc)
		return -EPROTO;
	acc += 21;
	while (*acc == ' ')
		acc++;
	if (strncmp(acc, want, 28) != 0)
		return -EPROTO;
	return 0;
}

static int cmd_console(int argc, char **argv)
{
	char path[256];
	if (argc != 2) {
		fprintf(stderr, "usage: covectl console NAME\n");
		return 2;
	}
	if (name_path(path, sizeof(path), "/v1/vms/", argv[1], "/console"))
		return 2;
	struct cove_err err = {0};
	int fd = api_client_connect(sock_path, &err);
	if (fd < 0)
		return die_conn(&err);
	int rc = ws_handshake(fd, path);
	if (rc) {
		if (rc != -EPROTO)
			fprintf(stderr, "covectl: console: %s\n", strerror(-rc));
		close(fd);
		return 1;
	}
	bool tty = isatty(0);
	if (tty) {
		fprintf(stderr, "Connected to %s (escape character is ^])\r\n", argv[1]);
		if (tcgetattr(0, &saved_tio) == 0) {
			struct termios t = saved_tio;
			cfmakeraw(&t);
			if (tcsetattr(0, TCSANOW, &t) == 0) {
				raw_mode = true;
				atexit(restore_tty);
			}
		}
	}
	uint8_t *buf = malloc(WS_MAX_PAYLOAD);
	bool stdin_open = true;
	int64_t linger_until = 0;
	int ret = 0;
	while (buf) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
		int np = stdin_open ? 2 : 1;
		int timeout = linger_until ? 100 : -1;
		int r = poll(p, (nfds_t)np, timeout);
		if (r < 0 && errno == EINTR)
			continue;
		if (linger_until) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			if ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 > linger_until)
				break;
		}
		if (p[0].revents) {
			enum ws_opcode op;
			size_t len;
			if (ws_recv(fd, &op, buf, WS_MAX_PAYLOAD, &len) != 0)
				break;
			if (op == WS_CLOSE)
				break;
			if (op == WS_PING) {
				ws_send(fd, WS_PONG, buf, len, true);
			} else if (op == WS_TEXT || op == WS_BINARY || op == WS_CONT) {
				if (write(1, buf, len) < 0)
					break;
			}
		}
		if (np == 2 && p[1].revents) {
			char in[4096];
			ssize_t n = read(0, in, sizeof(in));
			if (n <= 0) {
				/* Piped input ended: show what the VM answers for a moment. */
				stdin_open = false;
				struct timespec ts;
				clock_gettime(CLOCK_MONOTONIC, &ts);
				linger_until =
				    (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1500;
				continue;
			}
			char *esc = memchr(in, 0x1d, (size_t)n); /* Ctrl-] */
			size_t send_n = esc ? (size_t)(esc - in) : (size_t)n;
			if (send_n && ws_send(fd, WS_BINARY, in, send_n, true) != 0) {
				ret = 1;
				break;
			}
			if (esc) {
				uint8_t code[2] = {0x03, 0xE8};
				ws_send(fd, WS_CLOSE, code, 2, true);
				break;
			}
		}
	}
	free(buf);
	close(fd);
	restore_tty();
	raw_mode = false;
	if (tty)
		fprintf(stderr, "\nDisconnected from %s\n", argv[1]);
	return ret;
}

int main(int argc, char **argv)
{
	sock_path = getenv("COVED_SOCKET");
	if (!sock_path || !*sock_path)
		sock_path = DEFAULT_SOCKET;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			as_json = true;
		} else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
			sock_path = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "covectl: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	char **av = argv + i;
	int ac = argc - i;
	/* Options may also follow the command ("covectl list --json"). */
	for (int j = 1; j < ac; j++) {
		if (strcmp(av[j], "--json") == 0) {
			as_json = true;
			memmove(&av[j], &av[j + 1], sizeof(char *) * (size_t)(ac - j));
			ac--;
			j--;
		}
	}
	const char *cmd = av[0];
	if (strcmp(cmd, "list") == 0)
		return cmd_list(ac, av);
	if (strcmp(cmd, "define") == 0)
		return cmd_define(ac, av);
	if (strcmp(cmd, "undefine") == 0)
		return cmd_undefine(ac, av);
	if (strcmp(cmd, "start") == 0)
		return cmd_action(ac, av, "start", "started");
	if (strcmp(cmd, "shutdown") == 0)
		return cmd_action(ac, av, "shutdown", "is being shut down");
	if (strcmp(cmd, "destroy") == 0)
		return cmd_action(ac, av, "stop", "destroyed");
	if (strcmp(cmd, "reboot") == 0)
		return cmd_action(ac, av, "reboot", "is being rebooted");
	if (strcmp(cmd, "suspend") == 0)
		return cmd_action(ac, av, "pause", "suspended");
	if (strcmp(cmd, "resume") == 0)
		return cmd_action(ac, av, "resume", "resumed");
	if (strcmp(cmd, "console") == 0)
		return cmd_console(ac, av);
	if (strcmp(cmd, "info") == 0)
		return cmd_get(ac, av, "");
	if (strcmp(cmd, "stats") == 0)
		return cmd_get(ac, av, "/stats");
	if (strcmp(cmd, "events") == 0)
		return cmd_events(ac, av);
	if (strcmp(cmd, "vol-create") == 0)
		return cmd_vol_create(ac, av);
	if (strcmp(cmd, "vol-list") == 0) {
		static const char *const c[] = {"name", "format", "capacity", "path", NULL};
		static const char *const h[] = {"Name", "Format", "Capacity", "Path", NULL};
		return cmd_table("/v1/storage/volumes", c, h);
	}
	if (strcmp(cmd, "vol-delete") == 0) {
		char path[256];
		if (ac != 2) {
			fprintf(stderr, "usage: covectl vol-delete NAME\n");
			return 2;
		}
		if (name_path(path, sizeof(path), "/v1/storage/volumes/", av[1], ""))
			return 2;
		if (call("DELETE", path, NULL, NULL))
			return 1;
		if (!as_json)
			printf("Volume %s deleted\n", av[1]);
		return 0;
	}
	if (strcmp(cmd, "net-list") == 0) {
		static const char *const c[] = {"name", "active", "bridge", "subnet", NULL};
		static const char *const h[] = {"Name", "Active", "Bridge", "Subnet", NULL};
		return cmd_table("/v1/networks", c, h);
	}
	if (strcmp(cmd, "host") == 0)
		return cmd_host();
	fprintf(stderr, "covectl: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
