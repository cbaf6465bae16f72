/* deploy_store.c: the deployments table and the report events of a deployment. */
#include "deploy_store.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "err.h"
#include "events.h"
#include "log.h"

#define ROW_COLS                                                                                   \
	"id, name, version, actor, state, phase, reason, plan, seq_state, extra, view,"            \
	" failed_hosts, max_failed_hosts, created_ms, updated_ms, finished_ms, environment,"       \
	" release_id, promoted_from, release_plan"

void deploy_row_clear(struct deploy_row *r)
{
	if (r == NULL)
		return;
	free(r->plan);
	free(r->seq_state);
	free(r->extra);
	free(r->view);
	free(r->release);
	r->plan = r->seq_state = r->extra = r->view = r->release = NULL;
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		drv_error("deploy-store", "prepare failed", "error=\"%s\"", sqlite3_errmsg(db));
		return DRV_EDB;
	}
	return DRV_OK;
}

static int step_done(sqlite3 *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st) == SQLITE_DONE ? DRV_OK : DRV_EDB;

	if (rc != DRV_OK)
		drv_error("deploy-store", "statement failed", "error=\"%s\"", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

static void copy_col(sqlite3_stmt *st, int col, char *out, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static char *dup_col(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t ? strdup((const char *)t) : NULL;
}

int deploy_store_new_id(sqlite3 *db, char id[DRV_SEQ_ID_MAX + 1])
{
	sqlite3_stmt *st;
	uint8_t rnd[3];
	int64_t n;
	int rc;

	/* sqlite_sequence, not max(n): numbers are not reused once retention
	 * has deleted the newest finished deployments */
	rc = prep(db,
	          "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'deployments'),"
	          " (SELECT MAX(n) FROM deployments), 0) + 1",
	          &st);
	if (rc != DRV_OK)
		return rc;
	rc = sqlite3_step(st) == SQLITE_ROW ? DRV_OK : DRV_EDB;
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != DRV_OK)
		return rc;
	randombytes_buf(rnd, sizeof(rnd));
	snprintf(id, DRV_SEQ_ID_MAX + 1, "dep-%lld-%02x%02x%02x", (long long)n, rnd[0], rnd[1],
	         rnd[2]);
	return DRV_OK;
}

static int insert_events(sqlite3 *db, const char *dep, const json_t *events)
{
	size_t i;
	json_t *e;

	json_array_foreach(events, i, e)
	{
		int rc = drv_events_insert(db, json_string_value(json_object_get(e, "kind")), dep,
		                           json_string_value(json_object_get(e, "agent")),
		                           json_object_get(e, "data"), NULL);
		if (rc != DRV_OK)
			return rc;
	}
	return DRV_OK;
}

static int insert_row(sqlite3 *db, const struct deploy_row *r)
{
	sqlite3_stmt *st;
	int rc =
	        prep(db,
	             "INSERT INTO deployments(id, name, version, actor, state, phase, reason, plan,"
	             " seq_state, extra, failed_hosts, max_failed_hosts, created_ms, updated_ms,"
	             " environment, release_id, promoted_from, release_plan)"
	             " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	             &st);

	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, r->id);
	bind_text(st, 2, r->name);
	bind_text(st, 3, r->version);
	bind_text(st, 4, r->actor);
	bind_text(st, 5, r->state);
	bind_text(st, 6, r->phase);
	bind_text(st, 7, r->reason);
	bind_text(st, 8, r->plan);
	bind_text(st, 9, r->seq_state);
	bind_text(st, 10, r->extra ? r->extra : "{}");
	sqlite3_bind_int64(st, 11, r->failed_hosts);
	sqlite3_bind_int64(st, 12, r->max_failed_hosts);
	sqlite3_bind_int64(st, 13, r->created_ms);
	sqlite3_bind_int64(st, 14, r->updated_ms);
	bind_text(st, 15, r->environment);
	bind_text(st, 16, r->release_id);
	bind_text(st, 17, r->promoted_from);
	bind_text(st, 18, r->release);
	return step_done(db, st);
}

static int update_row(sqlite3 *db, const struct deploy_row *r)
{
	sqlite3_stmt *st;
	int rc = prep(db,
	              "UPDATE deployments SET seq_state = COALESCE(?, seq_state),"
	              " extra = COALESCE(?, extra), view = COALESCE(?, view), state = ?, phase = ?,"
	              " reason = ?, failed_hosts = ?, max_failed_hosts = ?, updated_ms = ?,"
	              " finished_ms = ? WHERE id = ?",
	              &st);

	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, r->seq_state);
	bind_text(st, 2, r->extra);
	bind_text(st, 3, r->view);
	bind_text(st, 4, r->state);
	bind_text(st, 5, r->phase);
	bind_text(st, 6, r->reason);
	sqlite3_bind_int64(st, 7, r->failed_hosts);
	sqlite3_bind_int64(st, 8, r->max_failed_hosts);
	sqlite3_bind_int64(st, 9, r->updated_ms);
	sqlite3_bind_int64(st, 10, r->finished_ms);
	bind_text(st, 11, r->id);
	rc = step_done(db, st);
	if (rc == DRV_OK && sqlite3_changes(db) != 1)
		rc = DRV_ENOENT;
	return rc;
}

