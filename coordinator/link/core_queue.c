/* core_queue.c: queueing instructions (one, or a wave signed ahead and
 * queued a chunk at a time) and delivering them after their commit. */
#include "core.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "core_int.h"
#include "err.h"
#include "linkstats.h"
#include "log.h"
#include "storage.h"

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
void core_after_commit(void *arg, int rc)
{
	struct core *c = arg;
	size_t n = c->n_after;
	struct owed *owed = c->owed;

	c->owed = NULL; /* what the hooks below store goes into the next batch */
	c->owed_tail = &c->owed;
	if (rc != DRV_OK) {
		drv_storage_suspect();
		core_sync_store(c); /* forgets what known_idle knew: an ack may be undone */
	}
	c->n_after = 0; /* delivering queues nothing: the list stays as it is */
	for (size_t i = 0; i < n; i++)
		c->after[i]->uncommitted = false;
	core_deliver_parked(c, c->after, n);
	if (c->notify_after && c->cfg.events != NULL)
		drv_events_notify(c->cfg.events);
	c->notify_after = false;
	core_answer_owed(c, owed, rc);
}

/* After an instruction for in's agent was queued (rc DRV_OK) or refused:
 * deliver it after the batch's commit (batched) or now. */
static int queued_locked(struct core *c, const struct dispatch_instr *in, int rc, bool batched)
{
	struct agent_rt *a = in->agent_id != NULL ? registry_get(c->reg, in->agent_id) : NULL;

	if (a != NULL)
		core_forget_idle(a); /* may have something to take now */
	if (rc != DRV_OK)
		return rc;
	drv_linkstats_inc(DRV_STAT_INSTR_QUEUED);
	a = core_accepted(c, in->agent_id);
	if (a != NULL && batched)
		after_commit_add(c, a);
	else if (a != NULL)
		core_deliver_if_parked(c, a);
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
