/* test_ha.c: what the API shows of a node's place in its HA group
 * (drv_ha_view): a node that has won the lease but still resumes its
 * deployments is no leader yet, and shows no epoch of one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ha.h"

static int reset(void **state)
{
	(void)state;
	drv_ha_reset();
	return 0;
}

/* One node on SQLite: the leader, epoch 0 on the wire, no group. */
static void single_node(void **state)
{
	struct drv_ha_view v;

	(void)state;
	drv_ha_view(&v);
	assert_true(v.leader);
	assert_false(v.resuming);
	assert_false(v.grouped);
	assert_int_equal(v.epoch, 0);
	assert_string_equal(v.leader_url, "");
}

/* Won the lease, held back while it resumes: a follower that names no
 * leader and no epoch (it showed "follower" with the new epoch before),
 * then the leader with its epoch once released. */
static void resuming_then_leading(void **state)
{
	struct drv_ha_view v;

	(void)state;
	drv_ha_set_grouped(true);
	drv_ha_hold(true);
	drv_ha_set(false, 4, "https://a:7443");
	drv_ha_view(&v);
	assert_false(v.leader);
	assert_false(v.resuming);
	assert_int_equal(v.epoch, 0);
	assert_string_equal(v.leader_url, "https://a:7443");

	drv_ha_set(true, 5, NULL);
	drv_ha_view(&v);
	assert_false(v.leader);
	assert_true(v.resuming);
	assert_int_equal(v.epoch, 0);
	assert_string_equal(v.leader_url, "");
	assert_int_equal(drv_ha_wire_epoch(), 5); /* the link seals the resume with it */

	drv_ha_hold(false);
	drv_ha_view(&v);
	assert_true(v.leader);
	assert_false(v.resuming);
	assert_true(v.grouped);
	assert_int_equal(v.epoch, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(single_node, reset),
	        cmocka_unit_test_setup(resuming_then_leading, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
