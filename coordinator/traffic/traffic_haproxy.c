/*
 * traffic_haproxy.c: HAProxy runtime API client (see traffic_haproxy.h).
 *
 * I/O: a non-blocking unix socket, poll() against one deadline per command,
 * send() with MSG_NOSIGNAL (no SIGPIPE), the answer capped. Parsing: line by
 * line over a length-delimited buffer; nothing assumes a NUL terminator.
 */
#include "traffic_haproxy.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "traffic_int.h"

#define MOD        "haproxy"
#define CMD_MAX    1024
#define HDR_COLS   128 /* columns of the servers state header */
#define READ_CHUNK 16384

static int64_t timeout_of(const struct drv_haproxy *h)
{
	return h->timeout_ms > 0 ? h->timeout_ms : DRV_HAPROXY_TIMEOUT_MS;
}

static size_t cap_of(const struct drv_haproxy *h)
{
	return h->resp_max > 0 ? h->resp_max : DRV_HAPROXY_RESP_MAX;
}

/* poll() one fd for EVENTS until the deadline. */
static int wait_fd(int fd, short events, struct drv_deadline dl)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t left;
	int rc;

	for (;;) {
		left = drv_deadline_left(dl, drv_mono_ms(), INT32_MAX);
		if (left <= 0)
			return DRV_ETIMEDOUT;
		rc = poll(&p, 1, (int)left);
		if (rc > 0)
			return DRV_OK;
		if (rc == 0)
			return DRV_ETIMEDOUT;
		if (errno != EINTR)
			return DRV_ESYS;
	}
}

static int open_socket(const char *path, struct drv_deadline dl, int *out_fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, err = 0;

	if (path == NULL || strlen(path) >= sizeof(sa.sun_path))
		return DRV_EINVAL;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return DRV_ESYS;
	/* A full backlog answers EAGAIN on a non-blocking unix connect: retry. */
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		err = errno;
		if (err == EINTR)
			continue;
		if (err != EAGAIN || drv_deadline_passed(dl, drv_mono_ms()))
			break;
		poll(NULL, 0, 10);
		err = 0;
	}
	if (err == 0) {
		*out_fd = fd;
		return DRV_OK;
	}
	close(fd);
	drv_warn(MOD, "cannot connect to the admin socket", "socket=%s error=\"%s\"", path,
	         strerror(err));
	return err == EAGAIN ? DRV_ETIMEDOUT : DRV_EIO;
}

static int send_all(int fd, const char *buf, size_t len, struct drv_deadline dl)
{
	ssize_t n;
	int rc;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return DRV_EIO;
		rc = wait_fd(fd, POLLOUT, dl);
		if (rc != DRV_OK)
			return rc;
	}
	return DRV_OK;
}

/* Grow *buf so that it holds at least need + 1 bytes. */
static int reserve(char **buf, size_t *cap, size_t need)
{
	size_t ncap = *cap ? *cap : READ_CHUNK;
	char *nb;

	if (need + 1 <= *cap)
		return DRV_OK;
	while (ncap < need + 1)
		ncap *= 2;
	nb = realloc(*buf, ncap);
	if (nb == NULL)
		return DRV_ENOMEM;
	*buf = nb;
	*cap = ncap;
	return DRV_OK;
}

static int recv_all(int fd, size_t max, struct drv_deadline dl, char **out, size_t *out_len)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;
	int rc;

	for (;;) {
		rc = reserve(&buf, &cap, len + READ_CHUNK);
		if (rc != DRV_OK)
			goto out_free;
		n = recv(fd, buf + len, READ_CHUNK, 0);
		if (n == 0)
			break;
		if (n > 0) {
			len += (size_t)n;
			if (len > max) {
				rc = DRV_ETOOBIG;
				goto out_free;
			}
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			rc = DRV_EIO;
			goto out_free;
		}
		rc = wait_fd(fd, POLLIN, dl);
		if (rc != DRV_OK)
			goto out_free;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return DRV_OK;
out_free:
	free(buf);
	return rc;
}

int drv_haproxy_cmd(const struct drv_haproxy *h, const char *cmd, char **out, size_t *out_len)
{
	struct drv_deadline dl;
	char line[CMD_MAX + 2];
	size_t len;
	int fd, rc;

	if (h == NULL || cmd == NULL || out == NULL || out_len == NULL)
		return DRV_EINVAL;
	len = strlen(cmd);
	if (len == 0 || len > CMD_MAX || strpbrk(cmd, "\r\n") != NULL)
		return DRV_EINVAL;
	memcpy(line, cmd, len);
	line[len++] = '\n';
	dl = drv_deadline_in(timeout_of(h));
	rc = open_socket(h->socket_path, dl, &fd);
	if (rc != DRV_OK)
		return rc;
	rc = send_all(fd, line, len, dl);
	if (rc == DRV_OK)
		rc = recv_all(fd, cap_of(h), dl, out, out_len);
	close(fd);
	if (rc != DRV_OK)
		drv_warn(MOD, "command failed", "socket=%s cmd=\"%s\" error=%s", h->socket_path,
		         cmd, drv_errname(rc));
	return rc;
}

