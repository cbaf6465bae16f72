/*
 * test_core.c: the coordinator core without sockets: envelopes made by the
 * test go to core_handle(), a fake waiter stands in for the link's parked
 * REP context, and the store is a real SQLite file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "sqldb.h"
#include <unistd.h>

#include "clock.h"
#include "core.h"
#include "ha.h"
#include "envelope.h"
#include "err.h"
#include "secret.h"
#include "store.h"

/* A report's answer comes from the commit's after-hook, on the group
 * commit's committer thread: the counters are atomic, and written last. */
struct fake_waiter {
	struct core_waiter w; /* first */
	atomic_int delivered, dropped;
	bool keep; /* keep the answer (kept, kept_len) for send_env */
	uint8_t *kept;
	size_t kept_len;
	Drover__BodyType last_type;
	Drover__RejectReason last_reason;
	uint64_t last_seq, last_epoch;
};

static uint64_t reply_epoch; /* the epoch of the last reply send_env read */

/* A second connection: an instruction is sent only once it is committed
 * (group commit: never one a crash could take back). */
static struct drv_sql *check_db;

/* One row matches sql (two parameters: an agent id and a number). */
static bool one_committed(const char *sql, const char *agent, uint64_t n)
{
	struct drv_sql_stmt *st;
	bool yes = false;

	if (drv_sql_prepare(check_db, sql, &st) != DRV_OK)
		return false;
	drv_sql_bind_text(st, 1, agent);
	drv_sql_bind_int64(st, 2, (int64_t)n);
	yes = drv_sql_step(st) == DRV_SQL_ROW && drv_sql_col_int64(st, 0) == 1;
	drv_sql_finalize(st);
	return yes;
}

static bool committed_instr(const char *agent, uint64_t seq)
{
	return one_committed("SELECT count(*) FROM instructions WHERE agent_id = ? AND seq = ?",
	                     agent, seq);
}

/* ... and a report is acknowledged only once its event row is committed. */
static bool committed_report(const char *agent, uint64_t report_seq)
{
	return one_committed("SELECT count(*) FROM events WHERE kind = 'report' AND agent_id = ?"
	                     " AND json_extract(data, '$.report_seq') = ?",
	                     agent, report_seq);
}

static void read_answer(struct fake_waiter *f, const Drover__Envelope *e)
{
	if (e->type == DROVER__BODY_TYPE__BODY_INSTRUCTION) {
		Drover__Instruction *ins =
		        drover__instruction__unpack(NULL, e->body.len, e->body.data);
		f->last_seq = ins ? ins->seq : 0;
		if (ins != NULL && check_db != NULL)
			assert_true(committed_instr(ins->target_agent, ins->seq));
		drover__instruction__free_unpacked(ins, NULL);
	} else if (e->type == DROVER__BODY_TYPE__BODY_ACK) {
		Drover__Ack *ack = drover__ack__unpack(NULL, e->body.len, e->body.data);
		f->last_seq = ack ? ack->seq : 0;
		if (ack != NULL && check_db != NULL)
			assert_true(committed_report(ack->agent_id, ack->seq));
		drover__ack__free_unpacked(ack, NULL);
	} else if (e->type == DROVER__BODY_TYPE__BODY_REJECT) {
		Drover__Reject *rj = drover__reject__unpack(NULL, e->body.len, e->body.data);
		f->last_reason = rj ? rj->reason : 0;
		drover__reject__free_unpacked(rj, NULL);
	}
}

static void fake_deliver(struct core_waiter *w, uint8_t *env, size_t len)
{
	struct fake_waiter *f = (struct fake_waiter *)w;
	Drover__Envelope *e;

	if (env == NULL) {
		f->dropped++;
		return;
	}
	e = drover__envelope__unpack(NULL, len, env);
	f->last_type = e ? e->type : 0;
	f->last_epoch = e ? e->epoch : 0;
	if (e != NULL)
		read_answer(f, e);
	drover__envelope__free_unpacked(e, NULL);
	if (f->keep) {
		f->kept = env;
		f->kept_len = len;
	} else {
		free(env);
	}
	f->delivered++;
}

/* Bounded wait for n answers (a report's comes when its batch commits). */
static void wait_answers(struct fake_waiter *f, int n)
{
	for (int i = 0; i < 20000 && f->delivered + f->dropped < n; i++)
		usleep(1000);
	assert_int_equal(f->delivered + f->dropped, n);
}

struct fixture {
	char dir[64], db[128];
	struct drv_keypair coord;
	struct store *store;
	struct core *core;
	char token[DRV_SECRET_MAX];
};

static struct core_config test_config(void)
{
	return (struct core_config){.poll_timeout_ms = 100000,
	                            .liveness_ms = 200000,
	                            .pending_retry_ms = 1000,
	                            .instr_ttl_ms = 60000,
	                            .skew_ms = 30000,
	                            .max_agents = 100,
	                            .max_pending = 2};
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct core_config cc = test_config();
	uint8_t h[DRV_SECRET_HASH_LEN];

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/drv-core-XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->db, sizeof(fx->db), "%s/d.db", fx->dir);
	if (drv_keypair_generate(&fx->coord) != DRV_OK || store_open(fx->db, &fx->store) != DRV_OK)
		return -1;
	drv_secret_new("drvenr", fx->token, sizeof(fx->token));
	drv_secret_hash(fx->token, h);
	store_enroll_token_add(fx->store, &(struct store_token){"t", 0, 0, NULL}, h, drv_wall_ms());
	cc.key = &fx->coord;
	cc.store = fx->store;
	if (core_new(&cc, &fx->core) != DRV_OK ||
	    drv_sql_open(fx->db, NULL, 0, &check_db) != DRV_OK)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[128];

	core_free(fx->core);
	drv_sql_close(check_db);
	check_db = NULL;
	store_close(fx->store);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
	free(fx);
	return system(cmd) == 0 ? 0 : -1;
}

/* The last Welcome: its nonce, whether it was a challenge, and whether the
 * reply named the request and agent it answers. */
static uint8_t last_nonce[64];
static size_t last_nonce_len;
static bool last_challenge, last_bound;
static uint32_t test_pipe = 7;

static bool bound(const char *agent, ProtobufCBinaryData h, const char *want_agent,
                  const uint8_t want[32])
{
	return h.len == 32 && memcmp(h.data, want, 32) == 0 && agent != NULL &&
	       strcmp(agent, want_agent) == 0;
}

static void read_welcome(const Drover__Envelope *e, const char *sender, const uint8_t hash[32])
{
	Drover__Welcome *w = drover__welcome__unpack(NULL, e->body.len, e->body.data);

	assert_non_null(w);
	last_challenge = w->challenge;
	last_nonce_len = w->nonce.len <= sizeof(last_nonce) ? w->nonce.len : 0;
	memcpy(last_nonce, w->nonce.data, last_nonce_len);
	last_bound = bound(w->agent_id, w->request_hash, sender, hash);
	drover__welcome__free_unpacked(w, NULL);
}

/* Send a request; returns the reply's type, and its reject reason. A Hello
 * or a report without a waiter of the test's waits for its answer, which
 * comes once its batch committed. */
static Drover__BodyType send_env(struct fixture *fx, uint8_t *env, size_t len,
                                 struct fake_waiter *w, Drover__RejectReason *reason, bool *parked)
{
	struct fake_waiter own = {.w.deliver = fake_deliver, .keep = true};
	struct core_reply r;
	Drover__Envelope *e, *req;
	Drover__BodyType type = 0, req_type = 0;
	uint8_t hash[32];
	char sender[80];

	crypto_generichash(hash, sizeof(hash), env, len, NULL, 0);
	sender[0] = '\0';
	if (drv_env_parse(env, len, DRV_ENV_MAX, &req) == DRV_OK) { /* not garbage */
		snprintf(sender, sizeof(sender), "%s", req->sender ? req->sender : "");
		req_type = req->type;
		drv_env_free(req);
	}
	if (w == NULL && req_type != DROVER__BODY_TYPE__BODY_POLL)
		w = &own;
	core_handle(fx->core, env, len, test_pipe, w ? &w->w : NULL, &r);
	free(env);
	if (parked)
		*parked = r.parked;
	if (r.parked && w == &own) {
		wait_answers(&own, 1);
		r.env = own.kept;
		r.len = own.kept_len;
	}
	if (r.env == NULL)
		return 0;
	assert_int_equal(drv_env_parse(r.env, r.len, DRV_ENV_MAX, &e), DRV_OK);
	{
		struct drv_pubkey pub;
		drv_pubkey_from_raw(fx->coord.pk, DRV_PK_LEN, &pub);
		assert_int_equal(drv_env_verify(e, &pub), DRV_OK); /* every answer is signed */
	}
	type = e->type;
	reply_epoch = e->epoch;
	if (type == DROVER__BODY_TYPE__BODY_REJECT) {
		Drover__Reject *rj = drover__reject__unpack(NULL, e->body.len, e->body.data);
		if (reason != NULL)
			*reason = rj->reason;
		last_bound = bound(rj->agent_id, rj->request_hash, sender, hash);
		drover__reject__free_unpacked(rj, NULL);
	}
	if (type == DROVER__BODY_TYPE__BODY_WELCOME)
		read_welcome(e, sender, hash);
	drv_env_free(e);
	free(r.env);
	return type;
}

static size_t web_releases(const char *const *vs, Drover__Release rel[4], Drover__Release *p[4],
                           char buf[4][32]);

/* What a Hello says it runs: the list vs ("version/slot" of "web",
 * NULL-terminated) numbered seq (Hello.releases_seq). */
struct hello_rel {
	uint64_t seq;
	const char *const *vs;
};

/* A Hello with labels ("k=v", NULL-terminated), the given nonce and, with
 * rel, releases. */
