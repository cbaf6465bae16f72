/*
 * deploy_engine.h: droverd's deployment engine. It owns every running
 * deployment's sequencer (sequencer.h) and drives it: agent reports from
 * the core's report hook, operator verbs from the API, timer ticks at
 * drv_seq_next_deadline(), outcomes of traffic switches and metric reads.
 *
 * One thread (the engine thread) is the only owner of sequencer state and of
 * its SQLite connection; everybody else talks to it through its queue:
 * the core hook only copies a report into the queue, API calls post a
 * command and wait for its answer. Every transition is saved (state, the
 * engine's bookkeeping and the events it causes, one transaction) before
 * the actions it causes are performed: instructions go to the core's queue
 * (idempotent by step id), traffic switches and metric reads run on short
 * worker threads outside the engine thread and answer through the queue,
 * notifications go to the notifier, log lines to the log.
 *
 * On start the engine loads every deployment that has not finished and
 * resumes it (drv_seq_load + drv_seq_resume), then replays the reports the
 * core recorded for it, so a kill -9 at any point ends in the same state.
 * docs/deployments.md tells the whole story.
 */
#ifndef DRV_DEPLOY_ENGINE_H
#define DRV_DEPLOY_ENGINE_H

#include <jansson.h>
#include "sqldb.h"

#include "core.h"
#include "deploy_store.h"
#include "deploy_config.h"
#include "events.h"
#include "notify.h"
#include "plan.h"
#include "sequencer.h"

struct deploy_engine;

/* Load and resume unfinished deployments, start the thread, and install the
 * core's report hook. */
int deploy_engine_new(const struct deploy_engine_config *cfg, struct deploy_engine **out);
/* Remove the hook, stop the thread (waits for worker operations, each
 * bounded by its timeout). Deployments stay in the database. NULL is fine. */
void deploy_engine_free(struct deploy_engine *e);

/* ---- API (any thread; each call waits for the engine thread) ---- */

enum deploy_verb { DEPLOY_PAUSE, DEPLOY_RESUME, DEPLOY_PROMOTE, DEPLOY_ABORT, DEPLOY_ROLLBACK };

/* The active deployment that stands in the way of a new one: the same
 * deployment name (service is ""), or the same service on one of the same
 * hosts (service and agent name the first such pair). */
struct deploy_busy {
	char id[DRV_SEQ_ID_MAX + 1];
	char name[DEPLOY_NAME_MAX + 1];
	char service[DRV_PLAN_NAME_MAX + 1];
	char agent[DRV_AGENT_ID_MAX + 1];
	char why[DRV_SEQ_TEXT_MAX]; /* DRV_EPERM: the alerts that fire */
};

/*
 * Create a deployment of plan (pinned: every image has a digest) on
 * targets (deploy_hosts_resolve). On success the engine owns plan and
 * *obj is the deployment object (state pending); it starts right after.
 * DRV_EEXIST: a deployment of the same name is active, or one that acts on
 * a service of this plan on one of its hosts (*busy says which and where):
 * one deployment per service and host at a time, across plans.
 * DRV_EPERM: a service with alert_precheck has a matching alert firing
 * (busy->why says which).
 * On failure the caller keeps plan.
 */
int deploy_engine_submit(struct deploy_engine *e, struct drv_plan *plan, const json_t *targets,
                         const char *actor, json_t **obj, struct deploy_busy *busy);
/*
 * The same, where the deployment may wait before it starts
 * (docs/environments.md): in state awaiting_approval when its environment
 * requires approval, in state queued when its plan says queue: true and a
 * window of its environment or a busy service holds it back (no DRV_EEXIST
 * then). window_override: an admin overrode the windows (audited by the
 * caller): none holds it back or pauses it. promoted_from as in
 * deploy_engine_submit_from (below).
 */
int deploy_engine_submit_opts(struct deploy_engine *e, struct drv_plan *plan, const json_t *targets,
                              const char *actor, const char *promoted_from, bool window_override,
                              json_t **obj, struct deploy_busy *busy);
/*
 * Approve (or deny) a deployment that awaits approval, as actor (a token
 * name; the caller checked its role), with a comment. The last approval
 * needed starts it (or queues it); a denial ends it aborted. DRV_ENOENT;
 * DRV_ESTATE: it does not await approval; DRV_EPERM: actor started it and
 * its environment wants four eyes; DRV_EEXIST: actor approved it already
 * (why says each). On success *obj is the deployment object.
 */
int deploy_engine_decide(struct deploy_engine *e, const char *id, const char *actor, bool approve,
                         const char *comment, json_t **obj, char why[DRV_SEQ_TEXT_MAX]);
/* The same for a promotion (docs/environments.md): the new deployment
 * records that it copies deployment promoted_from (NULL: none). */
int deploy_engine_submit_from(struct deploy_engine *e, struct drv_plan *plan, const json_t *targets,
                              const char *actor, const char *promoted_from, json_t **obj,
                              struct deploy_busy *busy);
/* What a promotion needs of deployment id, running or finished:
 * {"id", "deployment", "version", "state", "environment", "release_id",
 * "release": the release (plan.h) or null}. DRV_ENOENT if unknown. */
int deploy_engine_release(struct deploy_engine *e, const char *id, json_t **obj);
/* The newest deployment of release_id to env that succeeded (its id into
 * id_out); DRV_ENOENT when none did. */
int deploy_engine_release_succeeded(struct deploy_engine *e, const char *env,
                                    const char *release_id, char id_out[DRV_SEQ_ID_MAX + 1]);
/* An Alertmanager webhook payload ({"alerts": [{"status", "labels"}...]},
 * checked by the API): services whose rollback_on_alerts match a firing
 * alert fail (*matched counts them); resolved alerts are recorded. */
int deploy_engine_alerts(struct deploy_engine *e, const json_t *payload, int *matched);
/* The deployment object (docs/api.md); DRV_ENOENT if unknown. */
int deploy_engine_get(struct deploy_engine *e, const char *id, json_t **obj);
/* Blue-green across host sets: service name -> live set (deploy_live.h) for
 * the services of plan with strategy.sets that have one (a new object; the
 * plan is only read). For a dry run's choice of the idle set. */
int deploy_engine_live_sets(struct deploy_engine *e, const struct drv_plan *plan, json_t **out);
/* {"deployments": [SUMMARY...]}, newest first. */
int deploy_engine_list(struct deploy_engine *e, int limit, json_t **obj);
/* What the last succeeded deployment of each service put where
 * (deploy_drift.h). */
int deploy_engine_baseline(struct deploy_engine *e, json_t **obj);
/* An operator verb; DRV_ENOENT, DRV_ESTATE (does not apply now: *why says
 * why). On success *obj is the deployment object after the verb. */
int deploy_engine_verb(struct deploy_engine *e, const char *id, enum deploy_verb verb,
                       const char *actor, json_t **obj, char why[DRV_SEQ_TEXT_MAX]);

const char *deploy_verb_name(enum deploy_verb v);

#endif
