/* test_tokens.c: API token create / verify / revoke / list, and the admin token file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "sqldb.h"
#include "err.h"
#include "store_target.h"
#include "schema.h"
#include "tokens.h"

struct fx {
	char dir[64];
	struct drv_sql *db;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	char path[128];
	size_t n;
	const struct drv_sql_migration *mig = drv_schema_migrations(&n);

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/drv-tokens-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	if (store_target(path, sizeof(path), fx->dir, "droverd.db") != 0)
		return -1;
	if (drv_sql_open(path, mig, n, &fx->db) != DRV_OK)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[160];

	drv_sql_close(fx->db);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		return -1;
	free(fx);
	return 0;
}

static void test_roles(void **state)
{
	enum drv_role r;

	(void)state;
	assert_int_equal(drv_role_parse("viewer", &r), DRV_OK);
	assert_int_equal(r, DRV_ROLE_VIEWER);
	assert_int_equal(drv_role_parse("admin", &r), DRV_OK);
	assert_int_equal(r, DRV_ROLE_ADMIN);
	assert_int_equal(drv_role_parse("root", &r), DRV_EINVAL);
	assert_int_equal(drv_role_parse("none", &r), DRV_EINVAL);
	assert_true(DRV_ROLE_VIEWER < DRV_ROLE_DEPLOYER && DRV_ROLE_DEPLOYER < DRV_ROLE_ADMIN);
	assert_string_equal(drv_role_name(DRV_ROLE_DEPLOYER), "deployer");
	/* approver: a deployer that may also approve (migration 8 allows it) */
	assert_int_equal(drv_role_parse("approver", &r), DRV_OK);
	assert_int_equal(r, DRV_ROLE_APPROVER);
	assert_true(DRV_ROLE_DEPLOYER < DRV_ROLE_APPROVER && DRV_ROLE_APPROVER < DRV_ROLE_ADMIN);
	assert_true(drv_role_allows(DRV_ROLE_APPROVER, DRV_ROLE_DEPLOYER));
	assert_false(drv_role_allows(DRV_ROLE_APPROVER, DRV_ROLE_ADMIN));
}

static void test_create_verify(void **state)
{
	struct fx *fx = *state;
	char tok[DRV_TOKEN_TEXT_LEN + 1], tok2[DRV_TOKEN_TEXT_LEN + 1];
	char name[DRV_TOKEN_NAME_MAX + 1] = "unchanged";
	enum drv_role role = DRV_ROLE_NONE;

	assert_int_equal(drv_token_create(fx->db, "ci", DRV_ROLE_DEPLOYER, tok), DRV_OK);
	assert_int_equal(strlen(tok), DRV_TOKEN_TEXT_LEN);
	assert_memory_equal(tok, "drv_", 4);
	assert_int_equal(drv_token_create(fx->db, "ops", DRV_ROLE_VIEWER, tok2), DRV_OK);
	assert_string_not_equal(tok, tok2);
	assert_int_equal(drv_token_verify(fx->db, tok, name, &role), DRV_OK);
	assert_string_equal(name, "ci");
	assert_int_equal(role, DRV_ROLE_DEPLOYER);
	assert_int_equal(drv_token_verify(fx->db, tok2, name, &role), DRV_OK);
	assert_string_equal(name, "ops");
	assert_int_equal(role, DRV_ROLE_VIEWER);
	/* the approver role is stored and read back (schema migration 8) */
	assert_int_equal(drv_token_create(fx->db, "lead", DRV_ROLE_APPROVER, tok2), DRV_OK);
	assert_int_equal(drv_token_verify(fx->db, tok2, name, &role), DRV_OK);
	assert_int_equal(role, DRV_ROLE_APPROVER);

	/* One character changed, truncated, extended, empty: refused, outputs untouched. */
	strcpy(name, "unchanged");
	tok[20] = tok[20] == 'A' ? 'B' : 'A';
	assert_int_equal(drv_token_verify(fx->db, tok, name, &role), DRV_EPERM);
	assert_string_equal(name, "unchanged");
	assert_int_equal(drv_token_verify(fx->db, "drv_short", name, &role), DRV_EPERM);
	assert_int_equal(drv_token_verify(fx->db, "", name, &role), DRV_EPERM);
	assert_int_equal(drv_token_verify(fx->db, NULL, name, &role), DRV_EPERM);
	assert_int_equal(drv_token_verify(fx->db, "drv_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!",
	                                  name, &role),
	                 DRV_EPERM);
}

static void test_only_hash_stored(void **state)
{
	struct fx *fx = *state;
	char tok[DRV_TOKEN_TEXT_LEN + 1];
	struct drv_sql_stmt *st;

	assert_int_equal(drv_token_create(fx->db, "ci", DRV_ROLE_ADMIN, tok), DRV_OK);
	assert_int_equal(
	        drv_sql_prepare(fx->db, "SELECT hash FROM api_tokens WHERE name='ci'", &st),
	        DRV_OK);
	assert_int_equal(drv_sql_step(st), DRV_SQL_ROW);
	assert_int_equal(drv_sql_col_bytes(st, 0), 32);
	assert_null(memmem(drv_sql_col_blob(st, 0), 32, tok + 4, 8));
	drv_sql_finalize(st);
}

