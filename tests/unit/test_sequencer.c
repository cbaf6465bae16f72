/*
 * test_sequencer.c: the sequencer with simulated time and agents: each
 * strategy's happy path, a failure at each phase, each rollback scope, an
 * offline host, the operator verbs, and the instructions it asks for.
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

#define ACT_START    DROVER__ACTION__ACTION_START
#define ACT_STOP     DROVER__ACTION__ACTION_STOP
#define ACT_PREVIOUS DROVER__ACTION__ACTION_ACTIVATE_PREVIOUS

/* ---- happy paths ---- */

static void rolling_happy_path(void **state)
{
	(void)state;
	struct sim sim;

	sim_init(&sim, plan_rolling, fleet, false);
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_PRESTAGE, NULL, NULL), 8);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 8);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, NULL), 0);
	/* 25% of 8: batches of two, every prestage before the first start */
	assert_int_equal(sim.max_inflight_starts, 2);
	assert_true(sim_order(&sim, DRV_SEQ_STEP_PRESTAGE, NULL, true) <
	            sim_order(&sim, DRV_SEQ_STEP_START, NULL, false));
	/* natural host order: core-1, core-2 first; the step ids name index */
	assert_string_equal(sim_find(&sim, "d1:start:0:0")->agent, "core-1");
	assert_string_equal(sim_find(&sim, "d1:start:0:7")->agent, "core-8");
	assert_true(sim_find(&sim, "d1:start:0:2")->at > sim_find(&sim, "d1:start:0:1")->at);
	assert_int_equal(sim.notify[DRV_EVENT_STARTED], 1);
	assert_int_equal(sim.notify[DRV_EVENT_TIER_DONE], 1);
	assert_int_equal(sim.notify[DRV_EVENT_SUCCEEDED], 1);
	for (size_t i = 0; i < sim.n_sends; i++)
		assert_int_equal(sim.sends[i].times, 1);
	assert_int_equal(drv_seq_next_deadline(sim.seq), INT64_MAX);
	sim_free(&sim);
}

static void full_runbook_happy_path(void **state)
{
	(void)state;
	struct sim sim;
	int64_t t0;

	sim_init(&sim, plan_full, fleet, false);
	t0 = sim.now;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	/* phases in order: prestage, pre, migrations, tiers, post, finalize */
	assert_true(sim_order(&sim, DRV_SEQ_STEP_PRESTAGE, NULL, true) <
	            sim_order(&sim, DRV_SEQ_STEP_PRE, NULL, false));
	assert_true(sim_find(&sim, "d1:up:0:0")->order < sim_find(&sim, "d1:up:1:0")->order);
	assert_true(sim_order(&sim, DRV_SEQ_STEP_UP, NULL, true) <
	            sim_order(&sim, DRV_SEQ_STEP_START, NULL, false));
	/* a tier starts when the previous one is done; services of a tier in parallel */
	assert_true(sim_order(&sim, DRV_SEQ_STEP_START, "project-coordinator", true) <
	            sim_order(&sim, DRV_SEQ_STEP_START, "planning-system", false));
	assert_true(sim_order(&sim, DRV_SEQ_STEP_START, "agent-orchestrator", true) <
	            sim_order(&sim, DRV_SEQ_STEP_START, "planning-system", false));
	assert_true(sim_order(&sim, DRV_SEQ_STEP_START, "agent-orchestrator", false) <
	            sim_order(&sim, DRV_SEQ_STEP_START, "project-coordinator", true));
	assert_true(sim_order(&sim, DRV_SEQ_STEP_START, "planning-system", true) <
	            sim_order(&sim, DRV_SEQ_STEP_START, "api-gateway", false));
	assert_true(sim_order(&sim, DRV_SEQ_STEP_START, "api-gateway", true) <
	            sim_order(&sim, DRV_SEQ_STEP_POST, NULL, false));
	assert_true(sim_order(&sim, DRV_SEQ_STEP_POST, NULL, false) <
	            sim_order(&sim, DRV_SEQ_STEP_FINALIZE, NULL, false));
	/* canary: 3 steps, traffic and metric at each, pauses of 30s between */
	assert_int_equal(sim.n_metric, 3 + 0);
	assert_int_equal(sim.n_traffic, 3 + 1); /* + the blue-green switch */
	/* blue-green: finalized only after finalize_after */
	assert_true(sim_find(&sim, "d1:finalize:4:0")->at >=
	            sim_find(&sim, "d1:start:4:0")->at + 10 * 60 * 1000);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_FINALIZE, NULL, NULL), 2);
	assert_int_equal(sim.notify[DRV_EVENT_TIER_DONE], 3);
	assert_true(sim.now - t0 >= 60000 + 10 * 60 * 1000 - 60000);
	sim_free(&sim);
}

static void canary_with_traffic_and_pauses(void **state)
{
	(void)state;
	struct sim sim;
	const char *text = plan_canary(
	        "20s", "          analysis: { http: { url: \"http://m/x\", max: 0.5 } }\n"
	               "          traffic: { balancer: lb, backend: api }\n");

	sim_init(&sim, text, fleet, false);
	sim.metric = 0.1;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	/* steps 10%, 25%, 50%, 100% of 8 hosts: 1, 2, 4, 8 started */
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 8);
	assert_true(sim_find(&sim, "d1:start:0:1")->at >=
	            sim_find(&sim, "d1:start:0:0")->at + 20000);
	assert_true(sim_find(&sim, "d1:start:0:2")->at >=
	            sim_find(&sim, "d1:start:0:1")->at + 20000);
	assert_int_equal(sim.n_traffic, 4);
	assert_int_equal(sim.n_metric, 4);
	/* the last traffic: all new, even weights */
	assert_non_null(strstr(sim.last_traffic, "core-1=100"));
	assert_non_null(strstr(sim.last_traffic, "core-8=100"));
	sim_free(&sim);
}

static void canary_weights_give_the_step_its_share(void **state)
{
	(void)state;
	struct sim sim;
	const char *text =
	        plan_canary("manual", "          traffic: { balancer: lb, backend: api,\n"
	                              "                     server: \"srv-{host}\" }\n");

	sim_init(&sim, text, fleet, false);
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_TIERS); /* waits at 10% */
	/* 1 new host (of 8, so 12.5% of hosts) gets 10% of requests:
	 * 199 / (199 + 7 * 256) = 10.0% */
	assert_non_null(strstr(sim.last_traffic, "srv-core-1=199 "));
	assert_non_null(strstr(sim.last_traffic, "srv-core-2=256 "));
	assert_non_null(strstr(sim.last_traffic, "srv-core-8=256"));
	/* only the new host must be UP in the balancer: the old ones had traffic */
	assert_string_equal(sim.last_wait, "srv-core-1");
	assert_int_equal(sim.notify[DRV_EVENT_AWAITING_PROMOTION], 1);
	sim_free(&sim);
}

