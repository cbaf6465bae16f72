/* core.c: the coordinator core: messages, delivery, liveness, enrollment. */
#include "core.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <nng/nng.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "clock.h"
#include "db.h"
#include "envelope.h"
#include "err.h"
#include "events.h"
#include "gcommit.h"
#include "ha.h"
#include "hello.h"
#include "linkstats.h"
#include "log.h"
#include "logs.h"
#include "registry.h"
#include "report_metrics.h"
#include "secret.h"
#include "session.h"
#include "storage.h"
#include "wire_names.h"

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
	 * (reports_flush), and their agents, each once. */
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
	 * wait for the batch's write (reports_flush) of agent a's row. */
	char *event_row;
	bool deferred;
	struct agent_rt *agent;
	struct owed *next;
};

/* ---- replies ---- */

static void seal_reply(struct core *c, Drover__BodyType type, const ProtobufCMessage *body,
                       struct core_reply *out)
{
	if (drv_env_seal_epoch(c->cfg.key, DRV_COORDINATOR_SENDER, type, body, drv_ha_wire_epoch(),
	                       false, &out->env, &out->len) != DRV_OK) {
		drv_error("core", "cannot seal a reply", "type=%d", (int)type);
		out->env = NULL;
		out->len = 0;
		return;
	}
	drv_linkstats_inc(DRV_STAT_TX_MESSAGES);
}

