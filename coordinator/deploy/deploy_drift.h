/*
 * deploy_drift.h: drift, what the fleet runs now against what the last
 * successful deployment of each service put there, and the plan that puts
 * it back (drover drift, drover converge).
 *
 * The baseline (deploy_drift_baseline, on the engine's thread: it reads the
 * deployments table) is, per service, the newest succeeded deployment that
 * ran it: {"services": {NAME: {"deployment", "version", "digest",
 * "files_hash", "hosts": [{"id", "finished_ms"}], "selector"}}, "plans":
 * {DEPLOYMENT: normalized plan}}.
 *
 * Kinds of drift, per host and service: "offline" (the agent is not
 * connected), "stopped" (no running release), "crash-looping", "release"
 * (another digest or version runs), "files" (a config file differs from
 * the plan's), "restarted" (its process started after the deployment
 * finished there: it exited or was killed, and the agent restarted it),
 * "missed" (the service's hosts match this agent now, but the deployment
 * did not run there: it was offline or absent).
 */
#ifndef DRV_DEPLOY_DRIFT_H
#define DRV_DEPLOY_DRIFT_H

#include <jansson.h>
#include "sqldb.h"
#include <stdint.h>

#define DRIFT_DEPLOYMENTS_MAX  200 /* succeeded deployments looked at, newest first */
#define DRIFT_RESTART_SLACK_MS 2000

int deploy_drift_baseline(struct drv_sql *db, json_t **out);

/* {"hosts": [{"host", "service", "kind", "detail", "deployment",
 *  "expected_version", "actual_version"}], "drifted_hosts": N (distinct
 *  hosts)}; agents: GET /v1/agents's list. NULL without memory. */
json_t *deploy_drift_compute(const json_t *baseline, const json_t *agents);

/* Plans that re-apply the baseline release of service (NULL: every
 * drifted service) on its drifted hosts (not the offline ones): one
 * normalized plan per deployment they came from, without hooks and
 * notifications, with the same strategy, health and failure policy.
 * DRV_ENOENT (why says it) when nothing of it drifted. */
int deploy_drift_converge_plans(const json_t *baseline, const json_t *drift, const char *service,
                                json_t **plans, char *why, size_t why_cap);

#endif
