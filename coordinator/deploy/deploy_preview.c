/*
 * deploy_preview.c: a dry run (see deploy_preview.h). The sequencer runs
 * in simulated time: each SEND is answered "succeeded" at once, TRAFFIC and
 * METRIC actions succeed (a metric reads 0), a service waiting for promote
 * is promoted, and the clock jumps to the next timer when nothing else is
 * outstanding. What it sends, in which calls, is the shape of the rollout.
 */
#include "deploy_preview.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy_hosts.h"
#include "deploy_int.h"
#include "err.h"

#define PREVIEW_CALLS_MAX 1000000 /* sequencer calls: a bound, not a budget */

struct pv_ev {
	enum drv_seq_event_kind kind;
	char id[DRV_SEQ_STEP_ID_MAX];
	char agent[DRV_AGENT_ID_MAX + 1];
};

struct pv {
	const struct drv_plan *plan;
	struct drv_seq *seq;
	struct drv_seq_actions acts;
	int64_t now;
	long call;
	struct pv_ev *q;
	size_t n_q, head, cap_q;
	json_t *starts;    /* per service: [[agent...] per wave] */
	long *wave_call;   /* per service: the call of its last wave */
	json_t *finalized; /* per service: true when a FINALIZE was sent */
	json_t *prestage;  /* agent -> true */
	const json_t *targets;
};

