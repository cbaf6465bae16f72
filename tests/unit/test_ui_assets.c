/* test_ui_assets.c: the dashboard files are compiled in and found by path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "ui_assets.h"

static void index_served_for_ui_root(void **state)
{
	(void)state;
	const struct ui_asset *a = ui_assets_find("/ui");

	assert_non_null(a);
	assert_ptr_equal(a, ui_assets_find("/ui/"));
	assert_ptr_equal(a, ui_assets_find("/ui/index.html"));
	assert_string_equal(a->mime, "text/html; charset=utf-8");
	assert_true(a->len > 100);
	assert_non_null(strstr((const char *)a->data, "<title>drover</title>"));
	assert_int_equal(a->data[a->len], 0); /* NUL after the bytes */
}

static void script_and_style_present(void **state)
{
	(void)state;
	const struct ui_asset *js = ui_assets_find("/ui/app.js");
	const struct ui_asset *css = ui_assets_find("/ui/style.css");

	assert_non_null(js);
	assert_non_null(css);
	assert_non_null(strstr((const char *)js->data, "/v1/events"));
	assert_non_null(strstr(js->mime, "javascript"));
	assert_non_null(strstr(css->mime, "text/css"));
	assert_int_equal(strlen((const char *)js->data), js->len);
}

static void unknown_paths_not_found(void **state)
{
	(void)state;
	assert_null(ui_assets_find("/ui/../admin.token"));
	assert_null(ui_assets_find("/ui/missing.js"));
	assert_null(ui_assets_find("/"));
	assert_null(ui_assets_find(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(index_served_for_ui_root),
	        cmocka_unit_test(script_and_style_present),
	        cmocka_unit_test(unknown_paths_not_found),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
