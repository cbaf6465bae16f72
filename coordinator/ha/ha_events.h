/*
 * ha_events.h: the event streams of an HA group's followers, woken by the
 * leader's commits.
 *
 * In a group the leader writes the events and a follower's streams
 * (GET /v1/events) read them from the shared store. Every writer of events
 * wakes the local streams after its COMMIT (drv_events_notify); on the
 * leader this module turns those wake-ups into `NOTIFY drover_events` on a
 * connection of its own, so a notification never announces an event that
 * is not committed. A burst of commits makes a notification every
 * NOTIFY_GATHER_MS at most. A follower LISTENs on its own connection and
 * wakes its streams when one arrives, so they read the event at once.
 *
 * The NOTIFY is not queued inside the writers' transactions: PostgreSQL
 * serializes the commits of every transaction that notifies (a lock held
 * until after each commit, to keep the queue in commit order), which would
 * make the link's group commits and the engine's saves wait for each
 * other's fsync.
 *
 * A notification can be missed (a connection reset, PostgreSQL restarted,
 * a writer that does not wake), so a follower also wakes its streams every
 * poll_ms, as it did before this (once a second).
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
