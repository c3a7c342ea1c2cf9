/* Unit tests of the sandbox: options, JSON settings, user and group parsing, the filter. */
#include "vmm/config.h"
#include "vmm/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static void options(void **state)
{
	struct run_config c;
	struct cove_err err = {0};
	run_config_init(&c);
	assert_false(c.sandbox.enabled);
	assert_int_equal(run_config_set(&c, "sandbox", "on", &err), 0);
	assert_true(c.sandbox.enabled);
	assert_int_equal(run_config_set(&c, "sandbox-uid", "1234", &err), 0);
	assert_string_equal(c.sandbox.uid, "1234");
	assert_int_equal(run_config_set(&c, "sandbox_gid", "nogroup", &err), 0);
	assert_string_equal(c.sandbox.gid, "nogroup");
	assert_int_equal(run_config_set(&c, "jail-dir", "/tmp/j", &err), 0);
	assert_string_equal(c.sandbox.jail_dir, "/tmp/j");
	assert_int_equal(run_config_set(&c, "seccomp", "on", &err), 0);
	assert_true(c.sandbox.seccomp_only);
	assert_int_equal(run_config_set(&c, "seccomp-log", "true", &err), 0);
	assert_true(c.sandbox.seccomp_log);
	assert_int_equal(run_config_set(&c, "sandbox", "off", &err), 0);
	assert_false(c.sandbox.enabled);
	run_config_free(&c);
}

static void option_errors(void **state)
{
	struct sandbox_opts o = {0};
	struct cove_err err = {0};
	assert_int_equal(sandbox_opts_set(&o, "sandbox", "maybe", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "expected true or false"));
	cove_err_clear(&err);
	assert_int_equal(sandbox_opts_set(&o, "sandbox-uid", "", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "empty"));
	cove_err_clear(&err);
	assert_int_equal(sandbox_opts_set(&o, "cpus", "2", &err), -ENOENT);
	assert_false(sandbox_opts_is_key("sandboxx"));
	assert_true(sandbox_opts_is_key("jail_dir"));
	char big[5000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(sandbox_opts_set(&o, "jail-dir", big, &err), -EINVAL);
	sandbox_opts_free(&o);
}

static void json(void **state)
{
	struct run_config c;
	struct cove_err err = {0};
	run_config_init(&c);
	const char *ok = "{\"sandbox\": true, \"sandbox_uid\": 4321, \"sandbox-gid\": \"5\","
			 " \"jail_dir\": \"/run/x\", \"seccomp-log\": false, \"seccomp\": true}";
	assert_int_equal(run_config_parse_json(&c, ok, strlen(ok), &err), 0);
	assert_true(c.sandbox.enabled);
	assert_string_equal(c.sandbox.uid, "4321");
	assert_string_equal(c.sandbox.gid, "5");
	assert_string_equal(c.sandbox.jail_dir, "/run/x");
	assert_false(c.sandbox.seccomp_log);
	assert_true(c.sandbox.seccomp_only);
	run_config_free(&c);

	static const char *const bad[][2] = {
	    {"{\"sandbox\": 1}", "expected a boolean"},
	    {"{\"sandbox\": \"perhaps\"}", "expected true or false"},
	    {"{\"jail-dir\": 3}", "expected a string"},
	    {"{\"sandbox-uid\": []}", "expected a string"},
	    {"{\"sandbox-jail\": \"/x\"}", "unknown setting"},
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		run_config_init(&c);
		cove_err_clear(&err);
		assert_int_equal(run_config_parse_json(&c, bad[i][0], strlen(bad[i][0]), &err),
				 -EINVAL);
		if (!strstr(err.msg, bad[i][1]))
			fail_msg("%s: got '%s', wanted '%s'", bad[i][0], err.msg, bad[i][1]);
		run_config_free(&c);
	}
}

static void users(void **state)
{
	struct cove_err err = {0};
	uid_t uid;
	gid_t gid;
	assert_int_equal(sandbox_parse_uid("1234", &uid, &gid, &err), 0);
	assert_int_equal(uid, 1234);
	assert_int_equal(gid, 1234);
	assert_int_equal(sandbox_parse_uid("0", &uid, &gid, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "out of range"));
	cove_err_clear(&err);
	assert_int_equal(sandbox_parse_uid("4294967295", &uid, &gid, &err), -EINVAL);
	cove_err_clear(&err);
	assert_int_equal(sandbox_parse_uid("99999999999999999999", &uid, &gid, &err), -EINVAL);
	cove_err_clear(&err);
	assert_int_equal(sandbox_parse_uid("root", &uid, &gid, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "is root"));
	cove_err_clear(&err);
	assert_int_equal(sandbox_parse_uid("no-such-user-cove", &uid, &gid, &err), -ENOENT);
	assert_string_equal(err.msg, "sandbox-uid no-such-user-cove: no such user");
	cove_err_clear(&err);
	if (sandbox_parse_uid("nobody", &uid, &gid, &err) == 0) {
		assert_int_not_equal(uid, 0);
	}
	cove_err_clear(&err);
	assert_int_equal(sandbox_parse_gid("77", &gid, &err), 0);
	assert_int_equal(gid, 77);
	assert_int_equal(sandbox_parse_gid("root", &gid, &err), -EINVAL);
	cove_err_clear(&err);
	assert_int_equal(sandbox_parse_gid("no-such-group-cove", &gid, &err), -ENOENT);
	assert_string_equal(err.msg, "sandbox-gid no-such-group-cove: no such group");
}

static void needs(void **state)
{
	struct sandbox_needs n = {0};
	for (unsigned i = 0; i < SANDBOX_MAX_PATHS; i++)
		assert_int_equal(sandbox_needs_add(&n, "/x", SANDBOX_BIND_RO), 0);
	assert_int_equal(sandbox_needs_add(&n, "/y", 0), -E2BIG);
	assert_int_equal(n.npaths, SANDBOX_MAX_PATHS);
	assert_int_equal(n.flags[0], SANDBOX_BIND_RO);
}

/* The table builds with this libseccomp, in both modes, into a whole BPF program. */
static void filter_exports(void **state)
{
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_true(null >= 0);
	assert_int_equal(sandbox_filter_export(null, getpid(), false), 0);
	assert_int_equal(sandbox_filter_export(null, getpid(), true), 0);
	close(null);
	int fd = memfd_create("bpf", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(sandbox_filter_export(fd, 1234, false), 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(st.st_size > 0);
	assert_int_equal(st.st_size % sizeof(struct sock_filter), 0);
	/* Within the kernel's limit for one program. */
	assert_true(st.st_size / sizeof(struct sock_filter) <= BPF_MAXINSNS);
	close(fd);
	assert_true(sandbox_filter_count() > 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(options), cmocka_unit_test(option_errors),
	    cmocka_unit_test(json),    cmocka_unit_test(users),
	    cmocka_unit_test(needs),   cmocka_unit_test(filter_exports),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
