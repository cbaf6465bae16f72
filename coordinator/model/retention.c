/* retention.c: deleting old events, finished deployments and their instructions in small batches.
 */
#include "retention.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"

static const char *const table_names[DRV_RET_N] = {"events", "deployments", "instructions",
                                                   "baselines"};

const char *drv_retention_table_name(enum drv_ret_table t)
{
	return t < DRV_RET_N ? table_names[t] : "?";
}

static int prep(struct drv_sql *db, const char *sql, struct drv_sql_stmt **st)
{
	if (drv_sql_prepare(db, sql, st) != DRV_OK) {
		drv_error("retention", "cannot prepare", "error=\"%s\"", drv_sql_errmsg(db));
		return DRV_EDB;
	}
	return DRV_OK;
}

static int scalar(struct drv_sql *db, const char *sql, int64_t *out)
{
	struct drv_sql_stmt *st;
	int rc = prep(db, sql, &st);

	if (rc != DRV_OK)
		return rc;
	rc = drv_sql_step(st) == DRV_SQL_ROW ? DRV_OK : DRV_EDB;
	if (rc == DRV_OK)
		*out = drv_sql_col_int64(st, 0);
	drv_sql_finalize(st);
	return rc;
}

static int exec(struct drv_sql *db, const char *sql)
{
	if (drv_sql_exec(db, sql) != DRV_OK) {
		drv_warn("retention", "statement failed", "sql=\"%s\" error=\"%s\"", sql,
		         drv_sql_errmsg(db));
		return DRV_EDB;
	}
	return DRV_OK;
}

/* ---- the ids of unfinished deployments (their events stay) ---- */

struct active {
	char **id;
	size_t n;
};

static void active_free(struct active *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->id[i]);
	free(a->id);
	a->id = NULL;
	a->n = 0;
}

static int active_load(struct drv_sql *db, struct active *a)
{
	struct drv_sql_stmt *st = NULL;
	int rc = prep(db, "SELECT id FROM deployments WHERE finished_ms = 0", &st);

	while (rc == DRV_OK && drv_sql_step(st) == DRV_SQL_ROW) {
		char **v = realloc(a->id, (a->n + 1) * sizeof(*v));
		char *s = strdup(drv_sql_col_text(st, 0));

		if (v == NULL || s == NULL) {
			free(s);
			if (v != NULL)
				a->id = v;
			rc = DRV_ENOMEM;
			break;
		}
		a->id = v;
		a->id[a->n++] = s;
	}
	if (st != NULL)
		drv_sql_finalize(st);
	if (rc != DRV_OK)
		active_free(a);
	return rc;
}

static bool active_has(const struct active *a, const char *id)
{
	if (id == NULL || id[0] == '\0')
		return false;
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->id[i], id) == 0)
			return true;
	}
	return false;
}

/* ---- events: a queue, deleted from its head ---- */

struct ev_scan {
	int64_t cursor;    /* ids up to here were looked at */
	int64_t max_id;    /* ids up to here are over the count limit */
	int64_t cutoff_ms; /* older rows are over the age limit (INT64_MIN: none) */
	bool done;         /* reached rows that stay */
};

