/* uplink.c: the agent's link: Hello, long poll, instructions, reports. */
#include "uplink.h"

#include <errno.h>
#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atomicfile.h"
#include "clock.h"
#include "envelope.h"
#include "err.h"
#include "facts.h"
#include "linkstate.h"
#include "linkstats.h"
#include "log.h"
#include "watchdog.h"
#include "replay.h"

struct rq_item {
	struct rq_item *next;
	uint8_t *packed; /* a packed Drover__Report */
	size_t len;
};

enum session { S_CONNECTING, S_PENDING, S_ACCEPTED, S_REJECTED, S_REFUSED };
static const char *const session_names[] = {"connecting", "pending", "accepted", "rejected",
                                            "refused"};

/* One coordinator node: its own socket and dialer, always dialing. */
struct node {
	struct uplink *u;
	const char *url;
	nng_socket sock;
	bool sock_open;
	nng_dialer dialer; /* replaced by redial() (poll thread only) */
	nng_ctx poll_ctx, report_ctx;
	_Atomic int pipes; /* connections up now (pipe events) */
	int64_t redial_at; /* monotonic ms before which it is not redialed (poll thread) */
	unsigned redials;  /* redials since it last had a connection (poll thread) */
};

/*
 * A request in flight (one per thread: poll and report) and the node it
 * waits on. In a group, leave() ends it at once when the session should not
 * wait on that node any longer: its connection dropped, the session moved
 * to another node, or another node announced a newer epoch. `left` is set
 * under req_mu, so a request about to start a phase on such a node does
 * not start it (the check and the start are one step under req_mu).
 */
struct pending {
	nng_aio *aio;
	struct node *on; /* NULL: none */
	bool left;
};

struct uplink {
	struct uplink_config cfg;
	struct executor *ex;
	struct node nodes[UPLINK_NODES_MAX];
	size_t n_nodes;
	_Atomic size_t cur;      /* the session's node (written by the poll thread) */
	bool close_abandoned;    /* nng_close did not return in time: NNG keeps a socket */
	unsigned hello_timeouts; /* in a row (poll thread only) */
	/* A node welcomed the session since the nodes were last redialed
	 * (poll thread only): the next search redials every node without a
	 * connection at once, whatever pause an earlier search left it. */
	bool welcomed;
	nng_aio *poll_aio, *report_aio;
	pthread_mutex_t req_mu;    /* the two below and changes of cur */
	struct pending preq, rreq; /* the poll's and the report's request */
	pthread_t poll_thr, report_thr;
	bool threads;
	pthread_mutex_t mu; /* everything below */
	pthread_cond_t cv;  /* wakes naps and the report thread */
	bool stopping;
	struct linkstate *st;
	uint64_t report_seq; /* last one used */
	struct rq_item *rq_head, *rq_tail;
	size_t rq_len;
	enum session session;
	uint64_t sessions; /* accepted sessions so far (wakes the report thread) */
	uint64_t connects; /* connections made to any node (wakes the poll thread) */
	uint32_t poll_timeout_ms, heartbeat_ms;
	bool status_dirty;
	char save_error[96];    /* why the last save failed ("" after a good one) */
	unsigned save_failures; /* instructions not run in a row for it (backoff) */
	bool unsaved_now;       /* the last poll answer was not run for it */
	uint8_t nonce[64];      /* the last Welcome's nonce, for the next Hello */
	size_t nonce_len;
	uint8_t rel_sent[crypto_generichash_BYTES]; /* hash of the releases last polled */
	unsigned polls_since_rel;                   /* polls since they were sent */
	bool rel_reported; /* a report with releases got a report_seq since the last poll list */
};

static struct node *cur_node(struct uplink *u)
{
	return &u->nodes[atomic_load(&u->cur)];
}

/* Releases ride on a Poll when they changed, and every this many polls
 * anyway (a coordinator restored from a backup learns them again). */
#define POLL_RELEASES_EVERY 10

#define REQ_HASH_LEN 32

/* What a reply must name: this agent and the request's hash. */
static void request_hash(const uint8_t *buf, size_t len, uint8_t out[REQ_HASH_LEN])
{
	crypto_generichash(out, REQ_HASH_LEN, buf, len, NULL, 0);
}

/* ---- small helpers ---- */

static bool stopping(struct uplink *u)
{
	bool s;

	pthread_mutex_lock(&u->mu);
	s = u->stopping;
	pthread_mutex_unlock(&u->mu);
	return s;
}

/*
 * Sleep up to ms unless stopped or, with gen, until *gen (a counter under
 * mu) differs from seen; false when stopping.
 */
static bool nap_for(struct uplink *u, int64_t ms, const uint64_t *gen, uint64_t seen)
{
	struct timespec ts;
	bool s;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&u->mu);
	while (!u->stopping && (gen == NULL || *gen == seen) &&
	       pthread_cond_timedwait(&u->cv, &u->mu, &ts) == 0)
		;
	s = u->stopping;
	pthread_mutex_unlock(&u->mu);
	return !s;
}

/* Sleep up to ms unless stopped; false when stopping. */
static bool nap(struct uplink *u, int64_t ms)
{
	return nap_for(u, ms, NULL, 0);
}

/* A counter under mu (sessions, connects). */
static uint64_t count_of(struct uplink *u, const uint64_t *gen)
{
	uint64_t n;

	pthread_mutex_lock(&u->mu);
	n = *gen;
	pthread_mutex_unlock(&u->mu);
	return n;
}

/* ms scaled by a random factor in [1 - f/100, 1 + f/100]. */
static int64_t jitter(int64_t ms, unsigned f)
{
	int64_t span = ms * f / 100;

	return span > 0 ? ms - span + (int64_t)randombytes_uniform((uint32_t)(2 * span + 1)) : ms;
}

/* Exponential backoff with "equal jitter": half fixed, half random. */
static int64_t backoff(const struct uplink *u, unsigned attempt)
{
	int64_t base = u->cfg.reconnect_min_ms;

	while (attempt-- > 0 && base < u->cfg.reconnect_max_ms)
		base *= 2;
	if (base > u->cfg.reconnect_max_ms)
		base = u->cfg.reconnect_max_ms;
	return base / 2 + (int64_t)randombytes_uniform((uint32_t)(base / 2 + 1));
}

static void set_session(struct uplink *u, enum session s)
{
	pthread_mutex_lock(&u->mu);
	if (u->session != s) {
		u->session = s;
		u->status_dirty = true;
	}
	if (s == S_ACCEPTED) { /* reports waiting for a leader go at once */
		u->sessions++;
		pthread_cond_broadcast(&u->cv);
	}
	pthread_mutex_unlock(&u->mu);
}

static void count_reject(Drover__RejectReason reason, const char *what, const char *detail)
{
	drv_linkstats_reject(reason);
	drv_warn("uplink", "refused a message from the coordinator",
	         "reason=%s what=%s detail=\"%s\"", drv_reject_name(reason), what, detail);
}

/* Save the state; on failure the caller must not act. Lock held. */
static int save_locked(struct uplink *u)
{
	int rc = linkstate_save(u->cfg.state_path, u->st);

	if (rc != DRV_OK) {
		/* drv_write_atomic keeps errno: "No space left on device" says it all */
		snprintf(u->save_error, sizeof(u->save_error), "%s",
		         rc == DRV_EIO && errno != 0 ? strerror(errno) : drv_strerror(rc));
		drv_error("uplink", "cannot save the link state", "path=%s error=%s detail=\"%s\"",
		          u->cfg.state_path, drv_errname(rc), u->save_error);
	} else {
		u->save_error[0] = '\0';
		u->save_failures = 0;
	}
	u->status_dirty = true;
	return rc;
}

/* ---- requests ---- */

static bool connected(struct node *n)
{
	return atomic_load(&n->pipes) > 0;
}

