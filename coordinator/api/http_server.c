/*
 * http_server.c: libmicrohttpd glue, routing, authentication, body caps,
 * JSON responses, streams and the audit hook. See http_server.h.
 *
 * libmicrohttpd runs one thread per connection (so a stream may block in its
 * read callback without holding anyone else up) and calls on_request several
 * times per request: first with the headers (we route, authenticate and
 * check the declared size there, answering errors at once without reading the
 * body), then with pieces of the body, then once more with no data (we run
 * the handler).
 */
#include "http_server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "atomicfile.h"
#include "audit.h"
#include "clock.h"
#include "err.h"
#include "ha.h"
#include "log.h"
#include "metrics.h"
#include "route.h"

#define MAX_HOOKS      8
#define MAX_HEADERS    8
#define STREAM_BLOCK   (16 * 1024)
#define CONN_MEM_LIMIT (64 * 1024) /* request line + headers */
#define NOTE_MAX       256
#define AUTH_SLOTS     1024 /* addresses whose failed authentications are counted */

struct route_entry {
	const struct drv_http_route *r;
	void *ctx;
};

struct stop_hook {
	void (*fn)(void *ctx);
	void *ctx;
};

/* Failed authentications of one address in its current window. */
struct auth_slot {
	char addr[INET6_ADDRSTRLEN];
	int64_t start_ms; /* window start (monotonic); 0: a free slot */
	unsigned fails;
};

struct drv_http_server {
	struct drv_http_config cfg;
	char listen[96];
	struct route_entry *routes;
	size_t n_routes;
	struct stop_hook hooks[MAX_HOOKS];
	size_t n_hooks;
	struct MHD_Daemon *daemon;
	char *tls_cert_pem, *tls_key_pem; /* HTTPS: read at start, kept while serving */
	uint16_t port;
	atomic_uint streams;
	struct drv_metric *m_requests;
	struct drv_metric *m_duration;
	struct drv_metric *m_streams;
	struct drv_metric *m_auth_fail;
	pthread_mutex_t auth_mu; /* guards auth */
	struct auth_slot auth[AUTH_SLOTS];
};

struct drv_http_resp {
	struct drv_http_server *srv;
	bool set;
	unsigned status;
	char content_type[64];
	char *body;
	size_t len;
	size_t n_headers;
	char *headers[MAX_HEADERS][2];
	const struct drv_http_stream_ops *ops;
	void *state;
};

struct drv_http_req {
	struct drv_http_server *srv;
	struct MHD_Connection *conn;
	const struct route_entry *route;
	struct drv_route_params params;
	char method[16];
	char *path;
	char remote[INET6_ADDRSTRLEN];
	char actor[DRV_TOKEN_NAME_MAX + 1];
	enum drv_role role;
	char *body;
	size_t body_len;
	bool too_big;
	bool answered;
	char note[NOTE_MAX];
	char token[DRV_TOKEN_TEXT_LEN + 1]; /* the verified bearer token, for streams */
	int64_t audit_id;                   /* the row written before the handler; 0: none */
	struct timespec start;
};

struct stream {
	struct drv_http_server *srv;
	const struct drv_http_stream_ops *ops;
	void *state;
	enum drv_role need; /* the route's role; DRV_ROLE_NONE: no token to re-check */
	char token[DRV_TOKEN_TEXT_LEN + 1];
	char actor[DRV_TOKEN_NAME_MAX + 1];
	int64_t checked_ms; /* last token check (monotonic) */
};

/* ---------------------------------------------------------------- responses */

static void resp_clear(struct drv_http_resp *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
	for (size_t i = 0; i < resp->n_headers; i++) {
		free(resp->headers[i][0]);
		free(resp->headers[i][1]);
	}
	resp->n_headers = 0;
	resp->ops = NULL;
	resp->state = NULL;
	resp->set = false;
}

int drv_http_text(struct drv_http_resp *resp, unsigned status, const char *content_type,
                  const char *text, size_t len)
{
	char *copy = malloc(len + 1);

	if (!copy)
		return DRV_ENOMEM;
	memcpy(copy, text, len);
	copy[len] = '\0';
	free(resp->body);
	resp->body = copy;
	resp->len = len;
	resp->ops = NULL;
	resp->status = status;
	snprintf(resp->content_type, sizeof(resp->content_type), "%s", content_type);
	resp->set = true;
	return DRV_OK;
}

int drv_http_json(struct drv_http_resp *resp, unsigned status, json_t *body)
{
	char *text;
	int rc;

	if (!body)
		return DRV_ENOMEM;
	text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(body);
	if (!text)
		return DRV_ENOMEM;
	rc = drv_http_text(resp, status, "application/json", text, strlen(text));
	free(text);
	return rc;
}

json_t *drv_http_error_body(const char *code, const char *message, const char *field, int line)
{
	json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message);

	if (err && field && field[0])
		json_object_set_new(err, "field", json_string(field));
	if (err && line > 0)
		json_object_set_new(err, "line", json_integer(line));
	return err ? json_pack("{s:o}", "error", err) : NULL;
}

static int error_v(struct drv_http_resp *resp, unsigned status, const char *code, const char *field,
                   int line, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return drv_http_json(resp, status, drv_http_error_body(code, msg, field, line));
}

int drv_http_error(struct drv_http_resp *resp, unsigned status, const char *code, const char *fmt,
                   ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = error_v(resp, status, code, NULL, 0, fmt, ap);
	va_end(ap);
	return rc;
}

int drv_http_error_at(struct drv_http_resp *resp, unsigned status, const char *code,
                      const char *field, int line, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = error_v(resp, status, code, field, line, fmt, ap);
	va_end(ap);
	return rc;
}

