/*
 * plan.h: deployment plans. Parse (YAML or JSON), validate, apply defaults,
 * normalize, resolve image tags to digests.
 *
 * The shape is the one in docs/plans.md; field names are the
 * contract. Validation reports every error, each as
 *   FILE:LINE: field.path: message
 * (LINE left out when unknown, e.g. for a plan given as a jansson tree).
 * A parsed plan has every default applied: each service carries its own
 * driver, health, strategy and failure policy, merged from `defaults`
 * (a service's strategy of another type replaces the default one).
 *
 * Ownership: a struct drv_plan owns every string and array under it; free it
 * with drv_plan_free. Nothing here does I/O except drv_plan_parse_file.
 */
#ifndef DRV_PLAN_H
#define DRV_PLAN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct drv_yj_lines;

#define DRV_PLAN_MAX_BYTES    (4u << 20) /* plan text */
#define DRV_PLAN_MAX_ERRORS   100        /* then "too many errors" */
#define DRV_PLAN_NAME_MAX     63         /* deployment, tier, service, hook, agent ids */
#define DRV_PLAN_MAX_TIERS    32
#define DRV_PLAN_MAX_SERVICES 256
#define DRV_PLAN_MAX_HOOKS    64 /* per list: pre, migrations, post */
#define DRV_PLAN_MAX_HOSTS    100000
#define DRV_PLAN_MAX_STEPS    20
#define DRV_PLAN_MAX_ARGS     256
#define DRV_PLAN_MAX_ENV      256
#define DRV_PLAN_MAX_FILES    64
#define DRV_PLAN_MAX_NOTIFY   16
#define DRV_PLAN_MAX_VARS     256 /* plan vars; an environment's too */
#define DRV_PLAN_DIGEST_MAX   72  /* "sha256:" + 64 hex + NUL */

enum drv_plan_driver { DRV_DRIVER_EXEC, DRV_DRIVER_CONTAINER, DRV_DRIVER_SYSTEMD };
enum drv_plan_strategy_type { DRV_STRATEGY_ROLLING, DRV_STRATEGY_CANARY, DRV_STRATEGY_BLUEGREEN };
enum drv_plan_rollback {
	DRV_ROLLBACK_DEPLOYMENT,
	DRV_ROLLBACK_TIER,
	DRV_ROLLBACK_SERVICE,
	DRV_ROLLBACK_NONE
};
enum drv_plan_health_kind { DRV_HEALTH_NONE, DRV_HEALTH_HTTP, DRV_HEALTH_TCP, DRV_HEALTH_EXEC };
/* BALANCER is done by droverd through a balancer that droverd.yaml defines
 * (the TRAFFIC action, traffic_conf.h); HOOK runs the hook on the agents
 * its hosts name (RUN_HOOK). Nothing a plan says runs on the coordinator. */
enum drv_plan_traffic_kind { DRV_TRAFFIC_NONE, DRV_TRAFFIC_BALANCER, DRV_TRAFFIC_HOOK };

/* Notification events (plan `notify[].events`, sequencer notify actions). */
enum drv_plan_event {
	DRV_EVENT_STARTED,
	DRV_EVENT_TIER_DONE,
	DRV_EVENT_AWAITING_PROMOTION,
	DRV_EVENT_PAUSED,
	DRV_EVENT_RESUMED,
	DRV_EVENT_ROLLBACK_STARTED,
	DRV_EVENT_ROLLED_BACK,
	DRV_EVENT_SUCCEEDED,
	DRV_EVENT_FAILED,
	DRV_EVENT_ABORTED,
	DRV_EVENT_AWAITING_APPROVAL, /* by droverd, not the sequencer (docs/environments.md) */
	DRV_EVENT_COUNT
};

/* A count of hosts, or a percentage of them. */
struct drv_plan_amount {
	uint32_t value;
	bool percent;
};

struct drv_plan_kv {
	char *key;
	char *value;
};

struct drv_plan_argv {
	char **v;
	size_t n;
};

/* Who a service or hook runs as on its hosts (the agent resolves the names). */
struct drv_plan_privs {
	char *user;                /* NULL: services the agent's default user, hooks root */
	char *group;               /* NULL: the user's primary group */
	struct drv_plan_argv caps; /* services: capabilities kept, "CAP_..." */
	bool keep_setid;           /* services: keep setuid/setgid bits of the image */
};

/* Agent ids, or (n_labels > 0) a label selector: every label must match. */
struct drv_plan_hosts {
	char **ids;
	size_t n_ids;
	struct drv_plan_kv *labels;
	size_t n_labels;
};

