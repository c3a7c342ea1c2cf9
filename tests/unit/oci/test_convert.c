/* Unit tests of value conversions: cgroup v1 → v2 values, signals, rlimits, mount options. */
#include "oci/oci.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <cmocka.h>

static void test_cpu_shares(void **state)
{
	assert_int_equal(oci_cpu_shares_to_weight(0), 0);
	assert_int_equal(oci_cpu_shares_to_weight(2), 1);
	assert_int_equal(oci_cpu_shares_to_weight(1024), 39); /* the v1 default */
	assert_int_equal(oci_cpu_shares_to_weight(262144), 10000);
	assert_int_equal(oci_cpu_shares_to_weight(1), 1);	    /* clamped */
	assert_int_equal(oci_cpu_shares_to_weight(1000000), 10000); /* clamped */
	assert_int_equal(oci_cpu_shares_to_weight(512), 20);
}

static void test_blkio_weight(void **state)
{
	assert_int_equal(oci_blkio_weight_to_io_weight(0), 0);
	assert_int_equal(oci_blkio_weight_to_io_weight(10), 1);
	assert_int_equal(oci_blkio_weight_to_io_weight(1000), 10000);
	assert_int_equal(oci_blkio_weight_to_io_weight(500), 4950);
}

static void test_swap(void **state)
{
	assert_int_equal(oci_swap_to_v2(-1, 1000), -1);
	assert_int_equal(oci_swap_to_v2(0, 1000), 0);
	assert_int_equal(oci_swap_to_v2(3000, 1000), 2000);
	assert_int_equal(oci_swap_to_v2(1000, 1000), 0);
	assert_int_equal(oci_swap_to_v2(500, 1000), -2);
	assert_int_equal(oci_swap_to_v2(500, -1), -2);
}

static void test_signals(void **state)
{
	assert_int_equal(oci_signal_parse("9"), SIGKILL);
	assert_int_equal(oci_signal_parse("KILL"), SIGKILL);
	assert_int_equal(oci_signal_parse("SIGKILL"), SIGKILL);
	assert_int_equal(oci_signal_parse("sigterm"), SIGTERM);
	assert_int_equal(oci_signal_parse("SIGRTMIN+3"), SIGRTMIN + 3);
	assert_int_equal(oci_signal_parse("RTMAX-1"), SIGRTMAX - 1);
	assert_int_equal(oci_signal_parse("SIGNOPE"), -EINVAL);
	assert_int_equal(oci_signal_parse("0"), -EINVAL);
	assert_int_equal(oci_signal_parse("999"), -EINVAL);
	assert_int_equal(oci_signal_parse(""), -EINVAL);
	assert_int_equal(oci_signal_parse("RTMIN+99"), -EINVAL);
}

static void test_rlimits_caps(void **state)
{
	assert_int_equal(oci_rlimit_parse("RLIMIT_NOFILE"), RLIMIT_NOFILE);
	assert_int_equal(oci_rlimit_parse("RLIMIT_RTTIME"), RLIMIT_RTTIME);
	assert_int_equal(oci_rlimit_parse("NOFILE"), -EINVAL);
	assert_int_equal(oci_cap_parse("CAP_CHOWN"), 0);
	assert_int_equal(oci_cap_parse("CAP_SYS_ADMIN"), 21);
	assert_int_equal(oci_cap_parse("SYS_ADMIN"), -EINVAL);
}

static void test_mount_options(void **state)
{
	struct oci_mount m = {0};
	assert_int_equal(oci_mount_option("rbind", &m), 0);
	assert_true(m.bind);
	assert_int_equal(oci_mount_option("ro", &m), 0);
	assert_int_equal(oci_mount_option("nosuid", &m), 0);
	assert_int_equal(m.flags, MS_REC | MS_RDONLY | MS_NOSUID);
	assert_int_equal(oci_mount_option("rw", &m), 0);
	assert_int_equal(m.flags, MS_REC | MS_NOSUID);
	assert_int_equal(oci_mount_option("rshared", &m), 0);
	assert_int_equal(m.propagation, MS_SHARED | MS_REC);
	assert_int_equal(oci_mount_option("rro", &m), 0);
	assert_int_equal(oci_mount_option("rnosuid", &m), 0);
	assert_int_equal(oci_mount_option("rexec", &m), 0);
	assert_int_equal(m.rec_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
	assert_int_equal(m.rec_clr, MOUNT_ATTR_NOEXEC);
	/* the last word on a bit wins */
	assert_int_equal(oci_mount_option("rrw", &m), 0);
	assert_int_equal(m.rec_set, MOUNT_ATTR_NOSUID);
	assert_int_equal(m.rec_clr, MOUNT_ATTR_NOEXEC | MOUNT_ATTR_RDONLY);
	/* atime is one field: set with the whole field cleared */
	assert_int_equal(oci_mount_option("rnoatime", &m), 0);
	assert_int_equal(m.rec_set & MOUNT_ATTR__ATIME, MOUNT_ATTR_NOATIME);
	assert_true((m.rec_clr & MOUNT_ATTR__ATIME) == MOUNT_ATTR__ATIME);
	assert_int_equal(oci_mount_option("rstrictatime", &m), 0);
	assert_int_equal(m.rec_set & MOUNT_ATTR__ATIME, MOUNT_ATTR_STRICTATIME);
	assert_int_equal(oci_mount_option("rnosymfollow", &m), 0);
	assert_true(m.rec_set & MOUNT_ATTR_NOSYMFOLLOW);
	assert_int_equal(oci_mount_option("nosymfollow", &m), 0);
	assert_true(m.flags & MS_NOSYMFOLLOW);
	assert_int_equal(oci_mount_option("tmpcopyup", &m), 0);
	assert_true(m.tmpcopyup);
	assert_int_equal(oci_mount_option("idmap", &m), -ENOTSUP);
	assert_int_equal(oci_mount_option("ridmap", &m), -ENOTSUP);
	assert_int_equal(oci_mount_option("mode=755", &m), 1);
	/* Every name `features` lists is one the runtime takes, sorted, each once; the
	 * recursive, propagation and named ones are among them, idmap is not. */
	const char *names[OCI_MOUNT_OPTIONS_MAX + 8]; /* room to see that the maximum holds all */
	size_t n = oci_mount_option_names(names, OCI_MOUNT_OPTIONS_MAX + 8);
	assert_true(n > 50 && n <= OCI_MOUNT_OPTIONS_MAX);
	const char *want[] = {"bind", "rbind", "tmpcopyup", "rro", "rnoatime", "rslave", "ro"};
	for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
		size_t i = 0;
		while (i < n && strcmp(names[i], want[w]) != 0)
			i++;
		if (i == n)
			fail_msg("features does not list \"%s\"", want[w]);
	}
	for (size_t i = 0; i < n; i++) {
		struct oci_mount fresh = {0};
		if (oci_mount_option(names[i], &fresh) != 0)
			fail_msg("features lists \"%s\", which oci_mount_option does not take",
				 names[i]);
		if (i > 0 && strcmp(names[i - 1], names[i]) >= 0)
			fail_msg("\"%s\" then \"%s\": not sorted, or listed twice", names[i - 1],
				 names[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cpu_shares),	 cmocka_unit_test(test_blkio_weight),
	    cmocka_unit_test(test_swap),	 cmocka_unit_test(test_signals),
	    cmocka_unit_test(test_rlimits_caps), cmocka_unit_test(test_mount_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
