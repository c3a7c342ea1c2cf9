/* Unit tests of the absent-device ports: Linux's 8250 probe finds nothing, and it is counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "devices/absent.h"
#include "fakes.h"

/* The 8250 driver's probe: write IER, read it back; a UART would return what was written. */
static void serial_probe_finds_nothing(void **state)
{
	struct device *d = absent_new("absent COM2-4");
	assert_non_null(d);
	wr8(d, 1, 0x00);
	assert_int_equal(rd8(d, 1), 0xff);
	wr8(d, 1, 0x0f);
	assert_int_equal(rd8(d, 1), 0xff);
	uint32_t v = 0;
	d->ops->read(d, 0, &v, 4);
	assert_int_equal(v, 0xffffffffu);
	assert_int_equal(absent_count(d), 5);
	d->ops->destroy(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(serial_probe_finds_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
