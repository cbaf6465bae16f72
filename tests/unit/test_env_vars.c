/* test_env_vars.c: environments (droverd.yaml `environments`, env_conf.c)
 * and variables in plans (plan_vars.c): an environment's value wins over
 * the plan's, secrets come from private files only and show as "<secret>",
 * unknown names and environments are errors at their line, and a plan
 * naming one environment is not deployed to another. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "env_conf.h"
#include "err.h"
#include "plan.h"

static char dir[] = "/tmp/drv-envvars.XXXXXX";

static const char plan_text[] = "deployment: d\n"
                                "version: \"1\"\n"
                                "vars: { LEVEL: info, DB: db.plan }\n"
                                "pre:\n"
                                "  - name: migrate\n"
                                "    hosts: [h-1]\n"
                                "    run: [/bin/m, \"--password={{vars.DB_PASSWORD}}\"]\n"
                                "tiers:\n"
                                "  - name: t\n"
                                "    services:\n"
                                "      - name: web\n"
                                "        image: r/web:1\n"
                                "        hosts: { labels: { tier: web } }\n"
                                "        command: [/bin/web, \"{{vars.DB}}\"]\n"
                                "        env: { LEVEL: \"{{vars.LEVEL}}\" }\n";

static void write_file(const char *name, const char *text, mode_t mode)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
}

static int load_envs(const char *yaml, struct drv_plan_envs *envs, struct drv_cfg_diag *diag)
{
	memset(envs, 0, sizeof(*envs));
	memset(diag, 0, sizeof(*diag));
	return drv_envs_parse(yaml, strlen(yaml), "droverd.yaml", dir, envs, diag);
}

static const char envs_yaml[] = "environments:\n"
                                "  staging:\n"
                                "    labels: { env: staging }\n"
                                "    vars:\n"
                                "      DB: db.staging\n"
                                "      DB_PASSWORD: { secret_file: staging.secret }\n"
                                "  production:\n"
                                "    vars: { DB: db.prod, DB_PASSWORD: hunter2 }\n";

static const char *var_of(const struct drv_plan *p, const char *name)
{
	for (size_t i = 0; i < p->n_vars; i++) {
		if (strcmp(p->vars[i].key, name) == 0)
			return p->vars[i].value;
	}
	return NULL;
}

static void environment_wins_and_secret_hidden(void **state)
{
	struct drv_plan_envs envs;
	struct drv_cfg_diag diag;
	struct drv_plan_errors errs = {0};
	struct drv_plan *p = NULL;
	json_t *j;
	char *text;

	(void)state;
	write_file("staging.secret", "s3cr3t-value\n", 0600);
	assert_int_equal(load_envs(envs_yaml, &envs, &diag), DRV_OK);
	assert_int_equal(envs.n, 2);
	assert_int_equal(drv_plan_parse_buffer_env(plan_text, strlen(plan_text), "p.yaml", &envs,
	                                           "staging", &p, &errs),
	                 DRV_OK);
	assert_string_equal(p->environment, "staging");
	assert_string_equal(p->services[0].command.v[1], "db.staging"); /* env wins */
	assert_string_equal(p->services[0].env[0].value, "info");       /* plan's own */
	assert_string_equal(p->pre[0].run.v[1], "--password=s3cr3t-value");
	assert_string_equal(var_of(p, "DB"), "db.staging");
	assert_string_equal(var_of(p, "DB_PASSWORD"), "<secret>");
	assert_string_equal(drv_plan_redact(p, p->pre[0].run.v[1]), "<secret>");
	assert_string_equal(drv_plan_redact(p, "--other"), "--other");
	/* the normalized plan (stored, shown) names the secret only as <secret> */
	j = drv_plan_to_json(p);
	text = json_dumps(json_object_get(j, "vars"), JSON_COMPACT);
	assert_null(strstr(text, "s3cr3t"));
	assert_non_null(strstr(text, "\"DB_PASSWORD\":\"<secret>\""));
	free(text);
	json_decref(j);
	drv_plan_free(p);
	p = NULL;
	/* the same plan to production: other values */
	assert_int_equal(drv_plan_parse_buffer_env(plan_text, strlen(plan_text), "p.yaml", &envs,
	                                           "production", &p, &errs),
	                 DRV_OK);
	assert_string_equal(p->services[0].command.v[1], "db.prod");
	assert_string_equal(p->pre[0].run.v[1], "--password=hunter2");
	assert_string_equal(var_of(p, "DB_PASSWORD"), "hunter2"); /* not a secret there */
	drv_plan_free(p);
	drv_envs_free(&envs);
	drv_plan_errors_free(&errs);
}

