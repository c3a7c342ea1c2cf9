/* Drives a VM's API socket in-process (real HTTP over a Unix socket) against the double. */
#include "api/client.h"
#include "api/fc_api.h"
#include "api/fc_double.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char sock[108];
static struct fc_double dbl;
static struct fc_api_server *srv;

static int setup(void **state)
{
	(void)state;
	snprintf(sock, sizeof(sock), "/tmp/cove-fc-test-%d.sock", getpid());
	fc_double_init(&dbl);
	return fc_api_serve(sock, &fc_double_ops, &dbl, &srv);
}

static int teardown(void **state)
{
	(void)state;
	fc_api_stop(srv);
	assert_int_equal(access(sock, F_OK), -1);
	return 0;
}

static int req(const char *method, const char *path, const char *body, char **out)
{
	struct api_client_resp r = {0};
	struct cove_err err = {0};
	int rc =
	    api_client_request(sock, method, path, body, body ? strlen(body) : 0, 5000, &r, &err);
	assert_int_equal(rc, 0);
	if (out)
		*out = r.body;
	else
		free(r.body);
	return r.status;
}

static void expect_fault(const char *method, const char *path, const char *body, int status,
			 const char *needle)
{
	char *out;
	assert_int_equal(req(method, path, body, &out), status);
	assert_non_null(strstr(out, "fault_message"));
	if (needle && !strstr(out, needle))
		fail_msg("%s %s: '%s' not in %s", method, path, needle, out);
	free(out);
}

