/* tokens.c: API token creation, constant-time verification, revocation. */
#include "tokens.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "atomicfile.h"
#include "clock.h"
#include "sqldb.h"
#include "err.h"
#include "log.h"

#define HASH_LEN 32
#define RAW_LEN  32

static const char hash_domain[] = "drover-api-token-v1";

const char *drv_role_name(enum drv_role role)
{
	switch (role) {
	case DRV_ROLE_VIEWER: return "viewer";
	case DRV_ROLE_DEPLOYER: return "deployer";
	case DRV_ROLE_APPROVER: return "approver";
	case DRV_ROLE_ADMIN: return "admin";
	case DRV_ROLE_ALERTS: return "alerts";
	default: return "none";
	}
}

int drv_role_parse(const char *name, enum drv_role *out)
{
	static const enum drv_role roles[] = {DRV_ROLE_VIEWER, DRV_ROLE_DEPLOYER, DRV_ROLE_APPROVER,
	                                      DRV_ROLE_ADMIN, DRV_ROLE_ALERTS};

	for (size_t i = 0; name && i < sizeof(roles) / sizeof(roles[0]); i++) {
		if (strcmp(name, drv_role_name(roles[i])) == 0) {
			*out = roles[i];
			return DRV_OK;
		}
	}
	return DRV_EINVAL;
}

bool drv_role_allows(enum drv_role have, enum drv_role need)
{
	if (need == DRV_ROLE_ALERTS)
		return have == DRV_ROLE_ALERTS || have == DRV_ROLE_ADMIN;
	if (have == DRV_ROLE_ALERTS)
		return need == DRV_ROLE_NONE;
	return have >= need;
}

int drv_token_name_check(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len > DRV_TOKEN_NAME_MAX)
		return DRV_EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("._@-", c)))
			return DRV_EINVAL;
	}
	return DRV_OK;
}

static void token_hash(const char *token, size_t len, unsigned char out[HASH_LEN])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, HASH_LEN);
	crypto_generichash_update(&st, (const unsigned char *)hash_domain, sizeof(hash_domain));
	crypto_generichash_update(&st, (const unsigned char *)token, len);
	crypto_generichash_final(&st, out, HASH_LEN);
}

static int insert_token(struct drv_sql *db, const char *name, enum drv_role role,
                        const unsigned char hash[HASH_LEN])
{
	struct drv_sql_stmt *st;
	int rc;

	if (drv_sql_prepare(db,
	                    "INSERT INTO api_tokens(name, role, hash, created_ms) "
	                    "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
	                    &st) != DRV_OK)
		return DRV_EDB;
	drv_sql_bind_text(st, 1, name);
	drv_sql_bind_text(st, 2, drv_role_name(role));
	drv_sql_bind_blob(st, 3, hash, (size_t)(HASH_LEN));
	drv_sql_bind_int64(st, 4, drv_wall_ms());
	rc = drv_sql_step(st);
	drv_sql_finalize(st);
	if (rc == DRV_EEXIST) /* not a failed statement (it would abort a PostgreSQL transaction) */
		return DRV_EEXIST;
	if (rc != DRV_SQL_DONE)
		return DRV_EDB;
	return drv_sql_changes(db) == 0 ? DRV_EEXIST : DRV_OK;
}

