/*
 * daemon.c: `droverd --config FILE`: the running coordinator.
 *
 * The main thread owns start-up, the once-a-second tick and shutdown. Every
 * signal of interest is blocked before any thread starts and taken with
 * sigtimedwait() here, so no handler runs at all: SIGTERM/SIGINT stop
 * cleanly, SIGHUP reopens the log file.
 */
#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agents_api.h"
#include "logs_api.h"
#include "tokens.h"
#include "atomicfile.h"
#include "alerts_api.h"
#include "audit_api.h"
#include "clock.h"
#include "commands.h"
#include "core.h"
#include "sqldb.h"
#include "dconf.h"
#include "deploy_api.h"
#include "deploy_engine.h"
#include "err.h"
#include "ui_api.h"
#include "sdnotify.h"
#include "serve.h"
#include "events_api.h"
#include "ha.h"
#include "ha_events.h"
#include "ha_lease.h"
#include "http_server.h"
#include "keys.h"
#include "link.h"
#include "linkstats.h"
#include "log.h"
#include "metrics.h"
#include "metrics_api.h"
#include "notify.h"
#include "report_metrics.h"
#include "retention.h"
#include "storage.h"
#include "schema.h"
#include "store.h"
#include "watchdog.h"

#define TICK_MS 1000

struct droverd {
	struct droverd_conf conf;
	struct drv_keypair key;
	struct store *store;
	struct drv_sql *api_db,
	        *events_db;           /* connections of their own (WAL: no waiting on the core) */
	struct drv_sql *deploy_db;    /* the deployment engine's */
	struct drv_sql *retention_db; /* retention's (deletes in short transactions) */
	struct drv_metric *rows, *pruned;
	struct drv_storage *storage; /* is the state directory writable? */
	int64_t next_retention_mono;
	struct drv_events *events;
	struct ha_events *ha_events; /* PostgreSQL: the leader's NOTIFY wakes the streams */
	struct core *core;
	struct notifier *notifier;
	struct deploy_engine *engine;
	struct deploy_api deploy_api;
	struct logs_api logs_api;
	struct link *link;
	struct drv_http_server *http;
	struct drv_linkstats_file stats;
	char *target;           /* sqldb.h: the SQLite file or "pg:DSN" */
	struct ha_lease *lease; /* NULL: alone on SQLite, always the leader */
	pthread_t promoter;     /* waits for the lease, then starts the engine */
	bool promoting;         /* promoter runs (to join) */
	atomic_bool stopping;   /* stop() began: leadership changes are ours */
	atomic_bool led;        /* this node won the lease (at some point) */
	atomic_bool lost;       /* the lease went to another node while we led */
	atomic_bool rejoin;     /* start again as a follower after the stop */
};

static int retention_metrics(struct droverd *d);
static int start_promoter(struct droverd *d);

static int load_conf(const char *path, struct droverd_conf *conf)
{
	struct drv_cfg_diag diag;
	int rc = dconf_load(path, conf, &diag);

	if (rc != DRV_OK)
		drv_cfg_diag_print(&diag);
	return rc;
}

static int setup_log(const struct droverd_conf *conf)
{
	enum drv_log_level level = DRV_LOG_INFO;

	drv_log_parse_level(conf->log_level, &level);
	drv_log_set_level(level);
	if (conf->log_file != NULL && drv_log_open(conf->log_file) != DRV_OK) {
		fprintf(stderr, "droverd: cannot open log file %s\n", conf->log_file);
		return DRV_EIO;
	}
	return DRV_OK;
}

/* The API's HTTPS material: readable certificate, private key, TLS built in. */
static int check_api_tls(const struct droverd_conf *conf)
{
	int rc;

	if (conf->api_tls_cert == NULL)
		return DRV_OK;
	if (!drv_http_tls_supported()) {
		fprintf(stderr, "tls.api_cert: this libmicrohttpd cannot serve HTTPS\n");
		return DRV_EINVAL;
	}
	if (access(conf->api_tls_cert, R_OK) != 0) {
		fprintf(stderr, "%s: cannot read the API certificate\n", conf->api_tls_cert);
		return DRV_EIO;
	}
	rc = drv_check_private(conf->api_tls_key);
	if (rc != DRV_OK)
		fprintf(stderr, "%s: API TLS key: %s\n", conf->api_tls_key,
		        rc == DRV_EPERM ? "readable by group or others (chmod 600)"
		                        : drv_strerror(rc));
	return rc;
}

