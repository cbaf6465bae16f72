/* test_store.c: the coordinator store (agents, instruction queue, tokens). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <unistd.h>

#include "sqldb.h"
#include "err.h"
#include "store_target.h"
#include "keys.h"
#include "secret.h"
#include "store.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
	struct store *s;

	snprintf(dir, sizeof(dir), "/tmp/drv-store-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	if (store_target(path, sizeof(path), dir, "t.db") != 0)
		return -1;
	if (store_open(path, &s) != DRV_OK)
		return -1;
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	char cmd[160];

	store_close(*state);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void add_agent(struct store *s, const char *id, enum agent_status st)
{
	struct drv_keypair kp;
	struct store_agent a = {0};
	struct store_hello h = {"{\"tier\":\"core\"}", "{}", "[]", "0.1.0", 0};

	assert_int_equal(drv_keypair_generate(&kp), DRV_OK);
	snprintf(a.id, sizeof(a.id), "%s", id);
	assert_int_equal(drv_pubkey_from_raw(kp.pk, DRV_PK_LEN, &a.key), DRV_OK);
	a.status = st;
	a.first_seen_ms = a.last_seen_ms = 1000;
	a.next_seq = 1;
	assert_int_equal(store_agent_create(s, &a, &h), DRV_OK);
}

static void agents(void **state)
{
	struct store *s = *state;
	struct store_hello h = {"{}", "{\"hostname\":\"x\"}", "[]", "0.2.0", 0};
	struct store_agent a;
	size_t n;

	add_agent(s, "db-1", AGENT_PENDING);
	assert_int_equal(store_agent_get(s, "db-1", &a), DRV_OK);
	assert_int_equal(a.status, AGENT_PENDING);
	assert_int_equal(a.next_seq, 1);
	assert_int_equal(store_agent_get(s, "nope", &a), DRV_ENOENT);
	assert_int_equal(store_agent_create(s, &a, &h), DRV_EEXIST);
	assert_int_equal(store_agent_update_hello(s, "db-1", &h, 5000, NULL), DRV_OK);
	assert_int_equal(store_agent_update_hello(s, "nope", &h, 5000, NULL), DRV_ENOENT);
	assert_int_equal(store_agent_set_status(s, "db-1", AGENT_ACCEPTED, "operator:admin", 6000),
	                 DRV_OK);
	assert_int_equal(store_agent_get(s, "db-1", &a), DRV_OK);
	assert_int_equal(a.status, AGENT_ACCEPTED);
	assert_string_equal(a.enrolled_by, "operator:admin");
	assert_int_equal(a.last_seen_ms, 5000);
	assert_int_equal(store_agent_touch(s, "db-1", 4000), DRV_OK); /* never goes back */
	assert_int_equal(store_agent_get(s, "db-1", &a), DRV_OK);
	assert_int_equal(a.last_seen_ms, 5000);
	assert_int_equal(store_agent_count(s, AGENT_ACCEPTED, &n), DRV_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_agent_report_seq(s, "db-1", 5), DRV_OK);
	assert_int_equal(store_agent_report_seq(s, "db-1", 5), DRV_EREPLAY);
	assert_int_equal(store_agent_report_seq(s, "db-1", 4), DRV_EREPLAY);
	assert_int_equal(store_agent_report_seq(s, "db-1", 6), DRV_OK);
}

static int seal_calls;

static int fake_seal(void *arg, uint64_t seq, uint8_t **env, size_t *len)
{
	char *text = malloc(32);

	(void)arg;
	if (text == NULL)
		return DRV_ENOMEM;
	seal_calls++;
	*len = (size_t)snprintf(text, 32, "env-%llu", (unsigned long long)seq);
	*env = (uint8_t *)text;
	return DRV_OK;
}

static int enqueue(struct store *s, const char *agent, const char *step, int64_t exp, uint64_t *seq)
{
	struct store_enqueue q = {.agent_id = agent,
	                          .step_id = step,
	                          .deployment_id = "d1",
	                          .action = 6,
	                          .issued_at_ms = 1000,
	                          .expires_at_ms = exp,
	                          .seal = fake_seal};

	return store_instr_enqueue(s, &q, seq);
}

static void queue(void **state)
{
	struct store *s = *state;
	struct store_agent a;
	struct store_instr in;
	uint64_t seq;
	size_t n;
	char st[16];

	add_agent(s, "web-1", AGENT_ACCEPTED);
	assert_int_equal(enqueue(s, "web-1", "a", 100000, &seq), DRV_OK);
	assert_int_equal(seq, 1);
	assert_int_equal(enqueue(s, "web-1", "b", 100000, &seq), DRV_OK);
	assert_int_equal(seq, 2);
	seal_calls = 0;
	assert_int_equal(enqueue(s, "web-1", "a", 100000, &seq), DRV_EEXIST);
	assert_int_equal(seq, 1);
	assert_int_equal(seal_calls, 0);
	assert_int_equal(enqueue(s, "nobody", "a", 100000, &seq), DRV_ENOENT);

	assert_int_equal(store_instr_next(s, "web-1", 2000, &in), DRV_OK);
	assert_int_equal(in.seq, 1);
	assert_int_equal(in.env_len, 5);
	assert_memory_equal(in.env, "env-1", 5);
	assert_int_equal(in.sent_count, 0);
	store_instr_clear(&in);
	assert_int_equal(store_instr_mark_sent(s, "web-1", 1, 2000), DRV_OK);
	assert_int_equal(store_instr_next(s, "web-1", 2000, &in), DRV_OK); /* resent until acked */
	assert_int_equal(in.seq, 1);
	assert_int_equal(in.sent_count, 1);
	store_instr_clear(&in);
	/* acks only cover what was sent */
	assert_int_equal(store_instr_ack_upto(s, "web-1", 2, 3000, &n), DRV_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_agent_get(s, "web-1", &a), DRV_OK);
	assert_int_equal(a.acked_seq, 2);
	assert_int_equal(a.next_seq, 3);
	/* an agent that applied more than the store remembers: the floor rises */
	assert_int_equal(store_instr_ack_upto(s, "web-1", 7, 3000, &n), DRV_OK);
	assert_int_equal(store_agent_get(s, "web-1", &a), DRV_OK);
	assert_int_equal(a.acked_seq, 7);
	assert_int_equal(a.next_seq, 8);
	assert_int_equal(store_instr_ack_upto(s, "web-1", 5, 3000, &n), DRV_OK); /* never lowers */
	assert_int_equal(store_agent_get(s, "web-1", &a), DRV_OK);
	assert_int_equal(a.acked_seq, 7);
	assert_int_equal(a.next_seq, 8);
	assert_int_equal(store_instr_state(s, "web-1", 2, st), DRV_OK);
	assert_string_equal(st, "queued");
	assert_int_equal(store_instr_next(s, "web-1", 3000, &in), DRV_OK);
	assert_int_equal(in.seq, 2);
	store_instr_clear(&in);
	/* expiry */
	assert_int_equal(store_instr_expire(s, 100001, NULL, NULL, &n), DRV_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_instr_next(s, "web-1", 3000, &in), DRV_ENOENT);
	assert_int_equal(store_instr_state(s, "web-1", 2, st), DRV_OK);
	assert_string_equal(st, "expired");
	assert_int_equal(store_instr_state(s, "web-1", 9, st), DRV_ENOENT);
}

