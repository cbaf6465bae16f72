/* store.c: agents, instruction queue, events and token hashes in SQLite. */
#include "store.h"

#include <jansson.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqldb.h"
#include "err.h"
#include "log.h"
#include "schema.h"
#include "enroll_rules.h"

struct store {
	struct drv_sql *db;
	unsigned depth;                  /* store_begin nesting (at most 32) */
	uint32_t nested;                 /* bit i: level i is a savepoint, not BEGIN */
	atomic_uint_fast64_t statements; /* prepared and run (store_statements) */
};

static const char *const status_names[] = {"pending", "accepted", "rejected"};

const char *store_agent_status_name(enum agent_status st)
{
	return (unsigned)st < 3 ? status_names[st] : "unknown";
}

int store_agent_status_parse(const char *name, enum agent_status *out)
{
	for (unsigned i = 0; i < 3; i++) {
		if (strcmp(name, status_names[i]) == 0) {
			*out = (enum agent_status)i;
			return DRV_OK;
		}
	}
	return DRV_EINVAL;
}

int store_open(const char *path, struct store **out)
{
	struct store *s = calloc(1, sizeof(*s));
	const struct drv_sql_migration *mig;
	size_t n;
	int rc;

	if (s == NULL)
		return DRV_ENOMEM;
	mig = drv_schema_migrations(&n);
	rc = drv_sql_open(path, mig, n, &s->db);
	if (rc != DRV_OK) {
		free(s);
		return rc;
	}
	*out = s;
	return DRV_OK;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	drv_sql_close(s->db);
	free(s);
}

uint64_t store_statements(struct store *s)
{
	return atomic_load_explicit(&s->statements, memory_order_relaxed);
}

struct drv_sql *store_db(struct store *s)
{
	return s->db;
}

/* ---- statement helpers ---- */

static int prep(struct store *s, const char *sql, struct drv_sql_stmt **st)
{
	atomic_fetch_add_explicit(&s->statements, 1, memory_order_relaxed);
	return drv_sql_cached(s->db, sql, st);
}

/* Give a statement back to the cache (reset) when done with it. */
static void done(struct store *s, struct drv_sql_stmt *st)
{
	drv_sql_done(st);
}

/* One statement without rows, from the cache (BEGIN, COMMIT, ...). A
 * COMMIT refused by the fence says DRV_EFENCED, as run() does: callers tell
 * it from a failure (store_instr_enqueue_many does not retry it). */
static int exec1(struct store *s, const char *sql)
{
	struct drv_sql_stmt *st;
	int rc = prep(s, sql, &st);

	if (rc != DRV_OK)
		return rc;
	rc = drv_sql_step(st);
	rc = rc == DRV_SQL_DONE ? DRV_OK : rc == DRV_EFENCED ? rc : DRV_EDB;
	if (rc != DRV_OK)
		drv_error("store", "statement failed", "sql=\"%s\" error=\"%s\"", sql,
		          drv_sql_errmsg(s->db));
	done(s, st);
	return rc;
}

/* Step a statement that returns no rows, then give it back. */
static int run(struct store *s, struct drv_sql_stmt *st)
{
	int rc = drv_sql_step(st);

	if (rc != DRV_SQL_DONE) {
		drv_error("store", "statement failed", "error=\"%s\"", drv_sql_errmsg(s->db));
		rc = rc == DRV_EEXIST || rc == DRV_EFENCED ? rc : DRV_EDB;
	} else {
		rc = DRV_OK;
	}
	done(s, st);
	return rc;
}

/* Run an INSERT ... ON CONFLICT DO NOTHING; DRV_EEXIST if the row existed.
 * A duplicate must not be a failed statement: PostgreSQL aborts the whole
 * transaction on one, and callers run inside transactions others share
 * (the core's group-commit batch) and go on after DRV_EEXIST. */
static int run_new(struct store *s, struct drv_sql_stmt *st)
{
	int rc = run(s, st);

	return rc == DRV_OK && drv_sql_changes(s->db) == 0 ? DRV_EEXIST : rc;
}

static void bind_text(struct drv_sql_stmt *st, int i, const char *v)
{
	drv_sql_bind_text(st, i, v ? v : "");
}

static void copy_col(struct drv_sql_stmt *st, int col, char *out, size_t cap)
{
	const char *t = drv_sql_col_text(st, col);

	snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static const char *col_text(struct drv_sql_stmt *st, int col)
{
	const char *t = drv_sql_col_text(st, col);

	return t ? (const char *)t : "";
}

/* Run st with rows_json bound as its one value: short_rc unless it changed
 * n_rows rows. */
static int run_json_rows(struct store *s, struct drv_sql_stmt *st, const char *rows_json,
                         size_t n_rows, int short_rc)
{
	int rc;

	bind_text(st, 1, rows_json);
	rc = run(s, st);
	if (rc == DRV_OK && (size_t)drv_sql_changes(s->db) != n_rows)
		rc = short_rc;
	return rc;
}

/* ---- transactions ---- */

int store_begin(struct store *s)
{
	/* a savepoint inside any open transaction, ours or another caller's */
	bool nested = drv_sql_in_tx(s->db);
	int rc;

	if (s->depth >= 32)
		return DRV_EINVAL;
	rc = exec1(s, nested ? "SAVEPOINT nest" : "BEGIN IMMEDIATE");
	if (rc != DRV_OK)
		return rc;
	s->nested = nested ? s->nested | (1u << s->depth) : s->nested & ~(1u << s->depth);
	s->depth++;
	return DRV_OK;
}

static bool top_nested(const struct store *s)
{
	return (s->nested >> (s->depth - 1)) & 1u;
}

int store_commit(struct store *s)
{
	int rc;

	if (s->depth == 0)
		return DRV_EINVAL;
	rc = exec1(s, top_nested(s) ? "RELEASE nest" : "COMMIT");
	if (rc != DRV_OK) {
		store_rollback(s);
		return rc;
	}
	s->depth--;
	return DRV_OK;
}

void store_rollback(struct store *s)
{
	if (s->depth == 0)
		return;
	if (top_nested(s)) {
		exec1(s, "ROLLBACK TO nest");
		exec1(s, "RELEASE nest");
	} else {
		exec1(s, "ROLLBACK");
	}
	s->depth--;
}

/* ---- agents ---- */

#define AGENT_COLS                                                                                 \
	"id, public_key, status, first_seen_ms, last_seen_ms, status_ms, next_seq, acked_seq,"     \
	" report_seq, enrolled_by, labels, facts, releases, agent_version, peer, proposed_labels"

static int row_to_agent(struct drv_sql_stmt *st, struct store_agent *a)
{
	memset(a, 0, sizeof(*a));
	copy_col(st, 0, a->id, sizeof(a->id));
	if (drv_pubkey_from_raw(drv_sql_col_blob(st, 1), (size_t)drv_sql_col_bytes(st, 1),
	                        &a->key) != DRV_OK ||
	    store_agent_status_parse(col_text(st, 2), &a->status) != DRV_OK) {
		drv_error("store", "corrupt agent row", "agent=%s", a->id);
		return DRV_EDB;
	}
	a->first_seen_ms = drv_sql_col_int64(st, 3);
	a->last_seen_ms = drv_sql_col_int64(st, 4);
	a->status_ms = drv_sql_col_int64(st, 5);
	a->next_seq = (uint64_t)drv_sql_col_int64(st, 6);
	a->acked_seq = (uint64_t)drv_sql_col_int64(st, 7);
	a->report_seq = (uint64_t)drv_sql_col_int64(st, 8);
	copy_col(st, 9, a->enrolled_by, sizeof(a->enrolled_by));
	copy_col(st, 14, a->peer, sizeof(a->peer));
	return DRV_OK;
}

int store_agent_get(struct store *s, const char *id, struct store_agent *out)
{
	struct store_agent a;
	struct drv_sql_stmt *st;
	int rc;

	rc = prep(s, "SELECT " AGENT_COLS " FROM agents WHERE id = ?", &st);
	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, id);
	rc = drv_sql_step(st);
	if (rc == DRV_SQL_ROW)
		rc = row_to_agent(st, &a);
	else
		rc = rc == DRV_SQL_DONE ? DRV_ENOENT : DRV_EDB;
	done(s, st);
	if (rc == DRV_OK)
		*out = a;
	return rc;
}