static bool contains(const char *s, size_t len, const char *needle)
{
	return memmem(s, len, needle, strlen(needle)) != NULL;
}

int drv_haproxy_check_empty(const char *resp, size_t len)
{
	size_t i;

	if (resp == NULL)
		return DRV_EINVAL;
	for (i = 0; i < len; i++)
		if (resp[i] != '\n' && resp[i] != '\r' && resp[i] != ' ' && resp[i] != '\t')
			break;
	if (i == len)
		return DRV_OK;
	if (contains(resp, len, "No such server") || contains(resp, len, "No such backend") ||
	    contains(resp, len, "Can't find backend") || contains(resp, len, "No such proxy"))
		return DRV_ENOENT;
	if (contains(resp, len, "Permission denied") || contains(resp, len, "Access denied"))
		return DRV_EPERM;
	return DRV_EINVAL;
}

/* First line of RESP, at most 200 bytes, for a log line. */
static void first_line(const char *resp, size_t len, char *out, size_t outsz)
{
	size_t n = 0;

	while (n < len && n + 1 < outsz && resp[n] != '\n' && resp[n] != '\0') {
		out[n] = (resp[n] == '"' || resp[n] < ' ') ? '\'' : resp[n];
		n++;
	}
	out[n] = '\0';
}

int drv_haproxy_exec(const struct drv_haproxy *h, const char *cmd)
{
	char *resp, msg[200];
	size_t len;
	int rc;

	rc = drv_haproxy_cmd(h, cmd, &resp, &len);
	if (rc != DRV_OK)
		return rc;
	rc = drv_haproxy_check_empty(resp, len);
	if (rc != DRV_OK) {
		first_line(resp, len, msg, sizeof(msg));
		drv_warn(MOD, "command refused", "cmd=\"%s\" answer=\"%s\"", cmd, msg);
	}
	free(resp);
	return rc;
}

bool drv_haproxy_name_ok(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0')
		return false;
	for (i = 0; name[i] != '\0'; i++) {
		char c = name[i];
		if (i >= DRV_HAPROXY_NAME_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '-'))
			return false;
	}
	return true;
}

static int server_cmd(const struct drv_haproxy *h, const char *backend, const char *server,
                      const char *what)
{
	char cmd[CMD_MAX + 1];

	if (!drv_haproxy_name_ok(backend) || !drv_haproxy_name_ok(server))
		return DRV_EINVAL;
	snprintf(cmd, sizeof(cmd), "set server %s/%s %s", backend, server, what);
	return drv_haproxy_exec(h, cmd);
}

int drv_haproxy_set_weight(const struct drv_haproxy *h, const char *backend, const char *server,
                           int weight)
{
	char what[32];

	if (weight < 0 || weight > DRV_HAPROXY_WEIGHT_MAX)
		return DRV_EINVAL;
	snprintf(what, sizeof(what), "weight %d", weight);
	return server_cmd(h, backend, server, what);
}

int drv_haproxy_reset_weight(const struct drv_haproxy *h, const char *backend, const char *server)
{
	return server_cmd(h, backend, server, "weight 100%");
}

int drv_haproxy_set_state(const struct drv_haproxy *h, const char *backend, const char *server,
                          enum drv_haproxy_admin state)
{
	switch (state) {
	case DRV_HAPROXY_READY: return server_cmd(h, backend, server, "state ready");
	case DRV_HAPROXY_DRAIN: return server_cmd(h, backend, server, "state drain");
	case DRV_HAPROXY_MAINT: return server_cmd(h, backend, server, "state maint");
	}
	return DRV_EINVAL;
}

/* ---- line reader over a length-delimited buffer ---- */

struct lines {
	const char *p, *end;
	size_t lineno;
};

/* The next line (without its newline or CR) in S and N; DRV_ENOENT at the end. */
static int next_line(struct lines *ls, const char **s, size_t *n)
{
	const char *nl;

	if (ls->p >= ls->end)
		return DRV_ENOENT;
	nl = memchr(ls->p, '\n', (size_t)(ls->end - ls->p));
	if (nl == NULL)
		nl = ls->end;
	*s = ls->p;
	*n = (size_t)(nl - ls->p);
	ls->p = nl < ls->end ? nl + 1 : ls->end;
	ls->lineno++;
	if (*n > DRV_HAPROXY_LINE_MAX)
		return DRV_ETOOBIG;
	if (*n > 0 && (*s)[*n - 1] == '\r')
		(*n)--;
	return DRV_OK;
}

