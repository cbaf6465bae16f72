/*
 * plan_json.c: a parsed plan back to JSON, normalized: every default
 * written out in each service, durations in their shortest exact unit,
 * images with their digest. Golden tests compare this text, droverd stores
 * it, and parsing it again gives the same plan.
 */
#include <stdio.h>
#include <string.h>

#include "plan.h"

struct jb {
	bool oom;
};

static void put(struct jb *b, json_t *o, const char *key, json_t *v)
{
	if (v == NULL || json_object_set_new(o, key, v) != 0)
		b->oom = true;
}

static void push(struct jb *b, json_t *a, json_t *v)
{
	if (v == NULL || json_array_append_new(a, v) != 0)
		b->oom = true;
}

static json_t *jdur(int64_t ms)
{
	char buf[32];

	drv_plan_format_duration(ms, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *jamount(struct drv_plan_amount a)
{
	char buf[16];

	if (!a.percent)
		return json_integer(a.value);
	snprintf(buf, sizeof(buf), "%u%%", a.value);
	return json_string(buf);
}

static json_t *jargv(struct jb *b, const struct drv_plan_argv *a)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < a->n; i++)
		push(b, arr, json_string(a->v[i]));
	return arr;
}

static json_t *jkv(struct jb *b, const struct drv_plan_kv *kv, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; o != NULL && i < n; i++)
		put(b, o, kv[i].key, json_string(kv[i].value));
	return o;
}

static json_t *jhosts(struct jb *b, const struct drv_plan_hosts *h)
{
	json_t *arr;

	if (h->n_labels > 0)
		return json_pack("{so}", "labels", jkv(b, h->labels, h->n_labels));
	arr = json_array();
	for (size_t i = 0; arr != NULL && i < h->n_ids; i++)
		push(b, arr, json_string(h->ids[i]));
	return arr;
}

/* strategy.sets, in the order written (the first is a first deployment's) */
static json_t *jsets(struct jb *b, const struct drv_plan_strategy *s)
{
	json_t *o = json_object();

	for (size_t i = 0; o != NULL && i < s->n_sets; i++)
		put(b, o, s->sets[i].name, jhosts(b, &s->sets[i].hosts));
	return o;
}

/* user, group, capabilities, keep_setid: only what the plan set (absent
 * means the agent's default user for services, root for hooks). */
static void jprivs(struct jb *b, json_t *o, const struct drv_plan_privs *pr)
{
	if (pr->user != NULL)
		put(b, o, "user", json_string(pr->user));
	if (pr->group != NULL)
		put(b, o, "group", json_string(pr->group));
	if (pr->caps.n > 0)
		put(b, o, "capabilities", jargv(b, &pr->caps));
	if (pr->keep_setid)
		put(b, o, "keep_setid", json_true());
}

/* driver systemd's unit options, defaults filled in (plan_systemd.c). */
static json_t *jsystemd(struct jb *b, const struct drv_plan_systemd *sd)
{
	static const char *const kill[] = {"control-group", "mixed", "process"};
	static const char *const protect[] = {"full", "no", "yes", "strict"};
	json_t *o = json_object();
	char pct[16];

	if (o == NULL)
		return NULL;
	put(b, o, "kill_mode", json_string(kill[sd->kill_mode % 3]));
	put(b, o, "protect_system", json_string(protect[sd->protect_system % 4]));
	put(b, o, "private_tmp", json_boolean(sd->private_tmp != 0));
	if (sd->no_new_privileges >= 0)
		put(b, o, "no_new_privileges", json_boolean(sd->no_new_privileges));
	if (sd->memory_max > 0)
		put(b, o, "memory_max", json_integer((json_int_t)sd->memory_max));
	if (sd->cpu_quota > 0) {
		snprintf(pct, sizeof(pct), "%u%%", sd->cpu_quota);
		put(b, o, "cpu_quota", json_string(pct));
	}
	if (sd->tasks_max > 0)
		put(b, o, "tasks_max", json_integer(sd->tasks_max));
	return o;
}

