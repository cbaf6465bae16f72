/* events_read.c: one reader of the events hub (events_read.h). */
#include "events_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"

#define BATCH_TEXT "100" /* DRV_EVENTS_BATCH, for the SQL text */

struct drv_events_reader {
	struct drv_events *ev;
	struct drv_events_filter f;
	int64_t last_id;
	bool follow;
	int gather_ms;
	struct drv_events_buf out;
	size_t off;
	uint64_t seen_gen; /* the hub's generation at the last read */
	bool more;         /* the last read was a full batch, or none yet */
	int64_t read_ms;   /* when the last read was */
	int64_t next_ping_ms;
	struct drv_events_reader_stats stats;
};

#define FILTER_SQL                                                                                 \
	"(?2 = '' OR deployment_id = ?2) AND (?3 = '' OR agent_id = ?3) AND (?4 = '' OR kind = "   \
	"?4)"

static void bind_filter(struct drv_sql_stmt *st, const struct drv_events_filter *f)
{
	drv_sql_bind_text(st, 2, f->deployment);
	drv_sql_bind_text(st, 3, f->agent);
	drv_sql_bind_text(st, 4, f->kind);
}

/* The next batch after ?1 that matches the filter, in id order. On SQLite
 * writers are serialized, so every id up to the highest committed one is
 * committed: the batch stops there, and a last row (id NULL) carries that
 * id (column 6), read in the same statement and so the same snapshot (one
 * read transaction per read, not two). On PostgreSQL a lower id may still
 * commit after a higher one: no such bound. */
#define MAX_ID "(SELECT coalesce(max(id), 0) FROM events)"
#define FILL_PG                                                                                    \
	"SELECT id, at_ms, kind, deployment_id, agent_id, data FROM events WHERE id > ?1 "         \
	"AND " FILTER_SQL " ORDER BY id LIMIT " BATCH_TEXT
#define FILL_SQLITE                                                                                \
	"SELECT * FROM (SELECT id, at_ms, kind, deployment_id, agent_id, data, NULL FROM events"   \
	" WHERE id > ?1 AND id <= " MAX_ID " AND " FILTER_SQL " ORDER BY id LIMIT " BATCH_TEXT     \
	") UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, " MAX_ID " ORDER BY 1 NULLS LAST"

static int format_event(struct drv_events_reader *r, struct drv_sql_stmt *st)
{
	return drv_events_frame(&r->out, drv_sql_col_int64(st, 0), drv_sql_col_int64(st, 1),
	                        drv_sql_col_text(st, 2), drv_sql_col_text(st, 3),
	                        drv_sql_col_text(st, 4), drv_sql_col_text(st, 5));
}

/* Format the next batch of events after r->last_id into r->out. When the
 * batch is not full every event up to the highest committed id has been
 * looked at, so the next read starts after that id even if none of them
 * matched the filter: a stream that follows one deployment does not scan
 * every other event written since its last match at each read (1,000
 * agents reporting: a fifth of droverd's CPU went there). */
static int fill(struct drv_events_reader *r)
{
	struct drv_sql *db = drv_events_db(r->ev);
	bool lite = drv_sql_engine_of(db) == DRV_SQL_SQLITE;
	struct drv_sql_stmt *st;
	int64_t hi = INT64_MAX;
	int step, n = 0, rc = DRV_OK;

	if (drv_sql_cached(db, lite ? FILL_SQLITE : FILL_PG, &st) != DRV_OK)
		return DRV_EDB;
	drv_sql_bind_int64(st, 1, r->last_id);
	bind_filter(st, &r->f);
	while (rc == DRV_OK && (step = drv_sql_step(st)) == DRV_SQL_ROW) {
		if (lite && drv_sql_col_null(st, 0)) {
			hi = drv_sql_col_int64(st, 6);
			continue;
		}
		rc = format_event(r, st);
		if (rc == DRV_OK) {
			r->last_id = drv_sql_col_int64(st, 0);
			n++;
		}
	}
	if (rc == DRV_OK && step != DRV_SQL_DONE)
		rc = DRV_EDB;
	r->more = rc == DRV_OK && n == DRV_EVENTS_BATCH;
	if (rc == DRV_OK && n < DRV_EVENTS_BATCH && hi != INT64_MAX && hi > r->last_id)
		r->last_id = hi;
	drv_sql_done(st);
	return rc;
}

/* Read the table when something was published since the last read, or
 * that read was a full batch; within gather_ms of the last read, gather
 * what the burst still brings first. A keep-alive alone reads nothing. */
