/*
 * core.h: the coordinator's core, the single owner of agent state.
 *
 * One mutex serializes everything that changes agents, the instruction queue
 * and delivery: the link's messages (Hello, Poll, Report), the operator's
 * accept/reject, the sequencer's queueing, and the once-a-second tick
 * (liveness, poll timeouts, expiry). Signature checks and envelope parsing
 * run outside the lock; database writes and delivery decisions inside it.
 * Writes that arrive together share one transaction and one commit
 * (gcommit.h); an instruction is sent only after the commit that queued it,
 * a report acknowledged only after the commit that holds it (its Ack is sent
 * from the commit's after-hook: no thread waits for it).
 *
 * Long polls: when a Poll finds nothing to send, the link's REP context is
 * parked here as a struct core_waiter. Whoever queues work for that agent
 * delivers it to the waiter at once; the tick answers Idle when the poll
 * timeout passes; a closed connection releases it.
 *
 * Liveness: an accepted agent is "connected" from the first verified message
 * on a connection until that connection closes (noticed at once) or nothing
 * verified was heard from it for liveness_ms (2 x poll_timeout by default:
 * a live agent always has a poll outstanding, renewed at least every
 * poll_timeout).
 */
#ifndef DRV_CORE_H
#define DRV_CORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "dispatch.h"
#include "events.h"
#include "keys.h"
#include "store.h"

struct link_logs_answer;

/* A parked long poll, or a report waiting for its commit (owned by the
 * link). */
struct core_waiter {
	/* Called on any thread, with the core lock held (a Poll's answer) or
	 * without it (an answer owed after a commit: a report's Ack, a Hello's
	 * Welcome, signed after the lock was released, possibly on the group
	 * commit's committer thread); must not block. With env !=
	 * NULL the waiter sends that signed reply and takes ownership of env
	 * (free()). With env == NULL it drops the request unanswered (its
	 * connection is gone or a newer poll replaced it). */
	void (*deliver)(struct core_waiter *w, uint8_t *env, size_t len);
};

struct core_config {
	const struct drv_keypair *key; /* signing key; borrowed, outlives the core */
	struct store *store;           /* borrowed, outlives the core */
	struct drv_events *events;     /* woken after events are recorded; may be NULL */
	int64_t poll_timeout_ms;       /* a Poll is held this long at most */
	int64_t liveness_ms;           /* silent this long: disconnected */
	int64_t pending_retry_ms;      /* a pending agent says Hello again this often */
	int64_t instr_ttl_ms;          /* default lifetime of an instruction */
	int64_t skew_ms;               /* allowed clock difference */
	size_t max_agents;             /* agents known, all states */
	size_t max_pending;            /* agents waiting for acceptance */
	size_t max_pending_per_peer;   /* ... whose claim came from one address */
	int64_t pending_expiry_ms;     /* a claim never accepted is forgotten then */
	int64_t batch_linger_us;       /* 0: GCOMMIT_LINGER_US (gcommit.h) */
	int64_t batch_max_ms;          /* 0: GCOMMIT_MAX_MS */
};

/* Hooks for the sequencer; all run with the core lock held and may call
 * core_queue_locked(). */
struct core_hooks {
	void (*on_report)(void *arg, const char *agent_id, const Drover__Report *r);
	void (*on_expired)(void *arg, const char *agent_id, uint64_t seq, const char *step_id);
	void (*on_agent)(void *arg, const char *agent_id, const char *state);
	void *arg;
};

/* A reply to send now (env != NULL, malloc'd, caller frees) or none. */
struct core_reply {
	uint8_t *env;
	size_t len;
	bool parked; /* the waiter was parked: the core answers it later */
	/* set by core_handle for itself: what every reply is bound to */
	uint8_t req_hash[32];
	char req_agent[DRV_AGENT_ID_MAX + 1];
	char peer[64]; /* the request's source address, without port */
};

struct core;

/* Loads every known agent from the store. */
int core_new(const struct core_config *cfg, struct core **out);
/* Call after the link stopped: no waiter may still be parked. */
void core_free(struct core *c);
void core_set_hooks(struct core *c, const struct core_hooks *h);

/* The link hands over every request it receives; msg is borrowed. A Poll
 * with nothing to send and a Report (answered once the batch that stored it
 * committed) come back with out->parked: w belongs to the core until it
 * delivers to it, possibly before this returns. */
