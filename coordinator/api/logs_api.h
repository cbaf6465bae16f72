/*
 * logs_api.h: a service's own output from its hosts, over the signed link.
 *
 *   GET /v1/services/{service}/logs[?host=H][&lines=N][&offset=O][&slot=S]
 *       -> 200 {"service", "hosts": [{"host", "instance", "text", "offset",
 *               "truncated", "rotated"} | {"host", "error"}]}
 *
 * Without host: every accepted agent that reports a release of the service
 * (an offline one gets an error, not a wait). lines: the last N lines
 * (1..10000, default 100); offset (with host): what was written after that
 * byte, for a follower. Each host's answer is capped at 64 KiB. The role is
 * droverd.yaml's logs_role (default viewer): logs may hold secrets.
 */
#ifndef DRV_LOGS_API_H
#define DRV_LOGS_API_H

#include "core.h"
#include "http_server.h"
#include "tokens.h"

struct logs_api {
	struct core *core;      /* borrowed */
	enum drv_role min_role; /* weakest role that may read logs */
};

/* api is borrowed and must outlive the server. */
int logs_api_add_routes(struct drv_http_server *srv, struct logs_api *api);

#endif
