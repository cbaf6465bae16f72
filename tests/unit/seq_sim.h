/*
 * seq_sim.h: simulated time and simulated agents for the sequencer tests.
 *
 * A sim owns a plan, a fleet (agent ids with labels), a sequencer and an
 * event queue. Agents answer every SEND after `delay` ms following a rule
 * table (first match wins; default: succeed); the sim answers TRAFFIC and
 * METRIC actions itself. sim_run() feeds queued events in time order and
 * otherwise jumps the clock to the sequencer's next deadline, until the
 * deployment ends or waits for an operator. Every SEND is recorded: a step
 * id sent twice must carry the same content (agents answer a repeat with
 * the recorded result, as real agents do). With `restart` set, the
 * sequencer is saved to JSON text, freed, loaded and resumed after every
 * call that changed it, like droverd after kill -9 at every transition:
 * saved as droverd saves it (drv_seq_save_rows: the rows that changed go
 * into `rows`, as into a table) and loaded from those rows, which must
 * give back the whole state (drv_seq_save) it had.
 * With crash_before_send too, the actions of each transition are dropped
 * before they are performed (killed between storing the state and
 * sending): only the resume brings the outstanding steps back.
 */
#ifndef SEQ_SIM_H
#define SEQ_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "sequencer.h"

enum sim_answer { SIM_OK, SIM_FAIL, SIM_SILENT, SIM_UNHEALTHY_AFTER };

struct sim_rule {
	int step;            /* enum drv_seq_step_kind, or -1 for any */
	const char *service; /* NULL: any */
	const char *agent;   /* NULL: any */
	const char *hook;    /* hook name (pre/up/down/post), NULL: any */
	enum sim_answer answer;
};

struct sim_send {
	char id[DRV_SEQ_STEP_ID_MAX];
	char sig[256];
	char agent[64];
	int step;    /* enum drv_seq_step_kind */
	int service; /* index, -1 for hooks */
	int action;  /* Drover__Action */
	char slot[8];
	int answer;
	int64_t at;    /* first sent */
	long order;    /* position among all first sends */
	int times;     /* how often it was sent */
	bool answered; /* its first report was delivered */
};

struct sim {
	struct drv_plan *plan;
	struct drv_seq *seq;
	struct drv_seq_actions acts;
	int64_t now;
	int64_t delay; /* agents answer this long after a send */
	bool restart;
	bool crash_before_send; /* with restart: the actions of a transition are lost */
	int restarts;
	json_t *rows; /* with restart: the sequencer's rows as stored so far */
	/* the progress part of the status after the last call, and its stamp
	 * (drv_seq_progress_stamp): checked after every call */
	json_t *progress;
	uint64_t stamp;
	const struct sim_rule *rules;
	size_t n_rules;
	double metric;      /* the value METRIC actions read */
	bool traffic_fails; /* TRAFFIC actions fail */
	/* analysis checks (METRIC with check >= 0) answer these verdicts in
	 * turn, the last one repeating; none: pass */
	const enum drv_seq_result *verdicts;
	size_t n_verdicts;
	int n_checks;
	char last_query[1024];
	/* records */
	struct sim_send *sends;
	size_t n_sends, cap_sends;
	long n_first;
	int notify[DRV_EVENT_COUNT];
	int n_traffic, n_metric, n_logs;
	char last_traffic[1024]; /* "server=weight ..." of the last TRAFFIC */
	char last_wait[1024];    /* "server ..." the last TRAFFIC waits to be UP */
	int max_inflight_starts; /* most START steps outstanding at once */
	int starts_out;
	/* queued events */
	struct sim_ev *q;
	size_t n_q, cap_q;
	long seq_no;
	bool verbose;
	/* agents spread their answers: the i-th SEND of one sequencer call is
	 * answered i * spread ms later (default 0: all together) */
	int64_t spread;
	/* agents report ACCEPTED (a progress report) 1 ms (+ the spread) after
	 * each SEND, before its result, as real agents do */
	bool accepted;
	/* called around every sequencer call (before: ev about to be handled,
	 * NULL for the start; after: with sim->acts still holding its actions) */
	void (*on_call)(struct sim *sim, const struct drv_seq_event *ev, bool after, void *arg);
	void *call_arg;
};

/* Parse plan text (digests resolved by a fake resolver), make the
 * sequencer, add the fleet: every agent of `fleet` ("id tier=core ...",
 * NULL-terminated) matching a service's or hook's hosts. first_release:
 * no agent has a previous release. */
void sim_init(struct sim *sim, const char *plan_text, const char *const *fleet, bool first_release);
void sim_free(struct sim *sim);
/* drv_seq_start at now. */
void sim_start(struct sim *sim);
/* Run until the deployment ends or nothing more can happen on its own
 * (waiting for promote); returns the state. */
enum drv_seq_state sim_run(struct sim *sim);
/* Feed an operator verb now; returns drv_seq_handle's code. */
int sim_verb(struct sim *sim, enum drv_seq_event_kind kind, const char *service);
/* Feed any event now (performing what it causes). */
int sim_event(struct sim *sim, const struct drv_seq_event *ev);
/* Advance the clock by ms, delivering due events and ticks. */
void sim_advance(struct sim *sim, int64_t ms);
/* Deliver queued events up to now (no clock jump). */
void sim_deliver(struct sim *sim);

/* Like droverd after kill -9 with transitions not yet saved: free the
 * sequencer, load the state text and rows as last saved, resume, then feed
 * again every final report the core had stored (finals: [[agent, step id,
 * succeeded?], ...], in order), performing what each causes. */
void sim_crash_resume(struct sim *sim, const char *state_text, const json_t *rows,
                      const json_t *finals);

/* Records. */
const struct sim_send *sim_find(const struct sim *sim, const char *id_suffix);
/* How many distinct steps of this kind (and service/agent, NULL = any) were sent. */
int sim_count(const struct sim *sim, enum drv_seq_step_kind kind, const char *service,
              const char *agent);
/* The order of the first send matching, -1 if none; first or last. */
long sim_order(const struct sim *sim, enum drv_seq_step_kind kind, const char *service, bool last);
int sim_action_of(const struct sim *sim, enum drv_seq_step_kind kind, const char *service,
                  const char *agent);
/* Canonical status JSON text (for comparing runs). */
char *sim_status_text(const struct sim *sim);

#endif
