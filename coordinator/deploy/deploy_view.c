/*
 * deploy_view.c: the deployment object of docs/api.md ("Deployments"), the
 * contract with the CLI and the dashboard, made from the sequencer's status
 * (drv_seq_status), the plan and the engine's records (deploy_track.c).
 */
#include "deploy_int.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"

static const char *str_of(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static bool any_waiting(const json_t *st, const char *what)
{
	const json_t *tier, *svc;
	size_t i, j;

	json_array_foreach(json_object_get(st, "tiers"), i, tier)
	{
		json_array_foreach(json_object_get(tier, "services"), j, svc)
		{
			if (strcmp(str_of(svc, "waiting"), what) == 0)
				return true;
		}
	}
	return false;
}

static const char *api_state(enum drv_seq_state s, bool paused, const json_t *st)
{
	switch (s) {
	case DRV_SEQ_PENDING: return "pending";
	case DRV_SEQ_PRESTAGE: return paused ? "paused" : "prestaging";
	case DRV_SEQ_ROLLBACK: return "rolling_back";
	case DRV_SEQ_SUCCEEDED: return "succeeded";
	case DRV_SEQ_FAILED: return "failed";
	case DRV_SEQ_ROLLED_BACK: return "rolled_back";
	case DRV_SEQ_ABORTED: return "aborted";
	default:
		if (paused)
			return "paused";
		if (any_waiting(st, "approval"))
			return "awaiting_approval"; /* at a canary step (deploy_gate.c) */
		return any_waiting(st, "promote") ? "awaiting_promotion" : "running";
	}
}

static const char *api_phase(enum drv_seq_state s)
{
	switch (s) {
	case DRV_SEQ_PENDING:
	case DRV_SEQ_PRESTAGE: return "prestage";
	case DRV_SEQ_PRE: return "pre";
	case DRV_SEQ_MIGRATE: return "migrations";
	case DRV_SEQ_TIERS:
	case DRV_SEQ_ROLLBACK: return "tiers";
	case DRV_SEQ_POST: return "post";
	default: return "done";
	}
}

const char *deploy_view_state(const struct dep *d)
{
	return d->row.state;
}

const char *deploy_view_phase(const struct dep *d)
{
	return d->row.phase;
}

static int64_t max_failed(const struct drv_plan *p, int64_t total)
{
	int64_t sum = 0;

	if (p->has_budget)
		return drv_plan_amount_of(p->max_failed_hosts, (uint32_t)total, false);
	for (size_t i = 0; i < p->n_services; i++)
		sum += drv_plan_amount_of(p->services[i].failure.max_failed_hosts, (uint32_t)total,
		                          false);
	return sum;
}

void deploy_view_summary(struct dep *d, const json_t *given, int64_t now)
{
	json_t *st;
	enum drv_seq_state s;

	d->row.updated_ms = now;
	if (d->seq == NULL) {
		if (d->row.state[0] == '\0') {
			snprintf(d->row.state, sizeof(d->row.state), "pending");
			snprintf(d->row.phase, sizeof(d->row.phase), "prestage");
		}
		return;
	}
	s = drv_seq_state(d->seq);
	st = given != NULL ? json_incref((json_t *)given) : drv_seq_status(d->seq, false);
	snprintf(d->row.state, sizeof(d->row.state), "%s",
	         api_state(s, drv_seq_paused(d->seq), st));
	snprintf(d->row.phase, sizeof(d->row.phase), "%s", api_phase(s));
	snprintf(d->row.reason, sizeof(d->row.reason), "%s", str_of(st, "reason"));
	deploy_gate_step(d, st, now, d->row.reason, sizeof(d->row.reason));
	d->row.failed_hosts = json_integer_value(json_object_get(st, "failed_hosts"));
	d->row.max_failed_hosts =
	        max_failed(d->plan, json_integer_value(json_object_get(st, "hosts")));
	d->row.finished_ms = drv_seq_state_terminal(s) ? now : 0;
	json_decref(st);
}

/* ---- the full object ---- */

static const char *svc_state(const char *seq_state)
{
	if (strcmp(seq_state, "halted") == 0)
		return "failed";
	return seq_state[0] ? seq_state : "pending";
}

/* agent -> previous version, for one service's targets. */
static json_t *from_map(const json_t *targets, size_t svc)
{
	json_t *m = json_object(), *t;
	size_t i;

	json_array_foreach(json_array_get(json_object_get(targets, "services"), svc), i, t)
	        json_object_set_new(m, str_of(t, "agent"), json_string(str_of(t, "from")));
	return m;
}

static json_t *host_obj(const struct dep *d, size_t svc, const json_t *h, const json_t *from)
{
	const char *agent = str_of(h, "agent");
	char key[DRV_SEQ_STEP_ID_MAX + 32];
	const json_t *rec;

	snprintf(key, sizeof(key), "%zu/%s", svc, agent);
	rec = json_object_get(json_object_get(d->extra, "hosts"), key);
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "id", agent, "state",
	                 deploy_track_host_state(h, drv_seq_state_terminal(drv_seq_state(d->seq))),
	                 "from_version", str_of(from, agent), "to_version",
	                 d->plan->services[svc].version, "started_ms",
	                 json_integer_value(json_object_get(rec, "started_ms")), "finished_ms",
	                 json_integer_value(json_object_get(rec, "finished_ms")), "message",
	                 str_of(rec, "message"));
}