static void canary_manual_waits_for_promote(void **state)
{
	(void)state;
	struct sim sim;

	sim_init(&sim, plan_canary("manual", ""), fleet, false);
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_TIERS);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 1);
	assert_int_equal(drv_seq_next_deadline(sim.seq), INT64_MAX);
	sim_advance(&sim, 3600 * 1000); /* an hour later: still waiting */
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 1);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_PROMOTE, "nope"), DRV_ESTATE);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_PROMOTE, NULL), DRV_OK);
	assert_int_equal(sim_run(&sim), DRV_SEQ_TIERS);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 2);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_PROMOTE, "api-gateway"), DRV_OK);
	assert_int_equal(sim_run(&sim), DRV_SEQ_TIERS);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_PROMOTE, NULL), DRV_OK);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 8);
	assert_int_equal(sim.notify[DRV_EVENT_AWAITING_PROMOTION], 3);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_PROMOTE, NULL), DRV_ESTATE);
	sim_free(&sim);
}

/* Approval at canary step 25% (docs/environments.md): the step finishes,
 * its pause and gates pass, then the service waits; promote does not pass
 * it; the approval goes on to 100%. */
static void canary_waits_for_approval_at_step(void **state)
{
	(void)state;
	struct sim sim;
	json_t *st;

	sim_init(&sim, plan_canary("20s", ""), fleet, false);
	assert_int_equal(drv_seq_approve_at(sim.seq, 100), DRV_EINVAL);
	assert_int_equal(drv_seq_approve_at(sim.seq, 0), DRV_EINVAL);
	assert_int_equal(drv_seq_approve_at(sim.seq, 25), DRV_OK);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_APPROVE, NULL), DRV_ESTATE); /* not started */
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_TIERS);
	/* 10% then 25% of 8: 1 + 1 started, the pause after 25% over */
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 2);
	assert_int_equal(sim.notify[DRV_EVENT_AWAITING_APPROVAL], 1);
	assert_int_equal(drv_seq_next_deadline(sim.seq), INT64_MAX);
	st = drv_seq_status(sim.seq, false);
	assert_string_equal(
	        json_string_value(json_object_get(
	                json_array_get(
	                        json_object_get(json_array_get(json_object_get(st, "tiers"), 0),
	                                        "services"),
	                        0),
	                "waiting")),
	        "approval");
	json_decref(st);
	sim_advance(&sim, 3600 * 1000);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 2);
	/* an operator's promote is no approval (four eyes stays with droverd) */
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_PROMOTE, NULL), DRV_ESTATE);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_APPROVE, NULL), DRV_OK);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_APPROVE, NULL), DRV_ESTATE);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 8);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, NULL), 0);
	assert_int_equal(sim.notify[DRV_EVENT_AWAITING_APPROVAL], 1);
	sim_free(&sim);
}

/* A denial at the step rolls the canary back with the denial as reason;
 * every state saved and loaded on the way (a droverd restart). */
static void canary_denied_at_step_rolls_back(void **state)
{
	(void)state;
	struct sim sim;
	struct drv_seq_event ev = {.kind = DRV_SEQ_EV_DENY, .message = "denied by bob: no"};

	sim_init(&sim, plan_canary("5s", ""), fleet, false);
	sim.restart = true;
	assert_int_equal(drv_seq_approve_at(sim.seq, 25), DRV_OK);
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_TIERS);
	assert_true(sim.restarts > 0);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 2);
	assert_int_equal(sim_event(&sim, &ev), DRV_OK);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	/* the two canary hosts go back; the six others never changed */
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, NULL), 2);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 2);
	assert_non_null(strstr(drv_seq_error(sim.seq), "denied by bob: no"));
	sim_free(&sim);
}

/* Approved after restarts: the saved state keeps the step to wait at. */
static void canary_approval_survives_restart(void **state)
{
	(void)state;
	struct sim sim;

	sim_init(&sim, plan_canary("5s", ""), fleet, false);
	sim.restart = true;
	assert_int_equal(drv_seq_approve_at(sim.seq, 50), DRV_OK);
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_TIERS);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 4); /* 50% of 8 */
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_APPROVE, NULL), DRV_OK);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 8);
	sim_free(&sim);
}

static void bluegreen_happy_path(void **state)
{
	(void)state;
	struct sim sim;
	const struct sim_send *st;

	sim_init(&sim, plan_bluegreen, fleet, false);
	sim.metric = 0.5;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	/* blue runs on 9080, so green starts beside it on 9081 */
	st = sim_find(&sim, "d1:start:0:0");
	assert_string_equal(st->slot, "green");
	assert_non_null(strstr(st->sig, "|green|9081|"));
	assert_int_equal(sim.n_traffic, 1);
	assert_string_equal(sim.last_traffic,
	                    "ui-1-green=100 ui-1-blue=0 ui-2-green=100 ui-2-blue=0");
	/* the switch waits for the new slot to be UP in the balancer */
	assert_string_equal(sim.last_wait, "ui-1-green ui-2-green");
	assert_true(sim_find(&sim, "d1:finalize:0:0")->at >= st->at + 600000);
	assert_true(sim_order(&sim, DRV_SEQ_STEP_POST, NULL, false) <
	            sim_order(&sim, DRV_SEQ_STEP_FINALIZE, NULL, false));
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, NULL), 0);
	sim_free(&sim);
}

/* A finalize step that fails (or times out: the same path) leaves the old
 * slot maybe running: the deployment succeeds (the new release runs) and
 * its reason says so. */
static void bluegreen_unconfirmed_finalize_said(void **state)
{
	(void)state;
	static const struct sim_rule rules[] = {
	        {DRV_SEQ_STEP_FINALIZE, NULL, "ui-2", NULL, SIM_FAIL},
	};
	struct sim sim;

	sim_init(&sim, plan_bluegreen, fleet, false);
	sim.metric = 0.5;
	sim.rules = rules;
	sim.n_rules = 1;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_string_equal(drv_seq_error(sim.seq),
	                    "done, but 1 host(s) did not confirm that the old slot stopped");
	sim_free(&sim);
	/* all confirmed: nothing to say */
	sim_init(&sim, plan_bluegreen, fleet, false);
	sim.metric = 0.5;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_string_equal(drv_seq_error(sim.seq), "");
	sim_free(&sim);
}

static void bluegreen_promote_finalizes_early(void **state)
{
	(void)state;
	struct sim sim;
	int64_t t;

	sim_init(&sim, plan_bluegreen, fleet, false);
	sim_start(&sim);
	for (int i = 0; i < 50 && drv_seq_state(sim.seq) != DRV_SEQ_FINALIZE; i++)
		sim_advance(&sim, 100);
	assert_int_equal(drv_seq_state(sim.seq), DRV_SEQ_FINALIZE);
	t = sim.now;
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_PROMOTE, NULL), DRV_OK);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_true(sim_find(&sim, "d1:finalize:0:0")->at < t + 1000);
	sim_free(&sim);
}

