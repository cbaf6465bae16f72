/*
 * deploy_baseline.h: the performance baseline of each release (schema
 * migration 7, table `baselines`). When a deployment succeeds, the value of
 * every key metric its plan names (analysis.prometheus.baseline), per
 * service, is recorded; the next deployment of the service compares its
 * own values with the latest recorded ones of the same environment.
 *
 * A row only counts once its deployment is known to have succeeded (rows
 * are written just before the final save; a deployment that then ends
 * otherwise after a restart leaves rows that are ignored). Rows outlive
 * the retention of their deployment: a few per release.
 *
 * Threads: the engine's thread (its connection).
 */
#ifndef DRV_DEPLOY_BASELINE_H
#define DRV_DEPLOY_BASELINE_H

#include <jansson.h>
#include "sqldb.h"
#include <stdint.h>

#include "deploy_store.h"

struct deploy_prev {
	char deployment[DRV_SEQ_ID_MAX + 1];
	char version[DEPLOY_NAME_MAX + 1];
	double value;
};

/* The latest recorded value of metric of service in env (NULL: none) by a
 * deployment other than not_id: DRV_OK with *out, DRV_ENOENT, DRV_EDB. */
int deploy_baseline_previous(struct drv_sql *db, const char *env, const char *service,
                             const char *metric, const char *not_id, struct deploy_prev *out);

/* Record a deployment's key metrics: values is extra.baseline, an object
 * of {"service", "metric", "version", "value" (absent: no data), "unit",
 * "query"}; replaces what was recorded for id before. One transaction. */
int deploy_baseline_record(struct drv_sql *db, const char *id, const char *env,
                           const json_t *values, int64_t now_ms);

#endif