/* Targets of a service not started yet, as pending hosts. */
static json_t *pending_hosts(const struct dep *d, size_t svc)
{
	const json_t *list = json_array_get(
	        json_object_get(json_object_get(d->extra, "targets"), "services"), svc);
	json_t *arr = json_array(), *t;
	size_t i;

	json_array_foreach(list, i, t) json_array_append_new(
	        arr, json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:s}", "id", str_of(t, "agent"),
	                       "state", "pending", "from_version", str_of(t, "from"), "to_version",
	                       d->plan->services[svc].version, "started_ms", 0, "finished_ms", 0,
	                       "message", ""));
	return arr;
}

static json_t *hosts_of(const struct dep *d, size_t svc, const json_t *sv)
{
	json_t *arr, *from, *h;
	size_t i;

	if (sv == NULL)
		return pending_hosts(d, svc);
	arr = json_array();
	from = from_map(json_object_get(d->extra, "targets"), svc);
	json_array_foreach(json_object_get(sv, "host_list"), i, h)
	        json_array_append_new(arr, host_obj(d, svc, h, from));
	json_decref(from);
	return arr;
}

static int weight_of(const struct drv_plan_service *ps, const char *state, const json_t *sv)
{
	if (ps->strategy.type == DRV_STRATEGY_ROLLING)
		return 0;
	if (strcmp(state, "done") == 0)
		return 100;
	if (strcmp(state, "running") != 0 || ps->strategy.type != DRV_STRATEGY_CANARY)
		return 0;
	return (int)json_integer_value(json_object_get(sv, "percent"));
}

/* A service's progress without its hosts: what a "service" event carries. */
static json_t *service_brief(const struct dep *d, size_t i, const json_t *sv)
{
	const struct drv_plan_service *ps = &d->plan->services[i];
	const char *state = svc_state(str_of(sv, "state"));
	bool canary = ps->strategy.type == DRV_STRATEGY_CANARY,
	     rolling = ps->strategy.type == DRV_STRATEGY_ROLLING;
	json_int_t step = json_integer_value(json_object_get(sv, "step")),
	           steps = json_integer_value(json_object_get(sv, "steps"));

	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:i}", "name", ps->name, "strategy",
	                 drv_plan_strategy_name(ps->strategy.type), "state", state, "batch",
	                 rolling ? step : 0, "batches", rolling ? steps : 0, "canary_step",
	                 canary ? step : 0, "canary_steps", canary ? steps : 0, "weight",
	                 weight_of(ps, state, sv));
}

static json_t *service_obj(const struct dep *d, size_t i, const json_t *sv)
{
	const struct drv_plan_service *ps = &d->plan->services[i];
	json_t *o = service_brief(d, i, sv);

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "image", json_string(ps->image));
	json_object_set_new(o, "digest", json_string(ps->digest ? ps->digest : ""));
	json_object_set_new(o, "hosts", hosts_of(d, i, sv));
	if (json_string_value(json_object_get(sv, "waiting")))
		json_object_set_new(o, "waiting", json_string(str_of(sv, "waiting")));
	if (json_string_value(json_object_get(sv, "why")))
		json_object_set_new(o, "why", json_string(str_of(sv, "why")));
	if (json_object_get(sv, "sets") != NULL) /* blue-green across host sets */
		json_object_set(o, "sets", json_object_get(sv, "sets"));
	return o;
}

