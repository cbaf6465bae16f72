/* test_events.c: the events hub's reading side: frames built from the
 * stored text (byte for byte what jansson made of it), readers that read
 * in order, resume, filter, read nothing for a keep-alive and gather a
 * burst of commits into few reads; on PostgreSQL, the leader's NOTIFY
 * after its writers' commits, and a follower's hub woken by it (ha_events). On
 * a SQLite file, and on PostgreSQL under pg_run.sh (store_target.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "events.h"
#include "events_cursor.h"
#include "events_read.h"
#include "log.h"
#include "ha.h"
#include "ha_events.h"
#include "schema.h"
#include "sqldb.h"
#include "store_target.h"

static char dir[64];
static char path[512];

struct fx {
	struct drv_sql *db;     /* the hub's (readers') connection */
	struct drv_sql *writer; /* a publisher's, as the link's store is */
	struct drv_events *ev;
};

static int open_db(struct drv_sql **out)
{
	size_t n;
	const struct drv_sql_migration *mig = drv_schema_migrations(&n);

	return drv_sql_open(path, mig, n, out) == DRV_OK ? 0 : -1;
}

static int setup_keepalive(void **state, int keepalive_ms)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	snprintf(dir, sizeof(dir), "/tmp/drv-events-XXXXXX");
	if (fx == NULL || mkdtemp(dir) == NULL)
		return -1;
	if (store_target(path, sizeof(path), dir, "t.db") != 0 || open_db(&fx->db) != 0 ||
	    open_db(&fx->writer) != 0)
		return -1;
	if (drv_events_new(fx->db, keepalive_ms, &fx->ev) != DRV_OK)
		return -1;
	*state = fx;
	return 0;
}

static int setup(void **state)
{
	return setup_keepalive(state, 3600 * 1000);
}

static int setup_ping(void **state)
{
	return setup_keepalive(state, 50);
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[160];

	drv_events_free(fx->ev);
	drv_sql_close(fx->writer);
	drv_sql_close(fx->db);
	free(fx);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- frames */

/* The frame as the stream made it before drv_events_frame: data parsed and
 * the whole object dumped by jansson. */
static char *jansson_frame(int64_t id, int64_t at_ms, const char *kind, const char *dep,
                           const char *agent, const char *data)
{
	json_t *d = json_loads(data, 0, NULL);
	json_t *o;
	char *text, *out;

	if (!d)
		d = json_object();
	o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:o}", "id", (json_int_t)id, "at_ms",
	              (json_int_t)at_ms, "kind", kind, "deployment_id", dep, "agent_id", agent,
	              "data", d);
	assert_non_null(o);
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	assert_non_null(text);
	assert_true(asprintf(&out, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)id,
	                     drv_events_kind_ok(kind) ? kind : "message", text) > 0);
	free(text);
	return out;
}

static void check_frame(const char *kind, const char *dep, const char *agent, const char *data)
{
	struct drv_events_buf b = {0};
	char *want = jansson_frame(42, 1764137400123LL, kind, dep, agent, data);

	assert_int_equal(drv_events_frame(&b, 42, 1764137400123LL, kind, dep, agent, data), DRV_OK);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.p, want, b.len);
	free(want);
	free(b.p);
}

/* What the inserts store (json_dumps, compact) framed as jansson framed it. */
static void test_frame_as_jansson(void **state)
{
	static const char *const objects[] = {
	        "{}",
	        "{\"tier\":\"core\"}",
	        "{\"n\":1,\"x\":-2.5,\"ok\":true,\"none\":null,\"list\":[1,\"a\",{\"b\":[]}]}",
	        "{\"msg\":\"quote \\\" backslash \\\\ tab \\t nl \\n ctl \\u0001 slash /\"}",
	        "{\"utf8\":\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80\",\"big\":9007199254740993}",
	        "{\"z\":1,\"a\":2,\"m\":{\"y\":3,\"b\":4}}",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		json_t *o = json_loads(objects[i], 0, NULL);
		char *stored;

		assert_non_null(o);
		stored = json_dumps(o, JSON_COMPACT); /* as drv_events_insert stores it */
		json_decref(o);
		check_frame("host", "dep-42", "web-1", stored);
		check_frame("tier_done", "", "", stored);
		free(stored);
	}
}

/* Text the inserts never write goes through jansson, as before. */
static void test_frame_odd_text(void **state)
{
	(void)state;
	check_frame("host", "dep-42", "web-1", "not json");
	check_frame("host", "dep-42", "web-1", "[1,2]");
	check_frame("host", "dep \"quoted\" \\", "tab\there", "{\"a\":1}");
	check_frame("host", "d\xc3\xa9p", "", "{\"a\":1}");
	check_frame("Bad Kind", "d", "a", "{\"a\":1}"); /* event: message */
	check_frame("host", "d", "a", "{\"a\":\n1}");   /* a line break never reaches a data line */
}

