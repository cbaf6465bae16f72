/* test_db.c: SQLite open helper and user_version migrations. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(migrations_applied_exactly_once),
	        cmocka_unit_test(newer_schema_refused),
	        cmocka_unit_test(failing_migration_rolls_back),
	        cmocka_unit_test(unopenable_path_reported),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
