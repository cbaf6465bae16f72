/* test_deploy_store.c: the deployments table, its transactions and queries;
 * and the core's merge of reported releases into an agent's row. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqldb.h"
#include "deploy_baseline.h"
#include "deploy_int.h"
#include "deploy_live.h"
#include "deploy_store.h"
#include "err.h"
#include "store_target.h"
#include "events.h"
#include "keys.h"
#include "schema.h"
#include "store.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
	const struct drv_sql_migration *mig;
	struct drv_sql *db;
	size_t n;

	snprintf(dir, sizeof(dir), "/tmp/drv-dstore-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	if (store_target(path, sizeof(path), dir, "t.db") != 0)
		return -1;
	mig = drv_schema_migrations(&n);
	if (drv_sql_open(path, mig, n, &db) != DRV_OK)
		return -1;
	*state = db;
	return 0;
}

static int teardown(void **state)
{
	char cmd[160];

	drv_sql_close(*state);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void fill(struct deploy_row *r, struct drv_sql *db, const char *name)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(deploy_store_new_id(db, r->id), DRV_OK);
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->version, sizeof(r->version), "1.0");
	snprintf(r->actor, sizeof(r->actor), "ci");
	snprintf(r->state, sizeof(r->state), "pending");
	snprintf(r->phase, sizeof(r->phase), "prestage");
	r->plan = "{\"deployment\":\"x\"}";
	r->extra = "{\"targets\":{}}";
	r->created_ms = r->updated_ms = 1000;
}

static void ids(void **state)
{
	struct drv_sql *db = *state;
	char a[DRV_SEQ_ID_MAX + 1], b[DRV_SEQ_ID_MAX + 1];

	assert_int_equal(deploy_store_new_id(db, a), DRV_OK);
	assert_int_equal(deploy_store_new_id(db, b), DRV_OK);
	assert_int_equal(strncmp(a, "dep-1-", 6), 0);
	assert_int_equal(strlen(a), 12);
	assert_string_not_equal(a, b); /* same N before an insert, another suffix */
}

static int count_events(struct drv_sql *db, const char *dep, const char *kind)
{
	struct drv_sql_stmt *st;
	int n = -1;

	assert_int_equal(drv_sql_prepare(db,
	                                 "SELECT count(*) FROM events WHERE deployment_id = ?"
	                                 " AND kind = ?",
	                                 &st),
	                 DRV_OK);
	drv_sql_bind_text(st, 1, dep);
	drv_sql_bind_text(st, 2, kind);
	if (drv_sql_step(st) == DRV_SQL_ROW)
		n = drv_sql_col_int64(st, 0);
	drv_sql_finalize(st);
	return n;
}

static void insert_save_get(void **state)
{
	struct drv_sql *db = *state;
	struct deploy_row r, got;
	json_t *ev = json_pack("[{s:s, s:{s:s}}]", "kind", "deployment_created", "data", "x", "y");

	fill(&r, db, "berrys");
	assert_int_equal(deploy_store_insert(db, &r, ev), DRV_OK);
	assert_int_equal(count_events(db, r.id, "deployment_created"), 1);
	assert_int_not_equal(deploy_store_insert(db, &r, NULL), DRV_OK); /* the id is taken */

	r.plan = NULL;
	r.seq_state = "{\"v\":1}";
	r.extra = "{\"hosts\":{}}";
	snprintf(r.state, sizeof(r.state), "succeeded");
	snprintf(r.phase, sizeof(r.phase), "done");
	r.view = "{\"id\":\"x\"}";
	r.finished_ms = r.updated_ms = 2000;
	json_decref(ev);
	ev = json_pack("[{s:s, s:s, s:{}}, {s:s, s:{}}]", "kind", "host", "agent", "core-1", "data",
	               "kind", "succeeded", "data");
	assert_int_equal(deploy_store_save(db, &r, ev), DRV_OK);
	json_decref(ev);
	assert_int_equal(count_events(db, r.id, "host"), 1);

	assert_int_equal(deploy_store_get(db, r.id, &got), DRV_OK);
	assert_string_equal(got.state, "succeeded");
	assert_string_equal(got.seq_state, "{\"v\":1}");
	assert_string_equal(got.extra, "{\"hosts\":{}}");
	assert_string_equal(got.view, "{\"id\":\"x\"}");
	assert_string_equal(got.plan, "{\"deployment\":\"x\"}");
	assert_int_equal(got.finished_ms, 2000);
	deploy_row_clear(&got);
	assert_int_equal(deploy_store_get(db, "dep-9-000000", &got), DRV_ENOENT);

	snprintf(r.id, sizeof(r.id), "dep-9-000000"); /* no such row: nothing saved */
	assert_int_equal(deploy_store_save(db, &r, NULL), DRV_ENOENT);
}

