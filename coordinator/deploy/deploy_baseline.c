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

static int prep(struct drv_sql *db, const char *sql, struct drv_sql_stmt **st)
{
	if (drv_sql_prepare(db, sql, st) != DRV_OK) {
		drv_error("baseline", "prepare failed", "error=\"%s\"", drv_sql_errmsg(db));
		return DRV_EDB;
	}
	return DRV_OK;
}

static const char *text_of(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

int deploy_baseline_previous(struct drv_sql *db, const char *env, const char *service,
                             const char *metric, const char *not_id, struct deploy_prev *out)
{
	struct drv_sql_stmt *st;
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
	drv_sql_bind_text(st, 1, env ? env : "");
	drv_sql_bind_text(st, 2, service);
	drv_sql_bind_text(st, 3, metric);
	drv_sql_bind_text(st, 4, not_id);
	switch (drv_sql_step(st)) {
	case DRV_SQL_ROW:
		snprintf(out->deployment, sizeof(out->deployment), "%s", drv_sql_col_text(st, 0));
		snprintf(out->version, sizeof(out->version), "%s", drv_sql_col_text(st, 1));
		out->value = drv_sql_col_double(st, 2);
		rc = DRV_OK;
		break;
	case DRV_SQL_DONE: rc = DRV_ENOENT; break;
	default:
		drv_error("baseline", "query failed", "error=\"%s\"", drv_sql_errmsg(db));
		rc = DRV_EDB;
	}
	drv_sql_finalize(st);
	return rc;
}

static int insert_all(struct drv_sql *db, const char *id, const char *env, const json_t *values,
                      int64_t now_ms)
{
	struct drv_sql_stmt *del, *ins;
	const char *key;
	json_t *v;
	int rc = prep(db, "DELETE FROM baselines WHERE deployment_id = ?", &del);

	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_text(del, 1, id);
	rc = drv_sql_step(del) == DRV_SQL_DONE ? DRV_OK : DRV_EDB;
	drv_sql_finalize(del);
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

		drv_sql_bind_text(ins, 1, id);
		drv_sql_bind_text(ins, 2, env ? env : "");
		drv_sql_bind_text(ins, 3, text_of(v, "service"));
		drv_sql_bind_text(ins, 4, text_of(v, "metric"));
		drv_sql_bind_text(ins, 5, text_of(v, "version"));
		if (json_is_number(val) && isfinite(json_number_value(val)))
			drv_sql_bind_double(ins, 6, json_number_value(val));
		else
			drv_sql_bind_null(ins, 6);
		drv_sql_bind_text(ins, 7, text_of(v, "unit"));
		drv_sql_bind_text(ins, 8, text_of(v, "query"));
		drv_sql_bind_int64(ins, 9, now_ms);
		if (drv_sql_step(ins) != DRV_SQL_DONE) {
			rc = DRV_EDB;
			break;
		}
		drv_sql_reset(ins);
	}
	drv_sql_finalize(ins);
	return rc;
}

int deploy_baseline_record(struct drv_sql *db, const char *id, const char *env,
                           const json_t *values, int64_t now_ms)
{
	int rc;

	if (json_object_size(values) == 0)
		return DRV_OK;
	if (drv_sql_exec(db, "BEGIN IMMEDIATE") != DRV_OK)
		return DRV_EDB;
	rc = insert_all(db, id, env, values, now_ms);
	if (rc == DRV_OK && drv_sql_exec(db, "COMMIT") != DRV_OK)
		rc = DRV_EDB;
	if (rc != DRV_OK) {
		drv_error("baseline", "cannot record the release's key metrics",
		          "deployment=%s error=\"%s\"", id, drv_sql_errmsg(db));
		drv_sql_exec(db, "ROLLBACK");
	}
	return rc;
}