static void bluegreen_unhealthy_after_switch_switches_back(void **state)
{
	(void)state;
	struct sim sim;
	struct drv_seq_event ev = {.kind = DRV_SEQ_EV_REPORT,
	                           .result = DRV_SEQ_R_HEALTH_DOWN,
	                           .agent = "ui-2",
	                           .service = "web-dashboard",
	                           .message = "503 from /health"};

	sim_init(&sim, plan_bluegreen, fleet, false);
	sim_start(&sim);
	for (int i = 0; i < 50 && drv_seq_state(sim.seq) != DRV_SEQ_FINALIZE; i++)
		sim_advance(&sim, 100);
	assert_int_equal(drv_seq_state(sim.seq), DRV_SEQ_FINALIZE);
	assert_int_equal(sim.n_traffic, 1);
	assert_int_equal(sim_event(&sim, &ev), DRV_OK);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim.n_traffic, 2);
	assert_string_equal(sim.last_traffic,
	                    "ui-1-green=0 ui-1-blue=100 ui-2-green=0 ui-2-blue=100");
	assert_string_equal(sim.last_wait, "ui-1-blue ui-2-blue"); /* back: the old slot */
	assert_int_equal(sim_action_of(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, "ui-1"), ACT_STOP);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_FINALIZE, NULL, NULL), 0);
	assert_non_null(strstr(drv_seq_error(sim.seq), "503 from /health"));
	sim_free(&sim);
}

/* ---- blue-green across host sets ---- */

static const char plan_bgsets[] =
        PLAN_HEAD "tiers:\n"
                  "  - name: ui\n"
                  "    services:\n"
                  "      - name: web-dashboard\n"
                  "        image: r.example/web:2.4.0\n"
                  "        command: [/bin/svc]\n"
                  "        port: 9080\n"
                  "        health: { http: { port: 9080 } }\n"
                  "        strategy: { type: blue-green, finalize_after: 10m,\n"
                  "                    sets: { a: [ui-1, ui-2], b: [ui-3, ui-4] },\n"
                  "                    analysis: { http: { url: \"http://x/m\", max: 1 } },\n"
                  "                    traffic: { balancer: lb, backend: web } }\n"
                  "post:\n"
                  "  - { name: smoke-test, hosts: [ui-1], run: [/bin/smoke] }\n";

/* Set b is idle (the release goes there), set a serves. */
static void bgsets_init(struct sim *sim, uint32_t set, bool first)
{
	const char *set_a[] = {"ui-1", "ui-2"}, *set_b[] = {"ui-3", "ui-4"};
	const char **to = set ? set_b : set_a, **other = set ? set_a : set_b;

	sim_init(sim, plan_bgsets, fleet, false);
	assert_int_equal(drv_seq_use_set(sim->seq, 0, set, first), DRV_OK);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(drv_seq_add_host(sim->seq, 0, to[i], true, ""), DRV_OK);
		assert_int_equal(drv_seq_add_live_host(sim->seq, 0, other[i]), DRV_OK);
	}
}

/* Steps of the service (not hooks) sent to agent. */
static int sends_to(const struct sim *sim, const char *agent)
{
	int n = 0;

	for (size_t i = 0; i < sim->n_sends; i++)
		n += sim->sends[i].service >= 0 && strcmp(sim->sends[i].agent, agent) == 0;
	return n;
}

static void bgsets_switch_then_decommission(bool restart)
{
	struct sim sim;
	const struct sim_send *st, *fin;
	json_t *status, *sets;

	bgsets_init(&sim, 1, false);
	sim.restart = restart;
	assert_int_equal(drv_seq_use_set(sim.seq, 1, 0, false), DRV_EINVAL); /* no sets */
	sim_start(&sim);
	assert_null(drv_seq_live_set(sim.seq, 0));
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	/* the idle set b runs the release on the service's own port, no slot */
	st = sim_find(&sim, "d1:start:0:0");
	assert_string_equal(st->agent, "ui-3");
	assert_string_equal(st->slot, "");
	assert_non_null(strstr(st->sig, "||9080|"));
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 2);
	assert_true(restart ? sim.n_traffic >= 1 : sim.n_traffic == 1); /* resume re-sends */
	assert_string_equal(sim.last_traffic, "ui-3=100 ui-4=100 ui-1=0 ui-2=0");
	assert_string_equal(sim.last_wait, "ui-3 ui-4");
	/* set a is stopped after finalize_after, after the post hooks */
	fin = sim_find(&sim, "d1:finalize:0:2");
	assert_string_equal(fin->agent, "ui-1");
	assert_int_equal(fin->action, ACT_STOP);
	assert_string_equal(sim_find(&sim, "d1:finalize:0:3")->agent, "ui-2");
	assert_true(fin->at >= st->at + 600000);
	assert_true(sim_order(&sim, DRV_SEQ_STEP_POST, NULL, false) < fin->order);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_FINALIZE, NULL, NULL), 2);
	assert_int_equal(sends_to(&sim, "ui-1"), 1); /* its STOP, nothing else */
	assert_string_equal(drv_seq_live_set(sim.seq, 0), "b");
	status = drv_seq_status(sim.seq, false);
	sets = json_object_get(
	        json_array_get(json_object_get(json_array_get(json_object_get(status, "tiers"), 0),
	                                       "services"),
	                       0),
	        "sets");
	assert_string_equal(json_string_value(json_object_get(sets, "live")), "b");
	assert_string_equal(json_string_value(json_object_get(sets, "old")), "a");
	assert_string_equal(
	        json_string_value(json_object_get(
	                json_array_get(json_object_get(sets, "old_hosts"), 1), "decommission")),
	        "ok");
	json_decref(status);
	sim_free(&sim);
}

static void bgsets_happy_path(void **state)
{
	(void)state;
	bgsets_switch_then_decommission(false);
}

static void bgsets_happy_path_restarts(void **state)
{
	(void)state;
	bgsets_switch_then_decommission(true);
}

/* Unhealthy after the switch: traffic back to set a, set b stopped, set a
 * never sent anything. */
static void bgsets_unhealthy_switches_back(void **state)
{
	(void)state;
	struct sim sim;
	struct drv_seq_event ev = {.kind = DRV_SEQ_EV_REPORT,
	                           .result = DRV_SEQ_R_HEALTH_DOWN,
	                           .agent = "ui-4",
	                           .service = "web-dashboard",
	                           .message = "503 from /health"};

	bgsets_init(&sim, 1, false);
	sim_start(&sim);
	for (int i = 0; i < 50 && drv_seq_state(sim.seq) != DRV_SEQ_FINALIZE; i++)
		sim_advance(&sim, 100);
	assert_int_equal(drv_seq_state(sim.seq), DRV_SEQ_FINALIZE);
	assert_string_equal(drv_seq_live_set(sim.seq, 0), "b");
	assert_int_equal(sim_event(&sim, &ev), DRV_OK);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim.n_traffic, 2);
	assert_string_equal(sim.last_traffic, "ui-3=0 ui-4=0 ui-1=100 ui-2=100");
	assert_int_equal(sim_action_of(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, "ui-3"), ACT_STOP);
	assert_int_equal(sim_action_of(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, "ui-4"), ACT_STOP);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_FINALIZE, NULL, NULL), 0);
	assert_int_equal(sends_to(&sim, "ui-1"), 0);
	assert_int_equal(sends_to(&sim, "ui-2"), 0);
	assert_string_equal(drv_seq_live_set(sim.seq, 0), "a");
	sim_free(&sim);
}

