/* test_metrics.c: the metrics registry and its Prometheus text exposition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "metrics.h"

static char *render(struct drv_metrics *m)
{
	char *text;
	size_t len;

	assert_int_equal(drv_metrics_render(m, &text, &len), DRV_OK);
	assert_int_equal(strlen(text), len);
	return text;
}

static void test_counter_gauge(void **state)
{
	static const char *const reason[] = {"reason", NULL};
	struct drv_metrics *m;
	struct drv_metric *c, *g, *again;
	char *text;

	(void)state;
	assert_int_equal(drv_metrics_new(&m), DRV_OK);
	assert_int_equal(
	        drv_metrics_counter(m, "drover_rejected_total", "Rejected, by reason", reason, &c),
	        DRV_OK);
	assert_int_equal(drv_metrics_gauge(m, "drover_agents", "Agents", NULL, &g), DRV_OK);
	drv_counter_inc(c, "bad-signature");
	drv_counter_inc(c, "bad-signature");
	drv_counter_add(c, 3, "replay");
	drv_counter_add(c, -5, "replay"); /* ignored: counters only go up */
	drv_gauge_set(g, 7);
	drv_gauge_add(g, -2);
	text = render(m);
	assert_string_equal(text, "# HELP drover_rejected_total Rejected, by reason\n"
	                          "# TYPE drover_rejected_total counter\n"
	                          "drover_rejected_total{reason=\"bad-signature\"} 2\n"
	                          "drover_rejected_total{reason=\"replay\"} 3\n"
	                          "# HELP drover_agents Agents\n"
	                          "# TYPE drover_agents gauge\n"
	                          "drover_agents 5\n");
	free(text);
	/* Registering again returns the same handle; another shape is refused. */
	assert_int_equal(drv_metrics_counter(m, "drover_rejected_total", "x", reason, &again),
	                 DRV_OK);
	assert_ptr_equal(again, c);
	assert_int_equal(drv_metrics_gauge(m, "drover_rejected_total", "x", reason, &again),
	                 DRV_EEXIST);
	assert_int_equal(drv_metrics_counter(m, "drover_rejected_total", "x", NULL, &again),
	                 DRV_EEXIST);
	drv_metrics_free(m);
}

static void test_histogram(void **state)
{
	static const char *const labels[] = {"strategy", NULL};
	static const double buckets[] = {0.1, 1, 10};
	struct drv_metrics *m;
	struct drv_metric *h;
	char *text;

	(void)state;
	assert_int_equal(drv_metrics_new(&m), DRV_OK);
	assert_int_equal(drv_metrics_histogram(m, "drover_step_seconds", "Step time", labels,
	                                       buckets, 3, &h),
	                 DRV_OK);
	drv_histogram_observe(h, 0.05, "canary");
	drv_histogram_observe(h, 0.1, "canary"); /* on the bound: counted in le="0.1" */
	drv_histogram_observe(h, 5, "canary");
	drv_histogram_observe(h, 100, "canary");
	drv_histogram_observe(h, NAN, "canary"); /* ignored */
	text = render(m);
	assert_string_equal(text, "# HELP drover_step_seconds Step time\n"
	                          "# TYPE drover_step_seconds histogram\n"
	                          "drover_step_seconds_bucket{strategy=\"canary\",le=\"0.1\"} 2\n"
	                          "drover_step_seconds_bucket{strategy=\"canary\",le=\"1\"} 2\n"
	                          "drover_step_seconds_bucket{strategy=\"canary\",le=\"10\"} 3\n"
	                          "drover_step_seconds_bucket{strategy=\"canary\",le=\"+Inf\"} 4\n"
	                          "drover_step_seconds_sum{strategy=\"canary\"} 105.15\n"
	                          "drover_step_seconds_count{strategy=\"canary\"} 4\n");
	free(text);
	drv_metrics_free(m);
}

