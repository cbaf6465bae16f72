/*
 * seq_analysis.c: a service's Prometheus analysis (plan `analysis`), run
 * by the strategies at their checkpoints: after each canary step, before
 * and after a blue-green switch, after each rolling batch. The checks run
 * one after another, each as one METRIC operation whose verdict the engine
 * sends back (the sequencer does no I/O). A check that fails is queried
 * again after its interval until it passes or has failed `failures` times
 * in a row (a breach, which rolls back by the failure policy); an
 * inconclusive verdict holds the service until the operator promotes it
 * (the check then counts as passed) or rolls back.
 *
 * The plan's `bake` (after the last tier, before the post hooks): every
 * service with checks runs them in rounds, a round every first check's
 * interval, until the bake ends; a failure (failures in a row) is a breach
 * of a service that is done, rolled back by its failure policy. The bake
 * ends only once no check is in flight or held for the operator. After the
 * tiers (bake and record) a round also queries the service's key metrics
 * (`baseline`): indices n_checks.. of an_check; the engine compares each
 * with the previous release's value and fails it on a regression.
 *
 * Then the record round (seq_bake, after the bake or right after the last
 * tier): every service with key metrics queries each once more; those are
 * the values the engine records as the release's baseline if the
 * deployment succeeds.
 *
 * During a canary's timed pause (sub-state 6) the checks run in rounds as
 * in the bake, until the pause is over (seq_pause_checks).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "seq_int.h"
#include "textcut.h"

const struct drv_plan_check *seq_check_at(const struct drv_plan_analysis *an, uint32_t i)
{
	if (i < an->n_checks)
		return &an->checks[i];
	if (i - an->n_checks < an->n_baseline)
		return &an->baseline[i - an->n_checks].k;
	return NULL;
}

/* Done with its tiers, in the bake or the record round: key metrics too. */
static bool after_tiers(const struct drv_seq *s, const struct seq_svc *v)
{
	return v->state == SVC_DONE && s->state == DRV_SEQ_TIERS && !s->failing &&
	       ((s->bake_until > 0 && !s->baked) || s->recording);
}

/* How many checks run now: the plan's, and the key metrics after the tiers. */
static uint32_t n_run(const struct drv_seq *s, const struct seq_svc *v)
{
	const struct drv_plan_analysis *an = &v->ps->analysis;

	return (uint32_t)(an->n_checks + (after_tiers(s, v) ? an->n_baseline : 0));
}

static const struct drv_plan_check *cur_check(const struct drv_seq *s, const struct seq_svc *v)
{
	return v->an_check < n_run(s, v) ? seq_check_at(&v->ps->analysis, v->an_check) : NULL;
}

/* The query of the current check for the hosts on the new release. */
static char *fill_query(const struct drv_seq *s, const struct seq_svc *v)
{
	const struct drv_plan_check *k = cur_check(s, v);
	uint32_t n = v->cursor;
	const char **hosts = calloc(n + 1, sizeof(*hosts));
	char *q;

	if (hosts == NULL || k == NULL) {
		free(hosts);
		return NULL;
	}
	for (uint32_t i = 0; i < n; i++)
		hosts[i] = seq_agent(s, v->hosts[i].agent);
	q = drv_plan_query_expand(k->query, v->ps->name, v->ps->version, hosts, n);
	free(hosts);
	return q;
}

void seq_emit_check(struct drv_seq *s, struct seq_svc *v)
{
	struct drv_seq_action *a;

	free(v->an_query);
	v->an_query = fill_query(s, v);
	if (v->an_query == NULL) {
		s->oom = true;
		return;
	}
	a = seq_act(s, DRV_SEQ_ACT_METRIC);
	if (a == NULL)
		return;
	snprintf(a->id, sizeof(a->id), "%s:metric:%u:%u", s->id, v->index, v->op_n);
	a->service = (int)v->index;
	a->check = (int)v->an_check;
	a->server = v->ps->analysis.server;
	a->query = v->an_query;
	a->deadline = v->op_deadline;
}

/* The engine bounds a query by the server's timeout (at most 1 m). */
#define CHECK_BUDGET_MS (60 * 1000)

