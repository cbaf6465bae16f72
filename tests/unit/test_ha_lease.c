/* test_ha_lease.c: the leader lease and its fence on a real PostgreSQL
 * (pg_run.sh starts one; without it the test is skipped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "store_target.h"
#include "ha.h"
#include "ha_lease.h"
#include "schema.h"

static char target[512];

static int setup(void **state)
{
	(void)state;
	return store_target(target, sizeof(target), "/nonexistent", "unused");
}

static struct ha_lease *lease(const char *node, int64_t ms)
{
	size_t n;
	const struct drv_sql_migration *mig = drv_schema_migrations(&n);
	struct ha_lease_config c = {.target = target,
	                            .node = node,
	                            .url = "https://n:7443",
	                            .lease_ms = ms,
	                            .mig = mig,
	                            .n_mig = n};
	struct ha_lease *l;

	assert_int_equal(ha_lease_new(&c, &l), DRV_OK);
	return l;
}

static struct drv_sql *conn(void)
{
	size_t n;
	const struct drv_sql_migration *mig = drv_schema_migrations(&n);
	struct drv_sql *db;

	assert_int_equal(drv_sql_open(target, mig, n, &db), DRV_OK);
	return db;
}

static void try_is(struct ha_lease *l, bool leader, uint64_t epoch)
{
	bool is;
	uint64_t e;

	assert_int_equal(ha_lease_try(l, &is, &e), DRV_OK);
	assert_int_equal(is, leader);
	assert_int_equal(e, epoch);
}

static int64_t meta_rows(struct drv_sql *db, const char *key)
{
	struct drv_sql_stmt *st;
	int64_t n;

	assert_int_equal(drv_sql_prepare(db, "SELECT count(*) FROM meta WHERE key = ?", &st),
	                 DRV_OK);
	drv_sql_bind_text(st, 1, key);
	assert_int_equal(drv_sql_step(st), DRV_SQL_ROW);
	n = drv_sql_col_int64(st, 0);
	drv_sql_finalize(st);
	return n;
}

static int put(struct drv_sql *db, const char *key)
{
	struct drv_sql_stmt *st;
	int rc;

	assert_int_equal(drv_sql_prepare(db, "INSERT INTO meta(key, value) VALUES (?, 'v')", &st),
	                 DRV_OK);
	drv_sql_bind_text(st, 1, key);
	rc = drv_sql_step(st);
	drv_sql_finalize(st);
	return rc == DRV_SQL_DONE ? DRV_OK : rc;
}

/* Wait out a lease of ms on the database's clock (bounded polling). */
static void until_taken(struct ha_lease *l, uint64_t epoch, int64_t ms)
{
	int64_t end = drv_mono_ms() + ms * 4 + 2000;
	bool is = false;
	uint64_t e = 0;

	while (drv_mono_ms() < end) {
		assert_int_equal(ha_lease_try(l, &is, &e), DRV_OK);
		if (is)
			break;
		usleep(50 * 1000);
	}
	assert_true(is);
	assert_int_equal(e, epoch);
}

/* One holder at a time; renewals keep the epoch, a take raises it. */
static void take_renew_expire(void **state)
{
	struct ha_lease *a = lease("a", 800), *b = lease("b", 800);

	(void)state;
	try_is(a, true, 1);
	try_is(b, false, 1);
	try_is(a, true, 1); /* renewed, same epoch */
	try_is(b, false, 1);
	until_taken(b, 2, 800); /* a stopped renewing */
	try_is(a, false, 2);
	ha_lease_free(a);
	ha_lease_free(b);
}

/* A leader that lost its lease commits nothing: not a single write, not a
 * transaction that began while it still led. */
static void fence(void **state)
{
	struct ha_lease *a = lease("a", 800), *b = lease("b", 800);
	struct drv_sql *db = conn(), *check = conn();

	(void)state;
	try_is(a, true, 1);
	ha_lease_fence_on(a, db);
	assert_int_equal(put(db, "while-leading"), DRV_OK);
	assert_int_equal(drv_sql_begin(db), DRV_OK);
	assert_int_equal(put(db, "in-open-tx"), DRV_OK);
	until_taken(b, 2, 800);
	assert_int_equal(drv_sql_commit(db), DRV_EFENCED);
	assert_false(drv_sql_in_tx(db));
	assert_int_equal(put(db, "after-takeover"), DRV_EFENCED);
	assert_int_equal(meta_rows(check, "while-leading"), 1);
	assert_int_equal(meta_rows(check, "in-open-tx"), 0);
	assert_int_equal(meta_rows(check, "after-takeover"), 0);
	/* the old leader learns it follows; reads still work */
	try_is(a, false, 2);
	assert_int_equal(meta_rows(db, "while-leading"), 1);
	drv_sql_close(db);
	drv_sql_close(check);
	ha_lease_free(a);
	ha_lease_free(b);
}

/* A graceful stop hands over at once: the follower's thread is woken by
 * NOTIFY instead of waiting out a long lease. */
static void handover(void **state)
{
	struct ha_lease *a = lease("a", 60000), *b = lease("b", 60000);
	int64_t t0;
	char url[DRV_HA_URL_MAX + 1];

	(void)state;
	try_is(a, true, 1);
	assert_int_equal(ha_lease_start(b), DRV_OK);
	assert_false(ha_lease_wait_leader(b, 300)); /* a holds it for a minute */
	drv_ha_leader_url(url, sizeof(url));
	assert_string_equal(url, "https://n:7443");
	t0 = drv_mono_ms();
	ha_lease_release(a);
	assert_true(ha_lease_wait_leader(b, 5000));
	assert_true(drv_mono_ms() - t0 < 1000);
	assert_true(drv_ha_is_leader());
	assert_int_equal(drv_ha_epoch(), 2);
	try_is(a, false, 2);
	ha_lease_free(b);
	ha_lease_free(a);
}

/* A follower takes a dead leader's lease when it runs out, not at its own
 * next renewal tick after that (up to lease/3 later). The holder renews
 * just after the follower's first try, so the follower's ticks (every
 * 2 s) fall 1.7 s after the expiry: before, it led that late. */
static void takeover_at_expiry(void **state)
{
	const int64_t ms = 6000;
	struct ha_lease *a = lease("a", ms), *b = lease("b", ms);
	int64_t renewed, took;

	(void)state;
	try_is(a, true, 1);
	assert_int_equal(ha_lease_start(b), DRV_OK);
	assert_false(ha_lease_wait_leader(b, 300)); /* its first try: a holds it */
	try_is(a, true, 1);                         /* the last renewal; then a dies */
	renewed = drv_mono_ms();
	assert_true(ha_lease_wait_leader(b, ms * 2));
	took = drv_mono_ms() - renewed;
	print_message("lease %lld ms: the follower led %lld ms after the last renewal\n",
	              (long long)ms, (long long)took);
	assert_true(took >= ms - 100);  /* never before the expiry */
	assert_true(took <= ms + 1000); /* at it, not at the next tick (+1.7 s) */
	assert_int_equal(drv_ha_epoch(), 2);
	ha_lease_free(b);
	ha_lease_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(take_renew_expire, setup),
	        cmocka_unit_test_setup(fence, setup),
	        cmocka_unit_test_setup(handover, setup),
	        cmocka_unit_test_setup(takeover_at_expiry, setup),
	};

	if (!store_target_pg()) {
		fprintf(stderr, "test_ha_lease: needs PostgreSQL (run through pg_run.sh)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
