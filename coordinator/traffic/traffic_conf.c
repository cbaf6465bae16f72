/*
 * traffic_conf.c: the `balancers` section of droverd.yaml (traffic_conf.h).
 * Read from the jansson tree of the whole file with the line of every node,
 * so that each error names its line like the options table does.
 */
#include "traffic_conf.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "clock.h"
#include "cfg_section.h"
#include "err.h"
#include "yamljson.h"

#define SECTION    "balancers"
#define TIMEOUT_MS 10000
#define TIMEOUT_LO 100
#define TIMEOUT_HI (10 * 60 * 1000)

static void free_argv(char **v)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

static void balancer_free(struct drv_traffic_balancer *b)
{
	free(b->name);
	free(b->kind);
	free(b->socket);
	free_argv(b->argv);
	memset(b, 0, sizeof(*b));
}

void drv_traffic_balancers_free(struct drv_traffic_balancers *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		balancer_free(&b->v[i]);
	free(b->v);
	b->v = NULL;
	b->n = 0;
}

static int read_socket(struct drv_cfg_rd *r, const json_t *v, const char *path,
                       struct drv_traffic_balancer *b)
{
	const char *s = json_string_value(v);

	if (s == NULL || s[0] == '\0' || strlen(s) != json_string_length(v)) {
		drv_cfg_rd_err(r, path, "must be the path of HAProxy's admin socket");
		return DRV_OK;
	}
	b->socket = drv_cfg_resolve(r->base_dir, s);
	if (b->socket == NULL)
		return DRV_ENOMEM;
	if (strlen(b->socket) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		drv_cfg_rd_err(r, path, "longer than a unix socket path may be (%zu bytes)",
		               sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	return DRV_OK;
}

static int read_argv(struct drv_cfg_rd *r, const json_t *v, const char *path,
                     struct drv_traffic_balancer *b)
{
	size_t n = json_array_size(v);

	if (!json_is_array(v) || n == 0 || n > DRV_TRAFFIC_ARGV_MAX) {
		drv_cfg_rd_err(r, path,
		               "must be a list of 1 to %d words: the command and its arguments",
		               DRV_TRAFFIC_ARGV_MAX);
		return DRV_OK;
	}
	b->argv = calloc(n + 1, sizeof(*b->argv));
	if (b->argv == NULL)
		return DRV_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *w = json_array_get(v, i);
		const char *s = json_string_value(w);

		if (s == NULL || s[0] == '\0' || strlen(s) != json_string_length(w) ||
		    strlen(s) > DRV_TRAFFIC_WORD_MAX) {
			char p[2 * DRV_YJ_PATH_MAX + 24];
			snprintf(p, sizeof(p), "%s[%zu]", path, i);
			drv_cfg_rd_err(r, p, "must be a non-empty string of at most %d bytes",
			               DRV_TRAFFIC_WORD_MAX);
			return DRV_OK;
		}
		b->argv[i] = strdup(s);
		if (b->argv[i] == NULL)
			return DRV_ENOMEM;
	}
	if (b->argv[0][0] != '/')
		drv_cfg_rd_err(
		        r, path,
		        "the command must be an absolute path (droverd does not search PATH)");
	return DRV_OK;
}

static void read_timeout(struct drv_cfg_rd *r, const json_t *v, const char *path,
                         struct drv_traffic_balancer *b)
{
	int64_t ms;