struct taken_rows {
	int n;
	struct {
		char agent[16];
		uint64_t seq;
		int64_t sent_count;
		bool more;
	} v[8];
};

static void taken_row(void *arg, const char *agent_id, struct store_instr *in)
{
	struct taken_rows *t = arg;

	assert_true(t->n < 8);
	snprintf(t->v[t->n].agent, sizeof(t->v[t->n].agent), "%s", agent_id);
	t->v[t->n].seq = in->seq;
	t->v[t->n].sent_count = in->sent_count;
	t->v[t->n].more = in->more;
	assert_memory_equal(in->env, "env-", 4);
	t->n++;
}

static int taken_index(const struct taken_rows *t, const char *agent)
{
	for (int i = 0; i < t->n; i++)
		if (strcmp(t->v[i].agent, agent) == 0)
			return i;
	return -1;
}

/* store_instr_take_many: store_instr_take for several agents in one
 * statement; an agent without a deliverable row is not heard. */
static void take_many(void **state)
{
	struct store *s = *state;
	struct taken_rows t = {0};
	struct store_instr in;
	uint64_t seq;
	char st[16];
	int i;

	add_agent(s, "m-1", AGENT_ACCEPTED);
	add_agent(s, "m-2", AGENT_ACCEPTED);
	add_agent(s, "m-3", AGENT_ACCEPTED);
	add_agent(s, "m-4", AGENT_ACCEPTED);
	assert_int_equal(enqueue(s, "m-1", "a", 100000, &seq), DRV_OK);
	assert_int_equal(enqueue(s, "m-1", "b", 100000, &seq), DRV_OK);
	assert_int_equal(enqueue(s, "m-2", "a", 5000, &seq), DRV_OK); /* past at 6000 */
	assert_int_equal(enqueue(s, "m-4", "a", 100000, &seq), DRV_OK);
	assert_int_equal(store_instr_take(s, "m-4", 2000, &in), DRV_OK); /* sent once */
	store_instr_clear(&in);
	assert_int_equal(store_begin(s), DRV_OK);
	assert_int_equal(store_instr_take_many(s, "[\"m-1\",\"m-2\",\"m-3\",\"m-4\",\"nobody\"]",
	                                       6000, taken_row, &t),
	                 DRV_OK);
	assert_int_equal(store_commit(s), DRV_OK);
	assert_int_equal(t.n, 2);
	i = taken_index(&t, "m-1");
	assert_true(i >= 0);
	assert_int_equal(t.v[i].seq, 1);
	assert_int_equal(t.v[i].sent_count, 0);
	assert_true(t.v[i].more); /* b waits behind it */
	i = taken_index(&t, "m-4");
	assert_true(i >= 0);
	assert_int_equal(t.v[i].seq, 1);
	assert_int_equal(t.v[i].sent_count, 1); /* resent */
	assert_false(t.v[i].more);
	assert_int_equal(store_instr_state(s, "m-1", 1, st), DRV_OK);
	assert_string_equal(st, "sent");
	assert_int_equal(store_instr_state(s, "m-1", 2, st), DRV_OK);
	assert_string_equal(st, "queued");
	assert_int_equal(store_instr_state(s, "m-2", 1, st), DRV_OK);
	assert_string_equal(st, "queued");
	/* what store_instr_take would give next agrees */
	assert_int_equal(store_instr_next(s, "m-1", 6000, &in), DRV_OK);
	assert_int_equal(in.seq, 1);
	assert_int_equal(in.sent_count, 1);
	store_instr_clear(&in);
}

/* store_instr_take: what store_instr_next gives, marked sent, in one
 * statement inside the caller's transaction. */
static void take(void **state)
{
	struct store *s = *state;
	struct store_instr in;
	uint64_t seq;
	size_t n;
	char st[16];

	add_agent(s, "t-1", AGENT_ACCEPTED);
	add_agent(s, "t-2", AGENT_ACCEPTED);
	assert_int_equal(store_instr_take(s, "t-1", 2000, &in), DRV_ENOENT);
	assert_int_equal(enqueue(s, "t-1", "a", 100000, &seq), DRV_OK);
	assert_int_equal(enqueue(s, "t-1", "b", 5000, &seq), DRV_OK);
	assert_int_equal(enqueue(s, "t-1", "c", 100000, &seq), DRV_OK);
	assert_int_equal(enqueue(s, "t-2", "a", 100000, &seq), DRV_OK);
	/* taken in a transaction that rolls back: still queued, never sent */
	assert_int_equal(store_begin(s), DRV_OK);
	assert_int_equal(store_instr_take(s, "t-1", 2000, &in), DRV_OK);
	assert_int_equal(in.seq, 1);
	store_instr_clear(&in);
	store_rollback(s);
	assert_int_equal(store_instr_state(s, "t-1", 1, st), DRV_OK);
	assert_string_equal(st, "queued");
	/* the lowest first, resent (sent_count as it was before) until acked */
	assert_int_equal(store_begin(s), DRV_OK);
	assert_int_equal(store_instr_take(s, "t-1", 2000, &in), DRV_OK);
	assert_int_equal(store_commit(s), DRV_OK);
	assert_int_equal(in.seq, 1);
	assert_string_equal(in.step_id, "a");
	assert_int_equal(in.env_len, 5);
	assert_memory_equal(in.env, "env-1", 5);
	assert_int_equal(in.expires_at_ms, 100000);
	assert_int_equal(in.sent_count, 0);
	assert_true(in.more); /* b and c wait behind it */
	store_instr_clear(&in);
	assert_int_equal(store_instr_state(s, "t-1", 1, st), DRV_OK);
	assert_string_equal(st, "sent");
	assert_int_equal(store_instr_take(s, "t-1", 2100, &in), DRV_OK);
	assert_int_equal(in.seq, 1);
	assert_int_equal(in.sent_count, 1);
	store_instr_clear(&in);
	assert_int_equal(store_instr_next(s, "t-1", 2100, &in), DRV_OK); /* agrees */
	assert_int_equal(in.seq, 1);
	assert_int_equal(in.sent_count, 2);
	store_instr_clear(&in);
	assert_int_equal(store_instr_ack_upto(s, "t-1", 1, 3000, &n), DRV_OK);
	assert_int_equal(n, 1);
	/* past its expiry (not yet expired by store_instr_expire): skipped */
	assert_int_equal(store_instr_take(s, "t-1", 6000, &in), DRV_OK);
	assert_int_equal(in.seq, 3);
	assert_false(in.more); /* the last one */
	store_instr_clear(&in);
	assert_int_equal(store_instr_state(s, "t-1", 2, st), DRV_OK);
	assert_string_equal(st, "queued");
	assert_int_equal(store_instr_ack_upto(s, "t-1", 3, 7000, &n), DRV_OK);
	assert_int_equal(store_instr_take(s, "t-1", 7000, &in), DRV_ENOENT);
	/* another agent's queue is its own */
	assert_int_equal(store_instr_take(s, "t-2", 7000, &in), DRV_OK);
	assert_int_equal(in.seq, 1);
	assert_false(in.more);
	assert_memory_equal(in.env, "env-1", 5);
	store_instr_clear(&in);
}

