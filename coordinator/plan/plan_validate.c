/*
 * plan_validate.c: the plan document: top level, tiers, services, hooks,
 * notifications, and the checks that span fields (names unique, blue-green
 * has ports and traffic, an exec service has a command, ...).
 *
 * A service is read in three layers: built-in defaults, the plan's
 * `defaults` (re-read quietly for each service; its errors are reported
 * once, at defaults.*), then the service's own fields.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "plan_int.h"

#define STOP_GRACE_MS   10000
#define PRESTAGE_MS     (10 * 60 * 1000)
#define IMAGE_REF_MAX   512
#define VERSION_MAX     128
#define WEBHOOK_URL_MAX 2048

static const char *const driver_names[] = {"exec", "container", "systemd", NULL};
static const char *const isolation_names[] = {"none", "chroot", NULL};
static const char *const on_config_names[] = {"restart", "reload", NULL};

/* ---- images ---- */

static bool valid_digest(const char *d)
{
	if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + 64)
		return false;
	for (d += 7; *d != '\0'; d++) {
		if (!isdigit((unsigned char)*d) && (*d < 'a' || *d > 'f'))
			return false;
	}
	return true;
}

static bool valid_tag(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return false;
	for (; *t != '\0'; t++) {
		if (!isalnum((unsigned char)*t) && *t != '_' && *t != '.' && *t != '-')
			return false;
	}
	return true;
}

/* NULL when ref is fine, else why not. */
static const char *image_problem(const char *ref, const char *digest)
{
	const char *last, *colon;

	if (strlen(ref) == 0 || strlen(ref) > IMAGE_REF_MAX)
		return "must be 1 to 512 characters";
	for (const char *p = ref; *p != '\0'; p++) {
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			return "must not contain spaces or control characters";
	}
	if (strncmp(ref, "oci-layout:", 11) == 0)
		return ref[11] == '/' ? NULL : "oci-layout: needs an absolute path";
	last = strrchr(ref, '/');
	last = last == NULL ? ref : last + 1;
	colon = strchr(last, ':');
	if (colon != NULL && !valid_tag(colon + 1))
		return "has an invalid tag";
	if (colon == NULL && digest == NULL)
		return "needs a tag (name:tag) or a digest (name@sha256:...)";
	if (last[0] == '\0' || last == colon)
		return "needs a repository name";
	return NULL;
}

/* Split "name:tag@sha256:..." into the reference and its digest. */
static void read_image(struct vctx *c, const json_t *v, const char *path,
                       struct drv_plan_service *s)
{
	char p[DRV_YJ_PATH_MAX];
	char *ref = NULL, *at;
	const char *why;

	plan_pjoin(p, path, "image");
	if (plan_read_string(c, v, path, "image", &ref) != 1) {
		if (json_object_get(v, "image") == NULL)
			plan_verr(c, p, "required");
		return;
	}
	at = strchr(ref, '@');
	if (at != NULL) {
		*at++ = '\0';
		if (!valid_digest(at)) {
			plan_verr(c, p, "the digest must be sha256: and 64 lowercase hex digits");
			free(ref);
			return;
		}
	}
	why = image_problem(ref, at);
	if (why != NULL) {
		plan_verr(c, p, "\"%.100s\" %s", ref, why);
		free(ref);
		return;
	}
	s->image = ref;
	s->digest = at != NULL ? plan_strdup(c, at) : NULL;
}

/* ---- services ---- */

/* The fields `defaults` and a service share. */
static void read_common(struct vctx *c, const json_t *v, const char *path,
                        struct drv_plan_service *s)
{
	char p[DRV_YJ_PATH_MAX];
	int e;

