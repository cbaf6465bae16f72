/* events_api.c: GET /v1/events, the server-sent event stream over the events hub. */
#include "events_api.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"

#define BATCH      100
#define BATCH_TEXT "100" /* the same, for the SQL text */
#define TAIL_MAX   1000
#define TAIL_DEF   100
#define RETRY_MS   2000
#define FILTER_MAX DRV_EVENT_ID_MAX

struct filter {
	char deployment[FILTER_MAX + 1];
	char agent[FILTER_MAX + 1];
	char kind[DRV_EVENT_KIND_MAX + 1];
};

struct ev_stream {
	struct drv_events *ev;
	int64_t last_id;
	bool follow;
	struct filter f;
	char *buf;
	size_t len, off, cap;
	int64_t next_ping_ms;
};

/* --------------------------------------------------------------- streams */

static int buf_append(struct ev_stream *s, const char *text, size_t len)
{
	if (s->len + len > s->cap) {
		size_t cap = (s->len + len) * 2;
		char *grown = realloc(s->buf, cap);
		if (!grown)
			return DRV_ENOMEM;
		s->buf = grown;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, text, len);
	s->len += len;
	return DRV_OK;
}

static json_t *row_json(struct drv_sql_stmt *st)
{
	const char *data = drv_sql_col_text(st, 5);
	json_t *d = data ? json_loads(data, 0, NULL) : NULL;

	if (!d)
		d = json_object();
	return json_pack("{s:I, s:I, s:s, s:s, s:s, s:o}", "id",
	                 (json_int_t)drv_sql_col_int64(st, 0), "at_ms",
	                 (json_int_t)drv_sql_col_int64(st, 1), "kind", drv_sql_col_text(st, 2),
	                 "deployment_id", drv_sql_col_text(st, 3), "agent_id",
	                 drv_sql_col_text(st, 4), "data", d);
}

static int format_event(struct ev_stream *s, struct drv_sql_stmt *st)
{
	json_t *obj = row_json(st);
	const char *kind = drv_sql_col_text(st, 2);
	char *json, head[160];
	int rc;

	if (!obj)
		return DRV_ENOMEM;
	json = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (!json)
		return DRV_ENOMEM;
	if (!drv_events_kind_ok(kind))
		kind = "message";
	snprintf(head, sizeof(head),
	         "id: %lld\nevent: %s\ndata: ", (long long)drv_sql_col_int64(st, 0), kind);
	rc = buf_append(s, head, strlen(head));
	if (rc == DRV_OK)
		rc = buf_append(s, json, strlen(json));
	if (rc == DRV_OK)
		rc = buf_append(s, "\n\n", 2);
	free(json);
	return rc;
}

#define FILTER_SQL                                                                                 \
	"(?2 = '' OR deployment_id = ?2) AND (?3 = '' OR agent_id = ?3) AND (?4 = '' OR kind = "   \
	"?4)"

static void bind_filter(struct drv_sql_stmt *st, const struct filter *f)
{
	drv_sql_bind_text(st, 2, f->deployment);
	drv_sql_bind_text(st, 3, f->agent);
	drv_sql_bind_text(st, 4, f->kind);
}

/* The highest event id now, or INT64_MAX when that does not bound what is
 * still to come: on SQLite writers are serialized, so every id up to the
 * highest committed one is committed; on PostgreSQL a lower id may still
 * commit after a higher one. */
static int64_t committed_upto(struct drv_sql *db)
{
	struct drv_sql_stmt *st;
	int64_t hi = INT64_MAX;

	if (drv_sql_engine_of(db) != DRV_SQL_SQLITE ||
	    drv_sql_cached(db, "SELECT coalesce(max(id), 0) FROM events", &st) != DRV_OK)
		return INT64_MAX;
	if (drv_sql_step(st) == DRV_SQL_ROW)
		hi = drv_sql_col_int64(st, 0);
	drv_sql_done(st);
	return hi;
}

