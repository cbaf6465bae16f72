/* fsim_agent.c: one virtual agent of the fleet simulator, on NNG aio. */
#include "fsim.h"

#include <nng/protocol/reqrep0/req.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "err.h"

#define RECV_MAX (4u << 20)

enum pstate { P_IDLE, P_HELLO_SEND, P_HELLO_RECV, P_POLL_SEND, P_POLL_RECV, P_NAP };
enum rstate { R_IDLE, R_SEND, R_RECV, R_NAP };

struct fsim_report {
	struct fsim_report *next;
	Drover__StepResult result;
	uint64_t instr_seq;
	char *step_id, *deployment_id, *service, *version, *digest;
	uint32_t port;
	uint64_t duration_ms;
	bool round_ack; /* the ACCEPTED of the round's first instruction */
	uint8_t *env;   /* sealed on the first send, resent as is */
	size_t len;
	uint64_t seq;
};

struct fsim_work {
	struct fsim_work *next;
	Drover__Action action;
	uint64_t seq;
	char *step_id, *deployment_id, *service, *version, *digest;
	uint32_t port;
	int64_t ms;
};

int64_t fsim_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t fsim_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void fsim_fleet_notify(struct fsim_fleet *f)
{
	pthread_mutex_lock(&f->mu);
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static bool stopping(const struct fsim_agent *a)
{
	return atomic_load(&a->f->stopping);
}

static char *dup_or_empty(const char *s)
{
	return strdup(s != NULL ? s : "");
}

/* Exponential backoff, half fixed and half random. */
static int64_t backoff(const struct fsim_agent *a, unsigned fails)
{
	int64_t ms = a->f->reconnect_min_ms;

	while (fails-- > 0 && ms < a->f->reconnect_max_ms)
		ms *= 2;
	if (ms > a->f->reconnect_max_ms)
		ms = a->f->reconnect_max_ms;
	return ms / 2 + (int64_t)randombytes_uniform((uint32_t)(ms / 2 + 1));
}

/* Hand buf (copied) to ctx; the aio's callback hears the outcome. False
 * (nothing started) if out of memory. */
static bool send_buf(nng_ctx ctx, nng_aio *aio, const uint8_t *buf, size_t len, int64_t timeout)
{
	nng_msg *m;

	if (nng_msg_alloc(&m, 0) != 0)
		return false;
	if (nng_msg_append(m, buf, len) != 0) {
		nng_msg_free(m);
		return false;
	}
	nng_aio_set_msg(aio, m);
	nng_aio_set_timeout(aio, (nng_duration)timeout);
	nng_ctx_send(ctx, aio);
	return true;
}

/* A verified reply from the coordinator; NULL (counted) if it is not. */
static Drover__Envelope *open_reply(struct fsim_agent *a, nng_msg *m)
{
	Drover__Envelope *env = NULL;

	if (drv_env_parse(nng_msg_body(m), nng_msg_len(m), DRV_ENV_MAX, &env) != DRV_OK ||
	    env->sender == NULL || strcmp(env->sender, DRV_COORDINATOR_SENDER) != 0 ||
	    drv_env_verify_ring(env, &a->f->ring) != DRV_OK) {
		drv_env_free(env);
		atomic_fetch_add(&a->f->rejects, 1);
		return NULL;
	}
	return env;
}

/* ---- reports ---- */

static void report_free(struct fsim_report *r)
{
	if (r == NULL)
		return;
	free(r->step_id);
	free(r->deployment_id);
	free(r->service);
	free(r->version);
	free(r->digest);
	free(r->env);
	free(r);
}

/* Queue a report about work item w (lock held). */
static void queue_report_locked(struct fsim_agent *a, const struct fsim_work *w,
                                Drover__StepResult result, bool round_ack)
{
	struct fsim_report *r = calloc(1, sizeof(*r));

	if (r == NULL || (r->step_id = dup_or_empty(w->step_id)) == NULL ||
	    (r->deployment_id = dup_or_empty(w->deployment_id)) == NULL ||
	    (r->service = dup_or_empty(w->service)) == NULL ||
	    (r->version = dup_or_empty(w->version)) == NULL ||
	    (r->digest = dup_or_empty(w->digest)) == NULL) {
		report_free(r);
		atomic_fetch_add(&a->f->errors, 1);
		return;
	}
	r->result = result;
	r->instr_seq = w->seq;
	r->port = w->port;
	r->duration_ms = result == DROVER__STEP_RESULT__STEP_SUCCEEDED ? (uint64_t)w->ms : 0;
	r->round_ack = round_ack;
	if (a->rq_tail != NULL)
		a->rq_tail->next = r;
	else
		a->rq_head = r;
	a->rq_tail = r;
	atomic_fetch_add(&a->f->n_reports_out, 1);
}

static int seal_report(struct fsim_agent *a, struct fsim_report *r)
{
	Drover__Report rep = DROVER__REPORT__INIT;
	Drover__Release rel = DROVER__RELEASE__INIT, *relp = &rel;

	pthread_mutex_lock(&a->mu);
	r->seq = ++a->report_seq;
	pthread_mutex_unlock(&a->mu);
	rep.agent_id = a->id;
	rep.report_seq = r->seq;
	rep.deployment_id = r->deployment_id;
	rep.step_id = r->step_id;
	rep.instruction_seq = r->instr_seq;
	rep.result = r->result;
	rep.message = r->result == DROVER__STEP_RESULT__STEP_ACCEPTED ? "accepted" : "done";
	rep.sent_at_ms = fsim_wall_us() / 1000;
	rep.service = r->service;
	rep.duration_ms = r->duration_ms;
	if (r->result == DROVER__STEP_RESULT__STEP_SUCCEEDED && r->service[0] != '\0') {
		rel.service = r->service;
		rel.version = r->version;
		rel.digest = r->digest;
		rel.state = DROVER__RELEASE_STATE__RELEASE_RUNNING;
		rel.healthy = true;
		rel.port = r->port;
		rep.releases = &relp;
		rep.n_releases = 1;
	}
	return drv_env_seal(&a->kp, a->id, DROVER__BODY_TYPE__BODY_REPORT, &rep.base, false,
	                    &r->env, &r->len);
}

static void report_nap(struct fsim_agent *a)
{
	atomic_fetch_add(&a->f->errors, 1);
	a->rstate = R_NAP;
	nng_sleep_aio((nng_duration)backoff(a, a->r_fail++), a->rnap);
}

/* Start sending the head report if the report context is free. */
static void kick_reports(struct fsim_agent *a)
{
	struct fsim_report *r = NULL;

	pthread_mutex_lock(&a->mu);
	if (a->rstate == R_IDLE && a->rq_head != NULL && !stopping(a)) {
		a->rstate = R_SEND;
		r = a->rq_head;
	}
	pthread_mutex_unlock(&a->mu);
	if (r == NULL)
		return;
	if ((r->env == NULL && seal_report(a, r) != DRV_OK) ||
	    !send_buf(a->rctx, a->raio, r->env, r->len, a->f->request_timeout_ms))
		report_nap(a); /* tried again after a nap */
}

/* Did the coordinator take report r (an Ack, or "already processed")? */
static bool report_taken(struct fsim_agent *a, const struct fsim_report *r, nng_msg *m)
{
	Drover__Envelope *env = open_reply(a, m);
	ProtobufCMessage *body = NULL;
	bool ok = false;

	if (env == NULL)
		return false;
	if (env->type == DROVER__BODY_TYPE__BODY_ACK &&
	    drv_env_decode(env, DROVER__BODY_TYPE__BODY_ACK, &body) == DRV_OK)
		ok = ((Drover__Ack *)body)->seq == r->seq;
	else if (env->type == DROVER__BODY_TYPE__BODY_REJECT &&
	         drv_env_decode(env, DROVER__BODY_TYPE__BODY_REJECT, &body) == DRV_OK)
		ok = ((Drover__Reject *)body)->reason == DROVER__REJECT_REASON__REJECT_REPLAY &&
		     ((Drover__Reject *)body)->seq == r->seq;
	if (!ok)
		atomic_fetch_add(&a->f->rejects, 1);
	if (body != NULL)
		drv_msg_free(body);
	drv_env_free(env);
	return ok;
}

static void report_done(struct fsim_agent *a)
{
	struct fsim_report *r;
	bool round_ack = false;

	pthread_mutex_lock(&a->mu);
	r = a->rq_head;
	a->rq_head = r->next;
	if (a->rq_head == NULL)
		a->rq_tail = NULL;
	if (r->round_ack && a->round_ack_wall_us == 0) {
		a->round_ack_wall_us = fsim_wall_us();
		round_ack = true;
	}
	a->rstate = R_IDLE;
	a->r_fail = 0;
	pthread_mutex_unlock(&a->mu);
	atomic_fetch_add(&a->f->reports, 1);
	atomic_fetch_sub(&a->f->n_reports_out, 1);
	if (round_ack) {
		atomic_fetch_add(&a->f->n_round_ack, 1);
		fsim_fleet_notify(a->f);
	} else if (atomic_load(&a->f->n_reports_out) == 0 && atomic_load(&a->f->n_work_out) == 0) {
		fsim_fleet_notify(a->f);
	}
	report_free(r);
	kick_reports(a);
}

/* A reply that completed with 0 carries a message; one that does not (a
 * timeout reported as success by an NNG with the sleep bug, see fsim.h) is
 * an error, not a NULL to parse. */
static int reply_result(nng_aio *aio)
{
	int rv = nng_aio_result(aio);

	return rv == 0 && nng_aio_get_msg(aio) == NULL ? NNG_EINTERNAL : rv;
}

static void report_cb(void *arg)
{
	struct fsim_agent *a = arg;
	int rv = nng_aio_result(a->raio);
	nng_msg *m;

	if (stopping(a))
		return;
	if (a->rstate == R_RECV)
		rv = reply_result(a->raio);
	switch (a->rstate) {
	case R_SEND:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(a->raio));
			break;
		}
		a->rstate = R_RECV;
		nng_aio_set_timeout(a->raio, (nng_duration)a->f->request_timeout_ms);
		nng_ctx_recv(a->rctx, a->raio);
		return;
	case R_RECV:
		if (rv != 0)
			break;
		m = nng_aio_get_msg(a->raio);
		if (report_taken(a, a->rq_head, m)) {
			nng_msg_free(m);
			report_done(a);
			return;
		}
		nng_msg_free(m);
		break;
	default: return;
	}
	report_nap(a);
}

