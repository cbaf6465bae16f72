/*
 * deploy_gate.c: what a deployment waits for before it starts, and the
 * deployment windows that pause a running one (docs/environments.md).
 *
 * A new deployment to an environment with `approval` waits in state
 * awaiting_approval until `approvers` distinct tokens approve it (never the
 * one that started it, unless allow_self: four eyes); one denial ends it
 * aborted, and so does the approval timeout. Then, or at once without
 * approval, a deployment that a window of its environment or a busy service
 * holds back waits in state queued (its plan said queue: true, or it was
 * approved meanwhile) and starts, oldest first, when its way is clear. A
 * running deployment that reaches a window pauses (the sequencer starts no
 * new step: the batch in flight finishes) and resumes when it closes,
 * unless the environment says at_window: continue.
 *
 * Everything lives in d->extra "gate", saved with the deployment, so a
 * restart of droverd resumes the wait where it was:
 *
 *     {"window_override": true,             an admin overrode the windows
 *      "approval": {"required": 2, "role": "approver", "allow_self": false,
 *                   "timeout_ms": N, "deadline_ms": T,
 *                   "approvals": [{"actor", "comment", "at_ms"}],
 *                   "denied": {"actor", "comment", "at_ms"}},
 *      "step_approval": {"steps": [25], "required", "role", "allow_self",
 *                        "timeout_ms",
 *                        "rounds": [{"step": "25%", "services": ["api"],
 *                                    "required", "role", "allow_self",
 *                                    "timeout_ms", "deadline_ms",
 *                                    "approvals": [...], "approved_ms" | "denied"
 *                                    | "timed_out_ms"}]},
 *      "window_paused": "weekend",          the window that paused it
 *      "window_ignored": true}              an operator resumed it anyway
 *
 * An approval at a canary step (`at_canary_step`) is asked while the
 * deployment runs: the sequencer stops the canary service after the step
 * and its gates (waiting "approval", state awaiting_approval) and a round
 * opens with its own deadline; the approvals close it and the canary goes
 * on; a denial or the timeout rolls the deployment back.
 */
#include "deploy_engine.h"
#include "deploy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "env_conf.h"
#include "err.h"
#include "log.h"
#include "windows.h"

#define WHY_MAX 600

/* d's reason := why, cut to fit. */
static void set_reason(struct dep *d, const char *why)
{
	size_t n = strnlen(why, sizeof(d->row.reason) - 1);

	memcpy(d->row.reason, why, n);
	d->row.reason[n] = '\0';
}

static bool same_reason(const struct dep *d, const char *why)
{
	return strncmp(d->row.reason, why, sizeof(d->row.reason) - 1) == 0;
}

static json_t *gate_of(const struct dep *d)
{
	return json_object_get(d->extra, "gate");
}

static const struct drv_plan_env *env_of(const struct deploy_engine *e, const struct dep *d)
{
	return d->plan != NULL ? drv_envs_find(e->cfg.environments, d->plan->environment) : NULL;
}

static bool flag(const struct dep *d, const char *key)
{
	return json_is_true(json_object_get(gate_of(d), key));
}

/* The window of d's environment that refuses it now, described in why. */
static bool window_blocks(const struct deploy_engine *e, const struct dep *d, int64_t now_ms,
                          char *why, size_t cap)
{
	const struct drv_plan_env *env = env_of(e, d);
	const struct drv_window *w;
	char text[300];
	bool outside;

	if (env == NULL || flag(d, "window_override") ||
	    (w = drv_windows_blocking(env->windows, env->n_windows, now_ms / 1000, &outside)) ==
	            NULL)
		return false;
	drv_window_describe(w, text, sizeof(text));
	if (outside)
		snprintf(why, cap, "environment %s is outside its allowed deployment windows (%s)",
		         env->name, text);
	else
		snprintf(why, cap, "environment %s is in deployment window %s", env->name, text);
	return true;
}

static void busy_text(const struct deploy_busy *b, char *why, size_t cap)
{
	if (b->service[0] == '\0')
		snprintf(why, cap, "deployment %s of %s is still active", b->id, b->name);
	else
		snprintf(why, cap, "service %s on %s is being deployed by deployment %s (%s)",
		         b->service, b->agent, b->id, b->name);
}

