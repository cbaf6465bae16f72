/*
 * audit.h: the append-only audit log (table audit). The HTTP server writes
 * one row per mutating request *before* the handler changes anything
 * (drv_audit_begin, status 0) and fills in the answer's status and detail
 * after (drv_audit_finish): a change whose row cannot be written does not
 * happen. Triggers refuse every other UPDATE, and every DELETE but of the
 * failed-authentication rows (status 401 and 429), of which only the newest
 * DRV_AUDIT_AUTH_KEEP are kept (drv_audit_auth_failure), so that a flood of
 * bad tokens cannot grow the database without bound. GET /v1/audit (admin)
 * lists the rows, newest first; status 0 means droverd stopped before the
 * request was answered.
 */
#ifndef DRV_AUDIT_H
#define DRV_AUDIT_H

#include <jansson.h>
#include "sqldb.h"
#include <stdint.h>

struct drv_audit_entry {
	const char *actor;  /* token name, "" when unauthenticated */
	const char *role;   /* "viewer", "deployer", "admin", "none" */
	const char *remote; /* peer address */
	const char *method;
	const char *path;
	int status;         /* HTTP status of the answer */
	const char *detail; /* handler's note, may be NULL */
};

#define DRV_AUDIT_LIST_MAX  1000
#define DRV_AUDIT_AUTH_KEEP 1000 /* failed-authentication rows kept */

/* Append one row stamped with the wall clock. */
int drv_audit_append(struct drv_sql *db, const struct drv_audit_entry *e);

/* Append e with status 0 (begun) and its row id in *id; DRV_EDB when the
 * row cannot be written (then the request must not change anything). */
int drv_audit_begin(struct drv_sql *db, const struct drv_audit_entry *e, int64_t *id);
/* Fill in the status and detail of a row drv_audit_begin wrote. */
int drv_audit_finish(struct drv_sql *db, int64_t id, int status, const char *detail);

/* Append a failed-authentication row (e->status 401 or 429) and delete
 * such rows beyond the newest keep (0: DRV_AUDIT_AUTH_KEEP). */
int drv_audit_auth_failure(struct drv_sql *db, const struct drv_audit_entry *e, int keep);

/* Rows with id < before_id (0: from the newest), newest first, at most
 * limit (1..DRV_AUDIT_LIST_MAX) as a JSON array of objects with id, at_ms,
 * actor, role, remote, method, path, status, detail. Caller owns *out. */
int drv_audit_list(struct drv_sql *db, int64_t before_id, int limit, json_t **out);

#endif
