/*
 * tokens.h: API bearer tokens with roles (viewer < deployer < approver <
 * admin, and alerts, outside that order: it may only post alerts, POST
 * /v1/alerts). An approver is a deployer that may also approve or deny
 * deployments waiting for approval (docs/environments.md).
 *
 * A token is "drv_" followed by 43 base64url characters (32 random bytes).
 * It is shown once, at creation; the database (api_tokens) keeps only
 * BLAKE2b-256("drover-api-token-v1" || token). Verification hashes the
 * presented token and compares it in constant time with every live row, so
 * neither timing nor the database reveals a usable token. A revoked token is
 * refused from the next request on (no cache).
 *
 * All functions take an open coordinator database (schema.h); struct drv_sql
 * connections from drv_sql_open are serialized, so any thread may call them.
 */
#ifndef DRV_TOKENS_H
#define DRV_TOKENS_H

#include <jansson.h>
#include <stdbool.h>
#include "sqldb.h"

enum drv_role {
	DRV_ROLE_NONE = 0, /* no token: only for routes that need none */
	DRV_ROLE_VIEWER,
	DRV_ROLE_DEPLOYER,
	DRV_ROLE_APPROVER, /* a deployer that may approve (issue 19) */
	DRV_ROLE_ADMIN,
	DRV_ROLE_ALERTS, /* only routes that need exactly it (admin may use them too) */
};

#define DRV_TOKEN_PREFIX   "drv_"
#define DRV_TOKEN_TEXT_LEN 47 /* "drv_" + 43 characters */
#define DRV_TOKEN_NAME_MAX 64

/* "viewer", "deployer", "approver", "admin", "alerts" ("none" for
 * DRV_ROLE_NONE). */
const char *drv_role_name(enum drv_role role);
/* DRV_EINVAL for anything but viewer, deployer, approver, admin, alerts. */
int drv_role_parse(const char *name, enum drv_role *out);
/* May a token of role have use a route that needs need? The alerts role
 * passes only where alerts is needed; there, admin passes too. */
bool drv_role_allows(enum drv_role have, enum drv_role need);

/* A token name is 1..64 of [A-Za-z0-9._@-]. */
int drv_token_name_check(const char *name);

/* Make a token, store its hash under name, and write the token text to out.
 * DRV_EEXIST if the name is taken (revoked names stay taken: the audit log
 * refers to them). */
int drv_token_create(struct drv_sql *db, const char *name, enum drv_role role,
                     char out[DRV_TOKEN_TEXT_LEN + 1]);

/* DRV_OK and the token's name and role when token is live. DRV_EPERM when
 * it is unknown, malformed or revoked; DRV_EDB on a database error. */
int drv_token_verify(struct drv_sql *db, const char *token, char name_out[DRV_TOKEN_NAME_MAX + 1],
                     enum drv_role *role_out);

/* Revoke by name. DRV_ENOENT if no such token; revoking twice is DRV_OK. */
int drv_token_revoke(struct drv_sql *db, const char *name);

/* A JSON array of {"name", "role", "created_ms", "revoked_ms" (or null)},
 * by name; the caller owns *out. Hashes are never listed. */
int drv_token_list(struct drv_sql *db, json_t **out);

/* For `droverd init`: create the token "admin" with role admin and write it
 * to DIR/admin.token (mode 0600, with a trailing newline) atomically.
 * DRV_EEXIST if an admin token already exists in the database. */
int drv_token_init_admin(struct drv_sql *db, const char *dir);
/* The same with the token named NAME (a node joining an HA group whose
 * database already holds `admin`). */
int drv_token_init_admin_named(struct drv_sql *db, const char *dir, const char *name);

#endif