int drv_http_error_json(struct drv_http_resp *resp, const struct drv_json_error *err)
{
	return drv_http_error_at(resp, 400, err->code, err->field, err->line, "%s", err->message);
}

int drv_http_add_header(struct drv_http_resp *resp, const char *name, const char *value)
{
	char *n, *v;

	if (resp->n_headers >= MAX_HEADERS)
		return DRV_ETOOBIG;
	n = strdup(name);
	v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return DRV_ENOMEM;
	}
	resp->headers[resp->n_headers][0] = n;
	resp->headers[resp->n_headers][1] = v;
	resp->n_headers++;
	return DRV_OK;
}

int drv_http_stream(struct drv_http_resp *resp, const char *content_type,
                    const struct drv_http_stream_ops *ops, void *state)
{
	struct drv_http_server *srv = resp->srv;
	unsigned max = srv->cfg.max_streams;

	if (atomic_fetch_add(&srv->streams, 1) >= max) {
		atomic_fetch_sub(&srv->streams, 1);
		drv_http_error(resp, 503, "too-many-streams",
		               "too many open streams (at most %u); try again later", max);
		return DRV_ESTATE;
	}
	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
	resp->status = 200;
	snprintf(resp->content_type, sizeof(resp->content_type), "%s", content_type);
	resp->ops = ops;
	resp->state = state;
	resp->set = true;
	drv_gauge_set(srv->m_streams, (double)atomic_load(&srv->streams));
	return DRV_OK;
}

/* ------------------------------------------------------------ request access */

const char *drv_http_method(const struct drv_http_req *req)
{
	return req->method;
}

const char *drv_http_path(const struct drv_http_req *req)
{
	return req->path;
}

const char *drv_http_param(const struct drv_http_req *req, const char *name)
{
	return drv_route_param(&req->params, name);
}

const char *drv_http_query(const struct drv_http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

int drv_http_query_int(struct drv_http_req *req, struct drv_http_resp *resp, const char *name,
                       long long lo, long long hi, long long def, long long *out)
{
	const char *s = drv_http_query(req, name);
	char *end;
	long long v;

	if (!s) {
		*out = def;
		return DRV_OK;
	}
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
		drv_http_error_at(resp, 400, "bad-request", name, 0,
		                  "query argument %s must be an integer from %lld to %lld", name,
		                  lo, hi);
		return DRV_EINVAL;
	}
	*out = v;
	return DRV_OK;
}

