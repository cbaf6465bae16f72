/*
 * ha.h: the leadership of this droverd in its HA group, as the rest of the
 * coordinator sees it.
 *
 * A node leads while it holds the lease row of the shared PostgreSQL store
 * (ha_lease.c); every lease it wins carries a new, larger epoch, and each
 * state-changing transaction of the leader checks that the row still holds
 * its epoch (fencing). With the embedded SQLite store there is no group: the
 * node is always the leader, with epoch 1.
 *
 * The state is process-wide (one droverd, one membership); it is read from
 * any thread. Callbacks run on the lease thread, after the state changed;
 * they must not block (queue work for another thread instead).
 */
#ifndef DRV_HA_H
#define DRV_HA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DRV_HA_URL_MAX 255

/* True while this node holds the lease (always with SQLite) and is not
 * held back (drv_ha_hold): what the link and the API act on. */
bool drv_ha_is_leader(void);
/* A node that has just won the lease acts as a follower until its
 * deployment engine has resumed (the link answers NOT_LEADER, the API
 * redirects or answers 503): drv_ha_hold(true) before the lease starts,
 * drv_ha_hold(false) once the engine runs. The epoch (drv_ha_epoch) and the
 * fence follow the lease alone, so the engine's resume seals and commits
 * under the new epoch while the node is held. */
void drv_ha_hold(bool held);
/* The epoch of this node's lease while it leads; 0 while it follows. */
uint64_t drv_ha_epoch(void);
/* The highest epoch this node has seen held by anyone (0: none yet). */
uint64_t drv_ha_seen_epoch(void);
/* The API URL the current leader announced in the lease row ("" when
 * unknown or when this node leads). Copied into buf (NUL-terminated). */
void drv_ha_leader_url(char *buf, size_t n);

/* What the API shows of this node's place (/healthz, /v1/leader). A node
 * that has won the lease but is held back (resuming its deployments) is not
 * the leader yet: it shows as a follower, epoch 0, resuming, with no leader
 * URL (none serves changes for those moments). */
struct drv_ha_view {
	bool leader;   /* acts as the leader: drv_ha_is_leader() */
	bool resuming; /* won the lease, held back until its engine runs */
	bool grouped;
	uint64_t epoch;                      /* drv_ha_wire_epoch() while it leads, else 0 */
	char leader_url[DRV_HA_URL_MAX + 1]; /* a follower's leader, "" when unknown */
};
void drv_ha_view(struct drv_ha_view *v);

/* Called after each change of leadership: leader says whether this node now
 * leads, epoch is its epoch (0 when it follows). */
typedef void (*drv_ha_change_fn)(void *arg, bool leader, uint64_t epoch);
/* At most DRV_HA_WATCH_MAX watchers; DRV_ETOOBIG past that. */
#define DRV_HA_WATCH_MAX 8
int drv_ha_watch(drv_ha_change_fn fn, void *arg);

/* Is this node in an HA group (a lease runs, or droverd.yaml forces a role)?
 * Outside a group the link sends no epoch (0): agents of the previous
 * release verify such envelopes, the prefix of the signature is unchanged. */
bool drv_ha_grouped(void);
void drv_ha_set_grouped(bool grouped);
/* The epoch the link seals with: drv_ha_epoch() in a group, else 0. */
uint64_t drv_ha_wire_epoch(void);

/* Set by the lease (ha_lease.c) and by single-node startup; not for others. */
void drv_ha_set(bool leader, uint64_t epoch, const char *leader_url);
/* Forget the state and the watchers (tests, daemon stop). */
void drv_ha_reset(void);

#endif
