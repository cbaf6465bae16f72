/*
 * seq_send.c: the actions that start work: SEND of a step to a host, waves
 * of steps, hook runs, traffic switches and metric reads (their ids come
 * from seq_id.c). The seq_emit_* functions only build the action, so
 * that resume can re-send exactly what is outstanding.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "seq_int.h"

/* ---- sending ---- */

bool seq_is_new_green(const struct seq_host *h)
{
	/* the new version goes to the slot that is not running */
	return (h->flags & HF_PREV) && !(h->flags & HF_PREV_GRN);
}

int64_t seq_budget(const struct seq_svc *v, int kind)
{
	const struct drv_plan_service *ps = v->ps;

	switch (kind) {
	case K_START:
	case K_ROLLBACK:
		return ps->stop_grace_ms + ps->health.initial_delay_ms + ps->health.deadline_ms;
	case K_FINALIZE: return ps->stop_grace_ms + DRV_SEQ_FINALIZE_MS;
	default: return 0;
	}
}

uint32_t seq_tier_of(const struct drv_seq *s, const struct seq_svc *v)
{
	(void)s;
	return (uint32_t)v->ps->tier;
}

bool seq_sets(const struct seq_svc *v)
{
	return v->ps->strategy.type == DRV_STRATEGY_BLUEGREEN && v->ps->strategy.n_sets > 0;
}

const char *seq_set_name(const struct seq_svc *v, bool new_set)
{
	uint8_t i = new_set ? v->set_new : (uint8_t)(1 - v->set_new);

	return seq_sets(v) && i < v->ps->strategy.n_sets ? v->ps->strategy.sets[i].name : "";
}

static void start_slot(const struct seq_svc *v, const struct seq_host *h, struct drv_seq_action *a)
{
	/* across sets a host runs one release at a time, on the service's port */
	if (v->ps->strategy.type != DRV_STRATEGY_BLUEGREEN || seq_sets(v)) {
		a->port = v->ps->port;
		return;
	}
	a->slot = seq_is_new_green(h) ? "green" : "blue";
	a->port = seq_is_new_green(h) ? v->ps->strategy.green_port : v->ps->port;
}

void seq_emit_host(struct drv_seq *s, struct seq_svc *v, uint32_t hi, int kind)
{
	static const enum drv_seq_step_kind kinds[K_COUNT] = {
	        [K_PRESTAGE] = DRV_SEQ_STEP_PRESTAGE,
	        [K_START] = DRV_SEQ_STEP_START,
	        [K_ROLLBACK] = DRV_SEQ_STEP_ROLLBACK,
	        [K_FINALIZE] = DRV_SEQ_STEP_FINALIZE,
	};
	struct seq_host *h = &v->hosts[hi];
	struct drv_seq_action *a = seq_act(s, DRV_SEQ_ACT_SEND);

	if (a == NULL)
		return;
	a->step = kinds[kind];
	seq_step_id(s, a->id, a->step, v->index, hi, 0);
	a->agent = seq_agent(s, h->agent);
	a->service = (int)v->index;
	a->deadline = kind == K_PRESTAGE ? s->prestage_deadline : v->wave_deadline;
	a->step_deadline_ms =
	        kind == K_PRESTAGE ? s->plan->prestage_timeout_ms : seq_budget(v, kind);
	switch (kind) {
	case K_PRESTAGE:
		a->action = DROVER__ACTION__ACTION_PRESTAGE;
		start_slot(v, h, a);
		break;
	case K_START:
		a->action = DROVER__ACTION__ACTION_START;
		start_slot(v, h, a);
		break;
	case K_ROLLBACK:
		a->action = seq_rb_action(v, h, &a->slot);
		a->port = strcmp(a->slot, "green") == 0 ? v->ps->strategy.green_port : v->ps->port;
		break;
	case K_FINALIZE:
		a->action = DROVER__ACTION__ACTION_FINALIZE;
		start_slot(v, h, a);
		break;
	}
}