/* --------------------------------------------------------------- cursors */

static int parse(const char *text, struct drv_events_cursor *c)
{
	const char *why = NULL;
	int rc = drv_events_cursor_parse(text, strlen(text), c, &why);

	if (rc != DRV_OK)
		assert_non_null(why);
	return rc;
}

/* What Last-Event-ID may be: a bare id (older clients) or a cursor; all
 * else refused, bounds included. */
static void test_cursor_parse(void **state)
{
	struct drv_events_cursor c;
	char big[DRV_EVENTS_CURSOR_LEN + 64];
	const char *refused[] = {"",
	                         "x1",
	                         "-1",
	                         "+5",
	                         " 5",
	                         "5 ",
	                         "42~",
	                         "42~,",
	                         "42~41,",
	                         "42~0",
	                         "42~42",
	                         "42~41-40",
	                         "42~30,30",
	                         "42~30,20",
	                         "42~1--3",
	                         "42x",
	                         "9223372036854775808",
	                         "42~5-9223372036854775807",
	                         "5000~1-1000,1002",
	                         NULL};

	(void)state;
	assert_int_equal(parse("0", &c), DRV_OK);
	assert_int_equal(parse("42", &c), DRV_OK);
	assert_int_equal(c.pos, 42);
	assert_int_equal(c.n_holes, 0);
	assert_int_equal(parse("1042~1037,1040-1041", &c), DRV_OK);
	assert_int_equal(c.pos, 1042);
	assert_int_equal(c.n_holes, 2);
	assert_int_equal(c.holes[0].lo, 1037);
	assert_int_equal(c.holes[0].hi, 1037);
	assert_int_equal(c.holes[1].lo, 1040);
	assert_int_equal(c.holes[1].hi, 1041);
	assert_int_equal(parse("9223372036854775807", &c), DRV_OK);
	assert_int_equal(parse("5000~1-999,1001", &c), DRV_OK); /* 1,000 ids */
	for (int i = 0; refused[i] != NULL; i++) {
		c.pos = -7;
		assert_int_equal(parse(refused[i], &c), DRV_EINVAL);
		assert_int_equal(c.pos, -7); /* not written */
	}
	/* 64 ranges, not 65; nothing longer than the cap */
	size_t n = (size_t)snprintf(big, sizeof(big), "100000");
	for (int i = 0; i < DRV_EVENTS_CURSOR_HOLES; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%c%d", i ? ',' : '~', 2 * i + 1);
	assert_int_equal(parse(big, &c), DRV_OK);
	assert_int_equal(c.n_holes, DRV_EVENTS_CURSOR_HOLES);
	snprintf(big + n, sizeof(big) - n, ",999");
	assert_int_equal(parse(big, &c), DRV_EINVAL);
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(parse(big, &c), DRV_ETOOBIG);
}

/* The edges a client can reach: leading zeros (the length cap bounds
 * them), the largest numbers, the exact length cap, 1,000 ids exactly. */
static void test_cursor_edges(void **state)
{
	struct drv_events_cursor c;
	char big[DRV_EVENTS_CURSOR_LEN + 2];

	(void)state;
	assert_int_equal(parse("007~01-02", &c), DRV_OK);
	assert_int_equal(c.pos, 7);
	assert_int_equal(c.holes[0].lo, 1);
	assert_int_equal(c.holes[0].hi, 2);
	assert_int_equal(parse("9223372036854775807~9223372036854775806", &c), DRV_OK);
	assert_int_equal(c.holes[0].lo, INT64_MAX - 1);
	assert_int_equal(parse("9223372036854775807~9223372036853775807-9223372036853776806", &c),
	                 DRV_OK); /* 1,000 ids */
	assert_int_equal(parse("9223372036854775807~9223372036853775807-9223372036853776807", &c),
	                 DRV_EINVAL);
	assert_int_equal(parse("18446744073709551616", &c), DRV_EINVAL); /* 2^64 */
	assert_int_equal(parse("42~1-2-3", &c), DRV_EINVAL);
	assert_int_equal(parse("42~1,,2", &c), DRV_EINVAL);
	assert_int_equal(parse("42~-1", &c), DRV_EINVAL);
	assert_int_equal(parse("0~", &c), DRV_EINVAL);
	assert_int_equal(parse("1~0", &c), DRV_EINVAL);
	assert_int_equal(parse("5~4,4", &c), DRV_EINVAL); /* the same id twice */
	assert_int_equal(parse("5~3-4,4", &c), DRV_EINVAL);
	/* exactly the cap (leading zeros), then one more */
	memset(big, '0', DRV_EVENTS_CURSOR_LEN);
	memcpy(big + DRV_EVENTS_CURSOR_LEN - 4, "42~7", 4);
	assert_int_equal(drv_events_cursor_parse(big, DRV_EVENTS_CURSOR_LEN, &c, NULL), DRV_OK);
	assert_int_equal(c.pos, 42);
	assert_int_equal(c.n_holes, 1);
	big[DRV_EVENTS_CURSOR_LEN] = '8';
	assert_int_equal(drv_events_cursor_parse(big, DRV_EVENTS_CURSOR_LEN + 1, &c, NULL),
	                 DRV_ETOOBIG);
	/* the text is read to len only: no NUL needed, none looked for */
	assert_int_equal(drv_events_cursor_parse("42~7x", 4, &c, NULL), DRV_OK);
	assert_int_equal(drv_events_cursor_parse("42~7", 3, &c, NULL), DRV_EINVAL);
}

/* What a stream writes: ascending, and within the bounds (the highest
 * holes kept) so that it always parses back. */
static void test_cursor_format(void **state)
{
	struct drv_events_range h[2 * DRV_EVENTS_CURSOR_HOLES];
	struct drv_events_cursor c;
	char out[DRV_EVENTS_CURSOR_LEN + 1];

	(void)state;
	drv_events_cursor_format(42, NULL, 0, out, sizeof(out));
	assert_string_equal(out, "42");
	h[0] = (struct drv_events_range){1040, 1041};
	h[1] = (struct drv_events_range){1037, 1037};
	h[2] = (struct drv_events_range){1043, 1050}; /* above the position: clipped away */
	drv_events_cursor_format(1042, h, 3, out, sizeof(out));
	assert_string_equal(out, "1042~1037,1040-1041");
	/* too many: the lowest are left out */
	for (int i = 0; i < 2 * DRV_EVENTS_CURSOR_HOLES; i++)
		h[i] = (struct drv_events_range){10 * i + 1, 10 * i + 2};
	drv_events_cursor_format(5000, h, 2 * DRV_EVENTS_CURSOR_HOLES, out, sizeof(out));
	assert_int_equal(parse(out, &c), DRV_OK);
	assert_int_equal(c.n_holes, DRV_EVENTS_CURSOR_HOLES);
	assert_int_equal(c.holes[0].lo, 10 * DRV_EVENTS_CURSOR_HOLES + 1);
	/* too wide: the top 1,000 ids */
	h[0] = (struct drv_events_range){10, 3000};
	h[1] = (struct drv_events_range){1, 5};
	drv_events_cursor_format(4000, h, 2, out, sizeof(out));
	assert_string_equal(out, "4000~2001-3000");
	/* the widest numbers still fit */
	for (int i = 0; i < DRV_EVENTS_CURSOR_HOLES; i++)
		h[i] = (struct drv_events_range){INT64_MAX - 100 + i, INT64_MAX - 100 + i};
	drv_events_cursor_format(INT64_MAX, h, DRV_EVENTS_CURSOR_HOLES, out, sizeof(out));
	assert_int_equal(parse(out, &c), DRV_OK);
	assert_int_equal(c.n_holes, DRV_EVENTS_CURSOR_HOLES);
}

/* ---------------------------------------------------------------- readers */

/* Rows of several deployments and agents in one statement (the link's
 * reports of a batch): in order, and each data object stored as the text
 * jansson made of it (what drv_events_insert stores, and the frames'
 * fast path expects). */
static void test_insert_rows(void **state)
{
	static const char *const objects[] = {
	        "{}",
	        "{\"n\":1,\"x\":-2.5,\"ok\":true,\"none\":null,\"list\":[1,\"a\",{\"b\":[]}]}",
	        "{\"msg\":\"quote \\\" backslash \\\\ tab \\t nl \\n ctl \\u0001 slash /\"}",
	        "{\"utf8\":\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80\",\"big\":9007199254740993}",
	        "{\"z\":1,\"a\":2,\"m\":{\"y\":3,\"b\":4}}",
	};
	enum { N = sizeof(objects) / sizeof(objects[0]) };
	struct fx *fx = *state;
	char *want[N];
	json_t *rows = json_array();
	struct drv_sql_stmt *st;
	char *text;
	size_t i = 0;

	for (i = 0; i < N; i++) {
		json_t *o = json_loads(objects[i], 0, NULL);
		char dep[16], agent[16];

		assert_non_null(o);
		want[i] = json_dumps(o, JSON_COMPACT);
		snprintf(dep, sizeof(dep), "dep-%zu", i % 2);
		snprintf(agent, sizeof(agent), "a-%zu", i);
		json_array_append_new(rows, json_pack("[s, s, o]", dep, agent, o));
	}
	text = json_dumps(rows, JSON_COMPACT);
	json_decref(rows);
	assert_int_equal(drv_events_insert_rows(fx->writer, "report", text), DRV_OK);
	free(text);
	assert_int_equal(drv_sql_prepare(fx->db,
	                                 "SELECT kind, deployment_id, agent_id, data FROM events"
	                                 " ORDER BY id",
	                                 &st),
	                 DRV_OK);
	for (i = 0; drv_sql_step(st) == DRV_SQL_ROW; i++) {
		char dep[16], agent[16];

		assert_true(i < N);
		snprintf(dep, sizeof(dep), "dep-%zu", i % 2);
		snprintf(agent, sizeof(agent), "a-%zu", i);
		assert_string_equal(drv_sql_col_text(st, 0), "report");
		assert_string_equal(drv_sql_col_text(st, 1), dep);
		assert_string_equal(drv_sql_col_text(st, 2), agent);
		assert_string_equal(drv_sql_col_text(st, 3), want[i]);
		free(want[i]);
	}
	drv_sql_finalize(st);
	assert_int_equal(i, N);
	assert_int_equal(drv_events_insert_rows(fx->writer, "Bad Kind", "[]"), DRV_EINVAL);
}

static void insert(struct fx *fx, const char *dep, int n)
{
	json_t *d = json_pack("{s:i}", "n", n);

	assert_int_equal(drv_events_insert(fx->writer, "host", dep, "a1", d, NULL), DRV_OK);
	json_decref(d);
}

/* Everything a reader sends until it ends (follow=0), into *text. */
static void drain(struct drv_events_reader *r, struct drv_events_buf *text)
{
	char chunk[700]; /* smaller than a batch: frames cut across reads */
	ssize_t n;

	while ((n = drv_events_reader_next(r, chunk, sizeof(chunk))) > 0)
		assert_int_equal(drv_events_buf_add(text, chunk, (size_t)n), DRV_OK);
	assert_int_equal(drv_events_buf_add(text, "", 1), DRV_OK);
}

/* The "n" of each data line, in order, into ns; the count. */
static int data_ns(const char *text, int *ns, int max)
{
	int count = 0;

	for (const char *p = strstr(text, "data: "); p; p = strstr(p + 1, "data: ")) {
		json_t *o = json_loadb(p + 6, strcspn(p + 6, "\n"), 0, NULL);

		assert_non_null(o);
		assert_true(count < max);
		ns[count++] =
		        (int)json_integer_value(json_object_get(json_object_get(o, "data"), "n"));
		json_decref(o);
	}
	return count;
}

/* The "n" of the only data line in text. */
static int data_ns_one(const char *text)
{
	int ns[2];

	assert_int_equal(data_ns(text, ns, 2), 1);
	return ns[0];
}

static void test_reader_order_filter_resume(void **state)
{
	struct fx *fx = *state;
	struct drv_events_reader_config c = {.head = "retry: 2000\n\n"};
	struct drv_events_reader *r;
	struct drv_events_reader_stats st;
	struct drv_events_buf text = {0};
	int ns[300], count;

	for (int i = 0; i < 250; i++)
		insert(fx, i % 2 ? "d2" : "d1", i);
	drv_events_notify(fx->ev);
	snprintf(c.filter.deployment, sizeof(c.filter.deployment), "d1");
	assert_int_equal(drv_events_reader_new(fx->ev, &c, &r), DRV_OK);
	drain(r, &text);
	drv_events_reader_stats(r, &st);
	drv_events_reader_free(r);
	assert_true(strncmp(text.p, "retry: 2000\n\n", 13) == 0);
	count = data_ns(text.p, ns, 300);
	assert_int_equal(count, 125);
	for (int i = 0; i < count; i++)
		assert_int_equal(ns[i], 2 * i);
	assert_int_equal(st.reads, 2); /* 100 and 25: a batch per read, not an event */

	/* resume after the 10th d1 event (id 19): the rest, once each */
	c.after_id = 19;
	c.head = NULL;
	text.len = 0;
	assert_int_equal(drv_events_reader_new(fx->ev, &c, &r), DRV_OK);
	drain(r, &text);
	drv_events_reader_free(r);
	count = data_ns(text.p, ns, 300);
	assert_int_equal(count, 115);
	assert_int_equal(ns[0], 20);
	free(text.p);
}

/* A keep-alive goes out without reading the table again. */
static void test_keepalive_reads_nothing(void **state)
{
	struct fx *fx = *state;
	struct drv_events_reader_config c = {.follow = true};
	struct drv_events_reader *r;
	struct drv_events_reader_stats st;
	char chunk[64];
	ssize_t n;

	assert_int_equal(drv_events_reader_new(fx->ev, &c, &r), DRV_OK);
	for (int i = 0; i < 3; i++) {
		n = drv_events_reader_next(r, chunk, sizeof(chunk));
		assert_int_equal(n, 14);
		assert_memory_equal(chunk, ": keep-alive\n\n", 14);
	}
	drv_events_reader_stats(r, &st);
	assert_int_equal(st.reads, 1); /* the first, at once */
	insert(fx, "d1", 7);
	drv_events_notify(fx->ev);
	n = drv_events_reader_next(r, chunk, sizeof(chunk));
	assert_true(n > 0 && strncmp(chunk, "id: 1\n", 6) == 0);
	drv_events_reader_stats(r, &st);
	assert_int_equal(st.reads, 2);
	drv_events_reader_free(r);
}

#define BURST     300
#define GATHER_MS 20

static void *publish_burst(void *arg)
{
	struct fx *fx = arg;

	for (int i = 0; i < BURST; i++) {
		insert(fx, "d1", i);
		drv_events_notify(fx->ev); /* a wake-up per commit, as the link's */
	}
	return NULL;
}

/* Commits that come faster than gather_ms: every event once, in order, and
 * no two reads closer than gather_ms unless the first was a full batch. */
static void test_reader_gathers_a_burst(void **state)
{
	struct fx *fx = *state;
	struct drv_events_reader_config c = {.follow = true, .gather_ms = GATHER_MS};
	struct drv_events_reader *r;
	struct drv_events_reader_stats st;
	struct drv_events_buf text = {0};
	char chunk[4096];
	pthread_t t;
	int ns[BURST + 1], count = 0;
	ssize_t n;

	assert_int_equal(drv_events_reader_new(fx->ev, &c, &r), DRV_OK);
	assert_int_equal(pthread_create(&t, NULL, publish_burst, fx), 0);
	while (count < BURST && (n = drv_events_reader_next(r, chunk, sizeof(chunk))) > 0) {
		assert_int_equal(drv_events_buf_add(&text, chunk, (size_t)n), DRV_OK);
		/* count whole frames only */
		count = 0;
		for (const char *p = text.p; (p = memchr(p, '\n', text.p + text.len - p)) != NULL;
		     p++) {
			if (p + 1 < text.p + text.len && p[1] == '\n')
				count++;
		}
	}
	pthread_join(t, NULL);
	drv_events_reader_stats(r, &st);
	drv_events_reader_free(r);
	assert_int_equal(drv_events_buf_add(&text, "", 1), DRV_OK);
	assert_int_equal(data_ns(text.p, ns, BURST + 1), BURST);
	for (int i = 0; i < BURST; i++)
		assert_int_equal(ns[i], i);
	assert_true(st.reads >= 1);
	if (st.min_gap_ms != INT64_MAX)
		assert_true(st.min_gap_ms >= GATHER_MS);
	print_message("burst of %d commits: %llu reads\n", BURST, (unsigned long long)st.reads);
	free(text.p);
}

/* ------------------------------------------------------------ PostgreSQL */

static PGconn *listener(void)
{
	PGconn *c = PQconnectdb(getenv("DRV_TEST_PG"));
	PGresult *res;

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	res = PQexec(c, "LISTEN " DRV_EVENTS_CHANNEL);
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	return c;
}

/* Notifications on c after a round trip (what was sent before it is in). */
static int notes_now(PGconn *c)
{
	PGresult *res = PQexec(c, "SELECT 1");
	PGnotify *n;
	int count = 0;

	PQclear(res);
	while ((n = PQnotifies(c)) != NULL) {
		assert_string_equal(n->relname, DRV_EVENTS_CHANNEL);
		PQfreemem(n);
		count++;
	}
	return count;
}

/* Wait (bounded) for the first notification; then count what came. */
static int notes_wait(PGconn *c)
{
	int count = 0;

	for (int i = 0; i < 300 && count == 0; i++) {
		struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
		PGnotify *n;

		poll(&p, 1, 100);
		PQconsumeInput(c);
		while ((n = PQnotifies(c)) != NULL) {
			PQfreemem(n);
			count++;
		}
	}
	return count + notes_now(c);
}

/* The leader announces what its writers woke the streams for, after their
 * COMMIT: an insert alone (in a transaction or committed) announces
 * nothing; the wake-up that follows a commit does. */
static void test_pg_leader_announces(void **state)
{
	struct fx *fx = *state;
	struct ha_events *h;
	PGconn *c;

	if (!store_target_pg())
		skip();
	drv_ha_set(true, 1, ""); /* the leader */
	c = listener();
	assert_int_equal(ha_events_start(path, fx->ev, 3600 * 1000, &h), DRV_OK);
	assert_int_equal(drv_sql_begin(fx->writer), DRV_OK);
	insert(fx, "d1", 1);
	assert_int_equal(notes_now(c), 0); /* not committed: nothing announced */
	assert_int_equal(drv_sql_commit(fx->writer), DRV_OK);
	assert_int_equal(notes_now(c), 0); /* the inserts themselves never notify */
	drv_events_notify(fx->ev);         /* what a writer does after its COMMIT */
	assert_true(notes_wait(c) >= 1);
	ha_events_stop(h);
	PQfinish(c);
}

/* A follower's hub is woken by the leader's NOTIFY alone (sent here on the
 * writer's connection, as the leader's ha_events does): no local wake-up,
 * the fallback poll an hour away. */
static void test_pg_follower_woken(void **state)
{
	struct fx *fx = *state;
	struct ha_events *h;
	bool closing;
	uint64_t g0;

	if (!store_target_pg())
		skip();
	drv_ha_set(false, 0, ""); /* a follower */
	assert_int_equal(ha_events_start(path, fx->ev, 3600 * 1000, &h), DRV_OK);
	g0 = drv_events_gen(fx->ev, &closing);
	insert(fx, "d1", 1);
	assert_int_equal(drv_sql_exec(fx->writer, "NOTIFY " DRV_EVENTS_CHANNEL), DRV_OK);
	assert_true(drv_events_wait(fx->ev, g0, drv_mono_ms() + 30000));
	assert_int_not_equal(drv_events_gen(fx->ev, &closing), g0);
	ha_events_stop(h);
	drv_ha_set(true, 1, "");
}

/* ------------------------------------------------------------ late commits */

/* The next piece of a following reader's stream that is not a keep-alive
 * (at most a few: the keep-alive is 50 ms), NUL-terminated, into out. */
static void next_frames(struct drv_events_reader *r, char *out, size_t cap)
{
	ssize_t n = -1;

	for (int i = 0; i < 5; i++) {
		n = drv_events_reader_next(r, out, cap - 1);
		assert_true(n > 0);
		out[n] = '\0';
		if (strncmp(out, ": keep-alive", 12) != 0)
			return;
	}
	fail_msg("only keep-alives: %s", out);
}

/* An event insert on db in a transaction left open (the caller commits or
 * rolls back); its id. */
static int64_t insert_open(struct drv_sql *db, int n)
{
	json_t *d = json_pack("{s:i}", "n", n);
	int64_t id;

	assert_int_equal(drv_sql_begin(db), DRV_OK);
	assert_int_equal(drv_events_insert(db, "host", "d1", "a1", d, &id), DRV_OK);
	json_decref(d);
	return id;
}

/* PostgreSQL: transaction A (on fx->writer) takes the lower id and stays
 * open, B (on *b) takes the next and commits; a following reader from
 * before A. */
static struct drv_events_reader *late_pair(struct fx *fx, struct drv_sql **b, int64_t *a_id,
                                           int64_t *b_id)
{
	struct drv_events_reader_config c = {.follow = true, .gather_ms = 1};
	struct drv_events_reader *r;

	assert_int_equal(open_db(b), 0);
	*a_id = insert_open(fx->writer, 1);
	*b_id = insert_open(*b, 2);
	assert_int_equal(drv_sql_commit(*b), DRV_OK);
	assert_true(*a_id < *b_id);
	drv_events_notify(fx->ev);
	c.after_id = *a_id - 1;
	assert_int_equal(drv_events_reader_new(fx->ev, &c, &r), DRV_OK);
	return r;
}

/* The stream sends B; A commits: the stream's next read sends A (after B,
 * under B's id on its "id:" line, its own id in data). */
static void test_pg_late_commit_sent(void **state)
{
	struct fx *fx = *state;
	struct drv_events_reader_stats st;
	struct drv_events_reader *r;
	struct drv_sql *b;
	char out[2048], want[64];
	int64_t a_id, b_id;

	if (!store_target_pg())
		skip();
	r = late_pair(fx, &b, &a_id, &b_id);
	next_frames(r, out, sizeof(out));
	/* B's frame: the position and the hole below it (its cursor) */
	snprintf(want, sizeof(want), "id: %lld~%lld\n", (long long)b_id, (long long)a_id);
	assert_true(strncmp(out, want, strlen(want)) == 0);
	assert_int_equal(data_ns_one(out), 2);
	snprintf(want, sizeof(want), "id: %lld\n", (long long)b_id);
	drv_events_reader_stats(r, &st);
	assert_int_equal(st.holes, 1); /* a_id */

	assert_int_equal(drv_sql_commit(fx->writer), DRV_OK);
	drv_events_notify(fx->ev);
	next_frames(r, out, sizeof(out));
	assert_true(strncmp(out, want, strlen(want)) == 0); /* the position: B's */
	snprintf(want, sizeof(want), "data: {\"id\":%lld,", (long long)a_id);
	assert_non_null(strstr(out, want));
	assert_int_equal(data_ns_one(out), 1);
	drv_events_reader_stats(r, &st);
	assert_int_equal(st.late, 1);
	assert_int_equal(st.holes, 0);
	drv_events_reader_free(r);
	drv_sql_close(b);
}

/* The "id:" text of the first frame in text, into id. */
static void id_line(const char *text, char *id, size_t cap)
{
	const char *p = strstr(text, "id: ");

	assert_non_null(p);
	snprintf(id, cap, "%.*s", (int)strcspn(p + 4, "\n"), p + 4);
}

/* A reader resuming from the "id:" text lei, as events_api.c makes it. */
static struct drv_events_reader *resume(struct fx *fx, const char *lei, bool follow)
{
	struct drv_events_reader_config c = {.follow = follow, .gather_ms = 1};
	struct drv_events_cursor cur;
	struct drv_events_reader *r;

	assert_int_equal(drv_events_cursor_parse(lei, strlen(lei), &cur, NULL), DRV_OK);
	c.after_id = cur.pos;
	c.n_holes = cur.n_holes;
	memcpy(c.holes, cur.holes, sizeof(c.holes));
	assert_int_equal(drv_events_reader_new(fx->ev, &c, &r), DRV_OK);
	return r;
}

/* PostgreSQL: A takes the lower id and stays open, B commits; a client
 * gets B and disconnects; A commits while it is away. The client resumes
 * with B's "id:" line (Last-Event-ID): A is sent, once, and nothing else.
 * (A client that resumes from B's bare id, as older ones do, resumes after
 * B: its stream works, A is not re-sent; since=A-1 has it.) */
static void test_pg_late_commit_while_away(void **state)
{
	struct fx *fx = *state;
	struct drv_events_reader *r;
	struct drv_events_buf text = {0};
	struct drv_sql *b;
	char out[2048], lei[DRV_EVENTS_CURSOR_LEN + 1], bare[32], want[64];
	int64_t a_id, b_id;

	if (!store_target_pg())
		skip();
	r = late_pair(fx, &b, &a_id, &b_id);
	next_frames(r, out, sizeof(out));
	assert_int_equal(data_ns_one(out), 2);
	id_line(out, lei, sizeof(lei));
	drv_events_reader_free(r); /* the client goes away */
	assert_int_equal(drv_sql_commit(fx->writer), DRV_OK);
	drv_events_notify(fx->ev);

	r = resume(fx, lei, true);
	next_frames(r, out, sizeof(out));
	assert_int_equal(data_ns_one(out), 1);
	snprintf(want, sizeof(want), "data: {\"id\":%lld,", (long long)a_id);
	assert_non_null(strstr(out, want));
	snprintf(want, sizeof(want), "id: %lld\n", (long long)b_id); /* nothing owed now */
	assert_true(strncmp(out, want, strlen(want)) == 0);
	drv_events_reader_free(r);
	r = resume(fx, lei, false); /* the same cursor again: A once more, B not */
	drain(r, &text);
	drv_events_reader_free(r);
	assert_int_equal(data_ns_one(text.p), 1);

	snprintf(bare, sizeof(bare), "%lld", (long long)b_id);
	r = resume(fx, bare, false);
	text.len = 0;
	drain(r, &text);
	drv_events_reader_free(r);
	assert_null(strstr(text.p, "data: "));
	free(text.p);
	drv_sql_close(b);
}

/* PostgreSQL: a position no id will reach (Last-Event-ID or since up to
 * 2^63-1, a cursor's holes right below it): the stream waits for events
 * like any other, its reads do not fail (no id arithmetic past int64). */
static void test_pg_far_position(void **state)
{
	static const char *const at[] = {
	        "9223372036854775807", "9223372036854775807~9223372036854775806",
	        "9223372036854775806~9223372036854774807-9223372036854775805"};
	struct fx *fx = *state;
	struct drv_events_reader_stats st;
	struct drv_events_reader *r;
	char out[256];
	ssize_t n;

	if (!store_target_pg())
		skip();
	insert(fx, "d1", 1);
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		r = resume(fx, at[i], true);
		n = drv_events_reader_next(r, out, sizeof(out) - 1); /* -1: a read failed */
		assert_true(n > 0);
		out[n] = '\0';
		assert_string_equal(out, ": keep-alive\n\n");
		drv_events_reader_stats(r, &st);
		assert_true(st.reads > 0);
		drv_events_reader_free(r);
	}
}

