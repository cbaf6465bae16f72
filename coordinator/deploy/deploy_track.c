/*
 * deploy_track.c: what the sequencer does not keep but operators want to
 * see: when each host's step started and ended, the agent's message, a
 * hook's exit code and output; and the "host" and "hook" events that go
 * with them. The records live in dep->extra and are saved with every
 * transition.
 */
#include "deploy_int.h"

#include <stdio.h>
#include <string.h>

static bool service_step(enum drv_seq_step_kind k)
{
	return k == DRV_SEQ_STEP_PRESTAGE || k == DRV_SEQ_STEP_START ||
	       k == DRV_SEQ_STEP_ROLLBACK || k == DRV_SEQ_STEP_FINALIZE;
}

static const char *hook_phase(enum drv_seq_step_kind k)
{
	switch (k) {
	case DRV_SEQ_STEP_PRE: return "pre";
	case DRV_SEQ_STEP_UP: return "migrations";
	case DRV_SEQ_STEP_DOWN: return "migrations-down";
	case DRV_SEQ_STEP_POST: return "post";
	default: return "traffic";
	}
}

static const char *hook_name(const struct drv_plan *p, const struct drv_seq_action *a)
{
	const struct drv_plan_hook *h = NULL;

	switch (a->step) {
	case DRV_SEQ_STEP_PRE:
		h = a->hook >= 0 && (size_t)a->hook < p->n_pre ? &p->pre[a->hook] : NULL;
		break;
	case DRV_SEQ_STEP_UP:
	case DRV_SEQ_STEP_DOWN:
		h = a->hook >= 0 && (size_t)a->hook < p->n_migrations ? &p->migrations[a->hook]
		                                                      : NULL;
		break;
	case DRV_SEQ_STEP_POST:
		h = a->hook >= 0 && (size_t)a->hook < p->n_post ? &p->post[a->hook] : NULL;
		break;
	default:
		if (a->service >= 0 && (size_t)a->service < p->n_services)
			return p->services[a->service].name;
		break;
	}
	return h != NULL && h->name != NULL ? h->name : "";
}

static json_t *record(json_t *map, const char *key, json_t *(*make)(void))
{
	json_t *r = json_object_get(map, key);

	if (r == NULL) {
		r = make();
		if (r == NULL || json_object_set_new(map, key, r) != 0)
			return NULL;
	}
	return r;
}

static json_t *host_record(void)
{
	return json_pack("{s:s, s:I, s:I, s:s}", "state", "pending", "started_ms", (json_int_t)0,
	                 "finished_ms", (json_int_t)0, "message", "");
}

static json_t *hook_record(void)
{
	return json_pack("{s:s, s:i, s:s, s:I, s:I}", "state", "pending", "exit_code", 0,
	                 "output_tail", "", "started_ms", (json_int_t)0, "finished_ms",
	                 (json_int_t)0);
}

static void set_str(json_t *o, const char *k, const char *v)
{
	json_object_set_new(o, k, json_string(v ? v : ""));
}

static void set_int(json_t *o, const char *k, int64_t v)
{
	json_object_set_new(o, k, json_integer((json_int_t)v));
}

static const char *str_of(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

/* A "host" event for host `agent` of service index svc: everything a
 * follower prints about the host, so that it needs no other read. */
static void host_event(struct dep *d, int svc, const char *agent, const json_t *rec)
{
	const struct drv_plan_service *ps = &d->plan->services[svc];

	deploy_event(d, "host", agent,
	             json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:O}", "tier",
	                       d->plan->tiers[ps->tier].name, "service", ps->name, "host", agent,
	                       "state", str_of(rec, "state"), "message", str_of(rec, "message"),
	                       "from_version", deploy_view_from_version(d, svc, agent),
	                       "to_version", ps->version, "started_ms",
	                       json_object_get(rec, "started_ms"), "finished_ms",
	                       json_object_get(rec, "finished_ms")));
}

static void hook_event(struct dep *d, const char *agent, const json_t *rec)
{
	json_t *data = json_pack(
	        "{s:s, s:s, s:s, s:s, s:O, s:O, s:O}", "phase", str_of(rec, "phase"), "name",
	        str_of(rec, "name"), "host", agent, "state", str_of(rec, "state"), "exit_code",
	        json_object_get(rec, "exit_code"), "started_ms", json_object_get(rec, "started_ms"),
	        "finished_ms", json_object_get(rec, "finished_ms"));

	/* Why it failed, once: the tail of a succeeded hook stays in the object. */
	if (data != NULL && strcmp(str_of(rec, "state"), "failed") == 0)
		json_object_set_new(data, "output_tail", json_string(str_of(rec, "output_tail")));
	deploy_event(d, "hook", agent, data);
}

static const char *sent_state(enum drv_seq_step_kind k, const char *was)
{
	switch (k) {
	case DRV_SEQ_STEP_PRESTAGE: return "prestaging";
	case DRV_SEQ_STEP_START: return "starting";
	case DRV_SEQ_STEP_ROLLBACK: return "rolling_back";
	default: return was;
	}
}

