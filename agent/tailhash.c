/* tailhash.c: a file's SHA-256 on a worker that reads back what was written
 * (see tailhash.h). */
#include "tailhash.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "err.h"

/* The worker reads and hashes at most this much at a time, and is woken
 * once this much is waiting: a few hundred wake-ups for a 50 MB layer, and
 * a buffer that stays in the cache between the read and the hash. */
#define TAILHASH_CHUNK (256u << 10)

struct tailhash {
	pthread_mutex_t mu;
	pthread_cond_t more; /* the worker waits here for bytes or stop */
	pthread_cond_t idle; /* tailhash_wait waits here */
	pthread_t thread;
	int fd;
	struct drv_sha256 *h;
	uint64_t hashed, written; /* under mu; h is the worker's while it runs */
	bool sleeping, failed, stop;
	int fail_errno; /* what the failed read left in errno */
	char *buf;
};

static bool caught_up(const struct tailhash *t)
{
	return t->failed || t->hashed == t->written;
}

/* One read and hash of the bytes after t->hashed; called without mu. */
static ssize_t hash_some(struct tailhash *t, uint64_t off, uint64_t left)
{
	size_t n = left < TAILHASH_CHUNK ? (size_t)left : TAILHASH_CHUNK;
	ssize_t r;

	do
		r = pread(t->fd, t->buf, n, (off_t)off);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		errno = EIO; /* the file is shorter than what was written */
	if (r > 0 && drv_sha256_update(t->h, t->buf, (size_t)r) != DRV_OK) {
		errno = EIO;
		r = -1;
	}
	return r;
}

static void *work(void *arg)
{
	struct tailhash *t = arg;

	pthread_mutex_lock(&t->mu);
	for (;;) {
		while (!t->stop && caught_up(t)) {
			t->sleeping = true;
			pthread_cond_broadcast(&t->idle);
			pthread_cond_wait(&t->more, &t->mu);
		}
		t->sleeping = false;
		if (t->stop)
			break;
		uint64_t off = t->hashed, left = t->written - t->hashed;
		pthread_mutex_unlock(&t->mu);
		ssize_t r = hash_some(t, off, left);
		int e = errno;
		pthread_mutex_lock(&t->mu);
		if (r <= 0) {
			t->failed = true;
			t->fail_errno = e;
		} else
			t->hashed += (uint64_t)r;
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

int tailhash_new(int fd, struct drv_sha256 *h, uint64_t from, struct tailhash **out)
{
	struct tailhash *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return DRV_ENOMEM;
	t->buf = malloc(TAILHASH_CHUNK);
	if (t->buf == NULL) {
		free(t);
		return DRV_ENOMEM;
	}
	t->fd = fd;
	t->h = h;
	t->hashed = t->written = from;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->more, NULL);
	pthread_cond_init(&t->idle, NULL);
	if (pthread_create(&t->thread, NULL, work, t) != 0) {
		pthread_cond_destroy(&t->idle);
		pthread_cond_destroy(&t->more);
		pthread_mutex_destroy(&t->mu);
		free(t->buf);
		free(t);
		return DRV_ESYS;
	}
	*out = t;
	return DRV_OK;
}

void tailhash_written(struct tailhash *t, uint64_t written)
{
	pthread_mutex_lock(&t->mu);
	t->written = written;
	if (t->sleeping && t->written - t->hashed >= TAILHASH_CHUNK)
		pthread_cond_signal(&t->more);
	pthread_mutex_unlock(&t->mu);
}

int tailhash_wait(struct tailhash *t)
{
	int rc;

	pthread_mutex_lock(&t->mu);
	if (!caught_up(t))
		pthread_cond_signal(&t->more); /* less than a chunk may be waiting */
	while (!caught_up(t) || !t->sleeping)
		pthread_cond_wait(&t->idle, &t->mu);
	rc = t->failed ? DRV_EIO : DRV_OK;
	if (t->failed)
		errno = t->fail_errno;
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void tailhash_rewind(struct tailhash *t, uint64_t from)
{
	tailhash_wait(t);
	pthread_mutex_lock(&t->mu);
	t->hashed = t->written = from;
	t->failed = false;
	pthread_mutex_unlock(&t->mu);
}

void tailhash_free(struct tailhash *t)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->mu);
	t->stop = true;
	pthread_cond_signal(&t->more);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->idle);
	pthread_cond_destroy(&t->more);
	pthread_mutex_destroy(&t->mu);
	free(t->buf);
	free(t);
}
