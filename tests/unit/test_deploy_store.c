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
#include "seq_sim.h"
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
	assert_int_equal(deploy_store_save(db, &r, NULL, NULL, ev), DRV_OK);
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
	assert_int_equal(deploy_store_save(db, &r, NULL, NULL, NULL), DRV_ENOENT);
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
	assert_int_not_equal(deploy_store_save(db, &r, NULL, NULL, bad), DRV_OK);
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
	assert_int_equal(deploy_store_save(db, &b, NULL, NULL, NULL), DRV_OK);

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

/* The stored releases of core-1, as JSON text. */
/* The one agent's column col ("releases", "facts"). */
static const char *releases_text_col(struct store *s, const char *col)
{
	static char buf[256];
	char sql[64];
	struct drv_sql_stmt *st;

	snprintf(sql, sizeof(sql), "SELECT %s FROM agents", col);
	assert_int_equal(drv_sql_prepare(store_db(s), sql, &st), DRV_OK);
	assert_int_equal(drv_sql_step(st), DRV_SQL_ROW);
	snprintf(buf, sizeof(buf), "%s", drv_sql_col_text(st, 0));
	drv_sql_finalize(st);
	return buf;
}

static const char *releases_text(struct store *s)
{
	return releases_text_col(s, "releases");
}

/* A Hello's list follows the same order (Hello.releases_seq), the rest of
 * the Hello is written anyway; core-1's list is v3, numbered 3. */
static void hello_releases_ordered(struct store *s, const char *v3)
{
	struct store_hello h = {NULL, "{\"hostname\":\"h2\"}", "[]", "0.2.0", 2};
	bool stale = false;

	assert_int_equal(store_agent_update_hello(s, "core-1", &h, 7000, &stale), DRV_OK);
	assert_true(stale); /* sealed before report 3 */
	assert_string_equal(releases_text(s), v3);
	assert_string_equal(releases_text_col(s, "facts"), "{\"hostname\":\"h2\"}");
	h.releases_seq = 3; /* read after report 3 */
	assert_int_equal(store_agent_update_hello(s, "core-1", &h, 7000, &stale), DRV_OK);
	assert_false(stale);
	assert_string_equal(releases_text(s), "[]");
	h.releases_json = v3;
	h.releases_seq = 0; /* an older agent: as before, the number kept */
	assert_int_equal(store_agent_update_hello(s, "core-1", &h, 7000, &stale), DRV_OK);
	assert_false(stale);
	assert_string_equal(releases_text(s), v3);
	h.releases_json = "[]";
	h.releases_seq = 5; /* a newer Hello raises the number: a poll below it is older */
	assert_int_equal(store_agent_update_hello(s, "core-1", &h, 7000, &stale), DRV_OK);
	assert_int_equal(store_agent_set_releases(s, "core-1", v3, 4, &stale), DRV_OK);
	assert_true(stale);
	assert_string_equal(releases_text(s), "[]");
	/* numbers beyond 32 bits (a uint64 on the wire; PostgreSQL must not
	 * take the parameter for an int4) */
	h.releases_json = v3;
	h.releases_seq = 5000000000u;
	assert_int_equal(store_agent_update_hello(s, "core-1", &h, 7000, &stale), DRV_OK);
	assert_false(stale);
	assert_string_equal(releases_text(s), v3);
	assert_int_equal(store_agent_set_releases(s, "core-1", "[]", 5000000001u, &stale), DRV_OK);
	assert_false(stale);
	assert_string_equal(releases_text(s), "[]");
}

/* The order of release lists (docs/protocol.md), core-1's last list being a
 * report's numbered 2: no list older than the stored one is written. */
