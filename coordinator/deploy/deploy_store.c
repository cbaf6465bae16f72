/* deploy_store.c: the deployments table and the report events of a deployment. */
#include "deploy_store.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqldb.h"
#include "err.h"
#include "events.h"
#include "log.h"

#define ROW_COLS                                                                                   \
	"id, name, version, actor, state, phase, reason, plan, seq_state, extra, view,"            \
	" failed_hosts, max_failed_hosts, created_ms, updated_ms, finished_ms, environment,"       \
	" release_id, promoted_from, release_plan, targets"

void deploy_row_clear(struct deploy_row *r)
{
	if (r == NULL)
		return;
	free(r->plan);
	free(r->seq_state);
	free(r->extra);
	free(r->view);
	free(r->release);
	free(r->targets);
	r->plan = r->seq_state = r->extra = r->view = r->release = r->targets = NULL;
}

static int prep(struct drv_sql *db, const char *sql, struct drv_sql_stmt **st)
{
	if (drv_sql_prepare(db, sql, st) != DRV_OK) {
		drv_error("deploy-store", "prepare failed", "error=\"%s\"", drv_sql_errmsg(db));
		return DRV_EDB;
	}
	return DRV_OK;
}

static int step_done(struct drv_sql *db, struct drv_sql_stmt *st)
{
	int rc = drv_sql_step(st) == DRV_SQL_DONE ? DRV_OK : DRV_EDB;

	if (rc != DRV_OK)
		drv_error("deploy-store", "statement failed", "error=\"%s\"", drv_sql_errmsg(db));
	drv_sql_finalize(st);
	return rc;
}

static void bind_text(struct drv_sql_stmt *st, int i, const char *v)
{
	if (v == NULL)
		drv_sql_bind_null(st, i);
	else
		drv_sql_bind_text(st, i, v);
}

