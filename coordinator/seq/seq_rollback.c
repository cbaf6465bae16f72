/*
 * seq_rollback.c: what happens when a failure budget is breached, and the
 * rollback itself.
 *
 * A breach rolls back what the failed service's policy says: the service
 * (the others of its tier finish, then the deployment ends), its tier, or
 * the whole deployment (tiers in reverse order, then migrations down in
 * reverse), or nothing (rollback: none: the deployment fails where it
 * stands). A service rolls back in waves (rolling: max_unavailable hosts at
 * a time; canary and blue-green: all at once), with the strategy's traffic
 * moves before and after, using ACTIVATE_PREVIOUS: no pull, no canary
 * replay. Every rollback step is health-gated by the agent and counted;
 * a rollback with failures ends FAILED, else ROLLED_BACK.
 */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "seq_int.h"

#include "textcut.h"

/* A host's reason inside a breach: room for the agent and the budget's words. */
#define WHY_MAX 120

int seq_rb_action(const struct seq_svc *v, const struct seq_host *h, const char **slot)
{
	bool bg = v->ps->strategy.type == DRV_STRATEGY_BLUEGREEN;
	const char *new_slot = seq_is_new_green(h) ? "green" : "blue";
	const char *old_slot = seq_is_new_green(h) ? "blue" : "green";

	*slot = "";
	if (seq_sets(v))
		return DROVER__ACTION__ACTION_STOP; /* the new set goes back to idle */
	if (bg && (!v->fin_started || !(h->flags & HF_PREV))) {
		*slot = new_slot; /* blue still runs (or there is none): stop green */
		return DROVER__ACTION__ACTION_STOP;
	}
	if (!(h->flags & HF_PREV))
		return DROVER__ACTION__ACTION_STOP; /* first release: nothing to go back to */
	if (bg)
		*slot = old_slot;
	return DROVER__ACTION__ACTION_ACTIVATE_PREVIOUS;
}

void seq_fail(struct drv_seq *s, const char *why)
{
	if (drv_seq_state_terminal(s->state))
		return;
	snprintf(s->reason, sizeof(s->reason), "%s", why);
	seq_set_state(s, DRV_SEQ_FAILED, why);
	seq_notify(s, DRV_EVENT_FAILED, "%s %s failed: %s", s->plan->deployment, s->plan->version,
	           why);
}

/* Forget outstanding forward work of v: its late reports change nothing. */
static void svc_halt(struct drv_seq *s, struct seq_svc *v)
{
	for (uint32_t hi = 0; hi < v->n; hi++) {
		for (int k = 0; k < K_COUNT; k++) {
			if (v->hosts[hi].st[k] == ST_SENT && k != K_ROLLBACK)
				v->hosts[hi].st[k] = ST_ABANDONED;
		}
	}
	if (v->wave_kind != K_ROLLBACK)
		v->inflight = 0;
	if (v->state != SVC_RB)
		v->op = OP_NONE;
	v->wait = W_NONE;
	if (v->state == SVC_RUNNING) {
		v->state = SVC_HALTED;
		seq_log(s, "service %s halted", v->ps->name);
	}
	s->changed = true;
}

void seq_halt_tier(struct drv_seq *s, uint32_t tier)
{
	const struct drv_plan_tier *t = &s->plan->tiers[tier];

	for (size_t i = t->first; i < t->first + t->n; i++)
		svc_halt(s, &s->svcs[i]);
}

static void abandon_hooks(struct drv_seq *s)
{
	const struct drv_plan *p = s->plan;
	struct seq_hook *lists[] = {s->pre, s->mig, s->post};
	size_t counts[] = {p->n_pre, p->n_migrations, p->n_post};

	for (int l = 0; l < 3; l++) {
		for (size_t i = 0; i < counts[l]; i++) {
			for (uint32_t j = 0; j < lists[l][i].n; j++) {
				if (lists[l][i].st[j] == ST_SENT)
					lists[l][i].st[j] = ST_ABANDONED;
			}
		}
	}
	s->hook_wait = false;
	s->hook_inflight = 0;
}

