/* hashring.c: received bytes handed to a worker through a bounded ring of
 * copies (see hashring.h). */
#include "hashring.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

struct hashring {
	pthread_mutex_t mu;
	pthread_cond_t more;  /* the worker waits here for a slot or stop */
	pthread_cond_t freed; /* the feeder and hashring_sync wait here */
	pthread_t thread;
	hashring_fn fn;
	void *arg;
	size_t slots, slot_size;
	char **buf;
	size_t *len;
	/* Slots handed over: tail..head-1 (mod slots), under mu. The slot
	 * head % slots is the feeder's to fill, which it may only while
	 * head - tail < slots. */
	uint64_t head, tail;
	bool failed, stop, worker_sleeping, feeder_waiting;
	struct hashring_stats st; /* under mu */
};

static void *work(void *arg)
{
	struct hashring *r = arg;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->stop && r->tail == r->head) {
			r->worker_sleeping = true;
			pthread_cond_wait(&r->more, &r->mu);
		}
		r->worker_sleeping = false;
		if (r->stop)
			break;
		size_t s = (size_t)(r->tail % r->slots), n = r->len[s];
		bool skip = r->failed; /* after a failure the hash is no good anyway */
		pthread_mutex_unlock(&r->mu);
		int bad = skip ? 0 : r->fn(r->arg, r->buf[s], n);
		pthread_mutex_lock(&r->mu);
		if (bad)
			r->failed = true;
		else if (!skip)
			r->st.hashed += n;
		r->len[s] = 0;
		r->tail++;
		if (r->feeder_waiting || r->tail == r->head)
			pthread_cond_signal(&r->freed);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static void free_bufs(struct hashring *r)
{
	for (size_t i = 0; r->buf != NULL && i < r->slots; i++)
		free(r->buf[i]);
	free(r->buf);
	free(r->len);
}

int hashring_new(hashring_fn fn, void *arg, size_t slots, size_t slot_size, struct hashring **out)
{
	struct hashring *r;

	if (fn == NULL || slots == 0 || slot_size == 0)
		return DRV_EINVAL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return DRV_ENOMEM;
	r->fn = fn;
	r->arg = arg;
	r->slots = slots;
	r->slot_size = slot_size;
	r->buf = calloc(slots, sizeof(*r->buf));
	r->len = calloc(slots, sizeof(*r->len));
	if (r->buf == NULL || r->len == NULL)
		goto out_free;
	for (size_t i = 0; i < slots; i++)
		if ((r->buf[i] = malloc(slot_size)) == NULL)
			goto out_free;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->more, NULL);
	pthread_cond_init(&r->freed, NULL);
	if (pthread_create(&r->thread, NULL, work, r) != 0) {
		pthread_cond_destroy(&r->freed);
		pthread_cond_destroy(&r->more);
		pthread_mutex_destroy(&r->mu);
		free_bufs(r);
		free(r);
		return DRV_ESYS;
	}
	*out = r;
	return DRV_OK;
out_free:
	free_bufs(r);
	free(r);
	return DRV_ENOMEM;
}

/* Give the slot being filled to the worker, then wait until the next one is
 * free. */
static void hand_over(struct hashring *r)
{
	pthread_mutex_lock(&r->mu);
	r->st.handed += r->len[r->head % r->slots];
	r->head++;
	if (r->worker_sleeping)
		pthread_cond_signal(&r->more);
	if (r->head - r->tail >= r->slots) {
		r->st.waits++;
		r->feeder_waiting = true;
		while (r->head - r->tail >= r->slots)
			pthread_cond_wait(&r->freed, &r->mu);
		r->feeder_waiting = false;
	}
	pthread_mutex_unlock(&r->mu);
}

static bool has_failed(struct hashring *r)
{
	pthread_mutex_lock(&r->mu);
	bool f = r->failed;
	pthread_mutex_unlock(&r->mu);
	return f;
}

int hashring_feed(struct hashring *r, const void *data, size_t len)
{
	const char *p = data;
	bool handed = false;

	while (len > 0) {
		/* head is only written by this thread: no lock to read it. */
		size_t s = (size_t)(r->head % r->slots);
		size_t n = r->slot_size - r->len[s];
		if (n > len)
			n = len;
		memcpy(r->buf[s] + r->len[s], p, n);
		r->len[s] += n;
		p += n;
		len -= n;
		if (r->len[s] == r->slot_size) {
			hand_over(r);
			handed = true;
		}
	}
	/* A failure is looked for once per slot handed over, not per piece. */
	return handed && has_failed(r) ? DRV_EIO : DRV_OK;
}

int hashring_sync(struct hashring *r)
{
	int rc;

	if (r->len[r->head % r->slots] > 0)
		hand_over(r);
	pthread_mutex_lock(&r->mu);
	while (r->tail != r->head)
		pthread_cond_wait(&r->freed, &r->mu);
	rc = r->failed ? DRV_EIO : DRV_OK;
	r->failed = false;
	pthread_mutex_unlock(&r->mu);
	return rc;
}

void hashring_get_stats(struct hashring *r, struct hashring_stats *st)
{
	pthread_mutex_lock(&r->mu);
	*st = r->st;
	st->feeder_waiting = r->feeder_waiting;
	pthread_mutex_unlock(&r->mu);
}

void hashring_free(struct hashring *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_signal(&r->more);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->freed);
	pthread_cond_destroy(&r->more);
	pthread_mutex_destroy(&r->mu);
	free_bufs(r);
	free(r);
}
