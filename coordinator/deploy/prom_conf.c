/*
 * prom_conf.c: the `prometheus` section of droverd.yaml (prom_conf.h),
 * read from the jansson tree of the whole file with the line of every node.
 */
#include "prom_conf.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomicfile.h"
#include "clock.h"
#include "err.h"
#include "yamljson.h"

#define SECTION    "prometheus"
#define TIMEOUT_MS 10000
#define TIMEOUT_LO 100
#define TIMEOUT_HI (60 * 1000)

struct rd {
	const struct drv_yj_lines *lines;
	const char *file, *base_dir;
	struct drv_cfg_diag *diag;
	int errors;
};

__attribute__((format(printf, 3, 4))) static void rerr(struct rd *r, const char *path,
                                                       const char *fmt, ...)
{
	char msg[160];
	va_list ap;
	int line = drv_yj_line(r->lines, path);

	r->errors++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->diag->n >= DRV_CFG_DIAG_MAX) {
		r->diag->dropped++;
		return;
	}
	if (line > 0)
		snprintf(r->diag->msg[r->diag->n++], DRV_CFG_DIAG_LEN, "%.80s:%d: %.60s: %s",
		         r->file, line, path, msg);
	else
		snprintf(r->diag->msg[r->diag->n++], DRV_CFG_DIAG_LEN, "%.80s: %.60s: %s", r->file,
		         path, msg);
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static void server_free(struct drv_prom_server *s)
{
	free(s->name);
	free(s->url);
	if (s->token != NULL)
		memset(s->token, 0, strlen(s->token));
	free(s->token);
	free(s->ca_file);
	memset(s, 0, sizeof(*s));
}