static const char *tier_state(const json_t *svcs)
{
	size_t i, n = json_array_size(svcs), done = 0, pending = 0, rb = 0, rolled = 0;
	json_t *s;

	json_array_foreach(svcs, i, s)
	{
		const char *st = str_of(s, "state");

		if (strcmp(st, "failed") == 0)
			return "failed";
		done += strcmp(st, "done") == 0;
		pending += strcmp(st, "pending") == 0;
		rb += strcmp(st, "rolling_back") == 0;
		rolled += strcmp(st, "rolled_back") == 0;
	}
	if (rb > 0)
		return "rolling_back";
	if (rolled > 0 && rolled + pending == n)
		return "rolled_back";
	if (done == n)
		return "done";
	return pending == n ? "pending" : "running";
}

static json_t *tiers_obj(const struct dep *d, const json_t *st)
{
	json_t *tiers = json_array();

	for (size_t t = 0; tiers != NULL && t < d->plan->n_tiers; t++) {
		const struct drv_plan_tier *tier = &d->plan->tiers[t];
		const json_t *seq_svcs = json_object_get(
		        json_array_get(json_object_get(st, "tiers"), t), "services");
		json_t *svcs = json_array();

		for (size_t j = 0; svcs != NULL && j < tier->n; j++)
			json_array_append_new(
			        svcs, service_obj(d, tier->first + j, json_array_get(seq_svcs, j)));
		json_array_append_new(tiers,
		                      json_pack("{s:s, s:s, s:o}", "name", tier->name, "state",
		                                tier_state(svcs), "services", svcs));
	}
	return tiers;
}

/* ---- progress events ---- */

static bool ended(const char *svc_state)
{
	return strcmp(svc_state, "done") == 0 || strcmp(svc_state, "rolled_back") == 0 ||
	       strcmp(svc_state, "failed") == 0;
}

/* The key of a service's progress: an event goes out when it changes. */
static void progress_key(const json_t *b, char *key, size_t cap)
{
	snprintf(key, cap, "%s|%lld|%lld|%lld", str_of(b, "state"),
	         (long long)json_integer_value(json_object_get(b, "batch")),
	         (long long)json_integer_value(json_object_get(b, "canary_step")),
	         (long long)json_integer_value(json_object_get(b, "weight")));
}

static bool changed_brief(const struct dep *d, const json_t *b, bool ended_only)
{
	char key[160];

	if (ended_only != ended(str_of(b, "state")))
		return false;
	progress_key(b, key, sizeof(key));
	return strcmp(str_of(d->svc_seen, str_of(b, "name")), key) != 0;
}

static void service_event(struct dep *d, const char *tier, const char *tier_st, json_t *b)
{
	char key[160];

	progress_key(b, key, sizeof(key));
	json_object_set_new(d->svc_seen, str_of(b, "name"), json_string(key));
	json_object_set_new(b, "service", json_string(str_of(b, "name")));
	json_object_del(b, "name");
	json_object_set_new(b, "tier", json_string(tier));
	json_object_set_new(b, "tier_state", json_string(tier_st));
	deploy_event(d, "service", NULL, json_incref(b));
}

/* The services of one tier that changed; the tier's new state goes with the
 * first of them when they start (a tier starts with its first service), with
 * the last when they end (it ends with its last), the others carry the old. */
static void tier_events(struct dep *d, const struct drv_plan_tier *tier, json_t *briefs,
                        bool ended_only)
{
	char tkey[DRV_PLAN_NAME_MAX + 8];
	const char *now_st = tier_state(briefs);
	size_t last = SIZE_MAX;
	json_t *b;
	size_t j;

	snprintf(tkey, sizeof(tkey), "tier:%s", tier->name);
	json_array_foreach(briefs, j, b)
	{
		if (changed_brief(d, b, ended_only) && (ended_only || last == SIZE_MAX))
			last = j;
	}
	if (last == SIZE_MAX)
		return;
	json_array_foreach(briefs, j, b)
	{
		if (j == last)
			service_event(d, tier->name, now_st, b);
		else if (changed_brief(d, b, ended_only))
			service_event(d, tier->name, str_of(d->svc_seen, tkey), b);
	}
	json_object_set_new(d->svc_seen, tkey, json_string(now_st));
}