/* A start that fails before any switch: nothing moves, set a untouched. */
static void bgsets_failed_start_no_switch(void **state)
{
	(void)state;
	static const struct sim_rule rules[] = {
	        {DRV_SEQ_STEP_START, NULL, "ui-3", NULL, SIM_FAIL},
	};
	struct sim sim;

	bgsets_init(&sim, 1, false);
	sim.rules = rules;
	sim.n_rules = 1;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim.n_traffic, 0);
	assert_int_equal(sends_to(&sim, "ui-1") + sends_to(&sim, "ui-2"), 0);
	assert_null(drv_seq_live_set(sim.seq, 0));
	sim_free(&sim);
}

/* A rollback once the old set is being stopped: nothing runs the old
 * release to go back to, so the new set keeps the traffic and the
 * deployment fails saying so (rather than stopping the only live set). */
static void bgsets_rollback_after_decommission_fails(void **state)
{
	(void)state;
	static const struct sim_rule rules[] = {
	        {DRV_SEQ_STEP_FINALIZE, NULL, NULL, NULL, SIM_SILENT},
	};
	struct sim sim;

	bgsets_init(&sim, 1, false);
	sim.rules = rules;
	sim.n_rules = 1;
	sim_start(&sim);
	for (int i = 0; i < 1000 && sim_count(&sim, DRV_SEQ_STEP_FINALIZE, NULL, NULL) == 0; i++)
		sim_advance(&sim, 1000);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_FINALIZE, NULL, NULL), 2);
	assert_int_equal(drv_seq_state(sim.seq), DRV_SEQ_FINALIZE);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_ROLLBACK, NULL), DRV_OK);
	assert_int_equal(sim_run(&sim), DRV_SEQ_FAILED);
	assert_int_equal(sim.n_traffic, 1); /* no switch back to a stopped set */
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, NULL), 0);
	assert_non_null(strstr(drv_seq_error(sim.seq), "rollback incomplete"));
	assert_string_equal(drv_seq_live_set(sim.seq, 0), "b");
	sim_free(&sim);
}

/* The first release across sets: set a, and the status says no set was live. */
static void bgsets_first_release(void **state)
{
	(void)state;
	struct sim sim;
	json_t *status, *sets;

	bgsets_init(&sim, 0, true);
	sim_start(&sim);
	status = drv_seq_status(sim.seq, false);
	sets = json_object_get(
	        json_array_get(json_object_get(json_array_get(json_object_get(status, "tiers"), 0),
	                                       "services"),
	                       0),
	        "sets");
	assert_true(json_is_true(json_object_get(sets, "first")));
	assert_true(json_is_null(json_object_get(sets, "live")));
	assert_string_equal(json_string_value(json_object_get(sets, "new")), "a");
	json_decref(status);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_string_equal(sim_find(&sim, "d1:start:0:0")->agent, "ui-1");
	assert_string_equal(sim.last_traffic, "ui-1=100 ui-2=100 ui-3=0 ui-4=0");
	assert_string_equal(drv_seq_live_set(sim.seq, 0), "a");
	sim_free(&sim);
}

static void bluegreen_by_named_balancer(void **state)
{
	(void)state;
	const char text[] = PLAN_HEAD "tiers:\n"
	                              "  - name: ui\n"
	                              "    services:\n"
	                              "      - name: web\n"
	                              "        image: r.example/web:2\n"
	                              "        hosts: [ui-1, ui-2]\n"
	                              "        command: [/bin/web]\n"
	                              "        port: 9080\n"
	                              "        strategy: { type: blue-green, green_port: 9081,\n"
	                              "          traffic: { balancer: lb, backend: web,\n"
	                              "                     server: \"{host}_{slot}\" } }\n";
	struct sim sim;

	sim_init(&sim, text, fleet, false);
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	/* droverd switches it: a TRAFFIC action, no RUN_HOOK on any agent */
	assert_int_equal(sim.n_traffic, 1);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_TRAFFIC, NULL, NULL), 0);
	assert_string_equal(sim.last_traffic,
	                    "ui-1_green=100 ui-1_blue=0 ui-2_green=100 ui-2_blue=0");
	sim_free(&sim);
}

/* ---- a failure at each phase ---- */

static void prestage_failure_changes_nothing(void **state)
{
	(void)state;
	const struct sim_rule rules[] = {{DRV_SEQ_STEP_PRESTAGE, "ui-svc", "ui-3", NULL, SIM_FAIL}};
	struct sim sim;

	sim_init(&sim, plan_two_tiers("{ rollback: deployment }", ""), fleet, false);
	sim.rules = rules;
	sim.n_rules = 1;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_FAILED);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 0);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_UP, NULL, NULL), 0);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, NULL), 0);
	assert_non_null(strstr(drv_seq_error(sim.seq), "prestage of ui-svc on ui-3 failed"));
	assert_int_equal(sim.notify[DRV_EVENT_FAILED], 1);
	sim_free(&sim);
}

static void pre_hook_failure(void **state)
{
	(void)state;
	const struct sim_rule rules[] = {
	        {DRV_SEQ_STEP_PRE, NULL, NULL, "backup-database", SIM_FAIL}};
	struct sim sim;

	sim_init(&sim, plan_full, fleet, false);
	sim.rules = rules;
	sim.n_rules = 1;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_FAILED);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_UP, NULL, NULL), 0);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 0);
	assert_non_null(strstr(drv_seq_error(sim.seq), "backup-database"));
	sim_free(&sim);
}

static void migration_failure_takes_the_applied_ones_down(void **state)
{
	(void)state;
	const struct sim_rule rules[] = {{DRV_SEQ_STEP_UP, NULL, NULL, "m42", SIM_FAIL}};
	struct sim sim;

	sim_init(&sim, plan_full, fleet, false);
	sim.rules = rules;
	sim.n_rules = 1;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_non_null(sim_find(&sim, "d1:down:1:0:0")); /* m41 down, generation 1 */
	assert_null(sim_find(&sim, "d1:down:1:1:0"));     /* m42 never applied */
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 0);
	assert_int_equal(sim.notify[DRV_EVENT_ROLLBACK_STARTED], 1);
	assert_int_equal(sim.notify[DRV_EVENT_ROLLED_BACK], 1);
	sim_free(&sim);
}

