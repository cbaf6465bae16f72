/*
 * nullcoord.c: the baseline for the fan-out benchmark: a coordinator that
 * does only what the wire demands. It speaks drover's link exactly as droverd
 * does (NNG REP with a context per parked long poll, every envelope signed
 * and verified, Ed25519), but keeps agents in memory: no database (nothing
 * is stored before it is sent, no fsync), no events, no log lines, no
 * enrollment policy (every Hello is accepted), no plan or deployment engine.
 *
 * fleetsim against droverd and against nullcoord, in the same run, gives the
 * coordinator's own overhead as a ratio.
 *
 *   nullcoord --listen URL --key FILE [--poll-timeout D] [--receivers K]
 *             [--steps S --done-file FILE]
 *
 * SIGUSR1 queues one RUN_HOOK instruction for every agent known (sent at once
 * to each parked poll); SIGTERM/SIGINT stop it. With --steps S, an agent gets
 * the next of S instructions when it reports the previous one SUCCEEDED (as
 * a deployment sends START after PRESTAGE): the same messages per agent as
 * droverd's round. Once every agent reported its S-th, the number of rounds
 * finished is written to the done file (what `drover deploy --wait` waits
 * for, a trigger can wait for this).
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "envelope.h"
#include "err.h"
#include "keys.h"

#define TABLE_BITS 15 /* 32768 slots: up to ~20,000 agents */
#define TABLE_SIZE (1u << TABLE_BITS)

struct nctx;

struct nagent {
	char id[DRV_AGENT_ID_MAX + 1];
	struct drv_pubkey key;
	uint64_t next_seq;
	struct nctx *parked;
	int64_t parked_until;
	uint8_t *pending; /* an instruction for the next poll */
	size_t pending_len;
	uint64_t step_seq;   /* the round's instruction waiting for SUCCEEDED */
	unsigned steps_left; /* instructions of the round still to send after it */
};

struct nctx {
	struct ncoord *c;
	nng_ctx ctx;
	nng_aio *aio;
	bool sending;
	struct nctx *next;
};

struct ncoord {
	nng_socket sock;
	struct drv_keypair key;
	int64_t poll_timeout_ms;
	size_t receivers;
	pthread_mutex_t mu; /* agents, pool, counters: the one lock, as in droverd */
	struct nagent *agents[TABLE_SIZE];
	size_t n_agents, receiving;
	unsigned steps;        /* instructions per agent per round */
	const char *done_file; /* rounds finished are written here */
	size_t round_left;     /* agents whose round is not finished */
	unsigned rounds_done;
	struct nctx *all;
	atomic_bool closing;
};

/* ---- agents ---- */

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s != '\0')
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

/* The agent's slot (lock held); *slot is NULL if unknown. */
static struct nagent **slot_of(struct ncoord *c, const char *id)
{
	uint32_t i = hash(id) & (TABLE_SIZE - 1);

	while (c->agents[i] != NULL && strcmp(c->agents[i]->id, id) != 0)
		i = (i + 1) & (TABLE_SIZE - 1);
	return &c->agents[i];
}

/* ---- replies ---- */

static void start_recv(struct nctx *x)
{
	x->sending = false;
	nng_ctx_recv(x->ctx, x->aio);
}

static void send_env(struct nctx *x, uint8_t *env, size_t len)
{
	nng_msg *m;

	if (env == NULL || nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, env, len) != 0) {
		free(env);
		start_recv(x);
		return;
	}
	free(env);
	x->sending = true;
	nng_aio_set_msg(x->aio, m);
	nng_ctx_send(x->ctx, x->aio);
}

static uint8_t *seal(struct ncoord *c, Drover__BodyType type, const ProtobufCMessage *body,
                     size_t *len)
{
	uint8_t *env = NULL;

	if (drv_env_seal(&c->key, DRV_COORDINATOR_SENDER, type, body, false, &env, len) != DRV_OK)
		return NULL;
	return env;
}

static uint8_t *reject(struct ncoord *c, Drover__RejectReason why, uint64_t seq, size_t *len)
{
	Drover__Reject rj = DROVER__REJECT__INIT;

	rj.reason = why;
	rj.seq = seq;
	return seal(c, DROVER__BODY_TYPE__BODY_REJECT, &rj.base, len);
}

/* ---- messages ---- */

