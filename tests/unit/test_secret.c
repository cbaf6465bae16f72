/* test_secret.c: bearer secrets and their hashes. */
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

#include "err.h"
#include "keys.h"
#include "secret.h"

static void tokens_are_random_and_prefixed(void **state)
{
	(void)state;
	char a[DRV_SECRET_MAX], b[DRV_SECRET_MAX];

	assert_int_equal(drv_secret_new("drvadm", a, sizeof(a)), DRV_OK);
	assert_int_equal(drv_secret_new("drvadm", b, sizeof(b)), DRV_OK);
	assert_true(strncmp(a, "drvadm_", 7) == 0);
	assert_int_equal(strlen(a), 7 + 43);
	assert_string_not_equal(a, b);
	assert_int_equal(
	        strspn(a + 7, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
	        43);
	assert_int_equal(drv_secret_new("drvadm", a, 20), DRV_EINVAL);
}

static void hash_is_stable_and_distinct(void **state)
{
	(void)state;
	uint8_t h1[DRV_SECRET_HASH_LEN], h2[DRV_SECRET_HASH_LEN], h3[DRV_SECRET_HASH_LEN];
	char big[DRV_SECRET_MAX + 2];

	assert_int_equal(drv_secret_hash("drvadm_abc", h1), DRV_OK);
	assert_int_equal(drv_secret_hash("drvadm_abc", h2), DRV_OK);
	assert_int_equal(drv_secret_hash("drvadm_abd", h3), DRV_OK);
	assert_true(drv_secret_hash_equal(h1, h2));
	assert_false(drv_secret_hash_equal(h1, h3));
	assert_int_equal(drv_secret_hash("", h1), DRV_EINVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(drv_secret_hash(big, h1), DRV_EINVAL);
}

static void files_are_private(void **state)
{
	(void)state;
	char dir[] = "/tmp/drv-tok-XXXXXX", path[256], tok[DRV_SECRET_MAX], back[DRV_SECRET_MAX];
	struct stat st;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/admin.token", dir);
	assert_int_equal(drv_secret_new("drvenr", tok, sizeof(tok)), DRV_OK);
	assert_int_equal(drv_secret_write_file(path, tok), DRV_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(drv_secret_read_file(path, back, sizeof(back)), DRV_OK);
	assert_string_equal(tok, back);
	chmod(path, 0644);
	assert_int_equal(drv_secret_read_file(path, back, sizeof(back)), DRV_EPERM);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(tokens_are_random_and_prefixed),
	        cmocka_unit_test(hash_is_stable_and_distinct),
	        cmocka_unit_test(files_are_private),
	};
	if (drv_crypto_init() != DRV_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
