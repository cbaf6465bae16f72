/*
 * audit.h: the append-only audit log (table audit; triggers refuse UPDATE
 * and DELETE). The HTTP server writes one row per mutating request; GET
 * /v1/audit (admin) lists them, newest first.
 */
#ifndef DRV_AUDIT_H
#define DRV_AUDIT_H

#include <jansson.h>
#include <sqlite3.h>
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

#define DRV_AUDIT_LIST_MAX 1000

/* Append one row stamped with the wall clock. */
int drv_audit_append(sqlite3 *db, const struct drv_audit_entry *e);

/* Rows with id < before_id (0: from the newest), newest first, at most
 * limit (1..DRV_AUDIT_LIST_MAX) as a JSON array of objects with id, at_ms,
 * actor, role, remote, method, path, status, detail. Caller owns *out. */
int drv_audit_list(sqlite3 *db, int64_t before_id, int limit, json_t **out);

#endif
