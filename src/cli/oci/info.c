/* features and spec: what the runtime supports, and a default config.json. */
#include "cli/oci/oci_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct json_object *strings(const char *const *v)
{
	struct json_object *a = json_object_new_array();
	for (; *v; v++)
		json_object_array_add(a, json_object_new_string(*v));
	return a;
}

int oci_cmd_features(struct oci_global *g, int argc, char **argv)
{
	static const char *const hooks[] = {"prestart",
					    "createRuntime",
					    "createContainer",
					    "startContainer",
					    "poststart",
					    "poststop",
					    NULL};
	static const char *const ns[] = {"cgroup", "ipc",  "mount", "network", "pid",
					 "time",   "user", "uts",   NULL};
	static const char *const actions[] = {
	    "SCMP_ACT_ALLOW",	     "SCMP_ACT_ERRNO",	     "SCMP_ACT_KILL",
	    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
	    "SCMP_ACT_TRACE",	     "SCMP_ACT_TRAP",	     NULL};
	static const char *const ops[] = {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
					  "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ",
					  "SCMP_CMP_NE", NULL};
	static const char *const archs[] = {"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32",
					    NULL};
	struct json_object *o = json_object_new_object(), *lin = json_object_new_object();
	json_object_object_add(o, "ociVersionMin", json_object_new_string("1.0.0"));
	json_object_object_add(o, "ociVersionMax", json_object_new_string("1.1.0"));
	json_object_object_add(o, "hooks", strings(hooks));
	const char *mopts[OCI_MOUNT_OPTIONS_MAX + 1];
	size_t nmopts = oci_mount_option_names(mopts, OCI_MOUNT_OPTIONS_MAX);
	mopts[nmopts] = NULL;
	json_object_object_add(o, "mountOptions", strings(mopts));
	json_object_object_add(lin, "namespaces", strings(ns));
	struct json_object *caps = json_object_new_array();
	for (int c = 0; c <= 63; c++) {
		char name[64];
		/* oci_cap_parse is the reverse; list the names the kernel headers know. */
		static const char *const known[] = {"CAP_CHOWN",
						    "CAP_DAC_OVERRIDE",
						    "CAP_DAC_READ_SEARCH",
						    "CAP_FOWNER",
						    "CAP_FSETID",
						    "CAP_KILL",
						    "CAP_SETGID",
						    "CAP_SETUID",
						    "CAP_SETPCAP",
						    "CAP_LINUX_IMMUTABLE",
						    "CAP_NET_BIND_SERVICE",
						    "CAP_NET_BROADCAST",
						    "CAP_NET_ADMIN",
						    "CAP_NET_RAW",
						    "CAP_IPC_LOCK",
						    "CAP_IPC_OWNER",
						    "CAP_SYS_MODULE",
						    "CAP_SYS_RAWIO",
						    "CAP_SYS_CHROOT",
						    "CAP_SYS_PTRACE",
						    "CAP_SYS_PACCT",
						    "CAP_SYS_ADMIN",
						    "CAP_SYS_BOOT",
						    "CAP_SYS_NICE",
						    "CAP_SYS_RESOURCE",
						    "CAP_SYS_TIME",
						    "CAP_SYS_TTY_CONFIG",
						    "CAP_MKNOD",
						    "CAP_LEASE",
						    "CAP_AUDIT_WRITE",
						    "CAP_AUDIT_CONTROL",
						    "CAP_SETFCAP",
						    "CAP_MAC_OVERRIDE",
						    "CAP_MAC_ADMIN",
						    "CAP_SYSLOG",
						    "CAP_WAKE_ALARM",
						    "CAP_BLOCK_SUSPEND",
						    "CAP_AUDIT_READ",
						    "CAP_PERFMON",
						    "CAP_BPF",
						    "CAP_CHECKPOINT_RESTORE"};
		if (c >= (int)(sizeof(known) / sizeof(known[0])))
			break;
		snprintf(name, sizeof(name), "%s", known[c]);
		json_object_array_add(caps, json_object_new_string(name));
	}
	json_object_object_add(lin, "capabilities", caps);
	struct json_object *cg = json_object_new_object();
	json_object_object_add(cg, "v1", json_object_new_boolean(1));
	json_object_object_add(cg, "v2", json_object_new_boolean(1));
	json_object_object_add(cg, "systemd", json_object_new_boolean(0));
	json_object_object_add(cg, "systemdUser", json_object_new_boolean(0));
	json_object_object_add(lin, "cgroup", cg);
	struct json_object *sc = json_object_new_object();
	json_object_object_add(sc, "enabled", json_object_new_boolean(1));
	json_object_object_add(sc, "actions", strings(actions));
	json_object_object_add(sc, "operators", strings(ops));
	json_object_object_add(sc, "archs", strings(archs));
	json_object_object_add(lin, "seccomp", sc);
	struct json_object *off = json_object_new_object();
	json_object_object_add(off, "enabled", json_object_new_boolean(0));
	json_object_object_add(lin, "apparmor", off);
	json_object_object_add(lin, "selinux", json_object_get(off));
	json_object_object_add(o, "linux", lin);
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return 0;
}