int store_agent_next_seqs(struct store *s, const char *ids_json, store_next_seq_fn fn, void *arg)
{
	struct drv_sql_stmt *st;
	int rc, step;

	rc = prep(s,
	          drv_sql_engine_of(s->db) == DRV_SQL_PG
	                  ? "SELECT id, next_seq FROM agents"
	                    " WHERE id IN (SELECT json_array_elements_text(?::json))"
	                  : "SELECT id, next_seq FROM agents WHERE id IN (SELECT value FROM "
	                    "json_each(?))",
	          &st);
	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, ids_json);
	while ((step = drv_sql_step(st)) == DRV_SQL_ROW)
		fn(arg, col_text(st, 0), (uint64_t)drv_sql_col_int64(st, 1));
	done(s, st);
	return step == DRV_SQL_DONE ? DRV_OK : DRV_EDB;
}

int store_agent_create(struct store *s, const struct store_agent *a, const struct store_hello *h)
{
	struct drv_sql_stmt *st;
	int rc;

	rc = prep(s,
	          "INSERT INTO agents (id, public_key, key_id, status, labels, facts, releases,"
	          " agent_version, first_seen_ms, last_seen_ms, status_ms, enrolled_by, peer,"
	          " releases_seq)"
	          " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
	          &st);
	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, a->id);
	drv_sql_bind_blob(st, 2, a->key.pk, (size_t)(DRV_PK_LEN));
	bind_text(st, 3, a->key.id);
	bind_text(st, 4, store_agent_status_name(a->status));
	bind_text(st, 5, h->labels_json ? h->labels_json : "{}");
	bind_text(st, 6, h->facts_json ? h->facts_json : "{}");
	bind_text(st, 7, h->releases_json ? h->releases_json : "[]");
	bind_text(st, 8, h->agent_version);
	drv_sql_bind_int64(st, 9, a->first_seen_ms);
	drv_sql_bind_int64(st, 10, a->last_seen_ms);
	drv_sql_bind_int64(st, 11, a->status_ms);
	bind_text(st, 12, a->enrolled_by);
	bind_text(st, 13, a->peer);
	drv_sql_bind_int64(st, 14, (int64_t)h->releases_seq);
	return run_new(s, st);
}

/* Run an UPDATE on one agent row; DRV_ENOENT if no row changed. */
static int run_one(struct store *s, struct drv_sql_stmt *st)
{
	int rc = run(s, st);

	return rc == DRV_OK && drv_sql_changes(s->db) == 0 ? DRV_ENOENT : rc;
}

static uint64_t releases_seq_of(struct store *s, const char *id);

int store_agent_update_hello(struct store *s, const char *id, const struct store_hello *h,
                             int64_t now_ms, bool *stale)
{
	bool older = h->releases_seq > 0 && releases_seq_of(s, id) > h->releases_seq;
	struct drv_sql_stmt *st;
	/* ?7: the list's number, as in store_agent_set_releases (0: an older
	 * agent, written as is and the row's number kept). The cast: met first
	 * beside a 0, PostgreSQL would take ?7 for an int4, and refuse a
	 * number past 2^31. */
	int rc = prep(s,
	              "UPDATE agents SET labels = coalesce(?1, labels), facts = ?2,"
	              " releases = CASE WHEN CAST(?7 AS BIGINT) = 0 OR ?7 >= releases_seq"
	              " THEN ?3 ELSE releases END,"
	              " releases_seq = CASE WHEN ?7 > releases_seq THEN ?7 ELSE releases_seq END,"
	              " agent_version = ?4, last_seen_ms = ?5 WHERE id = ?6",
	              &st);

	if (rc != DRV_OK)
		return rc;
	if (h->labels_json != NULL)
		bind_text(st, 1, h->labels_json);
	else
		drv_sql_bind_null(st, 1);
	bind_text(st, 2, h->facts_json ? h->facts_json : "{}");
	bind_text(st, 3, h->releases_json ? h->releases_json : "[]");
	bind_text(st, 4, h->agent_version);
	drv_sql_bind_int64(st, 5, now_ms);
	bind_text(st, 6, id);
	drv_sql_bind_int64(st, 7, (int64_t)h->releases_seq);
	rc = run_one(s, st);
	if (rc == DRV_OK && stale != NULL)
		*stale = older;
	return rc;
}

int store_agent_set_status(struct store *s, const char *id, enum agent_status status,
                           const char *by, int64_t now_ms)
{
	struct drv_sql_stmt *st;
	int rc;

	rc = prep(s, "UPDATE agents SET status = ?, enrolled_by = ?, status_ms = ? WHERE id = ?",
	          &st);
	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, store_agent_status_name(status));
	bind_text(st, 2, by);
	drv_sql_bind_int64(st, 3, now_ms);
	bind_text(st, 4, id);
	return run_one(s, st);
}

/* An UPDATE of agent ?2 with the number ?1 (?1 may appear more than once). */
static int update_num(struct store *s, const char *sql, const char *id, int64_t n, bool one)
{
	struct drv_sql_stmt *st;
	int rc = prep(s, sql, &st);

	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_int64(st, 1, n);
	bind_text(st, 2, id);
	return one ? run_one(s, st) : run(s, st);
}

int store_agent_touch(struct store *s, const char *id, int64_t now_ms)
{
	return update_num(
	        s,
	        "UPDATE agents SET last_seen_ms = CASE WHEN last_seen_ms > ?1 THEN last_seen_ms"
	        " ELSE ?1 END WHERE id = ?2",
	        id, now_ms, true);
}

int store_agent_report_seq(struct store *s, const char *id, uint64_t report_seq)
{
	int rc =
	        update_num(s, "UPDATE agents SET report_seq = ?1 WHERE id = ?2 AND report_seq < ?1",
	                   id, (int64_t)report_seq, true);

	return rc == DRV_ENOENT ? DRV_EREPLAY : rc;
}

/* The agent's releases of other services, then the new ones: a new JSON
 * text (compact, keys in order), or NULL when there is nothing to merge. */
static char *merged_releases(const char *old, const char *service, const char *releases_json)
{
	json_t *cur = json_loads(old != NULL ? old : "[]", 0, NULL);
	json_t *add = json_loads(releases_json, 0, NULL), *out = json_array(), *e;
	char *text = NULL;
	size_t i;

	if (!json_is_array(cur) || !json_is_array(add) || out == NULL)
		goto out;
	json_array_foreach(cur, i, e)
	{
		const char *svc = json_string_value(json_object_get(e, "service"));

		if (svc == NULL || strcmp(svc, service) != 0)
			json_array_append(out, e);
	}
	json_array_extend(out, add);
	text = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(cur);
	json_decref(add);
	json_decref(out);
	return text;
}

/* The row's releases_seq (0 when unknown or unreadable). */
static uint64_t releases_seq_of(struct store *s, const char *id)
{
	struct drv_sql_stmt *st;
	uint64_t n = 0;

	if (prep(s, "SELECT releases_seq FROM agents WHERE id = ?", &st) != DRV_OK)
		return 0;
	bind_text(st, 1, id);
	if (drv_sql_step(st) == DRV_SQL_ROW)
		n = (uint64_t)drv_sql_col_int64(st, 0);
	done(s, st);
	return n;
}

int store_agent_merge_releases(struct store *s, const char *id, const char *service,
                               const char *releases_json, uint64_t report_seq, bool *stale)
{
	struct drv_sql_stmt *st;
	char *text = NULL;
	bool older = false;
	bool own = !drv_sql_in_tx(s->db); /* else the caller's part: no savepoint */
	int rc = own ? store_begin(s) : DRV_OK;

	if (rc != DRV_OK)
		return rc;
	rc = prep(s, "SELECT releases, releases_seq FROM agents WHERE id = ?", &st);
	if (rc == DRV_OK) {
		bind_text(st, 1, id);
		if (drv_sql_step(st) == DRV_SQL_ROW) {
			older = (uint64_t)drv_sql_col_int64(st, 1) >= report_seq;
			if (!older)
				text = merged_releases(drv_sql_col_text(st, 0),
				                       service ? service : "", releases_json);
		}
		done(s, st);
	}
	if (rc == DRV_OK && text != NULL)
		rc = prep(s, "UPDATE agents SET releases = ?, releases_seq = ? WHERE id = ?", &st);
	if (rc == DRV_OK && text != NULL) {
		bind_text(st, 1, text);
		drv_sql_bind_int64(st, 2, (int64_t)report_seq);
		bind_text(st, 3, id);
		rc = run(s, st);
	}
	free(text);
	if (rc != DRV_OK) {
		if (own)
			store_rollback(s);
		return rc;
	}
	if (stale != NULL)
		*stale = older;
	return own ? store_commit(s) : DRV_OK;
}