/* What --check verifies beyond the file itself: keys and certificates load. */
static int check_files(const struct droverd_conf *conf, struct drv_keypair *key)
{
	int rc = drv_keypair_load(conf->signing_key, key);

	if (rc != DRV_OK) {
		fprintf(stderr, "%s: signing key: %s\n", conf->signing_key, drv_strerror(rc));
		return rc;
	}
	rc = check_api_tls(conf);
	if (rc != DRV_OK)
		return rc;
	for (size_t i = 0; i < conf->listen.n; i++) {
		if (strncmp(conf->listen.v[i], "tls+tcp://", 10) != 0)
			continue;
		if (access(conf->tls_cert, R_OK) != 0) {
			fprintf(stderr, "%s: cannot read the TLS certificate\n", conf->tls_cert);
			return DRV_EIO;
		}
		rc = drv_check_private(conf->tls_key);
		if (rc != DRV_OK) {
			fprintf(stderr, "%s: TLS key: %s\n", conf->tls_key,
			        rc == DRV_EPERM ? "readable by group or others (chmod 600)"
			                        : drv_strerror(rc));
			return rc;
		}
		break;
	}
	return DRV_OK;
}

/* A stream re-checks its token when half of token_recheck has passed, at its
 * next read; a keep-alive at least that often makes the reads happen. */
static int keepalive_ms(const struct droverd_conf *conf)
{
	int64_t half = conf->token_recheck_ms / 2;

	return half > 0 && half < DRV_EVENTS_KEEPALIVE_MS ? (int)half : DRV_EVENTS_KEEPALIVE_MS;
}

/* The HTTP API: the framework's routes (events, audit, metrics) and ours. */
/* While the state directory is full or read-only: reads go on, changes get
 * 507 (full) or 503 (read-only) with a message that says which directory. */
static unsigned refuse_changes(void *arg, const char **code, char *msg, size_t len)
{
	struct droverd *d = arg;

	switch (drv_storage_get(d->storage, msg, len)) {
	case DRV_STORAGE_FULL: *code = "storage-full"; return 507;
	case DRV_STORAGE_READONLY: *code = "storage-read-only"; return 503;
	default: return 0;
	}
}

static int start_api(struct droverd *d)
{
	struct drv_http_config hc = {.listen = d->conf.api,
	                             .db = d->api_db,
	                             .stream_recheck_ms = d->conf.token_recheck_ms,
	                             .refuse_changes = refuse_changes,
	                             .refuse_arg = d,
	                             .tls_cert = d->conf.api_tls_cert,
	                             .tls_key = d->conf.api_tls_key};
	int rc = drv_http_server_new(&hc, &d->http);

	if (rc == DRV_OK)
		rc = drv_events_add_routes(d->http, d->events);
	if (rc == DRV_OK)
		rc = drv_audit_add_routes(d->http, d->api_db);
	if (rc == DRV_OK)
		rc = agents_api_add_metrics(drv_metrics_global(), d->core);
	if (rc == DRV_OK)
		rc = drv_report_metrics_init(drv_metrics_global());
	if (rc == DRV_OK)
		rc = retention_metrics(d);
	if (rc == DRV_OK)
		rc = drv_metrics_add_routes(d->http, drv_metrics_global());
	if (rc == DRV_OK)
		rc = agents_api_add_routes(d->http, d->core);
	if (rc == DRV_OK)
		rc = deploy_api_add_routes(d->http, &d->deploy_api);
	if (rc == DRV_OK)
		rc = deploy_api_add_metrics(drv_metrics_global(), &d->deploy_api);
	if (rc == DRV_OK)
		rc = alerts_api_add_routes(d->http, &d->engine);
	d->logs_api.core = d->core;
	if (drv_role_parse(d->conf.logs_role, &d->logs_api.min_role) != DRV_OK)
		d->logs_api.min_role = DRV_ROLE_VIEWER;
	if (rc == DRV_OK)
		rc = logs_api_add_routes(d->http, &d->logs_api);
	if (rc == DRV_OK)
		rc = drv_ui_add_routes(d->http); /* the dashboard at /ui */
	if (rc == DRV_OK)
		rc = drv_http_server_start(d->http);
	if (rc == DRV_OK)
		drv_info("droverd", "API listening", "addr=%s port=%u", d->conf.api,
		         (unsigned)drv_http_server_port(d->http));
	else
		drv_error("droverd", "cannot start the API", "addr=%s", d->conf.api);
	return rc;
}

