/*
 * deploy_run.c: one deployment's transitions. Every call into the
 * sequencer ends in collect(): the actions it took are kept (copied) with
 * the records and events they imply. deploy_run_flush() then saves everything that
 * changed since the last save in one transaction (the sequencer's state, the
 * records, the events) and only then performs the kept actions in order
 * (instructions queued, traffic and metric operations started, webhooks
 * posted, lines logged). The engine flushes after each batch of messages,
 * so a burst of reports costs one save, not one per report.
 */
#include "deploy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "core.h"
#include "deploy_baseline.h"
#include "deploy_hosts.h"
#include "deploy_live.h"
#include "dispatch.h"
#include "err.h"
#include "log.h"
#include "notify.h"
#include "outbound.h"
#include "storage.h"

void deploy_dep_free(struct dep *d)
{
	if (d == NULL)
		return;
	drv_seq_free(d->seq);
	drv_plan_free(d->plan);
	json_decref(d->extra);
	json_decref(d->events);
	json_decref(d->svc_seen);
	json_decref(d->from_idx);
	json_decref(d->recs_dirty);
	json_decref(d->seq_rows);
	json_decref(d->seq_loaded);
	for (size_t i = 0; i < d->n_pend; i++)
		deploy_ops_discard(d->pend[i].op);
	free(d->pend);
	deploy_row_clear(&d->row);
	free(d);
}

/* ---- performing actions ---- */

/* A step that cannot be queued (agent gone, not accepted) fails now. */
static void send_failed(struct deploy_engine *e, const struct drv_seq_action *a, int rc)
{
	struct msg *m = calloc(1, sizeof(*m));
	char text[160];

	if (m == NULL)
		return;
	snprintf(text, sizeof(text), "cannot queue the instruction: %s",
	         rc == DRV_ENOENT   ? "unknown agent"
	         : rc == DRV_ESTATE ? "agent not accepted"
	                            : drv_strerror(rc));
	m->kind = MSG_REPORT;
	snprintf(m->agent, sizeof(m->agent), "%s", a->agent);
	m->id = strdup(a->id);
	m->message = strdup(text);
	m->result = DRV_SEQ_R_FAILED;
	drv_warn("deploy", "instruction not queued", "step=%s agent=%s error=%s", a->id, a->agent,
	         drv_errname(rc));
	if (m->id == NULL) {
		deploy_msg_free(m);
		return;
	}
	deploy_post(e, m);
}

static int64_t ttl_of(const struct drv_seq_action *a, int64_t now)
{
	int64_t ttl = a->deadline - now;

	if (ttl < 1000)
		ttl = 1000;
	ttl += DEPLOY_INSTR_TTL_MS;
	return ttl > DISPATCH_TTL_MAX_MS ? DISPATCH_TTL_MAX_MS : ttl;
}

/* A run of SEND actions: built here, signed and queued in one wave (one
 * commit of the link's store; core_queue_many). */
static void perform_sends(struct deploy_engine *e, struct dep *d, struct pend *p, size_t n,
                          int64_t now)
{
	struct dispatch_instr *in = calloc(n, sizeof(*in));
	Drover__Instruction **ins = calloc(n, sizeof(*ins));
	size_t *idx = calloc(n, sizeof(*idx)), k = 0;
	uint64_t *seq = calloc(n, sizeof(*seq));
	int *rc = calloc(n, sizeof(*rc));

	for (size_t i = 0; i < n; i++) {
		const struct drv_seq_action *a = &p[i].a;
		int brc = in && ins && idx && seq && rc ? drv_seq_instruction(d->seq, a, &ins[k])
		                                        : DRV_ENOMEM;

		if (brc != DRV_OK) {
			send_failed(e, a, brc);
			continue;
		}
		idx[k] = i;
		in[k] = (struct dispatch_instr){.agent_id = a->agent,
		                                .deployment_id = d->row.id,
		                                .step_id = a->id,
		                                .action = ins[k]->action,
		                                .service = ins[k]->service,
		                                .hook = ins[k]->hook,
		                                .ttl_ms = ttl_of(a, now),
		                                .step_deadline_ms = ins[k]->step_deadline_ms};
		k++;
	}
	if (k > 0 && core_queue_many(e->cfg.core, in, k, seq, rc) != DRV_OK)
		for (size_t j = 0; j < k; j++)
			rc[j] = DRV_ENOMEM;
	for (size_t j = 0; j < k; j++) {
		const struct drv_seq_action *a = &p[idx[j]].a;

		if (rc[j] == DRV_EEXIST)
			drv_debug("deploy", "instruction already queued", "step=%s agent=%s", a->id,
			          a->agent);
		else if (rc[j] != DRV_OK)
			send_failed(e, a, rc[j]);
		drv_seq_instruction_free(ins[j]);
	}
	free(in);
	free(ins);
	free(idx);
	free(seq);
	free(rc);
}

