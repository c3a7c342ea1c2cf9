/* The default NAT network: bridge, nftables masquerade, dnsmasq, per-NIC taps. */
#include "daemon/network.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define GATEWAY	  "192.168.124.1"
#define DHCP_FROM "192.168.124.2"
#define DHCP_TO	  "192.168.124.254"
#define NFT_TABLE "cove_nat"

/* Runs argv (no shell) with stdin from `input` (may be NULL); fails with its stderr. */
static int run(char *const argv[], const char *input, struct cove_err *err)
{
	int in[2], errp[2];
	if (pipe2(in, O_CLOEXEC) != 0)
		return cove_err_set(err, -errno, "pipe: %s", strerror(errno));
	if (pipe2(errp, O_CLOEXEC) != 0) {
		close(in[0]);
		close(in[1]);
		return cove_err_set(err, -errno, "pipe: %s", strerror(errno));
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(errp[1], 2);
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 1);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(argv[0], argv);
		dprintf(2, "cannot run %s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(errp[1]);
	if (input)
		(void)!write(in[1], input, strlen(input));
	close(in[1]);
	char msg[300] = "";
	ssize_t n = read(errp[0], msg, sizeof(msg) - 1);
	msg[n > 0 ? n : 0] = '\0';
	msg[strcspn(msg, "\n")] = '\0';
	close(errp[0]);
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return cove_err_set(err, -ECHILD, "cannot run %s", argv[0]);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return cove_err_set(err, -EIO, "%s failed: %s", argv[0],
				    msg[0] ? msg : "(no message)");
	return 0;
}

static bool link_exists(const char *dev)
{
	char p[64];
	snprintf(p, sizeof(p), "/sys/class/net/%s", dev);
	return access(p, F_OK) == 0;
}

bool net_active(const char *name)
{
	if (strcmp(name, "default") != 0)
		return false;
	char p[64], state[16] = "";
	snprintf(p, sizeof(p), "/sys/class/net/%s/flags", NET_DEFAULT_BRIDGE);
	FILE *f = fopen(p, "re");
	if (!f)
		return false;
	bool up = fgets(state, sizeof(state), f) && (strtoul(state, NULL, 16) & 1);
	fclose(f);
	return up;
}

static void pid_path(const char *state_dir, char *out, size_t cap)
{
	snprintf(out, cap, "%s/net/default.dnsmasq.pid", state_dir);
}

static pid_t dnsmasq_pid(const char *state_dir)
{
	char p[2200], buf[32] = "";
	pid_path(state_dir, p, sizeof(p));
	FILE *f = fopen(p, "re");
	if (!f)
		return 0;
	pid_t pid = fgets(buf, sizeof(buf), f) ? (pid_t)atoi(buf) : 0;
	fclose(f);
	/* Alive and really dnsmasq (not a recycled pid). */
	char comm[64] = "", cp[64];
	snprintf(cp, sizeof(cp), "/proc/%d/comm", (int)pid);
	f = pid > 0 ? fopen(cp, "re") : NULL;
	if (!f)
		return 0;
	bool ok = fgets(comm, sizeof(comm), f) && strncmp(comm, "dnsmasq", 7) == 0;
	fclose(f);
	return ok ? pid : 0;
}

int net_ensure(const char *state_dir, const char *name, struct cove_err *err)
{
	if (strcmp(name, "default") != 0)
		return cove_err_set(err, -ENOENT, "no network named '%s'", name);
	int rc;
	if (!link_exists(NET_DEFAULT_BRIDGE)) {
		char *add[] = {"ip", "link", "add", NET_DEFAULT_BRIDGE, "type", "bridge", NULL};
		char *addr[] = {"ip", "addr", "add", GATEWAY "/24", "dev", NET_DEFAULT_BRIDGE,
				NULL};
		if ((rc = run(add, NULL, err)) || (rc = run(addr, NULL, err)))
			return cove_err_prefix(err, "network default");
	}
	char *up[] = {"ip", "link", "set", NET_DEFAULT_BRIDGE, "up", NULL};
	if ((rc = run(up, NULL, err)))
		return cove_err_prefix(err, "network default");
	/* Forwarding and masquerade for the subnet (replaced as a whole, idempotent). */
	int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		(void)!write(fd, "1", 1);
		close(fd);
	}
	static const char rules[] =
	    "table ip " NFT_TABLE " {}\n"
	    "delete table ip " NFT_TABLE "\n"
	    "table ip " NFT_TABLE " {\n"
	    "  chain postrouting {\n"
	    "    type nat hook postrouting priority srcnat; policy accept;\n"
	    "    ip saddr " NET_DEFAULT_SUBNET " ip daddr != " NET_DEFAULT_SUBNET " masquerade\n"
	    "  }\n"
	    "  chain forward {\n"
	    "    type filter hook forward priority filter; policy accept;\n"
	    "    iifname \"" NET_DEFAULT_BRIDGE "\" accept\n"
	    "    oifname \"" NET_DEFAULT_BRIDGE "\" ct state established,related accept\n"
	    "    oifname \"" NET_DEFAULT_BRIDGE "\" drop\n"
	    "  }\n"
	    "}\n";
	char *nft[] = {"nft", "-f", "-", NULL};
	if ((rc = run(nft, rules, err)))
		return cove_err_prefix(err, "network default: nftables");
	if (!dnsmasq_pid(state_dir)) {
		char dir[2100], pidf[2200], leases[2200], pidarg[2300], leasearg[2300];
		snprintf(dir, sizeof(dir), "%s/net", state_dir);
		mkdir(dir, 0700);
		pid_path(state_dir, pidf, sizeof(pidf));
		snprintf(leases, sizeof(leases), "%s/net/default.leases", state_dir);
		snprintf(pidarg, sizeof(pidarg), "--pid-file=%s", pidf);
		snprintf(leasearg, sizeof(leasearg), "--dhcp-leasefile=%s", leases);
		char *dm[] = {"dnsmasq",
			      "--conf-file=/dev/null",
			      "--no-resolv",
			      "--no-hosts",
			      "--strict-order",
			      "--bind-interfaces",
			      "--interface=" NET_DEFAULT_BRIDGE,
			      "--except-interface=lo",
			      "--listen-address=" GATEWAY,
			      "--dhcp-range=" DHCP_FROM "," DHCP_TO ",12h",
			      "--dhcp-authoritative",
			      "--dhcp-no-override",
			      pidarg,
			      leasearg,
			      NULL};
		if ((rc = run(dm, NULL, err)))
			return cove_err_prefix(err, "network default: dnsmasq");
	}
	return 0;
}

