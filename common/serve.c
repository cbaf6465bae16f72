/* serve.c: the daemons' main loop (serve.h). */
#include "serve.h"

#include <pthread.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "log.h"

void drv_serve_block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void drv_serve(const struct drv_serve *s, const sigset_t *set)
{
	int64_t next_tick = drv_mono_ms() + s->first_tick_ms;

	for (;;) {
		int64_t left = next_tick - drv_mono_ms();
		struct timespec ts = {left > 0 ? left / 1000 : 0,
		                      left > 0 ? (long)(left % 1000) * 1000000L : 0};
		int sig = sigtimedwait(set, NULL, &ts);

		if (sig == SIGTERM || sig == SIGINT) {
			drv_info(s->who, "stopping", "signal=%d", sig);
			return;
		}
		if (sig == SIGHUP) {
			drv_info(s->who, "reopening the log file");
			if (drv_log_reopen() == DRV_OK)
				drv_info(s->who, "log file reopened");
			else
				drv_error(s->who, "cannot reopen the log file");
		}
		if (drv_mono_ms() >= next_tick) {
			s->tick(s->arg);
			next_tick = drv_mono_ms() + s->tick_ms;
		}
	}
}