const char *drv_http_header(const struct drv_http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *drv_http_remote(const struct drv_http_req *req)
{
	return req->remote;
}

const char *drv_http_actor(const struct drv_http_req *req)
{
	return req->actor;
}

enum drv_role drv_http_role(const struct drv_http_req *req)
{
	return req->role;
}

const char *drv_http_body(const struct drv_http_req *req, size_t *len)
{
	if (len)
		*len = req->body_len;
	return req->body ? req->body : "";
}

int drv_http_body_json(struct drv_http_req *req, struct drv_http_resp *resp,
                       const struct drv_json_field *fields, size_t n, json_t **out)
{
	struct drv_json_error err;
	json_t *v;

	if (req->body_len == 0) {
		v = json_object();
		if (!v)
			return DRV_ENOMEM;
	} else if (drv_json_parse(req->body, req->body_len, &v, &err) != DRV_OK) {
		drv_http_error_json(resp, &err);
		return DRV_EINVAL;
	}
	if (drv_json_check(v, fields, n, &err) != DRV_OK) {
		json_decref(v);
		drv_http_error_json(resp, &err);
		return DRV_EINVAL;
	}
	*out = v;
	return DRV_OK;
}

void drv_http_audit_note(struct drv_http_req *req, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(req->note, sizeof(req->note), fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ routing */

static bool method_known(const char *m)
{
	static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (strcmp(m, methods[i]) == 0)
			return true;
	}
	return false;
}

int drv_http_add_routes(struct drv_http_server *srv, const struct drv_http_route *routes, size_t n,
                        void *ctx)
{
	struct route_entry *grown;

	if (srv->daemon)
		return DRV_ESTATE;
	for (size_t i = 0; i < n; i++) {
		if (!routes[i].method || !method_known(routes[i].method) || !routes[i].handler ||
		    drv_route_pattern_check(routes[i].pattern) != DRV_OK)
			return DRV_EINVAL;
		for (size_t j = 0; j < srv->n_routes; j++) {
			if (strcmp(srv->routes[j].r->method, routes[i].method) == 0 &&
			    strcmp(srv->routes[j].r->pattern, routes[i].pattern) == 0)
				return DRV_EEXIST;
		}
	}
	grown = realloc(srv->routes, (srv->n_routes + n) * sizeof(*grown));
	if (!grown)
		return DRV_ENOMEM;
	srv->routes = grown;
	for (size_t i = 0; i < n; i++)
		srv->routes[srv->n_routes++] = (struct route_entry){.r = &routes[i], .ctx = ctx};
	return DRV_OK;
}

int drv_http_on_stop(struct drv_http_server *srv, void (*fn)(void *ctx), void *ctx)
{
	if (srv->n_hooks >= MAX_HOOKS)
		return DRV_ETOOBIG;
	srv->hooks[srv->n_hooks++] = (struct stop_hook){.fn = fn, .ctx = ctx};
	return DRV_OK;
}

/* Find the route for method and path. On a path match with another method,
 * *allowed lists the methods that would match (for 405). */
static const struct route_entry *find_route(struct drv_http_server *srv, const char *method,
                                            const char *path, struct drv_route_params *params,
                                            char *allowed, size_t allowed_len)
{
	const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;

	allowed[0] = '\0';
	for (size_t i = 0; i < srv->n_routes; i++) {
		struct drv_route_params p;
		if (drv_route_match(srv->routes[i].r->pattern, path, &p) != DRV_OK)
			continue;
		if (strcmp(srv->routes[i].r->method, m) == 0) {
			*params = p;
			return &srv->routes[i];
		}
		size_t used = strlen(allowed);
		snprintf(allowed + used, allowed_len - used, "%s%s", used ? ", " : "",
		         srv->routes[i].r->method);
	}
	return NULL;
}

/* ----------------------------------------------------------------- answering */

static bool is_mutating(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

static struct drv_audit_entry audit_entry(const struct drv_http_req *req, unsigned status)
{
	return (struct drv_audit_entry){
	        .actor = req->actor,
	        .role = drv_role_name(req->role),
	        .remote = req->remote,
	        .method = req->method,
	        .path = req->path,
	        .status = (int)status,
	        .detail = req->note,
	};
}

/* The answer's row: the one written before the handler, completed, or a new
 * one for an answer given without running it (403, 413). */
static void audit(struct drv_http_req *req, unsigned status)
{
	struct drv_audit_entry e = audit_entry(req, status);
	struct drv_sql *db = req->srv->cfg.db;
	int rc;

	if (db == NULL)
		return;
	rc = req->audit_id > 0 ? drv_audit_finish(db, req->audit_id, (int)status, req->note)
	                       : drv_audit_append(db, &e);
	if (rc != DRV_OK)
		drv_error("http", "audit write failed", "method=%s path=%s status=%u", req->method,
		          req->path, status);
}

/* Is the stream's token still live with the role its route needs? Checked
 * when half the period has passed before each read; a read returns at least
 * every keep-alive, which droverd keeps at half the period too, so a revoked
 * token ends its stream within stream_recheck_ms. A database error keeps
 * the stream until the next check. */
static bool stream_token_ok(struct stream *s)
{
	char name[DRV_TOKEN_NAME_MAX + 1];
	enum drv_role role;
	int64_t now = drv_mono_ms();
	int rc;

	if (s->need == DRV_ROLE_NONE || now - s->checked_ms < s->srv->cfg.stream_recheck_ms / 2)
		return true;
	s->checked_ms = now;
	rc = drv_token_verify(s->srv->cfg.db, s->token, name, &role);
	if (rc == DRV_EDB || (rc == DRV_OK && drv_role_allows(role, s->need)))
		return true;
	drv_info("http", "stream ended: its token is revoked or lost its role", "actor=%s",
	         s->actor);
	return false;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	ssize_t n;

	if (!stream_token_ok(s))
		return MHD_CONTENT_READER_END_OF_STREAM;
	n = s->ops->read(s->state, buf, max);

	if (n <= 0 || (size_t)n > max)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return n;
}

static void stream_free(void *cls)
{
	struct stream *s = cls;
	unsigned left;

	s->ops->free(s->state);
	left = atomic_fetch_sub(&s->srv->streams, 1) - 1;
	drv_gauge_set(s->srv->m_streams, (double)left);
	free(s);
}

static struct MHD_Response *make_stream_response(const struct drv_http_req *req,
                                                 struct drv_http_resp *resp)
{
	struct stream *s = malloc(sizeof(*s));
	struct MHD_Response *r = NULL;

	if (s) {
		*s = (struct stream){.srv = resp->srv,
		                     .ops = resp->ops,
		                     .state = resp->state,
		                     .need = req->route ? req->route->r->min_role : DRV_ROLE_NONE,
		                     .checked_ms = drv_mono_ms()};
		memcpy(s->token, req->token, sizeof(s->token));
		memcpy(s->actor, req->actor, sizeof(s->actor));
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read,
		                                      s, stream_free);
	}
	if (!r) {
		/* The server owns the state now: release it as a finished stream would. */
		resp->ops->free(resp->state);
		atomic_fetch_sub(&resp->srv->streams, 1);
		free(s);
		return NULL;
	}
	MHD_add_response_header(r, "Cache-Control", "no-cache");
	MHD_add_response_header(r, "X-Accel-Buffering", "no");
	return r;
}

static struct MHD_Response *make_response(const struct drv_http_req *req,
                                          struct drv_http_resp *resp)
{
	struct MHD_Response *r;

	if (resp->ops) {
		r = make_stream_response(req, resp);
		resp->ops = NULL;
		resp->state = NULL;
	} else {
		r = MHD_create_response_from_buffer(resp->len, resp->body, MHD_RESPMEM_MUST_COPY);
		if (r)
			MHD_add_response_header(r, "Cache-Control", "no-store");
	}
	if (!r)
		return NULL;
	MHD_add_response_header(r, "Content-Type", resp->content_type);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	for (size_t i = 0; i < resp->n_headers; i++)
		MHD_add_response_header(r, resp->headers[i][0], resp->headers[i][1]);
	return r;
}

static void count_request(struct drv_http_req *req, unsigned status)
{
	struct timespec now;
	char code[8];

	/* Clients choose the method: label unknown ones "other" to bound the series. */
	const char *method = method_known(req->method) || strcmp(req->method, "HEAD") == 0
	                             ? req->method
	                             : "other";

	clock_gettime(CLOCK_MONOTONIC, &now);
	snprintf(code, sizeof(code), "%u", status);
	drv_counter_inc(req->srv->m_requests, method, code);
	drv_histogram_observe(req->srv->m_duration,
	                      (double)(now.tv_sec - req->start.tv_sec) +
	                              (double)(now.tv_nsec - req->start.tv_nsec) / 1e9,
	                      method);
}

/* Queue resp as the answer to req; audit it when it mutates. */
static enum MHD_Result answer(struct drv_http_req *req, struct drv_http_resp *resp, bool audited)
{
	struct MHD_Response *r = make_response(req, resp);
	enum MHD_Result ok;

	req->answered = true;
	if (!r) {
		drv_error("http", "cannot build response", "path=%s", req->path);
		resp_clear(resp);
		return MHD_NO;
	}
	ok = MHD_queue_response(req->conn, resp->status, r);
	MHD_destroy_response(r);
	if (audited && is_mutating(req->method))
		audit(req, resp->status);
	count_request(req, resp->status);
	drv_debug("http", "request", "method=%s path=%s status=%u actor=%s remote=%s", req->method,
	          req->path, resp->status, req->actor[0] ? req->actor : "-", req->remote);
	resp_clear(resp);
	return ok;
}

static enum MHD_Result answer_error(struct drv_http_req *req, unsigned status, const char *code,
                                    bool audited, const char *msg)
{
	struct drv_http_resp resp = {.srv = req->srv};

	if (drv_http_error(&resp, status, code, "%s", msg) != DRV_OK)
		return MHD_NO;
	return answer(req, &resp, audited);
}

static enum MHD_Result answer_401(struct drv_http_req *req, bool had_token)
{
	struct drv_http_resp resp = {.srv = req->srv};

	drv_http_error(&resp, 401, "unauthorized",
	               had_token ? "the token is invalid or revoked"
	                         : "this endpoint needs Authorization: Bearer TOKEN");
	drv_http_add_header(&resp, "WWW-Authenticate",
	                    had_token ? "Bearer realm=\"drover\", error=\"invalid_token\""
	                              : "Bearer realm=\"drover\"");
	drv_warn("http", "request refused", "status=401 method=%s path=%s remote=%s", req->method,
	         req->path, req->remote);
	return answer(req, &resp, false);
}

/* ---- failed authentication: counted, throttled per address, audited ---- */

/* The slot of addr; with make, a new one (the oldest reused) when it has
 * none. A slot whose window has passed starts a new window. Holds auth_mu. */
static struct auth_slot *auth_slot(struct drv_http_server *srv, const char *addr, int64_t now,
                                   bool make)
{
	struct auth_slot *oldest = &srv->auth[0];

	for (size_t i = 0; i < AUTH_SLOTS; i++) {
		struct auth_slot *a = &srv->auth[i];

		if (a->start_ms != 0 && strcmp(a->addr, addr) == 0) {
			if (now - a->start_ms >= srv->cfg.auth_fail_window_ms) {
				a->start_ms = now;
				a->fails = 0;
			}
			return a;
		}
		if (a->start_ms < oldest->start_ms)
			oldest = a;
	}
	if (!make)
		return NULL;
	snprintf(oldest->addr, sizeof(oldest->addr), "%s", addr);
	oldest->start_ms = now;
	oldest->fails = 0;
	return oldest;
}

/* Milliseconds until addr may try again; 0 when it is not throttled. */
static int64_t auth_blocked(struct drv_http_server *srv, const char *addr)
{
	int64_t now = drv_mono_ms(), left = 0;
	struct auth_slot *a;

	pthread_mutex_lock(&srv->auth_mu);
	a = auth_slot(srv, addr, now, false);
	if (a != NULL && a->fails >= srv->cfg.auth_fail_max)
		left = a->start_ms + srv->cfg.auth_fail_window_ms - now;
	pthread_mutex_unlock(&srv->auth_mu);
	return left > 0 ? left : 0;
}

/* Count a failure of req's address and audit the first of its window and
 * the one that reaches the limit: at most two rows per address and window,
 * and only the newest auth_audit_keep such rows stay (audit.h). */
static void auth_failed(struct drv_http_req *req, const char *reason)
{
	struct drv_http_server *srv = req->srv;
	struct drv_audit_entry e = audit_entry(req, 401);
	char detail[160];
	unsigned fails;

	drv_counter_inc(srv->m_auth_fail, reason);
	pthread_mutex_lock(&srv->auth_mu);
	fails = ++auth_slot(srv, req->remote, drv_mono_ms(), true)->fails;
	pthread_mutex_unlock(&srv->auth_mu);
	if (srv->cfg.db == NULL || (fails != 1 && fails != srv->cfg.auth_fail_max))
		return;
	if (fails == srv->cfg.auth_fail_max) {
		e.status = 429;
		snprintf(detail, sizeof(detail),
		         "%u failed authentications in %llds: every request refused until the "
		         "window ends",
		         fails, (long long)(srv->cfg.auth_fail_window_ms / 1000));
	} else {
		snprintf(detail, sizeof(detail),
		         "failed authentication (%s token); the rest of this %llds window is only "
		         "counted",
		         reason, (long long)(srv->cfg.auth_fail_window_ms / 1000));
	}
	e.detail = detail;
	e.role = "none";
	if (!drv_ha_is_leader()) { /* a follower writes nothing to the group's store */
		drv_warn("http", "authentication failed on a follower (not in the audit log)",
		         "status=%d remote=%s detail=\"%s\"", e.status, req->remote, detail);
		return;
	}
	if (drv_audit_auth_failure(srv->cfg.db, &e, srv->cfg.auth_audit_keep) != DRV_OK)
		drv_error("http", "audit write failed", "status=%d remote=%s", e.status,
		          req->remote);
}

static enum MHD_Result answer_429(struct drv_http_req *req, int64_t left_ms)
{
	struct drv_http_resp resp = {.srv = req->srv};
	char retry[24];

	snprintf(retry, sizeof(retry), "%lld", (long long)((left_ms + 999) / 1000));
	drv_http_error(&resp, 429, "too-many-failures",
	               "too many failed authentications from %s; try again in %s s", req->remote,
	               retry);
	drv_http_add_header(&resp, "Retry-After", retry);
	return answer(req, &resp, false);
}

static unsigned status_of(int err)
{
	switch (err) {
	case DRV_EINVAL:
	case DRV_EDECODE: return 400;
	case DRV_ENOENT: return 404;
	case DRV_EPERM: return 403;
	case DRV_EEXIST:
	case DRV_ESTATE: return 409;
	case DRV_ETOOBIG: return 413;
	default: return 500;
	}
}

static const char *code_of(unsigned status)
{
	switch (status) {
	case 400: return "bad-request";
	case 403: return "forbidden";
	case 404: return "not-found";
	case 409: return "conflict";
	case 413: return "too-large";
	default: return "internal";
	}
}

static enum MHD_Result run_handler(struct drv_http_req *req)
{
	struct drv_http_resp resp = {.srv = req->srv};
	struct drv_audit_entry e = audit_entry(req, 0);
	int rc;

	/* A change is audited before it happens, or it does not happen. */
	if (is_mutating(req->method) && req->srv->cfg.db != NULL &&
	    drv_audit_begin(req->srv->cfg.db, &e, &req->audit_id) != DRV_OK) {
		drv_error("http", "request refused: its audit row cannot be written",
		          "method=%s path=%s actor=%s remote=%s", req->method, req->path,
		          req->actor[0] ? req->actor : "-", req->remote);
		return answer_error(req, 500, "audit-failed", false,
		                    "the audit log cannot be written; nothing was changed");
	}
	rc = req->route->r->handler(req, &resp, req->route->ctx);
	if (!resp.set) {
		unsigned st = rc == DRV_OK ? 500 : status_of(rc);
		if (st == 500)
			drv_error("http", "handler failed", "path=%s error=%s", req->path,
			          rc == DRV_OK ? "no-response" : drv_errname(rc));
		drv_http_error(&resp, st, code_of(st), "%s",
		               rc == DRV_OK ? "the handler gave no answer" : drv_strerror(rc));
	}
	return answer(req, &resp, true);
}

/* ------------------------------------------------------------ the request */

static void parse_remote(struct drv_http_req *req)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	snprintf(req->remote, sizeof(req->remote), "?");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, req->remote,
		          sizeof(req->remote));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, req->remote,
		          sizeof(req->remote));
}