static void releases_ordered(struct store *s)
{
	const char *v3 = "[{\"service\":\"web\",\"version\":\"3\"}]";
	char before[256];
	bool stale = false;

	snprintf(before, sizeof(before), "%s", releases_text(s));
	assert_int_equal(store_agent_merge_releases(s, "core-1", "web", v3, 2, &stale), DRV_OK);
	assert_true(stale); /* a report not above the stored number */
	assert_int_equal(store_agent_set_releases(s, "core-1", "[]", 1, &stale), DRV_OK);
	assert_true(stale); /* a poll below it */
	assert_string_equal(releases_text(s), before);
	assert_int_equal(store_agent_set_releases(s, "core-1", v3, 2, &stale), DRV_OK);
	assert_false(stale); /* a poll read after report 2 */
	assert_string_equal(releases_text(s), v3);
	assert_int_equal(store_agent_merge_releases(s, "core-1", "web", "[]", 3, &stale), DRV_OK);
	assert_false(stale);
	assert_string_equal(releases_text(s), "[]");
	assert_int_equal(store_agent_set_releases(s, "core-1", v3, 0, &stale), DRV_OK);
	assert_false(stale); /* an older agent: as before */
	assert_string_equal(releases_text(s), v3);
	assert_int_equal(store_agent_set_releases(s, "core-1", "[]", 2, &stale), DRV_OK);
	assert_true(stale); /* the number was kept (3) */
	assert_string_equal(releases_text(s), v3);
	hello_releases_ordered(s, v3);
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
	                        "0.1.0", 0};
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
	                         "[{\"service\":\"web\",\"version\":\"2\",\"slot\":\"\"}]", 2,
	                         NULL),
	                 DRV_OK);
	assert_int_equal(store_agent_merge_releases(s, "core-1", "web", "not json", 3, NULL),
	                 DRV_OK);
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
	releases_ordered(s);
	drv_keypair_wipe(&kp);
	store_close(s);
}

static int64_t count_records(struct drv_sql *db, const char *dep)
{
	struct drv_sql_stmt *st;
	int64_t n = -1;

	assert_int_equal(drv_sql_prepare(db,
	                                 "SELECT count(*) FROM deployment_records"
	                                 " WHERE deployment_id = ?",
	                                 &st),
	                 DRV_OK);
	drv_sql_bind_text(st, 1, dep);
	if (drv_sql_step(st) == DRV_SQL_ROW)
		n = drv_sql_col_int64(st, 0);
	drv_sql_finalize(st);
	return n;
}

static int first_row(void *arg, struct deploy_row *r)
{
	struct deploy_row *out = arg;

	if (out->id[0] != '\0')
		return DRV_OK;
	*out = *r; /* take the strings */
	memset(r, 0, sizeof(*r));
	return DRV_OK;
}

/* The engine's view of a stored deployment (deploy_run_load_extra). */
static json_t *load_back(struct drv_sql *db, struct dep *out)
{
	struct deploy_engine e;
	struct deploy_row r;

	memset(&e, 0, sizeof(e));
	memset(&r, 0, sizeof(r));
	memset(out, 0, sizeof(*out));
	e.cfg.db = db;
	assert_int_equal(deploy_store_active(db, first_row, &r), DRV_OK);
	assert_int_equal(deploy_run_load_extra(&e, out, &r), DRV_OK);
	memcpy(out->row.id, r.id, sizeof(out->row.id));
	deploy_row_clear(&r);
	return out->extra;
}

/* Only the records a transition touched are written; they load back into
 * extra beside the targets column and the rest; the "extra" column holds
 * neither; the end deletes them. */
