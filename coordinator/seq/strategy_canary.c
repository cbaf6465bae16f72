/*
 * strategy_canary.c: canary releases. Each step (a cumulative percentage)
 * starts the new release on that share of the hosts (rounded up, at least
 * one); with traffic configured, HAProxy weights (or the traffic hook) give
 * the new release exactly that share of requests; then a pause (a duration,
 * or `manual` until `drover promote`) during which a host going unhealthy
 * counts as failed; then the analysis (an optional HTTP metric at most
 * `max`, then the service's Prometheus checks, seq_analysis.c). The step
 * after the last one ends the service.
 *
 * With an approval at this step (drv_seq_approve_at), the service then
 * waits (W_APPROVE) until the approval is given (docs/environments.md).
 *
 * Sub-states of a step: 0 start hosts, 1 traffic, 2 pause, 3 HTTP metric,
 * 5 Prometheus checks, 4 next step (5 was added later: saved states keep
 * their numbers); 6 a timed pause during which the Prometheus checks run in
 * rounds (seq_pause_checks): a failing one rolls back before the pause ends.
 */
#include <stdio.h>

#include "seq_int.h"

static uint32_t step_hosts(const struct seq_svc *v, uint32_t step)
{
	uint32_t c = drv_plan_amount_of((struct drv_plan_amount){v->ps->strategy.steps[step], true},
	                                v->n, true);

	return c == 0 ? 1 : c;
}

static bool has_traffic(const struct seq_svc *v)
{
	return v->ps->strategy.traffic.kind != DRV_TRAFFIC_NONE;
}

/* Sub-state 0: start this step's hosts; false when there are none. */
static bool start_hosts(struct drv_seq *s, struct seq_svc *v)
{
	const struct drv_plan_strategy *st = &v->ps->strategy;
	uint32_t target = step_hosts(v, v->step);

	if (v->cursor >= target)
		return false;
	seq_wave_begin(s, v, K_START);
	seq_log(s, "service %s: canary step %u/%zu (%u%%): %u more host(s)", v->ps->name,
	        v->step + 1, st->n_steps, st->steps[v->step], target - v->cursor);
	while (v->cursor < target)
		seq_send_host(s, v, v->cursor++, K_START);
	return true;
}

/* Sub-state 2: true when the service now waits. */
static bool pause_step(struct drv_seq *s, struct seq_svc *v)
{
	const struct drv_plan_strategy *st = &v->ps->strategy;

	if (v->step + 1 >= st->n_steps)
		return false; /* no pause after the last step */
	if (st->pause_manual) {
		v->wait = W_PROMOTE;
		seq_log(s, "service %s: canary at %u%%, waiting for promote", v->ps->name,
		        st->steps[v->step]);
		seq_notify(s, DRV_EVENT_AWAITING_PROMOTION, "%s: canary at %u%% awaits promote",
		           v->ps->name, st->steps[v->step]);
		return true;
	}
	if (st->pause_ms == 0)
		return false;
	if (v->ps->analysis.n_checks > 0) {
		v->sub = 6;
		v->pause_until = s->now + st->pause_ms;
		v->an_check = v->an_fails = 0;
		v->an_retry = false;
		seq_log(s, "service %s: canary at %u%%, pausing; the analysis runs meanwhile",
		        v->ps->name, st->steps[v->step]);
		return false;
	}
	v->wait = W_PAUSE;
	v->timer = s->now + st->pause_ms;
	return true;
}

/* After the step and its gates: true when the service now waits for the
 * approval at this step. */
static bool approval_step(struct drv_seq *s, struct seq_svc *v)
{
	const struct drv_plan_strategy *st = &v->ps->strategy;

	if (v->step + 1 >= st->n_steps || !seq_approval_at(s, st->steps[v->step]))
		return false;
	v->wait = W_APPROVE;
	seq_log(s, "service %s: canary at %u%%, waiting for approval", v->ps->name,
	        st->steps[v->step]);
	seq_notify(s, DRV_EVENT_AWAITING_APPROVAL, "%s: canary at %u%% awaits approval",
	           v->ps->name, st->steps[v->step]);
	return true;
}

static void canary_advance(struct drv_seq *s, struct seq_svc *v)
{
	const struct drv_plan_strategy *st = &v->ps->strategy;

	for (;;) {
		switch (v->sub) {
		case 0:
			if (s->paused)
				return;
			v->sub = 1;
			if (start_hosts(s, v))
				return;
			break;
		case 1:
			v->sub = 2;
			if (has_traffic(v)) {
				seq_traffic(s, v, st->steps[v->step], true);
				return;
			}
			break;
		case 2:
			v->sub = 3;
			if (pause_step(s, v))
				return;
			break;
		case 6: /* the pause with checks: then the checks once more (3, 5) */
			if (seq_pause_checks(s, v))
				return;
			v->sub = 3;
			break;
		case 3:
			v->sub = 5;
			if (st->metric_url != NULL) {
				seq_metric(s, v);
				return;
			}
			break;
		case 5: {
			char when[48];
			snprintf(when, sizeof(when), "after canary step %u", v->step + 1);
			if (seq_analysis_step(s, v, when))
				return;
			v->sub = 4;
			if (approval_step(s, v))
				return;
			break;
		}
		default:
			v->sub = 0;
			v->step++;
			if (v->step >= st->n_steps) {
				seq_svc_done(s, v);
				return;
			}
			break;
		}
	}
}

static bool canary_promote(struct drv_seq *s, struct seq_svc *v)
{
	if (v->sub == 6 && v->pause_until > s->now)
		v->pause_until = s->now; /* the pause ends once no check runs */
	if (v->wait != W_PROMOTE && v->wait != W_PAUSE)
		return v->sub == 6;
	v->wait = W_NONE;
	return true;
}

static uint32_t canary_rb_batch(const struct seq_svc *v)
{
	return v->n;
}

/* Before: new hosts out of rotation while some old ones serve. */
static bool canary_rb_before(struct drv_seq *s, struct seq_svc *v)
{
	if (!has_traffic(v) || v->cursor == 0 || v->cursor >= v->n)
		return false;
	seq_traffic(s, v, 0, false);
	return true;
}

/* After: every host is back on the old release, weights even again. */
static bool canary_rb_after(struct drv_seq *s, struct seq_svc *v)
{
	if (!has_traffic(v) || v->cursor == 0)
		return false;
	seq_traffic(s, v, -1, false);
	return true;
}

const struct seq_strategy seq_canary = {
        .name = "canary",
        .advance = canary_advance,
        .promote = canary_promote,
        .rb_batch = canary_rb_batch,
        .rb_before = canary_rb_before,
        .rb_after = canary_rb_after,
};
