/* ha_events.c: the leader's NOTIFY after its commits of events, a follower's streams woken by it
 * (ha_events.h). */
#include "ha_events.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "ha.h"
#include "log.h"

#define ROLE_CHECK_MS    1000 /* the role looked at, a lost connection tried again */
#define NOTIFY_GATHER_MS 10   /* the leader: at most one NOTIFY this often */

struct ha_events {
	struct drv_sql *db; /* LISTENs or NOTIFYs; used by the thread only */
	struct drv_events *ev;
	int64_t poll_ms;
	int wake[2]; /* stop pipe */
	atomic_bool stop;
	pthread_t thread;
	bool running;
	uint64_t seen_at_start; /* the hub's generation when started */
};

/* Wait up to ms for a notification or stop: 1 notified, 0 not, -1 stop. A
 * connection that fails is marked for another LISTEN (*listening). */
static int wait_notify(struct ha_events *h, int64_t ms, bool *listening)
{
	PGconn *c = drv_sql_handle(h->db);
	struct pollfd p[2] = {{.fd = h->wake[0], .events = POLLIN},
	                      {.fd = *listening ? PQsocket(c) : -1, .events = POLLIN}};
	PGnotify *n;
	int got = 0;

	if (poll(p, p[1].fd >= 0 ? 2 : 1, (int)ms) < 0 && errno != EINTR)
		return -1;
	if (p[0].revents != 0)
		return -1;
	if (p[1].fd >= 0 && p[1].revents != 0 && PQconsumeInput(c) == 0) {
		drv_warn("ha", "event notifications lost: listening again", "error=\"%s\"",
		         PQerrorMessage(c));
		*listening = false;
	}
	while ((n = PQnotifies(c)) != NULL) {
		PQfreemem(n);
		got = 1;
	}
	return got;
}

/* The leader: one NOTIFY for what its writers committed (and woke the
 * local streams for) since the last one, then a pause that gathers the
 * rest of a burst. false: stop. */
static bool lead(struct ha_events *h, uint64_t *seen)
{
	bool closing, listening = false;
	uint64_t gen = drv_events_gen(h->ev, &closing);

	if (closing) /* the node is stopping: nothing more to announce */
		return wait_notify(h, ROLE_CHECK_MS, &listening) >= 0;
	if (gen == *seen) {
		drv_events_wait(h->ev, gen, drv_mono_ms() + ROLE_CHECK_MS);
		gen = drv_events_gen(h->ev, &closing);
	}
	if (atomic_load(&h->stop))
		return false;
	if (gen == *seen || closing)
		return true;
	*seen = gen;
	drv_sql_exec(h->db, "NOTIFY " DRV_EVENTS_CHANNEL); /* a failure is logged there */
	return wait_notify(h, NOTIFY_GATHER_MS, &listening) >= 0;
}

/* A follower: wake the streams on a notification, or every poll_ms. The
 * connection that fails is LISTENed on again. false: stop. */
static bool follow(struct ha_events *h, bool *listening, int64_t *next_poll)
{
	int64_t ms = *next_poll - drv_mono_ms();
	int got;

	if (ms > ROLE_CHECK_MS)
		ms = ROLE_CHECK_MS;
	got = wait_notify(h, ms > 0 ? ms : 0, listening);
	if (got < 0)
		return false;
	if (drv_mono_ms() >= *next_poll) {
		got = 1;
		*next_poll = drv_mono_ms() + h->poll_ms;
	}
	if (got && !drv_ha_is_leader())
		drv_events_notify(h->ev);
	return true;
}

/* LISTEN while following, UNLISTEN while leading (the leader's own
 * notifications would only wake it for nothing). A LISTEN made again
 * (following again, or after the connection was reset: sqldb.h reconnects
 * it) wakes the streams as a notification would, in case one was missed.
 * What the hub saw since ha_events_start is announced once this node leads,
 * however late the thread runs: a node that becomes leader may announce
 * once for nothing (a follower reads and finds nothing new), never miss a
 * commit made after the start. */
static void *events_main(void *arg)
{
	struct ha_events *h = arg;
	bool listening = true; /* ha_events_start LISTENed */
	int64_t next_poll = drv_mono_ms() + h->poll_ms;
	uint64_t seen = h->seen_at_start;
	bool go = true;

	while (go && !atomic_load(&h->stop)) {
		bool follower = !drv_ha_is_leader();

		if (follower != listening &&
		    drv_sql_exec(h->db, follower ? "LISTEN " DRV_EVENTS_CHANNEL
		                                 : "UNLISTEN " DRV_EVENTS_CHANNEL) == DRV_OK) {
			listening = follower;
			if (follower)
				drv_events_notify(h->ev);
		}
		go = follower ? follow(h, &listening, &next_poll) : lead(h, &seen);
	}
	return NULL;
}

int ha_events_start(const char *target, struct drv_events *ev, int64_t poll_ms,
                    struct ha_events **out)
{
	struct ha_events *h = calloc(1, sizeof(*h));
	bool closing;
	int rc;

	if (h == NULL)
		return DRV_ENOMEM;
	h->ev = ev;
	h->poll_ms = poll_ms > 0 ? poll_ms : 1000;
	h->wake[0] = h->wake[1] = -1;
	rc = drv_sql_open(target, NULL, 0, &h->db);
	if (rc == DRV_OK && drv_sql_engine_of(h->db) != DRV_SQL_PG)
		rc = DRV_EINVAL;
	if (rc == DRV_OK)
		rc = drv_sql_exec(h->db, "LISTEN " DRV_EVENTS_CHANNEL);
	if (rc == DRV_OK && pipe(h->wake) != 0)
		rc = DRV_ESYS;
	h->seen_at_start = drv_events_gen(ev, &closing);
	if (rc == DRV_OK && pthread_create(&h->thread, NULL, events_main, h) != 0)
		rc = DRV_ESYS;
	if (rc != DRV_OK) {
		ha_events_stop(h);
		return rc;
	}
	h->running = true;
	*out = h;
	return DRV_OK;
}

void ha_events_stop(struct ha_events *h)
{
	if (h == NULL)
		return;
	if (h->running) {
		atomic_store(&h->stop, true);
		drv_events_notify(h->ev); /* a leader may wait on the hub */
		if (write(h->wake[1], "x", 1) != 1)
			drv_warn("ha", "cannot wake the events thread", "error=\"%s\"",
			         strerror(errno));
		pthread_join(h->thread, NULL);
	}
	drv_sql_close(h->db);
	if (h->wake[0] >= 0)
		close(h->wake[0]);
	if (h->wake[1] >= 0)
		close(h->wake[1]);
	free(h);
}
