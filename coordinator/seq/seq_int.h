/*
 * seq_int.h: the sequencer's internals, shared by its files (each block
 * below names the file that defines it, from the entry points down to the
 * leaf helpers; seq_insn.c, instructions and traffic weights, exports only
 * sequencer.h functions) and the strategies (strategy_*.c). Not an API.
 *
 * Every service host and every hook host has one status byte per step kind;
 * a service runs at most one wave of steps at a time (inflight counts the
 * outstanding ones, wave_deadline ends them) and at most one operation
 * (traffic switch or metric read). The strategy decides what comes next
 * each time the service has nothing outstanding (wait == W_NONE).
 */
#ifndef DRV_SEQ_INT_H
#define DRV_SEQ_INT_H

#include <stdarg.h>

#include "sequencer.h"

/* Step status. */
enum { ST_NONE, ST_SENT, ST_OK, ST_FAILED, ST_TIMEOUT, ST_ABANDONED };
#define ST_DONE(st) ((st) == ST_OK || (st) == ST_FAILED || (st) == ST_TIMEOUT)
#define ST_BAD(st)  ((st) == ST_FAILED || (st) == ST_TIMEOUT)

/* Per service host step kinds (index into seq_host.st). */
enum { K_PRESTAGE, K_START, K_ROLLBACK, K_FINALIZE, K_COUNT };

/* seq_host.flags */
#define HF_PREV      0x01 /* a previous release exists */
#define HF_PREV_GRN  0x02 /* ... in the green slot */
#define HF_UNHEALTHY 0x04 /* went unhealthy after its start succeeded */

struct seq_host {
	uint32_t agent; /* index into drv_seq.agents */
	uint8_t flags;
	uint8_t st[K_COUNT];
};

/* The hosts of one hook; st2 is the migrations' down status. */
struct seq_hook {
	uint32_t *agents;
	uint8_t *st, *st2;
	uint32_t n, cap;
};

enum svc_state { SVC_PENDING, SVC_RUNNING, SVC_DONE, SVC_HALTED, SVC_RB, SVC_RB_DONE };
enum svc_wait { W_NONE, W_WAVE, W_OP, W_PAUSE, W_PROMOTE, W_APPROVE };
enum svc_op { OP_NONE, OP_TRAFFIC, OP_METRIC, OP_CHECK };
enum rb_phase { RB_NONE, RB_BEFORE, RB_STEPS, RB_AFTER, RB_END };

struct seq_svc {
	const struct drv_plan_service *ps;
	uint32_t index;
	struct seq_host *hosts;
	uint32_t n, cap;
	/* hosts[0, n_stored) as the last stored rows hold them (seq_rows.c) */
	struct seq_host *stored;
	uint32_t n_stored, cap_stored;
	struct seq_hook traffic; /* traffic hook hosts */
	/* Blue-green across sets (strategy.sets): hosts[] is the set the
	 * release goes to (set_new); live holds the other set's hosts, whose
	 * servers lose their traffic at the switch and which are stopped at
	 * the decommission (live.st: its status). */
	struct seq_hook live;
	uint8_t set_new; /* index into strategy.sets */
	bool set_first;  /* no set was live before: set_new is the first */
	bool back;       /* traffic went back to the old set (rollback) */
	uint8_t state, wait, sub, op, rb, wave_kind;
	bool switched, finalized, fin_started;
	uint32_t step;        /* rolling: batches started; canary: current step */
	uint32_t cursor;      /* hosts [0, cursor) were started */
	uint32_t batch_start; /* first host of the current forward wave */
	uint32_t inflight;    /* outstanding steps of the wave */
	uint32_t wave_failed; /* failures in the current forward wave */
	uint32_t failed;      /* hosts failed going forward */
	uint32_t ok;          /* hosts started and healthy */
	uint32_t rb_cursor, rb_ok, rb_failed, fin_failed;
	int64_t wave_deadline, timer, op_deadline, finalize_at;
	uint32_t op_n;        /* operations issued: their ids */
	int32_t op_percent;   /* canary traffic of the current operation */
	bool op_to_new;       /* blue-green traffic of the current operation */
	uint32_t op_inflight; /* traffic hook steps outstanding */
	bool op_failed;
	double metric; /* last metric read */
	/* Prometheus analysis (seq_analysis.c) */
	uint32_t an_check;   /* the check being run; n_checks: all passed */
	uint32_t an_fails;   /* its failures in a row */
	bool an_retry;       /* it failed under its limit: query again after its interval */
	bool an_hold;        /* inconclusive: waiting for the operator (W_PROMOTE) */
	char *an_query;      /* the current check's query, filled in (not saved) */
	int64_t pause_until; /* canary pause with checks (sub-state 6): its end */
	char why[DRV_SEQ_TEXT_MAX];
};

