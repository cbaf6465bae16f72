/*
 * deploy_live.h: the live set of each blue-green service deployed across
 * host sets (schema migration 11, table `live_sets`): which of its two sets
 * takes the traffic, per environment and service. A deployment writes it
 * when its switch to the new set completes (and when a rollback's switch
 * back completes); the next release goes to the other set. It survives
 * droverd restarts and the retention of old deployments.
 *
 * Threads: the engine's thread (its connection).
 */
#ifndef DRV_DEPLOY_LIVE_H
#define DRV_DEPLOY_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "sqldb.h"

#include "deploy_store.h"

struct deploy_live {
	char set[DRV_PLAN_NAME_MAX + 1];
	char deployment[DRV_SEQ_ID_MAX + 1]; /* the deployment that made it live */
	int64_t updated_ms;
};

/* The live set of service in env (NULL: none): DRV_OK with *out,
 * DRV_ENOENT when no set of it was ever live, DRV_EDB. */
int deploy_live_get(struct drv_sql *db, const char *env, const char *service,
                    struct deploy_live *out);
/* Record set as live (replacing what was): DRV_OK or DRV_EDB. */
int deploy_live_put(struct drv_sql *db, const char *env, const char *service, const char *set,
                    const char *deployment, int64_t now_ms);

#endif
