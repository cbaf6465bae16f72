/*
 * deploy_int.h: the deployment engine's internals, shared by its files:
 * deploy_engine.c (thread, commands, resume), deploy_run.c (one
 * deployment's transitions: handle, save, perform), deploy_track.c (host and
 * hook records for the API and events), deploy_ops.c (traffic and metric
 * workers), deploy_view.c (the API object), deploy_queue.c (the message
 * queue and deployment events: the helpers below all of them). Not an API.
 *
 * Everything here runs on the engine thread, except the queue (engine->mu)
 * and the worker operations, which only post their outcome.
 */
#ifndef DRV_DEPLOY_INT_H
#define DRV_DEPLOY_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "deploy_config.h"
#include "deploy_store.h"
#include "envelope.h"
#include "metrics.h"

#define DEPLOY_QUEUE_MAX    200000 /* messages waiting for the engine thread */
#define DEPLOY_BATCH_MAX    5000   /* messages handled between two saves */
#define DEPLOY_TICK_MAX_MS  1000   /* the engine looks at deadlines at least this often */
#define DEPLOY_METRIC_MAX   65536  /* bytes of a metric answer */
#define DEPLOY_OP_TIMEOUT   10000  /* traffic operation default, ms */
#define DEPLOY_INSTR_TTL_MS 5000   /* an instruction outlives its step deadline this much */
/* A transition that sends nothing (a report absorbed in the middle of a
 * batch) is saved with the next one that sends something (the batch's
 * end), or at most this long after the last save: the core stored its
 * report before acknowledging it, and a resume replays every final report
 * (deploy_run_resume), so nothing the agents were told or told us is lost
 * meanwhile; what waits is the events' visibility (GET/commands flush
 * first). At 50 ms a rolling batch cost a save per 50 ms of reports, each
 * waiting for SQLite's write lock on the engine thread while the batch's
 * last report queued behind it (docs/benchmarks.md, "rolling with fewer
 * saves"). A transition with actions, a final one and a command's are
 * saved at once. */
#define DEPLOY_SAVE_DEFER_MS 1000

struct op;
struct deploy_busy;

/* An action taken by the sequencer, kept until the transition is saved.
 * Strings the action points to are copied (agent, slot; a.agent and a.slot
 * are pointed at them only when performed, as the array may move); TRAFFIC
 * and METRIC are prepared operations. */
struct pend {
	struct drv_seq_action a;
	char agent[DRV_AGENT_ID_MAX + 1];
	char slot[16];
	struct op *op;
};

/* One deployment that has not finished. */
struct dep {
	struct dep *next;
	struct deploy_row row; /* summary columns (plan/seq_state/view texts unused) */
	struct drv_plan *plan;
	struct drv_seq *seq; /* NULL until started */
	/* {"targets": ..., "hosts": {"S/AGENT": {...}}, "hooks": {"PHASE/I/AGENT": {...}},
	 *  "steps": {STEP_ID: {"k": key, "s": step kind}}} */
	json_t *extra;
	json_t *events;    /* events of the transition being made: [{"kind", "agent", "data"}] */
	struct pend *pend; /* actions taken since the last save */
	size_t n_pend, cap_pend;
	bool dirty;        /* something changed since the last save */
	bool persist;      /* the sequencer's state changed since the last save */
	bool ended;        /* terminal and saved: free after this turn */
	bool save_failing; /* the last save failed: retried every turn */
	bool flushing;     /* in the engine turn's save (deploy_engine.c flush_all) */
	int64_t saved_ms;  /* wall clock of the last save that committed */
	json_t *svc_seen;  /* service name -> its progress as last put in a "service" event */
	uint64_t progress; /* drv_seq_progress_stamp when progress was last noted */
	bool progress_noted;
	json_t *from_idx; /* per service: agent -> the release it ran before (lazy) */
	/* host, hook and step records changed since the last save: {"hosts":
	 * {KEY: true}, "hooks": {...}, "steps": {...}} (deployment_records
	 * rows, deploy_store.h) */
	json_t *recs_dirty;
	bool recs_all; /* write every record (a row from before, out of memory) */
	/* the sequencer's rows (drv_seq_save_rows, section "seq"): those the
	 * save being written carries, until it commits */
	json_t *seq_rows;
	json_t *seq_loaded;   /* every stored one, from the load until the resume */
	bool targets_unsaved; /* a row written before the targets column */
};

