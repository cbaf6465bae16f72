/* events.c: the events hub: insert, publish, wake and wait. GET /v1/events is api/events_api.c. */
#include "events.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "log.h"

struct drv_events {
	struct drv_sql *db;
	int keepalive_ms;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_cond_t closed; /* broadcast only at shutdown: lingering streams */
	uint64_t gen;
	bool closing;
};

/* ------------------------------------------------------------------ hub */

int drv_events_new(struct drv_sql *db, int keepalive_ms, struct drv_events **out)
{
	struct drv_events *ev = calloc(1, sizeof(*ev));
	pthread_condattr_t ca;

	if (!ev)
		return DRV_ENOMEM;
	ev->db = db;
	ev->keepalive_ms = keepalive_ms > 0 ? keepalive_ms : DRV_EVENTS_KEEPALIVE_MS;
	pthread_mutex_init(&ev->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ev->cond, &ca);
	pthread_cond_init(&ev->closed, &ca);
	pthread_condattr_destroy(&ca);
	*out = ev;
	return DRV_OK;
}

void drv_events_free(struct drv_events *ev)
{
	if (!ev)
		return;
	pthread_cond_destroy(&ev->cond);
	pthread_cond_destroy(&ev->closed);
	pthread_mutex_destroy(&ev->lock);
	free(ev);
}

void drv_events_notify(struct drv_events *ev)
{
	pthread_mutex_lock(&ev->lock);
	ev->gen++;
	pthread_cond_broadcast(&ev->cond);
	pthread_mutex_unlock(&ev->lock);
}

void drv_events_shutdown(struct drv_events *ev)
{
	pthread_mutex_lock(&ev->lock);
	ev->closing = true;
	pthread_cond_broadcast(&ev->cond);
	pthread_cond_broadcast(&ev->closed);
	pthread_mutex_unlock(&ev->lock);
}

bool drv_events_kind_ok(const char *kind)
{
	size_t n = kind ? strlen(kind) : 0;

	if (n == 0 || n > DRV_EVENT_KIND_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = kind[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("_.-", c)))
			return false;
	}
	return true;
}

int drv_events_insert(struct drv_sql *db, const char *kind, const char *deployment_id,
                      const char *agent_id, const json_t *data, int64_t *id_out)
{
	struct drv_sql_stmt *st;
	char *text;
	int rc;

	if (!drv_events_kind_ok(kind) ||
	    (deployment_id && strlen(deployment_id) > DRV_EVENT_ID_MAX) ||
	    (agent_id && strlen(agent_id) > DRV_EVENT_ID_MAX) || (data && !json_is_object(data)))
		return DRV_EINVAL;
	text = data ? json_dumps(data, JSON_COMPACT) : strdup("{}");
	if (!text)
		return DRV_ENOMEM;
	if (strlen(text) > DRV_EVENT_DATA_MAX) {
		free(text);
		return DRV_ETOOBIG;
	}
	/* cached: an event goes with every report and deployment transition */
	if (drv_sql_cached(db,
	                   "INSERT INTO events(at_ms, kind, deployment_id, agent_id, data) "
	                   "VALUES (?, ?, ?, ?, ?) RETURNING id",
	                   &st) != DRV_OK) {
		free(text);
		return DRV_EDB;
	}
	drv_sql_bind_int64(st, 1, drv_wall_ms());
	drv_sql_bind_text(st, 2, kind);
	drv_sql_bind_text(st, 3, deployment_id ? deployment_id : "");
	drv_sql_bind_text(st, 4, agent_id ? agent_id : "");
	drv_sql_bind_text(st, 5, text);
	rc = drv_sql_step(st) == DRV_SQL_ROW ? DRV_OK : DRV_EDB;
	if (rc == DRV_OK && id_out)
		*id_out = drv_sql_col_int64(st, 0);
	if (rc == DRV_OK && drv_sql_step(st) != DRV_SQL_DONE)
		rc = DRV_EDB;
	if (rc != DRV_OK)
		drv_error("events", "cannot insert event", "kind=%s error=\"%s\"", kind,
		          drv_sql_errmsg(db));
	drv_sql_done(st);
	free(text);
	return rc;
}