static void rolling_batch_failure_rolls_the_deployment_back(void **state)
{
	(void)state;
	/* sup-a: batch 3 (sup-3) fails; deployment scope */
	const struct sim_rule rules[] = {{DRV_SEQ_STEP_START, "sup-a", "sup-3", NULL, SIM_FAIL}};
	struct sim sim;

	sim_init(&sim, plan_two_tiers("{ max_failed_hosts: 0, rollback: deployment }", ""), fleet,
	         false);
	sim.rules = rules;
	sim.n_rules = 1;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	/* sup-a got hosts 1..3, not 4; tier ui never started */
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, "sup-a", NULL), 3);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, "ui-svc", NULL), 0);
	/* every touched host rolled back once, with the kept previous release */
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, "sup-a", NULL), 3);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, "sup-b", NULL),
	                 sim_count(&sim, DRV_SEQ_STEP_START, "sup-b", NULL));
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, "core-svc", NULL), 8);
	assert_int_equal(sim_action_of(&sim, DRV_SEQ_STEP_ROLLBACK, "core-svc", "core-1"),
	                 ACT_PREVIOUS);
	/* reverse tier order, then migrations down */
	assert_true(sim_order(&sim, DRV_SEQ_STEP_ROLLBACK, "sup-a", true) <
	            sim_order(&sim, DRV_SEQ_STEP_ROLLBACK, "core-svc", false));
	assert_true(sim_order(&sim, DRV_SEQ_STEP_ROLLBACK, "core-svc", true) <
	            sim_order(&sim, DRV_SEQ_STEP_DOWN, NULL, false));
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_DOWN, NULL, NULL), 1);
	/* rolling services roll back max_unavailable at a time: core-svc 4 and 4 */
	assert_true(sim_find(&sim, "d1:rollback:1:0:4")->at >
	            sim_find(&sim, "d1:rollback:1:0:3")->at);
	assert_int_equal(sim.notify[DRV_EVENT_ROLLED_BACK], 1);
	assert_int_equal(sim.notify[DRV_EVENT_SUCCEEDED], 0);
	sim_free(&sim);
}

static void canary_step_failure_rolls_back_without_replay(void **state)
{
	(void)state;
	/* step 3 (50%) starts core-3 and core-4; core-4 fails */
	const struct sim_rule rules[] = {{DRV_SEQ_STEP_START, NULL, "core-4", NULL, SIM_FAIL}};
	const char *text = plan_canary("5s", "          traffic: { balancer: lb, backend: api }\n");
	struct sim sim;

	sim_init(&sim, text, fleet, false);
	sim.rules = rules;
	sim.n_rules = 1;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 4);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, NULL), 4);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, "core-5"), 0);
	/* traffic: 10%, 25%, then away from the new hosts, then even */
	assert_int_equal(sim.n_traffic, 4);
	assert_non_null(strstr(sim.last_traffic, "core-1=100"));
	assert_non_null(strstr(sim.last_traffic, "core-5=100"));
	sim_free(&sim);
}

static void canary_metric_over_max_rolls_back(void **state)
{
	(void)state;
	const char *text = plan_canary(
	        "5s", "          analysis: { http: { url: \"http://m/x\", max: 0.01 } }\n");
	struct sim sim;

	sim_init(&sim, text, fleet, false);
	sim.metric = 0.2;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 1);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, NULL), 1);
	assert_non_null(strstr(drv_seq_error(sim.seq), "metric 0.2 above its maximum 0.01"));
	sim_free(&sim);
}

static void canary_unhealthy_during_pause_rolls_back(void **state)
{
	(void)state;
	const struct sim_rule rules[] = {
	        {DRV_SEQ_STEP_START, NULL, "core-2", NULL, SIM_UNHEALTHY_AFTER}};
	struct sim sim;

	sim_init(&sim, plan_canary("1m", ""), fleet, false);
	sim.rules = rules;
	sim.n_rules = 1;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 2);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, NULL), 2);
	sim_free(&sim);
}

static void green_verification_failure_keeps_blue(void **state)
{
	(void)state;
	const struct sim_rule rules[] = {{DRV_SEQ_STEP_START, NULL, "ui-2", NULL, SIM_FAIL}};
	struct sim sim;

	sim_init(&sim, plan_bluegreen, fleet, false);
	sim.rules = rules;
	sim.n_rules = 1;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim.n_traffic, 0); /* traffic never moved */
	assert_int_equal(sim_action_of(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, "ui-1"), ACT_STOP);
	assert_string_equal(sim_find(&sim, "d1:rollback:1:0:0")->slot, "green");
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_POST, NULL, NULL), 0);
	sim_free(&sim);
}

static void post_hook_failure_switches_blue_green_back(void **state)
{
	(void)state;
	const struct sim_rule rules[] = {{DRV_SEQ_STEP_POST, NULL, NULL, "smoke-test", SIM_FAIL}};
	struct sim sim;

	sim_init(&sim, plan_full, fleet, false);
	sim.rules = rules;
	sim.n_rules = 1;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_FINALIZE, NULL, NULL), 0);
	/* not finalized: traffic back to blue, green stopped */
	assert_int_equal(sim_action_of(&sim, DRV_SEQ_STEP_ROLLBACK, "web-dashboard", "ui-1"),
	                 ACT_STOP);
	assert_non_null(strstr(sim.last_traffic, "=100")); /* the canary's reset comes last */
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, "project-coordinator", NULL), 8);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_DOWN, NULL, NULL), 2);
	assert_true(sim_find(&sim, "d1:down:1:1:0")->order <
	            sim_find(&sim, "d1:down:1:0:0")->order);
	sim_free(&sim);
}

/* ---- rollback scopes ---- */

static void scope_service(void **state)
{
	(void)state;
	const struct sim_rule rules[] = {{DRV_SEQ_STEP_START, "sup-a", "sup-2", NULL, SIM_FAIL}};
	struct sim sim;

	sim_init(&sim, plan_two_tiers("{ rollback: service }", ""), fleet, false);
	sim.rules = rules;
	sim.n_rules = 1;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, "sup-a", NULL), 2);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, "sup-b", NULL), 4); /* finished */
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, "sup-b", NULL), 0);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, "core-svc", NULL), 0);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, "ui-svc", NULL), 0);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_DOWN, NULL, NULL), 0);
	/* the operator can still take back the rest */
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_ROLLBACK, NULL), DRV_OK);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, "sup-a", NULL), 2);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, "sup-b", NULL), 4);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, "core-svc", NULL), 8);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_DOWN, NULL, NULL), 1);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_ROLLBACK, NULL), DRV_ESTATE);
	sim_free(&sim);
}