/* What the deployment routes need besides the engine (a follower serves
 * reads without one). */
static void setup_deploy_api(struct droverd *d)
{
	d->deploy_api.db = d->api_db;
	d->deploy_api.core = d->core;
	d->deploy_api.insecure_registry = d->conf.insecure_registry;
	d->deploy_api.balancers = &d->conf.balancers;
	d->deploy_api.prometheus = &d->conf.prometheus;
	d->deploy_api.environments = &d->conf.environments;
	d->deploy_api.lifecycles = &d->conf.lifecycles;
	d->deploy_api.outbound_allow = &d->conf.outbound_allow;
}

/* The deployment engine resumes unfinished deployments: alone, before the
 * link opens; in a group, once this node holds the lease (while it is
 * held back, drv_ha_hold). Instructions it re-sends wait in the queue for
 * their agents. */
static int start_engine(struct droverd *d)
{
	struct notify_config nc = {0};
	struct deploy_engine_config ec = {.db = d->deploy_db,
	                                  .core = d->core,
	                                  .events = d->events,
	                                  .balancers = &d->conf.balancers,
	                                  .prometheus = &d->conf.prometheus,
	                                  .environments = &d->conf.environments,
	                                  .outbound_allow = &d->conf.outbound_allow};
	int rc = notify_new(&nc, &d->notifier);

	if (rc != DRV_OK)
		return rc;
	ec.notifier = d->notifier;
	rc = deploy_engine_new(&ec, &d->engine);
	if (rc == DRV_OK)
		deploy_api_set_engine(&d->deploy_api, d->engine);
	return rc;
}

/* Every connected agent holds one open file (its TCP connection), and the
 * usual soft limit is 1024 (systemd's default for services too). Raise the
 * soft limit as far as the hard limit allows and say when even that is too
 * few for link.max_agents; the unit file sets LimitNOFILE= because its
 * system-call filter refuses setrlimit (docs/benchmarks.md). */
#define FDS_BESIDE_AGENTS 256 /* database, API connections, logs, event streams */

static void raise_nofile(const struct droverd_conf *conf)
{
	rlim_t want = (rlim_t)conf->max_agents + FDS_BESIDE_AGENTS;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
		struct rlimit up = {
		        rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max,
		        rl.rlim_max};
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	if (rl.rlim_cur < want)
		drv_warn("droverd",
		         "the open-files limit is below link.max_agents: raise it (LimitNOFILE=)",
		         "nofile=%llu max_agents=%lld", (unsigned long long)rl.rlim_cur,
		         (long long)conf->max_agents);
	else
		drv_info("droverd", "open-files limit", "nofile=%llu",
		         (unsigned long long)rl.rlim_cur);
}

/* A role fixed in droverd.yaml (ha.force_role) instead of a lease. */
static void force_role(const struct droverd_conf *conf)
{
	bool leader;

	if (conf->ha_force_role == NULL || conf->ha_force_role[0] == '\0')
		return;
	leader = strcmp(conf->ha_force_role, "leader") == 0;
	drv_ha_set_grouped(true);
	drv_ha_set(leader, (uint64_t)conf->ha_force_epoch, conf->ha_force_leader);
	drv_warn("droverd", "HA role fixed by the configuration (ha.force_role)",
	         "role=%s epoch=%lld leader=%s", conf->ha_force_role,
	         (long long)conf->ha_force_epoch,
	         conf->ha_force_leader ? conf->ha_force_leader : "-");
}

