/* test_report_metrics.c: metrics from agents' reports (report_metrics.h):
 * step kinds from step ids, durations by kind and result, pulls, bytes and
 * health failures, and what is not counted (progress reports). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "metrics.h"
#include "report_metrics.h"
#include "sequencer.h"
#include "wire_names.h"

static struct drv_metrics *reg;

static int setup(void **state)
{
	(void)state;
	assert_int_equal(drv_metrics_new(&reg), DRV_OK);
	/* Before init, reports are ignored without harm. */
	Drover__Report r = DROVER__REPORT__INIT;
	drv_report_metrics_observe(&r);
	return drv_report_metrics_init(reg) == DRV_OK ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	drv_metrics_free(reg);
	return 0;
}

static char *render(void)
{
	char *text;
	size_t len;

	assert_int_equal(drv_metrics_render(reg, &text, &len), DRV_OK);
	return text;
}

static void has_line(const char *text, const char *line)
{
	const char *p = text;
	size_t n = strlen(line);

	for (; (p = strstr(p, line)) != NULL; p += n) {
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return;
	}
	fail_msg("no line \"%s\" in:\n%s", line, text);
}

static void test_kinds(void **state)
{
	(void)state;
	assert_string_equal(drv_report_step_kind("dep-7:start:3:17"), "start");
	assert_string_equal(drv_report_step_kind("dep-7:rollback:1:3:17"), "rollback");
	assert_string_equal(drv_report_step_kind("d:prestage:0:0"), "prestage");
	assert_string_equal(drv_report_step_kind("d:traffic:2:1:0"), "traffic");
	assert_string_equal(drv_report_step_kind("d:up:0:0"), "up");
	assert_string_equal(drv_report_step_kind("d:upx:0:0"), "other");
	assert_string_equal(drv_report_step_kind("d:start"), "other"); /* no numbers */
	assert_string_equal(drv_report_step_kind("hand-made"), "other");
	assert_string_equal(drv_report_step_kind(""), "other");
	assert_string_equal(drv_report_step_kind(NULL), "other");
}

/* Every step kind has a name and the parser reads back what seq_step_id
 * builds: the one table and the one parser of step ids. */
static void test_step_id_parser(void **state)
{
	struct drv_seq_id id;

	(void)state;
	for (int k = 0; k < DRV_SEQ_STEP_KINDS; k++) {
		char buf[DRV_SEQ_STEP_ID_MAX];

		assert_non_null(drv_seq_step_kind_name(k));
		assert_string_not_equal(drv_seq_step_kind_name(k), "other");
		snprintf(buf, sizeof(buf), "dep-1:%s:4:5:6", drv_seq_step_kind_name(k));
		assert_int_equal(drv_seq_id_parse(buf, &id), DRV_OK);
		assert_int_equal(id.kind, k);
		assert_int_equal(id.dep_len, 5);
		assert_int_equal(id.count, 3);
		assert_int_equal(id.n[2], 6);
	}
	assert_string_equal(drv_seq_step_kind_name(DRV_SEQ_STEP_KINDS), "other");
	assert_string_equal(drv_seq_step_kind_name(-1), "other");
	assert_int_equal(drv_seq_id_parse("d:metric:1:2", &id), DRV_OK);
	assert_int_equal(id.kind, DRV_SEQ_ID_METRIC);
	assert_int_equal(drv_seq_id_parse("d:traffic:1:2", &id), DRV_OK);
	assert_int_equal(id.kind, DRV_SEQ_ID_TRAFFIC);
	assert_int_equal(drv_seq_id_parse("d:start:1:x", &id), DRV_EINVAL);
	assert_int_equal(drv_seq_id_parse("d:start:1:2:3:4", &id), DRV_EINVAL);
	assert_int_equal(drv_seq_id_parse(":start:1", &id), DRV_EINVAL);
	assert_int_equal(drv_seq_id_parse("d:nope:1", &id), DRV_EINVAL);
}