static struct drv_http_req *req_new(struct drv_http_server *srv, struct MHD_Connection *conn,
                                    const char *url, const char *method)
{
	struct drv_http_req *req = calloc(1, sizeof(*req));

	if (!req)
		return NULL;
	req->srv = srv;
	req->conn = conn;
	clock_gettime(CLOCK_MONOTONIC, &req->start);
	snprintf(req->method, sizeof(req->method), "%s", method);
	req->path = strndup(url, DRV_ROUTE_PATH_MAX + 1);
	if (!req->path) {
		free(req);
		return NULL;
	}
	parse_remote(req);
	return req;
}

static void req_free(struct drv_http_req *req)
{
	if (!req)
		return;
	free(req->path);
	free(req->body);
	free(req);
}

/* The token from "Authorization: Bearer TOKEN", or NULL. */
static const char *bearer_token(struct drv_http_req *req)
{
	const char *h = drv_http_header(req, MHD_HTTP_HEADER_AUTHORIZATION);

	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return *h ? h : NULL;
}

/* DRV_OK when the request may go on; otherwise it has been answered. */
static int authenticate(struct drv_http_req *req, enum MHD_Result *res)
{
	enum drv_role need = req->route->r->min_role;
	const char *token;
	int64_t left;
	int rc;

	if (need == DRV_ROLE_NONE)
		return DRV_OK;
	left = auth_blocked(req->srv, req->remote);
	if (left > 0) {
		drv_counter_inc(req->srv->m_auth_fail, "throttled");
		*res = answer_429(req, left);
		return DRV_EPERM;
	}
	token = bearer_token(req);
	rc = token && req->srv->cfg.db
	             ? drv_token_verify(req->srv->cfg.db, token, req->actor, &req->role)
	             : DRV_EPERM;
	if (rc == DRV_EDB) {
		*res = answer_error(req, 500, "internal", false, "cannot check the token");
		return rc;
	}
	if (rc != DRV_OK) {
		auth_failed(req, token != NULL ? "invalid" : "missing");
		*res = answer_401(req, token != NULL);
		return rc;
	}
	snprintf(req->token, sizeof(req->token), "%s", token);
	if (!drv_role_allows(req->role, need)) {
		char msg[128];
		snprintf(msg, sizeof(msg), "this needs the %s role; token \"%s\" is %s",
		         drv_role_name(need), req->actor, drv_role_name(req->role));
		*res = answer_error(req, 403, "forbidden", true, msg);
		return DRV_EPERM;
	}
	return DRV_OK;
}