/* One window of up to batch rows after the cursor, in one transaction. */
static int events_batch(struct drv_sql *db, const struct drv_retention_config *c,
                        const struct active *act, struct ev_scan *s, int64_t *deleted)
{
	struct drv_sql_stmt *sel = NULL, *del = NULL;
	int64_t n = 0, seen = 0;
	int rc = exec(db, "BEGIN IMMEDIATE");

	if (rc != DRV_OK)
		return rc;
	rc = prep(db,
	          "SELECT id, at_ms, deployment_id FROM events WHERE id > ? ORDER BY id LIMIT ?",
	          &sel);
	if (rc == DRV_OK)
		rc = prep(db, "DELETE FROM events WHERE id = ?", &del);
	if (rc == DRV_OK) {
		drv_sql_bind_int64(sel, 1, s->cursor);
		drv_sql_bind_int64(sel, 2, c->batch);
	}
	while (rc == DRV_OK && drv_sql_step(sel) == DRV_SQL_ROW) {
		int64_t id = drv_sql_col_int64(sel, 0), at = drv_sql_col_int64(sel, 1);

		seen++;
		if (id > s->max_id && at >= s->cutoff_ms) {
			s->done = true; /* ids grow with time: the rest is newer still */
			break;
		}
		s->cursor = id;
		if (active_has(act, drv_sql_col_text(sel, 2)))
			continue;
		drv_sql_bind_int64(del, 1, id);
		if (drv_sql_step(del) != DRV_SQL_DONE)
			rc = DRV_EDB;
		drv_sql_reset(del);
		n++;
	}
	if (seen < c->batch)
		s->done = true;
	drv_sql_finalize(sel);
	drv_sql_finalize(del);
	if (rc == DRV_OK)
		rc = exec(db, "COMMIT");
	if (rc != DRV_OK) {
		exec(db, "ROLLBACK");
		return rc;
	}
	*deleted += n;
	return DRV_OK;
}

static int events_prune(struct drv_sql *db, const struct drv_retention_config *c, int64_t now_ms,
                        int64_t until, struct drv_retention_pass *out)
{
	struct active act = {0};
	struct ev_scan s = {.cutoff_ms = INT64_MIN};
	int64_t max_id = 0;
	int rc = active_load(db, &act);

	if (rc == DRV_OK)
		rc = scalar(db, "SELECT coalesce(max(id), 0) FROM events", &max_id);
	if (rc != DRV_OK) {
		active_free(&act);
		return rc;
	}
	/* ids are dense but for what was deleted: the newest max_rows ids stay */
	s.max_id = c->events_max_rows > 0 ? max_id - c->events_max_rows : 0;
	if (c->events_max_age_ms > 0)
		s.cutoff_ms = now_ms - c->events_max_age_ms;
	do {
		rc = events_batch(db, c, &act, &s, &out->deleted[DRV_RET_EVENTS]);
	} while (rc == DRV_OK && !s.done && drv_mono_ms() < until);
	if (rc == DRV_OK && !s.done)
		out->more = true;
	active_free(&act);
	return rc;
}

/* ---- finished deployments and their instructions ---- */

static int deployments_batch(struct drv_sql *db, const struct drv_retention_config *c,
                             int64_t cutoff, int64_t max_n, struct drv_retention_pass *out,
                             bool *done)
{
	struct drv_sql_stmt *sel = NULL, *del_i = NULL, *del_d = NULL, *del_b = NULL;
	int64_t nd = 0, ni = 0, nb = 0;
	int rc = exec(db, "BEGIN IMMEDIATE");

	if (rc != DRV_OK)
		return rc;
	rc = prep(db,
	          "SELECT n, id FROM deployments WHERE finished_ms > 0 AND (finished_ms < ? OR n "
	          "<= ?)"
	          " ORDER BY n LIMIT ?",
	          &sel);
	if (rc == DRV_OK)
		rc = prep(db,
		          "DELETE FROM instructions WHERE deployment_id = ?"
		          " AND state IN ('acked', 'expired')",
		          &del_i);
	if (rc == DRV_OK)
		rc = prep(db, "DELETE FROM deployments WHERE n = ?", &del_d);
	/* a row that is still the newest of its metric stays: it is what the
	 * next release of that service is compared with */
	if (rc == DRV_OK)
		rc = prep(db,
		          "DELETE FROM baselines WHERE deployment_id = ? AND recorded_ms <"
		          " (SELECT max(b.recorded_ms) FROM baselines b"
		          "  WHERE b.environment = baselines.environment"
		          "  AND b.service = baselines.service AND b.metric = baselines.metric)",
		          &del_b);
	if (rc == DRV_OK) {
		drv_sql_bind_int64(sel, 1, cutoff);
		drv_sql_bind_int64(sel, 2, max_n);
		drv_sql_bind_int64(sel, 3, c->batch);
	}
	while (rc == DRV_OK && drv_sql_step(sel) == DRV_SQL_ROW) {
		drv_sql_bind_text(del_i, 1, drv_sql_col_text(sel, 1));
		drv_sql_bind_int64(del_d, 1, drv_sql_col_int64(sel, 0));
		if (drv_sql_step(del_i) != DRV_SQL_DONE)
			rc = DRV_EDB;
		ni += drv_sql_changes(db);
		if (rc == DRV_OK && drv_sql_step(del_d) != DRV_SQL_DONE)
			rc = DRV_EDB;
		drv_sql_bind_text(del_b, 1, drv_sql_col_text(sel, 1));
		if (rc == DRV_OK && drv_sql_step(del_b) != DRV_SQL_DONE)
			rc = DRV_EDB;
		nb += drv_sql_changes(db);
		drv_sql_reset(del_i);
		drv_sql_reset(del_d);
		drv_sql_reset(del_b);
		nd++;
	}
	drv_sql_finalize(sel);
	drv_sql_finalize(del_i);
	drv_sql_finalize(del_d);
	drv_sql_finalize(del_b);
	if (rc == DRV_OK)
		rc = exec(db, "COMMIT");
	if (rc != DRV_OK) {
		exec(db, "ROLLBACK");
		return rc;
	}
	*done = nd < c->batch;
	out->deleted[DRV_RET_DEPLOYMENTS] += nd;
	out->deleted[DRV_RET_INSTRUCTIONS] += ni;
	out->deleted[DRV_RET_BASELINES] += nb;
	return DRV_OK;
}

