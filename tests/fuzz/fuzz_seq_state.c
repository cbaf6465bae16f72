/*
 * fuzz_seq_state.c: the sequencer's state decoder (drv_seq_load; for an
 * array [state, rows], drv_seq_load_rows) on arbitrary bytes, then
 * everything a loaded state is used for: save (whole and as rows), status,
 * resume, a tick and a few reports. The state is read from
 * droverd's own database, but a decoder is a decoder.
 *
 * The seed corpus (corpus/seq_state/) holds states of the plan below taken
 * at several points of a deployment; they carry its plan hash, so if the
 * plan changes, write new seeds: FUZZ_SEQ_SEEDS=DIR ./fuzz_seq_state -runs=0
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "sequencer.h"

static const char plan_text[] =
        "deployment: berrys\n"
        "version: \"2.4.0\"\n"
        "defaults: { health: { http: { port: 8080 } } }\n"
        "pre: [ { name: backup, hosts: [db-1], run: [/b] } ]\n"
        "migrations: [ { name: m1, hosts: [db-1], up: [/m, up], down: [/m, down] } ]\n"
        "tiers:\n"
        "  - name: core\n"
        "    services:\n"
        "      - { name: a, image: \"r/a@sha256:"
        "0000000000000000000000000000000000000000000000000000000000000000\",\n"
        "          hosts: [h-1, h-2, h-3], command: [/a] }\n"
        "  - name: ui\n"
        "    services:\n"
        "      - name: c\n"
        "        image: "
        "\"r/c@sha256:0000000000000000000000000000000000000000000000000000000000000000\"\n"
        "        hosts: [h-1, h-2]\n"
        "        command: [/c]\n"
        "        strategy: { type: canary, steps: [50%, 100%], pause: manual,\n"
        "          analysis: { http: { url: \"http://m\", max: 1 } },\n"
        "          traffic: { balancer: lb, backend: c } }\n"
        "      - name: w\n"
        "        image: "
        "\"r/w@sha256:0000000000000000000000000000000000000000000000000000000000000000\"\n"
        "        hosts: [h-3]\n"
        "        command: [/w]\n"
        "        strategy: { type: blue-green, green_port: 8081,\n"
        "          traffic: { hook: { hosts: [lb-1], run: [/sw] } } }\n"
        "post: [ { name: smoke, hosts: [h-1], run: [/s] } ]\n";

static struct drv_plan *plan;

static void write_seed(const char *dir, int n, const struct drv_seq *s)
{
	char path[512], *text;
	json_t *j = NULL;
	FILE *f;

	if (drv_seq_save(s, &j) != DRV_OK)
		return;
	text = json_dumps(j, JSON_COMPACT);
	snprintf(path, sizeof(path), "%s/state-%02d.json", dir, n);
	f = fopen(path, "w");
	if (f != NULL && text != NULL)
		fputs(text, f);
	if (f != NULL)
		fclose(f);
	free(text);
	json_decref(j);
}

/* Run the plan with agents that always succeed, saving now and then. */
static void write_seeds(const char *dir)
{
	struct drv_seq *s;
	struct drv_seq_actions acts = {0};
	int64_t now = 1000;
	int n = 0;

	drv_seq_new(plan, "d1", &s);
	for (size_t i = 0; i < plan->n_services; i++) {
		for (size_t j = 0; j < plan->services[i].hosts.n_ids; j++)
			drv_seq_add_host(s, i, plan->services[i].hosts.ids[j], true, "blue");
	}
	drv_seq_add_hook_host(s, DRV_SEQ_STEP_PRE, 0, "db-1");
	drv_seq_add_hook_host(s, DRV_SEQ_STEP_UP, 0, "db-1");
	drv_seq_add_hook_host(s, DRV_SEQ_STEP_POST, 0, "h-1");
	drv_seq_add_hook_host(s, DRV_SEQ_STEP_TRAFFIC, 2, "lb-1");
	drv_seq_start(s, now, &acts);
	for (int round = 0; round < 40 && !drv_seq_state_terminal(drv_seq_state(s)); round++) {
		struct drv_seq_actions next = {0};

		write_seed(dir, n++, s);
		for (size_t i = 0; i < acts.n; i++) {
			struct drv_seq_event ev = {.result = DRV_SEQ_R_OK, .id = acts.v[i].id};

			if (acts.v[i].kind == DRV_SEQ_ACT_SEND) {
				ev.kind = DRV_SEQ_EV_REPORT;
				ev.agent = acts.v[i].agent;
			} else if (acts.v[i].kind == DRV_SEQ_ACT_TRAFFIC) {
				ev.kind = DRV_SEQ_EV_TRAFFIC;
			} else if (acts.v[i].kind == DRV_SEQ_ACT_METRIC) {
				ev.kind = DRV_SEQ_EV_METRIC;
				ev.value = round > 6 ? 5 : 0; /* the canary fails late */
			} else {
				continue;
			}
			drv_seq_handle(s, &ev, ++now, &next);
		}
		if (next.n == 0) {
			struct drv_seq_event promote = {.kind = DRV_SEQ_EV_PROMOTE};

			drv_seq_handle(s, &promote, ++now, &next);
		}
		drv_seq_actions_free(&acts);
		acts = next;
	}
	write_seed(dir, n, s);
	drv_seq_actions_free(&acts);
	drv_seq_free(s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct drv_plan_errors errs = {0};

	(void)argc;
	(void)argv;
	if (drv_plan_parse_buffer(plan_text, strlen(plan_text), "fuzz", &plan, &errs) != DRV_OK)
		abort();
	if (getenv("FUZZ_SEQ_SEEDS") != NULL)
		write_seeds(getenv("FUZZ_SEQ_SEEDS"));
	return 0;
}

static void exercise(struct drv_seq *s)
{
	struct drv_seq_actions acts = {0}, more = {0};
	struct drv_seq_event ev = {.kind = DRV_SEQ_EV_TICK};
	json_t *j = NULL, *rows = json_object();

	if (drv_seq_save(s, &j) == DRV_OK)
		json_decref(j);
	if (rows != NULL && drv_seq_save_rows(s, &j, rows) == DRV_OK) {
		drv_seq_rows_stored(s);
		json_decref(j);
	}
	json_decref(rows);
	json_decref(drv_seq_status(s, true));
	drv_seq_next_deadline(s);
	drv_seq_resume(s, 5000, &acts);
	drv_seq_handle(s, &ev, 99999999, &acts);
	for (size_t i = 0; i < acts.n && i < 64; i++) {
		struct drv_seq_event r = {.kind = DRV_SEQ_EV_REPORT,
		                          .result = i % 3 ? DRV_SEQ_R_OK : DRV_SEQ_R_FAILED,
		                          .agent = acts.v[i].agent,
		                          .id = acts.v[i].id};
		Drover__Instruction *ins;

		if (acts.v[i].kind != DRV_SEQ_ACT_SEND)
			continue;
		if (drv_seq_instruction(s, &acts.v[i], &ins) == DRV_OK)
			drv_seq_instruction_free(ins);
		drv_seq_handle(s, &r, 99999999, &more);
	}
	ev.kind = DRV_SEQ_EV_ROLLBACK;
	drv_seq_handle(s, &ev, 100000000, &more);
	drv_seq_actions_free(&acts);
	drv_seq_actions_free(&more);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *j = json_loadb((const char *)data, size, 0, &jerr);
	struct drv_seq *s = NULL;

	if (j == NULL)
		return 0;
	int rc = json_is_array(j) && json_array_size(j) == 2
	                 ? drv_seq_load_rows(plan, json_array_get(j, 0), json_array_get(j, 1), &s)
	                 : drv_seq_load(plan, j, &s);

	if (rc == DRV_OK) {
		exercise(s);
		drv_seq_free(s);
	}
	json_decref(j);
	return 0;
}