/* Another node than n has a connection. */
static bool other_connected(struct uplink *u, const struct node *n)
{
	for (size_t i = 0; i < u->n_nodes; i++)
		if (&u->nodes[i] != n && connected(&u->nodes[i]))
			return true;
	return false;
}

/* Must a request of a group stop waiting on n (req_mu held)? When it was
 * left, when the session is no longer n's, or when n has no connection
 * while another node has one: a request queued for a node without one
 * waits out its whole timeout (NNG sends it only on a connection to n). */
static bool must_leave_locked(struct uplink *u, const struct pending *p, struct node *n)
{
	return u->n_nodes > 1 &&
	       (p->left || n != cur_node(u) || (!connected(n) && other_connected(u, n)));
}

/* Start one phase of p's request unless it must leave n; false: it must. */
static bool start_phase(struct uplink *u, struct pending *p, struct node *n, nng_ctx ctx, bool send)
{
	bool go;

	pthread_mutex_lock(&u->req_mu);
	go = !must_leave_locked(u, p, n);
	if (go && send)
		nng_ctx_send(ctx, p->aio);
	else if (go)
		nng_ctx_recv(ctx, p->aio);
	pthread_mutex_unlock(&u->req_mu);
	return go;
}

enum leave_what { LEAVE_NODE, LEAVE_OTHERS, LEAVE_UNCONNECTED };

/* End the requests of a group waiting on n (LEAVE_NODE), on any node but n
 * (LEAVE_OTHERS), or on a node other than n that has no connection
 * (LEAVE_UNCONNECTED). Any thread; the thread that made such a request sees
 * NNG_ECANCELED and moves on. */
static void leave(struct uplink *u, struct node *n, enum leave_what what)
{
	struct pending *ps[] = {&u->preq, &u->rreq};

	if (u->n_nodes < 2)
		return;
	pthread_mutex_lock(&u->req_mu);
	for (size_t i = 0; i < 2; i++) {
		struct pending *p = ps[i];
		bool go = p->on != NULL &&
		          (what == LEAVE_NODE
		                   ? p->on == n
		                   : p->on != n && (what == LEAVE_OTHERS || !connected(p->on)));
		if (go) {
			p->left = true;
			nng_aio_cancel(p->aio);
		}
	}
	pthread_mutex_unlock(&u->req_mu);
}

/*
 * Send buf to node n on ctx (n's poll or report context) and wait for the
 * reply, each phase bounded by timeout. In a group the request ends early
 * (NNG_ECANCELED) when leave() says so, also between its phases.
 */
static int request(struct uplink *u, struct pending *p, struct node *n, nng_ctx ctx,
                   const uint8_t *buf, size_t len, int64_t timeout_ms, nng_msg **reply)
{
	nng_msg *m;
	int rv = NNG_ECANCELED;

	if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, buf, len) != 0)
		return NNG_ENOMEM;
	pthread_mutex_lock(&u->req_mu);
	p->on = n;
	p->left = false;
	pthread_mutex_unlock(&u->req_mu);
	nng_aio_set_msg(p->aio, m);
	nng_aio_set_timeout(p->aio, (nng_duration)timeout_ms);
	if (!start_phase(u, p, n, ctx, true)) {
		nng_aio_set_msg(p->aio, NULL);
		nng_msg_free(m);
		goto out;
	}
	nng_aio_wait(p->aio);
	rv = nng_aio_result(p->aio);
	if (rv != 0) {
		nng_msg_free(nng_aio_get_msg(p->aio));
		goto out;
	}
	nng_aio_set_timeout(p->aio, (nng_duration)timeout_ms);
	rv = NNG_ECANCELED;
	if (!start_phase(u, p, n, ctx, false))
		goto out;
	nng_aio_wait(p->aio);
	rv = nng_aio_result(p->aio);
	if (rv == 0)
		*reply = nng_aio_get_msg(p->aio);
out:
	pthread_mutex_lock(&u->req_mu);
	p->on = NULL;
	pthread_mutex_unlock(&u->req_mu);
	return rv;
}

/*
 * A verified envelope's HA epoch against the highest seen: lower is an old
 * leader (fenced: DRV_ESTALE); higher is a new leader, remembered and saved
 * at once. If the save fails the epoch is still kept in memory (stricter),
 * and an instruction is not run anyway, as its own save fails too.
 */
static int check_epoch(struct uplink *u, struct node *from, const Drover__Envelope *env)
{
	bool newer = false;
	uint64_t was;
	int rc;

	pthread_mutex_lock(&u->mu);
	was = u->st->epoch;
	rc = linkstate_epoch_seen(u->st, env->epoch);
	if (rc == DRV_EEXIST) {
		drv_info("uplink", "new leader epoch", "epoch=%" PRIu64 " was=%" PRIu64 " url=%s",
		         env->epoch, was, from->url);
		save_locked(u);
		newer = true;
		rc = DRV_OK;
	}
	pthread_mutex_unlock(&u->mu);
	/* a request still waiting on another node waits on an old leader */
	if (newer)
		leave(u, from, LEAVE_OTHERS);
	return rc;
}

/* Check a reply: size, envelope, sender, signature, epoch. Counts what it
 * refuses. */
static int open_reply(struct uplink *u, struct node *from, nng_msg *m, Drover__Envelope **out)
{
	Drover__Envelope *env;
	size_t len = nng_msg_len(m);
	int rc;

	drv_linkstats_inc(DRV_STAT_RX_MESSAGES);
	drv_linkstats_add(DRV_STAT_RX_BYTES, len);
	rc = drv_env_parse(nng_msg_body(m), len, DRV_ENV_MAX, &env);
	if (rc != DRV_OK) {
		count_reject(drv_reject_reason(rc), "envelope", drv_errname(rc));
		return rc;
	}
	if (env->sender == NULL || strcmp(env->sender, DRV_COORDINATOR_SENDER) != 0) {
		drv_env_free(env);
		count_reject(DROVER__REJECT_REASON__REJECT_UNKNOWN_KEY, "envelope",
		             "not from the coordinator");
		return DRV_EUNKNOWNKEY;
	}
	rc = drv_env_verify_ring(env, u->cfg.ring);
	if (rc == DRV_OK)
		rc = check_epoch(u, from, env);
	if (rc != DRV_OK) {
		/* a follower's NOT_LEADER carries no epoch: not worth a warning */
		if (rc != DRV_ESTALE || env->type != DROVER__BODY_TYPE__BODY_REJECT)
			count_reject(drv_reject_reason(rc), "envelope", drv_errname(rc));
		drv_env_free(env);
		return rc;
	}
	*out = env;
	return DRV_OK;
}

/* A reply that names another agent or another request (relayed from
 * someone else's exchange, or an old one) is refused and counted. */
static bool bound_to_me(struct uplink *u, const char *agent_id, ProtobufCBinaryData h,
                        const uint8_t want[REQ_HASH_LEN], const char *what)
{
	if (agent_id != NULL && strcmp(agent_id, u->cfg.agent_id) == 0 && h.len == REQ_HASH_LEN &&
	    sodium_memcmp(h.data, want, REQ_HASH_LEN) == 0)
		return true;
	count_reject(DROVER__REJECT_REASON__REJECT_WRONG_TARGET, what,
	             "reply names another agent or request");
	return false;
}

/* Decode a verified body; a malformed one is counted. */
static int decode(const Drover__Envelope *env, Drover__BodyType type, ProtobufCMessage **out)
{
	int rc = drv_env_decode(env, type, out);

	if (rc != DRV_OK)
		count_reject(DROVER__REJECT_REASON__REJECT_MALFORMED, "body", "cannot decode");
	return rc;
}