static void test_names(void **state)
{
	struct fx *fx = *state;
	char tok[DRV_TOKEN_TEXT_LEN + 1];
	char long_name[DRV_TOKEN_NAME_MAX + 2];

	assert_int_equal(drv_token_create(fx->db, "ci", DRV_ROLE_VIEWER, tok), DRV_OK);
	assert_int_equal(drv_token_create(fx->db, "ci", DRV_ROLE_ADMIN, tok), DRV_EEXIST);
	assert_int_equal(drv_token_create(fx->db, "", DRV_ROLE_ADMIN, tok), DRV_EINVAL);
	assert_int_equal(drv_token_create(fx->db, "a b", DRV_ROLE_ADMIN, tok), DRV_EINVAL);
	assert_int_equal(drv_token_create(fx->db, "x'; --", DRV_ROLE_ADMIN, tok), DRV_EINVAL);
	assert_int_equal(drv_token_create(fx->db, "ok", DRV_ROLE_NONE, tok), DRV_EINVAL);
	assert_int_equal(drv_token_create(fx->db, "ok", (enum drv_role)9, tok), DRV_EINVAL);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(drv_token_create(fx->db, long_name, DRV_ROLE_VIEWER, tok), DRV_EINVAL);
	long_name[DRV_TOKEN_NAME_MAX] = '\0';
	assert_int_equal(drv_token_create(fx->db, long_name, DRV_ROLE_VIEWER, tok), DRV_OK);
	assert_int_equal(drv_token_create(fx->db, "jo.doe@ops-1_x", DRV_ROLE_VIEWER, tok), DRV_OK);
}

static void test_revoke_list(void **state)
{
	struct fx *fx = *state;
	char tok[DRV_TOKEN_TEXT_LEN + 1], name[DRV_TOKEN_NAME_MAX + 1];
	enum drv_role role;
	json_t *list, *t;

	assert_int_equal(drv_token_create(fx->db, "b-ci", DRV_ROLE_DEPLOYER, tok), DRV_OK);
	assert_int_equal(drv_token_create(fx->db, "a-ops", DRV_ROLE_VIEWER, name), DRV_OK);
	assert_int_equal(drv_token_revoke(fx->db, "b-ci"), DRV_OK);
	assert_int_equal(drv_token_verify(fx->db, tok, name, &role), DRV_EPERM);
	assert_int_equal(drv_token_revoke(fx->db, "b-ci"), DRV_OK);
	assert_int_equal(drv_token_revoke(fx->db, "nobody"), DRV_ENOENT);
	assert_int_equal(drv_token_revoke(fx->db, "bad name"), DRV_ENOENT);
	/* A revoked name stays taken. */
	assert_int_equal(drv_token_create(fx->db, "b-ci", DRV_ROLE_DEPLOYER, tok), DRV_EEXIST);

	assert_int_equal(drv_token_list(fx->db, &list), DRV_OK);
	assert_int_equal(json_array_size(list), 2);
	t = json_array_get(list, 0);
	assert_string_equal(json_string_value(json_object_get(t, "name")), "a-ops");
	assert_true(json_is_null(json_object_get(t, "revoked_ms")));
	assert_null(json_object_get(t, "hash"));
	t = json_array_get(list, 1);
	assert_string_equal(json_string_value(json_object_get(t, "role")), "deployer");
	assert_true(json_integer_value(json_object_get(t, "revoked_ms")) > 0);
	json_decref(list);
}

static void test_init_admin(void **state)
{
	struct fx *fx = *state;
	char path[128], name[DRV_TOKEN_NAME_MAX + 1], *text;
	enum drv_role role;
	struct stat sb;
	size_t len;

	assert_int_equal(drv_token_init_admin(fx->db, fx->dir), DRV_OK);
	snprintf(path, sizeof(path), "%s/admin.token", fx->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(drv_read_file(path, 4096, &text, &len), DRV_OK);
	assert_int_equal(len, DRV_TOKEN_TEXT_LEN + 1);
	assert_int_equal(text[DRV_TOKEN_TEXT_LEN], '\n');
	text[DRV_TOKEN_TEXT_LEN] = '\0';
	assert_int_equal(drv_token_verify(fx->db, text, name, &role), DRV_OK);
	assert_string_equal(name, "admin");
	assert_int_equal(role, DRV_ROLE_ADMIN);
	free(text);
	assert_int_equal(drv_token_init_admin(fx->db, fx->dir), DRV_EEXIST);
	assert_int_equal(drv_token_revoke(fx->db, "admin"), DRV_OK);
}

/* A directory that cannot take the file leaves no orphan token behind. */
static void test_init_admin_unwritable(void **state)
{
	struct fx *fx = *state;
	char bad[128];
	json_t *list;

	snprintf(bad, sizeof(bad), "%s/missing/dir", fx->dir);
	assert_int_not_equal(drv_token_init_admin(fx->db, bad), DRV_OK);
	assert_int_equal(drv_token_list(fx->db, &list), DRV_OK);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
	assert_int_equal(drv_token_init_admin(fx->db, fx->dir), DRV_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_roles),
	        cmocka_unit_test_setup_teardown(test_create_verify, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_only_hash_stored, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_revoke_list, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_init_admin, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_init_admin_unwritable, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
