/* sql_sqlite.c: the SQLite engine of sqldb.h (the embedded default). The
 * connection settings and migrations are db.c's, as for the agent. */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "err.h"
#include "sqldb_int.h"

#define H(db) ((sqlite3 *)(db)->h)
#define S(st) ((sqlite3_stmt *)(st)->e)

static int err_of(struct drv_sql *db)
{
	int x = sqlite3_extended_errcode(H(db));

	drv_sql_set_err(db, sqlite3_errmsg(H(db)));
	return x == SQLITE_CONSTRAINT_PRIMARYKEY || x == SQLITE_CONSTRAINT_UNIQUE ? DRV_EEXIST
	                                                                          : DRV_EDB;
}

static int lite_open(struct drv_sql *db, const char *path)
{
	sqlite3 *h;
	/* the migrations are run by sqldb.c, after this */
	int rc = drv_db_open(path, NULL, 0, &h);

	if (rc != DRV_OK) {
		drv_sql_set_err(db, "cannot open database");
		return rc;
	}
	db->h = h;
	return DRV_OK;
}

static void *lite_handle(struct drv_sql *db)
{
	return db->h;
}

static void lite_close(struct drv_sql *db)
{
	drv_db_close(H(db));
}

static int lite_exec(struct drv_sql *db, const char *sql)
{
	if (sqlite3_exec(H(db), sql, NULL, NULL, NULL) != SQLITE_OK)
		return err_of(db);
	db->changes = sqlite3_changes(H(db));
	return DRV_OK;
}

static int lite_version(struct drv_sql *db, int *out)
{
	return drv_db_user_version(H(db), out);
}

static int lite_migrate(struct drv_sql *db, const struct drv_sql_migration *m, int to)
{
	char pragma[64];
	int rc;

	snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", to);
	rc = lite_exec(db, "BEGIN IMMEDIATE");
	if (rc == DRV_OK && m->sql != NULL)
		rc = lite_exec(db, m->sql);
	if (rc == DRV_OK && m->sqlite != NULL)
		rc = lite_exec(db, m->sqlite);
	if (rc == DRV_OK)
		rc = lite_exec(db, pragma);
	if (rc == DRV_OK)
		rc = lite_exec(db, "COMMIT");
	if (rc != DRV_OK) {
		sqlite3_exec(H(db), "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	return DRV_OK;
}

static bool lite_in_tx(struct drv_sql *db)
{
	return !sqlite3_get_autocommit(H(db));
}

static int lite_prepare(struct drv_sql_stmt *st, bool persistent)
{
	sqlite3_stmt *s;

	if (sqlite3_prepare_v3(H(st->db), st->sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0,
	                       &s, NULL) != SQLITE_OK)
		return err_of(st->db);
	st->e = s;
	return DRV_OK;
}

static void lite_finalize(struct drv_sql_stmt *st)
{
	sqlite3_finalize(S(st));
}

static void lite_reset(struct drv_sql_stmt *st, bool clear)
{
	sqlite3_reset(S(st));
	if (clear)
		sqlite3_clear_bindings(S(st));
}

static int bound(int rc)
{
	return rc == SQLITE_OK ? DRV_OK : rc == SQLITE_NOMEM ? DRV_ENOMEM : DRV_EINVAL;
}

static int lite_bind_text(struct drv_sql_stmt *st, int i, const char *v, size_t n)
{
	return bound(sqlite3_bind_text64(S(st), i, v, n, SQLITE_TRANSIENT, SQLITE_UTF8));
}

static int lite_bind_int64(struct drv_sql_stmt *st, int i, int64_t v)
{
	return bound(sqlite3_bind_int64(S(st), i, v));
}

static int lite_bind_double(struct drv_sql_stmt *st, int i, double v)
{
	return bound(sqlite3_bind_double(S(st), i, v));
}

static int lite_bind_blob(struct drv_sql_stmt *st, int i, const void *v, size_t n)
{
	return bound(sqlite3_bind_blob64(S(st), i, v, n, SQLITE_TRANSIENT));
}

static int lite_bind_null(struct drv_sql_stmt *st, int i)
{
	return bound(sqlite3_bind_null(S(st), i));
}

static int lite_step(struct drv_sql_stmt *st)
{
	int rc = sqlite3_step(S(st));

	if (rc == SQLITE_ROW)
		return DRV_SQL_ROW;
	if (rc == SQLITE_DONE) {
		if (st->kind == SQL_WRITE)
			st->db->changes = sqlite3_changes(H(st->db));
		return DRV_SQL_DONE;
	}
	if ((rc & 0xff) == SQLITE_BUSY && st->kind == SQL_WRITE && !lite_in_tx(st->db)) {
		sqlite3_reset(S(st));
		return DRV_SQL_BUSY;
	}
	rc = err_of(st->db);
	sqlite3_reset(S(st)); /* the error stays in errmsg; the statement is ready again */
	return rc;
}

static const char *lite_col_text(struct drv_sql_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(S(st), i);
}

static int64_t lite_col_int64(struct drv_sql_stmt *st, int i)
{
	return sqlite3_column_int64(S(st), i);
}

static double lite_col_double(struct drv_sql_stmt *st, int i)
{
	return sqlite3_column_double(S(st), i);
}

static const void *lite_col_blob(struct drv_sql_stmt *st, int i)
{
	return sqlite3_column_blob(S(st), i);
}

static size_t lite_col_bytes(struct drv_sql_stmt *st, int i)
{
	return (size_t)sqlite3_column_bytes(S(st), i);
}

static bool lite_col_null(struct drv_sql_stmt *st, int i)
{
	return sqlite3_column_type(S(st), i) == SQLITE_NULL;
}

const struct drv_sql_ops drv_sql_sqlite_ops = {
        .open = lite_open,
        .handle = lite_handle,
        .close = lite_close,
        .exec = lite_exec,
        .version = lite_version,
        .migrate = lite_migrate,
        .in_tx = lite_in_tx,
        .prepare = lite_prepare,
        .finalize = lite_finalize,
        .reset = lite_reset,
        .bind_text = lite_bind_text,
        .bind_int64 = lite_bind_int64,
        .bind_double = lite_bind_double,
        .bind_blob = lite_bind_blob,
        .bind_null = lite_bind_null,
        .step = lite_step,
        .col_text = lite_col_text,
        .col_int64 = lite_col_int64,
        .col_double = lite_col_double,
        .col_blob = lite_col_blob,
        .col_bytes = lite_col_bytes,
        .col_null = lite_col_null,
};
