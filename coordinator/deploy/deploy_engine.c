/* deploy_engine.c: the engine thread, its queue, API commands and resume. */
#include "deploy_engine.h"
#include "deploy_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "deploy_drift.h"
#include "deploy_hosts.h"
#include "err.h"
#include "log.h"

enum cmd_kind {
	CMD_SUBMIT,
	CMD_GET,
	CMD_LIST,
	CMD_VERB,
	CMD_BASELINE,
	CMD_ALERTS,
	CMD_RELEASE,
	CMD_RELEASE_OK,
	CMD_DECIDE,
	CMD_LIVE_SETS
};

struct cmd {
	enum cmd_kind kind;
	const char *id;
	int limit;
	enum deploy_verb verb;
	const char *actor;
	struct drv_plan *plan;
	const json_t *targets;
	const json_t *alerts;      /* CMD_ALERTS: the webhook payload */
	const char *promoted_from; /* CMD_SUBMIT: the deployment a promotion copies, or NULL */
	const char *env;           /* CMD_RELEASE_OK */
	bool window_override;      /* CMD_SUBMIT: an admin overrode the windows */
	bool approve;              /* CMD_DECIDE: approve (or deny) */
	const char *comment;       /* CMD_DECIDE */
	json_t *out;
	int rc;
	char why[DRV_SEQ_TEXT_MAX];
	struct deploy_busy busy;
	bool done;
	pthread_cond_t cond;
};

const char *deploy_verb_name(enum deploy_verb v)
{
	static const char *const names[] = {
	        [DEPLOY_PAUSE] = "pause",       [DEPLOY_RESUME] = "resume",
	        [DEPLOY_PROMOTE] = "promote",   [DEPLOY_ABORT] = "abort",
	        [DEPLOY_ROLLBACK] = "rollback",
	};

	return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "unknown";
}

/* ---- reports from the core (core lock held: copy and queue only) ---- */

static char *dup_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

static bool map_result(const Drover__Report *r, enum drv_seq_result *out)
{
	switch (r->result) {
	case DROVER__STEP_RESULT__STEP_SUCCEEDED: *out = DRV_SEQ_R_OK; return true;
	case DROVER__STEP_RESULT__STEP_FAILED: *out = DRV_SEQ_R_FAILED; return true;
	case DROVER__STEP_RESULT__STEP_ACCEPTED:
	case DROVER__STEP_RESULT__STEP_RUNNING: *out = DRV_SEQ_R_PROGRESS; return true;
	case DROVER__STEP_RESULT__STEP_HEALTH:
		if (r->health == NULL || r->service == NULL || r->service[0] == '\0')
			return false;
		*out = r->health->healthy ? DRV_SEQ_R_HEALTH_UP : DRV_SEQ_R_HEALTH_DOWN;
		return true;
	default: return false;
	}
}

static void on_report(void *arg, const char *agent_id, const Drover__Report *r)
{
	struct deploy_engine *e = arg;
	enum drv_seq_result res;
	struct msg *m;

	if (!map_result(r, &res) || (res != DRV_SEQ_R_HEALTH_UP && res != DRV_SEQ_R_HEALTH_DOWN &&
	                             (r->step_id == NULL || r->step_id[0] == '\0')))
		return;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return;
	m->kind = MSG_REPORT;
	snprintf(m->agent, sizeof(m->agent), "%s", agent_id);
	m->id = dup_or_null(r->step_id);
	m->service = dup_or_null(r->service);
	m->message = dup_or_null(r->message);
	m->output_tail = dup_or_null(r->output_tail);
	m->result = res;
	m->exit_code = r->exit_code;
	deploy_post(e, m);
}

/* ---- deployments ---- */

struct dep *deploy_engine_find(struct deploy_engine *e, const char *id)
{
	for (struct dep *d = e->deps; d != NULL; d = d->next) {
		if (strcmp(d->row.id, id) == 0)
			return d;
	}
	return NULL;
}

/* The deployment a step id belongs to: "<deployment>:...". */
static struct dep *dep_of_step(struct deploy_engine *e, const char *step)
{
	struct drv_seq_id sid;
	char id[DRV_SEQ_ID_MAX + 1];

	if (drv_seq_id_parse(step, &sid) != DRV_OK)
		return NULL;
	memcpy(id, step, sid.dep_len);
	id[sid.dep_len] = '\0';
	return deploy_engine_find(e, id);
}

