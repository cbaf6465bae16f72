/* test_deploy_drift.c: drift kinds from a baseline and agents' reports, and
 * the converge plan (narrowed to drifted services and online hosts, no hooks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy_drift.h"
#include "err.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D0 "sha256:0000000000000000000000000000000000000000000000000000000000000000"

/* web: deployed by dep-2 on h1..h6 (finished at 1000), selector tier=web;
 * plan with a pre hook and two services. */
static const char baseline_text[] =
        "{\"services\": {\"web\": {\"deployment\": \"dep-2\", \"version\": \"2\","
        "  \"digest\": \"" D1 "\", \"files_hash\": \"sha256:ff\","
        "  \"hosts\": [{\"id\": \"h1\", \"finished_ms\": 1000}, {\"id\": \"h2\", \"finished_ms\": "
        "1000},"
        "             {\"id\": \"h3\", \"finished_ms\": 1000}, {\"id\": \"h4\", \"finished_ms\": "
        "1000},"
        "             {\"id\": \"h5\", \"finished_ms\": 1000}, {\"id\": \"h6\", \"finished_ms\": "
        "1000},"
        "             {\"id\": \"h7\", \"finished_ms\": 1000}],"
        "  \"selector\": {\"labels\": {\"tier\": \"web\"}}}},"
        " \"touched\": {\"web\": {\"h7\": 9000}},"
        " \"plans\": {\"dep-2\": {\"deployment\": \"d\", \"version\": \"2\","
        "   \"pre\": [{\"name\": \"b\"}],"
        "   \"tiers\": [{\"name\": \"t\", \"services\": [{\"name\": \"web\", \"hosts\": "
        "{\"labels\": {\"tier\": \"web\"}}},"
        "                                         {\"name\": \"db\", \"hosts\": [\"x\"]}]}]}}}";

#define REL(state, digest, since, files)                                                           \
	"[{\"service\": \"web\", \"version\": \"2\", \"digest\": \"" digest                        \
	"\", \"state\": \"" state "\", \"alive_since_ms\": " since ", \"files_hash\": \"" files    \
	"\"}]"
#define AGENT(id, conn, rel)                                                                       \
	"{\"id\": \"" id "\", \"status\": \"accepted\", \"connected\": " conn                      \
	", \"labels\": {\"tier\": \"web\"}, \"releases\": " rel "}"

static const char agents_text[] =
        "[" AGENT("h1", "true", REL("running", D1, "900", "sha256:ff")) "," /* fine */
        AGENT("h2", "false", REL("running", D1, "900", "sha256:ff")) ","    /* offline */
        AGENT("h3", "true", "[]") ","                                       /* stopped */
        AGENT("h4", "true", REL("failed", D1, "0", "")) ","                 /* crash loop */
        AGENT("h5", "true", REL("running", D0, "900", "")) ","              /* release */
        AGENT("h6", "true", REL("running", D1, "5000", "sha256:ee")) ","    /* files */
        AGENT("h7", "true", REL("running", D1, "8000", "sha256:ff")) ","    /* touched later */
        AGENT("h8", "true", "[]") "]";                                      /* missed */

static const char *kind_of(const json_t *drift, const char *host)
{
	const json_t *h;
	size_t i;

	json_array_foreach(json_object_get(drift, "hosts"), i, h)
	{
		if (strcmp(json_string_value(json_object_get(h, "host")), host) == 0)
			return json_string_value(json_object_get(h, "kind"));
	}
	return NULL;
}

static void kinds(void **state)
{
	json_t *b = json_loads(baseline_text, 0, NULL), *a = json_loads(agents_text, 0, NULL), *d;

	(void)state;
	assert_non_null(b);
	assert_non_null(a);
	d = deploy_drift_compute(b, a);
	assert_non_null(d);
	assert_null(kind_of(d, "h1"));
	assert_string_equal(kind_of(d, "h2"), "offline");
	assert_string_equal(kind_of(d, "h3"), "stopped");
	assert_string_equal(kind_of(d, "h4"), "crash-looping");
	assert_string_equal(kind_of(d, "h5"), "release");
	assert_string_equal(kind_of(d, "h6"), "files");
	/* h7's process started after dep-2 but before a later deployment
	 * touched it (a rollback restarts it): not drift. */
	assert_null(kind_of(d, "h7"));
	assert_string_equal(kind_of(d, "h8"), "missed");
	assert_int_equal(json_integer_value(json_object_get(d, "drifted_hosts")), 6);
	json_decref(d);
	/* h1 restarted by its agent after the deployment: drift. */
	json_object_set_new(json_array_get(json_object_get(json_array_get(a, 0), "releases"), 0),
	                    "alive_since_ms", json_integer(4000));
	d = deploy_drift_compute(b, a);
	assert_string_equal(kind_of(d, "h1"), "restarted");
	json_decref(d);
	json_decref(a);
	json_decref(b);
}

static void converge_plan(void **state)
{
	json_t *b = json_loads(baseline_text, 0, NULL), *a = json_loads(agents_text, 0, NULL), *d;
	json_t *plans = NULL, *p, *svcs;
	char why[200];

	(void)state;
	d = deploy_drift_compute(b, a);
	assert_int_equal(deploy_drift_converge_plans(b, d, "web", &plans, why, sizeof(why)),
	                 DRV_OK);
	assert_int_equal(json_array_size(plans), 1);
	p = json_array_get(plans, 0);
	assert_null(json_object_get(p, "pre")); /* no hooks */
	svcs = json_object_get(json_array_get(json_object_get(p, "tiers"), 0), "services");
	assert_int_equal(json_array_size(svcs), 1); /* only web */
	{
		char *hosts =
		        json_dumps(json_object_get(json_array_get(svcs, 0), "hosts"), JSON_COMPACT);
		/* the drifted hosts but h2, which is offline */
		assert_string_equal(hosts, "[\"h3\",\"h4\",\"h5\",\"h6\",\"h8\"]");
		free(hosts);
	}
	json_decref(plans);
	assert_int_equal(deploy_drift_converge_plans(b, d, "db", &plans, why, sizeof(why)),
	                 DRV_ENOENT);
	json_decref(d);
	json_decref(a);
	json_decref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(kinds),
	        cmocka_unit_test(converge_plan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