/* A default bundle config: busybox-friendly, the usual namespaces and masks. */
static const char default_spec[] =
    "{\n"
    "  \"ociVersion\": \"1.0.2\",\n"
    "  \"process\": {\n"
    "    \"terminal\": true,\n"
    "    \"user\": { \"uid\": 0, \"gid\": 0 },\n"
    "    \"args\": [ \"sh\" ],\n"
    "    \"env\": [\n"
    "      \"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\n"
    "      \"TERM=xterm\"\n"
    "    ],\n"
    "    \"cwd\": \"/\",\n"
    "    \"capabilities\": {\n"
    "      \"bounding\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ],\n"
    "      \"effective\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ],\n"
    "      \"permitted\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ],\n"
    "      \"ambient\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ]\n"
    "    },\n"
    "    \"rlimits\": [ { \"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024 } ],\n"
    "    \"noNewPrivileges\": true\n"
    "  },\n"
    "  \"root\": { \"path\": \"rootfs\", \"readonly\": true },\n"
    "  \"hostname\": \"cove\",\n"
    "  \"mounts\": [\n"
    "    { \"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\" },\n"
    "    { \"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\",\n"
    "      \"options\": [ \"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\" ] },\n"
    "    { \"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\",\n"
    "      \"options\": [ \"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\",\n"
    "                   \"mode=0620\", \"gid=5\" ] },\n"
    "    { \"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\",\n"
    "      \"options\": [ \"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\" ] },\n"
    "    { \"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": \"mqueue\",\n"
    "      \"options\": [ \"nosuid\", \"noexec\", \"nodev\" ] },\n"
    "    { \"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\",\n"
    "      \"options\": [ \"nosuid\", \"noexec\", \"nodev\", \"ro\" ] },\n"
    "    { \"destination\": \"/sys/fs/cgroup\", \"type\": \"cgroup\", \"source\": \"cgroup\",\n"
    "      \"options\": [ \"nosuid\", \"noexec\", \"nodev\", \"relatime\", \"ro\" ] }\n"
    "  ],\n"
    "  \"linux\": {\n"
    "    \"resources\": { \"devices\": [ { \"allow\": false, \"access\": \"rwm\" } ] },\n"
    "    \"namespaces\": [ { \"type\": \"pid\" }, { \"type\": \"network\" }, { \"type\": \"ipc\" "
    "},\n"
    "                    { \"type\": \"uts\" }, { \"type\": \"mount\" }, { \"type\": \"cgroup\" } "
    "],\n"
    "    \"maskedPaths\": [ \"/proc/acpi\", \"/proc/asound\", \"/proc/kcore\", \"/proc/keys\",\n"
    "      \"/proc/latency_stats\", \"/proc/timer_list\", \"/proc/timer_stats\",\n"
    "      \"/proc/sched_debug\", \"/sys/firmware\", \"/proc/scsi\" ],\n"
    "    \"readonlyPaths\": [ \"/proc/bus\", \"/proc/fs\", \"/proc/irq\", \"/proc/sys\",\n"
    "      \"/proc/sysrq-trigger\" ]\n"
    "  }\n"
    "}\n";

int oci_cmd_spec(struct oci_global *g, int argc, char **argv)
{
	const char *bundle = ".";
	for (int i = 1; i < argc; i++) {
		const char *v = NULL;
		if (oci_cli_opt(argc, argv, &i, "bundle|b", &v) && v)
			bundle = v;
		else if (oci_cli_opt(argc, argv, &i, "rootless", NULL))
			continue;
		else
			return oci_cli_usage_error("unknown option %s", argv[i]);
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/config.json", bundle);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		if (errno == EEXIST)
			return oci_cli_usage_error("File %s exists. Remove it first", path);
		return oci_cli_usage_error("%s: cannot create", path);
	}
	ssize_t n = write(fd, default_spec, sizeof(default_spec) - 1);
	close(fd);
	return n == (ssize_t)sizeof(default_spec) - 1 ? 0 : 1;
}