int store_agent_set_releases(struct store *s, const char *id, const char *releases_json,
                             uint64_t releases_seq, bool *stale)
{
	struct drv_sql_stmt *st;
	/* ?3 = 0: an older agent, as before; else not below the stored list's
	 * number, and the number is raised even when the list is the same. The
	 * cast: beside a 0, PostgreSQL would take ?3 for an int4 (as in
	 * store_agent_update_hello). */
	int rc = prep(s,
	              "UPDATE agents SET releases = ?2,"
	              " releases_seq = CASE WHEN ?3 > releases_seq THEN ?3 ELSE releases_seq END"
	              " WHERE id = ?1 AND (CAST(?3 AS BIGINT) = 0 OR ?3 >= releases_seq)"
	              " AND (releases IS DISTINCT FROM ?2 OR ?3 > releases_seq)",
	              &st);
	json_t *valid = json_loads(releases_json != NULL ? releases_json : "", 0, NULL);

	json_decref(valid);
	if (stale != NULL)
		*stale = false;
	if (rc != DRV_OK || valid == NULL) { /* not JSON: left as it was */
		if (rc == DRV_OK)
			done(s, st);
		return rc;
	}
	bind_text(st, 1, id);
	bind_text(st, 2, releases_json);
	drv_sql_bind_int64(st, 3, (int64_t)releases_seq);
	rc = run(s, st);
	if (rc == DRV_OK && stale != NULL && releases_seq > 0 && drv_sql_changes(s->db) == 0)
		*stale = releases_seq_of(s, id) > releases_seq;
	return rc;
}

int store_agent_seq_floor(struct store *s, const char *id, uint64_t seq)
{
	return update_num(s, "UPDATE agents SET next_seq = ?1 + 1 WHERE id = ?2 AND next_seq <= ?1",
	                  id, (int64_t)seq, false);
}

/* A statement without rows whose one parameter is the text arg. */
static int run_text(struct store *s, const char *sql, const char *arg)
{
	struct drv_sql_stmt *st;
	int rc = prep(s, sql, &st);

	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, arg);
	return run(s, st);
}

int store_agent_delete(struct store *s, const char *id)
{
	int rc = store_begin(s);

	if (rc != DRV_OK)
		return rc;
	rc = run_text(s, "DELETE FROM instructions WHERE agent_id = ?", id);
	if (rc == DRV_OK)
		rc = run_text(s, "DELETE FROM agents WHERE id = ?", id);
	if (rc == DRV_OK && drv_sql_changes(s->db) == 0)
		rc = DRV_ENOENT;
	if (rc == DRV_OK)
		rc = store_commit(s);
	else
		store_rollback(s);
	return rc;
}

int store_agent_foreach(struct store *s, store_agent_fn fn, void *arg)
{
	struct store_agent a;
	struct store_agent_row row = {.agent = &a};
	struct drv_sql_stmt *st;
	int rc, step;

	rc = prep(s, "SELECT " AGENT_COLS " FROM agents ORDER BY id", &st);
	if (rc != DRV_OK)
		return rc;
	while (rc == DRV_OK && (step = drv_sql_step(st)) == DRV_SQL_ROW) {
		rc = row_to_agent(st, &a);
		if (rc != DRV_OK)
			break;
		row.labels_json = col_text(st, 10);
		row.facts_json = col_text(st, 11);
		row.releases_json = col_text(st, 12);
		row.agent_version = col_text(st, 13);
		row.proposed_labels_json = drv_sql_col_null(st, 15) ? NULL : col_text(st, 15);
		rc = fn(arg, &row);
	}
	if (rc == DRV_OK && step != DRV_SQL_DONE)
		rc = DRV_EDB;
	done(s, st);
	return rc;
}

int store_agent_brief_foreach(struct store *s, store_brief_fn fn, void *arg)
{
	struct store_agent_brief b;
	struct drv_sql_stmt *st;
	int rc, step;

	rc = prep(s, "SELECT id, status, labels, releases, agent_version FROM agents ORDER BY id",
	          &st);
	if (rc != DRV_OK)
		return rc;
	while (rc == DRV_OK && (step = drv_sql_step(st)) == DRV_SQL_ROW) {
		b.id = col_text(st, 0);
		b.status = col_text(st, 1);
		b.labels_json = col_text(st, 2);
		b.releases_json = col_text(st, 3);
		b.agent_version = col_text(st, 4);
		rc = fn(arg, &b);
	}
	if (rc == DRV_OK && step != DRV_SQL_DONE)
		rc = DRV_EDB;
	done(s, st);
	return rc;
}

/* A count(*) query whose one parameter is the text arg. */
static int count_text(struct store *s, const char *sql, const char *arg, size_t *out)
{
	struct drv_sql_stmt *st;
	int rc = prep(s, sql, &st);

	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, arg);
	rc = drv_sql_step(st) == DRV_SQL_ROW ? DRV_OK : DRV_EDB;
	if (rc == DRV_OK)
		*out = (size_t)drv_sql_col_int64(st, 0);
	done(s, st);
	return rc;
}

int store_agent_count(struct store *s, enum agent_status status, size_t *out)
{
	return count_text(s, "SELECT count(*) FROM agents WHERE status = ?",
	                  store_agent_status_name(status), out);
}

/* ---- instructions ---- */

#define INSERT_INSTR                                                                               \
	"INSERT INTO instructions (agent_id, seq, step_id, deployment_id, envelope,"               \
	" issued_at_ms, expires_at_ms, state, action) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"         \
	" 'queued', ?8)"

/* The row, and (bump) the agent's next sequence above it: on PostgreSQL in
 * one statement (one round trip under the core lock), on SQLite in two
 * (no writes inside WITH there; in process, nearly free). */
static int insert_instr(struct store *s, const struct store_enqueue *q, uint64_t seq,
                        const uint8_t *env, size_t env_len, bool bump)
{
	struct drv_sql_stmt *st;
	int rc;

	rc = prep(s,
	          bump ? "WITH ins AS (" INSERT_INSTR " RETURNING agent_id, seq)"
	                 " UPDATE agents SET next_seq = ins.seq + 1 FROM ins WHERE agents.id = "
	                 "ins.agent_id"
	               : INSERT_INSTR,
	          &st);
	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, q->agent_id);
	drv_sql_bind_int64(st, 2, (int64_t)seq);
	bind_text(st, 3, q->step_id);
	bind_text(st, 4, q->deployment_id);
	drv_sql_bind_blob(st, 5, env, (size_t)((int)env_len));
	drv_sql_bind_int64(st, 6, q->issued_at_ms);
	drv_sql_bind_int64(st, 7, q->expires_at_ms);
	drv_sql_bind_int64(st, 8, q->action);
	return bump ? run_one(s, st) : run(s, st);
}

static int bump_next_seq(struct store *s, const char *agent_id, uint64_t seq)
{
	struct drv_sql_stmt *st;
	int rc = prep(s, "UPDATE agents SET next_seq = ? WHERE id = ?", &st);

	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_int64(st, 1, (int64_t)seq + 1);
	bind_text(st, 2, agent_id);
	return run_one(s, st);
}

/* What queueing needs to know, in one statement (one round trip under the
 * core lock on PostgreSQL): the agent's status and next sequence, and the
 * sequence of the step if it is queued already (*step_seq 0: it is not).
 * The next sequence is above the agent's rows even if next_seq lags behind
 * them (a row another writer committed after we read next_seq: then its
 * unique key would refuse ours). DRV_ENOENT if the agent is unknown. */
