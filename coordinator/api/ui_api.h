/*
 * api_ui.h: the web dashboard's routes: GET /ui and GET /ui/{file}, served
 * from the files compiled in (ui_assets.h). No token is needed to load the
 * page; every API call the page makes carries the operator's token.
 */
#ifndef DRV_API_UI_H
#define DRV_API_UI_H

#include "http_server.h"

int drv_ui_add_routes(struct drv_http_server *srv);

#endif