/* A pre/post hook, a migration (run = up, down), or a traffic hook. */
struct drv_plan_hook {
	char *name;
	struct drv_plan_hosts hosts;
	struct drv_plan_argv run;
	struct drv_plan_argv down; /* migrations only */
	struct drv_plan_kv *env;
	size_t n_env;
	int64_t timeout_ms;
	struct drv_plan_privs privs; /* user, group (default root) */
};

struct drv_plan_health {
	enum drv_plan_health_kind kind;
	char *host; /* http/tcp, default 127.0.0.1 */
	uint32_t port;
	char *path; /* http, default /health */
	uint32_t status_min, status_max;
	char *body; /* http: optional substring the body must contain */
	struct drv_plan_argv exec;
	int64_t initial_delay_ms, interval_ms, timeout_ms, deadline_ms;
	uint32_t healthy_threshold, unhealthy_threshold;
};

struct drv_plan_traffic {
	enum drv_plan_traffic_kind kind;
	char *balancer;            /* BALANCER: its name in droverd.yaml `balancers` */
	int line;                  /* source line of `balancer` (0 if unknown) */
	char *backend;             /* the balancer's backend (or the hook's DROVER_BACKEND) */
	char *server;              /* server name template: {host}, {slot} */
	struct drv_plan_hook hook; /* hook kinds: run, env, timeout; hosts for HOOK */
	int64_t timeout_ms;
};

/* Blue-green across host sets (`strategy.sets`): two named, disjoint host
 * selections; a release goes to the set that does not serve (the idle
 * one), traffic moves to it, the other one is stopped after
 * finalize_after (docs/plans.md "blue-green across host sets"). */
#define DRV_PLAN_SETS 2

struct drv_plan_set {
	char *name;
	struct drv_plan_hosts hosts; /* agent ids or a label selector */
	int line;
};

struct drv_plan_strategy {
	enum drv_plan_strategy_type type;
	struct drv_plan_amount max_unavailable; /* rolling */
	struct drv_plan_amount min_healthy;     /* rolling */
	uint8_t steps[DRV_PLAN_MAX_STEPS];      /* canary: ascending percents, last 100 */
	size_t n_steps;
	int64_t pause_ms; /* canary */
	bool pause_manual;
	char *metric_url; /* canary/blue-green analysis.http; NULL if none */
	double metric_max;
	int64_t metric_timeout_ms;
	struct drv_plan_traffic traffic;         /* canary (optional), blue-green (required) */
	uint32_t green_port;                     /* blue-green on the same hosts */
	int64_t finalize_after_ms;               /* blue-green */
	struct drv_plan_set sets[DRV_PLAN_SETS]; /* blue-green across sets (n_sets 2) */
	size_t n_sets;                           /* 0: the same hosts, two ports */
};

/* Prometheus analysis (docs/plans.md "analysis"): checks a service must pass
 * after each canary step, around a blue-green switch, after each rolling
 * batch. The query runs on a server droverd.yaml names (`prometheus`). */
#define DRV_PLAN_MAX_CHECKS 16
#define DRV_PLAN_QUERY_MAX  4096 /* a check's query text */

enum drv_plan_cond { DRV_COND_LT, DRV_COND_LE, DRV_COND_GT, DRV_COND_GE, DRV_COND_BETWEEN };
/* What an empty result or a failed query counts as. */
enum drv_plan_outcome { DRV_OUTCOME_FAIL, DRV_OUTCOME_PASS, DRV_OUTCOME_INCONCLUSIVE };

struct drv_plan_check {
	char *name;  /* default "check-N" */
	char *query; /* PromQL with {{service}}, {{version}}, {{hosts}} */
	enum drv_plan_cond cond;
	double a, b;         /* the bound(s): between a and b */
	int64_t interval_ms; /* between queries of a failing check (default 10s) */
	uint32_t failures;   /* failures in a row that fail the step (default 1) */
	enum drv_plan_outcome on_empty, on_error;
	int line;
};

/* A key metric of the release (`analysis.prometheus.baseline`): queried
 * at the end of the deployment (after its bake) and recorded as the
 * release's baseline when it succeeds; the next release is compared with
 * it. With `regression` a value worse than the previous release's by more
 * than that share fails the analysis (during the bake and at the end). */
#define DRV_PLAN_MAX_BASELINE  16
#define DRV_PLAN_UNIT_MAX      16
#define DRV_PLAN_REGRESSION_HI 1000 /* percent */

struct drv_plan_metric {
	struct drv_plan_check k; /* name, query, interval, failures (cond unused) */
	char *unit;              /* shown after the value ("ms"); NULL: none */
	bool higher_better;      /* `better: higher` (default lower) */
	uint32_t regression;     /* percent; 0: none */
};