/* Format the next batch of events after s->last_id into s->buf. When the
 * batch is not full every event up to the highest committed id has been
 * looked at, so the next fill starts after that id even if none of them
 * matched the filter: a stream that follows one deployment no longer scans
 * every other event written since its last match at each wake-up (1,000
 * agents reporting: a fifth of droverd's CPU went there). */
static int fill(struct ev_stream *s)
{
	struct drv_sql *db = drv_events_db(s->ev);
	struct drv_sql_stmt *st;
	int64_t hi = committed_upto(db);
	int step, n = 0, rc = DRV_OK;

	if (drv_sql_cached(db,
	                   "SELECT id, at_ms, kind, deployment_id, agent_id, data FROM events "
	                   "WHERE id > ?1 AND id <= ?5 AND " FILTER_SQL
	                   " ORDER BY id LIMIT " BATCH_TEXT,
	                   &st) != DRV_OK)
		return DRV_EDB;
	drv_sql_bind_int64(st, 1, s->last_id);
	bind_filter(st, &s->f);
	drv_sql_bind_int64(st, 5, hi);
	while (rc == DRV_OK && (step = drv_sql_step(st)) == DRV_SQL_ROW) {
		rc = format_event(s, st);
		if (rc == DRV_OK) {
			s->last_id = drv_sql_col_int64(st, 0);
			n++;
		}
	}
	if (rc == DRV_OK && step != DRV_SQL_DONE)
		rc = DRV_EDB;
	if (rc == DRV_OK && n < BATCH && hi != INT64_MAX && hi > s->last_id)
		s->last_id = hi;
	drv_sql_done(st);
	return rc;
}

/* Wait until an event is published, the hub closes, or the next ping is
 * due. Returns false when the hub is closing. */
static bool wait_for_news(struct ev_stream *s, uint64_t seen_gen)
{
	return drv_events_wait(s->ev, seen_gen, s->next_ping_ms);
}

static ssize_t stream_read(void *state, char *out, size_t cap)
{
	static const char ping[] = ": keep-alive\n\n";
	struct ev_stream *s = state;
	uint64_t gen;
	bool closing;

	for (;;) {
		if (s->off < s->len) {
			size_t n = s->len - s->off < cap ? s->len - s->off : cap;
			memcpy(out, s->buf + s->off, n);
			s->off += n;
			s->next_ping_ms = drv_mono_ms() + drv_events_keepalive_ms(s->ev);
			return (ssize_t)n;
		}
		s->off = s->len = 0;
		gen = drv_events_gen(s->ev, &closing);
		if (closing || fill(s) != DRV_OK)
			return -1;
		if (s->len)
			continue;
		if (!s->follow || !wait_for_news(s, gen))
			return -1;
		if (drv_mono_ms() >= s->next_ping_ms && buf_append(s, ping, sizeof(ping) - 1))
			return -1;
	}
}

static void stream_free(void *state)
{
	struct ev_stream *s = state;

	drv_debug("events", "stream ended", "last_id=%lld", (long long)s->last_id);
	free(s->buf);
	free(s);
}

static const struct drv_http_stream_ops event_stream_ops = {
        .read = stream_read,
        .free = stream_free,
};

/* ----------------------------------------------------------------- route */

static int scalar_id(struct drv_sql *db, const char *sql, const struct filter *f, int64_t arg,
                     int64_t *out)
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

/* The id after which a stream of the last `tail` matching events starts. */
static int tail_start(struct drv_sql *db, const struct filter *f, long long tail, int64_t *out)
{
	char sql[512];
	int64_t max_id, first;
	int rc;

	rc = scalar_id(db, "SELECT coalesce(max(id), 0) + 0 * ?1 FROM events", NULL, 0, &max_id);
	if (rc != DRV_OK || tail == 0) {
		if (rc == DRV_OK)
			*out = max_id;
		return rc;
	}
	snprintf(sql, sizeof(sql),
	         "SELECT coalesce(min(id), 0) FROM (SELECT id FROM events WHERE %s "
	         "ORDER BY id DESC LIMIT ?1) AS tail",
	         FILTER_SQL);
	rc = scalar_id(db, sql, f, tail, &first);
	if (rc == DRV_OK)
		*out = first > 0 ? first - 1 : max_id;
	return rc;
}