/* Strict decimal in [lo, hi]. */
static int parse_int(const char *s, size_t n, long lo, long hi, long *out)
{
	long v = 0;
	size_t i = 0;
	bool neg = false;

	if (n > 0 && s[0] == '-') {
		neg = true;
		i = 1;
	}
	if (i == n || n > 12)
		return DRV_EDECODE;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return DRV_EDECODE;
		v = v * 10 + (s[i] - '0');
	}
	if (neg)
		v = -v;
	if (v < lo || v > hi)
		return DRV_EDECODE;
	*out = v;
	return DRV_OK;
}

/* ---- show servers state ---- */

enum scol { C_BE, C_SRV, C_ADDR, C_OP, C_ADMIN, C_UW, C_IW, C_CHKRES, C_CHKST, C_PORT, C_COUNT };

static const char *const scol_names[C_COUNT] = {
        [C_BE] = "be_name",
        [C_SRV] = "srv_name",
        [C_ADDR] = "srv_addr",
        [C_OP] = "srv_op_state",
        [C_ADMIN] = "srv_admin_state",
        [C_UW] = "srv_uweight",
        [C_IW] = "srv_iweight",
        [C_CHKRES] = "srv_check_result",
        [C_CHKST] = "srv_check_state",
        [C_PORT] = "srv_port",
};

/* Required columns; the others are optional. */
static bool scol_required(int c)
{
	return c == C_BE || c == C_SRV || c == C_OP || c == C_ADMIN || c == C_UW || c == C_IW;
}

struct tok {
	const char *s;
	size_t n;
};

/* Split S/N on single spaces into at most MAX tokens; -1 when more. */
static int split_spaces(const char *s, size_t n, struct tok *t, int max)
{
	int k = 0;
	size_t i = 0, start;

	while (i < n) {
		while (i < n && s[i] == ' ')
			i++;
		if (i == n)
			break;
		if (k == max)
			return -1;
		start = i;
		while (i < n && s[i] != ' ')
			i++;
		t[k].s = s + start;
		t[k].n = i - start;
		k++;
	}
	return k;
}

static int parse_header(const char *s, size_t n, size_t lineno, int idx[C_COUNT])
{
	struct tok t[HDR_COLS];
	int k, i, c;

	for (c = 0; c < C_COUNT; c++)
		idx[c] = -1;
	if (n < 2 || s[0] != '#') {
		drv_warn(MOD, "servers state: no header", "line=%zu", lineno);
		return DRV_EDECODE;
	}
	k = split_spaces(s + 1, n - 1, t, HDR_COLS);
	if (k < 0)
		return DRV_ETOOBIG;
	for (i = 0; i < k; i++)
		for (c = 0; c < C_COUNT; c++)
			if (t[i].n == strlen(scol_names[c]) &&
			    memcmp(t[i].s, scol_names[c], t[i].n) == 0 && idx[c] < 0)
				idx[c] = i;
	for (c = 0; c < C_COUNT; c++)
		if (scol_required(c) && idx[c] < 0) {
			drv_warn(MOD, "servers state: missing column", "line=%zu column=%s", lineno,
			         scol_names[c]);
			return DRV_EDECODE;
		}
	return DRV_OK;
}

static int copy_name(char *dst, size_t dstsz, struct tok t)
{
	if (t.n == 0 || t.n >= dstsz)
		return DRV_EDECODE;
	memcpy(dst, t.s, t.n);
	dst[t.n] = '\0';
	return DRV_OK;
}

/* Integer of column C, or DEF when the column is absent. */
static int col_int(const struct tok *t, const int idx[C_COUNT], int c, long lo, long hi, long def,
                   long *out)
{
	if (idx[c] < 0) {
		*out = def;
		return DRV_OK;
	}
	return parse_int(t[idx[c]].s, t[idx[c]].n, lo, hi, out);
}

static int parse_server_row(const struct tok *t, int k, const int idx[C_COUNT],
                            struct drv_haproxy_server *sv)
{
	long op, adm, uw, iw, cr, cs, port;
	int c;

