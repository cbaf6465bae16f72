/* dconf.c: droverd.yaml. */
#include "dconf.h"

#include <libgen.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "err.h"
#include "http_server.h"
#include "tokens.h"
#include "log.h"
#include "outbound.h"

static int check_role(const void *v, char *why, size_t len)
{
	enum drv_role r;

	if (drv_role_parse(*(char *const *)v, &r) != DRV_OK || r == DRV_ROLE_NONE ||
	    r == DRV_ROLE_ALERTS) {
		snprintf(why, len,
		         "must be viewer, deployer, approver or admin (alerts may only post "
		         "alerts)");
		return DRV_EINVAL;
	}
	return DRV_OK;
}

static int check_listen(const void *v, char *why, size_t len)
{
	const struct drv_strlist *l = v;

	if (l->n == 0) {
		snprintf(why, len, "needs at least one URL");
		return DRV_EINVAL;
	}
	for (size_t i = 0; i < l->n; i++) {
		if (!drv_cfg_link_url_ok(l->v[i])) {
			snprintf(why, len, "'%s' is not a tcp:// or tls+tcp:// URL", l->v[i]);
			return DRV_EINVAL;
		}
	}
	return DRV_OK;
}

static int check_hostport(const void *v, char *why, size_t len)
{
	char host[64];
	uint16_t port;

	if (drv_http_parse_listen(*(char *const *)v, host, &port) != DRV_OK) {
		snprintf(why, len, "must be HOST:PORT with HOST an IP address or localhost");
		return DRV_EINVAL;
	}
	return DRV_OK;
}

static int check_force_role(const void *v, char *why, size_t len)
{
	const char *r = *(char *const *)v;

	if (r != NULL && r[0] != '\0' && strcmp(r, "leader") != 0 && strcmp(r, "follower") != 0) {
		snprintf(why, len, "must be leader or follower (or empty: the lease decides)");
		return DRV_EINVAL;
	}
	return DRV_OK;
}

static int check_api_url(const void *v, char *why, size_t len)
{
	const char *u = *(char *const *)v;

	if (u != NULL && u[0] != '\0' && strncmp(u, "http://", 7) != 0 &&
	    strncmp(u, "https://", 8) != 0) {
		snprintf(why, len, "must be an http:// or https:// URL");
		return DRV_EINVAL;
	}
	if (u != NULL && strpbrk(u, " \t\r\n\"\\") != NULL) {
		snprintf(why, len, "must not hold spaces, quotes or backslashes");
		return DRV_EINVAL;
	}
	return DRV_OK;
}

static int check_outbound(const void *v, char *why, size_t len)
{
	const struct drv_strlist *l = v;

	for (size_t i = 0; i < l->n; i++)
		if (drv_outbound_check_entry(l->v[i], why, len) != DRV_OK)
			return DRV_EINVAL;
	return DRV_OK;
}

