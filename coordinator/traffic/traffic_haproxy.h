/*
 * traffic_haproxy.h: a client for HAProxy's runtime API, the admin "stats
 * socket" (a unix socket declared with `stats socket PATH level admin`).
 *
 * One command per connection: connect, send "CMD\n", read until HAProxy
 * closes. Every call is bounded by the client's timeout (connect + write +
 * read) and by a cap on the size of the answer. The parsers take a buffer
 * and never trust it: every line, field, name and count is capped.
 *
 * Used by the "haproxy" kind of traffic.h (canary weights, blue-green
 * switches) and by the test tool drv-haproxy-cmd.
 */
#ifndef DRV_TRAFFIC_HAPROXY_H
#define DRV_TRAFFIC_HAPROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DRV_HAPROXY_RESP_MAX    (4u << 20) /* default cap on one answer */
#define DRV_HAPROXY_TIMEOUT_MS  5000       /* default per command */
#define DRV_HAPROXY_NAME_MAX    64         /* backend and server names */
#define DRV_HAPROXY_SERVERS_MAX 65536      /* rows of "show servers state" */
#define DRV_HAPROXY_STAT_COLS   1024       /* columns of "show stat" */
#define DRV_HAPROXY_STAT_ROWS   200000     /* rows of "show stat" */
#define DRV_HAPROXY_STAT_CELLS  (4u << 20) /* rows x columns of "show stat" */
#define DRV_HAPROXY_LINE_MAX    65536      /* one line of any answer */
#define DRV_HAPROXY_WEIGHT_MAX  256        /* HAProxy's absolute weight range */
#define DRV_HAPROXY_POLL_MS     100        /* wait_up polling interval */

struct drv_haproxy {
	const char *socket_path; /* not owned; must fit sun_path */
	int64_t timeout_ms;      /* 0: DRV_HAPROXY_TIMEOUT_MS */
	size_t resp_max;         /* 0: DRV_HAPROXY_RESP_MAX */
};

/* Admin states accepted by "set server B/S state ...". */
enum drv_haproxy_admin {
	DRV_HAPROXY_READY,
	DRV_HAPROXY_DRAIN,
	DRV_HAPROXY_MAINT,
};

/* Bits of srv_admin_state (HAProxy's enum srv_admin). */
#define DRV_HAPROXY_ADM_FMAINT 0x01u /* forced maintenance (set ... maint) */
#define DRV_HAPROXY_ADM_IMAINT 0x02u /* inherited from a tracked server */
#define DRV_HAPROXY_ADM_CMAINT 0x04u /* "disabled" in the configuration */
#define DRV_HAPROXY_ADM_FDRAIN 0x08u /* forced drain (set ... drain) */
#define DRV_HAPROXY_ADM_IDRAIN 0x10u /* inherited drain */
#define DRV_HAPROXY_ADM_RMAINT 0x20u /* address resolution failed */
#define DRV_HAPROXY_ADM_HMAINT 0x40u /* hostname maintenance */
#define DRV_HAPROXY_ADM_MAINT  0x67u /* any maintenance bit */
#define DRV_HAPROXY_ADM_DRAIN  0x18u /* any drain bit */

/* srv_op_state */
enum {
	DRV_HAPROXY_OP_STOPPED,
	DRV_HAPROXY_OP_STARTING,
	DRV_HAPROXY_OP_RUNNING,
	DRV_HAPROXY_OP_STOPPING
};
/* srv_check_state bits and srv_check_result values (HAProxy sets the result
 * back to UNKNOWN when a check starts: UNKNOWN with INPROGRESS is a check
 * running now, not a server never checked) */
#define DRV_HAPROXY_CHK_INPROGRESS 0x01u
#define DRV_HAPROXY_CHK_CONFIGURED 0x02u
#define DRV_HAPROXY_CHK_ENABLED    0x04u
enum {
	DRV_HAPROXY_CHK_UNKNOWN,
	DRV_HAPROXY_CHK_NEUTRAL,
	DRV_HAPROXY_CHK_FAILED,
	DRV_HAPROXY_CHK_PASSED,
	DRV_HAPROXY_CHK_CONDPASS
};

/* One row of "show servers state". */
struct drv_haproxy_server {
	char backend[DRV_HAPROXY_NAME_MAX + 1];
	char name[DRV_HAPROXY_NAME_MAX + 1];
	char addr[64]; /* "" when the answer has no srv_addr */
	int port;      /* -1 when unknown */
	int op_state;  /* DRV_HAPROXY_OP_* */
	unsigned admin_state;
	int uweight;          /* current (user) weight */
	int iweight;          /* weight from the configuration */
	unsigned check_state; /* 0 when the answer has no srv_check_state */
	int check_result;     /* DRV_HAPROXY_CHK_*; UNKNOWN when absent */
};

struct drv_haproxy_servers {
	struct drv_haproxy_server *v; /* owned; drv_haproxy_servers_free */
	size_t n;
};

