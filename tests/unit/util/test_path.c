/* Unit tests of path_absolute(): cleaning, relative paths, ".." refused, lengths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "util/path.h"

static void cleans_absolute_and_relative_paths(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(path_absolute("/a//b/./c/", "/x", out, sizeof(out)), 0);
	assert_string_equal(out, "/a/b/c");
	assert_int_equal(path_absolute("d/e", "/x/y", out, sizeof(out)), 0);
	assert_string_equal(out, "/x/y/d/e");
	assert_int_equal(path_absolute("/", "/", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(path_absolute("/.../a..b/..c", "/", out, sizeof(out)), 0);
	assert_string_equal(out, "/.../a..b/..c"); /* only a whole ".." component climbs */
}

static void refuses_dotdot_anywhere(void **state)
{
	(void)state;
	char out[64];
	static const char *const bad[] = {"/..", "/a/../b", "/a/b/..", "../a", "a/..//b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(path_absolute(bad[i], "/x", out, sizeof(out)), -EINVAL);
}

static void says_when_it_does_not_fit(void **state)
{
	(void)state;
	char out[8];
	assert_int_equal(path_absolute("/abc/def", "/", out, sizeof(out)), -ENAMETOOLONG);
	assert_int_equal(path_absolute("/abc/de", "/", out, sizeof(out)), 0);
	assert_string_equal(out, "/abc/de");
	assert_int_equal(path_absolute("/", "/", out, 1), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(cleans_absolute_and_relative_paths),
	    cmocka_unit_test(refuses_dotdot_anywhere),
	    cmocka_unit_test(says_when_it_does_not_fit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
