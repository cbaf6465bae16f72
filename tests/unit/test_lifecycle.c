/* test_lifecycle.c: lifecycles (droverd.yaml `lifecycles`, lifecycle.c) and
 * releases (plan_release.c): phases must be environments, at most one
 * lifecycle per environment, each error at its line; the phase before an
 * environment; a release keeps {{vars}} and pins digests, its id does not
 * depend on the environment, and a plan made from it for another
 * environment takes that environment's variables and is the same release. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "env_conf.h"
#include "err.h"
#include "lifecycle.h"
#include "plan.h"

static const char envs_yaml[] = "environments:\n"
                                "  dev: { vars: { PORT: 1 } }\n"
                                "  staging: { vars: { PORT: 2 } }\n"
                                "  production: { vars: { PORT: 3 } }\n"
                                "  qa: { vars: { OTHER: x } }\n";

static void load_envs(struct drv_plan_envs *envs)
{
	struct drv_cfg_diag diag = {0};

	memset(envs, 0, sizeof(*envs));
	assert_int_equal(
	        drv_envs_parse(envs_yaml, strlen(envs_yaml), "droverd.yaml", "/", envs, &diag),
	        DRV_OK);
}

static int load(const char *lc_yaml, struct drv_lifecycles *out, struct drv_cfg_diag *diag)
{
	struct drv_plan_envs envs;
	char text[2048];
	int rc;

	load_envs(&envs);
	snprintf(text, sizeof(text), "%s%s", envs_yaml, lc_yaml);
	memset(out, 0, sizeof(*out));
	memset(diag, 0, sizeof(*diag));
	rc = drv_lifecycles_parse(text, strlen(text), "droverd.yaml", &envs, out, diag);
	drv_envs_free(&envs);
	return rc;
}

static bool diag_has(const struct drv_cfg_diag *d, const char *needle)
{
	for (size_t i = 0; i < d->n; i++) {
		if (strstr(d->msg[i], needle) != NULL)
			return true;
	}
	return false;
}

static void test_previous(void **state)
{
	struct drv_lifecycles l;
	struct drv_cfg_diag diag;
	const struct drv_lifecycle *lc;
	char text[200];

	(void)state;
	assert_int_equal(
	        load("lifecycles:\n  main: { phases: [dev, staging, production] }\n", &l, &diag),
	        DRV_OK);
	assert_int_equal(l.n, 1);
	assert_null(drv_lifecycle_previous(&l, "dev", &lc));
	assert_non_null(lc); /* dev is in main, first */
	assert_string_equal(drv_lifecycle_previous(&l, "staging", NULL), "dev");
	assert_string_equal(drv_lifecycle_previous(&l, "production", &lc), "staging");
	assert_string_equal(lc->name, "main");
	assert_null(drv_lifecycle_previous(&l, "qa", &lc));
	assert_null(lc);
	assert_null(drv_lifecycle_previous(&l, NULL, NULL));
	drv_lifecycle_describe(lc == NULL ? &l.v[0] : lc, text, sizeof(text));
	assert_string_equal(text, "dev -> staging -> production");
	drv_lifecycles_free(&l);
	assert_int_equal(load("", &l, &diag), DRV_OK); /* absent: none */
	assert_int_equal(l.n, 0);
	assert_null(drv_lifecycle_previous(&l, "production", NULL));
}

static void test_errors(void **state)
{
	struct drv_lifecycles l;
	struct drv_cfg_diag diag;

	(void)state;
	assert_int_equal(load("lifecycles:\n  main:\n    phases: [dev, stagin]\n", &l, &diag),
	                 DRV_EINVAL);
	assert_true(diag_has(&diag, "droverd.yaml:8: lifecycles.main.phases[1]: no environment "
	                            "named \"stagin\""));
	assert_int_equal(load("lifecycles:\n  a: { phases: [dev, staging] }\n"
	                      "  b: { phases: [qa, staging] }\n",
	                      &l, &diag),
	                 DRV_EINVAL);
	assert_true(diag_has(&diag, "lifecycles.b.phases[1]: staging is a phase of lifecycle a"));
	assert_int_equal(load("lifecycles:\n  a: { phases: [dev] }\n", &l, &diag), DRV_EINVAL);
	assert_true(diag_has(&diag, "2 to 16 environments"));
	assert_int_equal(load("lifecycles:\n  a: { phases: [dev, dev] }\n", &l, &diag), DRV_EINVAL);
	assert_true(diag_has(&diag, "dev is a phase twice"));
	assert_int_equal(load("lifecycles:\n  a: { phases: [dev, 7] }\n", &l, &diag), DRV_EINVAL);
	assert_true(diag_has(&diag, "a phase is the name of an environment"));
	assert_int_equal(load("lifecycles: [dev]\n", &l, &diag), DRV_EINVAL);
	assert_int_equal(load("lifecycles:\n  a: { phases: [dev, qa], extra: 1 }\n", &l, &diag),
	                 DRV_EINVAL);
}

