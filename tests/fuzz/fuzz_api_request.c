/*
 * fuzz_api_request.c: the parts of an API request drover parses itself:
 * the path against the route patterns (route.h), the JSON body through the
 * strict validator (json_check.h), and a HOST:PORT listen address.
 *
 * Input: the path up to the first newline, then the body.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "http_server.h"
#include "json_check.h"
#include "route.h"

static const char *const patterns[] = {
        "/",
        "/healthz",
        "/metrics",
        "/v1/agents",
        "/v1/agents/{id}/accept",
        "/v1/deployments/{id}",
        "/v1/deployments/{id}/{action}",
        "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}",
};

static const struct drv_json_field fields[] = {
        {.name = "name", .type = DRV_J_STRING, .required = true, .max = 64},
        {.name = "count", .type = DRV_J_INT},
        {.name = "ratio", .type = DRV_J_NUMBER},
        {.name = "wait", .type = DRV_J_BOOL},
        {.name = "tags", .type = DRV_J_ARRAY, .max = 8},
        {.name = "env", .type = DRV_J_OBJECT, .max = 16},
        {.name = "any", .type = DRV_J_ANY},
};

static void fuzz_path(const char *path)
{
	struct drv_route_params p;

	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		if (drv_route_pattern_check(patterns[i]) != DRV_OK)
			abort();
		if (drv_route_match(patterns[i], path, &p) != DRV_OK)
			continue;
		if (p.n > DRV_ROUTE_PARAMS_MAX)
			abort();
		for (size_t j = 0; j < p.n; j++) {
			size_t len = strlen(p.p[j].value);
			if (len == 0 || len > DRV_ROUTE_VALUE_MAX || strchr(p.p[j].value, '/'))
				abort();
		}
	}
	/* The fuzzed text as a pattern must not crash the checker either. */
	if (drv_route_pattern_check(path) == DRV_OK)
		drv_route_match(path, path, &p);
}

static void fuzz_body(const char *body, size_t len)
{
	struct drv_json_error err;
	json_t *v;

	if (drv_json_parse(body, len, &v, &err) != DRV_OK) {
		if (strcmp(err.code, "invalid-json") != 0)
			abort();
		return;
	}
	if (drv_json_check(v, fields, sizeof(fields) / sizeof(fields[0]), &err) != DRV_OK &&
	    err.code[0] == '\0')
		abort();
	json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t plen = nl ? (size_t)(nl - data) : size;
	char *path = malloc(plen + 1), host[64];
	uint16_t port;

	if (!path)
		return 0;
	memcpy(path, data, plen);
	path[plen] = '\0';
	fuzz_path(path);
	drv_http_parse_listen(path, host, &port);
	free(path);
	if (nl)
		fuzz_body((const char *)nl + 1, size - plen - 1);
	return 0;
}