/* An agent's next_seq behind its rows (what a second writer's insert looks
 * like between its commit and our read of next_seq, on PostgreSQL: an
 * offline `droverd queue` beside the leader): the unique violation of the
 * insert is not "this step is already queued" (it is not, and its sequence
 * was 0): the instruction is queued above the rows. */
static void enqueue_behind_rows(void **state)
{
	struct store *s = *state;
	struct store_instr in;
	uint64_t seq = 0;
	char st[16];

	add_agent(s, "u-1", AGENT_ACCEPTED);
	assert_int_equal(enqueue(s, "u-1", "a", 100000, &seq), DRV_OK);
	assert_int_equal(seq, 1);
	assert_int_equal(
	        drv_sql_exec(store_db(s), "UPDATE agents SET next_seq = 1 WHERE id = 'u-1'"),
	        DRV_OK);
	seq = 0;
	assert_int_equal(enqueue(s, "u-1", "b", 100000, &seq), DRV_OK);
	assert_int_equal(seq, 2);
	assert_int_equal(store_instr_state(s, "u-1", 2, st), DRV_OK);
	assert_string_equal(st, "queued");
	/* the next one above it, and a step queued already says its number */
	assert_int_equal(enqueue(s, "u-1", "c", 100000, &seq), DRV_OK);
	assert_int_equal(seq, 3);
	assert_int_equal(enqueue(s, "u-1", "b", 100000, &seq), DRV_EEXIST);
	assert_int_equal(seq, 2);
	assert_int_equal(store_instr_next(s, "u-1", 2000, &in), DRV_OK);
	assert_int_equal(in.seq, 1);
	store_instr_clear(&in);
}

/* q[0] and q[1] queued together, with these numbers. */
static void two_queued(struct store *s, const struct store_enqueue *q, uint64_t seq0, uint64_t seq1)
{
	uint64_t seqs[2];
	int rcs[2];

	store_instr_enqueue_many(s, q, 2, seqs, rcs);
	assert_int_equal(rcs[0], DRV_OK);
	assert_int_equal(seqs[0], seq0);
	assert_int_equal(rcs[1], DRV_OK);
	assert_int_equal(seqs[1], seq1);
}

/* A chunk queued together (on PostgreSQL one check and one insert): each
 * row's outcome as store_instr_enqueue's alone, the numbers above the rows
 * even where next_seq lags, next_seq after them, the envelopes sealed for
 * their numbers; an agent twice in a chunk numbered in order. */
static void enqueue_many(void **state)
{
	struct store *s = *state;
	struct store_instr in;
	struct store_agent a;
	const char *ids[] = {"m-1", "m-2", "m-3", "nope", "m-4"};
	const char *steps[] = {"x", "x", "old", "x", "x"};
	struct store_enqueue q[5];
	uint64_t seqs[5], seq;
	int rcs[5];

	add_agent(s, "m-1", AGENT_ACCEPTED);
	add_agent(s, "m-2", AGENT_ACCEPTED);
	add_agent(s, "m-3", AGENT_ACCEPTED);
	add_agent(s, "m-4", AGENT_PENDING);
	assert_int_equal(enqueue(s, "m-2", "a", 100000, &seq), DRV_OK);
	assert_int_equal(enqueue(s, "m-2", "b", 100000, &seq), DRV_OK);
	assert_int_equal(
	        drv_sql_exec(store_db(s), "UPDATE agents SET next_seq = 1 WHERE id = 'm-2'"),
	        DRV_OK);
	assert_int_equal(enqueue(s, "m-3", "old", 100000, &seq), DRV_OK);
	for (size_t i = 0; i < 5; i++)
		q[i] = (struct store_enqueue){.agent_id = ids[i],
		                              .step_id = steps[i],
		                              .deployment_id = "d2",
		                              .action = 6,
		                              .issued_at_ms = 1000,
		                              .expires_at_ms = 100000,
		                              .seal = fake_seal,
		                              .accepted_only = true};
	seal_calls = 0;
	store_instr_enqueue_many(s, q, 5, seqs, rcs);
	/* each new row sealed once: not tried again row by row (the numbers
	 * below were right at the first try) */
	assert_int_equal(seal_calls, 2);
	assert_int_equal(rcs[0], DRV_OK);
	assert_int_equal(seqs[0], 1);
	assert_int_equal(rcs[1], DRV_OK);
	assert_int_equal(seqs[1], 3); /* above its rows, not next_seq's 1 */
	assert_int_equal(rcs[2], DRV_EEXIST);
	assert_int_equal(seqs[2], 1);
	assert_int_equal(rcs[3], DRV_ENOENT);
	assert_int_equal(rcs[4], DRV_ESTATE);
	assert_int_equal(store_agent_get(s, "m-1", &a), DRV_OK);
	assert_int_equal(a.next_seq, 2);
	assert_int_equal(store_agent_get(s, "m-2", &a), DRV_OK);
	assert_int_equal(a.next_seq, 4);
	assert_int_equal(store_instr_take(s, "m-1", 2000, &in), DRV_OK);
	assert_int_equal(in.seq, 1);
	assert_string_equal(in.step_id, "x");
	assert_int_equal(in.env_len, 5);
	assert_memory_equal(in.env, "env-1", 5);
	store_instr_clear(&in);
	/* the same again: every row queued already, with its number */
	store_instr_enqueue_many(s, q, 3, seqs, rcs);
	assert_int_equal(rcs[0], DRV_EEXIST);
	assert_int_equal(seqs[0], 1);
	assert_int_equal(rcs[1], DRV_EEXIST);
	assert_int_equal(seqs[1], 3);
	/* one agent twice: one after the other */
	q[0].step_id = "y";
	q[1].agent_id = "m-1";
	q[1].step_id = "z";
	two_queued(s, q, 2, 3);
	/* undone with the transaction around it, next_seq with it */
	q[0].step_id = "w";
	q[1].agent_id = "m-3";
	q[1].step_id = "w";
	assert_int_equal(store_begin(s), DRV_OK);
	two_queued(s, q, 4, 2);
	store_rollback(s);
	assert_int_equal(store_agent_get(s, "m-1", &a), DRV_OK);
	assert_int_equal(a.next_seq, 4);
	two_queued(s, q, 4, 2);
	/* a row the chunk's statements cannot carry (PostgreSQL: text that is
	 * not UTF-8) fails alone */
	q[0].step_id = "bad\xff";
	q[1].step_id = "v";
	store_instr_enqueue_many(s, q, 2, seqs, rcs);
	assert_int_equal(rcs[0], drv_sql_engine_of(store_db(s)) == DRV_SQL_PG ? DRV_EDB : DRV_OK);
	assert_int_equal(rcs[1], DRV_OK);
	assert_int_equal(seqs[1], 3);
}