/* The nap after a failed report is over: resend the same sealed report. */
static void report_nap_cb(void *arg)
{
	struct fsim_agent *a = arg;

	if (stopping(a))
		return;
	pthread_mutex_lock(&a->mu);
	a->rstate = R_IDLE;
	pthread_mutex_unlock(&a->mu);
	kick_reports(a);
}

/* ---- simulated work ---- */

static void work_free(struct fsim_work *w)
{
	if (w == NULL)
		return;
	free(w->step_id);
	free(w->deployment_id);
	free(w->service);
	free(w->version);
	free(w->digest);
	free(w);
}

static int64_t work_ms(const struct fsim_timing *t, Drover__Action act)
{
	switch (act) {
	case DROVER__ACTION__ACTION_PRESTAGE: return t->pull_ms;
	case DROVER__ACTION__ACTION_START: return t->restart_ms + t->health_ms;
	case DROVER__ACTION__ACTION_STOP: return t->restart_ms;
	case DROVER__ACTION__ACTION_ACTIVATE_PREVIOUS: return t->restart_ms + t->health_ms;
	case DROVER__ACTION__ACTION_HEALTH_CHECK: return t->health_ms;
	case DROVER__ACTION__ACTION_RUN_HOOK: return t->hook_ms;
	default: return 0;
	}
}