void deploy_view_service_events(struct dep *d, const json_t *given, bool ended_only)
{
	json_t *st, *briefs;

	if (d->seq == NULL)
		return;
	if (d->svc_seen == NULL && (d->svc_seen = json_object()) == NULL)
		return;
	st = given != NULL ? json_incref((json_t *)given) : drv_seq_status(d->seq, false);
	for (size_t t = 0; st != NULL && t < d->plan->n_tiers; t++) {
		const struct drv_plan_tier *tier = &d->plan->tiers[t];
		const json_t *seq_svcs = json_object_get(
		        json_array_get(json_object_get(st, "tiers"), t), "services");

		briefs = json_array();
		for (size_t j = 0; briefs != NULL && j < tier->n; j++)
			json_array_append_new(briefs, service_brief(d, tier->first + j,
			                                            json_array_get(seq_svcs, j)));
		if (briefs != NULL)
			tier_events(d, tier, briefs, ended_only);
		json_decref(briefs);
	}
	json_decref(st);
}

const char *deploy_view_from_version(struct dep *d, int svc, const char *agent)
{
	const json_t *targets = json_object_get(d->extra, "targets");

	if (d->from_idx == NULL) {
		d->from_idx = json_array();
		for (size_t i = 0; d->from_idx != NULL && i < d->plan->n_services; i++)
			json_array_append_new(d->from_idx, from_map(targets, i));
	}
	return str_of(json_array_get(d->from_idx, (size_t)svc), agent);
}

/* ---- hooks ---- */

static json_t *hook_obj(const char *phase, const char *name, const char *host, const json_t *rec)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:I}", "phase", phase, "name", name,
	                 "host", host, "state", rec ? str_of(rec, "state") : "pending", "exit_code",
	                 json_integer_value(json_object_get(rec, "exit_code")), "output_tail",
	                 str_of(rec, "output_tail"), "started_ms",
	                 json_integer_value(json_object_get(rec, "started_ms")), "finished_ms",
	                 json_integer_value(json_object_get(rec, "finished_ms")));
}

static void hook_list(const struct dep *d, json_t *out, const char *phase,
                      const struct drv_plan_hook *h, size_t n)
{
	const json_t *recs = json_object_get(d->extra, "hooks");
	const json_t *lists =
	        json_object_get(json_object_get(d->extra, "targets"),
	                        strcmp(phase, "migrations") == 0 ? "migrations" : phase);
	char key[DRV_SEQ_STEP_ID_MAX + 64];
	json_t *agent;
	size_t j;

	for (size_t i = 0; i < n; i++) {
		json_array_foreach(json_array_get(lists, i), j, agent)
		{
			const char *a = json_string_value(agent);

			snprintf(key, sizeof(key), "%s/%zu/%s", phase, i, a);
			json_array_append_new(
			        out, hook_obj(phase, h[i].name, a, json_object_get(recs, key)));
			if (strcmp(phase, "migrations") != 0)
				continue;
			snprintf(key, sizeof(key), "migrations-down/%zu/%s", i, a);
			if (json_object_get(recs, key) != NULL)
				json_array_append_new(out, hook_obj("migrations-down", h[i].name, a,
				                                    json_object_get(recs, key)));
		}
	}
}

static json_t *hooks_obj(const struct dep *d)
{
	json_t *out = json_array(), *rec;
	const char *key;

	hook_list(d, out, "pre", d->plan->pre, d->plan->n_pre);
	hook_list(d, out, "migrations", d->plan->migrations, d->plan->n_migrations);
	hook_list(d, out, "post", d->plan->post, d->plan->n_post);
	json_object_foreach(json_object_get(d->extra, "hooks"), key, rec)
	{
		if (strncmp(key, "traffic/", 8) == 0)
			json_array_append_new(out, hook_obj("traffic", str_of(rec, "name"),
			                                    str_of(rec, "host"), rec));
	}
	return out;
}