static int seal(struct uplink *u, Drover__BodyType type, const ProtobufCMessage *body,
                bool self_key, uint8_t **out, size_t *len)
{
	int rc = drv_env_seal(u->cfg.key, u->cfg.agent_id, type, body, self_key, out, len);

	if (rc == DRV_OK)
		drv_linkstats_inc(DRV_STAT_TX_MESSAGES);
	return rc;
}

/* ---- reports ---- */

static void enqueue_packed(struct uplink *u, uint8_t *packed, size_t len)
{
	struct rq_item *it = calloc(1, sizeof(*it));

	if (it == NULL) {
		free(packed);
		drv_error("uplink", "out of memory: report dropped");
		return;
	}
	it->packed = packed;
	it->len = len;
	pthread_mutex_lock(&u->mu);
	if (u->rq_len >= UPLINK_QUEUE_MAX) {
		pthread_mutex_unlock(&u->mu);
		drv_error("uplink", "report queue full: report dropped", "max=%d",
		          UPLINK_QUEUE_MAX);
		free(packed);
		free(it);
		return;
	}
	if (u->rq_tail != NULL)
		u->rq_tail->next = it;
	else
		u->rq_head = it;
	u->rq_tail = it;
	u->rq_len++;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->mu);
}

static void enqueue_report(struct uplink *u, const Drover__Report *r)
{
	size_t len = drover__report__get_packed_size(r);
	uint8_t *buf = malloc(len ? len : 1);

	if (buf == NULL) {
		drv_error("uplink", "out of memory: report dropped");
		return;
	}
	drover__report__pack(r, buf);
	enqueue_packed(u, buf, len);
}

/* The executor records the result (agent.db) before it reports it. */
void uplink_report(const Drover__Report *r, void *arg)
{
	enqueue_report(arg, r);
}

/* A report the link makes itself (duplicates, refused instructions). */
static void link_report(struct uplink *u, const Drover__Instruction *ins,
                        const struct executor_step *s)
{
	Drover__Report r = DROVER__REPORT__INIT;

	r.agent_id = (char *)u->cfg.agent_id;
	r.deployment_id = ins->deployment_id;
	r.step_id = ins->step_id;
	r.instruction_seq = ins->seq;
	r.result = s->result;
	r.exit_code = s->exit_code;
	r.message = (char *)s->message;
	enqueue_report(u, &r);
}

static uint64_t next_report_seq(struct uplink *u)
{
	uint64_t seq;

	pthread_mutex_lock(&u->mu);
	seq = ++u->report_seq;
	if (seq > u->st->report_seq_reserved) {
		u->st->report_seq_reserved = seq + 999;
		save_locked(u);
	}
	pthread_mutex_unlock(&u->mu);
	return seq;
}

/* True when the coordinator has the report (acknowledged now or before). */
static bool report_delivered(struct uplink *u, struct node *n, nng_msg *m, uint64_t seq,
                             const uint8_t req[REQ_HASH_LEN])
{
	Drover__Envelope *env;
	ProtobufCMessage *body;
	bool done = false;

	if (open_reply(u, n, m, &env) != DRV_OK)
		return false;
	if (env->type == DROVER__BODY_TYPE__BODY_ACK &&
	    decode(env, DROVER__BODY_TYPE__BODY_ACK, &body) == DRV_OK) {
		Drover__Ack *ack = (Drover__Ack *)body;
		done = bound_to_me(u, ack->agent_id, ack->request_hash, req, "report ack") &&
		       ack->seq == seq;
		drv_msg_free(body);
	} else if (env->type == DROVER__BODY_TYPE__BODY_REJECT &&
	           decode(env, DROVER__BODY_TYPE__BODY_REJECT, &body) == DRV_OK) {
		Drover__Reject *rj = (Drover__Reject *)body;
		if (!bound_to_me(u, rj->agent_id, rj->request_hash, req, "report reject")) {
			drv_msg_free(body);
			drv_env_free(env);
			return false;
		}
		done = rj->reason == DROVER__REJECT_REASON__REJECT_REPLAY && rj->seq == seq;
		if (!done)
			drv_info("uplink", "report refused, will retry",
			         "report_seq=%" PRIu64 " reason=%s", seq,
			         drv_reject_name(rj->reason));
		drv_msg_free(body);
	}
	drv_env_free(env);
	return done;
}

/* Send one report until the coordinator has it (or we stop). */
static void send_report(struct uplink *u, Drover__Report *r)
{
	char *unpacked_id = r->agent_id; /* owned by the unpacked message */
	uint8_t *env = NULL, req[REQ_HASH_LEN];
	size_t len;
	unsigned attempt = 0;
	int rc;

	r->agent_id = (char *)u->cfg.agent_id;
	r->report_seq = next_report_seq(u);
	r->sent_at_ms = drv_wall_ms();
	if (r->n_releases > 0) {
		/* the next Poll carries the full list, numbered at least this
		 * (droverd stores no list older than this report's) */
		pthread_mutex_lock(&u->mu);
		u->rel_reported = true;
		pthread_mutex_unlock(&u->mu);
	}
	rc = seal(u, DROVER__BODY_TYPE__BODY_REPORT, &r->base, false, &env, &len);
	r->agent_id = unpacked_id;
	if (rc != DRV_OK) {
		drv_error("uplink", "cannot seal a report: dropped");
		return;
	}
	request_hash(env, len, req);
	while (!stopping(u)) {
		nng_msg *reply = NULL;
		struct node *n = cur_node(u);
		uint64_t sessions = count_of(u, &u->sessions);
		int rv = request(u, &u->rreq, n, n->report_ctx, env, len, u->cfg.request_timeout_ms,
		                 &reply);
		bool done = rv == 0 && report_delivered(u, n, reply, r->report_seq, req);

		nng_msg_free(reply);
		if (done || rv == NNG_ECLOSED)
			break;
		/* a new session (another node, after a failover) is tried at once */
		if (!nap_for(u, backoff(u, attempt++), &u->sessions, sessions))
			break;
		if (count_of(u, &u->sessions) != sessions)
			attempt = 0;
	}
	free(env);
}

static void *report_main(void *arg)
{
	struct uplink *u = arg;

	for (;;) {
		struct rq_item *it;
		Drover__Report *r;

		pthread_mutex_lock(&u->mu);
		while (!u->stopping && u->rq_head == NULL)
			pthread_cond_wait(&u->cv, &u->mu);
		it = u->stopping ? NULL : u->rq_head;
		pthread_mutex_unlock(&u->mu);
		if (it == NULL)
			return NULL;
		r = drover__report__unpack(NULL, it->len, it->packed);
		if (r != NULL) {
			send_report(u, r);
			drover__report__free_unpacked(r, NULL);
		}
		if (stopping(u))
			return NULL;
		pthread_mutex_lock(&u->mu);
		u->rq_head = it->next;
		if (u->rq_head == NULL)
			u->rq_tail = NULL;
		u->rq_len--;
		pthread_mutex_unlock(&u->mu);
		free(it->packed);
		free(it);
	}
}

/* ---- instructions ---- */

static bool digest_valid(const char *d)
{
	return d != NULL && strncmp(d, "sha256:", 7) == 0 && strlen(d) == 71 &&
	       strspn(d + 7, "0123456789abcdef") == 64;
}

static bool image_pinned(const Drover__Instruction *ins)
{
	if (ins->action != DROVER__ACTION__ACTION_PRESTAGE &&
	    ins->action != DROVER__ACTION__ACTION_START)
		return true;
	return ins->service != NULL && ins->service->image != NULL &&
	       digest_valid(ins->service->image->digest);
}

