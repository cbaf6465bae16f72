/*
 * plan_fields.c: the plan's compound fields: health checks, strategies,
 * failure policies and hooks.
 *
 * Each *_read overlays what the JSON gives onto a struct that already holds
 * defaults, so that the same function applies built-in defaults, then the
 * plan's `defaults`, then a service's own fields. A strategy of another
 * type than the one underneath starts again from that type's defaults.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan_int.h"

#define HOOK_TIMEOUT_MS    (10 * 60 * 1000)
#define TRAFFIC_TIMEOUT_MS (30 * 1000)
#define METRIC_TIMEOUT_MS  (10 * 1000)

/* ---- health ---- */

static void health_kind_reset(struct vctx *c, struct drv_plan_health *h,
                              enum drv_plan_health_kind kind)
{
	free(h->host);
	free(h->path);
	free(h->body);
	plan_argv_free(&h->exec);
	h->host = h->path = h->body = NULL;
	h->port = 0;
	h->status_min = 200;
	h->status_max = 299;
	h->kind = kind;
	if (kind == DRV_HEALTH_HTTP || kind == DRV_HEALTH_TCP)
		h->host = plan_strdup(c, "127.0.0.1");
	if (kind == DRV_HEALTH_HTTP)
		h->path = plan_strdup(c, "/health");
}

void plan_health_defaults(struct vctx *c, struct drv_plan_health *h)
{
	memset(h, 0, sizeof(*h));
	health_kind_reset(c, h, DRV_HEALTH_NONE);
	h->interval_ms = 1000;
	h->timeout_ms = 2000;
	h->deadline_ms = 60000;
	h->healthy_threshold = 2;
	h->unhealthy_threshold = 3;
}

/* 200, "200" or "200-299". */
static void read_status(struct vctx *c, const json_t *obj, const char *path,
                        struct drv_plan_health *h)
{
	json_t *v = json_object_get(obj, "expect_status");
	char p[DRV_YJ_PATH_MAX];
	unsigned lo, hi;
	int n = 0;

	if (v == NULL)
		return;
	plan_pjoin(p, path, "expect_status");
	if (json_is_integer(v)) {
		lo = hi = (unsigned)json_integer_value(v);
	} else if (!json_is_string(v) ||
	           (sscanf(json_string_value(v), "%3u-%3u%n", &lo, &hi, &n) != 2 &&
	            sscanf(json_string_value(v), "%3u%n", &lo, &n) != 1) ||
	           json_string_value(v)[n] != '\0') {
		plan_verr(c, p, "must be a status such as 200 or a range such as 200-299");
		return;
	} else if (strchr(json_string_value(v), '-') == NULL) {
		hi = lo;
	}
	if (json_is_integer(v) && (json_integer_value(v) < 100 || json_integer_value(v) > 599))
		lo = 0;
	if (lo < 100 || hi > 599 || lo > hi) {
		plan_verr(c, p, "must be within 100-599, low to high");
		return;
	}
	h->status_min = lo;
	h->status_max = hi;
}

static void read_endpoint(struct vctx *c, const json_t *v, const char *p, struct drv_plan_health *h)
{
	char *s = NULL;

	if (plan_read_string(c, v, p, "host", &s) == 1) {
		free(h->host);
		h->host = s;
	}
	plan_read_uint(c, v, p, "port", 1, 65535, &h->port);
}

static void health_http(struct vctx *c, const json_t *v, const char *p, struct drv_plan_health *h)
{
	char *s = NULL;
	char pp[DRV_YJ_PATH_MAX];

	if (!plan_want_object(c, v, p))
		return;
	plan_check_keys(
	        c, v, p,
	        (const char *const[]){"host", "port", "path", "expect_status", "body", NULL});
	if (h->kind != DRV_HEALTH_HTTP)
		health_kind_reset(c, h, DRV_HEALTH_HTTP);
	read_endpoint(c, v, p, h);
	if (plan_read_string(c, v, p, "path", &s) == 1) {
		if (s[0] != '/') {
			plan_pjoin(pp, p, "path");
			plan_verr(c, pp, "must start with /");
			free(s);
		} else {
			free(h->path);
			h->path = s;
		}
	}
	s = NULL;
	if (plan_read_string(c, v, p, "body", &s) == 1) {
		free(h->body);
		h->body = s;
	}
	read_status(c, v, p, h);
}