static void copy_col(struct drv_sql_stmt *st, int col, char *out, size_t cap)
{
	const char *t = drv_sql_col_text(st, col);

	snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static char *dup_col(struct drv_sql_stmt *st, int col)
{
	const char *t = drv_sql_col_text(st, col);

	return t ? strdup((const char *)t) : NULL;
}

int deploy_store_new_id(struct drv_sql *db, char id[DRV_SEQ_ID_MAX + 1])
{
	struct drv_sql_stmt *st;
	uint8_t rnd[3];
	int64_t n;
	int rc;

	/* sqlite_sequence, not max(n): numbers are not reused once retention
	 * has deleted the newest finished deployments */
	rc = prep(db,
	          drv_sql_engine_of(db) == DRV_SQL_PG
	                  ? "SELECT COALESCE((SELECT last_value FROM pg_sequences"
	                    " WHERE sequencename = 'deployments_n_seq'),"
	                    " (SELECT MAX(n) FROM deployments), 0) + 1"
	                  : "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = "
	                    "'deployments'),"
	                    " (SELECT MAX(n) FROM deployments), 0) + 1",
	          &st);
	if (rc != DRV_OK)
		return rc;
	rc = drv_sql_step(st) == DRV_SQL_ROW ? DRV_OK : DRV_EDB;
	n = drv_sql_col_int64(st, 0);
	drv_sql_finalize(st);
	if (rc != DRV_OK)
		return rc;
	randombytes_buf(rnd, sizeof(rnd));
	snprintf(id, DRV_SEQ_ID_MAX + 1, "dep-%lld-%02x%02x%02x", (long long)n, rnd[0], rnd[1],
	         rnd[2]);
	return DRV_OK;
}

static int insert_row(struct drv_sql *db, const struct deploy_row *r)
{
	struct drv_sql_stmt *st;
	int rc =
	        prep(db,
	             "INSERT INTO deployments(id, name, version, actor, state, phase, reason, plan,"
	             " seq_state, extra, failed_hosts, max_failed_hosts, created_ms, updated_ms,"
	             " environment, release_id, promoted_from, release_plan, targets)"
	             " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
	drv_sql_bind_int64(st, 11, r->failed_hosts);
	drv_sql_bind_int64(st, 12, r->max_failed_hosts);
	drv_sql_bind_int64(st, 13, r->created_ms);
	drv_sql_bind_int64(st, 14, r->updated_ms);
	bind_text(st, 15, r->environment);
	bind_text(st, 16, r->release_id);
	bind_text(st, 17, r->promoted_from);
	bind_text(st, 18, r->release);
	bind_text(st, 19, r->targets);
	return step_done(db, st);
}

static int update_row(struct drv_sql *db, const struct deploy_row *r)
{
	struct drv_sql_stmt *st;
	int rc = prep(db,
	              "UPDATE deployments SET seq_state = COALESCE(?, seq_state),"
	              " extra = COALESCE(?, extra), view = COALESCE(?, view), state = ?, phase = ?,"
	              " reason = ?, failed_hosts = ?, max_failed_hosts = ?, updated_ms = ?,"
	              " finished_ms = ?, targets = COALESCE(?, targets) WHERE id = ?",
	              &st);

	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, r->seq_state);
	bind_text(st, 2, r->extra);
	bind_text(st, 3, r->view);
	bind_text(st, 4, r->state);
	bind_text(st, 5, r->phase);
	bind_text(st, 6, r->reason);
	drv_sql_bind_int64(st, 7, r->failed_hosts);
	drv_sql_bind_int64(st, 8, r->max_failed_hosts);
	drv_sql_bind_int64(st, 9, r->updated_ms);
	drv_sql_bind_int64(st, 10, r->finished_ms);
	bind_text(st, 11, r->targets);
	bind_text(st, 12, r->id);
	rc = step_done(db, st);
	if (rc == DRV_OK && drv_sql_changes(db) != 1)
		rc = DRV_ENOENT;
	return rc;
}

/* One cached statement over a JSON array (one round trip on PostgreSQL,
 * whatever its length): ?1 the deployment, ?2 the array. */
static int exec_array(struct drv_sql *db, const char *pg, const char *lite, const char *id,
                      const char *arr, const char *what)
{
	struct drv_sql_stmt *st;
	int rc = drv_sql_cached(db, drv_sql_engine_of(db) == DRV_SQL_PG ? pg : lite, &st);

	if (rc != DRV_OK) {
		drv_error("deploy-store", "prepare failed", "error=\"%s\"", drv_sql_errmsg(db));
		return DRV_EDB;
	}
	bind_text(st, 1, id);
	bind_text(st, 2, arr);
	rc = drv_sql_step(st) == DRV_SQL_DONE ? DRV_OK : DRV_EDB;
	if (rc != DRV_OK)
		drv_error("deploy-store", what, "deployment=%s error=\"%s\"", id,
		          drv_sql_errmsg(db));
	drv_sql_done(st);
	return rc;
}

/* The changed records ([section, key, data] each) become rows. */
static int write_records(struct drv_sql *db, const char *id, const char *recs)
{
	return exec_array(
	        db,
	        "INSERT INTO deployment_records(deployment_id, section, key, data)"
	        " SELECT ?1, x->>0, x->>1, (x->2)::text FROM json_array_elements(?2::json) x"
	        " ON CONFLICT (deployment_id, section, key) DO UPDATE SET data = "
	        "excluded.data",
	        "INSERT INTO deployment_records(deployment_id, section, key, data)"
	        " SELECT ?1, json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
	        " json(json_extract(value, '$[2]')) FROM json_each(?2) WHERE true"
	        " ON CONFLICT (deployment_id, section, key) DO UPDATE SET data = "
	        "excluded.data",
	        id, recs, "cannot write records");
}

/* The records gone ([section, key] each: steps that ended). */
static int delete_gone(struct drv_sql *db, const char *id, const char *gone)
{
	return exec_array(
	        db,
	        "DELETE FROM deployment_records d USING json_array_elements(?2::json) x"
	        " WHERE d.deployment_id = ?1 AND d.section = x->>0 AND d.key = x->>1",
	        "DELETE FROM deployment_records WHERE deployment_id = ?1 AND (section, key)"
	        " IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')"
	        " FROM json_each(?2))",
	        id, gone, "cannot delete records");
}

static int delete_records(struct drv_sql *db, const char *id)
{
	struct drv_sql_stmt *st;
	int rc = prep(db, "DELETE FROM deployment_records WHERE deployment_id = ?", &st);

	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, id);
	return step_done(db, st);
}

/* The records a save writes (deploy_store_save's recs and gone). */
struct recs {
	const char *put, *gone;
};