/* What the link tells the coordinator about a step that failed before it ran. */
__attribute__((format(printf, 3, 4))) static void
told_failed(struct executor_step *say, const Drover__Instruction *ins, const char *fmt, ...)
{
	va_list ap;

	memset(say, 0, sizeof(*say));
	say->seq = ins->seq;
	say->result = DROVER__STEP_RESULT__STEP_FAILED;
	say->exit_code = -1;
	va_start(ap, fmt);
	vsnprintf(say->message, sizeof(say->message), fmt, ap);
	va_end(ap);
}

/* A verified instruction we will not run: record the step as failed,
 * consume its sequence number; *say is what to tell the coordinator. Lock
 * held. */
static void refuse_locked(struct uplink *u, const Drover__Instruction *ins,
                          Drover__RejectReason why, const char *msg, struct executor_step *say)
{
	told_failed(say, ins, "refused: %s", msg);
	if (executor_step_record(u->ex, ins, false, -1, say->message) != DRV_OK)
		drv_error("uplink", "cannot record a refused step", "step=%s", ins->step_id);
	u->st->applied_seq = ins->seq;
	save_locked(u);
	count_reject(why, "instruction", msg);
}

/* A step id seen before: acknowledge and report its result; run nothing. */
static void duplicate_locked(struct uplink *u, const Drover__Instruction *ins,
                             const struct executor_step *known, struct executor_step *say)
{
	if (ins->seq > u->st->applied_seq) {
		u->st->applied_seq = ins->seq;
		save_locked(u);
	}
	drv_linkstats_inc(DRV_STAT_INSTR_DUPLICATE);
	drv_info("uplink", "step seen before: acknowledged, not run again",
	         "seq=%" PRIu64 " step=%s first_seq=%" PRIu64, ins->seq, ins->step_id, known->seq);
	*say = *known;
}

/*
 * The step could not be made durable (e.g. the state directory's disk is
 * full): never act on what is not on disk. The step is not run and its
 * sequence number stays consumed in memory, so the coordinator learns at
 * once, and for good, that it failed and why, and a later resend is a
 * duplicate that cannot run it late (after the deployment moved on).
 * Lock held.
 */
static void unsaved_locked(struct uplink *u, const Drover__Instruction *ins,
                           struct executor_step *say)
{
	told_failed(say, ins, "not run: the agent cannot save its state in %s: %s",
	            u->cfg.state_path, u->save_error);
	executor_step_record(u->ex, ins, false, -1, say->message); /* likely fails too */
	u->save_failures++;
	u->unsaved_now = true;
	drv_error("uplink", "instruction not run: state not saved",
	          "seq=%" PRIu64 " step=%s detail=\"%s\"", ins->seq, ins->step_id, u->save_error);
}

enum verdict { V_DROP, V_RUN, V_TELL };

/* Decide under the lock: run it, drop it, or only tell the coordinator *say. */
static enum verdict accept_locked(struct uplink *u, const Drover__Instruction *ins, int check,
                                  struct executor_step *say)
{
	struct executor_step rec, *known = NULL;

	if (executor_step_get(u->ex, ins->step_id, &rec) == DRV_OK)
		known = &rec;

	if (ins->seq <= u->st->applied_seq) {
		count_reject(DROVER__REJECT_REASON__REJECT_REPLAY, "instruction", ins->step_id);
		if (known == NULL || known->seq != ins->seq)
			return V_DROP;
		duplicate_locked(u, ins, known, say);
		return V_TELL;
	}
	if (known != NULL) {
		duplicate_locked(u, ins, known, say);
		return V_TELL;
	}
	if (check == DRV_EEXPIRED || check == DRV_EFUTURE) {
		refuse_locked(u, ins, drv_reject_reason(check),
		              check == DRV_EEXPIRED ? "expired" : "issued in the future", say);
		return V_TELL;
	}
	if (!image_pinned(ins)) {
		refuse_locked(u, ins, DROVER__REJECT_REASON__REJECT_NO_DIGEST,
		              "image not pinned by digest", say);
		return V_TELL;
	}
	u->st->applied_seq = ins->seq;
	if (save_locked(u) != DRV_OK) {
		unsaved_locked(u, ins, say);
		return V_TELL;
	}
	return V_RUN;
}

static void handle_instruction(struct uplink *u, const Drover__Instruction *ins)
{
	struct drv_replay_msg m = {ins->target_agent, ins->seq, ins->issued_at_ms,
	                           ins->expires_at_ms};
	struct executor_step say;
	enum verdict v;
	int check;

	if (ins->step_id == NULL || ins->step_id[0] == '\0' ||
	    strlen(ins->step_id) > LINKSTATE_STEP_ID_MAX) {
		count_reject(DROVER__REJECT_REASON__REJECT_MALFORMED, "instruction", "step id");
		return;
	}
	/* target, expiry and time only: the sequence is judged with the steps */
	check = drv_replay_check(&m, u->cfg.agent_id, 0, drv_wall_ms(), u->cfg.skew_ms);
	if (check == DRV_ETARGET || check == DRV_EINVAL) {
		count_reject(drv_reject_reason(check == DRV_ETARGET ? check : DRV_EDECODE),
		             "instruction", check == DRV_ETARGET ? "another agent's" : "bad times");
		return;
	}
	pthread_mutex_lock(&u->mu);
	v = accept_locked(u, ins, check, &say);
	pthread_mutex_unlock(&u->mu);
	if (v == V_TELL)
		link_report(u, ins, &say);
	if (v != V_RUN)
		return;
	drv_linkstats_inc(DRV_STAT_INSTR_APPLIED);
	drv_info("uplink", "instruction applied", "seq=%" PRIu64 " step=%s action=%d", ins->seq,
	         ins->step_id, (int)ins->action);
	check = executor_run(u->ex, ins, uplink_report, u);
	if (check != DRV_OK) {
		/* e.g. agent.db cannot grow: say so rather than leave the step hanging */
		drv_error("uplink", "executor refused the instruction", "step=%s error=%s",
		          ins->step_id, drv_errname(check));
		told_failed(&say, ins, "not run: the agent cannot record the step: %s",
		            drv_strerror(check));
		link_report(u, ins, &say);
	}
}

/* ---- the session: Hello, then polls ---- */

enum outcome {
	O_STOP,
	O_LOST,
	O_ACCEPTED,
	O_PENDING,
	O_REJECTED,
	O_REFUSED,
	O_CHALLENGE,
	O_FOREIGN, /* a reply for another agent or request: ignored */
	O_NEXT     /* this node does not lead (or no longer): try the next one */
};

static void fill_labels(struct uplink *u, Drover__KeyValue *kv, Drover__KeyValue **ptrs)
{
	for (size_t i = 0; i < u->cfg.labels->n; i++) {
		drover__key_value__init(&kv[i]);
		kv[i].key = u->cfg.labels->v[i].key;
		kv[i].value = u->cfg.labels->v[i].value;
		ptrs[i] = &kv[i];
	}
}

static int seal_hello(struct uplink *u, uint8_t **env, size_t *len)
{
	Drover__Hello h = DROVER__HELLO__INIT;
	Drover__KeyValue kv[64], *kvp[64];
	Drover__Release **rel = NULL;
	struct host_facts facts;
	size_t n_rel = 0;
	int rc;

	facts_collect(&facts);
	/* numbered as a Poll's list (poll_releases): the last report_seq
	 * taken before the list is read */
	pthread_mutex_lock(&u->mu);
	h.releases_seq = u->report_seq;
	pthread_mutex_unlock(&u->mu);
	if (executor_releases(u->ex, &rel, &n_rel) != DRV_OK)
		n_rel = 0;
	fill_labels(u, kv, kvp);
	h.agent_id = (char *)u->cfg.agent_id;
	h.public_key.data = (uint8_t *)u->cfg.key->pk;
	h.public_key.len = DRV_PK_LEN;
	h.agent_version = DROVER_VERSION;
	h.n_labels = u->cfg.labels->n < 64 ? u->cfg.labels->n : 64;
	h.labels = kvp;
	h.facts = &facts.msg;
	h.n_releases = n_rel;
	h.releases = rel;
	h.enroll_token = (char *)(u->cfg.enroll_token ? u->cfg.enroll_token : "");
	pthread_mutex_lock(&u->mu);
	h.applied_seq = u->st->applied_seq;
	pthread_mutex_unlock(&u->mu);
	h.proto_major = DRV_PROTO_MAJOR;
	pthread_mutex_lock(&u->mu);
	h.nonce.data = u->nonce;
	h.nonce.len = u->nonce_len;
	rc = seal(u, DROVER__BODY_TYPE__BODY_HELLO, &h.base, true, env, len);
	u->nonce_len = 0; /* a nonce starts one session at most */
	pthread_mutex_unlock(&u->mu);
	if (rel != NULL)
		executor_releases_free(rel, n_rel);
	return rc;
}