enum msg_kind { MSG_REPORT, MSG_OP, MSG_CMD };

struct cmd;

struct msg {
	struct msg *next;
	enum msg_kind kind;
	char agent[DRV_AGENT_ID_MAX + 1];
	char dep[DRV_SEQ_ID_MAX + 1]; /* MSG_OP: the deployment */
	char *id;                     /* step id or operation id (may be NULL) */
	char *service;
	char *message;
	char *output_tail;
	enum drv_seq_event_kind op; /* MSG_OP: DRV_SEQ_EV_TRAFFIC or _METRIC */
	enum drv_seq_result result;
	int exit_code;
	double value;
	json_t *data; /* MSG_OP of an analysis check: its "analysis" event */
	struct cmd *cmd;
};

struct deploy_metrics {
	struct drv_metric *by_state, *step_seconds, *rollbacks, *started;
	struct drv_metric *saves; /* saves written, by what they carry (deploy_run.c save) */
};

struct deploy_engine {
	struct deploy_engine_config cfg;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;  /* the queue, stopping, ops */
	pthread_cond_t wake; /* the engine thread waits here (monotonic clock) */
	pthread_cond_t ops_done;
	struct msg *head, *tail;
	size_t queued;
	size_t dropped;
	bool stopping;
	int ops;                      /* worker operations in flight */
	struct op *tq_head, *tq_tail; /* traffic operations, in order */
	pthread_cond_t tq_cond;
	pthread_t tq_thread;
	bool tq_started, tq_stop;
	/* engine thread only */
	struct dep *deps;
	struct drv_seq_actions acts;
	struct deploy_metrics m;
	json_t *alerts; /* firing Alertmanager alerts: key -> labels (deploy_alerts.c) */
};

/* deploy_alerts.c: Alertmanager alerts against rollback_on_alerts */
#define DEPLOY_ALERTS_MAX 1000 /* firing alerts remembered */
/* Take a webhook payload (checked by the API): remember what fires, fail
 * the services whose rules match while their deployment runs, record
 * resolved ones. *matched: services failed. */
int deploy_alerts_take(struct deploy_engine *e, const json_t *payload, int *matched);
/* The first firing alert matching a service of plan with alert_precheck:
 * DRV_EEXIST and why; DRV_OK when none. */
int deploy_alerts_precheck(struct deploy_engine *e, const struct drv_plan *plan, char *why,
                           size_t cap);

/* deploy_engine.c */
struct dep *deploy_engine_find(struct deploy_engine *e, const char *id);
/* The active deployment other than self that stands in the way of plan on
 * targets (same name, or a service of plan on one of the same hosts);
 * started_only: only deployments that have started count (a queued one
 * asks). NULL when none; *b says which and where. */
struct dep *deploy_engine_busy(struct deploy_engine *e, const struct drv_plan *plan,
                               const json_t *targets, const struct dep *self, bool started_only,
                               struct deploy_busy *b);

/* deploy_gate.c: what a deployment waits for before it starts (approvals,
 * a window, a busy service: docs/environments.md) and the windows that
 * pause a running one. State in d->extra "gate". */
/* A new deployment: its gate, and its state when it waits (awaiting_approval,
 * queued; busy: the deployment it queues behind, or NULL). True when it
 * may start now. */
bool deploy_gate_init(struct deploy_engine *e, struct dep *d, bool window_override,
                      const struct deploy_busy *busy, int64_t now);
/* Every turn: time out approvals, start queued deployments whose way is
 * clear (oldest first), pause running ones at a window and resume them
 * after. */
void deploy_gate_tick(struct deploy_engine *e, int64_t now);
/* Approve or deny a deployment that awaits approval. DRV_ESTATE (it does
 * not), DRV_EPERM (four eyes), DRV_EEXIST (this token approved already):
 * why says it. */
