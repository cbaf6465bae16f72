/* seq_sim.c: simulated agents and time for the sequencer tests (seq_sim.h). */
#include "seq_sim.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"

struct sim_ev {
	int64_t at;
	long no;
	struct drv_seq_event ev;
	char agent[64], id[DRV_SEQ_STEP_ID_MAX], service[64];
};

static int fake_resolve(void *arg, const char *ref, char digest[], size_t cap, char *why,
                        size_t why_cap)
{
	unsigned h = 5381;

	(void)arg;
	(void)why;
	(void)why_cap;
	for (const char *p = ref; *p; p++)
		h = h * 33 + (unsigned char)*p;
	snprintf(digest, cap, "sha256:%064x", h);
	return DRV_OK;
}

/* "id k=v k=v" -> id and labels */
static size_t parse_fleet(const char *line, char *id, struct drv_plan_kv *kv, char store[][64])
{
	char buf[256], *save = NULL, *tok;
	size_t n = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	tok = strtok_r(buf, " ", &save);
	snprintf(id, 64, "%s", tok);
	while ((tok = strtok_r(NULL, " ", &save)) != NULL && n < 4) {
		char *eq = strchr(tok, '=');

		*eq = '\0';
		snprintf(store[2 * n], 64, "%s", tok);
		snprintf(store[2 * n + 1], 64, "%s", eq + 1);
		kv[n].key = store[2 * n];
		kv[n].value = store[2 * n + 1];
		n++;
	}
	return n;
}

static void add_hook_hosts(struct sim *sim, enum drv_seq_step_kind kind, size_t idx,
                           const struct drv_plan_hosts *h, const char *id,
                           const struct drv_plan_kv *kv, size_t n)
{
	if (drv_plan_hosts_match(h, id, kv, n))
		assert_int_equal(drv_seq_add_hook_host(sim->seq, kind, idx, id), DRV_OK);
}

static void add_agent(struct sim *sim, const char *line, bool first_release)
{
	const struct drv_plan *p = sim->plan;
	struct drv_plan_kv kv[4];
	char id[64], store[8][64];
	size_t n = parse_fleet(line, id, kv, store);

	for (size_t i = 0; i < p->n_services; i++) {
		if (drv_plan_hosts_match(&p->services[i].hosts, id, kv, n))
			assert_int_equal(drv_seq_add_host(sim->seq, i, id, !first_release, "blue"),
			                 DRV_OK);
		if (p->services[i].strategy.traffic.kind == DRV_TRAFFIC_HOOK)
			add_hook_hosts(sim, DRV_SEQ_STEP_TRAFFIC, i,
			               &p->services[i].strategy.traffic.hook.hosts, id, kv, n);
	}
	for (size_t i = 0; i < p->n_pre; i++)
		add_hook_hosts(sim, DRV_SEQ_STEP_PRE, i, &p->pre[i].hosts, id, kv, n);
	for (size_t i = 0; i < p->n_migrations; i++)
		add_hook_hosts(sim, DRV_SEQ_STEP_UP, i, &p->migrations[i].hosts, id, kv, n);
	for (size_t i = 0; i < p->n_post; i++)
		add_hook_hosts(sim, DRV_SEQ_STEP_POST, i, &p->post[i].hosts, id, kv, n);
}

