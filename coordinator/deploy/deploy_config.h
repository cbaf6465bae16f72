/*
 * deploy_config.h: what the deployment engine is given. Its own header so
 * that the engine's API (deploy_engine.h) and its internals (deploy_int.h)
 * both have it without including each other.
 */
#ifndef DRV_DEPLOY_CONFIG_H
#define DRV_DEPLOY_CONFIG_H

#include "sqldb.h"
#include <stdint.h>

struct core;
struct drv_events;
struct notifier;
struct drv_traffic_balancers;
struct drv_prom_servers;
struct drv_plan_envs;
struct drv_strlist;

struct deploy_engine_config {
	struct drv_sql *db;        /* a connection of its own (drv_sql_open), borrowed */
	struct core *core;         /* borrowed */
	struct drv_events *events; /* woken after events are saved; may be NULL */
	struct notifier *notifier; /* webhooks; may be NULL */
	int64_t metric_timeout_ms; /* 0: 5 s (a plan's analysis timeout wins) */
	/* droverd.yaml `balancers`, the only traffic switches a plan may name;
	 * borrowed, may be NULL (none) */
	const struct drv_traffic_balancers *balancers;
	/* droverd.yaml `prometheus`, the only servers an analysis may query;
	 * borrowed, may be NULL (none) */
	const struct drv_prom_servers *prometheus;
	/* droverd.yaml `environments`: approvals and windows; borrowed, may be
	 * NULL (none) */
	const struct drv_plan_envs *environments;
	/* droverd.yaml `outbound.allow`: checked again before each webhook
	 * POST and analysis GET (a plan saved before the list changed);
	 * borrowed, may be NULL (nothing allowed) */
	const struct drv_strlist *outbound_allow;
};

#endif
