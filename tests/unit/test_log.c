/* test_log.c: key=value lines, levels, quoting, caps, reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomicfile.h"
#include "err.h"
#include "log.h"

static char dir[] = "/tmp/drv-log-XXXXXX";
static char logpath[256];

static char *slurp(void)
{
	char *buf = NULL;
	size_t len;

	assert_int_equal(drv_read_file(logpath, 1 << 20, &buf, &len), DRV_OK);
	return buf;
}

static void lines_are_key_value(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(logpath, sizeof(logpath), "%s/d.log", dir);
	assert_int_equal(drv_log_open(logpath), DRV_OK);
	drv_log_set_level(DRV_LOG_INFO);
	drv_info("link", "agent \"accepted\"", "agent=%s seq=%d", "db-1", 7);
	drv_debug("link", "hidden");
	drv_warn("seq", "plain");
	char *text = slurp();
	assert_non_null(strstr(
	        text, "level=info mod=link msg=\"agent \\\"accepted\\\"\" agent=db-1 seq=7\n"));
	assert_null(strstr(text, "hidden"));
	assert_non_null(strstr(text, "level=warn mod=seq msg=\"plain\"\n"));
	assert_int_equal(strncmp(text, "ts=20", 5), 0);
	free(text);
}

static void long_lines_are_capped(void **state)
{
	(void)state;
	char big[DRV_LOG_LINE_MAX * 2];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(unlink(logpath), 0);
	assert_int_equal(drv_log_reopen(), DRV_OK);
	drv_error("t", "big", "v=%s", big);
	char *text = slurp();
	assert_true(strlen(text) <= DRV_LOG_LINE_MAX);
	assert_int_equal(text[strlen(text) - 1], '\n');
	free(text);
	drv_log_close();
	enum drv_log_level l;
	assert_int_equal(drv_log_parse_level("debug", &l), DRV_OK);
	assert_int_equal(l, DRV_LOG_DEBUG);
	assert_int_equal(drv_log_parse_level("loud", &l), DRV_EINVAL);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(lines_are_key_value),
	        cmocka_unit_test(long_lines_are_capped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
