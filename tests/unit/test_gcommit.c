/*
 * test_gcommit.c: group commit on a real SQLite file. Writers that hold the
 * lock one after the other share one commit; the after-commit hook, which
 * answers what they owe, runs only once their rows are committed (seen from
 * another connection); a failed commit reaches the hook with its error and
 * nothing saved; a batch that owes answers lingers for the next writers and
 * is committed by the committer thread when nobody else comes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include "sqldb.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "gcommit.h"
#include "store.h"

#define WRITERS 8

struct fx {
	char dir[64], db[128];
	struct store *store;
	struct drv_sql *other; /* a second connection: sees only what is committed */
	struct gcommit g;
	int afters, after_rc;
	int64_t after_rows; /* rows of t committed when the hook ran */
};

struct writer {
	struct fx *fx;
	int x, rc;
};

static int64_t count_rows(struct fx *fx)
{
	struct drv_sql_stmt *st;
	int64_t n = -1;

	if (drv_sql_prepare(fx->other, "SELECT count(*) FROM t", &st) == DRV_OK &&
	    drv_sql_step(st) == DRV_SQL_ROW)
		n = drv_sql_col_int64(st, 0);
	drv_sql_finalize(st);
	return n;
}

static void after(void *arg, int rc)
{
	struct fx *fx = arg;

	fx->afters++;
	fx->after_rc = rc;
	fx->after_rows = count_rows(fx);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/drv-gcommit-XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->db, sizeof(fx->db), "%s/d.db", fx->dir);
	if (store_open(fx->db, &fx->store) != DRV_OK ||
	    drv_sql_exec(store_db(fx->store),
	                 "PRAGMA foreign_keys = ON; CREATE TABLE t (x INTEGER);"
	                 "CREATE TABLE p (id INTEGER PRIMARY KEY);"
	                 "CREATE TABLE c (pid INTEGER REFERENCES p(id)"
	                 " DEFERRABLE INITIALLY DEFERRED);") != DRV_OK ||
	    drv_sql_open(fx->db, NULL, 0, &fx->other) != DRV_OK)
		return -1;
	if (gcommit_init(&fx->g, fx->store, after, fx) != DRV_OK)
		return -1;
	fx->g.max_ms = 600000; /* batches end by arrivals only: deterministic */
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[128];

	gcommit_destroy(&fx->g);
	drv_sql_close(fx->other);
	store_close(fx->store);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
	free(fx);
	return system(cmd) == 0 ? 0 : -1;
}

static bool committed(struct fx *fx, const char *sql)
{
	struct drv_sql_stmt *st;
	bool yes = false;

	if (drv_sql_prepare(fx->other, sql, &st) == DRV_OK && drv_sql_step(st) == DRV_SQL_ROW)
		yes = drv_sql_col_int64(st, 0) > 0;
	drv_sql_finalize(st);
	return yes;
}

/* One writer: x < 0 writes a row that breaks a deferred foreign key (the
 * COMMIT fails); it owes an answer, and does not wait for the commit. */
static int write_owing(struct fx *fx, int x)
{
	char sql[64];
	int rc;

	gcommit_lock(&fx->g);
	rc = gcommit_join(&fx->g);
	snprintf(sql, sizeof(sql),
	         x < 0 ? "INSERT INTO c VALUES (%d)" : "INSERT INTO t VALUES (%d)", x < 0 ? -x : x);
	if (rc == DRV_OK && drv_sql_exec(store_db(fx->store), sql) != DRV_OK)
		rc = DRV_EDB;
	if (rc == DRV_OK)
		gcommit_owe(&fx->g);
	gcommit_unlock(&fx->g);
	return rc;
}

static void *write_one(void *arg)
{
	struct writer *w = arg;

	w->rc = write_owing(w->fx, w->x);
	return NULL;
}

/* Bounded wait until the after-commit hook ran n times; then one commit per
 * run, none open. Returns the last commit's result. */