/* Finish the head work item (lock held): SUCCEEDED, next item. Returns the
 * next item's duration, or -1 if the queue is empty. */
static int64_t work_done_locked(struct fsim_agent *a)
{
	struct fsim_work *w = a->wq_head;

	queue_report_locked(a, w, DROVER__STEP_RESULT__STEP_SUCCEEDED, false);
	atomic_fetch_sub(&a->f->n_work_out, 1);
	a->wq_head = w->next;
	if (a->wq_head == NULL)
		a->wq_tail = NULL;
	work_free(w);
	if (a->wq_head == NULL) {
		a->working = false;
		return -1;
	}
	return a->wq_head->ms;
}

/* Run queued work: zero-time items at once, others on the work aio. */
static void run_work(struct fsim_agent *a, int64_t ms)
{
	pthread_mutex_lock(&a->mu);
	while (ms == 0)
		ms = work_done_locked(a);
	pthread_mutex_unlock(&a->mu);
	if (ms > 0)
		nng_sleep_aio((nng_duration)ms, a->waio);
	kick_reports(a);
}

static void work_cb(void *arg)
{
	struct fsim_agent *a = arg;
	int64_t ms;

	if (stopping(a) || nng_aio_result(a->waio) != 0)
		return;
	pthread_mutex_lock(&a->mu);
	ms = work_done_locked(a);
	pthread_mutex_unlock(&a->mu);
	if (ms >= 0)
		run_work(a, ms);
	else
		kick_reports(a);
}