struct drv_seq {
	const struct drv_plan *plan;
	char id[DRV_SEQ_ID_MAX + 1];
	uint64_t plan_hash;
	char **agents;
	uint32_t n_agents, cap_agents;
	uint32_t *agent_idx; /* open addressing, agent index + 1, 0 = empty */
	uint32_t idx_cap;
	struct seq_svc *svcs;
	struct seq_hook *pre, *mig, *post;
	uint8_t state;
	bool paused, failing, started;
	uint32_t tier;  /* current tier */
	uint32_t hook;  /* index in the current hook list */
	bool hook_wait; /* a hook is running */
	uint32_t hook_inflight, hook_failed;
	int64_t hook_deadline;
	uint32_t prestage_inflight;
	int64_t prestage_deadline;
	uint32_t mig_done;        /* migrations applied */
	int32_t rb_tier, rb_stop; /* tiers still to roll back: rb_tier down to rb_stop */
	bool rb_mig;              /* then migrations down */
	bool rb_started;          /* a rollback was run (operator may retry a failed one) */
	uint32_t rb_gen;          /* rollback generation, part of rollback step ids */
	int32_t rb_mig_i;         /* next migration to take down (-1: none left) */
	bool rb_mig_wait;
	uint32_t rb_mig_inflight, rb_failures;
	uint32_t rb_first_fail; /* agent index + 1 of the first host that did not roll back */
	int64_t rb_mig_deadline;
	uint32_t failed_hosts, total_hosts;
	int64_t started_at, ended_at;
	int64_t bake_until; /* plan bake: analysis goes on until then (0: not begun) */
	bool baked;
	bool recording; /* the key metrics' last round after the tiers runs */
	bool recorded;  /* ... and is over */
	/* canary steps (percents) after which a service waits for approval
	 * (W_APPROVE): bit p of approve_lo for p < 64, bit p - 64 of approve_hi */
	int64_t approve_lo, approve_hi;
	char reason[DRV_SEQ_TEXT_MAX];
	uint32_t agents_stored; /* agents[0, agents_stored) are in the stored rows */
	/* during one call */
	struct drv_seq_actions *out;
	int64_t now;
	bool changed, oom;
};

struct seq_strategy {
	const char *name;
	/* Nothing outstanding and the service runs: start what comes next or
	 * call seq_svc_done. */
	void (*advance)(struct drv_seq *s, struct seq_svc *v);
	/* Operator promote: true if the service was waiting for it. */
	bool (*promote)(struct drv_seq *s, struct seq_svc *v);
	/* Rollback: hosts per rollback wave; traffic before and after the
	 * rollback steps (true: an operation was started, wait for it). */
	uint32_t (*rb_batch)(const struct seq_svc *v);
	bool (*rb_before)(struct drv_seq *s, struct seq_svc *v);
	bool (*rb_after)(struct drv_seq *s, struct seq_svc *v);
};

extern const struct seq_strategy seq_rolling, seq_canary, seq_bluegreen;