/* q for agent id and step step, sealed by fake_seal unless seal is given. */
static struct store_enqueue many_q(const char *id, const char *step,
                                   int (*seal)(void *, uint64_t, uint8_t **, size_t *), void *arg)
{
	return (struct store_enqueue){.agent_id = id,
	                              .step_id = step,
	                              .deployment_id = "d3",
	                              .action = 6,
	                              .issued_at_ms = 1000,
	                              .expires_at_ms = 100000,
	                              .seal = seal != NULL ? seal : fake_seal,
	                              .seal_arg = arg,
	                              .accepted_only = true};
}

static int fence_calls;

static int fenced(struct drv_sql *db, void *arg)
{
	(void)db;
	(void)arg;
	fence_calls++;
	return DRV_EFENCED;
}

/* A fenced leader's chunk (its own transaction: no batch open) commits
 * nothing and is not tried again row by row: one fence check, one seal per
 * row. The fence exists on PostgreSQL only. */
static void enqueue_many_fenced(void **state)
{
	struct store *s = *state;
	struct store_enqueue q[2] = {many_q("f-1", "x", NULL, NULL),
	                             many_q("f-2", "x", NULL, NULL)};
	struct store_agent a;
	uint64_t seqs[2];
	int rcs[2];

	if (drv_sql_engine_of(store_db(s)) != DRV_SQL_PG)
		skip();
	add_agent(s, "f-1", AGENT_ACCEPTED);
	add_agent(s, "f-2", AGENT_ACCEPTED);
	fence_calls = 0;
	seal_calls = 0;
	drv_sql_set_fence(store_db(s), fenced, NULL);
	store_instr_enqueue_many(s, q, 2, seqs, rcs);
	drv_sql_set_fence(store_db(s), NULL, NULL);
	assert_int_equal(rcs[0], DRV_EFENCED);
	assert_int_equal(rcs[1], DRV_EFENCED);
	assert_int_equal(seqs[0], 0);
	assert_int_equal(seqs[1], 0);
	assert_int_equal(fence_calls, 1);
	assert_int_equal(seal_calls, 2);
	assert_int_equal(store_agent_get(s, "f-1", &a), DRV_OK);
	assert_int_equal(a.next_seq, 1);
	/* unfenced, the same chunk is queued with the first numbers */
	store_instr_enqueue_many(s, q, 2, seqs, rcs);
	assert_int_equal(rcs[0], DRV_OK);
	assert_int_equal(seqs[0], 1);
	assert_int_equal(rcs[1], DRV_OK);
	assert_int_equal(seqs[1], 1);
}

/* Another writer (a second connection) queues a row for the first agent
 * between the chunk's check and its insert. */
struct race {
	struct store *other;
	bool done;
};

static int racing_seal(void *arg, uint64_t seq, uint8_t **env, size_t *len)
{
	struct race *r = arg;
	uint64_t theirs;

	if (!r->done) {
		r->done = true;
		assert_int_equal(enqueue(r->other, "r-1", "theirs", 100000, &theirs), DRV_OK);
		assert_int_equal(theirs, seq);
	}
	return fake_seal(NULL, seq, env, len);
}

/* The chunk's insert refused by the server (a unique violation: the other
 * writer's row has the number it read) inside a transaction of ours (the
 * core's batch): undone to its savepoint and queued row by row, above the
 * other row, with envelopes sealed for the numbers given; never "queued
 * already" without a number. */
static void enqueue_many_raced(void **state)
{
	struct store *s = *state;
	struct race r = {0};
	struct store_enqueue q[2] = {many_q("r-1", "x", racing_seal, &r),
	                             many_q("r-2", "x", racing_seal, &r)};
	struct store_instr in;
	struct store_agent a;
	uint64_t seqs[2];
	size_t n;
	int rcs[2];

	if (drv_sql_engine_of(store_db(s)) != DRV_SQL_PG)
		skip(); /* SQLite: one writer at a time, and row by row anyway */
	add_agent(s, "r-1", AGENT_ACCEPTED);
	add_agent(s, "r-2", AGENT_ACCEPTED);
	assert_int_equal(store_open(path, &r.other), DRV_OK);
	assert_int_equal(store_begin(s), DRV_OK);
	store_instr_enqueue_many(s, q, 2, seqs, rcs);
	assert_int_equal(store_commit(s), DRV_OK);
	store_close(r.other);
	assert_true(r.done);
	assert_int_equal(rcs[0], DRV_OK);
	assert_int_equal(seqs[0], 2);
	assert_int_equal(rcs[1], DRV_OK);
	assert_int_equal(seqs[1], 1);
	assert_int_equal(store_agent_get(s, "r-1", &a), DRV_OK);
	assert_int_equal(a.next_seq, 3);
	assert_int_equal(store_instr_take(s, "r-1", 2000, &in), DRV_OK);
	assert_string_equal(in.step_id, "theirs");
	store_instr_clear(&in);
	assert_int_equal(store_instr_ack_upto(s, "r-1", 1, 2000, &n), DRV_OK);
	assert_int_equal(store_instr_take(s, "r-1", 2000, &in), DRV_OK);
	assert_int_equal(in.seq, 2);
	assert_string_equal(in.step_id, "x");
	assert_memory_equal(in.env, "env-2", 5);
	store_instr_clear(&in);
}