static void scope_tier(void **state)
{
	(void)state;
	const struct sim_rule rules[] = {{DRV_SEQ_STEP_START, "sup-b", "sup-3", NULL, SIM_FAIL}};
	struct sim sim;

	sim_init(&sim, plan_two_tiers("{ rollback: tier }", ""), fleet, false);
	sim.rules = rules;
	sim.n_rules = 1;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, "sup-a", NULL),
	                 sim_count(&sim, DRV_SEQ_STEP_START, "sup-a", NULL));
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, "sup-b", NULL), 3);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, "core-svc", NULL), 0);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_DOWN, NULL, NULL), 0);
	sim_free(&sim);
}

static void scope_none(void **state)
{
	(void)state;
	const struct sim_rule rules[] = {{DRV_SEQ_STEP_START, "sup-b", "sup-1", NULL, SIM_FAIL}};
	struct sim sim;

	sim_init(&sim, plan_two_tiers("{ rollback: none }", ""), fleet, false);
	sim.rules = rules;
	sim.n_rules = 1;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_FAILED);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, NULL), 0);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_DOWN, NULL, NULL), 0);
	/* the operator may still roll back */
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_ROLLBACK, NULL), DRV_OK);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, "core-svc", NULL), 8);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_DOWN, NULL, NULL), 1);
	sim_free(&sim);
}

/* ---- deadlines and budgets ---- */

static void offline_host_fails_at_its_deadline(void **state)
{
	(void)state;
	const struct sim_rule rules[] = {{DRV_SEQ_STEP_START, NULL, "core-3", NULL, SIM_SILENT}};
	const char text[] =
	        PLAN_HEAD "  failure: { max_failed_hosts: 1 }\n"
	                  "tiers:\n"
	                  "  - name: core\n"
	                  "    services:\n"
	                  "      - { name: s, image: r/s:1, hosts: { labels: { tier: core } },\n"
	                  "          command: [/s] }\n";
	struct sim sim;
	int64_t t0;

	sim_init(&sim, text, fleet, false);
	sim.rules = rules;
	sim.n_rules = 1;
	t0 = sim.now;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 8);
	/* core-3's batch waited for the deadline (stop grace + health deadline + slack) */
	assert_true(sim_find(&sim, "d1:start:0:4")->at >= t0 + 10000 + 30000 + DRV_SEQ_SLACK_MS);
	{
		json_t *st = drv_seq_status(sim.seq, true);
		json_t *h = json_array_get(
		        json_object_get(
		                json_array_get(
		                        json_object_get(
		                                json_array_get(json_object_get(st, "tiers"), 0),
		                                "services"),
		                        0),
		                "host_list"),
		        2);

		assert_string_equal(json_string_value(json_object_get(h, "start")), "timeout");
		assert_int_equal(json_integer_value(json_object_get(st, "failed_hosts")), 1);
		json_decref(st);
	}
	sim_free(&sim);
}

static void offline_host_beyond_budget_rolls_back(void **state)
{
	(void)state;
	const struct sim_rule rules[] = {{DRV_SEQ_STEP_START, NULL, "core-2", NULL, SIM_SILENT}};
	struct sim sim;

	sim_init(&sim, plan_rolling, fleet, false);
	sim.rules = rules;
	sim.n_rules = 1;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 2);
	/* the silent host gets its rollback too (its agent may come back) */
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, "core-2"), 1);
	sim_free(&sim);
}

static void per_batch_budget(void **state)
{
	(void)state;
	const struct sim_rule rules[] = {{DRV_SEQ_STEP_START, NULL, "core-1", NULL, SIM_FAIL},
	                                 {DRV_SEQ_STEP_START, NULL, "core-2", NULL, SIM_FAIL}};
	const char text[] =
	        PLAN_HEAD "  failure: { max_failed_hosts: 3, max_failed_per_batch: 1 }\n"
	                  "tiers:\n"
	                  "  - name: core\n"
	                  "    services:\n"
	                  "      - { name: s, image: r/s:1, hosts: { labels: { tier: core } },\n"
	                  "          command: [/s], strategy: { max_unavailable: 2 } }\n";
	struct sim sim;

	sim_init(&sim, text, fleet, false);
	sim.rules = rules;
	sim.n_rules = 2;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_non_null(strstr(drv_seq_error(sim.seq), "per-batch"));
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 2);
	sim_free(&sim);
}

static void deployment_budget(void **state)
{
	(void)state;
	const struct sim_rule rules[] = {{DRV_SEQ_STEP_START, NULL, "core-1", NULL, SIM_FAIL},
	                                 {DRV_SEQ_STEP_START, NULL, "sup-1", NULL, SIM_FAIL}};
	struct sim sim;

	/* each service may lose one host; the deployment only one in all */
	sim_init(&sim,
	         plan_two_tiers("{ max_failed_hosts: 1 }", "failure: { max_failed_hosts: 1 }\n"),
	         fleet, false);
	sim.rules = rules;
	sim.n_rules = 2;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_non_null(strstr(drv_seq_error(sim.seq), "deployment's budget"));
	sim_free(&sim);
}

static void min_healthy_limits_batches(void **state)
{
	(void)state;
	const char text[] =
	        PLAN_HEAD "tiers:\n"
	                  "  - name: core\n"
	                  "    services:\n"
	                  "      - { name: s, image: r/s:1, hosts: { labels: { tier: core } },\n"
	                  "          command: [/s],\n"
	                  "          strategy: { max_unavailable: 50%, min_healthy: 7 } }\n";
	struct sim sim;

	sim_init(&sim, text, fleet, false);
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_int_equal(sim.max_inflight_starts, 1);
	sim_free(&sim);
}

/* ---- operator verbs ---- */

static void pause_and_resume(void **state)
{
	(void)state;
	struct sim sim;
	int before;

	sim_init(&sim, plan_rolling, fleet, false);
	sim_start(&sim);
	sim_advance(&sim, 150); /* prestage answered; first batch out */
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_PAUSE, NULL), DRV_OK);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_PAUSE, NULL), DRV_OK); /* idempotent */
	assert_true(drv_seq_paused(sim.seq));
	sim_advance(&sim, 10 * 60 * 1000);
	before = sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL);
	assert_int_equal(before, 2); /* the batch in flight finished; no new one */
	assert_int_equal(sim.notify[DRV_EVENT_PAUSED], 1);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_RESUME, NULL), DRV_OK);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_START, NULL, NULL), 8);
	assert_int_equal(sim.notify[DRV_EVENT_RESUMED], 1);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_PAUSE, NULL), DRV_ESTATE);
	sim_free(&sim);
}

static void abort_stops_where_it_stands(void **state)
{
	(void)state;
	struct sim sim;
	size_t sends;

	sim_init(&sim, plan_rolling, fleet, false);
	sim_start(&sim);
	sim_advance(&sim, 150);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_ABORT, NULL), DRV_OK);
	assert_int_equal(drv_seq_state(sim.seq), DRV_SEQ_ABORTED);
	sends = sim.n_sends;
	sim_advance(&sim, 60000); /* late reports change nothing */
	assert_int_equal(sim.n_sends, sends);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_ABORT, NULL), DRV_ESTATE);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_PROMOTE, NULL), DRV_ESTATE);
	/* then roll back what was touched */
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_ROLLBACK, NULL), DRV_OK);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, NULL), 2);
	assert_int_equal(sim.notify[DRV_EVENT_ABORTED], 1);
	sim_free(&sim);
}