/* The body cap of the request: its route's own, else the server's. */
static size_t body_cap(const struct drv_http_req *req)
{
	size_t own = req->route ? req->route->r->max_body : 0;

	return own > 0 && own < req->srv->cfg.max_body ? own : req->srv->cfg.max_body;
}

static enum MHD_Result answer_too_big(struct drv_http_req *req)
{
	const char *what = req->route ? req->route->r->body_what : NULL;
	char msg[200];

	snprintf(msg, sizeof(msg), "%s is larger than %zu bytes (%zu KiB), the limit of %s %s",
	         what ? what : "the body", body_cap(req), body_cap(req) / 1024, req->method,
	         req->route ? req->route->r->pattern : req->path);
	drv_http_audit_note(req, "refused: body over %zu bytes", body_cap(req));
	return answer_error(req, 413, "too-large", true, msg);
}

static bool declared_too_big(struct drv_http_req *req)
{
	const char *cl = drv_http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end;
	unsigned long long n;

	if (!cl)
		return false;
	n = strtoull(cl, &end, 10);
	return *end == '\0' && n > body_cap(req);
}

/* Changes are refused while the server's owner says so (a full disk). */
static bool refused_change(struct drv_http_req *req, enum MHD_Result *res)
{
	const struct drv_http_config *c = &req->srv->cfg;
	const char *code = "unavailable";
	char msg[512];
	unsigned st;

	if (c->refuse_changes == NULL)
		return false;
	st = c->refuse_changes(c->refuse_arg, &code, msg, sizeof(msg));
	if (st == 0)
		return false;
	drv_warn("http", "change refused", "status=%u method=%s path=%s reason=\"%s\"", st,
	         req->method, req->path, msg);
	*res = answer_error(req, st, code, false, msg);
	return true;
}