int deploy_gate_decide(struct deploy_engine *e, struct dep *d, const char *actor, bool approve,
                       const char *comment, char *why, size_t cap);
/* The sequencer of d waits for approval at the canary steps its gate names. */
void deploy_gate_seq_start(const struct dep *d, struct drv_seq *s);
/* After a sequencer call (st: its status): d waits at a canary step
 * (state awaiting_approval): open the round if none is, and put the
 * approval's reason in reason; otherwise end a round left open. */
void deploy_gate_step(struct dep *d, const json_t *st, int64_t now, char *reason, size_t cap);
/* The deployment object's "approval", "queued" and "window" members. */
void deploy_gate_view(const struct dep *d, json_t *obj);
/* An operator resumed d: a window no longer pauses it. */
void deploy_gate_resumed(struct dep *d);

/* deploy_run.c */
/* Build the sequencer from the plan and the saved targets and start it. */
int deploy_run_start(struct deploy_engine *e, struct dep *d);
/* Blue-green across host sets: service name -> its live set in the store
 * (deploy_live.h) for every service of p with strategy.sets that has one;
 * a new object. DRV_EDB, DRV_ENOMEM. */
int deploy_run_live_sets(struct deploy_engine *e, const struct drv_plan *p, json_t **out);
/* Rebuild from the saved state, re-send what is outstanding, replay the
 * reports the core recorded meanwhile. */
int deploy_run_resume(struct deploy_engine *e, struct dep *d, const char *seq_state);
/* Feed one event (DRV_ESTATE etc. from drv_seq_handle for verbs). */
int deploy_run_event(struct deploy_engine *e, struct dep *d, const struct drv_seq_event *ev);
/* Time passed: tick when a deadline is due. */
void deploy_run_tick(struct deploy_engine *e, struct dep *d, int64_t now);
/* Save what changed since the last save (one transaction), then perform
 * the actions taken meanwhile. The entry points above only take actions:
 * the engine flushes after a batch of messages and before any command. */
void deploy_run_flush(struct deploy_engine *e, struct dep *d);
/* End a deployment that cannot go on (cannot start, cannot be resumed) as
 * failed with the reason, saved. */
void deploy_run_fail(struct deploy_engine *e, struct dep *d, const char *why);
/* End a deployment that has not started (denied, timed out, aborted while
 * waiting) in state with the reason, saved. */
void deploy_run_end(struct deploy_engine *e, struct dep *d, const char *state, const char *why);
void deploy_dep_free(struct dep *d);
/* Send the plan's webhooks for ev now (a notification droverd makes, not
 * the sequencer: awaiting_approval). */
void deploy_run_notify(struct deploy_engine *e, struct dep *d, enum drv_plan_event ev,
                       const char *text);
/* A sequencer's hosts from a deployment's targets (deploy_hosts.h). */
int deploy_run_add_targets(struct drv_seq *s, const json_t *targets);

/* deploy_track.c: host and hook records in d->extra, and their events */
/* The record KEY of section ("hosts", "hooks", "steps") changed or is
 * gone: the next save writes or deletes it. */
void deploy_track_touch(struct dep *d, const char *section, const char *key);
void deploy_track_send(struct dep *d, const struct drv_seq_action *a, int64_t now);
void deploy_track_report(struct deploy_engine *e, struct dep *d, const struct drv_seq_event *ev,
                         int exit_code, const char *output_tail, int64_t now);
/* After a tick or a verb: hosts whose steps the sequencer ended on its
 * own (deadlines, abandoned) get their records and events. */
void deploy_track_reconcile(struct dep *d, int64_t now);
/* A host's API state from its entry in drv_seq_status(s, true); ended: the
 * deployment is final (a prestage that never finished shows as pending). */
const char *deploy_track_host_state(const json_t *seq_host, bool ended);

/* deploy_ops.c */
int deploy_ops_init(struct deploy_engine *e);
/* Prepare an operation now (weights from the sequencer's current state);
 * NULL only when out of memory. */
struct op *deploy_ops_traffic(struct deploy_engine *e, struct dep *d,
                              const struct drv_seq_action *a);
struct op *deploy_ops_metric(struct deploy_engine *e, struct dep *d,
                             const struct drv_seq_action *a);
