/* Unit tests of `cove run` settings: options, JSON, errors with line and field. */
#include "vmm/config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static void defaults_and_set(void **state)
{
	struct run_config c;
	struct cove_err err = {0};
	run_config_init(&c);
	assert_int_equal(c.cpus, 1);
	assert_int_equal(c.memory, RUN_CONFIG_DEFAULT_MEM);
	assert_null(c.kernel);
	assert_int_equal(run_config_set(&c, "cpus", "8", &err), 0);
	assert_int_equal(c.cpus, 8);
	assert_int_equal(run_config_set(&c, "memory", "512", &err), 0);
	assert_int_equal(c.memory, 512ULL << 20);
	assert_int_equal(run_config_set(&c, "memory", "4G", &err), 0);
	assert_int_equal(c.memory, 4ULL << 30);
	assert_int_equal(run_config_set(&c, "console", "file:/tmp/x", &err), 0);
	assert_int_equal(c.console, CONSOLE_FILE);
	assert_string_equal(c.console_path, "/tmp/x");
	assert_int_equal(run_config_set(&c, "on_reboot", "restart", &err), 0);
	assert_int_equal(c.on_reboot, ON_REBOOT_RESTART);
	assert_int_equal(run_config_set(&c, "kernel", "/a", &err), 0);
	assert_int_equal(run_config_set(&c, "kernel", "/b", &err), 0);
	assert_string_equal(c.kernel, "/b");
	assert_int_equal(c.boot, BOOT_CHOICE_AUTO); /* PVH when the kernel allows it */
	assert_int_equal(run_config_set(&c, "boot", "linux", &err), 0);
	assert_int_equal(c.boot, BOOT_CHOICE_LINUX);
	assert_int_equal(run_config_set(&c, "boot", "pvh", &err), 0);
	assert_int_equal(c.boot, BOOT_CHOICE_PVH);
	assert_int_equal(run_config_set(&c, "boot", "auto", &err), 0);
	assert_int_equal(c.boot, BOOT_CHOICE_AUTO);
	run_config_free(&c);
}

static void expect_set_error(const char *key, const char *value, const char *needle)
{
	struct run_config c;
	struct cove_err err = {0};
	run_config_init(&c);
	assert_int_equal(run_config_set(&c, key, value, &err), -EINVAL);
	if (!strstr(err.msg, needle))
		fail_msg("'%s' lacks '%s'", err.msg, needle);
	run_config_free(&c);
}

static void set_errors(void **state)
{
	expect_set_error("cpus", "0", "out of range");
	expect_set_error("cpus", "256", "out of range");
	expect_set_error("cpus", "-1", "out of range");
	expect_set_error("cpus", "4x", "not a number");
	expect_set_error("cpus", "", "not a number");
	expect_set_error("cpus", "99999999999999999999999", "not a number");
	expect_set_error("memory", "8M", "out of range");
	expect_set_error("memory", "2T", "out of range");
	expect_set_error("memory", "1e9999", "not a size");
	expect_set_error("memory", "99999999999999999999G", "out of range");
	expect_set_error("memory", "16777217B", "4 KiB");
	expect_set_error("console", "serial", "stdio, none or file");
	expect_set_error("console", "file:", "stdio, none or file");
	expect_set_error("on-reboot", "halt", "exit or restart");
	expect_set_error("log-level", "loud", "error, warn");
	expect_set_error("hugepages", "maybe", "true or false");
	expect_set_error("boot", "bios", "boot 'bios': expected auto, linux or pvh");
	expect_set_error("boot", "PVH", "expected auto, linux or pvh");
	expect_set_error("boot", "", "expected auto, linux or pvh");
	expect_set_error("nosuch", "1", "unknown setting");
}

static int parse(struct run_config *c, const char *json, struct cove_err *err)
{
	run_config_init(c);
	return run_config_parse_json(c, json, strlen(json), err);
}