static uint8_t *on_hello(struct ncoord *c, const Drover__Envelope *env, size_t *len)
{
	Drover__Welcome w = DROVER__WELCOME__INIT;
	Drover__Hello *h = NULL;
	struct drv_pubkey key;
	struct nagent **s, *a;

	if (drv_env_verify_self(env, &key) != DRV_OK ||
	    drv_env_decode(env, DROVER__BODY_TYPE__BODY_HELLO, (ProtobufCMessage **)&h) != DRV_OK ||
	    !drv_agent_id_valid(h->agent_id)) {
		if (h != NULL)
			drv_msg_free(&h->base);
		return reject(c, DROVER__REJECT_REASON__REJECT_MALFORMED, 0, len);
	}
	pthread_mutex_lock(&c->mu);
	s = slot_of(c, h->agent_id);
	if (*s == NULL && c->n_agents < TABLE_SIZE * 2 / 3 && (a = calloc(1, sizeof(*a))) != NULL) {
		snprintf(a->id, sizeof(a->id), "%s", h->agent_id);
		a->key = key;
		a->next_seq = h->applied_seq + 1;
		*s = a;
		c->n_agents++;
	}
	pthread_mutex_unlock(&c->mu);
	drv_msg_free(&h->base);
	w.status = DROVER__AGENT_STATUS__AGENT_ACCEPTED;
	w.server_time_ms = drv_wall_ms();
	w.poll_timeout_ms = (uint32_t)c->poll_timeout_ms;
	w.heartbeat_ms = (uint32_t)c->poll_timeout_ms;
	return seal(c, DROVER__BODY_TYPE__BODY_WELCOME, &w.base, len);
}

/* The sender's key, if known. */
static bool key_of(struct ncoord *c, const char *id, struct drv_pubkey *out)
{
	struct nagent *a;

	pthread_mutex_lock(&c->mu);
	a = *slot_of(c, id);
	if (a != NULL)
		*out = a->key;
	pthread_mutex_unlock(&c->mu);
	return a != NULL;
}

static int open_body(struct ncoord *c, const Drover__Envelope *env, Drover__BodyType type,
                     ProtobufCMessage **body)
{
	struct drv_pubkey key;

	if (env->sender == NULL || !drv_agent_id_valid(env->sender) ||
	    !key_of(c, env->sender, &key))
		return DRV_EPERM;
	if (drv_env_verify(env, &key) != DRV_OK)
		return DRV_EBADSIG;
	return drv_env_decode(env, type, body);
}

/* A poll: the pending instruction now, or park the context. */
static uint8_t *on_poll(struct ncoord *c, struct nctx *x, const Drover__Envelope *env, size_t *len,
                        bool *parked)
{
	ProtobufCMessage *body;
	struct nagent *a;
	uint8_t *out = NULL;

	if (open_body(c, env, DROVER__BODY_TYPE__BODY_POLL, &body) != DRV_OK)
		return reject(c, DROVER__REJECT_REASON__REJECT_BAD_SIGNATURE, 0, len);
	drv_msg_free(body);
	pthread_mutex_lock(&c->mu);
	a = *slot_of(c, env->sender);
	if (a->pending != NULL) {
		out = a->pending;
		*len = a->pending_len;
		a->pending = NULL;
	} else {
		if (a->parked != NULL) {
			start_recv(a->parked); /* replaced by the newer poll */
			c->receiving++;
		}
		a->parked = x;
		a->parked_until = drv_mono_ms() + c->poll_timeout_ms;
		*parked = true;
	}
	pthread_mutex_unlock(&c->mu);
	return out;
}

static void give(struct ncoord *c, struct nagent *a, uint8_t *env, size_t len);
static uint8_t *instruction(struct ncoord *c, struct nagent *a, int64_t now, size_t *len);

static void round_finished(struct ncoord *c)
{
	FILE *f;

	c->rounds_done++;
	if (c->done_file == NULL || (f = fopen(c->done_file, "w")) == NULL)
		return;
	fprintf(f, "%u\n", c->rounds_done);
	fclose(f);
}

/* The round's instruction succeeded: the agent's next one, or the agent is
 * done with this round (lock held). */
static void step_done(struct ncoord *c, const char *id, const Drover__Report *r)
{
	struct nagent *a = *slot_of(c, id);
	uint8_t *env;
	size_t len;

	if (a == NULL || a->step_seq == 0 || r->instruction_seq != a->step_seq ||
	    r->result != DROVER__STEP_RESULT__STEP_SUCCEEDED)
		return;
	a->step_seq = 0;
	if (a->steps_left > 0) {
		a->steps_left--;
		a->step_seq = a->next_seq;
		if ((env = instruction(c, a, drv_wall_ms(), &len)) != NULL)
			give(c, a, env, len);
		return;
	}
	if (c->round_left > 0 && --c->round_left == 0)
		round_finished(c);
}