static struct fsim_work *work_new(struct fsim_agent *a, const Drover__Instruction *ins)
{
	struct fsim_work *w = calloc(1, sizeof(*w));
	const Drover__ServiceSpec *s = ins->service;

	if (w == NULL)
		return NULL;
	w->action = ins->action;
	w->seq = ins->seq;
	w->ms = work_ms(&a->f->t, ins->action);
	w->step_id = dup_or_empty(ins->step_id);
	w->deployment_id = dup_or_empty(ins->deployment_id);
	w->service = dup_or_empty(s != NULL ? s->name : NULL);
	w->version = dup_or_empty(s != NULL ? s->version : NULL);
	w->digest = dup_or_empty(s != NULL && s->image != NULL ? s->image->digest : NULL);
	w->port = s != NULL ? s->port : 0;
	if (!w->step_id || !w->deployment_id || !w->service || !w->version || !w->digest) {
		work_free(w);
		return NULL;
	}
	return w;
}

/* ---- instructions ---- */

static bool instruction_ok(const struct fsim_agent *a, const Drover__Instruction *ins)
{
	int64_t now_ms = fsim_wall_us() / 1000;

	return ins->target_agent != NULL && strcmp(ins->target_agent, a->id) == 0 &&
	       ins->step_id != NULL && ins->step_id[0] != '\0' && ins->expires_at_ms > now_ms;
}

/* Record, acknowledge (ACCEPTED report) and start working on ins. */
static void on_instruction(struct fsim_agent *a, const Drover__Instruction *ins)
{
	int64_t now = fsim_wall_us(), ms = -1;
	struct fsim_work *w;
	bool first = false;

	if (!instruction_ok(a, ins) || (w = work_new(a, ins)) == NULL) {
		atomic_fetch_add(&a->f->rejects, 1);
		return;
	}
	pthread_mutex_lock(&a->mu);
	if (ins->seq <= a->applied_seq) { /* a resend: the next Poll acknowledges it */
		pthread_mutex_unlock(&a->mu);
		work_free(w);
		return;
	}
	a->applied_seq = ins->seq;
	a->instr_count++;
	if (a->round_rx_wall_us == 0) {
		a->round_rx_wall_us = now;
		a->round_issued_ms = ins->issued_at_ms;
		a->round_seq = ins->seq;
		first = true;
	}
	queue_report_locked(a, w, DROVER__STEP_RESULT__STEP_ACCEPTED, first);
	atomic_fetch_add(&a->f->n_work_out, 1);
	if (a->wq_tail != NULL)
		a->wq_tail->next = w;
	else
		a->wq_head = w;
	a->wq_tail = w;
	if (!a->working) {
		a->working = true;
		ms = w->ms;
	}
	pthread_mutex_unlock(&a->mu);
	atomic_fetch_add(&a->f->instructions, 1);
	if (first) {
		atomic_fetch_add(&a->f->n_round_rx, 1);
		fsim_fleet_notify(a->f);
	}
	if (ms >= 0)
		run_work(a, ms);
	else
		kick_reports(a);
}