/* A parsed "show stat" CSV: column names and rows of cells. */
struct drv_haproxy_stat {
	size_t ncols, nrows;
	char **cols;  /* ncols names (without "# ") */
	char **cells; /* nrows * ncols; a missing cell is "" */
	char *buf;    /* backing store of every string */
};

/*
 * Send CMD (one line, no newline; at most 1024 bytes) and read the whole
 * answer. On success *out is a malloc'd, NUL-terminated copy the caller
 * frees and *out_len its length. DRV_EIO when the socket cannot be reached,
 * DRV_ETIMEDOUT past the timeout, DRV_ETOOBIG over the cap.
 */
int drv_haproxy_cmd(const struct drv_haproxy *h, const char *cmd, char **out, size_t *out_len);

/*
 * Classify the answer to a command that prints nothing on success ("set
 * server ..."): DRV_OK for an empty or blank answer, DRV_ENOENT for "No such
 * server/backend", DRV_EPERM for a permission refusal, DRV_EINVAL otherwise.
 */
int drv_haproxy_check_empty(const char *resp, size_t len);

/* drv_haproxy_cmd + drv_haproxy_check_empty; the error text is logged. */
int drv_haproxy_exec(const struct drv_haproxy *h, const char *cmd);

/* true when NAME may be sent in a command: [A-Za-z0-9._:-]{1,64}. */
bool drv_haproxy_name_ok(const char *name);

/* "set server BACKEND/SERVER weight W", W in 0..256. */
int drv_haproxy_set_weight(const struct drv_haproxy *h, const char *backend, const char *server,
                           int weight);
/* "set server BACKEND/SERVER weight 100%": back to the configured weight. */
int drv_haproxy_reset_weight(const struct drv_haproxy *h, const char *backend, const char *server);
/* "set server BACKEND/SERVER state ready|drain|maint". */
int drv_haproxy_set_state(const struct drv_haproxy *h, const char *backend, const char *server,
                          enum drv_haproxy_admin state);

/*
 * Parse the answer to "show servers state [BACKEND]" (format version 1,
 * columns found by their names in the "# " header). On success *out owns
 * the rows. DRV_EVERSION for another format version, DRV_ENOENT for
 * "Can't find backend", DRV_EDECODE/DRV_ETOOBIG for bad input.
 */
int drv_haproxy_parse_servers(const char *buf, size_t len, struct drv_haproxy_servers *out);
void drv_haproxy_servers_free(struct drv_haproxy_servers *s);
/* The row of SERVER in BACKEND, or NULL. */
const struct drv_haproxy_server *drv_haproxy_servers_find(const struct drv_haproxy_servers *s,
                                                          const char *backend, const char *server);

/*
 * UP means: running (or slow-starting), in no maintenance, and, when its
 * health check is enabled, the last check passed (HAProxy starts servers
 * UP before their first check: that is not enough). A drained server can
 * be UP.
 */
bool drv_haproxy_server_up(const struct drv_haproxy_server *s);
/* Append to WHY (CAP bytes that start "", ", " between) what HAProxy says of
 * a server that is not UP: "web-1-green DOWN (last check failed)"; "(a
 * check is running)" while HAProxy has cleared the last result for the next
 * check; "(not checked yet)" before the first. */
void drv_haproxy_why_not_up(char *why, size_t cap, const struct drv_haproxy_server *s);

/* "show servers state BACKEND" + parse. */
int drv_haproxy_servers(const struct drv_haproxy *h, const char *backend,
                        struct drv_haproxy_servers *out);

/*
 * Parse the answer to "show stat" (CSV with a "# " header; quoted cells are
 * unquoted). On success *out owns everything.
 */
int drv_haproxy_parse_stat(const char *buf, size_t len, struct drv_haproxy_stat *out);
void drv_haproxy_stat_free(struct drv_haproxy_stat *st);
/* Cell FIELD of the row PXNAME/SVNAME, or NULL when absent. */
const char *drv_haproxy_stat_get(const struct drv_haproxy_stat *st, const char *pxname,
                                 const char *svname, const char *field);

/* "show stat BACKEND 4 -1" (that backend's servers) + parse. */
int drv_haproxy_stat(const struct drv_haproxy *h, const char *backend,
                     struct drv_haproxy_stat *out);

/*
 * Poll "show servers state BACKEND" every DRV_HAPROXY_POLL_MS until every
 * one of the N SERVERS is UP (drv_haproxy_server_up). DRV_ENOENT at once
 * for a server the backend does not have; DRV_ETIMEDOUT after timeout_ms,
 * naming in the log the servers that were not UP (or, when the socket never
 * answered, that error: DRV_EIO). WHY (NULL, or CAP > 0 bytes that start
 * "") gets them too, each with its state and last check ("web-1-green DOWN
 * (last check failed)"), or the missing server.
 */
int drv_haproxy_wait_up(const struct drv_haproxy *h, const char *backend,
                        const char *const *servers, size_t n, int64_t timeout_ms, char *why,
                        size_t cap);

#endif