/* A failing event insert rolls the whole transition back. */
static void save_is_atomic(void **state)
{
	struct drv_sql *db = *state;
	struct deploy_row r, got;
	json_t *bad = json_pack("[{s:s, s:{}}]", "kind", "Bad Kind!", "data");

	fill(&r, db, "atomic");
	assert_int_equal(deploy_store_insert(db, &r, NULL), DRV_OK);
	snprintf(r.state, sizeof(r.state), "running");
	r.plan = NULL;
	assert_int_not_equal(deploy_store_save(db, &r, bad), DRV_OK);
	json_decref(bad);
	assert_int_equal(deploy_store_get(db, r.id, &got), DRV_OK);
	assert_string_equal(got.state, "pending");
	deploy_row_clear(&got);
}

static int collect(void *arg, struct deploy_row *r)
{
	json_array_append_new(arg, json_string(r->id));
	return DRV_OK;
}

/* A deployment row in state st, its id in out. */
static void dep_in(struct drv_sql *db, const char *st, char out[DRV_SEQ_ID_MAX + 1])
{
	struct deploy_row r;

	fill(&r, db, "berrys");
	snprintf(r.state, sizeof(r.state), "%s", st);
	assert_int_equal(deploy_store_insert(db, &r, NULL), DRV_OK);
	memcpy(out, r.id, DRV_SEQ_ID_MAX + 1);
}

/* A lifecycle accepts a release in the next environment only once a
 * deployment of it succeeded in the one before: failed, rolled back, still
 * running or succeeded elsewhere does not count. */
static void release_succeeded_only(void **state)
{
	struct drv_sql *db = *state;
	static const char *const cases[][2] = {
	        {"staging", "failed"}, {"staging", "rolled_back"}, {"staging", "running"},
	        {"dev", "succeeded"},  {"staging", "aborted"},
	};
	char seen[DRV_SEQ_ID_MAX + 1] = "", ok_id[DRV_SEQ_ID_MAX + 1];
	struct deploy_row r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fill(&r, db, "web");
		snprintf(r.environment, sizeof(r.environment), "%s", cases[i][0]);
		snprintf(r.release_id, sizeof(r.release_id), "rel-00000000000000aa");
		snprintf(r.state, sizeof(r.state), "%s", cases[i][1]);
		assert_int_equal(deploy_store_insert(db, &r, NULL), DRV_OK);
	}
	assert_int_equal(
	        deploy_store_release_succeeded(db, "staging", "rel-00000000000000aa", seen),
	        DRV_ENOENT);
	fill(&r, db, "web"); /* another release succeeded in staging */
	snprintf(r.environment, sizeof(r.environment), "staging");
	snprintf(r.release_id, sizeof(r.release_id), "rel-00000000000000bb");
	snprintf(r.state, sizeof(r.state), "succeeded");
	assert_int_equal(deploy_store_insert(db, &r, NULL), DRV_OK);
	assert_int_equal(
	        deploy_store_release_succeeded(db, "staging", "rel-00000000000000aa", seen),
	        DRV_ENOENT);
	fill(&r, db, "web");
	snprintf(r.environment, sizeof(r.environment), "staging");
	snprintf(r.release_id, sizeof(r.release_id), "rel-00000000000000aa");
	snprintf(r.state, sizeof(r.state), "succeeded");
	assert_int_equal(deploy_store_insert(db, &r, NULL), DRV_OK);
	memcpy(ok_id, r.id, sizeof(ok_id));
	assert_int_equal(
	        deploy_store_release_succeeded(db, "staging", "rel-00000000000000aa", seen),
	        DRV_OK);
	assert_string_equal(seen, ok_id);
}