/* ---- the poll context: Hello, then long polls ---- */

static int seal_hello(struct fsim_agent *a, uint8_t **env, size_t *len)
{
	Drover__Hello h = DROVER__HELLO__INIT;
	Drover__HostFacts facts = DROVER__HOST_FACTS__INIT;
	Drover__KeyValue kv = DROVER__KEY_VALUE__INIT, *kvp = &kv;
	struct fsim_fleet *f = a->f;

	facts.hostname = a->id;
	facts.os = "linux";
	facts.arch = "x86_64";
	facts.cpus = 1;
	facts.mem_bytes = 1ull << 30;
	facts.boot_id = "fleetsim";
	h.agent_id = a->id;
	h.public_key.data = a->kp.pk;
	h.public_key.len = DRV_PK_LEN;
	h.agent_version = DROVER_VERSION "-fleetsim";
	h.facts = &facts;
	h.enroll_token = (char *)(f->enroll_token ? f->enroll_token : "");
	h.proto_major = DRV_PROTO_MAJOR;
	h.nonce.data = a->nonce;
	h.nonce.len = a->nonce_len;
	if (f->label_key != NULL && f->n_label_values > 0) {
		kv.key = (char *)f->label_key;
		kv.value = f->label_values[a->idx % f->n_label_values];
		h.labels = &kvp;
		h.n_labels = 1;
	}
	pthread_mutex_lock(&a->mu);
	h.applied_seq = a->applied_seq;
	pthread_mutex_unlock(&a->mu);
	return drv_env_seal(&a->kp, a->id, DROVER__BODY_TYPE__BODY_HELLO, &h.base, true, env, len);
}

static void nap_then_hello(struct fsim_agent *a, int64_t ms)
{
	a->pstate = P_NAP;
	nng_sleep_aio((nng_duration)ms, a->pnap);
}

static void say_hello(struct fsim_agent *a)
{
	uint8_t *env;
	size_t len;
	bool sent;

	a->pstate = P_HELLO_SEND;
	if (seal_hello(a, &env, &len) != DRV_OK) {
		nap_then_hello(a, backoff(a, a->p_fail++));
		return;
	}
	atomic_fetch_add(&a->f->hellos, 1);
	sent = send_buf(a->pctx, a->paio, env, len, a->f->request_timeout_ms);
	free(env);
	if (!sent)
		nap_then_hello(a, backoff(a, a->p_fail++));
}

static void send_poll(struct fsim_agent *a)
{
	Drover__Poll p = DROVER__POLL__INIT;
	uint8_t *env;
	size_t len;
	bool sent;

	p.agent_id = a->id;
	pthread_mutex_lock(&a->mu);
	p.applied_seq = a->applied_seq;
	pthread_mutex_unlock(&a->mu);
	p.sent_at_ms = fsim_wall_us() / 1000;
	p.nonce = ((uint64_t)randombytes_random() << 32) | randombytes_random();
	a->pstate = P_POLL_SEND;
	if (drv_env_seal(&a->kp, a->id, DROVER__BODY_TYPE__BODY_POLL, &p.base, false, &env, &len) !=
	    DRV_OK) {
		nap_then_hello(a, backoff(a, a->p_fail++));
		return;
	}
	atomic_fetch_add(&a->f->polls, 1);
	sent = send_buf(a->pctx, a->paio, env, len, a->f->request_timeout_ms);
	free(env);
	if (!sent)
		nap_then_hello(a, backoff(a, a->p_fail++));
}

