/* agent_conf.c: agent.yaml. */
#include "agent_conf.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "err.h"
#include "log.h"

static int check_id(const void *v, char *why, size_t len)
{
	if (!drv_agent_id_valid(*(char *const *)v)) {
		snprintf(why, len, "1 to 64 of A-Z a-z 0-9 . _ - (not starting with . or -)");
		return DRV_EINVAL;
	}
	return DRV_OK;
}

static int check_urls(const void *v, char *why, size_t len)
{
	const struct drv_strlist *l = v;

	for (size_t i = 0; i < l->n; i++) {
		if (!drv_cfg_link_url_ok(l->v[i])) {
			snprintf(why, len, "'%s' is not a tcp:// or tls+tcp:// URL", l->v[i]);
			return DRV_EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(l->v[i], l->v[j]) == 0) {
				snprintf(why, len, "'%s' is listed twice", l->v[i]);
				return DRV_EINVAL;
			}
		}
	}
	return DRV_OK;
}

static int check_keys(const void *v, char *why, size_t len)
{
	const struct drv_strlist *l = v;

	if (l->n == 0 || l->n > DRV_KEYRING_MAX) {
		snprintf(why, len, "needs 1 to %d public key files", DRV_KEYRING_MAX);
		return DRV_EINVAL;
	}
	return DRV_OK;
}

static int check_labels(const void *v, char *why, size_t len)
{
	const struct drv_kvlist *l = v;

	for (size_t i = 0; i < l->n; i++) {
		if (strlen(l->v[i].key) > 63 || strlen(l->v[i].value) > 255) {
			snprintf(why, len, "label '%.40s' is too long (keys 63, values 255)",
			         l->v[i].key);
			return DRV_EINVAL;
		}
	}
	return DRV_OK;
}