/* sequencer.c: the phases; called by the entry points and resume */
void seq_drive(struct drv_seq *s);

/* sequencer.c: does a canary wait for approval after reaching percent? */
bool seq_approval_at(const struct drv_seq *s, uint32_t percent);

/* seq_state.c: save, load, resume, status */
uint64_t seq_plan_hash(const struct drv_plan *plan);
/* The state as JSON; without hosts (seq_rows.c) its "agents" and every
 * service's "hosts" are left out and counted instead ("n_agents",
 * "n_hosts"). */
int seq_save_json(const struct drv_seq *s, bool hosts, json_t **out);
/* One host as its compact array [agent, flags, prestage, start, rollback,
 * finalize]. */
json_t *seq_host_json(const struct seq_host *h);

/* seq_event.c: reports, operation outcomes and deadlines */
int seq_on_report(struct drv_seq *s, const struct drv_seq_event *ev);
int seq_on_op(struct drv_seq *s, const struct drv_seq_event *ev);
void seq_expire(struct drv_seq *s);

/* seq_rollback.c: breaches and rollback */
void seq_breach(struct drv_seq *s, struct seq_svc *v, const char *why);
/* A host failed going forward (start failed or timed out, went unhealthy):
 * a breach when the failures are over a budget. */
void seq_host_failed(struct drv_seq *s, struct seq_svc *v, uint32_t h, const char *why);
/* Roll back tiers from..to (descending), then migrations if mig. */
void seq_rollback_begin(struct drv_seq *s, int32_t from, int32_t to, bool mig, const char *why);
void seq_fail(struct drv_seq *s, const char *why);
void seq_rb_drive(struct drv_seq *s);
void seq_svc_rb_begin(struct drv_seq *s, struct seq_svc *v);
void seq_svc_rb_drive(struct drv_seq *s, struct seq_svc *v);
/* The instruction of a rollback step on host h (Drover__Action) and slot. */
int seq_rb_action(const struct seq_svc *v, const struct seq_host *h, const char **slot);
void seq_halt_tier(struct drv_seq *s, uint32_t tier);

/* seq_send.c: steps and operations sent */
/* Send step kind K_* to host h of v, counting it in v->inflight. */
void seq_send_host(struct drv_seq *s, struct seq_svc *v, uint32_t h, int kind);
/* The SEND action alone (no status or counter changes): also for resume. */
void seq_emit_host(struct drv_seq *s, struct seq_svc *v, uint32_t hi, int kind);
void seq_emit_hook(struct drv_seq *s, enum drv_seq_step_kind kind, uint32_t idx, uint32_t j);
void seq_emit_traffic(struct drv_seq *s, struct seq_svc *v);
void seq_emit_metric(struct drv_seq *s, struct seq_svc *v);
const struct drv_plan_hook *seq_plan_hook(const struct drv_seq *s, enum drv_seq_step_kind kind,
                                          uint32_t idx);
/* Begin a wave of kind K_* (deadline from the kind's budget). */
void seq_wave_begin(struct drv_seq *s, struct seq_svc *v, int kind);
/* Start a traffic switch (canary percent, or blue-green direction). */
void seq_traffic(struct drv_seq *s, struct seq_svc *v, int percent, bool to_new);
void seq_metric(struct drv_seq *s, struct seq_svc *v);
int64_t seq_budget(const struct seq_svc *v, int kind);
bool seq_is_new_green(const struct seq_host *h);
/* Blue-green across host sets (strategy.sets): names of the new and old set. */
bool seq_sets(const struct seq_svc *v);
const char *seq_set_name(const struct seq_svc *v, bool new_set);
/* The decommission of the old set: STOP on live host j (step ids
 * "finalize:SVC:n+j", after the new set's host indexes). */
