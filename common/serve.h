/*
 * serve.h: the main thread of both daemons once they run: signals are
 * blocked in every thread and taken here with sigtimedwait (no handlers),
 * and a tick runs at a fixed interval.
 */
#ifndef DRV_SERVE_H
#define DRV_SERVE_H

#include <signal.h>
#include <stdint.h>

/* Block SIGTERM, SIGINT and SIGHUP in the calling thread (call it before
 * starting threads: they inherit the mask) and ignore SIGPIPE. */
void drv_serve_block_signals(sigset_t *set);

struct drv_serve {
	const char *who;         /* the log's component: "agent", "droverd" */
	int64_t tick_ms;         /* interval of tick */
	int64_t first_tick_ms;   /* delay of the first tick (0: at once) */
	void (*tick)(void *arg); /* on the main thread */
	void *arg;
};

/* Until SIGTERM or SIGINT: SIGHUP reopens the log file; tick runs every
 * tick_ms. */
void drv_serve(const struct drv_serve *s, const sigset_t *set);

#endif
