/*
 * traffic_conf.h: the traffic balancers an operator defines in droverd.yaml
 * (section `balancers`). A plan names one (`traffic: { balancer: NAME,
 * backend: B }`) and never says how to reach it: what runs or is opened on
 * the coordinator is operator infrastructure, not something a deployer's
 * plan chooses (docs/traffic.md, docs/security.md).
 *
 *     balancers:
 *       edge:                              # the name plans use
 *         kind: haproxy
 *         socket: /run/haproxy/admin.sock  # its runtime API socket
 *         timeout: 10s                     # per operation (default 10s)
 *       dns:
 *         kind: command                    # argv + the operation (traffic.h)
 *         argv: [/usr/local/bin/lb-switch, --env, prod]
 *
 * Every error is reported as "FILE:LINE: balancers.NAME.FIELD: message".
 * Ownership: a struct drv_traffic_balancers owns everything under it.
 */
#ifndef DRV_TRAFFIC_CONF_H
#define DRV_TRAFFIC_CONF_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "traffic.h"

struct drv_yj_lines;

#define DRV_TRAFFIC_BALANCERS_MAX 64
#define DRV_TRAFFIC_NAME_MAX      63
#define DRV_TRAFFIC_WORD_MAX      4096 /* one word of a command's argv */

struct drv_traffic_balancer {
	char *name;
	char *kind;   /* "haproxy" | "command" */
	char *socket; /* haproxy: absolute path */
	char **argv;  /* command: NULL-terminated */
	int64_t timeout_ms;
};

struct drv_traffic_balancers {
	size_t n;
	struct drv_traffic_balancer *v;
};

/*
 * Read the `balancers` member of root (a whole droverd.yaml as loaded by
 * drv_yj_load_*; absent: none). Relative socket paths resolve against
 * base_dir. Problems are appended to diag; DRV_EINVAL when there was any.
 * out must be zeroed; on failure it is left empty.
 */
int drv_traffic_balancers_read(const json_t *root, const struct drv_yj_lines *lines,
                               const char *file, const char *base_dir,
                               struct drv_traffic_balancers *out, struct drv_cfg_diag *diag);
/* The same from the text of a droverd.yaml (fuzzing, tests). */
int drv_traffic_balancers_parse(const char *buf, size_t len, const char *file, const char *base_dir,
                                struct drv_traffic_balancers *out, struct drv_cfg_diag *diag);
/* NULL when there is no balancer of that name. */
const struct drv_traffic_balancer *drv_traffic_balancer_find(const struct drv_traffic_balancers *b,
                                                             const char *name);
/* The switcher's config for b (pointers borrowed from b). */
void drv_traffic_balancer_config(const struct drv_traffic_balancer *b,
                                 struct drv_traffic_config *cfg);
void drv_traffic_balancers_free(struct drv_traffic_balancers *b);

#endif