static void records_only_changed(void **state)
{
	struct drv_sql *db = *state;
	struct deploy_row r;
	struct dep d, back;
	char *text, *recs, *gone;
	int rc;
	const char *targets = "{\"services\":[[{\"agent\":\"a-1\",\"prev\":false}]]}";

	fill(&r, db, "records");
	r.targets = (char *)targets;
	assert_int_equal(deploy_store_insert(db, &r, NULL), DRV_OK);
	r.plan = NULL;
	r.targets = NULL;
	r.extra = "{\"gate\":{}}"; /* as deploy_run_dump_extra writes it, below */
	memset(&d, 0, sizeof(d));
	memcpy(d.row.id, r.id, sizeof(d.row.id));
	d.extra = json_pack("{s:o, s:{s:{s:s}, s:{s:s}}, s:{}, s:{}, s:{}}", "targets",
	                    json_loads(targets, 0, NULL), "hosts", "0/a-1", "state", "pending",
	                    "0/a-2", "state", "pending", "hooks", "steps", "gate");
	text = deploy_run_dump_extra(&d);
	assert_string_equal(text, "{\"gate\":{}}");
	free(text);
	/* nothing touched: nothing to write */
	assert_null(deploy_run_dump_records(&d, &gone, &rc));
	assert_int_equal(rc, DRV_OK);

	json_object_set_new(json_object_get(json_object_get(d.extra, "hosts"), "0/a-1"), "state",
	                    json_string("starting \"\\u00e9\""));
	deploy_track_touch(&d, "hosts", "0/a-1");
	recs = deploy_run_dump_records(&d, &gone, &rc);
	assert_int_equal(rc, DRV_OK);
	assert_non_null(recs);
	assert_null(strstr(recs, "a-2")); /* untouched: not written */
	assert_null(gone);
	assert_int_equal(deploy_store_save(db, &r, recs, gone, NULL), DRV_OK);
	free(recs);
	assert_int_equal(count_records(db, r.id), 1);
	json_object_clear(d.recs_dirty); /* saved */

	/* a step sent, then its report: its row comes and goes */
	json_object_set_new(json_object_get(d.extra, "steps"), "dep:prestage:0:0",
	                    json_pack("{s:s, s:i}", "k", "0/a-1", "s", 1));
	deploy_track_touch(&d, "steps", "dep:prestage:0:0");
	recs = deploy_run_dump_records(&d, &gone, &rc);
	assert_int_equal(deploy_store_save(db, &r, recs, gone, NULL), DRV_OK);
	free(recs);
	assert_int_equal(count_records(db, r.id), 2);
	json_object_clear(d.recs_dirty);
	json_object_del(json_object_get(d.extra, "steps"), "dep:prestage:0:0");
	deploy_track_touch(&d, "steps", "dep:prestage:0:0");
	recs = deploy_run_dump_records(&d, &gone, &rc);
	assert_int_equal(rc, DRV_OK);
	assert_null(recs);
	assert_non_null(gone);
	assert_int_equal(deploy_store_save(db, &r, recs, gone, NULL), DRV_OK);
	free(gone);
	assert_int_equal(count_records(db, r.id), 1);
	json_object_clear(d.recs_dirty);

	/* touched again and another one: written over, added */
	json_object_set_new(json_object_get(json_object_get(d.extra, "hosts"), "0/a-1"), "state",
	                    json_string("succeeded"));
	deploy_track_touch(&d, "hosts", "0/a-1");
	deploy_track_touch(&d, "hosts", "0/a-2");
	json_object_set_new(json_object_get(d.extra, "hooks"), "pre/0/a-1",
	                    json_pack("{s:s, s:i}", "state", "running", "exit_code", 0));
	deploy_track_touch(&d, "hooks", "pre/0/a-1");
	recs = deploy_run_dump_records(&d, &gone, &rc);
	assert_int_equal(deploy_store_save(db, &r, recs, gone, NULL), DRV_OK);
	free(recs);
	free(gone);
	assert_int_equal(count_records(db, r.id), 3);

	assert_true(json_equal(load_back(db, &back), d.extra));
	assert_false(back.recs_all);
	assert_false(back.targets_unsaved);
	json_decref(back.extra);

	/* the end: the final view holds the records, the rows go */
	snprintf(r.state, sizeof(r.state), "succeeded");
	r.finished_ms = 3000;
	assert_int_equal(deploy_store_save(db, &r, NULL, NULL, NULL), DRV_OK);
	assert_int_equal(count_records(db, r.id), 0);
	json_decref(d.extra);
	json_decref(d.recs_dirty);
}

/* A row written before migration 12 (targets and records inside extra)
 * loads as it was, and its first save writes the targets column and every
 * record. */
static void records_from_old_row(void **state)
{
	struct drv_sql *db = *state;
	struct deploy_row r;
	struct dep back, again;
	json_t *stored;
	char *recs, *gone;
	int rc;

	fill(&r, db, "old");
	r.extra = "{\"targets\":{\"services\":[]},\"hosts\":{\"0/a-1\":{\"state\":\"staged\"}},"
	          "\"hooks\":{},\"steps\":{}}";
	assert_int_equal(deploy_store_insert(db, &r, NULL), DRV_OK);
	load_back(db, &back);
	assert_true(back.targets_unsaved);
	assert_true(back.recs_all);
	stored = json_loads(r.extra, 0, NULL);
	assert_true(json_equal(back.extra, stored));
	json_decref(stored);
	assert_string_equal(
	        json_string_value(json_object_get(
	                json_object_get(json_object_get(back.extra, "hosts"), "0/a-1"), "state")),
	        "staged");
	recs = deploy_run_dump_records(&back, &gone, &rc);
	assert_int_equal(rc, DRV_OK);
	assert_non_null(strstr(recs, "0/a-1"));
	r.plan = NULL;
	r.extra = deploy_run_dump_extra(&back);
	r.targets = json_dumps(json_object_get(back.extra, "targets"), JSON_COMPACT);
	assert_int_equal(deploy_store_save(db, &r, recs, gone, NULL), DRV_OK);
	free(recs);
	free(gone);
	free(r.extra);
	free(r.targets);
	assert_int_equal(count_records(db, r.id), 1);
	/* read again: now from the column and the rows */
	load_back(db, &again);
	assert_false(again.targets_unsaved);
	assert_false(again.recs_all);
	assert_true(json_equal(again.extra, back.extra));
	json_decref(back.extra);
	json_decref(again.extra);
}

