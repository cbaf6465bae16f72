/*
 * route.h: matching a request path against a route pattern.
 *
 * A pattern is an absolute path whose segments are literals or {name}
 * parameters: "/v1/deployments/{id}/pause". A path matches when it has the
 * same number of segments, every literal is equal, and every parameter
 * segment is non-empty and at most DRV_ROUTE_VALUE_MAX bytes. Pure: no I/O,
 * no allocation; the HTTP server and the fuzz target use it.
 */
#ifndef DRV_ROUTE_H
#define DRV_ROUTE_H

#include <stddef.h>

#define DRV_ROUTE_PATH_MAX   1024 /* longer paths never match (the server answers 414) */
#define DRV_ROUTE_PARAMS_MAX 8
#define DRV_ROUTE_NAME_MAX   31
#define DRV_ROUTE_VALUE_MAX  255

struct drv_route_params {
	size_t n;
	struct {
		char name[DRV_ROUTE_NAME_MAX + 1];
		char value[DRV_ROUTE_VALUE_MAX + 1];
	} p[DRV_ROUTE_PARAMS_MAX];
};

/* DRV_OK if pattern is well formed: starts with '/', no empty segment except
 * the root "/", parameters "{name}" with name [a-z0-9_] of 1..31 bytes, at
 * most DRV_ROUTE_PARAMS_MAX of them, no duplicate names. DRV_EINVAL otherwise. */
int drv_route_pattern_check(const char *pattern);

/* DRV_OK and *out filled when path matches pattern; DRV_ENOENT when it does
 * not. pattern must have passed drv_route_pattern_check. out is written only
 * on success. */
int drv_route_match(const char *pattern, const char *path, struct drv_route_params *out);

/* The value of parameter name, or NULL. */
const char *drv_route_param(const struct drv_route_params *params, const char *name);

#endif
