/* Unit tests of config.json parsing: accepted configs and errors that name the field. */
#include "oci/oci.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <cmocka.h>
#include <seccomp.h>

static const char *const good =
    "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\",\"readonly\":true},"
    "\"hostname\":\"box\",\"annotations\":{\"a\":\"b\"},"
    "\"process\":{\"terminal\":false,\"user\":{\"uid\":1,\"gid\":2,\"umask\":18,"
    "\"additionalGids\":[5,6]},\"args\":[\"sh\",\"-c\",\"true\"],\"env\":[\"PATH=/bin\"],"
    "\"cwd\":\"/\",\"capabilities\":{\"bounding\":[\"CAP_KILL\",\"CAP_SYS_ADMIN\"]},"
    "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":10,\"hard\":20}],"
    "\"noNewPrivileges\":true,\"oomScoreAdj\":100},"
    "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
    "{\"destination\":\"/data\",\"source\":\"/tmp\",\"options\":[\"rbind\",\"ro\",\"nosuid\","
    "\"rslave\",\"size=1k\",\"mode=755\"]}],"
    "\"hooks\":{\"prestart\":[{\"path\":\"/bin/true\",\"args\":[\"true\"],\"timeout\":5}]},"
    "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"},{\"type\":\"uts\"},"
    "{\"type\":\"network\",\"path\":\"/proc/1/ns/net\"}],"
    "\"resources\":{\"memory\":{\"limit\":1048576,\"swap\":2097152},\"cpu\":{\"shares\":512,"
    "\"quota\":50000,\"period\":100000,\"cpus\":\"0-1\"},\"pids\":{\"limit\":10},"
    "\"blockIO\":{\"weight\":500,\"throttleReadBpsDevice\":[{\"major\":8,\"minor\":0,"
    "\"rate\":1000}]},\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]},"
    "\"sysctl\":{\"net.ipv4.ip_forward\":\"1\"},\"rootfsPropagation\":\"rprivate\","
    "\"maskedPaths\":[\"/proc/kcore\"],\"readonlyPaths\":[\"/proc/sys\"],"
    "\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_X86_64\"],"
    "\"syscalls\":[{\"names\":[\"mkdir\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":1,"
    "\"args\":[{\"index\":1,\"value\":0,\"op\":\"SCMP_CMP_GE\"}]}]}}}";

static void test_good(void **state)
{
	struct oci_config c;
	struct cove_err err = {0};
	assert_int_equal(oci_config_parse(good, strlen(good), OCI_PARSE_STRICT, &c, &err), 0);
	assert_string_equal(c.root_path, "rootfs");
	assert_true(c.root_readonly);
	assert_string_equal(c.hostname, "box");
	assert_int_equal(c.process.n_args, 3);
	assert_string_equal(c.process.args[2], "true");
	assert_null(c.process.args[3]);
	assert_int_equal(c.process.uid, 1);
	assert_int_equal(c.process.gid, 2);
	assert_int_equal(c.process.umask, 18);
	assert_int_equal(c.process.n_gids, 2);
	assert_int_equal(c.process.gids[1], 6);
	assert_true(c.process.caps[OCI_CAP_BOUNDING] & (1ULL << 5));  /* CAP_KILL */
	assert_true(c.process.caps[OCI_CAP_BOUNDING] & (1ULL << 21)); /* CAP_SYS_ADMIN */
	assert_int_equal(c.process.n_rlimits, 1);
	assert_int_equal(c.process.rlimits[0].resource, RLIMIT_NOFILE);
	assert_int_equal(c.process.rlimits[0].hard, 20);
	assert_true(c.process.no_new_privileges);
	assert_int_equal(c.process.oom_score_adj, 100);
	assert_int_equal(c.n_mounts, 2);
	assert_true(c.mounts[1].bind);
	assert_int_equal(c.mounts[1].flags, MS_REC | MS_RDONLY | MS_NOSUID);
	assert_int_equal(c.mounts[1].propagation, MS_SLAVE | MS_REC);
	assert_string_equal(c.mounts[1].data, "size=1k,mode=755");
	assert_int_equal(c.hooks.count[OCI_HOOK_PRESTART], 1);
	assert_int_equal(c.hooks.list[OCI_HOOK_PRESTART][0].timeout, 5);
	assert_true(c.ns[OCI_NS_PID].present);
	assert_null(c.ns[OCI_NS_PID].path);
	assert_string_equal(c.ns[OCI_NS_NET].path, "/proc/1/ns/net");
	assert_false(c.ns[OCI_NS_USER].present);
	assert_int_equal(c.resources.mem_limit, 1048576);
	assert_int_equal(c.resources.cpu_shares, 512);
	assert_int_equal(c.resources.cpu_quota, 50000);
	assert_string_equal(c.resources.cpuset_cpus, "0-1");
	assert_int_equal(c.resources.pids_limit, 10);
	assert_int_equal(c.resources.n_throttle[0], 1);
	assert_int_equal(c.resources.n_devices, 1);
	assert_int_equal(c.resources.devices[0].type, 'a');
	assert_int_equal(c.n_sysctl, 1);
	assert_int_equal(c.rootfs_propagation, MS_PRIVATE | MS_REC);
	assert_int_equal(c.n_masked, 1);
	assert_true(c.has_seccomp);
	assert_int_equal(c.seccomp.default_action, SCMP_ACT_ALLOW);
	assert_int_equal(c.seccomp.rules[0].action, SCMP_ACT_ERRNO(1));
	assert_int_equal(c.seccomp.rules[0].args[0].op, SCMP_CMP_GE);
	assert_int_equal(c.n_annotations, 1);
	oci_config_free(&c);
}

/* Each case: a config and the start of the expected message. */
struct bad {
	const char *json;
	const char *msg;
};

#define BASE_PRE "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"r\"},"
#define PROC(x)	 "\"process\":{\"user\":{\"uid\":0,\"gid\":0},\"cwd\":\"/\"," x "}"

static const struct bad bads[] = {
    {"", "config: invalid JSON"},
    {"[1]", "config: must be a JSON object"},
    {"{\"root\":{\"path\":\"r\"}}", "ociVersion: required field is missing"},
    {"{\"ociVersion\":2}", "ociVersion: must be a string"},
    {"{\"ociVersion\":\"2.0\",\"root\":{\"path\":\"r\"}}", "ociVersion: unsupported version"},
    {"{\"ociVersion\":\"1.0.2\"}", "root: required field is missing"},
    {"{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"\"}}", "root.path: must not be empty"},
    {BASE_PRE "\"process\":{\"user\":{\"uid\":0,\"gid\":0},\"cwd\":\"/\"}}",
     "process.args: required field is missing (a non-empty array of strings)"},
    {BASE_PRE PROC("\"args\":[]") "}", "process.args: must be a non-empty array of strings"},
    {BASE_PRE PROC("\"args\":[1]") "}", "process.args: must be a non-empty array of strings"},
    {BASE_PRE PROC("\"args\":\"sh\"") "}", "process.args: must be a non-empty array of strings"},
    {BASE_PRE "\"process\":{\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"a\"]}}",
     "process.cwd: required field is missing"},
    {BASE_PRE "\"process\":{\"user\":{\"uid\":0,\"gid\":0},\"cwd\":\"x\",\"args\":[\"a\"]}}",
     "process.cwd: must be an absolute path"},
    {BASE_PRE "\"process\":{\"user\":{\"uid\":-1,\"gid\":0},\"cwd\":\"/\",\"args\":[\"a\"]}}",
     "process.user.uid: must be a non-negative integer"},
    {BASE_PRE "\"process\":{\"user\":{\"uid\":4294967296,\"gid\":0},\"cwd\":\"/\",\"args\":["
	      "\"a\"]}}",
     "process.user.uid: must fit in 32 bits"},
    {BASE_PRE PROC("\"args\":[\"a\"],\"terminal\":\"yes\"") "}",
     "process.terminal: must be a boolean"},
    {BASE_PRE PROC("\"args\":[\"a\"],\"capabilities\":{\"bounding\":[\"CAP_NOPE\"]}") "}",
     "process.capabilities.bounding: unknown capability \"CAP_NOPE\""},
    {BASE_PRE PROC(
	 "\"args\":[\"a\"],\"rlimits\":[{\"type\":\"RLIMIT_X\",\"soft\":1,\"hard\":1}]") "}",
     "process.rlimits[0].type: unknown rlimit"},
    {BASE_PRE PROC("\"args\":[\"a\"],\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":2,"
		   "\"hard\":1}]") "}",
     "process.rlimits[0].soft: must not exceed hard"},
    {BASE_PRE PROC("\"args\":[\"a\"],\"oomScoreAdj\":5000") "}",
     "process.oomScoreAdj: must be between -1000 and 1000"},
    {BASE_PRE "\"mounts\":[{\"type\":\"proc\"}]}", "mounts[0].destination: required field"},
    {BASE_PRE "\"mounts\":[{\"destination\":\"proc\"}]}",
     "mounts[0].destination: must be an absolute path"},
    {BASE_PRE "\"mounts\":[{\"destination\":\"/a\",\"options\":[\"bind\"]}]}",
     "mounts[0].source: a bind mount needs a source"},
    {BASE_PRE "\"mounts\":[{\"destination\":\"/a\",\"options\":\"ro\"}]}",
     "mounts[0].options: must be an array of strings"},
    {BASE_PRE "\"hooks\":{\"poststop\":[{\"path\":\"rel\"}]}}",
     "hooks.poststop[0].path: must be an absolute path"},
    {BASE_PRE "\"hooks\":{\"prestart\":[{\"path\":\"/x\",\"timeout\":0}]}}",
     "hooks.prestart[0].timeout: must be a positive number of seconds"},
    {BASE_PRE "\"linux\":{\"namespaces\":[{\"type\":\"bogus\"}]}}",
     "linux.namespaces[0].type: unknown namespace type \"bogus\""},
    {BASE_PRE "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"pid\"}]}}",
     "linux.namespaces[1].type: namespace \"pid\" is listed twice"},
    {BASE_PRE "\"linux\":{\"namespaces\":[{\"type\":\"user\"}]}}",
     "linux.uidMappings: a new user namespace needs uid and gid mappings"},
    {BASE_PRE "\"linux\":{\"uidMappings\":[{\"containerID\":0,\"hostID\":1,\"size\":1}]}}",
     "linux.uidMappings: ID mappings need a user namespace"},
    {BASE_PRE "\"linux\":{\"resources\":{\"memory\":{\"limit\":\"1G\"}}}}",
     "linux.resources.memory.limit: must be an integer"},
    {BASE_PRE "\"linux\":{\"resources\":{\"memory\":{\"limit\":100}}}}",
     "linux.resources.memory.limit: is below the minimum"},
    {BASE_PRE "\"linux\":{\"resources\":{\"memory\":{\"limit\":8192,\"swap\":4096}}}}",
     "linux.resources.memory.swap: (memory+swap) must not be below limit"},
    {BASE_PRE "\"linux\":{\"resources\":{\"cpu\":{\"shares\":1}}}}",
     "linux.resources.cpu.shares: must be between 2 and 262144"},
    {BASE_PRE "\"linux\":{\"resources\":{\"cpu\":{\"cpus\":\"a-b\"}}}}",
     "linux.resources.cpu.cpus: must be a list"},
    {BASE_PRE "\"linux\":{\"resources\":{\"pids\":{}}}}",
     "linux.resources.pids.limit: required field is missing"},
    {BASE_PRE "\"linux\":{\"resources\":{\"devices\":[{\"access\":\"rwm\"}]}}}",
     "linux.resources.devices[0].allow: required field is missing"},
    {BASE_PRE "\"linux\":{\"resources\":{\"devices\":[{\"allow\":true,\"access\":\"x\"}]}}}",
     "linux.resources.devices[0].access: must be a combination of r, w and m"},
    {BASE_PRE "\"linux\":{\"resources\":{\"devices\":[{\"allow\":true,\"major\":4294967297}]}}}",
     "linux.resources.devices[0].major: must be -1 (any) or at most 4095"},
    {BASE_PRE "\"linux\":{\"resources\":{\"blockIO\":{\"weight\":5}}}}",
     "linux.resources.blockIO.weight: must be between 10 and 1000"},
    {BASE_PRE "\"linux\":{\"sysctl\":{\"a\":1}}}", "linux.sysctl.a: must be a string"},
    {BASE_PRE "\"linux\":{\"sysctl\":{\"../x\":\"1\"}}}",
     "linux.sysctl.../x: is not a valid sysctl name"},
    {BASE_PRE "\"linux\":{\"rootfsPropagation\":\"sideways\"}}",
     "linux.rootfsPropagation: unknown propagation"},
    {BASE_PRE "\"linux\":{\"seccomp\":{}}}", "linux.seccomp.defaultAction: required field"},
    {BASE_PRE "\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_MAYBE\"}}}",
     "linux.seccomp.defaultAction: unknown action"},
    {BASE_PRE "\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
	      "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_KILL\",\"args\":[{\"index\":7,\"value\":"
	      "0,\"op\":\"SCMP_CMP_EQ\"}]}]}}}",
     "linux.seccomp.syscalls[0].args[0].index: must be between 0 and 5"},
    {BASE_PRE "\"linux\":{\"devices\":[{\"type\":\"c\",\"path\":\"/dev/x\",\"major\":1}]}}",
     "linux.devices[0].minor: required field is missing"},
    {BASE_PRE "\"hostname\":\"h\"}", "hostname: needs a uts namespace"},
};

static void test_bad(void **state)
{
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		struct oci_config c;
		struct cove_err err = {0};
		int r = oci_config_parse(bads[i].json, strlen(bads[i].json), 0, &c, &err);
		if (r != -EINVAL || strncmp(err.msg, bads[i].msg, strlen(bads[i].msg)) != 0) {
			print_error("case %zu: got %d \"%s\", want \"%s\"\n", i, r, err.msg,
				    bads[i].msg);
			fail();
		}
	}
}