static void send_service(struct dep *d, const struct drv_seq_action *a, const char *key,
                         int64_t now)
{
	json_t *rec = record(json_object_get(d->extra, "hosts"), key, host_record);
	const char *was, *st;

	if (rec == NULL)
		return;
	was = str_of(rec, "state");
	st = sent_state(a->step, was);
	/* blue-green across host sets: the old set's STOP (its decommission) */
	if (a->step == DRV_SEQ_STEP_FINALIZE && a->action == DROVER__ACTION__ACTION_STOP)
		st = "stopping";
	if (strcmp(st, was) == 0)
		return;
	if (a->step == DRV_SEQ_STEP_ROLLBACK && strcmp(was, "failed") == 0)
		return; /* stays failed, with its message, until rolled back */
	deploy_track_touch(d, "hosts", key);
	set_str(rec, "state", st);
	if (a->step != DRV_SEQ_STEP_ROLLBACK)
		set_str(rec, "message", "");
	if (a->step != DRV_SEQ_STEP_PRESTAGE) {
		set_int(rec, "started_ms", now);
		set_int(rec, "finished_ms", 0);
	}
	host_event(d, a->service, a->agent, rec);
}

static void send_hook(struct dep *d, const struct drv_seq_action *a, const char *key, int64_t now)
{
	json_t *rec = record(json_object_get(d->extra, "hooks"), key, hook_record);

	if (rec == NULL || strcmp(str_of(rec, "state"), "running") == 0)
		return;
	deploy_track_touch(d, "hooks", key);
	set_str(rec, "phase", hook_phase(a->step));
	set_str(rec, "name", hook_name(d->plan, a));
	set_str(rec, "host", a->agent);
	set_str(rec, "state", "running");
	set_int(rec, "started_ms", now);
	set_int(rec, "finished_ms", 0);
	hook_event(d, a->agent, rec);
}

void deploy_track_touch(struct dep *d, const char *section, const char *key)
{
	json_t *keys;

	if (d->recs_dirty == NULL && (d->recs_dirty = json_object()) == NULL) {
		d->recs_all = true; /* out of memory: the next save writes them all */
		return;
	}
	keys = json_object_get(d->recs_dirty, section);
	if (keys == NULL && ((keys = json_object()) == NULL ||
	                     json_object_set_new(d->recs_dirty, section, keys) != 0)) {
		d->recs_all = true;
		return;
	}
	if (json_object_set_new(keys, key, json_true()) != 0)
		d->recs_all = true;
}

void deploy_track_send(struct dep *d, const struct drv_seq_action *a, int64_t now)
{
	char key[DRV_SEQ_STEP_ID_MAX + 32];
	json_t *steps = json_object_get(d->extra, "steps");

	if (service_step(a->step)) {
		snprintf(key, sizeof(key), "%d/%s", a->service, a->agent);
		send_service(d, a, key, now);
	} else {
		snprintf(key, sizeof(key), "%s/%d/%s", hook_phase(a->step),
		         a->step == DRV_SEQ_STEP_TRAFFIC ? a->service : a->hook, a->agent);
		send_hook(d, a, key, now);
	}
	if (json_object_get(steps, a->id) == NULL) {
		json_object_set_new(steps, a->id,
		                    json_pack("{s:s, s:i, s:i, s:I}", "k", key, "s", (int)a->step,
		                              "v", a->service, "t", (json_int_t)now));
		deploy_track_touch(d, "steps", a->id);
	}
}

static const char *done_state(enum drv_seq_step_kind k, bool ok, const char *was)
{
	if (!ok)
		return "failed";
	switch (k) {
	case DRV_SEQ_STEP_PRESTAGE: return "staged";
	case DRV_SEQ_STEP_START: return "succeeded";
	case DRV_SEQ_STEP_ROLLBACK: return "rolled_back";
	case DRV_SEQ_STEP_FINALIZE: return strcmp(was, "stopping") == 0 ? "stopped" : was;
	default: return "succeeded";
	}
}

