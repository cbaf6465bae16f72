/* audit_api.c: GET /v1/audit (admin), the newest audit rows first. */
#include "audit_api.h"

#include <stdint.h>

#include "err.h"

static int audit_get(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	long long limit, before;
	json_t *rows;
	int rc;

	if (drv_http_query_int(req, resp, "limit", 1, DRV_AUDIT_LIST_MAX, 100, &limit) != DRV_OK ||
	    drv_http_query_int(req, resp, "before", 0, INT64_MAX, 0, &before) != DRV_OK)
		return DRV_OK;
	rc = drv_audit_list(ctx, before, (int)limit, &rows);
	if (rc != DRV_OK)
		return rc;
	return drv_http_json(resp, 200, json_pack("{s:o}", "entries", rows));
}

static const struct drv_http_route audit_routes[] = {
        {.method = "GET", .pattern = "/v1/audit", .min_role = DRV_ROLE_ADMIN, .handler = audit_get},
};

int drv_audit_add_routes(struct drv_http_server *srv, struct drv_sql *db)
{
	return drv_http_add_routes(srv, audit_routes,
	                           sizeof(audit_routes) / sizeof(audit_routes[0]), db);
}