static int enqueue_check(struct store *s, const struct store_enqueue *q, enum agent_status *status,
                         uint64_t *next_seq, uint64_t *step_seq)
{
	struct drv_sql_stmt *st;
	int rc;

	rc = prep(s,
	          "SELECT status, next_seq,"
	          " (SELECT seq FROM instructions WHERE agent_id = ?1 AND step_id = ?2),"
	          " (SELECT max(seq) FROM instructions WHERE agent_id = ?1)"
	          " FROM agents WHERE id = ?1",
	          &st);
	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, q->agent_id);
	bind_text(st, 2, q->step_id);
	rc = drv_sql_step(st);
	if (rc == DRV_SQL_ROW) {
		rc = store_agent_status_parse(col_text(st, 0), status);
		*next_seq = (uint64_t)drv_sql_col_int64(st, 1);
		*step_seq = drv_sql_col_null(st, 2) ? 0 : (uint64_t)drv_sql_col_int64(st, 2);
		if (!drv_sql_col_null(st, 3) && (uint64_t)drv_sql_col_int64(st, 3) >= *next_seq)
			*next_seq = (uint64_t)drv_sql_col_int64(st, 3) + 1;
	} else {
		rc = rc == DRV_SQL_DONE ? DRV_ENOENT : DRV_EDB;
	}
	done(s, st);
	return rc;
}

static int enqueue_locked(struct store *s, const struct store_enqueue *q, uint64_t *seq_out)
{
	enum agent_status status;
	uint8_t *env = NULL;
	size_t env_len = 0;
	uint64_t seq, queued;
	bool pg;
	int rc;

	rc = enqueue_check(s, q, &status, &seq, &queued);
	if (rc != DRV_OK)
		return rc;
	if (q->accepted_only && status != AGENT_ACCEPTED)
		return DRV_ESTATE;
	if (queued > 0) {
		*seq_out = queued;
		return DRV_EEXIST;
	}
	rc = q->seal(q->seal_arg, seq, &env, &env_len);
	if (rc != DRV_OK)
		return rc;
	pg = drv_sql_engine_of(s->db) == DRV_SQL_PG;
	rc = insert_instr(s, q, seq, env, env_len, pg);
	free(env);
	if (rc == DRV_OK && !pg)
		rc = bump_next_seq(s, q->agent_id, seq);
	if (rc == DRV_OK)
		*seq_out = seq;
	return rc;
}

static int enqueue_once(struct store *s, const struct store_enqueue *q, uint64_t *seq)
{
	int rc = store_begin(s);

	if (rc != DRV_OK)
		return rc;
	rc = enqueue_locked(s, q, seq);
	if (rc == DRV_OK)
		rc = store_commit(s);
	else
		store_rollback(s);
	return rc;
}

int store_instr_enqueue(struct store *s, const struct store_enqueue *q, uint64_t *seq_out)
{
	uint64_t seq = 0;
	int rc = enqueue_once(s, q, &seq);

	/* A unique violation of the insert (no sequence: the step was not
	 * queued when we read) is another writer's row that committed
	 * meanwhile (PostgreSQL, read committed): read again, once. It is never
	 * "already queued" without the number it was queued with. */
	if (rc == DRV_EEXIST && seq == 0)
		rc = enqueue_once(s, q, &seq);
	if (rc == DRV_EEXIST && seq == 0)
		rc = DRV_EDB;
	if (rc == DRV_OK || rc == DRV_EEXIST)
		*seq_out = seq;
	return rc;
}

/* ---- a chunk of instructions in two statements (PostgreSQL) ---- */

struct many_row {
	enum agent_status status;
	uint64_t next_seq, step_seq;
	bool found;
};

/* enqueue_check for every row of the chunk in one statement: the rows' index,
 * agent and step bound as one JSON array value. */
static int many_check(struct store *s, const struct store_enqueue *q, size_t n, struct many_row *r)
{
	json_t *arr = json_array();
	char *text = NULL;
	struct drv_sql_stmt *st;
	int rc = DRV_ENOMEM, step;

	for (size_t i = 0; arr != NULL && i < n; i++)
		json_array_append_new(
		        arr, json_pack("[Iss]", (json_int_t)i, q[i].agent_id, q[i].step_id));
	if (arr != NULL && json_array_size(arr) == n)
		text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	if (text == NULL)
		return rc;
	rc = prep(s,
	          "SELECT j.i, a.status, a.next_seq,"
	          " (SELECT seq FROM instructions WHERE agent_id = j.id AND step_id = j.step),"
	          " (SELECT max(seq) FROM instructions WHERE agent_id = j.id)"
	          " FROM (SELECT (x->>0)::bigint AS i, x->>1 AS id, x->>2 AS step"
	          " FROM json_array_elements(?::json) AS t(x)) AS j JOIN agents a ON a.id = j.id",
	          &st);
	if (rc != DRV_OK) {
		free(text);
		return rc;
	}
	bind_text(st, 1, text);
	while ((step = drv_sql_step(st)) == DRV_SQL_ROW) {
		int64_t i = drv_sql_col_int64(st, 0);
		struct many_row *m;

		if (i < 0 || (size_t)i >= n)
			continue;
		m = &r[i];
		if (store_agent_status_parse(col_text(st, 1), &m->status) != DRV_OK)
			continue; /* unknown status (the schema has none): DRV_ENOENT */
		m->found = true;
		m->next_seq = (uint64_t)drv_sql_col_int64(st, 2);
		m->step_seq = drv_sql_col_null(st, 3) ? 0 : (uint64_t)drv_sql_col_int64(st, 3);
		if (!drv_sql_col_null(st, 4) && (uint64_t)drv_sql_col_int64(st, 4) >= m->next_seq)
			m->next_seq = (uint64_t)drv_sql_col_int64(st, 4) + 1;
	}
	done(s, st);
	free(text);
	return step == DRV_SQL_DONE ? DRV_OK : DRV_EDB;
}

static json_t *many_insert_row(const struct store_enqueue *q, uint64_t seq, const uint8_t *env,
                               size_t env_len)
{
	size_t cap = sodium_base64_ENCODED_LEN(env_len, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = malloc(cap);
	json_t *row = NULL;

	if (b64 == NULL)
		return NULL;
	sodium_bin2base64(b64, cap, env, env_len, sodium_base64_VARIANT_ORIGINAL);
	row = json_pack("[sIsssIII]", q->agent_id, (json_int_t)seq, q->step_id,
	                q->deployment_id ? q->deployment_id : "", b64, (json_int_t)q->issued_at_ms,
	                (json_int_t)q->expires_at_ms, (json_int_t)q->action);
	free(b64);
	return row;
}

/* The rows, and every agent's next sequence above its row, in one statement
 * (agents are distinct in a chunk: each UPDATE row is one INSERT row). */
static int many_insert(struct store *s, const char *rows_json, size_t n_rows)
{
	struct drv_sql_stmt *st;
	int rc =
	        prep(s,
	             "WITH ins AS (INSERT INTO instructions (agent_id, seq, step_id, deployment_id,"
	             " envelope, issued_at_ms, expires_at_ms, state, action)"
	             " SELECT x->>0, (x->>1)::bigint, x->>2, x->>3, decode(x->>4, 'base64'),"
	             " (x->>5)::bigint, (x->>6)::bigint, 'queued', (x->>7)::bigint"
	             " FROM json_array_elements(?::json) AS t(x) RETURNING agent_id, seq)"
	             " UPDATE agents SET next_seq = ins.seq + 1 FROM ins WHERE agents.id = "
	             "ins.agent_id",
	             &st);

	return rc == DRV_OK ? run_json_rows(s, st, rows_json, n_rows, DRV_EDB) : rc;
}

/* The rows not inserted yet and a bound on their JSON text's size. */
struct many_batch {
	json_t *rows;
	size_t bytes;
};

/* A bound on the JSON text of q's row with an envelope of env_len bytes:
 * base64, each string byte escaped at worst as \u00XX, four numbers, the
 * punctuation. */
static size_t many_row_bytes(const struct store_enqueue *q, size_t env_len)
{
	size_t texts = strlen(q->agent_id) + strlen(q->step_id) +
	               (q->deployment_id ? strlen(q->deployment_id) : 0);

	return sodium_base64_ENCODED_LEN(env_len, sodium_base64_VARIANT_ORIGINAL) + 6 * texts + 128;
}

/* Insert what b holds (nothing if empty) and empty it. */
static int many_flush(struct store *s, struct many_batch *b)
{
	size_t n = json_array_size(b->rows);
	char *text;
	int rc;

	if (n == 0)
		return DRV_OK;
	text = json_dumps(b->rows, JSON_COMPACT);
	rc = text != NULL ? many_insert(s, text, n) : DRV_ENOMEM;
	free(text);
	json_array_clear(b->rows);
	b->bytes = 0;
	return rc;
}

/* Add q's row to b, inserting what b held first if the row would take its
 * JSON past STORE_MANY_JSON_MAX: the client holds the text several times
 * over (the rows, the text, the bound value, libpq's buffer), and a chunk
 * of large envelopes would otherwise be hundreds of MiB. */
static int many_add(struct store *s, struct many_batch *b, const struct store_enqueue *q,
                    uint64_t seq, uint8_t *env, size_t env_len)
{
	size_t bytes = many_row_bytes(q, env_len);
	json_t *row = many_insert_row(q, seq, env, env_len);
	int rc = row != NULL ? DRV_OK : DRV_ENOMEM;

	free(env);
	if (rc == DRV_OK && b->bytes + bytes > STORE_MANY_JSON_MAX)
		rc = many_flush(s, b);
	if (rc != DRV_OK) {
		json_decref(row);
		return rc;
	}
	if (json_array_append_new(b->rows, row) != 0)
		return DRV_ENOMEM;
	b->bytes += bytes;
	return DRV_OK;
}

/* Every row's outcome from the check; the new ones sealed and added to b
 * (inserted when it is full). seqs/rcs as store_instr_enqueue's. */
static int many_rows(struct store *s, const struct store_enqueue *q, size_t n,
                     const struct many_row *r, struct many_batch *b, uint64_t *seqs, int *rcs)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t *env = NULL;
		size_t env_len = 0;
		int rc;

		seqs[i] = 0;
		if (!r[i].found) {
			rcs[i] = DRV_ENOENT;
		} else if (q[i].accepted_only && r[i].status != AGENT_ACCEPTED) {
			rcs[i] = DRV_ESTATE;
		} else if (r[i].step_seq > 0) {
			seqs[i] = r[i].step_seq;
			rcs[i] = DRV_EEXIST;
		} else {
			rcs[i] = q[i].seal(q[i].seal_arg, r[i].next_seq, &env, &env_len);
			if (rcs[i] != DRV_OK)
				continue;
			rc = many_add(s, b, &q[i], r[i].next_seq, env, env_len);
			if (rc != DRV_OK)
				return rc;
			seqs[i] = r[i].next_seq;
		}
	}
	return many_flush(s, b);
}

