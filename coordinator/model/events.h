/*
 * events.h: the events hub: what happened, in order, for operators and
 * automation. Events are rows of the events table (id, at_ms, kind,
 * deployment_id, agent_id, data JSON); their id is the stream position.
 *
 * Publishing (any thread):
 *
 *     json_t *d = json_pack("{s:s}", "tier", "core");
 *     drv_events_publish(ev, "tier_done", "dep-42", NULL, d, NULL);
 *     json_decref(d);
 *
 * or, inside your own transaction on your own connection, insert with
 * drv_events_insert and call drv_events_notify(ev) after COMMIT.
 *
 * Streaming (api/events_api.c): GET /v1/events (viewer) answers text/event-stream:
 *
 *     retry: 2000
 *
 *     id: 42
 *     event: tier_done
 *     data: {"id":42,"at_ms":...,"kind":"tier_done","deployment_id":"dep-42",
 *            "agent_id":"","data":{"tier":"core"}}
 *
 * Query: since=ID (events after ID), tail=N (without since: start with the
 * last N, default 100, max 1000; tail=0 only new events), follow=0 (end the
 * stream once caught up; default 1), deployment=ID, agent=ID, kind=K
 * (filters). A Last-Event-ID header overrides since, so a client that
 * reconnects resumes exactly after the last event it saw. A comment line
 * ": keep-alive" goes out when nothing happened for keepalive_ms; that is
 * also how a vanished client is noticed (its write fails and the stream is
 * freed). Streams never block publishers: they read the table themselves
 * (model/events_read.h: one read per batch of commits, none for a
 * keep-alive). In an HA group the leader turns its wake-ups into a NOTIFY
 * on DRV_EVENTS_CHANNEL, which wakes the followers' streams
 * (ha/ha_events.h).
 */
#ifndef DRV_EVENTS_H
#define DRV_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include "sqldb.h"
#include <stdint.h>

struct drv_events;

#define DRV_EVENT_KIND_MAX      64  /* [a-z0-9_.-] */
#define DRV_EVENT_ID_MAX        255 /* deployment and agent ids */
#define DRV_EVENT_DATA_MAX      (64 * 1024)
#define DRV_EVENTS_KEEPALIVE_MS 15000
/* PostgreSQL: the channel an HA group's leader NOTIFYs after its commits of events */
#define DRV_EVENTS_CHANNEL "drover_events"

/* db: a connection (drv_sql_open, coordinator schema) the hub uses for
 * publishing and for reading streams; borrowed until drv_events_free.
 * keepalive_ms: 0 for DRV_EVENTS_KEEPALIVE_MS. */
int drv_events_new(struct drv_sql *db, int keepalive_ms, struct drv_events **out);
/* Call after drv_http_server_stop (streams hold the hub until then). */
void drv_events_free(struct drv_events *ev);

/* Insert and wake the streams. data is borrowed (NULL: {}); ids may be NULL
 * or "". *id_out (may be NULL) gets the event id. DRV_EINVAL for a bad kind,
 * an id too long or data that is not an object; DRV_ETOOBIG for data over
 * DRV_EVENT_DATA_MAX once serialized. */
int drv_events_publish(struct drv_events *ev, const char *kind, const char *deployment_id,
                       const char *agent_id, const json_t *data, int64_t *id_out);

/* The insert alone, on any connection (inside the caller's transaction). */
int drv_events_insert(struct drv_sql *db, const char *kind, const char *deployment_id,
                      const char *agent_id, const json_t *data, int64_t *id_out);
/* Several events of one deployment in one statement (one round trip on
 * PostgreSQL), in order: events is an array of {"kind", "agent" (optional),
 * "data" (optional object)}. Every event is checked as drv_events_insert
 * checks it before anything is written. NULL or empty: nothing. */
int drv_events_insert_all(struct drv_sql *db, const char *deployment_id, const json_t *events);
/* Events of one kind for several deployments and agents in one statement,
 * in order: rows is the text of a JSON array of [deployment_id, agent_id,
 * data object], each checked by the caller as drv_events_insert checks
 * (the link's reports of a group-commit batch). */
int drv_events_insert_rows(struct drv_sql *db, const char *kind, const char *rows);
/* Wake the streams (after a COMMIT that inserted events). */
void drv_events_notify(struct drv_events *ev);

/* End every stream now and refuse new ones (the server's stop hook). */
void drv_events_shutdown(struct drv_events *ev);

/* For readers of the stream (api/events_api.c). */
bool drv_events_kind_ok(const char *kind);
struct drv_sql *drv_events_db(const struct drv_events *ev);
int drv_events_keepalive_ms(const struct drv_events *ev);
/* A growing text buffer (a stream's pending output). */
struct drv_events_buf {
	char *p;
	size_t len, cap;
};
int drv_events_buf_add(struct drv_events_buf *b, const char *text, size_t len);

/* Append one event as its server-sent frame ("id: N\nevent: K\ndata: {...}\n\n",
 * the data line as in the header comment) to b. data is the events table's
 * data column: the compact JSON text the inserts wrote (json_dumps), taken
 * as it is, without parsing it again (one copy, no JSON tree per event;
 * the bytes are those jansson makes of it, test_events checks). Text that
 * is not shaped like such an object (not {...}, a line break that would
 * end the data line) and ids with characters JSON escapes go through
 * jansson instead (data that is not JSON becomes {}). */
int drv_events_frame(struct drv_events_buf *b, int64_t id, int64_t at_ms, const char *kind,
                     const char *deployment_id, const char *agent_id, const char *data);
/* The same frame with sse_id on its "id:" line (the stream's cursor, what
 * a client resumes from: events_cursor.h; NULL: id) and id in its data: an
 * event that committed late is sent after higher ids, under the position
 * the stream had reached (model/events_read.c). */
int drv_events_frame_at(struct drv_events_buf *b, const char *sse_id, int64_t id, int64_t at_ms,
                        const char *kind, const char *deployment_id, const char *agent_id,
                        const char *data);

/* The publish generation now; *closing is set when the hub is shutting down. */
uint64_t drv_events_gen(struct drv_events *ev, bool *closing);
/* Wait until the generation moves past seen_gen, the hub closes or the
 * monotonic clock reaches until_mono_ms. False when the hub is closing. */
bool drv_events_wait(struct drv_events *ev, uint64_t seen_gen, int64_t until_mono_ms);
/* Sleep until the monotonic clock reaches until_mono_ms or the hub closes,
 * whatever is published meanwhile (a stream gathering a batch). False when
 * the hub is closing. */
bool drv_events_linger(struct drv_events *ev, int64_t until_mono_ms);

#endif