/* ---------------------------------------------------------- HA follower */

#define REDIRECT_MAX 2048

struct query_buf {
	char *p;
	size_t len, cap;
	bool over;
};

static void put_encoded(struct query_buf *q, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; s != NULL && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		bool plain = isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~';

		if (q->len + 4 >= q->cap) {
			q->over = true;
			return;
		}
		if (plain) {
			q->p[q->len++] = (char)ch;
		} else {
			q->p[q->len++] = '%';
			q->p[q->len++] = hex[ch >> 4];
			q->p[q->len++] = hex[ch & 15];
		}
	}
	q->p[q->len] = '\0';
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
	struct query_buf *q = cls;

	(void)kind;
	if (q->len + 2 >= q->cap) {
		q->over = true;
		return MHD_NO;
	}
	char sep = q->len == 0 ? '?' : '&';

	q->p[q->len++] = sep;
	q->p[q->len] = '\0';
	put_encoded(q, key);
	if (value != NULL) {
		q->p[q->len++] = '=';
		q->p[q->len] = '\0';
		put_encoded(q, value);
	}
	return q->over ? MHD_NO : MHD_YES;
}

/*
 * A change sent to a follower of an HA group: 307 to the same path at the
 * leader (a 307 keeps the method and the body; the CLI follows it), or 503
 * "not-leader" while no leader is known (an election is under way). Reads
 * are served by any node, except those only the leader can answer
 * (drv_http_to_leader from their handler).
 */
int drv_http_to_leader(struct drv_http_req *req, struct drv_http_resp *resp)
{
	char leader[DRV_HA_URL_MAX + 1], qs[1024] = "", loc[REDIRECT_MAX];
	struct query_buf q = {.p = qs, .cap = sizeof(qs)};
	json_t *body;
	int n;

	drv_ha_leader_url(leader, sizeof(leader));
	if (leader[0] == '\0')
		return drv_http_error(
		        resp, 503, "not-leader",
		        "this node follows and no leader is known yet: retry shortly");
	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, add_arg, &q);
	n = snprintf(loc, sizeof(loc), "%s%s%s", leader, req->path, q.over ? "" : qs);
	if (n < 0 || (size_t)n >= sizeof(loc) || q.over)
		return drv_http_error(resp, 503, "not-leader",
		                      "this node follows; send the request to the leader");
	body = drv_http_error_body("not-leader", "this node follows: the leader answers this", NULL,
	                           0);
	if (body != NULL)
		json_object_set_new(body, "leader", json_string(leader));
	drv_http_json(resp, 307, body);
	return drv_http_add_header(resp, "Location", loc);
}

static bool follower_redirect(struct drv_http_req *req, enum MHD_Result *res)
{
	struct drv_http_resp resp = {.srv = req->srv};

	if (drv_ha_is_leader() || !is_mutating(req->method))
		return false;
	drv_http_to_leader(req, &resp);
	*res = answer(req, &resp, false);
	return true;
}

/* First call: headers only. Route, authenticate, check the declared size. */
static enum MHD_Result begin(struct drv_http_req *req)
{
	char allowed[64];
	enum MHD_Result res = MHD_YES;

	if (strlen(req->path) > DRV_ROUTE_PATH_MAX)
		return answer_error(req, 414, "uri-too-long", false, "the path is too long");
	req->route = find_route(req->srv, req->method, req->path, &req->params, allowed,
	                        sizeof(allowed));
	if (!req->route && allowed[0]) {
		struct drv_http_resp resp = {.srv = req->srv};
		drv_http_error(&resp, 405, "method-not-allowed", "%s is not allowed on %s",
		               req->method, req->path);
		drv_http_add_header(&resp, "Allow", allowed);
		return answer(req, &resp, false);
	}
	if (!req->route)
		return answer_error(req, 404, "not-found", false, "no such endpoint");
	if (follower_redirect(req, &res))
		return res;
	if (authenticate(req, &res) != DRV_OK)
		return res;
	if (is_mutating(req->method) && refused_change(req, &res))
		return res;
	if (declared_too_big(req))
		return answer_too_big(req);
	return MHD_YES;
}