/* Keep a copy of an "analysis" event's data (rec, taken) in extra.BUCKET
 * under "SERVICE/CHECK": the latest of each (bounded by the plan: at most
 * 16 checks and 16 key metrics a service). */
static void note_latest(struct dep *d, const char *bucket, const json_t *data, json_t *rec)
{
	json_t *all = json_object_get(d->extra, bucket);
	char key[2 * DRV_PLAN_NAME_MAX + 2];

	if (rec == NULL)
		return;
	if (all == NULL) {
		all = json_object();
		if (all == NULL || json_object_set_new(d->extra, bucket, all) != 0) {
			json_decref(rec);
			return;
		}
	}
	snprintf(key, sizeof(key), "%s/%s", json_string_value(json_object_get(data, "service")),
	         json_string_value(json_object_get(data, "check")));
	json_object_set_new(rec, "at_ms", json_integer(drv_wall_ms()));
	json_object_set_new(all, key, rec);
	d->dirty = true;
}

void deploy_view_note_check(struct dep *d, const json_t *data)
{
	note_latest(d, "analysis", data, json_deep_copy(data));
}

/* A key metric is kept in extra.baseline (what deploy_baseline_record
 * writes when the deployment succeeds) with "metric" for "check". */
void deploy_view_note_metric(struct dep *d, const json_t *data)
{
	json_t *rec = json_deep_copy(data);

	if (rec != NULL) {
		json_object_set(rec, "metric", json_object_get(data, "check"));
		json_object_del(rec, "check");
		json_object_del(rec, "baseline");
		json_object_del(rec, "server");
	}
	note_latest(d, "baseline", data, rec);
}

static json_t *values_arr(const struct dep *d, const char *bucket)
{
	json_t *arr = json_array(), *rec;
	const char *key;

	json_object_foreach(json_object_get(d->extra, bucket), key, rec)
	        json_array_append(arr, rec);
	return arr;
}

json_t *deploy_view_baseline(const struct dep *d)
{
	return values_arr(d, "baseline");
}

/* The environment and the variables in effect (a secret's value is
 * "<secret>" in the plan itself: plan_vars.c). */
static void env_and_vars(json_t *o, const struct drv_plan *p)
{
	json_t *vars;

	if (p->environment != NULL)
		json_object_set_new(o, "environment", json_string(p->environment));
	if (p->n_vars == 0 || (vars = json_object()) == NULL)
		return;
	for (size_t i = 0; i < p->n_vars; i++)
		json_object_set_new(vars, p->vars[i].key, json_string(p->vars[i].value));
	json_object_set_new(o, "vars", vars);
}

json_t *deploy_view_object(const struct dep *d)
{
	json_t *st = d->seq ? drv_seq_status(d->seq, true) : NULL;
	json_t *o = json_pack(
	        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "id",
	        d->row.id, "deployment", d->row.name, "version", d->row.version, "state",
	        d->row.state, "phase", d->row.phase, "reason", d->row.reason, "actor", d->row.actor,
	        "created_ms", (json_int_t)d->row.created_ms, "updated_ms",
	        (json_int_t)d->row.updated_ms, "finished_ms", (json_int_t)d->row.finished_ms,
	        "failed_hosts", (json_int_t)d->row.failed_hosts, "max_failed_hosts",
	        (json_int_t)d->row.max_failed_hosts, "tiers", tiers_obj(d, st), "hooks",
	        hooks_obj(d));

	if (o != NULL && json_object_get(st, "bake_until") != NULL)
		json_object_set(o, "bake_until_ms", json_object_get(st, "bake_until"));
	json_decref(st);
	if (o != NULL && json_object_get(d->extra, "analysis") != NULL)
		json_object_set_new(o, "analysis", values_arr(d, "analysis"));
	if (o != NULL && json_object_get(d->extra, "baseline") != NULL)
		json_object_set_new(o, "baseline", deploy_view_baseline(d));
	if (o != NULL) {
		env_and_vars(o, d->plan);
		deploy_gate_view(d, o);
	}
	if (o != NULL && d->row.release_id[0] != '\0')
		json_object_set_new(o, "release", json_string(d->row.release_id));
	if (o != NULL && d->row.promoted_from[0] != '\0')
		json_object_set_new(o, "promoted_from", json_string(d->row.promoted_from));
	return o;
}