/* What holds d back from starting now (why says it), or false. */
static bool blocked(struct deploy_engine *e, const struct dep *d, int64_t now, char *why,
                    size_t cap)
{
	struct deploy_busy b;

	if (window_blocks(e, d, now, why, cap))
		return true;
	if (deploy_engine_busy(e, d->plan, json_object_get(d->extra, "targets"), d, true, &b) ==
	    NULL)
		return false;
	busy_text(&b, why, cap);
	return true;
}

/* A gate state change: row, gauge and a "state" event (seq is NULL, so
 * the flush does not see it). */
static void set_state(struct deploy_engine *e, struct dep *d, const char *state, const char *why)
{
	if (strcmp(d->row.state, state) != 0) {
		drv_gauge_add(e->m.by_state, -1, d->row.state);
		drv_gauge_add(e->m.by_state, 1, state);
	}
	snprintf(d->row.state, sizeof(d->row.state), "%s", state);
	set_reason(d, why);
	deploy_event(d, "state", NULL,
	             json_pack("{s:s, s:s, s:s}", "state", d->row.state, "phase", d->row.phase,
	                       "reason", d->row.reason));
	d->dirty = true;
}

static int role_rank(const char *r)
{
	return strcmp(r, "admin") == 0 ? 3 : strcmp(r, "approver") == 0 ? 2 : 1;
}

/* An approval d needs: its environment's (when env_asks) and its plan's
 * (when plan_asks), the stricter of both (a plan can only add); NULL when
 * neither asks. */
static json_t *approval_gate(const struct drv_plan_env *env, bool env_asks,
                             const struct drv_plan *p, bool plan_asks, int64_t now)
{
	int n = env_asks ? env->approvers : 0;
	const char *role = n > 0 ? env->approver_role : p->approver_role;
	bool self = n > 0 ? env->allow_self : false;
	int64_t timeout = n > 0 ? env->approval_timeout_ms : p->approval_timeout_ms;

	if (n == 0 && !plan_asks)
		return NULL;
	if (plan_asks) {
		self = self && n > 0;
		n = p->approvers > n ? p->approvers : n;
		if (role_rank(p->approver_role) > role_rank(role))
			role = p->approver_role;
		if (p->approval_timeout_ms < timeout)
			timeout = p->approval_timeout_ms;
	}
	return json_pack("{s:i, s:s, s:b, s:I, s:I, s:[]}", "required", n, "role", role,
	                 "allow_self", self, "timeout_ms", (json_int_t)timeout, "deadline_ms",
	                 (json_int_t)(now + timeout), "approvals");
}

/* The environment asks for approval before the start: so it says, or it
 * asks at a canary step and the plan has no canary service. */
static bool env_before(const struct drv_plan_env *env, const struct drv_plan *p)
{
	return env != NULL && env->approvers > 0 &&
	       (env->approval_before || (env->approval_at_step > 0 && !drv_plan_has_canary(p)));
}

static bool env_at_step(const struct drv_plan_env *env, const struct drv_plan *p)
{
	return env != NULL && env->approvers > 0 && env->approval_at_step > 0 &&
	       drv_plan_has_canary(p);
}

/* The approval at canary steps: the steps and the fields of each round. */
static json_t *step_gate(const struct drv_plan_env *env, const struct drv_plan *p)
{
	bool e = env_at_step(env, p), pl = p->approvers > 0 && p->approval_at_step > 0;
	json_t *a = approval_gate(env, e, p, pl, 0), *steps = json_array();

	if (a == NULL || steps == NULL) {
		json_decref(a);
		json_decref(steps);
		return NULL;
	}
	if (e)
		json_array_append_new(steps, json_integer(env->approval_at_step));
	if (pl && !(e && env->approval_at_step == p->approval_at_step))
		json_array_append_new(steps, json_integer(p->approval_at_step));
	json_object_del(a, "deadline_ms");
	json_object_del(a, "approvals");
	json_object_set_new(a, "steps", steps);
	json_object_set_new(a, "rounds", json_array());
	return a;
}

/* Who asks for approval, for the reason: the environment, or "" (the plan). */
static const char *asker(const struct drv_plan_env *env)
{
	return env != NULL && env->approvers > 0 ? env->name : "";
}

