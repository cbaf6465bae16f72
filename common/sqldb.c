/* sqldb.c: the engine-neutral SQL API (sqldb.h): open, migrate, statement
 * cache, locking; the work is done by the engine's ops table. */
#include "sqldb_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "clock.h"
#include "db.h"
#include "err.h"
#include "log.h"

static int migrate(struct drv_sql *db, const struct drv_sql_migration *mig, size_t n)
{
	int version, rc;

	if (mig == NULL)
		return DRV_OK; /* as it is (a tool, a test) */
	rc = db->ops->version(db, &version);
	if (rc != DRV_OK)
		return rc;
	if (version < 0 || (size_t)version > n) {
		drv_error("db", "database schema is newer than this program", "schema=%d known=%zu",
		          version, n);
		return DRV_EVERSION;
	}
	for (size_t i = (size_t)version; i < n; i++) {
		rc = db->ops->migrate(db, &mig[i], (int)i + 1);
		if (rc != DRV_OK)
			return rc;
		drv_info("db", "schema migrated", "to=%zu", i + 1);
	}
	return DRV_OK;
}

int drv_sql_open(const char *target, const struct drv_sql_migration *mig, size_t n_mig,
                 struct drv_sql **out)
{
	struct drv_sql *db = calloc(1, sizeof(*db));
	pthread_mutexattr_t a;
	bool pg = strncmp(target, DRV_SQL_PG_PREFIX, strlen(DRV_SQL_PG_PREFIX)) == 0;
	int rc;

	if (db == NULL)
		return DRV_ENOMEM;
	db->ops = pg ? &drv_sql_pg_ops : &drv_sql_sqlite_ops;
	db->engine = pg ? DRV_SQL_PG : DRV_SQL_SQLITE;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&db->mu, &a);
	pthread_mutexattr_destroy(&a);
	rc = db->ops->open(db, pg ? target + strlen(DRV_SQL_PG_PREFIX) : target);
	if (rc == DRV_OK) {
		pthread_mutex_lock(&db->mu);
		rc = migrate(db, mig, n_mig);
		pthread_mutex_unlock(&db->mu);
		if (rc != DRV_OK)
			db->ops->close(db);
	}
	if (rc != DRV_OK) {
		pthread_mutex_destroy(&db->mu);
		free(db);
		return rc;
	}
	*out = db;
	return DRV_OK;
}

void drv_sql_close(struct drv_sql *db)
{
	if (db == NULL)
		return;
	for (size_t i = 0; i < db->n; i++) {
		db->ops->finalize(db->cache[i].st);
		free(db->cache[i].st);
	}
	db->ops->close(db);
	pthread_mutex_destroy(&db->mu);
	free(db);
}

enum drv_sql_engine drv_sql_engine_of(const struct drv_sql *db)
{
	return db->engine;
}

void *drv_sql_handle(struct drv_sql *db)
{
	return db->ops->handle(db);
}

int drv_sql_version(struct drv_sql *db, int *out)
{
	int rc;

	pthread_mutex_lock(&db->mu);
	rc = db->ops->version(db, out);
	pthread_mutex_unlock(&db->mu);
	return rc;
}

void drv_sql_lock(struct drv_sql *db)
{
	pthread_mutex_lock(&db->mu);
}

void drv_sql_unlock(struct drv_sql *db)
{
	pthread_mutex_unlock(&db->mu);
}

void drv_sql_set_err(struct drv_sql *db, const char *msg)
{
	snprintf(db->err, sizeof(db->err), "%s", msg ? msg : "?");
}

const char *drv_sql_errmsg(struct drv_sql *db)
{
	return db->err;
}

int64_t drv_sql_changes(struct drv_sql *db)
{
	return db->changes;
}

bool drv_sql_in_tx(struct drv_sql *db)
{
	bool r;

	pthread_mutex_lock(&db->mu);
	r = db->ops->in_tx(db);
	pthread_mutex_unlock(&db->mu);
	return r;
}

void drv_sql_set_fence(struct drv_sql *db, drv_sql_fence_fn check, void *arg)
{
	pthread_mutex_lock(&db->mu);
	db->fence = check;
	db->fence_arg = arg;
	pthread_mutex_unlock(&db->mu);
}

int drv_sql_run_fence(struct drv_sql *db)
{
	drv_sql_fence_fn f = db->fence;
	int rc;

	if (f == NULL)
		return DRV_OK;
	db->fence = NULL; /* the check's own statements are not fenced */
	rc = f(db, db->fence_arg);
	db->fence = f;
	if (rc == DRV_EFENCED)
		drv_sql_set_err(db, "fenced: this node no longer holds the leader lease");
	/* any other error (the transaction failed before, the server is gone)
	 * keeps its message: the commit is refused all the same */
	return rc;
}

