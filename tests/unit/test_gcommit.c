/*
 * test_gcommit.c: group commit on a real SQLite file. Writers that hold the
 * lock one after the other share one commit, each learns "saved" only once
 * its row is committed (seen from another connection), and a failed commit
 * fails every member of its batch; writers that owe an answer instead of
 * waiting share one commit too, answered from its after-hook.
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
	bool visible; /* committed when gcommit_wait returned */
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

static void *write_one(void *arg)
{
	struct writer *w = arg;
	struct gcommit_member m;
	char sql[96];

	gcommit_lock(&w->fx->g);
	w->rc = gcommit_join(&w->fx->g);
	snprintf(sql, sizeof(sql),
	         w->x < 0 ? "INSERT INTO c VALUES (%d)" : "INSERT INTO t VALUES (%d)", w->x);
	if (w->rc == DRV_OK && drv_sql_exec(store_db(w->fx->store), sql) != 0)
		w->rc = DRV_EDB;
	if (w->rc == DRV_OK)
		w->rc = gcommit_wait(&w->fx->g, &m);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM t WHERE x = %d", w->x);
	w->visible = committed(w->fx, sql);
	gcommit_unlock(&w->fx->g);
	return NULL;
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
	for (int i = 0; i < WRITERS; i++) {
		assert_int_equal(w[i].rc, DRV_OK);
		assert_true(w[i].visible); /* "saved" only once committed */
	}
	assert_int_equal(fx->g.commits, 1); /* eight writers, one fsync */
	assert_int_equal(fx->afters, 1);
	assert_int_equal(fx->after_rc, DRV_OK);
	assert_false(gcommit_is_open(&fx->g));
}

static void failed_commit_fails_every_member(void **state)
{
	struct fx *fx = *state;
	struct writer w[4] = {{.x = 1}, {.x = 2}, {.x = -42}, {.x = 3}};

	run_writers(fx, w, 4); /* -42: a deferred foreign key: the COMMIT fails */
	for (int i = 0; i < 4; i++) {
		assert_int_not_equal(w[i].rc, DRV_OK);
		assert_false(w[i].visible);
	}
	assert_int_not_equal(fx->after_rc, DRV_OK);
	assert_false(committed(fx, "SELECT count(*) FROM t"));
	/* the next batch starts clean */
	struct writer again = {.x = 5};
	run_writers(fx, &again, 1);
	assert_int_equal(again.rc, DRV_OK);
	assert_true(again.visible);
}

static void alone_commits_at_unlock(void **state)
{
	struct fx *fx = *state;

	gcommit_lock(&fx->g);
	assert_int_equal(gcommit_join(&fx->g), DRV_OK);
	assert_int_equal(drv_sql_exec(store_db(fx->store), "INSERT INTO t VALUES (9)"), DRV_OK);
	assert_false(committed(fx, "SELECT count(*) FROM t WHERE x = 9"));
	gcommit_unlock(&fx->g); /* nobody else waits: commits */
	assert_true(committed(fx, "SELECT count(*) FROM t WHERE x = 9"));
	assert_int_equal(fx->g.commits, 1);
}

static void start_writer(struct fx *fx, struct writer *w, pthread_t *th)
{
	w->fx = fx;
	assert_int_equal(pthread_create(th, NULL, write_one, w), 0);
}

static bool has_members(struct fx *fx)
{
	bool yes;

	pthread_mutex_lock(&fx->g.mu); /* not gcommit_lock: that counts as arriving */
	yes = fx->g.members != NULL;
	pthread_mutex_unlock(&fx->g.mu);
	return yes;
}

/* A writer waiting on its batch keeps it open for the linger: a second
 * writer that comes while the first sleeps shares its commit (before, the
 * first committed at once, alone: two fsyncs). */
static void waited_batch_lingers(void **state)
{
	struct fx *fx = *state;
	struct writer w[2] = {{.x = 1}, {.x = 2}};
	pthread_t th[2];

	fx->g.linger_us = 2000000; /* long beside two CPU hogs; the test lasts it */
	start_writer(fx, &w[0], &th[0]);
	for (int i = 0; i < 10000 && !has_members(fx); i++)
		usleep(1000);
	assert_true(has_members(fx)); /* the first writer sleeps on its batch */
	start_writer(fx, &w[1], &th[1]);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(w[i].rc, DRV_OK);
		assert_true(w[i].visible);
	}
	assert_int_equal(fx->g.commits, 1);
}

#define OWED 300

/* OWED writers that owe an answer (a report's Ack) lock, write and leave
 * one after the other without waiting: their batch lingers for the next
 * ones, and the committer thread commits it when nobody else comes. The
 * hook that answers them runs once, after the one commit of all of them. */
static int owe_writes(struct fx *fx, int bad)
{
	char sql[64];

	for (int i = 0; i < OWED; i++) {
		gcommit_lock(&fx->g);
		assert_int_equal(gcommit_join(&fx->g), DRV_OK);
		snprintf(sql, sizeof(sql),
		         i == bad ? "INSERT INTO c VALUES (42)" : "INSERT INTO t VALUES (%d)", i);
		assert_int_equal(drv_sql_exec(store_db(fx->store), sql), DRV_OK);
		gcommit_owe(&fx->g);
		gcommit_unlock(&fx->g);
	}
	for (int i = 0; i < 20000; i++) {
		int afters;

		pthread_mutex_lock(&fx->g.mu);
		afters = fx->afters;
		pthread_mutex_unlock(&fx->g.mu);
		if (afters > 0)
			break;
		usleep(1000);
	}
	pthread_mutex_lock(&fx->g.mu);
	assert_int_equal(fx->afters, 1);
	assert_int_equal(fx->g.commits, 1);
	assert_int_equal(fx->g.total_owed, OWED);
	assert_false(gcommit_is_open(&fx->g));
	pthread_mutex_unlock(&fx->g.mu);
	return fx->after_rc;
}

static void owed_answers_share_a_commit(void **state)
{
	struct fx *fx = *state;

	fx->g.linger_us = 2000000; /* the writes take far less, beside CPU hogs too */
	assert_int_equal(owe_writes(fx, -1), DRV_OK);
	assert_int_equal(fx->after_rows, OWED); /* all saved when they are answered */
}

static void owed_answers_of_a_failed_commit(void **state)
{
	struct fx *fx = *state;

	fx->g.linger_us = 2000000;
	assert_int_not_equal(owe_writes(fx, OWED / 2), DRV_OK);
	assert_int_equal(fx->after_rows, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(one_commit_for_a_batch, setup, teardown),
	        cmocka_unit_test_setup_teardown(failed_commit_fails_every_member, setup, teardown),
	        cmocka_unit_test_setup_teardown(alone_commits_at_unlock, setup, teardown),
	        cmocka_unit_test_setup_teardown(waited_batch_lingers, setup, teardown),
	        cmocka_unit_test_setup_teardown(owed_answers_share_a_commit, setup, teardown),
	        cmocka_unit_test_setup_teardown(owed_answers_of_a_failed_commit, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
