/*
 * test_analysis.c: Prometheus analysis. The plan's fields and conditions,
 * the filling in of placeholders, the parser of Prometheus' answers and
 * the verdicts, the `prometheus` section of droverd.yaml, and the
 * sequencer running checks at each strategy's checkpoints (simulated
 * time and agents, verdicts scripted).
 */
#include <math.h>
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

#include "alerts_api.h"
#include "err.h"
#include "prom_conf.h"
#include "tokens.h"
#include "prom_query.h"
#include "seq_plans.h"
#include "seq_sim.h"

/* ---- conditions and placeholders ---- */

static void conditions(void **state)
{
	(void)state;
	enum drv_plan_cond c;
	double a = -1, b = -1;
	char buf[64];

	assert_int_equal(drv_plan_cond_parse("< 0.01", &c, &a, &b), DRV_OK);
	assert_int_equal(c, DRV_COND_LT);
	assert_true(drv_plan_cond_holds(c, a, b, 0.005));
	assert_false(drv_plan_cond_holds(c, a, b, 0.01));
	assert_false(drv_plan_cond_holds(c, a, b, NAN));
	assert_int_equal(drv_plan_cond_parse(" >= 0.99 ", &c, &a, &b), DRV_OK);
	assert_int_equal(c, DRV_COND_GE);
	assert_true(drv_plan_cond_holds(c, a, b, 0.99));
	assert_int_equal(drv_plan_cond_parse("between 0.1 and 0.5", &c, &a, &b), DRV_OK);
	assert_int_equal(c, DRV_COND_BETWEEN);
	assert_true(drv_plan_cond_holds(c, a, b, 0.5));
	assert_false(drv_plan_cond_holds(c, a, b, 0.51));
	drv_plan_cond_format(c, a, b, buf, sizeof(buf));
	assert_string_equal(buf, "between 0.1 and 0.5");
	c = DRV_COND_GT;
	assert_int_equal(drv_plan_cond_parse("between 5 and 1", &c, &a, &b), DRV_EINVAL);
	assert_int_equal(drv_plan_cond_parse("= 1", &c, &a, &b), DRV_EINVAL);
	assert_int_equal(drv_plan_cond_parse("< 1 x", &c, &a, &b), DRV_EINVAL);
	assert_int_equal(drv_plan_cond_parse("<", &c, &a, &b), DRV_EINVAL);
	assert_int_equal(drv_plan_cond_parse("< nan", &c, &a, &b), DRV_EINVAL);
	assert_int_equal(drv_plan_cond_parse("betweenx 1 and 2", &c, &a, &b), DRV_EINVAL);
	assert_int_equal(c, DRV_COND_GT); /* untouched on failure */
}

static void placeholders_escaped(void **state)
{
	(void)state;
	const char *hosts[] = {"core-1", "a.b", "x\"y"};
	char *q = drv_plan_query_expand(
	        "rate(e{job=\"{{service}}\",v=\"{{version}}\",instance=~\"{{hosts}}\"}[1m])",
	        "gw\"}) or vector(1) #", "2.4\\0", hosts, 3);

	assert_non_null(q);
	assert_string_equal(q, "rate(e{job=\"gw\\\"}) or vector(1) #\",v=\"2.4\\\\0\","
	                       "instance=~\"core-1|a\\\\.b|x\\\"y\"}[1m])");
	free(q);
	q = drv_plan_query_expand("", "s", "v", NULL, 0);
	assert_non_null(q);
	assert_string_equal(q, "");
	free(q);
}

/* ---- plan fields ---- */

static const char plan_fmt[] = PLAN_HEAD "tiers:\n"
                                         "  - name: core\n"
                                         "    services:\n"
                                         "      - name: gw\n"
                                         "        image: r.example/gw:2\n"
                                         "        hosts: [core-1]\n"
                                         "        command: [/bin/svc]\n"
                                         "        analysis:\n"
                                         "          prometheus:\n"
                                         "            server: main\n"
                                         "            checks:\n"
                                         "              - name: errors\n"
                                         "                query: %s\n"
                                         "                condition: %s\n"
                                         "%s";

static int parse(const char *query, const char *cond, const char *extra, struct drv_plan **p,
                 struct drv_plan_errors *errs)
{
	char text[4096];

	snprintf(text, sizeof(text), plan_fmt, query, cond, extra);
	memset(errs, 0, sizeof(*errs));
	return drv_plan_parse_buffer(text, strlen(text), "p.yaml", p, errs);
}

static bool has_error(const struct drv_plan_errors *e, const char *needle)
{
	for (size_t i = 0; i < e->n; i++)
		if (strstr(e->v[i], needle) != NULL)
			return true;
	for (size_t i = 0; i < e->n; i++)
		fprintf(stderr, "  error: %s\n", e->v[i]);
	return false;
}

