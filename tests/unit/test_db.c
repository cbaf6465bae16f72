/* test_db.c: SQLite open helper, user_version migrations, and the SQL API's
 * handling of a failed bind (sqldb.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "err.h"
#include "sqldb.h"

static char dir[] = "/tmp/drv-db-XXXXXX";
static char dbpath[256];

static const char *const schema_v2[] = {
        "CREATE TABLE applied (n INTEGER);"
        "INSERT INTO applied VALUES (1);",
        "INSERT INTO applied VALUES (2);",
};

static int count(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int n = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

static int setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(dbpath, sizeof(dbpath), "%s/t.db", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void migrations_applied_exactly_once(void **state)
{
	(void)state;
	sqlite3 *db;
	int v;

	assert_int_equal(drv_db_open(dbpath, schema_v2, 1, &db), DRV_OK);
	assert_int_equal(drv_db_user_version(db, &v), DRV_OK);
	assert_int_equal(v, 1);
	assert_int_equal(count(db, "SELECT count(*) FROM applied"), 1);
	drv_db_close(db);

	/* a newer program adds migration 2: only it runs */
	assert_int_equal(drv_db_open(dbpath, schema_v2, 2, &db), DRV_OK);
	assert_int_equal(count(db, "SELECT count(*) FROM applied"), 2);
	drv_db_close(db);

	/* reopening runs nothing again */
	assert_int_equal(drv_db_open(dbpath, schema_v2, 2, &db), DRV_OK);
	assert_int_equal(count(db, "SELECT count(*) FROM applied WHERE n = 1"), 1);
	assert_int_equal(count(db, "SELECT count(*) FROM applied WHERE n = 2"), 1);
	assert_int_equal(drv_db_user_version(db, &v), DRV_OK);
	assert_int_equal(v, 2);
	char *mode = NULL;
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	mode = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	assert_string_equal(mode, "wal");
	free(mode);
	drv_db_close(db);
}

/* Finding 13.10: with synchronous=NORMAL a WAL commit is not on disk when it
 * returns, so an OS crash could lose a report the link had acknowledged or a
 * deployment step it had saved. Every connection drover opens syncs each
 * commit (FULL = 2), and its journal is the WAL. */