static int wait_afters(struct fx *fx, int n)
{
	int afters = 0;

	for (int i = 0; i < 20000 && afters < n; i++) {
		pthread_mutex_lock(&fx->g.mu); /* not gcommit_lock: that counts as arriving */
		afters = fx->afters;
		pthread_mutex_unlock(&fx->g.mu);
		if (afters < n)
			usleep(1000);
	}
	pthread_mutex_lock(&fx->g.mu);
	assert_int_equal(fx->afters, n);
	assert_int_equal(fx->g.commits, n);
	assert_false(gcommit_is_open(&fx->g));
	pthread_mutex_unlock(&fx->g.mu);
	return fx->after_rc;
}

/* WRITERS threads queue on the lock while the test holds it, then run. */
static void run_writers(struct fx *fx, struct writer *w, int n)
{
	pthread_t th[WRITERS];

	gcommit_lock(&fx->g);
	for (int i = 0; i < n; i++) {
		w[i].fx = fx;
		assert_int_equal(pthread_create(&th[i], NULL, write_one, &w[i]), 0);
	}
	for (int i = 0; i < 10000 && atomic_load(&fx->g.arriving) < (unsigned)n; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&fx->g.arriving), n);
	gcommit_unlock(&fx->g);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

static void one_commit_for_a_batch(void **state)
{
	struct fx *fx = *state;
	struct writer w[WRITERS] = {0};

	for (int i = 0; i < WRITERS; i++)
		w[i].x = i + 1;
	run_writers(fx, w, WRITERS);
	for (int i = 0; i < WRITERS; i++)
		assert_int_equal(w[i].rc, DRV_OK);
	assert_int_equal(wait_afters(fx, 1), DRV_OK); /* eight writers, one fsync */
	assert_int_equal(fx->after_rows, WRITERS);    /* "saved" only once committed */
	assert_int_equal(fx->g.total_owed, WRITERS);
}

static void failed_commit_fails_every_member(void **state)
{
	struct fx *fx = *state;
	struct writer w[4] = {{.x = 1}, {.x = 2}, {.x = -42}, {.x = 3}};

	run_writers(fx, w, 4); /* -42: a deferred foreign key: the COMMIT fails */
	assert_int_not_equal(wait_afters(fx, 1), DRV_OK);
	assert_int_equal(fx->after_rows, 0);
	/* the next batch starts clean */
	assert_int_equal(write_owing(fx, 5), DRV_OK);
	assert_int_equal(wait_afters(fx, 2), DRV_OK);
	assert_true(committed(fx, "SELECT count(*) FROM t WHERE x = 5"));
}

static void alone_commits_at_unlock(void **state)
{
	struct fx *fx = *state;

	gcommit_lock(&fx->g);
	assert_int_equal(gcommit_join(&fx->g), DRV_OK);
	assert_int_equal(drv_sql_exec(store_db(fx->store), "INSERT INTO t VALUES (9)"), DRV_OK);
	assert_false(committed(fx, "SELECT count(*) FROM t WHERE x = 9"));
	gcommit_unlock(&fx->g); /* nobody else waits, nothing owed: commits */
	assert_true(committed(fx, "SELECT count(*) FROM t WHERE x = 9"));
	assert_int_equal(fx->g.commits, 1);
}

#define OWED 300

/* OWED writers that owe an answer (a report's Ack) lock, write and leave
 * one after the other: their batch lingers for the next ones (before, each
 * writer waited in its thread, and a batch held at most one per thread),
 * and the committer thread commits it when nobody else comes. The hook that
 * answers them runs once, after the one commit of all of them. */
static void owed_answers_share_a_commit(void **state)
{
	struct fx *fx = *state;

	fx->g.linger_us = 2000000; /* the writes take far less, beside CPU hogs too */
	for (int i = 0; i < OWED; i++)
		assert_int_equal(write_owing(fx, i + 1), DRV_OK);
	assert_int_equal(wait_afters(fx, 1), DRV_OK);
	assert_int_equal(fx->after_rows, OWED); /* all saved when they are answered */
	assert_int_equal(fx->g.total_owed, OWED);
}

static void owed_answers_of_a_failed_commit(void **state)
{
	struct fx *fx = *state;

	fx->g.linger_us = 2000000;
	for (int i = 0; i < OWED; i++)
		assert_int_equal(write_owing(fx, i == OWED / 2 ? -42 : i + 1), DRV_OK);
	assert_int_not_equal(wait_afters(fx, 1), DRV_OK);
	assert_int_equal(fx->after_rows, 0);
}