void sim_init(struct sim *sim, const char *plan_text, const char *const *fleet, bool first_release)
{
	struct drv_plan_errors errs = {0};
	int rc;

	memset(sim, 0, sizeof(*sim));
	sim->now = 1000000;
	sim->delay = 100;
	sim->verbose = getenv("SEQ_VERBOSE") != NULL;
	rc = drv_plan_parse_buffer(plan_text, strlen(plan_text), "sim.yaml", &sim->plan, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	assert_int_equal(rc, DRV_OK);
	assert_int_equal(drv_plan_resolve_digests(sim->plan, fake_resolve, NULL, &errs), DRV_OK);
	drv_plan_errors_free(&errs);
	assert_int_equal(drv_seq_new(sim->plan, "d1", &sim->seq), DRV_OK);
	for (size_t i = 0; fleet[i] != NULL; i++)
		add_agent(sim, fleet[i], first_release);
}

void sim_free(struct sim *sim)
{
	drv_seq_free(sim->seq);
	drv_plan_free(sim->plan);
	drv_seq_actions_free(&sim->acts);
	json_decref(sim->rows);
	json_decref(sim->progress);
	free(sim->sends);
	free(sim->q);
}

/* ---- events ---- */

static struct sim_ev *enqueue(struct sim *sim, int64_t at)
{
	struct sim_ev *e;

	if (sim->n_q == sim->cap_q) {
		sim->cap_q = sim->cap_q ? sim->cap_q * 2 : 256;
		sim->q = realloc(sim->q, sim->cap_q * sizeof(*sim->q));
		assert_non_null(sim->q);
	}
	e = &sim->q[sim->n_q++];
	memset(e, 0, sizeof(*e));
	e->at = at;
	e->no = sim->seq_no++;
	return e;
}

/* The earliest queued event (ties: first queued), or -1. */
static long next_event(const struct sim *sim)
{
	long best = -1;

	for (size_t i = 0; i < sim->n_q; i++) {
		if (best < 0 || sim->q[i].at < sim->q[best].at ||
		    (sim->q[i].at == sim->q[best].at && sim->q[i].no < sim->q[best].no))
			best = (long)i;
	}
	return best;
}

static void queue_report(struct sim *sim, const struct drv_seq_action *a, int answer, int64_t later)
{
	struct sim_ev *e;

	if (answer == SIM_SILENT)
		return;
	if (sim->accepted) {
		e = enqueue(sim, sim->now + 1 + later);
		e->ev.kind = DRV_SEQ_EV_REPORT;
		e->ev.result = DRV_SEQ_R_PROGRESS;
		snprintf(e->agent, sizeof(e->agent), "%s", a->agent);
		snprintf(e->id, sizeof(e->id), "%s", a->id);
	}
	e = enqueue(sim, sim->now + sim->delay + later);
	e->ev.kind = DRV_SEQ_EV_REPORT;
	e->ev.result = answer == SIM_FAIL ? DRV_SEQ_R_FAILED : DRV_SEQ_R_OK;
	snprintf(e->agent, sizeof(e->agent), "%s", a->agent);
	snprintf(e->id, sizeof(e->id), "%s", a->id);
	if (answer != SIM_UNHEALTHY_AFTER)
		return;
	e = enqueue(sim, sim->now + sim->delay + later + 1);
	e->ev.kind = DRV_SEQ_EV_REPORT;
	e->ev.result = DRV_SEQ_R_HEALTH_DOWN;
	snprintf(e->agent, sizeof(e->agent), "%s", a->agent);
	snprintf(e->service, sizeof(e->service), "%s", sim->plan->services[a->service].name);
}

/* ---- actions ---- */

static const char *hook_name(const struct sim *sim, const struct drv_seq_action *a)
{
	const struct drv_plan *p = sim->plan;

	switch (a->step) {
	case DRV_SEQ_STEP_PRE: return p->pre[a->hook].name;
	case DRV_SEQ_STEP_UP:
	case DRV_SEQ_STEP_DOWN: return p->migrations[a->hook].name;
	case DRV_SEQ_STEP_POST: return p->post[a->hook].name;
	default: return NULL;
	}
}

static enum sim_answer decide(const struct sim *sim, const struct drv_seq_action *a)
{
	const char *svc = a->service >= 0 ? sim->plan->services[a->service].name : NULL;
	const char *hook = hook_name(sim, a);

	for (size_t i = 0; i < sim->n_rules; i++) {
		const struct sim_rule *r = &sim->rules[i];

		if ((r->step < 0 || r->step == (int)a->step) &&
		    (r->service == NULL || (svc && strcmp(r->service, svc) == 0)) &&
		    (r->agent == NULL || strcmp(r->agent, a->agent) == 0) &&
		    (r->hook == NULL || (hook && strcmp(r->hook, hook) == 0)))
			return r->answer;
	}
	return SIM_OK;
}

/* Build the instruction as the dispatcher would, and check it. */
static void check_instruction(const struct sim *sim, const struct drv_seq_action *a)
{
	Drover__Instruction *ins = NULL;

	assert_int_equal(drv_seq_instruction(sim->seq, a, &ins), DRV_OK);
	assert_string_equal(ins->step_id, a->id);
	assert_string_equal(ins->target_agent, a->agent);
	assert_int_equal(ins->action, a->action);
	if (a->step == DRV_SEQ_STEP_START || a->step == DRV_SEQ_STEP_PRESTAGE) {
		assert_non_null(ins->service->image);
		assert_non_null(strstr(ins->service->image->digest, "sha256:"));
	}
	if (a->action == DROVER__ACTION__ACTION_RUN_HOOK)
		assert_true(ins->hook->n_run > 0);
	drv_seq_instruction_free(ins);
}

static void record_send(struct sim *sim, const struct drv_seq_action *a, int64_t later)
{
	struct sim_send *r = NULL;
	char sig[256];

	snprintf(sig, sizeof(sig), "%s|%d|%s|%u|%d|%d|%d|%d|%lld", a->agent, a->action, a->slot,
	         a->port, a->service, a->hook, a->percent, a->to_new,
	         (long long)a->step_deadline_ms);
	for (size_t i = 0; i < sim->n_sends; i++) {
		if (strcmp(sim->sends[i].id, a->id) == 0)
			r = &sim->sends[i];
	}
	if (r != NULL) { /* a repeat: same content, the recorded answer */
		if (strcmp(r->sig, sig) != 0)
			fail_msg("step %s sent again with other content:\n  %s\n  %s", a->id,
			         r->sig, sig);
		r->times++;
		queue_report(sim, a, r->answer, later);
		return;
	}
	if (sim->n_sends == sim->cap_sends) {
		sim->cap_sends = sim->cap_sends ? sim->cap_sends * 2 : 256;
		sim->sends = realloc(sim->sends, sim->cap_sends * sizeof(*sim->sends));
		assert_non_null(sim->sends);
	}
	r = &sim->sends[sim->n_sends++];
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", a->id);
	snprintf(r->sig, sizeof(r->sig), "%s", sig);
	snprintf(r->agent, sizeof(r->agent), "%s", a->agent);
	snprintf(r->slot, sizeof(r->slot), "%s", a->slot);
	r->step = (int)a->step;
	r->service = a->service;
	r->action = a->action;
	r->answer = decide(sim, a);
	r->at = sim->now;
	r->order = sim->n_first++;
	r->times = 1;
	if (r->step == DRV_SEQ_STEP_START && ++sim->starts_out > sim->max_inflight_starts)
		sim->max_inflight_starts = sim->starts_out;
	queue_report(sim, a, r->answer, later);
}

static void on_server(void *arg, const char *server, uint32_t weight, bool gains)
{
	struct sim *sim = arg;
	size_t n = strlen(sim->last_traffic);

	snprintf(sim->last_traffic + n, sizeof(sim->last_traffic) - n, "%s%s=%u", n ? " " : "",
	         server, weight);
	n = strlen(sim->last_wait);
	if (gains)
		snprintf(sim->last_wait + n, sizeof(sim->last_wait) - n, "%s%s", n ? " " : "",
		         server);
}

static void answer_op(struct sim *sim, const struct drv_seq_action *a)
{
	struct sim_ev *e = enqueue(sim, sim->now + sim->delay);

	snprintf(e->id, sizeof(e->id), "%s", a->id);
	if (a->kind == DRV_SEQ_ACT_TRAFFIC) {
		sim->n_traffic++;
		sim->last_traffic[0] = '\0';
		sim->last_wait[0] = '\0';
		assert_int_equal(drv_seq_traffic_servers(sim->seq, a, on_server, sim), DRV_OK);
		e->ev.kind = DRV_SEQ_EV_TRAFFIC;
		e->ev.result = sim->traffic_fails ? DRV_SEQ_R_FAILED : DRV_SEQ_R_OK;
	} else if (a->check >= 0) {
		size_t i = (size_t)sim->n_checks++;
		e->ev.kind = DRV_SEQ_EV_METRIC;
		e->ev.result = sim->n_verdicts == 0  ? DRV_SEQ_R_OK
		               : i < sim->n_verdicts ? sim->verdicts[i]
		                                     : sim->verdicts[sim->n_verdicts - 1];
		assert_non_null(a->query);
		assert_non_null(a->server);
		snprintf(sim->last_query, sizeof(sim->last_query), "%s", a->query);
	} else {
		sim->n_metric++;
		e->ev.kind = DRV_SEQ_EV_METRIC;
		e->ev.result = DRV_SEQ_R_OK;
		e->ev.value = sim->metric;
	}
}

static json_t *progress_member(const json_t *o, const char *const *keys)
{
	json_t *out = json_object();

	for (size_t i = 0; out != NULL && keys[i] != NULL; i++) {
		json_t *v = json_object_get(o, keys[i]);

		json_object_set_new(out, keys[i], v ? json_incref(v) : json_null());
	}
	return out;
}

/* What drv_seq_status shows that drv_seq_progress_stamp stands for. */
static json_t *progress_of(const json_t *st)
{
	static const char *const top[] = {"state", "paused", "reason", "failed_hosts",
	                                  "hosts", "tier",   NULL};
	static const char *const svc[] = {"state", "step", "steps", "percent", "waiting", NULL};
	json_t *p = progress_member(st, top), *tiers = json_array(), *tier, *sv;
	size_t i, j;

	json_array_foreach(json_object_get(st, "tiers"), i, tier)
	{
		json_t *svcs = json_array();

		json_array_foreach(json_object_get(tier, "services"), j, sv)
		        json_array_append_new(svcs, progress_member(sv, svc));
		json_array_append_new(tiers,
		                      json_pack("{s:O, s:o}", "state",
		                                json_object_get(tier, "state"), "services", svcs));
	}
	json_object_set_new(p, "tiers", tiers);
	return p;
}

/* Equal stamps after two sequencer calls: equal progress in the status. */
static void check_progress(struct sim *sim)
{
	json_t *st = drv_seq_status(sim->seq, false), *p = progress_of(st);
	uint64_t stamp = drv_seq_progress_stamp(sim->seq);

	assert_non_null(p);
	if (sim->progress != NULL && stamp == sim->stamp)
		assert_true(json_equal(p, sim->progress));
	json_decref(sim->progress);
	sim->progress = p;
	sim->stamp = stamp;
	json_decref(st);
}

static void perform(struct sim *sim)
{
	int64_t later = 0;

	check_progress(sim);
	for (size_t i = 0; i < sim->acts.n; i++) {
		const struct drv_seq_action *a = &sim->acts.v[i];

		switch (a->kind) {
		case DRV_SEQ_ACT_SEND:
			check_instruction(sim, a);
			record_send(sim, a, later);
			later += sim->spread;
			break;
		case DRV_SEQ_ACT_TRAFFIC:
		case DRV_SEQ_ACT_METRIC: answer_op(sim, a); break;
		case DRV_SEQ_ACT_NOTIFY:
			sim->notify[a->event]++;
			if (sim->verbose)
				fprintf(stderr, "[%lld] notify %s: %s\n", (long long)sim->now,
				        drv_plan_event_name(a->event), a->text);
			break;
		case DRV_SEQ_ACT_LOG:
			sim->n_logs++;
			if (sim->verbose)
				fprintf(stderr, "[%lld] %s\n", (long long)sim->now, a->text);
			break;
		}
	}
	drv_seq_actions_clear(&sim->acts);
}

/* Like droverd after kill -9: from the stored text and rows, load (the
 * whole state as it was) and resume. */
static void restart(struct sim *sim)
{
	json_t *state = NULL, *whole = NULL, *back = NULL, *again, *changed = json_object();
	json_error_t jerr;
	char *text;

	if (sim->rows == NULL)
		sim->rows = json_object();
	assert_non_null(changed);
	assert_int_equal(drv_seq_save(sim->seq, &whole), DRV_OK);
	assert_int_equal(drv_seq_save_rows(sim->seq, &state, changed), DRV_OK);
	assert_int_equal(json_object_update(sim->rows, changed), 0);
	json_decref(changed);
	text = json_dumps(state, JSON_COMPACT);
	json_decref(state);
	assert_non_null(text);
	drv_seq_free(sim->seq);
	sim->seq = NULL;
	again = json_loads(text, 0, &jerr);
	free(text);
	assert_non_null(again);
	assert_int_equal(drv_seq_load_rows(sim->plan, again, sim->rows, &sim->seq), DRV_OK);
	json_decref(again);
	assert_int_equal(drv_seq_save(sim->seq, &back), DRV_OK);
	assert_true(json_equal(whole, back));
	json_decref(whole);
	json_decref(back);
	assert_int_equal(drv_seq_resume(sim->seq, sim->now, &sim->acts), DRV_OK);
	sim->restarts++;
	perform(sim);
}

static int handle(struct sim *sim, const struct drv_seq_event *ev)
{
	int rc;
	bool transition;

	if (sim->on_call != NULL)
		sim->on_call(sim, ev, false, sim->call_arg);
	rc = drv_seq_handle(sim->seq, ev, sim->now, &sim->acts);
	transition = sim->acts.persist;
	if (sim->on_call != NULL)
		sim->on_call(sim, ev, true, sim->call_arg);

	if (sim->restart && sim->crash_before_send && transition)
		drv_seq_actions_clear(&sim->acts); /* lost with the process */
	perform(sim);
	if (sim->restart && transition)
		restart(sim); /* killed right after storing the transition */
	return rc;
}

void sim_crash_resume(struct sim *sim, const char *state_text, const json_t *rows,
                      const json_t *finals)
{
	json_t *st = json_loads(state_text, 0, NULL), *f;
	size_t i;

	assert_non_null(st);
	drv_seq_free(sim->seq);
	sim->seq = NULL;
	assert_int_equal(drv_seq_load_rows(sim->plan, st, rows, &sim->seq), DRV_OK);
	json_decref(st);
	drv_seq_actions_clear(&sim->acts); /* lost with the process */
	assert_int_equal(drv_seq_resume(sim->seq, sim->now, &sim->acts), DRV_OK);
	sim->restarts++;
	perform(sim);
	json_array_foreach(finals, i, f)
	{
		struct drv_seq_event ev = {.kind = DRV_SEQ_EV_REPORT,
		                           .agent = json_string_value(json_array_get(f, 0)),
		                           .id = json_string_value(json_array_get(f, 1)),
		                           .result = json_is_true(json_array_get(f, 2))
		                                             ? DRV_SEQ_R_OK
		                                             : DRV_SEQ_R_FAILED};
		handle(sim, &ev);
	}
}

void sim_start(struct sim *sim)
{
	if (sim->on_call != NULL)
		sim->on_call(sim, NULL, false, sim->call_arg);
	assert_int_equal(drv_seq_start(sim->seq, sim->now, &sim->acts), DRV_OK);
	if (sim->on_call != NULL)
		sim->on_call(sim, NULL, true, sim->call_arg);
	if (sim->restart && sim->crash_before_send)
		drv_seq_actions_clear(&sim->acts);
	perform(sim);
	if (sim->restart)
		restart(sim);
}

static void note_answer(struct sim *sim, const char *id)
{
	for (size_t i = 0; id[0] != '\0' && i < sim->n_sends; i++) {
		struct sim_send *r = &sim->sends[i];

		if (strcmp(r->id, id) != 0 || r->answered)
			continue;
		r->answered = true;
		if (r->step == DRV_SEQ_STEP_START)
			sim->starts_out--;
	}
}

void sim_deliver(struct sim *sim)
{
	long i;

	while ((i = next_event(sim)) >= 0 && sim->q[i].at <= sim->now) {
		struct sim_ev e = sim->q[i];

		sim->q[i] = sim->q[--sim->n_q];
		e.ev.agent = e.agent[0] ? e.agent : NULL;
		e.ev.id = e.id[0] ? e.id : NULL;
		e.ev.service = e.service[0] ? e.service : NULL;
		if (e.ev.result != DRV_SEQ_R_PROGRESS)
			note_answer(sim, e.id);
		handle(sim, &e.ev);
	}
}

enum drv_seq_state sim_run(struct sim *sim)
{
	for (int guard = 0; guard < 1000000; guard++) {
		long i;
		int64_t next;
		struct drv_seq_event tick = {.kind = DRV_SEQ_EV_TICK};

		sim_deliver(sim);
		if (drv_seq_state_terminal(drv_seq_state(sim->seq)))
			break;
		i = next_event(sim);
		next = drv_seq_next_deadline(sim->seq);
		if (i >= 0 && sim->q[i].at < next)
			next = sim->q[i].at;
		if (next == INT64_MAX)
			break; /* waits for an operator */
		if (next > sim->now)
			sim->now = next;
		if (i < 0 || sim->q[i].at > sim->now)
			handle(sim, &tick);
	}
	return drv_seq_state(sim->seq);
}

int sim_verb(struct sim *sim, enum drv_seq_event_kind kind, const char *service)
{
	struct drv_seq_event ev = {.kind = kind, .service = service};

	return handle(sim, &ev);
}

int sim_event(struct sim *sim, const struct drv_seq_event *ev)
{
	return handle(sim, ev);
}

void sim_advance(struct sim *sim, int64_t ms)
{
	int64_t end = sim->now + ms;
	struct drv_seq_event tick = {.kind = DRV_SEQ_EV_TICK};

	while (sim->now < end) {
		long i = next_event(sim);
		int64_t next = drv_seq_next_deadline(sim->seq);

		if (i >= 0 && sim->q[i].at < next)
			next = sim->q[i].at;
		sim->now = next < end ? next : end;
		sim_deliver(sim);
		handle(sim, &tick);
	}
}

/* ---- records ---- */

const struct sim_send *sim_find(const struct sim *sim, const char *suffix)
{
	for (size_t i = 0; i < sim->n_sends; i++) {
		size_t n = strlen(sim->sends[i].id), m = strlen(suffix);

		if (n >= m && strcmp(sim->sends[i].id + n - m, suffix) == 0)
			return &sim->sends[i];
	}
	return NULL;
}

static bool matches(const struct sim *sim, const struct sim_send *r, enum drv_seq_step_kind kind,
                    const char *service, const char *agent)
{
	return r->step == (int)kind &&
	       (service == NULL ||
	        (r->service >= 0 && strcmp(sim->plan->services[r->service].name, service) == 0)) &&
	       (agent == NULL || strcmp(r->agent, agent) == 0);
}

int sim_count(const struct sim *sim, enum drv_seq_step_kind kind, const char *service,
              const char *agent)
{
	int n = 0;

	for (size_t i = 0; i < sim->n_sends; i++)
		n += matches(sim, &sim->sends[i], kind, service, agent);
	return n;
}

long sim_order(const struct sim *sim, enum drv_seq_step_kind kind, const char *service, bool last)
{
	long o = -1;

	for (size_t i = 0; i < sim->n_sends; i++) {
		if (!matches(sim, &sim->sends[i], kind, service, NULL))
			continue;
		if (o < 0 || (last ? sim->sends[i].order > o : sim->sends[i].order < o))
			o = sim->sends[i].order;
	}
	return o;
}

int sim_action_of(const struct sim *sim, enum drv_seq_step_kind kind, const char *service,
                  const char *agent)
{
	for (size_t i = 0; i < sim->n_sends; i++) {
		if (matches(sim, &sim->sends[i], kind, service, agent))
			return sim->sends[i].action;
	}
	return -1;
}

char *sim_status_text(const struct sim *sim)
{
	json_t *st = drv_seq_status(sim->seq, true);
	char *text;

	json_object_del(st, "started_at");
	json_object_del(st, "ended_at");
	text = json_dumps(st, JSON_SORT_KEYS | JSON_INDENT(1));
	json_decref(st);
	return text;
}