/* One rolling service over the hosts labelled tier=core. */
static const char rolling_plan[] =
        "deployment: berrys\n"
        "version: \"2.4.0\"\n"
        "tiers:\n"
        "  - name: core\n"
        "    services:\n"
        "      - name: project-coordinator\n"
        "        image: r.example/pc@sha256:"
        "0000000000000000000000000000000000000000000000000000000000000000\n"
        "        hosts: { labels: { tier: core } }\n"
        "        command: [/bin/berry-svc]\n";

struct find_rec {
	const char *key;
	char *text;
};

static int find_rec_cb(void *arg, const char *section, const char *key, const char *data)
{
	struct find_rec *f = arg;

	if (strcmp(section, "seq") == 0 && strcmp(key, f->key) == 0)
		f->text = strdup(data);
	return DRV_OK;
}

/* The text of one of the sequencer's rows (NULL when there is none). */
static char *seq_row_text(struct drv_sql *db, const char *dep, const char *key)
{
	struct find_rec f = {key, NULL};

	assert_int_equal(deploy_store_records(db, dep, find_rec_cb, &f), DRV_OK);
	return f.text;
}

/* Save d's sequencer as the engine does (deploy_run.c save): its state
 * without hosts in the row, the rows that changed as records. Returns how
 * many of the sequencer's rows the save wrote. */
static size_t save_seq(struct drv_sql *db, struct deploy_row *r, struct dep *d)
{
	json_t *st = NULL, *arr;
	char *recs, *gone;
	size_t n = 0, i;
	json_t *e;
	int rc;

	d->seq_rows = json_object();
	assert_int_equal(drv_seq_save_rows(d->seq, &st, d->seq_rows), DRV_OK);
	r->seq_state = json_dumps(st, JSON_COMPACT);
	json_decref(st);
	recs = deploy_run_dump_records(d, &gone, &rc);
	assert_int_equal(rc, DRV_OK);
	arr = recs ? json_loads(recs, 0, NULL) : json_array();
	json_array_foreach(arr, i, e) n +=
	        strcmp(json_string_value(json_array_get(e, 0)), "seq") == 0;
	json_decref(arr);
	assert_int_equal(n, json_object_size(d->seq_rows));
	assert_int_equal(deploy_store_save(db, r, recs, gone, NULL), DRV_OK);
	drv_seq_rows_stored(d->seq); /* committed (deploy_run.c saved) */
	free(recs);
	free(gone);
	free(r->seq_state);
	r->seq_state = NULL;
	json_decref(d->seq_rows);
	d->seq_rows = NULL;
	return n;
}

/* The sequencer's hosts as rows (section "seq"): the first save writes
 * every host and the agents, a save after one host's report that host's
 * row alone (the others' stored text untouched), and the stored row and
 * records load back into the sequencer's exact state. */