static void test_lifecycle(void **state)
{
	(void)state;
	char *out;
	assert_int_equal(req("GET", "/", NULL, &out), 200);
	assert_non_null(strstr(out, "\"Not started\""));
	free(out);
	expect_fault("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", 400,
		     "without kernel");
	expect_fault("PATCH", "/vm", "{\"state\":\"Paused\"}", 400, "before starting");
	assert_int_equal(req("PUT", "/boot-source", "{\"kernel_image_path\":\"/k\"}", NULL), 204);
	assert_int_equal(
	    req("PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":256}", NULL), 204);
	assert_int_equal(req("PUT", "/drives/root",
			     "{\"drive_id\":\"root\",\"path_on_host\":\"/r\","
			     "\"is_root_device\":true}",
			     NULL),
			 204);
	expect_fault("PUT", "/drives/two",
		     "{\"drive_id\":\"two\",\"path_on_host\":\"/r\",\"is_root_device\":true}", 400,
		     "root block device");
	assert_int_equal(req("PUT", "/network-interfaces/eth0",
			     "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\"}", NULL),
			 204);
	assert_int_equal(req("PUT", "/metrics", "{\"metrics_path\":\"/m\"}", NULL), 204);
	expect_fault("PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":256,\"x\":1}",
		     400, "unknown field 'x'");
	expect_fault("PUT", "/boot-source", "{\"kernel_image_path\":", 400, "malformed JSON");
	/* Firecracker answers an unknown path and a wrong method alike: 400. */
	/* (json-c writes the slash as "\/", which any JSON reader takes as "/".) */
	expect_fault("GET", "/nope", NULL, 400, "Invalid request method and\\/or path: GET nope.");
	expect_fault("DELETE", "/boot-source", NULL, 400,
		     "Invalid request method and\\/or path: DELETE boot-source.");
	assert_int_equal(req("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", NULL), 204);
	assert_int_equal(dbl.starts, 1);
	assert_int_equal(dbl.started.machine.vcpu_count, 2);
	assert_int_equal(dbl.started.ndrives, 1);
	expect_fault("PUT", "/boot-source", "{\"kernel_image_path\":\"/k2\"}", 400,
		     "after starting");
	expect_fault("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", 400,
		     "after starting");
	assert_int_equal(req("PATCH", "/vm", "{\"state\":\"Paused\"}", NULL), 204);
	assert_int_equal(req("GET", "/", NULL, &out), 200);
	assert_non_null(strstr(out, "\"Paused\""));
	free(out);
	assert_int_equal(req("PATCH", "/vm", "{\"state\":\"Resumed\"}", NULL), 204);
	assert_int_equal(dbl.pauses, 1);
	assert_int_equal(dbl.resumes, 1);
	assert_int_equal(req("PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}", NULL), 204);
	assert_int_equal(req("PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}", NULL), 204);
	assert_int_equal(req("PUT", "/shutdown", NULL, NULL), 204);
	assert_int_equal(dbl.ctrl_alt_dels, 1);
	assert_int_equal(dbl.flushes, 1);
	assert_int_equal(dbl.shutdowns, 1);
	assert_int_equal(req("GET", "/vm/config", NULL, &out), 200);
	assert_non_null(strstr(out, "\"kernel_image_path\":\"\\/k\""));
	assert_non_null(strstr(out, "\"tap0\""));
	free(out);
	assert_int_equal(req("GET", "/stats", NULL, &out), 200);
	assert_non_null(strstr(out, "\"rd_bytes\":4096"));
	free(out);
}

/* Run-time changes of the balloon and a NIC: after boot only, checked, passed to the VMM. */
static void test_runtime_devices(void **state)
{
	char *out;
	/* A fresh server (the group's has booted already). */
	assert_int_equal(teardown(state), 0);
	assert_int_equal(setup(state), 0);
	assert_int_equal(req("PUT", "/boot-source", "{\"kernel_image_path\":\"/k\"}", NULL), 204);
	assert_int_equal(
	    req("PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":128}", NULL), 204);
	assert_int_equal(req("PUT", "/network-interfaces/eth0",
			     "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\"}", NULL),
			 204);
	assert_int_equal(req("PUT", "/network-interfaces/eth1",
			     "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap1\"}", NULL),
			 204);
	assert_int_equal(req("PUT", "/balloon",
			     "{\"amount_mib\":16,\"deflate_on_oom\":true,"
			     "\"stats_polling_interval_s\":1}",
			     NULL),
			 204);
	const char *lim = "{\"iface_id\":\"eth1\",\"tx_rate_limiter\":{\"bandwidth\":"
			  "{\"size\":1000,\"refill_time\":10}}}";
	expect_fault("PATCH", "/network-interfaces/eth1", lim, 400, "before starting");
	expect_fault("PATCH", "/balloon", "{\"amount_mib\":8}", 400, "before starting");
	expect_fault("GET", "/balloon/statistics", NULL, 400, "before starting");
	assert_int_equal(req("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", NULL), 204);
	assert_int_equal(dbl.started.balloon.stats_polling_interval_s, 1);
	/* The balloon. */
	assert_int_equal(req("PATCH", "/balloon", "{\"amount_mib\":8}", NULL), 204);
	assert_int_equal(dbl.balloon_mib, 8);
	expect_fault("PATCH", "/balloon", "{\"amount_mib\":129}", 400, "too large");
	expect_fault("PATCH", "/balloon", "{\"amount_mib\":8,\"x\":1}", 400, "unknown field");
	assert_int_equal(dbl.balloon_sets, 1);
	assert_int_equal(req("GET", "/balloon/statistics", NULL, &out), 200);
	assert_non_null(strstr(out, "\"actual_mib\":8"));
	assert_non_null(strstr(out, "\"free_memory\":12345"));
	assert_null(strstr(out, "swap_in"));
	free(out);
	assert_int_equal(
	    req("PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\":5}", NULL), 204);
	assert_int_equal(dbl.balloon_interval, 5);
	expect_fault("PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\":0}", 400,
		     "after boot");
	assert_int_equal(req("GET", "/balloon", NULL, &out), 200);
	assert_non_null(strstr(out, "\"amount_mib\":8"));
	assert_non_null(strstr(out, "\"stats_polling_interval_s\":5"));
	free(out);
	/* A NIC: the second one, by id; absent limiters stay as they were. */
	assert_int_equal(req("PATCH", "/network-interfaces/eth1", lim, NULL), 204);
	assert_int_equal(dbl.net_updates, 1);
	assert_int_equal(dbl.net_index, 1);
	assert_true(dbl.net_update.tx_rate_limiter.bandwidth.set);
	assert_int_equal(fc_bucket_rate(&dbl.net_update.tx_rate_limiter.bandwidth), 100000);
	assert_false(dbl.net_update.rx_rate_limiter.set);
	assert_int_equal(req("GET", "/vm/config", NULL, &out), 200);
	assert_non_null(strstr(out, "\"tx_rate_limiter\":{\"bandwidth\":{\"size\":1000"));
	free(out);
	expect_fault("PATCH", "/network-interfaces/eth9", "{\"iface_id\":\"eth9\"}", 400,
		     "No network interface");
	expect_fault("PATCH", "/network-interfaces/eth0", "{\"iface_id\":\"eth1\"}", 400,
		     "does not match");
	expect_fault("PATCH", "/network-interfaces/eth0",
		     "{\"iface_id\":\"eth0\",\"host_dev_name\":\"t\"}", 400, "unknown field");
	assert_int_equal(dbl.net_updates, 1);
	/* A bucket of size 0 removes the limit. */
	assert_int_equal(req("PATCH", "/network-interfaces/eth1",
			     "{\"iface_id\":\"eth1\",\"tx_rate_limiter\":{\"bandwidth\":"
			     "{\"size\":0,\"refill_time\":0}}}",
			     NULL),
			 204);
	assert_int_equal(req("GET", "/vm/config", NULL, &out), 200);
	assert_null(strstr(out, "tx_rate_limiter"));
	free(out);
}

static void test_huge_body(void **state)
{
	(void)state;
	size_t n = 200 * 1024;
	char *big = malloc(n + 1);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	expect_fault("PUT", "/logger", big, 413, "larger than");
	free(big);
}

/* Times the server's watchdog thread has gone to sleep and woken (-1: no such thread). */
static long watchdog_wakeups(void)
{
	DIR *dir = opendir("/proc/self/task");
	long n = -1;
	struct dirent *e;
	while (dir && n < 0 && (e = readdir(dir))) {
		char p[64], line[128];
		snprintf(p, sizeof(p), "/proc/self/task/%.20s/comm", e->d_name);
		FILE *f = fopen(p, "r");
		bool ours =
		    f && fgets(line, sizeof(line), f) && strcmp(line, "api-watchdog\n") == 0;
		if (f)
			fclose(f);
		if (!ours)
			continue;
		snprintf(p, sizeof(p), "/proc/self/task/%.20s/status", e->d_name);
		f = fopen(p, "r");
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
				break;
		if (f)
			fclose(f);
	}
	if (dir)
		closedir(dir);
	return n;
}

/* With no request on its way, the watchdog has no deadline to keep: it sleeps. */
static void test_idle_watchdog_sleeps(void **state)
{
	(void)state;
	assert_int_equal(req("GET", "/", NULL, NULL), 200);
	usleep(200 * 1000); /* the client's connection closes */
	long before = watchdog_wakeups();
	assert_true(before >= 0);
	usleep(1000 * 1000);
	long after = watchdog_wakeups();
	if (after - before > 1)
		fail_msg("the idle watchdog woke %ld times in a second", after - before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lifecycle),
	    cmocka_unit_test(test_huge_body),
	    cmocka_unit_test(test_runtime_devices),
	    cmocka_unit_test(test_idle_watchdog_sleeps),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