static enum outcome welcome(struct uplink *u, const Drover__Envelope *env,
                            const uint8_t req[REQ_HASH_LEN])
{
	Drover__Welcome *w;

	if (decode(env, DROVER__BODY_TYPE__BODY_WELCOME, (ProtobufCMessage **)&w) != DRV_OK)
		return O_LOST;
	if (!bound_to_me(u, w->agent_id, w->request_hash, req, "welcome")) {
		drv_msg_free(&w->base);
		return O_LOST;
	}
	pthread_mutex_lock(&u->mu);
	u->poll_timeout_ms = w->poll_timeout_ms >= 1000 ? w->poll_timeout_ms : 25000;
	u->heartbeat_ms = w->heartbeat_ms >= 100 ? w->heartbeat_ms : 5000;
	u->nonce_len = w->nonce.len <= sizeof(u->nonce) ? w->nonce.len : 0;
	memcpy(u->nonce, w->nonce.data, u->nonce_len);
	pthread_mutex_unlock(&u->mu);
	if (w->challenge) {
		drv_debug("uplink", "hello challenged: saying it again with the nonce");
		drv_msg_free(&w->base);
		return O_CHALLENGE;
	}
	u->welcomed = true;
	drv_info("uplink", "welcome", "status=%d message=\"%s\" skew_ms=%" PRId64, (int)w->status,
	         w->message ? w->message : "", drv_wall_ms() - w->server_time_ms);
	enum outcome o = w->status == DROVER__AGENT_STATUS__AGENT_ACCEPTED  ? O_ACCEPTED
	                 : w->status == DROVER__AGENT_STATUS__AGENT_PENDING ? O_PENDING
	                                                                    : O_REJECTED;
	drv_msg_free(&w->base);
	return o;
}

static enum outcome refused(struct uplink *u, const Drover__Envelope *env, const char *what,
                            const uint8_t req[REQ_HASH_LEN])
{
	Drover__Reject *rj;
	enum outcome o = O_LOST;

	if (decode(env, DROVER__BODY_TYPE__BODY_REJECT, (ProtobufCMessage **)&rj) != DRV_OK)
		return O_LOST;
	if (!bound_to_me(u, rj->agent_id, rj->request_hash, req, what)) {
		drv_msg_free(&rj->base);
		return O_FOREIGN;
	}
	drv_warn("uplink", "the coordinator refused", "what=%s reason=%s detail=\"%s\"", what,
	         drv_reject_name(rj->reason), rj->detail ? rj->detail : "");
	if (rj->reason == DROVER__REJECT_REASON__REJECT_ID_TAKEN ||
	    rj->reason == DROVER__REJECT_REASON__REJECT_VERSION)
		o = O_REFUSED;
	if (rj->reason == DROVER__REJECT_REASON__REJECT_NOT_LEADER ||
	    rj->reason == DROVER__REJECT_REASON__REJECT_STALE_EPOCH)
		o = O_NEXT;
	drv_msg_free(&rj->base);
	return o;
}

static int dial(struct uplink *u, struct node *n);

/* Close n's dialer and dial again: connects at once, and NNG's pause
 * between attempts starts again from reconnect_min. Poll thread only. */
static void redial_node(struct uplink *u, struct node *n, const char *why)
{
	drv_info("uplink", "redialing", "why=\"%s\" url=%s", why, n->url);
	nng_dialer_close(n->dialer);
	dial(u, n);
}

/* A request timed out: the connection under it may be one the peer has
 * left without our side noticing (seen with tls+tcp after a coordinator
 * restart: no close, no new dial, every later request timing out). A new
 * dialer closes the old one's pipes (requests in flight are resent on the
 * next) and connects afresh. Poll thread only. */
static void redial(struct uplink *u, const char *why)
{
	if (!stopping(u))
		redial_node(u, cur_node(u), why);
}

/* Between nodes of a group the waits stay short: during an election every
 * node may answer NOT_LEADER for a lease time, and the new leader should see
 * its agents within about a second of winning. */
#define NEXT_WAIT_MAX_MS 1000
/* A group's node without a connection is redialed when the session looks
 * for a node, first at once, then after 2 s, 4 s ... up to reconnect_max
 * while it stays down. NNG's own pause has grown to reconnect_max (30 s by
 * default) for a node that was down a while, e.g. a follower restarted a
 * minute ago: when the leader dies, that node must be tried now. */
#define REDIAL_MIN_MS 2000

/* Redial the group's nodes that have no connection and are due. The pauses
 * grow within one search for the leader; the first pass of a search (the
 * session was welcomed since the last pass) redials every node without a
 * connection at once: a node that was down during the previous search
 * (killed, then restarted as a follower) may be the next leader, and the
 * pause that search left it (up to reconnect_max) must not delay the
 * agent's move to it (tests/bench/failover.sh saw 10 s). Poll thread only. */
static void redial_idle(struct uplink *u, const char *why)
{
	int64_t now = drv_mono_ms();
	bool fresh = u->welcomed;

	u->welcomed = false;
	for (size_t i = 0; i < u->n_nodes && !stopping(u); i++) {
		struct node *n = &u->nodes[i];
		int64_t pause = REDIAL_MIN_MS;

		if (connected(n) || fresh) {
			n->redials = 0;
			n->redial_at = 0;
		}
		if (connected(n))
			continue;
		if (now < n->redial_at)
			continue;
		for (unsigned k = 0; k < n->redials && pause < u->cfg.reconnect_max_ms; k++)
			pause *= 2;
		if (pause > u->cfg.reconnect_max_ms)
			pause = u->cfg.reconnect_max_ms;
		n->redials++;
		n->redial_at = now + jitter(pause, 20);
		redial_node(u, n, why);
	}
}

/* Make node k the session's; the requests still waiting on the one before
 * end (the report thread follows the session). Poll thread only. */
static void set_cur(struct uplink *u, size_t k)
{
	struct node *was = cur_node(u);

	pthread_mutex_lock(&u->req_mu);
	atomic_store(&u->cur, k);
	pthread_mutex_unlock(&u->req_mu);
	if (was != &u->nodes[k])
		leave(u, was, LEAVE_NODE);
	pthread_mutex_lock(&u->mu);
	u->status_dirty = true;
	pthread_mutex_unlock(&u->mu);
}

/* Make the next node the session's: the first after the current one with a
 * live connection, else the current one if it has one (a follower about to
 * lead: asked again after next_wait), else simply the next (the poll thread
 * then waits for a connection, await_connection). Nodes without a
 * connection are redialed when due. Poll thread only. */
static void next_node(struct uplink *u, const char *why)
{
	size_t from = atomic_load(&u->cur), pick = (from + 1) % u->n_nodes;

	redial_idle(u, "the session looks for the leader");
	for (size_t i = 1; i <= u->n_nodes; i++) {
		size_t k = (from + i) % u->n_nodes;
		if (connected(&u->nodes[k])) {
			pick = k;
			break;
		}
	}
	set_cur(u, pick);
	u->hello_timeouts = 0;
	drv_info("uplink",
	         pick == from ? "asking the same node again: no other node is connected"
	                      : "trying another coordinator node",
	         "why=\"%s\" from=%s to=%s", why, u->nodes[from].url, u->nodes[pick].url);
}

