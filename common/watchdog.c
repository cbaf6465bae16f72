/* watchdog.c: a thread that ends the process if shutdown takes too long. */
#include "watchdog.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

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

	pthread_mutex_lock(&w->mu);
	while (!w->disarmed && !fire)
		fire = pthread_cond_timedwait(&w->cv, &w->mu, &w->deadline) != 0 && !w->disarmed;
	pthread_mutex_unlock(&w->mu);
	if (fire) {
		drv_error("watchdog", "shutdown did not finish in time: exiting", "stuck_in=\"%s\"",
		          w->what);
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
	clock_gettime(CLOCK_MONOTONIC, &w->deadline);
	w->deadline.tv_sec += ms / 1000;
	w->deadline.tv_nsec += (ms % 1000) * 1000000L;
	if (w->deadline.tv_nsec >= 1000000000L) {
		w->deadline.tv_sec++;
		w->deadline.tv_nsec -= 1000000000L;
	}
	if (pthread_create(&w->thr, NULL, watch, w) != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return DRV_ESYS;
	}
	*out = w;
	return DRV_OK;
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
