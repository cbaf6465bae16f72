/* test_yamljson.c: YAML/JSON -> jansson with line numbers, and what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "err.h"
#include "yamljson.h"

#define CAP (1 << 20)

static json_t *load(const char *text, struct drv_yj_lines **lines)
{
	json_t *root = NULL;
	struct drv_yj_error err;

	assert_int_equal(drv_yj_load_buffer(text, strlen(text), CAP, &root, lines, &err), DRV_OK);
	assert_non_null(root);
	return root;
}

static int load_fail(const char *text, struct drv_yj_error *err)
{
	json_t *root = NULL;
	struct drv_yj_lines *lines = NULL;
	int rc = drv_yj_load_buffer(text, strlen(text), CAP, &root, &lines, err);

	assert_int_not_equal(rc, DRV_OK);
	assert_null(root);
	assert_null(lines);
	return rc;
}

static void scalars_follow_core_schema(void **state)
{
	(void)state;
	const char *text = "a: 42\n"
	                   "b: \"42\"\n"
	                   "c: 1.5\n"
	                   "d: true\n"
	                   "e: yes\n"
	                   "f: ~\n"
	                   "g: 25%\n"
	                   "h: 10m\n"
	                   "i: 0x10\n"
	                   "j: !!str 8080\n"
	                   "k:\n"
	                   "l: 200-299\n"
	                   "m: -3\n"
	                   "n: 1e3\n"
	                   "o: on\n";
	json_t *r = load(text, NULL);

	assert_int_equal(json_integer_value(json_object_get(r, "a")), 42);
	assert_string_equal(json_string_value(json_object_get(r, "b")), "42");
	assert_true(json_is_real(json_object_get(r, "c")));
	assert_true(json_is_true(json_object_get(r, "d")));
	assert_string_equal(json_string_value(json_object_get(r, "e")), "yes");
	assert_true(json_is_null(json_object_get(r, "f")));
	assert_string_equal(json_string_value(json_object_get(r, "g")), "25%");
	assert_string_equal(json_string_value(json_object_get(r, "h")), "10m");
	assert_int_equal(json_integer_value(json_object_get(r, "i")), 16);
	assert_string_equal(json_string_value(json_object_get(r, "j")), "8080");
	assert_true(json_is_null(json_object_get(r, "k")));
	assert_string_equal(json_string_value(json_object_get(r, "l")), "200-299");
	assert_int_equal(json_integer_value(json_object_get(r, "m")), -3);
	assert_true(json_is_real(json_object_get(r, "n")));
	assert_string_equal(json_string_value(json_object_get(r, "o")), "on");
	json_decref(r);
}

static void lines_by_path(void **state)
{
	(void)state;
	const char *text = "deployment: berrys\n"           /* 1 */
	                   "tiers:\n"                       /* 2 */
	                   "  - name: core\n"               /* 3 */
	                   "    services:\n"                /* 4 */
	                   "      - name: a\n"              /* 5 */
	                   "      - name: b\n"              /* 6 */
	                   "        strategy:\n"            /* 7 */
	                   "          steps: [10%, 100%]\n" /* 8 */
	                   "        hosts:\n"               /* 9 */
	                   "          - web-1\n"            /* 10 */
	                   "          - web-2\n";           /* 11 */
	struct drv_yj_lines *lines = NULL;
	json_t *r = load(text, &lines);

	assert_int_equal(drv_yj_line(lines, ""), 1);
	assert_int_equal(drv_yj_line(lines, "deployment"), 1);
	assert_int_equal(drv_yj_line(lines, "tiers"), 2);
	assert_int_equal(drv_yj_line(lines, "tiers[0]"), 3);
	assert_int_equal(drv_yj_line(lines, "tiers[0].name"), 3);
	assert_int_equal(drv_yj_line(lines, "tiers[0].services[1].name"), 6);
	assert_int_equal(drv_yj_line(lines, "tiers[0].services[1].strategy"), 7);
	assert_int_equal(drv_yj_line(lines, "tiers[0].services[1].strategy.steps[1]"), 8);
	assert_int_equal(drv_yj_line(lines, "tiers[0].services[1].hosts[1]"), 11);
	assert_int_equal(drv_yj_line(lines, "tiers[0].services[2]"), 0);
	assert_int_equal(drv_yj_line(NULL, "tiers"), 0);
	assert_int_equal(drv_yj_count(lines), 17);
	json_decref(r);
	drv_yj_lines_free(lines);
}

static void json_input_has_lines(void **state)
{
	(void)state;
	const char *text = "{\n"
	                   "\t\"deployment\": \"berrys\",\n"
	                   "\t\"tiers\": [\n"
	                   "\t\t{\"name\": \"core\", \"n\": 3, \"ok\": false, \"x\": null}\n"
	                   "\t]\n"
	                   "}\n";
	struct drv_yj_lines *lines = NULL;
	json_t *r = load(text, &lines);

	assert_string_equal(json_string_value(json_object_get(r, "deployment")), "berrys");
	assert_int_equal(drv_yj_line(lines, "deployment"), 2);
	assert_int_equal(drv_yj_line(lines, "tiers[0].name"), 4);
	json_t *t = json_array_get(json_object_get(r, "tiers"), 0);
	assert_int_equal(json_integer_value(json_object_get(t, "n")), 3);
	assert_true(json_is_false(json_object_get(t, "ok")));
	assert_true(json_is_null(json_object_get(t, "x")));
	json_decref(r);
	drv_yj_lines_free(lines);
}