static void collect(struct drv_http_req *req, const char *data, size_t len)
{
	char *grown;

	if (req->too_big)
		return;
	if (len > body_cap(req) - req->body_len) {
		req->too_big = true;
		return;
	}
	grown = realloc(req->body, req->body_len + len + 1);
	if (!grown) {
		req->too_big = true;
		return;
	}
	memcpy(grown + req->body_len, data, len);
	req->body = grown;
	req->body_len += len;
	req->body[req->body_len] = '\0';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	struct drv_http_req *req = *con_cls;

	if (!req) {
		req = req_new(cls, conn, url, method);
		if (!req)
			return MHD_NO;
		*con_cls = req;
		return begin(req);
	}
	if (*upload_data_size > 0) {
		if (!req->answered)
			collect(req, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->answered)
		return MHD_YES;
	if (req->too_big)
		return answer_too_big(req);
	return run_handler(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	req_free(*con_cls);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	for (char *p = line; *p; p++) {
		if (*p == '"' || !isprint((unsigned char)*p))
			*p = '\'';
	}
	drv_warn("http", "libmicrohttpd", "detail=\"%s\"", line);
}

/* ------------------------------------------------------------- built-ins */

/* The node's place in its HA group: role, epoch (0 outside a group or while
 * following), on a follower the leader's API URL when known, and
 * `resuming` while a node that has won the lease resumes its deployments
 * (drv_ha_view: one consistent reading). */
static json_t *add_role(json_t *body, bool *lead)
{
	struct drv_ha_view v;

	drv_ha_view(&v);
	if (lead != NULL)
		*lead = v.leader;
	if (body == NULL)
		return NULL;
	json_object_set_new(body, "role", json_string(v.leader ? "leader" : "follower"));
	json_object_set_new(body, "epoch", json_integer((json_int_t)v.epoch));
	json_object_set_new(body, "grouped", json_boolean(v.grouped));
	if (v.resuming)
		json_object_set_new(body, "resuming", json_true());
	if (!v.leader && v.leader_url[0] != '\0')
		json_object_set_new(body, "leader", json_string(v.leader_url));
	return body;
}

/* 200 while the server serves; "degraded" (reads only) while changes are refused. */
static int healthz(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	const struct drv_http_config *c = &req->srv->cfg;
	const char *code = "unavailable";
	char msg[512];

	json_t *body;

	(void)ctx;
	if (c->refuse_changes != NULL && c->refuse_changes(c->refuse_arg, &code, msg, sizeof(msg)))
		body = json_pack("{s:s, s:s, s:s, s:s}", "status", "degraded", "version",
		                 DROVER_VERSION, "reason", code, "message", msg);
	else
		body = json_pack("{s:s, s:s}", "status", "ok", "version", DROVER_VERSION);
	return drv_http_json(resp, 200, add_role(body, NULL));
}

/* GET /v1/leader: 200 on the leader, 503 on a follower, for a balancer's
 * health check (HAProxy `option httpchk GET /v1/leader`) to route to the
 * leader alone. */
static int leader(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	bool lead;
	json_t *body = add_role(json_object(), &lead);

	(void)req;
	(void)ctx;

	return drv_http_json(resp, lead ? 200 : 503, body);
}

static const struct drv_http_route builtin_routes[] = {
        {.method = "GET", .pattern = "/healthz", .min_role = DRV_ROLE_NONE, .handler = healthz},
        {.method = "GET", .pattern = "/v1/leader", .min_role = DRV_ROLE_NONE, .handler = leader},
};

/* -------------------------------------------------------------- lifecycle */

int drv_http_parse_listen(const char *listen, char host[64], uint16_t *port)
{
	const char *colon;
	char h[64], *end;
	unsigned char buf[sizeof(struct in6_addr)];
	size_t hlen;
	unsigned long p;

	if (!listen)
		return DRV_EINVAL;
	colon = strrchr(listen, ':');
	if (!colon || colon == listen)
		return DRV_EINVAL;
	hlen = (size_t)(colon - listen);
	if (listen[0] == '[') {
		if (hlen < 3 || listen[hlen - 1] != ']')
			return DRV_EINVAL;
		listen++;
		hlen -= 2;
	}
	if (hlen >= sizeof(h))
		return DRV_EINVAL;
	memcpy(h, listen, hlen);
	h[hlen] = '\0';
	if (strcmp(h, "localhost") == 0)
		snprintf(h, sizeof(h), "127.0.0.1");
	if (inet_pton(AF_INET, h, buf) != 1 && inet_pton(AF_INET6, h, buf) != 1)
		return DRV_EINVAL;
	p = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || p > 65535)
		return DRV_EINVAL;
	snprintf(host, 64, "%s", h);
	*port = (uint16_t)p;
	return DRV_OK;
}

static void register_metrics(struct drv_http_server *srv)
{
	static const char *const req_labels[] = {"method", "code", NULL};
	static const char *const dur_labels[] = {"method", NULL};
	static const char *const auth_labels[] = {"reason", NULL};
	struct drv_metrics *m = srv->cfg.metrics;

	drv_metrics_counter(m, "drover_http_requests_total",
	                    "HTTP API requests answered, by method and status code", req_labels,
	                    &srv->m_requests);
	drv_metrics_histogram(m, "drover_http_request_duration_seconds",
	                      "Time from request headers to the answer being queued", dur_labels,
	                      NULL, 0, &srv->m_duration);
	drv_metrics_gauge(m, "drover_http_streams", "Open server-sent event streams", NULL,
	                  &srv->m_streams);
	drv_metrics_counter(m, "drover_http_auth_failures_total",
	                    "Requests refused for authentication: missing or invalid token, or "
	                    "throttled (too many failures from the address)",
	                    auth_labels, &srv->m_auth_fail);
}

int drv_http_server_new(const struct drv_http_config *cfg, struct drv_http_server **out)
{
	struct drv_http_server *srv = calloc(1, sizeof(*srv));
	int rc;

	if (!srv)
		return DRV_ENOMEM;
	srv->cfg = *cfg;
	snprintf(srv->listen, sizeof(srv->listen), "%s",
	         cfg->listen ? cfg->listen : DRV_API_DEFAULT_LISTEN);
	srv->cfg.listen = srv->listen;
	if (!srv->cfg.max_body)
		srv->cfg.max_body = DRV_HTTP_MAX_BODY;
	if (!srv->cfg.max_connections)
		srv->cfg.max_connections = DRV_HTTP_MAX_CONNECTIONS;
	if (!srv->cfg.max_streams)
		srv->cfg.max_streams = DRV_HTTP_MAX_STREAMS;
	if (!srv->cfg.timeout_s)
		srv->cfg.timeout_s = DRV_HTTP_TIMEOUT_S;
	if (!srv->cfg.auth_fail_max)
		srv->cfg.auth_fail_max = DRV_HTTP_AUTH_FAIL_MAX;
	if (srv->cfg.auth_fail_window_ms <= 0)
		srv->cfg.auth_fail_window_ms = DRV_HTTP_AUTH_WINDOW_MS;
	if (srv->cfg.stream_recheck_ms <= 0 || srv->cfg.stream_recheck_ms > DRV_HTTP_RECHECK_MS)
		srv->cfg.stream_recheck_ms = DRV_HTTP_RECHECK_MS;
	pthread_mutex_init(&srv->auth_mu, NULL);
	if (!srv->cfg.metrics)
		srv->cfg.metrics = drv_metrics_global();
	atomic_init(&srv->streams, 0);
	register_metrics(srv);
	rc = drv_http_add_routes(srv, builtin_routes,
	                         sizeof(builtin_routes) / sizeof(builtin_routes[0]), NULL);
	if (rc != DRV_OK) {
		drv_http_server_free(srv);
		return rc;
	}
	*out = srv;
	return DRV_OK;
}

static int make_sockaddr(const char *listen, struct sockaddr_storage *ss, bool *v6)
{
	char host[64];
	uint16_t port;

	memset(ss, 0, sizeof(*ss));
	if (drv_http_parse_listen(listen, host, &port) != DRV_OK)
		return DRV_EINVAL;
	if (strchr(host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, host, &s6->sin6_addr);
		*v6 = true;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, host, &s4->sin_addr);
		*v6 = false;
	}
	return DRV_OK;
}