static void health_tcp(struct vctx *c, const json_t *v, const char *p, struct drv_plan_health *h)
{
	if (!plan_want_object(c, v, p))
		return;
	plan_check_keys(c, v, p, (const char *const[]){"host", "port", NULL});
	if (h->kind != DRV_HEALTH_TCP)
		health_kind_reset(c, h, DRV_HEALTH_TCP);
	read_endpoint(c, v, p, h);
}

static void health_exec(struct vctx *c, const json_t *obj, const char *path,
                        struct drv_plan_health *h)
{
	struct drv_plan_argv a;

	if (plan_read_argv(c, obj, path, "exec", &a) != 1)
		return;
	health_kind_reset(c, h, DRV_HEALTH_EXEC);
	h->exec = a;
}

static void health_timing(struct vctx *c, const json_t *v, const char *path,
                          struct drv_plan_health *h)
{
	plan_read_duration(c, v, path, "initial_delay", &h->initial_delay_ms);
	plan_read_duration(c, v, path, "interval", &h->interval_ms);
	plan_read_duration(c, v, path, "timeout", &h->timeout_ms);
	plan_read_duration(c, v, path, "deadline", &h->deadline_ms);
	plan_read_uint(c, v, path, "healthy_threshold", 1, 100, &h->healthy_threshold);
	plan_read_uint(c, v, path, "unhealthy_threshold", 1, 100, &h->unhealthy_threshold);
}

void plan_health_read(struct vctx *c, const json_t *v, const char *path, struct drv_plan_health *h)
{
	static const char *const keys[] = {"http",
	                                   "tcp",
	                                   "exec",
	                                   "initial_delay",
	                                   "interval",
	                                   "timeout",
	                                   "healthy_threshold",
	                                   "unhealthy_threshold",
	                                   "deadline",
	                                   NULL};
	char p[DRV_YJ_PATH_MAX];
	int kinds;

	if (v == NULL)
		return;
	if (json_is_string(v) && strcmp(json_string_value(v), "none") == 0) {
		health_kind_reset(c, h, DRV_HEALTH_NONE);
		return;
	}
	if (!json_is_object(v)) {
		plan_verr(c, path, "must be a mapping (http, tcp or exec, and timings) or none");
		return;
	}
	plan_check_keys(c, v, path, keys);
	kinds = (json_object_get(v, "http") != NULL) + (json_object_get(v, "tcp") != NULL) +
	        (json_object_get(v, "exec") != NULL);
	if (kinds > 1)
		plan_verr(c, path, "give one of http, tcp and exec");
	plan_pjoin(p, path, "http");
	if (json_object_get(v, "http") != NULL)
		health_http(c, json_object_get(v, "http"), p, h);
	plan_pjoin(p, path, "tcp");
	if (json_object_get(v, "tcp") != NULL)
		health_tcp(c, json_object_get(v, "tcp"), p, h);
	health_exec(c, v, path, h);
	health_timing(c, v, path, h);
}

/* ---- hooks ---- */

void plan_hook_read(struct vctx *c, const json_t *v, const char *path, int kind,
                    struct drv_plan_hook *h)
{
	static const char *const hook_keys[] = {"name",    "hosts", "run",   "env",
	                                        "timeout", "user",  "group", NULL};
	static const char *const mig_keys[] = {"name",    "hosts", "up",    "down", "env",
	                                       "timeout", "user",  "group", NULL};
	static const char *const traffic_keys[] = {"hosts", "run", "env", "timeout", NULL};
	const char *run = kind == 1 ? "up" : "run";
	char p[DRV_YJ_PATH_MAX];

	h->timeout_ms = kind == 2 ? TRAFFIC_TIMEOUT_MS : HOOK_TIMEOUT_MS;
	if (!plan_want_object(c, v, path))
		return;
	plan_check_keys(c, v, path, kind == 0 ? hook_keys : kind == 1 ? mig_keys : traffic_keys);
	if (kind != 2 && plan_read_name(c, v, path, "name", &h->name) == 0) {
		plan_pjoin(p, path, "name");
		plan_verr(c, p, "required");
	}
	if (plan_read_hosts(c, v, path, "hosts", &h->hosts) == 0 && kind != 2) {
		plan_pjoin(p, path, "hosts");
		plan_verr(c, p, "required (agent ids or {labels: {...}})");
	}
	if (plan_read_argv(c, v, path, run, &h->run) == 0) {
		plan_pjoin(p, path, run);
		plan_verr(c, p, "required (the command and its arguments)");
	}
	if (kind == 1 && plan_read_argv(c, v, path, "down", &h->down) == 0) {
		plan_pjoin(p, path, "down");
		plan_verr(c, p, "required: what rollback runs (write [/bin/true] if nothing)");
	}
	plan_read_env(c, v, path, "env", &h->env, &h->n_env);
	if (kind != 2)
		plan_privs_read(c, v, path, false, &h->privs);
	plan_read_duration(c, v, path, "timeout", &h->timeout_ms);
	if (h->timeout_ms == 0) {
		plan_pjoin(p, path, "timeout");
		plan_verr(c, p, "must be more than 0");
	}
}