/*
 * A group: a Hello goes only to a node with a connection (to one without,
 * NNG would hold it until the request timeout). While no node has one, wait
 * for a connection (pipe_event wakes us), redialing the nodes when due.
 * false: stopping.
 */
static bool await_connection(struct uplink *u)
{
	bool told = false;

	while (!stopping(u)) {
		uint64_t seen = count_of(u, &u->connects);

		if (connected(cur_node(u)))
			return true;
		if (other_connected(u, cur_node(u))) {
			next_node(u, "the node has no connection");
			return true;
		}
		if (!told)
			drv_info("uplink", "no coordinator node is connected: waiting for one",
			         "nodes=%zu", u->n_nodes);
		told = true;
		redial_idle(u, "no coordinator node is connected");
		if (!nap_for(u, jitter(NEXT_WAIT_MAX_MS, 25), &u->connects, seen))
			return false;
	}
	return false;
}

static enum outcome say_hello(struct uplink *u)
{
	Drover__Envelope *env;
	nng_msg *reply = NULL;
	enum outcome o = O_LOST;
	uint8_t *buf, req[REQ_HASH_LEN];
	struct node *n;
	size_t len;
	int rv;

	if (seal_hello(u, &buf, &len) != DRV_OK)
		return O_LOST;
	request_hash(buf, len, req);
	n = cur_node(u);
	rv = request(u, &u->preq, n, n->poll_ctx, buf, len, u->cfg.request_timeout_ms, &reply);
	free(buf);
	if (rv != 0) {
		if (rv == NNG_ECLOSED || stopping(u))
			return O_STOP;
		drv_info("uplink", "no answer to hello", "error=\"%s\" url=%s", nng_strerror(rv),
		         n->url);
		if (u->n_nodes > 1)
			return O_NEXT; /* its dialer keeps trying in the background */
		/* after 1, 2, 4, 8 ... in a row: a coordinator that is down
		 * does not make every agent churn its dialer */
		if (rv == NNG_ETIMEDOUT) {
			unsigned k = ++u->hello_timeouts;
			if ((k & (k - 1)) == 0)
				redial(u, "no answer to hello");
		}
		return O_LOST;
	}
	u->hello_timeouts = 0;
	if ((rv = open_reply(u, n, reply, &env)) == DRV_ESTALE) {
		o = O_NEXT;
	} else if (rv == DRV_OK) {
		if (env->type == DROVER__BODY_TYPE__BODY_WELCOME)
			o = welcome(u, env, req);
		else if (env->type == DROVER__BODY_TYPE__BODY_REJECT)
			o = refused(u, env, "hello", req);
		else
			count_reject(DROVER__REJECT_REASON__REJECT_MALFORMED, "hello reply",
			             "unexpected type");
		drv_env_free(env);
	}
	nng_msg_free(reply);
	return o;
}

/* What runs now, for drift: attached to p when it changed (or now and
 * then, or after a report that carried releases). p->releases_seq is the
 * last report_seq taken before the list is read: a report's list is read
 * before it gets its number, so one numbered at most that is older than
 * this list, one numbered above it may be newer (docs/protocol.md,
 * "Release lists"). The caller frees *rel with executor_releases_free. */
static void poll_releases(struct uplink *u, Drover__Poll *p, Drover__Release ***rel, size_t *n)
{
	uint8_t h[crypto_generichash_BYTES];
	crypto_generichash_state st;
	uint64_t seq;
	bool reported;

	*rel = NULL;
	*n = 0;
	pthread_mutex_lock(&u->mu);
	seq = u->report_seq;
	reported = u->rel_reported;
	u->rel_reported = false;
	pthread_mutex_unlock(&u->mu);
	if (u->ex == NULL || executor_releases(u->ex, rel, n) != DRV_OK) {
		if (reported) {
			pthread_mutex_lock(&u->mu);
			u->rel_reported = true; /* next time */
			pthread_mutex_unlock(&u->mu);
		}
		return;
	}
	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	for (size_t i = 0; i < *n; i++) {
		size_t len = drover__release__get_packed_size((*rel)[i]);
		uint8_t *buf = malloc(len ? len : 1);

		if (buf == NULL)
			continue;
		drover__release__pack((*rel)[i], buf);
		crypto_generichash_update(&st, buf, len);
		free(buf);
	}
	crypto_generichash_final(&st, h, sizeof(h));
	if (!reported && memcmp(h, u->rel_sent, sizeof(h)) == 0 &&
	    ++u->polls_since_rel < POLL_RELEASES_EVERY)
		return;
	memcpy(u->rel_sent, h, sizeof(h));
	u->polls_since_rel = 0;
	p->releases = *rel;
	p->n_releases = *n;
	p->has_releases = true;
	p->releases_seq = seq;
}

static int seal_poll(struct uplink *u, uint8_t **env, size_t *len)
{
	Drover__Poll p = DROVER__POLL__INIT;
	Drover__Release **rel;
	size_t n_rel;
	int rc;

	p.agent_id = (char *)u->cfg.agent_id;
	pthread_mutex_lock(&u->mu);
	p.applied_seq = u->st->applied_seq;
	pthread_mutex_unlock(&u->mu);
	p.sent_at_ms = drv_wall_ms();
	randombytes_buf(&p.nonce, sizeof(p.nonce));
	poll_releases(u, &p, &rel, &n_rel);
	rc = seal(u, DROVER__BODY_TYPE__BODY_POLL, &p.base, false, env, len);
	executor_releases_free(rel, n_rel);
	return rc;
}

/* An Idle must name this agent and this poll. */
static void idle_answer(struct uplink *u, const Drover__Envelope *env,
                        const uint8_t req[REQ_HASH_LEN])
{
	Drover__Idle *idle;

	if (decode(env, DROVER__BODY_TYPE__BODY_IDLE, (ProtobufCMessage **)&idle) != DRV_OK)
		return;
	bound_to_me(u, idle->agent_id, idle->request_hash, req, "idle");
	drv_msg_free(&idle->base);
}

/* One poll answer: O_ACCEPTED while the session goes on, else how it ended. */
static enum outcome poll_answer(struct uplink *u, const Drover__Envelope *env,
                                const uint8_t req[REQ_HASH_LEN])
{
	enum outcome o;

	Drover__Instruction *ins;

	switch (env->type) {
	case DROVER__BODY_TYPE__BODY_INSTRUCTION:
		if (decode(env, DROVER__BODY_TYPE__BODY_INSTRUCTION, (ProtobufCMessage **)&ins) ==
		    DRV_OK) {
			handle_instruction(u, ins);
			drv_msg_free(&ins->base);
		}
		return O_ACCEPTED;
	case DROVER__BODY_TYPE__BODY_IDLE: idle_answer(u, env, req); return O_ACCEPTED;
	case DROVER__BODY_TYPE__BODY_REJECT:
		/* a reject meant for somebody else does not end this session */
		o = refused(u, env, "poll", req);
		return o == O_FOREIGN ? O_ACCEPTED : o == O_NEXT ? O_NEXT : O_LOST;
	default:
		count_reject(DROVER__REJECT_REASON__REJECT_MALFORMED, "poll reply",
		             "unexpected type");
		return O_ACCEPTED;
	}
}

/* After an instruction that could not be saved: how long to wait before the
 * next poll (0: none), so a full disk never makes the link spin. */