static void test_escaping_and_names(void **state)
{
	static const char *const labels[] = {"path", NULL};
	static const char *const bad1[] = {"__reserved", NULL};
	static const char *const bad2[] = {"le", NULL};
	static const char *const bad3[] = {"a-b", NULL};
	static const double unsorted[] = {1, 0.5};
	struct drv_metrics *m;
	struct drv_metric *c;
	char *text;

	(void)state;
	assert_int_equal(drv_metrics_new(&m), DRV_OK);
	assert_int_equal(drv_metrics_counter(m, "x_total", "line\\one\ntwo", labels, &c), DRV_OK);
	drv_counter_inc(c, "a\"b\\c\nd");
	drv_counter_inc(c, (const char *)NULL);
	text = render(m);
	assert_non_null(strstr(text, "# HELP x_total line\\\\one\\ntwo\n"));
	assert_non_null(strstr(text, "x_total{path=\"a\\\"b\\\\c\\nd\"} 1\n"));
	assert_non_null(strstr(text, "x_total{path=\"\"} 1\n"));
	free(text);
	assert_int_equal(drv_metrics_counter(m, "9lives", "", NULL, &c), DRV_EINVAL);
	assert_int_equal(drv_metrics_counter(m, "a-b", "", NULL, &c), DRV_EINVAL);
	assert_int_equal(drv_metrics_counter(m, "", "", NULL, &c), DRV_EINVAL);
	assert_int_equal(drv_metrics_counter(m, "ok:colon", "", NULL, &c), DRV_OK);
	assert_int_equal(drv_metrics_counter(m, "y", "", bad1, &c), DRV_EINVAL);
	assert_int_equal(drv_metrics_histogram(m, "y", "", bad2, NULL, 0, &c), DRV_EINVAL);
	assert_int_equal(drv_metrics_counter(m, "y", "", bad3, &c), DRV_EINVAL);
	assert_int_equal(drv_metrics_histogram(m, "y", "", NULL, unsorted, 2, &c), DRV_EINVAL);
	drv_metrics_free(m);
}

static void test_null_handle_and_cap(void **state)
{
	static const char *const labels[] = {"id", NULL};
	struct drv_metrics *m;
	struct drv_metric *c;
	char id[32], *text;
	size_t lines = 0;

	(void)state;
	drv_counter_inc(NULL, "x");
	drv_gauge_set(NULL, 1.0);
	drv_histogram_observe(NULL, 1.0);
	assert_int_equal(drv_metrics_new(&m), DRV_OK);
	assert_int_equal(drv_metrics_counter(m, "c_total", "", labels, &c), DRV_OK);
	for (int i = 0; i < DRV_METRICS_SERIES_MAX + 50; i++) {
		snprintf(id, sizeof(id), "agent-%d", i);
		drv_counter_inc(c, id);
	}
	text = render(m);
	for (char *p = text; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, DRV_METRICS_SERIES_MAX + 2);
	free(text);
	drv_metrics_free(m);
}

struct hook_ctx {
	struct drv_metric *g;
	int calls;
};

static void collect(struct drv_metrics *m, void *ctx)
{
	struct hook_ctx *h = ctx;

	(void)m;
	h->calls++;
	drv_gauge_set(h->g, h->calls * 10, "connected");
}

static void test_collect_hook(void **state)
{
	static const char *const labels[] = {"state", NULL};
	struct hook_ctx h = {0};
	struct drv_metrics *m;
	char *text;

	(void)state;
	assert_int_equal(drv_metrics_new(&m), DRV_OK);
	assert_int_equal(drv_metrics_gauge(m, "agents", "", labels, &h.g), DRV_OK);
	assert_int_equal(drv_metrics_on_collect(m, collect, &h), DRV_OK);
	text = render(m);
	free(text);
	text = render(m);
	assert_non_null(strstr(text, "agents{state=\"connected\"} 20\n"));
	free(text);
	drv_metrics_free(m);
}

#define THREADS 4
#define PER     10000

static void *bump(void *arg)
{
	for (int i = 0; i < PER; i++) {
		drv_counter_inc(arg, i % 2 ? "odd" : "even");
	}
	return NULL;
}

static void test_threads(void **state)
{
	static const char *const labels[] = {"p", NULL};
	pthread_t t[THREADS];
	struct drv_metrics *m;
	struct drv_metric *c;
	char *text, want[64];

	(void)state;
	assert_int_equal(drv_metrics_new(&m), DRV_OK);
	assert_int_equal(drv_metrics_counter(m, "n_total", "", labels, &c), DRV_OK);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, bump, c), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	text = render(m);
	snprintf(want, sizeof(want), "n_total{p=\"odd\"} %d\n", THREADS * PER / 2);
	assert_non_null(strstr(text, want));
	free(text);
	drv_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_counter_gauge),
	        cmocka_unit_test(test_histogram),
	        cmocka_unit_test(test_escaping_and_names),
	        cmocka_unit_test(test_null_handle_and_cap),
	        cmocka_unit_test(test_collect_hook),
	        cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