/* ---- strategies ---- */

void plan_strategy_defaults(struct vctx *c, struct drv_plan_strategy *s,
                            enum drv_plan_strategy_type t)
{
	static const uint8_t canary_steps[] = {10, 25, 50, 75, 100};

	(void)c;
	plan_strategy_free(s);
	memset(s, 0, sizeof(*s));
	s->type = t;
	s->max_unavailable = (struct drv_plan_amount){25, true};
	s->min_healthy = (struct drv_plan_amount){0, false};
	if (t == DRV_STRATEGY_CANARY) {
		memcpy(s->steps, canary_steps, sizeof(canary_steps));
		s->n_steps = sizeof(canary_steps);
		s->pause_ms = 30000;
	}
	s->metric_timeout_ms = METRIC_TIMEOUT_MS;
	s->traffic.timeout_ms = TRAFFIC_TIMEOUT_MS;
}

static void read_steps(struct vctx *c, const json_t *v, const char *path,
                       struct drv_plan_strategy *s)
{
	json_t *steps = json_object_get(v, "steps");
	char p[DRV_YJ_PATH_MAX], ip[DRV_YJ_PATH_MAX];
	uint8_t out[DRV_PLAN_MAX_STEPS];
	size_t n;

	if (steps == NULL)
		return;
	plan_pjoin(p, path, "steps");
	n = json_array_size(steps);
	if (!json_is_array(steps) || n == 0 || n > DRV_PLAN_MAX_STEPS) {
		plan_verr(c, p, "must be a list of 1 to %d percentages such as [10%%, 50%%, 100%%]",
		          DRV_PLAN_MAX_STEPS);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *item = json_array_get(steps, i);
		int pct = json_is_string(item) ? plan_parse_percent(json_string_value(item)) : -1;

		plan_pindex(ip, p, i);
		if (pct <= 0) {
			plan_verr(c, ip, "must be a percentage above 0%% such as 25%%");
			return;
		}
		if (i > 0 && pct <= out[i - 1]) {
			plan_verr(c, ip, "steps must increase (%d%% after %u%%)", pct, out[i - 1]);
			return;
		}
		out[i] = (uint8_t)pct;
	}
	if (out[n - 1] != 100) {
		plan_verr(c, p, "the last step must be 100%%");
		return;
	}
	memcpy(s->steps, out, n);
	s->n_steps = n;
}

static void read_pause(struct vctx *c, const json_t *v, const char *path,
                       struct drv_plan_strategy *s)
{
	json_t *pause = json_object_get(v, "pause");

	if (json_is_string(pause) && strcmp(json_string_value(pause), "manual") == 0) {
		s->pause_manual = true;
		s->pause_ms = 0;
	} else if (plan_read_duration(c, v, path, "pause", &s->pause_ms) == 1) {
		s->pause_manual = false;
	}
}

static void read_analysis(struct vctx *c, const json_t *v, const char *path,
                          struct drv_plan_strategy *s)
{
	json_t *a = json_object_get(v, "analysis"), *http;
	char p[DRV_YJ_PATH_MAX], hp[DRV_YJ_PATH_MAX], up[DRV_YJ_PATH_MAX];
	char *url = NULL;

	if (a == NULL)
		return;
	plan_pjoin(p, path, "analysis");
	if (!plan_want_object(c, a, p))
		return;
	plan_check_keys(c, a, p, (const char *const[]){"http", NULL});
	plan_pjoin(hp, p, "http");
	http = json_object_get(a, "http");
	if (http == NULL || !plan_want_object(c, http, hp))
		return;
	plan_check_keys(c, http, hp, (const char *const[]){"url", "max", "timeout", NULL});
	plan_pjoin(up, hp, "url");
	if (plan_read_string(c, http, hp, "url", &url) == 0)
		plan_verr(c, up, "required");
	if (url != NULL && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
		plan_verr(c, up, "must be an http:// or https:// URL");
		free(url);
		url = NULL;
	}
	if (plan_read_number(c, http, hp, "max", &s->metric_max) == 0) {
		plan_pjoin(up, hp, "max");
		plan_verr(c, up, "required: the highest acceptable value");
	}
	plan_read_duration(c, http, hp, "timeout", &s->metric_timeout_ms);
	free(s->metric_url);
	s->metric_url = url;
}

