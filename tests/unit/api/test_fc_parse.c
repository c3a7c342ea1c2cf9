/* Unit tests of the Firecracker request body parsers. */
#include "api/fc_api.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S(x) x, strlen(x)

static void test_boot_source(void **state)
{
	(void)state;
	struct fc_boot_source b;
	struct cove_err err = {0};
	assert_int_equal(fc_parse_boot_source(S("{\"kernel_image_path\":\"/k\",\"boot_args\":"
						"\"console=ttyS0\"}"),
					      &b, &err),
			 0);
	assert_string_equal(b.kernel_image_path, "/k");
	assert_string_equal(b.boot_args, "console=ttyS0");
	assert_string_equal(b.initrd_path, "");
	assert_true(b.set);
	cove_err_clear(&err);
	assert_int_equal(fc_parse_boot_source(S("{\"boot_args\":\"x\"}"), &b, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "kernel_image_path"));
	cove_err_clear(&err);
	assert_int_equal(
	    fc_parse_boot_source(S("{\"kernel_image_path\":\"/k\",\"kernel\":1}"), &b, &err),
	    -EINVAL);
	assert_non_null(strstr(err.msg, "unknown field 'kernel'"));
	cove_err_clear(&err);
	assert_int_equal(fc_parse_boot_source(S("{\"kernel_image_path\":\"\"}"), &b, &err),
			 -EINVAL);
}

static void test_machine(void **state)
{
	(void)state;
	struct fc_machine_config m, cur;
	struct fc_vm_config d;
	fc_config_init(&d);
	cur = d.machine;
	struct cove_err err = {0};
	assert_int_equal(fc_parse_machine_config(S("{\"vcpu_count\":2,\"mem_size_mib\":256}"),
						 false, &cur, &m, &err),
			 0);
	assert_int_equal(m.vcpu_count, 2);
	assert_int_equal(m.mem_size_mib, 256);
	cur = m;
	assert_int_equal(fc_parse_machine_config(S("{\"mem_size_mib\":512}"), true, &cur, &m, &err),
			 0);
	assert_int_equal(m.vcpu_count, 2);
	assert_int_equal(m.mem_size_mib, 512);
	assert_int_equal(
	    fc_parse_machine_config(S("{\"mem_size_mib\":512}"), false, &cur, &m, &err), -ENOENT);
	const char *bad[] = {
	    "{\"vcpu_count\":0,\"mem_size_mib\":128}",
	    "{\"vcpu_count\":33,\"mem_size_mib\":128}",
	    "{\"vcpu_count\":-1,\"mem_size_mib\":128}",
	    "{\"vcpu_count\":\"2\",\"mem_size_mib\":128}",
	    "{\"vcpu_count\":3,\"mem_size_mib\":128,\"smt\":true}",
	    "{\"vcpu_count\":1,\"mem_size_mib\":0}",
	    "{\"vcpu_count\":1,\"mem_size_mib\":128,\"huge_pages\":\"1G\"}",
	    "{\"vcpu_count\":1,\"mem_size_mib\":127,\"huge_pages\":\"2M\"}",
	    "{\"vcpu_count\":1,\"mem_size_mib\":128,\"cpu_template\":\"T2\"}",
	    "{\"vcpu_count\":1.5,\"mem_size_mib\":128}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cove_err_clear(&err);
		assert_int_equal(fc_parse_machine_config(S(bad[i]), false, &cur, &m, &err),
				 -EINVAL);
	}
}

/* PATCH /drives/{id}: drive_id, an optional path and rate limiter (absent buckets unset). */
static void test_drive_update(void **state)
{
	(void)state;
	struct fc_drive_update u;
	struct cove_err err = {0};
	assert_int_equal(fc_parse_drive_update("d0",
					       S("{\"drive_id\":\"d0\",\"rate_limiter\":"
						 "{\"ops\":{\"size\":50,\"refill_time\":1000}}}"),
					       &u, &err),
			 0);
	assert_true(u.rate_limiter.set);
	assert_true(u.rate_limiter.ops.set);
	assert_false(u.rate_limiter.bandwidth.set);
	assert_int_equal(u.rate_limiter.ops.size, 50);
	assert_false(u.has_path);
	assert_int_equal(fc_parse_drive_update(
			     "d0", S("{\"drive_id\":\"d0\",\"path_on_host\":\"/n\"}"), &u, &err),
			 0);
	assert_true(u.has_path);
	assert_false(u.rate_limiter.set);
	const char *bad[] = {
	    "{\"path_on_host\":\"/n\"}",
	    "{\"drive_id\":\"d1\"}",
	    "{\"drive_id\":\"d0\",\"is_read_only\":true}",
	    "{\"drive_id\":\"d0\",\"rate_limiter\":{\"ops\":{\"size\":1}}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cove_err_clear(&err);
		assert_true(fc_parse_drive_update("d0", S(bad[i]), &u, &err) < 0);
		assert_true(err.msg[0] != '\0');
	}
}