bool drv_http_tls_supported(void)
{
	return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
}

bool drv_http_listen_is_loopback(const char *listen)
{
	char host[64];
	uint16_t port;

	if (drv_http_parse_listen(listen, host, &port) != DRV_OK)
		return false;
	return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
	       strcmp(host, "localhost") == 0;
}

#define TLS_PEM_MAX (256u << 10)

/* The certificate and key for HTTPS, into ops (MHD copies them into GnuTLS
 * at start; they are kept until the server is freed anyway). */
static int tls_options(struct drv_http_server *srv, struct MHD_OptionItem ops[3], unsigned *flags)
{
	size_t len;
	int rc;

	ops[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	if (srv->cfg.tls_cert == NULL)
		return DRV_OK;
	if (!drv_http_tls_supported()) {
		drv_error("http", "this libmicrohttpd cannot serve HTTPS (built without GnuTLS)");
		return DRV_EINVAL;
	}
	rc = drv_read_file(srv->cfg.tls_cert, TLS_PEM_MAX, &srv->tls_cert_pem, &len);
	if (rc == DRV_OK)
		rc = drv_read_file(srv->cfg.tls_key, TLS_PEM_MAX, &srv->tls_key_pem, &len);
	if (rc != DRV_OK) {
		drv_error("http", "cannot read the API's certificate or key",
		          "cert=%s key=%s error=%s", srv->cfg.tls_cert,
		          srv->cfg.tls_key ? srv->cfg.tls_key : "-", drv_errname(rc));
		return rc;
	}
	ops[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert_pem};
	ops[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key_pem};
	ops[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	*flags |= MHD_USE_TLS;
	return DRV_OK;
}

int drv_http_server_start(struct drv_http_server *srv)
{
	struct MHD_OptionItem tls[3];
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	                 MHD_USE_POLL | MHD_USE_ERROR_LOG;
	bool v6;

	if (srv->daemon)
		return DRV_ESTATE;
	if (make_sockaddr(srv->listen, &ss, &v6) != DRV_OK) {
		drv_error("http", "bad listen address (want HOST:PORT)", "listen=%s", srv->listen);
		return DRV_EINVAL;
	}
	if (v6)
		flags |= MHD_USE_IPv6;
	if (tls_options(srv, tls, &flags) != DRV_OK)
		return DRV_EINVAL;
	if (srv->cfg.tls_cert == NULL && !drv_http_listen_is_loopback(srv->listen))
		drv_warn("http",
		         "the API serves plain HTTP beyond loopback: set tls.api_cert and "
		         "tls.api_key (HTTPS)",
		         "listen=%s", srv->listen);
	srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR,
	                               (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
	                               srv->cfg.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
	                               srv->cfg.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	                               (size_t)CONN_MEM_LIMIT, MHD_OPTION_NOTIFY_COMPLETED,
	                               on_completed, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
	                               srv, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
	if (!srv->daemon) {
		drv_error("http", "cannot listen", "listen=%s https=%s", srv->listen,
		          srv->cfg.tls_cert ? "yes" : "no");
		return DRV_EIO;
	}
	info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : 0;
	drv_info("http", "API listening", "listen=%s port=%u https=%s", srv->listen,
	         (unsigned)srv->port, srv->cfg.tls_cert ? "yes" : "no");
	return DRV_OK;
}

uint16_t drv_http_server_port(const struct drv_http_server *srv)
{
	return srv->port;
}

void drv_http_server_stop(struct drv_http_server *srv)
{
	if (!srv || !srv->daemon)
		return;
	for (size_t i = 0; i < srv->n_hooks; i++)
		srv->hooks[i].fn(srv->hooks[i].ctx);
	MHD_stop_daemon(srv->daemon);
	srv->daemon = NULL;
	drv_info("http", "API stopped", "listen=%s", srv->listen);
}

void drv_http_server_free(struct drv_http_server *srv)
{
	if (!srv)
		return;
	drv_http_server_stop(srv);
	pthread_mutex_destroy(&srv->auth_mu);
	free(srv->routes);
	free(srv->tls_cert_pem);
	if (srv->tls_key_pem != NULL)
		sodium_memzero(srv->tls_key_pem, strlen(srv->tls_key_pem));
	free(srv->tls_key_pem);
	free(srv);
}