	for (c = 0; c < C_COUNT; c++)
		if (idx[c] >= k)
			return DRV_EDECODE;
	memset(sv, 0, sizeof(*sv));
	if (copy_name(sv->backend, sizeof(sv->backend), t[idx[C_BE]]) != DRV_OK ||
	    copy_name(sv->name, sizeof(sv->name), t[idx[C_SRV]]) != DRV_OK)
		return DRV_EDECODE;
	if (idx[C_ADDR] >= 0 && copy_name(sv->addr, sizeof(sv->addr), t[idx[C_ADDR]]) != DRV_OK)
		return DRV_EDECODE;
	if (col_int(t, idx, C_OP, 0, 3, 0, &op) || col_int(t, idx, C_ADMIN, 0, 0xffff, 0, &adm) ||
	    col_int(t, idx, C_UW, 0, 256, 0, &uw) || col_int(t, idx, C_IW, 0, 256, 0, &iw) ||
	    col_int(t, idx, C_CHKRES, 0, 4, 0, &cr) || col_int(t, idx, C_CHKST, 0, 0xffff, 0, &cs))
		return DRV_EDECODE;
	port = -1;
	if (idx[C_PORT] >= 0 && !(t[idx[C_PORT]].n == 1 && t[idx[C_PORT]].s[0] == '-') &&
	    parse_int(t[idx[C_PORT]].s, t[idx[C_PORT]].n, 0, 65535, &port) != DRV_OK)
		return DRV_EDECODE;
	sv->op_state = (int)op;
	sv->admin_state = (unsigned)adm;
	sv->uweight = (int)uw;
	sv->iweight = (int)iw;
	sv->check_result = (int)cr;
	sv->check_state = (unsigned)cs;
	sv->port = (int)port;
	return DRV_OK;
}

