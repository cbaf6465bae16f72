/* sqldb_int.h: what sqldb.c shares with its engines (sql_sqlite.c, sql_pg.c). */
#ifndef DRV_SQLDB_INT_H
#define DRV_SQLDB_INT_H

#include <pthread.h>

#include "sqldb.h"

#define DRV_SQL_CACHE_MAX 96
#define DRV_SQL_ERR_MAX   256

/* What a statement does to transactions and the fence. */
enum drv_sql_kind { SQL_OTHER, SQL_WRITE, SQL_BEGIN, SQL_COMMIT, SQL_ROLLBACK };

/* An engine's step: a write outside a transaction found the connection busy
 * (SQLite: another thread's open read holds a stale snapshot); sqldb.c
 * steps it again, the connection unlocked in between, within DRV_DB_BUSY_MS. */
#define DRV_SQL_BUSY 102

struct drv_sql {
	const struct drv_sql_ops *ops;
	enum drv_sql_engine engine;
	pthread_mutex_t mu; /* recursive: every call, and drv_sql_lock */
	void *h;            /* sqlite3 * or PGconn * */
	int64_t changes;
	bool tx_wrote; /* the open transaction wrote something */
	bool tx_open;  /* PostgreSQL: a transaction was open after the last call */
	drv_sql_fence_fn fence;
	void *fence_arg;
	unsigned names; /* PostgreSQL prepared statement names */
	size_t n;
	struct {
		const char *sql;
		uint32_t hash;
		struct drv_sql_stmt *st;
	} cache[DRV_SQL_CACHE_MAX];
	char err[DRV_SQL_ERR_MAX];
};

struct drv_sql_stmt {
	struct drv_sql *db;
	const char *sql;
	enum drv_sql_kind kind;
	bool cached, busy;
	/* the first bind that failed since the last reset: step returns it
	 * instead of running with a parameter left NULL or stale */
	int bind_rc, bind_at;
	void *e; /* the engine's statement */
};

struct drv_sql_ops {
	int (*open)(struct drv_sql *db, const char *target);
	void *(*handle)(struct drv_sql *db);
	void (*close)(struct drv_sql *db);
	int (*exec)(struct drv_sql *db, const char *sql);
	int (*version)(struct drv_sql *db, int *out);
	/* one migration, in its own transaction, ending at version to */
	int (*migrate)(struct drv_sql *db, const struct drv_sql_migration *m, int to);
	bool (*in_tx)(struct drv_sql *db);
	int (*prepare)(struct drv_sql_stmt *st, bool persistent);
	void (*finalize)(struct drv_sql_stmt *st);
	void (*reset)(struct drv_sql_stmt *st, bool clear);
	int (*bind_text)(struct drv_sql_stmt *st, int i, const char *v, size_t n);
	int (*bind_int64)(struct drv_sql_stmt *st, int i, int64_t v);
	int (*bind_double)(struct drv_sql_stmt *st, int i, double v);
	int (*bind_blob)(struct drv_sql_stmt *st, int i, const void *v, size_t n);
	int (*bind_null)(struct drv_sql_stmt *st, int i);
	int (*step)(struct drv_sql_stmt *st);
	const char *(*col_text)(struct drv_sql_stmt *st, int i);
	int64_t (*col_int64)(struct drv_sql_stmt *st, int i);
	double (*col_double)(struct drv_sql_stmt *st, int i);
	const void *(*col_blob)(struct drv_sql_stmt *st, int i);
	size_t (*col_bytes)(struct drv_sql_stmt *st, int i);
	bool (*col_null)(struct drv_sql_stmt *st, int i);
};

enum drv_sql_kind drv_sql_kind_of(const char *sql);
void drv_sql_set_err(struct drv_sql *db, const char *msg);
/* Run the fence of db (PostgreSQL engine); DRV_OK without one. */
int drv_sql_run_fence(struct drv_sql *db);

#endif
