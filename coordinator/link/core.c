/* core.c: the coordinator core: replies, liveness, answers owed after a commit,
 * the dispatch of the link's messages, the tick and the life cycle. */
#include "core.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <nng/nng.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "core_int.h"
#include "err.h"
#include "ha.h"
#include "linkstats.h"
#include "log.h"
#include "logs.h"

/* ---- replies ---- */

void core_seal_reply(struct core *c, Drover__BodyType type, const ProtobufCMessage *body,
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
bool core_refused_event_allowed(struct core *c, const char *id, unsigned *dropped)
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
void core_bind_to(const struct core_reply *out, char **agent_id, ProtobufCBinaryData *hash)
{
	*agent_id = (char *)out->req_agent;
	hash->data = (uint8_t *)out->req_hash;
	hash->len = sizeof(out->req_hash);
}

/* Count, log and answer a refused message. */
void core_reject(struct core *c, struct core_reply *out, int err, uint64_t seq, const char *sender,
                 const char *detail)
{
	Drover__Reject rj = DROVER__REJECT__INIT;
	char id[DRV_AGENT_ID_MAX + 1];

	rj.reason = drv_reject_reason(err);
	rj.detail = (char *)detail;
	rj.seq = seq;
	core_bind_to(out, &rj.agent_id, &rj.request_hash);
	drv_linkstats_reject(rj.reason);
	if (keyed_allow(c, "peer", out->peer, NULL) && reject_log_allowed(c)) {
		safe_id(sender, id);
		drv_warn("core", "message rejected", "reason=%s sender=%s detail=\"%s\"",
		         drv_reject_name(rj.reason), id[0] ? id : "-", detail);
	}
	core_seal_reply(c, DROVER__BODY_TYPE__BODY_REJECT, &rj.base, out);
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
	core_bind_to(out, &rj.agent_id, &rj.request_hash);
	drv_linkstats_reject(rj.reason);
	core_seal_reply(c, DROVER__BODY_TYPE__BODY_REJECT, &rj.base, out);
}

/* ---- liveness and events ---- */

/* Wake the API's event streams: at once, or after the open batch commits
 * (they read with their own connection: nothing is there before). */
void core_notify_events(struct core *c)
{
	if (gcommit_is_open(&c->gc))
		c->notify_after = true;
	else if (c->cfg.events != NULL)
		drv_events_notify(c->cfg.events);
}

/* Record an core_event (steals data) and wake the API's event streams. */
void core_event(struct core *c, const char *kind, const char *agent_id, json_t *data)
{
	if (drv_events_insert(store_db(c->cfg.store), kind, "", agent_id, data, NULL) == DRV_OK)
		core_notify_events(c);
	json_decref(data);
}

void core_set_connected(struct core *c, struct agent_rt *a, bool up, const char *why)
{
	if (a->connected == up)
		return;
	a->connected = up;
	if (up)
		drv_info("core", "agent connected", "agent=%s pipe=%" PRIu32, a->id, a->pipe);
	else
		drv_warn("core", "agent disconnected", "agent=%s why=\"%s\" last_seen_ms=%" PRId64,
		         a->id, why, a->last_seen_ms);
	core_event(c, up ? "agent_connected" : "agent_disconnected", a->id,
	           json_pack("{s:s}", "why", why));
	if (c->hooks.on_agent != NULL)
		c->hooks.on_agent(c->hooks.arg, a->id, up ? "connected" : "disconnected");
}

/* A verified message from an agent on pipe. */
void core_mark_seen(struct core *c, struct agent_rt *a, uint32_t pipe)
{
	int64_t now = drv_wall_ms();

	if (a->connected && a->pipe != pipe)
		drv_info("core", "agent moved to a new connection", "agent=%s pipe=%" PRIu32, a->id,
		         pipe);
	a->pipe = pipe;
	a->last_seen_ms = now;
	a->last_seen_mono = drv_mono_ms();
	if (a->status == AGENT_ACCEPTED)
		core_set_connected(c, a, true, "");
	if (now - a->last_saved_ms >= TOUCH_EVERY_MS && gcommit_join(&c->gc) == DRV_OK &&
	    store_agent_touch(c->cfg.store, a->id, now) == DRV_OK)
		a->last_saved_ms = now;
}

/* ---- answers owed after a commit ---- */

struct owed *core_owed_new(struct core_waiter *w, const struct core_reply *out, uint32_t pipe,
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

void core_owed_free(struct owed *o)
{
	if (o == NULL)
		return;
	if (o->body != NULL)
		drv_msg_free(o->body);
	free(o->event_row);
	free(o);
}

/* Lock held, the request's writes in the open batch: answered after its
 * commit (core_answer_owed). */
void core_owe(struct core *c, struct owed *o)
{
	*c->owed_tail = o;
	c->owed_tail = &o->next;
	gcommit_owe(&c->gc);
}

/* Core lock, from core_after_commit: the batch that stored these requests
 * committed with rc. Their answers are signed and sent once the lock is
 * released (answer_pending): signing under it made every other request
 * wait for each Ack's signature in turn. */
void core_answer_owed(struct core *c, struct owed *list, int rc)
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
		core_owed_free(o);
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

/* ---- authenticated messages (Poll, Report) ---- */

/* Verify an envelope from an accepted agent and decode its body. */
int core_open_from_agent(struct core *c, const Drover__Envelope *env, Drover__BodyType type,
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
struct agent_rt *core_accepted(struct core *c, const char *id)
{
	struct agent_rt *a = registry_get(c->reg, id);

	return a != NULL && a->status == AGENT_ACCEPTED ? a : NULL;
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
		core_reject(c, out, rc, 0, NULL, rc == DRV_ETOOBIG ? "over 1 MiB" : "envelope");
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
	case DROVER__BODY_TYPE__BODY_HELLO: core_handle_hello(c, env, len, pipe, w, out); break;
	case DROVER__BODY_TYPE__BODY_POLL: core_handle_poll(c, env, pipe, w, out); break;
	case DROVER__BODY_TYPE__BODY_REPORT: core_handle_report(c, env, pipe, w, out); break;
	default: core_reject(c, out, DRV_EDECODE, 0, env->sender, "not a request type"); break;
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
	core_bind_to(&r, &idle.agent_id, &idle.request_hash);
	core_seal_reply(c, DROVER__BODY_TYPE__BODY_IDLE, &idle.base, &r);
	core_unpark(a, r.env, r.len);
}

static void tick_agent(void *arg, struct agent_rt *a)
{
	struct tick_ctx *t = arg;

	if (a->parked != NULL && t->mono >= a->parked_until_mono)
		idle_reply(t->c, a);
	if (a->connected && t->mono - a->last_seen_mono > t->c->cfg.liveness_ms)
		core_set_connected(t->c, a, false, "silent for longer than the liveness timeout");
}

static void expired(void *arg, const char *agent_id, uint64_t seq, const char *step_id)
{
	struct core *c = arg;

	drv_warn("core", "instruction expired unacknowledged", "agent=%s seq=%" PRIu64 " step=%s",
	         agent_id, seq, step_id);
	drv_linkstats_inc(DRV_STAT_INSTR_EXPIRED);
	core_event(c, "instruction_expired", agent_id,
	           json_pack("{s:I, s:s}", "seq", (json_int_t)seq, "step_id", step_id));
	if (c->hooks.on_expired != NULL)
		c->hooks.on_expired(c->hooks.arg, agent_id, seq, step_id);
}

static void queued_for(void *arg, const char *agent_id)
{
	struct core *c = arg;
	struct agent_rt *a = core_accepted(c, agent_id);

	if (a == NULL)
		return;
	core_forget_idle(a); /* queued by an offline tool */
	core_deliver_if_parked(c, a);
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
			core_unpark(a, NULL, 0);
		if (a->status != AGENT_ACCEPTED)
			core_set_connected(c, a, false, "changed in the database");
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
		core_unpark(a, NULL, 0);
	core_set_connected(c, a, false, "removed from the database");
}

void core_sync_store(struct core *c)
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
		core_expire_claims(c,
		                   drv_wall_ms()); /* a failure is logged; the next tick retries */
		core_sync_store(c);
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
		core_unpark(a, NULL, 0);
	if (a->connected && a->pipe == p->pipe)
		core_set_connected(p->c, a, false, "connection closed");
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
	if (gcommit_init(&c->gc, cfg->store, core_after_commit, c) != DRV_OK) {
		pthread_cond_destroy(&c->ans_cv);
		pthread_mutex_destroy(&c->ans_mu);
		free(c);
		return DRV_ESYS;
	}
	c->gc.after_unlock = answer_pending; /* before any commit: nothing joined yet */
	c->gc.before = core_reports_flush;
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