	e = (int)s->driver;
	if (plan_read_enum(c, v, path, "driver", driver_names, &e) == 1)
		s->driver = (enum drv_plan_driver)e;
	e = s->chroot;
	if (plan_read_enum(c, v, path, "isolation", isolation_names, &e) == 1)
		s->chroot = e == 1;
	e = s->reload_on_config;
	if (plan_read_enum(c, v, path, "on_config", on_config_names, &e) == 1)
		s->reload_on_config = e == 1;
	plan_read_duration(c, v, path, "stop_grace", &s->stop_grace_ms);
	plan_privs_read(c, v, path, true, &s->privs);
	plan_pjoin(p, path, "systemd");
	plan_systemd_read(c, json_object_get(v, "systemd"), p, &s->systemd);
	plan_pjoin(p, path, "health");
	plan_health_read(c, json_object_get(v, "health"), p, &s->health);
	plan_pjoin(p, path, "strategy");
	plan_strategy_read(c, json_object_get(v, "strategy"), p, &s->strategy);
	plan_pjoin(p, path, "failure");
	plan_failure_read(c, json_object_get(v, "failure"), p, &s->failure);
	plan_pjoin(p, path, "analysis");
	plan_analysis_read(c, json_object_get(v, "analysis"), p, &s->analysis);
	plan_alerts_read(c, v, path, s);
}

static void service_base(struct vctx *c, const json_t *defaults, struct drv_plan_service *s)
{
	bool quiet = c->quiet;

	plan_health_defaults(c, &s->health);
	plan_strategy_defaults(c, &s->strategy, DRV_STRATEGY_ROLLING);
	plan_failure_defaults(&s->failure);
	s->driver = DRV_DRIVER_EXEC;
	plan_systemd_defaults(&s->systemd);
	s->stop_grace_ms = STOP_GRACE_MS;
	if (json_is_object(defaults)) {
		c->quiet = true;
		read_common(c, defaults, "defaults", s);
		c->quiet = quiet;
	}
}

static void check_bluegreen(struct vctx *c, const char *path, struct drv_plan_service *s)
{
	char p[DRV_YJ_PATH_MAX];

	plan_pjoin(p, path, "strategy");
	if (s->strategy.traffic.kind == DRV_TRAFFIC_NONE)
		plan_verr(c, p, "blue-green needs traffic (a balancer or a hook) to switch");
	if (s->strategy.n_sets > 0) {
		plan_sets_check(c, p, &s->strategy); /* each host runs the service's port */
		return;
	}
	if (s->strategy.green_port == 0)
		plan_verr(c, p, "blue-green needs green_port (where the new version starts)");
	if (s->port == 0)
		plan_verr(c, path,
		          "blue-green needs the service's port (port, or health.http.port)");
	if (s->port != 0 && s->strategy.green_port == s->port)
		plan_verr(c, p, "green_port must differ from the service's port %u", s->port);
}

static void check_service(struct vctx *c, const json_t *v, const char *path,
                          struct drv_plan_service *s)
{
	struct drv_plan_health *h = &s->health;
	char p[DRV_YJ_PATH_MAX];

	if (s->driver != DRV_DRIVER_CONTAINER && s->command.n == 0) {
		plan_pjoin(p, path, "command");
		plan_verr(c, p, "required with driver %s (the program inside the image)",
		          s->driver == DRV_DRIVER_EXEC ? "exec" : "systemd");
	}
	if (h->kind == DRV_HEALTH_HTTP || h->kind == DRV_HEALTH_TCP) {
		if (h->port == 0)
			h->port = s->port;
		if (s->port == 0)
			s->port = h->port;
		if (h->port == 0) {
			plan_pjoin(p, path, "health");
			plan_verr(c, p, "the %s check needs a port (health.%s.port, or port)",
			          h->kind == DRV_HEALTH_HTTP ? "http" : "tcp",
			          h->kind == DRV_HEALTH_HTTP ? "http" : "tcp");
		}
	}
	if (h->timeout_ms == 0 || h->interval_ms == 0 || h->deadline_ms == 0) {
		plan_pjoin(p, path, "health");
		plan_verr(c, p, "interval, timeout and deadline must be more than 0");
	}
	if (s->hosts.n_ids == 0 && s->hosts.n_labels == 0 && s->strategy.n_sets == 0 &&
	    json_object_get(v, "hosts") == NULL) {
		plan_pjoin(p, path, "hosts");
		plan_verr(c, p, "required (agent ids or {labels: {...}})");
	}
	if (s->strategy.type == DRV_STRATEGY_BLUEGREEN)
		check_bluegreen(c, path, s);
	plan_privs_check(c, path, s->driver != DRV_DRIVER_CONTAINER, s->chroot, &s->command,
	                 &s->privs);
}

