/* events_read.c: one reader of the events hub (events_read.h). */
#include "events_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"

#define BATCH_TEXT "100" /* DRV_EVENTS_BATCH, for the SQL text */
/* PostgreSQL: ids a read spans at most (holes are found in that span) */
#define SPAN_TEXT                "5000"
#define DRV_EVENTS_HOLE_LOOKBACK 1000
/* A position past every id a table will hold, where a stream starts at a
 * higher one (since, Last-Event-ID: up to 2^63-1): FILL_PG adds to the
 * position (the span, the sentinel past the top), which must not overflow
 * (PostgreSQL fails the read, and every read of that stream). */
#define POS_MAX (INT64_MAX / 2)

/* Ids lo..hi missing since the read at seen_ms, whose snapshot's xmax
 * (the next transaction id then) was xmax. */
struct hole {
	int64_t lo, hi;
	int64_t seen_ms;
	int64_t xmax;
};

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
	int64_t scan_from; /* PostgreSQL: holes are looked for above it */
	int hole_ms;
	struct hole holes[DRV_EVENTS_HOLES];
	struct drv_events_reader_stats stats;
	char cursor[DRV_EVENTS_CURSOR_LEN + 1]; /* the last frame's "id:" text */
	/* holes dropped for room during the read under way, and the first;
	 * logged once per read (a cursor's ranges can split into hundreds) */
	int dropped;
	int64_t dropped_lo, dropped_hi;
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
 * commit after a higher one: FILL_PG (below) also finds the holes. */
#define MAX_ID "(SELECT coalesce(max(id), 0) FROM events)"
#define FILL_SQLITE                                                                                \
	"SELECT * FROM (SELECT id, at_ms, kind, deployment_id, agent_id, data, NULL FROM events"   \
	" WHERE id > ?1 AND id <= " MAX_ID " AND " FILTER_SQL " ORDER BY id LIMIT " BATCH_TEXT     \
	") UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, " MAX_ID " ORDER BY 1 NULLS LAST"

/* PostgreSQL, one statement (one snapshot: an event that commits during
 * the read is either in the batch or still a hole, never counted as seen
 * but not sent). Rows by column 0: 0 a hole lo..hi (columns 1, 2) among
 * all ids (filter or not) above ?5 up to top.hi; 1 an event of the batch
 * (ids above ?1 up to top.hi, at most SPAN_TEXT above ?1); 2 the read's
 * top.hi, the highest id (column 2) and pg_snapshot_xmax (column 3). The
 * holes come first: each event's frame names those below it (its cursor,
 * events_cursor.h). The
 * WITH sits in a subquery: sqldb takes a statement that starts with WITH
 * for a write (fenced on a follower, its own transaction on the leader). */
#define FILL_PG                                                                                    \
	"SELECT * FROM (WITH top AS (SELECT least(coalesce(max(id), 0), ?1::bigint + " SPAN_TEXT   \
	") AS hi,"                                                                                 \
	" coalesce(max(id), 0) AS mx FROM events),"                                                \
	" seen AS (SELECT id FROM events WHERE id > ?5::bigint AND id <= (SELECT hi FROM top)"     \
	" UNION ALL SELECT ?5::bigint UNION ALL SELECT greatest(hi, ?5::bigint) + 1 FROM top),"    \
	" gap AS (SELECT id + 1 AS lo, nx - 1 AS hi FROM"                                          \
	" (SELECT id, lead(id) OVER (ORDER BY id) AS nx FROM seen) AS s WHERE nx > id + 1)"        \
	" SELECT 1 AS t, id, at_ms, kind, deployment_id, agent_id, data FROM (SELECT id, at_ms,"   \
	" kind, deployment_id, agent_id, data FROM events WHERE id > ?1::bigint AND id <= "        \
	"(SELECT hi FROM top) AND " FILTER_SQL " ORDER BY id LIMIT " BATCH_TEXT ") AS b"           \
	" UNION ALL SELECT 0, lo, hi, NULL, NULL, NULL, NULL FROM gap"                             \
	" UNION ALL SELECT 2, hi, mx, pg_snapshot_xmax(pg_current_snapshot())::text, NULL, NULL,"  \
	" NULL FROM top) AS r ORDER BY 1, 2"