void seq_emit_decommission(struct drv_seq *s, struct seq_svc *v, uint32_t j)
{
	struct drv_seq_action *a = seq_act(s, DRV_SEQ_ACT_SEND);

	if (a == NULL)
		return;
	a->step = DRV_SEQ_STEP_FINALIZE;
	seq_step_id(s, a->id, a->step, v->index, v->n + j, 0);
	a->agent = seq_agent(s, v->live.agents[j]);
	a->service = (int)v->index;
	a->action = DROVER__ACTION__ACTION_STOP;
	a->slot = "";
	a->port = v->ps->port;
	a->deadline = v->wave_deadline;
	a->step_deadline_ms = seq_budget(v, K_FINALIZE);
}

/* Stop the old set: its servers have had no traffic since the switch. */
void seq_decommission_begin(struct drv_seq *s, struct seq_svc *v)
{
	seq_wave_begin(s, v, K_FINALIZE);
	if (v->live.n == 0) {
		v->finalized = true;
		seq_log(s, "service %s finalized: no host in set %s to stop", v->ps->name,
		        seq_set_name(v, false));
		return;
	}
	seq_log(s, "service %s: decommissioning set %s (stopping %u host(s)); set %s stays live",
	        v->ps->name, seq_set_name(v, false), v->live.n, seq_set_name(v, true));
	v->inflight = v->live.n;
	for (uint32_t j = 0; j < v->live.n; j++) {
		v->live.st[j] = ST_SENT;
		seq_emit_decommission(s, v, j);
	}
}

void seq_send_host(struct drv_seq *s, struct seq_svc *v, uint32_t hi, int kind)
{
	v->hosts[hi].st[kind] = ST_SENT;
	if (kind == K_PRESTAGE)
		s->prestage_inflight++;
	else
		v->inflight++;
	seq_emit_host(s, v, hi, kind);
}

void seq_wave_begin(struct drv_seq *s, struct seq_svc *v, int kind)
{
	int64_t base = s->now;

	/* a rollback may queue behind a start the agent is still running */
	if (kind == K_ROLLBACK && v->wave_deadline > base && v->wave_kind == K_START)
		base = v->wave_deadline;
	v->wave_kind = (uint8_t)kind;
	v->inflight = 0;
	v->wave_failed = 0;
	v->wave_deadline = base + seq_budget(v, kind) + DRV_SEQ_SLACK_MS;
	if (kind == K_START) {
		v->batch_start = v->cursor;
		v->wait = W_WAVE;
	}
	s->changed = true;
}

/* The hook of a RUN_HOOK step kind and index. */
const struct drv_plan_hook *seq_plan_hook(const struct drv_seq *s, enum drv_seq_step_kind kind,
                                          uint32_t idx)
{
	const struct drv_plan *p = s->plan;

	switch (kind) {
	case DRV_SEQ_STEP_PRE: return idx < p->n_pre ? &p->pre[idx] : NULL;
	case DRV_SEQ_STEP_UP:
	case DRV_SEQ_STEP_DOWN: return idx < p->n_migrations ? &p->migrations[idx] : NULL;
	case DRV_SEQ_STEP_POST: return idx < p->n_post ? &p->post[idx] : NULL;
	case DRV_SEQ_STEP_TRAFFIC:
		return idx < p->n_services ? &p->services[idx].strategy.traffic.hook : NULL;
	default: return NULL;
	}
}

