/* test_health.c: damping of health results (agent/health.c), pure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "health.h"

static void thresholds(void **state)
{
	struct health_damper d;
	int64_t prev = -1;
	(void)state;
	health_damper_init(&d, 1000);
	assert_int_equal(d.state, HEALTH_UNKNOWN);
	assert_false(health_damper_feed(&d, true, 2, 3, 1100, &prev));
	assert_true(health_damper_feed(&d, true, 2, 3, 1200, &prev)); /* 2 in a row */
	assert_int_equal(d.state, HEALTH_UP);
	assert_int_equal(prev, 200); /* unknown lasted 200 ms */
	/* Two failures, a success, two failures: never 3 in a row. */
	assert_false(health_damper_feed(&d, false, 2, 3, 1300, &prev));
	assert_false(health_damper_feed(&d, false, 2, 3, 1400, &prev));
	assert_false(health_damper_feed(&d, true, 2, 3, 1500, &prev));
	assert_false(health_damper_feed(&d, false, 2, 3, 1600, &prev));
	assert_false(health_damper_feed(&d, false, 2, 3, 1700, &prev));
	assert_int_equal(d.state, HEALTH_UP);
	assert_true(health_damper_feed(&d, false, 2, 3, 1800, &prev));
	assert_int_equal(d.state, HEALTH_DOWN);
	assert_int_equal(prev, 600); /* healthy from 1200 to 1800 */
	/* One success is not enough to come back. */
	assert_false(health_damper_feed(&d, true, 2, 3, 1900, &prev));
	assert_false(health_damper_feed(&d, false, 2, 3, 2000, &prev));
	assert_false(health_damper_feed(&d, true, 2, 3, 2100, &prev));
	assert_true(health_damper_feed(&d, true, 2, 3, 2200, &prev));
	assert_int_equal(prev, 400);
}

static void zero_thresholds_mean_one(void **state)
{
	struct health_damper d;
	int64_t prev;
	(void)state;
	health_damper_init(&d, 0);
	assert_true(health_damper_feed(&d, false, 0, 0, 10, &prev));
	assert_int_equal(d.state, HEALTH_DOWN);
	assert_true(health_damper_feed(&d, true, 0, 0, 20, &prev));
	assert_int_equal(d.state, HEALTH_UP);
}

static void defaults(void **state)
{
	struct health_params p;
	Drover__HealthCheck hc = DROVER__HEALTH_CHECK__INIT;
	(void)state;
	health_params_of(NULL, &p);
	assert_int_equal(p.interval_ms, 1000);
	assert_int_equal(p.timeout_ms, 2000);
	assert_int_equal(p.healthy_threshold, 2);
	assert_int_equal(p.unhealthy_threshold, 3);
	assert_int_equal(p.deadline_ms, 60000);
	hc.interval_ms = 50;
	hc.unhealthy_threshold = 7;
	health_params_of(&hc, &p);
	assert_int_equal(p.interval_ms, 50);
	assert_int_equal(p.unhealthy_threshold, 7);
	assert_int_equal(p.healthy_threshold, 2);
	assert_null(health_kind_find(DROVER__HEALTH_KIND__HEALTH_NONE));
	assert_string_equal(health_kind_find(DROVER__HEALTH_KIND__HEALTH_TCP)->name, "tcp");
	assert_string_equal(health_kind_find(DROVER__HEALTH_KIND__HEALTH_EXEC)->name, "exec");
	assert_string_equal(health_kind_find(DROVER__HEALTH_KIND__HEALTH_HTTP)->name, "http");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(thresholds),
	        cmocka_unit_test(zero_thresholds_mean_one),
	        cmocka_unit_test(defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