static const char *str_of(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static int push(struct pv *p, enum drv_seq_event_kind kind, const char *id, const char *agent)
{
	if (p->n_q == p->cap_q) {
		size_t cap = p->cap_q ? p->cap_q * 2 : 64;
		struct pv_ev *v = realloc(p->q, cap * sizeof(*v));

		if (v == NULL)
			return DRV_ENOMEM;
		p->q = v;
		p->cap_q = cap;
	}
	p->q[p->n_q].kind = kind;
	snprintf(p->q[p->n_q].id, sizeof(p->q[p->n_q].id), "%s", id);
	snprintf(p->q[p->n_q].agent, sizeof(p->q[p->n_q].agent), "%s", agent ? agent : "");
	p->n_q++;
	return DRV_OK;
}

static void note_start(struct pv *p, const struct drv_seq_action *a)
{
	json_t *waves = json_array_get(p->starts, (size_t)a->service);

	if (waves == NULL)
		return;
	if (p->wave_call[a->service] != p->call || json_array_size(waves) == 0)
		json_array_append_new(waves, json_array());
	p->wave_call[a->service] = p->call;
	json_array_append_new(json_array_get(waves, json_array_size(waves) - 1),
	                      json_string(a->agent));
}

/* Record the actions of the last call and queue their outcomes. */
static int take(struct pv *p)
{
	int rc = DRV_OK;

	for (size_t i = 0; rc == DRV_OK && i < p->acts.n; i++) {
		const struct drv_seq_action *a = &p->acts.v[i];

		switch (a->kind) {
		case DRV_SEQ_ACT_SEND:
			if (a->step == DRV_SEQ_STEP_START)
				note_start(p, a);
			else if (a->step == DRV_SEQ_STEP_PRESTAGE)
				json_object_set_new(p->prestage, a->agent, json_true());
			else if (a->step == DRV_SEQ_STEP_FINALIZE && a->service >= 0)
				json_array_set_new(p->finalized, (size_t)a->service, json_true());
			rc = push(p, DRV_SEQ_EV_REPORT, a->id, a->agent);
			break;
		case DRV_SEQ_ACT_TRAFFIC: rc = push(p, DRV_SEQ_EV_TRAFFIC, a->id, NULL); break;
		case DRV_SEQ_ACT_METRIC: rc = push(p, DRV_SEQ_EV_METRIC, a->id, NULL); break;
		default: break;
		}
	}
	drv_seq_actions_clear(&p->acts);
	return rc;
}

static int feed(struct pv *p, const struct drv_seq_event *ev)
{
	int rc = drv_seq_handle(p->seq, ev, p->now, &p->acts);

	p->call++;
	if (rc == DRV_OK)
		return take(p);
	drv_seq_actions_clear(&p->acts);
	return rc;
}

/* A service waits for drover promote (a manual canary pause); a blue-green
 * service waiting to finalize is left to its timer, as in a real run. */
static bool awaits_promote(const struct drv_seq *s)
{
	json_t *st = drv_seq_status(s, false), *tier, *svc;
	bool any = false;
	size_t i, j;

	json_array_foreach(json_object_get(st, "tiers"), i, tier)
	{
		json_array_foreach(json_object_get(tier, "services"), j, svc) any |=
		        strcmp(str_of(svc, "waiting"), "promote") == 0;
	}
	json_decref(st);
	return any;
}

/* Nothing queued: promote a waiting service, else let time pass. */
static int idle(struct pv *p)
{
	struct drv_seq_event ev = {.kind = DRV_SEQ_EV_PROMOTE};
	int64_t next;
	int rc = awaits_promote(p->seq) ? feed(p, &ev) : DRV_ESTATE;

	if (rc != DRV_ESTATE)
		return rc;
	next = drv_seq_next_deadline(p->seq);
	if (next == INT64_MAX)
		return DRV_ESTATE; /* stuck: nothing to wait for */
	if (next > p->now)
		p->now = next;
	ev.kind = DRV_SEQ_EV_TICK;
	return feed(p, &ev);
}

static int simulate(struct pv *p)
{
	int rc = take(p);

	while (rc == DRV_OK && !drv_seq_state_terminal(drv_seq_state(p->seq))) {
		if (p->call > PREVIEW_CALLS_MAX)
			return DRV_ESTATE;
		if (p->head < p->n_q) {
			struct pv_ev *q = &p->q[p->head++];
			struct drv_seq_event ev = {.kind = q->kind,
			                           .id = q->id,
			                           .agent = q->agent[0] ? q->agent : NULL,
			                           .result = DRV_SEQ_R_OK,
			                           .value = 0};
			rc = feed(p, &ev);
			if (rc == DRV_EINVAL)
				rc = DRV_OK; /* an answer the sequencer no longer wants */
		} else {
			rc = idle(p);
		}
	}
	return rc;
}

/* ---- the fleet as it is ---- */

static bool online(const json_t *a)
{
	return json_is_true(json_object_get(a, "connected"));
}

static json_t *host_json(const struct drv_plan_service *ps, const json_t *t, const json_t *byid,
                         int *changes, int *unchanged)
{
	const json_t *a = deploy_hosts_find(byid, str_of(t, "agent"));
	const json_t *rel = deploy_hosts_release(a, ps->name);
	const char *change = "install";

	if (rel != NULL) {
		bool same = strcmp(str_of(rel, "digest"), ps->digest ? ps->digest : "") == 0 &&
		            strcmp(str_of(rel, "version"), ps->version) == 0 &&
		            strcmp(str_of(rel, "state"), "running") == 0;
		change = same ? "unchanged" : "update";
	}
	if (strcmp(change, "unchanged") == 0)
		(*unchanged)++;
	else
		(*changes)++;
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "id", str_of(t, "agent"), "from_version",
	                 str_of(rel, "version"), "from_digest", str_of(rel, "digest"), "to_version",
	                 ps->version, "change", change, "online", a != NULL && online(a));
}

/* A hook's command, an argument that holds a secret variable's value shown
 * as "<secret>". */
static json_t *argv_json(const struct drv_plan *p, const struct drv_plan_argv *v)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < v->n; i++)
		json_array_append_new(a, json_string(drv_plan_redact(p, v->v[i])));
	return a;
}

static json_t *hooks_json(const struct drv_plan *p, const struct drv_plan_hook *h, size_t n,
                          const json_t *hosts, bool migrations)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < n; i++) {
		json_t *o = json_pack("{s:s, s:O, s:o, s:I}", "name", h[i].name, "hosts",
		                      json_array_get(hosts, i), migrations ? "up" : "run",
		                      argv_json(p, &h[i].run), "timeout_ms",
		                      (json_int_t)h[i].timeout_ms);

		if (o != NULL && migrations)
			json_object_set_new(o, "down", argv_json(p, &h[i].down));
		json_array_append_new(arr, o);
	}
	return arr;
}

/* ---- the rollout's shape ---- */

