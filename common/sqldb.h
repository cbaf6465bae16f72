/*
 * sqldb.h: the coordinator's SQL store, on either engine.
 *
 * One small API over two engines behind one ops table: SQLite (the embedded
 * default, one file) and PostgreSQL through libpq (the shared store of an HA
 * group). Callers write standard SQL with `?` (or `?N`) placeholders; the
 * PostgreSQL engine turns them into $n. Values are always bound, never
 * formatted into SQL text.
 *
 *   target     "pg:CONNINFO" opens PostgreSQL with that libpq conninfo (URI
 *              or key=value); anything else is a SQLite file path.
 *   statements drv_sql_prepare gives a private statement (drv_sql_finalize
 *              frees it); drv_sql_cached one kept per SQL text for the life
 *              of the connection (drv_sql_done gives it back). The cache has
 *              no lock of its own: it belongs to whoever serializes the use
 *              of the connection.
 *   threads    a connection may be used from several threads (each call is
 *              serialized); a transaction spanning calls is the caller's to
 *              serialize, drv_sql_lock holds the connection for that.
 *   fencing    drv_sql_set_fence installs a check run inside every write
 *              transaction right before it commits, and around each write
 *              outside a transaction (PostgreSQL only: with SQLite there is
 *              no other node to fence off). When it fails the transaction is
 *              rolled back and the write returns DRV_EFENCED.
 *   errors     DRV_EDB, DRV_EEXIST for a unique/primary key violation,
 *              DRV_EFENCED; drv_sql_errmsg says what the engine said.
 *
 * Migrations come from one description (struct drv_sql_migration): the
 * shared text is written in SQLite's dialect with INTEGER for 64-bit
 * integers, BLOB, and INTEGER PRIMARY KEY AUTOINCREMENT; the PostgreSQL
 * engine maps those to BIGINT, BYTEA and an identity column. What cannot be
 * shared (triggers) has one text per engine. SQLite counts migrations in
 * PRAGMA user_version, PostgreSQL in the table schema_version.
 */
#ifndef DRV_SQLDB_H
#define DRV_SQLDB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum drv_sql_engine { DRV_SQL_SQLITE, DRV_SQL_PG };

/* drv_sql_step results (errors are the DRV_E* codes, all below these) */
#define DRV_SQL_ROW  100
#define DRV_SQL_DONE 101

struct drv_sql;
struct drv_sql_stmt;

struct drv_sql_migration {
	const char *sql;    /* both engines (PostgreSQL: types mapped) */
	const char *sqlite; /* SQLite only, after sql; may be NULL */
	const char *pg;     /* PostgreSQL only, after sql; may be NULL */
};

#define DRV_SQL_PG_PREFIX "pg:"

/* Open target (see above) and bring its schema to the last migration (mig
 * NULL: leave the schema as it is). */
int drv_sql_open(const char *target, const struct drv_sql_migration *mig, size_t n_mig,
                 struct drv_sql **out);
void drv_sql_close(struct drv_sql *db);
enum drv_sql_engine drv_sql_engine_of(const struct drv_sql *db);
/* The engine's own handle (sqlite3 * or PGconn *), for engine-specific
 * probes (disk space, PRAGMAs); not for SQL that others could share. */
void *drv_sql_handle(struct drv_sql *db);
/* Schema version (migrations applied). */
int drv_sql_version(struct drv_sql *db, int *out);

/* SQL with no parameters and no rows; may hold several statements. */
int drv_sql_exec(struct drv_sql *db, const char *sql);
/* BEGIN (SQLite: IMMEDIATE), COMMIT (runs the fence), ROLLBACK. */
int drv_sql_begin(struct drv_sql *db);
int drv_sql_commit(struct drv_sql *db);
void drv_sql_rollback(struct drv_sql *db);
bool drv_sql_in_tx(struct drv_sql *db);
void drv_sql_lock(struct drv_sql *db);
void drv_sql_unlock(struct drv_sql *db);

int drv_sql_prepare(struct drv_sql *db, const char *sql, struct drv_sql_stmt **out);
void drv_sql_finalize(struct drv_sql_stmt *st);
int drv_sql_cached(struct drv_sql *db, const char *sql, struct drv_sql_stmt **out);
void drv_sql_done(struct drv_sql_stmt *st);
/* Back to before the first step, bindings kept. */
void drv_sql_reset(struct drv_sql_stmt *st);

/* Parameters count from 1. Values are copied. */
int drv_sql_bind_text(struct drv_sql_stmt *st, int i, const char *v);
int drv_sql_bind_textn(struct drv_sql_stmt *st, int i, const char *v, size_t n);
int drv_sql_bind_int64(struct drv_sql_stmt *st, int i, int64_t v);
int drv_sql_bind_double(struct drv_sql_stmt *st, int i, double v);
int drv_sql_bind_blob(struct drv_sql_stmt *st, int i, const void *v, size_t n);
int drv_sql_bind_null(struct drv_sql_stmt *st, int i);

/* DRV_SQL_ROW, DRV_SQL_DONE or an error (DRV_EDB, DRV_EEXIST, DRV_EFENCED). */
int drv_sql_step(struct drv_sql_stmt *st);
/* Columns count from 0; valid until the next step. NULL text is NULL. */
const char *drv_sql_col_text(struct drv_sql_stmt *st, int i);
int64_t drv_sql_col_int64(struct drv_sql_stmt *st, int i);
double drv_sql_col_double(struct drv_sql_stmt *st, int i);
const void *drv_sql_col_blob(struct drv_sql_stmt *st, int i);
size_t drv_sql_col_bytes(struct drv_sql_stmt *st, int i);
bool drv_sql_col_null(struct drv_sql_stmt *st, int i);

/* Rows changed by the last INSERT/UPDATE/DELETE of this connection. */
int64_t drv_sql_changes(struct drv_sql *db);
const char *drv_sql_errmsg(struct drv_sql *db);

/* Step st to the end, one element of a new array per row (row(st) makes
 * it), and finalize st. *out is the caller's, written only on success. */
int drv_sql_rows_json(struct drv_sql_stmt *st, json_t *(*row)(struct drv_sql_stmt *st),
                      json_t **out);

/* The fence: check(db, arg) runs inside the transaction that is about to
 * commit a write and returns DRV_OK to let it commit, DRV_EFENCED when this
 * node no longer leads, or another error. NULL removes it. */
typedef int (*drv_sql_fence_fn)(struct drv_sql *db, void *arg);
void drv_sql_set_fence(struct drv_sql *db, drv_sql_fence_fn check, void *arg);

/* ---- engines (sql_sqlite.c, sql_pg.c); not for callers ---- */
struct drv_sql_ops;
extern const struct drv_sql_ops drv_sql_sqlite_ops;
extern const struct drv_sql_ops drv_sql_pg_ops;

#endif
