/*
 * sequencer.c: the deployment state machine's entry points (start,
 * handle, accessors), the operator verbs and the phases prestage -> pre ->
 * migrate -> tiers -> post -> finalize. Below it: seq_event.c (reports,
 * operation outcomes, deadlines), seq_rollback.c, the strategies, then
 * seq_send.c (steps sent), seq_id.c, seq_target.c and seq_core.c (helpers
 * every file uses).
 *
 * Every call sets s->now and s->out, applies the event, then runs
 * seq_drive() until nothing changes: each phase and each service looks at
 * what is outstanding and starts what comes next. Transitions are logged
 * as LOG actions (bgpd's change_state: one line per transition, with why).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "seq_int.h"

static const char *const state_names[] = {
        [DRV_SEQ_PENDING] = "pending",
        [DRV_SEQ_PRESTAGE] = "prestage",
        [DRV_SEQ_PRE] = "pre",
        [DRV_SEQ_MIGRATE] = "migrate",
        [DRV_SEQ_TIERS] = "tiers",
        [DRV_SEQ_POST] = "post",
        [DRV_SEQ_FINALIZE] = "finalize",
        [DRV_SEQ_ROLLBACK] = "rollback",
        [DRV_SEQ_SUCCEEDED] = "succeeded",
        [DRV_SEQ_FAILED] = "failed",
        [DRV_SEQ_ROLLED_BACK] = "rolled_back",
        [DRV_SEQ_ABORTED] = "aborted",
};

const char *drv_seq_state_name(enum drv_seq_state st)
{
	return (unsigned)st <= DRV_SEQ_ABORTED ? state_names[st] : "unknown";
}

bool drv_seq_state_terminal(enum drv_seq_state st)
{
	return st >= DRV_SEQ_SUCCEEDED;
}
/* ---- phases ---- */

static void next_phase_after_hooks(struct drv_seq *s)
{
	switch (s->state) {
	case DRV_SEQ_PRE: seq_set_state(s, DRV_SEQ_MIGRATE, "pre hooks done"); break;
	case DRV_SEQ_MIGRATE:
		s->tier = 0;
		seq_set_state(s, DRV_SEQ_TIERS, "migrations applied");
		break;
	case DRV_SEQ_POST: seq_set_state(s, DRV_SEQ_FINALIZE, "post hooks done"); break;
	default: break;
	}
}

static void hook_failed(struct drv_seq *s, const struct drv_plan_hook *h)
{
	char why[DRV_SEQ_TEXT_MAX];
	enum drv_plan_rollback r = s->plan->services[0].failure.rollback;

	snprintf(why, sizeof(why), "%s hook %s failed on %u host(s)", drv_seq_state_name(s->state),
	         h->name, s->hook_failed);
	for (size_t i = 1; i < s->plan->n_services; i++) {
		if (s->plan->services[i].failure.rollback < r)
			r = s->plan->services[i]
			            .failure.rollback; /* the widest scope any service asks */
	}
	if (s->state == DRV_SEQ_PRE || r == DRV_ROLLBACK_NONE)
		seq_fail(s, why);
	else if (s->state == DRV_SEQ_MIGRATE)
		seq_rollback_begin(s, -1, 0, true, why);
	else if (r == DRV_ROLLBACK_DEPLOYMENT)
		seq_rollback_begin(s, (int32_t)s->plan->n_tiers - 1, 0, true, why);
	else
		seq_fail(s, why);
}

