/*
 * events_read.h: one reader of the events hub, the stream behind
 * GET /v1/events (api/events_api.c parses the request and serves it).
 *
 * A reader reads the events table itself, on its caller's thread, from its
 * own position on: a slow client never holds up a publisher or another
 * reader, it only falls behind, and a client that resumes (Last-Event-ID)
 * reads from where it left off. It reads the table only when something was
 * published since its last read (a keep-alive reads nothing), and at most
 * once every gather_ms unless it is catching up (its last read was a full
 * batch): woken by the first commit of a burst, it reads the burst in one
 * go instead of once per commit. An event after a quiet spell goes out at
 * once. Each event's frame is built from the stored text (drv_events_frame).
 */
#ifndef DRV_EVENTS_READ_H
#define DRV_EVENTS_READ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "events.h"

#define DRV_EVENTS_BATCH     100 /* events per read of the table */
#define DRV_EVENTS_GATHER_MS 10

struct drv_events_filter { /* "" matches any */
	char deployment[DRV_EVENT_ID_MAX + 1];
	char agent[DRV_EVENT_ID_MAX + 1];
	char kind[DRV_EVENT_KIND_MAX + 1];
};

struct drv_events_reader_config {
	struct drv_events_filter filter;
	int64_t after_id; /* the first event read is the first matching one after it */
	bool follow;      /* false: the reader ends once it has caught up */
	int gather_ms;    /* 0: DRV_EVENTS_GATHER_MS */
	const char *head; /* sent first (e.g. the SSE retry line); may be NULL */
};

struct drv_events_reader_stats {
	uint64_t reads;     /* reads of the table */
	int64_t min_gap_ms; /* shortest time between a read that was not a full batch and
	                       the next read (INT64_MAX: none yet) */
};

struct drv_events_reader;

int drv_events_reader_new(struct drv_events *ev, const struct drv_events_reader_config *c,
                          struct drv_events_reader **out);
/* Up to cap bytes of the stream into out, waiting (follow) for events or a
 * keep-alive: the count, or -1 at the end (caught up without follow, the
 * hub closing, a database error). */
ssize_t drv_events_reader_next(struct drv_events_reader *r, char *out, size_t cap);
void drv_events_reader_stats(const struct drv_events_reader *r,
                             struct drv_events_reader_stats *out);
/* The id after which the last `tail` events matching f start (tail 0:
 * the newest id, so that only new events follow). */
int drv_events_tail_start(struct drv_events *ev, const struct drv_events_filter *f, long long tail,
                          int64_t *out);
void drv_events_reader_free(struct drv_events_reader *r);

#endif
