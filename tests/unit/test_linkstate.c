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
	struct linkstate_step *s;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/link.json", dir);
	assert_int_equal(linkstate_load(path, b), DRV_OK); /* missing: fresh */
	assert_int_equal(b->applied_seq, 0);
	a->applied_seq = 7;
	a->report_seq_reserved = 2000;
	s = linkstate_add(a, 7, "step-7", "dep-1");
	linkstate_set_result(s, DROVER__STEP_RESULT__STEP_FAILED, 3, "hook \"x\" exited 3");
	assert_int_equal(linkstate_save(path, a), DRV_OK);
	assert_int_equal(linkstate_load(path, b), DRV_OK);
	assert_int_equal(b->applied_seq, 7);
	assert_int_equal(b->report_seq_reserved, 2000);
	assert_int_equal(b->n_steps, 1);
	s = linkstate_find(b, "step-7");
	assert_non_null(s);
	assert_int_equal(s->result, DROVER__STEP_RESULT__STEP_FAILED);
	assert_int_equal(s->exit_code, 3);
	assert_string_equal(s->message, "hook \"x\" exited 3");
	assert_string_equal(s->deployment_id, "dep-1");
	assert_null(linkstate_find(b, "step-8"));
	unlink(path);
	rmdir(dir);
	free(a);
	free(b);
}

static void oldest_steps_are_dropped(void **state)
{
	(void)state;
	struct linkstate *st = calloc(1, sizeof(*st));
	char id[32];

	for (int i = 1; i <= LINKSTATE_STEPS_MAX + 10; i++) {
		snprintf(id, sizeof(id), "s%d", i);
		linkstate_add(st, (uint64_t)i, id, "");
	}
	assert_int_equal(st->n_steps, LINKSTATE_STEPS_MAX);
	assert_null(linkstate_find(st, "s10"));
	assert_non_null(linkstate_find(st, "s11"));
	assert_int_equal(linkstate_find(st, "s266")->seq, 266);
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
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(linkstate_parse(bad[i], strlen(bad[i]), st), DRV_OK);
	assert_int_equal(
	        linkstate_parse("{\"applied_seq\": 3, \"report_seq_reserved\": 9}", 44, st),
	        DRV_OK);
	assert_int_equal(st->applied_seq, 3);
	free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(round_trip),
	        cmocka_unit_test(oldest_steps_are_dropped),
	        cmocka_unit_test(bad_files_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