void seq_emit_decommission(struct drv_seq *s, struct seq_svc *v, uint32_t j);
void seq_decommission_begin(struct drv_seq *s, struct seq_svc *v);
uint32_t seq_tier_of(const struct drv_seq *s, const struct seq_svc *v);

/* seq_analysis.c: a service's Prometheus checks, run one after another */
/* Run (or go on with) the analysis; true while it is running or waiting,
 * false once every check passed (or there is none). `when` names the
 * moment for the log ("after canary step 2"). */
bool seq_analysis_step(struct drv_seq *s, struct seq_svc *v, const char *when);
void seq_emit_check(struct drv_seq *s, struct seq_svc *v);
/* The verdict of the running check (EV_METRIC of an OP_CHECK). */
void seq_check_done(struct drv_seq *s, struct seq_svc *v, enum drv_seq_result r,
                    const char *message);
/* The plan's bake after the last tier: true once it is over (or there is
 * none); meanwhile the services' checks run in rounds. */
bool seq_bake(struct drv_seq *s);
/* Operator promote of an inconclusive check: it counts as passed. */
bool seq_analysis_promote(struct drv_seq *s, struct seq_svc *v);
/* Check i of an analysis: its checks, then its key metrics; NULL past them. */
const struct drv_plan_check *seq_check_at(const struct drv_plan_analysis *an, uint32_t i);
/* A canary's timed pause with checks: rounds until v->pause_until; true
 * while it goes on. */
bool seq_pause_checks(struct drv_seq *s, struct seq_svc *v);

/* seq_id.c: step ids (names and the parser are in sequencer.h) */
void seq_step_id(const struct drv_seq *s, char *buf, enum drv_seq_step_kind kind, uint32_t a,
                 uint32_t b, uint32_t c);
/* drv_seq_id_parse, and the id must belong to s. */
int seq_parse_id(const struct drv_seq *s, const char *id, struct drv_seq_id *out);

/* seq_target.c: agents, hosts and hooks of a deployment */
const char *seq_agent(const struct drv_seq *s, uint32_t idx);
int seq_agent_find(const struct drv_seq *s, const char *agent, uint32_t *out);
int seq_agent_intern(struct drv_seq *s, const char *agent, uint32_t *out);
int seq_hook_add(struct seq_hook *k, uint32_t agent);
struct seq_hook *seq_hook_list(struct drv_seq *s, enum drv_seq_step_kind list, size_t index);
/* The host of agent idx in v (hosts sorted), or -1. */
int32_t seq_host_find(const struct drv_seq *s, const struct seq_svc *v, uint32_t idx);
void seq_sort_hosts(struct drv_seq *s);
/* Every service and hook has hosts (else s->reason says which). */
bool seq_targets_ok(struct drv_seq *s);

/* seq_core.c: helpers for every file (a leaf) */
const struct seq_strategy *seq_strategy_of(const struct seq_svc *v);
struct drv_seq_action *seq_act(struct drv_seq *s, enum drv_seq_action_kind kind);
__attribute__((format(printf, 2, 3))) void seq_log(struct drv_seq *s, const char *fmt, ...);
__attribute__((format(printf, 3, 4))) void seq_notify(struct drv_seq *s, enum drv_plan_event ev,
                                                      const char *fmt, ...);
/* Set s->reason (truncated to fit). */
__attribute__((format(printf, 2, 3))) void seq_reason(struct drv_seq *s, const char *fmt, ...);
void seq_set_state(struct drv_seq *s, enum drv_seq_state st, const char *why);
void seq_svc_done(struct drv_seq *s, struct seq_svc *v);
/* In a running phase, and running or switched (blue-green) but not final. */
bool seq_svc_active(const struct drv_seq *s, const struct seq_svc *v);
/* The hook list the running phase works through; false outside hook phases. */
bool seq_phase_hooks(const struct drv_seq *s, struct seq_hook **k, const struct drv_plan_hook **h,
                     size_t *n, enum drv_seq_step_kind *kind);

#endif