static bool word_is(const char *s, const char *w)
{
	size_t n = strlen(w);

	return strncasecmp(s, w, n) == 0 && !isalnum((unsigned char)s[n]) && s[n] != '_';
}

enum drv_sql_kind drv_sql_kind_of(const char *sql)
{
	while (isspace((unsigned char)*sql))
		sql++;
	if (word_is(sql, "INSERT") || word_is(sql, "UPDATE") || word_is(sql, "DELETE") ||
	    word_is(sql, "REPLACE") || word_is(sql, "CREATE") || word_is(sql, "DROP") ||
	    word_is(sql, "ALTER") || word_is(sql, "WITH"))
		return SQL_WRITE;
	if (word_is(sql, "BEGIN"))
		return SQL_BEGIN;
	if (word_is(sql, "COMMIT") || word_is(sql, "END"))
		return SQL_COMMIT;
	if (word_is(sql, "ROLLBACK") && !word_is(sql + 8 + strspn(sql + 8, " "), "TO"))
		return SQL_ROLLBACK;
	return SQL_OTHER;
}

int drv_sql_exec(struct drv_sql *db, const char *sql)
{
	int rc;

	pthread_mutex_lock(&db->mu);
	rc = db->ops->exec(db, sql);
	pthread_mutex_unlock(&db->mu);
	if (rc != DRV_OK)
		drv_error("db", "statement failed", "error=\"%s\"", db->err);
	return rc;
}

int drv_sql_begin(struct drv_sql *db)
{
	return drv_sql_exec(db, db->engine == DRV_SQL_SQLITE ? "BEGIN IMMEDIATE" : "BEGIN");
}

int drv_sql_commit(struct drv_sql *db)
{
	return drv_sql_exec(db, "COMMIT");
}

void drv_sql_rollback(struct drv_sql *db)
{
	pthread_mutex_lock(&db->mu);
	if (db->ops->in_tx(db))
		db->ops->exec(db, "ROLLBACK");
	pthread_mutex_unlock(&db->mu);
}

/* ---- statements ---- */

static int stmt_new(struct drv_sql *db, const char *sql, bool cached, struct drv_sql_stmt **out)
{
	struct drv_sql_stmt *st = calloc(1, sizeof(*st));
	int rc;

	if (st == NULL)
		return DRV_ENOMEM;
	st->db = db;
	st->sql = sql;
	st->kind = drv_sql_kind_of(sql);
	st->cached = cached;
	pthread_mutex_lock(&db->mu);
	rc = db->ops->prepare(st, cached);
	pthread_mutex_unlock(&db->mu);
	if (rc != DRV_OK) {
		drv_error("db", "prepare failed", "error=\"%s\"", db->err);
		free(st);
		return rc;
	}
	*out = st;
	return DRV_OK;
}

int drv_sql_prepare(struct drv_sql *db, const char *sql, struct drv_sql_stmt **out)
{
	return stmt_new(db, sql, false, out);
}

void drv_sql_finalize(struct drv_sql_stmt *st)
{
	struct drv_sql *db;

	if (st == NULL)
		return;
	if (st->cached) {
		drv_sql_done(st);
		return;
	}
	db = st->db;
	pthread_mutex_lock(&db->mu);
	db->ops->finalize(st);
	pthread_mutex_unlock(&db->mu);
	free(st);
}

static uint32_t sql_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s != '\0')
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

/* The cache is looked up and its busy marks set under the connection's
 * (recursive) lock: threads that share a connection may each take a
 * statement (one of them gets a private copy while another steps it). */
static int cached_locked(struct drv_sql *db, const char *sql, struct drv_sql_stmt **out)
{
	uint32_t h = sql_hash(sql);
	size_t i;
	int rc;

	for (i = 0; i < db->n; i++) {
		if (db->cache[i].hash == h && strcmp(db->cache[i].sql, sql) == 0)
			break;
	}
	if (i < db->n) {
		if (db->cache[i].st->busy)
			return stmt_new(db, sql, false, out); /* re-entered: a private one */
		db->cache[i].st->busy = true;
		*out = db->cache[i].st;
		return DRV_OK;
	}
	if (db->n == DRV_SQL_CACHE_MAX)
		return stmt_new(db, sql, false, out);
	rc = stmt_new(db, sql, true, &db->cache[db->n].st);
	if (rc != DRV_OK)
		return rc;
	db->cache[db->n].sql = sql;
	db->cache[db->n].hash = h;
	db->cache[db->n].st->busy = true;
	*out = db->cache[db->n++].st;
	return DRV_OK;
}

int drv_sql_cached(struct drv_sql *db, const char *sql, struct drv_sql_stmt **out)
{
	int rc;

	pthread_mutex_lock(&db->mu);
	rc = cached_locked(db, sql, out);
	pthread_mutex_unlock(&db->mu);
	return rc;
}