static void plan_fields(void **state)
{
	(void)state;
	struct drv_plan *p = NULL, *p2 = NULL;
	struct drv_plan_errors errs;
	const struct drv_plan_check *k;
	json_t *j;

	assert_int_equal(parse("'sum(rate(x[1m]))'", "'> 0.99'",
	                       "                interval: 5s\n"
	                       "                failures: 3\n"
	                       "                on_empty: pass\n"
	                       "                on_error: fail\n",
	                       &p, &errs),
	                 DRV_OK);
	assert_string_equal(p->services[0].analysis.server, "main");
	assert_int_equal(p->services[0].analysis.n_checks, 1);
	k = &p->services[0].analysis.checks[0];
	assert_int_equal(k->cond, DRV_COND_GT);
	assert_int_equal(k->interval_ms, 5000);
	assert_int_equal(k->failures, 3);
	assert_int_equal(k->on_empty, DRV_OUTCOME_PASS);
	assert_int_equal(k->on_error, DRV_OUTCOME_FAIL);
	/* the normalized plan parses back to the same analysis */
	j = drv_plan_to_json(p);
	assert_non_null(j);
	memset(&errs, 0, sizeof(errs));
	assert_int_equal(drv_plan_from_json(j, NULL, "j", &p2, &errs), DRV_OK);
	assert_int_equal(p2->services[0].analysis.checks[0].failures, 3);
	assert_string_equal(p2->services[0].analysis.checks[0].query, "sum(rate(x[1m]))");
	json_decref(j);
	drv_plan_free(p2);
	drv_plan_free(p);
	drv_plan_errors_free(&errs);
}

static void plan_field_errors(void **state)
{
	(void)state;
	struct drv_plan *p = NULL;
	struct drv_plan_errors errs;

	assert_int_equal(parse("up", "'= 3'",
	                       "                failures: 0\n"
	                       "                on_empty: maybe\n"
	                       "                interval: 1ms\n"
	                       "                bogus: 1\n",
	                       &p, &errs),
	                 DRV_EINVAL);
	assert_null(p);
	assert_true(has_error(&errs, "p.yaml:19: tiers[0].services[0].analysis.prometheus."
	                             "checks[0].condition: must be"));
	assert_true(has_error(&errs, "checks[0].failures: must be between 1 and 100"));
	assert_true(has_error(&errs, "checks[0].on_empty"));
	assert_true(has_error(&errs, "checks[0].interval: must be at least 100ms"));
	assert_true(has_error(&errs, "checks[0].bogus"));
	drv_plan_errors_free(&errs);
}

#define BASELINE(regression)                                                                       \
	"            baseline:\n"                                                                  \
	"              - name: p95-latency\n"                                                      \
	"                query: 'lat{job=\"{{service}}\"}'\n"                                      \
	"                unit: ms\n"                                                               \
	"                regression: " regression "\n"                                             \
	"              - name: rps\n"                                                              \
	"                query: 'rps{job=\"{{service}}\"}'\n"                                      \
	"                better: higher\n"

static void plan_baseline(void **state)
{
	(void)state;
	struct drv_plan *p = NULL, *p2 = NULL;
	struct drv_plan_errors errs;
	const struct drv_plan_analysis *an;
	json_t *j;

	assert_int_equal(parse("up", "'< 1'", BASELINE("20%"), &p, &errs), DRV_OK);
	an = &p->services[0].analysis;
	assert_int_equal(an->n_baseline, 2);
	assert_string_equal(an->baseline[0].k.name, "p95-latency");
	assert_string_equal(an->baseline[0].unit, "ms");
	assert_int_equal(an->baseline[0].regression, 20);
	assert_false(an->baseline[0].higher_better);
	assert_true(an->baseline[1].higher_better);
	assert_int_equal(an->baseline[1].regression, 0);
	assert_null(an->baseline[1].unit);
	j = drv_plan_to_json(p);
	assert_non_null(j);
	memset(&errs, 0, sizeof(errs));
	assert_int_equal(drv_plan_from_json(j, NULL, "j", &p2, &errs), DRV_OK);
	an = &p2->services[0].analysis;
	assert_int_equal(an->n_baseline, 2);
	assert_int_equal(an->baseline[0].regression, 20);
	assert_string_equal(an->baseline[0].unit, "ms");
	assert_true(an->baseline[1].higher_better);
	json_decref(j);
	drv_plan_free(p2);
	drv_plan_free(p);
	drv_plan_errors_free(&errs);
	/* key metrics alone (no checks) are an analysis too */
	{
		static const char only[] =
		        PLAN_HEAD "tiers:\n  - name: core\n    services:\n"
		                  "      - name: gw\n        image: r.example/gw:2\n"
		                  "        hosts: [core-1]\n        command: [/bin/svc]\n"
		                  "        analysis:\n          prometheus:\n"
		                  "            server: main\n" BASELINE("5%");
		memset(&errs, 0, sizeof(errs));
		assert_int_equal(drv_plan_parse_buffer(only, strlen(only), "p.yaml", &p, &errs),
		                 DRV_OK);
	}
	assert_int_equal(p->services[0].analysis.n_checks, 0);
	assert_int_equal(p->services[0].analysis.baseline[0].regression, 5);
	drv_plan_free(p);
	drv_plan_errors_free(&errs);
}

