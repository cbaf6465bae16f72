/*
 * replay.h: the replay guard.
 *
 * An instruction (or report) is accepted only if it is addressed to us, is
 * not expired (with an allowed clock skew), was not issued too far in the
 * future, and its sequence number is above the highest one already applied
 * for its sender. The check is pure; the caller persists the new highest
 * sequence (drv_replay_commit) before acting on the message.
 */
#ifndef DRV_REPLAY_H
#define DRV_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define DRV_REPLAY_DEFAULT_SKEW_MS 30000

struct drv_replay_msg {
	const char *target; /* who it is for; NULL when not targeted */
	uint64_t seq;
	int64_t issued_at_ms; /* wall clock */
	int64_t expires_at_ms;
};

/* Pure check. Returns DRV_ETARGET, DRV_EEXPIRED, DRV_EFUTURE, DRV_EREPLAY,
 * DRV_EINVAL (expires before issued, seq 0) or DRV_OK. */
int drv_replay_check(const struct drv_replay_msg *m, const char *self_id, uint64_t highest,
                     int64_t now_wall_ms, int64_t skew_ms);

/* Per-sender highest sequence numbers, for a receiver with many senders. */
struct drv_replay_table;

int drv_replay_table_new(size_t expected_senders, struct drv_replay_table **out);
void drv_replay_table_free(struct drv_replay_table *t);
/* 0 if the sender was never seen. */
uint64_t drv_replay_highest(const struct drv_replay_table *t, const char *sender);
/* Record seq as applied; never lowers the highest. */
int drv_replay_commit(struct drv_replay_table *t, const char *sender, uint64_t seq);

#endif