static void commits_are_synced_before_they_return(void **state)
{
	(void)state;
	sqlite3 *db;

	assert_int_equal(drv_db_open(dbpath, schema_v2, 2, &db), DRV_OK);
	assert_int_equal(count(db, "PRAGMA synchronous"), 2);
	assert_int_equal(
	        count(db, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"),
	        1);
	drv_db_close(db);
}

static void newer_schema_refused(void **state)
{
	(void)state;
	sqlite3 *db = NULL;

	/* the file is at version 2; a program that knows only 1 must not touch it */
	assert_int_equal(drv_db_open(dbpath, schema_v2, 1, &db), DRV_EVERSION);
	assert_null(db);
}

static void failing_migration_rolls_back(void **state)
{
	(void)state;
	static const char *const broken[] = {
	        "CREATE TABLE t (x);",
	        "INSERT INTO t VALUES (1); THIS IS NOT SQL;",
	};
	char p[300];
	sqlite3 *db = NULL;
	int v;

	snprintf(p, sizeof(p), "%s/broken.db", dir);
	assert_int_equal(drv_db_open(p, broken, 2, &db), DRV_EDB);
	assert_int_equal(drv_db_open(p, broken, 1, &db), DRV_OK);
	assert_int_equal(drv_db_user_version(db, &v), DRV_OK);
	assert_int_equal(v, 1);
	assert_int_equal(count(db, "SELECT count(*) FROM t"), 0);
	drv_db_close(db);
	drv_db_close(NULL);
}

static void unopenable_path_reported(void **state)
{
	(void)state;
	sqlite3 *db = NULL;

	assert_int_equal(drv_db_open("/nonexistent-dir/x/y.db", schema_v2, 1, &db), DRV_EDB);
	assert_null(db);
}

/* A connection with a table t (x) holding 1, 2, 3. */
static sqlite3 *cache_db(const char *name)
{
	static const char *const schema[] = {"CREATE TABLE t (x INTEGER);"
	                                     "INSERT INTO t VALUES (1), (2), (3);"};
	char p[300];
	sqlite3 *db = NULL;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_int_equal(drv_db_open(p, schema, 1, &db), DRV_OK);
	return db;
}

static void stmt_cache_reuses_prepared_statements(void **state)
{
	(void)state;
	sqlite3 *db = cache_db("cache1.db");
	struct drv_stmt_cache c;
	sqlite3_stmt *a, *b;
	char sql[64];

	drv_stmt_cache_init(&c, db);
	assert_int_equal(drv_stmt_get(&c, "SELECT x FROM t WHERE x = ?", &a), DRV_OK);
	sqlite3_bind_int(a, 1, 2);
	assert_int_equal(sqlite3_step(a), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(a, 0), 2);
	drv_stmt_done(&c, a);
	/* the same text (another buffer): the same statement, reset and unbound */
	snprintf(sql, sizeof(sql), "SELECT x FROM t WHERE x = ?");
	assert_int_equal(drv_stmt_get(&c, sql, &b), DRV_OK);
	assert_ptr_equal(a, b);
	assert_false(sqlite3_stmt_busy(b));
	assert_int_equal(sqlite3_step(b), SQLITE_DONE); /* NULL bound: no row */
	drv_stmt_done(&c, b);
	assert_int_equal(c.n, 1);
	/* bad SQL is refused and not cached */
	assert_int_equal(drv_stmt_get(&c, "SELEKT nothing", &b), DRV_EDB);
	assert_int_equal(c.n, 1);
	drv_stmt_cache_clear(&c);
	drv_stmt_done(&c, NULL);
	drv_db_close(db);
}

static void stmt_cache_reentered_gets_a_private_statement(void **state)
{
	(void)state;
	sqlite3 *db = cache_db("cache2.db");
	const char *sql = "SELECT x FROM t ORDER BY x";
	struct drv_stmt_cache c;
	sqlite3_stmt *outer, *inner;
	int seen = 0;

	drv_stmt_cache_init(&c, db);
	assert_int_equal(drv_stmt_get(&c, sql, &outer), DRV_OK);
	while (sqlite3_step(outer) == SQLITE_ROW) {
		/* the same query while the outer one is being stepped */
		assert_int_equal(drv_stmt_get(&c, sql, &inner), DRV_OK);
		assert_ptr_not_equal(inner, outer);
		assert_int_equal(sqlite3_step(inner), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(inner, 0), 1);
		drv_stmt_done(&c, inner); /* finalized: not one of the cache's */
		seen++;
	}
	assert_int_equal(seen, 3);
	drv_stmt_done(&c, outer);
	assert_int_equal(c.n, 1);
	drv_stmt_cache_clear(&c);
	drv_db_close(db);
}

static void stmt_cache_full_still_serves(void **state)
{
	(void)state;
	sqlite3 *db = cache_db("cache3.db");
	static char sql[DRV_STMT_CACHE_MAX + 5][48];
	struct drv_stmt_cache c;
	sqlite3_stmt *st;

	drv_stmt_cache_init(&c, db);
	for (int i = 0; i < DRV_STMT_CACHE_MAX + 5; i++) {
		snprintf(sql[i], sizeof(sql[i]), "SELECT x + %d FROM t WHERE x = 1", i);
		assert_int_equal(drv_stmt_get(&c, sql[i], &st), DRV_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 1 + i);
		drv_stmt_done(&c, st);
	}
	assert_int_equal(c.n, DRV_STMT_CACHE_MAX);
	/* a statement given back holds no read snapshot: another connection can
	 * write and then checkpoint the whole WAL away (busy = 0) */
	sqlite3 *other = cache_db("cache3.db");
	assert_int_equal(drv_db_exec(other, "INSERT INTO t VALUES (4)"), DRV_OK);
	assert_int_equal(count(other, "PRAGMA wal_checkpoint(TRUNCATE)"), 0);
	drv_db_close(other);
	drv_stmt_cache_clear(&c);
	assert_int_equal(c.n, 0);
	drv_db_close(db); /* SQLITE_OK only if no statement is left */
}

/* A bind that fails (here: a parameter the statement does not have) is not
 * forgotten: the step returns its error and writes nothing, instead of
 * running with that parameter NULL or left from the last use; a reset or
 * giving the statement back clears it. */
static int64_t rows(struct drv_sql *db)
{
	struct drv_sql_stmt *st;
	int64_t n = -1;

	assert_int_equal(drv_sql_prepare(db, "SELECT count(*) FROM b", &st), DRV_OK);
	if (drv_sql_step(st) == DRV_SQL_ROW)
		n = drv_sql_col_int64(st, 0);
	drv_sql_finalize(st);
	return n;
}

static void failed_bind_stops_the_step(void **state)
{
	(void)state;
	static const struct drv_sql_migration mig[] = {{.sql = "CREATE TABLE b (x TEXT);"}};
	const char *ins = "INSERT INTO b (x) VALUES (?)";
	struct drv_sql *db;
	struct drv_sql_stmt *st;
	char p[300];

	snprintf(p, sizeof(p), "%s/bind.db", dir);
	assert_int_equal(drv_sql_open(p, mig, 1, &db), DRV_OK);
	assert_int_equal(drv_sql_cached(db, ins, &st), DRV_OK);
	assert_int_equal(drv_sql_bind_text(st, 1, "kept"), DRV_OK);
	assert_int_equal(drv_sql_step(st), DRV_SQL_DONE);
	drv_sql_reset(st);
	assert_int_not_equal(drv_sql_bind_text(st, 2, "nowhere"), DRV_OK);
	assert_int_equal(drv_sql_step(st), DRV_EINVAL);
	assert_int_equal(rows(db), 1);
	drv_sql_done(st);
	/* the cached statement again: clean */
	assert_int_equal(drv_sql_cached(db, ins, &st), DRV_OK);
	assert_int_equal(drv_sql_bind_text(st, 1, "again"), DRV_OK);
	assert_int_equal(drv_sql_step(st), DRV_SQL_DONE);
	drv_sql_done(st);
	assert_int_equal(rows(db), 2);
	/* a failed bind among good ones on a private statement */
	assert_int_equal(drv_sql_prepare(db, ins, &st), DRV_OK);
	assert_int_not_equal(drv_sql_bind_int64(st, 0, 7), DRV_OK);
	assert_int_equal(drv_sql_bind_text(st, 1, "late"), DRV_OK);
	assert_int_equal(drv_sql_step(st), DRV_EINVAL);
	drv_sql_finalize(st);
	assert_int_equal(rows(db), 2);
	drv_sql_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(migrations_applied_exactly_once),
	        cmocka_unit_test(commits_are_synced_before_they_return),
	        cmocka_unit_test(newer_schema_refused),
	        cmocka_unit_test(failing_migration_rolls_back),
	        cmocka_unit_test(unopenable_path_reported),
	        cmocka_unit_test(stmt_cache_reuses_prepared_statements),
	        cmocka_unit_test(stmt_cache_reentered_gets_a_private_statement),
	        cmocka_unit_test(stmt_cache_full_still_serves),
	        cmocka_unit_test(failed_bind_stops_the_step),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