static void feed_report(struct deploy_engine *e, struct msg *m)
{
	struct drv_seq_event ev = {.kind = DRV_SEQ_EV_REPORT,
	                           .agent = m->agent,
	                           .id = m->id,
	                           .service = m->service,
	                           .result = m->result,
	                           .message = m->message};
	struct dep *d;

	if (m->id == NULL) { /* a health transition: every deployment with that host */
		for (d = e->deps; d != NULL; d = d->next) {
			if (d->seq != NULL && !d->ended)
				deploy_run_event(e, d, &ev);
		}
		return;
	}
	d = dep_of_step(e, m->id);
	if (d == NULL || d->seq == NULL || d->ended)
		return;
	deploy_track_report(e, d, &ev, m->exit_code, m->output_tail, drv_wall_ms());
	deploy_run_event(e, d, &ev);
}

static void feed_op(struct deploy_engine *e, struct msg *m)
{
	struct drv_seq_event ev = {.kind = m->op,
	                           .id = m->id,
	                           .result = m->result,
	                           .value = m->value,
	                           .message = m->message};
	struct dep *d = deploy_engine_find(e, m->dep);

	if (d == NULL || d->seq == NULL || d->ended)
		return;
	if (m->data != NULL) {
		deploy_event(d, "analysis", NULL, json_incref(m->data));
		if (json_is_true(json_object_get(m->data, "baseline")))
			deploy_view_note_metric(d, m->data);
		else
			deploy_view_note_check(d, m->data);
	}
	deploy_run_event(e, d, &ev);
}

/* Drop deployments that ended (they live on in the database). */
static void reap(struct deploy_engine *e)
{
	struct dep **pp = &e->deps;

	while (*pp != NULL) {
		struct dep *d = *pp;

		if (d->ended) {
			*pp = d->next;
			deploy_dep_free(d);
		} else {
			pp = &d->next;
		}
	}
}

/* ---- commands ---- */

static json_t *row_view(const struct deploy_row *r)
{
	json_t *v = r->view ? json_loads(r->view, 0, NULL) : NULL;

	if (v != NULL)
		return v;
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:[], s:[]}",
	                 "id", r->id, "deployment", r->name, "version", r->version, "state",
	                 r->state, "phase", r->phase, "reason", r->reason, "actor", r->actor,
	                 "created_ms", (json_int_t)r->created_ms, "updated_ms",
	                 (json_int_t)r->updated_ms, "finished_ms", (json_int_t)r->finished_ms,
	                 "failed_hosts", (json_int_t)r->failed_hosts, "max_failed_hosts",
	                 (json_int_t)r->max_failed_hosts, "tiers", "hooks");
}

static int cmd_get(struct deploy_engine *e, struct cmd *c)
{
	struct dep *d = deploy_engine_find(e, c->id);
	struct deploy_row r;
	int rc;

	if (d != NULL) {
		c->out = deploy_view_object(d);
		return c->out ? DRV_OK : DRV_ENOMEM;
	}
	rc = deploy_store_get(e->cfg.db, c->id, &r);
	if (rc != DRV_OK)
		return rc;
	c->out = row_view(&r);
	deploy_row_clear(&r);
	return c->out ? DRV_OK : DRV_ENOMEM;
}

static int cmd_list(struct deploy_engine *e, struct cmd *c)
{
	json_t *arr;
	int rc = deploy_store_list(e->cfg.db, c->limit, &arr);

	if (rc != DRV_OK)
		return rc;
	c->out = json_pack("{s:o}", "deployments", arr);
	return c->out ? DRV_OK : DRV_ENOMEM;
}

static const enum drv_seq_event_kind verb_events[] = {DRV_SEQ_EV_PAUSE, DRV_SEQ_EV_RESUME,
                                                      DRV_SEQ_EV_PROMOTE, DRV_SEQ_EV_ABORT,
                                                      DRV_SEQ_EV_ROLLBACK};

static int cmd_verb(struct deploy_engine *e, struct cmd *c)
{
	struct dep *d = deploy_engine_find(e, c->id);
	struct drv_seq_event ev = {.kind = verb_events[c->verb]};
	struct deploy_row r;
	int rc;

	if (d != NULL && !d->ended && d->seq == NULL && c->verb == DEPLOY_ABORT) {
		snprintf(c->why, sizeof(c->why), "aborted by %s while %s",
		         c->actor && c->actor[0] ? c->actor : "an operator", d->row.state);
		deploy_run_end(e, d, "aborted", c->why);
		c->out = deploy_view_object(d);
		return c->out ? DRV_OK : DRV_ENOMEM;
	}
	if (d == NULL || d->ended || d->seq == NULL) {
		if (d == NULL && deploy_store_get(e->cfg.db, c->id, &r) != DRV_OK)
			return DRV_ENOENT;
		if (d == NULL)
			deploy_row_clear(&r);
		snprintf(c->why, sizeof(c->why), "deployment %s is %s", c->id,
		         d == NULL ? "finished" : d->row.state);
		return DRV_ESTATE;
	}
	/* The sequencer takes a repeated pause or resume as a no-op; the API
	 * says it does not apply (docs/api.md). */
	if ((c->verb == DEPLOY_RESUME || c->verb == DEPLOY_PAUSE) &&
	    drv_seq_paused(d->seq) == (c->verb == DEPLOY_PAUSE))
		rc = DRV_ESTATE;
	else
		rc = deploy_run_event(e, d, &ev);
	if (rc == DRV_ESTATE) {
		snprintf(c->why, sizeof(c->why), "%s does not apply to deployment %s (%s)",
		         deploy_verb_name(c->verb), c->id, deploy_view_state(d));
		return rc;
	}
	if (rc != DRV_OK)
		return rc;
	if (c->verb == DEPLOY_RESUME)
		deploy_gate_resumed(d);
	deploy_run_flush(e, d);
	drv_info("deploy", "operator command", "deployment=%s verb=%s actor=%s", c->id,
	         deploy_verb_name(c->verb), c->actor ? c->actor : "");
	c->out = deploy_view_object(d);
	return c->out ? DRV_OK : DRV_ENOMEM;
}