struct drv_plan_analysis {
	char *server; /* a name from droverd.yaml `prometheus`; NULL: no analysis */
	int line;     /* source line of `server` */
	struct drv_plan_check *checks;
	size_t n_checks;
	struct drv_plan_metric *baseline;
	size_t n_baseline;
};

/* `rollback_on_alerts`: Alertmanager alerts (POST /v1/alerts) that fail the
 * service while its deployment runs; each rule is label = value matchers,
 * all of which must hold ({{service}}, {{version}} filled in). */
#define DRV_PLAN_MAX_ALERT_RULES  16
#define DRV_PLAN_MAX_ALERT_LABELS 16
#define DRV_PLAN_ALERT_VALUE_MAX  256

struct drv_plan_alert_rule {
	struct drv_plan_kv *labels;
	size_t n;
	int line;
};

struct drv_plan_failure {
	struct drv_plan_amount max_failed_hosts;
	struct drv_plan_amount max_failed_per_batch; /* valid when per_batch_set */
	bool per_batch_set;
	enum drv_plan_rollback rollback;
};

struct drv_plan_file {
	char *path;
	char *content;
	uint32_t mode;
};

/* driver systemd: unit options (plan_systemd.c); 0 / -1 = the default. */
struct drv_plan_systemd {
	int kill_mode;         /* 0 control-group, 1 mixed, 2 process */
	uint64_t memory_max;   /* bytes; 0 = no limit */
	uint32_t cpu_quota;    /* percent of one CPU; 0 = no limit */
	uint32_t tasks_max;    /* 0 = systemd's default */
	int protect_system;    /* 0 full, 1 no, 2 yes, 3 strict */
	int private_tmp;       /* -1 default (yes), 0, 1 */
	int no_new_privileges; /* -1 default (yes unless keep_setid), 0, 1 */
};

struct drv_plan_service {
	char *name;
	size_t tier;   /* index into plan->tiers */
	char *image;   /* reference without the digest */
	char *digest;  /* "sha256:..." or NULL until resolved */
	char *version; /* defaults to the plan's version */
	enum drv_plan_driver driver;
	bool chroot; /* isolation: chroot */
	struct drv_plan_privs privs;
	struct drv_plan_systemd systemd;
	struct drv_plan_hosts hosts;
	struct drv_plan_argv command;
	struct drv_plan_kv *env;
	size_t n_env;
	struct drv_plan_file *files;
	size_t n_files;
	uint32_t port; /* default: the health check's port */
	int64_t stop_grace_ms;
	struct drv_plan_health health;
	struct drv_plan_strategy strategy;
	struct drv_plan_failure failure;
	struct drv_plan_analysis analysis;       /* `analysis.prometheus` */
	struct drv_plan_alert_rule *alert_rules; /* `rollback_on_alerts` */
	size_t n_alert_rules;
	bool alert_precheck; /* refuse to start while a matching alert fires */
	/* `on_config: reload`: a release that changes only files and flags of
	 * the running one is applied with SIGHUP, without a restart */
	bool reload_on_config;
	int line; /* source line of the service (0 if unknown) */
};

struct drv_plan_tier {
	char *name;
	size_t first; /* index of its first service in plan->services */
	size_t n;
};

struct drv_plan_notify {
	char *webhook;
	uint32_t events; /* bit (1u << enum drv_plan_event) */
};

struct drv_plan {
	char *source; /* file name for messages */
	char *deployment;
	char *version;
	char *environment;        /* NULL: none (docs/environments.md) */
	struct drv_plan_kv *vars; /* the variables in effect, a secret's value "<secret>" */
	size_t n_vars;
	/* values of the secret variables the plan used (for redaction of
	 * views; never serialized, absent from a plan loaded from JSON) */
	struct drv_plan_argv secrets;
	int64_t prestage_timeout_ms;
	int64_t bake_ms; /* `bake`: after the last tier, analysis goes on this long (0: none) */
	/* `queue: true`: a deployment a window, a freeze or a busy service would
	 * refuse waits (state queued) and starts when allowed */
	bool queue;
	/* `approval: { approvers: N, role: R, timeout: D }`: the plan asks for
	 * approval (with its environment's, the stricter of both);
	 * approvers 0: not asked (docs/environments.md) */
	int approvers;
	char approver_role[16];
	int64_t approval_timeout_ms;
	/* `approval: { before: B, at_canary_step: 25% }`: the approval is asked
	 * before the deployment starts (default, unless at_canary_step is
	 * given) and/or after that canary step (a percent, 0: none) */
	bool approval_before;
	uint8_t approval_at_step;
	bool has_budget; /* top-level failure.max_failed_hosts given */
	struct drv_plan_amount max_failed_hosts;
	struct drv_plan_hook *pre, *migrations, *post;
	size_t n_pre, n_migrations, n_post;
	struct drv_plan_tier *tiers;
	size_t n_tiers;
	struct drv_plan_service *services; /* all tiers, in order */
	size_t n_services;
	struct drv_plan_notify *notify;
	size_t n_notify;
	/* The plan as written, its {{vars.NAME}} not filled in and without
	 * `environment` (drv_plan_release); NULL for a plan read with
	 * drv_plan_from_json (a stored, normalized plan). */
	json_t *tmpl;
};

