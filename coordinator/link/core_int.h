/*
 * core_int.h: the coordinator core's internals, shared by its files: core.c
 * (replies, liveness, answers owed, dispatch, tick, life cycle), core_deliver.c
 * (delivery and Poll), core_hello.c (Hello), core_report.c (Report and the
 * batch's report rows), core_queue.c (queueing and waves), core_admin.c (the
 * operator's side and listings). Not an API. The functions below were each
 * file's static helpers before the split; the comment at each definition
 * says what it needs (most run with the core lock held; open_from_agent
 * takes it itself, owed_new/owed_free need none, reports_flush is the
 * group commit's before-commit hook).
 */
#ifndef DRV_CORE_INT_H
#define DRV_CORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core.h"
#include "gcommit.h"
#include "registry.h"
#include "session.h"

#define TOUCH_EVERY_MS     5000 /* last_seen is written to the store at most this often */
#define REJECT_LOGS_PER_S  20   /* more rejects than this per second are counted, not logged */
#define OUTPUT_TAIL_STORED 4096
#define SYNC_EVERY_TICKS   5 /* re-read agents from the store (offline tools change it) */
/* A wave is queued this many instructions per hold of the core lock: the
 * link goes on meanwhile, and the first ones are delivered sooner. */
#define QUEUE_CHUNK 256
/* A batch's deferred reports are written this many at a time while it
 * lingers (the rest when it commits): the writing overlaps the linger
 * instead of adding to every report's wait at the commit. */
#define REPORTS_WRITE_AT 32
/* What a refused message may write (an event row, a log line) is limited
 * per agent id and per source address: a replay flood costs a counter. */
#define RL_SLOTS        512
#define RL_WINDOW_MS    60000
#define RL_PER_WINDOW   3
#define RL_EVENTS_PER_S 10 /* events of refused messages, all peers together */

struct rl_slot {
	char key[80];
	int64_t window;
	unsigned used, dropped;
};

struct core {
	struct gcommit gc; /* the core lock (registry, store, delivery) and group commit */
	struct core_config cfg;
	struct registry *reg;
	struct core_hooks hooks;
	struct link_logs *logs; /* `drover logs` requests waiting for their reports */
	uint64_t ticks, sync_gen;
	uint64_t idle_gen, idle_epoch; /* agent_rt.idle_gen is valid while equal (known_idle) */
	pthread_mutex_t rl_mu;         /* reject log rate limits (outside the core lock) */
	int64_t rl_second;
	unsigned rl_count, rl_dropped;
	int64_t ev_second;
	unsigned ev_count;
	struct rl_slot slots[RL_SLOTS];
	uint8_t nonce_key[SESSION_KEY_LEN]; /* session nonces; random per process */
	uint64_t nonce_ctr;                 /* atomic */
	/* What waits for the open batch to commit (core lock): agents with
	 * instructions queued in it, and a wake-up of the event streams. */
	struct agent_rt **after;
	size_t n_after, cap_after;
	bool notify_after;
	/* Requests stored in the open batch, answered once it committed. */
	struct owed *owed, **owed_tail;
	/* Reports in the open batch whose rows are written once for the batch
	 * (core_reports_flush), and their agents, each once. */
	size_t n_deferred;
	struct agent_rt **rep_agents;
	size_t n_rep, cap_rep;
	/* Committed requests whose answers are signed and sent outside the
	 * core lock (answer_pending), and how many threads are doing so. */
	pthread_mutex_t ans_mu;
	pthread_cond_t ans_cv;
	struct owed *sealq, **sealq_tail;
	unsigned answering;
};

/* A request whose answer waits for the commit of the batch that stored it
 * (a report's Ack, a Hello's Welcome): "saved" must be true when it is
 * said, and no thread waits for it. */
struct owed {
	struct core_waiter *w;   /* the link's context; NULL: answer nobody */
	struct core_reply reply; /* bound to the request (hash, agent, peer) */
	/* Core lock, after the commit (rc: its result), or NULL: what must
	 * happen under the lock once it is saved (the engine hears of it). */
	void (*committed)(struct core *c, struct owed *o, int rc);
	/* Without the core lock, after committed: fill reply (sign it). */
	void (*answer)(struct core *c, struct owed *o, int rc);
	int rc;                 /* the commit's result */
	ProtobufCMessage *body; /* the decoded request; owned */
	struct drv_pubkey key;  /* a Hello's: the key it was signed with */
	enum agent_status st;   /* a Hello's: what was recorded */
	uint32_t pipe;
	/* A report's: its event row (report_event_row), and whether its rows
	 * wait for the batch's write (core_reports_flush) of agent a's row. */
	char *event_row;
	bool deferred;
	struct agent_rt *agent;
	struct owed *next;
};

/* core.c */
struct agent_rt *core_accepted(struct core *c, const char *id);
void core_answer_owed(struct core *c, struct owed *list, int rc);
void core_bind_to(const struct core_reply *out, char **agent_id, ProtobufCBinaryData *hash);
void core_event(struct core *c, const char *kind, const char *agent_id, json_t *data);
void core_mark_seen(struct core *c, struct agent_rt *a, uint32_t pipe);
void core_notify_events(struct core *c);
int core_open_from_agent(struct core *c, const Drover__Envelope *env, Drover__BodyType type,
                         ProtobufCMessage **body, const char **why);
void core_owe(struct core *c, struct owed *o);
void core_owed_free(struct owed *o);
struct owed *core_owed_new(struct core_waiter *w, const struct core_reply *out, uint32_t pipe,
                           void (*committed)(struct core *c, struct owed *o, int rc),
                           void (*answer)(struct core *c, struct owed *o, int rc));
bool core_refused_event_allowed(struct core *c, const char *id, unsigned *dropped);
void core_reject(struct core *c, struct core_reply *out, int err, uint64_t seq, const char *sender,
                 const char *detail);
void core_seal_reply(struct core *c, Drover__BodyType type, const ProtobufCMessage *body,
                     struct core_reply *out);
void core_set_connected(struct core *c, struct agent_rt *a, bool up, const char *why);
void core_sync_store(struct core *c);

/* core_deliver.c */
void core_ack_upto(struct core *c, struct agent_rt *a, uint64_t applied, bool always);
void core_acked_note(const struct agent_rt *a, uint64_t applied, size_t n);
void core_deliver_if_parked(struct core *c, struct agent_rt *a);
void core_deliver_parked(struct core *c, struct agent_rt **v, size_t n);
void core_forget_idle(struct agent_rt *a);
void core_handle_poll(struct core *c, const Drover__Envelope *env, uint32_t pipe,
                      struct core_waiter *w, struct core_reply *out);
void core_unpark(struct agent_rt *a, uint8_t *env, size_t len);

/* core_hello.c */
int core_expire_claims(struct core *c, int64_t now_ms);
void core_handle_hello(struct core *c, const Drover__Envelope *env, size_t len, uint32_t pipe,
                       struct core_waiter *w, struct core_reply *out);

/* core_report.c */
void core_handle_report(struct core *c, const Drover__Envelope *env, uint32_t pipe,
                        struct core_waiter *w, struct core_reply *out);
void core_reports_flush(void *arg);

/* core_queue.c */
void core_after_commit(void *arg, int rc);

#endif