static int push_server(struct drv_haproxy_servers *s, size_t *cap,
                       const struct drv_haproxy_server *sv)
{
	struct drv_haproxy_server *nv;
	size_t ncap;

	if (s->n == DRV_HAPROXY_SERVERS_MAX)
		return DRV_ETOOBIG;
	if (s->n == *cap) {
		ncap = *cap ? *cap * 2 : 16;
		nv = realloc(s->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return DRV_ENOMEM;
		s->v = nv;
		*cap = ncap;
	}
	s->v[s->n++] = *sv;
	return DRV_OK;
}

static int parse_version(const char *s, size_t n, const char *buf, size_t len)
{
	long v;

	if (parse_int(s, n, 0, 1000, &v) == DRV_OK)
		return v == 1 ? DRV_OK : DRV_EVERSION;
	if (drv_haproxy_check_empty(buf, len) == DRV_ENOENT)
		return DRV_ENOENT;
	return DRV_EDECODE;
}

int drv_haproxy_parse_servers(const char *buf, size_t len, struct drv_haproxy_servers *out)
{
	struct drv_haproxy_servers s = {0};
	struct drv_haproxy_server sv;
	struct lines ls = {.p = buf, .end = buf + len};
	struct tok t[HDR_COLS];
	int idx[C_COUNT], rc, k;
	size_t n, cap = 0;
	const char *l;

	if (buf == NULL || out == NULL)
		return DRV_EINVAL;
	rc = next_line(&ls, &l, &n);
	if (rc == DRV_ENOENT)
		return DRV_EDECODE; /* empty answer */
	if (rc == DRV_OK)
		rc = parse_version(l, n, buf, len);
	if (rc != DRV_OK)
		return rc;
	rc = next_line(&ls, &l, &n);
	if (rc == DRV_OK)
		rc = parse_header(l, n, ls.lineno, idx);
	if (rc != DRV_OK)
		return rc == DRV_ENOENT ? DRV_EDECODE : rc;
	while ((rc = next_line(&ls, &l, &n)) == DRV_OK) {
		if (n == 0)
			continue;
		k = split_spaces(l, n, t, HDR_COLS);
		rc = k < 0 ? DRV_ETOOBIG : parse_server_row(t, k, idx, &sv);
		if (rc == DRV_OK)
			rc = push_server(&s, &cap, &sv);
		if (rc != DRV_OK) {
			drv_warn(MOD, "servers state: bad row", "line=%zu error=%s", ls.lineno,
			         drv_errname(rc));
			free(s.v);
			return rc;
		}
	}
	if (rc != DRV_ENOENT) {
		free(s.v);
		return rc;
	}
	*out = s;
	return DRV_OK;
}

void drv_haproxy_servers_free(struct drv_haproxy_servers *s)
{
	if (s == NULL)
		return;
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

const struct drv_haproxy_server *drv_haproxy_servers_find(const struct drv_haproxy_servers *s,
                                                          const char *backend, const char *server)
{
	size_t i;

	for (i = 0; s != NULL && i < s->n; i++)
		if (strcmp(s->v[i].name, server) == 0 &&
		    (backend == NULL || strcmp(s->v[i].backend, backend) == 0))
			return &s->v[i];
	return NULL;
}

bool drv_haproxy_server_up(const struct drv_haproxy_server *s)
{
	const unsigned chk = DRV_HAPROXY_CHK_CONFIGURED | DRV_HAPROXY_CHK_ENABLED;

	if (s->op_state != DRV_HAPROXY_OP_RUNNING && s->op_state != DRV_HAPROXY_OP_STARTING)
		return false;
	if (s->admin_state & DRV_HAPROXY_ADM_MAINT)
		return false;
	if ((s->check_state & chk) == chk)
		return s->check_result == DRV_HAPROXY_CHK_PASSED ||
		       s->check_result == DRV_HAPROXY_CHK_CONDPASS;
	return true;
}

int drv_haproxy_servers(const struct drv_haproxy *h, const char *backend,
                        struct drv_haproxy_servers *out)
{
	char cmd[CMD_MAX + 1], *resp;
	size_t len;
	int rc;

	if (!drv_haproxy_name_ok(backend))
		return DRV_EINVAL;
	snprintf(cmd, sizeof(cmd), "show servers state %s", backend);
	rc = drv_haproxy_cmd(h, cmd, &resp, &len);
	if (rc != DRV_OK)
		return rc;
	rc = drv_haproxy_parse_servers(resp, len, out);
	if (rc == DRV_ENOENT)
		drv_warn(MOD, "no such backend", "backend=%s", backend);
	free(resp);
	return rc;
}

/* ---- show stat (CSV) ---- */

static char empty_cell[1];

/*
 * Split one CSV line in place (LINE is a writable, NUL-terminated copy):
 * cells are stored in CELLS (at most MAX); a quoted cell is unquoted and ""
 * becomes ". Returns the count, or -1 when there are more than MAX cells or
 * a quote is not closed.
 */
static long split_csv(char *line, char **cells, size_t max)
{
	size_t k = 0;
	char *r = line, *w;

	for (;;) {
		if (k == max)
			return -1;
		cells[k++] = w = r;
		if (*r == '"') {
			r++;
			for (;;) {
				if (*r == '\0')
					return -1;
				if (*r == '"' && r[1] == '"') {
					*w++ = '"';
					r += 2;
				} else if (*r == '"') {
					r++;
					break;
				} else {
					*w++ = *r++;
				}
			}
			if (*r != ',' && *r != '\0')
				return -1;
		} else {
			while (*r != ',' && *r != '\0')
				*w++ = *r++;
		}
		if (*r == '\0') {
			*w = '\0';
			return (long)k;
		}
		r++;
		*w = '\0';
	}
}

static int stat_header(struct drv_haproxy_stat *st, char *line)
{
	char **cols;
	long k;

	if (line[0] != '#')
		return DRV_EDECODE;
	line++;
	while (*line == ' ')
		line++;
	cols = calloc(DRV_HAPROXY_STAT_COLS, sizeof(*cols));
	if (cols == NULL)
		return DRV_ENOMEM;
	k = split_csv(line, cols, DRV_HAPROXY_STAT_COLS);
	if (k < 2) {
		free(cols);
		return k < 0 ? DRV_ETOOBIG : DRV_EDECODE;
	}
	/* A trailing comma makes an empty last column: drop it. */
	if (cols[k - 1][0] == '\0')
		k--;
	st->cols = cols;
	st->ncols = (size_t)k;
	return DRV_OK;
}

static int stat_row(struct drv_haproxy_stat *st, size_t *cap, char *line)
{
	char **tmp, **nc;
	size_t i, ncap;
	long k;

	if (st->nrows == DRV_HAPROXY_STAT_ROWS ||
	    (st->nrows + 1) * st->ncols > DRV_HAPROXY_STAT_CELLS)
		return DRV_ETOOBIG;
	tmp = calloc(st->ncols + 2, sizeof(*tmp));
	if (tmp == NULL)
		return DRV_ENOMEM;
	k = split_csv(line, tmp, st->ncols + 2);
	/* Rows end with a comma too: one more (empty) cell than columns. */
	if (k < 0 || (size_t)k > st->ncols + 1 ||
	    (k == (long)st->ncols + 1 && tmp[k - 1][0] != '\0')) {
		free(tmp);
		return DRV_EDECODE;
	}
	if (st->nrows == *cap) {
		ncap = *cap ? *cap * 2 : 16;
		nc = realloc(st->cells, ncap * st->ncols * sizeof(*nc));
		if (nc == NULL) {
			free(tmp);
			return DRV_ENOMEM;
		}
		st->cells = nc;
		*cap = ncap;
	}
	for (i = 0; i < st->ncols; i++)
		st->cells[st->nrows * st->ncols + i] = (long)i < k ? tmp[i] : empty_cell;
	st->nrows++;
	free(tmp);
	return DRV_OK;
}

static int stat_lines(struct drv_haproxy_stat *st, size_t len)
{
	char *p = st->buf, *end = st->buf + len, *nl;
	size_t cap = 0, lineno = 0;
	bool header = false;
	int rc;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end; /* the terminator */
		*nl = '\0';
		lineno++;
		if ((size_t)(nl - p) > DRV_HAPROXY_LINE_MAX)
			return DRV_ETOOBIG;
		if (nl > p && nl[-1] == '\r')
			nl[-1] = '\0';
		if (*p != '\0') {
			rc = header ? stat_row(st, &cap, p) : stat_header(st, p);
			if (rc != DRV_OK) {
				drv_warn(MOD, "show stat: bad line", "line=%zu error=%s", lineno,
				         drv_errname(rc));
				return rc;
			}
			header = true;
		}
		p = nl + 1;
	}
	return header ? DRV_OK : DRV_EDECODE;
}

int drv_haproxy_parse_stat(const char *buf, size_t len, struct drv_haproxy_stat *out)
{
	struct drv_haproxy_stat st = {0};
	int rc;

	if (buf == NULL || out == NULL)
		return DRV_EINVAL;
	if (memchr(buf, '\0', len) != NULL)
		return DRV_EDECODE;
	if (len > 0 && buf[0] != '#')
		return drv_haproxy_check_empty(buf, len) == DRV_ENOENT ? DRV_ENOENT : DRV_EDECODE;
	st.buf = malloc(len + 1);
	if (st.buf == NULL)
		return DRV_ENOMEM;
	memcpy(st.buf, buf, len);
	st.buf[len] = '\0';
	rc = stat_lines(&st, len);
	if (rc != DRV_OK) {
		drv_haproxy_stat_free(&st);
		return rc;
	}
	*out = st;
	return DRV_OK;
}

void drv_haproxy_stat_free(struct drv_haproxy_stat *st)
{
	if (st == NULL)
		return;
	free(st->cols);
	free(st->cells);
	free(st->buf);
	memset(st, 0, sizeof(*st));
}

const char *drv_haproxy_stat_get(const struct drv_haproxy_stat *st, const char *pxname,
                                 const char *svname, const char *field)
{
	size_t c, r, cpx = SIZE_MAX, csv = SIZE_MAX, cf = SIZE_MAX;
	char **row;

	for (c = 0; c < st->ncols; c++) {
		if (cpx == SIZE_MAX && strcmp(st->cols[c], "pxname") == 0)
			cpx = c;
		else if (csv == SIZE_MAX && strcmp(st->cols[c], "svname") == 0)
			csv = c;
		if (cf == SIZE_MAX && strcmp(st->cols[c], field) == 0)
			cf = c;
	}
	if (cpx == SIZE_MAX || csv == SIZE_MAX || cf == SIZE_MAX)
		return NULL;
	for (r = 0; r < st->nrows; r++) {
		row = st->cells + r * st->ncols;
		if (strcmp(row[cpx], pxname) == 0 && strcmp(row[csv], svname) == 0)
			return row[cf];
	}
	return NULL;
}

int drv_haproxy_stat(const struct drv_haproxy *h, const char *backend, struct drv_haproxy_stat *out)
{
	char cmd[CMD_MAX + 1], *resp;
	size_t len;
	int rc;

	if (!drv_haproxy_name_ok(backend))
		return DRV_EINVAL;
	snprintf(cmd, sizeof(cmd), "show stat %s 4 -1", backend);
	rc = drv_haproxy_cmd(h, cmd, &resp, &len);
	if (rc != DRV_OK)
		return rc;
	rc = drv_haproxy_parse_stat(resp, len, out);
	free(resp);
	return rc;
}

/* ---- wait until UP ---- */

void drv_haproxy_why_not_up(char *why, size_t cap, const struct drv_haproxy_server *sv)
{
	static const char *const op[] = {"DOWN", "starting", "running", "stopping"};
	size_t len = why != NULL ? strlen(why) : cap;
	const char *state, *chk;

	if (len + 1 >= cap)
		return;
	state = sv->admin_state & DRV_HAPROXY_ADM_MAINT ? "MAINT"
	        : sv->op_state >= 0 && sv->op_state <= DRV_HAPROXY_OP_STOPPING
	                ? op[sv->op_state]
	                : "in an unknown state";
	chk = sv->check_result == DRV_HAPROXY_CHK_FAILED     ? " (last check failed)"
	      : sv->check_result == DRV_HAPROXY_CHK_NEUTRAL  ? " (no check passed yet)"
	      : sv->check_result != DRV_HAPROXY_CHK_UNKNOWN  ? ""
	      : sv->check_state & DRV_HAPROXY_CHK_INPROGRESS ? " (a check is running)"
	                                                     : " (not checked yet)";
	snprintf(why + len, cap - len, "%s%s %s%s", len ? ", " : "", sv->name, state, chk);
}

/* DRV_OK when all are up, DRV_ESTATE when some are not, DRV_ENOENT when one
 * is missing. LAST: log the servers not UP and say so in WHY (or NULL). */
static int all_up(const struct drv_haproxy_servers *s, const char *backend,
                  const char *const *servers, size_t n, bool last, char *why, size_t cap)
{
	const struct drv_haproxy_server *sv;
	int rc = DRV_OK;
	size_t i;

	for (i = 0; i < n; i++) {
		sv = drv_haproxy_servers_find(s, backend, servers[i]);
		if (sv == NULL) {
			drv_warn(MOD, "no such server", "backend=%s server=%s", backend,
			         servers[i]);
			if (why != NULL)
				snprintf(why, cap, "%s is not a server of backend %s", servers[i],
				         backend);
			return DRV_ENOENT;
		}
		if (!drv_haproxy_server_up(sv)) {
			if (last) {
				drv_warn(MOD, "server not up",
				         "backend=%s server=%s op_state=%d "
				         "admin_state=%u check_result=%d",
				         backend, sv->name, sv->op_state, sv->admin_state,
				         sv->check_result);
				if (why != NULL)
					drv_haproxy_why_not_up(why, cap, sv);
			}
			rc = DRV_ESTATE;
		}
	}
	return rc;
}

int drv_haproxy_wait_up(const struct drv_haproxy *h, const char *backend,
                        const char *const *servers, size_t n, int64_t timeout_ms, char *why,
                        size_t cap)
{
	struct drv_deadline dl = drv_deadline_in(timeout_ms < 0 ? 0 : timeout_ms);
	struct drv_haproxy_servers s;
	bool last = false;
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		if (!drv_haproxy_name_ok(servers[i]))
			return DRV_EINVAL;
	for (;;) {
		last = drv_deadline_passed(dl, drv_mono_ms());
		rc = drv_haproxy_servers(h, backend, &s);
		if (rc == DRV_ENOENT || rc == DRV_EINVAL || rc == DRV_EVERSION)
			return rc;
		if (rc == DRV_OK) {
			rc = all_up(&s, backend, servers, n, last, why, cap);
			drv_haproxy_servers_free(&s);
			if (rc == DRV_OK || rc == DRV_ENOENT)
				return rc;
		}
		if (last) /* an unreachable socket says so rather than "timed out" */
			return rc == DRV_ESTATE ? DRV_ETIMEDOUT : rc;
		poll(NULL, 0, (int)drv_deadline_left(dl, drv_mono_ms(), DRV_HAPROXY_POLL_MS));
	}
}

/* ---- the "haproxy" traffic kind ---- */

struct hx {
	struct drv_haproxy h;
	char *path;
};

static int hx_open(const struct drv_traffic_config *cfg, void **state)
{
	struct sockaddr_un sa;
	struct hx *x;

	if (cfg->socket == NULL || cfg->socket[0] == '\0' ||
	    strlen(cfg->socket) >= sizeof(sa.sun_path))
		return DRV_EINVAL;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return DRV_ENOMEM;
	x->path = strdup(cfg->socket);
	if (x->path == NULL) {
		free(x);
		return DRV_ENOMEM;
	}
	x->h.socket_path = x->path;
	x->h.timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DRV_TRAFFIC_TIMEOUT_MS;
	*state = x;
	return DRV_OK;
}

static void hx_close(void *state)
{
	struct hx *x = state;

	if (x == NULL)
		return;
	free(x->path);
	free(x);
}

static int hx_weights(void *state, const char *backend, const struct drv_traffic_weight *w,
                      size_t n)
{
	struct hx *x = state;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		rc = drv_haproxy_set_weight(&x->h, backend, w[i].server, w[i].weight);
		if (rc != DRV_OK)
			return rc;
	}
	drv_info(MOD, "weights set", "backend=%s servers=%zu", backend, n);
	return DRV_OK;
}