static int deployments_prune(struct drv_sql *db, const struct drv_retention_config *c,
                             int64_t now_ms, int64_t until, struct drv_retention_pass *out)
{
	int64_t cutoff =
	        c->deployments_max_age_ms > 0 ? now_ms - c->deployments_max_age_ms : INT64_MIN;
	int64_t max_n = 0;
	bool done = false;
	struct drv_sql_stmt *st;
	int rc;

	if (c->deployments_max_rows > 0) {
		rc = prep(db,
		          "SELECT coalesce((SELECT n FROM deployments WHERE finished_ms > 0"
		          " ORDER BY n DESC LIMIT 1 OFFSET ?), 0)",
		          &st);
		if (rc != DRV_OK)
			return rc;
		drv_sql_bind_int64(st, 1, c->deployments_max_rows);
		rc = drv_sql_step(st) == DRV_SQL_ROW ? DRV_OK : DRV_EDB;
		max_n = drv_sql_col_int64(st, 0);
		drv_sql_finalize(st);
		if (rc != DRV_OK)
			return rc;
	}
	do {
		rc = deployments_batch(db, c, cutoff, max_n, out, &done);
	} while (rc == DRV_OK && !done && drv_mono_ms() < until);
	if (rc == DRV_OK && !done)
		out->more = true;
	return rc;
}

int drv_retention_prune(struct drv_sql *db, const struct drv_retention_config *c, int64_t now_ms,
                        int64_t until_mono_ms, struct drv_retention_pass *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (c->batch < 1)
		return DRV_EINVAL;
	rc = deployments_prune(db, c, now_ms, until_mono_ms, out);
	if (rc == DRV_OK)
		rc = events_prune(db, c, now_ms, until_mono_ms, out);
	return rc;
}

int drv_retention_count(struct drv_sql *db, int64_t rows[DRV_RET_N])
{
	int64_t v[DRV_RET_N];
	int rc = scalar(db, "SELECT count(*) FROM events", &v[DRV_RET_EVENTS]);

	if (rc == DRV_OK)
		rc = scalar(db, "SELECT count(*) FROM deployments", &v[DRV_RET_DEPLOYMENTS]);
	if (rc == DRV_OK)
		rc = scalar(db, "SELECT count(*) FROM instructions", &v[DRV_RET_INSTRUCTIONS]);
	if (rc == DRV_OK)
		rc = scalar(db, "SELECT count(*) FROM baselines", &v[DRV_RET_BASELINES]);
	if (rc == DRV_OK)
		memcpy(rows, v, sizeof(v));
	return rc;
}