static int write_all(struct drv_sql *db, const struct deploy_row *r, const struct recs *recs,
                     const json_t *events,
                     int (*write)(struct drv_sql *, const struct deploy_row *))
{
	int rc = write(db, r);

	if (rc == DRV_OK && r->finished_ms > 0) {
		rc = delete_records(db, r->id);
	} else {
		if (rc == DRV_OK && recs->put != NULL)
			rc = write_records(db, r->id, recs->put);
		if (rc == DRV_OK && recs->gone != NULL)
			rc = delete_gone(db, r->id, recs->gone);
	}
	if (rc == DRV_OK)
		rc = drv_events_insert_all(db, r->id, events);
	return rc;
}

static int in_transaction(struct drv_sql *db, const struct deploy_row *r, const struct recs *recs,
                          const json_t *events,
                          int (*write)(struct drv_sql *, const struct deploy_row *))
{
	int rc;

	if (drv_sql_in_tx(db)) /* deploy_store_begin: the caller commits */
		return write_all(db, r, recs, events, write);
	rc = drv_sql_exec(db, "BEGIN IMMEDIATE");
	if (rc != DRV_OK)
		return rc;
	rc = write_all(db, r, recs, events, write);
	if (rc == DRV_OK)
		rc = drv_sql_exec(db, "COMMIT");
	if (rc != DRV_OK)
		drv_sql_exec(db, "ROLLBACK");
	return rc;
}

int deploy_store_insert(struct drv_sql *db, const struct deploy_row *r, const json_t *events)
{
	const struct recs none = {NULL, NULL};

	return in_transaction(db, r, &none, events, insert_row);
}

int deploy_store_save(struct drv_sql *db, const struct deploy_row *r, const char *recs,
                      const char *gone, const json_t *events)
{
	const struct recs both = {recs, gone};

	return in_transaction(db, r, &both, events, update_row);
}

int deploy_store_begin(struct drv_sql *db)
{
	return drv_sql_begin(db);
}

int deploy_store_commit(struct drv_sql *db)
{
	int rc = drv_sql_commit(db);

	if (rc != DRV_OK) {
		drv_error("deploy-store", "commit failed", "error=\"%s\"", drv_sql_errmsg(db));
		drv_sql_rollback(db);
	}
	return rc;
}

void deploy_store_rollback(struct drv_sql *db)
{
	drv_sql_rollback(db);
}

int deploy_store_records(struct drv_sql *db, const char *id, deploy_rec_fn fn, void *arg)
{
	struct drv_sql_stmt *st;
	int rc = prep(db,
	              "SELECT section, key, data FROM deployment_records WHERE deployment_id = ?",
	              &st);

	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, id);
	while (rc == DRV_OK && (rc = drv_sql_step(st)) == DRV_SQL_ROW)
		rc = fn(arg, drv_sql_col_text(st, 0), drv_sql_col_text(st, 1),
		        drv_sql_col_text(st, 2));
	if (rc == DRV_SQL_DONE)
		rc = DRV_OK;
	else if (rc == DRV_SQL_ROW)
		rc = DRV_OK;
	drv_sql_finalize(st);
	return rc;
}

static int row_from(struct drv_sql_stmt *st, struct deploy_row *r)
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
	r->failed_hosts = drv_sql_col_int64(st, 11);
	r->max_failed_hosts = drv_sql_col_int64(st, 12);
	r->created_ms = drv_sql_col_int64(st, 13);
	r->updated_ms = drv_sql_col_int64(st, 14);
	r->finished_ms = drv_sql_col_int64(st, 15);
	copy_col(st, 16, r->environment, sizeof(r->environment));
	copy_col(st, 17, r->release_id, sizeof(r->release_id));
	copy_col(st, 18, r->promoted_from, sizeof(r->promoted_from));
	r->release = dup_col(st, 19);
	r->targets = dup_col(st, 20);
	if (r->plan == NULL || r->extra == NULL) {
		deploy_row_clear(r);
		return DRV_ENOMEM;
	}
	return DRV_OK;
}

int deploy_store_active(struct drv_sql *db, deploy_row_fn fn, void *arg)
{
	struct drv_sql_stmt *st;
	struct deploy_row r;
	int rc = prep(db, "SELECT " ROW_COLS " FROM deployments WHERE finished_ms = 0 ORDER BY n",
	              &st);

	while (rc == DRV_OK && drv_sql_step(st) == DRV_SQL_ROW) {
		rc = row_from(st, &r);
		if (rc == DRV_OK)
			rc = fn(arg, &r);
		deploy_row_clear(&r);
	}
	if (st != NULL)
		drv_sql_finalize(st);
	return rc;
}