struct dep *deploy_engine_busy(struct deploy_engine *e, const struct drv_plan *plan,
                               const json_t *targets, const struct dep *self, bool started_only,
                               struct deploy_busy *b)
{
	memset(b, 0, sizeof(*b));
	for (struct dep *d = e->deps; d != NULL; d = d->next) {
		if (d == self || d->ended || (started_only && d->seq == NULL))
			continue;
		if (strcmp(d->row.name, plan->deployment) == 0 ||
		    (d->plan != NULL &&
		     deploy_hosts_overlap(plan, targets, d->plan,
		                          json_object_get(d->extra, "targets"), b->service,
		                          sizeof(b->service), b->agent, sizeof(b->agent)))) {
			snprintf(b->id, sizeof(b->id), "%s", d->row.id);
			snprintf(b->name, sizeof(b->name), "%s", d->row.name);
			return d;
		}
	}
	return NULL;
}

/* The release of the plan (plan.h) and its id into the row; a plan read
 * from JSON (converge) has none. */
static int new_release(struct dep *d)
{
	json_t *rel = drv_plan_release(d->plan);
	int rc = DRV_OK;

	if (rel == NULL)
		return d->plan->tmpl != NULL && drv_plan_pinned(d->plan) ? DRV_ENOMEM : DRV_OK;
	rc = drv_plan_release_id(rel, d->row.release_id);
	if (rc == DRV_OK && (d->row.release = json_dumps(rel, JSON_COMPACT)) == NULL)
		rc = DRV_ENOMEM;
	json_decref(rel);
	return rc;
}

static int new_dep(struct deploy_engine *e, struct cmd *c, struct dep **out)
{
	struct dep *d = calloc(1, sizeof(*d));
	struct drv_plan *p = c->plan;
	int64_t now = drv_wall_ms();

	if (d == NULL)
		return DRV_ENOMEM;
	d->extra = json_pack("{s:O, s:{}, s:{}, s:{}}", "targets", c->targets, "hosts", "hooks",
	                     "steps");
	d->events = json_array();
	if (d->extra == NULL || d->events == NULL ||
	    deploy_store_new_id(e->cfg.db, d->row.id) != DRV_OK) {
		deploy_dep_free(d);
		return DRV_ENOMEM;
	}
	snprintf(d->row.name, sizeof(d->row.name), "%s", p->deployment);
	snprintf(d->row.version, sizeof(d->row.version), "%s", p->version);
	snprintf(d->row.actor, sizeof(d->row.actor), "%s", c->actor ? c->actor : "");
	snprintf(d->row.environment, sizeof(d->row.environment), "%s",
	         p->environment ? p->environment : "");
	snprintf(d->row.promoted_from, sizeof(d->row.promoted_from), "%s",
	         c->promoted_from ? c->promoted_from : "");
	d->plan = p;
	if (new_release(d) != DRV_OK) {
		d->plan = NULL; /* the caller keeps it */
		deploy_dep_free(d);
		return DRV_ENOMEM;
	}
	d->row.created_ms = d->row.updated_ms = now;
	deploy_view_summary(d, NULL, now);
	*out = d;
	return DRV_OK;
}

static int insert_dep(struct deploy_engine *e, struct dep *d)
{
	json_t *plan = drv_plan_to_json(d->plan);
	int rc = DRV_ENOMEM;

	d->row.plan = plan ? json_dumps(plan, JSON_COMPACT) : NULL;
	d->row.extra = deploy_run_dump_extra(d);
	d->row.targets = json_dumps(json_object_get(d->extra, "targets"), JSON_COMPACT);
	deploy_event(d, "deployment_created", NULL,
	             json_pack("{s:s, s:s, s:s}", "deployment", d->row.name, "version",
	                       d->row.version, "actor", d->row.actor));
	if (d->row.plan != NULL && d->row.extra != NULL && d->row.targets != NULL)
		rc = deploy_store_insert(e->cfg.db, &d->row, d->events);
	json_decref(plan);
	free(d->row.plan);
	free(d->row.extra);
	free(d->row.targets);
	free(d->row.release); /* kept in the database only */
	d->row.plan = d->row.extra = d->row.release = d->row.targets = NULL;
	json_array_clear(d->events);
	return rc;
}

