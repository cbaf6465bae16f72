/* logs.c: service output over the link (see logs.h). */
#include "logs.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"

struct log_wait {
	bool used, done, ok;
	char step[40];
	char agent[DRV_AGENT_ID_MAX + 1];
	json_t *result; /* ok: the chunk; else {"error"} */
};

struct link_logs {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct log_wait w[LOGS_WAITING_MAX];
	int64_t second;
	unsigned started;
};

int link_logs_new(struct link_logs **out)
{
	struct link_logs *l = calloc(1, sizeof(*l));
	pthread_condattr_t ca;

	if (l == NULL)
		return DRV_ENOMEM;
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = l;
	return DRV_OK;
}

void link_logs_free(struct link_logs *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < LOGS_WAITING_MAX; i++)
		json_decref(l->w[i].result);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

/* A JSON string of text; bytes that are not UTF-8 become '?'. */
static json_t *text_json(const uint8_t *s, size_t n)
{
	json_t *j = json_stringn((const char *)s, n);
	char *copy;

	if (j != NULL || (copy = malloc(n + 1)) == NULL)
		return j;
	for (size_t i = 0; i < n; i++)
		copy[i] = s[i] >= 0x80 || s[i] == '\0' ? '?' : (char)s[i];
	j = json_stringn(copy, n);
	free(copy);
	return j;
}

static json_t *chunk_json(const char *agent, const Drover__LogChunk *c)
{
	size_t n = c->text.len > LOGS_TEXT_MAX ? LOGS_TEXT_MAX : c->text.len;

	return json_pack("{s:s, s:s, s:o, s:I, s:b, s:b}", "host", agent, "instance",
	                 c->instance ? c->instance : "", "text", text_json(c->text.data, n),
	                 "offset", (json_int_t)c->offset, "truncated",
	                 c->truncated || n < c->text.len, "rotated", c->rotated);
}

bool link_logs_offer(struct link_logs *l, const char *agent, const Drover__Report *r)
{
	bool final = r->result == DROVER__STEP_RESULT__STEP_SUCCEEDED ||
	             r->result == DROVER__STEP_RESULT__STEP_FAILED;

	if (r->step_id == NULL ||
	    strncmp(r->step_id, LOGS_STEP_PREFIX, sizeof(LOGS_STEP_PREFIX) - 1) != 0)
		return false;
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; final && i < LOGS_WAITING_MAX; i++) {
		struct log_wait *w = &l->w[i];

		if (!w->used || w->done || strcmp(w->step, r->step_id) != 0 ||
		    strcmp(w->agent, agent) != 0)
			continue;
		w->ok = r->result == DROVER__STEP_RESULT__STEP_SUCCEEDED && r->log != NULL;
		w->result = w->ok ? chunk_json(agent, r->log)
		                  : json_pack("{s:s}", "error",
		                              r->message && r->message[0] ? r->message
		                                                          : "no log in the answer");
		w->done = true;
		pthread_cond_broadcast(&l->cv);
		break;
	}
	pthread_mutex_unlock(&l->mu);
	return true; /* answered, progress, or late: never a deployment's */
}

/* A free slot (l->mu held), within the rate; NULL when none. */
static struct log_wait *reserve(struct link_logs *l, const char *agent)
{
	int64_t now = drv_mono_ms() / 1000;
	uint8_t rnd[8];

