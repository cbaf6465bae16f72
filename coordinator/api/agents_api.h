/*
 * agents_api.h: the agents part of the HTTP API, served from the core.
 *
 *   GET  /v1/agents                      viewer  {"agents": [agent...]} (core.h's shape)
 *   GET  /v1/agents/{id}                 viewer  one agent
 *   POST /v1/agents/{id}/accept          admin   accept a pending (or rejected) agent
 *   POST /v1/agents/{id}/reject          admin   reject an agent (it gets nothing more)
 *   POST /v1/agents/{id}/instructions    admin   debug/operator tool: queue a RUN_HOOK
 *        {"step_id"!, "run"! [argv], "deployment_id", "env" {K: V}, "timeout_ms",
 *         "ttl_ms"}  -> 201 {"agent_id", "seq", "step_id", "queued": true}
 *                       (200 with "queued": false when the step id was queued before)
 *
 * Link counters and agents by state go to /metrics through a collect hook.
 */
#ifndef DRV_AGENTS_API_H
#define DRV_AGENTS_API_H

#include "core.h"
#include "http_server.h"
#include "metrics.h"

/* Routes and the metrics hook; core must outlive srv and m. */
int agents_api_add_routes(struct drv_http_server *srv, struct core *c);
int agents_api_add_metrics(struct drv_metrics *m, struct core *c);

#endif
