/* audit.c: append-only audit rows (GET /v1/audit is api/audit_api.c). */
#include "audit.h"

#include "clock.h"
#include "sqldb.h"
#include "err.h"
#include "log.h"

/* INSERT e (status as given); the new row's id in *id when id is not NULL. */
static int insert(struct drv_sql *db, const struct drv_audit_entry *e, int64_t *id)
{
	struct drv_sql_stmt *st;
	int rc;

	if (drv_sql_prepare(db,
	                    "INSERT INTO audit(at_ms, actor, role, remote, method, path, status, "
	                    "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
	                    &st) != DRV_OK) {
		drv_error("audit", "cannot append audit row", "error=\"%s\"", drv_sql_errmsg(db));
		return DRV_EDB;
	}
	drv_sql_bind_int64(st, 1, drv_wall_ms());
	drv_sql_bind_text(st, 2, e->actor ? e->actor : "");
	drv_sql_bind_text(st, 3, e->role ? e->role : "none");
	drv_sql_bind_text(st, 4, e->remote ? e->remote : "");
	drv_sql_bind_text(st, 5, e->method ? e->method : "");
	drv_sql_bind_text(st, 6, e->path ? e->path : "");
	drv_sql_bind_int64(st, 7, e->status);
	drv_sql_bind_text(st, 8, e->detail ? e->detail : "");
	rc = drv_sql_step(st) == DRV_SQL_ROW ? DRV_OK : DRV_EDB;
	if (rc == DRV_OK && id != NULL)
		*id = drv_sql_col_int64(st, 0);
	if (rc == DRV_OK && drv_sql_step(st) != DRV_SQL_DONE)
		rc = DRV_EDB;
	if (rc != DRV_OK)
		drv_error("audit", "cannot append audit row", "error=\"%s\"", drv_sql_errmsg(db));
	drv_sql_finalize(st);
	return rc;
}

int drv_audit_append(struct drv_sql *db, const struct drv_audit_entry *e)
{
	return insert(db, e, NULL);
}

int drv_audit_begin(struct drv_sql *db, const struct drv_audit_entry *e, int64_t *id)
{
	struct drv_audit_entry begun = *e;

	begun.status = 0;
	return insert(db, &begun, id);
}

int drv_audit_finish(struct drv_sql *db, int64_t id, int status, const char *detail)
{
	struct drv_sql_stmt *st;
	int rc;

	if (drv_sql_prepare(db, "UPDATE audit SET status = ?, detail = ? WHERE id = ?", &st) !=
	    DRV_OK)
		return DRV_EDB;
	drv_sql_bind_int64(st, 1, status);
	drv_sql_bind_text(st, 2, detail ? detail : "");
	drv_sql_bind_int64(st, 3, id);
	rc = drv_sql_step(st) == DRV_SQL_DONE ? DRV_OK : DRV_EDB;
	if (rc != DRV_OK)
		drv_error("audit", "cannot complete audit row", "id=%lld error=\"%s\"",
		          (long long)id, drv_sql_errmsg(db));
	drv_sql_finalize(st);
	return rc;
}

int drv_audit_auth_failure(struct drv_sql *db, const struct drv_audit_entry *e, int keep)
{
	struct drv_sql_stmt *st;
	int rc = insert(db, e, NULL);

	if (rc != DRV_OK)
		return rc;
	if (drv_sql_prepare(db,
	                    "DELETE FROM audit WHERE status IN (401, 429) AND id <= "
	                    "(SELECT id FROM audit WHERE status IN (401, 429) "
	                    "ORDER BY id DESC LIMIT 1 OFFSET ?)",
	                    &st) != DRV_OK)
		return DRV_EDB;
	drv_sql_bind_int64(st, 1, keep > 0 ? keep : DRV_AUDIT_AUTH_KEEP);
	rc = drv_sql_step(st) == DRV_SQL_DONE ? DRV_OK : DRV_EDB;
	drv_sql_finalize(st);
	return rc;
}

static json_t *audit_row(struct drv_sql_stmt *st)
{
	return json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "id",
	                 (json_int_t)drv_sql_col_int64(st, 0), "at_ms",
	                 (json_int_t)drv_sql_col_int64(st, 1), "actor", drv_sql_col_text(st, 2),
	                 "role", drv_sql_col_text(st, 3), "remote", drv_sql_col_text(st, 4),
	                 "method", drv_sql_col_text(st, 5), "path", drv_sql_col_text(st, 6),
	                 "status", drv_sql_col_int64(st, 7), "detail", drv_sql_col_text(st, 8));
}

int drv_audit_list(struct drv_sql *db, int64_t before_id, int limit, json_t **out)
{
	struct drv_sql_stmt *st;

	if (limit < 1 || limit > DRV_AUDIT_LIST_MAX || before_id < 0)
		return DRV_EINVAL;
	/* the cast: beside a 0, PostgreSQL would take ?1 for an int4 and
	 * refuse a before= past 2^31 */
	if (drv_sql_prepare(
	            db,
	            "SELECT id, at_ms, actor, role, remote, method, path, status, detail "
	            "FROM audit WHERE CAST(?1 AS BIGINT) = 0 OR id < ?1 ORDER BY id DESC LIMIT ?2",
	            &st) != DRV_OK)
		return DRV_EDB;
	drv_sql_bind_int64(st, 1, before_id);
	drv_sql_bind_int64(st, 2, limit);
	return drv_sql_rows_json(st, audit_row, out);
}