static void json_good(void **state)
{
	struct run_config c;
	struct cove_err err = {0};
	const char *j =
	    "{\"kernel\": \"/k\", \"initrd\": \"/i\", \"cmdline\": \"a b\", \"cpus\": 4,"
	    " \"memory\": \"1G\", \"console\": \"none\", \"on-reboot\": \"restart\","
	    " \"log_level\": \"debug\", \"hugepages\": true, \"boot\": \"linux\"}\n";
	if (parse(&c, j, &err))
		fail_msg("%s", err.msg);
	assert_string_equal(c.kernel, "/k");
	assert_string_equal(c.initrd, "/i");
	assert_string_equal(c.cmdline, "a b");
	assert_int_equal(c.cpus, 4);
	assert_int_equal(c.memory, 1ULL << 30);
	assert_int_equal(c.console, CONSOLE_NONE);
	assert_int_equal(c.on_reboot, ON_REBOOT_RESTART);
	assert_int_equal(c.log_level, 3);
	assert_true(c.hugepages);
	assert_int_equal(c.boot, BOOT_CHOICE_LINUX);
	run_config_free(&c);
	/* memory as a number is MiB. */
	assert_int_equal(parse(&c, "{\"memory\": 64}", &err), 0);
	assert_int_equal(c.memory, 64ULL << 20);
	run_config_free(&c);
	assert_int_equal(parse(&c, "{}", &err), 0);
	run_config_free(&c);
}

/* NICs from JSON: queue pairs per NIC (1 when not given), and their bounds. */
static void json_net_queues(void **state)
{
	struct run_config c;
	struct cove_err err = {0};
	if (parse(&c, "{\"net\": [\"tap=t0,queues=4\", \"tap=t1\"]}", &err))
		fail_msg("%s", err.msg);
	assert_int_equal(c.virtio.nnics, 2);
	assert_string_equal(c.virtio.net[0].tap, "t0");
	assert_int_equal(c.virtio.net[0].queues, 4);
	assert_int_equal(c.virtio.net[1].queues, 1);
	run_config_free(&c);
	assert_int_equal(parse(&c, "{\"net\": \"tap=t0,queues=16\"}", &err), 0);
	assert_int_equal(c.virtio.net[0].queues, 16);
	run_config_free(&c);
}

static void expect_json_error(const char *json, const char *needle)
{
	struct run_config c;
	struct cove_err err = {0};
	assert_int_equal(parse(&c, json, &err), -EINVAL);
	if (!strstr(err.msg, needle))
		fail_msg("'%s' lacks '%s'", err.msg, needle);
	run_config_free(&c);
}

static void json_errors(void **state)
{
	expect_json_error("{\n  \"cpus\": 2,\n  \"memory\": }", "line 3, column");
	expect_json_error("{\"cpus\": 2", "unexpected end of input");
	expect_json_error("", "line 1, column 1");
	expect_json_error("{} {}", "line 1, column");
	expect_json_error("[]", "must be a JSON object");
	expect_json_error("\"x\"", "must be a JSON object");
	expect_json_error("{\"cpus\": \"2x\"}", "field 'cpus'");
	expect_json_error("{\"cpus\": 2.5}", "field 'cpus': expected a number");
	expect_json_error("{\"cpus\": 300}", "field 'cpus': cpus 300: out of range");
	expect_json_error("{\"kernel\": 5}", "field 'kernel': expected a string");
	expect_json_error("{\"kernel\": null}", "field 'kernel': expected a string");
	expect_json_error("{\"hugepages\": \"sure\"}", "field 'hugepages'");
	expect_json_error("{\"memory\": -5}", "field 'memory'");
	expect_json_error("{\"extra\": 1}", "unknown setting 'extra'");
	expect_json_error("{\"boot\": \"bzimage\"}", "field 'boot': boot 'bzimage': expected auto");
	expect_json_error("{\"boot\": true}", "field 'boot': expected a string");
	expect_json_error("{\"kernel\": \"a\\u0000b\"}", "NUL");
	expect_json_error("{\"a\": 1, // comment\n}", "line");
	expect_json_error("{\"net\": [\"tap=t0,queues=17\"]}", "queues '17'");
	expect_json_error("{\"net\": [\"tap=t0,queues=0\"]}", "queues: at least 1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(defaults_and_set), cmocka_unit_test(set_errors),
	    cmocka_unit_test(json_good),	cmocka_unit_test(json_net_queues),
	    cmocka_unit_test(json_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