/* A retry after a failed rollback redoes only what failed. */
static void rb_reset_failed(struct drv_seq *s)
{
	for (size_t i = 0; i < s->plan->n_services; i++) {
		struct seq_svc *v = &s->svcs[i];

		if (v->state != SVC_RB_DONE || v->rb_failed == 0)
			continue;
		for (uint32_t hi = 0; hi < v->n; hi++) {
			if (ST_BAD(v->hosts[hi].st[K_ROLLBACK]))
				v->hosts[hi].st[K_ROLLBACK] = ST_NONE;
		}
		v->state = SVC_HALTED;
		v->rb = RB_NONE;
		v->rb_failed = 0;
	}
	s->rb_failures = 0;
	s->rb_first_fail = 0;
}

void seq_rollback_begin(struct drv_seq *s, int32_t from, int32_t to, bool mig, const char *why)
{
	if (s->state == DRV_SEQ_FAILED && s->rb_started)
		rb_reset_failed(s);
	snprintf(s->reason, sizeof(s->reason), "%s", why);
	abandon_hooks(s);
	for (size_t i = 0; i < s->plan->n_services; i++)
		svc_halt(s, &s->svcs[i]);
	s->rb_tier = from;
	s->rb_stop = to;
	s->rb_mig = mig;
	s->rb_mig_i = mig ? (int32_t)s->mig_done - 1 : -1;
	s->rb_mig_wait = false;
	s->rb_started = true;
	s->rb_gen++;
	s->paused = false;
	s->failing = true;
	s->ended_at = 0;
	seq_set_state(s, DRV_SEQ_ROLLBACK, why);
	seq_notify(s, DRV_EVENT_ROLLBACK_STARTED, "%s %s: rolling back %s: %s", s->plan->deployment,
	           s->plan->version,
	           from < 0             ? "migrations"
	           : to == from && !mig ? "one tier"
	                                : "the deployment",
	           why);
}

void seq_breach(struct drv_seq *s, struct seq_svc *v, const char *why)
{
	enum drv_plan_rollback scope = v->ps->failure.rollback;
	int32_t tier = (int32_t)v->ps->tier, cur = (int32_t)s->tier;
	char buf[DRV_SEQ_TEXT_MAX], cut[DRV_SEQ_TEXT_MAX], tail[64];
	size_t room;
	int n, m;

	if (s->state != DRV_SEQ_TIERS && s->state != DRV_SEQ_POST && s->state != DRV_SEQ_FINALIZE)
		return;
	if (v->state == SVC_RB || v->state == SVC_RB_DONE)
		return;
	if (s->state != DRV_SEQ_TIERS)
		cur = (int32_t)s->plan->n_tiers - 1;
	snprintf(v->why, sizeof(v->why), "%s",
	         drv_text_cut(cut, sizeof(cut), why, sizeof(cut) - 1));
	/* The counts at the end always fit: the cause is cut to what is left. */
	n = snprintf(buf, sizeof(buf), "service %s: ", v->ps->name);
	m = snprintf(tail, sizeof(tail), " (%u of %u hosts failed)", v->failed, v->n);
	room = sizeof(buf) - 1 > (size_t)(n + m) ? sizeof(buf) - 1 - (size_t)(n + m) : 0;
	snprintf(buf + n, sizeof(buf) - (size_t)n, "%s%s",
	         drv_text_cut(cut, sizeof(cut), why, room), tail);
	seq_log(s, "breach: %s; rollback scope %s", buf, drv_plan_rollback_name(scope));
	if (scope == DRV_ROLLBACK_TIER && tier != cur)
		scope = DRV_ROLLBACK_DEPLOYMENT; /* later tiers stand on it */
	switch (scope) {
	case DRV_ROLLBACK_NONE:
		for (size_t i = 0; i < s->plan->n_services; i++)
			svc_halt(s, &s->svcs[i]);
		seq_fail(s, buf);
		break;
	case DRV_ROLLBACK_SERVICE:
		snprintf(s->reason, sizeof(s->reason), "%s", buf);
		s->failing = true;
		seq_notify(s, DRV_EVENT_ROLLBACK_STARTED, "%s %s: rolling back service %s: %s",
		           s->plan->deployment, s->plan->version, v->ps->name, why);
		seq_svc_rb_begin(s, v);
		break;
	case DRV_ROLLBACK_TIER: seq_rollback_begin(s, cur, cur, false, buf); break;
	case DRV_ROLLBACK_DEPLOYMENT: seq_rollback_begin(s, cur, 0, true, buf); break;
	}
}