/* RUN_HOOK of hook idx (pre, up, down, post) on its host j. */
void seq_emit_hook(struct drv_seq *s, enum drv_seq_step_kind kind, uint32_t idx, uint32_t j)
{
	const struct drv_plan_hook *h = seq_plan_hook(s, kind, idx);
	const struct seq_hook *k = seq_hook_list(s, kind, idx);
	struct drv_seq_action *a = seq_act(s, DRV_SEQ_ACT_SEND);

	if (a == NULL)
		return;
	a->step = kind;
	seq_step_id(s, a->id, kind, idx, j, 0);
	a->agent = seq_agent(s, k->agents[j]);
	a->action = DROVER__ACTION__ACTION_RUN_HOOK;
	a->hook = (int)idx;
	a->step_deadline_ms = h->timeout_ms;
	a->deadline = kind == DRV_SEQ_STEP_DOWN ? s->rb_mig_deadline : s->hook_deadline;
}

/* The current traffic operation of v: a TRAFFIC action, or the traffic
 * hook's RUN_HOOK on every host still outstanding. */
void seq_emit_traffic(struct drv_seq *s, struct seq_svc *v)
{
	const struct drv_plan_traffic *t = &v->ps->strategy.traffic;
	struct drv_seq_action *a;

	for (uint32_t j = 0; t->kind == DRV_TRAFFIC_HOOK && j < v->traffic.n; j++) {
		if (v->traffic.st[j] != ST_SENT || (a = seq_act(s, DRV_SEQ_ACT_SEND)) == NULL)
			continue;
		a->step = DRV_SEQ_STEP_TRAFFIC;
		seq_step_id(s, a->id, DRV_SEQ_STEP_TRAFFIC, v->index, j, v->op_n);
		a->agent = seq_agent(s, v->traffic.agents[j]);
		a->action = DROVER__ACTION__ACTION_RUN_HOOK;
		a->service = (int)v->index;
		a->percent = v->op_percent;
		a->to_new = v->op_to_new;
		a->step_deadline_ms = t->hook.timeout_ms;
		a->deadline = v->op_deadline;
	}
	if (t->kind == DRV_TRAFFIC_HOOK || (a = seq_act(s, DRV_SEQ_ACT_TRAFFIC)) == NULL)
		return;
	snprintf(a->id, sizeof(a->id), "%s:traffic:%u:%u", s->id, v->index, v->op_n);
	a->service = (int)v->index;
	a->percent = v->op_percent;
	a->to_new = v->op_to_new;
	a->deadline = v->op_deadline;
}

void seq_traffic(struct drv_seq *s, struct seq_svc *v, int percent, bool to_new)
{
	const struct drv_plan_traffic *t = &v->ps->strategy.traffic;

	v->op = OP_TRAFFIC;
	v->op_n++;
	v->op_percent = percent;
	v->op_to_new = to_new;
	v->op_failed = false;
	v->op_deadline = s->now +
	                 (t->kind == DRV_TRAFFIC_HOOK ? t->hook.timeout_ms : t->timeout_ms) +
	                 DRV_SEQ_SLACK_MS;
	if (v->state == SVC_RUNNING)
		v->wait = W_OP;
	s->changed = true;
	if (t->kind == DRV_TRAFFIC_HOOK) {
		v->op_inflight = v->traffic.n;
		for (uint32_t j = 0; j < v->traffic.n; j++)
			v->traffic.st[j] = ST_SENT;
	}
	seq_emit_traffic(s, v);
}

void seq_emit_metric(struct drv_seq *s, struct seq_svc *v)
{
	struct drv_seq_action *a = seq_act(s, DRV_SEQ_ACT_METRIC);

	if (a == NULL)
		return;
	snprintf(a->id, sizeof(a->id), "%s:metric:%u:%u", s->id, v->index, v->op_n);
	a->service = (int)v->index;
	a->url = v->ps->strategy.metric_url;
	a->max = v->ps->strategy.metric_max;
	a->deadline = v->op_deadline;
}

void seq_metric(struct drv_seq *s, struct seq_svc *v)
{
	v->op = OP_METRIC;
	v->op_n++;
	v->op_failed = false;
	v->op_deadline = s->now + v->ps->strategy.metric_timeout_ms + DRV_SEQ_SLACK_MS;
	v->wait = W_OP;
	seq_emit_metric(s, v);
}