json_object *net_describe(const char *state_dir, const char *name)
{
	if (strcmp(name, "default") != 0)
		return NULL;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string("default"));
	json_object_object_add(o, "bridge", json_object_new_string(NET_DEFAULT_BRIDGE));
	json_object_object_add(o, "subnet", json_object_new_string(NET_DEFAULT_SUBNET));
	json_object_object_add(o, "gateway", json_object_new_string(GATEWAY));
	json_object_object_add(o, "dhcp", json_object_new_string(DHCP_FROM "-" DHCP_TO));
	json_object_object_add(o, "forward", json_object_new_string("nat"));
	json_object_object_add(o, "active", json_object_new_boolean(net_active(name)));
	pid_t pid = dnsmasq_pid(state_dir);
	if (pid)
		json_object_object_add(o, "dnsmasq_pid", json_object_new_int(pid));
	return o;
}

void net_tap_name(const char *vm, unsigned n, char out[16])
{
	uint32_t h = 2166136261u; /* FNV-1a of the VM name */
	for (const char *p = vm; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	snprintf(out, 16, "ct%08x%u", h, n % 10);
}

/* ip tuntap add: makes the tap, or (existing and unused) sets its owner. */
static int tuntap_add(const char *tap, uid_t owner, struct cove_err *err)
{
	char user[16];
	snprintf(user, sizeof(user), "%u", (unsigned)owner);
	char *add[] = {"ip",   "tuntap", "add",	 "dev", (char *)tap,
		       "mode", "tap",	 "user", user,	NULL};
	if (owner == (uid_t)-1)
		add[7] = NULL;
	return run(add, NULL, err);
}

int net_tap_own(const char *tap, uid_t owner, struct cove_err *err)
{
	if (!link_exists(tap))
		return cove_err_set(err, -ENOENT, "no network device named '%s'", tap);
	/* ip tuntap refuses an existing device: attach to it, set its owner, keep it. */
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return cove_err_set(err, -errno, "/dev/net/tun: %s", strerror(errno));
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
	int rc = 0;
	if (ioctl(fd, TUNSETIFF, &ifr) != 0 || ioctl(fd, TUNSETOWNER, (unsigned long)owner) != 0 ||
	    ioctl(fd, TUNSETPERSIST, 1) != 0)
		rc = cove_err_set(err, -errno, "giving tap %s to uid %u: %s%s", tap,
				  (unsigned)owner, strerror(errno),
				  errno == EBUSY ? " (is another process using it?)" : "");
	close(fd);
	return rc;
}

int net_tap_create(const char *network, const char *tap, uid_t owner, struct cove_err *err)
{
	if (strcmp(network, "default") != 0)
		return cove_err_set(err, -ENOENT, "no network named '%s'", network);
	int rc;
	if (link_exists(tap) && owner != (uid_t)-1) {
		/* A leftover of an earlier run may have another owner: start afresh. */
		char *del[] = {"ip", "link", "del", (char *)tap, NULL};
		run(del, NULL, NULL);
	}
	if (!link_exists(tap) && (rc = tuntap_add(tap, owner, err)))
		return rc;
	char *master[] = {"ip", "link", "set", (char *)tap, "master", NET_DEFAULT_BRIDGE,
			  "up", NULL};
	return run(master, NULL, err);
}

void net_taps_remove(const char *vm)
{
	for (unsigned i = 0; i < 8; i++) {
		char tap[16];
		net_tap_name(vm, i, tap);
		if (link_exists(tap)) {
			char *del[] = {"ip", "link", "del", tap, NULL};
			run(del, NULL, NULL);
		}
	}
}

void net_teardown(const char *state_dir, const char *name)
{
	if (strcmp(name, "default") != 0)
		return;
	pid_t pid = dnsmasq_pid(state_dir);
	if (pid)
		kill(pid, SIGTERM);
	char *nft[] = {"nft", "delete", "table", "ip", NFT_TABLE, NULL};
	run(nft, NULL, NULL);
	if (link_exists(NET_DEFAULT_BRIDGE)) {
		char *del[] = {"ip", "link", "del", NET_DEFAULT_BRIDGE, NULL};
		run(del, NULL, NULL);
	}
}

bool net_in_use(const char *name)
{
	if (strcmp(name, "default") != 0)
		return false;
	DIR *dir = opendir("/sys/class/net/" NET_DEFAULT_BRIDGE "/brif");
	if (!dir)
		return false;
	bool any = false;
	struct dirent *e;
	while (!any && (e = readdir(dir)))
		any = e->d_name[0] != '.';
	closedir(dir);
	return any;
}

void net_release_unused(const char *state_dir, const char *name)
{
	if (strcmp(name, "default") != 0 || net_in_use(name))
		return;
	if (link_exists(NET_DEFAULT_BRIDGE) || dnsmasq_pid(state_dir))
		net_teardown(state_dir, name);
}