static int many_once(struct store *s, const struct store_enqueue *q, size_t n, uint64_t *seqs,
                     int *rcs)
{
	struct many_row *r = calloc(n, sizeof(*r));
	struct many_batch b = {json_array(), 0};
	int rc = r != NULL && b.rows != NULL ? store_begin(s) : DRV_ENOMEM;

	if (rc == DRV_OK) {
		rc = many_check(s, q, n, r);
		if (rc == DRV_OK)
			rc = many_rows(s, q, n, r, &b, seqs, rcs);
		if (rc == DRV_OK)
			rc = store_commit(s);
		else
			store_rollback(s);
	}
	json_decref(b.rows);
	free(r);
	return rc;
}

/* Two of the chunk for one agent: its rows must be numbered one after the
 * other, which the per-row path does. A row without an agent id goes that
 * way too (an unknown agent there, as store_instr_enqueue says). */
static bool agents_distinct(const struct store_enqueue *q, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (q[i].agent_id == NULL)
			return false;
		for (size_t k = 0; k < i; k++)
			if (strcmp(q[i].agent_id, q[k].agent_id) == 0)
				return false;
	}
	return true;
}

void store_instr_enqueue_many(struct store *s, const struct store_enqueue *q, size_t n,
                              uint64_t *seqs, int *rcs)
{
	int rc = DRV_EEXIST;

	if (n > 1 && drv_sql_engine_of(s->db) == DRV_SQL_PG && agents_distinct(q, n))
		rc = many_once(s, q, n, seqs, rcs);
	if (rc == DRV_OK)
		return;
	/* Fenced off: so would every row be. Else row by row, each with its own
	 * outcome: SQLite, one row, an agent twice, a unique violation (another
	 * writer's row), or any other failure of the chunk's statements (a text
	 * that JSON cannot carry, ...): one row's trouble is not the others'. */
	for (size_t i = 0; i < n; i++) {
		seqs[i] = 0;
		rcs[i] = rc == DRV_EFENCED ? rc : store_instr_enqueue(s, &q[i], &seqs[i]);
	}
}

void store_instr_clear(struct store_instr *in)
{
	if (in == NULL)
		return;
	free(in->env);
	memset(in, 0, sizeof(*in));
}

/* Read a row of store_instr_next's or store_instr_take's columns. */
static int instr_row(struct drv_sql_stmt *st, struct store_instr *in)
{
	in->seq = (uint64_t)drv_sql_col_int64(st, 0);
	copy_col(st, 1, in->step_id, sizeof(in->step_id));
	in->env_len = (size_t)drv_sql_col_bytes(st, 2);
	in->env = malloc(in->env_len ? in->env_len : 1);
	if (in->env != NULL && in->env_len > 0)
		memcpy(in->env, drv_sql_col_blob(st, 2), in->env_len);
	in->expires_at_ms = drv_sql_col_int64(st, 3);
	in->sent_count = drv_sql_col_int64(st, 4);
	return in->env == NULL ? DRV_ENOMEM : DRV_OK;
}

/* Step a query of instr_row's columns (and, at more_col if it is >= 0, the
 * count of deliverable rows), give it back; *out written on success. */
static int instr_step(struct store *s, struct drv_sql_stmt *st, int more_col,
                      struct store_instr *out)
{
	struct store_instr in = {0};
	int rc = drv_sql_step(st);

	if (rc == DRV_SQL_ROW) {
		rc = instr_row(st, &in);
		in.more = more_col >= 0 && drv_sql_col_int64(st, more_col) > 1;
	} else if (rc == DRV_SQL_DONE) {
		rc = DRV_ENOENT;
	} else {
		rc = rc == DRV_EFENCED ? rc : DRV_EDB;
		drv_error("store", "statement failed", "error=\"%s\"", drv_sql_errmsg(s->db));
	}
	done(s, st);
	if (rc == DRV_OK)
		*out = in;
	else
		store_instr_clear(&in);
	return rc;
}

int store_instr_next(struct store *s, const char *agent_id, int64_t now_ms, struct store_instr *out)
{
	struct drv_sql_stmt *st;
	int rc;

	rc = prep(s,
	          "SELECT seq, step_id, envelope, expires_at_ms, sent_count FROM instructions"
	          " WHERE agent_id = ? AND state IN ('queued', 'sent') AND expires_at_ms > ?"
	          " ORDER BY seq LIMIT 1",
	          &st);
	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, agent_id);
	drv_sql_bind_int64(st, 2, now_ms);
	return instr_step(s, st, -1, out);
}

/* store_instr_take_many's statement; ids: a query of the agents' ids. */
#define TAKE_MANY(ids)                                                                             \
	"UPDATE instructions SET state = 'sent', sent_count = sent_count + 1, sent_ms = ?1"        \
	" WHERE state IN ('queued', 'sent') AND expires_at_ms > ?1"                                \
	" AND (agent_id, seq) IN (SELECT agent_id, min(seq) FROM instructions"                     \
	" WHERE agent_id IN (" ids ") AND state IN ('queued', 'sent') AND expires_at_ms > ?1"      \
	" GROUP BY agent_id)"                                                                      \
	" RETURNING seq, step_id, envelope, expires_at_ms, sent_count - 1,"                        \
	" (SELECT count(*) FROM instructions AS o WHERE o.agent_id = instructions.agent_id"        \
	" AND o.state IN ('queued', 'sent') AND o.expires_at_ms > ?1), agent_id"

/* store_instr_next and store_instr_mark_sent in one statement: on
 * PostgreSQL one round trip under the core lock, not two. The row is the
 * one store_instr_next would pick (the state is checked again in the outer
 * WHERE, for a row changed meanwhile); sent_count is returned as it was
 * before this send, as store_instr_next says it. The count in RETURNING
 * (whether the taken row is seen as it was or as it is, it is counted)
 * says whether another row waits behind this one. */
