/* metrics_api.c: GET /metrics, the registry rendered as Prometheus text. */
#include "metrics_api.h"

#include <stdlib.h>

#include "err.h"

/* ------------------------------------------------------------------ route */

static int metrics_get(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	char *text;
	size_t len;
	int rc;

	rc = drv_metrics_render(ctx, &text, &len);
	if (rc != DRV_OK)
		return rc;
	rc = drv_http_text(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	free(text);
	return rc;
}

static const struct drv_http_route metrics_routes[] = {
        {.method = "GET",
         .pattern = "/metrics",
         .min_role = DRV_ROLE_VIEWER,
         .handler = metrics_get},
};

int drv_metrics_add_routes(struct drv_http_server *srv, struct drv_metrics *m)
{
	return drv_http_add_routes(srv, metrics_routes, 1, m);
}