static void plan_baseline_errors(void **state)
{
	(void)state;
	struct drv_plan *p = NULL;
	struct drv_plan_errors errs;

	assert_int_equal(
	        parse("up", "'< 1'",
	              "            baseline:\n"
	              "              - { name: a, query: x, regression: 'abc' }\n"
	              "              - { name: a, query: y, regression: '0%' }\n"
	              "              - { query: z, better: sideways, colour: red }\n"
	              "              - { name: u, query: w, unit: 'furlongs per fortnight' }\n",
	              &p, &errs),
	        DRV_EINVAL);
	assert_null(p);
	assert_true(has_error(&errs, "p.yaml:21: tiers[0].services[0].analysis.prometheus."
	                             "baseline[0].regression: must be a share worse"));
	assert_true(has_error(&errs, "baseline[1].regression: must be"));
	assert_true(has_error(&errs, "baseline[1]: the metric name 'a' is used twice"));
	assert_true(has_error(&errs, "baseline[2].name: required"));
	assert_true(has_error(&errs, "baseline[2].better"));
	assert_true(has_error(&errs, "baseline[2].colour"));
	assert_true(has_error(&errs, "baseline[3].unit: at most 16 bytes"));
	drv_plan_errors_free(&errs);
}

static void regression_math(void **state)
{
	(void)state;
	struct drv_plan_metric m = {.regression = 20};
	double ch;

	assert_true(drv_plan_regressed(&m, 130, 100, &ch));
	assert_true(fabs(ch - 30) < 1e-9);
	assert_false(drv_plan_regressed(&m, 119, 100, &ch)); /* within 20 % */
	assert_false(drv_plan_regressed(&m, 50, 100, &ch));  /* better */
	assert_true(fabs(ch + 50) < 1e-9);
	m.higher_better = true;
	assert_true(drv_plan_regressed(&m, 70, 100, &ch)); /* throughput fell 30 % */
	assert_false(drv_plan_regressed(&m, 130, 100, &ch));
	assert_false(drv_plan_regressed(&m, 5, 0, &ch)); /* no share of zero */
	assert_true(isnan(ch));
	assert_false(drv_plan_regressed(&m, NAN, 100, &ch));
	m.regression = 0; /* recorded, never a failure */
	assert_false(drv_plan_regressed(&m, 1000, 1, &ch));
	assert_true(fabs(ch - 99900) < 1e-6);
}

/* ---- Prometheus answers ---- */

static void answers(void **state)
{
	(void)state;
	struct drv_prom_result r;
	char why[200];
	const char *vec = "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
	                  "{\"metric\":{\"instance\":\"a\"},\"value\":[1700000000.1,\"0.02\"]},"
	                  "{\"metric\":{\"instance\":\"b\"},\"value\":[1700000000.1,\"NaN\"]},"
	                  "{\"metric\":{\"instance\":\"c\"},\"value\":[1700000000.1,\"0.005\"]}]}}";
	const char *sc = "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\","
	                 "\"result\":[1700000000,\"7\"]}}";
	const char *err = "{\"status\":\"error\",\"errorType\":\"bad_data\","
	                  "\"error\":\"1:5: parse error: unexpected\"}";
	const char *mat = "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\","
	                  "\"result\":[]}}";

	assert_int_equal(drv_prom_parse(vec, strlen(vec), &r, why, sizeof(why)), DRV_OK);
	assert_int_equal(r.n, 2); /* NaN left out */
	assert_true(r.lo == 0.005 && r.hi == 0.02);
	assert_int_equal(drv_prom_parse(sc, strlen(sc), &r, why, sizeof(why)), DRV_OK);
	assert_int_equal(r.n, 1);
	assert_true(r.first == 7);
	assert_int_equal(drv_prom_parse(err, strlen(err), &r, why, sizeof(why)), DRV_EINVAL);
	assert_non_null(strstr(why, "parse error"));
	assert_int_equal(drv_prom_parse(mat, strlen(mat), &r, why, sizeof(why)), DRV_EINVAL);
	assert_non_null(strstr(why, "matrix"));
	assert_int_equal(drv_prom_parse("{", 1, &r, why, sizeof(why)), DRV_EINVAL);
	assert_int_equal(drv_prom_parse(vec, 40, &r, why, sizeof(why)), DRV_EINVAL);
}

