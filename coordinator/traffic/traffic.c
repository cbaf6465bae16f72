/*
 * traffic.c: the registry of traffic kinds and the checks every call goes
 * through before it reaches a kind (see traffic.h).
 */
#include "traffic_int.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"

#define NAME_MAX_LEN 64

struct drv_traffic {
	const struct drv_traffic_ops *ops;
	void *state;
};

static const struct drv_traffic_ops *const kinds[] = {
        &drv_traffic_haproxy_ops,
        &drv_traffic_hook_ops,
};

const struct drv_traffic_ops *drv_traffic_find(const char *kind)
{
	size_t i;

	for (i = 0; kind != NULL && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i]->kind, kind) == 0)
			return kinds[i];
	return NULL;
}

int drv_traffic_open(const struct drv_traffic_config *cfg, struct drv_traffic **out)
{
	const struct drv_traffic_ops *ops;
	struct drv_traffic *t;
	int rc;

	if (cfg == NULL || out == NULL || cfg->timeout_ms < 0)
		return DRV_EINVAL;
	ops = drv_traffic_find(cfg->kind);
	if (ops == NULL) {
		drv_warn("traffic", "unknown traffic kind", "kind=%s", cfg->kind ? cfg->kind : "");
		return DRV_EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return DRV_ENOMEM;
	t->ops = ops;
	rc = ops->open(cfg, &t->state);
	if (rc != DRV_OK) {
		free(t);
		return rc;
	}
	*out = t;
	return DRV_OK;
}

void drv_traffic_close(struct drv_traffic *t)
{
	if (t == NULL)
		return;
	t->ops->close(t->state);
	free(t);
}

const char *drv_traffic_kind(const struct drv_traffic *t)
{
	return t->ops->kind;
}

static bool name_ok(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];
		if (i >= NAME_MAX_LEN)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '-'))
			return false;
	}
	return true;
}

static int check_servers(const char *backend, const char *const *servers, size_t n)
{
	size_t i;

	if (!name_ok(backend) || servers == NULL || n == 0 || n > DRV_TRAFFIC_SERVERS_MAX)
		return DRV_EINVAL;
	for (i = 0; i < n; i++)
		if (!name_ok(servers[i]))
			return DRV_EINVAL;
	return DRV_OK;
}

int drv_traffic_set_weights(struct drv_traffic *t, const char *backend,
                            const struct drv_traffic_weight *w, size_t n)
{
	size_t i;

	if (t == NULL || !name_ok(backend) || w == NULL || n == 0 || n > DRV_TRAFFIC_SERVERS_MAX)
		return DRV_EINVAL;
	for (i = 0; i < n; i++)
		if (!name_ok(w[i].server) || w[i].weight < 0 ||
		    w[i].weight > DRV_TRAFFIC_WEIGHT_MAX)
			return DRV_EINVAL;
	return t->ops->set_weights(t->state, backend, w, n);
}

int drv_traffic_switch(struct drv_traffic *t, const char *backend, const char *const *to, size_t n)
{
	if (t == NULL || check_servers(backend, to, n) != DRV_OK)
		return DRV_EINVAL;
	return t->ops->switch_to(t->state, backend, to, n);
}

int drv_traffic_set_state(struct drv_traffic *t, const char *backend, const char *const *servers,
                          size_t n, enum drv_traffic_state st)
{
	if (t == NULL || check_servers(backend, servers, n) != DRV_OK ||
	    (st != DRV_TRAFFIC_READY && st != DRV_TRAFFIC_DRAIN && st != DRV_TRAFFIC_MAINT))
		return DRV_EINVAL;
	return t->ops->set_state(t->state, backend, servers, n, st);
}

int drv_traffic_wait_up(struct drv_traffic *t, const char *backend, const char *const *servers,
                        size_t n, int64_t timeout_ms, char *why, size_t cap)
{
	char none[1];

	if (why == NULL || cap == 0) {
		why = none;
		cap = sizeof(none);
	}
	why[0] = '\0';
	if (t == NULL || check_servers(backend, servers, n) != DRV_OK || timeout_ms < 0)
		return DRV_EINVAL;
	return t->ops->wait_up(t->state, backend, servers, n, timeout_ms, why, cap);
}
