/* test_clock.c: durations and deadlines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"

static void durations(void **state)
{
	(void)state;
	int64_t ms = -1;

	assert_int_equal(drv_parse_duration_ms("250ms", &ms), DRV_OK);
	assert_int_equal(ms, 250);
	assert_int_equal(drv_parse_duration_ms("2s", &ms), DRV_OK);
	assert_int_equal(ms, 2000);
	assert_int_equal(drv_parse_duration_ms("1.5s", &ms), DRV_OK);
	assert_int_equal(ms, 1500);
	assert_int_equal(drv_parse_duration_ms("10m", &ms), DRV_OK);
	assert_int_equal(ms, 600000);
	assert_int_equal(drv_parse_duration_ms("1h", &ms), DRV_OK);
	assert_int_equal(ms, 3600000);
	assert_int_equal(drv_parse_duration_ms("30", &ms), DRV_OK);
	assert_int_equal(ms, 30000);
	ms = 42;
	assert_int_equal(drv_parse_duration_ms("", &ms), DRV_EINVAL);
	assert_int_equal(drv_parse_duration_ms("-1s", &ms), DRV_EINVAL);
	assert_int_equal(drv_parse_duration_ms("5 s", &ms), DRV_EINVAL);
	assert_int_equal(drv_parse_duration_ms("5d", &ms), DRV_EINVAL);
	assert_int_equal(drv_parse_duration_ms("manual", &ms), DRV_EINVAL);
	assert_int_equal(drv_parse_duration_ms(NULL, &ms), DRV_EINVAL);
	assert_int_equal(ms, 42);
}

static int64_t ts_mono_ms(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An absolute monotonic time for pthread_cond_timedwait: normalized, ms
 * ahead (1999 ms carries a second), never in the past. */
static void timespec_in(void **state)
{
	int64_t before = drv_mono_ms(), at;
	struct timespec ts = drv_mono_timespec_in(1999);

	(void)state;
	at = ts_mono_ms(ts);
	assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
	assert_true(at >= before + 1999 - 1);
	assert_true(at <= drv_mono_ms() + 1999);
	ts = drv_mono_timespec_in(-5000);
	assert_true(ts_mono_ms(ts) >= before);
	assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
}

static void deadlines(void **state)
{
	(void)state;
	int64_t now = drv_mono_ms();
	struct drv_deadline d = drv_deadline_in(1000);

	assert_false(drv_deadline_passed(d, now));
	assert_true(drv_deadline_passed(d, now + 2000));
	assert_true(drv_deadline_left(d, now, -1) <= 1000);
	assert_int_equal(drv_deadline_left(d, now, 10), 10);
	assert_int_equal(drv_deadline_left(d, now + 5000, -1), 0);
	struct drv_deadline never = drv_deadline_never();
	assert_false(drv_deadline_passed(never, INT64_MAX - 1));
	assert_int_equal(drv_deadline_left(never, now, 25000), 25000);
	assert_true(drv_wall_ms() > 1700000000000LL);
	assert_true(drv_mono_ms() >= now);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(durations),
	        cmocka_unit_test(deadlines),
	        cmocka_unit_test(timespec_in),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
