/*
 * seq_core.c: the helpers every file of the sequencer calls: taking an
 * action, logging, notifications, the reason, state changes, service
 * outcomes and which strategy or hook list applies. A leaf: it calls no
 * other file of the sequencer but seq_target.c's seq_agent.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "seq_int.h"

/* ---- actions ---- */

void drv_seq_actions_clear(struct drv_seq_actions *a)
{
	a->n = 0;
	a->persist = false;
}

void drv_seq_actions_free(struct drv_seq_actions *a)
{
	free(a->v);
	memset(a, 0, sizeof(*a));
}

struct drv_seq_action *seq_act(struct drv_seq *s, enum drv_seq_action_kind kind)
{
	struct drv_seq_actions *o = s->out;
	struct drv_seq_action *a;

	s->changed = true;
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		struct drv_seq_action *v = realloc(o->v, cap * sizeof(*v));

		if (v == NULL) {
			s->oom = true;
			return NULL;
		}
		o->v = v;
		o->cap = cap;
	}
	o->persist = true;
	a = &o->v[o->n++];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->service = -1;
	a->hook = -1;
	a->percent = -1;
	a->check = -1;
	a->slot = "";
	return a;
}

void seq_log(struct drv_seq *s, const char *fmt, ...)
{
	struct drv_seq_action *a = seq_act(s, DRV_SEQ_ACT_LOG);
	va_list ap;

	if (a == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(a->text, sizeof(a->text), fmt, ap);
	va_end(ap);
}

void seq_notify(struct drv_seq *s, enum drv_plan_event ev, const char *fmt, ...)
{
	struct drv_seq_action *a = seq_act(s, DRV_SEQ_ACT_NOTIFY);
	va_list ap;

	if (a == NULL)
		return;
	a->event = ev;
	va_start(ap, fmt);
	vsnprintf(a->text, sizeof(a->text), fmt, ap);
	va_end(ap);
}

void seq_reason(struct drv_seq *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
	va_end(ap);
}

void seq_set_state(struct drv_seq *s, enum drv_seq_state st, const char *why)
{
	seq_log(s, "state %s -> %s: %s", drv_seq_state_name(s->state), drv_seq_state_name(st), why);
	s->state = (uint8_t)st;
	s->hook = 0;
	s->hook_wait = false;
	if (drv_seq_state_terminal(st)) {
		s->ended_at = s->now;
		s->paused = false;
	}
}

/* ---- service outcomes ---- */

void seq_svc_done(struct drv_seq *s, struct seq_svc *v)
{
	v->state = SVC_DONE;
	v->wait = W_NONE;
	if (v->ps->strategy.type == DRV_STRATEGY_BLUEGREEN)
		v->finalize_at = s->now + v->ps->strategy.finalize_after_ms;
	seq_log(s, "service %s done: %u of %u hosts on %s%s", v->ps->name, v->ok, v->n,
	        v->ps->version, v->failed ? " (some failed within the budget)" : "");
}

bool seq_svc_active(const struct drv_seq *s, const struct seq_svc *v)
{
	if (s->state != DRV_SEQ_TIERS && s->state != DRV_SEQ_POST && s->state != DRV_SEQ_FINALIZE)
		return false;
	return v->state == SVC_RUNNING ||
	       (v->state == SVC_DONE && v->ps->strategy.type == DRV_STRATEGY_BLUEGREEN &&
	        !v->fin_started);
}

/* ---- what applies ---- */

const struct seq_strategy *seq_strategy_of(const struct seq_svc *v)
{
	switch (v->ps->strategy.type) {
	case DRV_STRATEGY_CANARY: return &seq_canary;
	case DRV_STRATEGY_BLUEGREEN: return &seq_bluegreen;
	default: return &seq_rolling;
	}
}

/* The hook list the running phase works through; false outside hook phases. */
bool seq_phase_hooks(const struct drv_seq *s, struct seq_hook **k, const struct drv_plan_hook **h,
                     size_t *n, enum drv_seq_step_kind *kind)
{
	const struct drv_plan *p = s->plan;

	switch (s->state) {
	case DRV_SEQ_PRE:
		*k = s->pre, *h = p->pre, *n = p->n_pre, *kind = DRV_SEQ_STEP_PRE;
		return true;
	case DRV_SEQ_MIGRATE:
		*k = s->mig, *h = p->migrations, *n = p->n_migrations, *kind = DRV_SEQ_STEP_UP;
		return true;
	case DRV_SEQ_POST:
		*k = s->post, *h = p->post, *n = p->n_post, *kind = DRV_SEQ_STEP_POST;
		return true;
	default: return false;
	}
}