/* The hook of a traffic switch runs on the agents its hosts name. A hook
 * without hosts used to run on the coordinator as droverd's user: refused,
 * and the message says what to write instead. */
static void read_traffic_hook(struct vctx *c, const json_t *h, const char *p,
                              struct drv_plan_strategy *s, int64_t timeout)
{
	struct drv_plan_traffic *t = &s->traffic;
	char hp[DRV_YJ_PATH_MAX];

	plan_hook_read(c, h, p, 2, &t->hook);
	if (json_object_get(h, "timeout") == NULL)
		t->hook.timeout_ms = timeout;
	t->kind = DRV_TRAFFIC_HOOK;
	if (json_is_object(h) && t->hook.hosts.n_ids == 0 && t->hook.hosts.n_labels == 0) {
		plan_pjoin(hp, p, "hosts");
		plan_verr(
		        c, hp,
		        "required: a plan's hook runs on the agents it names, never on the "
		        "coordinator; to switch traffic from the coordinator, name a balancer that "
		        "droverd.yaml defines: traffic: { balancer: NAME, backend: BACKEND }");
	}
}

/* `traffic.haproxy` (a socket path on the coordinator) is no longer a plan's
 * to give: the operator defines it in droverd.yaml under a name. */
static void refuse_haproxy(struct vctx *c, const json_t *h, const char *p)
{
	const json_t *be = json_is_object(h) ? json_object_get(h, "backend") : NULL;
	char sp[DRV_YJ_PATH_MAX];

	if (json_is_object(h) && json_object_get(h, "socket") != NULL)
		plan_pjoin(sp, p, "socket");
	else
		snprintf(sp, sizeof(sp), "%s", p);
	plan_verr(c, sp,
	          "a plan may not name a socket on the coordinator: define it in droverd.yaml "
	          "(balancers: { NAME: { kind: haproxy, socket: PATH } }) and write traffic: "
	          "{ balancer: NAME, backend: %s }",
	          json_is_string(be) ? json_string_value(be) : "BACKEND");
}

static void traffic_free(struct drv_plan_traffic *t)
{
	plan_hook_free(&t->hook);
	free(t->balancer);
	free(t->backend);
	free(t->server);
	memset(t, 0, sizeof(*t));
}

static void read_traffic(struct vctx *c, const json_t *v, const char *path,
                         struct drv_plan_strategy *s)
{
	json_t *t = json_object_get(v, "traffic");
	char p[DRV_YJ_PATH_MAX], kp[DRV_YJ_PATH_MAX];
	int64_t timeout = s->traffic.timeout_ms;
	struct drv_plan_traffic *tr = &s->traffic;
	int kinds;

	if (t == NULL)
		return;
	plan_pjoin(p, path, "traffic");
	if (!plan_want_object(c, t, p))
		return;
	plan_check_keys(c, t, p,
	                (const char *const[]){"balancer", "hook", "backend", "server", "timeout",
	                                      "haproxy", NULL});
	traffic_free(tr);
	plan_read_duration(c, t, p, "timeout", &timeout);
	plan_read_string(c, t, p, "backend", &tr->backend);
	plan_read_string(c, t, p, "server", &tr->server);
	kinds = (json_object_get(t, "balancer") != NULL) + (json_object_get(t, "hook") != NULL);
	if (json_object_get(t, "haproxy") != NULL) {
		plan_pjoin(kp, p, "haproxy");
		refuse_haproxy(c, json_object_get(t, "haproxy"), kp);
	} else if (kinds != 1) {
		plan_verr(
		        c, p,
		        "give one of balancer (a name from droverd.yaml) and hook (run on agents)");
	} else if (json_object_get(t, "balancer") != NULL) {
		plan_pjoin(kp, p, "balancer");
		if (plan_read_name(c, t, p, "balancer", &tr->balancer) == 1) {
			tr->kind = DRV_TRAFFIC_BALANCER;
			tr->line = drv_yj_line(c->lines, kp);
		}
	} else {
		plan_pjoin(kp, p, "hook");
		read_traffic_hook(c, json_object_get(t, "hook"), kp, s, timeout);
	}
	tr->timeout_ms = timeout;
	if (tr->backend == NULL && tr->kind == DRV_TRAFFIC_BALANCER) {
		plan_pjoin(kp, p, "backend");
		plan_verr(c, kp, "required: the backend whose servers are switched");
	}
	if (tr->server == NULL)
		tr->server = plan_strdup(c, s->type == DRV_STRATEGY_BLUEGREEN && s->n_sets == 0
		                                    ? "{host}-{slot}"
		                                    : "{host}");
}