static void service_read(struct vctx *c, const json_t *v, const char *path, const json_t *defaults,
                         const char *version, struct drv_plan_service *s)
{
	static const char *const keys[] = {"name",
	                                   "image",
	                                   "hosts",
	                                   "command",
	                                   "env",
	                                   "files",
	                                   "driver",
	                                   "isolation",
	                                   "port",
	                                   "stop_grace",
	                                   "version",
	                                   "health",
	                                   "strategy",
	                                   "failure",
	                                   "user",
	                                   "group",
	                                   "capabilities",
	                                   "keep_setid",
	                                   "systemd",
	                                   "analysis",
	                                   "rollback_on_alerts",
	                                   "alert_precheck",
	                                   "on_config",
	                                   "flags",
	                                   NULL};
	char p[DRV_YJ_PATH_MAX];

	s->line = drv_yj_line(c->lines, path);
	service_base(c, defaults, s);
	if (!plan_want_object(c, v, path))
		return;
	plan_check_keys(c, v, path, keys);
	plan_pjoin(p, path, "name");
	if (plan_read_name(c, v, path, "name", &s->name) == 0)
		plan_verr(c, p, "required");
	read_image(c, v, path, s);
	plan_read_hosts(c, v, path, "hosts", &s->hosts); /* required unless strategy.sets */
	plan_read_argv(c, v, path, "command", &s->command);
	plan_read_env(c, v, path, "env", &s->env, &s->n_env);
	plan_read_files(c, v, path, "files", &s->files, &s->n_files);
	plan_flags_read(c, v, path, s);
	plan_read_uint(c, v, path, "port", 1, 65535, &s->port);
	if (plan_read_string(c, v, path, "version", &s->version) != 1)
		s->version = plan_strdup(c, version != NULL ? version : "");
	read_common(c, v, path, s);
	check_service(c, v, path, s);
}

/* ---- tiers ---- */

static size_t count_services(const json_t *tiers)
{
	size_t n = 0, i;
	json_t *t;

	json_array_foreach(tiers, i, t)
	{
		n += json_array_size(json_object_get(t, "services"));
	}
	return n;
}

static void tier_read(struct vctx *c, const json_t *t, const char *path, const json_t *root,
                      struct drv_plan *p, struct drv_plan_tier *tier)
{
	json_t *services = json_object_get(t, "services"), *sv;
	char sp[DRV_YJ_PATH_MAX], ip[DRV_YJ_PATH_MAX];
	size_t i;

	tier->first = p->n_services;
	if (!plan_want_object(c, t, path))
		return;
	plan_check_keys(c, t, path, (const char *const[]){"name", "services", NULL});
	plan_pjoin(sp, path, "name");
	if (plan_read_name(c, t, path, "name", &tier->name) == 0)
		plan_verr(c, sp, "required");
	plan_pjoin(sp, path, "services");
	if (!json_is_array(services) || json_array_size(services) == 0) {
		plan_verr(c, sp, "must list at least one service");
		return;
	}
	json_array_foreach(services, i, sv)
	{
		struct drv_plan_service *s = &p->services[p->n_services++];

		plan_pindex(ip, sp, i);
		s->tier = (size_t)(tier - p->tiers);
		service_read(c, sv, ip, json_object_get(root, "defaults"), p->version, s);
		tier->n++;
	}
}