/* PostgreSQL: the events now in the holes (?1 the ranges' lo, ?5 their hi,
 * as arrays), column 7 whether they match the filter; a last row (column 0
 * is 1) carries pg_snapshot_xmin of the same snapshot (column 1). */
#define HOLES_PG                                                                                   \
	"SELECT 0 AS t, id, at_ms, kind, deployment_id, agent_id, data, (" FILTER_SQL ")::int"     \
	" FROM events JOIN unnest(?1::bigint[], ?5::bigint[]) AS h(lo, hi)"                        \
	" ON id BETWEEN h.lo AND h.hi"                                                             \
	" UNION ALL SELECT 1, pg_snapshot_xmin(pg_current_snapshot())::text::bigint, NULL, NULL,"  \
	" NULL, NULL, NULL, NULL ORDER BY 1, 2"

/* sse_id: the frame's "id:" text (NULL: the event's id). */
static int format_event(struct drv_events_reader *r, struct drv_sql_stmt *st, int c,
                        const char *sse_id)
{
	return drv_events_frame_at(&r->out, sse_id, drv_sql_col_int64(st, c),
	                           drv_sql_col_int64(st, c + 1), drv_sql_col_text(st, c + 2),
	                           drv_sql_col_text(st, c + 3), drv_sql_col_text(st, c + 4),
	                           drv_sql_col_text(st, c + 5));
}

/* Format the next batch of events after r->last_id into r->out. When the
 * batch is not full every event up to the highest committed id has been
 * looked at, so the next read starts after that id even if none of them
 * matched the filter: a stream that follows one deployment does not scan
 * every other event written since its last match at each read (1,000
 * agents reporting: a fifth of droverd's CPU went there). */
