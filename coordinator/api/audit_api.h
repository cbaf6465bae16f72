/* audit_api.h: GET /v1/audit (admin): the audit log, newest first, paged by id. */
#ifndef DRV_AUDIT_API_H
#define DRV_AUDIT_API_H

#include "audit.h"
#include "http_server.h"

/* GET /v1/audit?limit=N&before=ID (admin): {"entries": [...]}. db is
 * borrowed for the server's lifetime. */
int drv_audit_add_routes(struct drv_http_server *srv, struct drv_sql *db);

#endif