static uint8_t *hello_env_rel(const struct drv_keypair *kp, const char *id, const char *token,
                              const char *const *labels, const uint8_t *nonce, size_t nonce_len,
                              const struct hello_rel *rel, size_t *len)
{
	Drover__Hello h = DROVER__HELLO__INIT;
	Drover__KeyValue kv[8], *kvp[8];
	Drover__Release rl[4], *rp[4];
	char keys[8][32], vbuf[4][32];
	uint8_t *env;

	if (rel != NULL) {
		h.n_releases = web_releases(rel->vs, rl, rp, vbuf);
		h.releases = rp;
		h.releases_seq = rel->seq;
	}

	h.agent_id = (char *)id;
	h.public_key.data = (uint8_t *)kp->pk;
	h.public_key.len = DRV_PK_LEN;
	h.proto_major = DRV_PROTO_MAJOR;
	h.enroll_token = (char *)token;
	h.nonce.data = (uint8_t *)nonce;
	h.nonce.len = nonce_len;
	for (size_t i = 0; labels != NULL && labels[i] != NULL && i < 8; i++) {
		drover__key_value__init(&kv[i]);
		snprintf(keys[i], sizeof(keys[i]), "%.*s", (int)strcspn(labels[i], "="), labels[i]);
		kv[i].key = keys[i];
		kv[i].value = (char *)strchr(labels[i], '=') + 1;
		kvp[i] = &kv[i];
		h.n_labels = i + 1;
	}
	h.labels = kvp;
	assert_int_equal(
	        drv_env_seal(kp, id, DROVER__BODY_TYPE__BODY_HELLO, &h.base, true, &env, len),
	        DRV_OK);
	return env;
}

static uint8_t *hello_env(const struct drv_keypair *kp, const char *id, const char *token,
                          const char *const *labels, const uint8_t *nonce, size_t nonce_len,
                          size_t *len)
{
	return hello_env_rel(kp, id, token, labels, nonce, nonce_len, NULL, len);
}

/* The session start: a Hello without a nonce is only challenged, then the
 * Hello with the Welcome's nonce counts (with rel, its releases). */
static Drover__BodyType hello_full(struct fixture *fx, const struct drv_keypair *kp, const char *id,
                                   const char *token, const char *const *labels,
                                   const struct hello_rel *rel, Drover__RejectReason *reason)
{
	size_t len;
	uint8_t *env = hello_env(kp, id, token, labels, NULL, 0, &len);

	assert_int_equal(send_env(fx, env, len, NULL, reason, NULL),
	                 DROVER__BODY_TYPE__BODY_WELCOME);
	assert_true(last_challenge);
	assert_true(last_bound);
	env = hello_env_rel(kp, id, token, labels, last_nonce, last_nonce_len, rel, &len);
	return send_env(fx, env, len, NULL, reason, NULL);
}

static Drover__BodyType hello_labels(struct fixture *fx, const struct drv_keypair *kp,
                                     const char *id, const char *token, const char *const *labels,
                                     Drover__RejectReason *reason)
{
	return hello_full(fx, kp, id, token, labels, NULL, reason);
}

static Drover__BodyType hello(struct fixture *fx, const struct drv_keypair *kp, const char *id,
                              const char *token, Drover__RejectReason *reason)
{
	return hello_labels(fx, kp, id, token, NULL, reason);
}

static Drover__BodyType poll_req(struct fixture *fx, const struct drv_keypair *kp, const char *id,
                                 uint64_t applied, struct fake_waiter *w,
                                 Drover__RejectReason *reason, bool *parked)
{
	Drover__Poll p = DROVER__POLL__INIT;
	uint8_t *env;
	size_t len;

	p.agent_id = (char *)id;
	p.applied_seq = applied;
	p.sent_at_ms = drv_wall_ms();
	assert_int_equal(
	        drv_env_seal(kp, id, DROVER__BODY_TYPE__BODY_POLL, &p.base, false, &env, &len),
	        DRV_OK);
	return send_env(fx, env, len, w, reason, parked);
}

static uint8_t *report_env(const struct drv_keypair *kp, const char *id, uint64_t seq, size_t *len)
{
	Drover__Report r = DROVER__REPORT__INIT;
	uint8_t *env;

	r.agent_id = (char *)id;
	r.report_seq = seq;
	r.result = DROVER__STEP_RESULT__STEP_STATUS;
	assert_int_equal(
	        drv_env_seal(kp, id, DROVER__BODY_TYPE__BODY_REPORT, &r.base, false, &env, len),
	        DRV_OK);
	return env;
}

/* A report: answered at once if refused before it is stored, else once the
 * batch that stored it committed. */
static Drover__BodyType report_req(struct fixture *fx, const struct drv_keypair *kp, const char *id,
                                   uint64_t seq, Drover__RejectReason *reason)
{
	size_t len;
	uint8_t *env = report_env(kp, id, seq, &len);

	return send_env(fx, env, len, NULL, reason, NULL);
}

static int queue_hook(struct fixture *fx, const char *id, const char *step, uint64_t *seq)
{
	char *run[] = {"/bin/true"};
	Drover__Hook hook = DROVER__HOOK__INIT;
	struct dispatch_instr in = {.agent_id = id,
	                            .step_id = step,
	                            .action = DROVER__ACTION__ACTION_RUN_HOOK,
	                            .hook = &hook};

	hook.run = run;
	hook.n_run = 1;
	return core_queue(fx->core, &in, seq);
}

static const char *state_of(struct fixture *fx, const char *id)
{
	static char buf[32];
	json_t *j;

	if (core_agent_json(fx->core, id, &j) != DRV_OK)
		return "none";
	snprintf(buf, sizeof(buf), "%s", json_string_value(json_object_get(j, "state")));
	json_decref(j);
	return buf;
}