static void approval_reason(const json_t *a, const char *env, char *why, size_t cap)
{
	json_int_t need = json_integer_value(json_object_get(a, "required"));
	size_t have = json_array_size(json_object_get(a, "approvals"));

	snprintf(why, cap, "%s%s needs %lld approval%s (role %s): %zu given",
	         env[0] ? "environment " : "the plan", env, (long long)need, need == 1 ? "" : "s",
	         json_string_value(json_object_get(a, "role")), have);
}

/* ---- the approval at a canary step ---- */

static json_t *rounds_of(const struct dep *d)
{
	return json_object_get(json_object_get(gate_of(d), "step_approval"), "rounds");
}

/* The round of the approval at a canary step that is not decided, or NULL. */
static json_t *open_round(const struct dep *d)
{
	json_t *rounds = rounds_of(d), *r;
	size_t n = json_array_size(rounds);

	r = n > 0 ? json_array_get(rounds, n - 1) : NULL;
	if (r == NULL || json_object_get(r, "approved_ms") != NULL ||
	    json_object_get(r, "denied") != NULL || json_object_get(r, "ended_ms") != NULL)
		return NULL;
	return r;
}

/* The canary services of st (drv_seq_status) waiting for approval, and the
 * step they wait at. */
static json_t *waiting_services(const json_t *st, int *percent)
{
	json_t *names = json_array(), *tier, *svc;
	size_t i, j;

	json_array_foreach(json_object_get(st, "tiers"), i, tier)
	{
		json_array_foreach(json_object_get(tier, "services"), j, svc)
		{
			const char *w = json_string_value(json_object_get(svc, "waiting"));

			if (w == NULL || strcmp(w, "approval") != 0)
				continue;
			json_array_append(names, json_object_get(svc, "name"));
			*percent = (int)json_integer_value(json_object_get(svc, "percent"));
		}
	}
	return names;
}

void deploy_gate_step(struct dep *d, const json_t *st, int64_t now, char *reason, size_t cap)
{
	json_t *sa = json_object_get(gate_of(d), "step_approval");
	json_t *r = open_round(d), *names;
	json_int_t need;
	char step[8];
	int pct = 0;

	/* a pause does not end the wait: the round keeps its approvals */
	names = waiting_services(st, &pct);
	if (json_array_size(names) == 0) {
		json_decref(names);
		if (r != NULL) { /* rolled back or aborted while it waited */
			json_object_set_new(r, "ended_ms", json_integer(now));
			d->dirty = true;
		}
		return;
	}
	if (r == NULL && sa != NULL) {
		snprintf(step, sizeof(step), "%d%%", pct);
		r = json_deep_copy(sa);
		json_object_del(r, "steps");
		json_object_del(r, "rounds");
		if (r != NULL && names != NULL) {
			json_object_set_new(r, "step", json_string(step));
			json_object_set(r, "services", names);
			json_object_set_new(r, "approvals", json_array());
			json_object_set_new(r, "deadline_ms",
			                    json_integer(now + json_integer_value(json_object_get(
			                                               r, "timeout_ms"))));
			json_array_append(rounds_of(d), r);
			drv_info("deploy", "canary step awaits approval", "deployment=%s step=%s",
			         d->row.id, step);
		}
		json_decref(r);
		r = open_round(d);
		d->dirty = true;
	}
	json_decref(names);
	if (r == NULL || strcmp(d->row.state, "awaiting_approval") != 0)
		return;
	need = json_integer_value(json_object_get(r, "required"));
	snprintf(reason, cap, "canary step %s of %s needs %lld approval%s (role %s): %zu given",
	         json_string_value(json_object_get(r, "step")),
	         json_string_value(json_array_get(json_object_get(r, "services"), 0)),
	         (long long)need, need == 1 ? "" : "s",
	         json_string_value(json_object_get(r, "role")),
	         json_array_size(json_object_get(r, "approvals")));
}

