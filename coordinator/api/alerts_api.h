/*
 * alerts_api.h: POST /v1/alerts, the receiver of Alertmanager's webhook
 * (webhook_configs: url: http://DROVERD/v1/alerts, with a bearer token of
 * the `alerts` role, which may do nothing else). docs/api.md "Alerts".
 */
#ifndef DRV_ALERTS_API_H
#define DRV_ALERTS_API_H

#include <jansson.h>
#include <stddef.h>

#include "deploy_engine.h"
#include "http_server.h"

#define DRV_ALERTS_MAX       1000          /* alerts in one payload */
#define DRV_ALERTS_BODY_MAX  (1024 * 1024) /* bytes of one payload */
#define DRV_ALERT_LABELS_MAX 64            /* labels of one alert */
#define DRV_ALERT_VALUE_MAX  1024          /* bytes of a label name or value */

/* Check a webhook payload: DRV_OK, or DRV_EINVAL with why (which alert,
 * which field). */
int alerts_api_check(const json_t *payload, char *why, size_t cap);

/* *engine is read at each request (the engine may start after the routes
 * are added); engine is borrowed for the server's lifetime. */
int alerts_api_add_routes(struct drv_http_server *srv, struct deploy_engine *const *engine);

#endif