static void drive_hooks(struct drv_seq *s)
{
	enum drv_seq_step_kind kind;
	struct seq_hook *k;
	const struct drv_plan_hook *h;
	size_t n;

	if (!seq_phase_hooks(s, &k, &h, &n, &kind) || s->failing)
		return;
	if (s->hook_wait) {
		if (s->hook_inflight > 0)
			return;
		s->hook_wait = false;
		s->changed = true;
		if (s->hook_failed > 0)
			return hook_failed(s, &h[s->hook]);
		if (kind == DRV_SEQ_STEP_UP)
			s->mig_done = s->hook + 1;
		seq_log(s, "%s hook %s done", drv_seq_state_name(s->state), h[s->hook].name);
		s->hook++;
	}
	if (s->hook >= n)
		return next_phase_after_hooks(s);
	if (s->paused)
		return;
	s->hook_wait = true;
	s->hook_failed = 0;
	s->hook_inflight = k[s->hook].n;
	s->hook_deadline = s->now + h[s->hook].timeout_ms + DRV_SEQ_SLACK_MS;
	seq_log(s, "%s hook %s: running on %u host(s)", drv_seq_state_name(s->state),
	        h[s->hook].name, k[s->hook].n);
	for (uint32_t j = 0; j < k[s->hook].n; j++) {
		k[s->hook].st[j] = ST_SENT;
		seq_emit_hook(s, kind, s->hook, j);
	}
}

/* A failing deployment (rollback scope service) ends once no service runs
 * or rolls back any more. */
static void end_if_settled(struct drv_seq *s)
{
	char why[DRV_SEQ_TEXT_MAX];

	for (size_t i = 0; i < s->plan->n_services; i++) {
		if (s->svcs[i].state == SVC_RUNNING || s->svcs[i].state == SVC_RB)
			return;
	}
	snprintf(why, sizeof(why), "%s", s->reason);
	if (s->rb_failures > 0) {
		seq_set_state(s, DRV_SEQ_FAILED, "the rollback failed on some hosts");
		seq_notify(s, DRV_EVENT_FAILED, "rollback incomplete: %s", why);
	} else {
		seq_set_state(s, DRV_SEQ_ROLLED_BACK, why);
		seq_notify(s, DRV_EVENT_ROLLED_BACK, "%s", why);
	}
}

static void drive_tiers(struct drv_seq *s)
{
	const struct drv_plan_tier *t = &s->plan->tiers[s->tier];
	bool settled = true;

	for (size_t i = t->first; i < t->first + t->n; i++) {
		struct seq_svc *v = &s->svcs[i];

		if (v->state == SVC_PENDING && !s->paused && !s->failing) {
			v->state = SVC_RUNNING;
			v->wait = W_NONE;
			seq_log(s, "service %s: %s on %u host(s)", v->ps->name,
			        seq_strategy_of(v)->name, v->n);
		}
		if (v->state == SVC_RUNNING && v->wait == W_NONE && s->state == DRV_SEQ_TIERS)
			seq_strategy_of(v)->advance(s, v);
		settled &=
		        v->state == SVC_DONE || v->state == SVC_RB_DONE || v->state == SVC_HALTED;
	}
	if (s->state == DRV_SEQ_TIERS && s->failing)
		return end_if_settled(s);
	if (s->state != DRV_SEQ_TIERS || !settled)
		return;
	if (s->tier + 1 >= s->plan->n_tiers && !seq_bake(s))
		return; /* the last tier bakes */
	seq_notify(s, DRV_EVENT_TIER_DONE, "tier %s done", t->name);
	if (s->tier + 1 < s->plan->n_tiers) {
		s->tier++;
		seq_log(s, "tier %s done; tier %s starts", t->name, s->plan->tiers[s->tier].name);
	} else {
		seq_set_state(s, DRV_SEQ_POST, "every tier is done");
	}
}

/* Blue-green services drop their old slot after finalize_after. */
static void drive_finalizers(struct drv_seq *s)
{
	if (s->state != DRV_SEQ_TIERS && s->state != DRV_SEQ_POST && s->state != DRV_SEQ_FINALIZE)
		return;
	for (size_t i = 0; i < s->plan->n_services && !s->paused && !s->failing; i++) {
		struct seq_svc *v = &s->svcs[i];

		if (v->state != SVC_DONE || v->ps->strategy.type != DRV_STRATEGY_BLUEGREEN ||
		    v->fin_started || s->now < v->finalize_at)
			continue;
		/* the old set goes once nothing else can fail: a rollback after
		 * it would have no old release running to go back to */
		if (seq_sets(v) && s->state != DRV_SEQ_FINALIZE)
			continue;
		v->fin_started = true;
		v->fin_failed = 0;
		if (seq_sets(v)) {
			seq_decommission_begin(s, v);
			continue;
		}
		seq_wave_begin(s, v, K_FINALIZE);
		seq_log(s, "service %s: finalizing (dropping the old slot)", v->ps->name);
		for (uint32_t hi = 0; hi < v->n; hi++)
			seq_send_host(s, v, hi, K_FINALIZE);
	}
}