#define O(f) offsetof(struct droverd_conf, f)
#define S    1000LL
static const struct drv_cfg_opt options[] = {
        {"listen", DRV_CFG_STRLIST, O(listen), "tls+tcp://0.0.0.0:7700", 0, 16, 0, check_listen,
         "URLs the link listens on: tcp://HOST:PORT (tests) or tls+tcp://HOST:PORT"},
        {"api", DRV_CFG_STR, O(api), DRV_API_DEFAULT_LISTEN, 0, 255, 0, check_hostport,
         "HOST:PORT of the HTTP API"},
        {"logs_role", DRV_CFG_STR, O(logs_role), "viewer", 0, 16, 0, check_role,
         "the weakest role that may read services' output (drover logs; logs may hold "
         "secrets): viewer, deployer, approver or admin"},
        {"token_recheck", DRV_CFG_DURATION, O(token_recheck_ms), "30s", 100, 30 * S, 0, NULL,
         "an open event stream re-checks its API token this often and ends once it is revoked"},
        {"database", DRV_CFG_PATH, O(database), "droverd.db", 0, 0, 0, NULL, "SQLite database"},
        {"store.postgres.dsn", DRV_CFG_STR, O(pg_dsn), "", 0, 1024, DRV_CFG_SECRET, NULL,
         "libpq connection string of the PostgreSQL store an HA group shares (empty: the "
         "SQLite database); see docs/ha.md"},
        {"signing_key", DRV_CFG_PATH, O(signing_key), "coordinator.key", 0, 0, 0, NULL,
         "Ed25519 key that signs instructions (mode 0600)"},
        {"tls.cert", DRV_CFG_PATH, O(tls_cert), "tls.crt", 0, 0, 0, NULL,
         "certificate for tls+tcp:// (agents pin it)"},
        {"tls.key", DRV_CFG_PATH, O(tls_key), "tls.key", 0, 0, 0, NULL,
         "its private key (mode 0600)"},
        {"tls.api_cert", DRV_CFG_PATH, O(api_tls_cert), NULL, 0, 0, 0, NULL,
         "PEM certificate of the API: it serves HTTPS (unset: plain HTTP, for loopback only; "
         "droverd init --api-tls makes a self-signed api.crt)"},
        {"tls.api_key", DRV_CFG_PATH, O(api_tls_key), NULL, 0, 0, 0, NULL,
         "its private key (mode 0600)"},
        {"log.file", DRV_CFG_PATH, O(log_file), NULL, 0, 0, 0, NULL,
         "log file (reopened on SIGHUP); unset: stderr"},
        {"log.level", DRV_CFG_STR, O(log_level), "info", 0, 16, 0, drv_cfg_check_log_level,
         "debug, info, warn or error"},
        {"stats_file", DRV_CFG_PATH, O(stats_file), "link-stats.json", 0, 0, 0, NULL,
         "link counters as JSON, rewritten every second when they change"},
        {"link.poll_timeout", DRV_CFG_DURATION, O(poll_timeout_ms), "25s", 1 * S, 300 * S, 0, NULL,
         "how long a Poll is held when there is no work"},
        {"link.liveness_timeout", DRV_CFG_DURATION, O(liveness_ms), "50s", 2 * S, 3600 * S, 0, NULL,
         "an agent silent this long is disconnected (at least poll_timeout + 1s)"},
        {"link.pending_retry", DRV_CFG_DURATION, O(pending_retry_ms), "5s", 100, 600 * S, 0, NULL,
         "a pending agent says Hello again this often"},
        {"link.instruction_ttl", DRV_CFG_DURATION, O(instruction_ttl_ms), "10m", 1 * S,
         7 * 24 * 3600 * S, 0, NULL, "default lifetime of an instruction"},
        {"link.clock_skew", DRV_CFG_DURATION, O(clock_skew_ms), "30s", 0, 3600 * S, 0, NULL,
         "allowed clock difference between coordinator and agents"},
        {"link.max_agents", DRV_CFG_INT, O(max_agents), "10000", 1, 1000000, 0, NULL,
         "agents known, in all states"},
        {"link.max_pending", DRV_CFG_INT, O(max_pending), "1000", 0, 1000000, 0, NULL,
         "agents waiting for acceptance"},
        {"link.max_pending_per_peer", DRV_CFG_INT, O(max_pending_per_peer), "20", 1, 1000000, 0,
         NULL, "agents waiting for acceptance whose first Hello came from one address"},
        {"link.pending_expiry", DRV_CFG_DURATION, O(pending_expiry_ms), "24h", 1 * S,
         365 * 24 * 3600 * S, 0, NULL,
         "a claim never accepted is forgotten after this long (its id is free again)"},
        {"link.receivers", DRV_CFG_INT, O(receivers), "8", 1, 1024, 0, NULL,
         "REP contexts always ready for new requests"},
        {"link.max_contexts", DRV_CFG_INT, O(max_contexts), "20000", 2, 1000000, 0, NULL,
         "upper bound on REP contexts (one per waiting agent plus receivers)"},
        {"insecure_registry", DRV_CFG_BOOL, O(insecure_registry), "false", 0, 0, 0, NULL,
         "resolve plan image tags over plain http:// (tests, air-gapped labs)"},
        {"balancers", DRV_CFG_EXTERN, O(balancers), NULL, 0, 0, 0, NULL,
         "traffic switches plans may name (traffic: {balancer: NAME, backend: B}): "
         "NAME: {kind: haproxy, socket: PATH} or NAME: {kind: command, argv: [CMD, ARGS...]}, "
         "optional timeout (10s); see docs/traffic.md"},
        {"prometheus", DRV_CFG_EXTERN, O(prometheus), NULL, 0, 0, 0, NULL,
         "Prometheus servers plans' analysis may name (analysis: {prometheus: {server: NAME}}): "
         "NAME: {url: URL, timeout: 10s, bearer_token_file: FILE (mode 0600), ca_file: PEM}; "
         "see docs/plans.md"},
        {"outbound.allow", DRV_CFG_STRLIST, O(outbound_allow), NULL, 0, 256, 0, check_outbound,
         "URL prefixes droverd may request on a plan's behalf (notify webhooks, "
         "analysis.http.url): http(s)://HOST[:PORT][/PATH]; a plan naming any other URL is "
         "refused (none by default); see docs/security.md"},
        {"environments", DRV_CFG_EXTERN, O(environments), NULL, 0, 0, 0, NULL,
         "where plans may be deployed (environment: NAME or ?env=NAME): NAME: {labels: "
         "{K: V} (hosts allowed), vars: {NAME: value or {secret_file: FILE (mode 0600)}}}; "
         "see docs/environments.md"},
        {"lifecycles", DRV_CFG_EXTERN, O(lifecycles), NULL, 0, 0, 0, NULL,
         "the order releases go through environments: NAME: {phases: [ENV, ENV, ...]}; an "
         "environment accepts only a release that succeeded in the phase before it; see "
         "docs/environments.md"},
        {"retention.events.max_age", DRV_CFG_DURATION, O(events_max_age_ms), "720h", 0,
         100LL * 365 * 24 * 3600 * S, 0, NULL, "events older than this are deleted (0: no limit)"},
        {"retention.events.max_rows", DRV_CFG_INT, O(events_max_rows), "1000000", 0, 1000000000, 0,
         NULL, "only the newest this many events are kept (0: no limit)"},
        {"retention.deployments.max_age", DRV_CFG_DURATION, O(deployments_max_age_ms), "2160h", 0,
         100LL * 365 * 24 * 3600 * S, 0, NULL,
         "finished deployments older than this are deleted, with their instructions (0: no "
         "limit)"},
        {"retention.deployments.max_rows", DRV_CFG_INT, O(deployments_max_rows), "10000", 0,
         100000000, 0, NULL,
         "only the newest this many finished deployments are kept (0: no limit)"},
        {"retention.batch", DRV_CFG_INT, O(retention_batch), "500", 1, 100000, 0, NULL,
         "rows deleted per transaction (small: writers never wait long)"},
        {"retention.interval", DRV_CFG_DURATION, O(retention_interval_ms), "10s", 1 * S, 3600 * S,
         0, NULL, "how often old rows are looked for"},
        {"ha.node", DRV_CFG_STR, O(ha_node), NULL, 0, 64, 0, NULL,
         "this node's name in its HA group (unset: the host name)"},
        {"ha.url", DRV_CFG_STR, O(ha_url), NULL, 0, 255, 0, NULL,
         "this node's API URL, announced to the other nodes of the group while it leads"},
        {"ha.lease", DRV_CFG_DURATION, O(ha_lease_ms), "6s", 1 * S, 600 * S, 0, NULL,
         "the leader lease (renewed every third of it): a dead leader is replaced within "
         "about this long plus a third"},
        {"ha.events_poll", DRV_CFG_DURATION, O(ha_events_poll_ms), "1s", 100, 3600 * S, 0, NULL,
         "a follower's event streams read the shared store this often, besides at once on "
         "the leader's notification of each commit (the fallback for a missed one)"},
        {"ha.force_role", DRV_CFG_STR, O(ha_force_role), NULL, 0, 16, 0, check_force_role,
         "leader or follower: fix this node's role instead of a lease (tests, a manual "
         "standby); unset outside a group"},
        {"ha.force_epoch", DRV_CFG_INT, O(ha_force_epoch), "1", 1, 1LL << 62, 0, NULL,
         "the epoch a forced leader signs with (raise it at each manual failover)"},
        {"ha.force_leader", DRV_CFG_STR, O(ha_force_leader), NULL, 0, 255, 0, check_api_url,
         "the leader's API URL a forced follower redirects changes to"},
        {"storage.min_free", DRV_CFG_INT, O(storage_min_free), "16777216", 0, 1LL << 50, 0, NULL,
         "bytes that must stay free beside the database; below, changes are refused (reads "
         "go on)"},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

const struct drv_cfg_opt *dconf_options(size_t *n)
{
	*n = N_OPTIONS;
	return options;
}

static bool uses_tls(const struct droverd_conf *c)
{
	for (size_t i = 0; i < c->listen.n; i++) {
		if (strncmp(c->listen.v[i], "tls+tcp://", 10) == 0)
			return true;
	}
	return false;
}

/* Rules between options; problems are appended to diag. */
static void cross_check(const char *path, const void *cfg, struct drv_cfg_diag *d)
{
	const struct droverd_conf *c = cfg;

	if (c->liveness_ms < c->poll_timeout_ms + 1000)
		drv_cfg_diag_add(d, path,
		                 "link.liveness_timeout must be at least link.poll_timeout + 1s");
	if (c->events_max_age_ms == 0 && c->events_max_rows == 0)
		drv_cfg_diag_add(
		        d, path,
		        "retention.events.max_age and max_rows cannot both be 0 (the events "
		        "table would grow without bound)");
	if (c->deployments_max_age_ms == 0 && c->deployments_max_rows == 0)
		drv_cfg_diag_add(d, path,
		                 "retention.deployments.max_age and max_rows cannot both be 0 (the "
		                 "deployments table would grow without bound)");
	if (uses_tls(c) && (c->tls_cert == NULL || c->tls_key == NULL))
		drv_cfg_diag_add(d, path, "tls+tcp:// needs tls.cert and tls.key");
	if ((c->api_tls_cert == NULL) != (c->api_tls_key == NULL))
		drv_cfg_diag_add(d, path, "tls.api_cert and tls.api_key go together");
	/* the nodes of a group reach each other (and clients reach them) over
	 * the network: never with tokens in plain HTTP */
	if (c->api_tls_cert == NULL && !drv_http_listen_is_loopback(c->api) &&
	    ((c->ha_force_role != NULL && c->ha_force_role[0] != '\0') ||
	     (c->pg_dsn != NULL && c->pg_dsn[0] != '\0')))
		drv_cfg_diag_add(
		        d, path,
		        "a node of an HA group serves its API beyond loopback only over "
		        "HTTPS: set tls.api_cert and tls.api_key (droverd init --api-tls)");
}

/* The sections the options table does not cover (`balancers`, `prometheus`),
 * from one tree of the same file with every node's line; errors go to diag. */
static int load_sections(const char *path, struct droverd_conf *out, struct drv_cfg_diag *diag)
{
	char dir[PATH_MAX], *buf = NULL;
	struct drv_yj_lines *lines = NULL;
	json_t *root = NULL;
	const char *base;
	size_t len;
	int rc = drv_read_file(path, DRV_CFG_FILE_MAX, &buf, &len);

	if (rc != DRV_OK)
		return rc;
	rc = drv_cfg_tree_load(buf, len, path, &root, &lines, diag);
	free(buf);
	if (rc != DRV_OK)
		return rc == DRV_EINVAL ? DRV_OK : rc; /* reported in diag */
	snprintf(dir, sizeof(dir), "%s", path);
	base = dirname(dir);
	rc = drv_traffic_balancers_read(root, lines, path, base, &out->balancers, diag);
	if (rc == DRV_OK || rc == DRV_EINVAL)
		rc = drv_prom_servers_read(root, lines, path, base, &out->prometheus, diag);
	if (rc == DRV_OK || rc == DRV_EINVAL)
		rc = drv_envs_read(root, lines, path, base, &out->environments, diag);
	if (rc == DRV_OK || rc == DRV_EINVAL)
		rc = drv_lifecycles_read(root, lines, path, &out->environments, &out->lifecycles,
		                         diag);
	json_decref(root);
	drv_yj_lines_free(lines);
	return rc == DRV_EINVAL ? DRV_OK : rc; /* reported in diag */
}

int dconf_load(const char *path, struct droverd_conf *out, struct drv_cfg_diag *diag)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = drv_cfg_load_file(options, N_OPTIONS, path, out, diag);
	if (rc != DRV_OK)
		return rc;
	rc = load_sections(path, out, diag);
	if (rc != DRV_OK) {
		dconf_free(out);
		return rc;
	}
	cross_check(path, out, diag);
	if (diag->n > 0) {
		dconf_free(out);
		return DRV_EINVAL;
	}
	return DRV_OK;
}

int dconf_defaults(const char *dir, struct droverd_conf *out)
{
	struct drv_cfg_diag diag;

	memset(out, 0, sizeof(*out));
	return drv_cfg_load_buffer(options, N_OPTIONS, "defaults", dir, "", 0, out, &diag);
}

void dconf_free(struct droverd_conf *c)
{
	drv_cfg_free(options, N_OPTIONS, c);
	drv_traffic_balancers_free(&c->balancers);
	drv_prom_servers_free(&c->prometheus);
	drv_envs_free(&c->environments);
	drv_lifecycles_free(&c->lifecycles);
}
