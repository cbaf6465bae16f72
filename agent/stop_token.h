/*
 * stop_token.h: the agent's request to stop, shared across threads. The
 * thread that stops a part sets it (under that part's lock, so waiters on
 * its condition variable see it); the part's workers, and the pulls, hooks
 * and health gates they run, poll it. A C11 atomic, as common/linkstats.c's
 * counters are: a volatile int orders nothing between threads.
 */
#ifndef DRV_AGENT_STOP_TOKEN_H
#define DRV_AGENT_STOP_TOKEN_H

#include <stdatomic.h>
#include <stdbool.h>

struct stop_token {
	atomic_bool stopped;
};

static inline void stop_token_set(struct stop_token *t)
{
	atomic_store(&t->stopped, true);
}

/* True once set; false for NULL (nothing can stop the caller). */
static inline bool stop_token_stopped(const struct stop_token *t)
{
	return t != NULL && atomic_load(&t->stopped);
}

#endif
