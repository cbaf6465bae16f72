/* events_api.c: GET /v1/events, the server-sent event stream over the events hub. */
#include "events_api.h"
#include "events_read.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"

#define TAIL_MAX 1000
#define TAIL_DEF 100
#define RETRY_MS 2000

/* --------------------------------------------------------------- streams */

static ssize_t stream_read(void *state, char *out, size_t cap)
{
	return drv_events_reader_next(state, out, cap);
}

static void stream_free(void *state)
{
	drv_events_reader_free(state);
}

static const struct drv_http_stream_ops event_stream_ops = {
        .read = stream_read,
        .free = stream_free,
};

/* ----------------------------------------------------------------- route */

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

/* Last-Event-ID: an event id, or a cursor with the ids below it still
 * owed (events_cursor.h), as a frame's "id:" line gave it. */
static int resume_at(const char *lei, struct drv_http_resp *resp,
                     struct drv_events_reader_config *c)
{
	struct drv_events_cursor cur;
	const char *why = "";
	int rc = drv_events_cursor_parse(lei, strlen(lei), &cur, &why);

	if (rc == DRV_ETOOBIG) {
		drv_http_error_at(resp, 400, "too-long", "Last-Event-ID", 0,
		                  "Last-Event-ID is longer than %d characters",
		                  DRV_EVENTS_CURSOR_LEN);
		return DRV_EINVAL;
	}
	if (rc != DRV_OK) {
		drv_http_error_at(resp, 400, "bad-request", "Last-Event-ID", 0,
		                  "Last-Event-ID must be an event id or a stream's id: line (%s)",
		                  why);
		return DRV_EINVAL;
	}
	c->after_id = cur.pos;
	c->n_holes = cur.n_holes;
	memcpy(c->holes, cur.holes, (size_t)cur.n_holes * sizeof(cur.holes[0]));
	return DRV_OK;
}

/* Last-Event-ID overrides since; neither: start tail events back. */
static int start_id(struct drv_http_req *req, struct drv_http_resp *resp, struct drv_events *ev,
                    struct drv_events_reader_config *c)
{
	const char *lei = drv_http_header(req, "Last-Event-ID");
	long long since, tail;

	if (lei)
		return resume_at(lei, resp, c);
	if (drv_http_query_int(req, resp, "since", -1, INT64_MAX, -1, &since) != DRV_OK ||
	    drv_http_query_int(req, resp, "tail", 0, TAIL_MAX, TAIL_DEF, &tail) != DRV_OK)
		return DRV_EINVAL;
	if (since >= 0) {
		c->after_id = since;
		return DRV_OK;
	}
	return drv_events_tail_start(ev, &c->filter, tail, &c->after_id);
}

static int parse_request(struct drv_http_req *req, struct drv_http_resp *resp,
                         struct drv_events *ev, struct drv_events_reader_config *c)
{
	struct drv_events_filter *f = &c->filter;
	int rc = copy_filter(req, resp, "deployment", f->deployment, sizeof(f->deployment));

	if (rc == DRV_OK)
		rc = copy_filter(req, resp, "agent", f->agent, sizeof(f->agent));
	if (rc == DRV_OK)
		rc = copy_filter(req, resp, "kind", f->kind, sizeof(f->kind));
	if (rc == DRV_OK)
		rc = parse_follow(req, resp, &c->follow);
	if (rc == DRV_OK)
		rc = start_id(req, resp, ev, c);
	return rc;
}

static int events_get(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	struct drv_events *ev = ctx;
	struct drv_events_reader_config c = {0};
	struct drv_events_reader *r = NULL;
	char retry[32];
	int rc;

	snprintf(retry, sizeof(retry), "retry: %d\n\n", RETRY_MS);
	c.head = retry;
	rc = parse_request(req, resp, ev, &c);
	if (rc == DRV_OK)
		rc = drv_events_reader_new(ev, &c, &r);
	if (rc == DRV_OK)
		rc = drv_http_stream(resp, "text/event-stream", &event_stream_ops, r);
	if (rc != DRV_OK) {
		drv_events_reader_free(r);
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