static void start_check(struct drv_seq *s, struct seq_svc *v)
{
	v->op = OP_CHECK;
	v->op_n++;
	v->op_failed = false;
	v->op_deadline = s->now + CHECK_BUDGET_MS + DRV_SEQ_SLACK_MS;
	v->wait = W_OP;
	s->changed = true;
	seq_emit_check(s, v);
}

bool seq_analysis_step(struct drv_seq *s, struct seq_svc *v, const char *when)
{
	const struct drv_plan_check *k = cur_check(s, v);

	if (v->ps->analysis.n_checks == 0)
		return false;
	if (k == NULL) {
		v->an_check = 0;
		v->an_fails = 0;
		s->changed = true;
		seq_log(s, "service %s: analysis passed %s", v->ps->name, when);
		return false;
	}
	if (v->an_retry) {
		v->an_retry = false;
		v->wait = W_PAUSE;
		v->timer = s->now + k->interval_ms;
		s->changed = true;
		return true;
	}
	if (v->an_check == 0 && v->an_fails == 0)
		seq_log(s, "service %s: analysis %s: %zu check(s) on prometheus %s", v->ps->name,
		        when, v->ps->analysis.n_checks, v->ps->analysis.server);
	start_check(s, v);
	return true;
}

void seq_check_done(struct drv_seq *s, struct seq_svc *v, enum drv_seq_result r,
                    const char *message)
{
	const struct drv_plan_check *k = cur_check(s, v);
	char why[DRV_SEQ_TEXT_MAX], cut[161];
	const char *name = k ? k->name : "?";

	v->op = OP_NONE;
	s->changed = true;
	drv_text_cut(cut, sizeof(cut), message ? message : "", 160);
	if ((v->state != SVC_RUNNING && !after_tiers(s, v)) || v->wait != W_OP || k == NULL) {
		if (v->wait == W_OP)
			v->wait = W_NONE;
		return; /* halted or rolling back meanwhile */
	}
	v->wait = W_NONE;
	if (r == DRV_SEQ_R_OK) {
		seq_log(s, "service %s: check %s passed: %s", v->ps->name, name, cut);
		v->an_check++;
		v->an_fails = 0;
	} else if (r == DRV_SEQ_R_INCONCLUSIVE) {
		v->wait = W_PROMOTE;
		v->an_hold = true;
		seq_log(s, "service %s: check %s inconclusive: %s", v->ps->name, name, cut);
		seq_notify(s, DRV_EVENT_AWAITING_PROMOTION,
		           "%s: check %s inconclusive; promote to go on, or roll back", v->ps->name,
		           name);
	} else if (++v->an_fails >= k->failures) {
		snprintf(why, sizeof(why), "analysis check %s failed %u time(s) in a row: %s", name,
		         v->an_fails, cut);
		v->an_check = 0;
		v->an_fails = 0;
		seq_breach(s, v, why);
	} else {
		seq_log(s, "service %s: check %s failed (%u of %u): %s", v->ps->name, name,
		        v->an_fails, k->failures, cut);
		v->an_retry = true;
	}
}

bool seq_analysis_promote(struct drv_seq *s, struct seq_svc *v)
{
	if (!v->an_hold || v->wait != W_PROMOTE || (v->state != SVC_RUNNING && !after_tiers(s, v)))
		return false;
	v->an_hold = false;
	v->wait = W_NONE;
	v->an_check++;
	v->an_fails = 0;
	s->changed = true;
	seq_log(s, "service %s: inconclusive check passed by the operator", v->ps->name);
	return true;
}

/* One move of a baking service: the next check, a retry, or the pause
 * before the next round. */
static void round_step(struct drv_seq *s, struct seq_svc *v, int64_t until)
{
	const struct drv_plan_check *k = cur_check(s, v);
	int64_t t;

	if (k == NULL) { /* a round passed: the next one after the interval */
		v->an_check = 0;
		v->an_fails = 0;
		v->wait = W_PAUSE;
		t = s->now + seq_check_at(&v->ps->analysis, 0)->interval_ms;
		v->timer = t < until ? t : until;
		s->changed = true;
		return;
	}
	if (v->an_retry) {
		t = s->now + k->interval_ms;
		v->an_retry = t >= until; /* a pause ending first: the retry after it */
		v->wait = W_PAUSE;
		v->timer = t < until ? t : until;
		s->changed = true;
		return;
	}
	start_check(s, v);
}

