/*
 * deploy_live.c: the live_sets table (deploy_live.h). Plain SQL that every
 * store engine runs as it is (the upsert is SQLite's and PostgreSQL's).
 */
#include "deploy_live.h"

#include <stdio.h>

#include "err.h"
#include "log.h"

static int prep(struct drv_sql *db, const char *sql, struct drv_sql_stmt **st)
{
	if (drv_sql_prepare(db, sql, st) != DRV_OK) {
		drv_error("live", "prepare failed", "error=\"%s\"", drv_sql_errmsg(db));
		return DRV_EDB;
	}
	return DRV_OK;
}

int deploy_live_get(struct drv_sql *db, const char *env, const char *service,
                    struct deploy_live *out)
{
	struct drv_sql_stmt *st;
	int rc;

	if (prep(db,
	         "SELECT set_name, deployment_id, updated_ms FROM live_sets"
	         " WHERE environment = ? AND service = ?",
	         &st) != DRV_OK)
		return DRV_EDB;
	drv_sql_bind_text(st, 1, env ? env : "");
	drv_sql_bind_text(st, 2, service);
	switch (drv_sql_step(st)) {
	case DRV_SQL_ROW:
		snprintf(out->set, sizeof(out->set), "%s", drv_sql_col_text(st, 0));
		snprintf(out->deployment, sizeof(out->deployment), "%s", drv_sql_col_text(st, 1));
		out->updated_ms = drv_sql_col_int64(st, 2);
		rc = DRV_OK;
		break;
	case DRV_SQL_DONE: rc = DRV_ENOENT; break;
	default:
		drv_error("live", "query failed", "error=\"%s\"", drv_sql_errmsg(db));
		rc = DRV_EDB;
	}
	drv_sql_finalize(st);
	return rc;
}

int deploy_live_put(struct drv_sql *db, const char *env, const char *service, const char *set,
                    const char *deployment, int64_t now_ms)
{
	struct drv_sql_stmt *st;
	int rc;

	if (prep(db,
	         "INSERT INTO live_sets (environment, service, set_name, deployment_id,"
	         " updated_ms) VALUES (?, ?, ?, ?, ?)"
	         " ON CONFLICT (environment, service) DO UPDATE SET"
	         " set_name = excluded.set_name, deployment_id = excluded.deployment_id,"
	         " updated_ms = excluded.updated_ms",
	         &st) != DRV_OK)
		return DRV_EDB;
	drv_sql_bind_text(st, 1, env ? env : "");
	drv_sql_bind_text(st, 2, service);
	drv_sql_bind_text(st, 3, set);
	drv_sql_bind_text(st, 4, deployment);
	drv_sql_bind_int64(st, 5, now_ms);
	rc = drv_sql_step(st) == DRV_SQL_DONE ? DRV_OK : DRV_EDB;
	if (rc != DRV_OK)
		drv_error("live", "cannot record the live set", "service=%s set=%s error=\"%s\"",
		          service, set, drv_sql_errmsg(db));
	drv_sql_finalize(st);
	return rc;
}