static void operator_rollback_after_success(void **state)
{
	(void)state;
	struct sim sim;

	sim_init(&sim, plan_full, fleet, false);
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_ROLLBACK, NULL), DRV_OK);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_PAUSE, NULL), DRV_ESTATE);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	/* blue-green was finalized: re-activate the previous release, switch back */
	assert_int_equal(sim_action_of(&sim, DRV_SEQ_STEP_ROLLBACK, "web-dashboard", "ui-1"),
	                 ACT_PREVIOUS);
	assert_string_equal(sim_find(&sim, "d1:rollback:1:4:0")->slot, "blue");
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, NULL), 8 + 4 + 4 + 4 + 2);
	assert_int_equal(sim_count(&sim, DRV_SEQ_STEP_DOWN, NULL, NULL), 2);
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_ROLLBACK, NULL), DRV_ESTATE);
	sim_free(&sim);
}

static void first_release_rolls_back_by_stopping(void **state)
{
	(void)state;
	const struct sim_rule rules[] = {{DRV_SEQ_STEP_START, NULL, "core-3", NULL, SIM_FAIL}};
	struct sim sim;

	sim_init(&sim, plan_rolling, fleet, true);
	sim.rules = rules;
	sim.n_rules = 1;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_int_equal(sim_action_of(&sim, DRV_SEQ_STEP_ROLLBACK, NULL, "core-1"), ACT_STOP);
	sim_free(&sim);
}

static void failed_rollback_can_be_retried(void **state)
{
	(void)state;
	const struct sim_rule rules[] = {{DRV_SEQ_STEP_START, NULL, "core-3", NULL, SIM_FAIL},
	                                 {DRV_SEQ_STEP_ROLLBACK, NULL, "core-2", NULL, SIM_FAIL}};
	struct sim sim;

	sim_init(&sim, plan_rolling, fleet, false);
	sim.rules = rules;
	sim.n_rules = 2;
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_FAILED);
	assert_non_null(strstr(drv_seq_error(sim.seq), "core-3"));
	assert_int_equal(sim.notify[DRV_EVENT_FAILED], 1);
	sim.n_rules = 0; /* the operator fixed core-2 */
	assert_int_equal(sim_verb(&sim, DRV_SEQ_EV_ROLLBACK, NULL), DRV_OK);
	assert_int_equal(sim_run(&sim), DRV_SEQ_ROLLED_BACK);
	assert_non_null(sim_find(&sim, "d1:rollback:2:0:1")); /* core-2, generation 2 */
	assert_null(sim_find(&sim, "d1:rollback:2:0:0"));     /* core-1 was fine */
	sim_free(&sim);
}

/* ---- events that do not fit ---- */

static void odd_events(void **state)
{
	(void)state;
	struct sim sim;
	struct drv_seq_actions acts = {0};
	struct drv_seq_event ev = {.kind = DRV_SEQ_EV_REPORT, .result = DRV_SEQ_R_OK};

	sim_init(&sim, plan_rolling, fleet, false);
	sim_start(&sim);
	ev.agent = "core-1";
	ev.id = "d1:prestage:0:1"; /* core-2's step */
	assert_int_equal(drv_seq_handle(sim.seq, &ev, sim.now, &acts), DRV_EINVAL);
	ev.id = "d2:prestage:0:0";
	assert_int_equal(drv_seq_handle(sim.seq, &ev, sim.now, &acts), DRV_EINVAL);
	ev.id = "d1:prestage:9:0";
	assert_int_equal(drv_seq_handle(sim.seq, &ev, sim.now, &acts), DRV_EINVAL);
	ev.id = "d1:start:0:0"; /* not sent yet: ignored */
	assert_int_equal(drv_seq_handle(sim.seq, &ev, sim.now, &acts), DRV_OK);
	assert_false(acts.persist);
	ev.agent = "stranger";
	assert_int_equal(drv_seq_handle(sim.seq, &ev, sim.now, &acts), DRV_EINVAL);
	ev.agent = "core-1";
	ev.id = "d1:prestage:0:0";
	ev.result = DRV_SEQ_R_PROGRESS;
	assert_int_equal(drv_seq_handle(sim.seq, &ev, sim.now, &acts), DRV_OK);
	assert_false(acts.persist);
	ev.result = DRV_SEQ_R_OK;
	assert_int_equal(drv_seq_handle(sim.seq, &ev, sim.now, &acts), DRV_OK);
	assert_true(acts.persist);
	drv_seq_actions_clear(&acts);
	assert_int_equal(drv_seq_handle(sim.seq, &ev, sim.now, &acts), DRV_OK); /* a repeat */
	assert_false(acts.persist);
	ev.kind = DRV_SEQ_EV_TRAFFIC;
	ev.id = "d1:traffic:0:7";
	assert_int_equal(drv_seq_handle(sim.seq, &ev, sim.now, &acts), DRV_OK); /* stale */
	ev.id = "d1:traffic:x";
	assert_int_equal(drv_seq_handle(sim.seq, &ev, sim.now, &acts), DRV_EINVAL);
	drv_seq_actions_free(&acts);
	sim_free(&sim);
}

static void targets_are_checked(void **state)
{
	(void)state;
	struct drv_plan_errors errs = {0};
	struct drv_plan *p = NULL;
	struct drv_seq *s = NULL;
	struct drv_seq_actions acts = {0};

	assert_int_equal(drv_plan_parse_buffer(plan_full, strlen(plan_full), "p", &p, &errs),
	                 DRV_OK);
	assert_int_equal(drv_seq_new(p, "d1", &s), DRV_ENODIGEST);
	for (size_t i = 0; i < p->n_services; i++)
		p->services[i].digest = strdup(
		        "sha256:0000000000000000000000000000000000000000000000000000000000000000");
	assert_int_equal(drv_seq_new(p, "bad id", &s), DRV_EINVAL);
	assert_int_equal(drv_seq_new(p, "d1", &s), DRV_OK);
	assert_int_equal(drv_seq_add_host(s, 0, "core-1", true, NULL), DRV_OK);
	assert_int_equal(drv_seq_add_host(s, 0, "core-1", true, NULL), DRV_EEXIST);
	assert_int_equal(drv_seq_add_host(s, 99, "core-1", true, NULL), DRV_EINVAL);
	assert_int_equal(drv_seq_start(s, 0, &acts), DRV_EINVAL);
	assert_string_equal(drv_seq_error(s), "service agent-orchestrator has no hosts");
	drv_seq_free(s);
	drv_plan_free(p);
	drv_plan_errors_free(&errs);
}