static const char plan_text[] = "deployment: d\n"
                                "version: \"1\"\n"
                                "environment: dev\n"
                                "tiers:\n"
                                "  - name: t\n"
                                "    services:\n"
                                "      - name: web\n"
                                "        image: r/web:1@sha256:"
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
                                "        hosts: [h-1]\n"
                                "        command: [/bin/web, \"{{vars.PORT}}\"]\n"
                                "      - name: api\n"
                                "        image: r/api:2\n"
                                "        hosts: [h-1]\n"
                                "        command: [/bin/api]\n";

static int fake_resolve(void *arg, const char *ref, char digest[], size_t cap, char *why,
                        size_t why_cap)
{
	(void)arg;
	(void)why;
	(void)why_cap;
	assert_string_equal(ref, "r/api:2");
	snprintf(digest, cap, "sha256:%064d", 7);
	return DRV_OK;
}

static void test_release(void **state)
{
	struct drv_plan_envs envs;
	struct drv_plan_errors errs = {0};
	struct drv_plan *dev = NULL, *prod = NULL;
	char id_dev[DRV_PLAN_RELEASE_ID_MAX], id_prod[DRV_PLAN_RELEASE_ID_MAX];
	json_t *rel, *rel2;

	(void)state;
	load_envs(&envs);
	drv_plan_parse_buffer_env(plan_text, strlen(plan_text), "p.yaml", &envs, NULL, &dev, &errs);
	for (size_t i = 0; i < errs.n; i++)
		print_error("%s\n", errs.v[i]);
	assert_non_null(dev);
	assert_null(drv_plan_release(dev)); /* api not pinned yet */
	assert_int_equal(drv_plan_resolve_digests(dev, fake_resolve, NULL, &errs), DRV_OK);
	assert_string_equal(dev->services[0].command.v[1], "1");
	rel = drv_plan_release(dev);
	assert_non_null(rel);
	assert_null(json_object_get(rel, "environment"));
	{
		json_t *svcs = json_object_get(json_array_get(json_object_get(rel, "tiers"), 0),
		                               "services");
		json_t *web = json_array_get(svcs, 0), *api = json_array_get(svcs, 1);

		assert_string_equal(
		        json_string_value(json_array_get(json_object_get(web, "command"), 1)),
		        "{{vars.PORT}}");
		assert_string_equal(
		        json_string_value(json_object_get(api, "image")),
		        "r/api:2@sha256:"
		        "0000000000000000000000000000000000000000000000000000000000000007");
	}
	assert_int_equal(drv_plan_release_id(rel, id_dev), DRV_OK);
	assert_int_equal(strlen(id_dev), 20);
	assert_memory_equal(id_dev, "rel-", 4);

	/* the same release in production: production's PORT, the same id */
	assert_int_equal(drv_plan_from_release(rel, "release", &envs, "production", &prod, &errs),
	                 DRV_OK);
	assert_string_equal(prod->environment, "production");
	assert_string_equal(prod->services[0].command.v[1], "3");
	assert_true(drv_plan_pinned(prod));
	rel2 = drv_plan_release(prod);
	assert_int_equal(drv_plan_release_id(rel2, id_prod), DRV_OK);
	assert_string_equal(id_dev, id_prod);
	json_decref(rel2);
	drv_plan_free(prod);
	prod = NULL;

	/* qa lacks PORT: an error naming it */
	assert_int_equal(drv_plan_from_release(rel, "release", &envs, "qa", &prod, &errs),
	                 DRV_EINVAL);
	assert_null(prod);
	assert_true(errs.n > 0 && strstr(errs.v[0], "unknown variable vars.PORT") != NULL);
	drv_plan_errors_free(&errs);

	/* another digest is another release */
	json_object_set_new(
	        json_array_get(json_object_get(json_array_get(json_object_get(rel, "tiers"), 0),
	                                       "services"),
	                       1),
	        "image",
	        json_string("r/api:2@sha256:"
	                    "0000000000000000000000000000000000000000000000000000000000000008"));
	assert_int_equal(drv_plan_release_id(rel, id_prod), DRV_OK);
	assert_string_not_equal(id_dev, id_prod);
	json_decref(rel);
	drv_plan_free(dev);
	drv_envs_free(&envs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_previous),
	        cmocka_unit_test(test_errors),
	        cmocka_unit_test(test_release),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