/* The order in which threads took the lock (a letter each, under it). */
static char order[WRITERS + 2];
static int n_order;

/* Take the lock (with a turn: 'T', without: 'S'), note it, release it. */
static void *take_noted(struct fx *fx, char how)
{
	if (how == 'T')
		gcommit_lock_turn(&fx->g);
	else
		gcommit_lock(&fx->g);
	order[n_order++] = how;
	gcommit_unlock(&fx->g);
	return NULL;
}

static void *take_turn(void *arg)
{
	return take_noted(arg, 'T');
}

static void *take_plain(void *arg)
{
	return take_noted(arg, 'S');
}

static unsigned turns_given(struct fx *fx)
{
	unsigned n;

	pthread_mutex_lock(&fx->g.turn_mu);
	n = (unsigned)fx->g.turns_given;
	pthread_mutex_unlock(&fx->g.turn_mu);
	return n;
}

/* A wave's chunk asks for a turn while the lock is held: the threads that
 * come for the lock after it (the link's Polls and reports) wait until it
 * had the lock, then all of them get it (none is left waiting). */
static void turn_goes_before_later_lockers(void **state)
{
	struct fx *fx = *state;
	pthread_t t, s[WRITERS];
	unsigned given;

	n_order = 0;
	gcommit_lock(&fx->g);
	assert_int_equal(pthread_create(&t, NULL, take_turn, fx), 0);
	for (int i = 0; i < 10000 && atomic_load(&fx->g.arriving) < 1; i++)
		usleep(1000);
	for (int i = 0; i < WRITERS; i++)
		assert_int_equal(pthread_create(&s[i], NULL, take_plain, fx), 0);
	for (int i = 0;
	     i < 10000 && turns_given(fx) < WRITERS && atomic_load(&fx->g.arriving) < WRITERS + 1;
	     i++)
		usleep(1000);
	given = turns_given(fx);
	assert_int_equal(n_order, 0);
	gcommit_unlock(&fx->g); /* before asserting: the threads must end */
	pthread_join(t, NULL);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(s[i], NULL);
	assert_int_equal(given, WRITERS);
	assert_int_equal(n_order, WRITERS + 1);
	assert_int_equal(order[0], 'T');
	assert_int_equal(atomic_load(&fx->g.turns), 0);
}

/* gcommit_unlock_commit commits though another thread waits for the lock
 * (gcommit_unlock leaves the batch to that thread: drain, commit once). */
static void unlock_commit_commits_though_others_wait(void **state)
{
	struct fx *fx = *state;
	pthread_t s;
	unsigned waiting;
	bool joined, yes;

	n_order = 0;
	gcommit_lock(&fx->g);
	assert_int_equal(pthread_create(&s, NULL, take_plain, fx), 0);
	for (int i = 0; i < 10000 && atomic_load(&fx->g.arriving) < 1; i++)
		usleep(1000);
	waiting = atomic_load(&fx->g.arriving);
	joined = gcommit_join(&fx->g) == DRV_OK &&
	         drv_sql_exec(store_db(fx->store), "INSERT INTO t VALUES (11)") == DRV_OK;
	gcommit_unlock_commit(&fx->g);
	yes = committed(fx, "SELECT count(*) FROM t WHERE x = 11");
	pthread_join(s, NULL); /* asserts after it: the thread must end */
	assert_int_equal(waiting, 1);
	assert_true(joined);
	assert_true(yes);
	assert_int_equal(n_order, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(one_commit_for_a_batch, setup, teardown),
	        cmocka_unit_test_setup_teardown(failed_commit_fails_every_member, setup, teardown),
	        cmocka_unit_test_setup_teardown(alone_commits_at_unlock, setup, teardown),
	        cmocka_unit_test_setup_teardown(owed_answers_share_a_commit, setup, teardown),
	        cmocka_unit_test_setup_teardown(owed_answers_of_a_failed_commit, setup, teardown),
	        cmocka_unit_test_setup_teardown(turn_goes_before_later_lockers, setup, teardown),
	        cmocka_unit_test_setup_teardown(unlock_commit_commits_though_others_wait, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
