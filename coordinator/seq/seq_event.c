/*
 * seq_event.c: what comes back: agent reports (step outcomes, health
 * transitions), traffic and metric results, and deadlines passing. Each
 * outcome is recorded on its host; the waves, hooks and operations that
 * complete are handed back to the phases (sequencer.c).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "seq_int.h"
#include "textcut.h"

/* ---- reports ---- */

static void wave_done(struct drv_seq *s, struct seq_svc *v)
{
	s->changed = true;
	if (v->wave_kind == K_START && v->state == SVC_RUNNING && v->wait == W_WAVE)
		v->wait = W_NONE;
	else if (v->wave_kind == K_FINALIZE) {
		v->finalized = true;
		seq_log(s, "service %s finalized%s", v->ps->name,
		        v->fin_failed ? " (some hosts did not confirm)" : "");
	}
}

/* One step of host hi of v ended (st: ST_OK, ST_FAILED or ST_TIMEOUT). */
static void svc_step_ended(struct drv_seq *s, struct seq_svc *v, uint32_t hi, int kind, int st,
                           const char *why)
{
	v->hosts[hi].st[kind] = (uint8_t)st;
	if (v->inflight > 0)
		v->inflight--;
	if (kind == K_START) {
		if (st == ST_OK)
			v->ok++;
		else
			seq_host_failed(s, v, hi, why);
	} else if (kind == K_ROLLBACK) {
		if (st == ST_OK)
			v->rb_ok++;
		else {
			v->rb_failed++;
			if (s->rb_failures++ == 0)
				s->rb_first_fail = v->hosts[hi].agent + 1;
			seq_log(s, "host %s did not roll back %s: %s",
			        seq_agent(s, v->hosts[hi].agent), v->ps->name,
			        st == ST_TIMEOUT ? "deadline passed"
			        : why            ? why
			                         : "failed");
		}
	} else if (kind == K_FINALIZE && st != ST_OK) {
		v->fin_failed++;
	}
	if (v->inflight == 0)
		wave_done(s, v);
}

static void prestage_ended(struct drv_seq *s, struct seq_svc *v, uint32_t hi, int st,
                           const char *why)
{
	char buf[DRV_SEQ_TEXT_MAX], cut[121];

	v->hosts[hi].st[K_PRESTAGE] = (uint8_t)st;
	if (s->prestage_inflight > 0)
		s->prestage_inflight--;
	s->changed = true;
	if (st == ST_OK)
		return;
	snprintf(buf, sizeof(buf), "prestage of %s on %s %s: %s; no host was changed", v->ps->name,
	         seq_agent(s, v->hosts[hi].agent), st == ST_TIMEOUT ? "timed out" : "failed",
	         drv_text_cut(cut, sizeof(cut), why ? why : "", 120));
	seq_fail(s, buf);
}

static void op_complete(struct drv_seq *s, struct seq_svc *v, bool ok, const char *why)
{
	char buf[DRV_SEQ_TEXT_MAX], cut[151];
	int op = v->op;

	if (op == OP_CHECK) {
		seq_check_done(s, v, ok ? DRV_SEQ_R_OK : DRV_SEQ_R_FAILED, why);
		return;
	}
	v->op = OP_NONE;
	v->op_inflight = 0;
	s->changed = true;
	if (op == OP_TRAFFIC && ok && !v->op_to_new &&
	    v->ps->strategy.type == DRV_STRATEGY_BLUEGREEN)
		v->back = true; /* a rollback's switch back to the old slot or set */
	if (op == OP_METRIC && ok && v->metric > v->ps->strategy.metric_max) {
		snprintf(buf, sizeof(buf), "metric %g above its maximum %g", v->metric,
		         v->ps->strategy.metric_max);
		ok = false;
		why = buf;
	} else if (!ok) {
		snprintf(buf, sizeof(buf), "%s failed: %s",
		         op == OP_METRIC ? "metric check" : "traffic switch",
		         drv_text_cut(cut, sizeof(cut), why ? why : "", 150));
		why = buf;
	}
	if (v->state == SVC_RUNNING && v->wait == W_OP) {
		v->wait = W_NONE;
		if (!ok)
			seq_breach(s, v, why);
	} else if (v->state == SVC_RB && !ok) {
		v->rb_failed++;
		s->rb_failures++;
		seq_log(s, "service %s: %s during rollback", v->ps->name, why);
	} else if (v->state == SVC_DONE && !ok) {
		seq_breach(s, v, why);
	}
}