static int64_t unsaved_wait(struct uplink *u)
{
	int64_t ms = 0;

	pthread_mutex_lock(&u->mu);
	if (u->unsaved_now && u->save_failures > 0)
		ms = backoff(u, u->save_failures - 1);
	u->unsaved_now = false;
	pthread_mutex_unlock(&u->mu);
	return ms;
}

static enum outcome poll_loop(struct uplink *u)
{
	unsigned bad = 0;

	while (!stopping(u)) {
		Drover__Envelope *env;
		nng_msg *reply = NULL;
		uint8_t *buf, req[REQ_HASH_LEN];
		struct node *n;
		size_t len;
		enum outcome o = O_ACCEPTED;
		int64_t wait;
		int rv;

		if (seal_poll(u, &buf, &len) != DRV_OK)
			return O_LOST;
		request_hash(buf, len, req);
		n = cur_node(u);
		rv = request(u, &u->preq, n, n->poll_ctx, buf, len,
		             (int64_t)u->poll_timeout_ms + u->cfg.request_timeout_ms, &reply);
		free(buf);
		if (rv != 0) {
			if (rv == NNG_ECLOSED || stopping(u))
				return O_STOP;
			drv_info("uplink", "poll failed", "error=\"%s\" url=%s", nng_strerror(rv),
			         n->url);
			if (u->n_nodes > 1)
				return O_NEXT; /* the node went away: another may lead now */
			if (rv == NNG_ETIMEDOUT)
				redial(u, "poll timed out");
			return O_LOST;
		}
		if ((rv = open_reply(u, n, reply, &env)) == DRV_OK) {
			o = poll_answer(u, env, req);
			drv_env_free(env);
			bad = 0;
		} else if (rv == DRV_ESTALE) {
			o = O_NEXT; /* an old leader: never again from this one */
		} else if (!nap(u, backoff(u, bad++))) { /* garbage: do not spin */
			o = O_LOST;
		}
		if (o == O_ACCEPTED && (wait = unsaved_wait(u)) > 0 && !nap(u, wait))
			o = O_LOST;
		nng_msg_free(reply);
		if (o != O_ACCEPTED)
			return o;
	}
	return O_STOP;
}

static int64_t next_wait(const struct uplink *u, unsigned attempt)
{
	int64_t w = backoff(u, attempt);

	return w < NEXT_WAIT_MAX_MS ? w : jitter(NEXT_WAIT_MAX_MS, 25);
}

static void *poll_main(void *arg)
{
	struct uplink *u = arg;
	unsigned attempt = 0, challenges = 0;

	while (!stopping(u)) {
		enum outcome o;
		int64_t wait;

		if (u->n_nodes > 1 && !await_connection(u))
			break;
		o = say_hello(u);
		if (o == O_CHALLENGE && challenges++ < 3)
			continue; /* answer it at once (the nonce is fresh for a minute) */
		if (o != O_CHALLENGE)
			challenges = 0;
		switch (o) {
		case O_STOP: return NULL;
		case O_ACCEPTED:
			set_session(u, S_ACCEPTED);
			drv_linkstats_inc(DRV_STAT_SESSIONS);
			attempt = 0;
			o = poll_loop(u);
			if (o == O_STOP)
				return NULL;
			set_session(u, S_CONNECTING);
			if (o == O_NEXT) {
				next_node(u, "the node does not lead");
				wait = next_wait(u, attempt++);
			} else {
				wait = backoff(u, attempt++);
			}
			break;
		case O_NEXT:
			set_session(u, S_CONNECTING);
			next_node(u, "the node does not lead or does not answer");
			wait = next_wait(u, attempt++);
			break;
		case O_PENDING:
			set_session(u, S_PENDING);
			wait = jitter(u->heartbeat_ms, 20);
			break;
		case O_REJECTED:
			set_session(u, S_REJECTED);
			wait = jitter(u->cfg.reconnect_max_ms, 20);
			break;
		case O_REFUSED:
			set_session(u, S_REFUSED);
			wait = jitter(u->cfg.reconnect_max_ms, 20);
			break;
		default: set_session(u, S_CONNECTING); wait = backoff(u, attempt++);
		}
		if (!nap(u, wait))
			break;
	}
	return NULL;
}

/* ---- connection ---- */

static int tls_client(struct uplink *u, nng_dialer d)
{
	nng_tls_config *tls;
	int rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_CLIENT);

	if (rv != 0)
		return rv;
	rv = nng_tls_config_ca_file(tls, u->cfg.tls_ca);
	if (rv == 0)
		rv = nng_tls_config_server_name(tls, u->cfg.tls_server_name);
	if (rv == 0)
		rv = nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_REQUIRED);
	if (rv == 0)
		rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls);
	nng_tls_config_free(tls);
	if (rv != 0)
		drv_error("uplink", "TLS setup failed", "ca=%s error=\"%s\"", u->cfg.tls_ca,
		          nng_strerror(rv));
	return rv;
}

static int dial(struct uplink *u, struct node *n)
{
	nng_dialer d;
	int rv = nng_dialer_create(&d, n->sock, n->url);

	if (rv == 0 && strncmp(n->url, "tls+tcp://", 10) == 0)
		rv = tls_client(u, d);
	if (rv == 0)
		rv = nng_dialer_set_ms(d, NNG_OPT_RECONNMINT,
		                       (nng_duration)jitter(u->cfg.reconnect_min_ms, 50));
	if (rv == 0)
		rv = nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT,
		                       (nng_duration)u->cfg.reconnect_max_ms);
	if (rv == 0)
		rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
	if (rv == 0)
		n->dialer = d;
	if (rv != 0)
		drv_error("uplink", "cannot dial", "url=%s error=\"%s\"", n->url, nng_strerror(rv));
	return rv;
}

/*
 * Pipe events of a node's socket (NNG's threads). In a group, the loss of a
 * node's last connection ends the requests waiting on it at once: NNG would
 * resend them only on a new connection to that same node, which a dead
 * leader never accepts again. A connection to a node ends the requests
 * waiting on a node that has none, and wakes a session waiting for one.
 */
static void pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct node *n = arg;
	struct uplink *u = n->u;

	(void)p;
	if (ev == NNG_PIPE_EV_ADD_POST) {
		atomic_fetch_add(&n->pipes, 1);
		pthread_mutex_lock(&u->mu);
		u->connects++;
		pthread_cond_broadcast(&u->cv);
		pthread_mutex_unlock(&u->mu);
		leave(u, n, LEAVE_UNCONNECTED);
		return;
	}
	if (atomic_fetch_sub(&n->pipes, 1) <= 0)
		atomic_fetch_add(&n->pipes, 1); /* a pipe that was never added */
	if (!connected(n))
		leave(u, n, LEAVE_NODE);
}