static void verdicts(void **state)
{
	(void)state;
	struct drv_plan_check k = {.name = "e",
	                           .cond = DRV_COND_LT,
	                           .a = 0.01,
	                           .on_empty = DRV_OUTCOME_PASS,
	                           .on_error = DRV_OUTCOME_INCONCLUSIVE};
	struct drv_prom_result r = {.n = 2, .lo = 0.001, .hi = 0.03, .first = 0.001};
	char text[200];
	double v;

	/* the worst series decides */
	assert_int_equal(drv_prom_verdict(&k, DRV_OK, &r, NULL, &v, text, sizeof(text)),
	                 DRV_OUTCOME_FAIL);
	assert_true(v == 0.03);
	assert_non_null(strstr(text, "want < 0.01"));
	r.hi = 0.002;
	assert_int_equal(drv_prom_verdict(&k, DRV_OK, &r, NULL, &v, text, sizeof(text)),
	                 DRV_OUTCOME_PASS);
	r.n = 0;
	assert_int_equal(drv_prom_verdict(&k, DRV_OK, &r, NULL, &v, text, sizeof(text)),
	                 DRV_OUTCOME_PASS);
	assert_int_equal(drv_prom_verdict(&k, DRV_EIO, &r, "refused", &v, text, sizeof(text)),
	                 DRV_OUTCOME_INCONCLUSIVE);
	assert_non_null(strstr(text, "refused"));
}

/* A query to a port nothing listens on: an error, quickly. */
static void unreachable(void **state)
{
	(void)state;
	struct drv_prom_server sv = {
	        .name = "main", .url = "http://127.0.0.1:1", .timeout_ms = 2000};
	struct drv_prom_result r;
	char why[300];

	assert_int_equal(drv_prom_query(&sv, "up", &r, why, sizeof(why)), DRV_EIO);
	assert_non_null(strstr(why, "prometheus main"));
}

/* ---- droverd.yaml ---- */

static void servers_conf(void **state)
{
	(void)state;
	char dir[] = "/tmp/drv-prom-XXXXXX", tok[64], yaml[512];
	struct drv_prom_servers s = {0};
	struct drv_cfg_diag diag = {0};
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(tok, sizeof(tok), "%s/prom.token", dir);
	f = fopen(tok, "w");
	assert_non_null(f);
	fputs("s3cret\n", f);
	fclose(f);
	chmod(tok, 0644);
	snprintf(yaml, sizeof(yaml),
	         "prometheus:\n"
	         "  main:\n"
	         "    url: http://127.0.0.1:9090/\n"
	         "    bearer_token_file: prom.token\n"
	         "    timeout: 2s\n");
	assert_int_equal(drv_prom_servers_parse(yaml, strlen(yaml), "d.yaml", dir, &s, &diag),
	                 DRV_EINVAL);
	assert_true(diag.n >= 1);
	assert_non_null(strstr(diag.msg[0], "d.yaml:4: prometheus.main.bearer_token_file"));
	assert_non_null(strstr(diag.msg[0], "group or others"));
	chmod(tok, 0600);
	memset(&diag, 0, sizeof(diag));
	assert_int_equal(drv_prom_servers_parse(yaml, strlen(yaml), "d.yaml", dir, &s, &diag),
	                 DRV_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.v[0].url, "http://127.0.0.1:9090");
	assert_string_equal(s.v[0].token, "s3cret");
	assert_int_equal(s.v[0].timeout_ms, 2000);
	assert_non_null(drv_prom_server_find(&s, "main"));
	assert_null(drv_prom_server_find(&s, "other"));
	drv_prom_servers_free(&s);
	snprintf(yaml, sizeof(yaml), "prometheus:\n  x:\n    url: ftp://h\n    colour: red\n");
	memset(&diag, 0, sizeof(diag));
	assert_int_equal(drv_prom_servers_parse(yaml, strlen(yaml), "d.yaml", dir, &s, &diag),
	                 DRV_EINVAL);
	assert_int_equal(diag.n, 2);
	/* each entry: its name, a mapping, the url required; the default timeout */
	snprintf(yaml, sizeof(yaml),
	         "prometheus:\n  \"a b\": { url: http://h }\n  c: 5\n  d: { timeout: 2s }\n");
	memset(&diag, 0, sizeof(diag));
	assert_int_equal(drv_prom_servers_parse(yaml, strlen(yaml), "d.yaml", dir, &s, &diag),
	                 DRV_EINVAL);
	assert_int_equal(diag.n, 3);
	assert_string_equal(diag.msg[0], "d.yaml:2: prometheus.a b: a server's name is 1 to 63 of "
	                                 "A-Z a-z 0-9 . _ -");
	assert_string_equal(diag.msg[1], "d.yaml:3: prometheus.c: must be a mapping: url, timeout, "
	                                 "bearer_token_file, ca_file");
	assert_string_equal(diag.msg[2],
	                    "d.yaml:4: prometheus.d: url is required: the server's base URL");
	snprintf(yaml, sizeof(yaml), "prometheus:\n  e: { url: http://h:9090 }\n");
	memset(&diag, 0, sizeof(diag));
	assert_int_equal(drv_prom_servers_parse(yaml, strlen(yaml), "d.yaml", dir, &s, &diag),
	                 DRV_OK);
	assert_string_equal(s.v[0].name, "e");
	assert_int_equal(s.v[0].timeout_ms, 10000);
	drv_prom_servers_free(&s);
	unlink(tok);
	rmdir(dir);
}

