/*
 * plan.c: plan entry points (buffer, file), destructors, the error list,
 * tag -> digest resolution, host matching and small helpers.
 */
#include "plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "plan_int.h"
#include "yamljson.h"

/* ---- errors ---- */

void drv_plan_errors_add(struct drv_plan_errors *e, const char *fmt, ...)
{
	char buf[1024], **v;
	va_list ap;

	if (e == NULL || e->n > DRV_PLAN_MAX_ERRORS)
		return;
	if (e->n == DRV_PLAN_MAX_ERRORS)
		snprintf(buf, sizeof(buf), "too many errors; stopping here");
	else {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
	}
	v = realloc(e->v, (e->n + 1) * sizeof(*v));
	if (v == NULL)
		return;
	e->v = v;
	e->v[e->n] = strdup(buf);
	if (e->v[e->n] != NULL)
		e->n++;
}

void drv_plan_errors_free(struct drv_plan_errors *e)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = 0;
}

/* ---- destructors ---- */

void plan_argv_free(struct drv_plan_argv *a)
{
	if (a->v != NULL) {
		for (size_t i = 0; i < a->n; i++)
			free(a->v[i]);
	}
	free(a->v);
	a->v = NULL;
	a->n = 0;
}

void plan_kv_free(struct drv_plan_kv *kv, size_t n)
{
	if (kv == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

void plan_hosts_free(struct drv_plan_hosts *h)
{
	if (h->ids != NULL) {
		for (size_t i = 0; i < h->n_ids; i++)
			free(h->ids[i]);
	}
	free(h->ids);
	plan_kv_free(h->labels, h->n_labels);
	memset(h, 0, sizeof(*h));
}

void plan_hook_free(struct drv_plan_hook *h)
{
	free(h->name);
	plan_hosts_free(&h->hosts);
	plan_argv_free(&h->run);
	plan_argv_free(&h->down);
	plan_kv_free(h->env, h->n_env);
	plan_privs_free(&h->privs);
	memset(h, 0, sizeof(*h));
}

void plan_health_free(struct drv_plan_health *h)
{
	free(h->host);
	free(h->path);
	free(h->body);
	plan_argv_free(&h->exec);
	h->host = h->path = h->body = NULL;
}

void plan_strategy_free(struct drv_plan_strategy *s)
{
	free(s->metric_url);
	free(s->traffic.balancer);
	free(s->traffic.backend);
	free(s->traffic.server);
	plan_hook_free(&s->traffic.hook);
	plan_sets_free(s);
	s->metric_url = s->traffic.balancer = s->traffic.backend = s->traffic.server = NULL;
}

static void service_free(struct drv_plan_service *s)
{
	free(s->name);
	free(s->image);
	free(s->digest);
	free(s->version);
	plan_hosts_free(&s->hosts);
	plan_privs_free(&s->privs);
	plan_argv_free(&s->command);
	plan_kv_free(s->env, s->n_env);
	for (size_t i = 0; i < s->n_files; i++) {
		free(s->files[i].path);
		free(s->files[i].content);
	}
	free(s->files);
	plan_health_free(&s->health);
	plan_strategy_free(&s->strategy);
	plan_analysis_free(&s->analysis);
	plan_alerts_free(s);
}

static void hooks_free(struct drv_plan_hook *h, size_t n)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		plan_hook_free(&h[i]);
	free(h);
}

void drv_plan_free(struct drv_plan *p)
{
	if (p == NULL)
		return;
	free(p->source);
	free(p->deployment);
	free(p->version);
	hooks_free(p->pre, p->n_pre);
	hooks_free(p->migrations, p->n_migrations);
	hooks_free(p->post, p->n_post);
	for (size_t i = 0; i < p->n_tiers; i++)
		free(p->tiers[i].name);
	free(p->tiers);
	for (size_t i = 0; p->services != NULL && i < p->n_services; i++)
		service_free(&p->services[i]);
	free(p->services);
	for (size_t i = 0; i < p->n_notify; i++)
		free(p->notify[i].webhook);
	free(p->notify);
	free(p->environment);
	plan_kv_free(p->vars, p->n_vars);
	plan_argv_free(&p->secrets);
	json_decref(p->tmpl);
	free(p);
}

/* ---- entry points ---- */

static int plan_argv_add(struct drv_plan_argv *a, const char *s)
{
	char **v = realloc(a->v, (a->n + 2) * sizeof(*v));

	if (v == NULL)
		return DRV_ENOMEM;
	a->v = v;
	if ((v[a->n] = strdup(s)) == NULL)
		return DRV_ENOMEM;
	v[++a->n] = NULL;
	return DRV_OK;
}

/* The plan's environment asks for approval at a canary step: every canary
 * service must have it (a plan without one waits before it starts). */
static int env_canary_step(struct vctx *c, const struct drv_plan *p,
                           const struct drv_plan_envs *envs)
{
	char who[DRV_PLAN_NAME_MAX + 16];

	for (size_t i = 0; envs != NULL && p->environment != NULL && i < envs->n; i++) {
		const struct drv_plan_env *e = &envs->v[i];

		if (strcmp(e->name, p->environment) != 0 || e->approvers == 0)
			continue;
		snprintf(who, sizeof(who), "environment %s", e->name);
		plan_check_canary_step(c, p, e->approval_at_step, NULL, who);
		plan_verr_flush(c);
	}
	return c->oom ? DRV_ENOMEM : DRV_OK;
}

/* Variables, then the plan; secrets (values used) go to the plan. */
static int from_tree(json_t *root, const struct drv_yj_lines *lines, const char *name,
                     const struct drv_plan_envs *envs, const char *requested, struct drv_plan **out,
                     struct drv_plan_errors *errs)
{
	struct vctx c = {.lines = lines, .file = name, .errs = errs};
	json_t *secrets = json_array();
	struct drv_plan *p = NULL;
	json_t *tmpl = json_is_object(root) ? json_deep_copy(root) : NULL;
	int rc = secrets && (tmpl || !json_is_object(root)) ? DRV_OK : DRV_ENOMEM;

	if (tmpl != NULL)
		json_object_del(tmpl, "environment"); /* a release goes anywhere */
	if (rc == DRV_OK && json_is_object(root))
		rc = plan_vars_apply(&c, root, envs, requested, secrets);
	plan_verr_flush(&c);
	if (rc == DRV_OK) /* the plan's own errors too, all of them */
		rc = drv_plan_from_json(root, lines, name, &p, errs);
	if (rc == DRV_OK)
		rc = env_canary_step(&c, p, envs);
	if (rc == DRV_OK && c.nerr > 0)
		rc = DRV_EINVAL;
	for (size_t i = 0; rc == DRV_OK && i < json_array_size(secrets); i++)
		rc = plan_argv_add(&p->secrets, json_string_value(json_array_get(secrets, i)));
	json_decref(secrets);
	if (rc != DRV_OK) {
		json_decref(tmpl);
		drv_plan_free(p);
		return rc;
	}
	p->tmpl = tmpl;
	*out = p;
	return DRV_OK;
}

int drv_plan_from_release(const json_t *release, const char *name, const struct drv_plan_envs *envs,
                          const char *env, struct drv_plan **out, struct drv_plan_errors *errs)
{
	json_t *root = json_is_object(release) ? json_deep_copy(release) : NULL;
	int rc;

	if (root == NULL) {
		drv_plan_errors_add(errs, "%s: a release is a plan object",
		                    name ? name : "release");
		return json_is_object(release) ? DRV_ENOMEM : DRV_EINVAL;
	}
	json_object_del(root, "environment");
	rc = from_tree(root, NULL, name ? name : "release", envs, env, out, errs);
	json_decref(root);
	return rc;
}

int drv_plan_parse_buffer_env(const char *buf, size_t len, const char *name,
                              const struct drv_plan_envs *envs, const char *requested,
                              struct drv_plan **out, struct drv_plan_errors *errs)
{
	struct drv_yj_lines *lines = NULL;
	struct drv_yj_error err;
	json_t *root = NULL;
	int rc;

	if (name == NULL)
		name = "plan";
	rc = drv_yj_load_buffer(buf, len, DRV_PLAN_MAX_BYTES, &root, &lines, &err);
	if (rc != DRV_OK) {
		if (err.line > 0)
			drv_plan_errors_add(errs, "%s:%d: %s", name, err.line, err.msg);
		else
			drv_plan_errors_add(errs, "%s: %s", name, err.msg);
		return rc == DRV_EDECODE ? DRV_EINVAL : rc;
	}
	rc = from_tree(root, lines, name, envs, requested, out, errs);
	json_decref(root);
	drv_yj_lines_free(lines);
	return rc;
}

int drv_plan_parse_buffer(const char *buf, size_t len, const char *name, struct drv_plan **out,
                          struct drv_plan_errors *errs)
{
	return drv_plan_parse_buffer_env(buf, len, name, NULL, NULL, out, errs);
}

int drv_plan_parse_file(const char *path, struct drv_plan **out, struct drv_plan_errors *errs)
{
	struct drv_yj_lines *lines = NULL;
	struct drv_yj_error err;
	json_t *root = NULL;
	int rc;

	rc = drv_yj_load_file(path, DRV_PLAN_MAX_BYTES, &root, &lines, &err);
	if (rc != DRV_OK) {
		if (err.line > 0)
			drv_plan_errors_add(errs, "%s:%d: %s", path, err.line, err.msg);
		else
			drv_plan_errors_add(errs, "%s: %s", path, err.msg);
		return rc == DRV_EDECODE ? DRV_EINVAL : rc;
	}
	rc = from_tree(root, lines, path, NULL, NULL, out, errs);
	json_decref(root);
	drv_yj_lines_free(lines);
	return rc;
}

const char *drv_plan_redact(const struct drv_plan *p, const char *s)
{
	for (size_t i = 0; s != NULL && i < p->secrets.n; i++) {
		if (p->secrets.v[i][0] != '\0' && strstr(s, p->secrets.v[i]) != NULL)
			return "<secret>";
	}
	return s;
}

/* ---- digests ---- */

bool drv_plan_pinned(const struct drv_plan *p)
{
	for (size_t i = 0; i < p->n_services; i++) {
		if (p->services[i].digest == NULL)
			return false;
	}
	return true;
}

/* An earlier service with the same reference that is already resolved. */
static const char *known_digest(const struct drv_plan *p, size_t upto, const char *image)
{
	for (size_t i = 0; i < upto; i++) {
		if (p->services[i].digest != NULL && strcmp(p->services[i].image, image) == 0)
			return p->services[i].digest;
	}
	return NULL;
}

static int resolve_one(struct drv_plan *p, size_t i, drv_plan_resolve_fn fn, void *arg,
                       struct drv_plan_errors *errs)
{
	struct drv_plan_service *s = &p->services[i];
	char digest[DRV_PLAN_DIGEST_MAX] = "", why[256] = "";
	const char *known = known_digest(p, i, s->image);
	int rc = DRV_OK;

	if (known == NULL) {
		rc = fn(arg, s->image, digest, sizeof(digest), why, sizeof(why));
		if (rc == DRV_OK && (strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 71))
			rc = DRV_EINVAL,
			snprintf(why, sizeof(why), "resolver gave no sha256 digest");
		known = digest;
	}
	if (rc != DRV_OK) {
		char line[32] = "";

		if (s->line > 0)
			snprintf(line, sizeof(line), "%d:", s->line);
		drv_plan_errors_add(errs,
		                    "%s:%s tiers[%zu].services[%zu].image: cannot resolve %s: %s",
		                    p->source, line, s->tier, i - p->tiers[s->tier].first, s->image,
		                    why[0] ? why : drv_strerror(rc));
		return rc;
	}
	s->digest = strdup(known);
	return s->digest == NULL ? DRV_ENOMEM : DRV_OK;
}

int drv_plan_resolve_digests(struct drv_plan *p, drv_plan_resolve_fn fn, void *arg,
                             struct drv_plan_errors *errs)
{
	int rc, first = DRV_OK;

	for (size_t i = 0; i < p->n_services; i++) {
		if (p->services[i].digest != NULL)
			continue;
		rc = resolve_one(p, i, fn, arg, errs);
		if (rc == DRV_ENOMEM)
			return rc;
		if (first == DRV_OK)
			first = rc;
	}
	return first;
}

/* ---- small helpers ---- */

bool drv_plan_hosts_match(const struct drv_plan_hosts *h, const char *agent_id,
                          const struct drv_plan_kv *labels, size_t n_labels)
{
	if (h->n_labels == 0) {
		for (size_t i = 0; i < h->n_ids; i++) {
			if (strcmp(h->ids[i], agent_id) == 0)
				return true;
		}
		return false;
	}
	for (size_t i = 0; i < h->n_labels; i++) {
		bool found = false;

		for (size_t j = 0; j < n_labels && !found; j++)
			found = strcmp(h->labels[i].key, labels[j].key) == 0 &&
			        strcmp(h->labels[i].value, labels[j].value) == 0;
		if (!found)
			return false;
	}
	return true;
}

uint32_t drv_plan_amount_of(struct drv_plan_amount a, uint32_t total, bool up)
{
	uint64_t v;

	if (!a.percent)
		return a.value < total ? a.value : total;
	v = (uint64_t)a.value * total;
	v = up ? (v + 99) / 100 : v / 100;
	return v < total ? (uint32_t)v : total;
}

const char *drv_plan_event_name(enum drv_plan_event ev)
{
	static const char *const names[] = {
	        [DRV_EVENT_STARTED] = "started",
	        [DRV_EVENT_TIER_DONE] = "tier_done",
	        [DRV_EVENT_AWAITING_PROMOTION] = "awaiting_promotion",
	        [DRV_EVENT_PAUSED] = "paused",
	        [DRV_EVENT_RESUMED] = "resumed",
	        [DRV_EVENT_ROLLBACK_STARTED] = "rollback_started",
	        [DRV_EVENT_ROLLED_BACK] = "rolled_back",
	        [DRV_EVENT_SUCCEEDED] = "succeeded",
	        [DRV_EVENT_FAILED] = "failed",
	        [DRV_EVENT_ABORTED] = "aborted",
	        [DRV_EVENT_AWAITING_APPROVAL] = "awaiting_approval",
	};

	return (unsigned)ev < DRV_EVENT_COUNT ? names[ev] : "unknown";
}

/* Indexed by the enums, NULL-terminated for plan_read_enum. */
const char *const plan_strategy_names[] = {
        [DRV_STRATEGY_ROLLING] = "rolling",
        [DRV_STRATEGY_CANARY] = "canary",
        [DRV_STRATEGY_BLUEGREEN] = "blue-green",
        NULL,
};
const char *const plan_rollback_names[] = {
        [DRV_ROLLBACK_DEPLOYMENT] = "deployment",
        [DRV_ROLLBACK_TIER] = "tier",
        [DRV_ROLLBACK_SERVICE] = "service",
        [DRV_ROLLBACK_NONE] = "none",
        NULL,
};

const char *drv_plan_strategy_name(enum drv_plan_strategy_type t)
{
	size_t n = sizeof(plan_strategy_names) / sizeof(plan_strategy_names[0]) - 1;

	return (unsigned)t < n ? plan_strategy_names[t] : "unknown";
}

const char *drv_plan_rollback_name(enum drv_plan_rollback r)
{
	size_t n = sizeof(plan_rollback_names) / sizeof(plan_rollback_names[0]) - 1;

	return (unsigned)r < n ? plan_rollback_names[r] : "unknown";
}

void drv_plan_format_duration(int64_t ms, char *buf, size_t cap)
{
	if (ms != 0 && ms % 3600000 == 0)
		snprintf(buf, cap, "%lldh", (long long)(ms / 3600000));
	else if (ms != 0 && ms % 60000 == 0)
		snprintf(buf, cap, "%lldm", (long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, cap, "%llds", (long long)(ms / 1000));
	else
		snprintf(buf, cap, "%lldms", (long long)ms);
}

const struct drv_plan_service *drv_plan_service(const struct drv_plan *p, const char *name)
{
	for (size_t i = 0; i < p->n_services; i++) {
		if (strcmp(p->services[i].name, name) == 0)
			return &p->services[i];
	}
	return NULL;
}
