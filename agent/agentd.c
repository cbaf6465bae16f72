/*
 * agentd.c: `drover-agent --config FILE`: the running agent.
 *
 * The main thread starts the executor and the uplink, then waits for
 * signals with sigtimedwait (no handlers): SIGTERM/SIGINT stop cleanly,
 * SIGHUP reopens the log. Once a second it rewrites the status files
 * (STATE_DIR/link-status.json, STATE_DIR/link-stats.json) when they change.
 */
#include <limits.h>
#include <nng/nng.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_cmds.h"
#include "agent_conf.h"
#include "atomicfile.h"
#include "clock.h"
#include "err.h"
#include "sdnotify.h"
#include "serve.h"
#include "executor.h"
#include "keys.h"
#include "linkstats.h"
#include "log.h"
#include "secret.h"
#include "uplink.h"
#include "watchdog.h"

#define TICK_MS 1000

struct agentd {
	struct agent_conf conf;
	struct drv_keypair key;
	struct drv_keyring ring;
	char token[DRV_SECRET_MAX];
	char state_path[PATH_MAX], status_path[PATH_MAX], stats_path[PATH_MAX];
	struct executor *ex;
	struct uplink *up;
	struct drv_linkstats_file stats;
};

static int load(const char *config, struct agentd *a)
{
	struct drv_cfg_diag diag;
	int rc = agent_conf_load(config, &a->conf, &diag);

	if (rc != DRV_OK) {
		drv_cfg_diag_print(&diag);
		return rc;
	}
	drv_keyring_init(&a->ring);
	for (size_t i = 0; i < a->conf.coordinator_keys.n; i++) {
		rc = drv_keyring_add_file(&a->ring, a->conf.coordinator_keys.v[i]);
		if (rc != DRV_OK) {
			fprintf(stderr, "%s: coordinator key %s: %s\n", config,
			        a->conf.coordinator_keys.v[i], drv_strerror(rc));
			return rc;
		}
	}
	if (a->conf.enroll_token_file != NULL &&
	    (rc = drv_secret_read_file(a->conf.enroll_token_file, a->token, sizeof(a->token))) !=
	            DRV_OK) {
		fprintf(stderr, "%s: enrollment token %s: %s\n", config, a->conf.enroll_token_file,
		        rc == DRV_EPERM ? "readable by group or others (chmod 600)"
		                        : drv_strerror(rc));
		return rc;
	}
	return DRV_OK;
}

/* The agent's own key: made (0600) on first start. */
static int own_key(struct agentd *a)
{
	char pub[PATH_MAX + 8];
	int rc;

	snprintf(pub, sizeof(pub), "%s.pub", a->conf.key);
	rc = drv_keypair_load_or_create(a->conf.key, pub, &a->key);
	if (rc != DRV_OK)
		fprintf(stderr, "%s: agent key: %s\n", a->conf.key,
		        rc == DRV_EPERM ? "readable by group or others (chmod 600)"
		                        : drv_strerror(rc));
	return rc;
}

static int setup(struct agentd *a)
{
	enum drv_log_level level = DRV_LOG_INFO;

	drv_log_parse_level(a->conf.log_level, &level);
	drv_log_set_level(level);
	if (a->conf.log_file != NULL && drv_log_open(a->conf.log_file) != DRV_OK) {
		fprintf(stderr, "drover-agent: cannot open log file %s\n", a->conf.log_file);
		return DRV_EIO;
	}
	if (drv_mkdirs(a->conf.state_dir, 0700) != DRV_OK) {
		drv_error("agent", "cannot create the state directory", "dir=%s",
		          a->conf.state_dir);
		return DRV_EIO;
	}
	snprintf(a->state_path, sizeof(a->state_path), "%s/link.json", a->conf.state_dir);
	snprintf(a->status_path, sizeof(a->status_path), "%s/link-status.json", a->conf.state_dir);
	snprintf(a->stats_path, sizeof(a->stats_path), "%s/link-stats.json", a->conf.state_dir);
	return own_key(a);
}

