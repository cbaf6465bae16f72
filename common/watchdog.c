/* watchdog.c: a thread that ends the process if shutdown takes too long, and
 * bounded runs of teardown steps that may block. */
#include "watchdog.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "log.h"

struct drv_watchdog {
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct timespec deadline; /* CLOCK_MONOTONIC */
	bool disarmed;
	const char *what;
	int code;
};

static void *watch(void *arg)
{
	struct drv_watchdog *w = arg;
	bool fire = false;

	const char *what;

	pthread_mutex_lock(&w->mu);
	while (!w->disarmed && !fire)
		fire = pthread_cond_timedwait(&w->cv, &w->mu, &w->deadline) != 0 && !w->disarmed;
	what = w->what;
	pthread_mutex_unlock(&w->mu);
	if (fire) {
		drv_error("watchdog", "shutdown did not finish in time: exiting", "stuck_in=\"%s\"",
		          what);
		_exit(w->code);
	}
	return NULL;
}

int drv_watchdog_start(int64_t ms, const char *what, int code, struct drv_watchdog **out)
{
	struct drv_watchdog *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;

	if (w == NULL)
		return DRV_ENOMEM;
	w->what = what;
	w->code = code;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	w->deadline = drv_mono_timespec_in(ms);
	if (pthread_create(&w->thr, NULL, watch, w) != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return DRV_ESYS;
	}
	*out = w;
	return DRV_OK;
}

void drv_watchdog_phase(struct drv_watchdog *w, const char *what)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->what = what;
	pthread_mutex_unlock(&w->mu);
}

void drv_watchdog_stop(struct drv_watchdog *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->disarmed = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thr, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* ---- bounded runs ---- */

struct bounded {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void (*fn)(void *);
	void *arg;
	bool done;
	int refs; /* the caller and the thread: the last one frees */
};

static void bounded_release(struct bounded *b)
{
	bool last;

	pthread_mutex_lock(&b->mu);
	last = --b->refs == 0;
	pthread_mutex_unlock(&b->mu);
	if (!last)
		return;
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

static void *bounded_main(void *arg)
{
	struct bounded *b = arg;

	b->fn(b->arg);
	pthread_mutex_lock(&b->mu);
	b->done = true;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	bounded_release(b);
	return NULL;
}

int drv_run_within(int64_t ms, const char *what, void (*fn)(void *), void *arg)
{
	struct bounded *b = calloc(1, sizeof(*b));
	pthread_condattr_t ca;
	struct timespec until;
	pthread_t thr;
	bool done;

	if (b == NULL)
		return DRV_ENOMEM;
	b->fn = fn;
	b->arg = arg;
	b->refs = 2;
	pthread_mutex_init(&b->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&thr, NULL, bounded_main, b) != 0) {
		b->refs = 1;
		bounded_release(b);
		return DRV_ESYS;
	}
	pthread_detach(thr);
	until = drv_mono_timespec_in(ms);
	pthread_mutex_lock(&b->mu);
	while (!b->done && pthread_cond_timedwait(&b->cv, &b->mu, &until) == 0)
		;
	done = b->done;
	pthread_mutex_unlock(&b->mu);
	bounded_release(b);
	if (!done)
		drv_warn("watchdog", "gave up waiting: left running until exit",
		         "what=\"%s\" ms=%lld", what, (long long)ms);
	return done ? DRV_OK : DRV_ETIMEDOUT;
}