/* After the save: run it (the outcome comes back as a message). */
void deploy_ops_start(struct deploy_engine *e, struct op *o);
void deploy_ops_discard(struct op *o);
/* Stop the traffic worker and wait until every operation has posted. */
void deploy_ops_fini(struct deploy_engine *e);
/* The first number in a metric answer ("0.003", "0.003\n", {"value": 0.003}):
 * DRV_EINVAL when there is none or it is not finite. */
int deploy_metric_value(const char *body, double *out);

/* deploy_queue.c: below every other file */
/* Queue m for the engine thread (any thread); the queue takes m (a full
 * queue drops a report or an outcome, never a command). */
void deploy_post(struct deploy_engine *e, struct msg *m);
/* The oldest message, or NULL (caller holds e->mu). */
struct msg *deploy_take(struct deploy_engine *e);
void deploy_msg_free(struct msg *m);
/* Queue an event about d for the current transition (steals data). */
void deploy_event(struct dep *d, const char *kind, const char *agent, json_t *data);

/* d->extra as compact JSON text for the "extra" column (malloc'd; NULL when
 * out of memory): without "targets" (their own column, written once) and
 * the host, hook and step records (rows of their own). */
char *deploy_run_dump_extra(struct dep *d);
/* The records touched since the last save as the JSON texts that
 * deploy_store_save takes (malloc'd): those to write (returned, with the
 * sequencer's rows in d->seq_rows) and those gone (*gone: steps that
 * ended); NULL with *rc DRV_OK when none. */
char *deploy_run_dump_records(struct dep *d, char **gone, int *rc);
/* d->extra from a stored row: its "extra", its targets column and its
 * records (rows written before migration 12 carry them inside extra: those
 * are written out at the next save). DRV_ENOMEM, DRV_EDB, DRV_EINVAL. */
int deploy_run_load_extra(struct deploy_engine *e, struct dep *d, const struct deploy_row *r);
/* Split deploy_run_flush, so that one engine turn saves every deployment
 * in one transaction: prep (bookkeeping; false: nothing to save), write
 * (the save), done (rc: the save's and the commit's result; on success the
 * actions are performed). */
bool deploy_run_flush_prep(struct deploy_engine *e, struct dep *d);
/* d has changes to save that may not wait (DEPLOY_SAVE_DEFER_MS); else
 * *at: when they are due (INT64_MAX: nothing to save). */
bool deploy_run_save_due(const struct dep *d, int64_t now, int64_t *at);
int deploy_run_flush_write(struct deploy_engine *e, struct dep *d);
void deploy_run_flush_done(struct deploy_engine *e, struct dep *d, int rc);

/* deploy_view.c */
/* The documented API state and phase of a deployment. */
const char *deploy_view_state(const struct dep *d);
const char *deploy_view_phase(const struct dep *d);
/* Fill d->row's summary columns from the sequencer. st: its status
 * (drv_seq_status without hosts) when the caller has it, else NULL. */
void deploy_view_summary(struct dep *d, const json_t *st, int64_t now);
/* The deployment object (docs/api.md "Deployments"), a new reference. */
json_t *deploy_view_object(const struct dep *d);
/* Keep the latest verdict of an analysis check (an "analysis" event's data). */
void deploy_view_note_check(struct dep *d, const json_t *data);
/* Keep the latest value of a key metric (an "analysis" event's data with
 * "baseline": true) in extra.baseline. */
void deploy_view_note_metric(struct dep *d, const json_t *data);
/* The key metrics' latest values: an array (docs/api.md "baseline"). */
json_t *deploy_view_baseline(const struct dep *d);
/* A "service" event for every service whose state, batch, canary step or
 * weight changed since the last call (with its tier's state), so that a
 * follower prints a service's progress where it happened; ended_only: only
 * services that ended (done, rolled_back, failed), else only the others.
 * st as for deploy_view_summary. */
void deploy_view_service_events(struct dep *d, const json_t *st, bool ended_only);
/* The release agent ran before this deployment, for service index svc. */
const char *deploy_view_from_version(struct dep *d, int svc, const char *agent);

#endif
