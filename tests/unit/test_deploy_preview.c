/* test_deploy_preview.c: a dry run drives the real sequencer with every
 * step succeeding and records the rollout's shape: rolling batches, canary
 * steps with their hosts, the blue-green switch; hosts unchanged, updated
 * or installed; offline and skipped agents; counts and exit semantics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "deploy_hosts.h"
#include "deploy_preview.h"
#include "err.h"

#define D0 "sha256:0000000000000000000000000000000000000000000000000000000000000000"
#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"

static const char plan_text[] =
        "deployment: d\n"
        "version: \"2\"\n"
        "migrations:\n"
        "  - { name: m1, hosts: [db-1], up: [/bin/up], down: [/bin/down] }\n"
        "tiers:\n"
        "  - name: core\n"
        "    services:\n"
        "      - name: web\n"
        "        image: r.example/web@" D1 "\n"
        "        hosts: { labels: { tier: core } }\n"
        "        command: [/bin/web]\n"
        "        health: { http: { port: 8080 } }\n"
        "        strategy: { type: rolling, max_unavailable: 2 }\n"
        "  - name: ui\n"
        "    services:\n"
        "      - name: gw\n"
        "        image: r.example/gw@" D1 "\n"
        "        hosts: { labels: { tier: core } }\n"
        "        command: [/bin/gw]\n"
        "        health: { http: { port: 8081 } }\n"
        "        strategy: { type: canary, steps: [10%, 50%, 100%], pause: manual }\n"
        "      - name: dash\n"
        "        image: r.example/dash@" D1 "\n"
        "        hosts: [core-1]\n"
        "        command: [/bin/dash]\n"
        "        health: { http: { port: 8082 } }\n"
        "        strategy: { type: blue-green, green_port: 9082, finalize_after: 1m,\n"
        "                    traffic: { hook: { run: [/bin/switch], hosts: [db-1] } } }\n";

/* core-1 runs web 2 already (same digest), core-2 runs web 1, core-10 runs
 * nothing and is offline, core-3 is pending (skipped). */
static const char agents_text[] =
        "[{\"id\":\"core-1\",\"status\":\"accepted\",\"connected\":true,"
        "  \"labels\":{\"tier\":\"core\"},"
        "  \"releases\":[{\"service\":\"web\",\"version\":\"2\",\"digest\":\"" D1 "\","
        "                \"state\":\"running\"}]},"
        " {\"id\":\"core-2\",\"status\":\"accepted\",\"connected\":true,"
        "  \"labels\":{\"tier\":\"core\"},"
        "  \"releases\":[{\"service\":\"web\",\"version\":\"1\",\"digest\":\"" D0 "\","
        "                \"state\":\"running\"}]},"
        " {\"id\":\"core-10\",\"status\":\"accepted\",\"connected\":false,"
        "  \"labels\":{\"tier\":\"core\"},\"releases\":[]},"
        " {\"id\":\"core-3\",\"status\":\"pending\",\"connected\":true,"
        "  \"labels\":{\"tier\":\"core\"}},"
        " {\"id\":\"db-1\",\"status\":\"accepted\",\"connected\":true,\"labels\":{}}]";

static struct drv_plan *parse(const char *text)
{
	struct drv_plan_errors errs = {0};
	struct drv_plan *p = NULL;
	int rc = drv_plan_parse_buffer(text, strlen(text), "t.yaml", &p, &errs);

	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	drv_plan_errors_free(&errs);
	assert_int_equal(rc, DRV_OK);
	return p;
}

static const json_t *svc(const json_t *pv, size_t tier, size_t i)
{
	return json_array_get(
	        json_object_get(json_array_get(json_object_get(pv, "tiers"), tier), "services"), i);
}

static char *dump(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT);
}

static void expect_json(const json_t *j, const char *want)
{
	char *got = dump(j);

	if (strcmp(got, want) != 0)
		fprintf(stderr, "want %s\n got %s\n", want, got);
	assert_string_equal(got, want);
	free(got);
}

