/*
 * retention.h: keeps the coordinator's database from growing without bound.
 *
 * Events, finished deployments and the instructions and performance
 * baselines of deployments no longer kept are deleted by age and by count (droverd.yaml
 * retention.*, docs/operations.md). Deletion runs in small batches, each its own short transaction,
 * so the writers that matter (the link's reports, the deployment engine) wait at most one batch for
 * the write lock. What is never deleted: events of a deployment that has not finished (a restarted
 * droverd replays its reports from them), unfinished deployments, queued or
 * sent instructions, the newest baseline of each environment, service and
 * metric (the next release is compared with it, however old its deployment)
 * and the audit log (append-only by design).
 *
 *     struct drv_retention_config rc = {.events_max_rows = 100000, ...};
 *     struct drv_retention_pass p;
 *     drv_retention_prune(db, &rc, drv_wall_ms(), drv_mono_ms() + 200, &p);
 *     // p.deleted[DRV_RET_EVENTS], p.more: call again soon
 */
#ifndef DRV_RETENTION_H
#define DRV_RETENTION_H

#include "sqldb.h"
#include <stdbool.h>
#include <stdint.h>

enum drv_ret_table {
	DRV_RET_EVENTS,
	DRV_RET_DEPLOYMENTS,
	DRV_RET_INSTRUCTIONS,
	DRV_RET_BASELINES,
	DRV_RET_N
};

/* Limits: 0 means no limit of that kind (dconf refuses both 0 for a table). */
struct drv_retention_config {
	int64_t events_max_age_ms, events_max_rows;
	int64_t deployments_max_age_ms, deployments_max_rows;
	int64_t batch; /* rows (deployments: deployments) per transaction, >= 1 */
};

struct drv_retention_pass {
	int64_t deleted[DRV_RET_N];
	bool more; /* stopped at the time budget with rows still to delete */
};

/* "events", "deployments", "instructions", "baselines". */
const char *drv_retention_table_name(enum drv_ret_table t);

/* Delete what the limits say, batch by batch, until nothing is left to
 * delete or the monotonic clock passes until_mono_ms (at least one batch
 * per table runs). *out is filled also on failure (what was deleted so
 * far). DRV_EDB when a batch fails (e.g. the disk is full: nothing of that
 * batch is deleted; the next pass tries again). */
int drv_retention_prune(struct drv_sql *db, const struct drv_retention_config *c, int64_t now_ms,
                        int64_t until_mono_ms, struct drv_retention_pass *out);

/* Rows in each table now (count(*); for the metric). */
int drv_retention_count(struct drv_sql *db, int64_t rows[DRV_RET_N]);

#endif
