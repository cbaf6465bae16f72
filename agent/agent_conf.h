/*
 * agent_conf.h: drover-agent's configuration (agent.yaml): the options
 * table and the cross-option checks. Relative paths resolve against the
 * file's directory.
 */
#ifndef DRV_AGENT_CONF_H
#define DRV_AGENT_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#define AGENT_COORDINATORS_MAX 16 /* URLs in `coordinator` */

struct agent_conf {
	char *id;
	struct drv_strlist coordinator;      /* tcp:// or tls+tcp:// URLs: the nodes of a group */
	struct drv_strlist coordinator_keys; /* trusted coordinator public keys (key ring) */
	char *key;                           /* this agent's own key, made on first start */
	struct drv_kvlist labels;
	char *enroll_token_file;
	char *tls_ca; /* the coordinator's certificate (pinned) */
	char *tls_server_name;
	char *state_dir, *cache_dir, *releases_dir, *log_dir;
	char *docker_socket;
	bool insecure_registry;
	int64_t service_log_max_bytes, service_log_keep; /* exec services' logs rotate */
	char *log_file, *log_level;
	int64_t reconnect_min_ms, reconnect_max_ms, request_timeout_ms, clock_skew_ms;
};

const struct drv_cfg_opt *agent_conf_options(size_t *n);
int agent_conf_load(const char *path, struct agent_conf *out, struct drv_cfg_diag *diag);
/* Defaults only, relative paths against dir (for init). */
int agent_conf_defaults(const char *dir, struct agent_conf *out);
void agent_conf_free(struct agent_conf *c);

#endif