static int in_transaction(sqlite3 *db, const struct deploy_row *r, const json_t *events,
                          int (*write)(sqlite3 *, const struct deploy_row *))
{
	int rc = drv_db_exec(db, "BEGIN IMMEDIATE");

	if (rc != DRV_OK)
		return rc;
	rc = write(db, r);
	if (rc == DRV_OK)
		rc = insert_events(db, r->id, events);
	if (rc == DRV_OK)
		rc = drv_db_exec(db, "COMMIT");
	if (rc != DRV_OK)
		drv_db_exec(db, "ROLLBACK");
	return rc;
}

int deploy_store_insert(sqlite3 *db, const struct deploy_row *r, const json_t *events)
{
	return in_transaction(db, r, events, insert_row);
}

int deploy_store_save(sqlite3 *db, const struct deploy_row *r, const json_t *events)
{
	return in_transaction(db, r, events, update_row);
}

static int row_from(sqlite3_stmt *st, struct deploy_row *r)
{
	memset(r, 0, sizeof(*r));
	copy_col(st, 0, r->id, sizeof(r->id));
	copy_col(st, 1, r->name, sizeof(r->name));
	copy_col(st, 2, r->version, sizeof(r->version));
	copy_col(st, 3, r->actor, sizeof(r->actor));
	copy_col(st, 4, r->state, sizeof(r->state));
	copy_col(st, 5, r->phase, sizeof(r->phase));
	copy_col(st, 6, r->reason, sizeof(r->reason));
	r->plan = dup_col(st, 7);
	r->seq_state = dup_col(st, 8);
	r->extra = dup_col(st, 9);
	r->view = dup_col(st, 10);
	r->failed_hosts = sqlite3_column_int64(st, 11);
	r->max_failed_hosts = sqlite3_column_int64(st, 12);
	r->created_ms = sqlite3_column_int64(st, 13);
	r->updated_ms = sqlite3_column_int64(st, 14);
	r->finished_ms = sqlite3_column_int64(st, 15);
	copy_col(st, 16, r->environment, sizeof(r->environment));
	copy_col(st, 17, r->release_id, sizeof(r->release_id));
	copy_col(st, 18, r->promoted_from, sizeof(r->promoted_from));
	r->release = dup_col(st, 19);
	if (r->plan == NULL || r->extra == NULL) {
		deploy_row_clear(r);
		return DRV_ENOMEM;
	}
	return DRV_OK;
}

int deploy_store_active(sqlite3 *db, deploy_row_fn fn, void *arg)
{
	sqlite3_stmt *st;
	struct deploy_row r;
	int rc = prep(db, "SELECT " ROW_COLS " FROM deployments WHERE finished_ms = 0 ORDER BY n",
	              &st);

	while (rc == DRV_OK && sqlite3_step(st) == SQLITE_ROW) {
		rc = row_from(st, &r);
		if (rc == DRV_OK)
			rc = fn(arg, &r);
		deploy_row_clear(&r);
	}
	if (st != NULL)
		sqlite3_finalize(st);
	return rc;
}