/* A new deployment: refused when another one stands in its way (unless its
 * plan says queue: it waits), then it waits at its gate or starts. */
static int cmd_submit(struct deploy_engine *e, struct cmd *c, struct dep **started)
{
	struct dep *d = deploy_engine_busy(e, c->plan, c->targets, NULL, false, &c->busy);
	bool ready;
	int rc;

	if (d != NULL && !c->plan->queue)
		return DRV_EEXIST;
	if (deploy_alerts_precheck(e, c->plan, c->why, sizeof(c->why)) != DRV_OK)
		return DRV_EPERM;
	rc = new_dep(e, c, &d);
	if (rc == DRV_OK) {
		ready = deploy_gate_init(e, d, c->window_override, c->busy.id[0] ? &c->busy : NULL,
		                         d->row.created_ms);
		rc = insert_dep(e, d);
	}
	if (rc != DRV_OK) {
		if (d != NULL)
			d->plan = NULL; /* the caller keeps it */
		deploy_dep_free(d);
		return rc;
	}
	c->plan = NULL;
	drv_gauge_add(e->m.by_state, 1, d->row.state);
	c->out = deploy_view_object(d);
	d->next = e->deps;
	e->deps = d;
	drv_info("deploy", "deployment created",
	         "deployment=%s name=%s version=%s actor=%s state=%s", d->row.id, d->row.name,
	         d->row.version, d->row.actor, d->row.state);
	if (ready)
		*started = d;
	else if (strcmp(d->row.state, "awaiting_approval") == 0)
		deploy_run_notify(e, d, DRV_EVENT_AWAITING_APPROVAL, d->row.reason);
	return DRV_OK;
}

static int cmd_decide(struct deploy_engine *e, struct cmd *c)
{
	struct dep *d = deploy_engine_find(e, c->id);
	struct deploy_row r;
	int rc;

	if (d == NULL) {
		if (deploy_store_get(e->cfg.db, c->id, &r) != DRV_OK)
			return DRV_ENOENT;
		snprintf(c->why, sizeof(c->why), "deployment %s is %s: nothing to %s", c->id,
		         r.state, c->approve ? "approve" : "deny");
		deploy_row_clear(&r);
		return DRV_ESTATE;
	}
	rc = deploy_gate_decide(e, d, c->actor ? c->actor : "", c->approve,
	                        c->comment ? c->comment : "", c->why, sizeof(c->why));
	if (rc != DRV_OK)
		return rc;
	drv_info("deploy", c->approve ? "deployment approved" : "deployment denied",
	         "deployment=%s actor=%s state=%s", c->id, c->actor ? c->actor : "", d->row.state);
	c->out = deploy_view_object(d);
	return c->out ? DRV_OK : DRV_ENOMEM;
}

/* What a promotion needs of a deployment: its state, environment and
 * release (deploy_engine.h). */
static int cmd_release(struct deploy_engine *e, struct cmd *c)
{
	struct deploy_row r;
	json_t *rel;
	int rc = deploy_store_get(e->cfg.db, c->id, &r);

	if (rc != DRV_OK)
		return rc;
	rel = r.release ? json_loads(r.release, 0, NULL) : json_null();
	c->out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o*}", "id", r.id, "deployment", r.name,
	                   "version", r.version, "state", r.state, "environment", r.environment,
	                   "release_id", r.release_id, "release", rel);
	deploy_row_clear(&r);
	return c->out ? DRV_OK : DRV_ENOMEM;
}

static void reply(struct deploy_engine *e, struct cmd *c, int rc)
{
	pthread_mutex_lock(&e->mu);
	c->rc = rc;
	c->done = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&e->mu);
}

