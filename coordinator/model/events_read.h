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
 *
 * Late commits (PostgreSQL). SQLite serializes writers: an id is taken
 * inside the write transaction, which holds the database's write lock
 * until it commits, so ids commit in order and a read that sees id N sees
 * every committed id below it. On PostgreSQL ids come from a sequence
 * outside the writers' transactions: one can take 41, another 42 and
 * commit first. A read that then sees 42 notes 41 as a hole (ids missing
 * below the highest it read; ranges, at most DRV_EVENTS_HOLES, the oldest
 * dropped with a warning beyond that) and every later read looks for the
 * holes again; an event that turns up in one is sent then, after the
 * higher ids already sent, with the stream's position on its "id:" line
 * (drv_events_frame_at) so that Last-Event-ID never goes backwards. That
 * line is the stream's cursor (events_cursor.h): the position and, while
 * there are any, the holes below it, so that a client that resumes with it
 * is sent what committed in them while it was away. A hole
 * is given up (a rolled-back transaction leaves it for good) once it is
 * hole_ms old and the store says that every transaction that was running
 * when the hole was first seen has ended (pg_snapshot_xmin of the read
 * that looks for it is past pg_snapshot_xmax of the read that found it):
 * had the event committed, that read would have found it. A stream that
 * resumes from a cursor takes its holes as its own; one that starts at a
 * bare id (since, an older client's Last-Event-ID, tail) looks for holes
 * in the DRV_EVENTS_HOLE_LOOKBACK ids below it instead: what a client that
 * lost its connection may still be owed, if not committed yet.
 *
 * Why holes and not a "safe" id (read only below the lowest id of any
 * running transaction): PostgreSQL cannot tell a reader the ids another
 * transaction has taken but not committed; bounding the read needs each
 * row's inserting transaction and an order between taking the id and
 * that transaction's xid, i.e. a migration and a lock in every writer.
 * Holes need nothing from the writers, cost nothing while ids commit in
 * order (the usual case: the scan for holes is the index of ids just read)
 * and keep what is already committed flowing at once.
 */
#ifndef DRV_EVENTS_READ_H
#define DRV_EVENTS_READ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "events.h"
#include "events_cursor.h"

#define DRV_EVENTS_BATCH     100 /* events per read of the table */
#define DRV_EVENTS_GATHER_MS 10
/* PostgreSQL: how long a hole in the ids is looked for at least (below) */
#define DRV_EVENTS_HOLE_MS 10000
#define DRV_EVENTS_HOLES   64 /* holes (id ranges) a stream keeps, at most */

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
	int hole_ms;      /* 0: DRV_EVENTS_HOLE_MS (PostgreSQL only) */
	/* A resumed stream's cursor (events_cursor.h): the ids at or below
	 * after_id not sent yet. With any, they are the stream's first holes
	 * and the DRV_EVENTS_HOLE_LOOKBACK ids below after_id are not scanned
	 * (the cursor lists them exactly). PostgreSQL only. */
	int n_holes;
	struct drv_events_range holes[DRV_EVENTS_CURSOR_HOLES];
};

struct drv_events_reader_stats {
	uint64_t reads;     /* reads of the table */
	int64_t min_gap_ms; /* shortest time between a read that was not a full batch and
	                       the next read (INT64_MAX: none yet) */
	uint64_t late;      /* events sent after higher ids (found in a hole) */
	uint64_t given_up;  /* holes given up (or dropped, over DRV_EVENTS_HOLES) */
	int holes;          /* holes looked for now */
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