static json_t *one_metric(const char *svc, const char *version, double v)
{
	json_t *o = json_pack("{s:{s:s, s:s, s:s, s:s, s:s}}", "x/p95", "service", svc, "metric",
	                      "p95", "version", version, "unit", "ms", "query", "q");

	if (!isnan(v))
		json_object_set_new(json_object_get(o, "x/p95"), "value", json_real(v));
	return o;
}

/* The previous release's value: the latest recorded by a deployment that
 * succeeded, in the same environment, never the deployment itself. */
static void baselines(void **state)
{
	struct drv_sql *db = *state;
	char a[DRV_SEQ_ID_MAX + 1], b[DRV_SEQ_ID_MAX + 1], c[DRV_SEQ_ID_MAX + 1],
	        d[DRV_SEQ_ID_MAX + 1];
	struct deploy_prev p;
	json_t *v;

	dep_in(db, "succeeded", a);
	dep_in(db, "rolled_back", b); /* rows of a deployment that did not succeed */
	dep_in(db, "succeeded", c);   /* a later one with no data */
	dep_in(db, "running", d);
	assert_int_equal(deploy_baseline_previous(db, NULL, "gw", "p95", d, &p), DRV_ENOENT);
	v = one_metric("gw", "2.0", 118);
	assert_int_equal(deploy_baseline_record(db, a, NULL, v, 1000), DRV_OK);
	assert_int_equal(deploy_baseline_record(db, a, NULL, v, 1000),
	                 DRV_OK); /* again: replaced */
	json_decref(v);
	v = one_metric("gw", "2.1", 500);
	assert_int_equal(deploy_baseline_record(db, b, NULL, v, 2000), DRV_OK);
	json_decref(v);
	v = one_metric("gw", "2.2", NAN);
	assert_int_equal(deploy_baseline_record(db, c, NULL, v, 3000), DRV_OK);
	json_decref(v);
	assert_int_equal(deploy_baseline_previous(db, NULL, "gw", "p95", d, &p), DRV_OK);
	assert_string_equal(p.deployment, a);
	assert_string_equal(p.version, "2.0");
	assert_true(p.value == 118);
	assert_int_equal(deploy_baseline_previous(db, NULL, "gw", "p95", a, &p), DRV_ENOENT);
	assert_int_equal(deploy_baseline_previous(db, "prod", "gw", "p95", d, &p), DRV_ENOENT);
	assert_int_equal(deploy_baseline_previous(db, NULL, "other", "p95", d, &p), DRV_ENOENT);
	/* recording again replaces what the deployment recorded */
	v = one_metric("gw", "2.0", 120);
	assert_int_equal(deploy_baseline_record(db, a, "prod", v, 1000), DRV_OK);
	json_decref(v);
	assert_int_equal(deploy_baseline_previous(db, NULL, "gw", "p95", d, &p), DRV_ENOENT);
	assert_int_equal(deploy_baseline_previous(db, "prod", "gw", "p95", d, &p), DRV_OK);
	assert_true(p.value == 120);
}

/* Blue-green across sets: the live set per environment and service,
 * replaced by the next switch (deploy_live.h). */