static int copy_filter(struct drv_http_req *req, struct drv_http_resp *resp, const char *name,
                       char *dst, size_t cap)
{
	const char *v = drv_http_query(req, name);

	if (v && strlen(v) >= cap) {
		drv_http_error_at(resp, 400, "too-long", name, 0, "query argument %s is too long",
		                  name);
		return DRV_EINVAL;
	}
	snprintf(dst, cap, "%s", v ? v : "");
	return DRV_OK;
}

static int parse_follow(struct drv_http_req *req, struct drv_http_resp *resp, bool *follow)
{
	const char *v = drv_http_query(req, "follow");

	if (!v || strcmp(v, "1") == 0 || strcmp(v, "true") == 0) {
		*follow = true;
		return DRV_OK;
	}
	if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0) {
		*follow = false;
		return DRV_OK;
	}
	drv_http_error_at(resp, 400, "bad-request", "follow", 0, "follow must be 0 or 1");
	return DRV_EINVAL;
}

/* Last-Event-ID overrides since; neither: start tail events back. */
static int start_id(struct drv_http_req *req, struct drv_http_resp *resp, struct ev_stream *s)
{
	const char *lei = drv_http_header(req, "Last-Event-ID");
	long long since, tail;
	char *end;

	if (lei) {
		since = strtoll(lei, &end, 10);
		if (*lei == '\0' || *end != '\0' || since < 0) {
			drv_http_error_at(resp, 400, "bad-request", "Last-Event-ID", 0,
			                  "Last-Event-ID must be an event id");
			return DRV_EINVAL;
		}
		s->last_id = since;
		return DRV_OK;
	}
	if (drv_http_query_int(req, resp, "since", -1, INT64_MAX, -1, &since) != DRV_OK ||
	    drv_http_query_int(req, resp, "tail", 0, TAIL_MAX, TAIL_DEF, &tail) != DRV_OK)
		return DRV_EINVAL;
	if (since >= 0) {
		s->last_id = since;
		return DRV_OK;
	}
	return tail_start(drv_events_db(s->ev), &s->f, tail, &s->last_id);
}

static int events_get(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	struct drv_events *ev = ctx;
	struct ev_stream *s = calloc(1, sizeof(*s));
	char retry[32];
	int rc;

	if (!s)
		return DRV_ENOMEM;
	s->ev = ev;
	rc = copy_filter(req, resp, "deployment", s->f.deployment, sizeof(s->f.deployment));
	if (rc == DRV_OK)
		rc = copy_filter(req, resp, "agent", s->f.agent, sizeof(s->f.agent));
	if (rc == DRV_OK)
		rc = copy_filter(req, resp, "kind", s->f.kind, sizeof(s->f.kind));
	if (rc == DRV_OK)
		rc = parse_follow(req, resp, &s->follow);
	if (rc == DRV_OK)
		rc = start_id(req, resp, s);
	snprintf(retry, sizeof(retry), "retry: %d\n\n", RETRY_MS);
	if (rc == DRV_OK)
		rc = buf_append(s, retry, strlen(retry));
	s->next_ping_ms = drv_mono_ms() + drv_events_keepalive_ms(ev);
	if (rc == DRV_OK)
		rc = drv_http_stream(resp, "text/event-stream", &event_stream_ops, s);
	if (rc != DRV_OK) {
		stream_free(s);
		return rc == DRV_ESTATE ? DRV_OK : rc;
	}
	return DRV_OK;
}

static const struct drv_http_route event_routes[] = {
        {.method = "GET",
         .pattern = "/v1/events",
         .min_role = DRV_ROLE_VIEWER,
         .handler = events_get},
};

static void shutdown_hook(void *ctx)
{
	drv_events_shutdown(ctx);
}

int drv_events_add_routes(struct drv_http_server *srv, struct drv_events *ev)
{
	int rc = drv_http_add_routes(srv, event_routes, 1, ev);

	if (rc == DRV_OK)
		rc = drv_http_on_stop(srv, shutdown_hook, ev);
	return rc;
}
