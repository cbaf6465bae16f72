/* metrics_api.h: GET /metrics (viewer): the metrics registry as Prometheus text. */
#ifndef DRV_METRICS_API_H
#define DRV_METRICS_API_H

#include "http_server.h"
#include "metrics.h"

/* Content type text/plain; version=0.0.4. */
int drv_metrics_add_routes(struct drv_http_server *srv, struct drv_metrics *m);

#endif