static json_t *flat(const json_t *waves)
{
	json_t *all = json_array(), *w;
	size_t i;

	json_array_foreach(waves, i, w) json_array_extend(all, w);
	return all;
}

static json_t *rolling_steps(const json_t *waves)
{
	json_t *steps = json_array(), *w;
	size_t i;

	json_array_foreach(waves, i, w) json_array_append_new(
	        steps,
	        json_pack("{s:s, s:I, s:I, s:O}", "kind", "batch", "index", (json_int_t)i + 1, "of",
	                  (json_int_t)json_array_size(waves), "hosts", w));
	return steps;
}

static json_t *pause_json(const struct drv_plan_strategy *st, size_t k)
{
	if (k + 1 >= st->n_steps)
		return json_null();
	if (st->pause_manual)
		return json_string("manual");
	return json_integer((json_int_t)st->pause_ms);
}

static json_t *canary_steps(const struct drv_plan_strategy *st, const json_t *waves)
{
	json_t *steps = json_array(), *order = flat(waves);
	uint32_t n = (uint32_t)json_array_size(order), done = 0;

	for (size_t k = 0; steps != NULL && order != NULL && k < st->n_steps; k++) {
		uint32_t target =
		        drv_plan_amount_of((struct drv_plan_amount){st->steps[k], true}, n, true);
		json_t *hosts = json_array();

		target = target == 0 ? 1 : target;
		for (; done < target && done < n; done++)
			json_array_append(hosts, json_array_get(order, done));
		json_array_append_new(steps, json_pack("{s:s, s:I, s:I, s:i, s:o, s:b, s:o}",
		                                       "kind", "canary", "index", (json_int_t)k + 1,
		                                       "of", (json_int_t)st->n_steps, "percent",
		                                       (int)st->steps[k], "hosts", hosts, "traffic",
		                                       st->traffic.kind != DRV_TRAFFIC_NONE,
		                                       "pause", pause_json(st, k)));
	}
	json_decref(order);
	return steps;
}

static json_t *bluegreen_steps(const struct drv_plan_strategy *st, const json_t *waves,
                               bool finalized)
{
	json_t *steps = json_array();

	json_array_append_new(steps, json_pack("{s:s, s:o, s:i}", "kind", "green", "hosts",
	                                       flat(waves), "port", (int)st->green_port));
	json_array_append_new(steps, json_pack("{s:s, s:s}", "kind", "switch", "to", "green"));
	if (finalized)
		json_array_append_new(steps, json_pack("{s:s, s:I}", "kind", "finalize", "after_ms",
		                                       (json_int_t)st->finalize_after_ms));
	return steps;
}

/* Blue-green across host sets: the idle set, the switch, the decommission. */
static json_t *sets_steps(const struct pv *p, size_t i, const json_t *waves, bool finalized)
{
	const struct drv_plan_service *ps = &p->plan->services[i];
	const json_t *c = json_array_get(json_object_get(p->targets, "choice"), i);
	size_t to = (size_t)json_integer_value(json_object_get(c, "set")) % DRV_PLAN_SETS;
	const char *new_set = ps->strategy.sets[to].name, *old = ps->strategy.sets[1 - to].name;
	json_t *steps = json_array();

	json_array_append_new(steps,
	                      json_pack("{s:s, s:s, s:b, s:o, s:i}", "kind", "set", "set", new_set,
	                                "first", json_is_true(json_object_get(c, "first")), "hosts",
	                                flat(waves), "port", (int)ps->port));
	json_array_append_new(
	        steps, json_pack("{s:s, s:s, s:s}", "kind", "switch", "to", new_set, "from", old));
	if (finalized)
		json_array_append_new(
		        steps,
		        json_pack("{s:s, s:s, s:O, s:I}", "kind", "decommission", "set", old,
		                  "hosts", json_array_get(json_object_get(p->targets, "live"), i),
		                  "after_ms", (json_int_t)ps->strategy.finalize_after_ms));
	return steps;
}