/* [kind, agent, data text] of one event, checked; NULL with *rc set. */
static json_t *event_row(const json_t *e, int *rc)
{
	const char *kind = json_string_value(json_object_get(e, "kind"));
	const char *agent = json_string_value(json_object_get(e, "agent"));
	const json_t *data = json_object_get(e, "data");
	char *text;
	json_t *row;

	*rc = DRV_EINVAL;
	if (!drv_events_kind_ok(kind) || (agent && strlen(agent) > DRV_EVENT_ID_MAX) ||
	    (data && !json_is_object(data)))
		return NULL;
	*rc = DRV_ENOMEM;
	text = data ? json_dumps(data, JSON_COMPACT) : strdup("{}");
	if (!text)
		return NULL;
	if (strlen(text) > DRV_EVENT_DATA_MAX) {
		*rc = DRV_ETOOBIG;
		free(text);
		return NULL;
	}
	row = json_pack("[s, s, s]", kind, agent ? agent : "", text);
	free(text);
	if (row != NULL)
		*rc = DRV_OK;
	return row;
}

/* One INSERT ... SELECT over a JSON array of rows (sql: the engine's
 * text; at_ms, then param, then the array): the array's order is the ids'
 * order. what names the rows in a failure's log line. */
static int insert_json_rows(struct drv_sql *db, const char *sql, const char *param,
                            const char *rows, const char *what)
{
	struct drv_sql_stmt *st;
	int rc;

	if (drv_sql_cached(db, sql, &st) != DRV_OK)
		return DRV_EDB;
	drv_sql_bind_int64(st, 1, drv_wall_ms());
	drv_sql_bind_text(st, 2, param);
	drv_sql_bind_text(st, 3, rows);
	rc = drv_sql_step(st) == DRV_SQL_DONE ? DRV_OK : DRV_EDB;
	if (rc != DRV_OK)
		drv_error("events", "cannot insert events", "rows=%s error=\"%s\"", what,
		          drv_sql_errmsg(db));
	drv_sql_done(st);
	return rc;
}

static int insert_rows(struct drv_sql *db, const char *deployment_id, const char *rows)
{
	return insert_json_rows(
	        db,
	        drv_sql_engine_of(db) == DRV_SQL_PG
	                ? "INSERT INTO events(at_ms, kind, deployment_id, agent_id, data)"
	                  " SELECT ?, x->>0, ?, x->>1, x->>2"
	                  " FROM json_array_elements(?::json) WITH ORDINALITY AS t(x, i)"
	                  " ORDER BY i"
	                : "INSERT INTO events(at_ms, kind, deployment_id, agent_id, data)"
	                  " SELECT ?, json_extract(value, '$[0]'), ?,"
	                  " json_extract(value, '$[1]'), json_extract(value, '$[2]')"
	                  " FROM json_each(?) ORDER BY key",
	        deployment_id ? deployment_id : "", rows, deployment_id ? deployment_id : "");
}

int drv_events_insert_all(struct drv_sql *db, const char *deployment_id, const json_t *events)
{
	json_t *rows, *e;
	char *text;
	size_t i;
	int rc = DRV_OK;

	if (json_array_size(events) == 0)
		return DRV_OK;
	if (deployment_id && strlen(deployment_id) > DRV_EVENT_ID_MAX)
		return DRV_EINVAL;
	if ((rows = json_array()) == NULL)
		return DRV_ENOMEM;
	json_array_foreach(events, i, e)
	{
		json_t *row = event_row(e, &rc);

		if (row == NULL || json_array_append_new(rows, row) != 0) {
			rc = rc == DRV_OK ? DRV_ENOMEM : rc;
			break;
		}
	}
	text = rc == DRV_OK ? json_dumps(rows, JSON_COMPACT) : NULL;
	json_decref(rows);
	if (rc == DRV_OK && text == NULL)
		rc = DRV_ENOMEM;
	if (rc == DRV_OK)
		rc = insert_rows(db, deployment_id, text);
	free(text);
	return rc;
}