void drv_prom_servers_free(struct drv_prom_servers *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		server_free(&s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static char *resolve(const char *base_dir, const char *p)
{
	char *out;

	if (p[0] == '/' || base_dir == NULL)
		return strdup(p);
	if (asprintf(&out, "%s/%s", base_dir, p) < 0)
		return NULL;
	return out;
}

/* A string without NUL bytes, or NULL (error reported). */
static const char *want_string(struct rd *r, const json_t *v, const char *path, const char *what)
{
	const char *s = json_string_value(v);

	if (s == NULL || s[0] == '\0' || strlen(s) != json_string_length(v)) {
		rerr(r, path, "must be %s", what);
		return NULL;
	}
	return s;
}

static int read_url(struct rd *r, const json_t *v, const char *path, struct drv_prom_server *s)
{
	const char *u = want_string(r, v, path, "the server's base URL, http:// or https://");
	size_t n;

	if (u == NULL)
		return DRV_OK;
	n = strlen(u);
	if ((strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) ||
	    n > DRV_PROM_URL_MAX || strpbrk(u, " \t\r\n?#") != NULL) {
		rerr(r, path,
		     "must be an http:// or https:// base URL without query (at most %d bytes)",
		     DRV_PROM_URL_MAX);
		return DRV_OK;
	}
	while (n > 0 && u[n - 1] == '/')
		n--;
	s->url = strndup(u, n);
	return s->url ? DRV_OK : DRV_ENOMEM;
}

/* The token file must be private to droverd's user, like the signing key. */
static int read_token(struct rd *r, const json_t *v, const char *path, struct drv_prom_server *s)
{
	const char *f = want_string(r, v, path, "the path of a file holding the bearer token");
	char *p, *buf = NULL;
	size_t len;
	int rc;

	if (f == NULL)
		return DRV_OK;
	p = resolve(r->base_dir, f);
	if (p == NULL)
		return DRV_ENOMEM;
	rc = drv_check_private(p);
	if (rc == DRV_EPERM)
		rerr(r, path, "%.100s can be read or written by group or others (chmod 600 it)", p);
	else if (rc == DRV_OK)
		rc = drv_read_file(p, DRV_PROM_TOKEN_MAX, &buf, &len);
	if (rc != DRV_OK && rc != DRV_EPERM)
		rerr(r, path, "cannot read %.100s: %s", p, drv_strerror(rc));
	free(p);
	if (rc != DRV_OK)
		return rc == DRV_ENOMEM ? rc : DRV_OK;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	if (len == 0 || strlen(buf) != len || strpbrk(buf, "\r\n") != NULL) {
		rerr(r, path, "the token file must hold one line: the token");
		free(buf);
		return DRV_OK;
	}
	s->token = buf;
	return DRV_OK;
}

static int read_ca(struct rd *r, const json_t *v, const char *path, struct drv_prom_server *s)
{
	const char *f = want_string(r, v, path, "the path of a PEM file of CA certificates");

	if (f == NULL)
		return DRV_OK;
	s->ca_file = resolve(r->base_dir, f);
	if (s->ca_file == NULL)
		return DRV_ENOMEM;
	if (access(s->ca_file, R_OK) != 0)
		rerr(r, path, "cannot read %.100s", s->ca_file);
	return DRV_OK;
}

static int read_field(struct rd *r, const char *key, const json_t *v, const char *path,
                      struct drv_prom_server *s)
{
	int64_t ms;

	if (strcmp(key, "url") == 0)
		return read_url(r, v, path, s);
	if (strcmp(key, "bearer_token_file") == 0)
		return read_token(r, v, path, s);
	if (strcmp(key, "ca_file") == 0)
		return read_ca(r, v, path, s);
	if (strcmp(key, "timeout") == 0) {
		if (!json_is_string(v) ||
		    drv_parse_duration_ms(json_string_value(v), &ms) != DRV_OK || ms < TIMEOUT_LO ||
		    ms > TIMEOUT_HI)
			rerr(r, path, "must be a duration from 100ms to 1m such as 5s");
		else
			s->timeout_ms = ms;
		return DRV_OK;
	}
	rerr(r, path, "unknown field (url, timeout, bearer_token_file, ca_file)");
	return DRV_OK;
}

static int read_one(struct rd *r, const char *name, const json_t *v, struct drv_prom_server *s)
{
	char path[DRV_YJ_PATH_MAX], fp[2 * DRV_YJ_PATH_MAX];
	const char *key;
	json_t *item;
	int rc;

	snprintf(path, sizeof(path), SECTION ".%s", name);
	if (!name_ok(name)) {
		rerr(r, path, "a server's name is 1 to 63 of A-Z a-z 0-9 . _ -");
		return DRV_OK;
	}
	if (!json_is_object(v)) {
		rerr(r, path, "must be a mapping: url, timeout, bearer_token_file, ca_file");
		return DRV_OK;
	}
	s->name = strdup(name);
	s->timeout_ms = TIMEOUT_MS;
	if (s->name == NULL)
		return DRV_ENOMEM;
	json_object_foreach((json_t *)v, key, item)
	{
		snprintf(fp, sizeof(fp), "%s.%s", path, key);
		rc = read_field(r, key, item, fp, s);
		if (rc != DRV_OK)
			return rc;
	}
	if (json_object_get(v, "url") == NULL)
		rerr(r, path, "url is required: the server's base URL");
	return DRV_OK;
}

int drv_prom_servers_read(const json_t *root, const struct drv_yj_lines *lines, const char *file,
                          const char *base_dir, struct drv_prom_servers *out,
                          struct drv_cfg_diag *diag)
{
	struct rd r = {.lines = lines, .file = file, .base_dir = base_dir, .diag = diag};
	const json_t *sec = json_object_get(root, SECTION);
	struct drv_prom_servers b = {0};
	const char *name;
	json_t *item;
	int rc = DRV_OK;

	if (sec == NULL || json_is_null(sec))
		return DRV_OK;
	if (!json_is_object(sec) || json_object_size(sec) > DRV_PROM_SERVERS_MAX) {
		rerr(&r, SECTION, "must be a mapping of at most %d names to servers",
		     DRV_PROM_SERVERS_MAX);
		return DRV_EINVAL;
	}
	b.v = calloc(json_object_size(sec) + 1, sizeof(*b.v));
	if (b.v == NULL)
		return DRV_ENOMEM;
	json_object_foreach((json_t *)sec, name, item)
	{
		rc = read_one(&r, name, item, &b.v[b.n++]);
		if (rc != DRV_OK)
			break;
	}
	if (rc == DRV_OK && r.errors > 0)
		rc = DRV_EINVAL;
	if (rc != DRV_OK) {
		drv_prom_servers_free(&b);
		return rc;
	}
	*out = b;
	return DRV_OK;
}

int drv_prom_servers_parse(const char *buf, size_t len, const char *file, const char *base_dir,
                           struct drv_prom_servers *out, struct drv_cfg_diag *diag)
{
	struct drv_yj_lines *lines = NULL;
	json_t *root = NULL;
	int rc = drv_cfg_tree_load(buf, len, file, &root, &lines, diag);

	if (rc != DRV_OK)
		return rc;
	rc = drv_prom_servers_read(root, lines, file, base_dir, out, diag);
	json_decref(root);
	drv_yj_lines_free(lines);
	return rc;
}

const struct drv_prom_server *drv_prom_server_find(const struct drv_prom_servers *s,
                                                   const char *name)
{
	for (size_t i = 0; s != NULL && name != NULL && i < s->n; i++)
		if (s->v[i].name != NULL && strcmp(s->v[i].name, name) == 0)
			return &s->v[i];
	return NULL;
}