/* Step ids JSON must escape (quotes, backslashes, control characters) or
 * carries as they are (UTF-8 beyond ASCII): queued with them, found queued
 * by them, read back byte for byte. */
static void enqueue_many_texts(void **state)
{
	static const char *const steps[] = {"q\"uo'te", "back\\slash\\",
	                                    "caf\xc3\xa9-\xe2\x9c\x93-\xf0\x9f\x98\x80",
	                                    "ctl\x01\t\n\x7f", "</script>\\u0041"};
	static const char *const ids[] = {"t-1", "t-2", "t-3", "t-4", "t-5"};
	struct store *s = *state;
	struct store_enqueue q[5];
	struct store_instr in;
	uint64_t seqs[5];
	int rcs[5];

	for (size_t i = 0; i < 5; i++) {
		add_agent(s, ids[i], AGENT_ACCEPTED);
		q[i] = many_q(ids[i], steps[i], NULL, NULL);
		q[i].deployment_id = i % 2 ? NULL : steps[i];
	}
	store_instr_enqueue_many(s, q, 5, seqs, rcs);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(rcs[i], DRV_OK);
		assert_int_equal(seqs[i], 1);
	}
	store_instr_enqueue_many(s, q, 5, seqs, rcs);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(rcs[i], DRV_EEXIST);
		assert_int_equal(seqs[i], 1);
		assert_int_equal(store_instr_take(s, ids[i], 2000, &in), DRV_OK);
		assert_string_equal(in.step_id, steps[i]);
		store_instr_clear(&in);
	}
	/* no agent id: unknown, as store_instr_enqueue has it, the others queued */
	q[0].agent_id = NULL;
	q[1].step_id = "y";
	store_instr_enqueue_many(s, q, 2, seqs, rcs);
	assert_int_equal(rcs[0], DRV_ENOENT);
	assert_int_equal(rcs[1], DRV_OK);
	assert_int_equal(seqs[1], 2);
}

/* An envelope of *(size_t *)arg bytes, "env-SEQ" first. */
static int big_seal(void *arg, uint64_t seq, uint8_t **env, size_t *len)
{
	size_t n = *(const size_t *)arg;
	uint8_t *b = malloc(n);

	if (b == NULL)
		return DRV_ENOMEM;
	seal_calls++;
	memset(b, 'x', n);
	snprintf((char *)b, n, "env-%llu", (unsigned long long)seq);
	*env = b;
	*len = n;
	return DRV_OK;
}

/* The largest envelope bytes one INSERT into instructions carried, the rows
 * and the statements (a statement trigger counts them). */
static void insert_statements(struct store *s, int64_t *max_bytes, int64_t *rows, int64_t *stmts)
{
	struct drv_sql_stmt *st;

	assert_int_equal(drv_sql_prepare(store_db(s),
	                                 "SELECT max(bytes), sum(n), count(*) FROM stmt_env", &st),
	                 DRV_OK);
	assert_int_equal(drv_sql_step(st), DRV_SQL_ROW);
	*max_bytes = drv_sql_col_int64(st, 0);
	*rows = drv_sql_col_int64(st, 1);
	*stmts = drv_sql_col_int64(st, 2);
	drv_sql_finalize(st);
}

/* A chunk of large envelopes (8 of 1 MiB, the cap on one) is not one
 * statement of 11 MiB of JSON (and as much again in each copy the client
 * holds): its insert is cut at STORE_MANY_JSON_MAX, in the same
 * transaction, each row sealed once. */
static void enqueue_many_big(void **state)
{
	struct store *s = *state;
	size_t env_len = 1u << 20;
	char ids[8][8];
	struct store_enqueue q[8];
	struct store_instr in;
	uint64_t seqs[8];
	int64_t max_bytes, rows, stmts;
	int rcs[8];

	if (drv_sql_engine_of(store_db(s)) != DRV_SQL_PG)
		skip(); /* row by row */
	assert_int_equal(
	        drv_sql_exec(store_db(s),
	                     "CREATE TABLE stmt_env (bytes BIGINT NOT NULL, n BIGINT NOT NULL);"
	                     "CREATE FUNCTION stmt_env_note() RETURNS trigger LANGUAGE plpgsql AS"
	                     " 'BEGIN INSERT INTO stmt_env SELECT"
	                     " coalesce(sum(octet_length(envelope)), 0), count(*) FROM new_rows;"
	                     " RETURN NULL; END';"
	                     "CREATE TRIGGER stmt_env_note AFTER INSERT ON instructions"
	                     " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
	                     " EXECUTE FUNCTION stmt_env_note()"),
	        DRV_OK);
	for (size_t i = 0; i < 8; i++) {
		snprintf(ids[i], sizeof(ids[i]), "b-%zu", i);
		add_agent(s, ids[i], AGENT_ACCEPTED);
		q[i] = many_q(ids[i], "x", big_seal, &env_len);
	}
	seal_calls = 0;
	store_instr_enqueue_many(s, q, 8, seqs, rcs);
	assert_int_equal(seal_calls, 8);
	for (size_t i = 0; i < 8; i++) {
		assert_int_equal(rcs[i], DRV_OK);
		assert_int_equal(seqs[i], 1);
	}
	insert_statements(s, &max_bytes, &rows, &stmts);
	assert_int_equal(rows, 8);
	assert_true(stmts > 1);
	assert_true((size_t)max_bytes / 3 * 4 <= STORE_MANY_JSON_MAX);
	assert_int_equal(store_instr_take(s, "b-7", 2000, &in), DRV_OK);
	assert_int_equal(in.env_len, env_len);
	assert_string_equal((const char *)in.env, "env-1");
	store_instr_clear(&in);
}

