/*
 * events_api.h: GET /v1/events (viewer), the event stream described in
 * events.h, read from the events table; the hub wakes it.
 */
#ifndef DRV_EVENTS_API_H
#define DRV_EVENTS_API_H

#include "events.h"
#include "http_server.h"

/* GET /v1/events (viewer), plus the server's stop hook that ends streams. */
int drv_events_add_routes(struct drv_http_server *srv, struct drv_events *ev);

#endif