void deploy_track_report(struct deploy_engine *e, struct dep *d, const struct drv_seq_event *ev,
                         int exit_code, const char *output_tail, int64_t now)
{
	json_t *steps = json_object_get(d->extra, "steps"), *step, *rec;
	enum drv_seq_step_kind k;
	bool ok = ev->result == DRV_SEQ_R_OK;
	int svc;

	step = ev->id ? json_object_get(steps, ev->id) : NULL;
	if (step == NULL || (ev->result != DRV_SEQ_R_OK && ev->result != DRV_SEQ_R_FAILED) ||
	    drv_seq_state_terminal(drv_seq_state(d->seq)))
		return; /* a late report of a finished deployment changes nothing */
	k = (enum drv_seq_step_kind)json_integer_value(json_object_get(step, "s"));
	svc = (int)json_integer_value(json_object_get(step, "v"));
	drv_histogram_observe(e->m.step_seconds,
	                      (double)(now - json_integer_value(json_object_get(step, "t"))) /
	                              1000.0,
	                      drv_seq_step_kind_name((int)k));
	rec = json_object_get(json_object_get(d->extra, service_step(k) ? "hosts" : "hooks"),
	                      str_of(step, "k"));
	/* A start that ends after the host's rollback was sent (the rollback
	 * stopped it) changes nothing: the host is rolling back. */
	if (rec != NULL && k == DRV_SEQ_STEP_START &&
	    (strcmp(str_of(rec, "state"), "rolling_back") == 0 ||
	     strcmp(str_of(rec, "state"), "rolled_back") == 0))
		rec = NULL;
	if (rec != NULL) {
		deploy_track_touch(d, service_step(k) ? "hosts" : "hooks", str_of(step, "k"));
		set_str(rec, "state", done_state(k, ok, str_of(rec, "state")));
		/* Why it failed; a host rolled back after its failure keeps it. */
		if (!(ok && k == DRV_SEQ_STEP_ROLLBACK))
			set_str(rec, "message", ok ? "" : ev->message);
		set_int(rec, "finished_ms", now);
		if (service_step(k) && svc >= 0 && (size_t)svc < d->plan->n_services) {
			host_event(d, svc, ev->agent, rec);
		} else if (!service_step(k)) {
			set_int(rec, "exit_code", exit_code);
			set_str(rec, "output_tail", output_tail);
			hook_event(d, ev->agent, rec);
		}
	}
	json_object_del(steps, ev->id);
	deploy_track_touch(d, "steps", ev->id); /* gone: the save deletes its row */
}

/* ---- reconcile with the sequencer's own view ---- */

const char *deploy_track_host_state(const json_t *h, bool ended)
{
	const char *pre = str_of(h, "prestage"), *start = str_of(h, "start"),
	           *rb = str_of(h, "rollback");

	/* A host whose start failed stays "failed" until its rollback is done,
	 * so that the failure is seen before the rollback. */
	if (strcmp(rb, "sent") == 0 &&
	    (strcmp(start, "failed") == 0 || strcmp(start, "timeout") == 0))
		return "failed";
	if (strcmp(rb, "none") != 0 && strcmp(rb, "abandoned") != 0)
		return strcmp(rb, "sent") == 0 ? "rolling_back"
		       : strcmp(rb, "ok") == 0 ? "rolled_back"
		                               : "failed";
	if (strcmp(start, "none") != 0 && strcmp(start, "abandoned") != 0) {
		if (strcmp(start, "sent") == 0)
			return "starting";
		if (strcmp(start, "ok") == 0)
			return json_is_true(json_object_get(h, "unhealthy")) ? "failed"
			                                                     : "succeeded";
		return "failed";
	}
	if (strcmp(pre, "sent") == 0 && ended)
		return "pending"; /* never touched: the deployment ended first */
	if (strcmp(pre, "none") != 0 && strcmp(pre, "abandoned") != 0)
		return strcmp(pre, "sent") == 0 ? "prestaging"
		       : strcmp(pre, "ok") == 0 ? "staged"
		                                : "failed";
	return "pending";
}

static void reconcile_host(struct dep *d, int svc, const json_t *h, int64_t now)
{
	const char *agent = str_of(h, "agent"),
	           *st = deploy_track_host_state(h, drv_seq_state_terminal(drv_seq_state(d->seq)));
	char key[DRV_SEQ_STEP_ID_MAX + 32];
	json_t *rec;

	snprintf(key, sizeof(key), "%d/%s", svc, agent);
	rec = record(json_object_get(d->extra, "hosts"), key, host_record);
	if (rec == NULL || strcmp(str_of(rec, "state"), st) == 0)
		return;
	deploy_track_touch(d, "hosts", key);
	set_str(rec, "state", st);
	if (strcmp(st, "failed") == 0 && str_of(rec, "message")[0] == '\0')
		set_str(rec, "message",
		        json_is_true(json_object_get(h, "unhealthy"))
		                ? "unhealthy"
		                : "no report before the step's deadline");
	/* Reconciled before its send is noted (an operator's promote or a
	 * timer starts the next canary step): the step starts now. */
	if (strcmp(st, "starting") == 0 || strcmp(st, "rolling_back") == 0) {
		set_int(rec, "started_ms", now);
		set_int(rec, "finished_ms", 0);
	}
	if (strcmp(st, "failed") == 0 || strcmp(st, "succeeded") == 0)
		set_int(rec, "finished_ms", now);
	host_event(d, svc, agent, rec);
}

void deploy_track_reconcile(struct dep *d, int64_t now)
{
	json_t *st = drv_seq_status(d->seq, true), *tier, *svc, *h;
	size_t i, j, k;
	int index = 0;

	json_array_foreach(json_object_get(st, "tiers"), i, tier)
	{
		json_array_foreach(json_object_get(tier, "services"), j, svc)
		{
			json_array_foreach(json_object_get(svc, "host_list"), k, h)
			        reconcile_host(d, index, h, now);
			index++;
		}
	}
	json_decref(st);
}
