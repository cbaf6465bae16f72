/*
 * sequencer.h: the deployment state machine. Pure: no sockets, no clock, no
 * database. (state, event, now) -> (new state, actions).
 *
 * A deployment runs: prestage (every target host pulls and verifies its
 * images; any failure ends it with zero hosts changed) -> pre hooks ->
 * migrations up -> tiers in order (the services of a tier in parallel, each
 * by its strategy; a tier starts when every service of the previous one is
 * done) -> post hooks -> finalize (blue-green services drop the old slot
 * after finalize_after) -> succeeded. On a failure beyond a budget it rolls
 * back the service, the tier or the whole deployment (reverse tier order,
 * then migrations down in reverse), with ACTIVATE_PREVIOUS on the hosts:
 * no pull, no canary replay. docs/state-machines.md draws all of it.
 *
 * How the caller (droverd) drives it, from one thread (or under one lock):
 *
 *   drv_seq_new(plan, id) ; drv_seq_add_host(...)... ; drv_seq_start(now, &acts)
 *   loop: drv_seq_handle(event, now, &acts)   (reports, ticks, operator verbs)
 *         if acts.persist: drv_seq_save() and store it (one SQLite transaction)
 *         then perform acts.v[0..n) in order; drv_seq_actions_clear(&acts)
 *         arm a timer for drv_seq_next_deadline() and send EV_TICK then
 *   after a restart: drv_seq_load(plan, saved) ; drv_seq_resume(now, &acts)
 *         (re-sends every outstanding step with the same step id and content;
 *         agents are idempotent by step id) and go on.
 *
 * Time: `now` is milliseconds on a clock that survives restarts of the
 * caller (use drv_wall_ms()); deadlines in the state are on that clock.
 *
 * Step ids are deterministic, "<deployment>:<kind>:<numbers>", e.g.
 * "d42:start:3:17" (service 3, host 17 of that service in the sequencer's
 * order). A replayed transition issues the same id with the same content.
 *
 * Ownership: a struct drv_seq borrows the plan (keep it alive and unchanged
 * until drv_seq_free). Strings in actions point into the sequencer or the
 * plan and stay valid until the next call that changes the sequencer.
 */
#ifndef DRV_SEQUENCER_H
#define DRV_SEQUENCER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover.pb-c.h"
#include "plan.h"

#define DRV_SEQ_ID_MAX          64    /* deployment id: [A-Za-z0-9._-], 1..64 */
#define DRV_SEQ_STEP_ID_MAX     128   /* step and operation ids, NUL included */
#define DRV_SEQ_TEXT_MAX        240   /* log and notification text, NUL included */
#define DRV_SEQ_SLACK_MS        10000 /* wait this long past a step's own deadline */
#define DRV_SEQ_RESUME_GRACE_MS 30000 /* after a restart, outstanding steps get this much */
#define DRV_SEQ_FINALIZE_MS     30000 /* budget of a FINALIZE step (plus stop grace) */
#define DRV_SEQ_STATE_VERSION   1

struct drv_seq;

enum drv_seq_state {
	DRV_SEQ_PENDING,  /* created, not started */
	DRV_SEQ_PRESTAGE, /* images pulled on every target host */
	DRV_SEQ_PRE,      /* pre hooks, one after another */
	DRV_SEQ_MIGRATE,  /* migrations up, one after another */
	DRV_SEQ_TIERS,    /* tiers in order */
	DRV_SEQ_POST,     /* post hooks */
	DRV_SEQ_FINALIZE, /* waiting for blue-green services to finalize */
	DRV_SEQ_ROLLBACK, /* rolling back tiers, then migrations */
	DRV_SEQ_SUCCEEDED,
	DRV_SEQ_FAILED,      /* failed; nothing (more) rolled back, or rollback failed */
	DRV_SEQ_ROLLED_BACK, /* failed (or operator rollback), rollback completed */
	DRV_SEQ_ABORTED,     /* stopped where it stood by the operator */
};

const char *drv_seq_state_name(enum drv_seq_state st);
/* SUCCEEDED, FAILED, ROLLED_BACK, ABORTED. */
bool drv_seq_state_terminal(enum drv_seq_state st);

/* ---- events ---- */