/* A report's sequence and acknowledgement in one write of the agent's row. */
static void report_and_ack(void **state)
{
	struct store *s = *state;
	struct store_agent a;
	uint64_t seq;
	size_t n = 9;
	char st[16];

	add_agent(s, "r-1", AGENT_ACCEPTED);
	assert_int_equal(enqueue(s, "r-1", "a", 100000, &seq), DRV_OK);
	assert_int_equal(enqueue(s, "r-1", "b", 100000, &seq), DRV_OK);
	assert_int_equal(store_instr_mark_sent(s, "r-1", 1, 2000), DRV_OK);
	/* a report that acknowledges nothing: only its sequence */
	assert_int_equal(store_agent_report(s, "r-1", 1, 0, 2500, &n), DRV_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_agent_get(s, "r-1", &a), DRV_OK);
	assert_int_equal(a.report_seq, 1);
	assert_int_equal(a.acked_seq, 0);
	assert_int_equal(a.next_seq, 3);
	/* acknowledges what was sent up to 2: seq 1 (2 was never sent) */
	assert_int_equal(store_agent_report(s, "r-1", 2, 2, 3000, &n), DRV_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_instr_state(s, "r-1", 1, st), DRV_OK);
	assert_string_equal(st, "acked");
	assert_int_equal(store_instr_state(s, "r-1", 2, st), DRV_OK);
	assert_string_equal(st, "queued");
	assert_int_equal(store_agent_get(s, "r-1", &a), DRV_OK);
	assert_int_equal(a.report_seq, 2);
	assert_int_equal(a.acked_seq, 2);
	assert_int_equal(a.next_seq, 3);
	/* a replay changes nothing, not even the acknowledgement */
	assert_int_equal(store_agent_report(s, "r-1", 2, 7, 3000, &n), DRV_EREPLAY);
	assert_int_equal(store_agent_get(s, "r-1", &a), DRV_OK);
	assert_int_equal(a.acked_seq, 2);
	/* an agent ahead of the store: the floor of the next sequence rises */
	assert_int_equal(store_agent_report(s, "r-1", 3, 7, 3000, &n), DRV_OK);
	assert_int_equal(store_agent_get(s, "r-1", &a), DRV_OK);
	assert_int_equal(a.acked_seq, 7);
	assert_int_equal(a.next_seq, 8);
	assert_int_equal(store_agent_report(s, "r-1", 4, 5, 3000, &n), DRV_OK); /* never lowers */
	assert_int_equal(store_agent_get(s, "r-1", &a), DRV_OK);
	assert_int_equal(a.acked_seq, 7);
	assert_int_equal(a.next_seq, 8);
	assert_int_equal(store_agent_report(s, "nobody", 1, 0, 3000, &n), DRV_EREPLAY);
}

static void count_acked(void *arg, const char *agent_id)
{
	(*(int *)arg) += strcmp(agent_id, "b-1") == 0 ? 1 : 100;
}

/* A batch's reports in one statement per table: as store_agent_report for
 * each agent; a row that is a replay fails the whole call (the caller rolls
 * back and writes them one by one). */
static void reports_of_a_batch(void **state)
{
	struct store *s = *state;
	struct store_agent a;
	uint64_t seq;
	int acked = 0;
	char st[16];

	add_agent(s, "b-1", AGENT_ACCEPTED);
	add_agent(s, "b-2", AGENT_ACCEPTED);
	assert_int_equal(enqueue(s, "b-1", "a", 100000, &seq), DRV_OK);
	assert_int_equal(enqueue(s, "b-1", "b", 100000, &seq), DRV_OK);
	assert_int_equal(enqueue(s, "b-2", "a", 100000, &seq), DRV_OK);
	assert_int_equal(store_instr_mark_sent(s, "b-1", 1, 2000), DRV_OK);
	assert_int_equal(store_instr_mark_sent(s, "b-1", 2, 2000), DRV_OK);
	assert_int_equal(store_instr_mark_sent(s, "b-2", 1, 2000), DRV_OK);
	assert_int_equal(store_agent_reports(s, "[]", 0, true, 2500, count_acked, &acked), DRV_OK);
	/* b-1 acknowledges up to 2, b-2 (an agent ahead of the store) up to 7 */
	assert_int_equal(store_begin(s), DRV_OK);
	assert_int_equal(store_agent_reports(s, "[[\"b-1\",4,2],[\"b-2\",9,7]]", 2, true, 2500,
	                                     count_acked, &acked),
	                 DRV_OK);
	assert_int_equal(store_commit(s), DRV_OK);
	assert_int_equal(acked, 102); /* two of b-1's, one of b-2's */
	assert_int_equal(store_instr_state(s, "b-1", 2, st), DRV_OK);
	assert_string_equal(st, "acked");
	assert_int_equal(store_agent_get(s, "b-1", &a), DRV_OK);
	assert_int_equal(a.report_seq, 4);
	assert_int_equal(a.acked_seq, 2);
	assert_int_equal(a.next_seq, 3);
	assert_int_equal(store_agent_get(s, "b-2", &a), DRV_OK);
	assert_int_equal(a.report_seq, 9);
	assert_int_equal(a.acked_seq, 7);
	assert_int_equal(a.next_seq, 8);
	/* a row that acknowledges nothing writes its sequence only */
	assert_int_equal(store_agent_reports(s, "[[\"b-1\",5,0]]", 1, false, 2600, NULL, NULL),
	                 DRV_OK);
	assert_int_equal(store_agent_get(s, "b-1", &a), DRV_OK);
	assert_int_equal(a.report_seq, 5);
	assert_int_equal(a.acked_seq, 2);
	/* b-2's 9 again is a replay: the call fails (nothing kept once the
	 * caller rolls back), so does an agent that is gone */
	assert_int_equal(store_begin(s), DRV_OK);
	assert_int_equal(
	        store_agent_reports(s, "[[\"b-1\",6,0],[\"b-2\",9,0]]", 2, false, 2700, NULL, NULL),
	        DRV_EREPLAY);
	store_rollback(s);
	assert_int_equal(store_agent_get(s, "b-1", &a), DRV_OK);
	assert_int_equal(a.report_seq, 5);
	assert_int_equal(store_agent_reports(s, "[[\"nobody\",1,0]]", 1, false, 2700, NULL, NULL),
	                 DRV_EREPLAY);
}

static void floor_and_pickup_cb(void *arg, const char *id)
{
	(*(int *)arg)++;
	assert_string_equal(id, "app-1");
}

static void seq_floor_and_pickup(void **state)
{
	struct store *s = *state;
	struct store_agent a;
	uint64_t seq;
	int n = 0;

	add_agent(s, "app-1", AGENT_ACCEPTED);
	assert_int_equal(store_agent_seq_floor(s, "app-1", 41), DRV_OK);
	assert_int_equal(store_agent_get(s, "app-1", &a), DRV_OK);
	assert_int_equal(a.next_seq, 42);
	assert_int_equal(store_agent_seq_floor(s, "app-1", 3), DRV_OK); /* never lowers */
	assert_int_equal(enqueue(s, "app-1", "x", 100000, &seq), DRV_OK);
	assert_int_equal(seq, 42);
	assert_int_equal(store_instr_queued_agents(s, floor_and_pickup_cb, &n), DRV_OK);
	assert_int_equal(n, 1);
}

