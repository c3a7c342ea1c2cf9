/* coved: the Cove management daemon. Parses options, opens the store, serves /v1/... */
#include "api/http.h"
#include "daemon/daemon.h"
#include "daemon/network.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef COVE_VERSION
#define COVE_VERSION "0.1.0"
#endif

/* Connection caps (root and coved's own user are not capped per user). */
#define COVED_CONNS_PER_USER	64
#define COVED_RO_CONNS		256
#define COVED_RO_CONNS_PER_USER 16

void coved_event(struct coved *d, const char *vm, const char *type, const char *reason,
		 const char *detail)
{
	if (store_event_add(d->store, vm, type, reason, detail, NULL) != 0)
		log_warn("cannot record event %s for %s", type, vm);
	log_info("%s: %s (%s)", vm, type, reason);
	pthread_cond_broadcast(&d->cond);
}

static void audit(void *user, const struct api_request *req, unsigned status)
{
	struct coved *d = user;
	if (!d->audit)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[32];
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* One write per line keeps lines whole with concurrent writers (O_APPEND). */
	char line[512];
	int n = snprintf(line, sizeof(line), "%s uid=%d pid=%d %s %.300s %u\n", when,
			 (int)req->peer_uid, (int)req->peer_pid, req->method, req->path, status);
	if (n > 0) {
		fwrite(line, 1, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1, d->audit);
		fflush(d->audit);
	}
}

static int autostart_one(void *ctx, const char *name, const char *json)
{
	struct coved *d = ctx;
	struct vmdef *def = NULL;
	struct cove_err err = {0};
	if (vmdef_parse(json, strlen(json), &def, &err) != 0)
		return 0;
	if (def->autostart && !sup_find(d, name)) {
		if (sup_start(d, def, "autostart", &err) != 0)
			coved_event(d, name, "crashed", "autostart failed", err.msg);
	}
	vmdef_free(def);
	return 0;
}