/* Keys allowed for each strategy type, indexed by enum drv_plan_strategy_type. */
static const char *const *const strategy_keys[] = {
        (const char *const[]){"type", "max_unavailable", "min_healthy", NULL},
        (const char *const[]){"type", "steps", "pause", "analysis", "traffic", NULL},
        (const char *const[]){"type", "green_port", "finalize_after", "sets", "analysis", "traffic",
                              NULL},
};

static void check_strategy_keys(struct vctx *c, const json_t *v, const char *path,
                                enum drv_plan_strategy_type t)
{
	const char *key;
	json_t *item;
	char p[DRV_YJ_PATH_MAX];

	json_object_foreach((json_t *)v, key, item)
	{
		bool ok = false;

		for (const char *const *k = strategy_keys[t]; *k != NULL; k++)
			ok |= strcmp(*k, key) == 0;
		if (ok)
			continue;
		plan_pjoin(p, path, key);
		for (int o = 0; o < 3; o++) {
			for (const char *const *k = strategy_keys[o]; *k != NULL && !ok; k++)
				ok = strcmp(*k, key) == 0;
		}
		if (ok)
			plan_verr(c, p, "not a field of a %s strategy", plan_strategy_names[t]);
		else if (plan_suggest(key, strategy_keys[t]) != NULL)
			plan_verr(c, p, "unknown field (did you mean %s?)",
			          plan_suggest(key, strategy_keys[t]));
		else
			plan_verr(c, p, "unknown field");
	}
}

void plan_strategy_read(struct vctx *c, const json_t *v, const char *path,
                        struct drv_plan_strategy *s)
{
	int t = (int)s->type;

	if (v == NULL)
		return;
	if (!json_is_object(v)) {
		plan_verr(c, path, "must be a mapping with a type: rolling, canary or blue-green");
		return;
	}
	if (plan_read_enum(c, v, path, "type", plan_strategy_names, &t) == 1 && t != (int)s->type)
		plan_strategy_defaults(c, s, (enum drv_plan_strategy_type)t);
	check_strategy_keys(c, v, path, s->type);
	plan_read_amount(c, v, path, "max_unavailable", &s->max_unavailable);
	plan_read_amount(c, v, path, "min_healthy", &s->min_healthy);
	read_steps(c, v, path, s);
	read_pause(c, v, path, s);
	read_analysis(c, v, path, s);
	if (s->type == DRV_STRATEGY_BLUEGREEN)
		plan_sets_read(c, v, path, s);
	read_traffic(c, v, path, s);
	plan_read_uint(c, v, path, "green_port", 1, 65535, &s->green_port);
	plan_read_duration(c, v, path, "finalize_after", &s->finalize_after_ms);
	/* 0 and 0% would update no host: refused rather than turned into one
	 * host. drover has no surge (a rolling host stops its old release
	 * before it starts the new one); blue-green starts the new beside it. */
	if (s->type == DRV_STRATEGY_ROLLING && s->max_unavailable.value == 0) {
		char p[DRV_YJ_PATH_MAX];

		plan_pjoin(p, path, "max_unavailable");
		plan_verr(c, p,
		          "must allow at least one host (1 or more, or a percentage above 0%%): "
		          "rolling stops a host before it starts the new release; for no downtime "
		          "use blue-green");
	}
}

/* ---- failure policy ---- */

void plan_failure_defaults(struct drv_plan_failure *f)
{
	memset(f, 0, sizeof(*f));
	f->rollback = DRV_ROLLBACK_DEPLOYMENT;
}

void plan_failure_read(struct vctx *c, const json_t *v, const char *path,
                       struct drv_plan_failure *f)
{
	int r = (int)f->rollback;

	if (v == NULL || !plan_want_object(c, v, path))
		return;
	plan_check_keys(c, v, path,
	                (const char *const[]){"max_failed_hosts", "max_failed_per_batch",
	                                      "rollback", NULL});
	plan_read_amount(c, v, path, "max_failed_hosts", &f->max_failed_hosts);
	if (plan_read_amount(c, v, path, "max_failed_per_batch", &f->max_failed_per_batch) == 1)
		f->per_batch_set = true;
	if (plan_read_enum(c, v, path, "rollback", plan_rollback_names, &r) == 1)
		f->rollback = (enum drv_plan_rollback)r;
}