int drv_events_insert_rows(struct drv_sql *db, const char *kind, const char *rows)
{
	if (!drv_events_kind_ok(kind))
		return DRV_EINVAL;
	/* the data objects as the text they were */
	return insert_json_rows(
	        db,
	        drv_sql_engine_of(db) == DRV_SQL_PG
	                ? "INSERT INTO events(at_ms, kind, deployment_id, agent_id, data)"
	                  " SELECT ?, ?, x->>0, x->>1, (x->2)::text"
	                  " FROM json_array_elements(?::json) WITH ORDINALITY AS t(x, i)"
	                  " ORDER BY i"
	                : "INSERT INTO events(at_ms, kind, deployment_id, agent_id, data)"
	                  " SELECT ?, ?, json_extract(value, '$[0]'),"
	                  " json_extract(value, '$[1]'), json_extract(value, '$[2]')"
	                  " FROM json_each(?) ORDER BY key",
	        kind, rows, kind);
}

int drv_events_publish(struct drv_events *ev, const char *kind, const char *deployment_id,
                       const char *agent_id, const json_t *data, int64_t *id_out)
{
	int64_t id;
	int rc;

	/* The insert returns its own id: nothing to hold between the two. */
	rc = drv_events_insert(ev->db, kind, deployment_id, agent_id, data, &id);
	if (rc != DRV_OK)
		return rc;
	drv_events_notify(ev);
	if (id_out)
		*id_out = id;
	return DRV_OK;
}

/* --------------------------------------------------------------- readers */

struct drv_sql *drv_events_db(const struct drv_events *ev)
{
	return ev->db;
}

int drv_events_keepalive_ms(const struct drv_events *ev)
{
	return ev->keepalive_ms;
}

uint64_t drv_events_gen(struct drv_events *ev, bool *closing)
{
	uint64_t gen;

	pthread_mutex_lock(&ev->lock);
	gen = ev->gen;
	*closing = ev->closing;
	pthread_mutex_unlock(&ev->lock);
	return gen;
}

static struct timespec mono_abs(int64_t at_ms)
{
	struct timespec ts = {.tv_sec = at_ms / 1000, .tv_nsec = (at_ms % 1000) * 1000000L};
	return ts;
}

bool drv_events_wait(struct drv_events *ev, uint64_t seen_gen, int64_t until_mono_ms)
{
	struct timespec until = mono_abs(until_mono_ms);
	bool open;

	pthread_mutex_lock(&ev->lock);
	while (ev->gen == seen_gen && !ev->closing && drv_mono_ms() < until_mono_ms)
		pthread_cond_timedwait(&ev->cond, &ev->lock, &until);
	open = !ev->closing;
	pthread_mutex_unlock(&ev->lock);
	return open;
}

bool drv_events_linger(struct drv_events *ev, int64_t until_mono_ms)
{
	struct timespec until = mono_abs(until_mono_ms);
	bool open;

	pthread_mutex_lock(&ev->lock);
	while (!ev->closing && drv_mono_ms() < until_mono_ms)
		pthread_cond_timedwait(&ev->closed, &ev->lock, &until);
	open = !ev->closing;
	pthread_mutex_unlock(&ev->lock);
	return open;
}

/* ---------------------------------------------------------------- frames */

/* Room for len more bytes. */
static int buf_reserve(struct drv_events_buf *b, size_t len)
{
	size_t cap;
	char *grown;

	if (b->len + len <= b->cap)
		return DRV_OK;
	cap = (b->len + len) * 2;
	if ((grown = realloc(b->p, cap)) == NULL)
		return DRV_ENOMEM;
	b->p = grown;
	b->cap = cap;
	return DRV_OK;
}

int drv_events_buf_add(struct drv_events_buf *b, const char *text, size_t len)
{
	int rc = buf_reserve(b, len);

	if (rc != DRV_OK)
		return rc;
	memcpy(b->p + b->len, text, len);
	b->len += len;
	return DRV_OK;
}

/* Printable ASCII that JSON does not escape: copied between quotes as is. */
static bool plain(const char *s)
{
	for (; *s; s++) {
		if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
			return false;
	}
	return true;
}