static void test_unknown_fields(void **state)
{
	const char *j = BASE_PRE "\"process\":{\"user\":{\"uid\":0,\"gid\":0},\"cwd\":\"/\","
				 "\"args\":[\"a\"],\"futureThing\":1},\"vm\":{}}";
	struct oci_config c;
	struct cove_err err = {0};
	/* The spec says to ignore unknown properties: the default mode notes them. */
	assert_int_equal(oci_config_parse(j, strlen(j), 0, &c, &err), 0);
	assert_int_equal(c.n_unknown, 1);
	assert_string_equal(c.unknown[0], "process.futureThing");
	oci_config_free(&c);
	/* Strict mode makes them errors that name the field. */
	assert_int_equal(oci_config_parse(j, strlen(j), OCI_PARSE_STRICT, &c, &err), -EINVAL);
	assert_string_equal(err.msg, "process.futureThing: unknown field");
}

static void test_process_and_resources(void **state)
{
	struct oci_config c;
	struct cove_err err = {0};
	const char *j = BASE_PRE "\"process\":{\"user\":{\"uid\":0,\"gid\":0},\"cwd\":\"/\","
				 "\"args\":[\"a\"]}}";
	assert_int_equal(oci_config_parse(j, strlen(j), 0, &c, &err), 0);
	struct oci_process p;
	const char *pj = "{\"user\":{\"uid\":3,\"gid\":4},\"cwd\":\"/tmp\",\"args\":[\"ls\"]}";
	assert_int_equal(oci_process_parse(pj, strlen(pj), 0, &c, &p, &err), 0);
	assert_int_equal(p.uid, 3);
	assert_string_equal(p.args[0], "ls");
	assert_non_null(p.env);
	struct oci_resources r;
	const char *rj = "{\"pids\":{\"limit\":5},\"memory\":{\"limit\":-1}}";
	assert_int_equal(oci_resources_parse(rj, strlen(rj), &c, &r, &err), 0);
	assert_int_equal(r.pids_limit, 5);
	assert_int_equal(r.mem_limit, -1);
	const char *bad = "{\"pids\":{\"limit\":\"x\"}}";
	assert_int_equal(oci_resources_parse(bad, strlen(bad), &c, &r, &err), -EINVAL);
	assert_string_equal(err.msg, "pids.limit: must be an integer");
	oci_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_unknown_fields),
	    cmocka_unit_test(test_process_and_resources),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