/* Does some service of p deploy by canary? */
bool drv_plan_has_canary(const struct drv_plan *p);

/* Error lines collected by the parser; caller frees with drv_plan_errors_free. */
struct drv_plan_errors {
	char **v;
	size_t n;
};
void drv_plan_errors_free(struct drv_plan_errors *e);
/* Append a formatted line (used by callers that add their own checks). */
__attribute__((format(printf, 2, 3))) void drv_plan_errors_add(struct drv_plan_errors *e,
                                                               const char *fmt, ...);

/* A variable an environment defines; a secret one (read from a file on
 * the coordinator) is never shown. */
struct drv_plan_var {
	char *name;
	char *value;
	bool secret;
};

/* An environment (droverd.yaml `environments`): the hosts its deployments
 * may touch (every label must match; none: all) and its variables. */
struct drv_window;
struct drv_plan_env {
	char *name;
	struct drv_plan_kv *labels;
	size_t n_labels;
	struct drv_plan_var *vars;
	size_t n_vars;
	struct drv_window *windows; /* deny and allow windows (deploy/windows.h) */
	size_t n_windows;
	bool continue_at_window; /* `at_window: continue`: a running deployment goes on */
	/* `approval` (docs/environments.md): approvers 0 when none is needed */
	int approvers;               /* distinct tokens that must approve */
	char approver_role[16];      /* the weakest role that may: deployer|approver|admin */
	bool allow_self;             /* the token that started it may approve it */
	int64_t approval_timeout_ms; /* then the deployment ends aborted */
	bool approval_before;        /* asked before it starts (see struct drv_plan) */
	uint8_t approval_at_step;    /* ... and/or after this canary step (0: none) */
};

struct drv_plan_envs {
	struct drv_plan_env *v;
	size_t n;
};

/*
 * Parse and validate. On success *out is a new plan. On failure
 * (DRV_EINVAL: invalid; DRV_ETOOBIG; DRV_ENOENT/DRV_EIO: unreadable file;
 * DRV_ENOMEM) nothing is written to *out and every problem found is appended
 * to errs (which the caller zero-initializes and frees). name is the file
 * name used in messages.
 */
int drv_plan_parse_buffer(const char *buf, size_t len, const char *name, struct drv_plan **out,
                          struct drv_plan_errors *errs);
/*
 * The same, deployed to an environment: the plan's `environment`, else
 * requested (NULL: none; both given must be the same), one of envs.
 * {{vars.NAME}} in env, files, commands and hooks is filled in from the
 * environment's variables, then the plan's `vars`; an unknown name is an
 * error at its line. With envs NULL (an offline check) a plan that names an
 * environment keeps the references its own vars do not define.
 */
int drv_plan_parse_buffer_env(const char *buf, size_t len, const char *name,
                              const struct drv_plan_envs *envs, const char *requested,
                              struct drv_plan **out, struct drv_plan_errors *errs);
int drv_plan_parse_file(const char *path, struct drv_plan **out, struct drv_plan_errors *errs);
/* From a tree already loaded; lines may be NULL. The tree is not kept. */
int drv_plan_from_json(const json_t *root, const struct drv_yj_lines *lines, const char *name,
                       struct drv_plan **out, struct drv_plan_errors *errs);

/* The normalized plan (defaults applied, durations as "10s", images with
 * their digest): a new reference, NULL on allocation failure. Parsing it
 * again gives the same plan. */
json_t *drv_plan_to_json(const struct drv_plan *p);

void drv_plan_free(struct drv_plan *p);

/*
 * Tag -> digest resolution at submission, so that every host runs the same
 * bytes. fn is called for every service image without a digest; it writes a
 * "sha256:<64 hex>" digest and returns DRV_OK, or returns an error and
 * writes a reason into why. Services sharing a reference are resolved once.
 * Errors go to errs as "FILE:LINE: tiers[i].services[j].image: ...".
 */