/* ---- the sequencer ---- */

#define ANALYSIS(failures)                                                                         \
	"        analysis:\n"                                                                      \
	"          prometheus:\n"                                                                  \
	"            server: main\n"                                                               \
	"            checks:\n"                                                                    \
	"              - name: error-rate\n"                                                       \
	"                query: 'e{job=\"{{service}}\",instance=~\"{{hosts}}\"}'\n"                \
	"                condition: '< 0.01'\n"                                                    \
	"                interval: 20s\n"                                                          \
	"                failures: " failures "\n"

static void canary_checks_pass(void **state)
{
	(void)state;
	struct sim sim;

	sim_init(&sim, plan_canary("5s", ANALYSIS("1")), fleet, false);
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	/* during and after the pause of steps 1-3, after step 4 (no pause) */
	assert_int_equal(sim.n_checks, 7);
	assert_string_equal(sim.last_query, "e{job=\"api-gateway\",instance=~\"core-1|core-2|"
	                                    "core-3|core-4|core-5|core-6|core-7|core-8\"}");
	sim_free(&sim);
}

static void canary_check_fails_rolls_back(void **state)
{
	(void)state;
	static const enum drv_seq_result v[] = {DRV_SEQ_R_OK, DRV_SEQ_R_OK, DRV_SEQ_R_FAILED};
	struct sim sim;
	int64_t t0;

	sim_init(&sim, plan_canary("5s", ANALYSIS("2")), fleet, false);
	sim.verdicts = v;
	sim.n_verdicts = 3;
	sim_start(&sim);
	t0 = sim.now;
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	/* step 1 passes during and after its pause; at step 2 the check fails
	 * during the pause and again after it: two in a row */
	assert_int_equal(sim.n_checks, 4);
	assert_true(sim.now - t0 >= 20000); /* the retry waited for the interval */
	assert_non_null(strstr(drv_seq_error(sim.seq),
	                       "analysis check error-rate failed 2 time(s) in a row"));
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 2);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, NULL), 2);
	sim_free(&sim);
}

static void failure_then_pass_goes_on(void **state)
{
	(void)state;
	static const enum drv_seq_result v[] = {DRV_SEQ_R_FAILED, DRV_SEQ_R_FAILED, DRV_SEQ_R_OK};
	struct sim sim;

	sim_init(&sim, plan_canary("5s", ANALYSIS("3")), fleet, false);
	sim.verdicts = v;
	sim.n_verdicts = 3;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	/* F during step 1's pause, F and pass after it; steps 2-3 during and
	 * after their pauses, step 4 after */
	assert_int_equal(sim.n_checks, 8);
	sim_free(&sim);
	/* the retry state survives a restart at every transition (a resumed
	 * check is asked again: the script's verdicts are used up faster) */
	sim_init(&sim, plan_canary("5s", ANALYSIS("3")), fleet, false);
	sim.verdicts = v;
	sim.n_verdicts = 3;
	sim.restart = true;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_true(sim.restarts > 0);
	sim_free(&sim);
}

static void inconclusive_waits_for_operator(void **state)
{
	(void)state;
	static const enum drv_seq_result v[] = {DRV_SEQ_R_INCONCLUSIVE, DRV_SEQ_R_OK};
	struct sim sim;
	char *st;

	sim_init(&sim, plan_canary("5s", ANALYSIS("1")), fleet, false);
	sim.verdicts = v;
	sim.n_verdicts = 2;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_TIERS);
	assert_int_equal(sim.n_checks, 1);
	assert_int_equal(sim.notify[DRV_EVENT_AWAITING_PROMOTION], 1);
	st = sim_status_text(&sim);
	assert_non_null(strstr(st, "\"waiting\": \"promote\""));
	assert_non_null(strstr(st, "\"inconclusive\": true"));
	free(st);
	sim_advance(&sim, 3600 * 1000); /* nothing moves on its own */
	assert_int_equal(sim.n_checks, 1);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_PROMOTE, NULL), DRV_OK);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_int_equal(sim.n_checks, 7);
	sim_free(&sim);
}

