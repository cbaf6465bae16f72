/* test_agent_state.c: the agent's SQLite state (agent/state.c): step log,
 * recovery of interrupted steps, current/previous shift and swap, kept set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomicfile.h"
#include "clock.h"
#include "err.h"
#include "executor.h"
#include "fsutil.h"
#include "state.h"

static char dir[64];
static char path[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/drv-agent-state-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/agent.db", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fs_remove_path(dir);
	return 0;
}

static void steps(void **state)
{
	Drover__Instruction ins = DROVER__INSTRUCTION__INIT;
	struct state_step s, *rec;
	struct state *st;
	size_t n;
	(void)state;
	assert_int_equal(state_open(path, &st), DRV_OK);
	ins.step_id = "a";
	ins.deployment_id = "d";
	ins.seq = 7;
	ins.action = DROVER__ACTION__ACTION_RUN_HOOK;
	assert_int_equal(state_step_insert(st, &ins, ""), DRV_OK);
	assert_int_equal(state_step_insert(st, &ins, ""), DRV_EEXIST);
	ins.step_id = "b";
	assert_int_equal(state_step_insert(st, &ins, "svc"), DRV_OK);
	assert_int_equal(state_step_start(st, "b"), DRV_OK);
	ins.step_id = "c";
	assert_int_equal(state_step_insert(st, &ins, "svc"), DRV_OK);
	assert_int_equal(state_step_finish(st, "c", true, "done", 0, "tail", 12), DRV_OK);
	state_close(st);
	/* A new agent: a and b were left queued/running. */
	assert_int_equal(state_open(path, &st), DRV_OK);
	assert_int_equal(state_steps_recover(st, "interrupted", &rec, &n), DRV_OK);
	assert_int_equal(n, 2);
	assert_string_equal(rec[0].message, "interrupted");
	state_steps_free(rec, n);
	assert_int_equal(state_step_get(st, "b", &s), DRV_OK);
	assert_int_equal(s.status, STEP_FAIL);
	assert_int_equal(s.seq, 7);
	state_step_clear(&s);
	assert_int_equal(state_step_get(st, "c", &s), DRV_OK);
	assert_int_equal(s.status, STEP_OK);
	assert_string_equal(s.output_tail, "tail");
	assert_int_equal(s.duration_ms, 12);
	state_step_clear(&s);
	assert_int_equal(state_step_get(st, "zz", &s), DRV_ENOENT);
	assert_int_equal(state_steps_recover(st, "again", &rec, &n), DRV_OK);
	assert_int_equal(n, 0);
	free(rec);
	state_close(st);
}

static void put(struct state *st, const char *version, const char *digest)
{
	Drover__ServiceSpec spec = DROVER__SERVICE_SPEC__INIT;
	struct state_release r = {.service = "svc",
	                          .digest = (char *)digest,
	                          .version = (char *)version,
	                          .slot = "",
	                          .root = "/r",
	                          .port = 80,
	                          .want_running = true,
	                          .spec = &spec};
	spec.name = "svc";
	spec.version = (char *)version;
	assert_int_equal(state_release_shift(st, &r), DRV_OK);
}

static void releases(void **state)
{
	struct state_release cur, prev;
	struct state *st;
	char **sv, **dg;
	size_t n;
	(void)state;
	assert_int_equal(state_open(path, &st), DRV_OK);
	assert_int_equal(state_release_swap(st, "svc"), DRV_ENOENT);
	put(st, "1", "sha256:1");
	put(st, "2", "sha256:2");
	put(st, "3", "sha256:3");
	assert_int_equal(state_release_get(st, "svc", ROLE_CURRENT, &cur), DRV_OK);
	assert_int_equal(state_release_get(st, "svc", ROLE_PREVIOUS, &prev), DRV_OK);
	assert_string_equal(cur.version, "3");
	assert_string_equal(prev.version, "2");
	assert_string_equal(cur.spec->version, "3");
	state_release_clear(&cur);
	state_release_clear(&prev);
	assert_int_equal(state_release_swap(st, "svc"), DRV_OK);
	assert_int_equal(state_release_set_want(st, "svc", ROLE_PREVIOUS, false), DRV_OK);
	assert_int_equal(state_release_get(st, "svc", ROLE_CURRENT, &cur), DRV_OK);
	assert_int_equal(state_release_get(st, "svc", ROLE_PREVIOUS, &prev), DRV_OK);
	assert_string_equal(cur.version, "2");
	assert_string_equal(prev.version, "3");
	assert_false(prev.want_running);
	state_release_clear(&cur);
	state_release_clear(&prev);
	assert_int_equal(state_staged_add(st, "other", "sha256:9"), DRV_OK);
	assert_int_equal(state_kept(st, &sv, &dg, &n), DRV_OK);
	assert_int_equal(n, 3); /* 2, 3 and the staged 9 */
	state_strings_free(sv, n);
	state_strings_free(dg, n);
	state_close(st);
}

