/* Unit tests of cgroup value writing (v1 and converted v2) against a fake group directory. */
#include "oci/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[64];

static void touch(const char *name)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	assert_true(fd >= 0);
	close(fd);
}

static const char *value(const char *name)
{
	static char buf[256];
	char p[128];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_true(oci_read_file(p, buf, sizeof(buf)) >= 0);
	return buf;
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/cove-oci-cg.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_v2_conversion(void **state)
{
	const char *files[] = {"memory.max", "memory.swap.max", "memory.low",
			       "cpu.weight", "cpu.max",		"pids.max",
			       "io.weight",  "io.max",		"cpuset.cpus"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		touch(files[i]);
	struct oci_throttle t = {.major = 8, .minor = 0, .rate = 1048576};
	struct oci_resources r = {.has_mem_limit = true,
				  .mem_limit = 1 << 20,
				  .has_mem_swap = true,
				  .mem_swap = 3 << 20,
				  .has_mem_reservation = true,
				  .mem_reservation = 4096,
				  .has_cpu_shares = true,
				  .cpu_shares = 1024,
				  .has_cpu_quota = true,
				  .cpu_quota = 50000,
				  .has_pids_limit = true,
				  .pids_limit = -1,
				  .has_blkio_weight = true,
				  .blkio_weight = 500,
				  .cpuset_cpus = "0"};
	r.throttle[0] = &t;
	r.n_throttle[0] = 1;
	struct cove_err err = {0};
	assert_int_equal(oci_cgroup_write_v2(dir, &r, &err), 0);
	assert_string_equal(value("memory.max"), "1048576");
	assert_string_equal(value("memory.swap.max"), "2097152"); /* swap - limit */
	assert_string_equal(value("memory.low"), "4096");
	assert_string_equal(value("cpu.weight"), "39"); /* shares 1024 */
	assert_string_equal(value("cpu.max"), "50000 100000");
	assert_string_equal(value("pids.max"), "max");
	assert_string_equal(value("io.weight"), "4950");
	assert_string_equal(value("io.max"), "8:0 rbps=1048576");
	assert_string_equal(value("cpuset.cpus"), "0");
	/* A swap limit that cannot be converted is an error that names the field. */
	struct oci_resources bad = {.has_mem_swap = true, .mem_swap = 1 << 20};
	assert_int_equal(oci_cgroup_write_v2(dir, &bad, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "linux.resources.memory.swap"));
}

static void test_v2_weights_and_cpu(void **state)
{
	touch("io.weight");
	touch("cpu.max.burst");
	struct oci_weight_dev wd = {.major = 254, .minor = 0, .weight = 1000, .has_weight = true};
	struct oci_resources r = {.blkio_weight_dev = &wd,
				  .n_blkio_weight_dev = 1,
				  .has_cpu_burst = true,
				  .cpu_burst = 5000};
	struct cove_err err = {0};
	assert_int_equal(oci_cgroup_write_v2(dir, &r, &err), 0);
	assert_string_equal(value("io.weight"), "254:0 10000"); /* converted */
	assert_string_equal(value("cpu.max.burst"), "5000");
	/* With BFQ the weights keep blkio's scale and go to io.bfq.weight. */
	touch("io.bfq.weight");
	wd.weight = 300;
	assert_int_equal(oci_cgroup_write_v2(dir, &r, &err), 0);
	assert_string_equal(value("io.bfq.weight"), "254:0 300");
	/* A setting the kernel has no file for is an error naming the field. */
	struct oci_resources idle = {.has_cpu_idle = true, .cpu_idle = 1};
	cove_err_clear(&err);
	assert_int_equal(oci_cgroup_write_v2(dir, &idle, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "linux.resources.cpu.idle"));
	touch("cpu.idle");
	assert_int_equal(oci_cgroup_write_v2(dir, &idle, &err), 0);
	assert_string_equal(value("cpu.idle"), "1");
}

static void test_layout_check(void **state)
{
	struct oci_kv kv = {"memory.high", "1000000"};
	struct oci_resources u = {.unified = &kv, .n_unified = 1};
	struct oci_resources rt = {.has_cpu_rt_runtime = true, .cpu_rt_runtime = 1000};
	struct oci_cgroup cg = {.mode = OCI_CG_HYBRID};
	struct cove_err err = {0};
	assert_int_equal(oci_cgroup_check(&cg, &u, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "linux.resources.unified"));
	assert_int_equal(oci_cgroup_check(&cg, &rt, &err), 0);
	cg.mode = OCI_CG_V1;
	assert_int_equal(oci_cgroup_check(&cg, &u, &err), -EINVAL);
	cg.mode = OCI_CG_V2;
	assert_int_equal(oci_cgroup_check(&cg, &u, &err), 0);
	cove_err_clear(&err);
	assert_int_equal(oci_cgroup_check(&cg, &rt, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "realtime"));
}

static void test_v1_values(void **state)
{
	touch("memory.limit_in_bytes");
	touch("memory.memsw.limit_in_bytes");
	touch("cpu.shares");
	touch("cpu.cfs_quota_us");
	touch("cpu.cfs_period_us");
	touch("pids.max");
	struct oci_resources r = {.has_mem_limit = true,
				  .mem_limit = 1 << 20,
				  .has_mem_swap = true,
				  .mem_swap = 2 << 20,
				  .has_cpu_shares = true,
				  .cpu_shares = 512,
				  .has_cpu_quota = true,
				  .cpu_quota = 20000,
				  .has_cpu_period = true,
				  .cpu_period = 100000,
				  .has_pids_limit = true,
				  .pids_limit = 7};
	struct cove_err err = {0};
	assert_int_equal(oci_cgroup_write_v1(dir, "memory", &r, &err), 0);
	assert_int_equal(oci_cgroup_write_v1(dir, "cpu", &r, &err), 0);
	assert_int_equal(oci_cgroup_write_v1(dir, "pids", &r, &err), 0);
	assert_string_equal(value("memory.limit_in_bytes"), "1048576");
	assert_string_equal(value("memory.memsw.limit_in_bytes"), "2097152");
	assert_string_equal(value("cpu.shares"), "512");
	assert_string_equal(value("cpu.cfs_quota_us"), "20000");
	assert_string_equal(value("pids.max"), "7");
	/* A file the kernel does not offer is an error with the path in it. */
	struct oci_resources s = {.cpuset_cpus = "0"};
	assert_int_equal(oci_cgroup_write_v1(dir, "cpuset", &s, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "cpuset.cpus"));
}

static void test_paths(void **state)
{
	struct oci_cgroup cg;
	struct cove_err err = {0};
	assert_int_equal(oci_cgroup_init(&cg, NULL, "abc", false, &err), 0);
	assert_string_equal(cg.path, "/cove-runc/abc");
	assert_int_equal(oci_cgroup_init(&cg, "default/x", "x", false, &err), 0);
	assert_string_equal(cg.path, "/default/x");
	assert_int_equal(oci_cgroup_init(&cg, "system.slice:docker:abc", "abc", true, &err), 0);
	assert_string_equal(cg.path, "/system.slice/docker-abc.scope");
	assert_int_equal(oci_cgroup_init(&cg, "a-b.slice:p:n", "n", true, &err), 0);
	assert_string_equal(cg.path, "/a.slice/a-b.slice/p-n.scope");
	cove_err_clear(&err);
	assert_int_equal(oci_cgroup_init(&cg, "/a/../../etc", "x", false, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "linux.cgroupsPath"));
	cove_err_clear(&err);
	assert_int_equal(oci_cgroup_init(&cg, "/", "x", false, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_v2_conversion, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_v2_weights_and_cpu, setup, teardown),
	    cmocka_unit_test(test_layout_check),
	    cmocka_unit_test_setup_teardown(test_v1_values, setup, teardown),
	    cmocka_unit_test(test_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