static void run_cmd(struct deploy_engine *e, struct cmd *c)
{
	struct dep *start = NULL;
	int rc;

	switch (c->kind) {
	case CMD_SUBMIT: rc = cmd_submit(e, c, &start); break;
	case CMD_GET: rc = cmd_get(e, c); break;
	case CMD_LIST: rc = cmd_list(e, c); break;
	case CMD_VERB: rc = cmd_verb(e, c); break;
	case CMD_BASELINE: rc = deploy_drift_baseline(e->cfg.db, &c->out); break;
	case CMD_ALERTS: rc = deploy_alerts_take(e, c->alerts, &c->limit); break;
	case CMD_DECIDE: rc = cmd_decide(e, c); break;
	case CMD_RELEASE: rc = cmd_release(e, c); break;
	case CMD_RELEASE_OK:
		rc = deploy_store_release_succeeded(e->cfg.db, c->env, c->id, c->why);
		break;
	case CMD_LIVE_SETS: rc = deploy_run_live_sets(e, c->plan, &c->out); break;
	default: rc = DRV_EINVAL; break;
	}
	reply(e, c, rc); /* c is the caller's from here on */
	if (start != NULL && deploy_run_start(e, start) != DRV_OK)
		drv_error("deploy", "cannot start the deployment", "deployment=%s", start->row.id);
	if (start != NULL)
		deploy_run_flush(e, start);
}

/* Save and act on everything collected since the last flush. */
/* Save every deployment that changed in one transaction (one commit: on
 * PostgreSQL one WAL flush and one fence check for the whole turn), then
 * perform what each one decided. all: every one that changed (a command,
 * the end); else those whose save may not wait (DEPLOY_SAVE_DEFER_MS).
 * When that batch cannot be saved, each deployment is saved on its own, so
 * that one that cannot be saved does not hold up the others. */
static void flush_all(struct deploy_engine *e, bool all)
{
	int64_t now = drv_wall_ms(), at;
	struct dep *d;
	size_t n = 0;
	int rc;

	for (d = e->deps; d != NULL; d = d->next) {
		d->flushing =
		        (all || deploy_run_save_due(d, now, &at)) && deploy_run_flush_prep(e, d);
		n += d->flushing;
	}
	if (n == 0)
		return;
	rc = n > 1 ? deploy_store_begin(e->cfg.db) : DRV_EINVAL;
	for (d = e->deps; rc == DRV_OK && d != NULL; d = d->next) {
		if (d->flushing)
			rc = deploy_run_flush_write(e, d);
	}
	if (n > 1 && rc == DRV_OK)
		rc = deploy_store_commit(e->cfg.db);
	else if (n > 1)
		deploy_store_rollback(e->cfg.db);
	for (d = e->deps; d != NULL; d = d->next) {
		if (!d->flushing)
			continue;
		d->flushing = false;
		deploy_run_flush_done(e, d, rc == DRV_OK ? DRV_OK : deploy_run_flush_write(e, d));
	}
}

/* Post a command and wait for the engine thread to answer it. */
static int call(struct deploy_engine *e, struct cmd *c)
{
	struct msg *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return DRV_ENOMEM;
	pthread_cond_init(&c->cond, NULL);
	m->kind = MSG_CMD;
	m->cmd = c;
	pthread_mutex_lock(&e->mu);
	if (e->stopping) {
		pthread_mutex_unlock(&e->mu);
		free(m);
		pthread_cond_destroy(&c->cond);
		return DRV_ECLOSED;
	}
	pthread_mutex_unlock(&e->mu);
	deploy_post(e, m);
	pthread_mutex_lock(&e->mu);
	while (!c->done)
		pthread_cond_wait(&c->cond, &e->mu);
	pthread_mutex_unlock(&e->mu);
	pthread_cond_destroy(&c->cond);
	return c->rc;
}

int deploy_engine_submit(struct deploy_engine *e, struct drv_plan *plan, const json_t *targets,
                         const char *actor, json_t **obj, struct deploy_busy *busy)
{
	return deploy_engine_submit_opts(e, plan, targets, actor, NULL, false, obj, busy);
}

int deploy_engine_submit_from(struct deploy_engine *e, struct drv_plan *plan, const json_t *targets,
                              const char *actor, const char *promoted_from, json_t **obj,
                              struct deploy_busy *busy)
{
	return deploy_engine_submit_opts(e, plan, targets, actor, promoted_from, false, obj, busy);
}
int deploy_engine_release(struct deploy_engine *e, const char *id, json_t **obj)
{
	struct cmd c = {.kind = CMD_RELEASE, .id = id};
	int rc = call(e, &c);

	if (rc == DRV_OK)
		*obj = c.out;
	return rc;
}

int deploy_engine_release_succeeded(struct deploy_engine *e, const char *env,
                                    const char *release_id, char id_out[DRV_SEQ_ID_MAX + 1])
{
	struct cmd c = {.kind = CMD_RELEASE_OK, .id = release_id, .env = env};
	int rc = call(e, &c);

	if (rc == DRV_OK)
		snprintf(id_out, DRV_SEQ_ID_MAX + 1, "%.*s", DRV_SEQ_ID_MAX, c.why);
	return rc;
}

int deploy_engine_live_sets(struct deploy_engine *e, const struct drv_plan *plan, json_t **out)
{
	struct cmd c = {.kind = CMD_LIVE_SETS, .plan = (struct drv_plan *)plan};
	int rc = call(e, &c);

	if (rc == DRV_OK)
		*out = c.out;
	return rc;
}