/* kind: 0 hook, 1 migration, 2 traffic hook */
static json_t *jhook(struct jb *b, const struct drv_plan_hook *h, int kind)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	if (kind != 2)
		put(b, o, "name", json_string(h->name));
	if (h->hosts.n_ids > 0 || h->hosts.n_labels > 0)
		put(b, o, "hosts", jhosts(b, &h->hosts));
	put(b, o, kind == 1 ? "up" : "run", jargv(b, &h->run));
	if (kind == 1)
		put(b, o, "down", jargv(b, &h->down));
	if (h->n_env > 0)
		put(b, o, "env", jkv(b, h->env, h->n_env));
	put(b, o, "timeout", jdur(h->timeout_ms));
	jprivs(b, o, &h->privs);
	return o;
}

static json_t *jhooks(struct jb *b, const struct drv_plan_hook *h, size_t n, int kind)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < n; i++)
		push(b, arr, jhook(b, &h[i], kind));
	return arr;
}

static json_t *jhealth_kind(struct jb *b, const struct drv_plan_health *h)
{
	json_t *o = json_object();
	char status[16];

	if (o == NULL)
		return NULL;
	put(b, o, "host", json_string(h->host));
	put(b, o, "port", json_integer(h->port));
	if (h->kind == DRV_HEALTH_TCP)
		return o;
	put(b, o, "path", json_string(h->path));
	snprintf(status, sizeof(status), "%u-%u", h->status_min, h->status_max);
	put(b, o, "expect_status", json_string(status));
	if (h->body != NULL)
		put(b, o, "body", json_string(h->body));
	return o;
}

static json_t *jhealth(struct jb *b, const struct drv_plan_health *h)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	if (h->kind == DRV_HEALTH_HTTP)
		put(b, o, "http", jhealth_kind(b, h));
	else if (h->kind == DRV_HEALTH_TCP)
		put(b, o, "tcp", jhealth_kind(b, h));
	else if (h->kind == DRV_HEALTH_EXEC)
		put(b, o, "exec", jargv(b, &h->exec));
	put(b, o, "initial_delay", jdur(h->initial_delay_ms));
	put(b, o, "interval", jdur(h->interval_ms));
	put(b, o, "timeout", jdur(h->timeout_ms));
	put(b, o, "healthy_threshold", json_integer(h->healthy_threshold));
	put(b, o, "unhealthy_threshold", json_integer(h->unhealthy_threshold));
	put(b, o, "deadline", jdur(h->deadline_ms));
	return o;
}

static json_t *jtraffic(struct jb *b, const struct drv_plan_traffic *t)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	if (t->kind == DRV_TRAFFIC_BALANCER)
		put(b, o, "balancer", json_string(t->balancer));
	else
		put(b, o, "hook", jhook(b, &t->hook, 2));
	if (t->backend != NULL)
		put(b, o, "backend", json_string(t->backend));
	put(b, o, "server", json_string(t->server));
	put(b, o, "timeout", jdur(t->timeout_ms));
	return o;
}

static void janalysis(struct jb *b, json_t *o, const struct drv_plan_strategy *s)
{
	if (s->metric_url == NULL)
		return;
	put(b, o, "analysis",
	    json_pack("{s{sssfso}}", "http", "url", s->metric_url, "max", s->metric_max, "timeout",
	              jdur(s->metric_timeout_ms)));
}

static json_t *jstrategy(struct jb *b, const struct drv_plan_strategy *s)
{
	json_t *o = json_pack("{ss}", "type", drv_plan_strategy_name(s->type)), *steps;
	char buf[8];

	if (o == NULL)
		return NULL;
	if (s->type == DRV_STRATEGY_ROLLING) {
		put(b, o, "max_unavailable", jamount(s->max_unavailable));
		put(b, o, "min_healthy", jamount(s->min_healthy));
		return o;
	}
	if (s->type == DRV_STRATEGY_CANARY) {
		steps = json_array();
		for (size_t i = 0; steps != NULL && i < s->n_steps; i++) {
			snprintf(buf, sizeof(buf), "%u%%", s->steps[i]);
			push(b, steps, json_string(buf));
		}
		put(b, o, "steps", steps);
		put(b, o, "pause", s->pause_manual ? json_string("manual") : jdur(s->pause_ms));
	} else {
		if (s->green_port != 0)
			put(b, o, "green_port", json_integer(s->green_port));
		put(b, o, "finalize_after", jdur(s->finalize_after_ms));
		if (s->n_sets > 0)
			put(b, o, "sets", jsets(b, s));
	}
	janalysis(b, o, s);
	if (s->traffic.kind != DRV_TRAFFIC_NONE)
		put(b, o, "traffic", jtraffic(b, &s->traffic));
	return o;
}