/* agent.db is the agent's one record of a step: what the link records
 * (a refused step) it reads back, and a known id cannot be recorded again. */
static void one_record(void **state)
{
	char sub[4][160];
	const char *names[] = {"state", "cache", "releases", "logs"};
	struct executor_config cfg = {0};
	struct executor *ex;
	struct executor_step got;
	Drover__Instruction ins = DROVER__INSTRUCTION__INIT;

	(void)state;
	for (int i = 0; i < 4; i++)
		snprintf(sub[i], sizeof(sub[i]), "%s/%s", dir, names[i]);
	cfg.state_dir = sub[0];
	cfg.cache_dir = sub[1];
	cfg.releases_dir = sub[2];
	cfg.log_dir = sub[3];
	cfg.docker_socket = "/nonexistent/podman.sock";
	assert_int_equal(executor_new(&cfg, &ex), DRV_OK);
	ins.step_id = "d:start:0:1";
	ins.deployment_id = "d";
	ins.seq = 12;
	assert_int_equal(executor_step_get(ex, ins.step_id, &got), DRV_ENOENT);
	assert_int_equal(executor_step_record(ex, &ins, false, -1, "refused: expired"), DRV_OK);
	assert_int_equal(executor_step_get(ex, ins.step_id, &got), DRV_OK);
	assert_int_equal(got.seq, 12);
	assert_int_equal(got.result, DROVER__STEP_RESULT__STEP_FAILED);
	assert_int_equal(got.exit_code, -1);
	assert_string_equal(got.message, "refused: expired");
	assert_int_equal(executor_step_record(ex, &ins, true, 0, "again"), DRV_EEXIST);
	executor_free(ex);
	/* and it survives a restart */
	assert_int_equal(executor_new(&cfg, &ex), DRV_OK);
	assert_int_equal(executor_step_get(ex, ins.step_id, &got), DRV_OK);
	assert_int_equal(got.result, DROVER__STEP_RESULT__STEP_FAILED);
	executor_free(ex);
}

/* Reports a restarted executor sends through its events callback. */
static struct {
	char step[8][40];
	int result[8];
	int n;
} seen;

static void collect(const Drover__Report *r, void *arg)
{
	(void)arg;
	if (seen.n < 8 && r->step_id != NULL && r->step_id[0] != '\0') {
		snprintf(seen.step[seen.n], sizeof(seen.step[0]), "%s", r->step_id);
		seen.result[seen.n++] = r->result;
	}
}

static int result_of(const char *step)
{
	int res = -1;

	for (int i = 0; i < seen.n; i++)
		if (strcmp(seen.step[i], step) == 0)
			res = seen.result[i]; /* the last one */
	return res;
}

static void interrupted(struct state *st, const char *id, int action, int64_t issued_ms)
{
	Drover__Instruction ins = DROVER__INSTRUCTION__INIT;
	Drover__ServiceSpec svc = DROVER__SERVICE_SPEC__INIT;
	Drover__Hook hook = DROVER__HOOK__INIT;

	ins.step_id = (char *)id;
	ins.deployment_id = "d";
	ins.seq = 1;
	ins.action = action;
	ins.issued_at_ms = issued_ms;
	ins.expires_at_ms = issued_ms + 30000;
	ins.step_deadline_ms = 60000;
	svc.name = "svc";
	svc.version = "1";
	if (action == DROVER__ACTION__ACTION_RUN_HOOK) {
		hook.name = "h";
		ins.hook = &hook;
	} else {
		ins.service = &svc;
	}
	assert_int_equal(state_step_insert(st, &ins, "svc"), DRV_OK);
	assert_int_equal(state_step_start(st, id), DRV_OK);
}

/* An agent restarted in the middle of steps resumes the service steps the
 * coordinator still waits for and runs them to their real result; a hook
 * (not safe to run twice) and a step past its deadline are failed. */
static void resume(void **state)
{
	char sub[4][100];
	const char *names[] = {"state", "cache", "releases", "logs"};
	struct executor_config cfg = {0};
	struct executor_step got;
	struct executor *ex;
	struct state *st;
	int64_t now = drv_wall_ms();

	(void)state;
	memset(&seen, 0, sizeof(seen));
	for (int i = 0; i < 4; i++) {
		snprintf(sub[i], sizeof(sub[i]), "%s/%s", dir, names[i]);
		assert_int_equal(drv_mkdirs(sub[i], 0700), DRV_OK);
	}
	snprintf(path, sizeof(path), "%s/agent.db", sub[0]);
	assert_int_equal(state_open(path, &st), DRV_OK);
	interrupted(st, "stop-now", DROVER__ACTION__ACTION_STOP, now);
	interrupted(st, "hook-now", DROVER__ACTION__ACTION_RUN_HOOK, now);
	interrupted(st, "stop-old", DROVER__ACTION__ACTION_STOP, now - 120000);
	state_close(st);
	cfg.state_dir = sub[0];
	cfg.cache_dir = sub[1];
	cfg.releases_dir = sub[2];
	cfg.log_dir = sub[3];
	cfg.docker_socket = "/nonexistent/podman.sock";
	cfg.events = collect;
	assert_int_equal(executor_new(&cfg, &ex), DRV_OK);
	executor_drain(ex);
	assert_int_equal(result_of("stop-now"), DROVER__STEP_RESULT__STEP_SUCCEEDED);
	assert_int_equal(result_of("hook-now"), DROVER__STEP_RESULT__STEP_FAILED);
	assert_int_equal(result_of("stop-old"), DROVER__STEP_RESULT__STEP_FAILED);
	assert_int_equal(executor_step_get(ex, "stop-now", &got), DRV_OK);
	assert_int_equal(got.result, DROVER__STEP_RESULT__STEP_SUCCEEDED);
	assert_int_equal(executor_step_get(ex, "hook-now", &got), DRV_OK);
	assert_int_equal(got.result, DROVER__STEP_RESULT__STEP_FAILED);
	assert_non_null(strstr(got.message, "interrupted"));
	executor_free(ex);
}