/* What the inserts write: a compact JSON object on one line. */
static bool plain_object(const char *data, size_t n)
{
	return n >= 2 && data[0] == '{' && data[n - 1] == '}' && memchr(data, '\n', n) == NULL &&
	       memchr(data, '\r', n) == NULL;
}

/* The data line through jansson: data parsed ({} when it is not JSON) and
 * the whole object dumped. */
static char *slow_line(int64_t id, int64_t at_ms, const char *kind, const char *dep,
                       const char *agent, const char *data)
{
	json_t *d = data ? json_loads(data, 0, NULL) : NULL;
	json_t *obj;
	char *text;

	if (!d)
		d = json_object();
	obj = json_pack("{s:I, s:I, s:s, s:s, s:s, s:o}", "id", (json_int_t)id, "at_ms",
	                (json_int_t)at_ms, "kind", kind, "deployment_id", dep, "agent_id", agent,
	                "data", d);
	if (!obj)
		return NULL;
	text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	return text;
}

/* The frame written straight into b: one copy of the stored data text. */
static int fast_frame(struct drv_events_buf *b, const char *sse_id, int64_t id, int64_t at_ms,
                      const char *name, const char *kind, const char *dep, const char *agent,
                      const char *data, size_t n)
{
	size_t head =
	        160 + strlen(sse_id) + strlen(name) + strlen(kind) + strlen(dep) + strlen(agent);
	int len, rc = buf_reserve(b, head + n + 3);

	if (rc != DRV_OK)
		return rc;
	len = snprintf(b->p + b->len, head,
	               "id: %s\nevent: %s\ndata: {\"id\":%lld,\"at_ms\":%lld,\"kind\":\"%s\","
	               "\"deployment_id\":\"%s\",\"agent_id\":\"%s\",\"data\":",
	               sse_id, name, (long long)id, (long long)at_ms, kind, dep, agent);
	if (len < 0 || (size_t)len >= head)
		return DRV_EINVAL;
	b->len += (size_t)len;
	memcpy(b->p + b->len, data, n);
	b->len += n;
	memcpy(b->p + b->len, "}\n\n", 3);
	b->len += 3;
	return DRV_OK;
}

int drv_events_frame(struct drv_events_buf *b, int64_t id, int64_t at_ms, const char *kind,
                     const char *deployment_id, const char *agent_id, const char *data)
{
	return drv_events_frame_at(b, NULL, id, at_ms, kind, deployment_id, agent_id, data);
}

int drv_events_frame_at(struct drv_events_buf *b, const char *sse_id, int64_t id, int64_t at_ms,
                        const char *kind, const char *deployment_id, const char *agent_id,
                        const char *data)
{
	const char *dep = deployment_id ? deployment_id : "";
	const char *agent = agent_id ? agent_id : "";
	const char *name = drv_events_kind_ok(kind) ? kind : "message";
	size_t n = data ? strlen(data) : 0;
	char head[DRV_EVENT_KIND_MAX + 64], num[24], *line;
	int len, rc;

	if (sse_id == NULL) {
		snprintf(num, sizeof(num), "%lld", (long long)id);
		sse_id = num;
	}
	if (kind && plain(kind) && plain(dep) && plain(agent) && plain_object(data, n))
		return fast_frame(b, sse_id, id, at_ms, name, kind, dep, agent, data, n);
	if (!kind || (line = slow_line(id, at_ms, kind, dep, agent, data)) == NULL)
		return DRV_ENOMEM;
	len = snprintf(head, sizeof(head), "\nevent: %s\ndata: ", name);
	rc = drv_events_buf_add(b, "id: ", 4);
	if (rc == DRV_OK)
		rc = drv_events_buf_add(b, sse_id, strlen(sse_id));
	if (rc == DRV_OK)
		rc = drv_events_buf_add(b, head, (size_t)len);
	if (rc == DRV_OK)
		rc = drv_events_buf_add(b, line, strlen(line));
	if (rc == DRV_OK)
		rc = drv_events_buf_add(b, "\n\n", 2);
	free(line);
	return rc;
}