static void hook_ended(struct drv_seq *s, struct seq_hook *k, uint32_t j, bool down, int st)
{
	if (down) {
		k->st2[j] = (uint8_t)st;
		if (s->rb_mig_inflight > 0)
			s->rb_mig_inflight--;
	} else {
		k->st[j] = (uint8_t)st;
		if (s->hook_inflight > 0)
			s->hook_inflight--;
		if (st != ST_OK)
			s->hook_failed++;
	}
	if (down && st != ST_OK && s->rb_failures++ == 0)
		s->rb_first_fail = k->agents[j] + 1;
	s->changed = true;
}

static int report_hook(struct drv_seq *s, const struct drv_seq_id *id, uint32_t agent, int st)
{
	enum drv_seq_step_kind kind;
	const struct drv_plan_hook *h;
	struct seq_hook *k;
	size_t n;
	uint32_t idx = id->n[0], j = id->n[1];

	if (id->kind == DRV_SEQ_STEP_DOWN) {
		idx = id->n[1], j = id->n[2];
		if (id->count != 3 || idx >= s->plan->n_migrations || j >= s->mig[idx].n)
			return DRV_EINVAL;
		if (s->mig[idx].agents[j] != agent)
			return DRV_EINVAL;
		if (id->n[0] == s->rb_gen && s->rb_mig_wait && (int32_t)idx == s->rb_mig_i &&
		    s->mig[idx].st2[j] == ST_SENT)
			hook_ended(s, &s->mig[idx], j, true, st);
		return DRV_OK;
	}
	k = seq_hook_list(s, (enum drv_seq_step_kind)id->kind, idx);
	if (id->count != 2 || k == NULL || j >= k->n)
		return DRV_EINVAL;
	if (k->agents[j] != agent)
		return DRV_EINVAL;
	if (seq_phase_hooks(s, &k, &h, &n, &kind) && kind == (enum drv_seq_step_kind)id->kind &&
	    s->hook_wait && s->hook == idx && k[idx].st[j] == ST_SENT)
		hook_ended(s, &k[idx], j, false, st);
	return DRV_OK;
}

static int report_traffic_hook(struct drv_seq *s, const struct drv_seq_id *id, uint32_t agent,
                               int st, const char *why)
{
	struct seq_svc *v;
	uint32_t j = id->n[2];

	if (id->count != 3 || id->n[0] >= s->plan->n_services)
		return DRV_EINVAL;
	v = &s->svcs[id->n[0]];
	if (j >= v->traffic.n || v->traffic.agents[j] != agent)
		return DRV_EINVAL;
	if (v->op != OP_TRAFFIC || id->n[1] != v->op_n || v->traffic.st[j] != ST_SENT)
		return DRV_OK;
	v->traffic.st[j] = (uint8_t)st;
	v->op_failed |= st != ST_OK;
	if (v->op_inflight > 0 && --v->op_inflight == 0)
		op_complete(s, v, !v->op_failed, why ? why : "traffic hook failed");
	s->changed = true;
	return DRV_OK;
}

/* STOP of the old set's host j (blue-green across sets). */
static int report_decommission(struct drv_seq *s, struct seq_svc *v, uint32_t j, uint32_t agent,
                               int st)
{
	if (j >= v->live.n || v->live.agents[j] != agent)
		return DRV_EINVAL;
	if (v->live.st[j] != ST_SENT || v->wave_kind != K_FINALIZE)
		return DRV_OK; /* duplicate or stale */
	v->live.st[j] = (uint8_t)st;
	if (st != ST_OK) {
		v->fin_failed++;
		seq_log(s, "host %s of set %s did not stop %s", seq_agent(s, agent),
		        seq_set_name(v, false), v->ps->name);
	}
	if (v->inflight > 0 && --v->inflight == 0)
		wave_done(s, v);
	s->changed = true;
	return DRV_OK;
}

static int report_service(struct drv_seq *s, const struct drv_seq_id *id, uint32_t agent, int st,
                          const char *why)
{
	static const int kinds[] = {[DRV_SEQ_STEP_PRESTAGE] = K_PRESTAGE,
	                            [DRV_SEQ_STEP_START] = K_START,
	                            [DRV_SEQ_STEP_ROLLBACK] = K_ROLLBACK,
	                            [DRV_SEQ_STEP_FINALIZE] = K_FINALIZE};
	int kind = kinds[id->kind], off = id->kind == DRV_SEQ_STEP_ROLLBACK;
	struct seq_svc *v;
	uint32_t hi;

	if (id->count != 2 + off || id->n[off] >= s->plan->n_services)
		return DRV_EINVAL;
	v = &s->svcs[id->n[off]];
	hi = id->n[off + 1];
	if (kind == K_FINALIZE && seq_sets(v) && hi >= v->n)
		return report_decommission(s, v, hi - v->n, agent, st);
	if (hi >= v->n || v->hosts[hi].agent != agent)
		return DRV_EINVAL;
	if (v->hosts[hi].st[kind] != ST_SENT || (off && id->n[0] != s->rb_gen))
		return DRV_OK; /* duplicate, stale or abandoned */
	if (kind == K_PRESTAGE) {
		if (s->state == DRV_SEQ_PRESTAGE)
			prestage_ended(s, v, hi, st, why);
		return DRV_OK;
	}
	if (v->wave_kind == kind)
		svc_step_ended(s, v, hi, kind, st, why);
	return DRV_OK;
}