/* The wire's enums: every value protobuf-c knows has its own name. */
static void test_wire_names(void **state)
{
	(void)state;
	for (unsigned i = 0; i < drover__step_result__descriptor.n_values; i++) {
		int v = drover__step_result__descriptor.values[i].value;

		assert_string_not_equal(drv_step_result_name(v), v ? "unspecified" : "");
	}
	for (unsigned i = 0; i < drover__release_state__descriptor.n_values; i++) {
		int v = drover__release_state__descriptor.values[i].value;

		assert_string_not_equal(drv_release_state_name(v), v ? "unspecified" : "");
	}
	assert_string_equal(drv_step_result_name(DROVER__STEP_RESULT__STEP_SUCCEEDED), "succeeded");
	assert_string_equal(drv_step_result_name(99), "unspecified");
	assert_string_equal(drv_release_state_name(DROVER__RELEASE_STATE__RELEASE_STAGED),
	                    "staged");
	assert_string_equal(drv_release_state_name(99), "unspecified");
}

static void report(const char *step, Drover__StepResult res, uint64_t ms, uint64_t pulled,
                   uint64_t cached)
{
	Drover__Report r = DROVER__REPORT__INIT;

	r.step_id = (char *)step;
	r.result = res;
	r.duration_ms = ms;
	r.pulled_bytes = pulled;
	r.cached_bytes = cached;
	r.service = "api-gateway";
	drv_report_metrics_observe(&r);
}

static void test_steps_and_pulls(void **state)
{
	char *t;

	(void)state;
	report("d:prestage:0:0", DROVER__STEP_RESULT__STEP_SUCCEEDED, 1500, 1000, 24);
	report("d:prestage:0:1", DROVER__STEP_RESULT__STEP_FAILED, 300, 10, 0);
	report("d:start:0:0", DROVER__STEP_RESULT__STEP_SUCCEEDED, 4000, 0, 1034);
	report("d:start:0:0", DROVER__STEP_RESULT__STEP_RUNNING, 0, 0, 0);  /* not final */
	report("d:start:0:1", DROVER__STEP_RESULT__STEP_ACCEPTED, 0, 0, 0); /* not final */
	t = render();
	has_line(t, "drover_step_duration_seconds_count{kind=\"prestage\",result=\"succeeded\"} 1");
	has_line(t, "drover_step_duration_seconds_sum{kind=\"prestage\",result=\"succeeded\"} 1.5");
	has_line(t, "drover_step_duration_seconds_bucket{kind=\"prestage\",result=\"succeeded\","
	            "le=\"1\"} 0");
	has_line(t, "drover_step_duration_seconds_bucket{kind=\"prestage\",result=\"succeeded\","
	            "le=\"2.5\"} 1");
	has_line(t, "drover_step_duration_seconds_count{kind=\"prestage\",result=\"failed\"} 1");
	has_line(t, "drover_step_duration_seconds_count{kind=\"start\",result=\"succeeded\"} 1");
	has_line(t, "drover_image_pulls_total{result=\"succeeded\"} 1");
	has_line(t, "drover_image_pulls_total{result=\"failed\"} 1");
	has_line(t, "drover_image_pull_bytes_total{source=\"registry\"} 1010");
	has_line(t, "drover_image_pull_bytes_total{source=\"cache\"} 1058");
	free(t);
}

static void test_health(void **state)
{
	Drover__HealthTransition down = DROVER__HEALTH_TRANSITION__INIT, up = down;
	Drover__Report r = DROVER__REPORT__INIT;
	char *t;

	(void)state;
	up.healthy = true;
	r.service = "web-dashboard";
	r.health = &down;
	drv_report_metrics_observe(&r);
	drv_report_metrics_observe(&r);
	r.health = &up;
	drv_report_metrics_observe(&r);
	t = render();
	has_line(t, "drover_health_check_failures_total{service=\"web-dashboard\"} 2");
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_kinds),      cmocka_unit_test(test_step_id_parser),
	        cmocka_unit_test(test_wire_names), cmocka_unit_test(test_steps_and_pulls),
	        cmocka_unit_test(test_health),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