int deploy_engine_submit_opts(struct deploy_engine *e, struct drv_plan *plan, const json_t *targets,
                              const char *actor, const char *promoted_from, bool window_override,
                              json_t **obj, struct deploy_busy *busy)
{
	struct cmd c = {.kind = CMD_SUBMIT,
	                .plan = plan,
	                .targets = targets,
	                .actor = actor,
	                .promoted_from = promoted_from,
	                .window_override = window_override};
	int rc = call(e, &c);

	if (rc == DRV_EEXIST && busy != NULL)
		*busy = c.busy;
	if (rc == DRV_EPERM && busy != NULL) /* alerts fire: busy->why says which */
		snprintf(busy->why, sizeof(busy->why), "%s", c.why);
	if (rc == DRV_OK)
		*obj = c.out;
	return rc;
}

int deploy_engine_decide(struct deploy_engine *e, const char *id, const char *actor, bool approve,
                         const char *comment, json_t **obj, char why[DRV_SEQ_TEXT_MAX])
{
	struct cmd c = {.kind = CMD_DECIDE,
	                .id = id,
	                .actor = actor,
	                .approve = approve,
	                .comment = comment};
	int rc = call(e, &c);

	if ((rc == DRV_ESTATE || rc == DRV_EPERM || rc == DRV_EEXIST) && why != NULL)
		snprintf(why, DRV_SEQ_TEXT_MAX, "%s", c.why);
	if (rc == DRV_OK)
		*obj = c.out;
	return rc;
}

int deploy_engine_alerts(struct deploy_engine *e, const json_t *payload, int *matched)
{
	struct cmd c = {.kind = CMD_ALERTS, .alerts = payload};
	int rc = call(e, &c);

	if (rc == DRV_OK)
		*matched = c.limit;
	return rc;
}

int deploy_engine_get(struct deploy_engine *e, const char *id, json_t **obj)
{
	struct cmd c = {.kind = CMD_GET, .id = id};
	int rc = call(e, &c);

	if (rc == DRV_OK)
		*obj = c.out;
	return rc;
}

int deploy_engine_baseline(struct deploy_engine *e, json_t **obj)
{
	struct cmd c = {.kind = CMD_BASELINE};
	int rc = call(e, &c);

	if (rc == DRV_OK)
		*obj = c.out;
	return rc;
}

int deploy_engine_list(struct deploy_engine *e, int limit, json_t **obj)
{
	struct cmd c = {.kind = CMD_LIST, .limit = limit};
	int rc = call(e, &c);

	if (rc == DRV_OK)
		*obj = c.out;
	return rc;
}

int deploy_engine_verb(struct deploy_engine *e, const char *id, enum deploy_verb verb,
                       const char *actor, json_t **obj, char why[DRV_SEQ_TEXT_MAX])
{
	struct cmd c = {.kind = CMD_VERB, .id = id, .verb = verb, .actor = actor};
	int rc;

	if ((unsigned)verb > DEPLOY_ROLLBACK)
		return DRV_EINVAL;
	rc = call(e, &c);
	if (rc == DRV_ESTATE && why != NULL)
		snprintf(why, DRV_SEQ_TEXT_MAX, "%s", c.why);
	if (rc == DRV_OK)
		*obj = c.out;
	return rc;
}

/* ---- the thread ---- */

static void dispatch_msg(struct deploy_engine *e, struct msg *m)
{
	switch (m->kind) {
	case MSG_REPORT: feed_report(e, m); break;
	case MSG_OP: feed_op(e, m); break;
	case MSG_CMD:
		flush_all(e, true); /* a command sees (and acts on) saved state */
		run_cmd(e, m->cmd);
		break;
	}
	deploy_msg_free(m);
}

static int64_t next_deadline(struct deploy_engine *e)
{
	int64_t next = INT64_MAX;

	for (struct dep *d = e->deps; d != NULL; d = d->next) {
		int64_t t = d->seq != NULL && !d->ended ? drv_seq_next_deadline(d->seq) : INT64_MAX;
		int64_t save_at;

		next = t < next ? t : next;
		if (deploy_run_save_due(d, drv_wall_ms(), &save_at))
			save_at = 0; /* (not left over after a turn) */
		next = save_at < next ? save_at : next;
	}
	return next;
}

static void ticks(struct deploy_engine *e)
{
	int64_t now = drv_wall_ms();

	for (struct dep *d = e->deps; d != NULL; d = d->next) {
		if (d->seq != NULL && !d->ended && drv_seq_next_deadline(d->seq) <= now)
			deploy_run_tick(e, d, now);
	}
}

/* Wait for a message or the next deadline (at most DEPLOY_TICK_MAX_MS, so a
 * change of the wall clock is noticed). Called with e->mu held. */
