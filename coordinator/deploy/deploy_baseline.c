/*
 * deploy_baseline.c: the baselines table (deploy_baseline.h). Plain SQL
 * that every store engine runs as it is.
 */
#include "deploy_baseline.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "log.h"

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		drv_error("baseline", "prepare failed", "error=\"%s\"", sqlite3_errmsg(db));
		return DRV_EDB;
	}
	return DRV_OK;
}

static const char *text_of(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

int deploy_baseline_previous(sqlite3 *db, const char *env, const char *service, const char *metric,
                             const char *not_id, struct deploy_prev *out)
{
	sqlite3_stmt *st;
	int rc = prep(db,
	              "SELECT b.deployment_id, b.version, b.value FROM baselines b"
	              " WHERE b.environment = ? AND b.service = ? AND b.metric = ?"
	              " AND b.deployment_id <> ? AND b.value IS NOT NULL"
	              " AND NOT EXISTS (SELECT 1 FROM deployments d"
	              "   WHERE d.id = b.deployment_id AND d.state <> 'succeeded')"
	              " ORDER BY b.recorded_ms DESC LIMIT 1",
	              &st);

	if (rc != DRV_OK)
		return rc;
	sqlite3_bind_text(st, 1, env ? env : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, service, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, metric, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, not_id, -1, SQLITE_TRANSIENT);
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		snprintf(out->deployment, sizeof(out->deployment), "%s",
		         (const char *)sqlite3_column_text(st, 0));
		snprintf(out->version, sizeof(out->version), "%s",
		         (const char *)sqlite3_column_text(st, 1));
		out->value = sqlite3_column_double(st, 2);
		rc = DRV_OK;
		break;
	case SQLITE_DONE: rc = DRV_ENOENT; break;
	default:
		drv_error("baseline", "query failed", "error=\"%s\"", sqlite3_errmsg(db));
		rc = DRV_EDB;
	}
	sqlite3_finalize(st);
	return rc;
}

static int insert_all(sqlite3 *db, const char *id, const char *env, const json_t *values,
                      int64_t now_ms)
{
	sqlite3_stmt *del, *ins;
	const char *key;
	json_t *v;
	int rc = prep(db, "DELETE FROM baselines WHERE deployment_id = ?", &del);

	if (rc != DRV_OK)
		return rc;
	sqlite3_bind_text(del, 1, id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(del) == SQLITE_DONE ? DRV_OK : DRV_EDB;
	sqlite3_finalize(del);
	if (rc == DRV_OK)
		rc = prep(db,
		          "INSERT INTO baselines (deployment_id, environment, service, metric,"
		          " version, value, unit, query, recorded_ms)"
		          " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		          &ins);
	if (rc != DRV_OK)
		return rc;
	json_object_foreach((json_t *)values, key, v)
	{
		const json_t *val = json_object_get(v, "value");

		sqlite3_bind_text(ins, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(ins, 2, env ? env : "", -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(ins, 3, text_of(v, "service"), -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(ins, 4, text_of(v, "metric"), -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(ins, 5, text_of(v, "version"), -1, SQLITE_TRANSIENT);
		if (json_is_number(val) && isfinite(json_number_value(val)))
			sqlite3_bind_double(ins, 6, json_number_value(val));
		else
			sqlite3_bind_null(ins, 6);
		sqlite3_bind_text(ins, 7, text_of(v, "unit"), -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(ins, 8, text_of(v, "query"), -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(ins, 9, now_ms);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			rc = DRV_EDB;
			break;
		}
		sqlite3_reset(ins);
		sqlite3_clear_bindings(ins);
	}
	sqlite3_finalize(ins);
	return rc;
}

int deploy_baseline_record(sqlite3 *db, const char *id, const char *env, const json_t *values,
                           int64_t now_ms)
{
	int rc;

	if (json_object_size(values) == 0)
		return DRV_OK;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return DRV_EDB;
	rc = insert_all(db, id, env, values, now_ms);
	if (rc == DRV_OK && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = DRV_EDB;
	if (rc != DRV_OK) {
		drv_error("baseline", "cannot record the release's key metrics",
		          "deployment=%s error=\"%s\"", id, sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	return rc;
}