static int hx_state(void *state, const char *backend, const char *const *servers, size_t n,
                    enum drv_traffic_state st)
{
	static const enum drv_haproxy_admin map[] = {[DRV_TRAFFIC_READY] = DRV_HAPROXY_READY,
	                                             [DRV_TRAFFIC_DRAIN] = DRV_HAPROXY_DRAIN,
	                                             [DRV_TRAFFIC_MAINT] = DRV_HAPROXY_MAINT};
	struct hx *x = state;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		rc = drv_haproxy_set_state(&x->h, backend, servers[i], map[st]);
		if (rc != DRV_OK)
			return rc;
	}
	return DRV_OK;
}

static bool listed(const char *name, const char *const *servers, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(name, servers[i]) == 0)
			return true;
	return false;
}

/* A running server whose result HAProxy cleared for the check it is running
 * now: not known UP, not known DOWN either. */
static bool mid_check(const struct drv_haproxy_server *sv)
{
	return sv->op_state == DRV_HAPROXY_OP_RUNNING &&
	       sv->check_result == DRV_HAPROXY_CHK_UNKNOWN &&
	       (sv->check_state & DRV_HAPROXY_CHK_INPROGRESS);
}

/* Ready TO at their configured weight; DRV_ESTATE when none of them is UP.
 * While no target is UP but one is in the middle of a check, read again (at
 * most SWITCH_READS times, SWITCH_REREAD_MS apart): a check that starts just
 * before the read must not refuse the switch. */
