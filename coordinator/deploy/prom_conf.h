/*
 * prom_conf.h: the Prometheus servers an operator defines in droverd.yaml
 * (section `prometheus`). A plan's analysis names one (`analysis:
 * { prometheus: { server: NAME, checks: [...] } }`) and never says where it
 * is or how to authenticate: what droverd connects to is operator
 * infrastructure (docs/security.md).
 *
 *     prometheus:
 *       main:                                  # the name plans use
 *         url: http://127.0.0.1:9090           # the server's base URL
 *         timeout: 5s                          # per query (default 10s)
 *         bearer_token_file: prom.token        # optional, mode 0600
 *         ca_file: /etc/drover/prom-ca.pem     # optional, for https://
 *
 * Every error is reported as "FILE:LINE: prometheus.NAME.FIELD: message".
 * Ownership: a struct drv_prom_servers owns everything under it.
 */
#ifndef DRV_PROM_CONF_H
#define DRV_PROM_CONF_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct drv_yj_lines;

#define DRV_PROM_SERVERS_MAX 32
#define DRV_PROM_URL_MAX     1024
#define DRV_PROM_TOKEN_MAX   4096

struct drv_prom_server {
	char *name;
	char *url;     /* without a trailing slash */
	char *token;   /* the bearer token read from bearer_token_file, or NULL */
	char *ca_file; /* NULL: the system's CAs */
	int64_t timeout_ms;
};

struct drv_prom_servers {
	size_t n;
	struct drv_prom_server *v;
};

/* Read the `prometheus` member of root (a whole droverd.yaml; absent:
 * none). Relative file paths resolve against base_dir. Problems go to
 * diag; DRV_EINVAL when there was any. out must be zeroed. */
int drv_prom_servers_read(const json_t *root, const struct drv_yj_lines *lines, const char *file,
                          const char *base_dir, struct drv_prom_servers *out,
                          struct drv_cfg_diag *diag);
int drv_prom_servers_parse(const char *buf, size_t len, const char *file, const char *base_dir,
                           struct drv_prom_servers *out, struct drv_cfg_diag *diag);
const struct drv_prom_server *drv_prom_server_find(const struct drv_prom_servers *s,
                                                   const char *name);
void drv_prom_servers_free(struct drv_prom_servers *s);

#endif