static int fill_sqlite(struct drv_events_reader *r, struct drv_sql *db)
{
	struct drv_sql_stmt *st;
	int64_t hi = INT64_MAX;
	int step, n = 0, rc = DRV_OK;

	if (drv_sql_cached(db, FILL_SQLITE, &st) != DRV_OK)
		return DRV_EDB;
	drv_sql_bind_int64(st, 1, r->last_id);
	bind_filter(st, &r->f);
	while (rc == DRV_OK && (step = drv_sql_step(st)) == DRV_SQL_ROW) {
		if (drv_sql_col_null(st, 0)) {
			hi = drv_sql_col_int64(st, 6);
			continue;
		}
		rc = format_event(r, st, 0, NULL);
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

/* ----------------------------------------------------------------- holes */

static void hole_drop(struct drv_events_reader *r, int i)
{
	memmove(&r->holes[i], &r->holes[i + 1],
	        (size_t)(r->stats.holes - i - 1) * sizeof(r->holes[0]));
	r->stats.holes--;
}

/* Room for one more hole: the oldest goes when there is none. */
static struct hole *hole_slot(struct drv_events_reader *r)
{
	if (r->stats.holes == DRV_EVENTS_HOLES) {
		if (r->dropped++ == 0) {
			r->dropped_lo = r->holes[0].lo;
			r->dropped_hi = r->holes[0].hi;
		}
		hole_drop(r, 0);
		r->stats.given_up++;
	}
	return &r->holes[r->stats.holes++];
}

static void hole_add(struct drv_events_reader *r, int64_t lo, int64_t hi, int64_t xmax)
{
	struct hole *h = hole_slot(r);

	*h = (struct hole){.lo = lo, .hi = hi, .seen_ms = drv_mono_ms(), .xmax = xmax};
}

/* Id no longer missing: out of the hole that held it (split in two when
 * it was inside). */
static void hole_fill(struct drv_events_reader *r, int64_t id)
{
	for (int i = 0; i < r->stats.holes; i++) {
		struct hole *h = &r->holes[i], rest;

		if (id < h->lo || id > h->hi)
			continue;
		if (h->lo == h->hi) {
			hole_drop(r, i);
		} else if (id == h->lo) {
			h->lo++;
		} else if (id == h->hi) {
			h->hi--;
		} else {
			rest = *h;
			rest.lo = id + 1;
			h->hi = id - 1;
			*hole_slot(r) = rest; /* h may have moved: not used again */
		}
		return;
	}
}

/* The give-up rule (events_read.h): old enough, and every transaction
 * running when it was found has ended as of the read that found nothing. */
static void holes_expire(struct drv_events_reader *r, int64_t xmin)
{
	int64_t now = drv_mono_ms();

	for (int i = r->stats.holes - 1; i >= 0; i--) {
		struct hole *h = &r->holes[i];

		if (now - h->seen_ms < r->hole_ms || xmin < h->xmax)
			continue;
		drv_debug("events", "hole in event ids given up", "lo=%lld hi=%lld",
		          (long long)h->lo, (long long)h->hi);
		hole_drop(r, i);
		r->stats.given_up++;
	}
}

/* The "id:" text of a frame at position pos (events_cursor.h): pos and
 * the ids below it the client is still owed, the stream's holes and the
 * gaps[0..n) of the read under way; NULL (the event's id) when none. */
static const char *cursor_at(struct drv_events_reader *r, int64_t pos, const struct hole *gaps,
                             int n)
{
	struct drv_events_range h[2 * DRV_EVENTS_HOLES];
	int k = 0;

	for (int i = 0; i < r->stats.holes; i++)
		h[k++] = (struct drv_events_range){r->holes[i].lo, r->holes[i].hi};
	for (int i = 0; i < n && gaps[i].lo < pos; i++)
		h[k++] = (struct drv_events_range){gaps[i].lo, gaps[i].hi};
	if (k == 0)
		return NULL;
	drv_events_cursor_format(pos, h, k, r->cursor, sizeof(r->cursor));
	return r->cursor;
}

/* The holes' bounds as two PostgreSQL array literals. */
static int holes_arrays(const struct drv_events_reader *r, char *lo, char *hi, size_t cap)
{
	size_t a = 0, b = 0;

	for (int i = 0; i < r->stats.holes; i++) {
		a += (size_t)snprintf(lo + a, cap - a, "%c%lld", i ? ',' : '{',
		                      (long long)r->holes[i].lo);
		b += (size_t)snprintf(hi + b, cap - b, "%c%lld", i ? ',' : '{',
		                      (long long)r->holes[i].hi);
		if (a >= cap - 2 || b >= cap - 2)
			return DRV_EINVAL;
	}
	lo[a++] = '}';
	hi[b++] = '}';
	lo[a] = hi[b] = '\0';
	return DRV_OK;
}

/* Look for the holes again: events found are sent (those that match) under
 * the stream's position; then holes old enough are given up. */
static int holes_read(struct drv_events_reader *r, struct drv_sql *db)
{
	char lo[DRV_EVENTS_HOLES * 22 + 4], hi[sizeof(lo)], pos[24];
	struct drv_sql_stmt *st;
	const char *sse;
	int64_t xmin = 0;
	int step, rc;

	if (r->stats.holes == 0)
		return DRV_OK;
	if ((rc = holes_arrays(r, lo, hi, sizeof(lo))) != DRV_OK)
		return rc;
	if (drv_sql_cached(db, HOLES_PG, &st) != DRV_OK)
		return DRV_EDB;
	drv_sql_bind_text(st, 1, lo);
	bind_filter(st, &r->f);
	drv_sql_bind_text(st, 5, hi);
	while (rc == DRV_OK && (step = drv_sql_step(st)) == DRV_SQL_ROW) {
		if (drv_sql_col_int64(st, 0) == 1) {
			xmin = drv_sql_col_int64(st, 1);
			continue;
		}
		hole_fill(r, drv_sql_col_int64(st, 1));
		if (drv_sql_col_int64(st, 7) == 0)
			continue;
		snprintf(pos, sizeof(pos), "%lld", (long long)r->last_id);
		sse = cursor_at(r, r->last_id, NULL, 0);
		rc = format_event(r, st, 1, sse != NULL ? sse : pos);
		r->stats.late++;
	}
	if (rc == DRV_OK && step != DRV_SQL_DONE)
		rc = DRV_EDB;
	drv_sql_done(st);
	if (rc == DRV_OK && xmin > 0)
		holes_expire(r, xmin);
	return rc;
}

/* The PostgreSQL read: the batch as on SQLite, bounded by the highest id
 * of the read's snapshot, and the holes below the new position. */
static int fill_pg(struct drv_events_reader *r, struct drv_sql *db)
{
	struct drv_sql_stmt *st;
	struct hole gaps[DRV_EVENTS_HOLES];
	int64_t last = r->last_id, top = r->last_id, mx = 0, xmax = 0;
	int step, n = 0, ngaps = 0, rc = DRV_OK;

	if (drv_sql_cached(db, FILL_PG, &st) != DRV_OK)
		return DRV_EDB;
	drv_sql_bind_int64(st, 1, r->last_id);
	bind_filter(st, &r->f);
	drv_sql_bind_int64(st, 5, r->scan_from);
	while (rc == DRV_OK && (step = drv_sql_step(st)) == DRV_SQL_ROW) {
		int64_t t = drv_sql_col_int64(st, 0);

		if (t == 1) {
			last = drv_sql_col_int64(st, 1);
			rc = format_event(r, st, 1, cursor_at(r, last, gaps, ngaps));
			n++;
		} else if (t == 0 && ngaps < DRV_EVENTS_HOLES) {
			gaps[ngaps].lo = drv_sql_col_int64(st, 1);
			gaps[ngaps++].hi = drv_sql_col_int64(st, 2);
		} else if (t == 0) {
			r->stats.given_up++; /* more holes in one read than a stream keeps */
		} else if (t == 2) {
			top = drv_sql_col_int64(st, 1);
			mx = drv_sql_col_int64(st, 2);
			xmax = strtoll(drv_sql_col_text(st, 3), NULL, 10);
		}
	}
	if (rc == DRV_OK && step != DRV_SQL_DONE)
		rc = DRV_EDB;
	drv_sql_done(st);
	if (rc != DRV_OK)
		return rc;
	if (n < DRV_EVENTS_BATCH && top > last)
		last = top;
	for (int i = 0; i < r->stats.holes; i++) {
		if (r->holes[i].xmax == 0) /* a cursor's (reader_new): found now */
			r->holes[i].xmax = xmax;
	}
	for (int i = 0; i < ngaps && gaps[i].lo <= last; i++)
		hole_add(r, gaps[i].lo, gaps[i].hi < last ? gaps[i].hi : last, xmax);
	r->more = n == DRV_EVENTS_BATCH || mx > last;
	r->last_id = r->scan_from = last;
	return holes_read(r, db);
}

static int fill(struct drv_events_reader *r)
{
	struct drv_sql *db = drv_events_db(r->ev);
	int rc;

	if (drv_sql_engine_of(db) == DRV_SQL_SQLITE)
		return fill_sqlite(r, db);
	rc = fill_pg(r, db);
	if (r->dropped > 0) {
		drv_warn("events", "too many holes in event ids, some given up",
		         "given_up=%d first_lo=%lld first_hi=%lld", r->dropped,
		         (long long)r->dropped_lo, (long long)r->dropped_hi);
		r->dropped = 0;
	}
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

/* A cursor's holes (events_cursor.h) become the stream's: it lists every
 * id below after_id the client is still owed, so the ids below are not
 * scanned again (they would find the same holes twice). Their give-up
 * window starts now, their transactions are those running at the first
 * read (xmax 0 until then). SQLite has no holes: a cursor's are ignored. */
static void resume_holes(struct drv_events_reader *r, const struct drv_events_reader_config *c)
{
	if (drv_sql_engine_of(drv_events_db(r->ev)) == DRV_SQL_SQLITE)
		return;
	r->scan_from = r->last_id;
	for (int i = 0; i < c->n_holes && i < DRV_EVENTS_HOLES; i++) {
		if (c->holes[i].lo < 1 || c->holes[i].lo > c->holes[i].hi ||
		    c->holes[i].hi >= r->last_id)
			continue;
		r->holes[r->stats.holes++] = (struct hole){
		        .lo = c->holes[i].lo, .hi = c->holes[i].hi, .seen_ms = drv_mono_ms()};
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
	r->last_id = c->after_id < POS_MAX ? c->after_id : POS_MAX;
	r->scan_from =
	        r->last_id > DRV_EVENTS_HOLE_LOOKBACK ? r->last_id - DRV_EVENTS_HOLE_LOOKBACK : 0;
	if (c->n_holes > 0)
		resume_holes(r, c);
	r->hole_ms = c->hole_ms > 0 ? c->hole_ms : DRV_EVENTS_HOLE_MS;
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
