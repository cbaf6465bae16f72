/*
 * db.h: opening SQLite databases the way drover wants them.
 *
 * WAL journal, a busy timeout, foreign keys on, and schema migrations keyed
 * by PRAGMA user_version: migration i (0-based) runs once, in its own
 * transaction, when user_version == i, and sets user_version = i + 1.
 */
#ifndef DRV_DB_H
#define DRV_DB_H

#include <sqlite3.h>
#include <stddef.h>

#define DRV_DB_BUSY_MS 5000

int drv_db_open(const char *path, const char *const *migrations, size_t n_migrations,
                sqlite3 **out);
void drv_db_close(sqlite3 *db);
/* Run SQL with no result rows; logs the SQLite error on failure. */
int drv_db_exec(sqlite3 *db, const char *sql);
int drv_db_user_version(sqlite3 *db, int *out);

#endif
