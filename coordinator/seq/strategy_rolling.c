/*
 * strategy_rolling.c: rolling updates. Batches of max_unavailable hosts
 * (a count, or a percentage rounded down, at least one), never taking the
 * healthy hosts below min_healthy; each host is stopped, started on the new
 * release and health-gated by its agent. A batch starts when the previous
 * one has ended (every host succeeded, failed or passed its deadline) and
 * the service's Prometheus checks passed on it (sub 1: checks of the batch
 * just done are due).
 */
#include <stdio.h>

#include "seq_int.h"

static uint32_t batch_size(const struct seq_svc *v)
{
	const struct drv_plan_strategy *st = &v->ps->strategy;
	uint32_t max = drv_plan_amount_of(st->max_unavailable, v->n, false);
	uint32_t min_healthy = drv_plan_amount_of(st->min_healthy, v->n, true);
	uint32_t healthy = v->n - v->failed, left = v->n - v->cursor;

	if (max == 0)
		max = 1;
	if (healthy <= min_healthy)
		return 0;
	if (max > healthy - min_healthy)
		max = healthy - min_healthy;
	return max < left ? max : left;
}

static void rolling_advance(struct drv_seq *s, struct seq_svc *v)
{
	uint32_t b, per, batches;
	char when[48];

	if (v->sub == 1) {
		snprintf(when, sizeof(when), "after batch %u", v->step);
		if (seq_analysis_step(s, v, when))
			return;
		v->sub = 0;
	}
	if (v->cursor == v->n) {
		seq_svc_done(s, v);
		return;
	}
	if (s->paused)
		return;
	b = batch_size(v);
	if (b == 0) {
		seq_breach(s, v, "min_healthy would be broken by the next batch");
		return;
	}
	per = drv_plan_amount_of(v->ps->strategy.max_unavailable, v->n, false);
	per = per == 0 ? 1 : per;
	batches = (v->n + per - 1) / per;
	seq_wave_begin(s, v, K_START);
	v->step++;
	seq_log(s, "service %s: batch %u/%u: %u host(s) from %s", v->ps->name, v->step, batches, b,
	        seq_agent(s, v->hosts[v->cursor].agent));
	for (uint32_t i = 0; i < b; i++)
		seq_send_host(s, v, v->cursor++, K_START);
	v->sub = 1;
}

static bool rolling_promote(struct drv_seq *s, struct seq_svc *v)
{
	(void)s;
	(void)v;
	return false;
}

static uint32_t rolling_rb_batch(const struct seq_svc *v)
{
	uint32_t b = drv_plan_amount_of(v->ps->strategy.max_unavailable, v->n, false);

	return b == 0 ? 1 : b;
}

static bool rolling_no_traffic(struct drv_seq *s, struct seq_svc *v)
{
	(void)s;
	(void)v;
	return false;
}

const struct seq_strategy seq_rolling = {
        .name = "rolling",
        .advance = rolling_advance,
        .promote = rolling_promote,
        .rb_batch = rolling_rb_batch,
        .rb_before = rolling_no_traffic,
        .rb_after = rolling_no_traffic,
};