void core_handle(struct core *c, const uint8_t *msg, size_t len, uint32_t pipe,
                 struct core_waiter *w, struct core_reply *out);
void core_pipe_closed(struct core *c, uint32_t pipe);
/* Answer every parked poll with Idle and commit the reports in the open
 * batch now (shutdown). */
void core_release_waiters(struct core *c);
/* Commits of the group commit, and reports answered after one (tests). */
void core_batch_counts(struct core *c, uint64_t *commits, uint64_t *owed);
/* Poll timeouts, liveness, expiry, pickup of work queued by other
 * processes. Call about once a second. On a follower of an HA group
 * (drv_ha_is_leader false) it writes nothing: it only keeps the agents it
 * knows in step with the shared store (core_sync) every few ticks. */
void core_tick(struct core *c);
/* Read every agent from the store again, adding those enrolled since the
 * core was made (by another node of the group): a follower that starts to
 * lead sees the agents as a fresh droverd would. */
int core_sync(struct core *c);

/* Queue an instruction (see dispatch.h) and deliver it at once if the agent
 * has a poll waiting. */
int core_queue(struct core *c, const struct dispatch_instr *in, uint64_t *seq_out);
/* The same, from a hook (lock already held). */
int core_queue_locked(struct core *c, const struct dispatch_instr *in, uint64_t *seq_out);
/* A wave: signed outside the core lock and queued QUEUE_CHUNK (core_int.h) at a
 * time, each chunk in one transaction (one commit, shared with whatever else
 * joined it); each instruction delivered once it is committed. rcs[i] and
 * seqs[i] as core_queue's result and *seq_out for in[i]. Returns DRV_ENOMEM
 * (nothing queued) or DRV_OK. */
int core_queue_many(struct core *c, const struct dispatch_instr *in, size_t n, uint64_t *seqs,
                    int *rcs);

/* Accept or reject an agent (operator). DRV_ENOENT if unknown. */
int core_set_status(struct core *c, const char *id, enum agent_status st, const char *by);

/* Apply the labels an accepted agent proposed (its Hello said other labels
 * than the ones it was accepted with). DRV_ENOENT if unknown, DRV_ESTATE if
 * nothing is proposed. */
int core_relabel(struct core *c, const char *id, const char *by);

/* Enrollment tokens (the store, under the core lock). Create prints
 * nothing: *token (DRV_SECRET_MAX) is shown once to the caller. DRV_EEXIST
 * if the name is taken; revoke DRV_ENOENT if unknown. */
int core_enroll_token_create(struct core *c, const struct store_token *t, char *token, size_t cap);
int core_enroll_token_revoke(struct core *c, const char *name);
int core_enroll_token_list(struct core *c, json_t **out);

/* A JSON array of every agent (new reference; the caller decrefs):
 * {"id", "status", "state", "connected", "last_seen_ms", "key_id", "labels",
 *  "facts", "releases", "agent_version", "enrolled_by", "next_seq",
 *  "acked_seq", "proposed_labels" (null or labels waiting for an admin),
 *  "peer"}. state is pending | connected | disconnected | rejected. */
int core_agents_json(struct core *c, json_t **out);
/* The same array with what matching a plan's hosts reads alone
 * (deploy_hosts.h): {"id", "status", "labels", "releases",
 * "agent_version"}; status is the stored one (pending | accepted |
 * rejected). One statement, no key, facts or link state: a deployment's
 * target resolution, for which the full listing costs about twice. */
int core_agents_brief_json(struct core *c, json_t **out);
struct core_counts {
	size_t pending, connected, disconnected, rejected;
};
void core_agent_counts(struct core *c, struct core_counts *out);

/* One agent as above; DRV_ENOENT if unknown. */
int core_agent_json(struct core *c, const char *id, json_t **out);
/* A service's output from agent over the link, waiting up to timeout_ms
 * (logs.h: link_logs_read). */
int core_read_log(struct core *c, const char *agent, const Drover__LogRequest *rq,
                  int64_t timeout_ms, json_t **out, char *why, size_t why_cap);
/* The same from several agents at once (logs.h: link_logs_read_many). */
void core_read_logs(struct core *c, struct link_logs_answer *answers, size_t n,
                    const Drover__LogRequest *rq, int64_t timeout_ms);

#endif
