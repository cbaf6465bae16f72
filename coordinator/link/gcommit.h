/*
 * gcommit.h: the core lock with group commit.
 *
 * Every commit of the coordinator's store waits for an fsync (WAL,
 * synchronous=FULL; on PostgreSQL also a round trip). When several agents'
 * messages arrive together, each one's commit used to wait for the previous
 * one's. Here the writers that hold the lock one after the other join one
 * open transaction (a batch), and the batch commits once: when the lock is
 * released and no other thread is waiting for it ("drain what is queued,
 * commit once"), or when the batch is GCOMMIT_MAX_JOINS joins or
 * GCOMMIT_MAX_MS old.
 *
 * Durability: a writer that must tell a peer "saved" (a report's Ack, a
 * Hello's Welcome) calls gcommit_owe() after its writes and answers from
 * the after-commit hook, which gets the commit's result; nothing waits in
 * the writer's thread, so a batch holds as many reports as arrive while it
 * is open, not one per thread of NNG's few. A batch that owes answers stays
 * open GCOMMIT_LINGER_US after it was opened, so that the reports of a
 * fan-out arriving a few hundred microseconds apart (each verified outside
 * the lock first) share its commit; the committer thread commits it when
 * the linger (or the age limit) passes and nobody else released the lock
 * since. A batch that owes nothing commits at once. Writers that promise
 * nothing (an instruction queued by the sequencer, an instruction marked
 * sent) just join and release the lock.
 *
 * The before-commit hook (optional) runs with the lock held right before
 * a batch commits: writes its joiners left for the batch as a whole (the
 * reports' rows, one statement per kind for the batch) go in there.
 * The after-commit hook runs with the lock held after every commit of a
 * batch (rc: the commit's result). It may join a new batch (work that was
 * waiting for the commit, e.g. delivering instructions queued in it).
 * The after-unlock hook (optional) runs without the lock in the thread
 * that released it after a commit (the committer's included): what the
 * after-commit hook left for it (signing the answers) keeps the lock free.
 *
 * A turn (gcommit_lock_turn): the mutex is not fair, and the link's NNG
 * threads, each taking it for a Poll or a report and again for the next,
 * could keep a wave's chunk waiting for tens of milliseconds. A thread that
 * asks for a turn makes the others that come to gcommit_lock after it wait
 * until it has the lock (those already waiting for the mutex still go
 * first); it takes its turn and gives it up, so the link is served between
 * two chunks of a wave. The committer does not wait for turns: a report's
 * Ack never waits for more than the chunk in front of it.
 */
#ifndef DRV_GCOMMIT_H
#define DRV_GCOMMIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define GCOMMIT_MAX_JOINS 512  /* a batch commits after this many joins ... */
#define GCOMMIT_MAX_MS    10   /* ... or this old, even while others wait */
#define GCOMMIT_LINGER_US 1000 /* a batch that owes answers: its least age */

struct gcommit {
	pthread_mutex_t mu; /* the core lock */
	struct store *store;
	atomic_uint arriving; /* threads waiting in gcommit_lock */
	atomic_uint turns;    /* threads waiting in gcommit_lock_turn */
	pthread_mutex_t turn_mu;
	pthread_cond_t turn_cv; /* wakes those that let a turn go first */
	uint64_t turns_given;   /* gcommit_lock calls that waited for a turn (tests) */
	bool open;              /* a batch transaction is open */
	int64_t opened_us;      /* monotonic */
	size_t joins;
	int64_t max_ms;         /* GCOMMIT_MAX_MS; a test may raise it */
	int64_t linger_us;      /* GCOMMIT_LINGER_US; a test may change it */
	size_t owed;            /* answers owed after this batch's commit (gcommit_owe) */
	pthread_cond_t owed_cv; /* wakes the committer: a batch owes answers, or stop */
	pthread_t committer;
	bool stopping;
	void (*before)(void *arg); /* set before the first commit, or NULL */
	void (*after)(void *arg, int rc);
	void (*after_unlock)(void *arg); /* set before the first commit, or NULL */
	void *after_arg;
	bool committed; /* a commit since the lock was taken: run after_unlock */
	uint64_t commits, total_joins, total_owed; /* the log at shutdown; tests */
};

/* Starts the committer thread: DRV_ESYS if it cannot. */
int gcommit_init(struct gcommit *g, struct store *s, void (*after)(void *arg, int rc), void *arg);
/* Commits an open batch (its after-commit hook runs), stops the committer. */
void gcommit_destroy(struct gcommit *g);
void gcommit_lock(struct gcommit *g);
/* gcommit_lock ahead of the threads that come to gcommit_lock after it
 * (see above); for a wave's chunk. */
void gcommit_lock_turn(struct gcommit *g);
/* gcommit_unlock that commits the open batch whoever waits (its age and
 * linger aside): what the caller queued is delivered now, not after the
 * waiting threads' writes. */
void gcommit_unlock_commit(struct gcommit *g);
/* Commits first when the batch should (see above), then releases the lock. */
void gcommit_unlock(struct gcommit *g);
/* Lock held: open a batch if none is; the caller's writes are in it until
 * it commits. DRV_EDB if the transaction cannot begin (then write nothing
 * that must be atomic with others). */
int gcommit_join(struct gcommit *g);
/* Lock held, after a successful gcommit_join and the writes: the caller
 * answers its peer from the after-commit hook of this batch (which may run
 * on the committer thread); returns at once. */
void gcommit_owe(struct gcommit *g);
/* Lock held: commit the open batch now, whatever its age (shutdown). */
void gcommit_flush(struct gcommit *g);
bool gcommit_is_open(const struct gcommit *g);

#endif