/* The Welcome: accepted -> poll; pending -> Hello again later. */
static void on_welcome(struct fsim_agent *a, const Drover__Envelope *env)
{
	Drover__Welcome *w = NULL;
	bool first = false;

	if (drv_env_decode(env, DROVER__BODY_TYPE__BODY_WELCOME, (ProtobufCMessage **)&w) !=
	    DRV_OK) {
		nap_then_hello(a, backoff(a, a->p_fail++));
		return;
	}
	a->nonce_len = w->nonce.len <= sizeof(a->nonce) ? w->nonce.len : 0;
	memcpy(a->nonce, w->nonce.data, a->nonce_len);
	if (w->challenge && a->p_fail < 3) { /* nothing recorded yet: Hello with the nonce */
		a->p_fail++;
		drv_msg_free(&w->base);
		say_hello(a);
		return;
	}
	if (w->status == DROVER__AGENT_STATUS__AGENT_ACCEPTED) {
		a->p_fail = 0;
		first = !a->accepted_once;
		a->accepted_once = true;
		drv_msg_free(&w->base);
		if (first)
			atomic_fetch_add(&a->f->n_accepted, 1);
		send_poll(a);
		if (first) {
			atomic_fetch_add(&a->f->n_polling, 1);
			fsim_fleet_notify(a->f);
		}
		return;
	}
	nap_then_hello(a, w->status == DROVER__AGENT_STATUS__AGENT_PENDING && w->heartbeat_ms > 0
	                          ? w->heartbeat_ms
	                          : backoff(a, a->p_fail++));
	drv_msg_free(&w->base);
}

static void on_poll_reply(struct fsim_agent *a, const Drover__Envelope *env)
{
	Drover__Instruction *ins = NULL;

	switch (env->type) {
	case DROVER__BODY_TYPE__BODY_INSTRUCTION:
		if (drv_env_decode(env, DROVER__BODY_TYPE__BODY_INSTRUCTION,
		                   (ProtobufCMessage **)&ins) == DRV_OK) {
			on_instruction(a, ins);
			drv_msg_free(&ins->base);
		} else {
			atomic_fetch_add(&a->f->rejects, 1);
		}
		send_poll(a);
		return;
	case DROVER__BODY_TYPE__BODY_IDLE:
		atomic_fetch_add(&a->f->idles, 1);
		send_poll(a);
		return;
	default: /* a Reject or garbage: start the session again */
		atomic_fetch_add(&a->f->rejects, 1);
		nap_then_hello(a, backoff(a, a->p_fail++));
	}
}

/* A reply arrived on the poll context (state HELLO_RECV or POLL_RECV). */
static void on_reply(struct fsim_agent *a)
{
	nng_msg *m = nng_aio_get_msg(a->paio);
	Drover__Envelope *env = open_reply(a, m);

	nng_msg_free(m);
	if (env == NULL) {
		nap_then_hello(a, backoff(a, a->p_fail++));
		return;
	}
	if (a->pstate == P_HELLO_RECV && env->type == DROVER__BODY_TYPE__BODY_WELCOME)
		on_welcome(a, env);
	else if (a->pstate == P_POLL_RECV)
		on_poll_reply(a, env);
	else
		nap_then_hello(a, backoff(a, a->p_fail++));
	drv_env_free(env);
}

static void poll_cb(void *arg)
{
	struct fsim_agent *a = arg;
	int rv = nng_aio_result(a->paio);

	if (stopping(a))
		return;
	switch (a->pstate) {
	case P_HELLO_SEND:
	case P_POLL_SEND:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(a->paio));
			break;
		}
		a->pstate = a->pstate == P_HELLO_SEND ? P_HELLO_RECV : P_POLL_RECV;
		nng_aio_set_timeout(
		        a->paio,
		        (nng_duration)(a->pstate == P_HELLO_RECV
		                               ? a->f->request_timeout_ms
		                               : a->f->poll_timeout_ms + a->f->request_timeout_ms));
		nng_ctx_recv(a->pctx, a->paio);
		return;
	case P_HELLO_RECV:
	case P_POLL_RECV:
		if (reply_result(a->paio) != 0)
			break;
		on_reply(a);
		return;
	default: return;
	}
	atomic_fetch_add(&a->f->errors, 1);
	nap_then_hello(a, backoff(a, a->p_fail++));
}