static void perform_notify(struct deploy_engine *e, struct dep *d, const struct drv_seq_action *a)
{
	struct notify_target t[DRV_PLAN_MAX_NOTIFY];
	enum notify_event nev;
	size_t n = 0;
	json_t *fields;

	if (e->cfg.notifier == NULL ||
	    notify_event_parse(drv_plan_event_name(a->event), &nev) != DRV_OK)
		return;
	for (size_t i = 0; i < d->plan->n_notify && n < DRV_PLAN_MAX_NOTIFY; i++) {
		if ((d->plan->notify[i].events & (1u << a->event)) == 0)
			continue;
		if (!drv_outbound_allowed(e->cfg.outbound_allow, d->plan->notify[i].webhook)) {
			drv_warn("deploy", "webhook not allowed by outbound.allow: not posted",
			         "deployment=%s notify=%zu url=%s", d->row.id, i,
			         d->plan->notify[i].webhook);
			continue;
		}
		t[n] = (struct notify_target){.url = d->plan->notify[i].webhook,
		                              .events = 1u << nev};
		n++;
	}
	if (n == 0)
		return;
	fields = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", d->row.id, "deployment", d->row.name,
	                   "version", d->row.version, "state", deploy_view_state(d), "text",
	                   a->text);
	if (fields != NULL && json_object_get(d->extra, "baseline") != NULL)
		json_object_set_new(fields, "baseline", deploy_view_baseline(d)); /* the figures */
	if (notify_post(e->cfg.notifier, t, n, nev, fields) != DRV_OK)
		drv_warn("deploy", "notification dropped", "deployment=%s event=%s", d->row.id,
		         drv_plan_event_name(a->event));
	json_decref(fields);
}

void deploy_run_notify(struct deploy_engine *e, struct dep *d, enum drv_plan_event ev,
                       const char *text)
{
	struct drv_seq_action a = {.kind = DRV_SEQ_ACT_NOTIFY, .event = ev};
	size_t n = strnlen(text, sizeof(a.text) - 1);

	memcpy(a.text, text, n);
	perform_notify(e, d, &a);
}

static void perform(struct deploy_engine *e, struct dep *d, int64_t now)
{
	for (size_t i = 0; i < d->n_pend; i++) {
		struct pend *p = &d->pend[i];

		p->a.agent = p->agent; /* into the entry: the array may have moved */
		p->a.slot = p->slot;
	}
	for (size_t i = 0; i < d->n_pend; i++) {
		struct pend *p = &d->pend[i];
		size_t n = 0;

		switch (p->a.kind) {
		case DRV_SEQ_ACT_SEND: /* with the SENDs that follow it, in order */
			while (i + n < d->n_pend && d->pend[i + n].a.kind == DRV_SEQ_ACT_SEND)
				n++;
			perform_sends(e, d, p, n, now);
			i += n - 1;
			break;
		case DRV_SEQ_ACT_TRAFFIC:
		case DRV_SEQ_ACT_METRIC:
			if (p->op != NULL)
				deploy_ops_start(e, p->op);
			p->op = NULL;
			break;
		case DRV_SEQ_ACT_NOTIFY: perform_notify(e, d, &p->a); break;
		case DRV_SEQ_ACT_LOG:
			drv_info("deploy", p->a.text, "deployment=%s", d->row.id);
			break;
		}
	}
	d->n_pend = 0;
}

/* ---- saving ---- */

/* Records and events an action implies (before it is saved). */
static void note_action(struct deploy_engine *e, struct dep *d, const struct drv_seq_action *a,
                        int64_t now)
{
	if (a->kind == DRV_SEQ_ACT_SEND) {
		deploy_track_send(d, a, now);
	} else if (a->kind == DRV_SEQ_ACT_NOTIFY) {
		deploy_event(d, drv_plan_event_name(a->event), NULL,
		             json_pack("{s:s}", "text", a->text));
		if (a->event == DRV_EVENT_ROLLBACK_STARTED)
			drv_counter_inc(e->m.rollbacks);
	}
}