/* Lines of the file file that contain text. */
static int lines_with(const char *file, const char *text)
{
	char line[DRV_LOG_LINE_MAX + 2];
	FILE *f = fopen(file, "r");
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, text) != NULL;
	fclose(f);
	return n;
}

/* PostgreSQL: a cursor whose range has every other id committed (a client
 * may send any): the range splits past the holes a stream keeps and the
 * events are sent, with one warning per read, not one per hole dropped
 * (hundreds for one request). */
static void test_pg_cursor_split_logged_once(void **state)
{
	struct fx *fx = *state;
	struct drv_events_reader_stats st;
	struct drv_events_reader *r;
	struct drv_events_buf text = {0};
	struct drv_sql_stmt *q;
	char sql[128], lei[64], log[96];
	int64_t base;

	if (!store_target_pg())
		skip();
	for (int i = 0; i < 1000; i++)
		insert(fx, "d1", i);
	assert_int_equal(drv_sql_prepare(fx->writer, "SELECT min(id) FROM events", &q), DRV_OK);
	assert_int_equal(drv_sql_step(q), DRV_SQL_ROW);
	base = drv_sql_col_int64(q, 0);
	drv_sql_finalize(q);
	snprintf(sql, sizeof(sql), "DELETE FROM events WHERE (id - %lld) %% 2 = 0",
	         (long long)base);
	assert_int_equal(drv_sql_exec(fx->writer, sql), DRV_OK);
	snprintf(lei, sizeof(lei), "%lld~%lld-%lld", (long long)base + 1500, (long long)base,
	         (long long)base + 999);
	snprintf(log, sizeof(log), "%s/events.log", dir);
	assert_int_equal(drv_log_open(log), DRV_OK);
	r = resume(fx, lei, false);
	drain(r, &text);
	drv_events_reader_stats(r, &st);
	drv_events_reader_free(r);
	drv_log_close();
	free(text.p);
	assert_int_equal(st.late, 500);
	assert_true(st.given_up > 400);
	assert_int_equal(lines_with(log, "too many holes"), 1);
}

