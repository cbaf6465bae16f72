/*
 * test_sequencer_restart.c: persistence. Every scenario runs twice: once
 * straight through, once with the sequencer saved to JSON text, freed,
 * loaded and resumed after every single call (droverd killed at every
 * transition). The end state must be the same, and no step id may have
 * been issued with different content. Plus save/load round trips and
 * refusal of a state that does not fit the plan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"
#include "seq_plans.h"
#include "seq_sim.h"

struct scenario {
	const char *name;
	const char *plan;    /* NULL: plan_two_tiers(failure), or a canary */
	const char *failure; /* plan_two_tiers's failure policy */
	const char *pause;   /* set: plan_canary(pause, extra) */
	const char *extra;
	struct sim_rule rules[3];
	size_t n_rules;
	double metric;
	bool operator; /* pause, resume and promote along the way */
	enum drv_seq_state want;
};

#define RULE(step, svc, agent, hook, answer)                                                       \
	{                                                                                          \
		(step), (svc), (agent), (hook), (answer)                                           \
	}

static const struct scenario scenarios[] = {
        {.name = "rolling", .plan = plan_rolling, .want = DRV_SEQ_SUCCEEDED},
        {.name = "full runbook", .plan = plan_full, .want = DRV_SEQ_SUCCEEDED},
        {.name = "canary manual",
         .pause = "manual",
         .extra = "          traffic: { balancer: lb, backend: a }\n",
         .operator= true,
         .want = DRV_SEQ_SUCCEEDED},
        {.name = "blue-green", .plan = plan_bluegreen, .metric = 0.5, .want = DRV_SEQ_SUCCEEDED},
        {.name = "batch failure, deployment rollback",
         .failure = "{ rollback: deployment }",
         .rules = {RULE(DRV_SEQ_STEP_START, "sup-b", "sup-2", NULL, SIM_FAIL)},
         .n_rules = 1,
         .want = DRV_SEQ_ROLLED_BACK},
        {.name = "post hook failure",
         .plan = plan_full,
         .rules = {RULE(DRV_SEQ_STEP_POST, NULL, NULL, "smoke-test", SIM_FAIL)},
         .n_rules = 1,
         .want = DRV_SEQ_ROLLED_BACK},
        {.name = "migration failure",
         .plan = plan_full,
         .rules = {RULE(DRV_SEQ_STEP_UP, NULL, NULL, "m42", SIM_FAIL)},
         .n_rules = 1,
         .want = DRV_SEQ_ROLLED_BACK},
        {.name = "scope service",
         .failure = "{ rollback: service }",
         .rules = {RULE(DRV_SEQ_STEP_START, "sup-a", "sup-3", NULL, SIM_FAIL)},
         .n_rules = 1,
         .want = DRV_SEQ_ROLLED_BACK},
        {.name = "canary metric",
         .pause = "5s",
         .extra = "          analysis: { http: { url: \"http://m\", max: 1 } }\n",
         .metric = 2.0,
         .want = DRV_SEQ_ROLLED_BACK},
        {.name = "green fails",
         .plan = plan_bluegreen,
         .rules = {RULE(DRV_SEQ_STEP_START, NULL, "ui-1", NULL, SIM_FAIL)},
         .n_rules = 1,
         .want = DRV_SEQ_ROLLED_BACK},
        {.name = "prestage fails",
         .plan = plan_full,
         .rules = {RULE(DRV_SEQ_STEP_PRESTAGE, NULL, "core-5", NULL, SIM_FAIL)},
         .n_rules = 1,
         .want = DRV_SEQ_FAILED},
        {.name = "rollback fails",
         .plan = plan_rolling,
         .rules = {RULE(DRV_SEQ_STEP_START, NULL, "core-4", NULL, SIM_FAIL),
                   RULE(DRV_SEQ_STEP_ROLLBACK, NULL, "core-1", NULL, SIM_FAIL)},
         .n_rules = 2,
         .want = DRV_SEQ_FAILED},
};

static const char *scenario_plan(const struct scenario *sc)
{
	if (sc->plan != NULL)
		return sc->plan;
	if (sc->pause != NULL)
		return plan_canary(sc->pause, sc->extra);
	return plan_two_tiers(sc->failure, "");
}

