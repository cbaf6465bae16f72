/*
 * deploy_api.h: the /v1/deployments routes (docs/api.md "Deployments").
 *
 * POST /v1/deployments parses and validates the plan (YAML or JSON; every
 * error with its line and field), resolves image tags to digests at the
 * registry, checks that every traffic balancer it names is one droverd.yaml
 * defines, resolves hosts to accepted agents, and hands the pinned plan to
 * the engine. GET lists and shows deployments; POST .../{verb} passes
 * operator commands on. Every mutating call leaves an audit note.
 */
#ifndef DRV_DEPLOY_API_H
#define DRV_DEPLOY_API_H

#include "core.h"
#include "deploy_engine.h"
#include "http_server.h"
#include "metrics.h"

struct drv_lifecycles;

struct deploy_api {
	/* borrowed; NULL on a follower of an HA group until it leads (set once,
	 * with deploy_api_set_engine): reads are then served from db, and a
	 * deployment still running is the leader's to show (307) */
	struct deploy_engine *engine;
	struct drv_sql *db;    /* borrowed: the API's connection, for those reads */
	struct core *core;     /* borrowed */
	int insecure_registry; /* resolve tags over plain http:// (tests, labs) */
	/* droverd.yaml `balancers` (borrowed, may be NULL): a plan's
	 * traffic.balancer must name one of them */
	const struct drv_traffic_balancers *balancers;
	/* droverd.yaml `prometheus` (borrowed, may be NULL): the servers a
	 * plan's analysis may name */
	const struct drv_prom_servers *prometheus;
	/* droverd.yaml `outbound.allow` (borrowed, may be NULL: none): the
	 * only webhooks and analysis URLs a plan may name (outbound.h) */
	const struct drv_strlist *outbound_allow;
	/* droverd.yaml `environments` (borrowed, may be NULL: none): where a
	 * plan may go (its `environment` or ?env=), its hosts and variables */
	const struct drv_plan_envs *environments;
	/* droverd.yaml `lifecycles` (borrowed, may be NULL): the phase before an
	 * environment, whose success a release needs (lifecycle.h) */
	const struct drv_lifecycles *lifecycles;
};

/* One plan error line ("SOURCE:LINE: field.path: message", LINE and field
 * optional) as the API's {"line", "field", "message"} (a new reference;
 * NULL when out of memory). */
json_t *deploy_api_plan_error(const char *text, const char *source);

/* The engine from now on (a follower that came to lead); any thread. */
void deploy_api_set_engine(struct deploy_api *api, struct deploy_engine *e);

/* api is borrowed and must outlive the server. */
int deploy_api_add_routes(struct drv_http_server *srv, struct deploy_api *api);
/* drover_drift_hosts, computed at scrape time; api must outlive m. */
int deploy_api_add_metrics(struct drv_metrics *m, struct deploy_api *api);

#endif