static void wait_work(struct deploy_engine *e, int64_t deadline)
{
	int64_t left = deadline - drv_wall_ms();
	struct timespec ts;

	if (left <= 0)
		return;
	if (left > DEPLOY_TICK_MAX_MS)
		left = DEPLOY_TICK_MAX_MS;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (left % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&e->wake, &e->mu, &ts);
}

/* Handle what is queued (at most DEPLOY_BATCH_MAX messages), then save once
 * per deployment and act. Returns false when stopping and nothing is left. */
static bool turn(struct deploy_engine *e)
{
	int64_t deadline = next_deadline(e);
	size_t n = 0;
	struct msg *m;

	pthread_mutex_lock(&e->mu);
	if (e->head == NULL && !e->stopping)
		wait_work(e, deadline);
	if (e->head == NULL && e->stopping) {
		pthread_mutex_unlock(&e->mu);
		return false;
	}
	while (n++ < DEPLOY_BATCH_MAX && (m = deploy_take(e)) != NULL) {
		pthread_mutex_unlock(&e->mu);
		dispatch_msg(e, m);
		pthread_mutex_lock(&e->mu);
	}
	pthread_mutex_unlock(&e->mu);
	ticks(e);
	deploy_gate_tick(e, drv_wall_ms());
	flush_all(e, false);
	reap(e);
	return true;
}

static void *engine_main(void *arg)
{
	struct deploy_engine *e = arg;

	while (turn(e))
		;
	flush_all(e, true); /* what waited for company */
	return NULL;
}

/* ---- start-up: resume what was running ---- */

static int load_plan(const struct deploy_row *r, struct drv_plan **out)
{
	struct drv_plan_errors errs = {0};
	json_t *j = json_loads(r->plan, 0, NULL);
	int rc = j ? drv_plan_from_json(j, NULL, r->id, out, &errs) : DRV_EINVAL;

	for (size_t i = 0; i < errs.n; i++)
		drv_error("deploy", "stored plan is invalid", "deployment=%s error=\"%s\"", r->id,
		          errs.v[i]);
	drv_plan_errors_free(&errs);
	json_decref(j);
	return rc;
}

/* A stored deployment whose plan cannot be read any more ends failed. */
static void unloadable(struct deploy_engine *e, struct deploy_row *r, int err)
{
	json_t *ev = json_pack("[{s:s, s:{s:s}}]", "kind", "failed", "data", "text",
	                       "cannot resume: the stored plan is unreadable");

	snprintf(r->state, sizeof(r->state), "failed");
	snprintf(r->phase, sizeof(r->phase), "done");
	snprintf(r->reason, sizeof(r->reason), "cannot resume: the stored plan is unreadable (%s)",
	         drv_errname(err));
	free(r->plan);
	free(r->seq_state);
	free(r->extra);
	r->plan = r->seq_state = r->extra = NULL;
	r->updated_ms = r->finished_ms = drv_wall_ms();
	if (deploy_store_save(e->cfg.db, r, NULL, NULL, ev) == DRV_OK && e->cfg.events != NULL)
		drv_events_notify(e->cfg.events);
	json_decref(ev);
}

static int resume_one(void *arg, struct deploy_row *r)
{
	struct deploy_engine *e = arg;
	struct dep *d = calloc(1, sizeof(*d));
	int rc;

	if (d == NULL)
		return DRV_ENOMEM;
	d->row = *r;
	/* the strings stay r's (deploy_store_active frees them); the release is
	 * kept in the database only */
	d->row.plan = d->row.seq_state = d->row.extra = d->row.view = d->row.release = NULL;
	d->row.targets = NULL;
	d->events = json_array();
	rc = d->events ? deploy_run_load_extra(e, d, r) : DRV_ENOMEM;
	if (rc == DRV_OK)
		rc = load_plan(r, &d->plan);
	if (rc == DRV_OK) {
		d->next = e->deps;
		e->deps = d;
		if (r->seq_state != NULL)
			rc = deploy_run_resume(e, d, r->seq_state);
		else if (strcmp(r->state, "awaiting_approval") == 0 ||
		         strcmp(r->state, "queued") == 0)
			rc = DRV_OK; /* still waiting at its gate (deploy_gate.c) */
		else
			rc = deploy_run_start(e, d);
		if (rc != DRV_OK && !d->ended) {
			char why[DRV_SEQ_TEXT_MAX];

			snprintf(why, sizeof(why),
			         "cannot resume: the saved state does not load (%s)",
			         drv_errname(rc));
			drv_seq_free(d->seq);
			d->seq = NULL;
			deploy_run_fail(e, d, why);
		}
		deploy_run_flush(e, d);
	} else {
		deploy_dep_free(d);
		/* out of memory or the database failing: not the row's fault */
		if (rc != DRV_ENOMEM && rc != DRV_EDB)
			unloadable(e, r, rc);
	}
	if (rc != DRV_OK)
		drv_error("deploy", "cannot resume a deployment", "deployment=%s error=%s", r->id,
		          drv_errname(rc));
	else
		drv_info("deploy", "deployment resumed", "deployment=%s state=%s", r->id,
		         r->seq_state ? "saved" : "pending");
	return DRV_OK; /* the others still resume */
}