static enum drv_seq_state play(struct sim *sim, const struct scenario *sc, bool restart, bool crash)
{
	const char *const *f = fleet;
	enum drv_seq_state st;

	sim_init(sim, scenario_plan(sc), f, false);
	sim->rules = sc->rules;
	sim->n_rules = sc->n_rules;
	sim->metric = sc->metric;
	sim->restart = restart;
	sim->crash_before_send = crash;
	sim_start(sim);
	if (sc->operator) {
		sim_advance(sim, 150);
		assert_int_equal(sim_verb(sim, DRV_SEQ_EV_PAUSE, NULL), DRV_OK);
		sim_advance(sim, 60000);
		assert_int_equal(sim_verb(sim, DRV_SEQ_EV_RESUME, NULL), DRV_OK);
	}
	for (int i = 0; i < 20; i++) {
		st = sim_run(sim);
		if (drv_seq_state_terminal(st))
			break;
		assert_int_equal(sim_verb(sim, DRV_SEQ_EV_PROMOTE, NULL), DRV_OK);
	}
	return drv_seq_state(sim->seq);
}

static void same_steps(const struct sim *a, const struct sim *b)
{
	assert_int_equal(a->n_sends, b->n_sends);
	for (size_t i = 0; i < a->n_sends; i++) {
		const struct sim_send *o = sim_find(b, a->sends[i].id);

		assert_non_null(o);
		assert_string_equal(o->sig, a->sends[i].sig);
		assert_int_equal(a->sends[i].times, 1);
	}
}

/* crash: killed after storing each transition but before sending what it caused */
static void compare_runs(bool crash)
{
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		const struct scenario *sc = &scenarios[i];
		struct sim straight, restarted;
		char *a, *b;

		assert_int_equal(play(&straight, sc, false, false), sc->want);
		assert_int_equal(play(&restarted, sc, true, crash), sc->want);
		if (restarted.restarts <= 3)
			fail_msg("%s: only %d restarts", sc->name, restarted.restarts);
		a = sim_status_text(&straight);
		b = sim_status_text(&restarted);
		if (strcmp(a, b) != 0)
			fail_msg("%s: end states differ:\n%s\n---\n%s", sc->name, a, b);
		same_steps(&straight, &restarted);
		for (int e = 0; e < DRV_EVENT_COUNT && !crash; e++)
			assert_int_equal(straight.notify[e], restarted.notify[e]);
		free(a);
		free(b);
		sim_free(&straight);
		sim_free(&restarted);
	}
}

static void restart_at_every_transition(void **state)
{
	(void)state;
	compare_runs(false);
}

static void crash_before_sending_at_every_transition(void **state)
{
	(void)state;
	compare_runs(true);
}

/* Kill in the middle of a wave: the resumed sequencer re-sends exactly the
 * outstanding steps, with the same ids, and nothing else. */
static void resume_resends_outstanding_steps(void **state)
{
	(void)state;
	struct sim sim;
	json_t *saved = NULL;
	struct drv_seq_actions acts = {0};
	size_t sends = 0;

	sim_init(&sim, plan_rolling, fleet, false);
	sim_start(&sim);
	sim_advance(&sim, 100); /* prestage done, batch 1 out: core-1, core-2 */
	assert_int_equal(drv_seq_save(sim.seq, &saved), DRV_OK);
	drv_seq_free(sim.seq);
	assert_int_equal(drv_seq_load(sim.plan, saved, &sim.seq), DRV_OK);
	assert_int_equal(drv_seq_resume(sim.seq, sim.now + 5000, &acts), DRV_OK);
	for (size_t i = 0; i < acts.n; i++) {
		if (acts.v[i].kind != DRV_SEQ_ACT_SEND)
			continue;
		sends++;
		assert_true(strcmp(acts.v[i].id, "d1:start:0:0") == 0 ||
		            strcmp(acts.v[i].id, "d1:start:0:1") == 0);
		assert_true(acts.v[i].deadline >= sim.now + 5000 + DRV_SEQ_RESUME_GRACE_MS);
	}
	assert_int_equal(sends, 2);
	assert_true(acts.persist);
	json_decref(saved);
	drv_seq_actions_free(&acts);
	sim_free(&sim);
}