static json_t *jfailure(struct jb *b, const struct drv_plan_failure *f)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	put(b, o, "max_failed_hosts", jamount(f->max_failed_hosts));
	if (f->per_batch_set)
		put(b, o, "max_failed_per_batch", jamount(f->max_failed_per_batch));
	put(b, o, "rollback", json_string(drv_plan_rollback_name(f->rollback)));
	return o;
}

static json_t *jfiles(struct jb *b, const struct drv_plan_file *f, size_t n)
{
	json_t *o = json_object();
	char mode[8];

	for (size_t i = 0; o != NULL && i < n; i++) {
		snprintf(mode, sizeof(mode), "%04o", f[i].mode);
		put(b, o, f[i].path, json_pack("{ssss}", "content", f[i].content, "mode", mode));
	}
	return o;
}

static json_t *jimage(const struct drv_plan_service *s)
{
	char buf[1024];

	if (s->digest == NULL)
		return json_string(s->image);
	snprintf(buf, sizeof(buf), "%s@%s", s->image, s->digest);
	return json_string(buf);
}

static json_t *jcheck(struct jb *b, const struct drv_plan_check *k)
{
	char cond[96];
	json_t *o;

	drv_plan_cond_format(k->cond, k->a, k->b, cond, sizeof(cond));
	o = json_pack("{ssssss}", "name", k->name, "query", k->query, "condition", cond);
	if (o == NULL)
		return NULL;
	put(b, o, "interval", jdur(k->interval_ms));
	put(b, o, "failures", json_integer(k->failures));
	put(b, o, "on_empty", json_string(drv_plan_outcome_name(k->on_empty)));
	put(b, o, "on_error", json_string(drv_plan_outcome_name(k->on_error)));
	return o;
}

static json_t *jmetric(struct jb *b, const struct drv_plan_metric *m)
{
	json_t *o = json_pack("{ssss}", "name", m->k.name, "query", m->k.query);
	char pct[16];

	if (o == NULL)
		return NULL;
	if (m->unit != NULL)
		put(b, o, "unit", json_string(m->unit));
	put(b, o, "better", json_string(m->higher_better ? "higher" : "lower"));
	if (m->regression > 0) {
		snprintf(pct, sizeof(pct), "%u%%", m->regression);
		put(b, o, "regression", json_string(pct));
	}
	put(b, o, "interval", jdur(m->k.interval_ms));
	put(b, o, "failures", json_integer(m->k.failures));
	return o;
}

static void jprom(struct jb *b, json_t *o, const struct drv_plan_analysis *an)
{
	json_t *checks, *pr, *base;

	if (an->server == NULL)
		return;
	pr = json_pack("{ss}", "server", an->server);
	if (an->n_checks > 0) {
		checks = json_array();
		for (size_t i = 0; checks != NULL && i < an->n_checks; i++)
			push(b, checks, jcheck(b, &an->checks[i]));
		put(b, pr, "checks", checks);
	}
	if (an->n_baseline > 0) {
		base = json_array();
		for (size_t i = 0; base != NULL && i < an->n_baseline; i++)
			push(b, base, jmetric(b, &an->baseline[i]));
		put(b, pr, "baseline", base);
	}
	put(b, o, "analysis", json_pack("{so}", "prometheus", pr));
}

static void jalerts(struct jb *b, json_t *o, const struct drv_plan_service *s)
{
	json_t *rules;

	if (s->alert_precheck)
		put(b, o, "alert_precheck", json_true());
	if (s->n_alert_rules == 0)
		return;
	rules = json_array();
	for (size_t i = 0; rules != NULL && i < s->n_alert_rules; i++)
		push(b, rules, jkv(b, s->alert_rules[i].labels, s->alert_rules[i].n));
	put(b, o, "rollback_on_alerts", rules);
}