static void seq_rows_only_changed(void **state)
{
	struct drv_sql *db = *state;
	static char names[200][32];
	const char *hosts[201];
	struct deploy_row r, got;
	struct dep d, back;
	struct sim sim;
	struct drv_seq *again = NULL;
	struct drv_seq_event ev = {.kind = DRV_SEQ_EV_REPORT, .result = DRV_SEQ_R_OK};
	json_t *st, *a = NULL, *b = NULL;
	char *spaced, *text;

	for (int i = 0; i < 200; i++) {
		snprintf(names[i], sizeof(names[i]), "core-%03d tier=core", i);
		hosts[i] = names[i];
	}
	hosts[200] = NULL;
	sim_init(&sim, rolling_plan, hosts, false);
	sim_start(&sim); /* prestage sent to the 200 hosts */
	fill(&r, db, "seqrows");
	assert_int_equal(deploy_store_insert(db, &r, NULL), DRV_OK);
	r.plan = NULL;
	r.extra = "{}";
	memset(&d, 0, sizeof(d));
	memcpy(d.row.id, r.id, sizeof(d.row.id));
	d.extra = json_pack("{s:{}, s:{}, s:{}}", "hosts", "hooks", "steps");
	d.seq = sim.seq;

	assert_int_equal(save_seq(db, &r, &d), 1 + 200);
	assert_int_equal(count_records(db, r.id), 1 + 200);
	assert_int_equal(save_seq(db, &r, &d), 0); /* nothing changed */

	/* another host's row as other text (the same JSON): a save that wrote
	 * it would write it compact again */
	text = seq_row_text(db, r.id, "h0.7");
	assert_non_null(text);
	spaced = malloc(strlen(text) * 2 + 1);
	assert_non_null(spaced);
	for (size_t i = 0, j = 0;; i++) {
		spaced[j++] = text[i];
		if (text[i] == ',')
			spaced[j++] = ' ';
		if (text[i] == '\0')
			break;
	}
	free(text);
	assert_int_equal(drv_sql_exec(db, "BEGIN"), DRV_OK);
	{
		struct drv_sql_stmt *up;

		assert_int_equal(drv_sql_prepare(db,
		                                 "UPDATE deployment_records SET data = ?"
		                                 " WHERE deployment_id = ? AND key = 'h0.7'",
		                                 &up),
		                 DRV_OK);
		drv_sql_bind_text(up, 1, spaced);
		drv_sql_bind_text(up, 2, r.id);
		assert_int_equal(drv_sql_step(up), DRV_SQL_DONE);
		drv_sql_finalize(up);
	}
	assert_int_equal(drv_sql_exec(db, "COMMIT"), DRV_OK);

	ev.agent = sim.sends[3].agent;
	ev.id = sim.sends[3].id;
	assert_string_equal(ev.agent, "core-003");
	assert_int_equal(drv_seq_handle(sim.seq, &ev, sim.now + 10, &sim.acts), DRV_OK);
	drv_seq_actions_clear(&sim.acts);
	assert_int_equal(save_seq(db, &r, &d), 1);
	assert_int_equal(count_records(db, r.id), 1 + 200);
	text = seq_row_text(db, r.id, "h0.7");
	assert_string_equal(text, spaced); /* not written again */
	free(text);
	free(spaced);
	text = seq_row_text(db, r.id, "h0.3");
	assert_string_equal(text, "[3,1,2,0,0,0]"); /* its prestage succeeded */
	free(text);

	/* the stored deployment loads back: every host's state as it was */
	load_back(db, &back);
	assert_int_equal(json_object_size(back.seq_loaded), 1 + 200);
	assert_int_equal(deploy_store_get(db, r.id, &got), DRV_OK);
	st = json_loads(got.seq_state, 0, NULL);
	assert_non_null(st);
	assert_null(json_object_get(st, "agents")); /* the hosts are not in the row */
	assert_int_equal(drv_seq_load_rows(sim.plan, st, back.seq_loaded, &again), DRV_OK);
	assert_int_equal(drv_seq_save(again, &a), DRV_OK);
	assert_int_equal(drv_seq_save(sim.seq, &b), DRV_OK);
	assert_true(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	json_decref(st);
	drv_seq_free(again);
	deploy_row_clear(&got);
	json_decref(back.extra);
	json_decref(back.seq_loaded);
	json_decref(d.extra);
	json_decref(d.recs_dirty);
	sim_free(&sim);
}

/* The events of a save go in with one statement: in order, each with its
 * agent and its data exactly as serialized. */
static void events_in_order(void **state)
{
	struct drv_sql *db = *state;
	struct deploy_row r;
	struct drv_sql_stmt *st;
	json_t *ev = json_pack("[{s:s, s:s, s:{s:s}}, {s:s, s:{s:i}}, {s:s, s:s}]", "kind", "host",
	                       "agent", "core-1", "data", "text", "a \"quoted\" \u00e9 \\ line\n",
	                       "kind", "state", "data", "n", 42, "kind", "host", "agent", "core-2");
	static const char *const kinds[] = {"host", "state", "host"};
	static const char *const agents[] = {"core-1", "", "core-2"};
	int n = 0;

	fill(&r, db, "events");
	assert_int_equal(deploy_store_insert(db, &r, NULL), DRV_OK);
	r.plan = NULL;
	assert_int_equal(deploy_store_save(db, &r, NULL, NULL, ev), DRV_OK);
	assert_int_equal(drv_sql_prepare(db,
	                                 "SELECT kind, agent_id, data FROM events"
	                                 " WHERE deployment_id = ? ORDER BY id",
	                                 &st),
	                 DRV_OK);
	drv_sql_bind_text(st, 1, r.id);
	while (drv_sql_step(st) == DRV_SQL_ROW) {
		const json_t *data = json_object_get(json_array_get(ev, n), "data");
		char *want = data ? json_dumps(data, JSON_COMPACT) : strdup("{}");

		assert_true(n < 3);
		assert_string_equal(drv_sql_col_text(st, 0), kinds[n]);
		assert_string_equal(drv_sql_col_text(st, 1), agents[n]);
		assert_string_equal(drv_sql_col_text(st, 2), want);
		free(want);
		n++;
	}
	drv_sql_finalize(st);
	assert_int_equal(n, 3);
	json_decref(ev);
}

/* deploy_store_begin/commit: the saves of several deployments in one
 * transaction; a rollback keeps none of them. */
static void saves_in_one_transaction(void **state)
{
	struct drv_sql *db = *state;
	struct deploy_row a, b, got;
	const char *recs = "[[\"hosts\",\"0/a-1\",{\"state\":\"starting\"}]]";

	fill(&a, db, "one");
	assert_int_equal(deploy_store_insert(db, &a, NULL), DRV_OK);
	fill(&b, db, "two");
	assert_int_equal(deploy_store_insert(db, &b, NULL), DRV_OK);
	a.plan = b.plan = NULL;
	snprintf(a.state, sizeof(a.state), "running");
	snprintf(b.state, sizeof(b.state), "running");

	assert_int_equal(deploy_store_begin(db), DRV_OK);
	assert_int_equal(deploy_store_save(db, &a, recs, NULL, NULL), DRV_OK);
	assert_int_equal(deploy_store_save(db, &b, recs, NULL, NULL), DRV_OK);
	deploy_store_rollback(db);
	assert_int_equal(deploy_store_get(db, a.id, &got), DRV_OK);
	assert_string_equal(got.state, "pending");
	deploy_row_clear(&got);
	assert_int_equal(count_records(db, a.id), 0);

	assert_int_equal(deploy_store_begin(db), DRV_OK);
	assert_int_equal(deploy_store_save(db, &a, recs, NULL, NULL), DRV_OK);
	assert_int_equal(deploy_store_save(db, &b, recs, NULL, NULL), DRV_OK);
	assert_int_equal(deploy_store_commit(db), DRV_OK);
	assert_int_equal(deploy_store_get(db, b.id, &got), DRV_OK);
	assert_string_equal(got.state, "running");
	deploy_row_clear(&got);
	assert_int_equal(count_records(db, a.id), 1);
	assert_int_equal(count_records(db, b.id), 1);
}

/* When a save may wait for company (DEPLOY_SAVE_DEFER_MS): a transition
 * of a running deployment that sends nothing waits until the interval since
 * the last save is over; one with actions, one of a deployment that has not
 * started and a failing save's retry do not wait; nothing changed: nothing
 * is due. */
static void save_deferred(void **state)
{
	struct drv_plan_errors errs = {0};
	struct drv_plan *plan;
	struct dep d;
	int64_t at;

	(void)state;
	memset(&d, 0, sizeof(d));
	assert_false(deploy_run_save_due(&d, 1000, &at)); /* nothing changed */
	assert_true(at == INT64_MAX);
	d.dirty = true;
	assert_true(deploy_run_save_due(&d, 1000, &at)); /* not started: at once */
	assert_int_equal(
	        drv_plan_parse_buffer(rolling_plan, strlen(rolling_plan), "t", &plan, &errs),
	        DRV_OK);
	assert_int_equal(drv_seq_new(plan, "dep-1-000000", &d.seq), DRV_OK);
	d.saved_ms = 1000;
	assert_false(deploy_run_save_due(&d, 1000 + DEPLOY_SAVE_DEFER_MS - 1, &at));
	assert_true(at == 1000 + DEPLOY_SAVE_DEFER_MS);
	assert_true(deploy_run_save_due(&d, 1000 + DEPLOY_SAVE_DEFER_MS, &at));
	d.n_pend = 1; /* something to send: saved first, at once */
	assert_true(deploy_run_save_due(&d, 1001, &at));
	d.n_pend = 0;
	d.save_failing = true;
	assert_true(deploy_run_save_due(&d, 1001, &at));
	d.save_failing = false;
	d.ended = true;
	assert_false(deploy_run_save_due(&d, 5000, &at));
	drv_seq_free(d.seq);
	drv_plan_free(plan);
	drv_plan_errors_free(&errs);
}

/* One rolling service on 8 hosts, 2 at a time. */
static const char batches_plan[] = "deployment: berrys\n"
                                   "version: \"2.4.0\"\n"
                                   "defaults:\n"
                                   "  health: { http: { port: 8080 }, deadline: 30s }\n"
                                   "tiers:\n"
                                   "  - name: core\n"
                                   "    services:\n"
                                   "      - name: project-coordinator\n"
                                   "        image: r.example/pc:2.4.0\n"
                                   "        hosts: { labels: { tier: core } }\n"
                                   "        command: [/bin/berry-svc]\n"
                                   "        strategy: { type: rolling, max_unavailable: 25% }\n";
static const char *const batches_fleet[] = {
        "core-1 tier=core", "core-2 tier=core", "core-3 tier=core",
        "core-4 tier=core", "core-5 tier=core", "core-6 tier=core",
        "core-7 tier=core", "core-8 tier=core", NULL};

/* The engine's saves over a simulated rolling deployment, as its turns
 * apply deploy_run_save_due: after each sequencer call, a save when one is
 * due; before the next call, the save that fell due meanwhile (the engine's
 * timer wakes it for that). Keeps what the last save stored (the state text
 * and rows) and the final reports the core stored, for a crash. */
struct saver {
	struct dep d;
	int saves, quiet; /* saves; of them, those that carried no action */
	json_t *rows;     /* the sequencer's rows as last saved */
	char *state;      /* its state text as last saved */
	json_t *finals;   /* [[agent, step id, succeeded?]] in the order stored */
	int starts_done;  /* final START reports so far */
	int crash_at;     /* > 0: stop at this final START report if it is unsaved */
	bool crash_now, replaying;
};

static void saver_save(struct saver *s, struct sim *sim, int64_t at)
{
	json_t *st = NULL, *changed = json_object();

	assert_int_equal(drv_seq_save_rows(sim->seq, &st, changed), DRV_OK);
	assert_int_equal(json_object_update(s->rows, changed), 0);
	drv_seq_rows_stored(sim->seq);
	free(s->state);
	s->state = json_dumps(st, JSON_COMPACT);
	assert_non_null(s->state);
	json_decref(st);
	json_decref(changed);
	s->saves++;
	s->quiet += s->d.n_pend == 0 && !drv_seq_state_terminal(drv_seq_state(sim->seq));
	s->d.saved_ms = at;
	s->d.dirty = false;
	s->d.n_pend = 0;
}

static void saver_store_report(struct saver *s, const struct drv_seq_event *ev)
{
	if (ev == NULL || ev->kind != DRV_SEQ_EV_REPORT || ev->id == NULL ||
	    (ev->result != DRV_SEQ_R_OK && ev->result != DRV_SEQ_R_FAILED) || s->replaying)
		return;
	assert_int_equal(json_array_append_new(s->finals, json_pack("[s, s, b]", ev->agent, ev->id,
	                                                            ev->result == DRV_SEQ_R_OK)),
	                 0);
	if (strstr(ev->id, ":start:") != NULL)
		s->starts_done++;
}

static void saver_call(struct sim *sim, const struct drv_seq_event *ev, bool after, void *arg)
{
	struct saver *s = arg;
	int64_t at;

	s->d.seq = sim->seq;
	if (!after) {
		if (s->d.dirty && deploy_run_save_due(&s->d, sim->now, &at))
			saver_save(s, sim, at); /* fell due meanwhile */
		saver_store_report(s, ev);      /* the core stores it before the engine sees it */
		return;
	}
	s->d.dirty = true;
	s->d.n_pend += sim->acts.n;
	if (deploy_run_save_due(&s->d, sim->now, &at))
		saver_save(s, sim, sim->now);
	if (s->crash_at > 0 && s->starts_done >= s->crash_at && s->d.dirty && !s->crash_now)
		s->crash_now = true;
}

static void saver_init(struct saver *s, struct sim *sim)
{
	memset(s, 0, sizeof(*s));
	s->rows = json_object();
	s->finals = json_array();
	assert_non_null(s->rows);
	assert_non_null(s->finals);
	sim->on_call = saver_call;
	sim->call_arg = s;
	sim->accepted = true; /* ACCEPTED, then the result, as agents report */
	sim->spread = 10;     /* a batch's hosts answer 10 ms apart */
}

static void saver_free(struct saver *s)
{
	json_decref(s->rows);
	json_decref(s->finals);
	free(s->state);
}

/* A rolling batch costs one save: its reports that send nothing (every
 * ACCEPTED, every result but the batch's last) wait for the save of the
 * transition that starts the next batch, instead of a save each 50 ms
 * (each waiting for SQLite's write lock on the engine thread). 8 hosts, 2
 * a batch: the start, the prestage's end, 4 batches, the end. */
static void saves_per_batch(void **state)
{
	struct sim sim;
	struct saver s;

	(void)state;
	sim_init(&sim, batches_plan, batches_fleet, false);
	saver_init(&s, &sim);
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, "project-coordinator", NULL), 8);
	assert_int_equal(s.quiet, 0);
	assert_true(s.saves <= 1 + 1 + 4 + 1);
	saver_free(&s);
	sim_free(&sim);
}