static uint8_t *on_report(struct ncoord *c, const Drover__Envelope *env, size_t *len)
{
	Drover__Ack ack = DROVER__ACK__INIT;
	Drover__Report *r;

	if (open_body(c, env, DROVER__BODY_TYPE__BODY_REPORT, (ProtobufCMessage **)&r) != DRV_OK)
		return reject(c, DROVER__REJECT_REASON__REJECT_BAD_SIGNATURE, 0, len);
	pthread_mutex_lock(&c->mu);
	step_done(c, env->sender, r);
	pthread_mutex_unlock(&c->mu);
	ack.seq = r->report_seq;
	ack.step_id = r->step_id;
	uint8_t *out = seal(c, DROVER__BODY_TYPE__BODY_ACK, &ack.base, len);
	drv_msg_free(&r->base);
	return out;
}

static void ensure_receivers(struct ncoord *c);

static void handle(struct nctx *x, nng_msg *m)
{
	struct ncoord *c = x->c;
	Drover__Envelope *env = NULL;
	uint8_t *out = NULL;
	size_t len = 0;
	bool parked = false;

	if (drv_env_parse(nng_msg_body(m), nng_msg_len(m), DRV_ENV_MAX, &env) != DRV_OK)
		out = reject(c, DROVER__REJECT_REASON__REJECT_MALFORMED, 0, &len);
	else if (env->type == DROVER__BODY_TYPE__BODY_HELLO)
		out = on_hello(c, env, &len);
	else if (env->type == DROVER__BODY_TYPE__BODY_POLL)
		out = on_poll(c, x, env, &len, &parked);
	else if (env->type == DROVER__BODY_TYPE__BODY_REPORT)
		out = on_report(c, env, &len);
	else
		out = reject(c, DROVER__REJECT_REASON__REJECT_MALFORMED, 0, &len);
	drv_env_free(env);
	nng_msg_free(m);
	if (parked) {
		pthread_mutex_lock(&c->mu);
		c->receiving--;
		pthread_mutex_unlock(&c->mu);
		ensure_receivers(c);
		return;
	}
	send_env(x, out, len);
}

static void aio_cb(void *arg)
{
	struct nctx *x = arg;
	int rv = nng_aio_result(x->aio);

	if (atomic_load(&x->c->closing) || rv == NNG_ECLOSED)
		return;
	if (x->sending) {
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(x->aio));
		start_recv(x);
		return;
	}
	if (rv != 0) {
		start_recv(x);
		return;
	}
	handle(x, nng_aio_get_msg(x->aio));
}

/* ---- the pool of contexts ---- */

static void ensure_receivers(struct ncoord *c)
{
	for (;;) {
		struct nctx *x;

		pthread_mutex_lock(&c->mu);
		if (c->receiving >= c->receivers || atomic_load(&c->closing)) {
			pthread_mutex_unlock(&c->mu);
			return;
		}
		c->receiving++;
		pthread_mutex_unlock(&c->mu);
		x = calloc(1, sizeof(*x));
		if (x == NULL || nng_aio_alloc(&x->aio, aio_cb, x) != 0 ||
		    nng_ctx_open(&x->ctx, c->sock) != 0) {
			fprintf(stderr, "nullcoord: out of contexts\n");
			return;
		}
		x->c = c;
		pthread_mutex_lock(&c->mu);
		x->next = c->all;
		c->all = x;
		pthread_mutex_unlock(&c->mu);
		start_recv(x);
	}
}

/* ---- fan-out and tick (main thread) ---- */

static uint8_t *instruction(struct ncoord *c, struct nagent *a, int64_t now, size_t *len)
{
	Drover__Instruction ins = DROVER__INSTRUCTION__INIT;
	Drover__Hook hook = DROVER__HOOK__INIT;
	char step[64], *run[] = {"/bin/true"};

	snprintf(step, sizeof(step), "null-%llu", (unsigned long long)a->next_seq);
	hook.name = step;
	hook.run = run;
	hook.n_run = 1;
	hook.timeout_ms = 30000;
	ins.target_agent = a->id;
	ins.deployment_id = "nullcoord";
	ins.step_id = step;
	ins.seq = a->next_seq++;
	ins.issued_at_ms = now;
	ins.expires_at_ms = now + 600000;
	ins.action = DROVER__ACTION__ACTION_RUN_HOOK;
	ins.hook = &hook;
	return seal(c, DROVER__BODY_TYPE__BODY_INSTRUCTION, &ins.base, len);
}

/* Send env to the agent's parked poll, or keep it for its next (lock held). */
static void give(struct ncoord *c, struct nagent *a, uint8_t *env, size_t len)
{
	if (a->parked != NULL) {
		struct nctx *x = a->parked;
		a->parked = NULL;
		c->receiving++; /* it receives again after this send */
		send_env(x, env, len);
	} else {
		free(a->pending);
		a->pending = env;
		a->pending_len = len;
	}
}