static void enrollment(void **state)
{
	struct fixture *fx = *state;
	struct drv_keypair a, b, thief;
	Drover__RejectReason why = 0;
	uint64_t seq;

	drv_keypair_generate(&a);
	drv_keypair_generate(&b);
	drv_keypair_generate(&thief);
	assert_int_equal(hello(fx, &a, "web-1", fx->token, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_string_equal(state_of(fx, "web-1"), "connected");
	assert_int_equal(hello(fx, &b, "web-2", "drvenr_wrong", &why),
	                 DROVER__BODY_TYPE__BODY_WELCOME);
	assert_string_equal(state_of(fx, "web-2"), "pending");
	/* nothing but Hello from a pending agent, and nothing for it */
	assert_int_equal(poll_req(fx, &b, "web-2", 0, NULL, &why, NULL),
	                 DROVER__BODY_TYPE__BODY_REJECT);
	assert_int_equal(why, DROVER__REJECT_REASON__REJECT_NOT_ACCEPTED);
	assert_int_equal(queue_hook(fx, "web-2", "s1", &seq), DRV_ESTATE);
	/* no takeover */
	assert_int_equal(hello(fx, &thief, "web-1", fx->token, &why),
	                 DROVER__BODY_TYPE__BODY_REJECT);
	assert_int_equal(why, DROVER__REJECT_REASON__REJECT_ID_TAKEN);
	assert_string_equal(state_of(fx, "web-1"), "connected");
	/* operator accepts */
	assert_int_equal(core_set_status(fx->core, "web-2", AGENT_ACCEPTED, "operator:t"), DRV_OK);
	assert_int_equal(poll_req(fx, &b, "web-2", 0, NULL, &why, NULL),
	                 0); /* parked (no waiter) */
	assert_int_equal(core_set_status(fx->core, "nope", AGENT_ACCEPTED, "x"), DRV_ENOENT);
	/* the pending cap (2): a third pending agent is refused */
	assert_int_equal(hello(fx, &thief, "p-1", NULL, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(hello(fx, &thief, "p-2", NULL, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(hello(fx, &thief, "p-3", NULL, &why), DROVER__BODY_TYPE__BODY_REJECT);
	assert_int_equal(why, DROVER__REJECT_REASON__REJECT_INTERNAL);
}

static long long count(struct fixture *fx, const char *sql)
{
	struct drv_sql_stmt *st;
	long long n = -1;

	assert_int_equal(drv_sql_prepare(store_db(fx->store), sql, &st), DRV_OK);
	if (drv_sql_step(st) == DRV_SQL_ROW)
		n = drv_sql_col_int64(st, 0);
	drv_sql_finalize(st);
	return n;
}

static const char *labels_of(struct fixture *fx, const char *id, const char *field)
{
	static char buf[256];
	json_t *j;
	char *t;

	if (core_agent_json(fx->core, id, &j) != DRV_OK)
		return "none";
	t = json_dumps(json_object_get(j, field), JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	snprintf(buf, sizeof(buf), "%s", t ? t : "?");
	free(t);
	json_decref(j);
	return buf;
}

/* A Hello without a fresh nonce records nothing; a captured Hello replayed
 * (same connection or another) is only challenged again. */
static void hello_freshness(void **state)
{
	struct fixture *fx = *state;
	const char *a_labels[] = {"tier=a", NULL}, *b_labels[] = {"tier=b", NULL};
	struct drv_keypair k, web;
	Drover__RejectReason why = 0;
	uint8_t *env, *copy;
	size_t len;

	drv_keypair_generate(&k);
	drv_keypair_generate(&web);
	env = hello_env(&k, "h-1", NULL, a_labels, NULL, 0, &len);
	assert_int_equal(send_env(fx, env, len, NULL, &why, NULL), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_true(last_challenge);
	assert_string_equal(state_of(fx, "h-1"), "none"); /* nothing recorded */
	assert_int_equal(count(fx, "SELECT count(*) FROM events"), 0);
	/* the proven Hello counts; keep its bytes */
	env = hello_env(&k, "h-1", NULL, a_labels, last_nonce, last_nonce_len, &len);
	copy = malloc(len);
	memcpy(copy, env, len);
	assert_int_equal(send_env(fx, env, len, NULL, &why, NULL), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_false(last_challenge);
	assert_true(last_bound);
	assert_string_equal(state_of(fx, "h-1"), "pending");
	assert_int_equal(hello_labels(fx, &k, "h-1", NULL, b_labels, &why),
	                 DROVER__BODY_TYPE__BODY_WELCOME);
	assert_string_equal(labels_of(fx, "h-1", "labels"), "{\"tier\":\"b\"}");
	/* the captured Hello replayed: challenged, labels stay */
	env = malloc(len);
	memcpy(env, copy, len);
	assert_int_equal(send_env(fx, env, len, NULL, &why, NULL), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_true(last_challenge);
	assert_string_equal(labels_of(fx, "h-1", "labels"), "{\"tier\":\"b\"}");
	/* a nonce is good on its own connection only */
	env = hello_env(&k, "h-1", NULL, a_labels, NULL, 0, &len);
	assert_int_equal(send_env(fx, env, len, NULL, &why, NULL), DROVER__BODY_TYPE__BODY_WELCOME);
	test_pipe = 9;
	env = hello_env(&k, "h-1", NULL, a_labels, last_nonce, last_nonce_len, &len);
	assert_int_equal(send_env(fx, env, len, NULL, &why, NULL), DROVER__BODY_TYPE__BODY_WELCOME);
	test_pipe = 7;
	assert_true(last_challenge);
	assert_string_equal(labels_of(fx, "h-1", "labels"), "{\"tier\":\"b\"}");
	free(copy);
	/* an accepted agent's captured Hello replayed on another connection does
	 * not move it there: closing that connection leaves it connected */
	assert_int_equal(hello(fx, &web, "web-9", fx->token, &why),
	                 DROVER__BODY_TYPE__BODY_WELCOME);
	env = hello_env(&web, "web-9", fx->token, NULL, last_nonce, last_nonce_len, &len);
	test_pipe = 11;
	assert_int_equal(send_env(fx, env, len, NULL, &why, NULL), DROVER__BODY_TYPE__BODY_WELCOME);
	test_pipe = 7;
	assert_true(last_challenge);
	core_pipe_closed(fx->core, 11);
	assert_string_equal(state_of(fx, "web-9"), "connected");
}

/* A pending claim does not hold an id against a valid token, and expires;
 * an accepted one does hold it. */
static void squatting(void **state)
{
	struct fixture *fx = *state;
	struct drv_keypair thief, real, other;
	Drover__RejectReason why = 0;

	drv_keypair_generate(&thief);
	drv_keypair_generate(&real);
	drv_keypair_generate(&other);
	assert_int_equal(hello(fx, &thief, "db-1", NULL, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_string_equal(state_of(fx, "db-1"), "pending");
	/* without a token the real host is refused, with one it takes the id */
	assert_int_equal(hello(fx, &real, "db-1", NULL, &why), DROVER__BODY_TYPE__BODY_REJECT);
	assert_int_equal(why, DROVER__REJECT_REASON__REJECT_ID_TAKEN);
	assert_true(last_bound);
	assert_int_equal(hello(fx, &real, "db-1", fx->token, &why),
	                 DROVER__BODY_TYPE__BODY_WELCOME);
	assert_string_equal(state_of(fx, "db-1"), "connected");
	assert_int_equal(
	        count(fx, "SELECT count(*) FROM events WHERE kind = 'agent_claim_replaced'"), 1);
	assert_int_equal(
	        count(fx, "SELECT count(*) FROM audit WHERE detail LIKE '%db-1%replaced%'"), 1);
	/* now accepted: the id is held, even against a token */
	assert_int_equal(hello(fx, &thief, "db-1", fx->token, &why),
	                 DROVER__BODY_TYPE__BODY_REJECT);
	assert_int_equal(why, DROVER__REJECT_REASON__REJECT_ID_TAKEN);
	/* key conflicts write at most RL_PER_WINDOW (3) events a minute per id */
	for (int i = 0; i < 20; i++)
		hello(fx, &thief, "db-1", NULL, &why);
	assert_int_equal(count(fx, "SELECT count(*) FROM events WHERE kind = 'agent_key_conflict'"),
	                 3);
	/* a pending claim older than pending_expiry (24 h) frees the id */
	assert_int_equal(hello(fx, &thief, "old-1", NULL, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	drv_sql_exec(
	        store_db(fx->store),
	        "UPDATE agents SET first_seen_ms = first_seen_ms - 90000000 WHERE id = 'old-1'");
	assert_int_equal(hello(fx, &other, "old-1", NULL, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(
	        count(fx, "SELECT count(*) FROM events WHERE kind = 'agent_pending_expired'"), 1);
	/* and the tick forgets expired claims by itself */
	drv_sql_exec(
	        store_db(fx->store),
	        "UPDATE agents SET first_seen_ms = first_seen_ms - 90000000 WHERE id = 'old-1'");
	for (int i = 0; i < 5; i++)
		core_tick(fx->core);
	assert_string_equal(state_of(fx, "old-1"), "none");
	/* two claims expired (the thief's by a Hello, the other's by the tick):
	 * one event each, both naming the key of the claim that went */
	assert_int_equal(
	        count(fx, "SELECT count(*) FROM events WHERE kind = 'agent_pending_expired'"), 2);
	assert_int_equal(count(fx, "SELECT count(DISTINCT json_extract(data, '$.key_id'))"
	                           " FROM events WHERE kind = 'agent_pending_expired'"),
	                 2);
}

/* Labels: a token's rules, and an accepted agent's labels change only by
 * an admin. */
static void labels_need_admin(void **state)
{
	struct fixture *fx = *state;
	const char *web[] = {"tier=web", NULL}, *db[] = {"tier=db", NULL};
	char tok[DRV_SECRET_MAX];
	uint8_t h[DRV_SECRET_HASH_LEN];
	struct drv_keypair k;
	Drover__RejectReason why = 0;

	drv_keypair_generate(&k);
	drv_secret_new("drvenr", tok, sizeof(tok));
	drv_secret_hash(tok, h);
	assert_int_equal(store_enroll_token_add(
	                         fx->store,
	                         &(struct store_token){"web-only", 0, 0, "{\"tier\":[\"web\"]}"}, h,
	                         drv_wall_ms()),
	                 DRV_OK);
	assert_int_equal(hello_labels(fx, &k, "w-1", tok, db, &why),
	                 DROVER__BODY_TYPE__BODY_WELCOME);
	assert_string_equal(state_of(fx, "w-1"), "pending");
	assert_int_equal(
	        count(fx, "SELECT count(*) FROM events WHERE kind = 'enroll_token_refused'"), 1);
	assert_int_equal(hello_labels(fx, &k, "w-1", tok, web, &why),
	                 DROVER__BODY_TYPE__BODY_WELCOME);
	assert_string_equal(state_of(fx, "w-1"), "connected");
	/* accepted as tier=web: saying tier=db changes nothing but a proposal */
	assert_int_equal(hello_labels(fx, &k, "w-1", tok, db, &why),
	                 DROVER__BODY_TYPE__BODY_WELCOME);
	assert_string_equal(labels_of(fx, "w-1", "labels"), "{\"tier\":\"web\"}");
	assert_string_equal(labels_of(fx, "w-1", "proposed_labels"), "{\"tier\":\"db\"}");
	assert_int_equal(
	        count(fx, "SELECT count(*) FROM events WHERE kind = 'agent_labels_refused'"), 1);
	assert_int_equal(hello_labels(fx, &k, "w-1", tok, db, &why),
	                 DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(
	        count(fx, "SELECT count(*) FROM events WHERE kind = 'agent_labels_refused'"),
	        1); /* the same proposal again: no new event */
	assert_int_equal(core_relabel(fx->core, "w-1", "operator:t"), DRV_OK);
	assert_string_equal(labels_of(fx, "w-1", "labels"), "{\"tier\":\"db\"}");
	assert_string_equal(labels_of(fx, "w-1", "proposed_labels"), "null");
	assert_int_equal(core_relabel(fx->core, "w-1", "operator:t"), DRV_ESTATE);
	assert_int_equal(core_relabel(fx->core, "nope", "operator:t"), DRV_ENOENT);
}

static void long_poll_delivery(void **state)
{
	struct fixture *fx = *state;
	struct fake_waiter w1 = {.w.deliver = fake_deliver}, w2 = {.w.deliver = fake_deliver};
	struct drv_keypair a;
	Drover__RejectReason why = 0;
	bool parked = false;
	uint64_t seq = 0;
	char st[16];

	drv_keypair_generate(&a);
	assert_int_equal(hello(fx, &a, "db-1", fx->token, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	/* nothing queued: the poll is parked */
	assert_int_equal(poll_req(fx, &a, "db-1", 0, &w1, &why, &parked), 0);
	assert_true(parked);
	/* queueing delivers to the parked poll at once */
	assert_int_equal(queue_hook(fx, "db-1", "s1", &seq), DRV_OK);
	assert_int_equal(seq, 1);
	assert_int_equal(w1.delivered, 1);
	assert_int_equal(w1.last_type, DROVER__BODY_TYPE__BODY_INSTRUCTION);
	assert_int_equal(w1.last_seq, 1);
	/* the same step again: idempotent */
	assert_int_equal(queue_hook(fx, "db-1", "s1", &seq), DRV_EEXIST);
	assert_int_equal(seq, 1);
	/* not acknowledged yet: resent with the next poll */
	assert_int_equal(poll_req(fx, &a, "db-1", 0, &w2, &why, &parked),
	                 DROVER__BODY_TYPE__BODY_INSTRUCTION);
	assert_false(parked);
	/* acknowledged by applied_seq: the next poll parks */
	assert_int_equal(poll_req(fx, &a, "db-1", 1, &w2, &why, &parked), 0);
	assert_true(parked);
	assert_int_equal(store_instr_state(fx->store, "db-1", 1, st), DRV_OK);
	assert_string_equal(st, "acked");
	/* a newer poll replaces the parked one, which is dropped */
	assert_int_equal(poll_req(fx, &a, "db-1", 1, &w1, &why, &parked), 0);
	assert_int_equal(w2.dropped, 1);
	/* its connection closes: released */
	core_pipe_closed(fx->core, 7);
	assert_int_equal(w1.dropped, 1);
	assert_string_equal(state_of(fx, "db-1"), "disconnected");
	/* a poll parked at shutdown gets Idle */
	assert_int_equal(poll_req(fx, &a, "db-1", 1, &w2, &why, &parked), 0);
	core_release_waiters(fx->core);
	assert_int_equal(w2.delivered, 1);
	assert_int_equal(w2.last_type, DROVER__BODY_TYPE__BODY_IDLE);
}

/* After a failover: an instruction the agent applied while the old leader's
 * 'sent' mark was lost (kill -9 before its batch committed) is still
 * 'queued'. The agent's first Poll writes its floor (nothing 'sent' to
 * acknowledge), the row goes out again and the agent answers from its
 * records; its next Poll repeats the same applied_seq and must acknowledge
 * the row, not get it again (it did, at every Poll, until it expired:
 * thousands of resends, and the agent's later instructions held back). */
static void resent_applied_acked(void **state)
{
	struct fixture *fx = *state;
	struct fake_waiter w = {.w.deliver = fake_deliver};
	struct drv_keypair a;
	Drover__RejectReason why = 0;
	bool parked = false;
	uint64_t seq = 0, seq2 = 0;
	char st[16];

	drv_keypair_generate(&a);
	assert_int_equal(hello(fx, &a, "db-1", fx->token, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(queue_hook(fx, "db-1", "s1", &seq), DRV_OK);
	assert_int_equal(store_instr_state(fx->store, "db-1", seq, st), DRV_OK);
	assert_string_equal(st, "queued");
	/* applied (by the agent, from the old leader): resent to be answered */
	assert_int_equal(poll_req(fx, &a, "db-1", seq, &w, &why, &parked),
	                 DROVER__BODY_TYPE__BODY_INSTRUCTION);
	assert_int_equal(queue_hook(fx, "db-1", "s2", &seq2), DRV_OK);
	/* the next Poll acknowledges it and gets the next instruction */
	assert_int_equal(poll_req(fx, &a, "db-1", seq, &w, &why, &parked),
	                 DROVER__BODY_TYPE__BODY_INSTRUCTION);
	assert_int_equal(store_instr_state(fx->store, "db-1", seq, st), DRV_OK);
	assert_string_equal(st, "acked");
	assert_int_equal(store_instr_state(fx->store, "db-1", seq2, st), DRV_OK);
	assert_string_equal(st, "sent");
	/* and that one is acknowledged the usual way */
	assert_int_equal(poll_req(fx, &a, "db-1", seq2, &w, &why, &parked), 0);
	assert_true(parked);
	assert_int_equal(store_instr_state(fx->store, "db-1", seq2, st), DRV_OK);
	assert_string_equal(st, "acked");
	core_release_waiters(fx->core);
}

/* known_idle: a row resent below the agent's floor (as above) is not
 * acknowledged by that floor, which the store had before the row went out.
 * If the next Poll does not acknowledge it (an agent whose state was
 * restored from an older backup, or the write of the acknowledgement
 * failed), the row is still deliverable in the store and goes out again:
 * the Poll must not park on "the only one taken is acknowledged". */
static void resent_below_floor_not_idle(void **state)
{
	struct fixture *fx = *state;
	struct fake_waiter w = {.w.deliver = fake_deliver};
	struct drv_keypair a;
	Drover__RejectReason why = 0;
	bool parked = false;
	uint64_t seq = 0;
	char st[16];

	drv_keypair_generate(&a);
	assert_int_equal(hello(fx, &a, "db-1", fx->token, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(queue_hook(fx, "db-1", "s1", &seq), DRV_OK);
	assert_int_equal(poll_req(fx, &a, "db-1", seq, &w, &why, &parked),
	                 DROVER__BODY_TYPE__BODY_INSTRUCTION);
	/* the agent went back to an older state: it has not applied seq */
	assert_int_equal(poll_req(fx, &a, "db-1", 0, &w, &why, &parked),
	                 DROVER__BODY_TYPE__BODY_INSTRUCTION);
	assert_false(parked);
	assert_int_equal(store_instr_state(fx->store, "db-1", seq, st), DRV_OK);
	assert_string_equal(st, "sent");
	/* applied now: acknowledged, and the next Poll parks */
	assert_int_equal(poll_req(fx, &a, "db-1", seq, &w, &why, &parked), 0);
	assert_true(parked);
	assert_int_equal(store_instr_state(fx->store, "db-1", seq, st), DRV_OK);
	assert_string_equal(st, "acked");
	core_release_waiters(fx->core);
}

/* HA: a leader seals with its epoch (signed), re-signs what an earlier
 * epoch queued, and a follower serves nobody and delivers nothing. */
static void ha_epochs_and_followers(void **state)
{
	struct fixture *fx = *state;
	struct fake_waiter w1 = {.w.deliver = fake_deliver}, w2 = {.w.deliver = fake_deliver};
	struct drv_keypair a;
	Drover__RejectReason why = 0;
	bool parked = false;
	uint64_t seq = 0;

	drv_keypair_generate(&a);
	assert_int_equal(hello(fx, &a, "db-1", fx->token, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(reply_epoch, 0); /* a single node: no epoch, the old envelope */
	drv_ha_set_grouped(true);
	drv_ha_set(true, 4, NULL);
	assert_int_equal(poll_req(fx, &a, "db-1", 0, &w1, &why, &parked), 0);
	assert_true(parked);
	assert_int_equal(queue_hook(fx, "db-1", "s1", &seq), DRV_OK);
	assert_int_equal(w1.delivered, 1);
	assert_int_equal(w1.last_epoch, 4);
	/* a new leader (epoch 5) re-sends s1, signed again under its epoch */
	drv_ha_set(true, 5, NULL);
	assert_int_equal(poll_req(fx, &a, "db-1", 0, &w2, &why, &parked),
	                 DROVER__BODY_TYPE__BODY_INSTRUCTION);
	assert_int_equal(reply_epoch, 5); /* and send_env verified its signature */
	/* acknowledged: the next poll parks; then the lease is lost */
	assert_int_equal(poll_req(fx, &a, "db-1", 1, &w1, &why, &parked), 0);
	assert_true(parked);
	drv_ha_set(false, 0, "https://10.0.0.2:7480");
	assert_int_equal(queue_hook(fx, "db-1", "s2", &seq), DRV_OK);
	assert_int_equal(w1.delivered, 1); /* nothing delivered by a follower */
	assert_int_equal(poll_req(fx, &a, "db-1", 1, &w2, &why, &parked),
	                 DROVER__BODY_TYPE__BODY_REJECT);
	assert_int_equal(why, DROVER__REJECT_REASON__REJECT_NOT_LEADER);
	assert_int_equal(reply_epoch, 0);
	core_release_waiters(fx->core); /* w1 lives on this stack */
	assert_int_equal(w1.delivered, 2);
	assert_int_equal(w1.last_type, DROVER__BODY_TYPE__BODY_IDLE);
	drv_ha_reset();
}

/* HA: a follower's tick writes nothing to the shared store (an overdue
 * instruction stays queued), and reads the agents again: a core made before
 * an agent enrolled at another node knows it once it leads. */
static void follower_tick_reads_only(void **state)
{
	struct fixture *fx = *state;
	struct core_config cc = {.key = &fx->coord,
	                         .store = fx->store,
	                         .poll_timeout_ms = 100000,
	                         .liveness_ms = 200000,
	                         .pending_retry_ms = 1000,
	                         .instr_ttl_ms = 60000,
	                         .skew_ms = 30000,
	                         .max_agents = 100,
	                         .max_pending = 2};
	struct fake_waiter w = {.w.deliver = fake_deliver};
	struct core *leader = fx->core, *other = NULL;
	struct drv_keypair a;
	Drover__RejectReason why = 0;
	bool parked = false;
	uint64_t seq = 0;
	char st[16];

	assert_int_equal(core_new(&cc, &other), DRV_OK); /* knows no agent yet */
	drv_keypair_generate(&a);
	assert_int_equal(hello(fx, &a, "late-1", fx->token, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(queue_hook(fx, "late-1", "s1", &seq), DRV_OK);
	assert_int_equal(drv_sql_exec(check_db, "UPDATE instructions SET expires_at_ms = 1"),
	                 DRV_OK);
	drv_ha_set_grouped(true);
	drv_ha_set(false, 0, "http://10.0.0.2:7480");
	for (int i = 0; i < 10; i++)
		core_tick(other);
	assert_int_equal(store_instr_state(fx->store, "late-1", seq, st), DRV_OK);
	assert_string_equal(st, "queued"); /* a leader's tick would have expired it */
	/* it leads: late-1 is known (accepted, its key), its poll parks */
	drv_ha_set(true, 2, NULL);
	fx->core = other;
	assert_int_equal(poll_req(fx, &a, "late-1", 0, &w, &why, &parked), 0);
	assert_true(parked);
	core_tick(other);
	assert_int_equal(store_instr_state(fx->store, "late-1", seq, st), DRV_OK);
	assert_string_equal(st, "expired");
	core_release_waiters(other); /* w lives on this stack */
	fx->core = leader;
	core_free(other);
	drv_ha_reset();
}

/* The stored instruction seq of agent id: its envelope verifies with the
 * coordinator's key and carries that very seq. */
static void check_stored(struct fixture *fx, const char *id, uint64_t want_seq)
{
	struct store_instr in;
	struct drv_pubkey pub;
	Drover__Envelope *e = NULL;
	Drover__Instruction *ins;

	assert_int_equal(store_instr_next(fx->store, id, drv_wall_ms(), &in), DRV_OK);
	assert_int_equal(in.seq, want_seq);
	assert_int_equal(drv_pubkey_from_raw(fx->coord.pk, DRV_PK_LEN, &pub), DRV_OK);
	assert_int_equal(drv_env_parse(in.env, in.env_len, DRV_ENV_MAX, &e), DRV_OK);
	assert_int_equal(drv_env_verify(e, &pub), DRV_OK);
	ins = drover__instruction__unpack(NULL, e->body.len, e->body.data);
	assert_non_null(ins);
	assert_int_equal(ins->seq, want_seq);
	drover__instruction__free_unpacked(ins, NULL);
	drv_env_free(e);
	store_instr_clear(&in);
}

/* A wave: signed outside the lock for the seq each will probably get; two
 * for one agent in one wave (the second's guess is wrong: signed again),
 * all in one commit, each delivered to its parked poll after it. */
/* in[i]: a hook (hook, running /bin/true) for agent[i]'s step[i]. */
static void hook_wave(struct dispatch_instr *in, Drover__Hook *hook, const char *const *agent,
                      const char *const *step, int n)
{
	static char *run[] = {"/bin/true"};

	*hook = (Drover__Hook)DROVER__HOOK__INIT;
	hook->run = run;
	hook->n_run = 1;
	for (int i = 0; i < n; i++)
		in[i] = (struct dispatch_instr){.agent_id = agent[i],
		                                .step_id = step[i],
		                                .action = DROVER__ACTION__ACTION_RUN_HOOK,
		                                .hook = hook};
}

/* Agent id, enrolled, its poll parked in w. */
static void parked_agent(struct fixture *fx, struct drv_keypair *kp, const char *id,
                         struct fake_waiter *w)
{
	Drover__RejectReason why = 0;
	bool parked = false;

	drv_keypair_generate(kp);
	assert_int_equal(hello(fx, kp, id, fx->token, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(poll_req(fx, kp, id, 0, w, &why, &parked), 0);
	assert_true(parked);
}

static void queue_wave(void **state)
{
	struct fixture *fx = *state;
	struct fake_waiter wa = {.w.deliver = fake_deliver}, wb = {.w.deliver = fake_deliver};
	struct drv_keypair a, b;
	Drover__RejectReason why = 0;
	bool parked = false;
	Drover__Hook hook;
	struct dispatch_instr in[4];
	uint64_t seq[4];
	int rc[4];
	const char *agent[4] = {"wa-1", "wb-1", "wa-1", "nobody"};
	const char *step[4] = {"s1", "s1", "s2", "s1"};

	hook_wave(in, &hook, agent, step, 4);
	parked_agent(fx, &a, "wa-1", &wa);
	parked_agent(fx, &b, "wb-1", &wb);
	assert_int_equal(core_queue_many(fx->core, in, 4, seq, rc), DRV_OK);
	assert_int_equal(rc[0], DRV_OK);
	assert_int_equal(rc[1], DRV_OK);
	assert_int_equal(rc[2], DRV_OK);
	assert_int_equal(rc[3], DRV_ENOENT);
	assert_int_equal(seq[0], 1);
	assert_int_equal(seq[1], 1);
	assert_int_equal(seq[2], 2);
	assert_int_equal(wa.delivered, 1);
	assert_int_equal(wa.last_seq, 1);
	assert_int_equal(wb.delivered, 1);
	assert_int_equal(wb.last_seq, 1);
	check_stored(fx, "wa-1", 1);
	check_stored(fx, "wb-1", 1);
	/* the agent applied 1: the next is 2, signed for 2 */
	assert_int_equal(poll_req(fx, &a, "wa-1", 1, &wa, &why, &parked),
	                 DROVER__BODY_TYPE__BODY_INSTRUCTION);
	check_stored(fx, "wa-1", 2);
}

/* Fault injection (the test is linked with --wrap=store_begin): the next
 * fail_begins transactions the core's batch opens fail to begin. The
 * store's own savepoints (store.c calls itself) are not wrapped. */
static int fail_begins;
int __real_store_begin(struct store *s);
int __wrap_store_begin(struct store *s);

int __wrap_store_begin(struct store *s)
{
	if (fail_begins > 0) {
		fail_begins--;
		return DRV_EDB;
	}
	return __real_store_begin(s);
}

static atomic_int delivered_uncommitted;

/* fake_deliver, counting the instructions delivered before they were
 * committed (not an assertion here: it would leave with the core's lock
 * held). */
static void deliver_noting(struct core_waiter *w, uint8_t *env, size_t len)
{
	Drover__Envelope *e = env != NULL ? drover__envelope__unpack(NULL, len, env) : NULL;
	Drover__Instruction *ins = NULL;

	if (e != NULL && e->type == DROVER__BODY_TYPE__BODY_INSTRUCTION)
		ins = drover__instruction__unpack(NULL, e->body.len, e->body.data);
	if (ins != NULL && !committed_instr(ins->target_agent, ins->seq))
		delivered_uncommitted++;
	drover__instruction__free_unpacked(ins, NULL);
	drover__envelope__free_unpacked(e, NULL);
	((struct fake_waiter *)w)->delivered++;
	free(env);
}

/* A wave whose batch could not begin at the first join but did at the
 * next: its instructions are in that batch, so they are delivered after it
 * commits, not at once as if each had committed on its own. */
static void queue_wave_late_batch(void **state)
{
	struct fixture *fx = *state;
	struct fake_waiter wa = {.w.deliver = deliver_noting}, wb = {.w.deliver = deliver_noting};
	struct drv_keypair a, b;
	Drover__Hook hook;
	struct dispatch_instr in[2];
	uint64_t seq[2];
	int rc[2];
	const char *agent[2] = {"la-1", "lb-1"};
	const char *step[2] = {"s1", "s1"};

	hook_wave(in, &hook, agent, step, 2);
	parked_agent(fx, &a, "la-1", &wa);
	parked_agent(fx, &b, "lb-1", &wb);
	delivered_uncommitted = 0;
	fail_begins = 1;
	assert_int_equal(core_queue_many(fx->core, in, 2, seq, rc), DRV_OK);
	assert_int_equal(fail_begins, 0);
	assert_int_equal(rc[0], DRV_OK);
	assert_int_equal(rc[1], DRV_OK);
	for (int i = 0; i < 20000 && wa.delivered + wb.delivered < 2; i++)
		usleep(1000);
	assert_int_equal(wa.delivered, 1);
	assert_int_equal(wb.delivered, 1);
	assert_int_equal(delivered_uncommitted, 0);
}

/* Every row of the agent's, in order: signed by the coordinator for its
 * own seq (1, 2, ...). Returns how many. */
static int check_all_stored(struct fixture *fx, const char *id)
{
	struct drv_pubkey pub;
	struct drv_sql_stmt *st;
	uint64_t want = 1;

	assert_int_equal(drv_pubkey_from_raw(fx->coord.pk, DRV_PK_LEN, &pub), DRV_OK);
	assert_int_equal(drv_sql_prepare(check_db,
	                                 "SELECT seq, envelope FROM instructions WHERE agent_id = ?"
	                                 " ORDER BY seq",
	                                 &st),
	                 DRV_OK);
	drv_sql_bind_text(st, 1, id);
	while (drv_sql_step(st) == DRV_SQL_ROW) {
		Drover__Envelope *e = NULL;
		Drover__Instruction *ins;

		assert_int_equal(drv_sql_col_int64(st, 0), (int64_t)want);
		assert_int_equal(drv_env_parse(drv_sql_col_blob(st, 1),
		                               (size_t)drv_sql_col_bytes(st, 1), DRV_ENV_MAX, &e),
		                 DRV_OK);
		assert_int_equal(drv_env_verify(e, &pub), DRV_OK);
		ins = drover__instruction__unpack(NULL, e->body.len, e->body.data);
		assert_non_null(ins);
		assert_int_equal(ins->seq, want);
		assert_string_equal(ins->target_agent, id);
		drover__instruction__free_unpacked(ins, NULL);
		drv_env_free(e);
		want++;
	}
	drv_sql_finalize(st);
	return (int)(want - 1);
}

/* A wave of several chunks (signed one chunk ahead on a second thread):
 * agents many times in it (their guesses are wrong: signed again under
 * the lock), one only in the third chunk (its guess, made before the
 * first chunk was queued, is right), an unknown agent, a step queued
 * twice. Every row signed for its own seq, in the wave's order; each
 * parked poll gets its agent's first once it is committed. */
#define PARKED 12

/* A wave of one instruction each for PARKED agents; returns the store's
 * statements it took (queueing, commit and deliveries). */
static uint64_t wave_statements(struct fixture *fx, const char *prefix)
{
	char *run[] = {"/bin/true"};
	Drover__Hook hook = DROVER__HOOK__INIT;
	struct dispatch_instr in[PARKED];
	char ids[PARKED][16];
	uint64_t seq[PARKED], before = store_statements(fx->store);
	int rc[PARKED];

	hook.run = run;
	hook.n_run = 1;
	for (int i = 0; i < PARKED; i++) {
		snprintf(ids[i], sizeof(ids[i]), "%s-%d", prefix, i);
		in[i] = (struct dispatch_instr){.agent_id = ids[i],
		                                .step_id = "w1",
		                                .action = DROVER__ACTION__ACTION_RUN_HOOK,
		                                .hook = &hook};
	}
	assert_int_equal(core_queue_many(fx->core, in, PARKED, seq, rc), DRV_OK);
	for (int i = 0; i < PARKED; i++) {
		assert_int_equal(rc[i], DRV_OK);
		assert_int_equal(seq[i], 1);
	}
	return store_statements(fx->store) - before;
}

/* The parked agents of a wave's chunk are delivered with one statement
 * for all of them (it was one per agent, and a read before the first): the
 * same wave to agents that are not parked costs the same but that. Each
 * parked agent gets its instruction once, committed. */
static void wave_delivered_in_one_statement(void **state)
{
	struct fixture *fx = *state;
	static struct fake_waiter w[PARKED];
	static struct drv_keypair kp[2 * PARKED];
	Drover__RejectReason why = 0;
	bool parked = false;
	char id[16];
	uint64_t idle, busy;

	for (int i = 0; i < 2 * PARKED; i++) {
		snprintf(id, sizeof(id), "%s-%d", i < PARKED ? "wi" : "wp", i % PARKED);
		drv_keypair_generate(&kp[i]);
		assert_int_equal(hello(fx, &kp[i], id, fx->token, &why),
		                 DROVER__BODY_TYPE__BODY_WELCOME);
		if (i < PARKED)
			continue;
		w[i - PARKED] = (struct fake_waiter){.w.deliver = fake_deliver};
		assert_int_equal(poll_req(fx, &kp[i], id, 0, &w[i - PARKED], &why, &parked), 0);
		assert_true(parked);
	}
	idle = wave_statements(fx, "wi");
	busy = wave_statements(fx, "wp");
	for (int i = 0; i < PARKED; i++) {
		assert_int_equal(w[i].delivered, 1);
		assert_int_equal(w[i].last_type, DROVER__BODY_TYPE__BODY_INSTRUCTION);
		assert_int_equal(w[i].last_seq, 1);
	}
	assert_in_range(busy, idle, idle + 3); /* the take, and the batch it opens and commits */
}

#define BIG_WAVE 600
static void queue_wave_pipelined(void **state)
{
	struct fixture *fx = *state;
	struct fake_waiter wa = {.w.deliver = fake_deliver}, wc = {.w.deliver = fake_deliver};
	struct drv_keypair a, b, cc;
	Drover__RejectReason why = 0;
	bool parked = false;
	char *run[] = {"/bin/true"};
	Drover__Hook hook = DROVER__HOOK__INIT;
	static struct dispatch_instr in[BIG_WAVE];
	static char step[BIG_WAVE][16];
	static uint64_t seq[BIG_WAVE];
	static int rc[BIG_WAVE];
	uint64_t next_a = 1, next_b = 1;

	hook.run = run;
	hook.n_run = 1;
	for (int i = 0; i < BIG_WAVE; i++) {
		const char *agent = i % 2 ? "pb-1" : "pa-1";

		snprintf(step[i], sizeof(step[i]), "s%d", i);
		if (i == 300)
			agent = "nobody";
		else if (i == 520)
			agent = "pc-1";
		else if (i == 590) /* pa-1's s0 again */
			snprintf(step[i], sizeof(step[i]), "s0");
		in[i] = (struct dispatch_instr){.agent_id = agent,
		                                .step_id = step[i],
		                                .action = DROVER__ACTION__ACTION_RUN_HOOK,
		                                .hook = &hook};
	}
	drv_keypair_generate(&a);
	drv_keypair_generate(&b);
	drv_keypair_generate(&cc);
	assert_int_equal(hello(fx, &a, "pa-1", fx->token, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(hello(fx, &b, "pb-1", fx->token, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(hello(fx, &cc, "pc-1", fx->token, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(poll_req(fx, &a, "pa-1", 0, &wa, &why, &parked), 0);
	assert_int_equal(poll_req(fx, &cc, "pc-1", 0, &wc, &why, &parked), 0);
	assert_int_equal(core_queue_many(fx->core, in, BIG_WAVE, seq, rc), DRV_OK);
	for (int i = 0; i < BIG_WAVE; i++) {
		if (i == 300) {
			assert_int_equal(rc[i], DRV_ENOENT);
		} else if (i == 520) {
			assert_int_equal(rc[i], DRV_OK);
			assert_int_equal(seq[i], 1);
		} else if (i == 590) {
			assert_int_equal(rc[i], DRV_EEXIST);
			assert_int_equal(seq[i], 1);
		} else {
			assert_int_equal(rc[i], DRV_OK);
			assert_int_equal(seq[i], i % 2 ? next_b++ : next_a++);
		}
	}
	assert_int_equal(check_all_stored(fx, "pa-1"), (int)next_a - 1);
	assert_int_equal(check_all_stored(fx, "pb-1"), (int)next_b - 1);
	assert_int_equal(check_all_stored(fx, "pc-1"), 1);
	assert_int_equal(wa.delivered, 1);
	assert_int_equal(wa.last_seq, 1);
	assert_int_equal(wc.delivered, 1);
	assert_int_equal(wc.last_seq, 1);
}

static void forged_and_replayed(void **state)
{
	struct fixture *fx = *state;
	struct drv_keypair a, other;
	Drover__RejectReason why = 0;
	uint8_t *env;

	drv_keypair_generate(&a);
	drv_keypair_generate(&other);
	assert_int_equal(hello(fx, &a, "ui-1", fx->token, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(poll_req(fx, &other, "ui-1", 0, NULL, &why, NULL),
	                 DROVER__BODY_TYPE__BODY_REJECT);
	assert_int_equal(why, DROVER__REJECT_REASON__REJECT_UNKNOWN_KEY);
	assert_int_equal(report_req(fx, &a, "ui-1", 5, &why), DROVER__BODY_TYPE__BODY_ACK);
	assert_int_equal(report_req(fx, &a, "ui-1", 5, &why), DROVER__BODY_TYPE__BODY_REJECT);
	assert_int_equal(why, DROVER__REJECT_REASON__REJECT_REPLAY);
	env = malloc(16);
	memset(env, 0xab, 16);
	assert_int_equal(send_env(fx, env, 16, NULL, &why, NULL), DROVER__BODY_TYPE__BODY_REJECT);
	assert_int_equal(why, DROVER__REJECT_REASON__REJECT_MALFORMED);
}

#define SHARERS 64 /* agents reporting at once */
#define THREADS 4  /* NNG's task threads, standing in */

struct sharer {
	struct fixture *fx;
	uint8_t *env[SHARERS / THREADS];
	size_t len[SHARERS / THREADS];
	struct fake_waiter w[SHARERS / THREADS];
	int parked;
};

static void *send_reports(void *arg)
{
	struct sharer *t = arg;

	for (int i = 0; i < SHARERS / THREADS; i++) {
		struct core_reply r;

		t->w[i].w.deliver = fake_deliver;
		core_handle(t->fx->core, t->env[i], t->len[i], test_pipe, &t->w[i].w, &r);
		free(t->env[i]);
		t->parked += r.parked && r.env == NULL; /* no answer before the commit */
	}
	return NULL;
}

/* Reports from several threads join one batch and are all acknowledged
 * from its one commit: no thread waits on it, so how many share a commit
 * is not bounded by the threads (before: at most one report per thread).
 * The linger is long here so that the count is exact; fake_deliver checks
 * that every Ack comes after its report's commit. */
static void reports_share_a_commit(void **state)
{
	struct fixture *fx = *state;
	struct core_config cc = test_config();
	struct sharer t[THREADS] = {0};
	pthread_t th[THREADS];
	Drover__RejectReason why = 0;
	uint64_t commits0, owed0, commits, owed;

	for (int i = 0; i < SHARERS; i++) {
		struct drv_keypair kp;
		char id[32];

		drv_keypair_generate(&kp);
		snprintf(id, sizeof(id), "fan-%d", i);
		assert_int_equal(hello(fx, &kp, id, fx->token, &why),
		                 DROVER__BODY_TYPE__BODY_WELCOME);
		t[i % THREADS].env[i / THREADS] =
		        report_env(&kp, id, 1, &t[i % THREADS].len[i / THREADS]);
	}
	cc.key = &fx->coord;
	cc.store = fx->store;
	cc.batch_linger_us = 3000000; /* beside CPU hogs too */
	cc.batch_max_ms = 600000;
	core_free(fx->core);
	assert_int_equal(core_new(&cc, &fx->core), DRV_OK);
	core_batch_counts(fx->core, &commits0, &owed0);
	for (int i = 0; i < THREADS; i++) {
		t[i].fx = fx;
		assert_int_equal(pthread_create(&th[i], NULL, send_reports, &t[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(t[i].parked, SHARERS / THREADS);
		for (int k = 0; k < SHARERS / THREADS; k++) {
			wait_answers(&t[i].w[k], 1);
			assert_int_equal(t[i].w[k].last_type, DROVER__BODY_TYPE__BODY_ACK);
			assert_int_equal(t[i].w[k].last_seq, 1);
		}
	}
	core_batch_counts(fx->core, &commits, &owed);
	assert_int_equal(owed - owed0, SHARERS);
	assert_int_equal(commits - commits0, 1);
}

/* A batch whose commit fails: its reports get a Reject, never an Ack, and
 * nothing of them is saved, so the agent's resend is not a replay. */
static void failed_commit_rejects_reports(void **state)
{
	struct fixture *fx = *state;
	struct drv_keypair a;
	Drover__RejectReason why = 0;

	drv_keypair_generate(&a);
	assert_int_equal(hello(fx, &a, "bad-1", fx->token, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	/* a deferred foreign key that the report's event breaks: COMMIT fails */
	assert_int_equal(drv_sql_exec(check_db,
	                              "CREATE TABLE fk_p (id INTEGER PRIMARY KEY);"
	                              "CREATE TABLE fk_c (pid INTEGER REFERENCES fk_p(id)"
	                              " DEFERRABLE INITIALLY DEFERRED);"
	                              "CREATE TRIGGER fail_commit AFTER INSERT ON events"
	                              " WHEN NEW.agent_id = 'bad-1' AND NEW.kind = 'report'"
	                              " BEGIN INSERT INTO fk_c VALUES (42); END;"),
	                 DRV_OK);
	assert_int_equal(report_req(fx, &a, "bad-1", 3, &why), DROVER__BODY_TYPE__BODY_REJECT);
	assert_int_not_equal(why, DROVER__REJECT_REASON__REJECT_REPLAY);
	assert_false(committed_report("bad-1", 3));
	assert_int_equal(drv_sql_exec(check_db, "DROP TRIGGER fail_commit;"), DRV_OK);
	assert_int_equal(report_req(fx, &a, "bad-1", 3, &why), DROVER__BODY_TYPE__BODY_ACK);
	assert_true(committed_report("bad-1", 3));
}

/* A STEP_ACCEPTED report of instruction instr (it acknowledges it). */
static uint8_t *accepted_env(const struct drv_keypair *kp, const char *id, uint64_t seq,
                             uint64_t instr, size_t *len)
{
	Drover__Report r = DROVER__REPORT__INIT;
	uint8_t *env;

	r.agent_id = (char *)id;
	r.report_seq = seq;
	r.instruction_seq = instr;
	r.step_id = "s1";
	r.result = DROVER__STEP_RESULT__STEP_ACCEPTED;
	assert_int_equal(
	        drv_env_seal(kp, id, DROVER__BODY_TYPE__BODY_REPORT, &r.base, false, &env, len),
	        DRV_OK);
	return env;
}

/* A batch's reports are written with one statement per table for the
 * batch. When that fails, each is written on its own: a report that fails
 * every time (as a poison one would) and a replay the core's memory did
 * not know of are refused alone, the rest of the batch is acknowledged from
 * the same commit (with the instruction one of them acknowledges), and the
 * next batches are not held up by the one that fails. */
static void failing_report_spares_its_batch(void **state)
{
	enum { N = 4 };
	static const char *const ids[N] = {"ok-1", "poison-1", "ok-2", "known-1"};
	struct fixture *fx = *state;
	struct core_config cc = test_config();
	struct drv_keypair kp[N];
	struct fake_waiter w[N] = {0};
	uint64_t seq = 0, commits0, owed0, commits, owed;
	Drover__RejectReason why = 0;
	char st[16];

	for (int i = 0; i < N; i++) {
		drv_keypair_generate(&kp[i]);
		assert_int_equal(hello(fx, &kp[i], ids[i], fx->token, &why),
		                 DROVER__BODY_TYPE__BODY_WELCOME);
	}
	assert_int_equal(queue_hook(fx, "ok-1", "s1", &seq), DRV_OK);
	assert_int_equal(poll_req(fx, &kp[0], "ok-1", 0, NULL, &why, NULL),
	                 DROVER__BODY_TYPE__BODY_INSTRUCTION);
	cc.key = &fx->coord;
	cc.store = fx->store;
	cc.batch_linger_us = 3000000; /* one batch: committed below */
	cc.batch_max_ms = 600000;
	core_free(fx->core);
	assert_int_equal(core_new(&cc, &fx->core), DRV_OK);
	/* poison-1's event row fails, every time; known-1's row has report 9
	 * already, written behind the core's back */
	assert_int_equal(drv_sql_exec(check_db,
	                              "CREATE TRIGGER poison BEFORE INSERT ON events"
	                              " WHEN NEW.agent_id = 'poison-1' AND NEW.kind = 'report'"
	                              " BEGIN SELECT RAISE(ABORT, 'poison'); END;"
	                              "UPDATE agents SET report_seq = 9 WHERE id = 'known-1';"),
	                 DRV_OK);
	core_batch_counts(fx->core, &commits0, &owed0);
	for (int i = 0; i < N; i++) {
		struct core_reply r;
		size_t len;
		uint8_t *env = i == 0 ? accepted_env(&kp[i], ids[i], 1, seq, &len)
		                      : report_env(&kp[i], ids[i], 1, &len);

		w[i].w.deliver = fake_deliver;
		core_handle(fx->core, env, len, test_pipe, &w[i].w, &r);
		free(env);
		assert_true(r.parked);
	}
	core_release_waiters(fx->core); /* commits the batch now */
	for (int i = 0; i < N; i++)
		wait_answers(&w[i], 1);
	core_batch_counts(fx->core, &commits, &owed);
	assert_int_equal(commits - commits0, 1);
	assert_int_equal(w[0].last_type, DROVER__BODY_TYPE__BODY_ACK);
	assert_int_equal(w[2].last_type, DROVER__BODY_TYPE__BODY_ACK);
	assert_int_equal(w[1].last_type, DROVER__BODY_TYPE__BODY_REJECT);
	assert_int_not_equal(w[1].last_reason, DROVER__REJECT_REASON__REJECT_REPLAY);
	assert_int_equal(w[3].last_type, DROVER__BODY_TYPE__BODY_REJECT);
	assert_int_equal(w[3].last_reason, DROVER__REJECT_REASON__REJECT_REPLAY);
	assert_false(committed_report("poison-1", 1));
	assert_false(committed_report("known-1", 1));
	assert_int_equal(store_instr_state(fx->store, "ok-1", seq, st), DRV_OK);
	assert_string_equal(st, "acked");
	/* the next batches (the usual linger): poison-1 is refused alone while
	 * it fails, the others go on; known-1 above 9 is written with its
	 * batch again */
	core_free(fx->core);
	cc.batch_linger_us = 0;
	cc.batch_max_ms = 0;
	assert_int_equal(core_new(&cc, &fx->core), DRV_OK);
	assert_int_equal(report_req(fx, &kp[1], "poison-1", 1, &why),
	                 DROVER__BODY_TYPE__BODY_REJECT);
	assert_int_equal(report_req(fx, &kp[2], "ok-2", 2, &why), DROVER__BODY_TYPE__BODY_ACK);
	assert_int_equal(report_req(fx, &kp[3], "known-1", 10, &why), DROVER__BODY_TYPE__BODY_ACK);
	assert_int_equal(drv_sql_exec(check_db, "DROP TRIGGER poison;"), DRV_OK);
	assert_int_equal(report_req(fx, &kp[1], "poison-1", 1, &why), DROVER__BODY_TYPE__BODY_ACK);
	assert_true(committed_report("poison-1", 1));
	assert_int_equal(report_req(fx, &kp[1], "poison-1", 1, &why),
	                 DROVER__BODY_TYPE__BODY_REJECT);
	assert_int_equal(why, DROVER__REJECT_REASON__REJECT_REPLAY);
}

/* "web" releases from "version/slot" texts (at most 4). */
static size_t web_releases(const char *const *vs, Drover__Release rel[4], Drover__Release *p[4],
                           char buf[4][32])
{
	size_t n = 0;

	for (; vs[n] != NULL && n < 4; n++) {
		drover__release__init(&rel[n]);
		snprintf(buf[n], sizeof(buf[n]), "%s", vs[n]);
		buf[n][strcspn(buf[n], "/")] = '\0';
		rel[n].service = "web";
		rel[n].version = buf[n];
		rel[n].slot = (char *)strchr(vs[n], '/') + 1;
		rel[n].state = DROVER__RELEASE_STATE__RELEASE_RUNNING;
		p[n] = &rel[n];
	}
	return n;
}

/* A Poll carrying the full list vs, numbered seq (its releases_seq; 0: an
 * older agent), or with report a STEP_SUCCEEDED Report of "web" numbered
 * seq with its releases vs. */
static void send_releases(struct fixture *fx, const struct drv_keypair *kp, const char *id,
                          bool report, uint64_t seq, const char *const *vs)
{
	Drover__Poll p = DROVER__POLL__INIT;
	Drover__Report r = DROVER__REPORT__INIT;
	Drover__Release rel[4], *rp[4];
	char buf[4][32];
	Drover__RejectReason why = 0;
	uint8_t *env;
	size_t len, n = web_releases(vs, rel, rp, buf);

	p.agent_id = r.agent_id = (char *)id;
	p.sent_at_ms = drv_wall_ms();
	p.n_releases = r.n_releases = n;
	p.releases = r.releases = rp;
	p.has_releases = true;
	p.releases_seq = seq;
	r.report_seq = seq;
	r.result = DROVER__STEP_RESULT__STEP_SUCCEEDED;
	r.step_id = "fin";
	r.service = "web";
	assert_int_equal(
	        drv_env_seal(kp, id,
	                     report ? DROVER__BODY_TYPE__BODY_REPORT : DROVER__BODY_TYPE__BODY_POLL,
	                     report ? &r.base : &p.base, false, &env, &len),
	        DRV_OK);
	/* a Report is acknowledged, a Poll parked (no reply yet) */
	assert_int_equal(send_env(fx, env, len, NULL, &why, NULL),
	                 report ? DROVER__BODY_TYPE__BODY_ACK : 0);
}

/* The agent's releases as "version/slot,version/slot". */
static const char *releases_of(struct fixture *fx, const char *id)
{
	static char buf[128];
	json_t *j, *e;
	size_t i, off = 0;

	buf[0] = '\0';
	assert_int_equal(core_agent_json(fx->core, id, &j), DRV_OK);
	json_array_foreach(json_object_get(j, "releases"), i, e)
	{
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s/%s", i ? "," : "",
		                        json_string_value(json_object_get(e, "version")),
		                        json_string_value(json_object_get(e, "slot")));
	}
	json_decref(j);
	return buf;
}

/* Run 14 (docs/reliability.md): a Poll sealed while a blue-green finalize
 * ran, handled after the finalize's Report, must not put the old list back;
 * the message itself is still processed. A restarted droverd reads the
 * order from the row. An older agent's lists (releases_seq 0) are taken. */
static void poll_keeps_newer_releases(void **state)
{
	struct fixture *fx = *state;
	struct core_config cc = test_config();
	const char *both[] = {"2.0.0/green", "1.0.0/blue", NULL};
	const char *green[] = {"2.0.0/green", NULL};
	const char *three[] = {"3.0.0/blue", "2.0.0/green", NULL};
	struct drv_keypair a;
	Drover__RejectReason why = 0;

	cc.key = &fx->coord;
	cc.store = fx->store;
	drv_keypair_generate(&a);
	assert_int_equal(hello(fx, &a, "w-4", fx->token, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	send_releases(fx, &a, "w-4", false, 6, both);
	assert_string_equal(releases_of(fx, "w-4"), "2.0.0/green,1.0.0/blue");
	/* the finalize's report (report_seq 7), then a Poll sealed before it */
	send_releases(fx, &a, "w-4", true, 7, green);
	assert_string_equal(releases_of(fx, "w-4"), "2.0.0/green");
	send_releases(fx, &a, "w-4", false, 6, both);
	assert_string_equal(releases_of(fx, "w-4"), "2.0.0/green");
	/* a restarted droverd knows the order too (NNG resends the pending
	 * Poll on the new connection, before any Hello) */
	core_free(fx->core);
	assert_int_equal(core_new(&cc, &fx->core), DRV_OK);
	send_releases(fx, &a, "w-4", false, 6, both);
	assert_string_equal(releases_of(fx, "w-4"), "2.0.0/green");
	/* a report older than the stored list changes nothing */
	send_releases(fx, &a, "w-4", false, 9, three);
	send_releases(fx, &a, "w-4", true, 8, green);
	assert_string_equal(releases_of(fx, "w-4"), "3.0.0/blue,2.0.0/green");
	/* a Poll read after the last report (same number or above) is taken */
	send_releases(fx, &a, "w-4", false, 9, green);
	assert_string_equal(releases_of(fx, "w-4"), "2.0.0/green");
	/* an agent of the previous release (no releases_seq): as before */
	send_releases(fx, &a, "w-4", false, 0, both);
	assert_string_equal(releases_of(fx, "w-4"), "2.0.0/green,1.0.0/blue");
}

/* The same order for a Hello's list (Hello.releases_seq): a Hello sealed
 * before the finalize's Report but handled after it (a failover, a
 * reconnection) does not put "1.0.0/blue" back; the Hello itself counts. */
static void hello_keeps_newer_releases(void **state)
{
	struct fixture *fx = *state;
	struct core_config cc = test_config();
	const char *both[] = {"2.0.0/green", "1.0.0/blue", NULL};
	const char *green[] = {"2.0.0/green", NULL};
	struct hello_rel before = {6, both}, after = {7, both}, old_agent = {0, both};
	struct drv_keypair a;
	Drover__RejectReason why = 0;

	cc.key = &fx->coord;
	cc.store = fx->store;
	drv_keypair_generate(&a);
	assert_int_equal(hello_full(fx, &a, "w-5", fx->token, NULL, &before, &why),
	                 DROVER__BODY_TYPE__BODY_WELCOME);
	assert_string_equal(releases_of(fx, "w-5"), "2.0.0/green,1.0.0/blue");
	/* the finalize's report (report_seq 7), then a Hello sealed before it */
	send_releases(fx, &a, "w-5", true, 7, green);
	assert_string_equal(releases_of(fx, "w-5"), "2.0.0/green");
	assert_int_equal(hello_full(fx, &a, "w-5", fx->token, NULL, &before, &why),
	                 DROVER__BODY_TYPE__BODY_WELCOME);
	assert_string_equal(state_of(fx, "w-5"), "connected");
	assert_string_equal(releases_of(fx, "w-5"), "2.0.0/green");
	/* a new leader (or a restarted droverd) reads the order from the row */
	core_free(fx->core);
	assert_int_equal(core_new(&cc, &fx->core), DRV_OK);
	assert_int_equal(hello_full(fx, &a, "w-5", fx->token, NULL, &before, &why),
	                 DROVER__BODY_TYPE__BODY_WELCOME);
	assert_string_equal(releases_of(fx, "w-5"), "2.0.0/green");
	/* a Hello read after report 7 is taken, and so is an older agent's */
	assert_int_equal(hello_full(fx, &a, "w-5", fx->token, NULL, &after, &why),
	                 DROVER__BODY_TYPE__BODY_WELCOME);
	assert_string_equal(releases_of(fx, "w-5"), "2.0.0/green,1.0.0/blue");
	send_releases(fx, &a, "w-5", true, 8, green);
	assert_int_equal(hello_full(fx, &a, "w-5", fx->token, NULL, &old_agent, &why),
	                 DROVER__BODY_TYPE__BODY_WELCOME);
	assert_string_equal(releases_of(fx, "w-5"), "2.0.0/green,1.0.0/blue");
}

/* The lean listing a deployment's targets resolve against holds, for every
 * agent in the same order, exactly the full listing's id, status, labels,
 * releases and agent_version, and nothing else. */
static void brief_listing_matches_full(void **state)
{
	struct fixture *fx = *state;
	const char *both[] = {"2.0.0/green", "1.0.0/blue", NULL};
	const char *labels[] = {"tier=core", "zone=a", NULL};
	static const char *const keys[] = {"id", "status", "labels", "releases", "agent_version"};
	struct hello_rel rel = {3, both};
	struct drv_keypair a, b, p;
	Drover__RejectReason why = 0;
	json_t *full = NULL, *brief = NULL, *f, *x;
	size_t i;

	drv_keypair_generate(&a);
	drv_keypair_generate(&b);
	drv_keypair_generate(&p);
	assert_int_equal(hello_full(fx, &a, "w-1", fx->token, labels, &rel, &why),
	                 DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(hello(fx, &b, "w-2", fx->token, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(hello(fx, &p, "p-1", NULL, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(core_agents_json(fx->core, &full), DRV_OK);
	assert_int_equal(core_agents_brief_json(fx->core, &brief), DRV_OK);
	assert_int_equal(json_array_size(brief), 3);
	assert_int_equal(json_array_size(full), 3);
	json_array_foreach(brief, i, x)
	{
		f = json_array_get(full, i);
		assert_int_equal(json_object_size(x), 5);
		for (size_t k = 0; k < 5; k++)
			assert_true(json_equal(json_object_get(x, keys[k]),
			                       json_object_get(f, keys[k])));
	}
	x = json_array_get(brief, 0); /* ordered by id: p-1 first */
	assert_string_equal(json_string_value(json_object_get(x, "status")), "pending");
	x = json_array_get(brief, 1);
	assert_string_equal(json_string_value(json_object_get(x, "id")), "w-1");
	assert_string_equal(json_string_value(json_object_get(x, "status")), "accepted");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(x, "labels"), "zone")), "a");
	assert_int_equal(json_array_size(json_object_get(x, "releases")), 2);
	json_decref(full);
	json_decref(brief);
}

static void tick_times_out_and_disconnects(void **state)
{
	struct fixture *fx = *state;
	struct core_config cc = {.key = &fx->coord,
	                         .store = fx->store,
	                         .poll_timeout_ms = 1,
	                         .liveness_ms = 1,
	                         .pending_retry_ms = 1000,
	                         .instr_ttl_ms = 60000,
	                         .skew_ms = 30000,
	                         .max_agents = 10,
	                         .max_pending = 10};
	struct fake_waiter w = {.w.deliver = fake_deliver};
	struct drv_keypair a;
	Drover__RejectReason why = 0;
	bool parked;

	core_free(fx->core);
	assert_int_equal(core_new(&cc, &fx->core), DRV_OK);
	drv_keypair_generate(&a);
	assert_int_equal(hello(fx, &a, "edge-1", fx->token, &why), DROVER__BODY_TYPE__BODY_WELCOME);
	assert_int_equal(poll_req(fx, &a, "edge-1", 0, &w, &why, &parked), 0);
	assert_true(parked);
	usleep(20000);
	core_tick(fx->core);
	assert_int_equal(w.delivered, 1);
	assert_int_equal(w.last_type, DROVER__BODY_TYPE__BODY_IDLE);
	assert_string_equal(state_of(fx, "edge-1"), "disconnected"); /* silent past liveness */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(enrollment, setup, teardown),
	        cmocka_unit_test_setup_teardown(brief_listing_matches_full, setup, teardown),
	        cmocka_unit_test_setup_teardown(hello_freshness, setup, teardown),
	        cmocka_unit_test_setup_teardown(squatting, setup, teardown),
	        cmocka_unit_test_setup_teardown(labels_need_admin, setup, teardown),
	        cmocka_unit_test_setup_teardown(long_poll_delivery, setup, teardown),
	        cmocka_unit_test_setup_teardown(resent_applied_acked, setup, teardown),
	        cmocka_unit_test_setup_teardown(resent_below_floor_not_idle, setup, teardown),
	        cmocka_unit_test_setup_teardown(queue_wave, setup, teardown),
	        cmocka_unit_test_setup_teardown(queue_wave_late_batch, setup, teardown),
	        cmocka_unit_test_setup_teardown(queue_wave_pipelined, setup, teardown),
	        cmocka_unit_test_setup_teardown(wave_delivered_in_one_statement, setup, teardown),
	        cmocka_unit_test_setup_teardown(ha_epochs_and_followers, setup, teardown),
	        cmocka_unit_test_setup_teardown(follower_tick_reads_only, setup, teardown),
	        cmocka_unit_test_setup_teardown(forged_and_replayed, setup, teardown),
	        cmocka_unit_test_setup_teardown(poll_keeps_newer_releases, setup, teardown),
	        cmocka_unit_test_setup_teardown(hello_keeps_newer_releases, setup, teardown),
	        cmocka_unit_test_setup_teardown(reports_share_a_commit, setup, teardown),
	        cmocka_unit_test_setup_teardown(failed_commit_rejects_reports, setup, teardown),
	        cmocka_unit_test_setup_teardown(failing_report_spares_its_batch, setup, teardown),
	        cmocka_unit_test_setup_teardown(tick_times_out_and_disconnects, setup, teardown),
	};
	if (drv_crypto_init() != DRV_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