static void instructions_carry_the_spec(void **state)
{
	(void)state;
	const char text[] =
	        PLAN_HEAD "pre:\n"
	                  "  - { name: backup, hosts: [db-1], run: [/bin/b, x],\n"
	                  "      env: { A: b }, timeout: 1m, user: backup }\n"
	                  "tiers:\n"
	                  "  - name: ui\n"
	                  "    services:\n"
	                  "      - name: web\n"
	                  "        user: web\n"
	                  "        capabilities: [CAP_NET_BIND_SERVICE]\n"
	                  "        image: r.example/web:2\n"
	                  "        hosts: [ui-1]\n"
	                  "        command: [/bin/web, --port, \"9080\"]\n"
	                  "        env: { LOG_LEVEL: info }\n"
	                  "        files: { /etc/f.json: '{}' }\n"
	                  "        port: 9080\n"
	                  "        health: { http: { port: 9080 } }\n"
	                  "        strategy: { type: blue-green, green_port: 9081,\n"
	                  "          traffic: { hook: { hosts: [lb-1], run: [/bin/sw] } } }\n";
	struct sim sim;
	struct drv_seq_action a;
	Drover__Instruction *ins;

	sim_init(&sim, text, fleet, false);
	sim_start(&sim);
	assert_int_equal(sim_run(&sim), DRV_SEQ_SUCCEEDED);
	/* a START for ui-1 in the green slot */
	memset(&a, 0, sizeof(a));
	a.kind = DRV_SEQ_ACT_SEND;
	snprintf(a.id, sizeof(a.id), "d1:start:0:0");
	a.agent = "ui-1";
	a.step = DRV_SEQ_STEP_START;
	a.action = ACT_START;
	a.slot = "green";
	a.port = 9081;
	a.service = 0;
	a.hook = -1;
	a.step_deadline_ms = 40000;
	assert_int_equal(drv_seq_instruction(sim.seq, &a, &ins), DRV_OK);
	assert_string_equal(ins->deployment_id, "d1");
	assert_string_equal(ins->service->name, "web");
	assert_string_equal(ins->service->version, "2.4.0");
	assert_string_equal(ins->service->slot, "green");
	assert_int_equal(ins->service->port, 9081);
	assert_int_equal(ins->service->health->port, 9081); /* follows the slot */
	assert_string_equal(ins->service->image->reference, "r.example/web:2");
	assert_int_equal(ins->service->n_command, 3);
	assert_string_equal(ins->service->env[0]->key, "LOG_LEVEL");
	assert_string_equal(ins->service->files[0]->path, "/etc/f.json");
	assert_int_equal(ins->service->files[0]->mode, 0640);
	assert_string_equal(ins->service->user, "web");
	assert_string_equal(ins->service->group, "");
	assert_int_equal(ins->service->n_capabilities, 1);
	assert_string_equal(ins->service->capabilities[0], "CAP_NET_BIND_SERVICE");
	assert_false(ins->service->keep_setid);
	assert_int_equal(ins->step_deadline_ms, 40000);
	drv_seq_instruction_free(ins);
	/* the pre hook with the deployment's variables */
	a.action = DROVER__ACTION__ACTION_RUN_HOOK;
	a.step = DRV_SEQ_STEP_PRE;
	a.service = -1;
	a.hook = 0;
	assert_int_equal(drv_seq_instruction(sim.seq, &a, &ins), DRV_OK);
	assert_string_equal(ins->hook->name, "backup");
	assert_int_equal(ins->hook->timeout_ms, 60000);
	assert_string_equal(ins->hook->user, "backup");
	assert_string_equal(ins->hook->env[0]->key, "A");
	assert_string_equal(ins->hook->env[1]->key, "DROVER_DEPLOYMENT");
	drv_seq_instruction_free(ins);
	/* the traffic hook ran on lb-1: to the new slot */
	assert_non_null(sim_find(&sim, "d1:traffic:0:1:0"));
	assert_string_equal(sim_find(&sim, "d1:traffic:0:1:0")->agent, "lb-1");
	sim_free(&sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(rolling_happy_path),
	        cmocka_unit_test(full_runbook_happy_path),
	        cmocka_unit_test(canary_with_traffic_and_pauses),
	        cmocka_unit_test(canary_weights_give_the_step_its_share),
	        cmocka_unit_test(canary_manual_waits_for_promote),
	        cmocka_unit_test(canary_waits_for_approval_at_step),
	        cmocka_unit_test(canary_denied_at_step_rolls_back),
	        cmocka_unit_test(canary_approval_survives_restart),
	        cmocka_unit_test(bluegreen_happy_path),
	        cmocka_unit_test(bluegreen_unconfirmed_finalize_said),
	        cmocka_unit_test(bluegreen_promote_finalizes_early),
	        cmocka_unit_test(bluegreen_unhealthy_after_switch_switches_back),
	        cmocka_unit_test(bluegreen_by_named_balancer),
	        cmocka_unit_test(bgsets_happy_path),
	        cmocka_unit_test(bgsets_happy_path_restarts),
	        cmocka_unit_test(bgsets_unhealthy_switches_back),
	        cmocka_unit_test(bgsets_failed_start_no_switch),
	        cmocka_unit_test(bgsets_first_release),
	        cmocka_unit_test(bgsets_rollback_after_decommission_fails),
	        cmocka_unit_test(prestage_failure_changes_nothing),
	        cmocka_unit_test(pre_hook_failure),
	        cmocka_unit_test(migration_failure_takes_the_applied_ones_down),
	        cmocka_unit_test(rolling_batch_failure_rolls_the_deployment_back),
	        cmocka_unit_test(canary_step_failure_rolls_back_without_replay),
	        cmocka_unit_test(canary_metric_over_max_rolls_back),
	        cmocka_unit_test(canary_unhealthy_during_pause_rolls_back),
	        cmocka_unit_test(green_verification_failure_keeps_blue),
	        cmocka_unit_test(post_hook_failure_switches_blue_green_back),
	        cmocka_unit_test(scope_service),
	        cmocka_unit_test(scope_tier),
	        cmocka_unit_test(scope_none),
	        cmocka_unit_test(offline_host_fails_at_its_deadline),
	        cmocka_unit_test(offline_host_beyond_budget_rolls_back),
	        cmocka_unit_test(per_batch_budget),
	        cmocka_unit_test(deployment_budget),
	        cmocka_unit_test(min_healthy_limits_batches),
	        cmocka_unit_test(pause_and_resume),
	        cmocka_unit_test(abort_stops_where_it_stands),
	        cmocka_unit_test(operator_rollback_after_success),
	        cmocka_unit_test(first_release_rolls_back_by_stopping),
	        cmocka_unit_test(failed_rollback_can_be_retried),
	        cmocka_unit_test(odd_events),
	        cmocka_unit_test(targets_are_checked),
	        cmocka_unit_test(instructions_carry_the_spec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