int store_instr_take(struct store *s, const char *agent_id, int64_t now_ms, struct store_instr *out)
{
	struct drv_sql_stmt *st;
	int rc;

	rc = prep(
	        s,
	        "UPDATE instructions SET state = 'sent', sent_count = sent_count + 1, sent_ms = ?1"
	        " WHERE agent_id = ?2 AND state IN ('queued', 'sent') AND expires_at_ms > ?1"
	        " AND seq = (SELECT min(seq) FROM instructions WHERE agent_id = ?2"
	        " AND state IN ('queued', 'sent') AND expires_at_ms > ?1)"
	        " RETURNING seq, step_id, envelope, expires_at_ms, sent_count - 1,"
	        " (SELECT count(*) FROM instructions WHERE agent_id = ?2"
	        " AND state IN ('queued', 'sent') AND expires_at_ms > ?1)",
	        &st);
	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_int64(st, 1, now_ms);
	bind_text(st, 2, agent_id);
	return instr_step(s, st, 5, out); /* the count has this one too */
}

/* store_instr_take for every agent of ids_json in one statement: each
 * one's lowest deliverable row is marked sent and handed to fn with its
 * agent id (in the column after the count). The count in RETURNING is the
 * agent's, as in store_instr_take. */
int store_instr_take_many(struct store *s, const char *ids_json, int64_t now_ms, store_taken_fn fn,
                          void *arg)
{
	bool pg = drv_sql_engine_of(s->db) == DRV_SQL_PG;
	struct drv_sql_stmt *st;
	int rc, step;

	rc = prep(s,
	          pg ? TAKE_MANY("SELECT json_array_elements_text(?2::json)")
	             : TAKE_MANY("SELECT value FROM json_each(?2)"),
	          &st);
	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_int64(st, 1, now_ms);
	bind_text(st, 2, ids_json);
	while ((step = drv_sql_step(st)) == DRV_SQL_ROW) {
		struct store_instr in = {0};

		if (instr_row(st, &in) == DRV_OK) {
			in.more = drv_sql_col_int64(st, 5) > 1;
			fn(arg, col_text(st, 6), &in);
		}
		store_instr_clear(&in);
	}
	if (step != DRV_SQL_DONE)
		drv_error("store", "statement failed", "error=\"%s\"", drv_sql_errmsg(s->db));
	done(s, st);
	return step == DRV_SQL_DONE ? DRV_OK : step == DRV_EFENCED ? step : DRV_EDB;
}

int store_instr_mark_sent(struct store *s, const char *agent_id, uint64_t seq, int64_t now_ms)
{
	struct drv_sql_stmt *st;
	int rc;

	rc = prep(s,
	          "UPDATE instructions SET state = 'sent', sent_count = sent_count + 1, sent_ms = ?"
	          " WHERE agent_id = ? AND seq = ? AND state IN ('queued', 'sent')",
	          &st);
	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_int64(st, 1, now_ms);
	bind_text(st, 2, agent_id);
	drv_sql_bind_int64(st, 3, (int64_t)seq);
	return run_one(s, st);
}

/* Instructions up to seq that were sent are acknowledged; *n: how many. */
static int ack_rows(struct store *s, const char *agent_id, uint64_t seq, int64_t now_ms, size_t *n)
{
	struct drv_sql_stmt *st;
	int rc;

	rc = prep(s,
	          "UPDATE instructions SET state = 'acked', acked_ms = ?"
	          " WHERE agent_id = ? AND seq <= ? AND state = 'sent'",
	          &st);
	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_int64(st, 1, now_ms);
	bind_text(st, 2, agent_id);
	drv_sql_bind_int64(st, 3, (int64_t)seq);
	rc = run(s, st);
	if (rc == DRV_OK)
		*n = (size_t)drv_sql_changes(s->db);
	return rc;
}

int store_instr_ack_upto(struct store *s, const char *agent_id, uint64_t seq, int64_t now_ms,
                         size_t *n_acked)
{
	struct drv_sql_stmt *st;
	size_t n = 0;
	int rc = ack_rows(s, agent_id, seq, now_ms, &n);

	if (rc != DRV_OK)
		return rc;
	/* the acknowledged sequence and the floor of the next one, in one write */
	rc = prep(
	        s,
	        "UPDATE agents SET acked_seq = CASE WHEN acked_seq < ?1 THEN ?1 ELSE acked_seq END,"
	        " next_seq = CASE WHEN next_seq <= ?1 THEN ?1 + 1 ELSE next_seq END"
	        " WHERE id = ?2 AND (acked_seq < ?1 OR next_seq <= ?1)",
	        &st);
	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_int64(st, 1, (int64_t)seq);
	bind_text(st, 2, agent_id);
	rc = run(s, st);
	if (rc == DRV_OK)
		*n_acked = n;
	return rc;
}

int store_agent_report(struct store *s, const char *id, uint64_t report_seq, uint64_t acked,
                       int64_t now_ms, size_t *n_acked)
{
	struct drv_sql_stmt *st;
	size_t n = 0;
	int rc =
	        prep(s,
	             "UPDATE agents SET report_seq = ?1,"
	             " acked_seq = CASE WHEN acked_seq < ?3 THEN ?3 ELSE acked_seq END,"
	             " next_seq = CASE WHEN ?3 > 0 AND next_seq <= ?3 THEN ?3 + 1 ELSE next_seq END"
	             " WHERE id = ?2 AND report_seq < ?1",
	             &st);

	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_int64(st, 1, (int64_t)report_seq);
	bind_text(st, 2, id);
	drv_sql_bind_int64(st, 3, (int64_t)acked);
	rc = run_one(s, st);
	if (rc == DRV_ENOENT)
		return DRV_EREPLAY;
	if (rc == DRV_OK && acked > 0)
		rc = ack_rows(s, id, acked, now_ms, &n);
	if (rc == DRV_OK)
		*n_acked = n;
	return rc;
}

/* The agent rows of store_agent_reports: DRV_EREPLAY unless every row
 * changed. UPDATE ... FROM a JSON array: one statement, whatever the count. */
static int report_rows(struct store *s, const char *rows_json, size_t n_rows)
{
	struct drv_sql_stmt *st;
	int rc = prep(
	        s,
	        drv_sql_engine_of(s->db) == DRV_SQL_PG
	                ? "UPDATE agents SET report_seq = j.rs,"
	                  " acked_seq = CASE WHEN agents.acked_seq < j.ack THEN j.ack"
	                  " ELSE agents.acked_seq END,"
	                  " next_seq = CASE WHEN j.ack > 0 AND agents.next_seq <= j.ack"
	                  " THEN j.ack + 1 ELSE agents.next_seq END"
	                  " FROM (SELECT x->>0 AS id, (x->>1)::bigint AS rs, (x->>2)::bigint AS ack"
	                  " FROM json_array_elements(?::json) AS t(x)) AS j"
	                  " WHERE agents.id = j.id AND agents.report_seq < j.rs"
	                : "UPDATE agents SET report_seq = j.rs,"
	                  " acked_seq = CASE WHEN agents.acked_seq < j.ack THEN j.ack"
	                  " ELSE agents.acked_seq END,"
	                  " next_seq = CASE WHEN j.ack > 0 AND agents.next_seq <= j.ack"
	                  " THEN j.ack + 1 ELSE agents.next_seq END"
	                  " FROM (SELECT json_extract(value, '$[0]') AS id,"
	                  " json_extract(value, '$[1]') AS rs, json_extract(value, '$[2]') AS ack"
	                  " FROM json_each(?)) AS j"
	                  " WHERE agents.id = j.id AND agents.report_seq < j.rs",
	        &st);

	return rc == DRV_OK ? run_json_rows(s, st, rows_json, n_rows, DRV_EREPLAY) : rc;
}

/* The instructions of store_agent_reports' rows up to their acked. SQLite:
 * "+state" keeps it off the state index (else it scans the batch's rows for
 * every sent instruction); each agent's rows by the primary key instead, as
 * ack_rows. */