static int start(struct droverd *d)
{
	struct core_config cc = {
	        .key = &d->key,
	        .poll_timeout_ms = d->conf.poll_timeout_ms,
	        .liveness_ms = d->conf.liveness_ms,
	        .pending_retry_ms = d->conf.pending_retry_ms,
	        .instr_ttl_ms = d->conf.instruction_ttl_ms,
	        .skew_ms = d->conf.clock_skew_ms,
	        .max_agents = (size_t)d->conf.max_agents,
	        .max_pending = (size_t)d->conf.max_pending,
	        .max_pending_per_peer = (size_t)d->conf.max_pending_per_peer,
	        .pending_expiry_ms = d->conf.pending_expiry_ms,
	};
	struct link_config lc = {
	        .listen = &d->conf.listen,
	        .tls_cert = d->conf.tls_cert,
	        .tls_key = d->conf.tls_key,
	        .receivers = (size_t)d->conf.receivers,
	        .max_contexts = (size_t)d->conf.max_contexts,
	};
	size_t n;
	const struct drv_sql_migration *mig = drv_schema_migrations(&n);
	int rc;

	rc = store_open(d->target, &d->store);
	if (rc == DRV_OK)
		rc = drv_sql_open(d->target, mig, n, &d->api_db);
	if (rc == DRV_OK)
		rc = drv_sql_open(d->target, mig, n, &d->deploy_db);
	if (rc == DRV_OK)
		rc = drv_sql_open(d->target, mig, n, &d->events_db);
	if (rc == DRV_OK)
		rc = drv_sql_open(d->target, mig, n, &d->retention_db);
	if (rc == DRV_OK && d->lease != NULL) {
		/* every write of the leader checks, at its commit, that it still leads */
		ha_lease_fence_on(d->lease, store_db(d->store));
		ha_lease_fence_on(d->lease, d->api_db);
		ha_lease_fence_on(d->lease, d->deploy_db);
		ha_lease_fence_on(d->lease, d->events_db);
		ha_lease_fence_on(d->lease, d->retention_db);
	}
	if (rc == DRV_OK)
		rc = drv_events_new(d->events_db, keepalive_ms(&d->conf), &d->events);
	if (rc == DRV_OK && drv_sql_engine_of(d->events_db) == DRV_SQL_PG)
		rc = ha_events_start(d->target, d->events, d->conf.ha_events_poll_ms,
		                     &d->ha_events);
	if (rc == DRV_OK)
		rc = drv_storage_new(d->conf.database, d->retention_db, d->conf.storage_min_free,
		                     &d->storage);
	if (rc != DRV_OK)
		return rc;
	drv_storage_check(d->storage);
	force_role(&d->conf);
	cc.store = d->store;
	cc.events = d->events;
	rc = core_new(&cc, &d->core);
	if (rc == DRV_OK)
		setup_deploy_api(d);
	if (rc == DRV_OK && d->lease == NULL)
		rc = start_engine(d);
	if (rc == DRV_OK)
		rc = link_start(d->core, &lc, &d->link);
	if (rc == DRV_OK)
		rc = start_api(d);
	if (rc == DRV_OK && d->lease != NULL)
		rc = start_promoter(d);
	return rc;
}

#define STOP_DEADLINE_MS 15000 /* last resort: every step below is bounded */

