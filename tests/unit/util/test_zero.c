/* Unit tests of mem_is_zero(): every length around the 16-byte head, a set byte anywhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "util/zero.h"

static void zero_buffers_of_any_length(void **state)
{
	(void)state;
	static unsigned char buf[4096 + 64];
	memset(buf, 0, sizeof(buf));
	for (size_t len = 0; len <= 70; len++)
		assert_true(mem_is_zero(buf, len));
	assert_true(mem_is_zero(buf + 3, 4096)); /* unaligned start */
	assert_true(mem_is_zero(buf, sizeof(buf)));
}

static void one_set_byte_anywhere(void **state)
{
	(void)state;
	static unsigned char buf[300];
	for (size_t len = 1; len <= sizeof(buf); len += 7) {
		for (size_t at = 0; at < len; at++) {
			memset(buf, 0, sizeof(buf));
			buf[at] = 0x80;
			assert_false(mem_is_zero(buf, len));
		}
	}
	/* A byte just past the range does not count. */
	memset(buf, 0, sizeof(buf));
	buf[40] = 1;
	assert_true(mem_is_zero(buf, 40));
	assert_true(mem_is_zero(buf + 41, 200));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(zero_buffers_of_any_length),
	    cmocka_unit_test(one_set_byte_anywhere),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