/* The round at a canary step timed out: the deployment rolls back. */
static void step_expire(struct deploy_engine *e, struct dep *d, int64_t now)
{
	struct drv_seq_event ev = {.kind = DRV_SEQ_EV_DENY};
	json_t *r = open_round(d);
	char why[WHY_MAX];

	if (r == NULL || now < json_integer_value(json_object_get(r, "deadline_ms")))
		return;
	snprintf(why, sizeof(why), "not approved within %llds at canary step %s (approval timeout)",
	         (long long)(json_integer_value(json_object_get(r, "timeout_ms")) / 1000),
	         json_string_value(json_object_get(r, "step")));
	json_object_set_new(r, "ended_ms", json_integer(now));
	json_object_set_new(r, "timed_out", json_true());
	d->dirty = true;
	ev.message = why;
	drv_warn("deploy", "approval at a canary step timed out: rolling back", "deployment=%s",
	         d->row.id);
	deploy_run_event(e, d, &ev);
}

void deploy_gate_seq_start(const struct dep *d, struct drv_seq *s)
{
	const json_t *v;
	size_t i;

	json_array_foreach(json_object_get(json_object_get(gate_of(d), "step_approval"), "steps"),
	                   i, v) drv_seq_approve_at(s, (uint32_t)json_integer_value(v));
}

bool deploy_gate_init(struct deploy_engine *e, struct dep *d, bool window_override,
                      const struct deploy_busy *busy, int64_t now)
{
	const struct drv_plan_env *env = env_of(e, d);
	json_t *gate = json_object(), *a;
	char why[WHY_MAX];

	if (gate == NULL || json_object_set_new(d->extra, "gate", gate) != 0)
		return true; /* out of memory: no gate rather than none started */
	if (window_override)
		json_object_set_new(gate, "window_override", json_true());
	a = step_gate(env, d->plan);
	if (a != NULL)
		json_object_set_new(gate, "step_approval", a);
	a = approval_gate(env, env_before(env, d->plan), d->plan,
	                  d->plan->approvers > 0 && d->plan->approval_before, now);
	if (a != NULL) {
		json_object_set_new(gate, "approval", a);
		approval_reason(a, asker(env), why, sizeof(why));
		snprintf(d->row.state, sizeof(d->row.state), "awaiting_approval");
		set_reason(d, why);
		drv_info("deploy", "deployment awaits approval", "deployment=%s environment=%s",
		         d->row.id, env != NULL ? env->name : "");
		return false;
	}
	if (busy != NULL)
		busy_text(busy, why, sizeof(why));
	if (busy != NULL || (d->plan->queue && blocked(e, d, now, why, sizeof(why)))) {
		snprintf(d->row.state, sizeof(d->row.state), "queued");
		set_reason(d, why);
		return false;
	}
	return true;
}

/* The way is clear: start d now, or leave it queued (why changed: say so). */
static void try_start(struct deploy_engine *e, struct dep *d, int64_t now)
{
	char why[WHY_MAX];

	if (blocked(e, d, now, why, sizeof(why))) {
		if (strcmp(d->row.state, "queued") != 0 || !same_reason(d, why))
			set_state(e, d, "queued", why);
		return;
	}
	drv_info("deploy", "deployment leaves its gate", "deployment=%s was=%s", d->row.id,
	         d->row.state);
	if (deploy_run_start(e, d) != DRV_OK)
		drv_error("deploy", "cannot start the deployment", "deployment=%s", d->row.id);
}

static void expire(struct deploy_engine *e, struct dep *d, int64_t now)
{
	json_t *a = json_object_get(gate_of(d), "approval");
	json_int_t deadline = json_integer_value(json_object_get(a, "deadline_ms"));
	char why[WHY_MAX];

	if (a == NULL || now < deadline)
		return;
	snprintf(why, sizeof(why), "not approved within %llds (approval timeout)",
	         (long long)(json_integer_value(json_object_get(a, "timeout_ms")) / 1000));
	drv_warn("deploy", "approval timed out", "deployment=%s", d->row.id);
	deploy_run_end(e, d, "aborted", why);
}

static void set_window(struct dep *d, const char *key, json_t *v)
{
	json_t *gate = gate_of(d);

	if (gate == NULL && json_object_set_new(d->extra, "gate", gate = json_object()) != 0) {
		json_decref(v);
		return;
	}
	if (v == NULL)
		json_object_del(gate, key);
	else
		json_object_set_new(gate, key, v);
}