static void bake_step(struct drv_seq *s, struct seq_svc *v)
{
	round_step(s, v, INT64_MAX);
}

bool seq_pause_checks(struct drv_seq *s, struct seq_svc *v)
{
	if (v->op == OP_CHECK || v->an_hold)
		return true;
	if (s->now >= v->pause_until) {
		/* A check failing under its limit goes on failing in a row after
		 * the pause (its retry then); else the checks start over. */
		if (v->an_fails == 0) {
			v->an_check = 0;
			v->an_retry = false;
		}
		v->pause_until = 0;
		s->changed = true;
		return false;
	}
	round_step(s, v, v->pause_until);
	return true;
}

/* The last round after the tiers: each key metric once (failures in a row
 * as for a check); true once every service's are in. */
static bool record(struct drv_seq *s)
{
	bool busy = false, any = false;

	if (s->recorded)
		return true;
	for (size_t i = 0; i < s->plan->n_services; i++)
		any |= s->svcs[i].ps->analysis.n_baseline > 0 && s->svcs[i].state == SVC_DONE;
	if (any && !s->recording) {
		s->recording = true;
		seq_log(s, "recording the release's key metrics (baseline)");
		for (size_t i = 0; i < s->plan->n_services; i++) {
			struct seq_svc *v = &s->svcs[i];
			v->an_check = (uint32_t)v->ps->analysis.n_checks;
			v->an_fails = 0;
			v->an_retry = false;
		}
	}
	for (size_t i = 0; any && i < s->plan->n_services; i++) {
		struct seq_svc *v = &s->svcs[i];

		if (v->ps->analysis.n_baseline == 0 || !after_tiers(s, v))
			continue;
		if (v->op == OP_CHECK || v->an_hold || v->wait == W_PAUSE) {
			busy = true;
		} else if (cur_check(s, v) != NULL) {
			busy = true;
			round_step(s, v, INT64_MAX);
		}
		if (s->state != DRV_SEQ_TIERS || s->failing)
			return false;
	}
	if (busy)
		return false;
	s->recording = false;
	s->recorded = true;
	s->changed = true;
	if (any)
		seq_log(s, "the release's key metrics are in");
	return true;
}

static bool bake(struct drv_seq *s);

bool seq_bake(struct drv_seq *s)
{
	return bake(s) && record(s);
}

static bool bake(struct drv_seq *s)
{
	bool busy = false;
	char d[32];

	if (s->plan->bake_ms <= 0 || s->baked)
		return true;
	if (s->bake_until == 0) {
		s->bake_until = s->now + s->plan->bake_ms;
		s->changed = true;
		drv_plan_format_duration(s->plan->bake_ms, d, sizeof(d));
		seq_log(s, "every tier is done: baking for %s, the analysis goes on", d);
		for (size_t i = 0; i < s->plan->n_services; i++) {
			struct seq_svc *v = &s->svcs[i];
			v->an_check = v->an_fails = 0;
			v->an_retry = false;
		}
	}
	for (size_t i = 0; i < s->plan->n_services; i++) {
		struct seq_svc *v = &s->svcs[i];

		if (v->ps->analysis.n_checks + v->ps->analysis.n_baseline == 0 ||
		    !after_tiers(s, v))
			continue;
		if (v->op == OP_CHECK || v->an_hold)
			busy = true;
		else if (v->wait == W_NONE && s->now < s->bake_until)
			bake_step(s, v);
		if (s->state != DRV_SEQ_TIERS || s->failing)
			return false; /* a breach began a rollback */
	}
	if (s->now < s->bake_until || busy)
		return false;
	for (size_t i = 0; i < s->plan->n_services; i++) {
		struct seq_svc *v = &s->svcs[i];
		if (v->wait == W_PAUSE)
			v->wait = W_NONE;
	}
	s->baked = true;
	s->changed = true;
	seq_log(s, "the bake is over: every check held");
	return true;
}
