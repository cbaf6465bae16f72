/* gcommit.c: the core lock with group commit (see gcommit.h). */
#include "gcommit.h"

#include <time.h>

#include "clock.h"
#include "err.h"
#include "log.h"

static void *committer(void *arg);
static void release(struct gcommit *g);

int gcommit_init(struct gcommit *g, struct store *s, void (*after)(void *arg, int rc), void *arg)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&g->mu, NULL);
	pthread_mutex_init(&g->turn_mu, NULL);
	pthread_cond_init(&g->turn_cv, NULL);
	atomic_init(&g->turns, 0);
	g->turns_given = 0;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->owed_cv, &ca);
	pthread_condattr_destroy(&ca);
	g->store = s;
	atomic_init(&g->arriving, 0);
	g->open = false;
	g->joins = 0;
	g->max_ms = GCOMMIT_MAX_MS;
	g->linger_us = GCOMMIT_LINGER_US;
	g->owed = 0;
	g->stopping = false;
	g->before = NULL;
	g->after = after;
	g->after_unlock = NULL;
	g->after_arg = arg;
	g->committed = false;
	g->commits = g->total_joins = g->total_owed = 0;
	if (pthread_create(&g->committer, NULL, committer, g) != 0) {
		drv_error("gcommit", "cannot start the committer thread");
		pthread_cond_destroy(&g->owed_cv);
		pthread_cond_destroy(&g->turn_cv);
		pthread_mutex_destroy(&g->turn_mu);
		pthread_mutex_destroy(&g->mu);
		return DRV_ESYS;
	}
	return DRV_OK;
}

void gcommit_destroy(struct gcommit *g)
{
	pthread_mutex_lock(&g->mu);
	gcommit_flush(g);
	g->stopping = true;
	pthread_cond_signal(&g->owed_cv);
	release(g);
	pthread_join(g->committer, NULL);
	if (g->commits > 0)
		drv_debug("gcommit", "batches", "commits=%llu joins=%llu owed=%llu",
		          (unsigned long long)g->commits, (unsigned long long)g->total_joins,
		          (unsigned long long)g->total_owed);
	pthread_cond_destroy(&g->owed_cv);
	pthread_cond_destroy(&g->turn_cv);
	pthread_mutex_destroy(&g->turn_mu);
	pthread_mutex_destroy(&g->mu);
}

/* Let a thread that asked for a turn go first. */
static void wait_turns(struct gcommit *g)
{
	if (atomic_load(&g->turns) == 0)
		return;
	pthread_mutex_lock(&g->turn_mu);
	if (atomic_load(&g->turns) > 0)
		g->turns_given++;
	while (atomic_load(&g->turns) > 0)
		pthread_cond_wait(&g->turn_cv, &g->turn_mu);
	pthread_mutex_unlock(&g->turn_mu);
}

void gcommit_lock(struct gcommit *g)
{
	wait_turns(g);
	atomic_fetch_add(&g->arriving, 1);
	pthread_mutex_lock(&g->mu);
	atomic_fetch_sub(&g->arriving, 1);
}

void gcommit_lock_turn(struct gcommit *g)
{
	atomic_fetch_add(&g->turns, 1);
	atomic_fetch_add(&g->arriving, 1);
	pthread_mutex_lock(&g->mu);
	atomic_fetch_sub(&g->arriving, 1);
	pthread_mutex_lock(&g->turn_mu);
	if (atomic_fetch_sub(&g->turns, 1) == 1)
		pthread_cond_broadcast(&g->turn_cv);
	pthread_mutex_unlock(&g->turn_mu);
}

bool gcommit_is_open(const struct gcommit *g)
{
	return g->open;
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int gcommit_join(struct gcommit *g)
{
	if (!g->open) {
		if (store_begin(g->store) != DRV_OK)
			return DRV_EDB;
		g->open = true;
		g->opened_us = mono_us();
		g->joins = 0;
	}
	g->joins++;
	g->total_joins++;
	return DRV_OK;
}

/* Commit now? Only when nobody else is about to add to the batch and, if it
 * owes answers, it lingered long enough for the next ones; unless it is
 * full or old: then its answers must not wait longer. */
static bool due(const struct gcommit *g)
{
	int64_t age;

	if (!g->open)
		return false;
	age = mono_us() - g->opened_us;
	if (g->joins >= GCOMMIT_MAX_JOINS || age >= g->max_ms * 1000)
		return true;
	return atomic_load(&g->arriving) == 0 && (g->owed == 0 || age >= g->linger_us);
}

/* The committer sleeps until it is signalled or the batch's next deadline
 * (its linger, then its age limit) passes. */
static void sleep_until_due(struct gcommit *g)
{
	int64_t age = mono_us() - g->opened_us;
	int64_t at = g->opened_us + (age < g->linger_us ? g->linger_us : g->max_ms * 1000);
	struct timespec ts = {.tv_sec = (time_t)(at / 1000000),
	                      .tv_nsec = (long)(at % 1000000) * 1000};

	pthread_cond_timedwait(&g->owed_cv, &g->mu, &ts);
}

static void commit(struct gcommit *g)
{
	int rc;

	if (g->before != NULL)
		g->before(g->after_arg);
	rc = store_commit(g->store); /* rolls the batch back if it fails */

	g->open = false;
	g->owed = 0; /* the after-commit hook answers them */
	g->commits++;
	g->committed = true;
	if (rc != DRV_OK)
		drv_error("gcommit", "batch commit failed: its writes are lost", "joins=%zu",
		          g->joins);
	if (g->after != NULL)
		g->after(g->after_arg, rc);
}

/* Lock held: release it, then run the after-unlock hook if a commit
 * happened while it was held. */
static void release(struct gcommit *g)
{
	bool committed = g->committed;

	g->committed = false;
	pthread_mutex_unlock(&g->mu);
	if (committed && g->after_unlock != NULL)
		g->after_unlock(g->after_arg);
}

void gcommit_unlock(struct gcommit *g)
{
	/* twice at most: what the after-commit hook joined is committed too
	 * when nobody else will */
	for (int i = 0; i < 2 && due(g); i++)
		commit(g);
	release(g);
}

void gcommit_unlock_commit(struct gcommit *g)
{
	if (g->open)
		commit(g);
	gcommit_unlock(g);
}

void gcommit_owe(struct gcommit *g)
{
	if (g->owed++ == 0)
		pthread_cond_signal(&g->owed_cv);
	g->total_owed++;
}

void gcommit_flush(struct gcommit *g)
{
	/* twice at most, as gcommit_unlock */
	for (int i = 0; i < 2 && g->open; i++)
		commit(g);
}

/* Commits a batch that owes answers once it is due: nobody is blocked on
 * it, so without this thread a batch whose linger passed while nobody came
 * would stay open. Its after-commit hook runs here then. */
static void *committer(void *arg)
{
	struct gcommit *g = arg;

	pthread_mutex_lock(&g->mu);
	while (!g->stopping) {
		if (due(g)) {
			commit(g);
			release(g);
			pthread_mutex_lock(&g->mu);
		} else if (g->open && g->owed > 0)
			sleep_until_due(g);
		else
			pthread_cond_wait(&g->owed_cv, &g->mu);
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}