	if (now != l->second) {
		l->second = now;
		l->started = 0;
	}
	if (l->started >= LOGS_RATE_PER_S)
		return NULL;
	for (size_t i = 0; i < LOGS_WAITING_MAX; i++) {
		struct log_wait *w = &l->w[i];

		if (w->used)
			continue;
		memset(w, 0, sizeof(*w));
		w->used = true;
		randombytes_buf(rnd, sizeof(rnd));
		snprintf(w->step, sizeof(w->step),
		         LOGS_STEP_PREFIX "%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
		         rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
		snprintf(w->agent, sizeof(w->agent), "%s", agent);
		l->started++;
		return w;
	}
	return NULL;
}

static void release(struct link_logs *l, struct log_wait *w)
{
	pthread_mutex_lock(&l->mu);
	json_decref(w->result);
	memset(w, 0, sizeof(*w));
	pthread_mutex_unlock(&l->mu);
}

static void wait_done(struct link_logs *l, struct log_wait *w, int64_t deadline_ms)
{
	struct timespec ts = drv_mono_timespec_in(deadline_ms - drv_mono_ms());

	pthread_mutex_lock(&l->mu);
	while (!w->done) {
		if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&l->mu);
}

/* Reserve a slot and queue the request for a->agent; a->rc says why not. */
static struct log_wait *start(struct link_logs *l, link_logs_queue_fn queue, void *queue_arg,
                              struct link_logs_answer *a, const Drover__LogRequest *rq,
                              int64_t timeout_ms)
{
	struct dispatch_instr in = {.agent_id = a->agent,
	                            .action = DROVER__ACTION__ACTION_READ_LOG,
	                            .log = rq,
	                            .ttl_ms = timeout_ms + 1000,
	                            .step_deadline_ms = (uint32_t)timeout_ms};
	struct log_wait *w;
	uint64_t seq;

	pthread_mutex_lock(&l->mu);
	w = reserve(l, a->agent);
	pthread_mutex_unlock(&l->mu);
	if (w == NULL) {
		a->rc = DRV_ETOOBIG;
		snprintf(a->why, sizeof(a->why), "too many log requests: try again");
		return NULL;
	}
	in.step_id = w->step;
	a->rc = queue(queue_arg, &in, &seq);
	if (a->rc != DRV_OK) {
		release(l, w);
		snprintf(a->why, sizeof(a->why), "%s", drv_strerror(a->rc));
		return NULL;
	}
	return w;
}

/* Wait for w's answer until deadline_ms (monotonic) and put it in a. */
static void finish(struct link_logs *l, struct log_wait *w, int64_t deadline_ms, int64_t timeout_ms,
                   struct link_logs_answer *a)
{
	wait_done(l, w, deadline_ms);
	pthread_mutex_lock(&l->mu);
	a->rc = !w->done ? DRV_ETIMEDOUT : !w->ok ? DRV_EIO : DRV_OK;
	if (a->rc == DRV_EIO)
		snprintf(a->why, sizeof(a->why), "%s",
		         json_string_value(json_object_get(w->result, "error")));
	else if (a->rc == DRV_ETIMEDOUT)
		snprintf(a->why, sizeof(a->why), "no answer within %lld ms", (long long)timeout_ms);
	else
		a->out = json_incref(w->result);
	pthread_mutex_unlock(&l->mu);
	release(l, w);
}

void link_logs_read_many(struct link_logs *l, link_logs_queue_fn queue, void *queue_arg,
                         struct link_logs_answer *answers, size_t n, const Drover__LogRequest *rq,
                         int64_t timeout_ms)
{
	struct log_wait *w[LOGS_WAITING_MAX];
	size_t next = 0;

	while (next < n) {
		int64_t deadline = drv_mono_ms() + timeout_ms;
		size_t first = next, k = 0;

		/* as many at once as there are slots and rate: the hosts answer in
		 * parallel, so one slow host costs one timeout, not one each */
		for (; next < n && k < LOGS_WAITING_MAX; next++) {
			w[k] = start(l, queue, queue_arg, &answers[next], rq, timeout_ms);
			if (w[k] == NULL && answers[next].rc == DRV_ETOOBIG)
				break;
			k++;
		}
		for (size_t i = 0; i < k; i++)
			if (w[i] != NULL)
				finish(l, w[i], deadline, timeout_ms, &answers[first + i]);
		if (next < n && k == 0) {
			/* no slot or rate left even for one: wait for the next second,
			 * once; what still finds none is answered "try again" */
			int64_t wait_ms = 1000 - drv_mono_ms() % 1000;
			struct timespec ts = {.tv_sec = wait_ms / 1000,
			                      .tv_nsec = (long)(wait_ms % 1000) * 1000000L};

			while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
				;
			w[0] = start(l, queue, queue_arg, &answers[next], rq, timeout_ms);
			if (w[0] == NULL && answers[next].rc == DRV_ETOOBIG) {
				for (; next < n; next++) {
					answers[next].rc = DRV_ETOOBIG;
					snprintf(answers[next].why, sizeof(answers[next].why),
					         "too many log requests: try again");
				}
				break;
			}
			if (w[0] != NULL)
				finish(l, w[0], drv_mono_ms() + timeout_ms, timeout_ms,
				       &answers[next]);
			next++;
		}
	}
}

int link_logs_read(struct link_logs *l, link_logs_queue_fn queue, void *queue_arg,
                   const char *agent, const Drover__LogRequest *rq, int64_t timeout_ms,
                   json_t **out, char *why, size_t why_cap)
{
	struct link_logs_answer a = {.agent = agent};
	struct log_wait *w = start(l, queue, queue_arg, &a, rq, timeout_ms);

	if (w != NULL)
		finish(l, w, drv_mono_ms() + timeout_ms, timeout_ms, &a);
	if (a.rc == DRV_OK)
		*out = a.out;
	else
		snprintf(why, why_cap, "%s", a.why);
	return a.rc;
}