static int on_health(struct drv_seq *s, const struct drv_seq_event *ev, uint32_t agent)
{
	const struct drv_plan_service *ps =
	        ev->service ? drv_plan_service(s->plan, ev->service) : NULL;
	struct seq_svc *v;
	struct seq_host *h;
	int32_t hi;

	if (ps == NULL)
		return DRV_OK; /* not a service of this deployment */
	v = &s->svcs[ps - s->plan->services];
	hi = seq_host_find(s, v, agent);
	if (hi < 0)
		return DRV_OK;
	h = &v->hosts[hi];
	if (ev->result == DRV_SEQ_R_HEALTH_UP) {
		h->flags &= (uint8_t)~HF_UNHEALTHY;
		return DRV_OK;
	}
	if (h->st[K_START] != ST_OK || (h->flags & HF_UNHEALTHY) || !seq_svc_active(s, v))
		return DRV_OK;
	h->flags |= HF_UNHEALTHY;
	if (v->ok > 0)
		v->ok--;
	s->changed = true;
	seq_host_failed(s, v, (uint32_t)hi, ev->message ? ev->message : "became unhealthy");
	return DRV_OK;
}

int seq_on_report(struct drv_seq *s, const struct drv_seq_event *ev)
{
	struct drv_seq_id id;
	uint32_t agent;
	int st;

	if (ev->agent == NULL || seq_agent_find(s, ev->agent, &agent) != DRV_OK)
		return ev->result == DRV_SEQ_R_HEALTH_DOWN || ev->result == DRV_SEQ_R_HEALTH_UP
		               ? DRV_OK
		               : DRV_EINVAL;
	if (ev->result == DRV_SEQ_R_HEALTH_DOWN || ev->result == DRV_SEQ_R_HEALTH_UP)
		return on_health(s, ev, agent);
	if (seq_parse_id(s, ev->id, &id) != DRV_OK || id.kind >= DRV_SEQ_ID_METRIC)
		return DRV_EINVAL;
	if (ev->result == DRV_SEQ_R_PROGRESS || drv_seq_state_terminal(s->state))
		return DRV_OK;
	st = ev->result == DRV_SEQ_R_OK ? ST_OK : ST_FAILED;
	switch (id.kind) {
	case DRV_SEQ_STEP_PRE:
	case DRV_SEQ_STEP_UP:
	case DRV_SEQ_STEP_DOWN:
	case DRV_SEQ_STEP_POST: return report_hook(s, &id, agent, st);
	case DRV_SEQ_STEP_TRAFFIC: return report_traffic_hook(s, &id, agent, st, ev->message);
	default: return report_service(s, &id, agent, st, ev->message);
	}
}

/* EV_TRAFFIC and EV_METRIC */
int seq_on_op(struct drv_seq *s, const struct drv_seq_event *ev)
{
	struct drv_seq_id id;
	struct seq_svc *v;
	int want = ev->kind == DRV_SEQ_EV_METRIC ? DRV_SEQ_ID_METRIC : DRV_SEQ_ID_TRAFFIC;

	if (seq_parse_id(s, ev->id, &id) != DRV_OK || id.kind != want || id.count != 2 ||
	    id.n[0] >= s->plan->n_services)
		return DRV_EINVAL;
	v = &s->svcs[id.n[0]];
	if ((want == DRV_SEQ_ID_METRIC ? v->op != OP_METRIC && v->op != OP_CHECK
	                               : v->op != OP_TRAFFIC) ||
	    id.n[1] != v->op_n || drv_seq_state_terminal(s->state))
		return DRV_OK; /* stale */
	if (v->op == OP_CHECK) {
		seq_check_done(s, v, ev->result, ev->message);
		return DRV_OK;
	}
	if (want == DRV_SEQ_ID_METRIC)
		v->metric = ev->value;
	seq_log(s, "service %s: %s %s%s%s", v->ps->name,
	        want == DRV_SEQ_ID_METRIC ? "metric" : "traffic",
	        ev->result == DRV_SEQ_R_OK ? "ok" : "failed", ev->message ? ": " : "",
	        ev->message ? ev->message : "");
	op_complete(s, v, ev->result == DRV_SEQ_R_OK, ev->message);
	return DRV_OK;
}

