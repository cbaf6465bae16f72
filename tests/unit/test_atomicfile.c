/* test_atomicfile.c: atomic writes, capped reads, secrecy checks, mkdirs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomicfile.h"
#include "err.h"

static char dir[] = "/tmp/drv-af-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int entries(const char *d)
{
	DIR *dh = opendir(d);
	struct dirent *e;
	int n = 0;

	while ((e = readdir(dh)) != NULL)
		n += e->d_name[0] != '.';
	closedir(dh);
	return n;
}

typedef int write_fn(const char *path, const void *data, size_t len, mode_t mode);

/* Write twice into a directory of its own, read back: the second content
 * and mode, and no temporary file left behind. */
static void replaces(write_fn *write, const char *name)
{
	char sub[256], p[300], *buf;
	size_t len;
	struct stat st;

	snprintf(sub, sizeof(sub), "%s/%s", dir, name);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(p, sizeof(p), "%s/state", sub);
	assert_int_equal(write(p, "one", 3, 0640), DRV_OK);
	assert_int_equal(write(p, "second", 6, 0600), DRV_OK);
	assert_int_equal(drv_read_file(p, 100, &buf, &len), DRV_OK);
	assert_int_equal(len, 6);
	assert_string_equal(buf, "second");
	free(buf);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(entries(sub), 1);
	snprintf(p, sizeof(p), "%s/missing/state", sub);
	assert_int_not_equal(write(p, "x", 1, 0600), DRV_OK);
	assert_int_equal(entries(sub), 1);
}

static void write_then_read(void **state)
{
	(void)state;
	replaces(drv_write_atomic, "atomic");
}

/* The cache's variant without fsync: the same replace-by-rename. */
static void replace_then_read(void **state)
{
	(void)state;
	replaces(drv_write_replace, "replace");
}

static void read_is_capped(void **state)
{
	(void)state;
	char p[256], *buf = NULL;
	size_t len;

	snprintf(p, sizeof(p), "%s/big", dir);
	assert_int_equal(drv_write_atomic(p, "0123456789", 10, 0600), DRV_OK);
	assert_int_equal(drv_read_file(p, 9, &buf, &len), DRV_ETOOBIG);
	assert_null(buf);
	assert_int_equal(drv_read_file(p, 10, &buf, &len), DRV_OK);
	free(buf);
	snprintf(p, sizeof(p), "%s/missing", dir);
	assert_int_equal(drv_read_file(p, 10, &buf, &len), DRV_ENOENT);
}

static void write_into_missing_dir_fails_cleanly(void **state)
{
	(void)state;
	char p[256];

	snprintf(p, sizeof(p), "%s/no/such/file", dir);
	assert_int_equal(drv_write_atomic(p, "x", 1, 0600), DRV_EIO);
}

static void secrecy(void **state)
{
	(void)state;
	char p[256];

	snprintf(p, sizeof(p), "%s/secret", dir);
	assert_int_equal(drv_write_atomic(p, "s", 1, 0600), DRV_OK);
	assert_int_equal(drv_check_private(p), DRV_OK);
	assert_int_equal(chmod(p, 0604), 0);
	assert_int_equal(drv_check_private(p), DRV_EPERM);
	assert_int_equal(chmod(p, 0620), 0);
	assert_int_equal(drv_check_private(p), DRV_EPERM);
}

static void mkdirs_creates_chain(void **state)
{
	(void)state;
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s/a/b/c", dir);
	assert_int_equal(drv_mkdirs(p, 0750), DRV_OK);
	assert_int_equal(drv_mkdirs(p, 0750), DRV_OK);
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(write_then_read),
	        cmocka_unit_test(replace_then_read),
	        cmocka_unit_test(read_is_capped),
	        cmocka_unit_test(write_into_missing_dir_fails_cleanly),
	        cmocka_unit_test(secrecy),
	        cmocka_unit_test(mkdirs_creates_chain),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
