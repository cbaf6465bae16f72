/* test_replay.c: the replay guard rejects each bad case with its own reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "err.h"
#include "replay.h"

#define NOW  1764137400000LL
#define SKEW 30000

static struct drv_replay_msg good(void)
{
	struct drv_replay_msg m = {.target = "web-1",
	                           .seq = 10,
	                           .issued_at_ms = NOW - 1000,
	                           .expires_at_ms = NOW + 60000};
	return m;
}

static void accepts_fresh_message(void **state)
{
	(void)state;
	struct drv_replay_msg m = good();
	assert_int_equal(drv_replay_check(&m, "web-1", 9, NOW, SKEW), DRV_OK);
}

static void replay_rejected(void **state)
{
	(void)state;
	struct drv_replay_msg m = good();
	assert_int_equal(drv_replay_check(&m, "web-1", 10, NOW, SKEW), DRV_EREPLAY);
	assert_int_equal(drv_replay_check(&m, "web-1", 11, NOW, SKEW), DRV_EREPLAY);
}

static void expired_rejected(void **state)
{
	(void)state;
	struct drv_replay_msg m = good();
	m.expires_at_ms = NOW - SKEW - 1;
	m.issued_at_ms = NOW - 120000;
	assert_int_equal(drv_replay_check(&m, "web-1", 0, NOW, SKEW), DRV_EEXPIRED);
	/* within the allowed skew it still counts */
	m.expires_at_ms = NOW - SKEW + 1;
	assert_int_equal(drv_replay_check(&m, "web-1", 0, NOW, SKEW), DRV_OK);
}

static void future_rejected(void **state)
{
	(void)state;
	struct drv_replay_msg m = good();
	m.issued_at_ms = NOW + SKEW + 1;
	m.expires_at_ms = NOW + 600000;
	assert_int_equal(drv_replay_check(&m, "web-1", 0, NOW, SKEW), DRV_EFUTURE);
	m.issued_at_ms = NOW + SKEW - 1;
	assert_int_equal(drv_replay_check(&m, "web-1", 0, NOW, SKEW), DRV_OK);
}

static void wrong_target_rejected(void **state)
{
	(void)state;
	struct drv_replay_msg m = good();
	assert_int_equal(drv_replay_check(&m, "web-2", 0, NOW, SKEW), DRV_ETARGET);
	assert_int_equal(drv_replay_check(&m, NULL, 0, NOW, SKEW), DRV_ETARGET);
}

static void nonsense_rejected(void **state)
{
	(void)state;
	struct drv_replay_msg m = good();
	m.seq = 0;
	assert_int_equal(drv_replay_check(&m, "web-1", 0, NOW, SKEW), DRV_EINVAL);
	m = good();
	m.expires_at_ms = m.issued_at_ms - 1;
	assert_int_equal(drv_replay_check(&m, "web-1", 0, NOW, SKEW), DRV_EINVAL);
}

static void table_tracks_each_sender(void **state)
{
	(void)state;
	struct drv_replay_table *t;
	char id[32];

	assert_int_equal(drv_replay_table_new(4, &t), DRV_OK);
	assert_int_equal(drv_replay_highest(t, "a"), 0);
	assert_int_equal(drv_replay_commit(t, "a", 5), DRV_OK);
	assert_int_equal(drv_replay_commit(t, "a", 3), DRV_OK); /* never lowers */
	assert_int_equal(drv_replay_highest(t, "a"), 5);
	/* force several growths */
	for (int i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "agent-%d", i);
		assert_int_equal(drv_replay_commit(t, id, (uint64_t)i + 1), DRV_OK);
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "agent-%d", i);
		assert_int_equal(drv_replay_highest(t, id), (uint64_t)i + 1);
	}
	assert_int_equal(drv_replay_highest(t, "a"), 5);
	drv_replay_table_free(t);
	drv_replay_table_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(accepts_fresh_message),    cmocka_unit_test(replay_rejected),
	        cmocka_unit_test(expired_rejected),         cmocka_unit_test(future_rejected),
	        cmocka_unit_test(wrong_target_rejected),    cmocka_unit_test(nonsense_rejected),
	        cmocka_unit_test(table_tracks_each_sender),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
