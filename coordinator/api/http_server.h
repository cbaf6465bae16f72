/*
 * http_server.h: droverd's HTTP/JSON API server (libmicrohttpd).
 *
 * The server owns the listening socket, a route table, bearer-token
 * authentication (tokens.h), request body collection with a size cap, the
 * uniform JSON error shape, server-sent streams, and the audit log of every
 * mutating request (audit.h). Features register routes; they never touch
 * libmicrohttpd.
 *
 * Using it (droverd):
 *
 *     struct drv_http_config hc = { .listen = "127.0.0.1:7480", .db = api_db };
 *     drv_http_server_new(&hc, &srv);
 *     drv_http_add_routes(srv, agent_routes, n, registry);   // your feature
 *     drv_events_add_routes(srv, events);                      // GET /v1/events
 *     drv_audit_add_routes(srv, api_db);                       // GET /v1/audit
 *     drv_metrics_add_routes(srv, drv_metrics_global());       // GET /metrics
 *     drv_http_server_start(srv);
 *     ...
 *     drv_http_server_free(srv);   // stops: ends streams, joins threads
 *
 * A feature module declares its routes as a const table:
 *
 *     static int agents_list(struct drv_http_req *req, struct drv_http_resp *resp,
 *                            void *ctx);
 *     static const struct drv_http_route agent_routes[] = {
 *         {.method = "GET", .pattern = "/v1/agents", .min_role = DRV_ROLE_VIEWER,
 *          .handler = agents_list},
 *         {.method = "POST", .pattern = "/v1/agents/{id}/accept",
 *          .min_role = DRV_ROLE_ADMIN, .handler = agents_accept},
 *     };
 *
 * Threads: one thread per connection. Handlers run on those threads, so
 * several run at once; ctx must be safe for that (take your own lock or hand
 * the work to the core thread). A handler may block (it holds only its own
 * connection), but should answer within the client's timeout.
 *
 * Errors: every error response has the body
 *     {"error": {"code": "not-found", "message": "...", "field": "...", "line": 3}}
 * with field and line present only when they apply. Codes the server itself
 * uses: bad-request, invalid-json, not-an-object, unknown-field,
 * missing-field, wrong-type, too-long, unauthorized, forbidden, not-found,
 * method-not-allowed, too-large, uri-too-long, too-many-streams,
 * too-many-failures, audit-failed, internal.
 *
 * Trust rules the server enforces for every route (docs/security.md):
 * - a mutating request (not GET/HEAD) gets its audit row *before* the handler
 *   runs; when that row cannot be written the answer is 500 audit-failed and
 *   the handler does not run (nothing changes unaudited);
 * - failed authentication (401) is counted (drover_http_auth_failures_total),
 *   audited once per address and window, and an address with more than
 *   auth_fail_max failures in auth_fail_window_ms gets 429 too-many-failures
 *   (Retry-After) for every request until the window ends;
 * - a stream re-checks its token at least every stream_recheck_ms and ends
 *   when the token is revoked or lost the role the route needs.
 */
#ifndef DRV_HTTP_SERVER_H
#define DRV_HTTP_SERVER_H

#include <jansson.h>
#include "sqldb.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "json_check.h"
#include "tokens.h"

/* The default API address; `droverd init --api` and the CLI use the same. */
#define DRV_API_DEFAULT_HOST   "127.0.0.1"
#define DRV_API_DEFAULT_PORT   7480
#define DRV_API_DEFAULT_LISTEN "127.0.0.1:7480"
#define DRV_API_DEFAULT_URL    "http://127.0.0.1:7480"

#define DRV_HTTP_MAX_BODY        (1024 * 1024) /* default request body cap */
#define DRV_HTTP_MAX_CONNECTIONS 256
#define DRV_HTTP_MAX_STREAMS     64    /* concurrent server-sent streams */
#define DRV_HTTP_TIMEOUT_S       60    /* idle connection timeout */
#define DRV_HTTP_AUTH_FAIL_MAX   20    /* failed authentications per address and window */
#define DRV_HTTP_AUTH_WINDOW_MS  60000 /* that window */
#define DRV_HTTP_RECHECK_MS      30000 /* a stream re-checks its token this often */

struct drv_http_server;
struct drv_http_req;
struct drv_http_resp;

/* A handler answers through resp (drv_http_json, drv_http_error, ...).
 * Return DRV_OK. If it returns an error without having set a response, the
 * server answers from the error code: DRV_EINVAL/EDECODE 400, DRV_ENOENT 404,
 * DRV_EPERM 403, DRV_EEXIST/ESTATE 409, DRV_ETOOBIG 413, anything else 500.
 * A handler that sets nothing and returns DRV_OK gets a 500. */