static int report_acks(struct store *s, const char *rows_json, int64_t now_ms, store_id_fn acked,
                       void *arg)
{
	struct drv_sql_stmt *st;
	int rc = prep(s,
	              drv_sql_engine_of(s->db) == DRV_SQL_PG
	                      ? "UPDATE instructions SET state = 'acked', acked_ms = ?"
	                        " FROM (SELECT x->>0 AS id, (x->>2)::bigint AS ack"
	                        " FROM json_array_elements(?::json) AS t(x)) AS j"
	                        " WHERE instructions.agent_id = j.id AND instructions.seq <= j.ack"
	                        " AND instructions.state = 'sent' RETURNING agent_id"
	                      : "UPDATE instructions SET state = 'acked', acked_ms = ?"
	                        " FROM (SELECT json_extract(value, '$[0]') AS id,"
	                        " json_extract(value, '$[2]') AS ack FROM json_each(?)) AS j"
	                        " WHERE instructions.agent_id = j.id AND instructions.seq <= j.ack"
	                        " AND +instructions.state = 'sent' RETURNING agent_id",
	              &st);
	int step;

	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_int64(st, 1, now_ms);
	bind_text(st, 2, rows_json);
	while ((step = drv_sql_step(st)) == DRV_SQL_ROW) {
		if (acked != NULL)
			acked(arg, col_text(st, 0));
	}
	if (step != DRV_SQL_DONE) {
		drv_error("store", "statement failed", "error=\"%s\"", drv_sql_errmsg(s->db));
		rc = step == DRV_EFENCED ? step : DRV_EDB;
	}
	done(s, st);
	return rc;
}

int store_agent_reports(struct store *s, const char *rows_json, size_t n_rows, bool acks,
                        int64_t now_ms, store_id_fn acked, void *arg)
{
	int rc;

	if (n_rows == 0)
		return DRV_OK;
	rc = report_rows(s, rows_json, n_rows);
	if (rc == DRV_OK && acks)
		rc = report_acks(s, rows_json, now_ms, acked, arg);
	return rc;
}

static int expire_rows(struct store *s, int64_t now_ms, store_expired_fn fn, void *arg)
{
	struct drv_sql_stmt *st;
	int rc, step;

	rc = prep(s,
	          "SELECT agent_id, seq, step_id FROM instructions"
	          " WHERE state IN ('queued', 'sent') AND expires_at_ms <= ?",
	          &st);
	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_int64(st, 1, now_ms);
	while ((step = drv_sql_step(st)) == DRV_SQL_ROW) {
		if (fn != NULL)
			fn(arg, col_text(st, 0), (uint64_t)drv_sql_col_int64(st, 1),
			   col_text(st, 2));
	}
	done(s, st);
	if (step != DRV_SQL_DONE)
		return DRV_EDB;
	rc = prep(s,
	          "UPDATE instructions SET state = 'expired'"
	          " WHERE state IN ('queued', 'sent') AND expires_at_ms <= ?",
	          &st);
	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_int64(st, 1, now_ms);
	return run(s, st);
}

int store_instr_expire(struct store *s, int64_t now_ms, store_expired_fn fn, void *arg,
                       size_t *n_expired)
{
	int rc = store_begin(s);
	size_t n;

	if (rc != DRV_OK)
		return rc;
	rc = expire_rows(s, now_ms, fn, arg);
	n = (size_t)drv_sql_changes(s->db);
	if (rc == DRV_OK)
		rc = store_commit(s);
	else
		store_rollback(s);
	if (rc == DRV_OK && n_expired != NULL)
		*n_expired = n;
	return rc;
}

int store_instr_queued_agents(struct store *s, store_id_fn fn, void *arg)
{
	struct drv_sql_stmt *st;
	int rc, step;

	rc = prep(s, "SELECT DISTINCT agent_id FROM instructions WHERE state = 'queued'", &st);
	if (rc != DRV_OK)
		return rc;
	while ((step = drv_sql_step(st)) == DRV_SQL_ROW)
		fn(arg, col_text(st, 0));
	done(s, st);
	return step == DRV_SQL_DONE ? DRV_OK : DRV_EDB;
}

int store_instr_state(struct store *s, const char *agent_id, uint64_t seq, char out[16])
{
	struct drv_sql_stmt *st;
	int rc;

	rc = prep(s, "SELECT state FROM instructions WHERE agent_id = ? AND seq = ?", &st);
	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, agent_id);
	drv_sql_bind_int64(st, 2, (int64_t)seq);
	rc = drv_sql_step(st);
	if (rc == DRV_SQL_ROW)
		copy_col(st, 0, out, 16);
	rc = rc == DRV_SQL_ROW ? DRV_OK : rc == DRV_SQL_DONE ? DRV_ENOENT : DRV_EDB;
	done(s, st);
	return rc;
}

/* ---- enrollment ---- */

static char *dup_col(struct drv_sql_stmt *st, int col)
{
	return drv_sql_col_null(st, col) ? NULL : strdup(col_text(st, col));
}

int store_agent_labels(struct store *s, const char *id, char **labels, char **proposed)
{
	struct drv_sql_stmt *st;
	char *l = NULL, *p = NULL;
	int rc;

	rc = prep(s, "SELECT labels, proposed_labels FROM agents WHERE id = ?", &st);
	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, id);
	rc = drv_sql_step(st);
	if (rc == DRV_SQL_ROW) {
		l = dup_col(st, 0);
		p = dup_col(st, 1);
		rc = l == NULL || (p == NULL && !drv_sql_col_null(st, 1)) ? DRV_ENOMEM : DRV_OK;
	} else {
		rc = rc == DRV_SQL_DONE ? DRV_ENOENT : DRV_EDB;
	}
	done(s, st);
	if (rc != DRV_OK) {
		free(l);
		free(p);
		return rc;
	}
	*labels = l;
	*proposed = p;
	return DRV_OK;
}

int store_agent_propose_labels(struct store *s, const char *id, const char *proposed_json)
{
	struct drv_sql_stmt *st;
	int rc = prep(s, "UPDATE agents SET proposed_labels = ? WHERE id = ?", &st);

	if (rc != DRV_OK)
		return rc;
	if (proposed_json != NULL)
		bind_text(st, 1, proposed_json);
	else
		drv_sql_bind_null(st, 1);
	bind_text(st, 2, id);
	return run_one(s, st);
}

int store_agent_apply_proposed(struct store *s, const char *id)
{
	struct drv_sql_stmt *st;
	int rc = prep(s,
	              "UPDATE agents SET labels = proposed_labels, proposed_labels = NULL"
	              " WHERE id = ? AND proposed_labels IS NOT NULL",
	              &st);

	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, id);
	return run_one(s, st);
}

int store_agent_rekey(struct store *s, const struct store_agent *a)
{
	struct drv_sql_stmt *st;
	int rc = prep(s,
	              "UPDATE agents SET public_key = ?, key_id = ?, status = ?, enrolled_by = ?,"
	              " status_ms = ?, first_seen_ms = ?, peer = ?, proposed_labels = NULL,"
	              " releases_seq = 0"
	              " WHERE id = ? AND status = 'pending'",
	              &st);

	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_blob(st, 1, a->key.pk, (size_t)(DRV_PK_LEN));
	bind_text(st, 2, a->key.id);
	bind_text(st, 3, store_agent_status_name(a->status));
	bind_text(st, 4, a->enrolled_by);
	drv_sql_bind_int64(st, 5, a->status_ms);
	drv_sql_bind_int64(st, 6, a->first_seen_ms);
	bind_text(st, 7, a->peer);
	bind_text(st, 8, a->id);
	return run_one(s, st);
}

int store_agent_count_peer(struct store *s, const char *peer, size_t *out)
{
	return count_text(s, "SELECT count(*) FROM agents WHERE status = 'pending' AND peer = ?",
	                  peer, out);
}

#define EXPIRE_BATCH 256