/* One instruction for every agent, signed and sent under the lock (as the
 * core does when the sequencer queues a batch). */
static void fan_out(struct ncoord *c)
{
	pthread_mutex_lock(&c->mu);
	c->round_left = 0;
	for (size_t i = 0; i < TABLE_SIZE; i++) {
		struct nagent *a = c->agents[i];
		size_t len;
		uint8_t *env;
		uint64_t seq;

		if (a == NULL)
			continue;
		seq = a->next_seq;
		if ((env = instruction(c, a, drv_wall_ms(), &len)) == NULL)
			continue;
		a->step_seq = seq;
		a->steps_left = c->steps - 1;
		c->round_left++;
		give(c, a, env, len);
	}
	if (c->round_left == 0)
		round_finished(c);
	pthread_mutex_unlock(&c->mu);
}

static void tick(struct ncoord *c)
{
	int64_t now = drv_mono_ms();

	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < TABLE_SIZE; i++) {
		struct nagent *a = c->agents[i];
		Drover__Idle idle = DROVER__IDLE__INIT;
		size_t len;

		if (a == NULL || a->parked == NULL || now < a->parked_until)
			continue;
		idle.server_time_ms = drv_wall_ms();
		struct nctx *x = a->parked;
		a->parked = NULL;
		c->receiving++;
		send_env(x, seal(c, DROVER__BODY_TYPE__BODY_IDLE, &idle.base, &len), len);
	}
	pthread_mutex_unlock(&c->mu);
}

/* ---- main ---- */

static int start(struct ncoord *c, const char *url)
{
	int rv = nng_rep0_open(&c->sock);

	if (rv == 0)
		rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, 4u << 20);
	if (rv == 0)
		rv = nng_listen(c->sock, url, NULL, 0);
	if (rv != 0) {
		fprintf(stderr, "nullcoord: cannot listen on %s: %s\n", url, nng_strerror(rv));
		return DRV_EIO;
	}
	ensure_receivers(c);
	return DRV_OK;
}

static void serve(struct ncoord *c, const sigset_t *set)
{
	struct timespec ts = {1, 0};

	for (;;) {
		int sig = sigtimedwait(set, NULL, &ts);

		if (sig == SIGTERM || sig == SIGINT)
			return;
		if (sig == SIGUSR1)
			fan_out(c);
		tick(c);
	}
}

static void stop(struct ncoord *c)
{
	struct nctx *x, *next;

	atomic_store(&c->closing, true);
	nng_close(c->sock);
	for (x = c->all; x != NULL; x = next) {
		next = x->next;
		nng_aio_stop(x->aio);
		nng_aio_free(x->aio);
		free(x);
	}
	for (size_t i = 0; i < TABLE_SIZE; i++) {
		if (c->agents[i] != NULL)
			free(c->agents[i]->pending);
		free(c->agents[i]);
	}
	drv_keypair_wipe(&c->key);
}

int main(int argc, char **argv)
{
	static struct ncoord c; /* large: not on the stack */
	const char *url = NULL, *key = NULL;
	sigset_t set;
	int64_t d;

	c.poll_timeout_ms = 25000;
	c.receivers = 8;
	c.steps = 1;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--listen") == 0)
			url = argv[i + 1];
		else if (strcmp(argv[i], "--key") == 0)
			key = argv[i + 1];
		else if (strcmp(argv[i], "--poll-timeout") == 0 &&
		         drv_parse_duration_ms(argv[i + 1], &d) == DRV_OK)
			c.poll_timeout_ms = d;
		else if (strcmp(argv[i], "--receivers") == 0)
			c.receivers = (size_t)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--steps") == 0)
			c.steps = (unsigned)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--done-file") == 0)
			c.done_file = argv[i + 1];
		else
			url = NULL, i = argc;
	}
	if (url == NULL || key == NULL || argc % 2 == 0 || c.receivers == 0 || c.steps == 0 ||
	    c.steps > 16) {
		fprintf(stderr, "usage: nullcoord --listen URL --key FILE [--poll-timeout D] "
		                "[--receivers K] [--steps S (1-16) --done-file FILE]\n");
		return 2;
	}
	if (drv_crypto_init() != DRV_OK || drv_keypair_load(key, &c.key) != DRV_OK) {
		fprintf(stderr, "nullcoord: cannot load the key %s\n", key);
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_mutex_init(&c.mu, NULL);
	if (start(&c, url) != DRV_OK)
		return 1;
	fprintf(stderr, "nullcoord: listening on %s\n", url);
	serve(&c, &set);
	stop(&c);
	nng_fini();
	return 0;
}