static void drive_finalize(struct drv_seq *s)
{
	uint32_t failed = 0, unconfirmed = 0;

	if (s->failing)
		return end_if_settled(s);
	for (size_t i = 0; i < s->plan->n_services; i++) {
		const struct seq_svc *v = &s->svcs[i];

		if (v->ps->strategy.type == DRV_STRATEGY_BLUEGREEN && !v->finalized)
			return;
		failed += v->failed;
		unconfirmed += v->fin_failed;
	}
	/* A finalize step that failed or timed out does not fail a deployment
	 * whose new release runs, but the old slot (or set) may still run there:
	 * say so where operators look, not only in the log. */
	if (unconfirmed > 0)
		seq_reason(s, "done, but %u host(s) did not confirm that the old slot stopped",
		           unconfirmed);
	seq_set_state(s, DRV_SEQ_SUCCEEDED,
	              failed ? "done, with failed hosts within the budget" : "done");
	seq_notify(s, DRV_EVENT_SUCCEEDED, "%s %s deployed%s", s->plan->deployment,
	           s->plan->version, failed ? " (some hosts failed within the budget)" : "");
}

static void drive_once(struct drv_seq *s)
{
	seq_expire(s);
	/* services rolling back on their own (scope service), in any tier */
	for (size_t i = 0; i < s->plan->n_services && s->state != DRV_SEQ_ROLLBACK; i++) {
		if (s->svcs[i].state == SVC_RB && !drv_seq_state_terminal(s->state))
			seq_svc_rb_drive(s, &s->svcs[i]);
	}
	switch (s->state) {
	case DRV_SEQ_PRESTAGE:
		if (s->prestage_inflight == 0)
			seq_set_state(s, DRV_SEQ_PRE, "every target host has its images");
		break;
	case DRV_SEQ_PRE:
	case DRV_SEQ_MIGRATE: drive_hooks(s); break;
	case DRV_SEQ_POST:
		if (s->failing)
			end_if_settled(s);
		else
			drive_hooks(s);
		break;
	case DRV_SEQ_TIERS: drive_tiers(s); break;
	case DRV_SEQ_FINALIZE: drive_finalize(s); break;
	case DRV_SEQ_ROLLBACK: seq_rb_drive(s); break;
	default: break;
	}
	drive_finalizers(s);
}

void seq_drive(struct drv_seq *s)
{
	for (int guard = 0; guard < 100000; guard++) {
		s->changed = false;
		drive_once(s);
		if (s->changed)
			s->out->persist = true;
		if (!s->changed || s->oom)
			return;
	}
}

/* ---- operator verbs ---- */

static int on_pause(struct drv_seq *s, bool pause)
{
	if (!s->started || drv_seq_state_terminal(s->state) ||
	    (pause && s->state == DRV_SEQ_ROLLBACK))
		return DRV_ESTATE;
	if (s->paused == pause)
		return DRV_OK;
	s->paused = pause;
	s->changed = true;
	seq_log(s, "%s by the operator", pause ? "paused" : "resumed");
	seq_notify(s, pause ? DRV_EVENT_PAUSED : DRV_EVENT_RESUMED, "%s %s", s->plan->deployment,
	           pause ? "paused" : "resumed");
	return DRV_OK;
}

/* A service failed from outside (an alert): a breach while it deploys or,
 * done, while the deployment has not ended. */
static int on_fail(struct drv_seq *s, const struct drv_seq_event *ev)
{
	for (size_t i = 0; i < s->plan->n_services && ev->service != NULL; i++) {
		struct seq_svc *v = &s->svcs[i];

		if (strcmp(v->ps->name, ev->service) != 0)
			continue;
		if (drv_seq_state_terminal(s->state) || s->state == DRV_SEQ_ROLLBACK ||
		    (v->state != SVC_RUNNING && v->state != SVC_DONE))
			return DRV_ESTATE;
		seq_breach(s, v, ev->message ? ev->message : "failed");
		s->changed = true;
		return DRV_OK;
	}
	return DRV_EINVAL;
}

