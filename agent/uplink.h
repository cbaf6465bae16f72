/*
 * uplink.h: the agent's side of the NNG link to the coordinator.
 *
 * One REQ socket per coordinator URL dials that node (tcp:// or tls+tcp://
 * with the coordinator's certificate pinned); every dialer reconnects by
 * itself. One node at a time is the session's: two contexts of its socket
 * carry the session. The poll
 * context says Hello and then keeps one long Poll outstanding; the report
 * context sends Reports, in order, each until the coordinator acknowledges
 * it. Every message is signed with the agent's key; every reply must be
 * signed by a key in the coordinator key ring.
 *
 * An instruction is applied only if it is for this agent, its sequence
 * number is above the highest applied, it has not expired, and images are
 * pinned by digest. The new highest sequence is saved (linkstate.h) before
 * the executor sees the instruction. A step id seen before is acknowledged
 * and its result, as the executor recorded it in agent.db (the agent's one
 * record of steps), reported again, never executed twice.
 *
 * HA groups (several URLs): only the leader serves agents; a follower
 * answers Reject NOT_LEADER and the link moves to the next node, preferring
 * one with a live connection, and asks again within about a second while
 * every node answers so (an election). Every coordinator envelope carries the
 * leader's epoch (signed); the highest seen is saved with the link state,
 * and a message of a lower epoch (an old leader that lost its lease) is
 * refused and the link moves on. The link never waits on a node it has
 * reason to leave: a request (a poll, a Hello, a report, also while a step
 * runs) ends at once when that node's last connection drops, when the
 * session moves to another node, or when another node announces a newer
 * epoch; a Hello goes only to a node with a connection. When the session
 * looks for a node, the nodes without a connection are redialed at once
 * (then after 2 s, 4 s ... up to reconnect_max): NNG's own pause for a node
 * that was down a while has grown to reconnect_max. With one URL nothing of
 * this changes.
 *
 * Reconnection: NNG redials with an exponential delay from reconnect_min
 * (randomized per agent) to reconnect_max; a failed exchange is retried
 * after an exponential backoff with jitter, a report at once when a new
 * session starts (after a failover).
 */
#ifndef DRV_UPLINK_H
#define DRV_UPLINK_H

#include <stdint.h>

#include "config.h"
#include "drover.pb-c.h"
#include "executor.h"
#include "keys.h"

#define UPLINK_RECV_MAX  (4u << 20) /* bigger messages close the connection */
#define UPLINK_QUEUE_MAX 4096       /* reports waiting to be sent */
#define UPLINK_NODES_MAX 16         /* coordinator URLs */

/* Everything is borrowed and must outlive the uplink. */
struct uplink_config {
	const char *agent_id;
	const struct drv_strlist *urls; /* 1..UPLINK_NODES_MAX */
	const char *tls_ca, *tls_server_name;
	const struct drv_keypair *key;
	const struct drv_keyring *ring;
	const struct drv_kvlist *labels;
	const char *enroll_token; /* NULL: none */
	const char *state_path;   /* linkstate file */
	const char *status_path;  /* session status JSON, rewritten when it changes */
	int64_t reconnect_min_ms, reconnect_max_ms, request_timeout_ms, skew_ms;
};

struct uplink;

/* Loads the link state; does not connect yet. */
int uplink_new(const struct uplink_config *cfg, struct uplink **out);
/* Dial and start the poll and report threads; ex is borrowed. */
int uplink_start(struct uplink *u, struct executor *ex);
/* Close the connection and join the threads. Reports may still arrive
 * (from the executor) until executor_free; they are kept, not sent.
 * DRV_ETIMEDOUT when NNG did not finish closing within UPLINK_CLOSE_MS: the
 * socket is left to process exit (do not call nng_fini()). */
#define UPLINK_CLOSE_MS 1000
int uplink_stop(struct uplink *u);
void uplink_free(struct uplink *u);

/* The executor's report callback (arg is the uplink): queues a copy. */
void uplink_report(const Drover__Report *r, void *arg);

/* Rewrite the status file if the session state changed (main thread). */
void uplink_write_status(struct uplink *u);

#endif