static int read_news(struct drv_events_reader *r, bool *closing)
{
	uint64_t gen = drv_events_gen(r->ev, closing);
	int64_t now = drv_mono_ms(), gather_until = r->read_ms + r->gather_ms;

	if (*closing || (!r->more && gen == r->seen_gen))
		return DRV_OK;
	if (!r->more && r->stats.reads > 0 && now < gather_until) {
		if (!drv_events_linger(r->ev, gather_until)) {
			*closing = true;
			return DRV_OK;
		}
		gen = drv_events_gen(r->ev, closing);
		now = drv_mono_ms();
	}
	if (r->stats.reads > 0 && !r->more && now - r->read_ms < r->stats.min_gap_ms)
		r->stats.min_gap_ms = now - r->read_ms;
	r->seen_gen = gen;
	r->read_ms = now;
	r->stats.reads++;
	return fill(r);
}

ssize_t drv_events_reader_next(struct drv_events_reader *r, char *out, size_t cap)
{
	static const char ping[] = ": keep-alive\n\n";
	bool closing;

	for (;;) {
		if (r->off < r->out.len) {
			size_t n = r->out.len - r->off < cap ? r->out.len - r->off : cap;

			memcpy(out, r->out.p + r->off, n);
			r->off += n;
			r->next_ping_ms = drv_mono_ms() + drv_events_keepalive_ms(r->ev);
			return (ssize_t)n;
		}
		r->off = r->out.len = 0;
		if (read_news(r, &closing) != DRV_OK || closing)
			return -1;
		if (r->out.len)
			continue;
		if (!r->follow || !drv_events_wait(r->ev, r->seen_gen, r->next_ping_ms))
			return -1;
		if (drv_mono_ms() >= r->next_ping_ms &&
		    drv_events_buf_add(&r->out, ping, sizeof(ping) - 1))
			return -1;
	}
}

int drv_events_reader_new(struct drv_events *ev, const struct drv_events_reader_config *c,
                          struct drv_events_reader **out)
{
	struct drv_events_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return DRV_ENOMEM;
	r->ev = ev;
	r->f = c->filter;
	r->last_id = c->after_id;
	r->follow = c->follow;
	r->gather_ms = c->gather_ms > 0 ? c->gather_ms : DRV_EVENTS_GATHER_MS;
	r->more = true; /* read at once */
	r->stats.min_gap_ms = INT64_MAX;
	r->next_ping_ms = drv_mono_ms() + drv_events_keepalive_ms(ev);
	if (c->head && drv_events_buf_add(&r->out, c->head, strlen(c->head)) != DRV_OK) {
		free(r);
		return DRV_ENOMEM;
	}
	*out = r;
	return DRV_OK;
}

void drv_events_reader_stats(const struct drv_events_reader *r, struct drv_events_reader_stats *out)
{
	*out = r->stats;
}

void drv_events_reader_free(struct drv_events_reader *r)
{
	if (!r)
		return;
	drv_debug("events", "stream ended", "last_id=%lld", (long long)r->last_id);
	free(r->out.p);
	free(r);
}

/* ------------------------------------------------------------------ tail */

static int scalar_id(struct drv_sql *db, const char *sql, const struct drv_events_filter *f,
                     int64_t arg, int64_t *out)
{
	struct drv_sql_stmt *st;
	int rc = DRV_EDB;

	if (drv_sql_prepare(db, sql, &st) != DRV_OK)
		return DRV_EDB;
	drv_sql_bind_int64(st, 1, arg);
	if (f)
		bind_filter(st, f);
	if (drv_sql_step(st) == DRV_SQL_ROW) {
		*out = drv_sql_col_int64(st, 0);
		rc = DRV_OK;
	}
	drv_sql_finalize(st);
	return rc;
}

int drv_events_tail_start(struct drv_events *ev, const struct drv_events_filter *f, long long tail,
                          int64_t *out)
{
	struct drv_sql *db = drv_events_db(ev);
	int64_t max_id, first;
	int rc;

	rc = scalar_id(db, "SELECT coalesce(max(id), 0) + 0 * ?1 FROM events", NULL, 0, &max_id);
	if (rc != DRV_OK || tail == 0) {
		if (rc == DRV_OK)
			*out = max_id;
		return rc;
	}
	rc = scalar_id(db,
	               "SELECT coalesce(min(id), 0) FROM (SELECT id FROM events WHERE " FILTER_SQL
	               " ORDER BY id DESC LIMIT ?1) AS tail",
	               f, tail, &first);
	if (rc == DRV_OK)
		*out = first > 0 ? first - 1 : max_id;
	return rc;
}
