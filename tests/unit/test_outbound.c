/* test_outbound.c: which URLs droverd may request for a plan (deploy/outbound.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"
#include "outbound.h"
#include "plan.h"

static char *entries[] = {"https://hooks.example/deploy", "http://127.0.0.1:9100/",
                          "http://[::1]:8000/metrics/", "http://Metrics.Example."};
static const struct drv_strlist allow = {.n = 4, .v = entries};

static void covered(void **state)
{
	(void)state;
	assert_true(drv_outbound_allowed(&allow, "https://hooks.example/deploy"));
	assert_true(drv_outbound_allowed(&allow, "https://hooks.example/deploy/team-a"));
	assert_true(drv_outbound_allowed(&allow, "https://hooks.example/deploy?x=1"));
	assert_true(drv_outbound_allowed(&allow, "HTTPS://HOOKS.EXAMPLE:443/deploy"));
	assert_true(drv_outbound_allowed(&allow, "http://127.0.0.1:9100/error_rate"));
	assert_true(drv_outbound_allowed(&allow, "http://127.0.0.1:9100"));
	assert_true(drv_outbound_allowed(&allow, "http://[::1]:8000/metrics/rate"));
	assert_true(drv_outbound_allowed(&allow, "http://metrics.example/anything"));
	assert_true(drv_outbound_allowed(&allow, "http://metrics.example:80/"));
}

static void not_covered(void **state)
{
	(void)state;
	/* a sibling path, another scheme, port or host */
	assert_false(drv_outbound_allowed(&allow, "https://hooks.example/deploys"));
	assert_false(drv_outbound_allowed(&allow, "https://hooks.example/"));
	assert_false(drv_outbound_allowed(&allow, "http://hooks.example/deploy"));
	assert_false(drv_outbound_allowed(&allow, "https://hooks.example:8443/deploy"));
	assert_false(drv_outbound_allowed(&allow, "https://hooks.example.evil.net/deploy"));
	assert_false(drv_outbound_allowed(&allow, "http://127.0.0.1:9101/error_rate"));
	assert_false(drv_outbound_allowed(&allow, "http://127.0.0.2:9100/"));
	assert_false(drv_outbound_allowed(&allow, "http://[::1]:8000/metric"));
	/* tricks: user information, dot segments, encodings, other schemes */
	assert_false(drv_outbound_allowed(&allow, "https://hooks.example@169.254.169.254/deploy"));
	assert_false(drv_outbound_allowed(&allow, "https://hooks.example/deploy/../admin"));
	assert_false(drv_outbound_allowed(&allow, "https://hooks.example/deploy/%2e%2e/admin"));
	assert_false(drv_outbound_allowed(&allow, "https://hooks.example/deploy/..%2Fadmin"));
	assert_false(drv_outbound_allowed(&allow, "https://hooks.example/deploy/./x"));
	assert_false(drv_outbound_allowed(&allow, "https://hooks.example/deploy\\..\\admin"));
	assert_false(drv_outbound_allowed(&allow, "https://hooks.example/deploy x"));
	assert_false(drv_outbound_allowed(&allow, "ftp://hooks.example/deploy"));
	assert_false(drv_outbound_allowed(&allow, "https://hooks.example:0/deploy"));
	assert_false(drv_outbound_allowed(&allow, "https://hooks.example:99999/deploy"));
	assert_false(drv_outbound_allowed(&allow, ""));
	assert_false(drv_outbound_allowed(&allow, NULL));
	/* names with dots inside a segment are fine */
	assert_true(drv_outbound_allowed(&allow, "https://hooks.example/deploy/v1..2/a.b"));
}

static void nothing_by_default(void **state)
{
	static const struct drv_strlist none = {0};
	(void)state;
	assert_false(drv_outbound_allowed(NULL, "https://hooks.example/deploy"));
	assert_false(drv_outbound_allowed(&none, "http://127.0.0.1:9100/"));
}

static void entries_checked(void **state)
{
	char why[200];
	(void)state;
	for (size_t i = 0; i < allow.n; i++)
		assert_int_equal(drv_outbound_check_entry(allow.v[i], why, sizeof(why)), DRV_OK);
	assert_int_equal(drv_outbound_check_entry("hooks.example/x", why, sizeof(why)), DRV_EINVAL);
	assert_non_null(strstr(why, "http:// or https://"));
	assert_int_equal(drv_outbound_check_entry("https://a@b/", why, sizeof(why)), DRV_EINVAL);
	assert_non_null(strstr(why, "user information"));
	assert_int_equal(drv_outbound_check_entry("https://b/x?y", why, sizeof(why)), DRV_EINVAL);
	assert_non_null(strstr(why, "query"));
	assert_int_equal(drv_outbound_check_entry("https:///x", why, sizeof(why)), DRV_EINVAL);
	assert_int_equal(drv_outbound_check_entry("http://[::1/", why, sizeof(why)), DRV_EINVAL);
}

static void plan_fields(void **state)
{
	char field[160];
	const char *url = NULL;
	struct drv_plan_notify notify[2] = {{.webhook = "https://hooks.example/deploy"},
	                                    {.webhook = "http://10.0.0.1/"}};
	struct drv_plan_service svc[2] = {{.tier = 0}, {.tier = 1}};
	struct drv_plan_tier tiers[2] = {{.first = 0}, {.first = 1}};
	struct drv_plan p = {.notify = notify,
	                     .n_notify = 2,
	                     .services = svc,
	                     .n_services = 2,
	                     .tiers = tiers,
	                     .n_tiers = 2};
	(void)state;
	assert_int_equal(drv_outbound_check_plan(&allow, &p, field, sizeof(field), &url),
	                 DRV_EINVAL);
	assert_string_equal(field, "notify[1].webhook");
	assert_string_equal(url, "http://10.0.0.1/");
	p.n_notify = 1;
	svc[1].strategy.metric_url = "http://169.254.169.254/latest/meta-data";
	assert_int_equal(drv_outbound_check_plan(&allow, &p, field, sizeof(field), &url),
	                 DRV_EINVAL);
	assert_string_equal(field, "tiers[1].services[0].strategy.analysis.http.url");
	svc[1].strategy.metric_url = "http://127.0.0.1:9100/error_rate";
	assert_int_equal(drv_outbound_check_plan(&allow, &p, field, sizeof(field), &url), DRV_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(covered),
	        cmocka_unit_test(not_covered),
	        cmocka_unit_test(nothing_by_default),
	        cmocka_unit_test(entries_checked),
	        cmocka_unit_test(plan_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