/* Commit an event "n" and read it from r: the reader's stats after. */
static struct drv_events_reader_stats commit_and_read(struct fx *fx, struct drv_events_reader *r,
                                                      int n)
{
	struct drv_events_reader_stats st;
	char out[2048];

	insert(fx, "d1", n);
	drv_events_notify(fx->ev);
	next_frames(r, out, sizeof(out));
	assert_int_equal(data_ns_one(out), n);
	drv_events_reader_stats(r, &st);
	return st;
}

/* PostgreSQL: a rolled-back transaction's id is given up once the window
 * has passed and no transaction running when it was found still runs
 * (one that is, past the window, keeps it), and a stream keeps
 * at most DRV_EVENTS_HOLES holes however many rollbacks it sees. */
static void test_pg_hole_given_up(void **state)
{
	struct fx *fx = *state;
	struct drv_events_reader_config c = {.follow = true, .gather_ms = 1, .hole_ms = 20};
	struct drv_events_reader_stats st;
	struct drv_events_reader *r;
	struct drv_sql *old;

	if (!store_target_pg())
		skip();
	assert_int_equal(drv_events_reader_new(fx->ev, &c, &r), DRV_OK);
	/* an older transaction, with an xid, open while the hole is found */
	assert_int_equal(open_db(&old), 0);
	assert_int_equal(drv_sql_begin(old), DRV_OK);
	assert_int_equal(drv_sql_exec(old, "SELECT pg_current_xact_id()"), DRV_OK);
	insert_open(fx->writer, 1);
	drv_sql_rollback(fx->writer);
	st = commit_and_read(fx, r, 2);
	assert_int_equal(st.holes, 1);
	poll(NULL, 0, 40); /* past the window (hole_ms 20) */
	st = commit_and_read(fx, r, 3);
	assert_int_equal(st.holes, 1); /* the older transaction might hold it */
	drv_sql_rollback(old);
	drv_sql_close(old);
	st = commit_and_read(fx, r, 4);
	assert_int_equal(st.holes, 0);
	assert_int_equal(st.given_up, 1);
	drv_events_reader_free(r);

	c.hole_ms = 3600 * 1000; /* none expires: the bound alone limits them */
	assert_int_equal(drv_events_tail_start(fx->ev, &c.filter, 0, &c.after_id), DRV_OK);
	assert_int_equal(drv_events_reader_new(fx->ev, &c, &r), DRV_OK);
	for (int i = 0; i < DRV_EVENTS_HOLES + 6; i++) {
		insert_open(fx->writer, 1);
		drv_sql_rollback(fx->writer);
		st = commit_and_read(fx, r, 10 + i);
	}
	assert_int_equal(st.holes, DRV_EVENTS_HOLES);
	assert_true(st.given_up >= 6);
	drv_events_reader_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_frame_as_jansson),
	        cmocka_unit_test(test_frame_odd_text),
	        cmocka_unit_test(test_cursor_parse),
	        cmocka_unit_test(test_cursor_format),
	        cmocka_unit_test(test_cursor_edges),
	        cmocka_unit_test_setup_teardown(test_insert_rows, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_reader_order_filter_resume, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_keepalive_reads_nothing, setup_ping, teardown),
	        cmocka_unit_test_setup_teardown(test_reader_gathers_a_burst, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pg_leader_announces, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pg_follower_woken, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pg_late_commit_sent, setup_ping, teardown),
	        cmocka_unit_test_setup_teardown(test_pg_late_commit_while_away, setup_ping,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_pg_hole_given_up, setup_ping, teardown),
	        cmocka_unit_test_setup_teardown(test_pg_far_position, setup_ping, teardown),
	        cmocka_unit_test_setup_teardown(test_pg_cursor_split_logged_once, setup_ping,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
