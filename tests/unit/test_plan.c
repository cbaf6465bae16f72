/* test_plan.c: the plan API: defaults merged, digests resolved, hosts
 * matched, normalized round trip. (Field-by-field errors: tests/plans.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"
#include "plan.h"

static const char plan_text[] =
        "deployment: berrys\n"
        "version: \"2.4.0\"\n"
        "defaults:\n"
        "  strategy: { type: rolling, max_unavailable: 2 }\n"
        "  health: { http: { port: 8080 }, deadline: 30s }\n"
        "  failure: { max_failed_hosts: 10%, rollback: tier }\n"
        "failure: { max_failed_hosts: 5 }\n"
        "migrations:\n"
        "  - { name: m42, hosts: [db-1], up: [/bin/m, up], down: [/bin/m, down] }\n"
        "tiers:\n"
        "  - name: core\n"
        "    services:\n"
        "      - name: a\n"
        "        image: r.example/a:1\n"
        "        hosts: { labels: { tier: core } }\n"
        "        command: [/bin/a]\n"
        "      - name: b\n"
        "        image: r.example/a:1\n"
        "        hosts: [h-1, h-2]\n"
        "        command: [/bin/b]\n"
        "        strategy: { type: canary, steps: [20%, 100%], pause: manual }\n"
        "  - name: ui\n"
        "    services:\n"
        "      - name: c\n"
        "        image: \"r.example/c@sha256:"
        "00000000000000000000000000000000000000000000000000000000000000cc\"\n"
        "        hosts: [h-3]\n"
        "        command: [/bin/c]\n"
        "        port: 9000\n"
        "        strategy: { type: blue-green, green_port: 9001,\n"
        "                    traffic: { balancer: lb, backend: web } }\n";

static struct drv_plan *parse(const char *text)
{
	struct drv_plan_errors errs = {0};
	struct drv_plan *p = NULL;
	int rc = drv_plan_parse_buffer(text, strlen(text), "t.yaml", &p, &errs);

	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	assert_int_equal(rc, DRV_OK);
	assert_int_equal(errs.n, 0);
	drv_plan_errors_free(&errs);
	return p;
}

static void defaults_are_merged(void **state)
{
	(void)state;
	struct drv_plan *p = parse(plan_text);
	const struct drv_plan_service *a = drv_plan_service(p, "a");
	const struct drv_plan_service *b = drv_plan_service(p, "b");
	const struct drv_plan_service *c = drv_plan_service(p, "c");

	assert_int_equal(p->n_tiers, 2);
	assert_int_equal(p->n_services, 3);
	assert_int_equal(p->tiers[1].first, 2);
	assert_int_equal(c->tier, 1);
	assert_true(p->has_budget);
	assert_int_equal(p->max_failed_hosts.value, 5);
	/* same type: merged; other type: replaced */
	assert_int_equal(a->strategy.type, DRV_STRATEGY_ROLLING);
	assert_int_equal(a->strategy.max_unavailable.value, 2);
	assert_false(a->strategy.max_unavailable.percent);
	assert_int_equal(b->strategy.type, DRV_STRATEGY_CANARY);
	assert_int_equal(b->strategy.n_steps, 2);
	assert_true(b->strategy.pause_manual);
	assert_int_equal(c->strategy.type, DRV_STRATEGY_BLUEGREEN);
	assert_int_equal(c->strategy.green_port, 9001);
	assert_string_equal(c->strategy.traffic.server, "{host}-{slot}");
	/* health and failure from defaults, port derived from the check */
	assert_int_equal(a->health.kind, DRV_HEALTH_HTTP);
	assert_int_equal(a->health.port, 8080);
	assert_int_equal(a->port, 8080);
	assert_int_equal(a->health.deadline_ms, 30000);
	assert_string_equal(a->health.path, "/health");
	assert_int_equal(c->health.port, 8080); /* the check's own port wins */
	assert_int_equal(c->port, 9000);
	assert_int_equal(a->failure.rollback, DRV_ROLLBACK_TIER);
	assert_true(a->failure.max_failed_hosts.percent);
	assert_string_equal(a->version, "2.4.0");
	assert_null(a->digest);
	assert_string_equal(
	        c->digest,
	        "sha256:00000000000000000000000000000000000000000000000000000000000000cc");
	assert_string_equal(c->image, "r.example/c");
	assert_int_equal(p->prestage_timeout_ms, 600000);
	assert_false(drv_plan_pinned(p));
	drv_plan_free(p);
}

static int resolver_calls;

static int fake_resolve(void *arg, const char *ref, char digest[], size_t cap, char *why,
                        size_t why_cap)
{
	(void)arg;
	resolver_calls++;
	if (strstr(ref, "missing") != NULL) {
		snprintf(why, why_cap, "manifest unknown");
		return DRV_ENOENT;
	}
	snprintf(digest, cap, "sha256:%064x", (unsigned)strlen(ref));
	return DRV_OK;
}

