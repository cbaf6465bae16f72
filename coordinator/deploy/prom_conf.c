/*
 * prom_conf.c: the `prometheus` section of droverd.yaml (prom_conf.h),
 * read from the jansson tree of the whole file with the line of every node.
 */
#include "prom_conf.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomicfile.h"
#include "clock.h"
#include "cfg_section.h"
#include "err.h"
#include "yamljson.h"

#define SECTION    "prometheus"
#define TIMEOUT_MS 10000
#define TIMEOUT_LO 100
#define TIMEOUT_HI (60 * 1000)

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

/* A string without NUL bytes, or NULL (error reported). */
static const char *want_string(struct drv_cfg_rd *r, const json_t *v, const char *path,
                               const char *what)
{
	const char *s = json_string_value(v);

	if (s == NULL || s[0] == '\0' || strlen(s) != json_string_length(v)) {
		drv_cfg_rd_err(r, path, "must be %s", what);
		return NULL;
	}
	return s;
}

static int read_url(struct drv_cfg_rd *r, const json_t *v, const char *path,
                    struct drv_prom_server *s)
{
	const char *u = want_string(r, v, path, "the server's base URL, http:// or https://");
	size_t n;

	if (u == NULL)
		return DRV_OK;
	n = strlen(u);
	if ((strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) ||
	    n > DRV_PROM_URL_MAX || strpbrk(u, " \t\r\n?#") != NULL) {
		drv_cfg_rd_err(
		        r, path,
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
static int read_token(struct drv_cfg_rd *r, const json_t *v, const char *path,
                      struct drv_prom_server *s)
{
	const char *f = want_string(r, v, path, "the path of a file holding the bearer token");
	char *p, *buf = NULL;
	size_t len;
	int rc;

	if (f == NULL)
		return DRV_OK;
	p = drv_cfg_resolve(r->base_dir, f);
	if (p == NULL)
		return DRV_ENOMEM;
	rc = drv_check_private(p);
	if (rc == DRV_EPERM)
		drv_cfg_rd_err(r, path,
		               "%.100s can be read or written by group or others (chmod 600 it)",
		               p);
	else if (rc == DRV_OK)
		rc = drv_read_file(p, DRV_PROM_TOKEN_MAX, &buf, &len);
	if (rc != DRV_OK && rc != DRV_EPERM)
		drv_cfg_rd_err(r, path, "cannot read %.100s: %s", p, drv_strerror(rc));
	free(p);
	if (rc != DRV_OK)
		return rc == DRV_ENOMEM ? rc : DRV_OK;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	if (len == 0 || strlen(buf) != len || strpbrk(buf, "\r\n") != NULL) {
		drv_cfg_rd_err(r, path, "the token file must hold one line: the token");
		free(buf);
		return DRV_OK;
	}
	s->token = buf;
	return DRV_OK;
}

static int read_ca(struct drv_cfg_rd *r, const json_t *v, const char *path,
                   struct drv_prom_server *s)
{
	const char *f = want_string(r, v, path, "the path of a PEM file of CA certificates");

	if (f == NULL)
		return DRV_OK;
	s->ca_file = drv_cfg_resolve(r->base_dir, f);
	if (s->ca_file == NULL)
		return DRV_ENOMEM;
	if (access(s->ca_file, R_OK) != 0)
		drv_cfg_rd_err(r, path, "cannot read %.100s", s->ca_file);
	return DRV_OK;
}

static int read_field(struct drv_cfg_rd *r, const char *key, const json_t *v, const char *path,
                      void *elem)
{
	struct drv_prom_server *s = elem;
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
			drv_cfg_rd_err(r, path, "must be a duration from 100ms to 1m such as 5s");
		else
			s->timeout_ms = ms;
		return DRV_OK;
	}
	drv_cfg_rd_err(r, path, "unknown field (url, timeout, bearer_token_file, ca_file)");
	return DRV_OK;
}

/* After the fields: the URL is required. */
static void check_url(struct drv_cfg_rd *r, const char *path, const json_t *v, void *elem)
{
	(void)elem;
	if (json_object_get(v, "url") == NULL)
		drv_cfg_rd_err(r, path, "url is required: the server's base URL");
}

static void begin(void *elem)
{
	struct drv_prom_server *s = elem;

	s->timeout_ms = TIMEOUT_MS;
}

static void free_entry(void *elem)
{
	server_free(elem);
}

static void keep(void *out, void *v, size_t n)
{
	struct drv_prom_servers *o = out;

	o->v = v;
	o->n = n;
}

static const struct drv_cfg_section sec = {
        .key = SECTION,
        .what = "servers",
        .max = DRV_PROM_SERVERS_MAX,
        .size = sizeof(struct drv_prom_server),
        .free_one = free_entry,
        .entry = "a server",
        .fields = "url, timeout, bearer_token_file, ca_file",
        .name_off = offsetof(struct drv_prom_server, name),
        .begin = begin,
        .read_field = read_field,
        .end = check_url,
        .keep = keep,
};

int drv_prom_servers_read(const json_t *root, const struct drv_yj_lines *lines, const char *file,
                          const char *base_dir, struct drv_prom_servers *out,
                          struct drv_cfg_diag *diag)
{
	return drv_cfg_section_into(&sec, root, lines, NULL, 0, file, base_dir, diag, out);
}

int drv_prom_servers_parse(const char *buf, size_t len, const char *file, const char *base_dir,
                           struct drv_prom_servers *out, struct drv_cfg_diag *diag)
{
	return drv_cfg_section_into(&sec, NULL, NULL, buf, len, file, base_dir, diag, out);
}

const struct drv_prom_server *drv_prom_server_find(const struct drv_prom_servers *s,
                                                   const char *name)
{
	for (size_t i = 0; s != NULL && name != NULL && i < s->n; i++)
		if (s->v[i].name != NULL && strcmp(s->v[i].name, name) == 0)
			return &s->v[i];
	return NULL;
}
