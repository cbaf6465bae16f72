/* test_link_logs.c: log reads from several agents at once (link/logs.c).
 * The queue is this test's: agents named ok-* answer at once, quiet-* never,
 * broken-* cannot be queued. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "logs.h"

static struct link_logs *logs;
static unsigned queued;

static int queue(void *arg, const struct dispatch_instr *in, uint64_t *seq)
{
	Drover__Report r = DROVER__REPORT__INIT;
	Drover__LogChunk c = DROVER__LOG_CHUNK__INIT;
	char text[80];

	(void)arg;
	*seq = ++queued;
	if (strncmp(in->agent_id, "broken-", 7) == 0)
		return DRV_ENOENT;
	if (strncmp(in->agent_id, "ok-", 3) != 0)
		return DRV_OK;
	snprintf(text, sizeof(text), "hello from %s\n", in->agent_id);
	c.text.data = (uint8_t *)text;
	c.text.len = strlen(text);
	r.step_id = (char *)in->step_id;
	r.result = DROVER__STEP_RESULT__STEP_SUCCEEDED;
	r.log = &c;
	assert_true(link_logs_offer(logs, in->agent_id, &r));
	return DRV_OK;
}

static int setup(void **state)
{
	(void)state;
	queued = 0;
	return link_logs_new(&logs) == DRV_OK ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	link_logs_free(logs);
	return 0;
}

static void check_ok(const struct link_logs_answer *a)
{
	char want[80];

	assert_int_equal(a->rc, DRV_OK);
	snprintf(want, sizeof(want), "hello from %s\n", a->agent);
	assert_string_equal(json_string_value(json_object_get(a->out, "text")), want);
	assert_string_equal(json_string_value(json_object_get(a->out, "host")), a->agent);
}

/* Quiet hosts are waited for together: four of them cost one timeout. */
static void slow_hosts_in_parallel(void **state)
{
	static const char *const ids[] = {"ok-1",    "quiet-1",  "quiet-2", "ok-2",
	                                  "quiet-3", "broken-1", "quiet-4", "ok-3"};
	struct link_logs_answer a[8] = {{0}};
	Drover__LogRequest rq = DROVER__LOG_REQUEST__INIT;
	int64_t t0;

	(void)state;
	for (size_t i = 0; i < 8; i++)
		a[i].agent = ids[i];
	t0 = drv_mono_ms();
	link_logs_read_many(logs, queue, NULL, a, 8, &rq, 400);
	/* one after another, the four quiet hosts take 1600 ms at least */
	assert_true(drv_mono_ms() - t0 < 1400);
	for (size_t i = 0; i < 8; i++) {
		if (ids[i][0] == 'o') {
			check_ok(&a[i]);
			json_decref(a[i].out);
		} else if (ids[i][0] == 'q') {
			assert_int_equal(a[i].rc, DRV_ETIMEDOUT);
			assert_non_null(strstr(a[i].why, "no answer within 400 ms"));
		} else {
			assert_int_equal(a[i].rc, DRV_ENOENT);
		}
	}
	/* every slot is free again: as many reads as there are slots succeed */
	for (size_t i = 0; i < 8; i++)
		a[i] = (struct link_logs_answer){.agent = "ok-again"};
	link_logs_read_many(logs, queue, NULL, a, 8, &rq, 400);
	for (size_t i = 0; i < 8; i++) {
		check_ok(&a[i]);
		json_decref(a[i].out);
	}
}

/* More hosts than the rate allows in one second: the rest go in the next
 * second, none is told to try again. */
static void beyond_the_rate(void **state)
{
	enum { N = LOGS_RATE_PER_S + 5 };
	struct link_logs_answer a[N] = {{0}};
	char ids[N][16];
	Drover__LogRequest rq = DROVER__LOG_REQUEST__INIT;

	(void)state;
	for (size_t i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "ok-%zu", i);
		a[i].agent = ids[i];
	}
	link_logs_read_many(logs, queue, NULL, a, N, &rq, 2000);
	for (size_t i = 0; i < N; i++) {
		check_ok(&a[i]);
		json_decref(a[i].out);
	}
	assert_int_equal(queued, N);
}

/* The one-agent read is the same path. */
static void one_agent(void **state)
{
	Drover__LogRequest rq = DROVER__LOG_REQUEST__INIT;
	json_t *out = NULL;
	char why[300];

	(void)state;
	assert_int_equal(
	        link_logs_read(logs, queue, NULL, "ok-solo", &rq, 400, &out, why, sizeof(why)),
	        DRV_OK);
	assert_string_equal(json_string_value(json_object_get(out, "host")), "ok-solo");
	json_decref(out);
	assert_int_equal(
	        link_logs_read(logs, queue, NULL, "quiet-solo", &rq, 100, &out, why, sizeof(why)),
	        DRV_ETIMEDOUT);
	assert_non_null(strstr(why, "no answer within 100 ms"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(slow_hosts_in_parallel, setup, teardown),
	        cmocka_unit_test_setup_teardown(beyond_the_rate, setup, teardown),
	        cmocka_unit_test_setup_teardown(one_agent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