/* agent.db's page cache is bounded: 1,000 more steps (over a megabyte of
 * table) do not grow SQLite's memory. With SQLite's default cache (2 MB)
 * every new page stayed cached: the agent's heap grew with its history. */
static void cache_bounded(void **state)
{
	Drover__Instruction ins = DROVER__INSTRUCTION__INIT;
	char id[32], msg[600];
	struct state *st;
	sqlite3_int64 before = 0;

	(void)state;
	memset(msg, 'm', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	ins.deployment_id = "d";
	ins.action = DROVER__ACTION__ACTION_RUN_HOOK;
	assert_int_equal(state_open(path, &st), DRV_OK);
	for (int i = 0; i < 1100; i++) {
		if (i == 100)
			before = sqlite3_memory_used();
		snprintf(id, sizeof(id), "step-%d", i);
		ins.step_id = id;
		ins.seq = (uint64_t)i + 1;
		assert_int_equal(state_step_insert(st, &ins, ""), DRV_OK);
		assert_int_equal(state_step_finish(st, id, true, msg, 0, msg, 5), DRV_OK);
	}
	/* measured: +0 with the bound, +1.5 MB without */
	assert_true(sqlite3_memory_used() - before < 64 * 1024);
	state_close(st);
}

/* Pruning keeps the last keep_last steps and those newer than max_age, and
 * needs little heap on a full history (it runs every 100 steps; it used to
 * sort a copy of the kept ids). */
static void prune_small(void **state)
{
	Drover__Instruction ins = DROVER__INSTRUCTION__INIT;
	struct state_step got;
	sqlite3_int64 before, cur, hi;
	struct state *st;
	char id[32];

	(void)state;
	ins.deployment_id = "d";
	ins.action = DROVER__ACTION__ACTION_RUN_HOOK;
	assert_int_equal(state_open(path, &st), DRV_OK);
	for (int i = 0; i < 2100; i++) {
		snprintf(id, sizeof(id), "step-with-a-long-id-%d", i);
		ins.step_id = id;
		ins.seq = (uint64_t)i + 1;
		assert_int_equal(state_step_insert(st, &ins, ""), DRV_OK);
		if (i != 5) /* step 5 stays unfinished */
			assert_int_equal(state_step_finish(st, id, true, "ok", 0, "", 1), DRV_OK);
	}
	/* nothing old enough */
	assert_int_equal(state_steps_prune(st, 3600 * 1000, 2000), DRV_OK);
	assert_int_equal(state_step_get(st, "step-with-a-long-id-0", &got), DRV_OK);
	state_step_clear(&got);
	usleep(2000);
	sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &before, &hi, 1);
	assert_int_equal(state_steps_prune(st, 1, 2000), DRV_OK);
	sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur, &hi, 0);
	/* measured: +15 KB; +100 KB through the status index, +400 KB with
	 * the sorted copy */
	assert_true(hi - before < 48 * 1024);
	assert_int_equal(state_step_get(st, "step-with-a-long-id-0", &got), DRV_ENOENT);
	assert_int_equal(state_step_get(st, "step-with-a-long-id-99", &got), DRV_ENOENT);
	assert_int_equal(state_step_get(st, "step-with-a-long-id-5", &got),
	                 DRV_OK); /* unfinished */
	state_step_clear(&got);
	assert_int_equal(state_step_get(st, "step-with-a-long-id-100", &got), DRV_OK);
	state_step_clear(&got);
	assert_int_equal(state_step_get(st, "step-with-a-long-id-2099", &got), DRV_OK);
	state_step_clear(&got);
	state_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(steps, setup, teardown),
	        cmocka_unit_test_setup_teardown(releases, setup, teardown),
	        cmocka_unit_test_setup_teardown(one_record, setup, teardown),
	        cmocka_unit_test_setup_teardown(resume, setup, teardown),
	        cmocka_unit_test_setup_teardown(cache_bounded, setup, teardown),
	        cmocka_unit_test_setup_teardown(prune_small, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