static void rolling_checks_each_batch(void **state)
{
	(void)state;
	char text[4096];
	struct sim sim;

	snprintf(text, sizeof(text), "%s%s", plan_rolling, ANALYSIS("1"));
	sim_init(&sim, text, fleet, false);
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_int_equal(sim.n_checks, 4); /* 8 hosts, 25% a batch */
	sim_free(&sim);
}

static void bluegreen_fails_after_switch(void **state)
{
	(void)state;
	static const enum drv_seq_result v[] = {DRV_SEQ_R_OK, DRV_SEQ_R_FAILED};
	char text[4096];
	struct sim sim;
	const char *post = strstr(plan_bluegreen, "post:");

	snprintf(text, sizeof(text), "%.*s%s%s", (int)(post - plan_bluegreen), plan_bluegreen,
	         ANALYSIS("1"), post);
	sim_init(&sim, text, fleet, false);
	sim.verdicts = v;
	sim.n_verdicts = 2;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim.n_checks, 2);  /* before and after the switch */
	assert_int_equal(sim.n_traffic, 2); /* switched, then back */
	sim_free(&sim);
}

static void pause_check_fails_before_pause_ends(void **state)
{
	(void)state;
	static const enum drv_seq_result v[] = {DRV_SEQ_R_FAILED};
	struct sim sim;
	int64_t t0;

	sim_init(&sim, plan_canary("10m", ANALYSIS("1")), fleet, false);
	sim.verdicts = v;
	sim.n_verdicts = 1;
	sim_start(&sim);
	t0 = sim.now;
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim.n_checks, 1);
	assert_true(sim.now - t0 < 60000); /* not 10 minutes later */
	assert_non_null(strstr(drv_seq_error(sim.seq), "analysis check error-rate failed"));
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 1);
	sim_free(&sim);
}

static void pause_checks_in_rounds(void **state)
{
	(void)state;
	struct sim sim;
	int64_t t0;

	/* a 1 m pause, a check every 20 s: rounds at 0, 20, 40 s, then after */
	sim_init(&sim, plan_canary("1m", ANALYSIS("1")), fleet, false);
	sim_start(&sim);
	t0 = sim.now;
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_true(sim.now - t0 >= 3 * 60000);
	assert_in_range(sim.n_checks, 3 * 4 + 1, 3 * 5 + 1);
	sim_free(&sim);
	/* promote cuts the pause short, checks and all */
	sim_init(&sim, plan_canary("1h", ANALYSIS("1")), fleet, false);
	sim_start(&sim);
	sim_advance(&sim, 30000);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_PROMOTE, NULL), DRV_OK);
	sim_advance(&sim, 1000);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 2);
	sim_free(&sim);
}

static void baseline_recorded_at_the_end(void **state)
{
	(void)state;
	char text[8300];
	struct sim sim;

	snprintf(text, sizeof(text), "%s", plan_canary("5s", ANALYSIS("1") BASELINE("20%")));
	sim_init(&sim, text, fleet, false);
	sim.restart = true;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_true(sim.n_checks >= 7 + 2); /* the canary's, then each key metric once */
	assert_string_equal(sim.last_query, "rps{job=\"api-gateway\"}");
	sim_free(&sim);
}

static void baseline_regression_rolls_back(void **state)
{
	(void)state;
	static const enum drv_seq_result v[] = {DRV_SEQ_R_OK, DRV_SEQ_R_OK,    DRV_SEQ_R_OK,
	                                        DRV_SEQ_R_OK, DRV_SEQ_R_OK,    DRV_SEQ_R_OK,
	                                        DRV_SEQ_R_OK, DRV_SEQ_R_FAILED};
	struct sim sim;

	sim_init(&sim, plan_canary("5s", ANALYSIS("1") BASELINE("20%")), fleet, false);
	sim.verdicts = v;
	sim.n_verdicts = 8;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim.n_checks, 8);
	assert_non_null(strstr(drv_seq_error(sim.seq), "analysis check p95-latency failed"));
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, NULL), 8);
	sim_free(&sim);
}

static void baseline_in_bake_rounds(void **state)
{
	(void)state;
	static char text[8300];
	struct sim sim;

	snprintf(text, sizeof(text), "bake: 1m\n%s",
	         plan_canary("5s", ANALYSIS("1") BASELINE("20%")));
	sim_init(&sim, text, fleet, false);
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	/* 7 in the canary; bake rounds of 3 (the check and two metrics); 2 at the end */
	assert_in_range(sim.n_checks, 7 + 3 * 3 + 2, 7 + 5 * 3 + 2);
	sim_free(&sim);
}

/* ---- bake ---- */

static const char *bake_plan(void)
{
	static char text[8300];

	snprintf(text, sizeof(text), "bake: 1m\n%s", plan_canary("5s", ANALYSIS("2")));
	return text;
}