static void read_tiers(struct vctx *c, const json_t *root, struct drv_plan *p)
{
	json_t *tiers = json_object_get(root, "tiers"), *t;
	size_t i, n;
	char ip[DRV_YJ_PATH_MAX];

	if (!json_is_array(tiers) || json_array_size(tiers) == 0 ||
	    json_array_size(tiers) > DRV_PLAN_MAX_TIERS) {
		plan_verr(c, "tiers",
		          tiers == NULL ? "required (a list of tiers with services)"
		                        : "must be a list of 1 to 32 tiers");
		return;
	}
	n = count_services(tiers);
	if (n > DRV_PLAN_MAX_SERVICES) {
		plan_verr(c, "tiers", "more than %d services", DRV_PLAN_MAX_SERVICES);
		return;
	}
	p->tiers = calloc(json_array_size(tiers), sizeof(*p->tiers));
	p->services = calloc(n + 1, sizeof(*p->services));
	if (p->tiers == NULL || p->services == NULL) {
		c->oom = true;
		return;
	}
	json_array_foreach(tiers, i, t)
	{
		plan_pindex(ip, "tiers", i);
		tier_read(c, t, ip, root, p, &p->tiers[p->n_tiers++]);
	}
}

/* ---- hooks and notifications ---- */

static void read_hooks(struct vctx *c, const json_t *root, const char *key, int kind,
                       struct drv_plan_hook **out, size_t *n_out)
{
	json_t *list = json_object_get(root, key), *h;
	char ip[DRV_YJ_PATH_MAX];
	size_t i;

	if (list == NULL || json_is_null(list))
		return;
	if (!json_is_array(list) || json_array_size(list) > DRV_PLAN_MAX_HOOKS) {
		plan_verr(c, key, "must be a list of at most %d entries", DRV_PLAN_MAX_HOOKS);
		return;
	}
	*out = calloc(json_array_size(list) + 1, sizeof(**out));
	if (*out == NULL) {
		c->oom = true;
		return;
	}
	json_array_foreach(list, i, h)
	{
		plan_pindex(ip, key, i);
		plan_hook_read(c, h, ip, kind, &(*out)[(*n_out)++]);
	}
}

static void read_events(struct vctx *c, const json_t *v, const char *path, uint32_t *out)
{
	json_t *events = json_object_get(v, "events"), *e;
	char p[DRV_YJ_PATH_MAX], ip[DRV_YJ_PATH_MAX];
	size_t i;

	*out = (1u << DRV_EVENT_COUNT) - 1;
	if (events == NULL)
		return;
	plan_pjoin(p, path, "events");
	if (!json_is_array(events) || json_array_size(events) == 0) {
		plan_verr(c, p, "must be a list of events");
		return;
	}
	*out = 0;
	json_array_foreach(events, i, e)
	{
		int k;

		for (k = 0; k < DRV_EVENT_COUNT; k++) {
			if (json_is_string(e) &&
			    strcmp(json_string_value(e), drv_plan_event_name(k)) == 0)
				break;
		}
		plan_pindex(ip, p, i);
		if (k == DRV_EVENT_COUNT)
			plan_verr(c, ip,
			          "unknown event (started, tier_done, awaiting_promotion, paused, "
			          "resumed, rollback_started, rolled_back, succeeded, failed, "
			          "aborted, awaiting_approval)");
		else
			*out |= 1u << k;
	}
}

static void read_notify(struct vctx *c, const json_t *root, struct drv_plan *p)
{
	json_t *list = json_object_get(root, "notify"), *n;
	char ip[DRV_YJ_PATH_MAX], wp[DRV_YJ_PATH_MAX];
	size_t i;

	if (list == NULL || json_is_null(list))
		return;
	if (!json_is_array(list) || json_array_size(list) > DRV_PLAN_MAX_NOTIFY) {
		plan_verr(c, "notify", "must be a list of at most %d webhooks",
		          DRV_PLAN_MAX_NOTIFY);
		return;
	}
	p->notify = calloc(json_array_size(list) + 1, sizeof(*p->notify));
	if (p->notify == NULL) {
		c->oom = true;
		return;
	}
	json_array_foreach(list, i, n)
	{
		struct drv_plan_notify *w = &p->notify[p->n_notify++];

		plan_pindex(ip, "notify", i);
		if (!plan_want_object(c, n, ip))
			continue;
		plan_check_keys(c, n, ip, (const char *const[]){"webhook", "events", NULL});
		plan_pjoin(wp, ip, "webhook");
		if (plan_read_string(c, n, ip, "webhook", &w->webhook) == 0)
			plan_verr(c, wp, "required (an http:// or https:// URL)");
		else if (w->webhook != NULL && ((strncmp(w->webhook, "http://", 7) != 0 &&
		                                 strncmp(w->webhook, "https://", 8) != 0) ||
		                                strlen(w->webhook) > WEBHOOK_URL_MAX))
			plan_verr(c, wp, "must be an http:// or https:// URL");
		read_events(c, n, ip, &w->events);
	}
}