static void stop(struct droverd *d)
{
	struct drv_watchdog *w = NULL;
	int link_rc;

	atomic_store(&d->stopping, true);
	if (d->promoting) /* it may be resuming deployments: bounded */
		pthread_join(d->promoter, NULL);
	/* A graceful stop hands the lease over at once; from here on this node's
	 * writes are fenced off, and the next leader resumes from what is saved. */
	if (d->lease != NULL && !atomic_load(&d->lost))
		ha_lease_release(d->lease);
	drv_watchdog_start(STOP_DEADLINE_MS, "stopping the API", 0, &w);
	drv_http_server_free(d->http); /* first: handlers use the core */
	drv_watchdog_phase(w, "closing the link (NNG)");
	link_rc = link_stop(d->link);
	drv_watchdog_phase(w, "stopping the deployment engine");
	deploy_engine_free(d->engine); /* after the link: no more reports */
	drv_watchdog_phase(w, "stopping notifications");
	notify_free(d->notifier);
	drv_watchdog_phase(w, "closing the database");
	core_free(d->core);
	ha_events_stop(d->ha_events);
	drv_events_free(d->events); /* last of its users gone */
	drv_sql_close(d->events_db);
	drv_sql_close(d->api_db);
	drv_sql_close(d->deploy_db);
	drv_sql_close(d->retention_db);
	drv_storage_free(d->storage);
	store_close(d->store);
	ha_lease_free(d->lease);
	drv_keypair_wipe(&d->key);
	if (link_rc == DRV_OK) /* else NNG still holds the socket: exit frees it */
		nng_fini();
	drv_watchdog_stop(w);
}

/* ---- retention (model/retention.h) ---- */

#define RETENTION_BUDGET_MS 200 /* per tick: the tick also runs the link's timers */

static const char *const table_label[] = {"table", NULL};

static int retention_metrics(struct droverd *d)
{
	int rc = drv_metrics_gauge(drv_metrics_global(), "drover_db_rows",
	                           "Rows kept in the coordinator's database, by table.",
	                           table_label, &d->rows);
	if (rc == DRV_OK)
		rc = drv_metrics_counter(
		        drv_metrics_global(), "drover_retention_deleted_rows_total",
		        "Rows deleted by retention, by table.", table_label, &d->pruned);
	return rc;
}

/* One pass when due: a pass that stopped at its budget continues next tick. */
static void retention_tick(struct droverd *d)
{
	struct drv_retention_config rc = {
	        .events_max_age_ms = d->conf.events_max_age_ms,
	        .events_max_rows = d->conf.events_max_rows,
	        .deployments_max_age_ms = d->conf.deployments_max_age_ms,
	        .deployments_max_rows = d->conf.deployments_max_rows,
	        .batch = d->conf.retention_batch,
	};
	struct drv_retention_pass p;
	int64_t rows[DRV_RET_N], now = drv_mono_ms();
	int err;

	if (now < d->next_retention_mono || drv_storage_get(d->storage, NULL, 0) != DRV_STORAGE_OK)
		return;
	err = drv_retention_prune(d->retention_db, &rc, drv_wall_ms(), now + RETENTION_BUDGET_MS,
	                          &p);
	for (int t = 0; t < DRV_RET_N; t++)
		drv_counter_add(d->pruned, (double)p.deleted[t], drv_retention_table_name(t));
	if (p.deleted[DRV_RET_EVENTS] + p.deleted[DRV_RET_DEPLOYMENTS] > 0)
		drv_info("retention", "old rows deleted",
		         "events=%lld deployments=%lld instructions=%lld baselines=%lld more=%d",
		         (long long)p.deleted[DRV_RET_EVENTS],
		         (long long)p.deleted[DRV_RET_DEPLOYMENTS],
		         (long long)p.deleted[DRV_RET_INSTRUCTIONS],
		         (long long)p.deleted[DRV_RET_BASELINES], (int)p.more);
	if (err != DRV_OK)
		drv_warn("retention", "pass failed: trying again later", "error=%s",
		         drv_errname(err));
	if (drv_retention_count(d->retention_db, rows) == DRV_OK) {
		for (int t = 0; t < DRV_RET_N; t++)
			drv_gauge_set(d->rows, (double)rows[t], drv_retention_table_name(t));
	}
	d->next_retention_mono =
	        drv_mono_ms() + (p.more && err == DRV_OK ? TICK_MS : d->conf.retention_interval_ms);
}

