/* Unit tests of size_parse() and size_format(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>

#include "util/size.h"

static void parses_suffixes(void **state)
{
	uint64_t v;
	assert_int_equal(size_parse("512M", 1, &v), 0);
	assert_int_equal(v, 512ULL << 20);
	assert_int_equal(size_parse("4G", 1, &v), 0);
	assert_int_equal(v, 4ULL << 30);
	assert_int_equal(size_parse("4GiB", 1, &v), 0);
	assert_int_equal(v, 4ULL << 30);
	assert_int_equal(size_parse("1.5k", 1, &v), 0);
	assert_int_equal(v, 1536);
	assert_int_equal(size_parse("65536", 1, &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(size_parse("100B", 1, &v), 0);
	assert_int_equal(v, 100);
}

static void bare_number_uses_default_unit(void **state)
{
	uint64_t v;
	assert_int_equal(size_parse("256", 1 << 20, &v), 0);
	assert_int_equal(v, 256ULL << 20);
}

static void rejects_garbage(void **state)
{
	uint64_t v = 7;
	assert_int_equal(size_parse("", 1, &v), -EINVAL);
	assert_int_equal(size_parse("M", 1, &v), -EINVAL);
	assert_int_equal(size_parse("12Q", 1, &v), -EINVAL);
	assert_int_equal(size_parse("-1", 1, &v), -EINVAL);
	assert_int_equal(size_parse("1.", 1, &v), -EINVAL);
	assert_int_equal(size_parse("1GB2", 1, &v), -EINVAL);
	assert_int_equal(size_parse("1.5", 1, &v), -EINVAL);
	assert_int_equal(v, 7);
}

static void rejects_overflow(void **state)
{
	uint64_t v;
	assert_int_equal(size_parse("99999999999999999999", 1, &v), -ERANGE);
	assert_int_equal(size_parse("16E", 1, &v), -ERANGE);
	assert_int_equal(size_parse("17179869184G", 1, &v), -ERANGE);
}

static void formats(void **state)
{
	char buf[32];
	size_format(300, buf, sizeof(buf));
	assert_string_equal(buf, "300 B");
	size_format(512ULL << 20, buf, sizeof(buf));
	assert_string_equal(buf, "512 MiB");
	size_format(3ULL << 29, buf, sizeof(buf));
	assert_string_equal(buf, "1.5 GiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parses_suffixes), cmocka_unit_test(bare_number_uses_default_unit),
	    cmocka_unit_test(rejects_garbage), cmocka_unit_test(rejects_overflow),
	    cmocka_unit_test(formats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