void drv_sql_done(struct drv_sql_stmt *st)
{
	if (st == NULL)
		return;
	if (!st->cached) {
		drv_sql_finalize(st);
		return;
	}
	pthread_mutex_lock(&st->db->mu);
	st->db->ops->reset(st, true);
	st->bind_rc = DRV_OK;
	st->busy = false;
	pthread_mutex_unlock(&st->db->mu);
}

void drv_sql_reset(struct drv_sql_stmt *st)
{
	pthread_mutex_lock(&st->db->mu);
	st->db->ops->reset(st, false);
	st->bind_rc = DRV_OK;
	pthread_mutex_unlock(&st->db->mu);
}

/* A failed bind is kept: the caller's next step returns it (most callers
 * bind without looking at the result; a statement must not then run with
 * that parameter NULL or left from the previous use). */
static int bound(struct drv_sql_stmt *st, int i, int rc)
{
	if (rc != DRV_OK && st->bind_rc == DRV_OK) {
		st->bind_rc = rc;
		st->bind_at = i;
	}
	return rc;
}

int drv_sql_bind_text(struct drv_sql_stmt *st, int i, const char *v)
{
	if (v == NULL)
		return drv_sql_bind_null(st, i);
	return bound(st, i, st->db->ops->bind_text(st, i, v, strlen(v)));
}

int drv_sql_bind_textn(struct drv_sql_stmt *st, int i, const char *v, size_t n)
{
	return bound(st, i, st->db->ops->bind_text(st, i, v, n));
}

int drv_sql_bind_int64(struct drv_sql_stmt *st, int i, int64_t v)
{
	return bound(st, i, st->db->ops->bind_int64(st, i, v));
}

int drv_sql_bind_double(struct drv_sql_stmt *st, int i, double v)
{
	return bound(st, i, st->db->ops->bind_double(st, i, v));
}

int drv_sql_bind_blob(struct drv_sql_stmt *st, int i, const void *v, size_t n)
{
	return bound(st, i, st->db->ops->bind_blob(st, i, v, n));
}

int drv_sql_bind_null(struct drv_sql_stmt *st, int i)
{
	return bound(st, i, st->db->ops->bind_null(st, i));
}

int drv_sql_step(struct drv_sql_stmt *st)
{
	int64_t until = 0;
	int rc;

	if (st->bind_rc != DRV_OK) {
		drv_error("db", "statement not run: a parameter could not be bound",
		          "param=%d rc=%d sql=%.60s", st->bind_at, st->bind_rc,
		          st->sql != NULL ? st->sql : "");
		return st->bind_rc;
	}
	for (;;) {
		pthread_mutex_lock(&st->db->mu);
		rc = st->db->ops->step(st);
		pthread_mutex_unlock(&st->db->mu);
		if (rc != DRV_SQL_BUSY)
			return rc;
		/* the reader holding the connection needs it to finish: wait unlocked */
		if (until == 0)
			until = drv_mono_ms() + DRV_DB_BUSY_MS;
		if (drv_mono_ms() >= until)
			return DRV_EDB;
		usleep(500);
	}
}

const char *drv_sql_col_text(struct drv_sql_stmt *st, int i)
{
	return st->db->ops->col_text(st, i);
}

int64_t drv_sql_col_int64(struct drv_sql_stmt *st, int i)
{
	return st->db->ops->col_int64(st, i);
}

double drv_sql_col_double(struct drv_sql_stmt *st, int i)
{
	return st->db->ops->col_double(st, i);
}

const void *drv_sql_col_blob(struct drv_sql_stmt *st, int i)
{
	return st->db->ops->col_blob(st, i);
}

size_t drv_sql_col_bytes(struct drv_sql_stmt *st, int i)
{
	return st->db->ops->col_bytes(st, i);
}

bool drv_sql_col_null(struct drv_sql_stmt *st, int i)
{
	return st->db->ops->col_null(st, i);
}

int drv_sql_rows_json(struct drv_sql_stmt *st, json_t *(*row)(struct drv_sql_stmt *st),
                      json_t **out)
{
	json_t *arr = json_array();
	int rc = arr != NULL ? DRV_OK : DRV_ENOMEM, step = DRV_SQL_DONE;

	while (rc == DRV_OK && (step = drv_sql_step(st)) == DRV_SQL_ROW) {
		if (json_array_append_new(arr, row(st)) != 0)
			rc = DRV_ENOMEM;
	}
	if (rc == DRV_OK && step != DRV_SQL_DONE)
		rc = step == DRV_SQL_ROW ? DRV_EDB : step;
	drv_sql_finalize(st);
	if (rc != DRV_OK) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return DRV_OK;
}
