/*
 * traffic_int.h: what a traffic kind implements, and the kinds the registry
 * (traffic.c) lists. Shared by traffic.c and the kinds (traffic_haproxy.c,
 * traffic_hook.c); not part of the traffic API.
 */
#ifndef DRV_TRAFFIC_INT_H
#define DRV_TRAFFIC_INT_H

#include "traffic.h"

struct drv_traffic_ops {
	const char *kind;
	/* Validate CFG and make the kind's state (owned by the caller). */
	int (*open)(const struct drv_traffic_config *cfg, void **state);
	int (*set_weights)(void *state, const char *backend, const struct drv_traffic_weight *w,
	                   size_t n);
	/* The N servers get all traffic; every other server of BACKEND drains. */
	int (*switch_to)(void *state, const char *backend, const char *const *servers, size_t n);
	int (*set_state)(void *state, const char *backend, const char *const *servers, size_t n,
	                 enum drv_traffic_state st);
	/* WHY: never NULL, CAP >= 1, "" on entry (drv_traffic_wait_up) */
	int (*wait_up)(void *state, const char *backend, const char *const *servers, size_t n,
	               int64_t timeout_ms, char *why, size_t cap);
	void (*close)(void *state);
};

/* The ops of KIND, or NULL. */
const struct drv_traffic_ops *drv_traffic_find(const char *kind);

/* The "haproxy" kind (traffic_haproxy.c): config socket = the admin socket. */
extern const struct drv_traffic_ops drv_traffic_haproxy_ops;
/* The "command" kind (traffic_hook.c): an operator's command does the switching. */
extern const struct drv_traffic_ops drv_traffic_hook_ops; /* argv conventions: traffic.h */

#endif