/* Asks `VMM run --help` which options it takes (--api-sock, --disk, --net). */
static void vmm_probe_options(struct coved *d)
{
	const char *vmm = d->vmm;
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execl(vmm, vmm, "run", "--help", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char buf[8192];
	size_t len = 0;
	ssize_t n;
	while (len < sizeof(buf) - 1 && (n = read(p[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(p[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	d->vmm_api_sock = strstr(buf, "--api-sock") != NULL;
	d->vmm_disk = strstr(buf, "--disk") != NULL;
	d->vmm_net = strstr(buf, "--net") != NULL;
	d->vmm_seccomp = strstr(buf, "--seccomp ") != NULL;
}

static void usage(FILE *out)
{
	fputs("usage: coved [OPTIONS]\n"
	      "  --socket PATH      API socket (default /run/cove/coved.sock), mode 0660\n"
	      "  --ro-socket PATH   read-only API socket (default: SOCKET with .ro), mode 0666\n"
	      "  --group NAME       group that may use the API socket (default: root's)\n"
	      "  --state-dir DIR    definitions, logs, images (default /var/lib/cove)\n"
	      "  --vmm PATH         the cove binary that runs VMs (default: cove next to coved)\n"
	      "  --listen ADDR:PORT also serve HTTPS on TCP (needs --tls-cert, --tls-key, "
	      "--token-file)\n"
	      "  --tls-cert FILE, --tls-key FILE, --token-file FILE\n"
	      "  --confine BASE[:COUNT]\n"
	      "                     run each VMM as its own user, uid BASE.. (COUNT uids, "
	      "default 1000),\n"
	      "                     in its own mount and PID namespaces and cgroup, no caps\n"
	      "  --timeout SECONDS  idle connection timeout (default 30)\n"
	      "  --request-timeout SECONDS\n"
	      "                     a request's headers and body must arrive within this "
	      "(default 10)\n"
	      "  --log-level LEVEL  error, warn, info, debug\n",
	      out);
}

/* Whether an account's uid is in [b, b+c): its uid and name then. A small range is looked
 * up uid by uid (a directory such as LDAP may not enumerate its accounts); a large one in
 * one pass over the accounts, not a million lookups at start-up. */
#define UID_LOOKUPS_MAX 4096
static bool account_in(unsigned long b, unsigned long c, unsigned long *uid, char *name, size_t cap)
{
	struct passwd *pw = NULL;
	if (c <= UID_LOOKUPS_MAX) {
		for (unsigned long u = b; u < b + c && !pw; u++)
			pw = getpwuid((uid_t)u);
	} else {
		setpwent();
		while ((pw = getpwent()) && !(pw->pw_uid >= b && pw->pw_uid - b < c))
			;
	}
	if (pw) {
		*uid = pw->pw_uid;
		snprintf(name, cap, "%s", pw->pw_name);
	}
	if (c > UID_LOOKUPS_MAX)
		endpwent();
	return pw != NULL;
}

/* --confine BASE[:COUNT]: uids no account uses (a VM's user must own nothing else). */
static int parse_uid_range(const char *arg, uid_t *base, unsigned *count)
{
	char *end;
	errno = 0;
	unsigned long b = strtoul(arg, &end, 10), c = 1000;
	if (!errno && *end == ':')
		c = strtoul(end + 1, &end, 10);
	if (errno || *end || b < 1000 || c < 1 || c > 1000000 || b + c > 0xFFFFFFFEul) {
		fprintf(stderr,
			"coved: --confine takes BASE[:COUNT], the uids for confined VMs (BASE >= "
			"1000, e.g. 900000:1000), got '%s'\n",
			arg);
		return -1;
	}
	unsigned long u;
	char who[256];
	if (account_in(b, c, &u, who, sizeof(who))) {
		fprintf(stderr,
			"coved: --confine %s: uid %lu is the account '%s'; choose a range no "
			"account uses\n",
			arg, u, who);
		return -1;
	}
	*base = (uid_t)b;
	*count = (unsigned)c;
	return 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = malloc(65537);
	size_t n = buf ? fread(buf, 1, 65536, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

static void default_vmm(char *out, size_t cap)
{
	char self[2048];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			/* build tree: src/daemon/coved → src/cli/cove; installed: same dir */
			snprintf(out, cap, "%s/../cli/cove", self);
			if (access(out, X_OK) == 0)
				return;
			snprintf(out, cap, "%s/cove", self);
			if (access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, cap, "/usr/local/bin/cove");
}

int main(int argc, char **argv)
{
	log_set_prog("coved");
	static struct coved d;
	const char *sock = "/run/cove/coved.sock", *ro_sock = NULL, *group = NULL;
	const char *state = "/var/lib/cove", *listen_addr = NULL, *cert = NULL, *key = NULL,
		   *token_file = NULL;
	unsigned timeout = 30, deadline = 10;
	enum {
		O_SOCK = 1,
		O_RO,
		O_GROUP,
		O_STATE,
		O_VMM,
		O_LISTEN,
		O_CERT,
		O_KEY,
		O_TOKEN,
		O_TIMEOUT,
		O_LOG,
		O_HELP,
		O_CONFINE,
		O_DEADLINE
	};
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, O_SOCK},
	    {"ro-socket", required_argument, NULL, O_RO},
	    {"group", required_argument, NULL, O_GROUP},
	    {"state-dir", required_argument, NULL, O_STATE},
	    {"vmm", required_argument, NULL, O_VMM},
	    {"listen", required_argument, NULL, O_LISTEN},
	    {"tls-cert", required_argument, NULL, O_CERT},
	    {"tls-key", required_argument, NULL, O_KEY},
	    {"token-file", required_argument, NULL, O_TOKEN},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"log-level", required_argument, NULL, O_LOG},
	    {"help", no_argument, NULL, O_HELP},
	    {"confine", required_argument, NULL, O_CONFINE},
	    {"request-timeout", required_argument, NULL, O_DEADLINE},
	    {NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_SOCK:
			sock = optarg;
			break;
		case O_RO:
			ro_sock = optarg;
			break;
		case O_GROUP:
			group = optarg;
			break;
		case O_STATE:
			state = optarg;
			break;
		case O_VMM:
			snprintf(d.vmm, sizeof(d.vmm), "%s", optarg);
			break;
		case O_LISTEN:
			listen_addr = optarg;
			break;
		case O_CERT:
			cert = optarg;
			break;
		case O_KEY:
			key = optarg;
			break;
		case O_TOKEN:
			token_file = optarg;
			break;
		case O_TIMEOUT:
			timeout = (unsigned)atoi(optarg);
			if (timeout < 1 || timeout > 3600) {
				fprintf(stderr, "coved: --timeout must be 1..3600 seconds\n");
				return 2;
			}
			break;
		case O_DEADLINE:
			deadline = (unsigned)atoi(optarg);
			if (deadline < 1 || deadline > 3600) {
				fprintf(stderr,
					"coved: --request-timeout must be 1..3600 seconds\n");
				return 2;
			}
			break;
		case O_LOG: {
			enum log_level lv;
			if (log_parse_level(optarg, &lv) != 0) {
				fprintf(stderr, "coved: unknown log level '%s'\n", optarg);
				return 2;
			}
			log_set_level(lv);
			break;
		}
		case O_HELP:
			usage(stdout);
			return 0;
		case O_CONFINE:
			if (parse_uid_range(optarg, &d.confine_uid_base, &d.confine_uid_count) != 0)
				return 2;
			d.confine = true;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!d.vmm[0])
		default_vmm(d.vmm, sizeof(d.vmm));
	gid_t gid = (gid_t)-1;
	if (group) {
		struct group *g = getgrnam(group);
		if (!g) {
			fprintf(stderr, "coved: no group named '%s'\n", group);
			return 2;
		}
		gid = g->gr_gid;
	}
	char ro_default[PATH_MAX];
	if (!ro_sock) {
		snprintf(ro_default, sizeof(ro_default), "%s.ro", sock);
		ro_sock = ro_default;
	}
	snprintf(d.state_dir, sizeof(d.state_dir), "%s", state);
	snprintf(d.pool_dir, sizeof(d.pool_dir), "%s/images", state);
	if ((mkdir(state, 0700) != 0 && errno != EEXIST) ||
	    (mkdir(d.pool_dir, 0700) != 0 && errno != EEXIST)) {
		fprintf(stderr, "coved: cannot create %s: %s\n", state, strerror(errno));
		return 1;
	}
	{ /* the socket's directory */
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", sock);
		char *slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			mkdir(dir, 0755);
		}
	}
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	pthread_mutex_init(&d.lock, NULL);
	pthread_cond_init(&d.cond, NULL);
	struct cove_err err = {0};
	char db[PATH_MAX + 16];
	snprintf(db, sizeof(db), "%s/coved.db", state);
	if (store_open(db, &d.store, &err) != 0) {
		fprintf(stderr, "coved: %s\n", err.msg);
		return 1;
	}
	char audit_path[PATH_MAX + 16];
	snprintf(audit_path, sizeof(audit_path), "%s/audit.log", state);
	d.audit = fopen(audit_path, "ae");
	vmm_probe_options(&d);
	log_info("VMM %s (--api-sock: %s, --disk: %s, --net: %s)", d.vmm,
		 d.vmm_api_sock ? "yes" : "no", d.vmm_disk ? "yes" : "no",
		 d.vmm_net ? "yes" : "no");

	pthread_mutex_lock(&d.lock);
	sup_reattach(&d);
	store_vm_foreach(d.store, autostart_one, &d, NULL);
	pthread_mutex_unlock(&d.lock);
	if (sup_monitor_start(&d) != 0) {
		fprintf(stderr, "coved: cannot start the monitor thread\n");
		return 1;
	}

	/* Beat well within the idle timeout so libmicrohttpd never cuts a quiet stream. */
	d.heartbeat_ms = timeout * 1000 / 2;
	struct api_server_opts o = {
	    .routes = coved_routes,
	    .nroutes = coved_nroutes,
	    .user = &d,
	    .max_body = 256 * 1024,
	    .timeout_s = timeout,
	    .error_key = "error",
	    .audit = audit,
	    .request_deadline_s = deadline,
	    /* Members of the API group: enough for busy tools, not for all our threads. */
	    .max_conns_per_peer = COVED_CONNS_PER_USER,
	};
	/* The read-only socket is open to every local user: fewer connections in all and
	 * per user, so that no one user can hold them all. */
	struct api_server_opts ro_opts = o;
	ro_opts.max_conns = COVED_RO_CONNS;
	ro_opts.max_conns_per_peer = COVED_RO_CONNS_PER_USER;
	struct api_server *rw = NULL, *ro = NULL, *tls = NULL;
	if (api_server_start_unix(sock, 0660, gid, false, &o, &rw, &err) != 0 ||
	    api_server_start_unix(ro_sock, 0666, (gid_t)-1, true, &ro_opts, &ro, &err) != 0) {
		fprintf(stderr, "coved: %s\n", err.msg);
		return 1;
	}
	char *cert_pem = NULL, *key_pem = NULL, *token = NULL;
	if (listen_addr) {
		char host[64];
		unsigned port = 0;
		const char *colon = strrchr(listen_addr, ':');
		cert_pem = cert ? slurp(cert) : NULL;
		key_pem = key ? slurp(key) : NULL;
		token = token_file ? slurp(token_file) : NULL;
		if (token)
			token[strcspn(token, "\r\n")] = '\0';
		if (!colon || (size_t)(colon - listen_addr) >= sizeof(host) ||
		    sscanf(colon + 1, "%u", &port) != 1 || port == 0 || port > 65535 || !cert_pem ||
		    !key_pem || !token || strlen(token) < 16) {
			fprintf(stderr, "coved: --listen ADDR:PORT needs readable --tls-cert, "
					"--tls-key and a --token-file of at least 16 characters\n");
			return 2;
		}
		memcpy(host, listen_addr, (size_t)(colon - listen_addr));
		host[colon - listen_addr] = '\0';
		struct api_server_opts t = o;
		t.bearer_token = token;
		if (api_server_start_tls(host, (uint16_t)port, cert_pem, key_pem, &t, &tls, &err) !=
		    0) {
			fprintf(stderr, "coved: %s\n", err.msg);
			return 1;
		}
	}
	fprintf(stderr, "coved: listening on %s (read-only: %s)\n", sock, ro_sock);

	int sig;
	sigwait(&set, &sig);
	log_info("signal %d: stopping (VMs keep running)", sig);
	d.stopping = true;
	pthread_cond_broadcast(&d.cond);
	api_server_stop(tls);
	api_server_stop(ro);
	api_server_stop(rw);
	sup_monitor_stop(&d);
	pthread_mutex_lock(&d.lock);
	/* The default network goes with coved unless VMs still use it (their taps are on
	 * its bridge); a restarted coved brings it back when a VM needs it. */
	net_release_unused(d.state_dir, "default");
	for (int i = 0; i < COVED_MAX_RUNNING; i++) {
		if (d.running[i]) {
			if (d.running[i]->console_fd >= 0)
				close(d.running[i]->console_fd);
			free(d.running[i]);
		}
	}
	store_close(d.store);
	pthread_mutex_unlock(&d.lock);
	if (d.audit)
		fclose(d.audit);
	free(cert_pem);
	free(key_pem);
	free(token);
	return 0;
}