/* Once a second on the main thread. */
static void tick(void *arg)
{
	struct droverd *d = arg;

	drv_storage_check(d->storage);
	core_tick(d->core); /* on a follower: reads only */
	drv_linkstats_write_changed(&d->stats, d->conf.stats_file);
	if (drv_ha_is_leader()) {
		retention_tick(d); /* the leader's job: it writes */
	} else if (d->ha_events == NULL) {
		/* The leader writes the events: wake this node's event streams to
		 * read the store (a forced follower on SQLite has no notification;
		 * on PostgreSQL ha_events wakes them). */
		drv_events_notify(d->events);
	}
}

/* ---- high availability (ha/ha_lease.h, docs/ha.md) ---- */

static int pick_target(struct droverd *d)
{
	const char *base = d->conf.pg_dsn[0] != '\0' ? d->conf.pg_dsn : d->conf.database;
	size_t n = strlen(base) + sizeof(DRV_SQL_PG_PREFIX);

	d->target = malloc(n);
	if (d->target == NULL)
		return DRV_ENOMEM;
	snprintf(d->target, n, "%s%s", d->conf.pg_dsn[0] != '\0' ? DRV_SQL_PG_PREFIX : "", base);
	return DRV_OK;
}

/* Called on the lease thread (must not block). The lease went elsewhere
 * while this node led (it was paused, or cut off from the database): stop
 * serving; droverd_cmd_run starts again as a follower. */
static void on_leadership(void *arg, bool leader, uint64_t epoch)
{
	struct droverd *d = arg;

	(void)epoch;
	if (leader) {
		atomic_store(&d->led, true);
		return;
	}
	if (!atomic_load(&d->led) || atomic_load(&d->stopping)) /* a graceful stop gives it up */
		return;
	if (!atomic_exchange(&d->lost, true)) {
		atomic_store(&d->rejoin, true);
		drv_error("droverd", "leadership lost: stopping to rejoin the group as a follower",
		          "node=%s", d->conf.ha_node ? d->conf.ha_node : "");
		kill(getpid(), SIGTERM);
	}
}

/*
 * A node of an HA group joins as a follower: the lease runs on its own
 * thread, and start() opens the link (which answers NOT_LEADER) and the
 * API (reads; changes answered 307 to the leader) right away. The node is
 * held back (drv_ha_hold) until it has won the lease and resumed the
 * deployments (lead, on the promoter thread).
 */
static int ha_join(struct droverd *d)
{
	char host[HA_NODE_MAX + 1] = "droverd";
	size_t n;
	struct ha_lease_config c = {.target = d->target,
	                            .url = d->conf.ha_url,
	                            .lease_ms = d->conf.ha_lease_ms,
	                            .mig = drv_schema_migrations(&n)};
	int rc;

	c.n_mig = n;
	drv_ha_set_grouped(true); /* the link seals the epoch into envelopes */
	drv_ha_set(false, 0, ""); /* a follower until the lease says otherwise */
	drv_ha_hold(true);        /* and until its engine runs once it does */
	if (d->conf.ha_node == NULL)
		gethostname(host, sizeof(host) - 1);
	c.node = d->conf.ha_node != NULL ? d->conf.ha_node : host;
	rc = drv_ha_watch(on_leadership, d);
	if (rc == DRV_OK)
		rc = ha_lease_new(&c, &d->lease);
	if (rc == DRV_OK)
		rc = ha_lease_start(d->lease);
	if (rc == DRV_OK)
		drv_info("droverd", "following: waiting for the leader lease",
		         "node=%s lease_ms=%lld", c.node, (long long)c.lease_ms);
	return rc;
}

/* This node holds the lease: know the agents enrolled meanwhile, resume
 * every unfinished deployment, then let the link and the API lead. */