static struct pend *pend_add(struct dep *d)
{
	if (d->n_pend == d->cap_pend) {
		size_t cap = d->cap_pend ? d->cap_pend * 2 : 16;
		struct pend *v = realloc(d->pend, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		d->pend = v;
		d->cap_pend = cap;
	}
	memset(&d->pend[d->n_pend], 0, sizeof(d->pend[0]));
	return &d->pend[d->n_pend++];
}

static void note_state(struct deploy_engine *e, struct dep *d, const char *was_state,
                       const char *was_phase, const char *was_reason);

/* The deployment's and the services' progress after a sequencer call, as
 * events placed before those of the actions it took: "running (phase
 * tiers)" comes after the hook that ended the migrations and before the
 * first host starts; "service done" after its last host and before
 * tier_done. The final state waits for run_flush (hosts reconciled first). */
static void note_progress(struct deploy_engine *e, struct dep *d, int64_t now)
{
	char was_state[DEPLOY_STATE_MAX], was_phase[DEPLOY_STATE_MAX], was_reason[DRV_SEQ_TEXT_MAX];
	uint64_t stamp;
	json_t *st;

	if (d->seq == NULL)
		return;
	/* most calls move one host's steps, which neither the service events
	 * nor the summary show: those skip building the status (the summary's
	 * times are set again at the flush) */
	stamp = drv_seq_progress_stamp(d->seq);
	if (d->progress_noted && stamp == d->progress)
		return;
	d->progress = stamp;
	d->progress_noted = true;
	/* one status for the three views: nothing moves the sequencer meanwhile */
	st = drv_seq_status(d->seq, false);
	deploy_view_service_events(d, st, true); /* what ended comes before what it caused */
	if (!drv_seq_state_terminal(drv_seq_state(d->seq))) {
		memcpy(was_state, d->row.state, sizeof(was_state));
		memcpy(was_phase, d->row.phase, sizeof(was_phase));
		memcpy(was_reason, d->row.reason, sizeof(was_reason));
		deploy_view_summary(d, st, now);
		note_state(e, d, was_state, was_phase, was_reason);
	}
	deploy_view_service_events(d, st, false);
	json_decref(st);
}

/* Keep the actions of the last sequencer call until the next flush. */
static void collect(struct deploy_engine *e, struct dep *d)
{
	int64_t now = drv_wall_ms();

	note_progress(e, d, now);
	for (size_t i = 0; i < e->acts.n; i++) {
		const struct drv_seq_action *a = &e->acts.v[i];
		struct pend *p = pend_add(d);

		note_action(e, d, a, now);
		if (p == NULL) {
			drv_error("deploy", "out of memory: an action is lost (resend at restart)",
			          "deployment=%s step=%s", d->row.id, a->id);
			continue;
		}
		p->a = *a;
		snprintf(p->agent, sizeof(p->agent), "%s", a->agent ? a->agent : "");
		snprintf(p->slot, sizeof(p->slot), "%s", a->slot ? a->slot : "");
		p->a.agent = p->a.slot = NULL; /* set when performed (perform) */
		if (a->kind == DRV_SEQ_ACT_TRAFFIC)
			p->op = deploy_ops_traffic(e, d, a);
		else if (a->kind == DRV_SEQ_ACT_METRIC)
			p->op = deploy_ops_metric(e, d, a);
	}
	d->persist |= e->acts.persist;
	d->dirty = true;
	drv_seq_actions_clear(&e->acts);
}

static void note_state(struct deploy_engine *e, struct dep *d, const char *was_state,
                       const char *was_phase, const char *was_reason)
{
	if (strcmp(was_state, d->row.state) != 0) {
		drv_gauge_add(e->m.by_state, -1, was_state);
		drv_gauge_add(e->m.by_state, 1, d->row.state);
	}
	if (strcmp(was_state, d->row.state) == 0 && strcmp(was_phase, d->row.phase) == 0 &&
	    strcmp(was_reason, d->row.reason) == 0)
		return;
	deploy_event(d, "state", NULL,
	             json_pack("{s:s, s:s, s:s}", "state", d->row.state, "phase", d->row.phase,
	                       "reason", d->row.reason));
}

static char *dump_new(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s;
}

/* Members of extra stored elsewhere: the targets column and the records. */
static bool own_column(const char *k)
{
	return strcmp(k, "targets") == 0 || strcmp(k, "hosts") == 0 || strcmp(k, "hooks") == 0 ||
	       strcmp(k, "steps") == 0;
}

char *deploy_run_dump_extra(struct dep *d)
{
	json_t *rest = json_object(), *v;
	const char *k;
	char *text;

	if (rest == NULL)
		return NULL;
	json_object_foreach(d->extra, k, v)
	{
		if (!own_column(k) && json_object_set(rest, k, v) != 0) {
			json_decref(rest);
			return NULL;
		}
	}
	text = json_dumps(rest, JSON_COMPACT);
	json_decref(rest);
	return text;
}

static int add_record(json_t *arr, const char *section, const char *key, json_t *rec)
{
	return json_array_append_new(arr, json_pack("[s, s, O]", section, key, rec)) == 0
	               ? DRV_OK
	               : DRV_ENOMEM;
}

static const char *const rec_sections[] = {"hosts", "hooks", "steps"};

/* The touched records of section (every one with recs_all) into arr; a
 * touched key that is gone (a step that ended) into gone. */
static int dump_section(struct dep *d, const char *section, json_t *arr, json_t *gone)
{
	json_t *recs = json_object_get(d->extra, section), *touched, *v;
	const char *key;
	int rc = DRV_OK;

	touched = json_object_get(d->recs_dirty, section);
	json_object_foreach(d->recs_all ? recs : touched, key, v)
	{
		json_t *rec = json_object_get(recs, key);

		if (rc == DRV_OK && rec != NULL)
			rc = add_record(arr, section, key, rec);
	}
	json_object_foreach(touched, key, v)
	{
		if (rc == DRV_OK && json_object_get(recs, key) == NULL &&
		    json_array_append_new(gone, json_pack("[s, s]", section, key)) != 0)
			rc = DRV_ENOMEM;
	}
	return rc;
}

static char *dump_if(json_t *arr, int *rc)
{
	char *text =
	        *rc == DRV_OK && json_array_size(arr) > 0 ? json_dumps(arr, JSON_COMPACT) : NULL;

	if (*rc == DRV_OK && json_array_size(arr) > 0 && text == NULL)
		*rc = DRV_ENOMEM;
	return text;
}

char *deploy_run_dump_records(struct dep *d, char **gone_text, int *rc)
{
	json_t *arr, *gone;
	char *text = NULL;

	const char *key;
	json_t *v;

	*rc = DRV_OK;
	*gone_text = NULL;
	if (!d->recs_all && json_object_size(d->recs_dirty) == 0 &&
	    json_object_size(d->seq_rows) == 0)
		return NULL;
	arr = json_array();
	gone = json_array();
	*rc = arr && gone ? DRV_OK : DRV_ENOMEM;
	for (size_t i = 0; *rc == DRV_OK && i < sizeof(rec_sections) / sizeof(rec_sections[0]); i++)
		*rc = dump_section(d, rec_sections[i], arr, gone);
	json_object_foreach(d->seq_rows, key, v)
	{
		if (*rc == DRV_OK)
			*rc = add_record(arr, "seq", key, v);
	}
	text = dump_if(arr, rc);
	*gone_text = dump_if(gone, rc);
	if (*rc != DRV_OK) {
		free(text);
		free(*gone_text);
		text = *gone_text = NULL;
	}
	json_decref(arr);
	json_decref(gone);
	return text;
}

/* A row of the sequencer's state: kept for deploy_run_resume. */
static int load_seq_row(struct dep *d, const char *key, const char *data)
{
	json_t *row = json_loads(data, 0, NULL);

	if (row == NULL) {
		drv_error("deploy", "stored sequencer row is unreadable", "deployment=%s key=%s",
		          d->row.id, key);
		return DRV_EINVAL;
	}
	if (d->seq_loaded == NULL && (d->seq_loaded = json_object()) == NULL) {
		json_decref(row);
		return DRV_ENOMEM;
	}
	return json_object_set_new(d->seq_loaded, key, row) == 0 ? DRV_OK : DRV_ENOMEM;
}

static int load_record(void *arg, const char *section, const char *key, const char *data)
{
	struct dep *d = arg;
	json_t *recs = json_object_get(d->extra, section), *rec;

	if (section != NULL && key != NULL && data != NULL && strcmp(section, "seq") == 0)
		return load_seq_row(d, key, data);
	if (recs == NULL || key == NULL || data == NULL)
		return DRV_OK; /* not a section this version keeps */
	rec = json_loads(data, 0, NULL);
	if (!json_is_object(rec)) {
		json_decref(rec);
		drv_error("deploy", "stored record is unreadable", "deployment=%s key=%s/%s",
		          d->row.id, section, key);
		return DRV_EINVAL;
	}
	return json_object_set_new(recs, key, rec) == 0 ? DRV_OK : DRV_ENOMEM;
}

static int ensure_section(struct dep *d, const char *section)
{
	json_t *o = json_object_get(d->extra, section);

	if (json_is_object(o)) {
		/* a row written before migration 12 keeps its records here */
		if (json_object_size(o) > 0)
			d->recs_all = true;
		return DRV_OK;
	}
	return json_object_set_new(d->extra, section, json_object()) == 0 ? DRV_OK : DRV_ENOMEM;
}

int deploy_run_load_extra(struct deploy_engine *e, struct dep *d, const struct deploy_row *r)
{
	json_t *targets;
	int rc;

	d->extra = json_loads(r->extra, 0, NULL);
	if (!json_is_object(d->extra))
		return d->extra == NULL ? DRV_ENOMEM : DRV_EINVAL;
	if (r->targets != NULL) {
		targets = json_loads(r->targets, 0, NULL);
		if (targets == NULL || json_object_set_new(d->extra, "targets", targets) != 0)
			return DRV_EINVAL;
	} else if (json_object_get(d->extra, "targets") != NULL) {
		d->targets_unsaved = true; /* written before the column: write it */
	}
	rc = DRV_OK;
	for (size_t i = 0; rc == DRV_OK && i < sizeof(rec_sections) / sizeof(rec_sections[0]); i++)
		rc = ensure_section(d, rec_sections[i]);
	if (rc == DRV_OK)
		rc = deploy_store_records(e->cfg.db, r->id, load_record, d);
	return rc;
}

/* The sequencer's state for the row: while it runs, without its hosts
 * (their changed rows into d->seq_rows); the final one whole, as the
 * records go with the end. */
static int seq_state_text(struct dep *d, bool final)
{
	json_t *st = NULL;
	int rc;

	d->seq_rows = final ? NULL : json_object();
	if (!final && d->seq_rows == NULL)
		return DRV_ENOMEM;
	rc = final ? drv_seq_save(d->seq, &st) : drv_seq_save_rows(d->seq, &st, d->seq_rows);
	d->row.seq_state = rc == DRV_OK ? dump_new(st) : NULL;
	return d->row.seq_state != NULL ? DRV_OK : rc != DRV_OK ? rc : DRV_ENOMEM;
}

static int save(struct deploy_engine *e, struct dep *d, bool persist, bool final)
{
	char *recs = NULL, *gone = NULL;
	int rc = DRV_OK;

	json_decref(d->seq_rows);
	d->seq_rows = NULL;
	if (persist && d->seq != NULL)
		rc = seq_state_text(d, final);
	d->row.extra = deploy_run_dump_extra(d);
	if (final)
		d->row.view = dump_new(deploy_view_object(d));
	else if (rc == DRV_OK)
		recs = deploy_run_dump_records(d, &gone, &rc);
	if (d->targets_unsaved)
		d->row.targets = json_dumps(json_object_get(d->extra, "targets"), JSON_COMPACT);
	if (rc == DRV_OK && (d->row.extra == NULL || (final && d->row.view == NULL) ||
	                     (d->targets_unsaved && d->row.targets == NULL)))
		rc = DRV_ENOMEM;
	if (rc == DRV_OK)
		rc = deploy_store_save(e->cfg.db, &d->row, recs, gone, d->events);
	free(recs);
	free(gone);
	free(d->row.seq_state);
	free(d->row.extra);
	free(d->row.view);
	free(d->row.targets);
	d->row.seq_state = d->row.extra = d->row.view = d->row.targets = NULL;
	return rc;
}

/* A save committed: what it wrote is no longer pending. */
static void saved(struct dep *d)
{
	json_object_clear(d->recs_dirty);
	d->recs_all = d->targets_unsaved = false;
	if (d->seq_rows != NULL && d->seq != NULL)
		drv_seq_rows_stored(d->seq);
	json_decref(d->seq_rows);
	d->seq_rows = NULL;
}

/* Blue-green across sets: a completed switch (or switch back) makes a set
 * live: record it in the store (deploy_live.h) and as an event, once
 * (extra.live_sets holds what this deployment recorded). */
static void note_live_sets(struct deploy_engine *e, struct dep *d, int64_t now)
{
	json_t *noted = json_object_get(d->extra, "live_sets");

	for (size_t i = 0; d->seq != NULL && i < d->plan->n_services; i++) {
		const char *name = d->plan->services[i].name, *set = drv_seq_live_set(d->seq, i);
		const char *was = json_string_value(json_object_get(noted, name));

		if (set == NULL || (was != NULL && strcmp(was, set) == 0))
			continue;
		if (deploy_live_put(e->cfg.db, d->plan->environment, name, set, d->row.id, now) !=
		    DRV_OK)
			continue; /* tried again at the next flush */
		if (noted == NULL) {
			noted = json_object();
			if (noted == NULL || json_object_set_new(d->extra, "live_sets", noted) != 0)
				return;
		}
		json_object_set_new(noted, name, json_string(set));
		deploy_event(d, "live_set", NULL,
		             json_pack("{s:s, s:s, s:s}", "service", name, "set", set, "text",
		                       "takes the traffic now"));
		drv_info("deploy", "live set", "deployment=%s service=%s set=%s", d->row.id, name,
		         set);
	}
}

static bool needs_write(const struct dep *d)
{
	return d->persist || json_array_size(d->events) > 0 || d->recs_all ||
	       json_object_size(d->recs_dirty) > 0;
}

static bool is_final(const struct dep *d)
{
	return d->seq != NULL && drv_seq_state_terminal(drv_seq_state(d->seq));
}

bool deploy_run_save_due(const struct dep *d, int64_t now, int64_t *at)
{
	*at = INT64_MAX;
	if (!d->dirty || d->ended)
		return false;
	if (d->n_pend > 0 || d->seq == NULL || is_final(d) || d->save_failing)
		return true;
	*at = d->saved_ms + DEPLOY_SAVE_DEFER_MS;
	return *at <= now;
}

bool deploy_run_flush_prep(struct deploy_engine *e, struct dep *d)
{
	int64_t now = drv_wall_ms();
	char was_state[DEPLOY_STATE_MAX], was_phase[DEPLOY_STATE_MAX], was_reason[DRV_SEQ_TEXT_MAX];
	bool final = is_final(d);

	if (!d->dirty || d->ended)
		return false;
	if (final)
		deploy_track_reconcile(d, now); /* host records and events match the final object */
	if (final && drv_seq_state(d->seq) == DRV_SEQ_SUCCEEDED &&
	    json_object_get(d->extra, "baseline") != NULL &&
	    deploy_baseline_record(e->cfg.db, d->row.id, d->plan->environment,
	                           json_object_get(d->extra, "baseline"), now) != DRV_OK)
		deploy_event(d, "baseline_lost", NULL,
		             json_pack("{s:s}", "text",
		                       "the release's key metrics could not be recorded"));
	note_live_sets(e, d, now);
	memcpy(was_state, d->row.state, sizeof(was_state));
	memcpy(was_phase, d->row.phase, sizeof(was_phase));
	memcpy(was_reason, d->row.reason, sizeof(was_reason));
	deploy_view_summary(d, NULL, now);
	note_state(e, d, was_state, was_phase, was_reason);
	return true;
}

int deploy_run_flush_write(struct deploy_engine *e, struct dep *d)
{
	return needs_write(d) ? save(e, d, d->persist, is_final(d)) : DRV_OK;
}

/* What a save carries, for drover_deploy_saves_total. */
static const char *save_kind(const struct dep *d, bool final)
{
	return final ? "final" : d->n_pend > 0 ? "actions" : "quiet";
}

void deploy_run_flush_done(struct deploy_engine *e, struct dep *d, int rc)
{
	bool final = is_final(d);

	if (rc != DRV_OK) {
		/* Nothing is sent before it is saved: keep the transition, its
		 * events and actions, and try again next turn (a full disk that
		 * gets space back). */
		if (!d->save_failing)
			drv_error("deploy",
			          "cannot save a transition: holding it until a save succeeds",
			          "deployment=%s error=%s", d->row.id, drv_errname(rc));
		d->save_failing = true;
		drv_storage_suspect();
		return;
	}
	if (d->save_failing)
		drv_info("deploy", "transition saved after failed attempts: going on",
		         "deployment=%s", d->row.id);
	d->save_failing = false;
	if (needs_write(d))
		drv_counter_inc(e->m.saves, save_kind(d, final));
	saved(d);
	d->saved_ms = drv_wall_ms();
	if (e->cfg.events != NULL && json_array_size(d->events) > 0)
		drv_events_notify(e->cfg.events);
	json_array_clear(d->events);
	d->dirty = d->persist = false;
	perform(e, d, drv_wall_ms());
	if (final) {
		d->ended = true;
		drv_info("deploy", "deployment ended", "deployment=%s state=%s reason=\"%s\"",
		         d->row.id, d->row.state, d->row.reason);
	}
}

void deploy_run_flush(struct deploy_engine *e, struct dep *d)
{
	if (deploy_run_flush_prep(e, d))
		deploy_run_flush_done(e, d, deploy_run_flush_write(e, d));
}

/* ---- entry points ---- */

static int add_hook_hosts(struct drv_seq *s, const json_t *lists, enum drv_seq_step_kind kind)
{
	size_t i, j;
	json_t *list, *agent;

	json_array_foreach(lists, i, list)
	{
		json_array_foreach(list, j, agent)
		{
			int rc = drv_seq_add_hook_host(s, kind, i, json_string_value(agent));
			if (rc != DRV_OK)
				return rc;
		}
	}
	return DRV_OK;
}

/* Blue-green across sets (deploy_hosts_choose_sets): the set the release
 * goes to and the live set's hosts. */
static int add_set_choice(struct drv_seq *s, const json_t *t)
{
	const json_t *choice = json_object_get(t, "choice"), *c, *id;
	size_t i, j;
	int rc = DRV_OK;

	json_array_foreach(choice, i, c)
	{
		if (json_is_null(c))
			continue;
		rc = drv_seq_use_set(s, i, (uint32_t)json_integer_value(json_object_get(c, "set")),
		                     json_is_true(json_object_get(c, "first")));
		json_array_foreach(json_array_get(json_object_get(t, "live"), i), j, id)
		{
			if (rc == DRV_OK)
				rc = drv_seq_add_live_host(s, i, json_string_value(id));
		}
		if (rc != DRV_OK)
			return rc;
	}
	return DRV_OK;
}

int deploy_run_add_targets(struct drv_seq *s, const json_t *t)
{
	const json_t *svcs = json_object_get(t, "services");
	size_t i, j;
	json_t *list, *h;
	int rc = add_set_choice(s, t);

	if (rc != DRV_OK)
		return rc;

	json_array_foreach(svcs, i, list)
	{
		json_array_foreach(list, j, h)
		{
			rc = drv_seq_add_host(s, i, json_string_value(json_object_get(h, "agent")),
			                      json_is_true(json_object_get(h, "prev")),
			                      json_string_value(json_object_get(h, "slot")));
			if (rc != DRV_OK)
				return rc;
		}
	}
	if (rc == DRV_OK)
		rc = add_hook_hosts(s, json_object_get(t, "pre"), DRV_SEQ_STEP_PRE);
	if (rc == DRV_OK)
		rc = add_hook_hosts(s, json_object_get(t, "migrations"), DRV_SEQ_STEP_UP);
	if (rc == DRV_OK)
		rc = add_hook_hosts(s, json_object_get(t, "post"), DRV_SEQ_STEP_POST);
	if (rc == DRV_OK)
		rc = add_hook_hosts(s, json_object_get(t, "traffic"), DRV_SEQ_STEP_TRAFFIC);
	return rc;
}

void deploy_run_end(struct deploy_engine *e, struct dep *d, const char *state, const char *why)
{
	int64_t now = drv_wall_ms();

	drv_gauge_add(e->m.by_state, -1, d->row.state);
	drv_gauge_add(e->m.by_state, 1, state);
	snprintf(d->row.state, sizeof(d->row.state), "%s", state);
	snprintf(d->row.phase, sizeof(d->row.phase), "done");
	snprintf(d->row.reason, sizeof(d->row.reason), "%s", why);
	d->row.updated_ms = d->row.finished_ms = now;
	deploy_event(d, state, NULL, json_pack("{s:s}", "text", why));
	if (save(e, d, false, true) == DRV_OK) {
		drv_counter_inc(e->m.saves, save_kind(d, true));
		saved(d);
		if (e->cfg.events != NULL)
			drv_events_notify(e->cfg.events);
	}
	json_array_clear(d->events);
	d->dirty = false;
	d->ended = true;
}

void deploy_run_fail(struct deploy_engine *e, struct dep *d, const char *why)
{
	drv_error("deploy", "deployment cannot start", "deployment=%s why=\"%s\"", d->row.id, why);
	deploy_run_end(e, d, "failed", why);
}

/* The history says where each release across sets goes, and why. */
static void note_choice(struct dep *d, const json_t *targets)
{
	const json_t *c;
	size_t i;
	char text[DRV_SEQ_TEXT_MAX];

	json_array_foreach(json_object_get(targets, "choice"), i, c)
	{
		const struct drv_plan_strategy *st = &d->plan->services[i].strategy;
		size_t set = (size_t)json_integer_value(json_object_get(c, "set"));

		if (json_is_null(c) || set >= st->n_sets)
			continue;
		if (json_is_true(json_object_get(c, "first")))
			snprintf(text, sizeof(text), "no set is live yet: set %s goes first",
			         st->sets[set].name);
		else
			snprintf(text, sizeof(text), "set %s is live: the release goes to set %s",
			         st->sets[1 - set].name, st->sets[set].name);
		deploy_event(d, "set_chosen", NULL,
		             json_pack("{s:s, s:s, s:b, s:s}", "service", d->plan->services[i].name,
		                       "set", st->sets[set].name, "first",
		                       json_is_true(json_object_get(c, "first")), "text", text));
	}
}

int deploy_run_live_sets(struct deploy_engine *e, const struct drv_plan *p, json_t **out)
{
	json_t *live = json_object();
	struct deploy_live lv;
	int rc = live ? DRV_OK : DRV_ENOMEM;

	for (size_t i = 0; rc == DRV_OK && i < p->n_services; i++) {
		const struct drv_plan_service *ps = &p->services[i];

		if (ps->strategy.n_sets == 0)
			continue;
		rc = deploy_live_get(e->cfg.db, p->environment, ps->name, &lv);
		if (rc == DRV_OK && json_object_set_new(live, ps->name, json_string(lv.set)) != 0)
			rc = DRV_ENOMEM;
		else if (rc == DRV_ENOENT)
			rc = DRV_OK;
	}
	if (rc != DRV_OK) {
		json_decref(live);
		return rc;
	}
	*out = live;
	return DRV_OK;
}

/* Blue-green across sets: the live set of each such service, from the
 * store, picks the set the release goes to (when it starts: a queued
 * deployment sees what the ones before it switched). */
static int choose_sets(struct deploy_engine *e, struct dep *d, char *why, size_t cap)
{
	json_t *targets = json_object_get(d->extra, "targets"), *live = NULL;
	int rc;

	if (json_object_get(targets, "sets") == NULL || json_object_get(targets, "choice"))
		return DRV_OK;
	rc = deploy_run_live_sets(e, d->plan, &live);
	if (rc == DRV_OK)
		rc = deploy_hosts_choose_sets(d->plan, targets, live, why, cap);
	else
		snprintf(why, cap, "cannot read which host set is live: %s", drv_strerror(rc));
	json_decref(live);
	if (rc == DRV_OK)
		note_choice(d, targets);
	return rc;
}

int deploy_run_start(struct deploy_engine *e, struct dep *d)
{
	char why[DRV_SEQ_TEXT_MAX] = "";
	int rc = choose_sets(e, d, why, sizeof(why));

	if (rc != DRV_OK) {
		deploy_run_fail(e, d, why);
		return rc;
	}
	rc = drv_seq_new(d->plan, d->row.id, &d->seq);

	if (rc == DRV_OK)
		rc = deploy_run_add_targets(d->seq, json_object_get(d->extra, "targets"));
	if (rc == DRV_OK)
		deploy_gate_seq_start(d, d->seq);
	if (rc == DRV_OK)
		rc = drv_seq_start(d->seq, drv_wall_ms(), &e->acts);
	if (rc != DRV_OK) {
		deploy_run_fail(e, d,
		                d->seq && drv_seq_error(d->seq)[0] ? drv_seq_error(d->seq)
		                                                   : drv_strerror(rc));
		drv_seq_actions_clear(&e->acts);
		return rc;
	}
	drv_counter_inc(e->m.started);
	collect(e, d);
	return DRV_OK;
}

static enum drv_seq_result result_of(const char *name)
{
	return strcmp(name, "succeeded") == 0 ? DRV_SEQ_R_OK : DRV_SEQ_R_FAILED;
}

struct replay {
	struct deploy_engine *e;
	struct dep *d;
};

/* A report the core recorded (maybe while droverd was down or before the
 * sequencer saved it): feed its final result again; duplicates are ignored. */
static void replay_one(void *arg, const char *agent, json_t *data)
{
	struct replay *r = arg;
	const char *res = json_string_value(json_object_get(data, "result"));
	struct drv_seq_event ev = {.kind = DRV_SEQ_EV_REPORT, .agent = agent};

	if (res == NULL || (strcmp(res, "succeeded") != 0 && strcmp(res, "failed") != 0) ||
	    r->d->ended)
		return;
	ev.id = json_string_value(json_object_get(data, "step_id"));
	ev.message = json_string_value(json_object_get(data, "message"));
	ev.result = result_of(res);
	if (ev.id == NULL)
		return;
	deploy_track_report(r->e, r->d, &ev,
	                    (int)json_integer_value(json_object_get(data, "exit_code")),
	                    json_string_value(json_object_get(data, "output_tail")), drv_wall_ms());
	deploy_run_event(r->e, r->d, &ev);
}

int deploy_run_resume(struct deploy_engine *e, struct dep *d, const char *seq_state)
{
	struct replay r = {e, d};
	json_t *st = json_loads(seq_state, 0, NULL);
	int rc = st ? drv_seq_load_rows(d->plan, st, d->seq_loaded, &d->seq) : DRV_EINVAL;

	json_decref(st);
	json_decref(d->seq_loaded);
	d->seq_loaded = NULL;
	if (rc == DRV_OK && drv_seq_state_terminal(drv_seq_state(d->seq))) {
		collect(e, d); /* ended but not marked so: write the final view */
		return DRV_OK;
	}
	if (rc == DRV_OK)
		rc = drv_seq_resume(d->seq, drv_wall_ms(), &e->acts);
	if (rc != DRV_OK) {
		drv_seq_actions_clear(&e->acts);
		return rc;
	}
	collect(e, d);
	return deploy_store_reports(e->cfg.db, d->row.id, replay_one, &r);
}

int deploy_run_event(struct deploy_engine *e, struct dep *d, const struct drv_seq_event *ev)
{
	int rc = drv_seq_handle(d->seq, ev, drv_wall_ms(), &e->acts);

	if (rc == DRV_ENOMEM) {
		drv_error("deploy", "sequencer out of memory: dropped until droverd restarts",
		          "deployment=%s", d->row.id);
		d->ended = true;
	}
	if (rc != DRV_OK) {
		drv_seq_actions_clear(&e->acts);
		return rc;
	}
	if (ev->kind >= DRV_SEQ_EV_PAUSE)
		deploy_track_reconcile(d, drv_wall_ms());
	collect(e, d);
	return DRV_OK;
}

void deploy_run_tick(struct deploy_engine *e, struct dep *d, int64_t now)
{
	struct drv_seq_event ev = {.kind = DRV_SEQ_EV_TICK};

	if (drv_seq_handle(d->seq, &ev, now, &e->acts) != DRV_OK) {
		drv_seq_actions_clear(&e->acts);
		return;
	}
	if (e->acts.n > 0 || e->acts.persist)
		deploy_track_reconcile(d, now);
	collect(e, d);
}