static void test_drive(void **state)
{
	(void)state;
	struct fc_drive d;
	struct cove_err err = {0};
	assert_int_equal(fc_parse_drive("rootfs",
					S("{\"drive_id\":\"rootfs\",\"path_on_host\":\"/d.img\","
					  "\"is_root_device\":true,\"is_read_only\":false,"
					  "\"rate_limiter\":{\"bandwidth\":{\"size\":1000,"
					  "\"refill_time\":100}}}"),
					&d, &err),
			 0);
	assert_string_equal(d.path_on_host, "/d.img");
	assert_true(d.is_root_device);
	assert_true(d.rate_limiter.bandwidth.set);
	assert_int_equal(d.rate_limiter.bandwidth.size, 1000);
	assert_string_equal(d.cache_type, "Unsafe");
	cove_err_clear(&err);
	assert_int_equal(fc_parse_drive("other",
					S("{\"drive_id\":\"rootfs\",\"path_on_host\":\"/d\","
					  "\"is_root_device\":true}"),
					&d, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "does not match"));
	cove_err_clear(&err);
	assert_int_equal(fc_parse_drive("a/b",
					S("{\"drive_id\":\"a/b\",\"path_on_host\":\"/d\","
					  "\"is_root_device\":true}"),
					&d, &err),
			 -EINVAL);
	cove_err_clear(&err);
	assert_int_equal(fc_parse_drive("x",
					S("{\"drive_id\":\"x\",\"path_on_host\":\"/d\","
					  "\"is_root_device\":true,\"rate_limiter\":{\"bw\":{}}}"),
					&d, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "unknown field 'bw'"));
	cove_err_clear(&err);
	assert_int_equal(fc_parse_drive("x",
					S("{\"drive_id\":\"x\",\"path_on_host\":\"/d\","
					  "\"is_root_device\":true,\"cache_type\":\"None\"}"),
					&d, &err),
			 -EINVAL);

	struct fc_vm_config cfg;
	fc_config_init(&cfg);
	struct fc_drive r1 = {.drive_id = "a", .is_root_device = true};
	struct fc_drive r2 = {.drive_id = "b", .is_root_device = true};
	assert_int_equal(fc_config_put_drive(&cfg, &r1, &err), 0);
	cove_err_clear(&err);
	assert_int_equal(fc_config_put_drive(&cfg, &r2, &err), -EEXIST);
	r1.is_read_only = true;
	assert_int_equal(fc_config_put_drive(&cfg, &r1, &err), 0);
	assert_int_equal(cfg.ndrives, 1);
	assert_true(cfg.drives[0].is_read_only);
}

static void test_net(void **state)
{
	(void)state;
	struct fc_net n;
	struct cove_err err = {0};
	assert_int_equal(fc_parse_net("eth0",
				      S("{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\","
					"\"guest_mac\":\"AA:FC:00:00:00:01\"}"),
				      &n, &err),
			 0);
	assert_string_equal(n.host_dev_name, "tap0");
	const char *bad[] = {
	    "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"zz\"}",
	    "{\"iface_id\":\"eth0\",\"host_dev_name\":\"a-very-long-tap-name\"}",
	    "{\"iface_id\":\"eth0\"}",
	    "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"mtu\":10}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cove_err_clear(&err);
		assert_true(fc_parse_net("eth0", S(bad[i]), &n, &err) < 0);
	}
}

static void test_small_sections(void **state)
{
	(void)state;
	struct cove_err err = {0};
	struct fc_vsock v;
	assert_int_equal(fc_parse_vsock(S("{\"guest_cid\":3,\"uds_path\":\"/v.sock\"}"), &v, &err),
			 0);
	assert_int_equal(fc_parse_vsock(S("{\"guest_cid\":2,\"uds_path\":\"/v.sock\"}"), &v, &err),
			 -EINVAL);
	struct fc_balloon b;
	cove_err_clear(&err);
	assert_int_equal(
	    fc_parse_balloon(S("{\"amount_mib\":64,\"deflate_on_oom\":true}"), &b, &err), 0);
	assert_int_equal(b.amount_mib, 64);
	assert_int_equal(fc_parse_balloon(S("{\"amount_mib\":64}"), &b, &err), -ENOENT);
	uint32_t amount;
	assert_int_equal(fc_parse_balloon_update(S("{\"amount_mib\":32}"), &amount, &err), 0);
	assert_int_equal(amount, 32);
	uint32_t interval;
	assert_int_equal(
	    fc_parse_balloon_stats_update(S("{\"stats_polling_interval_s\":7}"), &interval, &err),
	    0);
	assert_int_equal(interval, 7);
	assert_int_equal(fc_parse_balloon_stats_update(S("{}"), &interval, &err), -ENOENT);
	struct fc_net_update nu;
	cove_err_clear(&err);
	assert_int_equal(fc_parse_net_update("e0",
					     S("{\"iface_id\":\"e0\",\"rx_rate_limiter\":{\"ops\":"
					       "{\"size\":50,\"refill_time\":500}}}"),
					     &nu, &err),
			 0);
	assert_true(nu.rx_rate_limiter.ops.set);
	assert_false(nu.rx_rate_limiter.bandwidth.set);
	assert_false(nu.tx_rate_limiter.set);
	assert_int_equal(fc_bucket_rate(&nu.rx_rate_limiter.ops), 100);
	assert_int_equal(
	    fc_parse_net_update("e0", S("{\"iface_id\":\"e0\",\"mtu\":9000}"), &nu, &err), -EINVAL);
	cove_err_clear(&err);
	assert_int_equal(fc_parse_net_update("e0", S("{\"iface_id\":\"e/0\"}"), &nu, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "invalid iface_id 'e/0'"));
	cove_err_clear(&err);
	assert_int_equal(fc_parse_net_update("e0", S("{\"iface_id\":\"e1\"}"), &nu, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "does not match"));
	struct fc_logger l;
	cove_err_clear(&err);
	assert_int_equal(fc_parse_logger(S("{\"log_path\":\"/l\",\"level\":\"debug\"}"), &l, &err),
			 0);
	assert_string_equal(l.level, "Debug");
	assert_int_equal(fc_parse_logger(S("{\"level\":\"loud\"}"), &l, &err), -EINVAL);
	struct fc_metrics m;
	cove_err_clear(&err);
	assert_int_equal(fc_parse_metrics(S("{\"metrics_path\":\"/m\"}"), &m, &err), 0);
	assert_int_equal(fc_parse_metrics(S("{}"), &m, &err), -ENOENT);
}