#define SWITCH_READS     20
#define SWITCH_REREAD_MS 25
static int hx_ready_to(struct hx *x, const char *backend, const char *const *to, size_t n)
{
	const struct drv_haproxy_server *sv;
	struct drv_haproxy_servers s;
	bool any_up = false, checking;
	size_t i;
	int rc, tries;

	rc = drv_haproxy_servers(&x->h, backend, &s);
	if (rc != DRV_OK)
		return rc;
	for (i = 0; i < n && rc == DRV_OK; i++)
		if (drv_haproxy_servers_find(&s, backend, to[i]) == NULL) {
			drv_warn(MOD, "no such server", "backend=%s server=%s", backend, to[i]);
			rc = DRV_ENOENT;
		}
	drv_haproxy_servers_free(&s);
	for (i = 0; i < n && rc == DRV_OK; i++) {
		rc = drv_haproxy_reset_weight(&x->h, backend, to[i]);
		if (rc == DRV_OK)
			rc = drv_haproxy_set_state(&x->h, backend, to[i], DRV_HAPROXY_READY);
	}
	for (tries = 0; rc == DRV_OK && !any_up && tries < SWITCH_READS; tries++) {
		if (tries > 0)
			usleep(SWITCH_REREAD_MS * 1000);
		rc = drv_haproxy_servers(&x->h, backend, &s);
		if (rc != DRV_OK)
			return rc;
		checking = false;
		for (i = 0; i < n; i++) {
			sv = drv_haproxy_servers_find(&s, backend, to[i]);
			any_up = any_up || (sv != NULL && drv_haproxy_server_up(sv));
			checking = checking || (sv != NULL && mid_check(sv));
		}
		drv_haproxy_servers_free(&s);
		if (!checking)
			break;
	}
	if (rc != DRV_OK)
		return rc;
	if (!any_up) {
		drv_warn(MOD, "switch refused: no target server is up", "backend=%s", backend);
		return DRV_ESTATE;
	}
	return DRV_OK;
}