enum drv_seq_event_kind {
	DRV_SEQ_EV_REPORT,   /* an agent's report on a step, or a health transition */
	DRV_SEQ_EV_TICK,     /* time passed (arm a timer at drv_seq_next_deadline) */
	DRV_SEQ_EV_TRAFFIC,  /* outcome of a TRAFFIC action (id = its id) */
	DRV_SEQ_EV_METRIC,   /* outcome of a METRIC action (id, value) */
	DRV_SEQ_EV_PAUSE,    /* operator: start no new step */
	DRV_SEQ_EV_RESUME,   /* operator */
	DRV_SEQ_EV_PROMOTE,  /* operator: end a canary pause / finalize blue-green now */
	DRV_SEQ_EV_ABORT,    /* operator: stop where it stands */
	DRV_SEQ_EV_ROLLBACK, /* operator: roll the whole deployment back */
	DRV_SEQ_EV_FAIL,     /* the service failed (a matching alert fired; message:
	                      * why): a breach, rolled back by its failure policy */
	DRV_SEQ_EV_APPROVE,  /* the approval at a canary step was given: the
	                      * services waiting for it go on */
	DRV_SEQ_EV_DENY,     /* ... was denied (or timed out; message: why): the
	                      * deployment rolls back */
};

enum drv_seq_result {
	DRV_SEQ_R_OK,          /* step succeeded; traffic switched; metric fetched */
	DRV_SEQ_R_FAILED,      /* step failed; traffic or metric could not be done */
	DRV_SEQ_R_PROGRESS,    /* accepted / running: noted, nothing changes */
	DRV_SEQ_R_HEALTH_DOWN, /* a health transition outside any step */
	DRV_SEQ_R_HEALTH_UP,
	DRV_SEQ_R_INCONCLUSIVE, /* METRIC of an analysis check: neither pass nor fail */
};

struct drv_seq_event {
	enum drv_seq_event_kind kind;
	const char *agent;   /* REPORT: the reporting agent (verified by the caller) */
	const char *id;      /* REPORT: step id; TRAFFIC, METRIC: the action's id */
	const char *service; /* REPORT health: service name; PROMOTE: only this one (or NULL) */
	enum drv_seq_result result;
	double value;        /* METRIC: the value read */
	const char *message; /* optional detail, kept for logs */
};

/* ---- actions ---- */

enum drv_seq_action_kind {
	DRV_SEQ_ACT_SEND,    /* send an instruction (build it with drv_seq_instruction) */
	DRV_SEQ_ACT_TRAFFIC, /* set HAProxy weights (drv_seq_traffic_servers), answer EV_TRAFFIC */
	DRV_SEQ_ACT_METRIC,  /* GET url, read a number, answer EV_METRIC; or with
	                      * check >= 0, run an analysis check (query on server)
	                      * and answer its verdict: R_OK pass, R_FAILED fail,
	                      * R_INCONCLUSIVE */
	DRV_SEQ_ACT_NOTIFY,  /* a notification event (webhooks per plan.notify) */
	DRV_SEQ_ACT_LOG,     /* a transition, for the log and the events stream */
};

/* What a SEND does (the proto's Drover__Action values). */
enum drv_seq_step_kind {
	DRV_SEQ_STEP_PRESTAGE,
	DRV_SEQ_STEP_START,
	DRV_SEQ_STEP_ROLLBACK, /* ACTIVATE_PREVIOUS, or STOP of the new slot / first release */
	DRV_SEQ_STEP_FINALIZE,
	DRV_SEQ_STEP_PRE,
	DRV_SEQ_STEP_UP,
	DRV_SEQ_STEP_DOWN,
	DRV_SEQ_STEP_POST,
	DRV_SEQ_STEP_TRAFFIC, /* RUN_HOOK of a service's traffic hook */
};
#define DRV_SEQ_STEP_KINDS (DRV_SEQ_STEP_TRAFFIC + 1)

/* The name of a step kind, the middle word of its step ids ("prestage",
 * "start", ...); "other" for any other value. */
const char *drv_seq_step_kind_name(int kind);

/*
 * A step or operation id taken apart: "<deployment>:<kind>:<n>[:<n>[:<n>]]"
 * where kind is a step kind's name or "metric". The one parser of step ids
 * (the sequencer, the engine and the report metrics use it).
 */
#define DRV_SEQ_ID_METRIC  100 /* drv_seq_id.kind of a metric operation id */
#define DRV_SEQ_ID_TRAFFIC 101 /* ... of a traffic operation id (traffic:SVC:OP) */

struct drv_seq_id {
	size_t dep_len; /* the deployment id is id[0, dep_len) */
	int kind;       /* enum drv_seq_step_kind, DRV_SEQ_ID_METRIC or DRV_SEQ_ID_TRAFFIC */
	uint32_t n[3];
	int count; /* numbers after the kind, 0..3 */
};

