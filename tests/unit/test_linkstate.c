/* test_linkstate.c: the agent link's persistent state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "linkstate.h"

static void round_trip(void **state)
{
	(void)state;
	char dir[] = "/tmp/drv-ls-XXXXXX", path[128];
	struct linkstate *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/link.json", dir);
	assert_int_equal(linkstate_load(path, b), DRV_OK); /* missing: fresh */
	assert_int_equal(b->applied_seq, 0);
	a->applied_seq = 7;
	a->report_seq_reserved = 2000;
	a->epoch = 5;
	a->n_steps = 1; /* steps are never written: agent.db holds them */
	snprintf(a->steps[0].step_id, sizeof(a->steps[0].step_id), "step-7");
	assert_int_equal(linkstate_save(path, a), DRV_OK);
	assert_int_equal(linkstate_load(path, b), DRV_OK);
	assert_int_equal(b->applied_seq, 7);
	assert_int_equal(b->report_seq_reserved, 2000);
	assert_int_equal(b->epoch, 5);
	assert_int_equal(b->n_steps, 0);
	unlink(path);
	rmdir(dir);
	free(a);
	free(b);
}

/* A file from before agent.db held every step: its steps are read, for the
 * link to move them into agent.db. */
static void old_files_keep_their_steps(void **state)
{
	(void)state;
	static const char old[] =
	        "{\"applied_seq\":7,\"report_seq_reserved\":2000,\"steps\":["
	        "{\"seq\":6,\"step_id\":\"step-6\",\"deployment_id\":\"dep-1\",\"result\":3,"
	        "\"exit_code\":0,\"message\":\"\"},"
	        "{\"seq\":7,\"step_id\":\"step-7\",\"deployment_id\":\"dep-1\",\"result\":4,"
	        "\"exit_code\":3,\"message\":\"hook \\\"x\\\" exited 3\"}]}";
	struct linkstate *st = calloc(1, sizeof(*st));

	assert_int_equal(linkstate_parse(old, sizeof(old) - 1, st), DRV_OK);
	assert_int_equal(st->applied_seq, 7);
	assert_int_equal(st->epoch, 0); /* no epoch in files of older agents */
	assert_int_equal(st->n_steps, 2);
	assert_string_equal(st->steps[1].step_id, "step-7");
	assert_int_equal(st->steps[1].seq, 7);
	assert_int_equal(st->steps[1].result, DROVER__STEP_RESULT__STEP_FAILED);
	assert_int_equal(st->steps[1].exit_code, 3);
	assert_string_equal(st->steps[1].message, "hook \"x\" exited 3");
	assert_string_equal(st->steps[1].deployment_id, "dep-1");
	assert_int_equal(st->steps[0].result, DROVER__STEP_RESULT__STEP_SUCCEEDED);
	free(st);
}

static void bad_files_are_refused(void **state)
{
	(void)state;
	struct linkstate *st = calloc(1, sizeof(*st));
	static const char *const bad[] = {
	        "",
	        "[]",
	        "{\"applied_seq\": 1}",
	        "{\"applied_seq\": -1, \"report_seq_reserved\": 0}",
	        "{\"applied_seq\": 1, \"applied_seq\": 2, \"report_seq_reserved\": 0}",
	        "{\"applied_seq\": 1, \"report_seq_reserved\": 0, \"steps\": {}}",
	        "{\"applied_seq\": 1, \"report_seq_reserved\": 0, \"steps\": [{\"seq\": 1}]}",
	        "{\"applied_seq\": 1, \"report_seq_reserved\": 0, \"steps\": [{\"seq\": 1, "
	        "\"step_id\": \"a\", \"result\": 99}]}",
	        "{\"applied_seq\": 1, \"report_seq_reserved\": 0, \"epoch\": -1}",
	        "{\"applied_seq\": 1, \"report_seq_reserved\": 0, \"epoch\": \"2\"}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(linkstate_parse(bad[i], strlen(bad[i]), st), DRV_OK);
	assert_int_equal(
	        linkstate_parse("{\"applied_seq\": 3, \"report_seq_reserved\": 9}", 44, st),
	        DRV_OK);
	assert_int_equal(st->applied_seq, 3);
	free(st);
}

/* The fencing rule: a lower epoch is refused, a higher one raises the
 * floor (and asks for a save), the same one passes; the floor survives a
 * save and a load. */
static void epochs_only_go_up(void **state)
{
	(void)state;
	char dir[] = "/tmp/drv-ls-XXXXXX", path[128];
	struct linkstate *st = calloc(1, sizeof(*st)), *back = calloc(1, sizeof(*back));

	assert_int_equal(linkstate_epoch_seen(st, 0), DRV_OK); /* a single node */
	assert_int_equal(linkstate_epoch_seen(st, 3), DRV_EEXIST);
	assert_int_equal(st->epoch, 3);
	assert_int_equal(linkstate_epoch_seen(st, 3), DRV_OK);
	assert_int_equal(linkstate_epoch_seen(st, 2), DRV_ESTALE);
	assert_int_equal(linkstate_epoch_seen(st, 0), DRV_ESTALE); /* no epoch after a group */
	assert_int_equal(st->epoch, 3);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/link.json", dir);
	assert_int_equal(linkstate_save(path, st), DRV_OK);
	assert_int_equal(linkstate_load(path, back), DRV_OK);
	assert_int_equal(linkstate_epoch_seen(back, 2), DRV_ESTALE);
	assert_int_equal(linkstate_epoch_seen(back, 4), DRV_EEXIST);
	unlink(path);
	rmdir(dir);
	free(st);
	free(back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(round_trip),
	        cmocka_unit_test(old_files_keep_their_steps),
	        cmocka_unit_test(bad_files_are_refused),
	        cmocka_unit_test(epochs_only_go_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