static json_t *steps_json(const struct pv *p, size_t i)
{
	const struct drv_plan_strategy *st = &p->plan->services[i].strategy;
	const json_t *waves = json_array_get(p->starts, i);

	if (st->n_sets > 0 && json_object_get(p->targets, "choice") != NULL)
		return sets_steps(p, i, waves, json_is_true(json_array_get(p->finalized, i)));
	switch (st->type) {
	case DRV_STRATEGY_CANARY: return canary_steps(st, waves);
	case DRV_STRATEGY_BLUEGREEN:
		return bluegreen_steps(st, waves, json_is_true(json_array_get(p->finalized, i)));
	default: return rolling_steps(waves);
	}
}

static json_t *analysis_json(const struct drv_plan_strategy *st)
{
	if (st->metric_url == NULL)
		return json_null();
	return json_pack("{s:s, s:f}", "url", st->metric_url, "max", st->metric_max);
}

/* The normalized plan's view of service i (health, failure as written). */
static const json_t *norm_service(const json_t *norm, const struct drv_plan *plan, size_t i)
{
	size_t t = plan->services[i].tier;

	return json_array_get(
	        json_object_get(json_array_get(json_object_get(norm, "tiers"), t), "services"),
	        i - plan->tiers[t].first);
}

static json_t *service_json(const struct pv *p, const json_t *targets, const json_t *byid,
                            const json_t *norm, size_t i, int *changes, int *unchanged)
{
	const struct drv_plan_service *ps = &p->plan->services[i];
	const json_t *list = json_array_get(json_object_get(targets, "services"), i), *t;
	const json_t *ns = norm_service(norm, p->plan, i);
	json_t *hosts = json_array();
	size_t j;

	json_array_foreach(list, j, t)
	        json_array_append_new(hosts, host_json(ps, t, byid, changes, unchanged));
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:O, s:O, s:o}", "name", ps->name,
	                 "strategy", drv_plan_strategy_name(ps->strategy.type), "image", ps->image,
	                 "digest", ps->digest ? ps->digest : "", "version", ps->version, "hosts",
	                 hosts, "steps", steps_json(p, i), "health", json_object_get(ns, "health"),
	                 "failure", json_object_get(ns, "failure"), "analysis",
	                 analysis_json(&ps->strategy));
}

static json_t *tiers_json(const struct pv *p, const json_t *targets, const json_t *byid,
                          const json_t *norm, int *changes, int *unchanged)
{
	json_t *tiers = json_array();

	for (size_t t = 0; tiers != NULL && t < p->plan->n_tiers; t++) {
		const struct drv_plan_tier *tier = &p->plan->tiers[t];
		json_t *svcs = json_array();

		for (size_t j = 0; svcs != NULL && j < tier->n; j++)
			json_array_append_new(svcs,
			                      service_json(p, targets, byid, norm, tier->first + j,
			                                   changes, unchanged));
		json_array_append_new(
		        tiers, json_pack("{s:s, s:o}", "name", tier->name, "services", svcs));
	}
	return tiers;
}

/* Every targeted agent that is not connected now (a real run waits for it
 * until the step's deadline, then counts it failed). */
static void add_offline(json_t *seen, const json_t *byid, const char *id)
{
	const json_t *a = deploy_hosts_find(byid, id);

	if (a != NULL && !online(a))
		json_object_set_new(seen, id, json_true());
}

static json_t *offline_json(const json_t *targets, const json_t *byid)
{
	json_t *seen = json_object(), *arr = json_array(), *list, *h, *v;
	const char *key;
	size_t i, j;

	json_object_foreach((json_t *)targets, key, v)
	{
		json_array_foreach(v, i, list)
		{
			json_array_foreach(list, j, h) add_offline(
			        seen, byid,
			        json_is_string(h) ? json_string_value(h) : str_of(h, "agent"));
		}
	}
	json_object_foreach(seen, key, v) json_array_append_new(arr, json_string(key));
	json_decref(seen);
	return arr;
}

/* Agents a service's hosts name or select that are not accepted: a real
 * run leaves them out (an id list is refused before, with unknown-hosts). */
static json_t *skipped_json(const struct drv_plan *plan, const json_t *agents)
{
	json_t *arr = json_array();
	const json_t *a;
	size_t i;

	for (size_t s = 0; arr != NULL && s < plan->n_services; s++) {
		json_array_foreach(agents, i, a)
		{
			if (strcmp(str_of(a, "status"), "accepted") == 0)
				continue;
			if (deploy_hosts_selects(&plan->services[s].hosts, a))
				json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "agent",
				                                     str_of(a, "id"), "status",
				                                     str_of(a, "status"), "where",
				                                     plan->services[s].name));
		}
	}
	return arr;
}

