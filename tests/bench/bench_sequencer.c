/*
 * bench_sequencer.c: the sequencer alone on a big fleet. A three-tier
 * rolling plan (the runbook's eight services, each on its own share of the
 * hosts) with simulated agents that answer every instruction at once:
 * how many decisions (handled events) per second, what one instruction
 * costs to build, what a state save/load costs, and peak memory.
 *
 *   bench_sequencer [--hosts N] [--max-unavailable PCT]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "err.h"
#include "sequencer.h"

static const char *const services[][2] = {
        {"core", "project-coordinator"},
        {"core", "agent-orchestrator"},
        {"core", "model-orchestration"},
        {"supporting", "planning-system"},
        {"supporting", "tool-integration"},
        {"supporting", "service-integration"},
        {"ui", "api-gateway"},
        {"ui", "web-dashboard"},
};
#define N_SERVICES 8

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *plan_text(int pct)
{
	size_t cap = 16384, n = 0;
	char *t = malloc(cap);
	const char *tier = "";

	if (t == NULL)
		return NULL;
	n += (size_t)snprintf(t + n, cap - n,
	                      "deployment: berrys\nversion: \"2.4.0\"\n"
	                      "defaults:\n"
	                      "  strategy: { type: rolling, max_unavailable: %d%% }\n"
	                      "  health: { http: { port: 8080 } }\n"
	                      "tiers:\n",
	                      pct);
	for (int i = 0; i < N_SERVICES; i++) {
		if (strcmp(tier, services[i][0]) != 0) {
			tier = services[i][0];
			n += (size_t)snprintf(t + n, cap - n, "  - name: %s\n    services:\n",
			                      tier);
		}
		n += (size_t)snprintf(t + n, cap - n,
		                      "      - { name: %s, command: [/bin/berry-svc],\n"
		                      "          image: \"registry.example:5000/berrys/%s@sha256:"
		                      "%064d\",\n"
		                      "          hosts: { labels: { service: %s } } }\n",
		                      services[i][1], services[i][1], i, services[i][1]);
	}
	return t;
}

struct queue {
	char (*id)[DRV_SEQ_STEP_ID_MAX];
	const char **agent;
	size_t head, n, cap;
};

static void push(struct queue *q, const struct drv_seq_action *a)
{
	if (q->head + q->n == q->cap) {
		if (q->head > 0) {
			memmove(q->id, q->id + q->head, q->n * sizeof(*q->id));
			memmove(q->agent, q->agent + q->head, q->n * sizeof(*q->agent));
			q->head = 0;
		} else {
			q->cap = q->cap ? q->cap * 2 : 1024;
			q->id = realloc(q->id, q->cap * sizeof(*q->id));
			q->agent = realloc(q->agent, q->cap * sizeof(*q->agent));
			if (q->id == NULL || q->agent == NULL)
				abort();
		}
	}
	memcpy(q->id[q->head + q->n], a->id, sizeof(*q->id));
	q->agent[q->head + q->n] = a->agent; /* owned by the sequencer */
	q->n++;
}

struct totals {
	long events, sends, actions, built;
	double build_s;
};

/* Queue every SEND; build each instruction as the dispatcher would. */
static void take(struct drv_seq *s, struct drv_seq_actions *acts, struct queue *q, struct totals *t)
{
	for (size_t i = 0; i < acts->n; i++) {
		const struct drv_seq_action *a = &acts->v[i];
		Drover__Instruction *ins;
		double t0;

		t->actions++;
		if (a->kind != DRV_SEQ_ACT_SEND)
			continue;
		t->sends++;
		t0 = now_s();
		if (drv_seq_instruction(s, a, &ins) != DRV_OK)
			abort();
		drv_seq_instruction_free(ins);
		t->build_s += now_s() - t0;
		t->built++;
		push(q, a);
	}
	drv_seq_actions_clear(acts);
}

