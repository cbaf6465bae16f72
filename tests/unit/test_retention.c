/* test_retention.c: pruning events, finished deployments and their
 * instructions by age and count, on a real SQLite file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "sqldb.h"
#include "deploy_store.h"
#include "err.h"
#include "store_target.h"
#include "retention.h"
#include "schema.h"

#define NOW     1800000000000LL /* a fixed "now" in wall-clock ms */
#define HOUR_MS 3600000LL

static char dir[64];
static char path[128];

static int setup(void **state)
{
	const struct drv_sql_migration *mig;
	struct drv_sql *db;
	size_t n;

	snprintf(dir, sizeof(dir), "/tmp/drv-ret-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	if (store_target(path, sizeof(path), dir, "t.db") != 0)
		return -1;
	mig = drv_schema_migrations(&n);
	if (drv_sql_open(path, mig, n, &db) != DRV_OK)
		return -1;
	if (drv_sql_exec(db, "INSERT INTO agents(id, public_key, key_id, status, first_seen_ms,"
	                     " last_seen_ms) VALUES ('h1', '', 'k', 'accepted', 0, 0)") != DRV_OK)
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

static void sql(struct drv_sql *db, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (drv_sql_exec(db, buf) != DRV_OK)
		fail_msg("%s: %s", buf, drv_sql_errmsg(db));
}

static int64_t num(struct drv_sql *db, const char *q)
{
	struct drv_sql_stmt *st;
	int64_t v;

	assert_int_equal(drv_sql_prepare(db, q, &st), DRV_OK);
	assert_int_equal(drv_sql_step(st), DRV_SQL_ROW);
	v = drv_sql_col_int64(st, 0);
	drv_sql_finalize(st);
	return v;
}

static void event_at(struct drv_sql *db, int64_t at_ms, const char *dep)
{
	sql(db, "INSERT INTO events(at_ms, kind, deployment_id) VALUES (%lld, 'report', '%s')",
	    (long long)at_ms, dep);
}

/* finished_ms 0: still running. */
static void deployment(struct drv_sql *db, const char *id, int64_t finished_ms)
{
	sql(db,
	    "INSERT INTO deployments(id, name, version, plan, state, created_ms, updated_ms,"
	    " finished_ms) VALUES ('%s', 'x', '1', '{}', '%s', 0, 0, %lld)",
	    id, finished_ms ? "succeeded" : "running", (long long)finished_ms);
}

static void instruction(struct drv_sql *db, int seq, const char *dep, const char *state)
{
	sql(db,
	    "INSERT INTO instructions(agent_id, seq, step_id, deployment_id, envelope,"
	    " issued_at_ms, expires_at_ms, state) VALUES ('h1', %d, 's%d', '%s', '', 0, 0, "
	    "'%s')",
	    seq, seq, dep, state);
}

static struct drv_retention_config limits(void)
{
	struct drv_retention_config c = {.batch = 50};
	return c;
}

static void prune_all(struct drv_sql *db, const struct drv_retention_config *c,
                      struct drv_retention_pass *p)
{
	assert_int_equal(drv_retention_prune(db, c, NOW, drv_mono_ms() + 60000, p), DRV_OK);
	assert_false(p->more);
}

/* The newest max_rows events stay; older ones go, in batches. */
static void test_events_by_count(void **state)
{
	struct drv_sql *db = *state;
	struct drv_retention_config c = limits();
	struct drv_retention_pass p;

	for (int i = 0; i < 1000; i++)
		event_at(db, NOW - 1000 + i, "");
	c.events_max_rows = 100;
	prune_all(db, &c, &p);
	assert_int_equal(p.deleted[DRV_RET_EVENTS], 900);
	assert_int_equal(num(db, "SELECT count(*) FROM events"), 100);
	assert_int_equal(num(db, "SELECT min(id) FROM events"), 901);
	/* nothing more to do: a second pass deletes nothing */
	prune_all(db, &c, &p);
	assert_int_equal(p.deleted[DRV_RET_EVENTS], 0);
}

/* Events older than max_age go; those of an unfinished deployment stay
 * (a restarted droverd replays its reports from them). */
static void test_events_by_age_keeps_running_deployment(void **state)
{
	struct drv_sql *db = *state;
	struct drv_retention_config c = limits();
	struct drv_retention_pass p;

	deployment(db, "dep-old", NOW - 50 * HOUR_MS);
	deployment(db, "dep-run", 0);
	for (int i = 0; i < 120; i++)
		event_at(db, NOW - 48 * HOUR_MS + i, i % 2 ? "dep-old" : "dep-run");
	for (int i = 0; i < 10; i++)
		event_at(db, NOW - HOUR_MS + i, "");
	c.events_max_age_ms = 24 * HOUR_MS;
	prune_all(db, &c, &p);
	assert_int_equal(p.deleted[DRV_RET_EVENTS], 60);
	assert_int_equal(num(db, "SELECT count(*) FROM events WHERE deployment_id = 'dep-old'"), 0);
	assert_int_equal(num(db, "SELECT count(*) FROM events WHERE deployment_id = 'dep-run'"),
	                 60);
	assert_int_equal(num(db, "SELECT count(*) FROM events WHERE deployment_id = ''"), 10);
}

/* Finished deployments beyond max_rows go with their acknowledged or
 * expired instructions; running ones and queued instructions stay. */
static void test_deployments_by_count(void **state)
{
	struct drv_sql *db = *state;
	struct drv_retention_config c = limits();
	struct drv_retention_pass p;
	char id[32];
	int seq = 1;

	for (int i = 1; i <= 30; i++) {
		snprintf(id, sizeof(id), "dep-%d", i);
		deployment(db, id, NOW - 1000 + i);
		instruction(db, seq++, id, "acked");
		instruction(db, seq++, id, "expired");
	}
	deployment(db, "dep-run", 0);
	instruction(db, seq++, "dep-run", "acked");
	instruction(db, seq++, "dep-1", "queued"); /* never deleted under an agent */
	c.deployments_max_rows = 10;
	c.batch = 7;
	prune_all(db, &c, &p);
	assert_int_equal(p.deleted[DRV_RET_DEPLOYMENTS], 20);
	assert_int_equal(p.deleted[DRV_RET_INSTRUCTIONS], 40);
	assert_int_equal(num(db, "SELECT count(*) FROM deployments WHERE finished_ms > 0"), 10);
	assert_int_equal(num(db, "SELECT min(n) FROM deployments WHERE finished_ms > 0"), 21);
	assert_int_equal(num(db, "SELECT count(*) FROM deployments WHERE id = 'dep-run'"), 1);
	assert_int_equal(num(db, "SELECT count(*) FROM instructions"), 10 * 2 + 2);
	assert_int_equal(num(db, "SELECT count(*) FROM instructions WHERE state = 'queued'"), 1);
}

static void test_deployments_by_age(void **state)
{
	struct drv_sql *db = *state;
	struct drv_retention_config c = limits();
	struct drv_retention_pass p;

	deployment(db, "dep-a", NOW - 10 * HOUR_MS);
	deployment(db, "dep-b", NOW - 2 * HOUR_MS);
	deployment(db, "dep-c", 0);
	c.deployments_max_age_ms = 5 * HOUR_MS;
	prune_all(db, &c, &p);
	assert_int_equal(p.deleted[DRV_RET_DEPLOYMENTS], 1);
	assert_int_equal(num(db, "SELECT count(*) FROM deployments WHERE id = 'dep-a'"), 0);
	assert_int_equal(num(db, "SELECT count(*) FROM deployments"), 2);
}

/* A pass past its time budget runs one batch per table and says more. */
static void test_time_budget(void **state)
{
	struct drv_sql *db = *state;
	struct drv_retention_config c = limits();
	struct drv_retention_pass p;
	int passes = 0;

	for (int i = 0; i < 500; i++)
		event_at(db, NOW - 1000 + i, "");
	c.events_max_rows = 1;
	c.batch = 100;
	assert_int_equal(drv_retention_prune(db, &c, NOW, 0, &p), DRV_OK);
	assert_true(p.more);
	assert_int_equal(p.deleted[DRV_RET_EVENTS], 100);
	do {
		assert_int_equal(drv_retention_prune(db, &c, NOW, 0, &p), DRV_OK);
		passes++;
	} while (p.more && passes < 10);
	assert_false(p.more);
	assert_int_equal(num(db, "SELECT count(*) FROM events"), 1);
}

/* A database that cannot be written (a full or read-only disk): the pass
 * fails with DRV_EDB and deletes nothing; counting still works. */
static void test_readonly_fails_cleanly(void **state)
{
	struct drv_sql *db = *state, *ro;
	struct drv_retention_config c = limits();
	struct drv_retention_pass p;
	int64_t rows[DRV_RET_N];

	for (int i = 0; i < 20; i++)
		event_at(db, NOW - 1000 + i, "");
	assert_int_equal(drv_sql_open(path, NULL, 0, &ro), DRV_OK); /* a second connection */
	assert_int_equal(drv_sql_exec(ro, store_target_pg()
	                                          ? "SET default_transaction_read_only = on"
	                                          : "PRAGMA query_only=1"),
	                 DRV_OK);
	c.events_max_rows = 5;
	assert_int_equal(drv_retention_prune(ro, &c, NOW, drv_mono_ms() + 1000, &p), DRV_EDB);
	assert_int_equal(drv_retention_count(ro, rows), DRV_OK);
	assert_int_equal(rows[DRV_RET_EVENTS], 20);
	drv_sql_close(ro);
	prune_all(db, &c, &p);
	assert_int_equal(drv_retention_count(db, rows), DRV_OK);
	assert_int_equal(rows[DRV_RET_EVENTS], 5);
}

/* Deployment numbers are never reused, even after the newest finished
 * deployments were deleted. */
static void test_new_id_after_prune(void **state)
{
	struct drv_sql *db = *state;
	struct drv_retention_config c = limits();
	struct drv_retention_pass p;
	char id[DRV_SEQ_ID_MAX + 1];

	deployment(db, "dep-1", NOW - 10 * HOUR_MS);
	deployment(db, "dep-2", NOW - 10 * HOUR_MS);
	deployment(db, "dep-3", NOW - 10 * HOUR_MS);
	c.deployments_max_age_ms = HOUR_MS;
	prune_all(db, &c, &p);
	assert_int_equal(num(db, "SELECT count(*) FROM deployments"), 0);
	assert_int_equal(deploy_store_new_id(db, id), DRV_OK);
	assert_int_equal(strncmp(id, "dep-4-", 6), 0);
}

static void baseline(struct drv_sql *db, const char *dep, const char *service, int64_t at_ms)
{
	sql(db,
	    "INSERT INTO baselines(deployment_id, environment, service, metric, version, value,"
	    " recorded_ms) VALUES ('%s', 'prod', '%s', 'p99', '1', 0.5, %lld)",
	    dep, service, (long long)at_ms);
}

/* Baselines go with their deployment, but the newest of each metric stays:
 * the next release is compared with it however old its deployment is. */
static void test_baselines_follow_deployments(void **state)
{
	struct drv_sql *db = *state;
	struct drv_retention_config c = limits();
	struct drv_retention_pass p;
	int64_t rows[DRV_RET_N];

	deployment(db, "dep-a", NOW - 30 * HOUR_MS);
	deployment(db, "dep-b", NOW - 20 * HOUR_MS);
	deployment(db, "dep-c", NOW - 2 * HOUR_MS);
	baseline(db, "dep-a", "api", NOW - 30 * HOUR_MS);
	baseline(db, "dep-a", "db", NOW - 30 * HOUR_MS); /* the newest of db: stays */
	baseline(db, "dep-b", "api", NOW - 20 * HOUR_MS);
	baseline(db, "dep-c", "api", NOW - 2 * HOUR_MS);
	c.deployments_max_age_ms = 5 * HOUR_MS;
	prune_all(db, &c, &p);
	assert_int_equal(p.deleted[DRV_RET_DEPLOYMENTS], 2);
	assert_int_equal(p.deleted[DRV_RET_BASELINES], 2);
	assert_int_equal(num(db, "SELECT count(*) FROM baselines WHERE service = 'api'"), 1);
	assert_int_equal(num(db, "SELECT count(*) FROM baselines WHERE deployment_id = 'dep-c'"),
	                 1);
	assert_int_equal(num(db, "SELECT count(*) FROM baselines WHERE deployment_id = 'dep-a'"
	                         " AND service = 'db'"),
	                 1);
	assert_int_equal(drv_retention_count(db, rows), DRV_OK);
	assert_int_equal(rows[DRV_RET_BASELINES], 2);
}

static void test_bad_batch(void **state)
{
	struct drv_retention_config c = {.batch = 0, .events_max_rows = 1};
	struct drv_retention_pass p;

	assert_int_equal(drv_retention_prune(*state, &c, NOW, 0, &p), DRV_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_events_by_count, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_events_by_age_keeps_running_deployment, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_deployments_by_count, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_deployments_by_age, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_time_budget, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_readonly_fails_cleanly, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_new_id_after_prune, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_baselines_follow_deployments, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bad_batch, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
