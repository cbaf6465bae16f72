/*
 * registry.h: the coordinator's in-memory view of agents (no I/O, no lock).
 *
 * The store holds what must survive a restart (key, status, sequence
 * numbers); the registry holds what only matters while droverd runs: which
 * connection an agent was last heard on, when, and the parked long poll that
 * is waiting for work. The core owns the registry and serializes access.
 *
 * Entries are allocated one by one and never move, so pointers stay valid
 * until registry_free().
 */
#ifndef DRV_REGISTRY_H
#define DRV_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "keys.h"
#include "store.h"

struct core_waiter;

struct agent_rt {
	char id[DRV_AGENT_ID_MAX + 1];
	enum agent_status status;
	struct drv_pubkey key;
	bool connected;
	uint32_t pipe;              /* connection it was last heard on */
	int64_t last_seen_ms;       /* wall clock */
	int64_t last_seen_mono;     /* monotonic, for liveness */
	int64_t last_saved_ms;      /* last_seen written to the store at */
	struct core_waiter *parked; /* long poll waiting for work, or NULL */
	uint32_t parked_pipe;
	int64_t parked_until_mono;
	uint64_t sync_gen;       /* last store sync that saw this agent */
	uint64_t acked_seq;      /* highest applied sequence the store has (skips no-op acks) */
	uint64_t nonce_used;     /* counter of the last session nonce it used (never again) */
	uint8_t parked_hash[32]; /* the parked poll's request hash (its Idle names it) */
	bool uncommitted;        /* has instructions queued in the open batch (core_queue.c) */
	bool resent_applied; /* was sent one it had applied: its next Poll acks (core_deliver.c) */
	uint64_t idle_gen;   /* nothing to deliver as of this generation (core_deliver.c) */
	uint64_t taken_seq;  /* the last instruction taken for it ... */
	uint64_t taken_gen;  /* ... the only one, as of this generation (core_deliver.c) */
	/* Reports (core_report.c): the highest report_seq taken, and what its
	 * reports in the open batch write once for the batch. */
	uint64_t report_seq;
	uint64_t batch_rs, batch_ack; /* its row's report_seq and acknowledgement */
	size_t batch_acked;           /* instructions the batch's write acknowledged */
	bool report_pending;          /* has reports in the open batch's list */
};

struct registry;

int registry_new(struct registry **out);
void registry_free(struct registry *r);
/* NULL if unknown. */
struct agent_rt *registry_get(struct registry *r, const char *id);
/* A new zeroed entry for id; DRV_EEXIST if present. */
int registry_add(struct registry *r, const char *id, struct agent_rt **out);
size_t registry_count(const struct registry *r);
typedef void (*registry_fn)(void *arg, struct agent_rt *a);
void registry_foreach(struct registry *r, registry_fn fn, void *arg);

#endif