static int on_promote(struct drv_seq *s, const char *only)
{
	bool any = false;

	if (drv_seq_state_terminal(s->state) || s->state == DRV_SEQ_ROLLBACK)
		return DRV_ESTATE;
	for (size_t i = 0; i < s->plan->n_services; i++) {
		struct seq_svc *v = &s->svcs[i];

		if (only != NULL && strcmp(only, v->ps->name) != 0)
			continue;
		if (seq_analysis_promote(s, v))
			any = true;
		else if (v->state == SVC_RUNNING && seq_strategy_of(v)->promote(s, v))
			any = true;
	}
	for (size_t i = 0; i < s->plan->n_services && !any; i++) {
		struct seq_svc *v = &s->svcs[i];

		if (only != NULL && strcmp(only, v->ps->name) != 0)
			continue;
		if (v->state == SVC_DONE && v->ps->strategy.type == DRV_STRATEGY_BLUEGREEN &&
		    !v->fin_started && v->finalize_at > s->now) {
			v->finalize_at = s->now;
			any = true;
		}
	}
	if (!any)
		return DRV_ESTATE;
	s->changed = true;
	seq_log(s, "promoted by the operator%s%s", only ? ": " : "", only ? only : "");
	return DRV_OK;
}

static int on_abort(struct drv_seq *s)
{
	if (!s->started || drv_seq_state_terminal(s->state))
		return DRV_ESTATE;
	snprintf(s->reason, sizeof(s->reason), "aborted by the operator");
	seq_set_state(s, DRV_SEQ_ABORTED, "aborted by the operator; nothing is rolled back");
	seq_notify(s, DRV_EVENT_ABORTED, "%s %s aborted", s->plan->deployment, s->plan->version);
	return DRV_OK;
}

/* The highest tier any service of which was touched, or -1. */
static int32_t touched_tier(const struct drv_seq *s)
{
	int32_t t = -1;

	for (size_t i = 0; i < s->plan->n_services; i++) {
		if (s->svcs[i].cursor > 0 && (int32_t)s->svcs[i].ps->tier > t)
			t = (int32_t)s->svcs[i].ps->tier;
	}
	return t;
}

/* Something was changed and not rolled back yet. */
static bool anything_to_roll_back(const struct drv_seq *s)
{
	if (s->mig_done > 0)
		return true;
	for (size_t i = 0; i < s->plan->n_services; i++) {
		if (s->svcs[i].cursor > 0 && s->svcs[i].state != SVC_RB_DONE)
			return true;
	}
	return false;
}

static int on_rollback(struct drv_seq *s)
{
	if (!s->started || s->state == DRV_SEQ_ROLLBACK ||
	    (s->state == DRV_SEQ_ROLLED_BACK && !anything_to_roll_back(s)))
		return DRV_ESTATE;
	if (s->state == DRV_SEQ_FAILED && s->rb_started && s->rb_failures == 0)
		return DRV_ESTATE;
	seq_rollback_begin(s, touched_tier(s), 0, true, "rollback requested by the operator");
	return DRV_OK;
}

/* The approval at a canary step: given, the services waiting for it go
 * on; denied (or timed out), the deployment rolls back. */
static int on_approval(struct drv_seq *s, bool approve, const char *why)
{
	bool any = false;

	if (!s->started || drv_seq_state_terminal(s->state) || s->state == DRV_SEQ_ROLLBACK)
		return DRV_ESTATE;
	for (size_t i = 0; i < s->plan->n_services; i++) {
		struct seq_svc *v = &s->svcs[i];

		if (v->state != SVC_RUNNING || v->wait != W_APPROVE)
			continue;
		any = true;
		if (!approve)
			continue;
		v->wait = W_NONE;
		seq_log(s, "service %s: canary step %u approved", v->ps->name, v->step + 1);
	}
	if (!any)
		return DRV_ESTATE;
	s->changed = true;
	if (!approve)
		seq_rollback_begin(s, touched_tier(s), 0, true,
		                   why != NULL && why[0] ? why : "the approval was denied");
	return DRV_OK;
}