	if (!json_is_string(v) || drv_parse_duration_ms(json_string_value(v), &ms) != DRV_OK ||
	    ms < TIMEOUT_LO || ms > TIMEOUT_HI) {
		drv_cfg_rd_err(r, path, "must be a duration from 100ms to 10m such as 10s");
		return;
	}
	b->timeout_ms = ms;
}

/* One field of balancer b; path is "balancers.NAME.KEY". */
static int read_field(struct drv_cfg_rd *r, const char *key, const json_t *v, const char *path,
                      void *elem)
{
	struct drv_traffic_balancer *b = elem;

	if (strcmp(key, "kind") == 0) {
		const char *k = json_string_value(v);
		if (k == NULL || (strcmp(k, "haproxy") != 0 && strcmp(k, "command") != 0)) {
			drv_cfg_rd_err(r, path, "must be haproxy or command");
			return DRV_OK;
		}
		b->kind = strdup(k);
		return b->kind ? DRV_OK : DRV_ENOMEM;
	}
	if (strcmp(key, "socket") == 0)
		return read_socket(r, v, path, b);
	if (strcmp(key, "argv") == 0)
		return read_argv(r, v, path, b);
	if (strcmp(key, "timeout") == 0) {
		read_timeout(r, v, path, b);
		return DRV_OK;
	}
	drv_cfg_rd_err(r, path, "unknown field (kind, socket, argv, timeout)");
	return DRV_OK;
}

/* What each kind needs, and nothing of the other. */
static void check_kind(struct drv_cfg_rd *r, const char *path, const json_t *v, void *elem)
{
	const struct drv_traffic_balancer *b = elem;
	char p[2 * DRV_YJ_PATH_MAX + 8];
	bool haproxy = b->kind != NULL && strcmp(b->kind, "haproxy") == 0;

	if (b->kind == NULL) {
		if (json_object_get(v, "kind") == NULL)
			drv_cfg_rd_err(r, path, "kind is required: haproxy or command");
		return;
	}
	if (haproxy && json_object_get(v, "socket") == NULL)
		drv_cfg_rd_err(r, path, "a haproxy balancer needs socket: the admin socket's path");
	if (!haproxy && json_object_get(v, "argv") == NULL)
		drv_cfg_rd_err(r, path,
		               "a command balancer needs argv: [/path/to/command, args...]");
	snprintf(p, sizeof(p), "%s.%s", path, haproxy ? "argv" : "socket");
	if (json_object_get(v, haproxy ? "argv" : "socket") != NULL)
		drv_cfg_rd_err(r, p, "not a field of a %s balancer", b->kind);
}

static void begin(void *elem)
{
	struct drv_traffic_balancer *b = elem;

	b->timeout_ms = TIMEOUT_MS;
}

static void free_entry(void *elem)
{
	balancer_free(elem);
}

static void keep(void *out, void *v, size_t n)
{
	struct drv_traffic_balancers *o = out;

	o->v = v;
	o->n = n;
}

static const struct drv_cfg_section sec = {
        .key = SECTION,
        .what = "balancers",
        .max = DRV_TRAFFIC_BALANCERS_MAX,
        .size = sizeof(struct drv_traffic_balancer),
        .free_one = free_entry,
        .entry = "a balancer",
        .fields = "kind, socket or argv, timeout",
        .name_off = offsetof(struct drv_traffic_balancer, name),
        .begin = begin,
        .read_field = read_field,
        .end = check_kind,
        .keep = keep,
};

int drv_traffic_balancers_read(const json_t *root, const struct drv_yj_lines *lines,
                               const char *file, const char *base_dir,
                               struct drv_traffic_balancers *out, struct drv_cfg_diag *diag)
{
	return drv_cfg_section_into(&sec, root, lines, NULL, 0, file, base_dir, diag, out);
}

int drv_traffic_balancers_parse(const char *buf, size_t len, const char *file, const char *base_dir,
                                struct drv_traffic_balancers *out, struct drv_cfg_diag *diag)
{
	return drv_cfg_section_into(&sec, NULL, NULL, buf, len, file, base_dir, diag, out);
}

const struct drv_traffic_balancer *drv_traffic_balancer_find(const struct drv_traffic_balancers *b,
                                                             const char *name)
{
	for (size_t i = 0; b != NULL && name != NULL && i < b->n; i++)
		if (strcmp(b->v[i].name, name) == 0)
			return &b->v[i];
	return NULL;
}

void drv_traffic_balancer_config(const struct drv_traffic_balancer *b,
                                 struct drv_traffic_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->kind = b->kind;
	cfg->socket = b->socket;
	cfg->argv = (const char *const *)b->argv;
	cfg->timeout_ms = b->timeout_ms;
}