static void refuses(const char *plan, const char *requested, const char *want)
{
	struct drv_plan_envs envs;
	struct drv_cfg_diag diag;
	struct drv_plan_errors errs = {0};
	struct drv_plan *p = NULL;
	bool found = false;

	write_file("staging.secret", "x\n", 0600);
	assert_int_equal(load_envs(envs_yaml, &envs, &diag), DRV_OK);
	assert_int_equal(drv_plan_parse_buffer_env(plan, strlen(plan), "p.yaml", &envs, requested,
	                                           &p, &errs),
	                 DRV_EINVAL);
	assert_null(p);
	for (size_t i = 0; i < errs.n; i++)
		found |= strcmp(errs.v[i], want) == 0;
	if (!found) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "got: %s\n", errs.v[i]);
	}
	assert_true(found);
	drv_plan_errors_free(&errs);
	drv_envs_free(&envs);
}

static void plan_errors(void **state)
{
	char named[sizeof(plan_text) + 64];

	(void)state;
	/* no environment: DB_PASSWORD is defined nowhere */
	refuses(plan_text, NULL,
	        "p.yaml:7: pre[0].run[1]: unknown variable vars.DB_PASSWORD (not in the plan's "
	        "vars nor in its environment's)");
	refuses(plan_text, "qa",
	        "p.yaml:1: environment: no environment named \"qa\" in droverd.yaml "
	        "(2 defined)");
	snprintf(named, sizeof(named), "environment: staging\n%s", plan_text);
	refuses(named, "production",
	        "p.yaml:1: environment: the plan names environment \"staging\" but is deployed to "
	        "\"production\"");
}

static void secret_file_must_be_private(void **state)
{
	struct drv_plan_envs envs;
	struct drv_cfg_diag diag;

	(void)state;
	write_file("staging.secret", "s3cr3t\n", 0644);
	assert_int_equal(load_envs(envs_yaml, &envs, &diag), DRV_EINVAL);
	assert_int_equal(diag.n, 1);
	assert_non_null(
	        strstr(diag.msg[0], "droverd.yaml:6: environments.staging.vars.DB_PASSWORD"));
	assert_non_null(strstr(diag.msg[0], "chmod 600"));
	assert_null(strstr(diag.msg[0], "s3cr3t"));
	drv_envs_free(&envs);
	write_file("staging.secret", "two\nlines\n", 0600);
	assert_int_equal(load_envs(envs_yaml, &envs, &diag), DRV_EINVAL);
	assert_non_null(strstr(diag.msg[0], "one line"));
	drv_envs_free(&envs);
	assert_int_equal(
	        load_envs("environments: { a: { vars: { X: [1] }, color: red } }\n", &envs, &diag),
	        DRV_EINVAL);
	assert_int_equal(diag.n, 2);
	drv_envs_free(&envs);
}