static void lead(struct droverd *d)
{
	int64_t t0 = drv_mono_ms();
	int rc = core_sync(d->core);

	if (rc == DRV_OK)
		rc = start_engine(d);
	if (rc != DRV_OK) {
		/* Give the lease up (stop) and try again as a follower: another
		 * node may lead meanwhile. */
		drv_error("droverd", "cannot lead: rejoining the group as a follower", "error=%s",
		          drv_errname(rc));
		atomic_store(&d->rejoin, true);
		kill(getpid(), SIGTERM);
		return;
	}
	drv_ha_hold(false);
	drv_info("droverd", "leading: deployments resumed, the link and the API lead",
	         "epoch=%llu resume_ms=%lld", (unsigned long long)drv_ha_epoch(),
	         (long long)(drv_mono_ms() - t0));
	drv_sd_notify("STATUS=leading");
}

static void *promoter_main(void *arg)
{
	struct droverd *d = arg;

	while (!atomic_load(&d->stopping)) {
		if (ha_lease_wait_leader(d->lease, 250)) {
			lead(d);
			break;
		}
	}
	return NULL;
}

static int start_promoter(struct droverd *d)
{
	if (pthread_create(&d->promoter, NULL, promoter_main, d) != 0)
		return DRV_ESYS;
	d->promoting = true;
	return DRV_OK;
}

/* Start again from the beginning, as a follower: the process image is
 * replaced, so nothing of the lost term (threads, sockets, state) remains. */
static void rejoin(void)
{
	char buf[8192], *argv[64];
	ssize_t len;
	size_t n = 0;
	FILE *f = fopen("/proc/self/cmdline", "r");

	if (f == NULL)
		return;
	len = (ssize_t)fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if (len <= 0)
		return;
	buf[len] = '\0';
	for (char *p = buf; p < buf + len && n < 63; p += strlen(p) + 1)
		argv[n++] = p;
	argv[n] = NULL;
	drv_info("droverd", "rejoining the group as a follower");
	drv_log_close();
	execv("/proc/self/exe", argv);
}

int droverd_cmd_run(const char *config, int check)
{
	struct droverd d = {0};
	sigset_t set;
	int rc;

	if (drv_crypto_init() != DRV_OK)
		return 1;
	drv_storage_install_log(); /* before the first SQLite call */
	if (load_conf(config, &d.conf) != DRV_OK)
		return 2;
	rc = check_files(&d.conf, &d.key);
	if (check || rc != DRV_OK) {
		if (rc == DRV_OK)
			printf("%s: ok\n", config);
		drv_keypair_wipe(&d.key);
		dconf_free(&d.conf);
		return rc == DRV_OK ? 0 : 2;
	}
	drv_serve_block_signals(&set);
	rc = setup_log(&d.conf);
	if (rc == DRV_OK)
		raise_nofile(&d.conf);
	if (rc == DRV_OK)
		rc = pick_target(&d);
	if (rc == DRV_OK && d.conf.pg_dsn[0] != '\0')
		rc = ha_join(&d);
	if (rc == DRV_OK)
		rc = start(&d);
	if (rc == DRV_OK) {
		drv_info("droverd", "started", "version=%s key=%s", DROVER_VERSION, d.key.id);
		/* Type=notify: the link and the API serve (a follower's too) */
		drv_sd_notify(d.lease != NULL ? "READY=1\nSTATUS=following" : "READY=1");
		drv_serve(&(struct drv_serve){.who = "droverd",
		                              .tick_ms = TICK_MS,
		                              .first_tick_ms = TICK_MS,
		                              .tick = tick,
		                              .arg = &d},
		          &set);
		drv_sd_notify("STOPPING=1");
	} else if (rc != DRV_ECANCELED) {
		drv_error("droverd", "cannot start", "error=%s", drv_errname(rc));
	}
	stop(&d);
	drv_linkstats_write_changed(&d.stats, d.conf.stats_file);
	drv_info("droverd", "stopped");
	free(d.target);
	if (atomic_load(&d.rejoin))
		rejoin(); /* returns only if it could not */
	drv_log_close();
	dconf_free(&d.conf);
	return rc == DRV_OK || rc == DRV_ECANCELED ? 0 : 1;
}