/* ---- the document ---- */

static void read_defaults(struct vctx *c, const json_t *root, struct drv_plan *p)
{
	static const char *const keys[] = {
	        "driver",   "isolation",          "strategy",       "health",
	        "failure",  "prestage_timeout",   "stop_grace",     "user",
	        "group",    "capabilities",       "keep_setid",     "systemd",
	        "analysis", "rollback_on_alerts", "alert_precheck", "on_config",
	        NULL};
	json_t *d = json_object_get(root, "defaults");
	struct drv_plan_service scratch;

	p->prestage_timeout_ms = PRESTAGE_MS;
	if (d == NULL || json_is_null(d) || !plan_want_object(c, d, "defaults"))
		return;
	plan_check_keys(c, d, "defaults", keys);
	plan_read_duration(c, d, "defaults", "prestage_timeout", &p->prestage_timeout_ms);
	/* Report the errors of defaults once, here. */
	memset(&scratch, 0, sizeof(scratch));
	plan_health_defaults(c, &scratch.health);
	plan_strategy_defaults(c, &scratch.strategy, DRV_STRATEGY_ROLLING);
	plan_failure_defaults(&scratch.failure);
	read_common(c, d, "defaults", &scratch);
	plan_health_free(&scratch.health);
	plan_privs_free(&scratch.privs);
	plan_strategy_free(&scratch.strategy);
	plan_analysis_free(&scratch.analysis);
	plan_alerts_free(&scratch);
}

static void read_budget(struct vctx *c, const json_t *root, struct drv_plan *p)
{
	json_t *f = json_object_get(root, "failure");

	if (f == NULL || json_is_null(f) || !plan_want_object(c, f, "failure"))
		return;
	plan_check_keys(c, f, "failure", (const char *const[]){"max_failed_hosts", NULL});
	if (plan_read_amount(c, f, "failure", "max_failed_hosts", &p->max_failed_hosts) == 1)
		p->has_budget = true;
}

static bool valid_version(const char *v)
{
	if (strlen(v) > VERSION_MAX)
		return false;
	for (; *v != '\0'; v++) {
		if (!isalnum((unsigned char)*v) && strchr("._+-", *v) == NULL)
			return false;
	}
	return true;
}

/* `queue: true`: wait for a window or a busy service instead of a 409. */
static void read_queue(struct vctx *c, const json_t *root, struct drv_plan *p)
{
	const json_t *q = json_object_get(root, "queue");

	if (q != NULL && !json_is_boolean(q))
		plan_verr(c, "queue", "must be true or false");
	p->queue = json_is_true(q);
}

/* approval: { approvers: 1..10, role: deployer|approver|admin, timeout: D }:
 * a plan may ask for approval; it can only add to its environment's. */