static int start(struct agentd *a)
{
	struct uplink_config uc = {
	        .agent_id = a->conf.id,
	        .urls = &a->conf.coordinator,
	        .tls_ca = a->conf.tls_ca,
	        .tls_server_name = a->conf.tls_server_name,
	        .key = &a->key,
	        .ring = &a->ring,
	        .labels = &a->conf.labels,
	        .enroll_token = a->token[0] ? a->token : NULL,
	        .state_path = a->state_path,
	        .status_path = a->status_path,
	        .reconnect_min_ms = a->conf.reconnect_min_ms,
	        .reconnect_max_ms = a->conf.reconnect_max_ms,
	        .request_timeout_ms = a->conf.request_timeout_ms,
	        .skew_ms = a->conf.clock_skew_ms,
	};
	struct executor_config ec = {
	        .state_dir = a->conf.state_dir,
	        .cache_dir = a->conf.cache_dir,
	        .releases_dir = a->conf.releases_dir,
	        .log_dir = a->conf.log_dir,
	        .log_max_bytes = (unsigned long)a->conf.service_log_max_bytes,
	        .log_keep = (unsigned)a->conf.service_log_keep,
	        .docker_socket = a->conf.docker_socket,
	        .insecure_registry = a->conf.insecure_registry,
	        .fetch_exe = "/proc/self/exe", /* drover-agent fetch (fetch_helper.h) */
	        .agent_id = a->conf.id,
	        .events = uplink_report,
	};
	int rc = uplink_new(&uc, &a->up);

	if (rc != DRV_OK)
		return rc;
	ec.events_arg = a->up;
	rc = executor_new(&ec, &a->ex);
	if (rc != DRV_OK) {
		drv_error("agent", "cannot start the executor", "error=%s", drv_errname(rc));
		return rc;
	}
	return uplink_start(a->up, a->ex);
}

static void write_stats(struct agentd *a)
{
	uplink_write_status(a->up);
	drv_linkstats_write_changed(&a->stats, a->stats_path);
}

static void tick(void *arg)
{
	write_stats(arg);
}

#define STOP_DEADLINE_MS 20000 /* a running hook gets its grace period first */

static void stop(struct agentd *a)
{
	struct drv_watchdog *w = NULL;
	int link_rc = DRV_OK;

	drv_watchdog_start(STOP_DEADLINE_MS, "closing the link (NNG)", 0, &w);
	if (a->up != NULL)
		link_rc = uplink_stop(a->up);
	drv_watchdog_phase(w, "stopping the executor (steps, hooks)");
	executor_free(a->ex); /* may still report: the uplink keeps them */
	if (a->up != NULL) {
		write_stats(a);
		uplink_free(a->up);
	}
	drv_keypair_wipe(&a->key);
	memset(a->token, 0, sizeof(a->token));
	if (link_rc == DRV_OK) /* else NNG still holds the socket: exit frees it */
		nng_fini();
	drv_watchdog_stop(w);
}

int agent_cmd_run(const char *config, int check)
{
	struct agentd *a = calloc(1, sizeof(*a));
	sigset_t set;
	int rc;

	if (a == NULL || drv_crypto_init() != DRV_OK) {
		free(a);
		return 1;
	}
	rc = load(config, a);
	if (check || rc != DRV_OK) {
		if (rc == DRV_OK)
			printf("%s: ok\n", config);
		agent_conf_free(&a->conf);
		free(a);
		return rc == DRV_OK ? 0 : 2;
	}
	drv_serve_block_signals(&set);
	rc = setup(a);
	if (rc == DRV_OK)
		rc = start(a);
	if (rc == DRV_OK) {
		drv_info("agent", "started", "version=%s id=%s key=%s", DROVER_VERSION, a->conf.id,
		         a->key.id);
		drv_sd_notify("READY=1"); /* Type=notify: config, key and state loaded */
		drv_serve(
		        &(struct drv_serve){
		                .who = "agent", .tick_ms = TICK_MS, .tick = tick, .arg = a},
		        &set);
		drv_sd_notify("STOPPING=1");
	}
	stop(a);
	drv_info("agent", "stopped");
	drv_log_close();
	agent_conf_free(&a->conf);
	free(a);
	return rc == DRV_OK ? 0 : 1;
}