/* A running deployment and the windows of its environment. */
static void at_window(struct deploy_engine *e, struct dep *d, int64_t now)
{
	const struct drv_plan_env *env = env_of(e, d);
	const char *paused_by = json_string_value(json_object_get(gate_of(d), "window_paused"));
	struct drv_seq_event ev = {.kind = DRV_SEQ_EV_PAUSE};
	char why[WHY_MAX];
	bool blocks;

	if (env == NULL || env->continue_at_window || flag(d, "window_ignored"))
		return;
	blocks = window_blocks(e, d, now, why, sizeof(why));
	if (blocks && paused_by == NULL && !drv_seq_paused(d->seq) &&
	    (strcmp(d->row.state, "running") == 0 || strcmp(d->row.state, "prestaging") == 0 ||
	     strcmp(d->row.state, "awaiting_promotion") == 0) &&
	    deploy_run_event(e, d, &ev) == DRV_OK) {
		set_window(d, "window_paused", json_string(why));
		deploy_event(d, "window_paused", NULL, json_pack("{s:s}", "text", why));
		drv_warn("deploy", "deployment paused by a deployment window",
		         "deployment=%s why=\"%s\"", d->row.id, why);
		d->dirty = true;
	} else if (!blocks && paused_by != NULL) {
		ev.kind = DRV_SEQ_EV_RESUME;
		if (drv_seq_paused(d->seq))
			deploy_run_event(e, d, &ev);
		set_window(d, "window_paused", NULL);
		deploy_event(d, "window_resumed", NULL,
		             json_pack("{s:s}", "text", "the deployment window closed"));
		drv_info("deploy", "deployment resumed after its deployment window",
		         "deployment=%s", d->row.id);
		d->dirty = true;
	}
}

void deploy_gate_tick(struct deploy_engine *e, int64_t now)
{
	struct dep **gated = NULL;
	size_t n = 0, cap = 0;

	for (struct dep *d = e->deps; d != NULL; d = d->next) {
		if (d->ended)
			continue;
		if (d->seq != NULL) {
			step_expire(e, d, now);
			if (!d->ended)
				at_window(e, d, now);
			continue;
		}
		if (n == cap) {
			struct dep **g = realloc(gated, (cap = cap ? cap * 2 : 16) * sizeof(*g));
			if (g == NULL)
				break; /* the rest wait for the next turn */
			gated = g;
		}
		gated[n++] = d;
	}
	/* e->deps is newest first: the oldest queued deployment goes first */
	while (n-- > 0) {
		struct dep *d = gated[n];

		if (strcmp(d->row.state, "awaiting_approval") == 0)
			expire(e, d, now);
		else if (strcmp(d->row.state, "queued") == 0)
			try_start(e, d, now);
	}
	free(gated);
}

static bool approved_by(const json_t *a, const char *actor)
{
	const json_t *v;
	size_t i;

	json_array_foreach(json_object_get(a, "approvals"), i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "actor")), actor) == 0)
			return true;
	}
	return false;
}

/* A denial at a canary step: the deployment rolls back. */
static int deny_step(struct deploy_engine *e, struct dep *d, json_t *a, json_t *who)
{
	struct drv_seq_event ev = {.kind = DRV_SEQ_EV_DENY};
	const char *comment = json_string_value(json_object_get(who, "comment"));
	char why[WHY_MAX];

	snprintf(why, sizeof(why), "denied by %s at canary step %s%s%s",
	         json_string_value(json_object_get(who, "actor")),
	         json_string_value(json_object_get(a, "step")), comment[0] ? ": " : "", comment);
	json_object_set_new(a, "denied", who);
	deploy_event(d, "denied", NULL, json_deep_copy(who));
	d->dirty = true;
	ev.message = why;
	drv_warn("deploy", "canary step denied: rolling back", "deployment=%s why=\"%s\"",
	         d->row.id, why);
	return deploy_run_event(e, d, &ev);
}

static int deny(struct deploy_engine *e, struct dep *d, json_t *a, json_t *who)
{
	char why[WHY_MAX];
	const char *comment = json_string_value(json_object_get(who, "comment"));

	json_object_set_new(a, "denied", who);
	snprintf(why, sizeof(why), "denied by %s%s%s",
	         json_string_value(json_object_get(who, "actor")), comment[0] ? ": " : "", comment);
	deploy_event(d, "denied", NULL, json_deep_copy(who));
	deploy_run_end(e, d, "aborted", why);
	return DRV_OK;
}