static void save_load_round_trip(void **state)
{
	(void)state;
	struct sim sim;
	json_t *a = NULL, *b = NULL;
	struct drv_seq *again = NULL;

	sim_init(&sim, plan_full, fleet, false);
	sim_start(&sim);
	for (int i = 0; i < 30; i++) {
		sim_advance(&sim, 977 + i * 1000);
		assert_int_equal(drv_seq_save(sim.seq, &a), DRV_OK);
		assert_int_equal(drv_seq_load(sim.plan, a, &again), DRV_OK);
		assert_int_equal(drv_seq_save(again, &b), DRV_OK);
		assert_true(json_equal(a, b));
		assert_int_equal(drv_seq_next_deadline(again), drv_seq_next_deadline(sim.seq));
		json_decref(a);
		json_decref(b);
		drv_seq_free(again);
	}
	sim_free(&sim);
}

/* Rows as droverd stores them: the first save returns every host and the
 * agents, a save after one host's report that host alone, one with no
 * change none; at every point the rows stored so far load back into the
 * whole state. */
static void rows_only_changed(void **state)
{
	(void)state;
	struct sim sim;
	json_t *table = json_object(), *rows, *st = NULL, *a = NULL, *b = NULL;
	struct drv_seq *again = NULL;
	struct drv_seq_event ev = {.kind = DRV_SEQ_EV_REPORT, .result = DRV_SEQ_R_OK};
	char key[32];

	sim_init(&sim, plan_rolling, fleet, false);
	sim_start(&sim); /* prestage sent to the 8 core hosts */
	rows = json_object();
	assert_int_equal(drv_seq_save_rows(sim.seq, &st, rows), DRV_OK);
	assert_int_equal(json_object_size(rows), 1 + 8);
	assert_non_null(json_object_get(rows, "agents"));
	assert_null(json_object_get(st, "agents"));
	assert_int_equal(json_integer_value(json_object_get(st, "n_agents")), 8);
	json_object_update(table, rows);
	drv_seq_rows_stored(sim.seq);
	json_decref(rows);
	json_decref(st);

	rows = json_object();
	assert_int_equal(drv_seq_save_rows(sim.seq, &st, rows), DRV_OK);
	assert_int_equal(json_object_size(rows), 0);
	json_decref(rows);
	json_decref(st);

	ev.agent = sim.sends[2].agent;
	ev.id = sim.sends[2].id;
	assert_int_equal(drv_seq_handle(sim.seq, &ev, sim.now + 10, &sim.acts), DRV_OK);
	drv_seq_actions_clear(&sim.acts);
	rows = json_object();
	assert_int_equal(drv_seq_save_rows(sim.seq, &st, rows), DRV_OK);
	assert_int_equal(json_object_size(rows), 1);
	snprintf(key, sizeof(key), "h0.%d", 2); /* hosts in fleet order: core-3 */
	assert_string_equal(sim.sends[2].agent, "core-3");
	assert_non_null(json_object_get(rows, key));
	json_object_update(table, rows);
	drv_seq_rows_stored(sim.seq);
	json_decref(rows);

	assert_int_equal(drv_seq_load_rows(sim.plan, st, table, &again), DRV_OK);
	assert_int_equal(drv_seq_save(again, &a), DRV_OK);
	assert_int_equal(drv_seq_save(sim.seq, &b), DRV_OK);
	assert_true(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	/* loaded from the rows: they count as stored */
	rows = json_object();
	json_decref(st);
	assert_int_equal(drv_seq_save_rows(again, &st, rows), DRV_OK);
	assert_int_equal(json_object_size(rows), 0);
	json_decref(rows);
	drv_seq_free(again);
	again = NULL;

	/* a host without its row, agents that do not match: refused */
	json_object_del(table, "h0.7");
	assert_int_equal(drv_seq_load_rows(sim.plan, st, table, &again), DRV_EINVAL);
	assert_int_equal(drv_seq_load_rows(sim.plan, st, NULL, &again), DRV_EINVAL);
	json_object_set_new(table, "h0.7", json_pack("[iiiiii]", 7, 0, 1, 0, 0, 0));
	json_object_set_new(table, "agents", json_pack("[s]", "core-1"));
	assert_int_equal(drv_seq_load_rows(sim.plan, st, table, &again), DRV_EINVAL);
	assert_null(again);
	json_decref(st);
	json_decref(table);
	sim_free(&sim);
}

/* A whole state (saved before the rows) loads through drv_seq_load_rows
 * too; its first save then returns every row. */
static void rows_from_whole_state(void **state)
{
	(void)state;
	struct sim sim;
	json_t *whole = NULL, *rows = json_object(), *st = NULL;
	struct drv_seq *again = NULL;

	sim_init(&sim, plan_full, fleet, false);
	sim_start(&sim);
	sim_advance(&sim, 5000);
	assert_int_equal(drv_seq_save(sim.seq, &whole), DRV_OK);
	assert_int_equal(drv_seq_load_rows(sim.plan, whole, NULL, &again), DRV_OK);
	assert_int_equal(drv_seq_save_rows(again, &st, rows), DRV_OK);
	assert_non_null(json_object_get(rows, "agents"));
	assert_non_null(json_object_get(rows, "h0.0"));
	assert_true(json_object_size(rows) > 8);
	json_decref(whole);
	json_decref(rows);
	json_decref(st);
	drv_seq_free(again);
	sim_free(&sim);
}

static void load_refuses_what_does_not_fit(void **state)
{
	(void)state;
	struct sim sim, other;
	json_t *saved = NULL, *bad;
	struct drv_seq *s = NULL;

	sim_init(&sim, plan_full, fleet, false);
	sim_init(&other, plan_rolling, fleet, false);
	sim_start(&sim);
	sim_advance(&sim, 1000);
	assert_int_equal(drv_seq_save(sim.seq, &saved), DRV_OK);
	assert_int_equal(drv_seq_load(other.plan, saved, &s), DRV_EINVAL); /* another plan */
	bad = json_deep_copy(saved);
	json_object_set_new(bad, "state", json_integer(99));
	assert_int_equal(drv_seq_load(sim.plan, bad, &s), DRV_EINVAL);
	json_decref(bad);
	bad = json_deep_copy(saved);
	json_array_set_new(
	        json_object_get(json_array_get(json_object_get(bad, "services"), 0), "hosts"), 0,
	        json_pack("[iiiiii]", 999, 0, 0, 0, 0, 0)); /* unknown agent */
	assert_int_equal(drv_seq_load(sim.plan, bad, &s), DRV_EINVAL);
	json_decref(bad);
	bad = json_deep_copy(saved);
	json_object_del(bad, "rb_gen");
	assert_int_equal(drv_seq_load(sim.plan, bad, &s), DRV_EINVAL);
	json_decref(bad);
	assert_int_equal(drv_seq_load(sim.plan, json_object_get(saved, "agents"), &s), DRV_EINVAL);
	assert_null(s);
	json_decref(saved);
	sim_free(&sim);
	sim_free(&other);
}

static void status_reports_progress(void **state)
{
	(void)state;
	struct sim sim;
	json_t *st, *svc;

	sim_init(&sim, plan_canary("manual", ""), fleet, false);
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_TIERS);
	st = drv_seq_status(sim.seq, false);
	assert_string_equal(json_string_value(json_object_get(st, "state")), "tiers");
	assert_string_equal(json_string_value(json_object_get(st, "tier")), "core");
	svc = json_array_get(
	        json_object_get(json_array_get(json_object_get(st, "tiers"), 0), "services"), 0);
	assert_string_equal(json_string_value(json_object_get(svc, "waiting")), "promote");
	assert_int_equal(json_integer_value(json_object_get(svc, "step")), 1);
	assert_int_equal(json_integer_value(json_object_get(svc, "steps")), 4);
	assert_int_equal(json_integer_value(json_object_get(svc, "percent")), 10);
	assert_int_equal(json_integer_value(json_object_get(svc, "started")), 1);
	assert_null(json_object_get(svc, "host_list"));
	json_decref(st);
	sim_free(&sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(restart_at_every_transition),
	        cmocka_unit_test(crash_before_sending_at_every_transition),
	        cmocka_unit_test(resume_resends_outstanding_steps),
	        cmocka_unit_test(save_load_round_trip),
	        cmocka_unit_test(load_refuses_what_does_not_fit),
	        cmocka_unit_test(rows_only_changed),
	        cmocka_unit_test(rows_from_whole_state),
	        cmocka_unit_test(status_reports_progress),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
