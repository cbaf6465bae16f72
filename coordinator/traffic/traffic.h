/*
 * traffic.h: moving live traffic between servers of a load balancer, for
 * canary weights and blue-green switches.
 *
 * One const ops table per kind (struct drv_traffic_ops, traffic_int.h), all
 * listed in one registry (traffic.c):
 *   "haproxy"  HAProxy's runtime API over its admin unix socket
 *              (traffic_haproxy.h); servers are HAProxy server names
 *   "command"  a command the operator provides, run with the operation
 *              appended to its argv (see below); exit 0 means done
 *
 * Both are configured only in droverd.yaml (traffic_conf.h): a plan names a
 * balancer, never a socket or a command.
 *
 * The deployment engine opens a struct drv_traffic per operation and calls
 * drv_traffic_set_weights (canary steps), drv_traffic_switch (blue-green),
 * drv_traffic_set_state (drain a server before stopping it) and
 * drv_traffic_wait_up (health gate as the balancer sees it). All calls block
 * for at most the configured timeout (wait_up: its own timeout).
 *
 * Command argv: ARGV... OP BACKEND ARGS..., where OP and ARGS are
 *   weights BACKEND SERVER=WEIGHT...
 *   switch  BACKEND SERVER...          (these get all traffic)
 *   state   BACKEND ready|drain|maint SERVER...
 *   wait-up BACKEND TIMEOUT_MS SERVER...
 * The command's stdin is /dev/null; its stdout and stderr are droverd's stderr;
 * it is killed (SIGKILL to its process group) at the timeout.
 */
#ifndef DRV_TRAFFIC_H
#define DRV_TRAFFIC_H

#include <stddef.h>
#include <stdint.h>

#define DRV_TRAFFIC_WEIGHT_MAX  256   /* weights are 0..256 (HAProxy's range) */
#define DRV_TRAFFIC_SERVERS_MAX 1024  /* servers per call */
#define DRV_TRAFFIC_TIMEOUT_MS  10000 /* default per operation */
#define DRV_TRAFFIC_ARGV_MAX    64    /* command: words of the configured argv */

struct drv_traffic_weight {
	const char *server;
	int weight; /* 0..DRV_TRAFFIC_WEIGHT_MAX */
};

enum drv_traffic_state {
	DRV_TRAFFIC_READY, /* takes traffic per its weight */
	DRV_TRAFFIC_DRAIN, /* no new traffic; still health-checked */
	DRV_TRAFFIC_MAINT, /* out: no traffic, no checks */
};

struct drv_traffic_config {
	const char *kind;        /* "haproxy" | "command" */
	const char *socket;      /* haproxy: admin socket path */
	const char *const *argv; /* command: the command and fixed arguments, NULL-terminated */
	int64_t timeout_ms;      /* per operation; 0: DRV_TRAFFIC_TIMEOUT_MS */
};

/* An opened traffic switcher; owns copies of everything in its config. */
struct drv_traffic;

/* Open a switcher for CFG; *out is the caller's (drv_traffic_close). */
int drv_traffic_open(const struct drv_traffic_config *cfg, struct drv_traffic **out);
void drv_traffic_close(struct drv_traffic *t);
const char *drv_traffic_kind(const struct drv_traffic *t);

/*
 * Every call validates first (names [A-Za-z0-9._:-]{1,64}, 1..1024 servers,
 * weights 0..256; DRV_EINVAL otherwise) and returns the kind's result:
 * DRV_ENOENT for an unknown backend or server, DRV_ETIMEDOUT, DRV_EIO when
 * the balancer cannot be reached or the hook fails.
 */
int drv_traffic_set_weights(struct drv_traffic *t, const char *backend,
                            const struct drv_traffic_weight *w, size_t n);
/*
 * Blue-green: TO get all traffic (state ready, configured weight restored)
 * and every other server of BACKEND is drained. For haproxy, when none of TO
 * is UP the others are not drained and the result is DRV_ESTATE.
 */
int drv_traffic_switch(struct drv_traffic *t, const char *backend, const char *const *to, size_t n);
int drv_traffic_set_state(struct drv_traffic *t, const char *backend, const char *const *servers,
                          size_t n, enum drv_traffic_state st);
/*
 * Until each of SERVERS is UP as the balancer sees it, or DRV_ETIMEDOUT.
 * On a failure WHY (when not NULL; CAP bytes) names the servers that were
 * not UP and what the balancer reported for them (haproxy: "web-1-green
 * DOWN (last check failed)"); "" when the kind cannot say.
 */
int drv_traffic_wait_up(struct drv_traffic *t, const char *backend, const char *const *servers,
                        size_t n, int64_t timeout_ms, char *why, size_t cap);

#endif
