/* test_json_check.c: strict JSON body validation and the API's error shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "err.h"
#include "http_server.h"
#include "json_check.h"

static const struct drv_json_field fields[] = {
        {.name = "name", .type = DRV_J_STRING, .required = true, .max = 8},
        {.name = "count", .type = DRV_J_INT},
        {.name = "ratio", .type = DRV_J_NUMBER},
        {.name = "wait", .type = DRV_J_BOOL},
        {.name = "tags", .type = DRV_J_ARRAY, .max = 2},
        {.name = "env", .type = DRV_J_OBJECT},
        {.name = "any", .type = DRV_J_ANY},
};
#define NF (sizeof(fields) / sizeof(fields[0]))

/* Parse text and check it; return the error code string ("" when valid). */
static const char *check(const char *text, struct drv_json_error *err)
{
	json_t *v;
	int rc;

	memset(err, 0, sizeof(*err));
	if (drv_json_parse(text, strlen(text), &v, err) != DRV_OK)
		return err->code;
	rc = drv_json_check(v, fields, NF, err);
	json_decref(v);
	return rc == DRV_OK ? "" : err->code;
}

static void test_valid(void **state)
{
	struct drv_json_error err;

	(void)state;
	assert_string_equal(check("{\"name\":\"a\"}", &err), "");
	assert_string_equal(check("{\"name\":\"abcdefgh\",\"count\":3,\"ratio\":0.5,\"wait\":true,"
	                          "\"tags\":[1,2],\"env\":{},\"any\":[null]}",
	                          &err),
	                    "");
	/* An integer is a number; null counts as absent for optional fields. */
	assert_string_equal(check("{\"name\":\"a\",\"ratio\":2,\"count\":null}", &err), "");
}

static void test_errors_name_the_field(void **state)
{
	struct drv_json_error err;

	(void)state;
	assert_string_equal(check("{\"name\":\"a\",\"bogus\":1}", &err), "unknown-field");
	assert_string_equal(err.field, "bogus");
	assert_string_equal(check("{\"count\":1}", &err), "missing-field");
	assert_string_equal(err.field, "name");
	assert_string_equal(check("{\"name\":null}", &err), "missing-field");
	assert_string_equal(check("{\"name\":1}", &err), "wrong-type");
	assert_string_equal(err.field, "name");
	assert_non_null(strstr(err.message, "must be a string"));
	assert_string_equal(check("{\"name\":\"a\",\"count\":1.5}", &err), "wrong-type");
	assert_string_equal(err.field, "count");
	assert_string_equal(check("{\"name\":\"a\",\"wait\":\"yes\"}", &err), "wrong-type");
	assert_string_equal(check("{\"name\":\"123456789\"}", &err), "too-long");
	assert_string_equal(check("{\"name\":\"a\",\"tags\":[1,2,3]}", &err), "too-long");
	assert_string_equal(err.field, "tags");
	assert_string_equal(check("[]", &err), "not-an-object");
	assert_string_equal(check("\"x\"", &err), "not-an-object");
}

static void test_invalid_json(void **state)
{
	struct drv_json_error err;

	(void)state;
	assert_string_equal(check("{\n\"name\": \"a\",\n oops}", &err), "invalid-json");
	assert_int_equal(err.line, 3);
	assert_non_null(strstr(err.message, "line 3"));
	assert_string_equal(check("{\"name\":\"a\",\"name\":\"b\"}", &err), "invalid-json");
	assert_non_null(strstr(err.message, "duplicate"));
	assert_string_equal(check("", &err), "invalid-json");
	assert_string_equal(check("{\"name\":\"a\"} trailing", &err), "invalid-json");
}

static void test_buffer_not_terminated(void **state)
{
	const char buf[] = {'{', '"', 'n', 'a', 'm', 'e', '"', ':', '"', 'x', '"', '}', 'Z'};
	struct drv_json_error err;
	json_t *v;

	(void)state;
	assert_int_equal(drv_json_parse(buf, 12, &v, &err), DRV_OK);
	assert_int_equal(drv_json_check(v, fields, NF, &err), DRV_OK);
	json_decref(v);
	assert_int_equal(drv_json_parse(buf, 13, &v, &err), DRV_EDECODE);
}

static void test_error_body_shape(void **state)
{
	json_t *b, *e;

	(void)state;
	b = drv_http_error_body("unknown-field", "unknown field \"x\"", "x", 0);
	assert_non_null(b);
	assert_int_equal(json_object_size(b), 1);
	e = json_object_get(b, "error");
	assert_string_equal(json_string_value(json_object_get(e, "code")), "unknown-field");
	assert_string_equal(json_string_value(json_object_get(e, "message")),
	                    "unknown field \"x\"");
	assert_string_equal(json_string_value(json_object_get(e, "field")), "x");
	assert_null(json_object_get(e, "line"));
	json_decref(b);

	b = drv_http_error_body("invalid-plan", "bad tier", NULL, 12);
	e = json_object_get(b, "error");
	assert_null(json_object_get(e, "field"));
	assert_int_equal(json_integer_value(json_object_get(e, "line")), 12);
	json_decref(b);

	b = drv_http_error_body("not-found", "no such endpoint", "", -1);
	e = json_object_get(b, "error");
	assert_int_equal(json_object_size(e), 2);
	json_decref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_valid),
	        cmocka_unit_test(test_errors_name_the_field),
	        cmocka_unit_test(test_invalid_json),
	        cmocka_unit_test(test_buffer_not_terminated),
	        cmocka_unit_test(test_error_body_shape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