static void preview(void **state)
{
	struct drv_plan *p = parse(plan_text);
	json_t *agents = json_loads(agents_text, 0, NULL), *t = NULL, *pv = NULL;
	struct deploy_hosts_err err;
	const json_t *web, *gw, *dash;
	char why[200] = "";

	(void)state;
	assert_int_equal(deploy_hosts_resolve(p, agents, &t, &err), DRV_OK);
	assert_int_equal(deploy_preview(p, t, agents, &pv, why, sizeof(why)), DRV_OK);
	web = svc(pv, 0, 0);
	gw = svc(pv, 1, 0);
	dash = svc(pv, 1, 1);
	/* Hosts in the sequencer's (natural) order, each with what changes. */
	expect_json(json_object_get(web, "hosts"),
	            "[{\"id\":\"core-1\",\"from_version\":\"2\",\"from_digest\":\"" D1
	            "\",\"to_version\":\"2\",\"change\":\"unchanged\",\"online\":true},"
	            "{\"id\":\"core-2\",\"from_version\":\"1\",\"from_digest\":\"" D0
	            "\",\"to_version\":\"2\",\"change\":\"update\",\"online\":true},"
	            "{\"id\":\"core-10\",\"from_version\":\"\",\"from_digest\":\"\","
	            "\"to_version\":\"2\",\"change\":\"install\",\"online\":false}]");
	/* Rolling by 2: the batches as the sequencer sends them. */
	expect_json(json_object_get(web, "steps"),
	            "[{\"kind\":\"batch\",\"index\":1,\"of\":2,\"hosts\":[\"core-1\",\"core-2\"]},"
	            "{\"kind\":\"batch\",\"index\":2,\"of\":2,\"hosts\":[\"core-10\"]}]");
	/* Canary 10/50/100 of 3 hosts: 1, 1 more, the last; manual pauses. */
	expect_json(
	        json_object_get(gw, "steps"),
	        "[{\"kind\":\"canary\",\"index\":1,\"of\":3,\"percent\":10,\"hosts\":[\"core-1\"],"
	        "\"traffic\":false,\"pause\":\"manual\"},"
	        "{\"kind\":\"canary\",\"index\":2,\"of\":3,\"percent\":50,\"hosts\":[\"core-2\"],"
	        "\"traffic\":false,\"pause\":\"manual\"},"
	        "{\"kind\":\"canary\",\"index\":3,\"of\":3,\"percent\":100,\"hosts\":[\"core-10\"],"
	        "\"traffic\":false,\"pause\":null}]");
	expect_json(json_object_get(dash, "steps"),
	            "[{\"kind\":\"green\",\"hosts\":[\"core-1\"],\"port\":9082},"
	            "{\"kind\":\"switch\",\"to\":\"green\"},"
	            "{\"kind\":\"finalize\",\"after_ms\":60000}]");
	/* 2 web + 3 gw + 1 dash hosts change, plus the migration; 1 unchanged. */
	assert_int_equal(json_integer_value(json_object_get(pv, "changes")), 7);
	assert_int_equal(json_integer_value(json_object_get(pv, "unchanged")), 1);
	expect_json(json_object_get(pv, "offline"), "[\"core-10\"]");
	expect_json(json_array_get(json_object_get(pv, "skipped"), 0),
	            "{\"agent\":\"core-3\",\"status\":\"pending\",\"where\":\"web\"}");
	/* The finalize delay is the only wait (manual pauses are promoted). */
	assert_int_equal(json_integer_value(json_object_get(pv, "wait_ms")), 60000);
	assert_string_equal(
	        json_string_value(json_object_get(
	                json_object_get(json_object_get(web, "health"), "http"), "path")),
	        "/health");
	json_decref(pv);
	json_decref(t);
	json_decref(agents);
	drv_plan_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(preview),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
