/*
 * env_api.h: GET /v1/environments[/{name}] and POST
 * /v1/deployments/{id}/approve|deny (docs/environments.md, docs/api.md).
 */
#ifndef DRV_ENV_API_H
#define DRV_ENV_API_H

#include "deploy_api.h"
#include "http_server.h"

/* api is borrowed and must outlive the server. */
int env_api_add_routes(struct drv_http_server *srv, struct deploy_api *api);

#endif
