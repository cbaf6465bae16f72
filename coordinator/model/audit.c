/* audit.c: append-only audit rows (GET /v1/audit is api/audit_api.c). */
#include "audit.h"

#include <unistd.h>

#include "clock.h"
#include "db.h"
#include "err.h"
#include "log.h"

/* The API's request threads share one connection. While one of them steps
 * a SELECT, the connection holds a read snapshot, and a write by another
 * thread on it fails at once with SQLITE_BUSY (SQLITE_BUSY_SNAPSHOT once the
 * core has committed since): SQLite calls no busy handler there, as waiting
 * inside the connection could never end the reader's snapshot. Step such a
 * write again until the reader is done, within the busy budget. */
static int step_write(sqlite3_stmt *st)
{
	int64_t until = drv_mono_ms() + DRV_DB_BUSY_MS;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_BUSY && drv_mono_ms() < until) {
		sqlite3_reset(st);
		usleep(500);
	}
	return rc;
}

/* INSERT e (status as given); the new row's id in *id when id is not NULL. */
static int insert(sqlite3 *db, const struct drv_audit_entry *e, int64_t *id)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(
	            db,
	            "INSERT INTO audit(at_ms, actor, role, remote, method, path, status, "
	            "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
	            -1, &st, NULL) != SQLITE_OK) {
		drv_error("audit", "cannot append audit row", "error=\"%s\"", sqlite3_errmsg(db));
		return DRV_EDB;
	}
	sqlite3_bind_int64(st, 1, drv_wall_ms());
	sqlite3_bind_text(st, 2, e->actor ? e->actor : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, e->role ? e->role : "none", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, e->remote ? e->remote : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, e->method ? e->method : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, e->path ? e->path : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, e->status);
	sqlite3_bind_text(st, 8, e->detail ? e->detail : "", -1, SQLITE_STATIC);
	rc = step_write(st) == SQLITE_ROW ? DRV_OK : DRV_EDB;
	if (rc == DRV_OK && id != NULL)
		*id = sqlite3_column_int64(st, 0);
	if (rc == DRV_OK && sqlite3_step(st) != SQLITE_DONE)
		rc = DRV_EDB;
	if (rc != DRV_OK)
		drv_error("audit", "cannot append audit row", "error=\"%s\"", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

int drv_audit_append(sqlite3 *db, const struct drv_audit_entry *e)
{
	return insert(db, e, NULL);
}

int drv_audit_begin(sqlite3 *db, const struct drv_audit_entry *e, int64_t *id)
{
	struct drv_audit_entry begun = *e;

	begun.status = 0;
	return insert(db, &begun, id);
}

int drv_audit_finish(sqlite3 *db, int64_t id, int status, const char *detail)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "UPDATE audit SET status = ?, detail = ? WHERE id = ?", -1, &st,
	                       NULL) != SQLITE_OK)
		return DRV_EDB;
	sqlite3_bind_int(st, 1, status);
	sqlite3_bind_text(st, 2, detail ? detail : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, id);
	rc = step_write(st) == SQLITE_DONE ? DRV_OK : DRV_EDB;
	if (rc != DRV_OK)
		drv_error("audit", "cannot complete audit row", "id=%lld error=\"%s\"",
		          (long long)id, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

int drv_audit_auth_failure(sqlite3 *db, const struct drv_audit_entry *e, int keep)
{
	sqlite3_stmt *st;
	int rc = insert(db, e, NULL);

	if (rc != DRV_OK)
		return rc;
	if (sqlite3_prepare_v2(db,
	                       "DELETE FROM audit WHERE status IN (401, 429) AND id <= "
	                       "(SELECT id FROM audit WHERE status IN (401, 429) "
	                       "ORDER BY id DESC LIMIT 1 OFFSET ?)",
	                       -1, &st, NULL) != SQLITE_OK)
		return DRV_EDB;
	sqlite3_bind_int(st, 1, keep > 0 ? keep : DRV_AUDIT_AUTH_KEEP);
	rc = sqlite3_step(st) == SQLITE_DONE ? DRV_OK : DRV_EDB;
	sqlite3_finalize(st);
	return rc;
}

static json_t *audit_row(sqlite3_stmt *st)
{
	return json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "id",
	                 (json_int_t)sqlite3_column_int64(st, 0), "at_ms",
	                 (json_int_t)sqlite3_column_int64(st, 1), "actor",
	                 (const char *)sqlite3_column_text(st, 2), "role",
	                 (const char *)sqlite3_column_text(st, 3), "remote",
	                 (const char *)sqlite3_column_text(st, 4), "method",
	                 (const char *)sqlite3_column_text(st, 5), "path",
	                 (const char *)sqlite3_column_text(st, 6), "status",
	                 sqlite3_column_int(st, 7), "detail",
	                 (const char *)sqlite3_column_text(st, 8));
}

int drv_audit_list(sqlite3 *db, int64_t before_id, int limit, json_t **out)
{
	sqlite3_stmt *st;

	if (limit < 1 || limit > DRV_AUDIT_LIST_MAX || before_id < 0)
		return DRV_EINVAL;
	if (sqlite3_prepare_v2(
	            db,
	            "SELECT id, at_ms, actor, role, remote, method, path, status, detail "
	            "FROM audit WHERE ?1 = 0 OR id < ?1 ORDER BY id DESC LIMIT ?2",
	            -1, &st, NULL) != SQLITE_OK)
		return DRV_EDB;
	sqlite3_bind_int64(st, 1, before_id);
	sqlite3_bind_int(st, 2, limit);
	return drv_db_rows_json(st, audit_row, out);
}
