/* Unit tests of the token buckets: bursts, refill over time, waits, huge requests, limits
 * changed at run time, and no overflow at the extremes. */
#include "devices/virtio/ratelimit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define SEC 1000000000ULL

static void test_unlimited(void **state)
{
	struct rate_limiter rl;
	uint64_t wait = 7;
	ratelimit_set(&rl, 0, 0, 0);
	assert_false(ratelimit_active(&rl));
	for (int i = 0; i < 1000; i++)
		assert_true(ratelimit_take(&rl, 1ULL << 30, 0, &wait));
	assert_int_equal(wait, 0);
}

static void test_ops_rate(void **state)
{
	struct rate_limiter rl;
	uint64_t wait, t = 5 * SEC;
	ratelimit_set(&rl, 0, 100, t); /* burst: 10 ops */
	int ok = 0;
	while (ratelimit_take(&rl, 0, t, &wait))
		ok++;
	assert_int_equal(ok, 10);
	assert_true(wait > 0 && wait <= SEC / 100 + 1);
	/* One second later: 100 more at most (capped by the burst of 10). */
	t += SEC;
	ok = 0;
	while (ratelimit_take(&rl, 0, t, &wait))
		ok++;
	assert_int_equal(ok, 10);
	/* Over 2 s in 10 ms steps: about 200 operations. */
	ok = 0;
	for (int i = 0; i < 200; i++) {
		t += SEC / 100;
		while (ratelimit_take(&rl, 0, t, &wait))
			ok++;
	}
	assert_in_range(ok, 195, 205);
}

static void test_bytes_and_big_requests(void **state)
{
	struct rate_limiter rl;
	uint64_t wait, t = 0;
	ratelimit_set(&rl, 10 << 20, 0, t); /* 10 MiB/s, burst 1 MiB */
	assert_true(ratelimit_take(&rl, 1 << 20, t, &wait));
	assert_false(ratelimit_take(&rl, 4096, t, &wait));
	assert_in_range(wait, 1, SEC / 2000);
	/* A request bigger than the burst passes once the bucket is full, never starves. */
	t += SEC;
	assert_true(ratelimit_take(&rl, 64 << 20, t, &wait));
	assert_false(ratelimit_take(&rl, 1, t, &wait));
}

static void test_change_at_run_time(void **state)
{
	struct rate_limiter rl;
	uint64_t wait, t = 0;
	ratelimit_set(&rl, 0, 10, t);
	assert_true(ratelimit_take(&rl, 0, t, &wait));
	assert_false(ratelimit_take(&rl, 0, t, &wait));
	ratelimit_set(&rl, 0, 0, t);
	assert_true(ratelimit_take(&rl, 0, t, &wait));
}

static void test_extremes(void **state)
{
	struct rate_limiter rl;
	uint64_t wait;
	ratelimit_set(&rl, RATELIMIT_MAX, RATELIMIT_MAX, 0);
	assert_true(ratelimit_take(&rl, 1, UINT64_MAX - 1, &wait));
	ratelimit_set(&rl, UINT64_MAX, UINT64_MAX, 0); /* beyond the maximum: unlimited */
	assert_false(ratelimit_active(&rl));
	ratelimit_set(&rl, 1, 1, 0);
	assert_true(ratelimit_take(&rl, 1, 0, &wait));
	assert_false(ratelimit_take(&rl, UINT64_MAX, 0, &wait));
	assert_true(wait > 0);
	/* Time going backwards does not refill. */
	assert_false(ratelimit_take(&rl, 1, 0, &wait));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unlimited),
	    cmocka_unit_test(test_ops_rate),
	    cmocka_unit_test(test_bytes_and_big_requests),
	    cmocka_unit_test(test_change_at_run_time),
	    cmocka_unit_test(test_extremes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
