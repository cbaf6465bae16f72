/*
 * link.h: the coordinator's side of the NNG link.
 *
 * One REP socket listens on every configured URL (tcp:// and tls+tcp://).
 * A pool of REP contexts receives requests and hands each to the core; a
 * Poll with nothing to send parks its context in the core (one context per
 * waiting agent), so does a Report until the commit that stores it (its Ack
 * comes from that commit, not from a waiting thread), and a fresh context
 * takes its place, so there are always `receivers` contexts ready for new
 * requests. Contexts are never freed before link_stop(); the pool grows up
 * to max_contexts.
 *
 * The transport drops a connection that sends a message over
 * LINK_RECV_MAX; between DRV_ENV_MAX and that the core rejects and counts it.
 */
#ifndef DRV_LINK_H
#define DRV_LINK_H

#include <stddef.h>

#include "config.h"
#include "core.h"

#define LINK_RECV_MAX (4u << 20)

struct link_config {
	const struct drv_strlist *listen; /* URLs */
	const char *tls_cert;             /* PEM files for tls+tcp:// */
	const char *tls_key;
	size_t receivers;    /* contexts always receiving (>= 1) */
	size_t max_contexts; /* upper bound on the pool */
};

struct link;

/* Listen on every URL; fails (and logs which URL and why) if any cannot. */
int link_start(struct core *c, const struct link_config *cfg, struct link **out);
/*
 * Stop: no callback enters the core from now on, wait for those inside,
 * forget parked polls unanswered, close the socket and free. Closing is
 * bounded by LINK_CLOSE_MS: NNG 1.5.2 can hang in nng_close() when a message
 * arrives while a connection closes (docs/reliability.md). Then it returns
 * DRV_ETIMEDOUT and leaves the socket to process exit (do not call
 * nng_fini()); the core is no longer used by the link either way.
 */
#define LINK_CLOSE_MS 1000
int link_stop(struct link *l);

#endif