typedef int (*drv_http_handler)(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx);

struct drv_http_route {
	const char *method;     /* "GET", "POST", "PUT", "PATCH", "DELETE" */
	const char *pattern;    /* "/v1/deployments/{id}/pause" (see route.h) */
	enum drv_role min_role; /* DRV_ROLE_NONE: no token needed */
	drv_http_handler handler;
	/* A body cap of the route's own, below the server's (0: the server's);
	 * a larger body is answered 413 naming this limit and what it is for. */
	size_t max_body;
	const char *body_what; /* "an Alertmanager payload": the 413's words */
};

struct drv_http_config {
	const char *listen;          /* "HOST:PORT", "[V6]:PORT"; NULL: DRV_API_DEFAULT_LISTEN;
	                                port 0 picks a free port (drv_http_server_port) */
	struct drv_sql *db;          /* api_tokens and audit; open until drv_http_server_free.
	                         A connection of its own is best (WAL: readers do not
	                         wait for the store's transactions). */
	size_t max_body;             /* 0: DRV_HTTP_MAX_BODY */
	unsigned max_connections;    /* 0: DRV_HTTP_MAX_CONNECTIONS */
	unsigned max_streams;        /* 0: DRV_HTTP_MAX_STREAMS */
	unsigned timeout_s;          /* 0: DRV_HTTP_TIMEOUT_S */
	struct drv_metrics *metrics; /* NULL: drv_metrics_global() */
	unsigned auth_fail_max;      /* 0: DRV_HTTP_AUTH_FAIL_MAX */
	int64_t auth_fail_window_ms; /* 0: DRV_HTTP_AUTH_WINDOW_MS */
	int auth_audit_keep;         /* failed-authentication audit rows kept; 0: default */
	int64_t stream_recheck_ms;   /* 0: DRV_HTTP_RECHECK_MS (at most that) */
	/* While refuse_changes returns an HTTP status (507, 503), every request
	 * but GET is refused with it, *code and msg (not audited: the audit
	 * log cannot be written either), and GET /healthz says "degraded" with
	 * that message. 0: accepted. Called on any connection thread. NULL:
	 * never refused. */
	unsigned (*refuse_changes)(void *arg, const char **code, char *msg, size_t len);
	void *refuse_arg;
	/* HTTPS (libmicrohttpd with GnuTLS): PEM files of the certificate (chain)
	 * and its key, read at start. NULL: plain HTTP, meant for loopback. */
	const char *tls_cert, *tls_key;
};

/* Can this libmicrohttpd serve HTTPS (MHD_FEATURE_TLS)? */
bool drv_http_tls_supported(void);
/* Is HOST:PORT on a loopback address (127/8, ::1, localhost)? */
bool drv_http_listen_is_loopback(const char *listen);

/* Create a server (not listening yet). cfg is copied; cfg->db is borrowed.
 * Registers GET /healthz. */
int drv_http_server_new(const struct drv_http_config *cfg, struct drv_http_server **out);

/* Add n routes; the table and ctx are borrowed and must outlive the server.
 * Only before drv_http_server_start. DRV_EINVAL for a bad pattern or method,
 * DRV_EEXIST if the method and pattern are already registered. */
int drv_http_add_routes(struct drv_http_server *srv, const struct drv_http_route *routes, size_t n,
                        void *ctx);

/* fn(ctx) runs at the start of drv_http_server_stop, before the server
 * waits for connections: end your streams there (the events hub does). */
int drv_http_on_stop(struct drv_http_server *srv, void (*fn)(void *ctx), void *ctx);

/* Bind and start serving. DRV_EINVAL for a bad address, DRV_EIO if it
 * cannot listen (the port is taken). */
int drv_http_server_start(struct drv_http_server *srv);

/* The port the server listens on (after start). */
uint16_t drv_http_server_port(const struct drv_http_server *srv);

/* Stop listening, end streams, wait for the connection threads. Idempotent. */
void drv_http_server_stop(struct drv_http_server *srv);

/* Stop (if needed) and free. NULL is fine. */
void drv_http_server_free(struct drv_http_server *srv);

/* Parse "HOST:PORT" / "[V6]:PORT" (HOST an IP address or "localhost").
 * DRV_EINVAL with a reason in the log otherwise. Exposed for configs. */
int drv_http_parse_listen(const char *listen, char host[64], uint16_t *port);

/* ---- the request (valid during the handler; strings owned by the server) */

