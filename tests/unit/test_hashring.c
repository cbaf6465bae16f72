/* test_hashring.c: bytes hashed on a worker from a bounded ring of copies
 * (agent/hashring.c): in order, bounded (the feeder waits when the worker is
 * behind), and a failing hash is reported. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "err.h"
#include "hashring.h"
#include "sha256.h"

#define DATA_LEN ((3u << 20) + 4321)

static unsigned char *data;

static int setup(void **state)
{
	(void)state;
	data = malloc(DATA_LEN);
	if (data == NULL)
		return -1;
	for (size_t i = 0; i < DATA_LEN; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(data);
	return 0;
}

static int sha_fn(void *arg, const void *buf, size_t len)
{
	return drv_sha256_update(arg, buf, len) != DRV_OK;
}

/* Pieces of odd sizes, as libcurl hands them: the digest is that of the
 * whole, so every byte was hashed once and in order. */
static void pieces_hash_in_order(void **state)
{
	char want[DRV_DIGEST_STR], got[DRV_DIGEST_STR];
	struct drv_sha256 *h;
	struct hashring *r;
	struct hashring_stats st;
	size_t off = 0, n = 1;

	(void)state;
	assert_int_equal(drv_sha256_buf(data, DATA_LEN, want), DRV_OK);
	assert_int_equal(drv_sha256_new(&h), DRV_OK);
	assert_int_equal(hashring_new(sha_fn, h, 3, 4096 + 7, &r), DRV_OK);
	while (off < DATA_LEN) {
		if (n > DATA_LEN - off)
			n = DATA_LEN - off;
		assert_int_equal(hashring_feed(r, data + off, n), DRV_OK);
		off += n;
		n = n * 7 % 16411 + 1; /* 1 byte to 16 KiB, across slot edges */
	}
	assert_int_equal(hashring_sync(r), DRV_OK);
	hashring_get_stats(r, &st);
	assert_int_equal(st.handed, DATA_LEN);
	assert_int_equal(st.hashed, DATA_LEN);
	assert_int_equal(drv_sha256_final(h, got), DRV_OK);
	assert_string_equal(got, want);
	/* Reused after a sync: a second blob from a reset hash. */
	assert_int_equal(drv_sha256_reset(h), DRV_OK);
	assert_int_equal(hashring_feed(r, data, 100), DRV_OK);
	assert_int_equal(hashring_sync(r), DRV_OK);
	assert_int_equal(drv_sha256_final(h, got), DRV_OK);
	assert_int_equal(drv_sha256_buf(data, 100, want), DRV_OK);
	assert_string_equal(got, want);
	hashring_free(r);
	drv_sha256_free(h);
}

/* A hash that blocks until the test opens the gate. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool open;
	uint64_t hashed;
};

static int gated_fn(void *arg, const void *buf, size_t len)
{
	struct gate *g = arg;

	(void)buf;
	pthread_mutex_lock(&g->mu);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	g->hashed += len;
	pthread_mutex_unlock(&g->mu);
	return 0;
}

struct feeder {
	struct hashring *r;
	size_t len;
	int rc;
};

static void *feed_all(void *arg)
{
	struct feeder *f = arg;

	f->rc = hashring_feed(f->r, data, f->len);
	return NULL;
}

/* The worker stuck in its first slot: the feeder fills the other slots, then
 * waits, holding no more than the ring; the bytes flow once the hash goes
 * on. */
static void full_ring_holds_the_feeder(void **state)
{
	struct gate g = {.open = false};
	struct hashring *r;
	struct hashring_stats st = {0};
	struct feeder f = {.len = 10 * 1000};
	pthread_t t;

	(void)state;
	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	assert_int_equal(hashring_new(gated_fn, &g, 3, 1000, &r), DRV_OK);
	f.r = r;
	assert_int_equal(pthread_create(&t, NULL, feed_all, &f), 0);
	/* Bounded wait (5 s) for the feeder to block; not a timing assertion. */
	for (int i = 0; i < 5000 && !st.feeder_waiting; i++) {
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
		hashring_get_stats(r, &st);
	}
	assert_true(st.feeder_waiting);
	assert_int_equal(st.handed, 3 * 1000); /* the ring's size, not the 10,000 fed */
	assert_int_equal(st.hashed, 0);
	assert_int_equal(st.waits, 1);
	pthread_mutex_lock(&g.mu);
	g.open = true;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(f.rc, DRV_OK);
	assert_int_equal(hashring_sync(r), DRV_OK);
	hashring_get_stats(r, &st);
	assert_int_equal(st.hashed, 10 * 1000);
	assert_false(st.feeder_waiting);
	assert_int_equal(g.hashed, 10 * 1000);
	hashring_free(r);
	pthread_cond_destroy(&g.cv);
	pthread_mutex_destroy(&g.mu);
}

static int fail_second(void *arg, const void *buf, size_t len)
{
	int *calls = arg;

	(void)buf;
	(void)len;
	return ++*calls == 2;
}

/* A failed hash is reported by a later feed and by the sync, then cleared;
 * nothing is hashed after it until the sync. */
static void failed_hash_is_reported(void **state)
{
	struct hashring *r;
	struct hashring_stats st;
	int calls = 0, rc = DRV_OK;

	(void)state;
	assert_int_equal(hashring_new(fail_second, &calls, 2, 100, &r), DRV_OK);
	for (int i = 0; i < 50 && rc == DRV_OK; i++)
		rc = hashring_feed(r, data, 100);
	assert_int_equal(rc, DRV_EIO);
	assert_int_equal(hashring_sync(r), DRV_EIO);
	hashring_get_stats(r, &st);
	assert_int_equal(st.hashed, 100); /* the first slot only */
	assert_int_equal(calls, 2);
	assert_int_equal(hashring_feed(r, data, 100), DRV_OK);
	assert_int_equal(hashring_sync(r), DRV_OK);
	hashring_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(pieces_hash_in_order),
	        cmocka_unit_test(full_ring_holds_the_feeder),
	        cmocka_unit_test(failed_hash_is_reported),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
