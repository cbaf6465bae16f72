/* test_audit.c: the audit log on a real SQLite file: a row written before a
 * change and completed after, append-only otherwise, and failed-authentication
 * rows kept to the newest few (model/audit.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "sqldb.h"
#include "err.h"
#include "store_target.h"
#include "schema.h"

struct fx {
	char dir[64];
	struct drv_sql *db;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	char path[128];
	size_t n;
	const struct drv_sql_migration *mig = drv_schema_migrations(&n);

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/drv-audit-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	if (store_target(path, sizeof(path), fx->dir, "droverd.db") != 0)
		return -1;
	if (drv_sql_open(path, mig, n, &fx->db) != DRV_OK)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[160];

	drv_sql_close(fx->db);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		return -1;
	free(fx);
	return 0;
}

static int64_t count(struct drv_sql *db, const char *where)
{
	char sql[200];
	struct drv_sql_stmt *st;
	int64_t n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit WHERE %s", where);
	if (drv_sql_prepare(db, sql, &st) == DRV_OK && drv_sql_step(st) == DRV_SQL_ROW)
		n = drv_sql_col_int64(st, 0);
	drv_sql_finalize(st);
	return n;
}

static const struct drv_audit_entry entry = {.actor = "ci",
                                             .role = "deployer",
                                             .remote = "127.0.0.1",
                                             .method = "POST",
                                             .path = "/v1/deployments",
                                             .status = 201,
                                             .detail = "name=berrys"};

static void begin_then_finish(void **state)
{
	struct fx *fx = *state;
	int64_t id = 0;

	assert_int_equal(drv_audit_begin(fx->db, &entry, &id), DRV_OK);
	assert_true(id > 0);
	assert_int_equal(count(fx->db, "status = 0"), 1); /* written before the change */
	assert_int_equal(drv_audit_finish(fx->db, id, 201, "deployment=dep-1"), DRV_OK);
	assert_int_equal(count(fx->db, "status = 201 AND detail = 'deployment=dep-1'"), 1);
	/* once answered, the row is final */
	assert_int_equal(drv_audit_finish(fx->db, id, 500, "rewritten"), DRV_EDB);
	assert_int_equal(drv_sql_exec(fx->db, "UPDATE audit SET actor = 'x' WHERE status = 0"),
	                 DRV_OK); /* no such row: nothing to refuse */
	assert_int_not_equal(drv_sql_exec(fx->db, "DELETE FROM audit WHERE status = 201"), DRV_OK);
	assert_int_equal(count(fx->db, "1 = 1"), 1);
}

static void unfinished_row_keeps_who_and_what(void **state)
{
	struct fx *fx = *state;
	int64_t id = 0;

	assert_int_equal(drv_audit_begin(fx->db, &entry, &id), DRV_OK);
	assert_int_not_equal(drv_sql_exec(fx->db, "UPDATE audit SET actor = 'someone-else'"),
	                     DRV_OK);
	assert_int_not_equal(drv_sql_exec(fx->db, "UPDATE audit SET path = '/'"), DRV_OK);
	assert_int_equal(count(fx->db, "actor = 'ci' AND path = '/v1/deployments'"), 1);
}

static void auth_failures_are_bounded(void **state)
{
	struct fx *fx = *state;
	struct drv_audit_entry e = entry;

	assert_int_equal(drv_audit_append(fx->db, &entry), DRV_OK);
	e.actor = "";
	e.role = "none";
	for (int i = 0; i < 40; i++) {
		e.status = i % 2 ? 429 : 401;
		assert_int_equal(drv_audit_auth_failure(fx->db, &e, 5), DRV_OK);
	}
	assert_int_equal(count(fx->db, "status IN (401, 429)"), 5);
	assert_int_equal(count(fx->db, "status = 201"), 1); /* other rows stay */
	/* the newest are kept */
	assert_int_equal(count(fx->db, "status IN (401, 429) AND id > 36"), 5);
}

static void *end_read_later(void *st)
{
	usleep(200 * 1000);
	drv_sql_reset(st);
	return NULL;
}

/* The API's threads share a connection: one thread's open SELECT holds a
 * snapshot that another connection's commit makes stale, and a write on the
 * shared connection then fails at once, without the busy handler. The audit
 * row waits for the reader instead of refusing the request (a 500 seen
 * under load in it_fleetsim_smoke). */
static void write_waits_for_a_reader_on_the_connection(void **state)
{
	struct fx *fx = *state;
	char path[128];
	struct drv_sql *core;
	struct drv_sql_stmt *rd;
	pthread_t th;
	int64_t id = 0;

	if (store_target_pg())
		skip(); /* a PostgreSQL result is read whole: no snapshot is held */
	snprintf(path, sizeof(path), "%s/droverd.db", fx->dir);
	assert_int_equal(drv_sql_open(path, NULL, 0, &core), DRV_OK);
	assert_int_equal(drv_audit_append(fx->db, &entry), DRV_OK);
	assert_int_equal(drv_audit_append(fx->db, &entry), DRV_OK);
	assert_int_equal(drv_sql_prepare(fx->db, "SELECT id FROM audit", &rd), DRV_OK);
	assert_int_equal(drv_sql_step(rd), DRV_SQL_ROW); /* another thread, mid-read */
	assert_int_equal(drv_sql_exec(core, "INSERT INTO events(at_ms, kind) VALUES (1, 'x')"),
	                 DRV_OK);
	assert_int_equal(pthread_create(&th, NULL, end_read_later, rd), 0);
	assert_int_equal(drv_audit_begin(fx->db, &entry, &id), DRV_OK);
	assert_int_equal(drv_audit_finish(fx->db, id, 201, "after the reader"), DRV_OK);
	pthread_join(th, NULL);
	drv_sql_finalize(rd);
	drv_sql_close(core);
	assert_int_equal(count(fx->db, "detail = 'after the reader'"), 1);
}

/* GET /v1/audit?before=ID pages back from any id up to 2^63-1 (0: the
 * newest): on PostgreSQL too, where a number past 2^31 was refused. */
static void list_pages_before_any_id(void **state)
{
	struct fx *fx = *state;
	json_t *rows = NULL;

	assert_int_equal(drv_audit_append(fx->db, &entry), DRV_OK);
	assert_int_equal(drv_audit_append(fx->db, &entry), DRV_OK);
	assert_int_equal(drv_audit_list(fx->db, 0, 10, &rows), DRV_OK);
	assert_int_equal(json_array_size(rows), 2);
	json_decref(rows);
	assert_int_equal(drv_audit_list(fx->db, 5000000000, 10, &rows), DRV_OK);
	assert_int_equal(json_array_size(rows), 2);
	json_decref(rows);
	assert_int_equal(drv_audit_list(fx->db, INT64_MAX, 1, &rows), DRV_OK);
	assert_int_equal(json_array_size(rows), 1);
	json_decref(rows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(begin_then_finish, setup, teardown),
	        cmocka_unit_test_setup_teardown(unfinished_row_keeps_who_and_what, setup, teardown),
	        cmocka_unit_test_setup_teardown(auth_failures_are_bounded, setup, teardown),
	        cmocka_unit_test_setup_teardown(write_waits_for_a_reader_on_the_connection, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(list_pages_before_any_id, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