static void add_metrics(struct deploy_engine *e)
{
	static const char *const state[] = {"state", NULL}, *const kind[] = {"kind", NULL},
	                         *const carries[] = {"carries", NULL};
	static const double buckets[] = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
	struct drv_metrics *m = drv_metrics_global();

	drv_metrics_gauge(m, "drover_deployments", "Deployments by state.", state, &e->m.by_state);
	drv_metrics_histogram(m, "drover_deploy_step_duration_seconds",
	                      "Duration of deployment steps on agents, by kind.", kind, buckets,
	                      sizeof(buckets) / sizeof(buckets[0]), &e->m.step_seconds);
	drv_metrics_counter(m, "drover_rollbacks_total", "Deployments that began a rollback.", NULL,
	                    &e->m.rollbacks);
	drv_metrics_counter(m, "drover_deployments_started_total", "Deployments submitted.", NULL,
	                    &e->m.started);
	drv_metrics_counter(
	        m, "drover_deploy_saves_total",
	        "Transactions of the deployment engine that saved a deployment, by what "
	        "they carry (actions, final, quiet).",
	        carries, &e->m.saves);
}

static void count_state(void *arg, const char *state, int64_t n)
{
	struct deploy_engine *e = arg;

	drv_gauge_set(e->m.by_state, (double)n, state);
}

/* Every documented state has a series, also at zero. */
static void init_state_gauge(struct deploy_engine *e)
{
	static const char *const states[] = {
	        "pending",           "prestaging", "running", "paused",      "awaiting_promotion",
	        "rolling_back",      "succeeded",  "failed",  "rolled_back", "aborted",
	        "awaiting_approval", "queued"};

	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		drv_gauge_set(e->m.by_state, 0, states[i]);
	deploy_store_counts(e->cfg.db, count_state, e);
}

int deploy_engine_new(const struct deploy_engine_config *cfg, struct deploy_engine **out)
{
	struct deploy_engine *e = calloc(1, sizeof(*e));
	struct core_hooks h = {0};
	pthread_condattr_t ca;
	int rc;

	if (e == NULL)
		return DRV_ENOMEM;
	e->cfg = *cfg;
	pthread_mutex_init(&e->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&e->ops_done, NULL);
	add_metrics(e);
	init_state_gauge(e);
	/* The hook first: reports that arrive while we resume wait in the queue. */
	h.on_report = on_report;
	h.arg = e;
	core_set_hooks(cfg->core, &h);
	rc = deploy_ops_init(e);
	if (rc == DRV_OK)
		rc = deploy_store_active(cfg->db, resume_one, e);
	if (rc == DRV_OK && pthread_create(&e->thread, NULL, engine_main, e) != 0)
		rc = DRV_ESYS;
	if (rc != DRV_OK) {
		deploy_engine_free(e);
		return rc;
	}
	e->thread_started = true;
	*out = e;
	return DRV_OK;
}

static void fail_pending_cmds(struct deploy_engine *e)
{
	struct msg *m;

	pthread_mutex_lock(&e->mu);
	while ((m = deploy_take(e)) != NULL) {
		if (m->kind == MSG_CMD) {
			m->cmd->rc = DRV_ECLOSED;
			m->cmd->done = true;
			pthread_cond_signal(&m->cmd->cond);
		}
		deploy_msg_free(m);
	}
	pthread_mutex_unlock(&e->mu);
}

void deploy_engine_free(struct deploy_engine *e)
{
	struct core_hooks none = {0};

	if (e == NULL)
		return;
	core_set_hooks(e->cfg.core, &none);
	pthread_mutex_lock(&e->mu);
	e->stopping = true;
	pthread_cond_signal(&e->wake);
	pthread_mutex_unlock(&e->mu);
	if (e->thread_started)
		pthread_join(e->thread, NULL);
	deploy_ops_fini(e);
	fail_pending_cmds(e);
	while (e->deps != NULL) {
		struct dep *d = e->deps;
		e->deps = d->next;
		deploy_dep_free(d);
	}
	drv_seq_actions_free(&e->acts);
	json_decref(e->alerts);
	pthread_cond_destroy(&e->ops_done);
	pthread_cond_destroy(&e->wake);
	pthread_mutex_destroy(&e->mu);
	free(e);
}