void seq_svc_rb_begin(struct drv_seq *s, struct seq_svc *v)
{
	svc_halt(s, v);
	v->state = SVC_RB;
	v->rb = RB_NONE;
	v->rb_cursor = 0;
	v->inflight = 0;
	seq_log(s, "service %s: rolling back", v->ps->name);
	s->changed = true;
}

/* Send the next wave of rollback steps; false when every touched host is done. */
static bool rb_next_wave(struct drv_seq *s, struct seq_svc *v)
{
	uint32_t batch = seq_strategy_of(v)->rb_batch(v), sent = 0;

	while (v->rb_cursor < v->n && sent < batch) {
		struct seq_host *h = &v->hosts[v->rb_cursor];

		if (h->st[K_START] != ST_NONE && h->st[K_ROLLBACK] != ST_OK) {
			if (sent == 0)
				seq_wave_begin(s, v, K_ROLLBACK);
			seq_send_host(s, v, v->rb_cursor, K_ROLLBACK);
			sent++;
		}
		v->rb_cursor++;
	}
	return sent > 0;
}

void seq_svc_rb_drive(struct drv_seq *s, struct seq_svc *v)
{
	for (;;) {
		switch (v->rb) {
		case RB_NONE:
			v->rb = RB_BEFORE;
			s->changed = true;
			if (seq_strategy_of(v)->rb_before(s, v))
				return;
			break;
		case RB_BEFORE:
			if (v->op != OP_NONE)
				return;
			v->rb = RB_STEPS;
			break;
		case RB_STEPS:
			if (v->inflight > 0 || rb_next_wave(s, v))
				return;
			v->rb = RB_AFTER;
			s->changed = true;
			if (seq_strategy_of(v)->rb_after(s, v))
				return;
			break;
		case RB_AFTER:
			if (v->op != OP_NONE)
				return;
			v->rb = RB_END;
			break;
		default:
			v->state = SVC_RB_DONE;
			s->changed = true;
			seq_log(s, "service %s rolled back: %u host(s) back%s", v->ps->name,
			        v->rb_ok, v->rb_failed ? ", with failures" : "");
			return;
		}
	}
}

/* Migrations down, last applied first; a failure stops here. */
static bool rb_migrations(struct drv_seq *s)
{
	const struct drv_plan_hook *h;
	struct seq_hook *k;

	if (s->rb_mig_wait) {
		if (s->rb_mig_inflight > 0)
			return false;
		s->rb_mig_wait = false;
		if (s->rb_failures > 0) {
			seq_log(s, "migration %s did not go down",
			        s->plan->migrations[s->rb_mig_i].name);
			return true;
		}
		seq_log(s, "migration %s is down", s->plan->migrations[s->rb_mig_i].name);
		s->mig_done = (uint32_t)s->rb_mig_i;
		s->rb_mig_i--;
		s->changed = true;
	}
	if (!s->rb_mig || s->rb_mig_i < 0 || s->rb_failures > 0)
		return true;
	h = &s->plan->migrations[s->rb_mig_i];
	k = &s->mig[s->rb_mig_i];
	s->rb_mig_wait = true;
	s->rb_mig_inflight = k->n;
	s->rb_mig_deadline = s->now + h->timeout_ms + DRV_SEQ_SLACK_MS;
	seq_log(s, "migration %s: running down on %u host(s)", h->name, k->n);
	for (uint32_t j = 0; j < k->n; j++) {
		k->st2[j] = ST_SENT;
		seq_emit_hook(s, DRV_SEQ_STEP_DOWN, (uint32_t)s->rb_mig_i, j);
	}
	return false;
}