int deploy_gate_decide(struct deploy_engine *e, struct dep *d, const char *actor, bool approve,
                       const char *comment, char *why, size_t cap)
{
	json_t *a = json_object_get(gate_of(d), "approval"), *who;
	int64_t now = drv_wall_ms();
	size_t have;

	if (d->seq != NULL)
		a = open_round(d); /* at a canary step (paused or not) */
	if (d->ended || a == NULL ||
	    (d->seq == NULL && strcmp(d->row.state, "awaiting_approval") != 0)) {
		snprintf(why, cap, "deployment %s is %s: nothing to %s", d->row.id, d->row.state,
		         approve ? "approve" : "deny");
		return DRV_ESTATE;
	}
	if (approve && !json_is_true(json_object_get(a, "allow_self")) &&
	    strcmp(actor, d->row.actor) == 0) {
		snprintf(why, cap,
		         "%s started deployment %s and may not approve it: another token must "
		         "(four eyes)",
		         actor, d->row.id);
		return DRV_EPERM;
	}
	if (approve && approved_by(a, actor)) {
		snprintf(why, cap, "%s approved deployment %s already: another token must", actor,
		         d->row.id);
		return DRV_EEXIST;
	}
	who = json_pack("{s:s, s:s, s:I}", "actor", actor, "comment", comment, "at_ms",
	                (json_int_t)now);
	if (who == NULL)
		return DRV_ENOMEM;
	if (!approve && d->seq != NULL)
		return deny_step(e, d, a, who);
	if (!approve)
		return deny(e, d, a, who);
	json_array_append_new(json_object_get(a, "approvals"), who);
	have = json_array_size(json_object_get(a, "approvals"));
	deploy_event(d, "approved", NULL,
	             json_pack("{s:s, s:s, s:i, s:O, s:O*}", "actor", actor, "comment", comment,
	                       "approvals", (int)have, "required", json_object_get(a, "required"),
	                       "step", json_object_get(a, "step")));
	d->dirty = true;
	if ((json_int_t)have < json_integer_value(json_object_get(a, "required"))) {
		if (d->seq != NULL) { /* the reason follows (deploy_gate_step_reason) */
			deploy_view_summary(d, NULL, now);
			return DRV_OK;
		}
		approval_reason(a, asker(env_of(e, d)), why, cap);
		set_state(e, d, "awaiting_approval", why);
		return DRV_OK;
	}
	json_object_set_new(a, "approved_ms", json_integer(now));
	if (d->seq != NULL) {
		struct drv_seq_event ev = {.kind = DRV_SEQ_EV_APPROVE};

		drv_info("deploy", "canary step approved", "deployment=%s step=%s", d->row.id,
		         json_string_value(json_object_get(a, "step")));
		return deploy_run_event(e, d, &ev);
	}
	try_start(e, d, now); /* or queued, when a window or a busy service holds it */
	return DRV_OK;
}

void deploy_gate_view(const struct dep *d, json_t *obj)
{
	const json_t *gate = gate_of(d);
	const json_t *a = json_object_get(gate, "approval");
	const char *paused = json_string_value(json_object_get(gate, "window_paused"));

	const json_t *rounds = rounds_of(d);

	/* at a canary step, the round that waits is the approval to decide */
	if (open_round(d) != NULL)
		a = open_round(d);
	/* a copy: the object leaves the engine thread, the gate stays */
	if (a != NULL)
		json_object_set_new(obj, "approval", json_deep_copy(a));
	if (json_array_size(rounds) > 0)
		json_object_set_new(obj, "step_approvals", json_deep_copy(rounds));
	if (paused != NULL)
		json_object_set_new(obj, "window_paused", json_string(paused));
	if (json_is_true(json_object_get(gate, "window_override")))
		json_object_set_new(obj, "window_override", json_true());
}

void deploy_gate_resumed(struct dep *d)
{
	if (json_object_get(gate_of(d), "window_paused") == NULL)
		return;
	set_window(d, "window_paused", NULL);
	set_window(d, "window_ignored", json_true());
	deploy_event(d, "window_ignored", NULL,
	             json_pack("{s:s}", "text", "resumed by an operator inside its window"));
}