int drv_token_create(struct drv_sql *db, const char *name, enum drv_role role,
                     char out[DRV_TOKEN_TEXT_LEN + 1])
{
	unsigned char raw[RAW_LEN], hash[HASH_LEN];
	char text[DRV_TOKEN_TEXT_LEN + 1];
	size_t plen = strlen(DRV_TOKEN_PREFIX);
	int rc;

	if (drv_token_name_check(name) != DRV_OK || role < DRV_ROLE_VIEWER ||
	    role > DRV_ROLE_ALERTS)
		return DRV_EINVAL;
	if (sodium_init() < 0)
		return DRV_ESYS;
	randombytes_buf(raw, sizeof(raw));
	memcpy(text, DRV_TOKEN_PREFIX, plen);
	sodium_bin2base64(text + plen, sizeof(text) - plen, raw, sizeof(raw),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	token_hash(text, strlen(text), hash);
	rc = insert_token(db, name, role, hash);
	if (rc == DRV_OK)
		memcpy(out, text, sizeof(text));
	sodium_memzero(text, sizeof(text));
	return rc;
}

static int token_shape_ok(const char *token)
{
	size_t plen = strlen(DRV_TOKEN_PREFIX);

	if (!token || strlen(token) != DRV_TOKEN_TEXT_LEN ||
	    strncmp(token, DRV_TOKEN_PREFIX, plen) != 0)
		return 0;
	for (const char *p = token + plen; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

/* Compare against every live row so the time taken does not depend on
 * which row (if any) matched. */
static int scan_tokens(struct drv_sql *db, const unsigned char hash[HASH_LEN],
                       char name_out[DRV_TOKEN_NAME_MAX + 1], enum drv_role *role_out)
{
	struct drv_sql_stmt *st;
	int rc = DRV_EPERM, step;

	if (drv_sql_prepare(db, "SELECT name, role, hash FROM api_tokens WHERE revoked_ms IS NULL",
	                    &st) != DRV_OK)
		return DRV_EDB;
	while ((step = drv_sql_step(st)) == DRV_SQL_ROW) {
		const void *h = drv_sql_col_blob(st, 2);
		const char *name = drv_sql_col_text(st, 0);
		enum drv_role role;
		if (!h || drv_sql_col_bytes(st, 2) != HASH_LEN || !name)
			continue;
		if (sodium_memcmp(h, hash, HASH_LEN) == 0 && rc != DRV_OK &&
		    drv_role_parse(drv_sql_col_text(st, 1), &role) == DRV_OK &&
		    strlen(name) <= DRV_TOKEN_NAME_MAX) {
			snprintf(name_out, DRV_TOKEN_NAME_MAX + 1, "%s", name);
			*role_out = role;
			rc = DRV_OK;
		}
	}
	if (step != DRV_SQL_DONE)
		rc = DRV_EDB;
	drv_sql_finalize(st);
	return rc;
}

int drv_token_verify(struct drv_sql *db, const char *token, char name_out[DRV_TOKEN_NAME_MAX + 1],
                     enum drv_role *role_out)
{
	unsigned char hash[HASH_LEN];
	char name[DRV_TOKEN_NAME_MAX + 1];
	enum drv_role role;
	int rc;

	if (!token_shape_ok(token))
		return DRV_EPERM;
	token_hash(token, strlen(token), hash);
	rc = scan_tokens(db, hash, name, &role);
	if (rc != DRV_OK)
		return rc;
	memcpy(name_out, name, sizeof(name));
	*role_out = role;
	return DRV_OK;
}

int drv_token_revoke(struct drv_sql *db, const char *name)
{
	struct drv_sql_stmt *st;
	int rc;

	if (drv_token_name_check(name) != DRV_OK)
		return DRV_ENOENT;
	if (drv_sql_prepare(db,
	                    "UPDATE api_tokens SET revoked_ms = coalesce(revoked_ms, ?) "
	                    "WHERE name = ?",
	                    &st) != DRV_OK)
		return DRV_EDB;
	drv_sql_bind_int64(st, 1, drv_wall_ms());
	drv_sql_bind_text(st, 2, name);
	rc = drv_sql_step(st) == DRV_SQL_DONE ? DRV_OK : DRV_EDB;
	if (rc == DRV_OK && drv_sql_changes(db) == 0)
		rc = DRV_ENOENT;
	drv_sql_finalize(st);
	return rc;
}

static json_t *token_row(struct drv_sql_stmt *st)
{
	json_t *revoked =
	        drv_sql_col_null(st, 3) ? json_null() : json_integer(drv_sql_col_int64(st, 3));

	return json_pack("{s:s, s:s, s:I, s:o}", "name", drv_sql_col_text(st, 0), "role",
	                 drv_sql_col_text(st, 1), "created_ms",
	                 (json_int_t)drv_sql_col_int64(st, 2), "revoked_ms", revoked);
}

int drv_token_list(struct drv_sql *db, json_t **out)
{
	struct drv_sql_stmt *st;

	if (drv_sql_prepare(db,
	                    "SELECT name, role, created_ms, revoked_ms FROM api_tokens "
	                    "ORDER BY name",
	                    &st) != DRV_OK)
		return DRV_EDB;
	return drv_sql_rows_json(st, token_row, out);
}

int drv_token_init_admin_named(struct drv_sql *db, const char *dir, const char *name)
{
	char token[DRV_TOKEN_TEXT_LEN + 1], path[4096], line[DRV_TOKEN_TEXT_LEN + 2];
	struct drv_sql_stmt *st;
	int rc;

	if (snprintf(path, sizeof(path), "%s/admin.token", dir) >= (int)sizeof(path))
		return DRV_EINVAL;
	rc = drv_token_create(db, name, DRV_ROLE_ADMIN, token);
	if (rc != DRV_OK)
		return rc;
	snprintf(line, sizeof(line), "%s\n", token);
	rc = drv_write_atomic(path, line, strlen(line), 0600);
	sodium_memzero(token, sizeof(token));
	sodium_memzero(line, sizeof(line));
	if (rc != DRV_OK) {
		drv_error("tokens", "cannot write admin token", "path=%s", path);
		if (drv_sql_prepare(db, "DELETE FROM api_tokens WHERE name = ?", &st) == DRV_OK) {
			drv_sql_bind_text(st, 1, name);
			drv_sql_step(st);
			drv_sql_finalize(st);
		}
		return rc;
	}
	drv_info("tokens", "admin token written", "path=%s name=%s", path, name);
	return DRV_OK;
}

int drv_token_init_admin(struct drv_sql *db, const char *dir)
{
	return drv_token_init_admin_named(db, dir, "admin");
}