#define O(f) offsetof(struct agent_conf, f)
#define S    1000LL
static const struct drv_cfg_opt options[] = {
        {"id", DRV_CFG_STR, O(id), NULL, 0, 64, DRV_CFG_REQUIRED, check_id,
         "this agent's id; plans name hosts by it"},
        {"coordinator", DRV_CFG_STRLIST, O(coordinator), NULL, 0, AGENT_COORDINATORS_MAX,
         DRV_CFG_REQUIRED, check_urls,
         "where droverd listens: tls+tcp://HOST:PORT (or tcp:// in tests); a list for the "
         "nodes of an HA group (the agent follows the leader)"},
        {"coordinator_keys", DRV_CFG_PATHLIST, O(coordinator_keys), NULL, 0, DRV_KEYRING_MAX,
         DRV_CFG_REQUIRED, check_keys,
         "coordinator public keys trusted to sign instructions (two during a rotation)"},
        {"key", DRV_CFG_PATH, O(key), "agent.key", 0, 0, 0, NULL,
         "this agent's Ed25519 key, made on first start (mode 0600)"},
        {"labels", DRV_CFG_KV, O(labels), NULL, 0, 64, 0, check_labels,
         "labels plans select hosts by"},
        {"enroll_token_file", DRV_CFG_PATH, O(enroll_token_file), NULL, 0, 0, 0, NULL,
         "enrollment token (mode 0600): accepted without an operator"},
        {"tls.ca", DRV_CFG_PATH, O(tls_ca), NULL, 0, 0, 0, NULL,
         "the coordinator's certificate, pinned for tls+tcp://"},
        {"tls.server_name", DRV_CFG_STR, O(tls_server_name), "droverd", 0, 255, 0, NULL,
         "name the coordinator's certificate must carry"},
        {"state_dir", DRV_CFG_PATH, O(state_dir), "state", 0, 0, 0, NULL,
         "local state: applied sequence, steps, releases"},
        {"cache_dir", DRV_CFG_PATH, O(cache_dir), "cache", 0, 0, 0, NULL,
         "content-addressed image blobs"},
        {"releases_dir", DRV_CFG_PATH, O(releases_dir), "releases", 0, 0, 0, NULL,
         "unpacked releases"},
        {"log_dir", DRV_CFG_PATH, O(log_dir), "logs", 0, 0, 0, NULL, "service and hook output"},
        {"service_logs.max_bytes", DRV_CFG_INT, O(service_log_max_bytes), "10485760", 65536,
         1LL << 40, 0, NULL,
         "an exec service's output file (LOG_DIR/services/NAME.log) is rotated past this size"},
        {"service_logs.keep", DRV_CFG_INT, O(service_log_keep), "3", 1, 100, 0, NULL,
         "rotated files kept per service (NAME.log.1 is the newest)"},
        {"docker_socket", DRV_CFG_PATH, O(docker_socket), NULL, 0, 0, 0, NULL,
         "Docker Engine API socket for the container driver (unset: Podman's)"},
        {"insecure_registry", DRV_CFG_BOOL, O(insecure_registry), "false", 0, 0, 0, NULL,
         "allow http:// registries (tests, air-gapped labs)"},
        {"log.file", DRV_CFG_PATH, O(log_file), NULL, 0, 0, 0, NULL,
         "log file (reopened on SIGHUP); unset: stderr"},
        {"log.level", DRV_CFG_STR, O(log_level), "info", 0, 16, 0, drv_cfg_check_log_level,
         "debug, info, warn or error"},
        {"link.reconnect_min", DRV_CFG_DURATION, O(reconnect_min_ms), "200ms", 10, 60 * S, 0, NULL,
         "first reconnect delay (doubles up to reconnect_max, with jitter)"},
        {"link.reconnect_max", DRV_CFG_DURATION, O(reconnect_max_ms), "30s", 100, 3600 * S, 0, NULL,
         "longest reconnect delay"},
        {"link.request_timeout", DRV_CFG_DURATION, O(request_timeout_ms), "10s", 500, 600 * S, 0,
         NULL, "how long to wait for an answer (beyond the poll timeout for polls)"},
        {"link.clock_skew", DRV_CFG_DURATION, O(clock_skew_ms), "30s", 0, 3600 * S, 0, NULL,
         "allowed clock difference with the coordinator"},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

const struct drv_cfg_opt *agent_conf_options(size_t *n)
{
	*n = N_OPTIONS;
	return options;
}

static void cross_check(const char *path, const void *cfg, struct drv_cfg_diag *diag)
{
	const struct agent_conf *c = cfg;

	for (size_t i = 0; i < c->coordinator.n; i++) {
		if (strncmp(c->coordinator.v[i], "tls+tcp://", 10) == 0 && c->tls_ca == NULL) {
			drv_cfg_diag_add(diag, path,
			                 "tls+tcp:// needs tls.ca (the coordinator's certificate)");
			break;
		}
	}
	if (c->reconnect_max_ms < c->reconnect_min_ms)
		drv_cfg_diag_add(diag, path,
		                 "link.reconnect_max must not be below link.reconnect_min");
}

int agent_conf_load(const char *path, struct agent_conf *out, struct drv_cfg_diag *diag)
{
	return drv_cfg_load_checked(options, N_OPTIONS, path, out, sizeof(*out), diag, cross_check);
}

int agent_conf_defaults(const char *dir, struct agent_conf *out)
{
	static const char base[] = "id: x\ncoordinator: tcp://x:1\ncoordinator_keys: [x]\n";
	struct drv_cfg_diag diag;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = drv_cfg_load_buffer(options, N_OPTIONS, "defaults", dir, base, sizeof(base) - 1, out,
	                         &diag);
	if (rc == DRV_OK) {
		free(out->id);
		out->id = NULL;
		drv_strlist_free(&out->coordinator);
		drv_strlist_free(&out->coordinator_keys);
	}
	return rc;
}

void agent_conf_free(struct agent_conf *c)
{
	drv_cfg_free(options, N_OPTIONS, c);
}