typedef int (*drv_plan_resolve_fn)(void *arg, const char *reference, char digest[],
                                   size_t digest_cap, char *why, size_t why_cap);
int drv_plan_resolve_digests(struct drv_plan *p, drv_plan_resolve_fn fn, void *arg,
                             struct drv_plan_errors *errs);
/*
 * Releases (docs/environments.md "Promotion"): what a promotion carries to
 * the next environment. A release is the plan as written (variables not
 * filled in, no `environment`) with every service image pinned by digest
 * ("name:tag@sha256:..."): the same bytes, files and steps wherever it
 * goes; only the environment's variables differ.
 */
#define DRV_PLAN_RELEASE_ID_MAX 24 /* "rel-" + 16 hex + NUL */
/* The release of a pinned plan parsed from text: a new tree, NULL when the
 * plan has no template (read from JSON), is not pinned, or out of memory. */
json_t *drv_plan_release(const struct drv_plan *p);
/* The release's id: "rel-" and the first 16 hex digits of the SHA-256 of
 * its compact JSON with sorted keys. DRV_ENOMEM. */
int drv_plan_release_id(const json_t *release, char id[DRV_PLAN_RELEASE_ID_MAX]);
/* A plan from a release deployed to environment env (one of envs; NULL:
 * none): variables filled in from it as drv_plan_parse_buffer_env does. */
int drv_plan_from_release(const json_t *release, const char *name, const struct drv_plan_envs *envs,
                          const char *env, struct drv_plan **out, struct drv_plan_errors *errs);

/* True when every service image carries a digest. */
bool drv_plan_pinned(const struct drv_plan *p);

/* s, or "<secret>" when it holds the value of a secret variable. */
const char *drv_plan_redact(const struct drv_plan *p, const char *s);

/* Does an agent (id and labels) match a host list or selector? */
bool drv_plan_hosts_match(const struct drv_plan_hosts *h, const char *agent_id,
                          const struct drv_plan_kv *labels, size_t n_labels);

/* A count, or a percent of total rounded up (up) or down, capped at total. */
uint32_t drv_plan_amount_of(struct drv_plan_amount a, uint32_t total, bool up);

const char *drv_plan_event_name(enum drv_plan_event ev);
const char *drv_plan_strategy_name(enum drv_plan_strategy_type t);
const char *drv_plan_rollback_name(enum drv_plan_rollback r);
/* Format a duration the way the normalized plan writes it ("1m", "1500ms"). */
void drv_plan_format_duration(int64_t ms, char *buf, size_t cap);

/* A condition "< 0.01", "<= 5", "> 0.99", ">= 1", "between 0.1 and 0.5":
 * DRV_EINVAL when it is none of those (outputs untouched). */
int drv_plan_cond_parse(const char *s, enum drv_plan_cond *cond, double *a, double *b);
/* Does value meet the condition? NaN never does. */
bool drv_plan_cond_holds(enum drv_plan_cond cond, double a, double b, double value);
/* The condition as text ("< 0.01"), for messages. */
void drv_plan_cond_format(enum drv_plan_cond cond, double a, double b, char *buf, size_t cap);
const char *drv_plan_outcome_name(enum drv_plan_outcome o);

/*
 * A check's query with its placeholders filled in: {{service}} and
 * {{version}} escaped for the inside of a PromQL string literal ("..."),
 * {{hosts}} the hosts joined by | with regex metacharacters escaped too (for
 * instance=~"{{hosts}}"). A new string (NULL: out of memory or longer than
 * DRV_PLAN_QUERY_MAX * 4 once filled in).
 */
char *drv_plan_query_expand(const char *tmpl, const char *service, const char *version,
                            const char *const *hosts, size_t n_hosts);

/* Is value worse than prev by more than m's regression? *change_pct: the
 * change in percent of prev (positive: higher), NAN when prev is 0 or
 * either is not finite (then never a regression). */
bool drv_plan_regressed(const struct drv_plan_metric *m, double value, double prev,
                        double *change_pct);

/* Does an alert's labels (a JSON object of strings) match one of the
 * service's rollback_on_alerts rules? The index of the first, or -1. */
int drv_plan_alert_match(const struct drv_plan_service *ps, const json_t *labels);

/* The service by name, or NULL. */
const struct drv_plan_service *drv_plan_service(const struct drv_plan *p, const char *name);

/* `drover plan check [--json] FILE`: prints every error and exits 2 when
 * invalid; prints a summary (or with --json the normalized plan) and
 * returns 0 when valid. argv[0] is "check". */
int drv_plan_check_main(int argc, char **argv);

#endif
