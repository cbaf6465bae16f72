/* test_logread.c: ACTION_READ_LOG's file reading: the last N lines, from
 * an offset (a follower), caps, rotation seen, slots, and the one-line tail
 * that goes into a failure reason. */
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
#include "logread.h"

static char dir[] = "/tmp/drv-logread-XXXXXX";

static void write_log(const char *instance, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/services/%s.log", dir, instance);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	char sub[512];

	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(sub, sizeof(sub), "%s/services", dir);
	return mkdir(sub, 0750);
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static Drover__LogRequest req(const char *svc, const char *slot, uint32_t lines)
{
	Drover__LogRequest r = DROVER__LOG_REQUEST__INIT;

	r.service = (char *)svc;
	r.slot = (char *)slot;
	r.lines = lines;
	return r;
}

static void last_lines(void **state)
{
	Drover__LogRequest r = req("web", "", 2);
	struct logread lr;
	char why[200];

	(void)state;
	write_log("web", "one\ntwo\nthree\nfour\n");
	assert_int_equal(logread_read(dir, &r, &lr, why, sizeof(why)), DRV_OK);
	assert_int_equal(lr.len, strlen("three\nfour\n"));
	assert_memory_equal(lr.text, "three\nfour\n", lr.len);
	assert_int_equal(lr.offset, strlen("one\ntwo\nthree\nfour\n"));
	assert_true(lr.truncated);
	assert_string_equal(lr.instance, "web");
	free(lr.text);
	/* From an offset: only what came after it. */
	r.from_offset = true;
	r.offset = 8;
	assert_int_equal(logread_read(dir, &r, &lr, why, sizeof(why)), DRV_OK);
	assert_memory_equal(lr.text, "three\nfour\n", lr.len);
	assert_false(lr.rotated);
	free(lr.text);
	/* An offset past the end: the file was rotated, read it from its start. */
	r.offset = 1000;
	assert_int_equal(logread_read(dir, &r, &lr, why, sizeof(why)), DRV_OK);
	assert_true(lr.rotated);
	assert_int_equal(lr.len, strlen("one\ntwo\nthree\nfour\n"));
	free(lr.text);
}

static void caps_and_names(void **state)
{
	Drover__LogRequest r = req("big", "", 100000);
	struct logread lr;
	char why[200], *text = malloc(200001);

	(void)state;
	memset(text, 'x', 200000);
	text[200000] = '\0';
	write_log("big", text);
	free(text);
	assert_int_equal(logread_read(dir, &r, &lr, why, sizeof(why)), DRV_OK);
	assert_int_equal(lr.len, LOGREAD_BYTES_MAX); /* the cap, the newest bytes */
	assert_true(lr.truncated);
	assert_int_equal(lr.offset, 200000);
	free(lr.text);
	r.max_bytes = 10;
	assert_int_equal(logread_read(dir, &r, &lr, why, sizeof(why)), DRV_OK);
	assert_int_equal(lr.len, 10);
	free(lr.text);
	r = req("../etc", "", 5);
	assert_int_equal(logread_read(dir, &r, &lr, why, sizeof(why)), DRV_EINVAL);
	r = req("nosuch", "", 5);
	assert_int_equal(logread_read(dir, &r, &lr, why, sizeof(why)), DRV_ENOENT);
	assert_string_equal(why, "no output of nosuch on this host");
}

/* lines 10000 (the API's maximum) is honoured, not taken for "unset". */
static void max_lines(void **state)
{
	Drover__LogRequest r = req("many", "", LOGREAD_LINES_MAX);
	struct logread lr;
	char why[200], text[150 * 4 + 1];
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 150; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%03d\n", i);
	write_log("many", text);
	assert_int_equal(logread_read(dir, &r, &lr, why, sizeof(why)), DRV_OK);
	assert_int_equal(lr.len, 150 * 4);
	assert_false(lr.truncated);
	free(lr.text);
}

/* A blue-green service logs per slot: without a slot, the newest file. */
static void slots(void **state)
{
	Drover__LogRequest r = req("dash", "", 5);
	struct logread lr;
	char why[200], path[512];
	struct stat st;

	(void)state;
	write_log("dash@blue", "old\n");
	write_log("dash@green", "new\n");
	snprintf(path, sizeof(path), "%s/services/dash@blue.log", dir);
	assert_int_equal(stat(path, &st), 0);
	{
		char cmd[700];
		snprintf(cmd, sizeof(cmd), "touch -d '1 hour ago' '%s'", path);
		assert_int_equal(system(cmd), 0);
	}
	assert_int_equal(logread_read(dir, &r, &lr, why, sizeof(why)), DRV_OK);
	assert_string_equal(lr.instance, "dash@green");
	free(lr.text);
	r.slot = "blue";
	assert_int_equal(logread_read(dir, &r, &lr, why, sizeof(why)), DRV_OK);
	assert_memory_equal(lr.text, "old\n", lr.len);
	free(lr.text);
}

static void tail_line(void **state)
{
	char out[40];

	(void)state;
	write_log("svc", "a\nb\x1b[31m\nGET /health status=503\n");
	logread_tail_line(dir, "svc", 2, out, sizeof(out));
	assert_string_equal(out, "b?[31m | GET /health status=503");
	logread_tail_line(dir, "svc", 3, out, 20);
	assert_string_equal(out, "...ealth status=503"); /* the end is kept, 19 bytes */
	logread_tail_line(dir, "none", 3, out, sizeof(out));
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(last_lines), cmocka_unit_test(caps_and_names),
	        cmocka_unit_test(max_lines),  cmocka_unit_test(slots),
	        cmocka_unit_test(tail_line),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