static void expired_cb(void *arg, const char *id, const char *key_id)
{
	assert_string_equal(id, "old-1");
	assert_int_equal(strlen(key_id), DRV_KEYID_LEN);
	(*(int *)arg)++;
}

static int interrupt_all(void *arg)
{
	(void)arg;
	return 1;
}

/* Pending claims older than the cut are deleted, each reported once; a
 * listing that fails is an error and deletes nothing. */
static void expire_pending(void **state)
{
	struct store *s = *state;
	struct store_agent a;
	int n = 0;

	add_agent(s, "old-1", AGENT_PENDING);
	add_agent(s, "ok-1", AGENT_ACCEPTED);
	assert_int_equal(store_agent_expire_pending(s, 500, expired_cb, &n), DRV_OK);
	assert_int_equal(n, 0);
	/* every step is interrupted: the SELECT fails after its prepare
	 * (SQLite's progress handler; PostgreSQL has no such hook) */
	if (drv_sql_engine_of(store_db(s)) == DRV_SQL_SQLITE) {
		sqlite3 *h = drv_sql_handle(store_db(s));

		sqlite3_progress_handler(h, 1, interrupt_all, NULL);
		assert_int_equal(store_agent_expire_pending(s, 2000, expired_cb, &n), DRV_EDB);
		sqlite3_progress_handler(h, 0, NULL, NULL);
	}
	assert_int_equal(n, 0);
	assert_int_equal(store_agent_get(s, "old-1", &a), DRV_OK);
	assert_int_equal(store_agent_expire_pending(s, 2000, expired_cb, &n), DRV_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_agent_get(s, "old-1", &a), DRV_ENOENT);
	assert_int_equal(store_agent_get(s, "ok-1", &a), DRV_OK);
}

/* One call makes the token and stores its hash; a taken name leaves no token. */
static void enroll_token_create(void **state)
{
	struct store *s = *state;
	char tok[DRV_SECRET_MAX], again[DRV_SECRET_MAX], name[64], why[128];

	assert_int_equal(store_enroll_token_create(s, &(struct store_token){"made", 0, 0, NULL},
	                                           1000, tok, sizeof(tok)),
	                 DRV_OK);
	assert_int_equal(strncmp(tok, "drvenr", 6), 0);
	assert_int_equal(store_enroll_token_use(s, tok, "{}", 2000, name, why, sizeof(why)),
	                 DRV_OK);
	assert_string_equal(name, "made");
	assert_int_equal(store_enroll_token_create(s, &(struct store_token){"made", 0, 0, NULL},
	                                           1000, again, sizeof(again)),
	                 DRV_EEXIST);
	assert_int_equal(again[0], '\0');
}

/* An enrollment token whose name exists is refused inside a transaction
 * other writers share (the core's group-commit batch) without spoiling it:
 * PostgreSQL aborts a whole transaction on any failed statement, so the
 * duplicate must not be one (ON CONFLICT DO NOTHING); the others' writes
 * before and after it still commit. */
static void enroll_token_exists_in_batch(void **state)
{
	struct store *s = *state;
	char tok[DRV_SECRET_MAX];
	struct store_agent a;

	add_agent(s, "b1", AGENT_ACCEPTED);
	assert_int_equal(store_enroll_token_create(s, &(struct store_token){"dup", 0, 0, NULL},
	                                           1000, tok, sizeof(tok)),
	                 DRV_OK);
	assert_int_equal(drv_sql_begin(store_db(s)), DRV_OK);
	assert_int_equal(store_agent_report_seq(s, "b1", 5), DRV_OK);
	assert_int_equal(store_enroll_token_create(s, &(struct store_token){"dup", 0, 0, NULL},
	                                           1000, tok, sizeof(tok)),
	                 DRV_EEXIST);
	assert_int_equal(store_agent_report_seq(s, "b1", 6), DRV_OK);
	assert_int_equal(drv_sql_commit(store_db(s)), DRV_OK);
	assert_int_equal(store_agent_get(s, "b1", &a), DRV_OK);
	assert_int_equal(a.report_seq, 6);
}

static void enroll_tokens(void **state)
{
	struct store *s = *state;
	char tok[DRV_SECRET_MAX], other[DRV_SECRET_MAX], web[DRV_SECRET_MAX], name[64], why[128];
	uint8_t h[DRV_SECRET_HASH_LEN];
	json_t *list;

	assert_int_equal(drv_secret_new("drvenr", tok, sizeof(tok)), DRV_OK);
	assert_int_equal(drv_secret_new("drvenr", other, sizeof(other)), DRV_OK);
	assert_int_equal(drv_secret_new("drvenr", web, sizeof(web)), DRV_OK);
	assert_int_equal(drv_secret_hash(tok, h), DRV_OK);
	assert_int_equal(
	        store_enroll_token_add(s, &(struct store_token){"fleet", 5000, 2, NULL}, h, 1000),
	        DRV_OK);
	assert_int_equal(
	        store_enroll_token_add(s, &(struct store_token){"fleet", 0, 0, NULL}, h, 1000),
	        DRV_EEXIST);
	assert_int_equal(store_enroll_token_use(s, tok, "{}", 2000, name, why, sizeof(why)),
	                 DRV_OK);
	assert_string_equal(name, "fleet");
	assert_int_equal(store_enroll_token_use(s, other, "{}", 2000, name, why, sizeof(why)),
	                 DRV_EPERM);
	assert_int_equal(store_enroll_token_use(s, tok, "{}", 6000, name, why, sizeof(why)),
	                 DRV_EPERM); /* expired */
	assert_non_null(strstr(why, "expired"));
	assert_int_equal(store_enroll_token_use(s, "", "{}", 2000, name, why, sizeof(why)),
	                 DRV_EPERM);
	/* use limit 2: the second use is the last */
	assert_int_equal(store_enroll_token_use(s, tok, "{}", 2000, name, why, sizeof(why)),
	                 DRV_OK);
	assert_int_equal(store_enroll_token_use(s, tok, "{}", 2000, name, why, sizeof(why)),
	                 DRV_EPERM);
	assert_non_null(strstr(why, "used up"));
	/* label rules, then revocation */
	assert_int_equal(drv_secret_hash(web, h), DRV_OK);
	assert_int_equal(
	        store_enroll_token_add(
	                s, &(struct store_token){"web", 0, 0, "{\"tier\":[\"web\"]}"}, h, 1000),
	        DRV_OK);
	assert_int_equal(
	        store_enroll_token_use(s, web, "{\"tier\":\"db\"}", 2000, name, why, sizeof(why)),
	        DRV_EPERM);
	assert_non_null(strstr(why, "tier=db"));
	assert_int_equal(store_enroll_token_use(s, web, "{\"tier\":\"web\",\"zone\":\"a\"}", 2000,
	                                        name, why, sizeof(why)),
	                 DRV_OK);
	assert_int_equal(store_enroll_token_revoke(s, "web", 3000), DRV_OK);
	assert_int_equal(store_enroll_token_revoke(s, "web", 4000), DRV_OK);
	assert_int_equal(store_enroll_token_revoke(s, "nope", 4000), DRV_ENOENT);
	assert_int_equal(
	        store_enroll_token_use(s, web, "{\"tier\":\"web\"}", 5000, name, why, sizeof(why)),
	        DRV_EPERM);
	assert_non_null(strstr(why, "revoked"));
	assert_int_equal(store_enroll_token_list(s, 2000, &list), DRV_OK);
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "state")),
	                    "used-up");
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "state")),
	                    "revoked");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 1), "revoked_ms")),
	                 3000);
	json_decref(list);
}