/* approval and at_window: defaults, values, and each error at its path. */
static void approval_policy(void **state)
{
	struct drv_plan_envs envs;
	struct drv_cfg_diag diag;
	const struct drv_plan_env *e;

	(void)state;
	assert_int_equal(load_envs("environments:\n"
	                           "  staging: { labels: { env: staging } }\n"
	                           "  production:\n"
	                           "    at_window: continue\n"
	                           "    approval: { approvers: 2, role: admin, timeout: 30m }\n"
	                           "  qa: { approval: {} }\n",
	                           &envs, &diag),
	                 DRV_OK);
	e = drv_envs_find(&envs, "staging");
	assert_int_equal(e->approvers, 0);
	assert_false(e->continue_at_window);
	e = drv_envs_find(&envs, "production");
	assert_int_equal(e->approvers, 2);
	assert_string_equal(e->approver_role, "admin");
	assert_false(e->allow_self);
	assert_int_equal(e->approval_timeout_ms, 30 * 60 * 1000);
	assert_true(e->continue_at_window);
	e = drv_envs_find(&envs, "qa");
	assert_int_equal(e->approvers, 1);
	assert_string_equal(e->approver_role, "approver");
	assert_int_equal(e->approval_timeout_ms, 24 * 3600 * 1000LL);
	drv_envs_free(&envs);
	assert_int_equal(load_envs("environments:\n"
	                           "  p:\n"
	                           "    at_window: stop\n"
	                           "    approval: { approvers: 0, role: root, allow_self: 1,\n"
	                           "                timeout: 1ms, who: me }\n",
	                           &envs, &diag),
	                 DRV_EINVAL);
	assert_int_equal(diag.n, 6);
	assert_non_null(strstr(diag.msg[0], "droverd.yaml:3: environments.p.at_window: must be"));
	assert_non_null(strstr(diag.msg[1], "environments.p.approval: unknown field who"));
	assert_non_null(strstr(diag.msg[2], "approvers must be 1 to 10"));
	assert_non_null(strstr(diag.msg[3], "role must be deployer, approver or admin"));
	assert_non_null(strstr(diag.msg[4], "allow_self must be true or false"));
	assert_non_null(strstr(diag.msg[5], "timeout must be a duration"));
	drv_envs_free(&envs);
}

/* The entries of `environments`: a name, a mapping, known fields. */
static void environment_entries(void **state)
{
	struct drv_plan_envs envs;
	struct drv_cfg_diag diag;

	(void)state;
	assert_int_equal(load_envs("environments:\n"
	                           "  \"a b\": { labels: { env: x } }\n"
	                           "  c: [1]\n"
	                           "  d: { colour: red }\n",
	                           &envs, &diag),
	                 DRV_EINVAL);
	assert_int_equal(envs.n, 0);
	assert_int_equal(diag.n, 3);
	assert_string_equal(diag.msg[0], "droverd.yaml:2: environments.a b: an environment's name "
	                                 "is 1 to 63 of A-Z a-z 0-9 . _ -");
	assert_string_equal(diag.msg[1],
	                    "droverd.yaml:3: environments.c: must be a mapping: labels, vars");
	assert_string_equal(diag.msg[2], "droverd.yaml:4: environments.d.colour: unknown field "
	                                 "(labels, vars, windows, at_window, approval)");
	assert_int_equal(load_envs("environments:\n  e: {}\n", &envs, &diag), DRV_OK);
	assert_int_equal(envs.n, 1);
	assert_string_equal(envs.v[0].name, "e");
	drv_envs_free(&envs);
}

/* approval at a canary step: in droverd.yaml and in a plan, checked
 * against the plan's canary steps, errors at their lines. */
static const char canary_plan[] =
        "deployment: web\n"
        "version: \"1\"\n"
        "%s"
        "tiers:\n"
        "  - name: t\n"
        "    services:\n"
        "      - name: api\n"
        "        image: r.example/a@sha256:"
        "0000000000000000000000000000000000000000000000000000000000000000\n"
        "        command: [/bin/a]\n"
        "        hosts: [h-1]\n"
        "        strategy: { type: canary, steps: [10%%, 25%%, 100%%] }\n";

static int parse_canary(const char *top, const struct drv_plan_envs *envs, const char *env,
                        struct drv_plan **p, struct drv_plan_errors *errs)
{
	char text[sizeof(canary_plan) + 256];

	snprintf(text, sizeof(text), canary_plan, top);
	return drv_plan_parse_buffer_env(text, strlen(text), "p.yaml", envs, env, p, errs);
}

static bool has_error(const struct drv_plan_errors *errs, const char *want)
{
	for (size_t i = 0; i < errs->n; i++) {
		if (strcmp(errs->v[i], want) == 0)
			return true;
		fprintf(stderr, "got: %s\n", errs->v[i]);
	}
	return false;
}

