/* test_agent_executor.c: the executor's workers (agent/executor.c): steps
 * that come one at a time run on one thread, steps that can run together
 * get a worker each and the extra workers end when idle; agent.db's step
 * history is pruned while the agent runs, not only when it starts; a hook
 * runs only once its pid file names it (a fast hook too), and one whose pid
 * file cannot be written is not run and fails its step. Real hooks (fork
 * and exec of sh) through the real executor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomicfile.h"
#include "clock.h"
#include "err.h"
#include "executor.h"
#include "fsutil.h"

static char dir[64];
static char sub[4][128];

static struct {
	pthread_mutex_t lock;
	pthread_t thread[64]; /* the threads final reports came from */
	int n, failed;
	char last[512]; /* the last final report's message */
} fin = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void on_report(const Drover__Report *r, void *arg)
{
	(void)arg;
	if (r->result != DROVER__STEP_RESULT__STEP_SUCCEEDED &&
	    r->result != DROVER__STEP_RESULT__STEP_FAILED)
		return;
	pthread_mutex_lock(&fin.lock);
	if (fin.n < 64)
		fin.thread[fin.n] = pthread_self();
	fin.n++;
	fin.failed += r->result == DROVER__STEP_RESULT__STEP_FAILED;
	snprintf(fin.last, sizeof(fin.last), "%s", r->message ? r->message : "");
	pthread_mutex_unlock(&fin.lock);
}

static int setup(void **state)
{
	const char *names[] = {"state", "cache", "releases", "logs"};

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/drv-agent-exec-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	for (int i = 0; i < 4; i++)
		snprintf(sub[i], sizeof(sub[i]), "%s/%s", dir, names[i]);
	memset(fin.thread, 0, sizeof(fin.thread));
	fin.n = fin.failed = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fs_remove_path(dir);
	return 0;
}

static struct executor_config config(void)
{
	struct executor_config cfg = {0};

	cfg.state_dir = sub[0];
	cfg.cache_dir = sub[1];
	cfg.releases_dir = sub[2];
	cfg.log_dir = sub[3];
	cfg.docker_socket = "/nonexistent/podman.sock";
	return cfg;
}

/* Queue a hook running `sh -c script`. */
static void hook(struct executor *ex, const char *step_id, const char *script)
{
	Drover__Instruction ins = DROVER__INSTRUCTION__INIT;
	Drover__Hook h = DROVER__HOOK__INIT;
	char *run[] = {"sh", "-c", (char *)script};

	ins.step_id = (char *)step_id;
	ins.deployment_id = "d";
	ins.seq = 1;
	ins.action = DROVER__ACTION__ACTION_RUN_HOOK;
	h.name = (char *)step_id;
	h.run = run;
	h.n_run = 3;
	h.timeout_ms = 20000;
	ins.hook = &h;
	assert_int_equal(executor_run(ex, &ins, on_report, NULL), DRV_OK);
}

/* Poll, bounded: true once cond() holds. */
static bool wait_until(bool (*cond)(void *), void *arg, int64_t ms)
{
	int64_t until = drv_mono_ms() + ms;

	while (!cond(arg)) {
		if (drv_mono_ms() > until)
			return false;
		usleep(10000);
	}
	return true;
}

/* Steps one after another: one worker, and every step ran on it (before,
 * four workers took turns, each with its own stack to warm). */
static void one_at_a_time(void **state)
{
	struct executor_config cfg = config();
	struct executor *ex;
	char id[32];

	(void)state;
	assert_int_equal(executor_new(&cfg, &ex), DRV_OK);
	assert_int_equal(executor_workers(ex), 1);
	for (int i = 0; i < 30; i++) {
		snprintf(id, sizeof(id), "seq-%d", i);
		hook(ex, id, "true");
		executor_drain(ex);
	}
	assert_int_equal(fin.n, 30);
	assert_int_equal(fin.failed, 0);
	for (int i = 1; i < 30; i++)
		assert_true(pthread_equal(fin.thread[i], fin.thread[0]));
	assert_int_equal(executor_workers(ex), 1);
	executor_free(ex);
}

static bool three_started(void *arg)
{
	char p[256];

	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/started-%d", (const char *)arg, i);
		if (access(p, F_OK) != 0)
			return false;
	}
	return true;
}

static bool one_worker(void *arg)
{
	return executor_workers(arg) == 1;
}

/* Three hooks that wait for each other run at the same time (a worker
 * each); once idle, the extra workers end and one is left, which still
 * runs the next step. */