/* store_begin groups changes; an inner one (a hook that queues work while a
 * report is being stored) is a savepoint that commits or rolls back alone. */
static void transactions_nest(void **state)
{
	struct store *s = *state;
	struct store_agent a;
	uint64_t seq;
	char st[16];

	add_agent(s, "t1", AGENT_ACCEPTED);
	assert_int_equal(store_begin(s), DRV_OK);
	assert_int_equal(store_agent_report_seq(s, "t1", 5), DRV_OK);
	assert_int_equal(enqueue(s, "t1", "inner", 999999, &seq), DRV_OK); /* nested */
	assert_int_equal(store_begin(s), DRV_OK);
	assert_int_equal(store_agent_report_seq(s, "t1", 9), DRV_OK);
	store_rollback(s); /* only the inner change goes */
	assert_int_equal(store_commit(s), DRV_OK);
	assert_int_equal(store_agent_get(s, "t1", &a), DRV_OK);
	assert_int_equal(a.report_seq, 5);
	assert_int_equal(store_instr_state(s, "t1", seq, st), DRV_OK);
	assert_string_equal(st, "queued");

	/* a rolled-back outer transaction takes its inner ones with it */
	assert_int_equal(store_begin(s), DRV_OK);
	assert_int_equal(enqueue(s, "t1", "gone", 999999, &seq), DRV_OK);
	assert_int_equal(store_agent_report_seq(s, "t1", 6), DRV_OK);
	store_rollback(s);
	store_rollback(s); /* nothing open: no effect */
	assert_int_equal(store_instr_state(s, "t1", seq, st), DRV_ENOENT);
	assert_int_equal(store_agent_get(s, "t1", &a), DRV_OK);
	assert_int_equal(a.report_seq, 5);

	/* inside a transaction another caller opened: a savepoint too */
	assert_int_equal(drv_sql_begin(store_db(s)), DRV_OK);
	assert_int_equal(store_begin(s), DRV_OK);
	assert_int_equal(store_agent_report_seq(s, "t1", 7), DRV_OK);
	assert_int_equal(store_commit(s), DRV_OK);
	assert_true(drv_sql_in_tx(store_db(s))); /* theirs is still open */
	assert_int_equal(drv_sql_commit(store_db(s)), DRV_OK);
	assert_int_equal(store_agent_get(s, "t1", &a), DRV_OK);
	assert_int_equal(a.report_seq, 7);
	assert_int_equal(store_commit(s), DRV_EINVAL); /* nothing open */

	/* and the store works on as before */
	assert_int_equal(enqueue(s, "t1", "after", 999999, &seq), DRV_OK);
	assert_int_equal(store_instr_state(s, "t1", seq, st), DRV_OK);
}

/* Expiry runs its callback inside its transaction; queueing from there (the
 * sequencer replacing an expired step) must work. */
static struct store *expire_store;
static uint64_t requeued_seq;

static void requeue_cb(void *arg, const char *agent_id, uint64_t seq, const char *step_id)
{
	(void)arg;
	(void)seq;
	(void)step_id;
	assert_int_equal(enqueue(expire_store, agent_id, "replacement", 999999, &requeued_seq),
	                 DRV_OK);
}

static void expire_can_queue(void **state)
{
	struct store *s = *state;
	uint64_t seq;
	size_t n = 0;
	char st[16];

	add_agent(s, "e1", AGENT_ACCEPTED);
	assert_int_equal(enqueue(s, "e1", "old", 2000, &seq), DRV_OK);
	expire_store = s;
	assert_int_equal(store_instr_expire(s, 5000, requeue_cb, NULL, &n), DRV_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_instr_state(s, "e1", seq, st), DRV_OK);
	assert_string_equal(st, "expired");
	assert_int_equal(store_instr_state(s, "e1", requeued_seq, st), DRV_OK);
	assert_string_equal(st, "queued");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(agents, setup, teardown),
	        cmocka_unit_test_setup_teardown(queue, setup, teardown),
	        cmocka_unit_test_setup_teardown(take, setup, teardown),
	        cmocka_unit_test_setup_teardown(take_many, setup, teardown),
	        cmocka_unit_test_setup_teardown(enqueue_behind_rows, setup, teardown),
	        cmocka_unit_test_setup_teardown(enqueue_many, setup, teardown),
	        cmocka_unit_test_setup_teardown(enqueue_many_fenced, setup, teardown),
	        cmocka_unit_test_setup_teardown(enqueue_many_raced, setup, teardown),
	        cmocka_unit_test_setup_teardown(enqueue_many_texts, setup, teardown),
	        cmocka_unit_test_setup_teardown(enqueue_many_big, setup, teardown),
	        cmocka_unit_test_setup_teardown(report_and_ack, setup, teardown),
	        cmocka_unit_test_setup_teardown(reports_of_a_batch, setup, teardown),
	        cmocka_unit_test_setup_teardown(seq_floor_and_pickup, setup, teardown),
	        cmocka_unit_test_setup_teardown(enroll_tokens, setup, teardown),
	        cmocka_unit_test_setup_teardown(enroll_token_create, setup, teardown),
	        cmocka_unit_test_setup_teardown(enroll_token_exists_in_batch, setup, teardown),
	        cmocka_unit_test_setup_teardown(transactions_nest, setup, teardown),
	        cmocka_unit_test_setup_teardown(expire_can_queue, setup, teardown),
	        cmocka_unit_test_setup_teardown(expire_pending, setup, teardown),
	};
	if (drv_crypto_init() != DRV_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
