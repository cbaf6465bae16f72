/* db.c: SQLite open helper and user_version migrations. */
#include "db.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "log.h"

int drv_db_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		drv_error("db", "statement failed", "error=\"%s\"", msg ? msg : "?");
		sqlite3_free(msg);
		return DRV_EDB;
	}
	return DRV_OK;
}

int drv_db_user_version(sqlite3 *db, int *out)
{
	sqlite3_stmt *st;
	int rc = DRV_EDB;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return DRV_EDB;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		rc = DRV_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

static int migrate(sqlite3 *db, const char *const *migrations, size_t n)
{
	char pragma[64];
	int version, rc;

	rc = drv_db_user_version(db, &version);
	if (rc != DRV_OK)
		return rc;
	if (version < 0 || (size_t)version > n) {
		drv_error("db", "database schema is newer than this program", "schema=%d known=%zu",
		          version, n);
		return DRV_EVERSION;
	}
	for (size_t i = (size_t)version; i < n; i++) {
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%zu", i + 1);
		rc = drv_db_exec(db, "BEGIN IMMEDIATE");
		if (rc == DRV_OK)
			rc = drv_db_exec(db, migrations[i]);
		if (rc == DRV_OK)
			rc = drv_db_exec(db, pragma);
		if (rc == DRV_OK)
			rc = drv_db_exec(db, "COMMIT");
		if (rc != DRV_OK) {
			drv_db_exec(db, "ROLLBACK");
			return rc;
		}
		drv_info("db", "schema migrated", "to=%zu", i + 1);
	}
	return DRV_OK;
}

/* SQLite's own busy timeout sleeps in growing steps (up to 100 ms), which
 * makes a writer wait far longer than the lock is held when several
 * connections of one process (store, API, events) write in turn. Poll the
 * lock every half millisecond instead, up to DRV_DB_BUSY_MS. */
#define BUSY_STEP_US 500

static int busy_wait(void *arg, int attempts)
{
	(void)arg;
	if ((int64_t)attempts * BUSY_STEP_US >= (int64_t)DRV_DB_BUSY_MS * 1000)
		return 0;
	usleep(BUSY_STEP_US);
	return 1;
}

int drv_db_open(const char *path, const char *const *migrations, size_t n_migrations, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int rc;

	if (sqlite3_open_v2(path, &db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
	                    NULL) != SQLITE_OK) {
		drv_error("db", "cannot open database", "path=%s error=\"%s\"", path,
		          db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return DRV_EDB;
	}
	sqlite3_busy_handler(db, busy_wait, NULL);
	/* FULL: every commit's WAL frames are fsynced before it returns, so a
	 * report acknowledged or a deployment step saved survives an OS crash or
	 * power loss. NORMAL syncs only at checkpoints: a crash could roll back
	 * commits the peer was already told about (docs/security.md). */
	rc = drv_db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	                     " PRAGMA foreign_keys=ON;");
	if (rc == DRV_OK && migrations != NULL)
		rc = migrate(db, migrations, n_migrations);
	if (rc != DRV_OK) {
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return DRV_OK;
}

void drv_db_close(sqlite3 *db)
{
	if (db != NULL)
		sqlite3_close(db);
}

/* ---- statement cache ---- */

void drv_stmt_cache_init(struct drv_stmt_cache *c, sqlite3 *db)
{
	memset(c, 0, sizeof(*c));
	c->db = db;
}

void drv_stmt_cache_clear(struct drv_stmt_cache *c)
{
	for (size_t i = 0; i < c->n; i++)
		sqlite3_finalize(c->e[i].st);
	c->n = 0;
}

static uint32_t sql_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s != '\0')
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

static int prepare(sqlite3 *db, const char *sql, unsigned flags, sqlite3_stmt **out)
{
	if (sqlite3_prepare_v3(db, sql, -1, flags, out, NULL) != SQLITE_OK) {
		drv_error("db", "prepare failed", "error=\"%s\"", sqlite3_errmsg(db));
		return DRV_EDB;
	}
	return DRV_OK;
}

int drv_stmt_get(struct drv_stmt_cache *c, const char *sql, sqlite3_stmt **out)
{
	uint32_t h = sql_hash(sql);
	size_t i;

	for (i = 0; i < c->n; i++) {
		if (c->e[i].hash == h && strcmp(c->e[i].sql, sql) == 0)
			break;
	}
	if (i < c->n) {
		if (sqlite3_stmt_busy(c->e[i].st))
			return prepare(c->db, sql, 0, out); /* re-entered: a private one */
		*out = c->e[i].st;
		return DRV_OK;
	}
	if (c->n == DRV_STMT_CACHE_MAX)
		return prepare(c->db, sql, 0, out);
	if (prepare(c->db, sql, SQLITE_PREPARE_PERSISTENT, &c->e[c->n].st) != DRV_OK)
		return DRV_EDB;
	c->e[c->n].sql = sql;
	c->e[c->n].hash = h;
	*out = c->e[c->n++].st;
	return DRV_OK;
}

void drv_stmt_done(struct drv_stmt_cache *c, sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		if (c->e[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	}
	sqlite3_finalize(st);
}

int drv_db_rows_json(sqlite3_stmt *st, json_t *(*row)(sqlite3_stmt *st), json_t **out)
{
	json_t *arr = json_array();
	int rc = arr != NULL ? DRV_OK : DRV_ENOMEM, step = SQLITE_DONE;

	while (rc == DRV_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		if (json_array_append_new(arr, row(st)) != 0)
			rc = DRV_ENOMEM;
	}
	if (rc == DRV_OK && step != SQLITE_DONE)
		rc = DRV_EDB;
	sqlite3_finalize(st);
	if (rc != DRV_OK) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return DRV_OK;
}