/* DRV_EINVAL if id is not a step or operation id (out unspecified). */
int drv_seq_id_parse(const char *id, struct drv_seq_id *out);

struct drv_seq_action {
	enum drv_seq_action_kind kind;
	char id[DRV_SEQ_STEP_ID_MAX]; /* SEND: step id; TRAFFIC, METRIC: operation id */
	/* SEND */
	const char *agent;
	enum drv_seq_step_kind step;
	int action;               /* Drover__Action: PRESTAGE, START, STOP, ... */
	const char *slot;         /* "", "blue", "green" */
	uint32_t port;            /* the port the service listens on in that slot */
	int64_t step_deadline_ms; /* the agent's budget for the step */
	int64_t deadline;         /* (now clock) after this the step counts as failed */
	int service;              /* index in plan->services, -1 for hooks */
	int hook;                 /* index in plan->pre / migrations / post, -1 otherwise */
	/* TRAFFIC (and SEND of a traffic hook) */
	int percent; /* canary: share for the new version, -1 = even weights */
	bool to_new; /* blue-green: to the new slot (else back to the old) */
	/* METRIC */
	const char *url;
	double max;
	int check;          /* index in the service's analysis.checks, -1: analysis.http */
	const char *server; /* check: the Prometheus server's name (droverd.yaml) */
	const char *query;  /* check: the query with its placeholders filled in */
	/* NOTIFY, LOG */
	enum drv_plan_event event; /* NOTIFY */
	char text[DRV_SEQ_TEXT_MAX];
};

struct drv_seq_actions {
	struct drv_seq_action *v;
	size_t n, cap;
	bool persist; /* the state changed: save it before performing v[] */
};

/* n = 0 and persist = false; keeps the memory. */
void drv_seq_actions_clear(struct drv_seq_actions *a);
void drv_seq_actions_free(struct drv_seq_actions *a);

/* ---- life cycle ---- */

/* A new sequencer for a validated plan whose images all have digests
 * (DRV_ENODIGEST otherwise); id names the deployment in step ids. */
int drv_seq_new(const struct drv_plan *plan, const char *id, struct drv_seq **out);
void drv_seq_free(struct drv_seq *s);

/*
 * Target hosts, before drv_seq_start. For service `service` (index in
 * plan->services): the agent, whether it runs a previous release of the
 * service (rollback re-activates it; without one, rollback stops the
 * service) and that release's blue-green slot ("" / NULL, "blue", "green").
 * Hooks: list is DRV_SEQ_STEP_PRE, _UP (migrations), _POST or _TRAFFIC
 * (index = the service). Hosts are sorted (naturally) at start.
 */
int drv_seq_add_host(struct drv_seq *s, size_t service, const char *agent, bool has_previous,
                     const char *previous_slot);
int drv_seq_add_hook_host(struct drv_seq *s, enum drv_seq_step_kind list, size_t index,
                          const char *agent);

/*
 * Blue-green across host sets (the service's strategy.sets), before
 * drv_seq_start: the release goes to set `set` (index in strategy.sets;
 * its hosts are the ones drv_seq_add_host added), `first` when no set was
 * live before. The other set's hosts (drv_seq_add_live_host) lose their
 * traffic at the switch and are stopped (decommissioned) after
 * finalize_after, once the deployment is otherwise done. DRV_EINVAL for a
 * service without sets.
 */
int drv_seq_use_set(struct drv_seq *s, size_t service, uint32_t set, bool first);
int drv_seq_add_live_host(struct drv_seq *s, size_t service, const char *agent);
/* The set that takes the service's traffic because of this deployment: the
 * new set once switched, the old one once switched back; NULL before any
 * switch (or for a service without sets). Points into the plan. */
const char *drv_seq_live_set(const struct drv_seq *s, size_t service);

/* Before drv_seq_start: a canary service whose steps include percent (1 to
 * 99) waits for approval (DRV_SEQ_EV_APPROVE) once that step is done and
 * its gates passed: its status says waiting "approval" and a NOTIFY
 * awaiting_approval is taken. DRV_EINVAL for another percent. */
int drv_seq_approve_at(struct drv_seq *s, uint32_t percent);

/* Check the targets (every service and hook has hosts) and begin:
 * DRV_EINVAL with drv_seq_error() saying what is missing. */
int drv_seq_start(struct drv_seq *s, int64_t now, struct drv_seq_actions *out);