static void rb_end(struct drv_seq *s)
{
	char why[DRV_SEQ_TEXT_MAX];

	snprintf(why, sizeof(why), "%s", s->reason);
	if (s->rb_failures > 0) {
		seq_reason(s, "rollback incomplete (%u failure(s)%s%s); %s", s->rb_failures,
		           s->rb_first_fail ? ", first on " : "",
		           s->rb_first_fail ? seq_agent(s, s->rb_first_fail - 1) : "", why);
		seq_set_state(s, DRV_SEQ_FAILED, s->reason);
		seq_notify(s, DRV_EVENT_FAILED, "%s %s: %s", s->plan->deployment, s->plan->version,
		           s->reason);
		return;
	}
	seq_set_state(s, DRV_SEQ_ROLLED_BACK, why);
	seq_notify(s, DRV_EVENT_ROLLED_BACK, "%s %s rolled back: %s", s->plan->deployment,
	           s->plan->version, why);
}

void seq_rb_drive(struct drv_seq *s)
{
	while (s->rb_tier >= 0 && s->rb_tier >= s->rb_stop) {
		const struct drv_plan_tier *t = &s->plan->tiers[s->rb_tier];
		bool settled = true;

		for (size_t i = t->first; i < t->first + t->n; i++) {
			struct seq_svc *v = &s->svcs[i];

			if (v->state == SVC_PENDING || v->state == SVC_RB_DONE)
				continue;
			if (v->state != SVC_RB)
				seq_svc_rb_begin(s, v);
			seq_svc_rb_drive(s, v);
			settled &= v->state == SVC_RB_DONE;
		}
		if (!settled)
			return;
		seq_log(s, "tier %s rolled back", t->name);
		s->rb_tier--;
		s->changed = true;
	}
	if (rb_migrations(s))
		rb_end(s);
}

void seq_host_failed(struct drv_seq *s, struct seq_svc *v, uint32_t hi, const char *why)
{
	const struct drv_plan_failure *f = &v->ps->failure;
	uint32_t total, batch, budget, size = v->cursor - v->batch_start;
	char buf[DRV_SEQ_TEXT_MAX], cut[WHY_MAX + 1];

	v->failed++;
	v->wave_failed++;
	s->failed_hosts++;
	seq_log(s, "host %s failed in %s: %s", seq_agent(s, v->hosts[hi].agent), v->ps->name,
	        why != NULL && why[0] ? why : "no reason given");
	if (!seq_svc_active(s, v))
		return;
	total = drv_plan_amount_of(f->max_failed_hosts, v->n, false);
	batch = f->per_batch_set ? drv_plan_amount_of(f->max_failed_per_batch, size, false) : total;
	if (v->ps->strategy.type == DRV_STRATEGY_BLUEGREEN)
		total = batch = 0; /* green is all or nothing */
	budget = s->plan->has_budget
	                 ? drv_plan_amount_of(s->plan->max_failed_hosts, s->total_hosts, false)
	                 : UINT32_MAX;
	if (v->failed <= total && v->wave_failed <= batch && s->failed_hosts <= budget)
		return;
	snprintf(buf, sizeof(buf), "%s %s (%s): failed hosts over the %s budget",
	         seq_agent(s, v->hosts[hi].agent),
	         ST_BAD(v->hosts[hi].st[K_START]) ? "failed" : "unhealthy",
	         drv_text_cut(cut, sizeof(cut), why != NULL && why[0] ? why : "no reason given",
	                      WHY_MAX),
	         v->failed > total        ? "service's"
	         : v->wave_failed > batch ? "per-batch"
	                                  : "deployment's");
	seq_breach(s, v, buf);
}