static void refusals(void **state)
{
	(void)state;
	struct drv_yj_error err;

	assert_int_equal(load_fail("a: &x [1]\nb: *x\n", &err), DRV_EDECODE);
	assert_int_equal(err.line, 2);
	assert_non_null(strstr(err.msg, "aliases"));

	assert_int_equal(load_fail("a: 1\nb: 2\na: 3\n", &err), DRV_EDECODE);
	assert_int_equal(err.line, 3);
	assert_non_null(strstr(err.msg, "duplicate key"));

	assert_int_equal(load_fail("a: 1\n---\nb: 2\n", &err), DRV_EDECODE);
	assert_non_null(strstr(err.msg, "one document"));

	assert_int_equal(load_fail("? [a]\n: 1\n", &err), DRV_EDECODE);
	assert_non_null(strstr(err.msg, "keys must be"));

	assert_int_equal(load_fail("a: !custom 1\n", &err), DRV_EDECODE);
	assert_non_null(strstr(err.msg, "tag"));

	assert_int_equal(load_fail("a: !!int abc\n", &err), DRV_EDECODE);

	assert_int_equal(load_fail("a: \"x\\0y\"\n", &err), DRV_EDECODE);
	assert_non_null(strstr(err.msg, "NUL"));

	assert_int_equal(load_fail("a: 99999999999999999999999\n", &err), DRV_EDECODE);
	assert_non_null(strstr(err.msg, "range"));

	assert_int_equal(load_fail("", &err), DRV_EDECODE);
	assert_int_equal(load_fail("# only a comment\n", &err), DRV_EDECODE);
}

static void syntax_error_has_line(void **state)
{
	(void)state;
	struct drv_yj_error err;

	assert_int_equal(load_fail("a: 1\nb: [1, 2\nc: 3\n", &err), DRV_EDECODE);
	assert_true(err.line >= 2);
	assert_true(strlen(err.msg) > 0);

	assert_int_equal(load_fail("{\"a\": 1,, }", &err), DRV_EDECODE);
	assert_int_equal(err.line, 1);
}

static void caps(void **state)
{
	(void)state;
	struct drv_yj_error err;
	json_t *root = NULL;
	char deep[1024];
	size_t n = 0;

	assert_int_equal(drv_yj_load_buffer("a: 1\n", 5, 4, &root, NULL, &err), DRV_ETOOBIG);
	assert_null(root);
	for (int i = 0; i < DRV_YJ_MAX_DEPTH + 2; i++)
		deep[n++] = '[';
	for (int i = 0; i < DRV_YJ_MAX_DEPTH + 2; i++)
		deep[n++] = ']';
	deep[n] = '\0';
	assert_int_equal(load_fail(deep, &err), DRV_EDECODE);
	assert_non_null(strstr(err.msg, "deeper"));
}

static void many_laughs_are_cheap(void **state)
{
	(void)state;
	/* The classic bomb: refused at the first alias, nothing expanded. */
	const char *bomb =
	        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
	        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
	        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n";
	struct drv_yj_error err;

	assert_int_equal(load_fail(bomb, &err), DRV_EDECODE);
	assert_int_equal(err.line, 2);
}

static void files(void **state)
{
	(void)state;
	char path[] = "/tmp/test_yamljson_XXXXXX";
	int fd = mkstemp(path);
	json_t *root = NULL;
	struct drv_yj_lines *lines = NULL;
	struct drv_yj_error err;
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("x:\n  y: [1, 2]\n", f);
	fclose(f);
	assert_int_equal(drv_yj_load_file(path, CAP, &root, &lines, &err), DRV_OK);
	assert_int_equal(drv_yj_line(lines, "x.y[1]"), 2);
	json_decref(root);
	drv_yj_lines_free(lines);
	root = NULL;
	assert_int_equal(drv_yj_load_file(path, 3, &root, NULL, &err), DRV_ETOOBIG);
	unlink(path);
	assert_int_equal(drv_yj_load_file(path, CAP, &root, NULL, &err), DRV_ENOENT);
	assert_non_null(strstr(err.msg, "no such file"));
	assert_null(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(scalars_follow_core_schema), cmocka_unit_test(lines_by_path),
	        cmocka_unit_test(json_input_has_lines),       cmocka_unit_test(refusals),
	        cmocka_unit_test(syntax_error_has_line),      cmocka_unit_test(caps),
	        cmocka_unit_test(many_laughs_are_cheap),      cmocka_unit_test(files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