static void live_sets(void **state)
{
	struct drv_sql *db = *state;
	struct deploy_live lv;

	assert_int_equal(deploy_live_get(db, NULL, "web", &lv), DRV_ENOENT);
	assert_int_equal(deploy_live_put(db, NULL, "web", "a", "dep-1-x", 1000), DRV_OK);
	assert_int_equal(deploy_live_put(db, "prod", "web", "b", "dep-2-x", 2000), DRV_OK);
	assert_int_equal(deploy_live_get(db, NULL, "web", &lv), DRV_OK);
	assert_string_equal(lv.set, "a");
	assert_string_equal(lv.deployment, "dep-1-x");
	assert_int_equal(lv.updated_ms, 1000);
	assert_int_equal(deploy_live_put(db, "", "web", "b", "dep-3-x", 3000), DRV_OK);
	assert_int_equal(deploy_live_get(db, "", "web", &lv), DRV_OK);
	assert_string_equal(lv.set, "b");
	assert_string_equal(lv.deployment, "dep-3-x");
	assert_int_equal(deploy_live_get(db, "prod", "web", &lv), DRV_OK);
	assert_string_equal(lv.deployment, "dep-2-x");
	assert_int_equal(deploy_live_get(db, "prod", "api", &lv), DRV_ENOENT);
}

static void count_cb(void *arg, const char *state, int64_t n)
{
	json_object_set_new(arg, state, json_integer(n));
}

static void active_list_counts(void **state)
{
	struct drv_sql *db = *state;
	struct deploy_row a, b;
	json_t *ids = json_array(), *list, *counts = json_object();

	fill(&a, db, "one");
	assert_int_equal(deploy_store_insert(db, &a, NULL), DRV_OK);
	fill(&b, db, "two");
	assert_int_equal(deploy_store_insert(db, &b, NULL), DRV_OK);
	b.plan = NULL;
	snprintf(b.state, sizeof(b.state), "failed");
	b.finished_ms = 5000;
	assert_int_equal(deploy_store_save(db, &b, NULL), DRV_OK);

	assert_int_equal(deploy_store_active(db, collect, ids), DRV_OK);
	assert_int_equal(json_array_size(ids), 1);
	assert_string_equal(json_string_value(json_array_get(ids, 0)), a.id);

	assert_int_equal(deploy_store_list(db, 10, &list), DRV_OK);
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")),
	                    b.id);
	assert_string_equal(
	        json_string_value(json_object_get(json_array_get(list, 0), "deployment")), "two");
	json_decref(list);
	assert_int_equal(deploy_store_list(db, 1, &list), DRV_OK);
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);

	assert_int_equal(deploy_store_counts(db, count_cb, counts), DRV_OK);
	assert_int_equal(json_integer_value(json_object_get(counts, "pending")), 1);
	assert_int_equal(json_integer_value(json_object_get(counts, "failed")), 1);
	json_decref(counts);
	json_decref(ids);
}

static void report_cb(void *arg, const char *agent, json_t *data)
{
	json_array_append_new(arg, json_pack("{s:s, s:O}", "agent", agent, "data", data));
}

static void reports(void **state)
{
	struct drv_sql *db = *state;
	json_t *got = json_array(),
	       *d1 = json_pack("{s:s, s:s}", "step_id", "dep-1-a:start:0:0", "result", "succeeded");

	assert_int_equal(drv_events_insert(db, "report", "dep-1-a", "core-1", d1, NULL), DRV_OK);
	assert_int_equal(drv_events_insert(db, "report", "dep-2-b", "core-1", d1, NULL), DRV_OK);
	assert_int_equal(drv_events_insert(db, "host", "dep-1-a", "core-1", d1, NULL), DRV_OK);
	assert_int_equal(deploy_store_reports(db, "dep-1-a", report_cb, got), DRV_OK);
	assert_int_equal(json_array_size(got), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(got, 0), "agent")),
	                    "core-1");
	json_decref(d1);
	json_decref(got);
}