static void poll_nap_cb(void *arg)
{
	struct fsim_agent *a = arg;

	if (!stopping(a))
		say_hello(a);
}

/* ---- lifecycle ---- */

int fsim_agent_init(struct fsim_agent *a, struct fsim_fleet *f, unsigned idx, const char *prefix)
{
	memset(a, 0, sizeof(*a));
	a->f = f;
	a->idx = idx;
	snprintf(a->id, sizeof(a->id), "%s%05u", prefix, idx);
	if (!drv_agent_id_valid(a->id))
		return DRV_EINVAL;
	pthread_mutex_init(&a->mu, NULL);
	return drv_keypair_generate(&a->kp);
}

static int open_socket(struct fsim_agent *a)
{
	nng_dialer d;
	int rv;

	if ((rv = nng_req0_open(&a->sock)) != 0)
		return rv;
	a->opened = true;
	if ((rv = nng_socket_set_size(a->sock, NNG_OPT_RECVMAXSZ, RECV_MAX)) != 0 ||
	    (rv = nng_ctx_open(&a->pctx, a->sock)) != 0 ||
	    (rv = nng_ctx_open(&a->rctx, a->sock)) != 0 ||
	    (rv = nng_aio_alloc(&a->paio, poll_cb, a)) != 0 ||
	    (rv = nng_aio_alloc(&a->raio, report_cb, a)) != 0 ||
	    (rv = nng_aio_alloc(&a->waio, work_cb, a)) != 0 ||
	    (rv = nng_aio_alloc(&a->pnap, poll_nap_cb, a)) != 0 ||
	    (rv = nng_aio_alloc(&a->rnap, report_nap_cb, a)) != 0)
		return rv;
	/* as drover-agent: no resend timer; a request goes again on a new pipe */
	nng_ctx_set_ms(a->pctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_ctx_set_ms(a->rctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if ((rv = nng_dialer_create(&d, a->sock, a->f->url)) != 0 ||
	    (rv = nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, (nng_duration)a->f->reconnect_min_ms)) !=
	            0 ||
	    (rv = nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, (nng_duration)a->f->reconnect_max_ms)) !=
	            0)
		return rv;
	return nng_dialer_start(d, NNG_FLAG_NONBLOCK);
}

int fsim_agent_start(struct fsim_agent *a)
{
	int rv = open_socket(a);

	if (rv != 0) {
		fprintf(stderr, "fleetsim: %s: cannot open the link: %s\n", a->id,
		        nng_strerror(rv));
		return DRV_EIO;
	}
	say_hello(a);
	return DRV_OK;
}

void fsim_agent_stop(struct fsim_agent *a)
{
	nng_aio *aios[] = {a->pnap, a->paio, a->rnap, a->raio, a->waio};

	for (size_t i = 0; i < sizeof(aios) / sizeof(aios[0]); i++) {
		if (aios[i] != NULL)
			nng_aio_stop(aios[i]);
	}
	if (a->opened)
		nng_close(a->sock);
	a->opened = false;
}

void fsim_agent_free(struct fsim_agent *a)
{
	struct fsim_report *r, *rn;
	struct fsim_work *w, *wn;

	fsim_agent_stop(a);
	nng_aio_free(a->paio);
	nng_aio_free(a->raio);
	nng_aio_free(a->waio);
	nng_aio_free(a->pnap);
	nng_aio_free(a->rnap);
	for (r = a->rq_head; r != NULL; r = rn) {
		rn = r->next;
		report_free(r);
	}
	for (w = a->wq_head; w != NULL; w = wn) {
		wn = w->next;
		work_free(w);
	}
	drv_keypair_wipe(&a->kp);
	pthread_mutex_destroy(&a->mu);
	memset(a, 0, sizeof(*a));
}

void fsim_round_reset(struct fsim_agent *a)
{
	pthread_mutex_lock(&a->mu);
	a->round_rx_wall_us = 0;
	a->round_ack_wall_us = 0;
	a->round_issued_ms = 0;
	a->round_seq = 0;
	pthread_mutex_unlock(&a->mu);
}