/*
 * Feed one event. DRV_OK when handled (a stale or duplicate report is
 * handled by ignoring it); DRV_ESTATE when an operator verb does not apply
 * now (e.g. promote with nothing to promote); DRV_EINVAL for a malformed
 * event (unknown step id, an agent reporting another agent's step);
 * DRV_ENOMEM: the sequencer is unusable, reload it from the saved state.
 */
int drv_seq_handle(struct drv_seq *s, const struct drv_seq_event *ev, int64_t now,
                   struct drv_seq_actions *out);

/* When the next timer or deadline falls (INT64_MAX: none). */
int64_t drv_seq_next_deadline(const struct drv_seq *s);

enum drv_seq_state drv_seq_state(const struct drv_seq *s);
bool drv_seq_paused(const struct drv_seq *s);
/* Why it failed / what is missing; "" when nothing to say. */
const char *drv_seq_error(const struct drv_seq *s);

/* ---- persistence ---- */

/* The whole state as JSON (a new reference). It does not include the plan:
 * store the normalized plan (drv_plan_to_json) beside it once. */
int drv_seq_save(const struct drv_seq *s, json_t **out);
/* Rebuild from drv_seq_save output and the same plan (DRV_EINVAL if the
 * state does not belong to this plan or is malformed). */
int drv_seq_load(const struct drv_plan *plan, const json_t *state, struct drv_seq **out);
/* After a load: re-emit every outstanding step and operation (same ids,
 * same content), giving each at least DRV_SEQ_RESUME_GRACE_MS. */
int drv_seq_resume(struct drv_seq *s, int64_t now, struct drv_seq_actions *out);

/* ---- persistence in rows (seq_rows.c) ----
 *
 * For a store that keeps one row a host: *state (a new reference) is the
 * state without its hosts and agents, and rows (an object the caller made)
 * gets, by key, the rows that changed since the last drv_seq_rows_stored():
 * "agents" (every agent's name) and "h<service>.<index>" (one host). On
 * failure *state is untouched and rows may hold some of them: drop it. */
int drv_seq_save_rows(const struct drv_seq *s, json_t **state, json_t *rows);
/* The rows of the last drv_seq_save_rows are stored (committed): the next
 * save returns what changes after them. */
void drv_seq_rows_stored(struct drv_seq *s);
/* Rebuild from drv_seq_save_rows' state and every row stored (the rows
 * then count as stored), or from a whole drv_seq_save state (rows unused;
 * the first save then returns every row). DRV_EINVAL as drv_seq_load, and
 * for a host without its row. */
int drv_seq_load_rows(const struct drv_plan *plan, const json_t *state, const json_t *rows,
                      struct drv_seq **out);

/* Progress for the API and `drover status`/`--wait` (a new reference):
 * state, tiers, services (strategy, step, counts), hooks; with hosts, each
 * host's steps too. */
json_t *drv_seq_status(const struct drv_seq *s, bool hosts);
/* A number that changes with what drv_seq_status shows of the deployment
 * and its services' progress: the state, the pause, the reason, the current
 * tier, the failed and total hosts, and each service's state, step, host
 * count and what it waits for ("state", "step", "steps", "percent",
 * "waiting"); not with a host's own steps, a service's counts of hosts
 * (started, ok, failed, rolled back), its analysis or sets, the hooks or
 * the times. Equal stamps: those parts of the status are equal, so a caller
 * deriving events from them can skip building it. */
uint64_t drv_seq_progress_stamp(const struct drv_seq *s);

/* ---- performing actions ---- */

/* The SEND's instruction with target, deployment, step id, action, service
 * spec or hook and step deadline filled in; seq, issued_at and expires_at
 * are the dispatcher's. Free with drv_seq_instruction_free. The message
 * points into the plan: build it, send it, free it. */
int drv_seq_instruction(const struct drv_seq *s, const struct drv_seq_action *a,
                        Drover__Instruction **out);
void drv_seq_instruction_free(Drover__Instruction *ins);

/* The HAProxy servers of a TRAFFIC action and their weights (0..256):
 * server names from the plan's template ({host}, {slot}). GAINS: the
 * server starts to take traffic with this move (the new slot or set, a
 * canary's new hosts; the old ones on the way back), so the balancer must
 * see it UP before the weights are set; servers that carried traffic all
 * along (a canary's old hosts) are not waited on. */
typedef void (*drv_seq_server_fn)(void *arg, const char *server, uint32_t weight, bool gains);
int drv_seq_traffic_servers(const struct drv_seq *s, const struct drv_seq_action *a,
                            drv_seq_server_fn fn, void *arg);

#endif