static void digests_are_resolved_once_per_reference(void **state)
{
	(void)state;
	struct drv_plan *p = parse(plan_text);
	struct drv_plan_errors errs = {0};

	resolver_calls = 0;
	assert_int_equal(drv_plan_resolve_digests(p, fake_resolve, NULL, &errs), DRV_OK);
	assert_int_equal(resolver_calls, 1); /* a and b share r.example/a:1; c is pinned */
	assert_true(drv_plan_pinned(p));
	assert_string_equal(p->services[0].digest, p->services[1].digest);
	drv_plan_free(p);

	char *text = strdup(plan_text);
	char *at = strstr(text, "r.example/a:1\n        hosts: [h");
	memcpy(at, "r.missing/a:1", 13);
	p = parse(text);
	assert_int_equal(drv_plan_resolve_digests(p, fake_resolve, NULL, &errs), DRV_ENOENT);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.v[0], "t.yaml:17: tiers[0].services[1].image: cannot resolve "
	                               "r.missing/a:1: manifest unknown");
	assert_false(drv_plan_pinned(p));
	drv_plan_errors_free(&errs);
	drv_plan_free(p);
	free(text);
}

static void round_trip_is_a_fixed_point(void **state)
{
	(void)state;
	struct drv_plan *p = parse(plan_text), *q = NULL;
	struct drv_plan_errors errs = {0};
	json_t *j1 = drv_plan_to_json(p), *j2;

	assert_non_null(j1);
	assert_int_equal(drv_plan_from_json(j1, NULL, "stored", &q, &errs), DRV_OK);
	j2 = drv_plan_to_json(q);
	assert_true(json_equal(j1, j2));
	json_decref(j1);
	json_decref(j2);
	drv_plan_free(p);
	drv_plan_free(q);
}

static void hosts_match(void **state)
{
	(void)state;
	struct drv_plan *p = parse(plan_text);
	struct drv_plan_kv core[] = {{"dc", "fra1"}, {"tier", "core"}};
	struct drv_plan_kv ui[] = {{"tier", "ui"}};

	assert_true(drv_plan_hosts_match(&p->services[0].hosts, "x", core, 2));
	assert_false(drv_plan_hosts_match(&p->services[0].hosts, "x", ui, 1));
	assert_false(drv_plan_hosts_match(&p->services[0].hosts, "x", NULL, 0));
	assert_true(drv_plan_hosts_match(&p->services[1].hosts, "h-2", NULL, 0));
	assert_false(drv_plan_hosts_match(&p->services[1].hosts, "h-3", core, 2));
	drv_plan_free(p);
}

static void amounts(void **state)
{
	(void)state;
	struct drv_plan_amount pct = {25, true}, cnt = {3, false};

	assert_int_equal(drv_plan_amount_of(pct, 10, true), 3);
	assert_int_equal(drv_plan_amount_of(pct, 10, false), 2);
	assert_int_equal(drv_plan_amount_of(pct, 0, true), 0);
	assert_int_equal(drv_plan_amount_of(cnt, 10, true), 3);
	assert_int_equal(drv_plan_amount_of(cnt, 2, true), 2);
	assert_int_equal(drv_plan_amount_of((struct drv_plan_amount){100, true}, 7, false), 7);
}

static void every_error_is_reported(void **state)
{
	(void)state;
	const char *text = "deployment: \"bad name\"\n"
	                   "version: \"1\"\n"
	                   "tiers:\n"
	                   "  - name: t\n"
	                   "    services:\n"
	                   "      - { name: a, image: x, hosts: [h], command: [/a], port: 0 }\n"
	                   "      - { name: a, image: y:1, hosts: [], command: [/a] }\n";
	struct drv_plan_errors errs = {0};
	struct drv_plan *p = NULL;

	assert_int_equal(drv_plan_parse_buffer(text, strlen(text), "e.yaml", &p, &errs),
	                 DRV_EINVAL);
	assert_null(p);
	assert_int_equal(errs.n, 5);
	assert_non_null(strstr(errs.v[0], "e.yaml:1: deployment: "));
	assert_non_null(strstr(errs.v[1], "e.yaml:6: tiers[0].services[0].image: "));
	assert_non_null(strstr(errs.v[2], "e.yaml:6: tiers[0].services[0].port: "));
	assert_non_null(strstr(errs.v[3], "e.yaml:7: tiers[0].services[1].hosts: "));
	assert_non_null(strstr(errs.v[4], "defined twice"));
	drv_plan_errors_free(&errs);

	/* a tree without lines: messages without line numbers */
	json_t *j = json_pack("{ss}", "deployment", "x");
	assert_int_equal(drv_plan_from_json(j, NULL, "api", &p, &errs), DRV_EINVAL);
	assert_string_equal(errs.v[0], "api: version: required (the release being deployed, "
	                               "e.g. \"2.4.0\")");
	json_decref(j);
	drv_plan_errors_free(&errs);
}

static void durations_format(void **state)
{
	(void)state;
	char buf[32];

	drv_plan_format_duration(0, buf, sizeof(buf));
	assert_string_equal(buf, "0s");
	drv_plan_format_duration(1500, buf, sizeof(buf));
	assert_string_equal(buf, "1500ms");
	drv_plan_format_duration(90000, buf, sizeof(buf));
	assert_string_equal(buf, "90s");
	drv_plan_format_duration(600000, buf, sizeof(buf));
	assert_string_equal(buf, "10m");
	drv_plan_format_duration(7200000, buf, sizeof(buf));
	assert_string_equal(buf, "2h");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(defaults_are_merged),
	        cmocka_unit_test(digests_are_resolved_once_per_reference),
	        cmocka_unit_test(round_trip_is_a_fixed_point),
	        cmocka_unit_test(hosts_match),
	        cmocka_unit_test(amounts),
	        cmocka_unit_test(every_error_is_reported),
	        cmocka_unit_test(durations_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