int deploy_store_finished(struct drv_sql *db, int limit, deploy_row_fn fn, void *arg)
{
	struct drv_sql_stmt *st;
	struct deploy_row r;
	int rc = prep(db,
	              "SELECT " ROW_COLS " FROM deployments WHERE finished_ms > 0"
	              " ORDER BY n DESC LIMIT ?",
	              &st);

	if (rc == DRV_OK)
		drv_sql_bind_int64(st, 1, limit);
	while (rc == DRV_OK && drv_sql_step(st) == DRV_SQL_ROW) {
		rc = row_from(st, &r);
		if (rc == DRV_OK)
			rc = fn(arg, &r);
		deploy_row_clear(&r);
	}
	if (st != NULL)
		drv_sql_finalize(st);
	return rc;
}

int deploy_store_get(struct drv_sql *db, const char *id, struct deploy_row *out)
{
	struct drv_sql_stmt *st;
	int rc = prep(db, "SELECT " ROW_COLS " FROM deployments WHERE id = ?", &st);

	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, id);
	rc = drv_sql_step(st) == DRV_SQL_ROW ? row_from(st, out) : DRV_ENOENT;
	drv_sql_finalize(st);
	return rc;
}

int deploy_store_release_succeeded(struct drv_sql *db, const char *env, const char *release_id,
                                   char id_out[DRV_SEQ_ID_MAX + 1])
{
	struct drv_sql_stmt *st;
	int rc = prep(db,
	              "SELECT id FROM deployments WHERE environment = ? AND release_id = ?"
	              " AND state = 'succeeded' ORDER BY n DESC LIMIT 1",
	              &st);

	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, env);
	bind_text(st, 2, release_id);
	rc = drv_sql_step(st) == DRV_SQL_ROW ? DRV_OK : DRV_ENOENT;
	if (rc == DRV_OK)
		copy_col(st, 0, id_out, DRV_SEQ_ID_MAX + 1);
	drv_sql_finalize(st);
	return rc;
}

static json_t *summary(struct drv_sql_stmt *st)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "id",
	                 drv_sql_col_text(st, 0), "deployment", drv_sql_col_text(st, 1), "version",
	                 drv_sql_col_text(st, 2), "actor", drv_sql_col_text(st, 3), "state",
	                 drv_sql_col_text(st, 4), "phase", drv_sql_col_text(st, 5), "reason",
	                 drv_sql_col_text(st, 6), "failed_hosts",
	                 (json_int_t)drv_sql_col_int64(st, 7), "max_failed_hosts",
	                 (json_int_t)drv_sql_col_int64(st, 8), "created_ms",
	                 (json_int_t)drv_sql_col_int64(st, 9), "updated_ms",
	                 (json_int_t)drv_sql_col_int64(st, 10), "finished_ms",
	                 (json_int_t)drv_sql_col_int64(st, 11));
}

int deploy_store_list(struct drv_sql *db, int limit, json_t **out)
{
	struct drv_sql_stmt *st;
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
	drv_sql_bind_int64(st, 1, limit);
	while (rc == DRV_OK && drv_sql_step(st) == DRV_SQL_ROW) {
		if (json_array_append_new(arr, summary(st)) != 0)
			rc = DRV_ENOMEM;
	}
	drv_sql_finalize(st);
	if (rc != DRV_OK) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return DRV_OK;
}

int deploy_store_reports(struct drv_sql *db, const char *id, deploy_report_fn fn, void *arg)
{
	struct drv_sql_stmt *st;
	int rc =
	        prep(db,
	             "SELECT agent_id, data FROM events WHERE deployment_id = ? AND kind = 'report'"
	             " ORDER BY id",
	             &st);

	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, id);
	while (drv_sql_step(st) == DRV_SQL_ROW) {
		json_t *data = json_loads(drv_sql_col_text(st, 1), 0, NULL);

		if (data != NULL)
			fn(arg, drv_sql_col_text(st, 0), data);
		json_decref(data);
	}
	drv_sql_finalize(st);
	return DRV_OK;
}

int deploy_store_counts(struct drv_sql *db, deploy_count_fn fn, void *arg)
{
	struct drv_sql_stmt *st;
	int rc = prep(db, "SELECT state, count(*) FROM deployments GROUP BY state", &st);

	if (rc != DRV_OK)
		return rc;
	while (drv_sql_step(st) == DRV_SQL_ROW)
		fn(arg, drv_sql_col_text(st, 0), drv_sql_col_int64(st, 1));
	drv_sql_finalize(st);
	return DRV_OK;
}