/* ---- deadlines and timers ---- */

static void expire_wave(struct drv_seq *s, struct seq_svc *v)
{
	uint32_t from = v->wave_kind == K_START ? v->batch_start : 0;
	uint32_t to = v->wave_kind == K_START ? v->cursor : v->n;

	for (uint32_t hi = from; hi < to && v->inflight > 0; hi++) {
		if (v->hosts[hi].st[v->wave_kind] == ST_SENT)
			svc_step_ended(s, v, hi, v->wave_kind, ST_TIMEOUT,
			               "no report before the step's deadline");
	}
	for (uint32_t j = 0; v->wave_kind == K_FINALIZE && j < v->live.n && v->inflight > 0; j++) {
		if (v->live.st[j] == ST_SENT)
			report_decommission(s, v, j, v->live.agents[j], ST_TIMEOUT);
	}
	v->inflight = 0;
}

static void expire_prestage(struct drv_seq *s)
{
	for (size_t i = 0; i < s->plan->n_services && s->state == DRV_SEQ_PRESTAGE; i++) {
		struct seq_svc *v = &s->svcs[i];

		for (uint32_t hi = 0; hi < v->n && s->state == DRV_SEQ_PRESTAGE; hi++) {
			if (v->hosts[hi].st[K_PRESTAGE] == ST_SENT)
				prestage_ended(s, v, hi, ST_TIMEOUT,
				               "no report before the deadline");
		}
	}
}

static void expire_hooks(struct drv_seq *s)
{
	enum drv_seq_step_kind kind;
	const struct drv_plan_hook *h;
	struct seq_hook *k;
	size_t n;

	if (s->hook_wait && s->now >= s->hook_deadline && seq_phase_hooks(s, &k, &h, &n, &kind) &&
	    s->hook < n) {
		for (uint32_t j = 0; j < k[s->hook].n; j++) {
			if (k[s->hook].st[j] == ST_SENT)
				hook_ended(s, &k[s->hook], j, false, ST_TIMEOUT);
		}
		s->hook_inflight = 0;
	}
	if (s->rb_mig_wait && s->now >= s->rb_mig_deadline && s->rb_mig_i >= 0) {
		k = &s->mig[s->rb_mig_i];
		for (uint32_t j = 0; j < k->n; j++) {
			if (k->st2[j] == ST_SENT)
				hook_ended(s, k, j, true, ST_TIMEOUT);
		}
		s->rb_mig_inflight = 0;
	}
}

void seq_expire(struct drv_seq *s)
{
	if (drv_seq_state_terminal(s->state))
		return;
	if (s->state == DRV_SEQ_PRESTAGE && s->prestage_inflight > 0 &&
	    s->now >= s->prestage_deadline)
		expire_prestage(s);
	expire_hooks(s);
	for (size_t i = 0; i < s->plan->n_services; i++) {
		struct seq_svc *v = &s->svcs[i];

		if (v->inflight > 0 && s->now >= v->wave_deadline)
			expire_wave(s, v);
		if (v->op != OP_NONE && s->now >= v->op_deadline)
			op_complete(s, v, false, "no answer before the deadline");
		if (v->wait == W_PAUSE && s->now >= v->timer) {
			v->wait = W_NONE;
			s->changed = true;
		}
	}
}

int64_t drv_seq_next_deadline(const struct drv_seq *s)
{
	int64_t t = INT64_MAX;

#define EARLIER(x)                                                                                 \
	do {                                                                                       \
		if ((x) < t)                                                                       \
			t = (x);                                                                   \
	} while (0)
	if (!s->started || drv_seq_state_terminal(s->state))
		return INT64_MAX;
	if (s->state == DRV_SEQ_PRESTAGE && s->prestage_inflight > 0)
		EARLIER(s->prestage_deadline);
	if (s->hook_wait)
		EARLIER(s->hook_deadline);
	if (s->rb_mig_wait)
		EARLIER(s->rb_mig_deadline);
	for (size_t i = 0; i < s->plan->n_services; i++) {
		const struct seq_svc *v = &s->svcs[i];

		if (v->inflight > 0)
			EARLIER(v->wave_deadline);
		if (v->op != OP_NONE)
			EARLIER(v->op_deadline);
		if (v->wait == W_PAUSE)
			EARLIER(v->timer);
		if (s->bake_until > 0 && !s->baked && s->state == DRV_SEQ_TIERS)
			EARLIER(s->bake_until);
		if (v->state == SVC_DONE && v->ps->strategy.type == DRV_STRATEGY_BLUEGREEN &&
		    !v->fin_started && !s->paused && !s->failing)
			EARLIER(v->finalize_at);
	}
#undef EARLIER
	return t;
}
