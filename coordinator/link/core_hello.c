/* core_hello.c: the Hello message: enrollment, claims, keys, the Welcome. */
#include "core.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "clock.h"
#include "core_int.h"
#include "err.h"
#include "hello.h"
#include "linkstats.h"
#include "log.h"

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

	if (!core_refused_event_allowed(c, id, &dropped)) {
		json_decref(data);
		return;
	}
	drv_warn("core", log_msg, "agent=%s why=\"%s\" held_back=%u", id, why, dropped);
	if (data != NULL)
		json_object_set_new(data, "held_back", json_integer(dropped));
	core_event(c, kind, id, data);
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
	core_event(c, a->status == AGENT_ACCEPTED ? "agent_accepted" : "agent_pending", a->id,
	           json_pack("{s:s, s:s, s:s, s:o}", "key_id", a->key.id, "by", by, "peer",
	                     in->peer, "labels", json_loads(in->json->labels, 0, NULL)));
	if (a->status == AGENT_ACCEPTED)
		drv_linkstats_inc(DRV_STAT_AGENTS_ENROLLED);
	return DRV_OK;
}

/* The one place an expired claim is logged and evented: the store calls
 * it for each claim it deletes, from the tick and from key_conflict. */
static void pending_expired_cb(void *arg, const char *agent_id, const char *key_id)
{
	drv_info("core", "pending claim expired", "agent=%s key=%s", agent_id, key_id);
	core_event(arg, "agent_pending_expired", agent_id, json_pack("{s:s}", "key_id", key_id));
}

/* Delete the pending claims first seen more than pending_expiry before
 * now_ms (the oldest 256); the same cut as pending_expired. */
int core_expire_claims(struct core *c, int64_t now_ms)
{
	return store_agent_expire_pending(c->cfg.store, now_ms - c->cfg.pending_expiry_ms,
	                                  pending_expired_cb, c);
}

static bool pending_expired(const struct core *c, const struct store_agent *a, int64_t now_ms)
{
	return a->status == AGENT_PENDING && now_ms - a->first_seen_ms > c->cfg.pending_expiry_ms;
}

/* A valid token replaces a claim that was never core_accepted (a squatter's, or
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
	core_event(c, "agent_claim_replaced", a->id,
	           json_pack("{s:s, s:s, s:s, s:s}", "old_key", old.id, "new_key", a->key.id, "by",
	                     by, "peer", in->peer));
	core_event(c, "agent_accepted", a->id, json_pack("{s:s}", "by", by));
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
			if (core_expire_claims(c, now_ms) != DRV_OK)
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
		core_event(c, "agent_accepted", a->id, json_pack("{s:s}", "by", by));
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
	core_mark_seen(c, rt, in->pipe);
	if (a.status == AGENT_ACCEPTED)
		core_ack_upto(c, rt, in->h->applied_seq, true);
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
		core_owe(c, o);
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
	core_bind_to(out, &w.agent_id, &w.request_hash);
	core_seal_reply(c, DROVER__BODY_TYPE__BODY_WELCOME, &w.base, out);
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
	core_reject(c, out,
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
void core_handle_hello(struct core *c, const Drover__Envelope *env, size_t len, uint32_t pipe,
                       struct core_waiter *w, struct core_reply *out)
{
	struct owed *o = core_owed_new(w, out, pipe, NULL, hello_done);
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
		core_reject(c, out, rc, 0, env->sender, why[0] ? why : "hello");
		core_owed_free(o);
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
	core_owed_free(o);
}
