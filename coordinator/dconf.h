/*
 * dconf.h: droverd's configuration (droverd.yaml): the options table and
 * the cross-option checks. Relative paths resolve against the file's
 * directory.
 */
#ifndef DRV_DCONF_H
#define DRV_DCONF_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "env_conf.h"
#include "lifecycle.h"
#include "prom_conf.h"
#include "traffic_conf.h"

struct droverd_conf {
	struct drv_strlist listen;        /* tcp:// or tls+tcp:// URLs */
	char *api;                        /* HOST:PORT of the HTTP API */
	char *api_tls_cert, *api_tls_key; /* HTTPS for the API; NULL: plain HTTP (loopback) */
	char *logs_role;                  /* weakest role that reads service output */
	int64_t token_recheck_ms;         /* streams re-check their token this often */
	char *database;
	/* `store.postgres`: the shared store of an HA group (docs/ha.md) */
	char *pg_dsn;  /* libpq conninfo; "": the SQLite database above */
	char *ha_node; /* this node's name in the group (NULL: the host name) */
	char *ha_url;  /* this node's API URL, announced to the others */
	int64_t ha_lease_ms;
	int64_t ha_events_poll_ms; /* a follower's streams re-read the store this often */
	char *signing_key;
	char *tls_cert, *tls_key;
	char *log_file; /* NULL: stderr */
	char *log_level;
	char *stats_file; /* link counters as JSON, rewritten every second */
	int64_t poll_timeout_ms;
	int64_t liveness_ms;
	int64_t pending_retry_ms;
	int64_t instruction_ttl_ms;
	int64_t clock_skew_ms;
	int64_t max_agents, max_pending;
	int64_t max_pending_per_peer, pending_expiry_ms;
	int64_t receivers, max_contexts;
	bool insecure_registry; /* resolve plan images over plain http:// */
	/* `balancers`: the traffic switches plans may name (traffic_conf.h) */
	struct drv_traffic_balancers balancers;
	/* `prometheus`: the servers plans' analysis may name (prom_conf.h) */
	struct drv_prom_servers prometheus;
	/* `outbound.allow`: URL prefixes droverd may request for plans (outbound.h) */
	struct drv_strlist outbound_allow;
	/* `environments`: where plans may go, with their variables (env_conf.h) */
	struct drv_plan_envs environments;
	/* `lifecycles`: the order releases go through environments (lifecycle.h) */
	struct drv_lifecycles lifecycles;
	/* retention (model/retention.h): 0 is no limit of that kind */
	int64_t events_max_age_ms, events_max_rows;
	int64_t deployments_max_age_ms, deployments_max_rows;
	int64_t retention_batch, retention_interval_ms;
	/* `ha`: this node in an HA group (coordinator/ha/ha.h, docs/ha.md) */
	char *ha_force_role; /* "", "leader" or "follower": tests and manual standby */
	int64_t ha_force_epoch;
	char *ha_force_leader;    /* the leader's API URL a forced follower redirects to */
	int64_t storage_min_free; /* bytes free in the database's directory, or changes are refused
	                           */
};

const struct drv_cfg_opt *dconf_options(size_t *n);
/* Load and check; every problem goes to diag. */
int dconf_load(const char *path, struct droverd_conf *out, struct drv_cfg_diag *diag);
/* Defaults only, relative paths against dir (for init). */
int dconf_defaults(const char *dir, struct droverd_conf *out);
void dconf_free(struct droverd_conf *c);

#endif