static void together_then_one(void **state)
{
	struct executor_config cfg = config();
	struct executor *ex;
	char id[32], script[512], gate[128];

	(void)state;
	cfg.worker_idle_ms = 100;
	snprintf(gate, sizeof(gate), "%s/gate", dir);
	assert_int_equal(executor_new(&cfg, &ex), DRV_OK);
	for (int i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "par-%d", i);
		snprintf(script, sizeof(script),
		         "touch %s/started-%d; while [ ! -e %s ]; do sleep 0.01; done", dir, i,
		         gate);
		hook(ex, id, script);
	}
	assert_true(wait_until(three_started, dir, 15000));
	assert_int_equal(executor_workers(ex), 3);
	assert_int_equal(drv_write_atomic(gate, "", 0, 0600), DRV_OK);
	executor_drain(ex);
	assert_int_equal(fin.n, 3);
	assert_int_equal(fin.failed, 0);
	assert_true(wait_until(one_worker, ex, 15000));
	hook(ex, "after", "true");
	executor_drain(ex);
	assert_int_equal(fin.n, 4);
	assert_int_equal(fin.failed, 0);
	executor_free(ex);
}

/* The step history is pruned every 100 finished steps (it was pruned only
 * when the agent started): the oldest steps are gone, the last kept. */
static void pruned_while_running(void **state)
{
	struct executor_config cfg = config();
	struct executor_step got;
	struct executor *ex;
	char id[32];

	(void)state;
	cfg.steps_keep = 5;
	cfg.steps_age_ms = 1;
	assert_int_equal(executor_new(&cfg, &ex), DRV_OK);
	for (int i = 0; i < 100; i++) {
		snprintf(id, sizeof(id), "p-%d", i);
		hook(ex, id, "true");
		executor_drain(ex);
	}
	assert_int_equal(fin.failed, 0);
	assert_int_equal(executor_step_get(ex, "p-0", &got), DRV_ENOENT);
	assert_int_equal(executor_step_get(ex, "p-90", &got), DRV_ENOENT);
	assert_int_equal(executor_step_get(ex, "p-99", &got), DRV_OK);
	assert_int_equal(got.result, DROVER__STEP_RESULT__STEP_SUCCEEDED);
	executor_free(ex);
}

/* A hook runs only once its pid file names it, so that the next agent can
 * stop one an agent killed left behind. Each of these hooks checks, as its
 * first and only act, that its pid file names its own process: one written
 * after the spawn (as it once was) loses that race to a fast hook, which
 * then ran without one and logged "cannot write the hook's pid file". */
static void fast_hook_has_pid_file(void **state)
{
	struct executor_config cfg = config();
	struct executor *ex;
	char id[32], script[512];

	(void)state;
	assert_int_equal(executor_new(&cfg, &ex), DRV_OK);
	for (int i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "fast-%d", i);
		snprintf(script, sizeof(script),
		         "read pid start <%s/hooks/%s.pid && [ \"$pid\" = $$ ]", sub[0], id);
		hook(ex, id, script);
	}
	executor_drain(ex);
	assert_int_equal(fin.n, 40);
	assert_int_equal(fin.failed, 0);
	executor_free(ex);
}

/* A pid file that cannot be written (here hooks/ is a file): the hook is
 * not run, and its step fails. */
static void no_pid_file_no_hook(void **state)
{
	struct executor_config cfg = config();
	struct executor *ex;
	char hooks[256], script[512], marker[256];

	(void)state;
	assert_int_equal(executor_new(&cfg, &ex), DRV_OK);
	snprintf(hooks, sizeof(hooks), "%s/hooks", sub[0]);
	assert_int_equal(drv_write_atomic(hooks, "", 0, 0600), DRV_OK);
	snprintf(marker, sizeof(marker), "%s/ran", dir);
	snprintf(script, sizeof(script), "touch %s", marker);
	hook(ex, "refused", script);
	executor_drain(ex);
	assert_int_equal(fin.n, 1);
	assert_int_equal(fin.failed, 1);
	assert_non_null(strstr(fin.last, "hook refused not run: cannot write its pid file"));
	assert_int_not_equal(access(marker, F_OK), 0);
	executor_free(ex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(one_at_a_time, setup, teardown),
	        cmocka_unit_test_setup_teardown(together_then_one, setup, teardown),
	        cmocka_unit_test_setup_teardown(pruned_while_running, setup, teardown),
	        cmocka_unit_test_setup_teardown(fast_hook_has_pid_file, setup, teardown),
	        cmocka_unit_test_setup_teardown(no_pid_file_no_hook, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