static void approval_at_canary_step(void **state)
{
	struct drv_plan_envs envs;
	struct drv_cfg_diag diag;
	struct drv_plan_errors errs = {0};
	struct drv_plan *p = NULL;
	const struct drv_plan_env *e;
	json_t *j;

	(void)state;
	assert_int_equal(load_envs("environments:\n"
	                           "  prod: { approval: { at_canary_step: 25%, approvers: 2 } }\n"
	                           "  both: { approval: { before: true, at_canary_step: 10% } }\n"
	                           "  odd: { approval: { at_canary_step: 50% } }\n",
	                           &envs, &diag),
	                 DRV_OK);
	e = drv_envs_find(&envs, "prod");
	assert_int_equal(e->approval_at_step, 25);
	assert_false(e->approval_before);
	assert_int_equal(e->approvers, 2);
	e = drv_envs_find(&envs, "both");
	assert_int_equal(e->approval_at_step, 10);
	assert_true(e->approval_before);
	/* the plan's own: at 10% and before */
	assert_int_equal(parse_canary("approval: { at_canary_step: 10%, before: true }\n", &envs,
	                              "prod", &p, &errs),
	                 DRV_OK);
	assert_int_equal(p->approval_at_step, 10);
	assert_true(p->approval_before);
	assert_int_equal(p->approvers, 1);
	/* the normalized plan keeps them (a restart reads it back) */
	j = drv_plan_to_json(p);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "approval"),
	                                                      "at_canary_step")),
	                    "10%");
	json_decref(j);
	drv_plan_free(p);
	p = NULL;
	/* a plain approval stays one before the start */
	assert_int_equal(parse_canary("approval: { approvers: 1 }\n", NULL, NULL, &p, &errs),
	                 DRV_OK);
	assert_true(p->approval_before);
	assert_int_equal(p->approval_at_step, 0);
	drv_plan_free(p);
	p = NULL;
	/* not a step of the canary, the last step, not a percentage */
	assert_int_equal(parse_canary("approval: { at_canary_step: 30% }\n", NULL, NULL, &p, &errs),
	                 DRV_EINVAL);
	assert_true(has_error(&errs, "p.yaml:3: approval.at_canary_step: the plan asks for "
	                             "approval at canary step 30%, which is not a step before the "
	                             "last of service api (steps 10%, 25%, 100%)"));
	drv_plan_errors_free(&errs);
	assert_int_equal(
	        parse_canary("approval: { at_canary_step: 100% }\n", NULL, NULL, &p, &errs),
	        DRV_EINVAL);
	assert_true(has_error(&errs, "p.yaml:3: approval.at_canary_step: must be a canary step "
	                             "before the last, as a percentage such as 25%"));
	drv_plan_errors_free(&errs);
	assert_int_equal(parse_canary("approval: { before: false }\n", NULL, NULL, &p, &errs),
	                 DRV_EINVAL);
	drv_plan_errors_free(&errs);
	/* the environment's step is not one of the plan's canary steps */
	assert_int_equal(parse_canary("", &envs, "odd", &p, &errs), DRV_EINVAL);
	assert_true(has_error(&errs, "p.yaml:6: tiers[0].services[0]: environment odd asks for "
	                             "approval at canary step 50%, which is not a step before the "
	                             "last of service api (steps 10%, 25%, 100%)"));
	drv_plan_errors_free(&errs);
	assert_null(p);
	drv_envs_free(&envs);
	/* droverd.yaml errors */
	assert_int_equal(load_envs("environments:\n"
	                           "  p: { approval: { at_canary_step: 100%, before: 1 } }\n"
	                           "  q: { approval: { before: false } }\n",
	                           &envs, &diag),
	                 DRV_EINVAL);
	assert_int_equal(diag.n, 3);
	assert_non_null(strstr(diag.msg[0],
	                       "droverd.yaml:2: environments.p.approval: "
	                       "at_canary_step must be a canary step before the last"));
	assert_non_null(strstr(diag.msg[1], "before must be true or false"));
	assert_non_null(strstr(diag.msg[2], "droverd.yaml:3: environments.q.approval: before: "
	                                    "false asks for no approval"));
	drv_envs_free(&envs);
}

static int teardown(void **state)
{
	char p[256];

	(void)state;
	snprintf(p, sizeof(p), "%s/staging.secret", dir);
	unlink(p);
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(environment_wins_and_secret_hidden),
	        cmocka_unit_test(plan_errors),
	        cmocka_unit_test(secret_file_must_be_private),
	        cmocka_unit_test(approval_policy),
	        cmocka_unit_test(approval_at_canary_step),
	        cmocka_unit_test(environment_entries),
	};

	if (mkdtemp(dir) == NULL)
		return 1;
	return cmocka_run_group_tests(tests, NULL, teardown);
}