static void bake_passes(void **state)
{
	(void)state;
	struct sim sim;
	int64_t t0;

	sim_init(&sim, bake_plan(), fleet, false);
	sim_start(&sim);
	t0 = sim.now;
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_true(sim.now - t0 >= 60000);
	/* 7 in the canary, then rounds every 20 s during the 1 m bake */
	assert_in_range(sim.n_checks, 7 + 3, 7 + 5);
	sim_free(&sim);
}

static void bake_failure_rolls_back(void **state)
{
	(void)state;
	static const enum drv_seq_result v[] = {
	        DRV_SEQ_R_OK, DRV_SEQ_R_OK, DRV_SEQ_R_OK, DRV_SEQ_R_OK,     DRV_SEQ_R_OK,
	        DRV_SEQ_R_OK, DRV_SEQ_R_OK, DRV_SEQ_R_OK, DRV_SEQ_R_FAILED, DRV_SEQ_R_FAILED};
	struct sim sim;
	char *st;

	sim_init(&sim, bake_plan(), fleet, false);
	sim.verdicts = v;
	sim.n_verdicts = 10;
	sim.restart = false;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim.n_checks, 10);
	assert_non_null(strstr(drv_seq_error(sim.seq), "failed 2 time(s) in a row"));
	/* every host back: the service was done, then rolled back by its policy */
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, NULL), 8);
	st = sim_status_text(&sim);
	assert_null(strstr(st, "bake_until"));
	free(st);
	sim_free(&sim);
}

static void bake_survives_restarts(void **state)
{
	(void)state;
	struct sim sim;

	sim_init(&sim, bake_plan(), fleet, false);
	sim.restart = true;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_true(sim.restarts > 0);
	sim_free(&sim);
}

/* ---- alerts ---- */

static const char alerts_plan[] =
        PLAN_HEAD "tiers:\n"
                  "  - name: core\n"
                  "    services:\n"
                  "      - name: api-gateway\n"
                  "        image: r.example/gw:2.4.0\n"
                  "        hosts: { labels: { tier: core } }\n"
                  "        command: [/bin/svc]\n"
                  "        strategy: { type: canary, steps: [25%, 100%], pause: 1m }\n"
                  "        alert_precheck: true\n"
                  "        rollback_on_alerts:\n"
                  "          - { alertname: HighErrorRate, service: \"{{service}}\" }\n"
                  "          - { alertname: Down, version: \"v-{{version}}\" }\n";

static void alert_rules(void **state)
{
	(void)state;
	struct drv_plan *p = NULL;
	struct drv_plan_errors errs = {0};
	json_t *l1 = json_pack("{ssssss}", "alertname", "HighErrorRate", "service", "api-gateway",
	                       "severity", "page");
	json_t *l2 = json_pack("{ssss}", "alertname", "HighErrorRate", "service", "web");
	json_t *l3 = json_pack("{ssss}", "alertname", "Down", "version", "v-2.4.0");
	char bad[2048];

	assert_int_equal(
	        drv_plan_parse_buffer(alerts_plan, strlen(alerts_plan), "a.yaml", &p, &errs),
	        DRV_OK);
	assert_true(p->services[0].alert_precheck);
	assert_int_equal(p->services[0].n_alert_rules, 2);
	assert_int_equal(drv_plan_alert_match(&p->services[0], l1), 0);
	assert_int_equal(drv_plan_alert_match(&p->services[0], l2), -1);
	assert_int_equal(drv_plan_alert_match(&p->services[0], l3), 1);
	drv_plan_free(p);
	json_decref(l1);
	json_decref(l2);
	json_decref(l3);
	snprintf(bad, sizeof(bad), "%s          - { 9bad: x }\n          - []\n", alerts_plan);
	p = NULL;
	assert_int_equal(drv_plan_parse_buffer(bad, strlen(bad), "a.yaml", &p, &errs), DRV_EINVAL);
	assert_true(has_error(&errs, "a.yaml:18: tiers[0].services[0].rollback_on_alerts[2].9bad"));
	assert_true(has_error(&errs, "rollback_on_alerts[3]: must be a mapping"));
	drv_plan_errors_free(&errs);
}

static void alert_fails_service(void **state)
{
	(void)state;
	struct drv_seq_event ev = {.kind = DRV_SEQ_EV_FAIL,
	                           .service = "api-gateway",
	                           .message = "alert HighErrorRate fired"};
	struct sim sim;

	sim_init(&sim, alerts_plan, fleet, false);
	sim_start(&sim);
	sim_advance(&sim, 30000); /* in the first step's pause */
	assert_int_equal(drv_seq_state(sim.seq), DRV_SEQ_TIERS);
	assert_int_equal(sim_event(&sim, &ev), DRV_OK);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_non_null(strstr(drv_seq_error(sim.seq), "alert HighErrorRate fired"));
	ev.service = "nope";
	assert_int_equal(sim_event(&sim, &ev), DRV_EINVAL);
	ev.service = "api-gateway";
	assert_int_equal(sim_event(&sim, &ev), DRV_ESTATE); /* ended */
	sim_free(&sim);
}