static json_t *phases_json(const struct pv *p, const json_t *targets)
{
	const struct drv_plan *pl = p->plan;

	return json_pack(
	        "[{s:s, s:I}, {s:s, s:o}, {s:s, s:o}, {s:s}, {s:s, s:o}]", "phase", "prestage",
	        "hosts", (json_int_t)json_object_size(p->prestage), "phase", "pre", "hooks",
	        hooks_json(pl, pl->pre, pl->n_pre, json_object_get(targets, "pre"), false), "phase",
	        "migrations", "hooks",
	        hooks_json(pl, pl->migrations, pl->n_migrations,
	                   json_object_get(targets, "migrations"), true),
	        "phase", "tiers", "phase", "post", "hooks",
	        hooks_json(pl, pl->post, pl->n_post, json_object_get(targets, "post"), false));
}

static json_t *result(const struct pv *p, const json_t *targets, const json_t *agents)
{
	json_t *norm = drv_plan_to_json(p->plan), *byid = deploy_hosts_index(agents), *o, *tiers;
	int changes = 0, unchanged = 0;

	if (norm == NULL || byid == NULL) {
		json_decref(norm);
		json_decref(byid);
		return NULL;
	}
	tiers = tiers_json(p, targets, byid, norm, &changes, &unchanged);
	changes += (int)p->plan->n_migrations; /* they change the database */
	o = json_pack("{s:b, s:s, s:s, s:i, s:i, s:o, s:o, s:o, s:o, s:I, s:O}", "dry_run", 1,
	              "deployment", p->plan->deployment, "version", p->plan->version, "changes",
	              changes, "unchanged", unchanged, "offline", offline_json(targets, byid),
	              "skipped", skipped_json(p->plan, agents), "phases", phases_json(p, targets),
	              "tiers", tiers, "wait_ms", (json_int_t)p->now, "failure",
	              json_object_get(norm, "failure") ? json_object_get(norm, "failure")
	                                               : json_null());
	json_decref(norm);
	json_decref(byid);
	return o;
}

static int setup(struct pv *p, const struct drv_plan *plan, const json_t *targets)
{
	int rc;

	p->plan = plan;
	p->targets = targets;
	p->starts = json_array();
	p->finalized = json_array();
	p->prestage = json_object();
	p->wave_call = calloc(plan->n_services ? plan->n_services : 1, sizeof(long));
	if (!p->starts || !p->finalized || !p->prestage || !p->wave_call)
		return DRV_ENOMEM;
	for (size_t i = 0; i < plan->n_services; i++) {
		json_array_append_new(p->starts, json_array());
		json_array_append_new(p->finalized, json_false());
		p->wave_call[i] = -1;
	}
	rc = drv_seq_new(plan, "dry-run", &p->seq);
	if (rc == DRV_OK)
		rc = deploy_run_add_targets(p->seq, targets);
	if (rc == DRV_OK)
		rc = drv_seq_start(p->seq, 0, &p->acts);
	return rc;
}

int deploy_preview(const struct drv_plan *plan, const json_t *targets, const json_t *agents,
                   json_t **out, char *why, size_t why_cap)
{
	struct pv p = {0};
	json_t *o = NULL;
	int rc = setup(&p, plan, targets);

	if (rc == DRV_OK)
		rc = simulate(&p);
	if (rc == DRV_OK && (o = result(&p, targets, agents)) == NULL)
		rc = DRV_ENOMEM;
	if (rc != DRV_OK && rc != DRV_ENOMEM)
		snprintf(why, why_cap, "%s",
		         p.seq && drv_seq_error(p.seq)[0] ? drv_seq_error(p.seq)
		                                          : "the plan does not run to its end");
	drv_seq_actions_free(&p.acts);
	drv_seq_free(p.seq);
	free(p.q);
	free(p.wave_call);
	json_decref(p.starts);
	json_decref(p.finalized);
	json_decref(p.prestage);
	if (rc == DRV_OK)
		*out = o;
	return rc;
}