static json_t *jservice(struct jb *b, const struct drv_plan_service *s)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	put(b, o, "name", json_string(s->name));
	put(b, o, "image", jimage(s));
	put(b, o, "version", json_string(s->version));
	if (s->hosts.n_ids > 0 || s->hosts.n_labels > 0) /* none: strategy.sets says */
		put(b, o, "hosts", jhosts(b, &s->hosts));
	put(b, o, "driver",
	    json_string(s->driver == DRV_DRIVER_EXEC        ? "exec"
	                : s->driver == DRV_DRIVER_CONTAINER ? "container"
	                                                    : "systemd"));
	if (s->driver == DRV_DRIVER_SYSTEMD)
		put(b, o, "systemd", jsystemd(b, &s->systemd));
	put(b, o, "isolation", json_string(s->chroot ? "chroot" : "none"));
	if (s->reload_on_config)
		put(b, o, "on_config", json_string("reload"));
	jprivs(b, o, &s->privs);
	if (s->command.n > 0)
		put(b, o, "command", jargv(b, &s->command));
	if (s->n_env > 0)
		put(b, o, "env", jkv(b, s->env, s->n_env));
	if (s->n_files > 0)
		put(b, o, "files", jfiles(b, s->files, s->n_files));
	if (s->port != 0)
		put(b, o, "port", json_integer(s->port));
	put(b, o, "stop_grace", jdur(s->stop_grace_ms));
	put(b, o, "health", jhealth(b, &s->health));
	put(b, o, "strategy", jstrategy(b, &s->strategy));
	put(b, o, "failure", jfailure(b, &s->failure));
	jprom(b, o, &s->analysis);
	jalerts(b, o, s);
	return o;
}

static json_t *jtiers(struct jb *b, const struct drv_plan *p)
{
	json_t *arr = json_array(), *t, *svcs;

	for (size_t i = 0; arr != NULL && i < p->n_tiers; i++) {
		svcs = json_array();
		for (size_t j = 0; svcs != NULL && j < p->tiers[i].n; j++)
			push(b, svcs, jservice(b, &p->services[p->tiers[i].first + j]));
		t = json_pack("{ssso}", "name", p->tiers[i].name, "services", svcs);
		push(b, arr, t);
	}
	return arr;
}

static json_t *jnotify(struct jb *b, const struct drv_plan *p)
{
	json_t *arr = json_array(), *ev;

	for (size_t i = 0; arr != NULL && i < p->n_notify; i++) {
		ev = json_array();
		for (int k = 0; ev != NULL && k < DRV_EVENT_COUNT; k++) {
			if (p->notify[i].events & (1u << k))
				push(b, ev, json_string(drv_plan_event_name(k)));
		}
		push(b, arr, json_pack("{ssso}", "webhook", p->notify[i].webhook, "events", ev));
	}
	return arr;
}

json_t *drv_plan_to_json(const struct drv_plan *p)
{
	struct jb b = {false};
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	put(&b, o, "deployment", json_string(p->deployment));
	put(&b, o, "version", json_string(p->version));
	if (p->environment != NULL)
		put(&b, o, "environment", json_string(p->environment));
	if (p->n_vars > 0)
		put(&b, o, "vars", jkv(&b, p->vars, p->n_vars));
	put(&b, o, "defaults", json_pack("{so}", "prestage_timeout", jdur(p->prestage_timeout_ms)));
	if (p->bake_ms > 0)
		put(&b, o, "bake", jdur(p->bake_ms));
	if (p->queue)
		put(&b, o, "queue", json_true());
	if (p->approvers > 0) {
		json_t *a = json_pack("{s:i, s:s, s:o}", "approvers", p->approvers, "role",
		                      p->approver_role, "timeout", jdur(p->approval_timeout_ms));
		char pct[8];

		/* only when given: a plan without them keeps its hash */
		if (a != NULL && p->approval_at_step > 0) {
			snprintf(pct, sizeof(pct), "%u%%", p->approval_at_step);
			json_object_set_new(a, "at_canary_step", json_string(pct));
			json_object_set_new(a, "before", json_boolean(p->approval_before));
		}
		put(&b, o, "approval", a);
	}
	if (p->has_budget)
		put(&b, o, "failure",
		    json_pack("{so}", "max_failed_hosts", jamount(p->max_failed_hosts)));
	if (p->n_pre > 0)
		put(&b, o, "pre", jhooks(&b, p->pre, p->n_pre, 0));
	if (p->n_migrations > 0)
		put(&b, o, "migrations", jhooks(&b, p->migrations, p->n_migrations, 1));
	put(&b, o, "tiers", jtiers(&b, p));
	if (p->n_post > 0)
		put(&b, o, "post", jhooks(&b, p->post, p->n_post, 0));
	if (p->n_notify > 0)
		put(&b, o, "notify", jnotify(&b, p));
	if (b.oom) {
		json_decref(o);
		return NULL;
	}
	return o;
}