/* An id fit for a log line: what a peer claims may hold anything. */
static void safe_id(const char *in, char out[DRV_AGENT_ID_MAX + 1])
{
	size_t i = 0;

	for (; in != NULL && in[i] != '\0' && i < DRV_AGENT_ID_MAX; i++) {
		char ch = in[i];
		out[i] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		                         (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
		                         ch == '_'
		                 ? ch
		                 : '?';
	}
	out[i] = '\0';
}

static bool reject_log_allowed(struct core *c)
{
	int64_t sec = drv_mono_ms() / 1000;
	bool ok;
	unsigned dropped = 0;

	pthread_mutex_lock(&c->rl_mu);
	if (sec != c->rl_second) {
		dropped = c->rl_dropped;
		c->rl_second = sec;
		c->rl_count = 0;
		c->rl_dropped = 0;
	}
	ok = c->rl_count++ < REJECT_LOGS_PER_S;
	if (!ok)
		c->rl_dropped++;
	pthread_mutex_unlock(&c->rl_mu);
	if (dropped > 0)
		drv_warn("core", "rejects not logged (rate limit)", "count=%u", dropped);
	return ok;
}

/* May a refused message about key (kind "id" or "peer") write another
 * event or log line? RL_PER_WINDOW a minute per key; *dropped says how many
 * were held back before this one (say so in what is written). */
static bool keyed_allow(struct core *c, const char *kind, const char *key, unsigned *dropped)
{
	char k[sizeof(c->slots[0].key)];
	int64_t now = drv_mono_ms();
	struct rl_slot *sl;
	bool ok;

	uint64_t h = 1469598103934665603ull; /* FNV-1a: spread, not secrecy */

	snprintf(k, sizeof(k), "%s:%s", kind, key ? key : "");
	for (const char *p = k; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	sl = &c->slots[h % RL_SLOTS];
	pthread_mutex_lock(&c->rl_mu);
	if (strcmp(sl->key, k) != 0 || now - sl->window >= RL_WINDOW_MS) {
		if (strcmp(sl->key, k) != 0)
			sl->dropped = 0;
		snprintf(sl->key, sizeof(sl->key), "%s", k);
		sl->window = now;
		sl->used = 0;
	}
	ok = sl->used < RL_PER_WINDOW;
	if (ok) {
		sl->used++;
		if (dropped != NULL)
			*dropped = sl->dropped;
		sl->dropped = 0;
	} else {
		sl->dropped++;
	}
	pthread_mutex_unlock(&c->rl_mu);
	return ok;
}

/* Events of refused messages: per key as above, and RL_EVENTS_PER_S for
 * all peers together. */
static bool refused_event_allowed(struct core *c, const char *id, unsigned *dropped)
{
	int64_t sec = drv_mono_ms() / 1000;
	bool ok;

	if (!keyed_allow(c, "id", id, dropped))
		return false;
	pthread_mutex_lock(&c->rl_mu);
	if (sec != c->ev_second) {
		c->ev_second = sec;
		c->ev_count = 0;
	}
	ok = c->ev_count++ < RL_EVENTS_PER_S;
	pthread_mutex_unlock(&c->rl_mu);
	return ok;
}

/* Every reply names the agent and the request it answers (docs/protocol.md). */
static void bind_to(const struct core_reply *out, char **agent_id, ProtobufCBinaryData *hash)
{
	*agent_id = (char *)out->req_agent;
	hash->data = (uint8_t *)out->req_hash;
	hash->len = sizeof(out->req_hash);
}

/* Count, log and answer a refused message. */
static void reject(struct core *c, struct core_reply *out, int err, uint64_t seq,
                   const char *sender, const char *detail)
{
	Drover__Reject rj = DROVER__REJECT__INIT;
	char id[DRV_AGENT_ID_MAX + 1];

	rj.reason = drv_reject_reason(err);
	rj.detail = (char *)detail;
	rj.seq = seq;
	bind_to(out, &rj.agent_id, &rj.request_hash);
	drv_linkstats_reject(rj.reason);
	if (keyed_allow(c, "peer", out->peer, NULL) && reject_log_allowed(c)) {
		safe_id(sender, id);
		drv_warn("core", "message rejected", "reason=%s sender=%s detail=\"%s\"",
		         drv_reject_name(rj.reason), id[0] ? id : "-", detail);
	}
	seal_reply(c, DROVER__BODY_TYPE__BODY_REJECT, &rj.base, out);
}

/* A follower of an HA group serves no agent: it says so (unsigned by any
 * epoch, it changes nothing on the agent), and the agent tries another node. */
static void not_leader(struct core *c, struct core_reply *out)
{
	Drover__Reject rj = DROVER__REJECT__INIT;
	char url[DRV_HA_URL_MAX + 1];

	drv_ha_leader_url(url, sizeof(url));
	rj.reason = DROVER__REJECT_REASON__REJECT_NOT_LEADER;
	rj.detail = url[0] ? url : "this node follows; the leader is not known yet";
	bind_to(out, &rj.agent_id, &rj.request_hash);
	drv_linkstats_reject(rj.reason);
	seal_reply(c, DROVER__BODY_TYPE__BODY_REJECT, &rj.base, out);
}

/* ---- liveness and events ---- */

/* Wake the API's event streams: at once, or after the open batch commits
 * (they read with their own connection: nothing is there before). */
static void notify_events(struct core *c)
{
	if (gcommit_is_open(&c->gc))
		c->notify_after = true;
	else if (c->cfg.events != NULL)
		drv_events_notify(c->cfg.events);
}

/* Record an event (steals data) and wake the API's event streams. */
static void event(struct core *c, const char *kind, const char *agent_id, json_t *data)
{
	if (drv_events_insert(store_db(c->cfg.store), kind, "", agent_id, data, NULL) == DRV_OK)
		notify_events(c);
	json_decref(data);
}

static void set_connected(struct core *c, struct agent_rt *a, bool up, const char *why)
{
	if (a->connected == up)
		return;
	a->connected = up;
	if (up)
		drv_info("core", "agent connected", "agent=%s pipe=%" PRIu32, a->id, a->pipe);
	else
		drv_warn("core", "agent disconnected", "agent=%s why=\"%s\" last_seen_ms=%" PRId64,
		         a->id, why, a->last_seen_ms);
	event(c, up ? "agent_connected" : "agent_disconnected", a->id,
	      json_pack("{s:s}", "why", why));
	if (c->hooks.on_agent != NULL)
		c->hooks.on_agent(c->hooks.arg, a->id, up ? "connected" : "disconnected");
}

/* A verified message from an agent on pipe. */
static void mark_seen(struct core *c, struct agent_rt *a, uint32_t pipe)
{
	int64_t now = drv_wall_ms();

	if (a->connected && a->pipe != pipe)
		drv_info("core", "agent moved to a new connection", "agent=%s pipe=%" PRIu32, a->id,
		         pipe);
	a->pipe = pipe;
	a->last_seen_ms = now;
	a->last_seen_mono = drv_mono_ms();
	if (a->status == AGENT_ACCEPTED)
		set_connected(c, a, true, "");
	if (now - a->last_saved_ms >= TOUCH_EVERY_MS && gcommit_join(&c->gc) == DRV_OK &&
	    store_agent_touch(c->cfg.store, a->id, now) == DRV_OK)
		a->last_saved_ms = now;
}

/* ---- delivery ---- */

static void unpark(struct agent_rt *a, uint8_t *env, size_t len)
{
	struct core_waiter *w = a->parked;

	a->parked = NULL;
	if (w != NULL)
		w->deliver(w, env, len);
	else
		free(env);
}

/* An instruction queued under an older epoch (by the previous leader, before
 * a failover) is signed again under ours: the agent has seen ours and would
 * refuse it. Same body, same sequence number and step id. */
static void restamp(struct core *c, uint8_t **env, size_t *len)
{
	uint64_t epoch = drv_ha_wire_epoch();
	Drover__Envelope *e;
	uint8_t *out;
	size_t out_len;
	bool old;

	if (epoch == 0 || drv_env_parse(*env, *len, DRV_ENV_MAX, &e) != DRV_OK)
		return;
	old = e->epoch != epoch;
	drv_env_free(e);
	if (!old || drv_env_reseal(c->cfg.key, *env, *len, epoch, &out, &out_len) != DRV_OK)
		return;
	free(*env);
	*env = out;
	*len = out_len;
}

/* Nothing deliverable for a: the store said so at its last take
 * (a->idle_gen), or the last one taken was the only one and a has
 * acknowledged it since (a->taken_*: acked_seq rose to it after the take,
 * which acknowledged the row in the same write). A Poll that follows a report then costs no
 * statement under the core lock. Whatever may make a row deliverable again
 * forgets this: an instruction queued for a (forget_idle), a batch that
 * failed to commit (an acknowledgement rolled back), a store sync, a new
 * lease epoch (another node led meanwhile): the last three by a new
 * c->idle_gen. Otherwise rows only leave the deliverable set (acked,
 * expired, deleted). */
static bool known_idle(struct core *c, const struct agent_rt *a)
{
	uint64_t epoch = drv_ha_wire_epoch();

	if (epoch != c->idle_epoch) {
		c->idle_epoch = epoch;
		c->idle_gen++;
	}
	if (a->idle_gen == c->idle_gen)
		return true;
	return a->taken_gen == c->idle_gen && a->acked_seq >= a->taken_seq;
}

static void forget_idle(struct agent_rt *a)
{
	a->idle_gen = 0;
	a->taken_gen = 0;
}

/* A row was taken for a: known_idle may skip a's next take. Below the
 * agent's floor (take_next): the floor, written before, does not say that
 * this row was acknowledged. */
static void taken_note(struct core *c, struct agent_rt *a, const struct store_instr *in)
{
	a->taken_seq = in->seq;
	a->taken_gen = in->more || in->seq <= a->acked_seq ? 0 : c->idle_gen;
}

/* in, taken for a, leaves: counted, logged at level (a resend always at
 * info), its envelope moved to *env and stamped with our epoch. */
static void sending(struct core *c, struct agent_rt *a, struct store_instr *in,
                    enum drv_log_level level, uint8_t **env, size_t *len)
{
	/* Below the floor the agent applied: the old leader sent it and was
	 * killed before its 'sent' mark committed (or a store restored from a
	 * backup). The agent answers from its records; its next Poll must write the
	 * acknowledgement again, although it repeats an applied_seq the store
	 * has: else the row stays 'sent', is resent at every Poll until it
	 * expires, and holds back every later instruction of the agent. */
	if (in->seq <= a->acked_seq)
		a->resent_applied = true;
	drv_linkstats_inc(in->sent_count == 0 ? DRV_STAT_INSTR_SENT : DRV_STAT_INSTR_RESENT);
	drv_linkstats_inc(DRV_STAT_TX_MESSAGES);
	drv_log(in->sent_count == 0 ? level : DRV_LOG_INFO, "core",
	        in->sent_count == 0 ? "instruction sent" : "instruction resent",
	        "agent=%s seq=%" PRIu64 " step=%s sent_before=%" PRId64, a->id, in->seq,
	        in->step_id, in->sent_count);
	*env = in->env;
	*len = in->env_len;
	in->env = NULL;
	restamp(c, env, len);
}

/* The agent's next instruction, marked sent (one statement when the batch
 * is open; with none open, a read first, so that a Poll with nothing to
 * take opens no transaction); DRV_ENOENT if none. */
static int take_row(struct core *c, struct agent_rt *a, struct store_instr *in)
{
	int64_t now = drv_wall_ms();
	int rc;

	if (!gcommit_is_open(&c->gc)) {
		rc = store_instr_next(c->cfg.store, a->id, now, in);
		if (rc != DRV_OK)
			goto out;
		store_instr_clear(in);
	}
	gcommit_join(&c->gc); /* promises nothing: batched with what else is written */
	rc = store_instr_take(c->cfg.store, a->id, now, in);
	if (rc == DRV_OK)
		taken_note(c, a, in);
out:
	if (rc == DRV_ENOENT)
		a->idle_gen = c->idle_gen;
	return rc;
}

/* The agent's next instruction, marked sent; DRV_ENOENT if none. */
static int take_next(struct core *c, struct agent_rt *a, uint8_t **env, size_t *len)
{
	struct store_instr in;
	int rc;

	if (!drv_ha_is_leader())
		return DRV_ENOENT; /* a node that lost its lease sends nothing more */
	if (known_idle(c, a))
		return DRV_ENOENT;
	rc = take_row(c, a, &in);
	if (rc != DRV_OK)
		return rc;
	sending(c, a, &in, DRV_LOG_INFO, env, len);
	store_instr_clear(&in);
	return DRV_OK;
}

/* An instruction queued in the open batch is sent only once the batch
 * committed (after_commit delivers it): never one a crash could take back. */
static void deliver_if_parked(struct core *c, struct agent_rt *a)
{
	uint8_t *env;
	size_t len;

	if (a->parked == NULL || a->uncommitted)
		return;
	if (take_next(c, a, &env, &len) == DRV_OK)
		unpark(a, env, len);
}

/* The parked agents of a committed batch, delivered together
 * (deliver_parked): one statement takes each one's next row. */
struct parked_set {
	struct core *c;
	size_t sent, resent;
};

static void parked_taken(void *arg, const char *agent_id, struct store_instr *in)
{
	struct parked_set *ps = arg;
	struct agent_rt *a = registry_get(ps->c->reg, agent_id);
	uint8_t *env;
	size_t len;

	if (a == NULL || a->parked == NULL)
		return; /* not asked for: the row stays sent, resent at its next Poll */
	taken_note(ps->c, a, in);
	if (in->sent_count == 0)
		ps->sent++;
	else
		ps->resent++;
	sending(ps->c, a, in, DRV_LOG_DEBUG, &env, &len);
	unpark(a, env, len);
}

/* Whether a parked agent's next row is worth a take (take_next's checks
 * but the leader's, made once for all). */
static bool parked_wants(struct core *c, const struct agent_rt *a)
{
	return a->parked != NULL && !a->uncommitted && !known_idle(c, a);
}

/* The agents' ids as a JSON array; *k: how many. */
static char *agents_json(struct agent_rt *const *v, size_t n, size_t *k)
{
	json_t *ids = json_array();
	char *text = NULL;

	*k = 0;
	for (size_t i = 0; ids != NULL && i < n; i++)
		if (json_array_append_new(ids, json_string(v[i]->id)) == 0)
			(*k)++;
	if (*k > 0)
		text = json_dumps(ids, JSON_COMPACT);
	json_decref(ids);
	return text;
}

/* deliver_if_parked for each of v (a committed batch's agents): one
 * statement marks every parked one's next row sent, then each is sent, with
 * one log line for all (a line per agent at debug). Only committed rows are
 * there to take (an agent with rows in an open batch is skipped), and each
 * agent gets its lowest deliverable row, as its Poll would. */
static void deliver_parked(struct core *c, struct agent_rt **v, size_t n)
{
	struct parked_set ps = {.c = c};
	struct agent_rt **want = NULL;
	size_t k = 0, listed;
	char *ids = NULL;
	int rc = DRV_EDB;

	if (!drv_ha_is_leader())
		return; /* a node that lost its lease sends nothing more */
	if (n > 1)
		want = malloc(n * sizeof(*want));
	for (size_t i = 0; want != NULL && i < n; i++)
		if (parked_wants(c, v[i]))
			want[k++] = v[i];
	if (want != NULL && k > 1)
		ids = agents_json(want, k, &listed);
	if (ids != NULL && listed == k && gcommit_join(&c->gc) == DRV_OK)
		rc = store_instr_take_many(c->cfg.store, ids, drv_wall_ms(), parked_taken, &ps);
	if (rc == DRV_OK) {
		for (size_t i = 0; i < k; i++)
			if (want[i]->parked != NULL) /* nothing deliverable: as take_row says */
				want[i]->idle_gen = c->idle_gen;
		if (ps.sent + ps.resent > 0)
			drv_info("core", "instructions sent", "agents=%zu sent=%zu resent=%zu", k,
			         ps.sent, ps.resent);
	} else if (rc != DRV_EFENCED) {
		/* one by one (one agent, no memory, or the statement failed) */
		for (size_t i = 0; i < n; i++)
			deliver_if_parked(c, v[i]);
	}
	free(ids);
	free(want);
}

/* Record that the agent applied everything up to `applied`. Every Poll and
 * Report repeats the agent's highest sequence: only a higher one than the
 * store already has is written (a->acked_seq; the caller sets it once the
 * write is committed). A Hello always writes: after a restore from an old
 * backup the store's next_seq may lag behind what the agent applied. */
static void acked_note(const struct agent_rt *a, uint64_t applied, size_t n)
{
	if (n == 0)
		return;
	drv_linkstats_add(DRV_STAT_INSTR_ACKED, n);
	drv_info("core", "instructions acknowledged", "agent=%s upto=%" PRIu64 " count=%zu", a->id,
	         applied, n);
}

static bool ack_upto_nosync(struct core *c, struct agent_rt *a, uint64_t applied, bool always)
{
	size_t n = 0;
	int rc;

	if (applied == 0 || (applied <= a->acked_seq && !always))
		return false;
	gcommit_join(&c->gc); /* a Poll's promises nothing (a Report waits for its commit) */
	rc = store_instr_ack_upto(c->cfg.store, a->id, applied, drv_wall_ms(), &n);
	if (rc == DRV_OK)
		acked_note(a, applied, n);
	return rc == DRV_OK; /* else written again with the next message */
}

static void ack_upto(struct core *c, struct agent_rt *a, uint64_t applied, bool always)
{
	if (ack_upto_nosync(c, a, applied, always) && applied > a->acked_seq)
		a->acked_seq = applied;
}

/* ---- answers owed after a commit ---- */

static struct owed *owed_new(struct core_waiter *w, const struct core_reply *out, uint32_t pipe,
                             void (*committed)(struct core *c, struct owed *o, int rc),
                             void (*answer)(struct core *c, struct owed *o, int rc))
{
	struct owed *o = calloc(1, sizeof(*o));

	if (o == NULL)
		return NULL;
	o->w = w;
	o->reply = *out;
	o->pipe = pipe;
	o->committed = committed;
	o->answer = answer;
	return o;
}

static void owed_free(struct owed *o)
{
	if (o == NULL)
		return;
	if (o->body != NULL)
		drv_msg_free(o->body);
	free(o->event_row);
	free(o);
}

/* Lock held, the request's writes in the open batch: answered after its
 * commit (answer_owed). */
static void owe(struct core *c, struct owed *o)
{
	*c->owed_tail = o;
	c->owed_tail = &o->next;
	gcommit_owe(&c->gc);
}

/* Core lock, from after_commit: the batch that stored these requests
 * committed with rc. Their answers are signed and sent once the lock is
 * released (answer_pending): signing under it made every other request
 * wait for each Ack's signature in turn. */
static void answer_owed(struct core *c, struct owed *list, int rc)
{
	struct owed *o, *last = NULL;

	if (list == NULL)
		return;
	for (o = list; o != NULL; o = o->next) {
		if (o->rc == DRV_OK) /* else its own rows failed (reports_one_by_one) */
			o->rc = rc;
		if (o->committed != NULL)
			o->committed(c, o, o->rc);
		last = o;
	}
	pthread_mutex_lock(&c->ans_mu);
	*c->sealq_tail = list;
	c->sealq_tail = &last->next;
	pthread_mutex_unlock(&c->ans_mu);
}

/* After-unlock hook (no core lock): sign and send the answers of the
 * batches committed so far. Still "Ack only after commit": a request is
 * queued here only by its batch's after-commit hook. */
static void answer_pending(void *arg)
{
	struct core *c = arg;
	struct owed *o, *next;

	pthread_mutex_lock(&c->ans_mu);
	o = c->sealq;
	c->sealq = NULL;
	c->sealq_tail = &c->sealq;
	c->answering += o != NULL;
	pthread_mutex_unlock(&c->ans_mu);
	if (o == NULL)
		return;
	for (; o != NULL; o = next) {
		next = o->next;
		o->answer(c, o, o->rc);
		if (o->w != NULL)
			o->w->deliver(o->w, o->reply.env, o->reply.len);
		else
			free(o->reply.env);
		owed_free(o);
	}
	pthread_mutex_lock(&c->ans_mu);
	if (--c->answering == 0)
		pthread_cond_broadcast(&c->ans_cv);
	pthread_mutex_unlock(&c->ans_mu);
}

/* No core lock: every answer queued so far was sent (or dropped). */
static void answers_settle(struct core *c)
{
	answer_pending(c);
	pthread_mutex_lock(&c->ans_mu);
	while (c->answering > 0 || c->sealq != NULL) {
		if (c->answering == 0) { /* queued meanwhile: send it here */
			pthread_mutex_unlock(&c->ans_mu);
			answer_pending(c);
			pthread_mutex_lock(&c->ans_mu);
			continue;
		}
		pthread_cond_wait(&c->ans_cv, &c->ans_mu);
	}
	pthread_mutex_unlock(&c->ans_mu);
}

/* ---- Hello ---- */

struct hello_in {
	const Drover__Hello *h;
	const struct drv_pubkey *key;
	const struct hello_json *json;
	uint32_t pipe;
	const char *peer;
	uint64_t nonce_ctr; /* the session nonce it used */
};

/* A refused enrollment (a bad token, a claimed id): one event and one log
 * line, as long as the per-id allowance lasts. */
static void refused_event(struct core *c, const char *kind, const char *id, json_t *data,
                          const char *log_msg, const char *why)
{
	unsigned dropped = 0;

	if (!refused_event_allowed(c, id, &dropped)) {
		json_decref(data);
		return;
	}
	drv_warn("core", log_msg, "agent=%s why=\"%s\" held_back=%u", id, why, dropped);
	if (data != NULL)
		json_object_set_new(data, "held_back", json_integer(dropped));
	event(c, kind, id, data);
}

/* A valid token for this Hello (counted as used): *by names it. */
static bool token_use(struct core *c, const struct hello_in *in, char by[64])
{
	char name[64], why[160] = "";
	const char *tok = in->h->enroll_token;
	int rc;

	if (tok == NULL || tok[0] == '\0')
		return false;
	rc = store_enroll_token_use(c->cfg.store, tok, in->json->labels, drv_wall_ms(), name, why,
	                            sizeof(why));
	if (rc != DRV_OK) {
		refused_event(c, "enroll_token_refused", in->h->agent_id,
		              json_pack("{s:s, s:s}", "why", rc == DRV_EPERM ? why : "internal",
		                        "peer", in->peer),
		              "enrollment token refused", rc == DRV_EPERM ? why : drv_strerror(rc));
		return false;
	}
	snprintf(by, 64, "token:%.57s", name);
	return true;
}

static int check_pending_caps(struct core *c, const char *peer)
{
	size_t pending = 0;

	if (store_agent_count(c->cfg.store, AGENT_PENDING, &pending) != DRV_OK ||
	    pending >= c->cfg.max_pending)
		return DRV_ETOOBIG;
	if (store_agent_count_peer(c->cfg.store, peer, &pending) != DRV_OK ||
	    pending >= c->cfg.max_pending_per_peer)
		return DRV_ESTATE; /* per-address cap */
	return DRV_OK;
}

static int hello_new_agent(struct core *c, const struct hello_in *in, struct store_agent *a)
{
	struct store_hello sh = {in->json->labels, in->json->facts, in->json->releases,
	                         in->h->agent_version, in->h->releases_seq};
	char by[64] = "";
	int rc;

	if (registry_count(c->reg) >= c->cfg.max_agents)
		return DRV_ETOOBIG;
	memset(a, 0, sizeof(*a));
	snprintf(a->id, sizeof(a->id), "%s", in->h->agent_id);
	snprintf(a->peer, sizeof(a->peer), "%s", in->peer);
	a->key = *in->key;
	a->status = token_use(c, in, by) ? AGENT_ACCEPTED : AGENT_PENDING;
	if (a->status == AGENT_PENDING && (rc = check_pending_caps(c, in->peer)) != DRV_OK)
		return rc;
	a->first_seen_ms = a->last_seen_ms = a->status_ms = drv_wall_ms();
	a->next_seq = 1;
	snprintf(a->enrolled_by, sizeof(a->enrolled_by), "%s", by);
	if (store_agent_create(c->cfg.store, a, &sh) != DRV_OK)
		return DRV_EDB;
	drv_info("core", a->status == AGENT_ACCEPTED ? "agent enrolled" : "agent pending",
	         "agent=%s key=%s by=%s peer=%s labels=%s", a->id, a->key.id, by[0] ? by : "-",
	         in->peer, in->json->labels);
	event(c, a->status == AGENT_ACCEPTED ? "agent_accepted" : "agent_pending", a->id,
	      json_pack("{s:s, s:s, s:s, s:o}", "key_id", a->key.id, "by", by, "peer", in->peer,
	                "labels", json_loads(in->json->labels, 0, NULL)));
	if (a->status == AGENT_ACCEPTED)
		drv_linkstats_inc(DRV_STAT_AGENTS_ENROLLED);
	return DRV_OK;
}

/* The one place an expired claim is logged and evented: the store calls
 * it for each claim it deletes, from the tick and from key_conflict. */
static void pending_expired_cb(void *arg, const char *agent_id, const char *key_id)
{
	drv_info("core", "pending claim expired", "agent=%s key=%s", agent_id, key_id);
	event(arg, "agent_pending_expired", agent_id, json_pack("{s:s}", "key_id", key_id));
}

/* Delete the pending claims first seen more than pending_expiry before
 * now_ms (the oldest 256); the same cut as pending_expired. */
static int expire_claims(struct core *c, int64_t now_ms)
{
	return store_agent_expire_pending(c->cfg.store, now_ms - c->cfg.pending_expiry_ms,
	                                  pending_expired_cb, c);
}

static bool pending_expired(const struct core *c, const struct store_agent *a, int64_t now_ms)
{
	return a->status == AGENT_PENDING && now_ms - a->first_seen_ms > c->cfg.pending_expiry_ms;
}

/* A valid token replaces a claim that was never accepted (a squatter's, or
 * the host's own lost key): recorded as an event and in the audit log. */
static int replace_claim(struct core *c, const struct hello_in *in, struct store_agent *a,
                         const char *by)
{
	struct store_hello sh = {in->json->labels, in->json->facts, in->json->releases,
	                         in->h->agent_version, in->h->releases_seq};
	struct drv_pubkey old = a->key;
	char detail[256];
	struct drv_audit_entry e = {by, "agent", in->peer, "HELLO", "/link/hello", 200, detail};

	a->key = *in->key;
	a->status = AGENT_ACCEPTED;
	a->first_seen_ms = a->status_ms = drv_wall_ms();
	snprintf(a->enrolled_by, sizeof(a->enrolled_by), "%s", by);
	snprintf(a->peer, sizeof(a->peer), "%s", in->peer);
	if (store_agent_rekey(c->cfg.store, a) != DRV_OK ||
	    store_agent_update_hello(c->cfg.store, a->id, &sh, drv_wall_ms(), NULL) != DRV_OK)
		return DRV_EDB;
	snprintf(detail, sizeof(detail), "agent=%s pending claim by key %s replaced by key %s",
	         a->id, old.id, a->key.id);
	if (drv_audit_append(store_db(c->cfg.store), &e) != DRV_OK)
		drv_error("core", "cannot write the audit row", "detail=\"%s\"", detail);
	drv_warn("core", "pending claim replaced by an enrollment token",
	         "agent=%s old_key=%s new_key=%s by=%s peer=%s", a->id, old.id, a->key.id, by,
	         in->peer);
	event(c, "agent_claim_replaced", a->id,
	      json_pack("{s:s, s:s, s:s, s:s}", "old_key", old.id, "new_key", a->key.id, "by", by,
	                "peer", in->peer));
	event(c, "agent_accepted", a->id, json_pack("{s:s}", "by", by));
	drv_linkstats_inc(DRV_STAT_AGENTS_ENROLLED);
	return DRV_OK;
}

static int key_conflict(struct core *c, const struct hello_in *in, struct store_agent *a)
{
	char by[64];
	int64_t now_ms = drv_wall_ms();
	struct store_agent left;
	int rc;

	if (pending_expired(c, a, now_ms)) {
		/* Expired claims go the tick's way, oldest first, until this one
		 * is gone (older ones would go at the next tick anyway). */
		for (size_t batch = 0; batch <= c->cfg.max_pending / 256; batch++) {
			if (expire_claims(c, now_ms) != DRV_OK)
				return DRV_EDB;
			rc = store_agent_get(c->cfg.store, a->id, &left);
			if (rc == DRV_ENOENT)
				return hello_new_agent(c, in, a);
			if (rc != DRV_OK)
				return DRV_EDB;
		}
		return DRV_EDB;
	}
	if (a->status == AGENT_PENDING && token_use(c, in, by))
		return replace_claim(c, in, a, by);
	refused_event(c, "agent_key_conflict", a->id,
	              json_pack("{s:s, s:s, s:s}", "bound_key", a->key.id, "offered_key",
	                        in->key->id, "peer", in->peer),
	              "agent id is bound to another key: refused", in->key->id);
	return DRV_EEXIST;
}

/* An accepted agent's labels change only by an admin: the new ones wait
 * as proposed labels (drover agents relabel ID). NULL: keep the labels. */
static const char *labels_to_write(struct core *c, const struct hello_in *in,
                                   const struct store_agent *a)
{
	char *have = NULL, *proposed = NULL;
	const char *keep = in->json->labels;

	if (a->status != AGENT_ACCEPTED ||
	    store_agent_labels(c->cfg.store, a->id, &have, &proposed) != DRV_OK)
		return keep;
	if (strcmp(have, in->json->labels) == 0) {
		if (proposed != NULL)
			store_agent_propose_labels(c->cfg.store, a->id, NULL);
	} else {
		keep = NULL;
		if (proposed == NULL || strcmp(proposed, in->json->labels) != 0) {
			store_agent_propose_labels(c->cfg.store, a->id, in->json->labels);
			refused_event(c, "agent_labels_refused", a->id,
			              json_pack("{s:o, s:o}", "labels", json_loads(have, 0, NULL),
			                        "proposed", json_loads(in->json->labels, 0, NULL)),
			              "label change of an accepted agent needs an admin "
			              "(drover agents relabel)",
			              in->json->labels);
		}
	}
	free(have);
	free(proposed);
	return keep;
}

static int hello_known_agent(struct core *c, const struct hello_in *in, struct store_agent *a)
{
	struct store_hello sh = {NULL, in->json->facts, in->json->releases, in->h->agent_version,
	                         in->h->releases_seq};
	bool stale = false;
	char by[64];

	if (memcmp(a->key.pk, in->key->pk, DRV_PK_LEN) != 0)
		return key_conflict(c, in, a);
	sh.labels_json = labels_to_write(c, in, a);
	/* Not saved (a full disk): the session goes on; the next Hello saves it.
	 * A Hello sealed before a Report that changed the list can come after
	 * it (a failover, a reconnection): its older list is not stored. */
	if (store_agent_update_hello(c->cfg.store, a->id, &sh, drv_wall_ms(), &stale) != DRV_OK)
		drv_warn("core", "cannot save the agent's Hello: it stays connected", "agent=%s",
		         a->id);
	else if (stale)
		drv_info("core", "older releases of a hello ignored",
		         "agent=%s releases_seq=%" PRIu64, a->id, in->h->releases_seq);
	if (a->status == AGENT_PENDING && token_use(c, in, by)) {
		if (store_agent_set_status(c->cfg.store, a->id, AGENT_ACCEPTED, by,
		                           drv_wall_ms()) != DRV_OK)
			return DRV_EDB;
		a->status = AGENT_ACCEPTED;
		drv_info("core", "agent enrolled", "agent=%s key=%s by=%s labels=%s", a->id,
		         a->key.id, by, in->json->labels);
		event(c, "agent_accepted", a->id, json_pack("{s:s}", "by", by));
		drv_linkstats_inc(DRV_STAT_AGENTS_ENROLLED);
	}
	return DRV_OK;
}

static int hello_locked(struct core *c, const struct hello_in *in, enum agent_status *st)
{
	struct store_agent a;
	struct agent_rt *rt;
	int rc;

	rc = store_agent_get(c->cfg.store, in->h->agent_id, &a);
	if (rc == DRV_ENOENT)
		rc = hello_new_agent(c, in, &a);
	else if (rc == DRV_OK)
		rc = hello_known_agent(c, in, &a);
	if (rc != DRV_OK)
		return rc;
	rt = registry_get(c->reg, a.id);
	if (rt == NULL && (rc = registry_add(c->reg, a.id, &rt)) != DRV_OK)
		return rc;
	rt->status = a.status;
	rt->key = a.key;
	rt->acked_seq = a.acked_seq;
	rt->last_saved_ms = drv_wall_ms();
	rt->nonce_used = in->nonce_ctr;
	mark_seen(c, rt, in->pipe);
	if (a.status == AGENT_ACCEPTED)
		ack_upto(c, rt, in->h->applied_seq, true);
	*st = a.status;
	return DRV_OK;
}

/* The Welcome says what was recorded: only after its batch committed
 * (hello_done). */
static int hello_durable(struct core *c, const struct hello_in *in, struct owed *o)
{
	int rc = gcommit_join(&c->gc);

	if (rc == DRV_OK)
		rc = hello_locked(c, in, &o->st);
	if (rc == DRV_OK)
		owe(c, o);
	return rc;
}

/* Does the Hello carry a nonce this droverd gave to this agent, key and
 * connection, recently, and not used yet? Lock held. */
static bool hello_fresh(struct core *c, const Drover__Hello *h, const struct session_claim *who,
                        uint64_t *ctr)
{
	struct agent_rt *rt;

	if (session_nonce_check(c->nonce_key, h->nonce.data, h->nonce.len, who, drv_mono_ms(),
	                        ctr) != DRV_OK)
		return false;
	rt = registry_get(c->reg, who->agent_id);
	return rt == NULL || *ctr > rt->nonce_used;
}

/* What a challenge Welcome says: the agent's status if the key is its own,
 * else pending. Nothing is recorded. Lock held. */
static enum agent_status challenge_status(struct core *c, const struct session_claim *who)
{
	struct agent_rt *rt = registry_get(c->reg, who->agent_id);

	if (rt != NULL && memcmp(rt->key.pk, who->pk, DRV_PK_LEN) == 0)
		return rt->status;
	return AGENT_PENDING;
}

static void welcome(struct core *c, enum agent_status st, const struct session_claim *who,
                    bool challenge, struct core_reply *out)
{
	static const Drover__AgentStatus wire[] = {DROVER__AGENT_STATUS__AGENT_PENDING,
	                                           DROVER__AGENT_STATUS__AGENT_ACCEPTED,
	                                           DROVER__AGENT_STATUS__AGENT_REJECTED};
	static const char *const text[] = {"pending: waiting for an operator or a valid token",
	                                   "accepted", "rejected by an operator"};
	Drover__Welcome w = DROVER__WELCOME__INIT;
	uint8_t nonce[SESSION_NONCE_LEN];

	session_nonce_make(c->nonce_key, __atomic_add_fetch(&c->nonce_ctr, 1, __ATOMIC_RELAXED),
	                   drv_mono_ms(), who, nonce);
	w.status = wire[st];
	w.coordinator_version = DROVER_VERSION;
	w.server_time_ms = drv_wall_ms();
	w.poll_timeout_ms = (uint32_t)c->cfg.poll_timeout_ms;
	w.heartbeat_ms =
	        (uint32_t)(st == AGENT_PENDING ? c->cfg.pending_retry_ms : c->cfg.poll_timeout_ms);
	w.message = challenge ? "say Hello again with the nonce" : (char *)text[st];
	w.nonce.data = nonce;
	w.nonce.len = sizeof(nonce);
	w.challenge = challenge;
	bind_to(out, &w.agent_id, &w.request_hash);
	seal_reply(c, DROVER__BODY_TYPE__BODY_WELCOME, &w.base, out);
}

/* Signature, body, version and the Hello's own rules; *why on failure. */
static int hello_open(const Drover__Envelope *env, struct drv_pubkey *key, Drover__Hello **out,
                      char *why, size_t why_len)
{
	Drover__Hello *h = NULL;
	int rc = drv_env_verify_self(env, key);

	if (rc != DRV_OK) {
		snprintf(why, why_len, "hello signature");
		return rc;
	}
	rc = drv_env_decode(env, DROVER__BODY_TYPE__BODY_HELLO, (ProtobufCMessage **)&h);
	if (rc != DRV_OK) {
		snprintf(why, why_len, "hello body");
		return rc;
	}
	if (h->proto_major != DRV_PROTO_MAJOR) {
		rc = DRV_EVERSION;
		snprintf(why, why_len, "agent speaks protocol %u, this coordinator %d",
		         h->proto_major, DRV_PROTO_MAJOR);
	} else if (hello_check(h, why, why_len) != DRV_OK ||
	           strcmp(h->agent_id, env->sender ? env->sender : "") != 0 ||
	           h->public_key.len != DRV_PK_LEN ||
	           memcmp(h->public_key.data, key->pk, DRV_PK_LEN) != 0) {
		rc = DRV_EDECODE;
		if (why[0] == '\0')
			snprintf(why, why_len, "agent id or key differ from the envelope's");
	}
	if (rc != DRV_OK) {
		drv_msg_free(&h->base);
		return rc;
	}
	*out = h;
	return DRV_OK;
}

static const char *hello_refusal(int rc)
{
	switch (rc) {
	case DRV_EEXIST: return "agent id bound to another key";
	case DRV_ETOOBIG: return "too many agents";
	case DRV_ESTATE: return "too many pending agents from this address";
	default: return "internal error";
	}
}

static void hello_reject(struct core *c, int rc, const char *id, struct core_reply *out)
{
	reject(c, out,
	       rc == DRV_ETOOBIG  ? DRV_ESYS
	       : rc == DRV_ESTATE ? DRV_EPERM
	                          : rc,
	       0, id, hello_refusal(rc));
}

/* A fresh Hello's batch committed (or failed: then nothing was recorded). */
static void hello_done(struct core *c, struct owed *o, int rc)
{
	const Drover__Hello *h = (const Drover__Hello *)o->body;
	struct session_claim who = {h->agent_id, o->key.pk, o->pipe};

	if (rc == DRV_OK)
		welcome(c, o->st, &who, false, &o->reply);
	else
		hello_reject(c, rc, h->agent_id, &o->reply);
}

/* A Hello without a fresh nonce is answered at once with a challenge (it
 * records nothing); a fresh one once its batch committed. */
static void handle_hello(struct core *c, const Drover__Envelope *env, size_t len, uint32_t pipe,
                         struct core_waiter *w, struct core_reply *out)
{
	struct owed *o = owed_new(w, out, pipe, NULL, hello_done);
	struct hello_json json;
	Drover__Hello *h = NULL;
	enum agent_status st = AGENT_PENDING;
	char why[128] = "";
	bool fresh;
	int rc = o != NULL ? DRV_OK : DRV_ENOMEM;

	if (rc == DRV_OK && len > DRV_ENV_HELLO_MAX) {
		rc = DRV_ETOOBIG;
		snprintf(why, sizeof(why), "hello over 64 KiB");
	}
	if (rc == DRV_OK)
		rc = hello_open(env, &o->key, &h, why, sizeof(why));
	if (rc == DRV_OK) {
		o->body = &h->base;
		rc = hello_to_json(h, &json);
	}
	if (rc != DRV_OK) {
		reject(c, out, rc, 0, env->sender, why[0] ? why : "hello");
		owed_free(o);
		return;
	}
	struct session_claim who = {h->agent_id, o->key.pk, pipe};
	struct hello_in in = {h, &o->key, &json, pipe, out->peer, 0};
	gcommit_lock(&c->gc);
	fresh = hello_fresh(c, h, &who, &in.nonce_ctr);
	if (fresh)
		rc = hello_durable(c, &in, o);
	else
		st = challenge_status(c, &who);
	gcommit_unlock(&c->gc); /* o (and h) may be answered and gone from here on */
	hello_json_free(&json);
	drv_linkstats_inc(DRV_STAT_HELLOS);
	if (fresh && rc == DRV_OK) {
		out->parked = true;
		return;
	}
	if (rc == DRV_OK)
		welcome(c, st, &who, true, out);
	else
		hello_reject(c, rc, h->agent_id, out);
	owed_free(o);
}

/* ---- authenticated messages (Poll, Report) ---- */

/* Verify an envelope from an accepted agent and decode its body. */
static int open_from_agent(struct core *c, const Drover__Envelope *env, Drover__BodyType type,
                           ProtobufCMessage **body, const char **why)
{
	struct agent_rt *a;
	struct drv_pubkey key;
	enum agent_status st;
	int rc;

	gcommit_lock(&c->gc);
	a = env->sender ? registry_get(c->reg, env->sender) : NULL;
	if (a != NULL) {
		key = a->key;
		st = a->status;
	}
	gcommit_unlock(&c->gc);
	if (a == NULL || st != AGENT_ACCEPTED) {
		*why = a == NULL ? "unknown agent: say Hello" : "agent not accepted";
		return DRV_EPERM;
	}
	rc = drv_env_verify(env, &key);
	if (rc != DRV_OK) {
		*why = rc == DRV_EUNKNOWNKEY ? "not the agent's key" : "signature";
		return rc;
	}
	rc = drv_env_decode(env, type, body);
	if (rc != DRV_OK)
		*why = "body";
	return rc;
}

/* The agent, still accepted, under the lock; NULL if it changed meanwhile. */
static struct agent_rt *accepted(struct core *c, const char *id)
{
	struct agent_rt *a = registry_get(c->reg, id);

	return a != NULL && a->status == AGENT_ACCEPTED ? a : NULL;
}

static void poll_locked(struct core *c, struct agent_rt *a, const Drover__Poll *p, uint32_t pipe,
                        struct core_waiter *w, struct core_reply *out)
{
	/* The first Poll of a connection may come before (or instead of) a
	 * Hello: NNG resends a pending request on the new pipe after droverd
	 * restarts. Write its sequence floor as a Hello would, so a store
	 * restored from an old backup catches up with what the agent applied.
	 * Likewise after take_next() sent one the agent had applied. */
	bool again = !a->connected || a->pipe != pipe || a->resent_applied;

	a->resent_applied = false; /* set again if the row is resent */
	mark_seen(c, a, pipe);
	ack_upto(c, a, p->applied_seq, again);
	if (!a->uncommitted && take_next(c, a, &out->env, &out->len) == DRV_OK)
		return;
	if (a->parked != NULL)
		unpark(a, NULL, 0); /* replaced by this newer poll */
	a->parked = w;
	a->parked_pipe = pipe;
	memcpy(a->parked_hash, out->req_hash, sizeof(a->parked_hash));
	a->parked_until_mono = drv_mono_ms() + c->cfg.poll_timeout_ms;
	out->parked = true;
}

/* What the agent runs now (drift), when its Poll carries it. Core lock. */
static void poll_releases_locked(struct core *c, struct agent_rt *a, const Drover__Poll *p)
{
	bool stale = false;
	char *rel;

	if (!hello_releases_ok(p->releases, p->n_releases)) {
		drv_warn("core", "poll releases refused", "agent=%s", a->id);
		return;
	}
	/* A Poll sealed before a Report that changed the list can come after
	 * it: its list (releases_seq below the stored one) is not stored. */
	rel = hello_releases_json(p->releases, p->n_releases);
	if (rel != NULL && gcommit_join(&c->gc) == DRV_OK &&
	    store_agent_set_releases(c->cfg.store, a->id, rel, p->releases_seq, &stale) != DRV_OK)
		drv_warn("core", "cannot store the releases of a poll", "agent=%s", a->id);
	else if (stale)
		drv_info("core", "older releases of a poll ignored",
		         "agent=%s releases_seq=%" PRIu64, a->id, p->releases_seq);
	free(rel);
}

static void handle_poll(struct core *c, const Drover__Envelope *env, uint32_t pipe,
                        struct core_waiter *w, struct core_reply *out)
{
	Drover__Poll *p = NULL;
	struct agent_rt *a;
	const char *why = "";
	int64_t now = drv_wall_ms();
	int rc;

	rc = open_from_agent(c, env, DROVER__BODY_TYPE__BODY_POLL, (ProtobufCMessage **)&p, &why);
	if (rc != DRV_OK) {
		reject(c, out, rc, 0, env->sender, why);
		return;
	}
	if (strcmp(p->agent_id, env->sender) != 0)
		rc = DRV_EDECODE, why = "poll names another agent";
	else if (now - p->sent_at_ms > c->cfg.skew_ms + c->cfg.poll_timeout_ms)
		rc = DRV_EEXPIRED, why = "stale poll";
	else if (p->sent_at_ms - now > c->cfg.skew_ms)
		rc = DRV_EFUTURE, why = "poll from the future";
	if (rc != DRV_OK) {
		reject(c, out, rc, 0, env->sender, why);
		drv_msg_free(&p->base);
		return;
	}
	drv_linkstats_inc(DRV_STAT_POLLS);
	gcommit_lock(&c->gc);
	a = accepted(c, env->sender);
	if (a != NULL && p->has_releases)
		poll_releases_locked(c, a, p);
	if (a != NULL)
		poll_locked(c, a, p, pipe, w, out);
	gcommit_unlock(&c->gc);
	if (a == NULL)
		reject(c, out, DRV_EPERM, 0, env->sender, "agent not accepted");
	drv_msg_free(&p->base);
}

static json_t *report_json(const Drover__Report *r)
{
	char tail[OUTPUT_TAIL_STORED + 1];
	json_t *valid;

	snprintf(tail, sizeof(tail), "%s", r->output_tail ? r->output_tail : "");
	valid = json_string(tail); /* NULL if the cut (or the agent) broke UTF-8 */
	json_decref(valid);
	return json_pack("{s:s?, s:s?, s:I, s:s, s:s?, s:i, s:s?, s:s?, s:I, s:I}", "step_id",
	                 r->step_id, "deployment_id", r->deployment_id, "instruction_seq",
	                 (json_int_t)r->instruction_seq, "result", drv_step_result_name(r->result),
	                 "message", r->message, "exit_code", (int)r->exit_code, "output_tail",
	                 valid ? tail : NULL, "service", r->service, "duration_ms",
	                 (json_int_t)r->duration_ms, "report_seq", (json_int_t)r->report_seq);
}

static const char *report_deployment(const Drover__Report *r)
{
	return r->deployment_id != NULL && drv_agent_id_valid(r->deployment_id) ? r->deployment_id
	                                                                        : "";
}

/* The releases a report carries, merged into its agent's row. */
static int report_releases(struct core *c, struct agent_rt *a, const Drover__Report *r)
{
	char *rel;
	int rc;

	if (r->n_releases == 0 || r->service == NULL || r->service[0] == '\0' ||
	    r->n_releases > HELLO_RELEASES_MAX)
		return DRV_OK;
	rel = hello_releases_json(r->releases, r->n_releases);
	if (rel == NULL)
		return DRV_ENOMEM;
	rc = store_agent_merge_releases(c->cfg.store, a->id, r->service, rel, r->report_seq, NULL);
	free(rel);
	return rc;
}

/* The report's event row (under its deployment, so that a restarted
 * droverd can replay what its sequencer had not yet saved) and the
 * releases it carries. */
static int record_report(struct core *c, struct agent_rt *a, const Drover__Report *r)
{
	json_t *data = report_json(r);
	int rc = drv_events_insert(store_db(c->cfg.store), "report", report_deployment(r), a->id,
	                           data, NULL);

	json_decref(data);
	return rc == DRV_OK ? report_releases(c, a, r) : rc;
}

/* The event row of a report written with its batch (drv_events_insert_rows:
 * [deployment, agent, data]), made before the core lock is taken. NULL:
 * the report is written on its own (record_report), e.g. one too big for
 * an event, which that way is refused as before. */
static char *report_event_row(const Drover__Report *r)
{
	json_t *data = report_json(r);
	json_t *row = data != NULL ? json_pack("[s, s, o]", report_deployment(r), r->agent_id, data)
	                           : NULL;
	char *text = row != NULL ? json_dumps(row, JSON_COMPACT) : NULL;

	json_decref(row);
	if (text != NULL && strlen(text) > DRV_EVENT_DATA_MAX) {
		free(text);
		return NULL;
	}
	return text;
}

static bool acknowledges(const Drover__Report *r)
{
	return r->instruction_seq > 0 && r->result >= DROVER__STEP_RESULT__STEP_ACCEPTED &&
	       r->result <= DROVER__STEP_RESULT__STEP_FAILED;
}

/* Replay check, acknowledgement, event and releases in one transaction (one
 * commit, not four): a report that was acknowledged is never lost by a
 * crash of droverd. *acked: the acknowledgement was written. */
static int report_store(struct core *c, struct agent_rt *a, const Drover__Report *r, bool *acked)
{
	uint64_t upto =
	        acknowledges(r) && r->instruction_seq > a->acked_seq ? r->instruction_seq : 0;
	size_t n = 0;
	int rc = store_begin(c->cfg.store);

	if (rc != DRV_OK)
		return rc;
	/* replay check and acknowledgement in one write of the agent's row */
	rc = store_agent_report(c->cfg.store, a->id, r->report_seq, upto, drv_wall_ms(), &n);
	if (rc == DRV_OK && upto > 0) {
		*acked = true;
		acked_note(a, upto, n);
	}
	if (rc == DRV_OK)
		rc = record_report(c, a, r);
	if (rc == DRV_OK)
		rc = store_commit(c->cfg.store);
	else
		store_rollback(c->cfg.store);
	if (rc == DRV_OK)
		notify_events(c);
	if (rc == DRV_EDB)
		drv_storage_suspect(); /* a full or read-only disk? (not acknowledged: resent) */
	return rc;
}

/* The report's rows are left for its batch's write (reports_flush): its
 * agent's row, the instructions it acknowledges and its event, each one
 * statement for the whole batch. */
static int report_defer(struct core *c, struct agent_rt *a, struct owed *o)
{
	const Drover__Report *r = (const Drover__Report *)o->body;

	if (!a->report_pending) {
		if (c->n_rep == c->cap_rep) {
			size_t cap = c->cap_rep ? 2 * c->cap_rep : 256;
			struct agent_rt **v = realloc(c->rep_agents, cap * sizeof(*v));

			if (v == NULL)
				return DRV_ENOMEM;
			c->rep_agents = v;
			c->cap_rep = cap;
		}
		c->rep_agents[c->n_rep++] = a;
		a->report_pending = true;
		a->batch_ack = 0;
		a->batch_acked = 0;
	}
	if (acknowledges(r) && r->instruction_seq > a->acked_seq &&
	    r->instruction_seq > a->batch_ack)
		a->batch_ack = r->instruction_seq;
	a->batch_rs = a->report_seq = r->report_seq;
	o->agent = a;
	o->deferred = true;
	c->n_deferred++;
	notify_events(c);
	return DRV_OK;
}

/* The report joins the open batch and its answer waits for the batch's
 * commit (report_done): the Ack says "saved". Nothing waits here, so the
 * reports of a fan-out share a commit by the hundred. A report above the
 * agent's highest report_seq (in memory) is written with its batch; one
 * that is not (a replay, or an agent whose row changed) is written at once
 * by report_store, whose statement checks against the store. */
static void reports_flush(void *arg);

static int report_locked(struct core *c, struct agent_rt *a, struct owed *o)
{
	const Drover__Report *r = (const Drover__Report *)o->body;
	bool acked = false;
	int rc = gcommit_join(&c->gc);

	if (rc != DRV_OK)
		return rc;
	if (o->event_row == NULL || r->report_seq <= a->report_seq ||
	    report_defer(c, a, o) != DRV_OK) {
		rc = report_store(c, a, r, &acked);
		if (rc != DRV_OK)
			return rc;
		if (!a->report_pending || r->report_seq > a->report_seq)
			a->report_seq = r->report_seq;
		if (acked && r->instruction_seq > a->acked_seq)
			a->acked_seq = r->instruction_seq;
	}
	mark_seen(c, a, o->pipe);
	owe(c, o);
	if (c->n_deferred >= REPORTS_WRITE_AT)
		reports_flush(c);
	return DRV_OK;
}

/* ---- a batch's reports, written once for the batch ---- */

static void report_acked(void *arg, const char *agent_id)
{
	struct core *c = arg;
	struct agent_rt *a = registry_get(c->reg, agent_id);

	if (a != NULL)
		a->batch_acked++;
}

/* [[agent, report_seq, acked], ...] of the batch's agents (ids are
 * [A-Za-z0-9._-]: nothing to escape), or NULL. acked is 0 where a Poll
 * acknowledged as much meanwhile; *acks: some row's is not. */
static char *report_agent_rows(struct core *c, bool *acks)
{
	size_t cap = c->n_rep * (DRV_AGENT_ID_MAX + 48) + 3, len = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		return NULL;
	buf[len++] = '[';
	for (size_t i = 0; i < c->n_rep; i++) {
		const struct agent_rt *a = c->rep_agents[i];
		uint64_t ack = a->batch_ack > a->acked_seq ? a->batch_ack : 0;

		*acks |= ack > 0;
		len += (size_t)snprintf(buf + len, cap - len, "%s[\"%s\",%" PRIu64 ",%" PRIu64 "]",
		                        i > 0 ? "," : "", a->id, a->batch_rs, ack);
	}
	buf[len++] = ']';
	buf[len] = '\0';
	return buf;
}

/* The event rows of the batch's reports, in the order they came. */
static char *report_event_rows(struct core *c)
{
	size_t cap = 3, len = 0;
	char *buf;

	for (struct owed *o = c->owed; o != NULL; o = o->next)
		cap += o->deferred ? strlen(o->event_row) + 1 : 0;
	if ((buf = malloc(cap)) == NULL)
		return NULL;
	buf[len++] = '[';
	for (struct owed *o = c->owed; o != NULL; o = o->next) {
		size_t n;

		if (!o->deferred)
			continue;
		if (len > 1)
			buf[len++] = ',';
		n = strlen(o->event_row);
		memcpy(buf + len, o->event_row, n);
		len += n;
	}
	buf[len++] = ']';
	buf[len] = '\0';
	return buf;
}

/* Inside a savepoint of the batch: every deferred report's rows. */
static int reports_write(struct core *c)
{
	bool acks = false;
	char *rows = report_agent_rows(c, &acks), *events = NULL;
	int rc = rows != NULL ? DRV_OK : DRV_ENOMEM;

	if (rc == DRV_OK)
		rc = store_agent_reports(c->cfg.store, rows, c->n_rep, acks, drv_wall_ms(),
		                         report_acked, c);
	for (struct owed *o = c->owed; o != NULL && rc == DRV_OK; o = o->next) {
		if (o->deferred)
			rc = report_releases(c, o->agent, (const Drover__Report *)o->body);
	}
	if (rc == DRV_OK && (events = report_event_rows(c)) == NULL)
		rc = DRV_ENOMEM;
	if (rc == DRV_OK)
		rc = drv_events_insert_rows(store_db(c->cfg.store), "report", events);
	free(rows);
	free(events);
	return rc;
}

/* The batch's write failed (a report that fails on its own, a replay the
 * memory did not know of): each report is written on its own, as before,
 * so that only the one that fails is refused (its rc; the others are
 * acknowledged with the batch). */
static void reports_one_by_one(struct core *c)
{
	struct store_agent sa;

	for (struct owed *o = c->owed; o != NULL; o = o->next) {
		const Drover__Report *r = (const Drover__Report *)o->body;
		bool acked = false;

		if (!o->deferred)
			continue;
		o->rc = report_store(c, o->agent, r, &acked);
		if (o->rc == DRV_OK && acked && r->instruction_seq > o->agent->acked_seq)
			o->agent->acked_seq = r->instruction_seq;
	}
	for (size_t i = 0; i < c->n_rep; i++) {
		struct agent_rt *a = c->rep_agents[i];

		if (store_agent_get(c->cfg.store, a->id, &sa) == DRV_OK)
			a->report_seq = sa.report_seq;
	}
}

/* Before-commit hook (core lock), and every REPORTS_WRITE_AT reports: the
 * rows of the batch's deferred reports so far. */
static void reports_flush(void *arg)
{
	struct core *c = arg;
	int rc;

	if (c->n_deferred == 0)
		return;
	rc = store_begin(c->cfg.store); /* a savepoint: a failure undoes only this */
	if (rc == DRV_OK) {
		rc = reports_write(c);
		if (rc == DRV_OK)
			rc = store_commit(c->cfg.store);
		else
			store_rollback(c->cfg.store);
	}
	if (rc != DRV_OK) {
		drv_warn("core", "a batch's reports written one by one", "reports=%zu error=%s",
		         c->n_deferred, drv_strerror(rc));
		reports_one_by_one(c);
	}
	for (size_t i = 0; i < c->n_rep; i++) {
		struct agent_rt *a = c->rep_agents[i];

		if (rc == DRV_OK && a->batch_ack > 0) {
			acked_note(a, a->batch_ack, a->batch_acked);
			if (a->batch_ack > a->acked_seq)
				a->acked_seq = a->batch_ack;
		}
		a->report_pending = false;
		a->batch_rs = a->batch_ack = 0;
		a->batch_acked = 0;
	}
	for (struct owed *o = c->owed; o != NULL; o = o->next)
		o->deferred = false;
	c->n_rep = 0;
	c->n_deferred = 0;
}

/* Its batch committed: the deployment engine hears of the report. */
static void report_committed(struct core *c, const Drover__Report *r)
{
	drv_linkstats_inc(DRV_STAT_REPORTS);
	drv_info("core", "report", "agent=%s report_seq=%" PRIu64 " step=%s result=%s", r->agent_id,
	         r->report_seq, r->step_id ? r->step_id : "", drv_step_result_name(r->result));
	drv_report_metrics_observe(r);
	if (link_logs_offer(c->logs, r->agent_id, r))
		return; /* a log read's answer, not a deployment's step */
	if (c->hooks.on_report != NULL)
		c->hooks.on_report(c->hooks.arg, r->agent_id, r);
}

/* The Ack of a report, or the Reject if it was not saved (the agent sends
 * it again). */
static void report_answer(struct core *c, const Drover__Report *r, int rc, struct core_reply *out)
{
	Drover__Ack ack = DROVER__ACK__INIT;

	if (rc != DRV_OK) {
		reject(c, out, rc, r->report_seq, r->agent_id,
		       rc == DRV_EREPLAY ? "report already processed" : "report");
		return;
	}
	ack.seq = r->report_seq;
	ack.step_id = r->step_id;
	bind_to(out, &ack.agent_id, &ack.request_hash);
	seal_reply(c, DROVER__BODY_TYPE__BODY_ACK, &ack.base, out);
}

static void report_saved(struct core *c, struct owed *o, int rc)
{
	if (rc == DRV_OK)
		report_committed(c, (const Drover__Report *)o->body);
}

static void report_done(struct core *c, struct owed *o, int rc)
{
	report_answer(c, (const Drover__Report *)o->body, rc, &o->reply);
}

static void handle_report(struct core *c, const Drover__Envelope *env, uint32_t pipe,
                          struct core_waiter *w, struct core_reply *out)
{
	struct owed *o = owed_new(w, out, pipe, report_saved, report_done);
	struct agent_rt *a;
	const char *why = "";
	int rc;

	if (o == NULL) {
		reject(c, out, DRV_ENOMEM, 0, env->sender, "out of memory");
		return;
	}
	rc = open_from_agent(c, env, DROVER__BODY_TYPE__BODY_REPORT, &o->body, &why);
	if (rc != DRV_OK) {
		reject(c, out, rc, 0, env->sender, why);
		owed_free(o);
		return;
	}
	const Drover__Report *r = (const Drover__Report *)o->body;
	if (strcmp(r->agent_id, env->sender) != 0 || r->report_seq == 0) {
		reject(c, out, DRV_EDECODE, 0, env->sender, "report names another agent or no seq");
		owed_free(o);
		return;
	}
	o->event_row = report_event_row(r); /* outside the lock */
	gcommit_lock(&c->gc);
	a = accepted(c, env->sender);
	rc = a != NULL ? report_locked(c, a, o) : DRV_EPERM;
	gcommit_unlock(&c->gc); /* o (and r) may be answered and gone from here on */
	if (rc == DRV_OK) {
		out->parked = true;
		return;
	}
	report_answer(c, r, rc, out); /* not stored: answered now */
	owed_free(o);
}

/* The address a connection comes from, without port: the unit of the
 * per-address limits ("unknown" if NNG cannot tell). */
static void peer_of(uint32_t pipe, char *out, size_t cap)
{
	nng_pipe p = NNG_PIPE_INITIALIZER;
	nng_sockaddr sa;

	p.id = pipe;
	snprintf(out, cap, "unknown");
	if (pipe == 0 || nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0)
		return;
	if (sa.s_family == NNG_AF_INET)
		inet_ntop(AF_INET, &sa.s_in.sa_addr, out, (socklen_t)cap);
	else if (sa.s_family == NNG_AF_INET6)
		inet_ntop(AF_INET6, sa.s_in6.sa_addr, out, (socklen_t)cap);
}

void core_handle(struct core *c, const uint8_t *msg, size_t len, uint32_t pipe,
                 struct core_waiter *w, struct core_reply *out)
{
	Drover__Envelope *env = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	drv_linkstats_inc(DRV_STAT_RX_MESSAGES);
	drv_linkstats_add(DRV_STAT_RX_BYTES, len);
	crypto_generichash(out->req_hash, sizeof(out->req_hash), msg, len, NULL, 0);
	peer_of(pipe, out->peer, sizeof(out->peer));
	rc = drv_env_parse(msg, len, DRV_ENV_MAX, &env);
	if (rc != DRV_OK) {
		reject(c, out, rc, 0, NULL, rc == DRV_ETOOBIG ? "over 1 MiB" : "envelope");
		return;
	}
	if (drv_agent_id_valid(env->sender))
		snprintf(out->req_agent, sizeof(out->req_agent), "%s", env->sender);
	if (!drv_ha_is_leader()) {
		not_leader(c, out);
		drv_env_free(env);
		return;
	}
	switch (env->type) {
	case DROVER__BODY_TYPE__BODY_HELLO: handle_hello(c, env, len, pipe, w, out); break;
	case DROVER__BODY_TYPE__BODY_POLL: handle_poll(c, env, pipe, w, out); break;
	case DROVER__BODY_TYPE__BODY_REPORT: handle_report(c, env, pipe, w, out); break;
	default: reject(c, out, DRV_EDECODE, 0, env->sender, "not a request type"); break;
	}
	drv_env_free(env);
}

/* ---- tick, connections, shutdown ---- */

struct tick_ctx {
	struct core *c;
	int64_t mono;
};

static void idle_reply(struct core *c, struct agent_rt *a)
{
	Drover__Idle idle = DROVER__IDLE__INIT;
	struct core_reply r = {0};

	idle.server_time_ms = drv_wall_ms();
	memcpy(r.req_hash, a->parked_hash, sizeof(r.req_hash));
	snprintf(r.req_agent, sizeof(r.req_agent), "%s", a->id);
	bind_to(&r, &idle.agent_id, &idle.request_hash);
	seal_reply(c, DROVER__BODY_TYPE__BODY_IDLE, &idle.base, &r);
	unpark(a, r.env, r.len);
}

static void tick_agent(void *arg, struct agent_rt *a)
{
	struct tick_ctx *t = arg;

	if (a->parked != NULL && t->mono >= a->parked_until_mono)
		idle_reply(t->c, a);
	if (a->connected && t->mono - a->last_seen_mono > t->c->cfg.liveness_ms)
		set_connected(t->c, a, false, "silent for longer than the liveness timeout");
}

static void expired(void *arg, const char *agent_id, uint64_t seq, const char *step_id)
{
	struct core *c = arg;

	drv_warn("core", "instruction expired unacknowledged", "agent=%s seq=%" PRIu64 " step=%s",
	         agent_id, seq, step_id);
	drv_linkstats_inc(DRV_STAT_INSTR_EXPIRED);
	event(c, "instruction_expired", agent_id,
	      json_pack("{s:I, s:s}", "seq", (json_int_t)seq, "step_id", step_id));
	if (c->hooks.on_expired != NULL)
		c->hooks.on_expired(c->hooks.arg, agent_id, seq, step_id);
}

static void queued_for(void *arg, const char *agent_id)
{
	struct core *c = arg;
	struct agent_rt *a = accepted(c, agent_id);

	if (a == NULL)
		return;
	forget_idle(a); /* queued by an offline tool */
	deliver_if_parked(c, a);
}

/* The store is the truth: an agent removed or changed there by an offline
 * tool (droverd forget-agent) must not live on in memory. */
static int sync_one(void *arg, const struct store_agent_row *row)
{
	struct core *c = arg;
	struct agent_rt *a = registry_get(c->reg, row->agent->id);

	if (a == NULL)
		return DRV_OK; /* appears with its next Hello */
	a->sync_gen = c->sync_gen;
	a->acked_seq = row->agent->acked_seq;
	if (!a->report_pending) /* else its batch's rows are not written yet */
		a->report_seq = row->agent->report_seq;
	if (a->status != row->agent->status || memcmp(a->key.pk, row->agent->key.pk, DRV_PK_LEN)) {
		a->status = row->agent->status;
		a->key = row->agent->key;
		if (a->status != AGENT_ACCEPTED && a->parked != NULL)
			unpark(a, NULL, 0);
		if (a->status != AGENT_ACCEPTED)
			set_connected(c, a, false, "changed in the database");
	}
	return DRV_OK;
}

static void drop_forgotten(void *arg, struct agent_rt *a)
{
	struct core *c = arg;

	if (a->sync_gen == c->sync_gen || a->status == AGENT_REJECTED)
		return;
	drv_warn("core", "agent removed from the database", "agent=%s", a->id);
	a->status = AGENT_REJECTED; /* until it says Hello again and enrolls anew */
	memset(&a->key, 0, sizeof(a->key));
	if (a->parked != NULL)
		unpark(a, NULL, 0);
	set_connected(c, a, false, "removed from the database");
}

static void sync_store(struct core *c)
{
	c->sync_gen++;
	c->idle_gen++; /* and what each agent has to take is read again */
	if (store_agent_foreach(c->cfg.store, sync_one, c) == DRV_OK)
		registry_foreach(c->reg, drop_forgotten, c);
}

static int load_one(void *arg, const struct store_agent_row *row);

/* sync_one, and an agent the registry does not know is loaded. */
static int sync_or_load(void *arg, const struct store_agent_row *row)
{
	struct core *c = arg;

	if (registry_get(c->reg, row->agent->id) == NULL) {
		int rc = load_one(c, row);

		if (rc != DRV_OK)
			return rc;
	}
	return sync_one(c, row);
}

int core_sync(struct core *c)
{
	int rc;

	gcommit_lock(&c->gc);
	c->sync_gen++;
	c->idle_gen++;
	rc = store_agent_foreach(c->cfg.store, sync_or_load, c);
	if (rc == DRV_OK)
		registry_foreach(c->reg, drop_forgotten, c);
	gcommit_unlock(&c->gc);
	return rc;
}

void core_tick(struct core *c)
{
	struct tick_ctx t = {c, drv_mono_ms()};

	if (!drv_ha_is_leader()) { /* a follower: the leader writes, we read */
		if (++c->ticks % SYNC_EVERY_TICKS == 0)
			core_sync(c);
		return;
	}
	gcommit_lock(&c->gc);
	if (++c->ticks % SYNC_EVERY_TICKS == 0) {
		expire_claims(c, drv_wall_ms()); /* a failure is logged; the next tick retries */
		sync_store(c);
	}
	registry_foreach(c->reg, tick_agent, &t);
	store_instr_expire(c->cfg.store, drv_wall_ms(), expired, c, NULL);
	store_instr_queued_agents(c->cfg.store, queued_for, c);
	gcommit_unlock(&c->gc);
}

struct pipe_ctx {
	struct core *c;
	uint32_t pipe;
};

static void pipe_agent(void *arg, struct agent_rt *a)
{
	struct pipe_ctx *p = arg;

	if (a->parked != NULL && a->parked_pipe == p->pipe)
		unpark(a, NULL, 0);
	if (a->connected && a->pipe == p->pipe)
		set_connected(p->c, a, false, "connection closed");
}

void core_pipe_closed(struct core *c, uint32_t pipe)
{
	struct pipe_ctx p = {c, pipe};

	gcommit_lock(&c->gc);
	registry_foreach(c->reg, pipe_agent, &p);
	gcommit_unlock(&c->gc);
}

static void release_one(void *arg, struct agent_rt *a)
{
	if (a->parked != NULL)
		idle_reply(arg, a);
}

/* The reports stored in the open batch are committed now: the deployment
 * engine hears of them before it stops, and their answers go to the link,
 * which drops them while it closes (the agents send them again and learn
 * they were saved). */
void core_release_waiters(struct core *c)
{
	gcommit_lock(&c->gc);
	registry_foreach(c->reg, release_one, c);
	gcommit_flush(&c->gc);
	gcommit_unlock(&c->gc);
	answers_settle(c); /* none is being sent by another thread either */
}

/* ---- operator and sequencer ---- */

/* Deliver to a once the open batch committed. */
static void after_commit_add(struct core *c, struct agent_rt *a)
{
	if (a->uncommitted)
		return;
	if (c->n_after == c->cap_after) {
		size_t cap = c->cap_after ? 2 * c->cap_after : 64;
		struct agent_rt **v = realloc(c->after, cap * sizeof(*v));

		if (v == NULL) {
			drv_error("core", "out of memory: instruction delivered with the next poll",
			          "agent=%s", a->id);
			return;
		}
		c->after = v;
		c->cap_after = cap;
	}
	a->uncommitted = true;
	c->after[c->n_after++] = a;
}

/* The batch committed (or failed: then what it queued is gone, and the
 * registry may be ahead of the store: read the store again). */
static void after_commit(void *arg, int rc)
{
	struct core *c = arg;
	size_t n = c->n_after;
	struct owed *owed = c->owed;

	c->owed = NULL; /* what the hooks below store goes into the next batch */
	c->owed_tail = &c->owed;
	if (rc != DRV_OK) {
		drv_storage_suspect();
		sync_store(c); /* forgets what known_idle knew: an ack may be undone */
	}
	c->n_after = 0; /* delivering queues nothing: the list stays as it is */
	for (size_t i = 0; i < n; i++)
		c->after[i]->uncommitted = false;
	deliver_parked(c, c->after, n);
	if (c->notify_after && c->cfg.events != NULL)
		drv_events_notify(c->cfg.events);
	c->notify_after = false;
	answer_owed(c, owed, rc);
}

/* After an instruction for in's agent was queued (rc DRV_OK) or refused:
 * deliver it after the batch's commit (batched) or now. */
static int queued_locked(struct core *c, const struct dispatch_instr *in, int rc, bool batched)
{
	struct agent_rt *a = in->agent_id != NULL ? registry_get(c->reg, in->agent_id) : NULL;

	if (a != NULL)
		forget_idle(a); /* may have something to take now */
	if (rc != DRV_OK)
		return rc;
	drv_linkstats_inc(DRV_STAT_INSTR_QUEUED);
	a = accepted(c, in->agent_id);
	if (a != NULL && batched)
		after_commit_add(c, a);
	else if (a != NULL)
		deliver_if_parked(c, a);
	return DRV_OK;
}

/* Queue in the open batch (one commit for a wave); delivered after it
 * commits. pre: signed outside the lock for the sequence number it guessed,
 * or NULL. */
static int queue_one_locked(struct core *c, const struct dispatch_instr *in,
                            struct dispatch_sealed *pre, uint64_t *seq_out)
{
	bool batched = gcommit_join(&c->gc) == DRV_OK;
	int rc = dispatch_enqueue_sealed(c->cfg.store, c->cfg.key, in, pre, drv_wall_ms(),
	                                 c->cfg.instr_ttl_ms, seq_out);

	return queued_locked(c, in, rc, batched);
}

/* queue_one_locked for n at once: one join of the batch per instruction, as
 * there, and the store's statements for the n together
 * (dispatch_enqueue_many). A join that cannot begin the batch leaves it to
 * the next one: if any did, the n are written in it, so all wait for its
 * commit (delivered before it, one could be taken back). */
static void queue_many_locked(struct core *c, const struct dispatch_instr *in,
                              struct dispatch_sealed *pre, size_t n, uint64_t *seqs, int *rcs)
{
	bool batched;
	int rc;

	for (size_t i = 0; i < n; i++)
		gcommit_join(&c->gc);
	batched = gcommit_is_open(&c->gc);
	rc = dispatch_enqueue_many(c->cfg.store, c->cfg.key, in, pre, n, drv_wall_ms(),
	                           c->cfg.instr_ttl_ms, seqs, rcs);
	for (size_t i = 0; i < n; i++) {
		if (rc != DRV_OK) {
			seqs[i] = 0;
			rcs[i] = rc;
		}
		rcs[i] = queued_locked(c, &in[i], rcs[i], batched);
	}
}

int core_queue_locked(struct core *c, const struct dispatch_instr *in, uint64_t *seq_out)
{
	return queue_one_locked(c, in, NULL, seq_out);
}

struct seq_rows {
	struct seq_row {
		char id[DRV_AGENT_ID_MAX + 1];
		uint64_t next_seq;
	} * v;
	size_t n, cap;
};

static void seq_row_add(void *arg, const char *agent_id, uint64_t next_seq)
{
	struct seq_rows *r = arg;

	if (r->n == r->cap)
		return; /* more rows than ids asked for: not possible */
	snprintf(r->v[r->n].id, sizeof(r->v[r->n].id), "%s", agent_id);
	r->v[r->n++].next_seq = next_seq;
}

/* The chunk's agents, as a JSON array (a value bound to one statement). */
static char *chunk_ids(const struct dispatch_instr *in, size_t n)
{
	json_t *ids = json_array();
	char *text = NULL;
	size_t k = 0;

	for (size_t i = 0; ids != NULL && i < n; i++)
		if (in[i].agent_id != NULL && drv_agent_id_valid(in[i].agent_id) &&
		    json_array_append_new(ids, json_string(in[i].agent_id)) == 0)
			k++;
	if (k > 0)
		text = json_dumps(ids, JSON_COMPACT);
	json_decref(ids);
	return text;
}

/* The sequence number each instruction will likely get (signed with it
 * outside the lock; 0 if unknown): one statement for the chunk under the
 * lock, matched to the instructions after it. */
static void guess_seqs(struct core *c, const struct dispatch_instr *in, size_t n, uint64_t *guess)
{
	struct seq_rows r = {calloc(n ? n : 1, sizeof(*r.v)), 0, n};
	char *ids = chunk_ids(in, n);

	for (size_t i = 0; i < n; i++)
		guess[i] = 0;
	if (r.v != NULL && ids != NULL) {
		gcommit_lock_turn(&c->gc);
		if (store_agent_next_seqs(c->cfg.store, ids, seq_row_add, &r) != DRV_OK)
			r.n = 0; /* all unknown: signed under the lock */
		gcommit_unlock(&c->gc);
	}
	for (size_t k = 0; k < r.n; k++)
		for (size_t i = 0; i < n; i++)
			if (in[i].agent_id != NULL && strcmp(in[i].agent_id, r.v[k].id) == 0)
				guess[i] = r.v[k].next_seq;
	free(r.v);
	free(ids);
}

/* Sign a chunk outside the core lock for the sequence numbers guessed. */
static void presign_chunk(struct core *c, const struct dispatch_instr *in, size_t n,
                          const uint64_t *guess, struct dispatch_sealed *pre)
{
	int64_t now = drv_wall_ms();

	for (size_t i = 0; i < n; i++)
		if (guess[i] > 0)
			dispatch_presign(c->cfg.key, &in[i], now, c->cfg.instr_ttl_ms, guess[i],
			                 &pre[i]);
}

/* Queue a signed chunk under the core lock; its commit (when the lock is
 * released with nobody waiting) delivers it. */
static void queue_signed(struct core *c, const struct dispatch_instr *in, size_t n, uint64_t *seqs,
                         int *rcs, struct dispatch_sealed *pre)
{
	gcommit_lock_turn(&c->gc);
	queue_many_locked(c, in, pre, n, seqs, rcs);
	gcommit_unlock_commit(&c->gc);
	for (size_t i = 0; i < n; i++)
		dispatch_sealed_clear(&pre[i]);
}

/* A wave of several chunks: a signer thread signs chunk j + 1 while the
 * caller queues, commits and delivers chunk j (one chunk ahead at most).
 * The caller guesses the sequence numbers of chunks 1.. while chunk 0 is
 * being signed, so a chunk's guess may be older than the previous chunk's
 * queueing: a wrong guess (an agent twice in the wave, or queued for
 * meanwhile) is signed again under the lock, as in queue_chunk. */
struct signer {
	struct core *c;
	const struct dispatch_instr *in;
	const uint64_t *guess;
	struct dispatch_sealed *pre;
	size_t n, chunk;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t guessed_n; /* instructions whose sequence numbers are guessed */
	size_t signed_n;  /* instructions signed (a chunk's end) */
	size_t taken_n;   /* where the chunk the caller queues now starts */
};

static void *signer_main(void *arg)
{
	struct signer *s = arg;

	for (size_t i = 0; i < s->n; i += s->chunk) {
		size_t k = s->n - i < s->chunk ? s->n - i : s->chunk;

		pthread_mutex_lock(&s->mu);
		while (s->guessed_n < i + k || i > s->taken_n + s->chunk) /* one chunk ahead */
			pthread_cond_wait(&s->cv, &s->mu);
		pthread_mutex_unlock(&s->mu);
		presign_chunk(s->c, s->in + i, k, s->guess + i, s->pre + i);
		pthread_mutex_lock(&s->mu);
		s->signed_n = i + k;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

static int queue_pipelined(struct core *c, const struct dispatch_instr *in, size_t n,
                           uint64_t *seqs, int *rcs)
{
	struct signer s = {.c = c, .in = in, .n = n, .chunk = QUEUE_CHUNK};
	uint64_t *guess = calloc(n, sizeof(*guess));
	pthread_t th;

	s.pre = calloc(n, sizeof(*s.pre));
	s.guess = guess;
	if (guess == NULL || s.pre == NULL) {
		free(guess);
		free(s.pre);
		return DRV_ENOMEM;
	}
	guess_seqs(c, in, s.chunk, guess);
	s.guessed_n = s.chunk;
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	if (pthread_create(&th, NULL, signer_main, &s) != 0) {
		pthread_cond_destroy(&s.cv);
		pthread_mutex_destroy(&s.mu);
		free(guess);
		free(s.pre);
		return DRV_ESYS;
	}
	for (size_t i = s.chunk; i < n; i += s.chunk) {
		size_t k = n - i < s.chunk ? n - i : s.chunk;

		guess_seqs(c, in + i, k, guess + i);
		pthread_mutex_lock(&s.mu);
		s.guessed_n = i + k;
		pthread_cond_broadcast(&s.cv);
		pthread_mutex_unlock(&s.mu);
	}
	for (size_t i = 0; i < n; i += s.chunk) {
		size_t k = n - i < s.chunk ? n - i : s.chunk;

		pthread_mutex_lock(&s.mu);
		while (s.signed_n < i + k)
			pthread_cond_wait(&s.cv, &s.mu);
		s.taken_n = i;
		pthread_cond_broadcast(&s.cv);
		pthread_mutex_unlock(&s.mu);
		queue_signed(c, in + i, k, seqs + i, rcs + i, s.pre + i);
	}
	pthread_join(th, NULL);
	pthread_cond_destroy(&s.cv);
	pthread_mutex_destroy(&s.mu);
	free(guess);
	free(s.pre);
	return DRV_OK;
}

/* One chunk of a wave: guessed, signed outside the lock, queued under it;
 * its commit (when the lock is released with nobody waiting) delivers it
 * while the next chunk is being signed. */
static void queue_chunk(struct core *c, const struct dispatch_instr *in, size_t n, uint64_t *seqs,
                        int *rcs, struct dispatch_sealed *pre, uint64_t *guess)
{
	guess_seqs(c, in, n, guess);
	presign_chunk(c, in, n, guess, pre);
	queue_signed(c, in, n, seqs, rcs, pre);
}

int core_queue_many(struct core *c, const struct dispatch_instr *in, size_t n, uint64_t *seqs,
                    int *rcs)
{
	size_t chunk = n < QUEUE_CHUNK ? n : QUEUE_CHUNK;
	struct dispatch_sealed *pre;
	uint64_t *guess;
	int rc;

	if (n > QUEUE_CHUNK) {
		rc = queue_pipelined(c, in, n, seqs, rcs);
		if (rc != DRV_ESYS)
			return rc;
		/* no thread: one chunk after the other */
	}
	pre = calloc(chunk ? chunk : 1, sizeof(*pre));
	guess = calloc(chunk ? chunk : 1, sizeof(*guess));
	if (pre == NULL || guess == NULL) {
		free(pre);
		free(guess);
		return DRV_ENOMEM;
	}
	for (size_t i = 0; i < n; i += chunk) {
		size_t k = n - i < chunk ? n - i : chunk;

		queue_chunk(c, in + i, k, seqs + i, rcs + i, pre, guess);
	}
	free(pre);
	free(guess);
	return DRV_OK;
}

int core_queue(struct core *c, const struct dispatch_instr *in, uint64_t *seq_out)
{
	uint64_t seq = 0;
	int rc, qrc = core_queue_many(c, in, 1, &seq, &rc);

	if (qrc != DRV_OK)
		return qrc;
	if (rc == DRV_OK || rc == DRV_EEXIST)
		*seq_out = seq;
	return rc;
}

static int set_status_locked(struct core *c, const char *id, enum agent_status st, const char *by)
{
	struct store_agent sa;
	struct agent_rt *a;
	int rc;

	rc = store_agent_get(c->cfg.store, id, &sa);
	if (rc != DRV_OK)
		return rc;
	if (sa.status == st)
		return DRV_OK;
	rc = store_agent_set_status(c->cfg.store, id, st, by, drv_wall_ms());
	if (rc != DRV_OK)
		return rc;
	a = registry_get(c->reg, id);
	if (a == NULL && (rc = registry_add(c->reg, id, &a)) != DRV_OK)
		return rc;
	a->status = st;
	a->key = sa.key;
	if (st != AGENT_ACCEPTED) {
		if (a->parked != NULL)
			unpark(a, NULL, 0);
		set_connected(c, a, false, "no longer accepted");
	} else {
		drv_linkstats_inc(DRV_STAT_AGENTS_ENROLLED);
	}
	drv_info("core", st == AGENT_ACCEPTED ? "agent accepted" : "agent status changed",
	         "agent=%s status=%s by=%s", id, store_agent_status_name(st), by);
	event(c, st == AGENT_ACCEPTED ? "agent_accepted" : "agent_rejected", id,
	      json_pack("{s:s}", "by", by));
	if (c->hooks.on_agent != NULL)
		c->hooks.on_agent(c->hooks.arg, id, store_agent_status_name(st));
	return DRV_OK;
}

int core_set_status(struct core *c, const char *id, enum agent_status st, const char *by)
{
	int rc;

	if (!drv_agent_id_valid(id))
		return DRV_ENOENT;
	gcommit_lock(&c->gc);
	rc = set_status_locked(c, id, st, by ? by : "");
	gcommit_unlock(&c->gc);
	return rc;
}

int core_relabel(struct core *c, const char *id, const char *by)
{
	char *labels = NULL, *proposed = NULL;
	int rc;

	if (!drv_agent_id_valid(id))
		return DRV_ENOENT;
	gcommit_lock(&c->gc);
	rc = store_agent_labels(c->cfg.store, id, &labels, &proposed);
	if (rc == DRV_OK && proposed == NULL)
		rc = DRV_ESTATE;
	if (rc == DRV_OK)
		rc = store_agent_apply_proposed(c->cfg.store, id);
	if (rc == DRV_OK) {
		drv_info("core", "agent labels changed", "agent=%s from=%s to=%s by=%s", id, labels,
		         proposed, by);
		event(c, "agent_relabeled", id,
		      json_pack("{s:o, s:o, s:s}", "from", json_loads(labels, 0, NULL), "to",
		                json_loads(proposed, 0, NULL), "by", by ? by : ""));
	}
	gcommit_unlock(&c->gc);
	free(labels);
	free(proposed);
	return rc;
}

int core_enroll_token_create(struct core *c, const struct store_token *t, char *token, size_t cap)
{
	int rc;

	gcommit_lock(&c->gc);
	rc = store_enroll_token_create(c->cfg.store, t, drv_wall_ms(), token, cap);
	gcommit_unlock(&c->gc);
	if (rc == DRV_OK)
		drv_info("core", "enrollment token created",
		         "name=%s expires_ms=%" PRId64 " max_uses=%" PRId64 " labels=%s", t->name,
		         t->expires_ms, t->max_uses, t->labels ? t->labels : "{}");
	return rc;
}

int core_enroll_token_revoke(struct core *c, const char *name)
{
	int rc;

	gcommit_lock(&c->gc);
	rc = store_enroll_token_revoke(c->cfg.store, name, drv_wall_ms());
	gcommit_unlock(&c->gc);
	if (rc == DRV_OK)
		drv_info("core", "enrollment token revoked", "name=%s", name);
	return rc;
}

int core_enroll_token_list(struct core *c, json_t **out)
{
	int rc;

	gcommit_lock(&c->gc);
	rc = store_enroll_token_list(c->cfg.store, drv_wall_ms(), out);
	gcommit_unlock(&c->gc);
	return rc;
}

static const char *state_of(const struct store_agent *sa, const struct agent_rt *a)
{
	if (sa->status == AGENT_PENDING)
		return "pending";
	if (sa->status == AGENT_REJECTED)
		return "rejected";
	return a != NULL && a->connected ? "connected" : "disconnected";
}

static json_t *parse_or(const char *text, json_t *fallback)
{
	json_t *j = json_loads(text, 0, NULL);

	if (j == NULL)
		return fallback;
	json_decref(fallback);
	return j;
}

static json_t *agent_json(struct core *c, const struct store_agent_row *row)
{
	const struct store_agent *sa = row->agent;
	struct agent_rt *a = registry_get(c->reg, sa->id);
	int64_t seen = a != NULL && a->last_seen_ms > sa->last_seen_ms ? a->last_seen_ms
	                                                               : sa->last_seen_ms;

	return json_pack(
	        "{s:s, s:s, s:s, s:b, s:I, s:I, s:s, s:o, s:o, s:o, s:s, s:s, s:I, s:I, s:o,"
	        " s:s}",
	        "id", sa->id, "status", store_agent_status_name(sa->status), "state",
	        state_of(sa, a), "connected", a != NULL && a->connected, "last_seen_ms",
	        (json_int_t)seen, "first_seen_ms", (json_int_t)sa->first_seen_ms, "key_id",
	        sa->key.id, "labels", parse_or(row->labels_json, json_object()), "facts",
	        parse_or(row->facts_json, json_object()), "releases",
	        parse_or(row->releases_json, json_array()), "agent_version", row->agent_version,
	        "enrolled_by", sa->enrolled_by, "next_seq", (json_int_t)sa->next_seq, "acked_seq",
	        (json_int_t)sa->acked_seq, "proposed_labels",
	        row->proposed_labels_json ? parse_or(row->proposed_labels_json, json_null())
	                                  : json_null(),
	        "peer", sa->peer);
}

struct list_ctx {
	struct core *c;
	json_t *arr;
	const char *only;
};

static int list_one(void *arg, const struct store_agent_row *row)
{
	struct list_ctx *l = arg;
	json_t *j;

	if (l->only != NULL && strcmp(l->only, row->agent->id) != 0)
		return DRV_OK;
	j = agent_json(l->c, row);
	if (j == NULL || json_array_append_new(l->arr, j) != 0)
		return DRV_ENOMEM;
	return DRV_OK;
}

static int list(struct core *c, const char *only, json_t **out)
{
	struct list_ctx l = {c, json_array(), only};
	int rc;

	if (l.arr == NULL)
		return DRV_ENOMEM;
	gcommit_lock(&c->gc);
	rc = store_agent_foreach(c->cfg.store, list_one, &l);
	gcommit_unlock(&c->gc);
	if (rc != DRV_OK) {
		json_decref(l.arr);
		return rc;
	}
	*out = l.arr;
	return DRV_OK;
}

int core_agents_json(struct core *c, json_t **out)
{
	return list(c, NULL, out);
}

int core_agent_json(struct core *c, const char *id, json_t **out)
{
	json_t *arr, *one;
	int rc = list(c, id, &arr);

	if (rc != DRV_OK)
		return rc;
	one = json_array_get(arr, 0);
	if (one == NULL) {
		json_decref(arr);
		return DRV_ENOENT;
	}
	json_incref(one);
	json_decref(arr);
	*out = one;
	return DRV_OK;
}

/* A stored JSON text, or an empty object (array) when unreadable. */
static json_t *parse_brief(const char *text, bool array)
{
	json_t *j = json_loads(text, 0, NULL);

	if (j == NULL)
		j = array ? json_array() : json_object();
	return j;
}

static int brief_one(void *arg, const struct store_agent_brief *b)
{
	json_t *j =
	        json_pack("{s:s, s:s, s:o, s:o, s:s}", "id", b->id, "status", b->status, "labels",
	                  parse_brief(b->labels_json, false), "releases",
	                  parse_brief(b->releases_json, true), "agent_version", b->agent_version);

	if (j == NULL || json_array_append_new(arg, j) != 0)
		return DRV_ENOMEM;
	return DRV_OK;
}

int core_agents_brief_json(struct core *c, json_t **out)
{
	json_t *arr = json_array();
	int rc;

	if (arr == NULL)
		return DRV_ENOMEM;
	gcommit_lock(&c->gc);
	rc = store_agent_brief_foreach(c->cfg.store, brief_one, arr);
	gcommit_unlock(&c->gc);
	if (rc != DRV_OK) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return DRV_OK;
}

static void count_one(void *arg, struct agent_rt *a)
{
	struct core_counts *n = arg;

	if (a->status == AGENT_PENDING)
		n->pending++;
	else if (a->status == AGENT_REJECTED)
		n->rejected++;
	else if (a->connected)
		n->connected++;
	else
		n->disconnected++;
}

void core_agent_counts(struct core *c, struct core_counts *out)
{
	struct core_counts n = {0};

	gcommit_lock(&c->gc);
	registry_foreach(c->reg, count_one, &n);
	gcommit_unlock(&c->gc);
	*out = n;
}

/* ---- lifecycle ---- */

static int load_one(void *arg, const struct store_agent_row *row)
{
	struct core *c = arg;
	struct agent_rt *a;
	int rc = registry_add(c->reg, row->agent->id, &a);

	if (rc != DRV_OK)
		return rc;
	a->status = row->agent->status;
	a->key = row->agent->key;
	a->last_seen_ms = a->last_saved_ms = row->agent->last_seen_ms;
	a->acked_seq = row->agent->acked_seq;
	a->report_seq = row->agent->report_seq;
	return DRV_OK;
}

int core_new(const struct core_config *cfg, struct core **out)
{
	struct core *c = calloc(1, sizeof(*c));
	int rc;

	if (c == NULL)
		return DRV_ENOMEM;
	c->cfg = *cfg;
	c->owed_tail = &c->owed;
	c->sealq_tail = &c->sealq;
	c->idle_gen = 1; /* agent_rt.idle_gen 0: not known idle */
	pthread_mutex_init(&c->ans_mu, NULL);
	pthread_cond_init(&c->ans_cv, NULL);
	if (gcommit_init(&c->gc, cfg->store, after_commit, c) != DRV_OK) {
		pthread_cond_destroy(&c->ans_cv);
		pthread_mutex_destroy(&c->ans_mu);
		free(c);
		return DRV_ESYS;
	}
	c->gc.after_unlock = answer_pending; /* before any commit: nothing joined yet */
	c->gc.before = reports_flush;
	if (cfg->batch_linger_us > 0)
		c->gc.linger_us = cfg->batch_linger_us;
	if (cfg->batch_max_ms > 0)
		c->gc.max_ms = cfg->batch_max_ms;
	pthread_mutex_init(&c->rl_mu, NULL);
	randombytes_buf(c->nonce_key, sizeof(c->nonce_key));
	if (c->cfg.pending_expiry_ms <= 0)
		c->cfg.pending_expiry_ms = 24 * 3600 * 1000LL;
	if (c->cfg.max_pending_per_peer == 0) /* unset: only the overall cap */
		c->cfg.max_pending_per_peer = c->cfg.max_pending;
	rc = registry_new(&c->reg);
	if (rc == DRV_OK)
		rc = link_logs_new(&c->logs);
	if (rc == DRV_OK)
		rc = store_agent_foreach(cfg->store, load_one, c);
	if (rc != DRV_OK) {
		core_free(c);
		return rc;
	}
	drv_info("core", "agents loaded", "count=%zu", registry_count(c->reg));
	*out = c;
	return DRV_OK;
}

void core_free(struct core *c)
{
	if (c == NULL)
		return;
	gcommit_destroy(&c->gc); /* first: a last commit's hook may use the rest */
	answers_settle(c);
	registry_free(c->reg);
	link_logs_free(c->logs);
	free(c->after);
	free(c->rep_agents);
	pthread_mutex_destroy(&c->rl_mu);
	pthread_cond_destroy(&c->ans_cv);
	pthread_mutex_destroy(&c->ans_mu);
	free(c);
}

static int queue_log_request(void *arg, const struct dispatch_instr *in, uint64_t *seq)
{
	return core_queue(arg, in, seq);
}

int core_read_log(struct core *c, const char *agent, const Drover__LogRequest *rq,
                  int64_t timeout_ms, json_t **out, char *why, size_t why_cap)
{
	return link_logs_read(c->logs, queue_log_request, c, agent, rq, timeout_ms, out, why,
	                      why_cap);
}

void core_read_logs(struct core *c, struct link_logs_answer *answers, size_t n,
                    const Drover__LogRequest *rq, int64_t timeout_ms)
{
	link_logs_read_many(c->logs, queue_log_request, c, answers, n, rq, timeout_ms);
}

void core_batch_counts(struct core *c, uint64_t *commits, uint64_t *owed)
{
	gcommit_lock(&c->gc);
	*commits = c->gc.commits;
	*owed = c->gc.total_owed;
	gcommit_unlock(&c->gc);
}

void core_set_hooks(struct core *c, const struct core_hooks *h)
{
	gcommit_lock(&c->gc);
	c->hooks = *h;
	gcommit_unlock(&c->gc);
}
