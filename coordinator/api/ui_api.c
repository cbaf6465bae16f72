/* api_ui.c: serve the embedded dashboard files. */
#include "ui_api.h"

#include <stdio.h>

#include "err.h"
#include "ui_assets.h"

static int serve(struct drv_http_resp *resp, const char *path)
{
	const struct ui_asset *a = ui_assets_find(path);

	if (a == NULL)
		return drv_http_error(resp, 404, "not-found", "no such dashboard file: %s", path);
	drv_http_add_header(resp, "Cache-Control", "no-cache");
	drv_http_add_header(resp, "X-Content-Type-Options", "nosniff");
	drv_http_add_header(resp, "Content-Security-Policy",
	                    "default-src 'self'; frame-ancestors 'none'");
	return drv_http_text(resp, 200, a->mime, (const char *)a->data, a->len);
}

static int ui_index(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	(void)req;
	(void)ctx;
	return serve(resp, "/ui/index.html");
}

static int ui_file(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	char path[300];

	(void)ctx;
	snprintf(path, sizeof(path), "/ui/%s", drv_http_param(req, "file"));
	return serve(resp, path);
}

static const struct drv_http_route ui_routes[] = {
        {.method = "GET", .pattern = "/ui", .min_role = DRV_ROLE_NONE, .handler = ui_index},
        {.method = "GET", .pattern = "/ui/", .min_role = DRV_ROLE_NONE, .handler = ui_index},
        {.method = "GET", .pattern = "/ui/{file}", .min_role = DRV_ROLE_NONE, .handler = ui_file},
};

int drv_ui_add_routes(struct drv_http_server *srv)
{
	return drv_http_add_routes(srv, ui_routes, sizeof(ui_routes) / sizeof(ui_routes[0]), NULL);
}