bool seq_approval_at(const struct drv_seq *s, uint32_t percent)
{
	if (percent == 0 || percent >= 100)
		return false;
	return percent < 64 ? (s->approve_lo >> percent) & 1
	                    : (s->approve_hi >> (percent - 64)) & 1;
}

int drv_seq_approve_at(struct drv_seq *s, uint32_t percent)
{
	if (s->started || percent == 0 || percent >= 100)
		return DRV_EINVAL;
	if (percent < 64)
		s->approve_lo |= (int64_t)1 << percent;
	else
		s->approve_hi |= (int64_t)1 << (percent - 64);
	return DRV_OK;
}

/* ---- entry points ---- */

static int finish(struct drv_seq *s, int rc)
{
	if (rc == DRV_OK && s->started)
		seq_drive(s);
	s->out = NULL;
	return s->oom ? DRV_ENOMEM : rc;
}

int drv_seq_start(struct drv_seq *s, int64_t now, struct drv_seq_actions *out)
{
	if (s->started)
		return DRV_ESTATE;
	if (!seq_targets_ok(s))
		return DRV_EINVAL;
	s->out = out;
	s->now = now;
	s->started = true;
	s->started_at = now;
	s->reason[0] = '\0';
	seq_sort_hosts(s);
	for (size_t i = 0; i < s->plan->n_services; i++)
		s->total_hosts += s->svcs[i].n;
	s->prestage_deadline = now + s->plan->prestage_timeout_ms + DRV_SEQ_SLACK_MS;
	seq_notify(s, DRV_EVENT_STARTED, "%s %s started", s->plan->deployment, s->plan->version);
	seq_set_state(s, DRV_SEQ_PRESTAGE, "pulling images on every target host");
	for (size_t i = 0; i < s->plan->n_services; i++) {
		for (uint32_t hi = 0; hi < s->svcs[i].n; hi++)
			seq_send_host(s, &s->svcs[i], hi, K_PRESTAGE);
	}
	return finish(s, DRV_OK);
}

int drv_seq_handle(struct drv_seq *s, const struct drv_seq_event *ev, int64_t now,
                   struct drv_seq_actions *out)
{
	int rc;

	if (!s->started || ev == NULL)
		return DRV_ESTATE;
	s->out = out;
	if (now > s->now)
		s->now = now; /* time never runs backwards inside the machine */
	s->changed = false;
	switch (ev->kind) {
	case DRV_SEQ_EV_REPORT: rc = seq_on_report(s, ev); break;
	case DRV_SEQ_EV_TICK: rc = DRV_OK; break;
	case DRV_SEQ_EV_TRAFFIC:
	case DRV_SEQ_EV_METRIC: rc = seq_on_op(s, ev); break;
	case DRV_SEQ_EV_PAUSE: rc = on_pause(s, true); break;
	case DRV_SEQ_EV_RESUME: rc = on_pause(s, false); break;
	case DRV_SEQ_EV_PROMOTE: rc = on_promote(s, ev->service); break;
	case DRV_SEQ_EV_FAIL: rc = on_fail(s, ev); break;
	case DRV_SEQ_EV_ABORT: rc = on_abort(s); break;
	case DRV_SEQ_EV_ROLLBACK: rc = on_rollback(s); break;
	case DRV_SEQ_EV_APPROVE: rc = on_approval(s, true, NULL); break;
	case DRV_SEQ_EV_DENY: rc = on_approval(s, false, ev->message); break;
	default: rc = DRV_EINVAL; break;
	}
	if (s->changed)
		out->persist = true;
	return finish(s, rc);
}

enum drv_seq_state drv_seq_state(const struct drv_seq *s)
{
	return (enum drv_seq_state)s->state;
}

bool drv_seq_paused(const struct drv_seq *s)
{
	return s->paused;
}

const char *drv_seq_error(const struct drv_seq *s)
{
	return s->reason;
}