static int open_node(struct uplink *u, struct node *n)
{
	int rv = nng_req0_open(&n->sock);

	if (rv != 0)
		return rv;
	n->redial_at = drv_mono_ms() + REDIAL_MIN_MS; /* its first dial is under way */
	n->sock_open = true;
	if ((rv = nng_socket_set_size(n->sock, NNG_OPT_RECVMAXSZ, UPLINK_RECV_MAX)) != 0 ||
	    (rv = nng_socket_set_bool(n->sock, NNG_OPT_TCP_KEEPALIVE, true)) != 0 ||
	    (rv = nng_pipe_notify(n->sock, NNG_PIPE_EV_ADD_POST, pipe_event, n)) != 0 ||
	    (rv = nng_pipe_notify(n->sock, NNG_PIPE_EV_REM_POST, pipe_event, n)) != 0 ||
	    (rv = nng_ctx_open(&n->poll_ctx, n->sock)) != 0 ||
	    (rv = nng_ctx_open(&n->report_ctx, n->sock)) != 0)
		return rv;
	/* we time requests out ourselves; with the resend timer off, NNG 1.5.2
	 * ends a request whose connection closes (NNG_ECONNRESET) and the
	 * caller sends it again (req0_pipe_close) */
	nng_ctx_set_ms(n->poll_ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_ctx_set_ms(n->report_ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	return dial(u, n);
}

static int open_socket(struct uplink *u)
{
	int rv;

	if ((rv = nng_aio_alloc(&u->poll_aio, NULL, NULL)) != 0 ||
	    (rv = nng_aio_alloc(&u->report_aio, NULL, NULL)) != 0)
		return rv;
	u->preq.aio = u->poll_aio;
	u->rreq.aio = u->report_aio;
	for (size_t i = 0; i < u->n_nodes; i++) {
		rv = open_node(u, &u->nodes[i]);
		if (rv != 0)
			return rv;
	}
	return 0;
}

/*
 * A link state file from before agent.db held every step keeps the last
 * steps and their results: move the ones agent.db does not know there (a
 * step the link refused never reached the executor), then rewrite the file
 * without them. A step still ACCEPTED there never started.
 */
static void move_old_steps(struct uplink *u)
{
	size_t moved = 0;

	for (size_t i = 0; i < u->st->n_steps; i++) {
		const struct linkstate_step *o = &u->st->steps[i];
		Drover__Instruction ins = DROVER__INSTRUCTION__INIT;
		struct executor_step known;
		bool ok = o->result == DROVER__STEP_RESULT__STEP_SUCCEEDED;
		bool done = ok || o->result == DROVER__STEP_RESULT__STEP_FAILED;

		if (executor_step_get(u->ex, o->step_id, &known) == DRV_OK)
			continue;
		ins.step_id = (char *)o->step_id;
		ins.deployment_id = (char *)o->deployment_id;
		ins.seq = o->seq;
		if (executor_step_record(u->ex, &ins, ok, done ? o->exit_code : -1,
		                         done ? o->message
		                              : "not run: accepted before an agent restart") ==
		    DRV_OK)
			moved++;
	}
	if (u->st->n_steps == 0)
		return;
	drv_info("uplink", "steps of the old link state moved to agent.db", "steps=%zu moved=%zu",
	         u->st->n_steps, moved);
	u->st->n_steps = 0;
	pthread_mutex_lock(&u->mu);
	save_locked(u);
	pthread_mutex_unlock(&u->mu);
}

int uplink_start(struct uplink *u, struct executor *ex)
{
	int rv;

	u->ex = ex;
	move_old_steps(u);
	rv = open_socket(u);
	if (rv != 0) {
		drv_error("uplink", "cannot open the link", "error=\"%s\"", nng_strerror(rv));
		return DRV_EIO;
	}
	if (pthread_create(&u->poll_thr, NULL, poll_main, u) != 0)
		return DRV_ESYS;
	if (pthread_create(&u->report_thr, NULL, report_main, u) != 0) {
		u->threads = false; /* join the poll thread alone */
		uplink_stop(u);
		pthread_join(u->poll_thr, NULL);
		return DRV_ESYS;
	}
	u->threads = true;
	for (size_t i = 0; i < u->n_nodes; i++)
		drv_info("uplink", "dialing", "url=%s agent=%s key=%s", u->nodes[i].url,
		         u->cfg.agent_id, u->cfg.key->id);
	return DRV_OK;
}

static void close_socket(void *arg)
{
	nng_close(*(nng_socket *)arg);
}

/* Stopping the aios first ends a request in flight at once and makes every
 * later one fail, so the threads return without the socket's help. The
 * close is bounded: NNG 1.5.2 can hang closing a connection while a message
 * arrives on it (docs/reliability.md). */
int uplink_stop(struct uplink *u)
{
	int rc = DRV_OK;

	pthread_mutex_lock(&u->mu);
	u->stopping = true;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->mu);
	if (u->poll_aio != NULL)
		nng_aio_stop(u->poll_aio);
	if (u->report_aio != NULL)
		nng_aio_stop(u->report_aio);
	if (u->threads) {
		pthread_join(u->poll_thr, NULL);
		pthread_join(u->report_thr, NULL);
		u->threads = false;
	}
	for (size_t i = 0; i < u->n_nodes; i++) {
		struct node *n = &u->nodes[i];
		if (n->sock_open && !u->close_abandoned)
			rc = drv_run_within(UPLINK_CLOSE_MS, "closing the NNG socket", close_socket,
			                    &n->sock);
		n->sock_open = false;
		if (rc != DRV_OK)
			u->close_abandoned = true;
	}
	return u->close_abandoned ? DRV_ETIMEDOUT : DRV_OK;
}

/* ---- lifecycle and status ---- */

int uplink_new(const struct uplink_config *cfg, struct uplink **out)
{
	struct uplink *u = calloc(1, sizeof(*u));
	pthread_condattr_t ca;
	int rc;

	if (u == NULL || (u->st = calloc(1, sizeof(*u->st))) == NULL) {
		free(u);
		return DRV_ENOMEM;
	}
	u->cfg = *cfg;
	if (cfg->urls == NULL || cfg->urls->n == 0 || cfg->urls->n > UPLINK_NODES_MAX) {
		free(u->st);
		free(u);
		return DRV_EINVAL;
	}
	u->n_nodes = cfg->urls->n;
	for (size_t i = 0; i < u->n_nodes; i++) {
		u->nodes[i].u = u;
		u->nodes[i].url = cfg->urls->v[i];
	}
	rc = linkstate_load(cfg->state_path, u->st);
	if (rc != DRV_OK) {
		drv_error("uplink", "cannot read the link state", "path=%s error=%s",
		          cfg->state_path, drv_errname(rc));
		free(u->st);
		free(u);
		return rc;
	}
	u->report_seq = u->st->report_seq_reserved;
	u->poll_timeout_ms = 25000;
	u->heartbeat_ms = 5000;
	u->status_dirty = true;
	pthread_mutex_init(&u->mu, NULL);
	pthread_mutex_init(&u->req_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&u->cv, &ca);
	pthread_condattr_destroy(&ca);
	drv_info("uplink", "link state loaded",
	         "applied_seq=%" PRIu64 " epoch=%" PRIu64 " steps=%zu", u->st->applied_seq,
	         u->st->epoch, u->st->n_steps);
	*out = u;
	return DRV_OK;
}

void uplink_free(struct uplink *u)
{
	struct rq_item *it, *next;

	if (u == NULL)
		return;
	uplink_stop(u);
	nng_aio_free(u->poll_aio);
	nng_aio_free(u->report_aio);
	for (it = u->rq_head; it != NULL; it = next) {
		next = it->next;
		free(it->packed);
		free(it);
	}
	pthread_mutex_destroy(&u->mu);
	pthread_mutex_destroy(&u->req_mu);
	pthread_cond_destroy(&u->cv);
	free(u->st);
	free(u);
}

void uplink_write_status(struct uplink *u)
{
	char text[1024];
	int n;

	pthread_mutex_lock(&u->mu);
	if (!u->status_dirty) {
		pthread_mutex_unlock(&u->mu);
		return;
	}
	n = snprintf(text, sizeof(text),
	             "{\"agent_id\": \"%s\", \"session\": \"%s\", \"coordinator\": \"%s\", "
	             "\"epoch\": %" PRIu64 ", \"applied_seq\": %" PRIu64
	             ", \"report_seq\": %" PRIu64 ", \"reports_queued\": %zu}\n",
	             u->cfg.agent_id, session_names[u->session], cur_node(u)->url, u->st->epoch,
	             u->st->applied_seq, u->report_seq, u->rq_len);
	u->status_dirty = false;
	pthread_mutex_unlock(&u->mu);
	if (n > 0 && (size_t)n < sizeof(text))
		drv_write_atomic(u->cfg.status_path, text, (size_t)n, 0644);
}
