/* logs_api.c: GET /v1/services/{service}/logs (see logs_api.h). */
#include "logs_api.h"

#include <stdio.h>
#include <string.h>

#include "err.h"
#include "ha.h"
#include "logs.h"

#define HOSTS_MAX       64 /* hosts answered in one request */
#define READ_TIMEOUT_MS 10000

static bool name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 64 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static const char *str_of(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static bool runs(const json_t *agent, const char *service)
{
	const json_t *r;
	size_t i;

	json_array_foreach(json_object_get(agent, "releases"), i, r)
	{
		if (strcmp(str_of(r, "service"), service) == 0)
			return true;
	}
	return false;
}

/* The hosts' answers (or errors), in the order of the agents; NULL when
 * out of memory. */
static json_t *read_all(struct logs_api *api, const json_t **hosts, size_t n,
                        const Drover__LogRequest *rq)
{
	struct link_logs_answer ans[HOSTS_MAX];
	size_t m = 0, k = 0;
	json_t *out = json_array(), *one;

	for (size_t i = 0; i < n; i++)
		if (json_is_true(json_object_get(hosts[i], "connected")))
			ans[m++] = (struct link_logs_answer){.agent = str_of(hosts[i], "id")};
	core_read_logs(api->core, ans, m, rq, READ_TIMEOUT_MS);
	for (size_t i = 0; i < n; i++) {
		const char *id = str_of(hosts[i], "id");

		if (!json_is_true(json_object_get(hosts[i], "connected")))
			one = json_pack("{s:s, s:s}", "host", id, "error",
			                "offline: its agent is not connected");
		else if (ans[k].rc == DRV_OK)
			one = ans[k++].out;
		else
			one = json_pack("{s:s, s:s}", "host", id, "error", ans[k++].why);
		if (out != NULL && json_array_append_new(out, one) != 0) {
			json_decref(out);
			out = NULL;
		} else if (out == NULL) {
			json_decref(one);
		}
	}
	return out;
}

static int args(struct drv_http_req *req, struct drv_http_resp *resp, Drover__LogRequest *rq,
                long long *offset)
{
	long long lines;
	const char *slot = drv_http_query(req, "slot");

	if (drv_http_query_int(req, resp, "lines", 1, 10000, 100, &lines) != DRV_OK ||
	    drv_http_query_int(req, resp, "offset", 0, INT64_MAX, -1, offset) != DRV_OK)
		return DRV_EINVAL;
	if (slot != NULL && !name_ok(slot))
		return drv_http_error_at(resp, 400, "bad-request", "slot", 0, "not a slot name"),
		       DRV_EINVAL;
	if (*offset >= 0 && drv_http_query(req, "host") == NULL)
		return drv_http_error_at(resp, 400, "bad-request", "offset", 0,
		                         "offset needs host (it is a position in one host's file)"),
		       DRV_EINVAL;
	rq->lines = (uint32_t)lines;
	rq->slot = (char *)(slot ? slot : "");
	rq->offset = *offset >= 0 ? (uint64_t)*offset : 0;
	rq->from_offset = *offset >= 0;
	return DRV_OK;
}

static int service_logs(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	struct logs_api *api = ctx;
	const char *service = drv_http_param(req, "service"), *host = drv_http_query(req, "host");
	Drover__LogRequest rq = DROVER__LOG_REQUEST__INIT;
	json_t *agents = NULL, *out, *a;
	const json_t *hosts[HOSTS_MAX];
	long long offset;
	size_t i, n = 0;
	int rc;

	if (!drv_role_allows(drv_http_role(req), api->min_role))
		return drv_http_error(resp, 403, "forbidden",
		                      "reading logs needs the %s role (logs_role in droverd.yaml)",
		                      drv_role_name(api->min_role));
	if (!drv_ha_is_leader()) /* only the leader talks to agents */
		return drv_http_to_leader(req, resp);
	if (!name_ok(service))
		return drv_http_error_at(resp, 400, "bad-request", "service", 0,
		                         "not a service name: 1-64 of [A-Za-z0-9._-]");
	if (host != NULL && !name_ok(host))
		return drv_http_error_at(resp, 400, "bad-request", "host", 0, "not an agent id");
	if (args(req, resp, &rq, &offset) != DRV_OK)
		return DRV_OK;
	rq.service = (char *)service;
	rc = core_agents_json(api->core, &agents);
	if (rc != DRV_OK)
		return rc;
	json_array_foreach(agents, i, a)
	{
		if (strcmp(str_of(a, "status"), "accepted") != 0 || n == HOSTS_MAX)
			continue;
		if (host != NULL ? strcmp(str_of(a, "id"), host) != 0 : !runs(a, service))
			continue;
		hosts[n++] = a;
	}
	out = n > 0 ? read_all(api, hosts, n, &rq) : NULL;
	json_decref(agents);
	if (n == 0)
		return host ? drv_http_error(resp, 404, "not-found", "no accepted agent '%s'", host)
		            : drv_http_error(resp, 404, "not-found", "no host runs service '%s'",
		                             service);
	if (out == NULL)
		return DRV_ENOMEM;
	return drv_http_json(resp, 200, json_pack("{s:s, s:o}", "service", service, "hosts", out));
}

static const struct drv_http_route routes[] = {
        {.method = "GET",
         .pattern = "/v1/services/{service}/logs",
         .min_role = DRV_ROLE_VIEWER,
         .handler = service_logs},
};

int logs_api_add_routes(struct drv_http_server *srv, struct logs_api *api)
{
	return drv_http_add_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), api);
}