static int hx_switch(void *state, const char *backend, const char *const *to, size_t n)
{
	struct drv_haproxy_servers s;
	struct hx *x = state;
	size_t i, drained = 0;
	int rc;

	rc = hx_ready_to(x, backend, to, n);
	if (rc == DRV_OK)
		rc = drv_haproxy_servers(&x->h, backend, &s);
	if (rc != DRV_OK)
		return rc;
	for (i = 0; i < s.n && rc == DRV_OK; i++) {
		if (listed(s.v[i].name, to, n) || (s.v[i].admin_state & DRV_HAPROXY_ADM_FDRAIN))
			continue;
		rc = drv_haproxy_set_state(&x->h, backend, s.v[i].name, DRV_HAPROXY_DRAIN);
		drained++;
	}
	drv_haproxy_servers_free(&s);
	if (rc == DRV_OK)
		drv_info(MOD, "traffic switched", "backend=%s to=%s servers=%zu drained=%zu",
		         backend, to[0], n, drained);
	return rc;
}

static int hx_wait_up(void *state, const char *backend, const char *const *servers, size_t n,
                      int64_t timeout_ms, char *why, size_t cap)
{
	struct hx *x = state;

	return drv_haproxy_wait_up(&x->h, backend, servers, n, timeout_ms, why, cap);
}

const struct drv_traffic_ops drv_traffic_haproxy_ops = {
        .kind = "haproxy",
        .open = hx_open,
        .set_weights = hx_weights,
        .switch_to = hx_switch,
        .set_state = hx_state,
        .wait_up = hx_wait_up,
        .close = hx_close,
};
