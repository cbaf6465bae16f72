/*
 * ha_events.h: a node's event streams woken by the leader's commits.
 *
 * In an HA group the leader writes the events and a follower's streams
 * (GET /v1/events) read them from the shared store. Every insert of events
 * queues a NOTIFY on DRV_EVENTS_CHANNEL in its own transaction
 * (model/events.c), which PostgreSQL sends when that transaction commits:
 * never for an event that is not committed. This module LISTENs on a
 * connection of its own and wakes the node's streams (drv_events_notify)
 * when a notification arrives while the node follows, so they read the
 * event at once. A notification can be missed (the connection lost and
 * made again, the server restarted), so it also wakes them every poll_ms
 * while following, as a follower did before this (once a second).
 */
#ifndef DRV_HA_EVENTS_H
#define DRV_HA_EVENTS_H

#include <stdint.h>

#include "events.h"

struct ha_events;

/* target: "pg:CONNINFO" (sqldb.h); ev: the hub, borrowed until
 * ha_events_stop; poll_ms: the fallback wake-up while following. */
int ha_events_start(const char *target, struct drv_events *ev, int64_t poll_ms,
                    struct ha_events **out);
/* Stop the thread and close its connection. NULL is ok. */
void ha_events_stop(struct ha_events *h);

#endif