static void read_approval(struct vctx *c, const json_t *root, struct drv_plan *p)
{
	static const char *const keys[] = {"approvers", "role",           "timeout",
	                                   "before",    "at_canary_step", NULL};
	const json_t *a = json_object_get(root, "approval"), *n;
	const json_t *before = json_object_get(a, "before"),
	             *step = json_object_get(a, "at_canary_step");
	const char *role;
	int pct;

	if (a == NULL)
		return;
	if (!json_is_object(a)) {
		plan_verr(c, "approval",
		          "must be a mapping: approvers, role, timeout, before, "
		          "at_canary_step");
		return;
	}
	if (step != NULL) {
		pct = json_is_string(step) ? plan_parse_percent(json_string_value(step)) : -1;
		if (pct <= 0 || pct >= 100)
			plan_verr(c, "approval.at_canary_step",
			          "must be a canary step before the last, as a percentage such as "
			          "25%%");
		else
			p->approval_at_step = (uint8_t)pct;
	}
	if (before != NULL && !json_is_boolean(before))
		plan_verr(c, "approval.before", "must be true or false");
	p->approval_before = before != NULL ? json_is_true(before) : step == NULL;
	if (before != NULL && !p->approval_before && step == NULL)
		plan_verr(c, "approval.before",
		          "false asks for no approval: give at_canary_step, or remove approval");
	plan_check_keys(c, a, "approval", keys);
	n = json_object_get(a, "approvers");
	p->approvers = 1;
	if (n != NULL &&
	    (!json_is_integer(n) || json_integer_value(n) < 1 || json_integer_value(n) > 10))
		plan_verr(c, "approval.approvers", "must be 1 to 10");
	else if (n != NULL)
		p->approvers = (int)json_integer_value(n);
	role = json_string_value(json_object_get(a, "role"));
	snprintf(p->approver_role, sizeof(p->approver_role), "approver");
	if (json_object_get(a, "role") != NULL &&
	    (role == NULL || (strcmp(role, "deployer") != 0 && strcmp(role, "approver") != 0 &&
	                      strcmp(role, "admin") != 0)))
		plan_verr(c, "approval.role", "must be deployer, approver or admin");
	else if (role != NULL)
		snprintf(p->approver_role, sizeof(p->approver_role), "%s", role);
	p->approval_timeout_ms = 24 * 3600 * 1000LL;
	plan_read_duration(c, a, "approval", "timeout", &p->approval_timeout_ms);
	if (p->approval_timeout_ms < 1000 || p->approval_timeout_ms > 30 * 86400000LL)
		plan_verr(c, "approval.timeout", "must be from 1s to 168h");
}

static void read_top(struct vctx *c, const json_t *root, struct drv_plan *p)
{
	static const char *const keys[] = {"deployment", "version",  "environment", "vars",
	                                   "defaults",   "failure",  "pre",         "migrations",
	                                   "tiers",      "post",     "notify",      "bake",
	                                   "queue",      "approval", NULL};

	plan_check_keys(c, root, "", keys);
	if (plan_read_name(c, root, "", "deployment", &p->deployment) == 0)
		plan_verr(c, "deployment", "required (the name of what is deployed)");
	if (plan_read_string(c, root, "", "version", &p->version) == 0)
		plan_verr(c, "version", "required (the release being deployed, e.g. \"2.4.0\")");
	else if (p->version != NULL && !valid_version(p->version))
		plan_verr(c, "version", "use letters, digits, '.', '_', '+', '-' (at most %d)",
		          VERSION_MAX);
	plan_read_name(c, root, "", "environment", &p->environment);
	/* vars were checked (and reported) when they were filled in */
	c->quiet = true;
	plan_read_env(c, root, "", "vars", &p->vars, &p->n_vars);
	c->quiet = false;
	read_defaults(c, root, p);
	read_budget(c, root, p);
	plan_read_duration(c, root, "", "bake", &p->bake_ms);
	read_queue(c, root, p);
	read_approval(c, root, p);
	read_hooks(c, root, "pre", 0, &p->pre, &p->n_pre);
	read_hooks(c, root, "migrations", 1, &p->migrations, &p->n_migrations);
	read_hooks(c, root, "post", 0, &p->post, &p->n_post);
	read_tiers(c, root, p);
	read_notify(c, root, p);
}

/* ---- names unique ---- */

static void unique_hooks(struct vctx *c, const char *key, const struct drv_plan_hook *h, size_t n)
{
	char ip[DRV_YJ_PATH_MAX];

	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i && h[i].name != NULL; j++) {
			if (h[j].name != NULL && strcmp(h[i].name, h[j].name) == 0) {
				plan_pindex(ip, key, i);
				plan_verr(c, ip, "name \"%s\" is used twice", h[i].name);
				break;
			}
		}
	}
}

