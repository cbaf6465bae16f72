/*
 * ha_lease.h: leader election of an HA group on its shared PostgreSQL store.
 *
 * One row, leader_lease, names the holder (a string unique to one run of one
 * node), its API URL, an epoch and when the lease expires, on the database's
 * clock. A node takes or renews it with one statement:
 *
 *   INSERT ... ON CONFLICT (name) DO UPDATE ...
 *     WHERE holder = me OR expires_ms < now
 *
 * and each take (not a renewal) makes the epoch one larger. The holder
 * renews every lease/3; a node that cannot renew steps down when its own
 * lease would have run out (by its monotonic clock), even with the database
 * out of reach. ha_lease_fence is the check sqldb.h runs before each commit
 * of the leader's writes: the row must still hold this node's epoch,
 * unexpired, and it is locked (FOR SHARE) until the commit, so that a take
 * by another node waits for the commit rather than passing it. A graceful
 * stop expires the row and NOTIFYs the group: a follower LISTENs and takes
 * over at once instead of waiting out the lease.
 *
 * The lease thread publishes what it finds through ha.h (drv_ha_set).
 */
#ifndef DRV_HA_LEASE_H
#define DRV_HA_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "sqldb.h"

#define HA_LEASE_DEFAULT_MS 6000
#define HA_NODE_MAX         64

struct ha_lease;

struct ha_lease_config {
	const char *target;                  /* "pg:CONNINFO" (sqldb.h) */
	const char *node;                    /* this node's name (logs, the row) */
	const char *url;                     /* this node's API URL, for followers to point at */
	int64_t lease_ms;                    /* lease length; renewed every lease_ms / 3 */
	const struct drv_sql_migration *mig; /* the schema (leader_lease is in it) */
	size_t n_mig;
};

/* Open the lease's own connection (LISTENs for handovers). */
int ha_lease_new(const struct ha_lease_config *c, struct ha_lease **out);
/* Try once to take or renew the lease: *leader and *epoch say the outcome
 * (epoch: ours when leader, else the holder's). Also what the thread runs. */
int ha_lease_try(struct ha_lease *l, bool *leader, uint64_t *epoch);
/* Run the renew loop on a thread of its own until ha_lease_free. */
int ha_lease_start(struct ha_lease *l);
/* Wait until this node leads (true) or timeout_ms passes (false). */
bool ha_lease_wait_leader(struct ha_lease *l, int64_t timeout_ms);
/* Install the fence (ha_lease_fence) on a connection of the leader. */
void ha_lease_fence_on(struct ha_lease *l, struct drv_sql *db);
/* The fence itself (drv_sql_fence_fn; arg is the lease). */
int ha_lease_fence(struct drv_sql *db, void *arg);
/* Give the lease up now and tell the group (graceful stop). */
void ha_lease_release(struct ha_lease *l);
/* Stop the thread (without releasing) and close. NULL is ok. */
void ha_lease_free(struct ha_lease *l);

#endif