int deploy_store_finished(sqlite3 *db, int limit, deploy_row_fn fn, void *arg)
{
	sqlite3_stmt *st;
	struct deploy_row r;
	int rc = prep(db,
	              "SELECT " ROW_COLS " FROM deployments WHERE finished_ms > 0"
	              " ORDER BY n DESC LIMIT ?",
	              &st);

	if (rc == DRV_OK)
		sqlite3_bind_int(st, 1, limit);
	while (rc == DRV_OK && sqlite3_step(st) == SQLITE_ROW) {
		rc = row_from(st, &r);
		if (rc == DRV_OK)
			rc = fn(arg, &r);
		deploy_row_clear(&r);
	}
	if (st != NULL)
		sqlite3_finalize(st);
	return rc;
}

int deploy_store_get(sqlite3 *db, const char *id, struct deploy_row *out)
{
	sqlite3_stmt *st;
	int rc = prep(db, "SELECT " ROW_COLS " FROM deployments WHERE id = ?", &st);

	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, id);
	rc = sqlite3_step(st) == SQLITE_ROW ? row_from(st, out) : DRV_ENOENT;
	sqlite3_finalize(st);
	return rc;
}

int deploy_store_release_succeeded(sqlite3 *db, const char *env, const char *release_id,
                                   char id_out[DRV_SEQ_ID_MAX + 1])
{
	sqlite3_stmt *st;
	int rc = prep(db,
	              "SELECT id FROM deployments WHERE environment = ? AND release_id = ?"
	              " AND state = 'succeeded' ORDER BY n DESC LIMIT 1",
	              &st);

	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, env);
	bind_text(st, 2, release_id);
	rc = sqlite3_step(st) == SQLITE_ROW ? DRV_OK : DRV_ENOENT;
	if (rc == DRV_OK)
		copy_col(st, 0, id_out, DRV_SEQ_ID_MAX + 1);
	sqlite3_finalize(st);
	return rc;
}

static json_t *summary(sqlite3_stmt *st)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "id",
	                 sqlite3_column_text(st, 0), "deployment", sqlite3_column_text(st, 1),
	                 "version", sqlite3_column_text(st, 2), "actor", sqlite3_column_text(st, 3),
	                 "state", sqlite3_column_text(st, 4), "phase", sqlite3_column_text(st, 5),
	                 "reason", sqlite3_column_text(st, 6), "failed_hosts",
	                 (json_int_t)sqlite3_column_int64(st, 7), "max_failed_hosts",
	                 (json_int_t)sqlite3_column_int64(st, 8), "created_ms",
	                 (json_int_t)sqlite3_column_int64(st, 9), "updated_ms",
	                 (json_int_t)sqlite3_column_int64(st, 10), "finished_ms",
	                 (json_int_t)sqlite3_column_int64(st, 11));
}

int deploy_store_list(sqlite3 *db, int limit, json_t **out)
{
	sqlite3_stmt *st;
	json_t *arr = json_array();
	int rc = arr ? prep(db,
	                    "SELECT id, name, version, actor, state, phase, reason, failed_hosts,"
	                    " max_failed_hosts, created_ms, updated_ms, finished_ms"
	                    " FROM deployments ORDER BY n DESC LIMIT ?",
	                    &st)
	             : DRV_ENOMEM;

	if (rc != DRV_OK) {
		json_decref(arr);
		return rc;
	}
	sqlite3_bind_int(st, 1, limit);
	while (rc == DRV_OK && sqlite3_step(st) == SQLITE_ROW) {
		if (json_array_append_new(arr, summary(st)) != 0)
			rc = DRV_ENOMEM;
	}
	sqlite3_finalize(st);
	if (rc != DRV_OK) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return DRV_OK;
}

int deploy_store_reports(sqlite3 *db, const char *id, deploy_report_fn fn, void *arg)
{
	sqlite3_stmt *st;
	int rc =
	        prep(db,
	             "SELECT agent_id, data FROM events WHERE deployment_id = ? AND kind = 'report'"
	             " ORDER BY id",
	             &st);

	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *data = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);

		if (data != NULL)
			fn(arg, (const char *)sqlite3_column_text(st, 0), data);
		json_decref(data);
	}
	sqlite3_finalize(st);
	return DRV_OK;
}

int deploy_store_counts(sqlite3 *db, deploy_count_fn fn, void *arg)
{
	sqlite3_stmt *st;
	int rc = prep(db, "SELECT state, count(*) FROM deployments GROUP BY state", &st);

	if (rc != DRV_OK)
		return rc;
	while (sqlite3_step(st) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1));
	sqlite3_finalize(st);
	return DRV_OK;
}