int store_agent_expire_pending(struct store *s, int64_t before_ms, store_claim_fn fn, void *arg)
{
	struct {
		char id[DRV_AGENT_ID_MAX + 1];
		char key_id[DRV_KEYID_LEN + 1];
	} claim[EXPIRE_BATCH];
	struct drv_pubkey key;
	size_t n = 0;
	struct drv_sql_stmt *st;
	int rc, step = DRV_SQL_DONE;

	rc = prep(s,
	          "SELECT id, public_key FROM agents WHERE status = 'pending' AND first_seen_ms < ?"
	          " ORDER BY first_seen_ms LIMIT 256",
	          &st);
	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_int64(st, 1, before_ms);
	while (n < EXPIRE_BATCH && (step = drv_sql_step(st)) == DRV_SQL_ROW) {
		copy_col(st, 0, claim[n].id, sizeof(claim[n].id));
		if (drv_pubkey_from_raw(drv_sql_col_blob(st, 1), (size_t)drv_sql_col_bytes(st, 1),
		                        &key) == DRV_OK)
			snprintf(claim[n].key_id, sizeof(claim[n].key_id), "%s", key.id);
		else
			snprintf(claim[n].key_id, sizeof(claim[n].key_id), "?");
		n++;
	}
	/* A full batch stops on a row; anything but a row or the end is an
	 * error, and nothing is deleted on a partial read. */
	if (step != DRV_SQL_ROW && step != DRV_SQL_DONE) {
		drv_error("store", "cannot list expired pending claims", "error=\"%s\"",
		          drv_sql_errmsg(s->db));
		done(s, st);
		return DRV_EDB;
	}
	done(s, st);
	for (size_t i = 0; i < n; i++) {
		rc = store_agent_delete(s, claim[i].id);
		if (rc != DRV_OK && rc != DRV_ENOENT)
			return rc;
		if (rc == DRV_OK && fn != NULL)
			fn(arg, claim[i].id, claim[i].key_id);
	}
	return DRV_OK;
}

/* ---- tokens ---- */

int store_enroll_token_add(struct store *s, const struct store_token *t,
                           const uint8_t hash[DRV_SECRET_HASH_LEN], int64_t now_ms)
{
	struct drv_sql_stmt *st;
	int rc;

	rc = prep(s,
	          "INSERT INTO enroll_tokens (name, hash, created_ms, expires_ms, max_uses, labels)"
	          " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
	          &st);
	if (rc != DRV_OK)
		return rc;
	bind_text(st, 1, t->name);
	drv_sql_bind_blob(st, 2, hash, (size_t)(DRV_SECRET_HASH_LEN));
	drv_sql_bind_int64(st, 3, now_ms);
	if (t->expires_ms > 0)
		drv_sql_bind_int64(st, 4, t->expires_ms);
	else
		drv_sql_bind_null(st, 4);
	drv_sql_bind_int64(st, 5, t->max_uses > 0 ? t->max_uses : 0);
	bind_text(st, 6, t->labels ? t->labels : "{}");
	return run_new(s, st);
}

int store_enroll_token_create(struct store *s, const struct store_token *t, int64_t now_ms,
                              char *token, size_t cap)
{
	uint8_t hash[DRV_SECRET_HASH_LEN];
	int rc = drv_secret_new("drvenr", token, cap);

	if (rc == DRV_OK)
		rc = drv_secret_hash(token, hash);
	if (rc == DRV_OK)
		rc = store_enroll_token_add(s, t, hash, now_ms);
	if (rc != DRV_OK)
		sodium_memzero(token, cap);
	return rc;
}

struct token_row {
	char name[64];
	int64_t expires_ms, revoked_ms, max_uses, uses;
	char *labels;
};

/* The row whose hash matches; every row is compared in constant time, and
 * all rows are visited. */
static int token_find(struct store *s, const uint8_t want[DRV_SECRET_HASH_LEN],
                      struct token_row *out)
{
	struct drv_sql_stmt *st;
	bool found = false;
	int rc, step;

	rc = prep(s,
	          "SELECT name, hash, coalesce(expires_ms, 0), coalesce(revoked_ms, 0), max_uses,"
	          " uses, labels FROM enroll_tokens",
	          &st);
	if (rc != DRV_OK)
		return rc;
	while ((step = drv_sql_step(st)) == DRV_SQL_ROW) {
		if (drv_sql_col_bytes(st, 1) == DRV_SECRET_HASH_LEN &&
		    drv_secret_hash_equal(drv_sql_col_blob(st, 1), want) && !found) {
			copy_col(st, 0, out->name, sizeof(out->name));
			out->expires_ms = drv_sql_col_int64(st, 2);
			out->revoked_ms = drv_sql_col_int64(st, 3);
			out->max_uses = drv_sql_col_int64(st, 4);
			out->uses = drv_sql_col_int64(st, 5);
			out->labels = strdup(col_text(st, 6));
			found = out->labels != NULL;
		}
	}
	done(s, st);
	if (step != DRV_SQL_DONE) {
		if (found)
			free(out->labels);
		return DRV_EDB;
	}
	return found ? DRV_OK : DRV_ENOENT;
}

int store_enroll_token_use(struct store *s, const char *token, const char *labels_json,
                           int64_t now_ms, char name_out[64], char *why, size_t len)
{
	uint8_t want[DRV_SECRET_HASH_LEN];
	struct token_row t = {0};
	int rc;

	if (drv_secret_hash(token, want) != DRV_OK) {
		snprintf(why, len, "not a token");
		return DRV_EPERM;
	}
	rc = token_find(s, want, &t);
	if (rc == DRV_ENOENT) {
		snprintf(why, len, "unknown token");
		return DRV_EPERM;
	}
	if (rc != DRV_OK)
		return rc;
	if (t.revoked_ms > 0)
		snprintf(why, len, "token %s is revoked", t.name), rc = DRV_EPERM;
	else if (t.expires_ms > 0 && now_ms >= t.expires_ms)
		snprintf(why, len, "token %s expired", t.name), rc = DRV_EPERM;
	else if (t.max_uses > 0 && t.uses >= t.max_uses)
		snprintf(why, len, "token %s is used up (%lld uses)", t.name, (long long)t.uses),
		        rc = DRV_EPERM;
	else if (enroll_rules_allow(t.labels, labels_json, why, len) != DRV_OK)
		rc = DRV_EPERM;
	if (rc == DRV_OK)
		rc = run_text(s, "UPDATE enroll_tokens SET uses = uses + 1 WHERE name = ?", t.name);
	if (rc == DRV_OK)
		snprintf(name_out, 64, "%s", t.name);
	free(t.labels);
	return rc;
}

int store_enroll_token_revoke(struct store *s, const char *name, int64_t now_ms)
{
	struct drv_sql_stmt *st;
	int rc = prep(
	        s, "UPDATE enroll_tokens SET revoked_ms = coalesce(revoked_ms, ?) WHERE name = ?",
	        &st);

	if (rc != DRV_OK)
		return rc;
	drv_sql_bind_int64(st, 1, now_ms);
	bind_text(st, 2, name);
	return run_one(s, st);
}

static json_t *token_json(struct drv_sql_stmt *st, int64_t now_ms)
{
	int64_t exp = drv_sql_col_int64(st, 2), rev = drv_sql_col_int64(st, 3);
	int64_t max = drv_sql_col_int64(st, 4), uses = drv_sql_col_int64(st, 5);
	json_t *labels = json_loads(col_text(st, 6), 0, NULL);
	const char *state = rev > 0                    ? "revoked"
	                    : exp > 0 && now_ms >= exp ? "expired"
	                    : max > 0 && uses >= max   ? "used-up"
	                                               : "active";

	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:s}", "name", col_text(st, 0),
	                 "created_ms", (json_int_t)drv_sql_col_int64(st, 1), "expires_ms",
	                 (json_int_t)exp, "revoked_ms", (json_int_t)rev, "max_uses",
	                 (json_int_t)max, "uses", (json_int_t)uses, "labels",
	                 labels ? labels : json_object(), "state", state);
}

int store_enroll_token_list(struct store *s, int64_t now_ms, json_t **out)
{
	json_t *arr = json_array(), *one;
	struct drv_sql_stmt *st;
	int rc, step;

	if (arr == NULL)
		return DRV_ENOMEM;
	rc = prep(s,
	          "SELECT name, created_ms, coalesce(expires_ms, 0), coalesce(revoked_ms, 0),"
	          " max_uses, uses, labels FROM enroll_tokens ORDER BY created_ms, name",
	          &st);
	if (rc != DRV_OK) {
		json_decref(arr);
		return rc;
	}
	while (rc == DRV_OK && (step = drv_sql_step(st)) == DRV_SQL_ROW) {
		one = token_json(st, now_ms);
		if (one == NULL || json_array_append_new(arr, one) != 0)
			rc = DRV_ENOMEM;
	}
	if (rc == DRV_OK && step != DRV_SQL_DONE)
		rc = DRV_EDB;
	done(s, st);
	if (rc != DRV_OK) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return DRV_OK;
}