/* store_agent_merge_releases: one service's releases replaced, others kept. */
static void merge_releases(void **state)
{
	struct store *s;
	struct drv_keypair kp;
	struct store_agent a = {0};
	struct store_hello h = {"{}", "{}",
	                        "[{\"service\":\"web\",\"version\":\"1\"},"
	                        "{\"service\":\"db\",\"version\":\"7\"}]",
	                        "0.1.0"};
	struct drv_sql_stmt *st;
	json_t *rel;

	(void)state;
	assert_int_equal(store_open(path, &s), DRV_OK);
	assert_int_equal(drv_keypair_generate(&kp), DRV_OK);
	snprintf(a.id, sizeof(a.id), "core-1");
	assert_int_equal(drv_pubkey_from_raw(kp.pk, DRV_PK_LEN, &a.key), DRV_OK);
	a.status = AGENT_ACCEPTED;
	a.next_seq = 1;
	assert_int_equal(store_agent_create(s, &a, &h), DRV_OK);
	assert_int_equal(store_agent_merge_releases(
	                         s, "core-1", "web",
	                         "[{\"service\":\"web\",\"version\":\"2\",\"slot\":\"\"}]"),
	                 DRV_OK);
	assert_int_equal(store_agent_merge_releases(s, "core-1", "web", "not json"), DRV_OK);
	assert_int_equal(drv_sql_prepare(store_db(s), "SELECT releases FROM agents", &st), DRV_OK);
	assert_int_equal(drv_sql_step(st), DRV_SQL_ROW);
	rel = json_loads(drv_sql_col_text(st, 0), 0, NULL);
	drv_sql_finalize(st);
	assert_non_null(rel);
	assert_int_equal(json_array_size(rel), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rel, 0), "service")),
	                    "db");
	assert_string_equal(json_string_value(json_object_get(json_array_get(rel, 1), "version")),
	                    "2");
	json_decref(rel);
	drv_keypair_wipe(&kp);
	store_close(s);
}

/* The saved extra: the targets dumped once and spliced in front of the rest
 * must read back as the object itself, before and after the rest changes,
 * with nothing but targets, and when targets is replaced. */
static void extra_text(void **state)
{
	struct dep d;
	json_t *back, *t2;
	char *text;

	(void)state;
	memset(&d, 0, sizeof(d));
	d.extra = json_pack("{s:{s:[{s:s, s:b}]}, s:{}, s:{}}", "targets", "services", "agent",
	                    "a-1", "prev", 0, "hosts", "hooks");
	for (int round = 0; round < 4; round++) {
		if (round == 1)
			json_object_set_new(json_object_get(d.extra, "hosts"), "web/a-1",
			                    json_pack("{s:s}", "state", "running \"x\""));
		if (round == 2) {
			json_object_del(d.extra, "hosts");
			json_object_del(d.extra, "hooks");
		}
		if (round == 3) {
			t2 = json_pack("{s:[]}", "services");
			json_object_set_new(d.extra, "targets", t2);
			json_object_set_new(d.extra, "gate", json_pack("{s:i}", "n", 1));
		}
		text = deploy_run_dump_extra(&d);
		assert_non_null(text);
		back = json_loads(text, 0, NULL);
		assert_non_null(back);
		assert_true(json_equal(back, d.extra));
		json_decref(back);
		free(text);
	}
	json_decref(d.extra);
	free(d.targets_text);
	/* no targets at all: the plain dump */
	memset(&d, 0, sizeof(d));
	d.extra = json_pack("{s:i}", "x", 1);
	text = deploy_run_dump_extra(&d);
	assert_string_equal(text, "{\"x\":1}");
	free(text);
	json_decref(d.extra);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(ids, setup, teardown),
	        cmocka_unit_test_setup_teardown(insert_save_get, setup, teardown),
	        cmocka_unit_test_setup_teardown(save_is_atomic, setup, teardown),
	        cmocka_unit_test_setup_teardown(active_list_counts, setup, teardown),
	        cmocka_unit_test_setup_teardown(reports, setup, teardown),
	        cmocka_unit_test_setup_teardown(merge_releases, setup, teardown),
	        cmocka_unit_test_setup_teardown(release_succeeded_only, setup, teardown),
	        cmocka_unit_test_setup_teardown(baselines, setup, teardown),
	        cmocka_unit_test(extra_text),
	        cmocka_unit_test_setup_teardown(live_sets, setup, teardown),
	};

	if (drv_crypto_init() != DRV_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
