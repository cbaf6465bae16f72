/*
 * db.h: opening SQLite databases the way drover wants them.
 *
 * WAL journal with synchronous=FULL (a commit is on disk when it returns:
 * what a peer was told is saved survives an OS crash), a busy timeout,
 * foreign keys on, and schema migrations keyed
 * by PRAGMA user_version: migration i (0-based) runs once, in its own
 * transaction, when user_version == i, and sets user_version = i + 1.
 */
#ifndef DRV_DB_H
#define DRV_DB_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define DRV_DB_BUSY_MS 5000

int drv_db_open(const char *path, const char *const *migrations, size_t n_migrations,
                sqlite3 **out);
void drv_db_close(sqlite3 *db);
/* Run SQL with no result rows; logs the SQLite error on failure. */
int drv_db_exec(sqlite3 *db, const char *sql);
int drv_db_user_version(sqlite3 *db, int *out);
/* Step st to the end, one element of a new array per row (row(st) makes
 * it), and finalize st. *out is the caller's, written only on success. */
int drv_db_rows_json(sqlite3_stmt *st, json_t *(*row)(sqlite3_stmt *st), json_t **out);

/*
 * Prepared statements, kept. Preparing (parsing and planning) a small
 * statement costs more than running it: in droverd under load it was a third
 * of all CPU time (docs/benchmarks.md). A cache holds one prepared statement
 * per SQL text for one connection; it has no lock of its own, so it belongs
 * to whoever serializes the use of that connection.
 *
 *   drv_stmt_get   a ready statement for sql: the cached one (reset, no
 *                  bindings), or a new one that is cached; if the cached one
 *                  is in use further up the stack (a SELECT being stepped) or
 *                  the cache is full, a fresh one that drv_stmt_done
 *                  finalizes. The caller owns it until drv_stmt_done.
 *   drv_stmt_done  give it back (reset and unbound, or finalized); NULL is ok.
 * sql is compared by content; it must stay valid while the cache lives
 * (string literals do).
 */
#define DRV_STMT_CACHE_MAX 64

struct drv_stmt_cache {
	sqlite3 *db;
	size_t n;
	struct {
		const char *sql;
		uint32_t hash;
		sqlite3_stmt *st;
	} e[DRV_STMT_CACHE_MAX];
};

void drv_stmt_cache_init(struct drv_stmt_cache *c, sqlite3 *db);
/* Finalize every cached statement (before closing the connection). */
void drv_stmt_cache_clear(struct drv_stmt_cache *c);
/* DRV_EDB (logged) if SQLite refuses the SQL. */
int drv_stmt_get(struct drv_stmt_cache *c, const char *sql, sqlite3_stmt **out);
void drv_stmt_done(struct drv_stmt_cache *c, sqlite3_stmt *st);

#endif