static void measure_state(const struct drv_plan *plan, struct drv_seq *s)
{
	json_t *state = NULL;
	struct drv_seq *again = NULL;
	struct drv_seq_actions acts = {0};
	double t0 = now_s(), t1, t2;
	char *text;

	if (drv_seq_save(s, &state) != DRV_OK)
		abort();
	text = json_dumps(state, JSON_COMPACT);
	t1 = now_s();
	if (drv_seq_load(plan, state, &again) != DRV_OK ||
	    drv_seq_resume(again, 2000, &acts) != DRV_OK)
		abort();
	t2 = now_s();
	printf("  state (mid-run): save + serialize %.1f ms, %zu KB of JSON; "
	       "load + resume %.1f ms (%zu actions re-sent)\n",
	       (t1 - t0) * 1e3, strlen(text) / 1024, (t2 - t1) * 1e3, acts.n);
	free(text);
	json_decref(state);
	drv_seq_free(again);
	drv_seq_actions_free(&acts);
}

int main(int argc, char **argv)
{
	int hosts = 10000, pct = 10;
	struct drv_plan_errors errs = {0};
	struct drv_plan *plan = NULL;
	struct drv_seq *s = NULL;
	struct drv_seq_actions acts = {0};
	struct queue q = {0};
	struct totals t = {0};
	struct rusage ru;
	char agent[32], *text;
	double t0, elapsed;
	bool measured = false;
	enum drv_seq_state end;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--hosts") == 0)
			hosts = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--max-unavailable") == 0)
			pct = atoi(argv[i + 1]);
	}
	if (hosts < N_SERVICES || pct < 1 || pct > 100) {
		fprintf(stderr,
		        "usage: bench_sequencer [--hosts N>=8] [--max-unavailable 1..100]\n");
		return 2;
	}
	text = plan_text(pct);
	if (text == NULL ||
	    drv_plan_parse_buffer(text, strlen(text), "bench", &plan, &errs) != DRV_OK ||
	    drv_seq_new(plan, "bench", &s) != DRV_OK) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		return 1;
	}
	for (int h = 0; h < hosts; h++) {
		snprintf(agent, sizeof(agent), "host-%05d", h);
		if (drv_seq_add_host(s, (size_t)(h % N_SERVICES), agent, true, NULL) != DRV_OK)
			return 1;
	}
	t0 = now_s();
	if (drv_seq_start(s, 1000, &acts) != DRV_OK)
		return 1;
	t.events++;
	take(s, &acts, &q, &t);
	while (q.n > 0 && !drv_seq_state_terminal(drv_seq_state(s))) {
		struct drv_seq_event ev = {.kind = DRV_SEQ_EV_REPORT, .result = DRV_SEQ_R_OK};

		ev.id = q.id[q.head];
		ev.agent = q.agent[q.head];
		q.head++;
		q.n--;
		if (drv_seq_handle(s, &ev, 1000 + t.events, &acts) != DRV_OK)
			return 1;
		t.events++;
		take(s, &acts, &q, &t);
		if (!measured && t.events > hosts * 3 / 2) {
			double m0 = now_s();

			measure_state(plan, s);
			t0 += now_s() - m0; /* not part of the decision rate */
			measured = true;
		}
	}
	elapsed = now_s() - t0;
	getrusage(RUSAGE_SELF, &ru);
	printf("bench_sequencer: %d hosts, %d services in 3 tiers, rolling max_unavailable %d%%: "
	       "%s\n",
	       hosts, N_SERVICES, pct, drv_seq_state_name(drv_seq_state(s)));
	printf("  %ld events (decisions) in %.3f s: %.0f decisions/s; %ld actions, %ld sends\n",
	       t.events, elapsed, (double)t.events / elapsed, t.actions, t.sends);
	printf("  instructions built: %ld, %.2f us each (included above)\n", t.built,
	       t.built ? t.build_s * 1e6 / (double)t.built : 0.0);
	printf("  peak RSS: %ld KB\n", ru.ru_maxrss);
	end = drv_seq_state(s);
	free(text);
	free(q.id);
	free(q.agent);
	drv_seq_actions_free(&acts);
	drv_seq_free(s);
	drv_plan_free(plan);
	return end == DRV_SEQ_SUCCEEDED ? 0 : 1;
}