const char *drv_http_method(const struct drv_http_req *req);
const char *drv_http_path(const struct drv_http_req *req);
/* A {name} parameter of the route pattern (never NULL for a name in the
 * pattern; at most 255 bytes). */
const char *drv_http_param(const struct drv_http_req *req, const char *name);
/* A query string argument (decoded), or NULL. */
const char *drv_http_query(const struct drv_http_req *req, const char *name);
/* A decimal query argument in [lo, hi]; def when absent. On a bad value
 * the 400 response (code bad-request, field = name) is set and DRV_EINVAL
 * returned: the handler just returns. */
int drv_http_query_int(struct drv_http_req *req, struct drv_http_resp *resp, const char *name,
                       long long lo, long long hi, long long def, long long *out);
/* A request header, or NULL. */
const char *drv_http_header(const struct drv_http_req *req, const char *name);
/* The peer's address ("127.0.0.1", "::1"). */
const char *drv_http_remote(const struct drv_http_req *req);
/* The authenticated token's name and role ("" / DRV_ROLE_NONE on routes
 * without authentication). */
const char *drv_http_actor(const struct drv_http_req *req);
enum drv_role drv_http_role(const struct drv_http_req *req);
/* The raw body (NUL-terminated for convenience; may contain NULs). */
const char *drv_http_body(const struct drv_http_req *req, size_t *len);

/* Parse the body as a JSON object and check it against fields (json_check.h).
 * On success *out is a new reference the caller owns. On failure the 400
 * error response is already set (code invalid-json, unknown-field, ...,
 * naming the field, and the line for invalid JSON) and DRV_EINVAL returned:
 * the handler just returns. An empty body counts as {}. */
int drv_http_body_json(struct drv_http_req *req, struct drv_http_resp *resp,
                       const struct drv_json_field *fields, size_t n, json_t **out);

/* A short note for the audit row of this request ("deployment=42").
 * Mutating requests (every method but GET and HEAD) are audited after the
 * handler with actor, role, remote, method, path, status and this note. */
void drv_http_audit_note(struct drv_http_req *req, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* ---- the response (set exactly once; a second call replaces the first) */

/* status with a JSON body; steals the reference to body (even on failure). */
int drv_http_json(struct drv_http_resp *resp, unsigned status, json_t *body);
/* status with a copy of len bytes of text of the given content type. */
int drv_http_text(struct drv_http_resp *resp, unsigned status, const char *content_type,
                  const char *text, size_t len);
/* An error response {"error": {"code", "message"}}. */
int drv_http_error(struct drv_http_resp *resp, unsigned status, const char *code, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
/* The same with "field" (if not NULL or "") and "line" (if > 0). */
int drv_http_error_at(struct drv_http_resp *resp, unsigned status, const char *code,
                      const char *field, int line, const char *fmt, ...)
        __attribute__((format(printf, 6, 7)));
/* From a json_check error: 400 with its code, field, line and message. */
int drv_http_error_json(struct drv_http_resp *resp, const struct drv_json_error *err);
/* Add a response header (copied). At most 8 per response. */
int drv_http_add_header(struct drv_http_resp *resp, const char *name, const char *value);

/* On a follower of an HA group (ha.h): 307 to the same path and query at
 * the leader's API URL, or 503 "not-leader" while no leader is known. For
 * a read only the leader can answer (changes are redirected before their
 * handler runs). */
int drv_http_to_leader(struct drv_http_req *req, struct drv_http_resp *resp);

/* Build the JSON error body (exposed for tests and for stream errors). */
json_t *drv_http_error_body(const char *code, const char *message, const char *field, int line);

/* ---- streams (server-sent events and other long responses)
 *
 * A stream answers 200 with content_type and a body produced piece by piece
 * by ops->read, on the connection's own thread, until it returns -1. read
 * may block until it has something to send (a new event, a keep-alive
 * comment) but must return -1 promptly once the server stops (register a
 * drv_http_on_stop hook that wakes it). When the client goes away, the next
 * write fails and the server calls ops->free; nothing else waits for it.
 * At most max_streams streams run at once; beyond that the client gets 503
 * too-many-streams. */
struct drv_http_stream_ops {
	/* Write 1..cap bytes into buf and return how many, or -1 to end. */
	ssize_t (*read)(void *state, char *buf, size_t cap);
	/* Called exactly once when the stream ends for any reason. */
	void (*free)(void *state);
};

/* On success the server owns state (ops->free releases it); on failure the
 * caller keeps it. */
int drv_http_stream(struct drv_http_resp *resp, const char *content_type,
                    const struct drv_http_stream_ops *ops, void *state);

#endif