static void alert_payloads(void **state)
{
	(void)state;
	static const char *const bad[] = {
	        "[]",
	        "{\"alerts\": {}}",
	        "{\"alerts\": [1]}",
	        "{\"alerts\": [{\"status\": \"firing\"}]}",
	        "{\"alerts\": [{\"status\": \"pending\", \"labels\": {}}]}",
	        "{\"alerts\": [{\"status\": \"firing\", \"labels\": {\"a\": 1}}]}",
	};
	/* Alertmanager's documented webhook payload (version 4) */
	const char *good =
	        "{\"version\": \"4\", \"groupKey\": \"{}:{alertname=\\\"X\\\"}\","
	        " \"truncatedAlerts\": 0, \"status\": \"firing\", \"receiver\": \"drover\","
	        " \"groupLabels\": {\"alertname\": \"X\"}, \"commonLabels\": {},"
	        " \"commonAnnotations\": {}, \"externalURL\": \"http://am:9093\","
	        " \"alerts\": [{\"status\": \"firing\", \"labels\": {\"alertname\": \"X\"},"
	        " \"annotations\": {}, \"startsAt\": \"2026-12-01T00:00:00Z\","
	        " \"endsAt\": \"0001-01-01T00:00:00Z\", \"generatorURL\": \"\","
	        " \"fingerprint\": \"c0ffee\"}]}";
	char why[200];
	json_t *j;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = json_loads(bad[i], 0, NULL);
		assert_non_null(j);
		assert_int_equal(alerts_api_check(j, why, sizeof(why)), DRV_EINVAL);
		json_decref(j);
	}
	j = json_loads(good, 0, NULL);
	assert_non_null(j);
	assert_int_equal(alerts_api_check(j, why, sizeof(why)), DRV_OK);
	json_decref(j);
}

static void alerts_role(void **state)
{
	(void)state;
	enum drv_role r;

	assert_int_equal(drv_role_parse("alerts", &r), DRV_OK);
	assert_int_equal(r, DRV_ROLE_ALERTS);
	assert_true(drv_role_allows(DRV_ROLE_ALERTS, DRV_ROLE_ALERTS));
	assert_true(drv_role_allows(DRV_ROLE_ADMIN, DRV_ROLE_ALERTS));
	assert_false(drv_role_allows(DRV_ROLE_DEPLOYER, DRV_ROLE_ALERTS));
	assert_false(drv_role_allows(DRV_ROLE_ALERTS, DRV_ROLE_VIEWER));
	assert_false(drv_role_allows(DRV_ROLE_ALERTS, DRV_ROLE_ADMIN));
	assert_true(drv_role_allows(DRV_ROLE_ALERTS, DRV_ROLE_NONE));
	assert_true(drv_role_allows(DRV_ROLE_ADMIN, DRV_ROLE_VIEWER));
}

int main(void)
{
	(void)plan_two_tiers; /* seq_plans.h's other plans */
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(conditions),
	        cmocka_unit_test(placeholders_escaped),
	        cmocka_unit_test(plan_fields),
	        cmocka_unit_test(plan_field_errors),
	        cmocka_unit_test(answers),
	        cmocka_unit_test(verdicts),
	        cmocka_unit_test(unreachable),
	        cmocka_unit_test(servers_conf),
	        cmocka_unit_test(canary_checks_pass),
	        cmocka_unit_test(canary_check_fails_rolls_back),
	        cmocka_unit_test(failure_then_pass_goes_on),
	        cmocka_unit_test(inconclusive_waits_for_operator),
	        cmocka_unit_test(rolling_checks_each_batch),
	        cmocka_unit_test(bluegreen_fails_after_switch),
	        cmocka_unit_test(bake_passes),
	        cmocka_unit_test(bake_failure_rolls_back),
	        cmocka_unit_test(bake_survives_restarts),
	        cmocka_unit_test(alert_rules),
	        cmocka_unit_test(alert_fails_service),
	        cmocka_unit_test(alert_payloads),
	        cmocka_unit_test(alerts_role),
	        cmocka_unit_test(plan_baseline),
	        cmocka_unit_test(plan_baseline_errors),
	        cmocka_unit_test(regression_math),
	        cmocka_unit_test(pause_check_fails_before_pause_ends),
	        cmocka_unit_test(pause_checks_in_rounds),
	        cmocka_unit_test(baseline_recorded_at_the_end),
	        cmocka_unit_test(baseline_regression_rolls_back),
	        cmocka_unit_test(baseline_in_bake_rounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