static void test_action_and_state(void **state)
{
	(void)state;
	struct cove_err err = {0};
	enum fc_action a;
	assert_int_equal(fc_parse_action(S("{\"action_type\":\"InstanceStart\"}"), &a, &err), 0);
	assert_int_equal(a, FC_ACTION_INSTANCE_START);
	assert_int_equal(fc_parse_action(S("{\"action_type\":\"SendCtrlAltDel\"}"), &a, &err), 0);
	assert_int_equal(a, FC_ACTION_SEND_CTRL_ALT_DEL);
	assert_int_equal(fc_parse_action(S("{\"action_type\":\"FlushMetrics\"}"), &a, &err), 0);
	assert_int_equal(a, FC_ACTION_FLUSH_METRICS);
	assert_int_equal(fc_parse_action(S("{\"action_type\":\"Reboot\"}"), &a, &err), -EINVAL);
	bool pause;
	assert_int_equal(fc_parse_vm_state(S("{\"state\":\"Paused\"}"), &pause, &err), 0);
	assert_true(pause);
	assert_int_equal(fc_parse_vm_state(S("{\"state\":\"Resumed\"}"), &pause, &err), 0);
	assert_false(pause);
	assert_int_equal(fc_parse_vm_state(S("{\"state\":\"paused\"}"), &pause, &err), -EINVAL);
}

static void test_full_config_roundtrip(void **state)
{
	(void)state;
	const char *text =
	    "{\"boot-source\":{\"kernel_image_path\":\"/k\",\"boot_args\":\"a=b\"},"
	    "\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":64},"
	    "\"drives\":[{\"drive_id\":\"root\",\"path_on_host\":\"/r\",\"is_root_device\":true}],"
	    "\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\"}],"
	    "\"vsock\":{\"guest_cid\":3,\"uds_path\":\"/v\"},"
	    "\"balloon\":{\"amount_mib\":0,\"deflate_on_oom\":false}}";
	struct fc_vm_config *cfg = malloc(sizeof(*cfg)), *again = malloc(sizeof(*again));
	struct cove_err err = {0};
	assert_int_equal(fc_parse_full_config(S(text), cfg, &err), 0);
	assert_int_equal(cfg->machine.vcpu_count, 2);
	assert_int_equal(cfg->ndrives, 1);
	assert_int_equal(cfg->nnets, 1);
	json_object *j = fc_config_to_json(cfg);
	const char *out = json_object_to_json_string(j);
	assert_int_equal(fc_parse_full_config(S(out), again, &err), 0);
	assert_memory_equal(&cfg->boot, &again->boot, sizeof(cfg->boot));
	assert_int_equal(again->machine.mem_size_mib, 64);
	assert_string_equal(again->drives[0].path_on_host, "/r");
	assert_int_equal(again->vsock.guest_cid, 3);
	json_object_put(j);
	cove_err_clear(&err);
	assert_int_equal(fc_parse_full_config(S("{\"mmds-config\":{}}"), cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "mmds-config"));
	free(cfg);
	free(again);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_boot_source),
	    cmocka_unit_test(test_machine),
	    cmocka_unit_test(test_drive),
	    cmocka_unit_test(test_drive_update),
	    cmocka_unit_test(test_net),
	    cmocka_unit_test(test_small_sections),
	    cmocka_unit_test(test_action_and_state),
	    cmocka_unit_test(test_full_config_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