/* droverd killed in the middle of a rolling batch whose reports were not
 * saved yet (they waited for the batch's end): loaded from the last save
 * and fed the final reports the core stored, the sequencer ends as a run
 * without the crash does, every host started by one step. */
static void crash_mid_batch_resumes(void **state)
{
	struct sim ref, sim;
	struct saver s;
	char *want, *got;
	int guard = 0;

	(void)state;
	sim_init(&ref, batches_plan, batches_fleet, false);
	ref.accepted = true;
	ref.spread = 10;
	sim_start(&ref);
	assert_int_equal(sim_run(&ref), DRV_SEQ_SUCCEEDED);
	want = sim_status_text(&ref);

	sim_init(&sim, batches_plan, batches_fleet, false);
	saver_init(&s, &sim);
	s.crash_at = 3; /* the second batch's first host done, the batch not */
	sim_start(&sim);
	while (!s.crash_now && guard++ < 100000)
		sim_advance(&sim, 1);
	assert_true(s.crash_now);
	assert_true(s.d.dirty); /* transitions were lost with the process */
	s.replaying = true;
	sim_crash_resume(&sim, s.state, s.rows, s.finals);
	s.replaying = false;
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_int_equal(sim.restarts, 1);
	for (int i = 1; i <= 8; i++) {
		char agent[16];

		snprintf(agent, sizeof(agent), "core-%d", i);
		assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, "project-coordinator", agent),
		                 1);
	}
	got = sim_status_text(&sim);
	assert_string_equal(got, want);
	free(want);
	free(got);
	saver_free(&s);
	sim_free(&sim);
	sim_free(&ref);
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
	        cmocka_unit_test_setup_teardown(records_only_changed, setup, teardown),
	        cmocka_unit_test_setup_teardown(records_from_old_row, setup, teardown),
	        cmocka_unit_test_setup_teardown(seq_rows_only_changed, setup, teardown),
	        cmocka_unit_test_setup_teardown(saves_in_one_transaction, setup, teardown),
	        cmocka_unit_test_setup_teardown(events_in_order, setup, teardown),
	        cmocka_unit_test(save_deferred),
	        cmocka_unit_test(saves_per_batch),
	        cmocka_unit_test(crash_mid_batch_resumes),
	        cmocka_unit_test_setup_teardown(live_sets, setup, teardown),
	};

	if (drv_crypto_init() != DRV_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