static void unique_names(struct vctx *c, const struct drv_plan *p)
{
	char ip[DRV_YJ_PATH_MAX];

	for (size_t i = 0; i < p->n_tiers; i++) {
		for (size_t j = 0; j < i && p->tiers[i].name != NULL; j++) {
			if (p->tiers[j].name && strcmp(p->tiers[i].name, p->tiers[j].name) == 0) {
				plan_pindex(ip, "tiers", i);
				plan_verr(c, ip, "tier \"%s\" is defined twice", p->tiers[i].name);
			}
		}
	}
	for (size_t i = 0; i < p->n_services; i++) {
		const struct drv_plan_service *s = &p->services[i];

		for (size_t j = 0; j < i && s->name != NULL; j++) {
			if (p->services[j].name && strcmp(s->name, p->services[j].name) == 0) {
				snprintf(ip, sizeof(ip), "tiers[%zu].services[%zu]", s->tier,
				         i - p->tiers[s->tier].first);
				plan_verr(c, ip, "service \"%s\" is defined twice", s->name);
			}
		}
	}
	unique_hooks(c, "pre", p->pre, p->n_pre);
	unique_hooks(c, "migrations", p->migrations, p->n_migrations);
	unique_hooks(c, "post", p->post, p->n_post);
}

bool drv_plan_has_canary(const struct drv_plan *p)
{
	for (size_t i = 0; i < p->n_services; i++) {
		if (p->services[i].strategy.type == DRV_STRATEGY_CANARY)
			return true;
	}
	return false;
}

static void steps_text(const struct drv_plan_strategy *st, char *buf, size_t cap)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < st->n_steps && used < cap; i++)
		used += (size_t)snprintf(buf + used, cap - used, "%s%u%%", i ? ", " : "",
		                         st->steps[i]);
}

void plan_check_canary_step(struct vctx *c, const struct drv_plan *p, unsigned pct,
                            const char *path, const char *who)
{
	char ip[DRV_YJ_PATH_MAX], steps[DRV_PLAN_MAX_STEPS * 6];
	bool any = false;

	for (size_t i = 0; i < p->n_services && pct > 0; i++) {
		const struct drv_plan_service *s = &p->services[i];
		bool found = false;

		if (s->strategy.type != DRV_STRATEGY_CANARY)
			continue;
		any = true;
		for (size_t k = 0; k + 1 < s->strategy.n_steps; k++)
			found = found || s->strategy.steps[k] == pct;
		if (found)
			continue;
		steps_text(&s->strategy, steps, sizeof(steps));
		snprintf(ip, sizeof(ip), "tiers[%zu].services[%zu]", s->tier,
		         i - p->tiers[s->tier].first);
		plan_verr(
		        c, path ? path : ip,
		        "%s asks for approval at canary step %u%%, which is not a step before the "
		        "last of service %s (steps %s)",
		        who, pct, s->name, steps);
	}
	if (!any && pct > 0 && path != NULL)
		plan_verr(c, path,
		          "%s asks for approval at canary step %u%%, but no service deploys "
		          "by canary",
		          who, pct);
}

int drv_plan_from_json(const json_t *root, const struct drv_yj_lines *lines, const char *name,
                       struct drv_plan **out, struct drv_plan_errors *errs)
{
	struct vctx c = {.lines = lines, .file = name != NULL ? name : "plan", .errs = errs};
	struct drv_plan *p;

	if (!json_is_object(root)) {
		plan_verr(&c, "", "a plan must be a mapping (deployment, version, tiers, ...)");
		plan_verr_flush(&c);
		return DRV_EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL || (p->source = strdup(c.file)) == NULL) {
		free(p);
		return DRV_ENOMEM;
	}
	read_top(&c, root, p);
	if (!c.oom)
		unique_names(&c, p);
	if (!c.oom)
		plan_check_canary_step(&c, p, p->approval_at_step, "approval.at_canary_step",
		                       "the plan");
	plan_verr_flush(&c);
	if (c.oom || c.nerr > 0) {
		drv_plan_free(p);
		if (c.oom)
			drv_plan_errors_add(errs, "%s: out of memory", c.file);
		return c.oom ? DRV_ENOMEM : DRV_EINVAL;
	}
	*out = p;
	return DRV_OK;
}
